"""Validation of user-supplied values, shared by the stack config reader and the component.

Every check takes the ``key`` the user wrote (``event-logger:canaryPercent`` in a stack file,
``stages[0].canary_percent`` in component args) so the error points at the exact thing to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

import pulumi

LAMBDA_ALIAS_MAX_LENGTH = 128
DEFAULT_CANARY_SUFFIX = "-canary"

_ALIAS_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_POSITIVE_INTEGER = re.compile(r"[1-9][0-9]*")
_PYTHON_RUNTIME = re.compile(r"python3\.([0-9]+)")
# service:Action, where IAM would read any * or ? as a wildcard.
_IAM_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")
_OLDEST_PYTHON_MINOR = 12


Number = TypeVar("Number", int, float)


class ConfigError(pulumi.RunError):
    """A user-supplied value is invalid.

    A ``RunError`` is reported by Pulumi as a plain message, without a traceback.
    """


def alias_name(value: str, key: str) -> str:
    """Return ``value`` if Lambda accepts it as an alias name."""
    if not value:
        raise ConfigError(f"{key} must not be empty")
    if len(value) > LAMBDA_ALIAS_MAX_LENGTH:
        raise ConfigError(
            f"{key} must be at most {LAMBDA_ALIAS_MAX_LENGTH} characters, got {len(value)}"
        )
    if value.isdigit():
        # Lambda reserves all-digit qualifiers for version numbers.
        raise ConfigError(f"{key} must not be all digits (that is a version number), got {value!r}")
    if not _ALIAS_CHARACTERS.fullmatch(value):
        raise ConfigError(
            f"{key} may contain only letters, digits, '-' and '_' (as Lambda requires), "
            f"got {value!r}"
        )
    return value


def canary_percent(value: str | float, key: str) -> float:
    """Parse a canary share of traffic: a number from 0 to 100, decimals allowed."""
    message = f"{key} must be a number from 0 to 100, got {value!r}"
    percent = _finite(value, float, message)
    if not 0 <= percent <= 100:
        raise ConfigError(message)
    return percent


def alarm_error_rate_percent(value: str | float, key: str) -> float:
    """Parse an error-rate threshold: a percentage above 0, at most 100."""
    message = f"{key} must be a percentage above 0 and at most 100, got {value!r}"
    percent = _finite(value, float, message)
    if not 0 < percent <= 100:
        raise ConfigError(message)
    return percent


def alarm_p99_duration_ms(value: str | float, key: str, timeout_seconds: int) -> float:
    """Parse a p99 duration threshold: above 0 and below the function's timeout, which no
    invocation outlasts (an alarm above it could never go off)."""
    timeout_ms = timeout_seconds * 1000
    message = (
        f"{key} must be a number of milliseconds above 0 and below the function's timeout "
        f"({timeout_ms} ms), got {value!r}"
    )
    duration = _finite(value, float, message)
    if not 0 < duration < timeout_ms:
        raise ConfigError(message)
    return duration


def stable_version(value: str | int, key: str) -> int:
    """Parse a published Lambda version number (1, 2, ...). ``$LATEST`` is not a version."""
    if isinstance(value, bool) or not _POSITIVE_INTEGER.fullmatch(str(value)):
        raise ConfigError(
            f"{key} must be a published version number (a positive integer such as 3), "
            f"got {value!r}"
        )
    return int(value)


def stage_name(value: str, key: str) -> str:
    """Return ``value`` if API Gateway accepts it as a stage name."""
    if not _STAGE_NAME.fullmatch(value):
        raise ConfigError(f"{key} must be 1 to 128 letters, digits, '-' or '_', got {value!r}")
    return value


def canary_alias_for(live_alias: str, canary_alias: str | None, key: str) -> str:
    """The canary alias: the one given, or ``<live alias>-canary``; never the live alias."""
    if canary_alias is None:
        derived = live_alias + DEFAULT_CANARY_SUFFIX
        if len(derived) > LAMBDA_ALIAS_MAX_LENGTH:
            raise ConfigError(
                f"{key} defaults to '<alias>{DEFAULT_CANARY_SUFFIX}', {len(derived)} characters, "
                f"but aliases are at most {LAMBDA_ALIAS_MAX_LENGTH} characters: "
                f"shorten the alias or set {key}"
            )
        canary_alias = derived
    name = alias_name(canary_alias, key)
    if name == live_alias:
        raise ConfigError(
            f"{key} must differ from the live alias {live_alias!r}: "
            "the canary would receive no separate traffic"
        )
    return name


def integer_in_range(value: str | int, key: str, lowest: int, highest: int) -> int:
    """Parse a whole number from ``lowest`` to ``highest``."""
    message = f"{key} must be a whole number from {lowest} to {highest}, got {value!r}"
    number = _finite(value, int, message)
    if not lowest <= number <= highest:
        raise ConfigError(message)
    return number


def positive_number(value: str | float, key: str) -> float:
    """Parse a number above 0, decimals allowed."""
    message = f"{key} must be a number above 0, got {value!r}"
    number = _finite(value, float, message)
    if number <= 0:
        raise ConfigError(message)
    return number


def _finite(value: str | float, parse: Callable[[str | float], Number], message: str) -> Number:
    """``parse(value)``, refusing booleans, text that is no number, NaN and infinities."""
    # A float would be truncated silently by int().
    if isinstance(value, bool) or (parse is int and isinstance(value, float)):
        raise ConfigError(message)
    try:
        number = parse(value)
    except (ValueError, OverflowError):
        raise ConfigError(message) from None
    if not math.isfinite(number):
        raise ConfigError(message)
    return number


def one_of(value: int, key: str, allowed: tuple[int, ...]) -> int:
    """Return ``value`` if it is one of ``allowed``."""
    if isinstance(value, bool) or value not in allowed:
        listed = ", ".join(str(option) for option in allowed)
        raise ConfigError(f"{key} must be one of {listed}; got {value!r}")
    return value


def python_runtime(value: str, key: str) -> str:
    """Return ``value`` if it names a Lambda Python runtime of 3.12 or newer."""
    match = _PYTHON_RUNTIME.fullmatch(value)
    if match is None or int(match.group(1)) < _OLDEST_PYTHON_MINOR:
        raise ConfigError(
            f"{key} must be a Lambda Python runtime of 3.{_OLDEST_PYTHON_MINOR} or newer "
            f"(such as python3.13), got {value!r}"
        )
    return value


def iam_actions(actions: list[str], key: str) -> list[str]:
    """Return ``actions`` if every one names a single service action, with no wildcard."""
    if not actions:
        raise ConfigError(f"{key} must list at least one action")
    for action in actions:
        if not _IAM_ACTION.fullmatch(action):
            raise ConfigError(
                f"{key} must name exact actions such as 'dynamodb:PutItem' "
                f"(least privilege: no wildcards), got {action!r}"
            )
    return actions


def boolean(value: bool, key: str) -> bool:
    """Return ``value`` if it is a real boolean (``"false"`` would otherwise count as true)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value
