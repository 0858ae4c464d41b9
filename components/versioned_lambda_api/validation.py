"""Validation of user-supplied values, shared by the stack config reader and the component.

Every check takes the ``key`` the user wrote (``event-logger:canaryPercent`` in a stack file,
``stages[0].canary_percent`` in component args) so the error points at the exact thing to fix.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import Enum
from typing import Any, ForwardRef, NotRequired, Required, TypeVar

import pulumi

LAMBDA_ALIAS_MAX_LENGTH = 128
DEFAULT_CANARY_SUFFIX = "-canary"

_ALIAS_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")
# API Gateway's own limit (CreateStage stageName).
STAGE_NAME_MAX_LENGTH = 128
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_POSITIVE_INTEGER = re.compile(r"[1-9][0-9]*")
_PYTHON_RUNTIME = re.compile(r"python3\.([0-9]+)")
# service:Action, where IAM would read any * or ? as a wildcard.
_IAM_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")
_OLDEST_PYTHON_MINOR = 12

# botocore's Lambda model, shape Handler: max 128, pattern [^\s]+.
HANDLER_MAX_LENGTH = 128
_HANDLER_CHARACTERS = re.compile(r"\S+")

# botocore's Lambda model, shape EnvironmentVariableName: at least two characters.
_ENVIRONMENT_VARIABLE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
# "Defined runtime environment variables", Lambda Developer Guide (configuration-envvars.html):
# "The keys for these environment variables are reserved and cannot be set in your function
# configuration."
RESERVED_ENVIRONMENT_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
# Same page: "The total size of all environment variables doesn't exceed 4 KB."
ENVIRONMENT_MAX_BYTES = 4096

# IAM refuses any other Resource with "MalformedPolicyDocument: Resource ... must be in ARN
# format or "*"" (IAM User Guide, "IAM identifiers": arn:partition:service:region:account:resource;
# region and account may be empty, any part may hold wildcards).
_IAM_RESOURCE_ARN = re.compile(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:.+")


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


def stable_version(value: str | float, key: str) -> int:
    """Parse a published Lambda version number (1, 2, ...). ``$LATEST`` is not a version."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not _POSITIVE_INTEGER.fullmatch(str(value)):
        raise ConfigError(
            f"{key} must be a published version number (a positive integer such as 3), "
            f"got {value!r}"
        )
    return int(value)


def stage_name(value: str, key: str, max_length: int = STAGE_NAME_MAX_LENGTH) -> str:
    """Return ``value`` if API Gateway accepts it as a stage name of at most ``max_length``
    characters (a stage name also names other resources, which may allow fewer)."""
    if not _STAGE_NAME.fullmatch(value) or len(value) > max_length:
        raise ConfigError(
            f"{key} must be 1 to {max_length} letters, digits, '-' or '_', got {value!r}"
        )
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
    # A fraction would be truncated silently by int().
    if isinstance(value, bool) or (
        parse is int and isinstance(value, float) and not value.is_integer()
    ):
        raise ConfigError(message)
    try:
        number = parse(value)
    except (ValueError, OverflowError):
        raise ConfigError(message) from None
    if not math.isfinite(number):
        raise ConfigError(message)
    return number


def one_of(value: float, key: str, allowed: tuple[int, ...]) -> int:
    """Return the one of ``allowed`` that ``value`` is (``30`` for ``30.0``)."""
    if isinstance(value, bool) or value not in allowed:
        listed = ", ".join(str(option) for option in allowed)
        raise ConfigError(f"{key} must be one of {listed}; got {value!r}")
    return allowed[allowed.index(value)]


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


def handler(value: str, key: str) -> str:
    """Return ``value`` if Lambda accepts it as a handler and the Python runtime can load it."""
    # The Python runtime splits the handler at its last '.' into module and function
    # (awslambdaric's bootstrap._get_handler) and fails every invocation otherwise.
    module, _, function = value.rpartition(".")
    if (
        len(value) > HANDLER_MAX_LENGTH
        or not _HANDLER_CHARACTERS.fullmatch(value)
        or not module
        or not function
    ):
        raise ConfigError(
            f"{key} must be 'module.function' such as 'handler.handler', at most "
            f"{HANDLER_MAX_LENGTH} characters without spaces, got {value!r}"
        )
    return value


def environment_variables(
    variables: Mapping[str, pulumi.Input[str]], key: str
) -> dict[str, pulumi.Input[str]]:
    """Return ``variables`` if Lambda accepts their names and, as far as the values are known
    before deploying, their size."""
    for name in variables:
        if name in RESERVED_ENVIRONMENT_VARIABLES:
            raise ConfigError(
                f"{key}[{name!r}] is reserved: Lambda sets it in every function and refuses it "
                "in the function's configuration"
            )
        if not _ENVIRONMENT_VARIABLE_NAME.fullmatch(name):
            raise ConfigError(
                f"{key}[{name!r}] is not a name Lambda accepts: a letter followed by at least "
                "one letter, digit or '_'"
            )
    # An Output's size is known only when deploying; the plain values alone can overflow.
    known_bytes = sum(
        len(name.encode()) + (len(value.encode()) if isinstance(value, str) else 0)
        for name, value in variables.items()
    )
    if known_bytes > ENVIRONMENT_MAX_BYTES:
        raise ConfigError(
            f"{key} must hold at most {ENVIRONMENT_MAX_BYTES} bytes of names and values "
            f"(Lambda's 4 KB), got {known_bytes}"
        )
    return dict(variables)


def iam_resources(resources: list[pulumi.Input[str]], key: str) -> list[pulumi.Input[str]]:
    """Return ``resources`` if IAM accepts each as a statement's Resource (an Output is taken
    on trust)."""
    if not resources:
        raise ConfigError(f"{key} must list at least one ARN")
    for index, resource in enumerate(resources):
        if (
            isinstance(resource, str)
            and resource != "*"
            and not _IAM_RESOURCE_ARN.fullmatch(resource)
        ):
            raise ConfigError(
                f"{key}[{index}] must be an ARN (arn:partition:service:region:account:resource) "
                f"or '*', as IAM requires, got {resource!r}"
            )
    return resources


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely misspells, if any is close."""
    matches = difflib.get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


def unknown_key(where: str, name: object, known: Iterable[str]) -> str:
    """The problem with ``name``, a key ``where`` does not have, with the closest known key."""
    known = list(known)
    suggestion = closest(name, known) if isinstance(name, str) else None
    if suggestion is not None:
        return f"{where} has no key {name!r}; did you mean {suggestion!r}?"
    return f"{where} has no key {name!r}; its keys are {', '.join(known)}"


def shape_problems(value: object, expected: Any, key: str) -> list[str]:
    """Every way ``value`` differs in shape from the type ``expected``: missing required keys,
    unknown keys and wrong types, each named by its path from ``key`` as the caller wrote it
    (``stages[1].canary_percent``).

    ``expected`` is a TypedDict, ``list[X]``, ``Mapping[str, X]``, ``pulumi.Input[X]`` (an
    Output or awaitable is taken on trust), an Enum (a member or its value), ``str``, ``int``,
    ``float``, ``bool`` or a class such as ``pulumi.Archive``. Values are not judged here: only
    whether the parser of each value can be handed it.
    """
    if isinstance(value, pulumi.Output) and not _is_input(expected):
        return [
            f"{key or _ROOT} must be {_describe(expected)}, got an Output: it must be known "
            "when the program runs, not only once resources are deployed"
        ]
    if typing.is_typeddict(expected):
        return _typed_dict_problems(value, expected, key)
    if typing.get_origin(expected) is list:
        return _list_problems(value, expected, key)
    if typing.get_origin(expected) is Mapping:
        return _mapping_problems(value, expected, key)
    if _is_input(expected) and (isinstance(value, pulumi.Output) or inspect.isawaitable(value)):
        return []
    plain = _input_type(expected) if _is_input(expected) else expected
    if not isinstance(plain, type):
        raise TypeError(f"no shape check for {expected!r} (at {key})")
    return [] if _is_instance(value, plain) else [_wrong_type(key, expected, value)]


# The root of the component's args in messages about their own keys.
_ROOT = "args"


def _typed_dict_problems(value: object, expected: Any, key: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [_wrong_type(key, expected, value)]
    fields: dict[str, Any] = {
        name: _unwrap_required(hint) for name, hint in expected.__annotations__.items()
    }
    problems: list[str] = []
    for name, hint in fields.items():
        path = f"{key}.{name}" if key else name
        if name in value:
            problems += shape_problems(value[name], hint, path)
        elif name in expected.__required_keys__:
            problems.append(f"{path} is required: {_describe(hint)}")
    problems += [unknown_key(key or _ROOT, name, fields) for name in value if name not in fields]
    return problems


def _list_problems(value: object, expected: Any, key: str) -> list[str]:
    if not isinstance(value, list):
        return [_wrong_type(key, expected, value)]
    (item,) = typing.get_args(expected)
    return [
        problem
        for index, element in enumerate(value)
        for problem in shape_problems(element, item, f"{key}[{index}]")
    ]


def _mapping_problems(value: object, expected: Any, key: str) -> list[str]:
    if not isinstance(value, Mapping):
        return [_wrong_type(key, expected, value)]
    _, item = typing.get_args(expected)
    problems: list[str] = []
    for name, element in value.items():
        if isinstance(name, str):
            problems += shape_problems(element, item, f"{key}[{name!r}]")
        else:
            problems.append(f"{key} keys must be strings, got {name!r}")
    return problems


def _unwrap_required(hint: Any) -> Any:
    while typing.get_origin(hint) in (NotRequired, Required):
        (hint,) = typing.get_args(hint)
    return hint


def _is_input(expected: Any) -> bool:
    """Whether ``expected`` is ``pulumi.Input[X]``: a union of X, Awaitable[X] and Output."""
    return typing.get_origin(expected) in (typing.Union, types.UnionType) and any(
        typing.get_origin(member) is Awaitable for member in typing.get_args(expected)
    )


def _input_type(expected: Any) -> type:
    plain = [
        member
        for member in typing.get_args(expected)
        if typing.get_origin(member) is not Awaitable and not isinstance(member, ForwardRef)
    ]
    if len(plain) != 1 or not isinstance(plain[0], type):
        raise TypeError(f"no shape check for {expected!r}")
    return plain[0]


def _is_instance(value: object, expected: type) -> bool:
    # bool is an int to Python, but True is no memory size; an int is a fine float.
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        # Pulumi's wire format carries every number as a double: a component published to
        # other languages receives 256.0 for 256 (pulumi.provider.experimental's
        # map_input_properties converts integers to int and then overwrites them, 3.272.0).
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if issubclass(expected, Enum):
        return isinstance(value, expected) or (
            isinstance(value, str) and value in {member.value for member in expected}
        )
    return isinstance(value, expected)


def _wrong_type(key: str, expected: Any, value: object) -> str:
    return f"{key or _ROOT} must be {_describe(expected)}, got {_shown(value)}"


def _describe(expected: Any) -> str:
    """What a value of type ``expected`` looks like, for messages."""
    if _is_input(expected):
        return f"{_describe(_input_type(expected))} or an Output"
    if typing.get_origin(expected) is list:
        return f"a list of {_plural(typing.get_args(expected)[0])}"
    if typing.get_origin(expected) is Mapping:
        return f"a dict of names to {_plural(typing.get_args(expected)[1])}"
    if typing.is_typeddict(expected):
        return f"a dict ({expected.__name__})"
    if isinstance(expected, type) and issubclass(expected, Enum):
        return " or ".join(repr(member.value) for member in expected)
    return _PLAIN.get(expected) or f"a {expected.__module__.partition('.')[0]}.{expected.__name__}"


_PLAIN: dict[type, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
}


def _plural(expected: Any) -> str:
    if typing.is_typeddict(expected):
        return f"dicts ({expected.__name__})"
    if _is_input(expected):
        return f"{_plural(_input_type(expected))} or Outputs"
    plain = {str: "strings", int: "whole numbers", float: "numbers", bool: "booleans"}
    return plain.get(expected, _describe(expected))


def _shown(value: object) -> str:
    """``value``'s repr, shortened: a wrong value may be a whole nested structure."""
    shown = repr(value)
    return shown if len(shown) <= 80 else f"{shown[:77]}..."
