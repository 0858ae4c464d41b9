"""The Event Logger program's stack config, read and validated in one place.

Every key lives in the ``event-logger`` namespace and is declared, with its default, in
``Pulumi.yaml``; the defaults here are the same (a test holds them together) so the program
behaves alike under the CLI, the Automation API and unit-test mocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pulumi
import pulumi.runtime.config

from versioned_lambda_api import args as component_args
from versioned_lambda_api import metrics, names, validation
from versioned_lambda_api.args import StageArgs

NAMESPACE = "event-logger"

# Optional keys whose default is derived from other values are declared with an empty default.
DEFAULTS: dict[str, str | int | bool] = {
    "stableVersion": "",
    "canaryAlias": "",
    "stageName": "",
    "memoryMb": component_args.DEFAULT_MEMORY_MB,
    "timeoutSeconds": component_args.DEFAULT_TIMEOUT_SECONDS,
    "logRetentionDays": component_args.DEFAULT_LOG_RETENTION_DAYS,
    "throttleRateLimit": component_args.DEFAULT_THROTTLE_RATE_LIMIT,
    "throttleBurstLimit": component_args.DEFAULT_THROTTLE_BURST_LIMIT,
    "apiKeyRequired": True,
    "canaryMode": component_args.DEFAULT_CANARY_MODE.value,
    "alarmErrorRatePercent": f"{metrics.DEFAULT_ERROR_RATE_PERCENT:g}",
    "alarmP99DurationMs": "",
    "eventShards": "",
    "eventRetentionDays": 365,
}
REQUIRED = ("alias", "canaryPercent")

# The worst write a shard takes: a 64 KiB event with an Idempotency-Key, written in a
# transaction with its ~1 KB idempotency record. Transactions cost 2 WCU per KB of each item,
# so 2 * (65 + 1) = 132 WCU, and one partition takes 1,000 WCU/s (DynamoDB's per-partition
# throughput limit): 7 such writes a second per shard.
WORST_CASE_WRITES_PER_SHARD = 7
# Every GET queries every shard and merges them, so shards are not free for readers.
EVENT_SHARDS_RANGE = (1, 32)
EVENT_RETENTION_DAYS_RANGE = (1, 3650)


def default_event_shards(throttle_rate_limit: float) -> int:
    """Enough write shards for the stage's steady request rate, every request a worst-case
    write, within :data:`EVENT_SHARDS_RANGE`."""
    needed = math.ceil(throttle_rate_limit / WORST_CASE_WRITES_PER_SHARD)
    return min(max(needed, EVENT_SHARDS_RANGE[0]), EVENT_SHARDS_RANGE[1])


@dataclass(frozen=True)
class StackSettings:
    """A stack's validated settings."""

    stage: StageArgs
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    api_key_required: bool
    event_shards: int
    """Write shards of each stage's events (``EVENT_SHARDS`` for the function)."""
    event_retention_days: int
    """Days an event is kept before DynamoDB's TTL deletes it (``EVENT_RETENTION_DAYS``)."""


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def given_config_keys() -> set[str]:
    """Every config key the program was given, in any namespace.

    The CLI's language host hands the program its config as JSON in ``PULUMI_CONFIG``; the
    Automation API and unit-test mocks (``pulumi.runtime.set_all_config``) fill the runtime's
    config store instead. ``pulumi.Config.get`` reads both, so both are listed.
    """
    return set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())


def unknown_key_problems(keys: Iterable[str]) -> list[str]:
    """One line per key of this program's namespace that ``Pulumi.yaml`` does not declare, with
    the declared key it most likely misspells. Other namespaces (``aws:region``) are not ours."""
    known = [*REQUIRED, *DEFAULTS]
    problems: list[str] = []
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE or name in known:
            continue
        suggestion = validation.closest(name, known)
        problems.append(
            f"{key} is not a setting of this program; did you mean {_key(suggestion)}?"
            if suggestion
            else f"{key} is not a setting of this program, which reads {', '.join(known)}"
        )
    return problems


def load_stack_settings(config: pulumi.Config, stack_name: str) -> StackSettings:
    """Read every key of the stack's config, failing on the first invalid one by its name.

    Keys of the namespace that the program does not read are refused first, all at once: a
    misspelt optional key would otherwise leave its default in place without a word.
    """
    problems = unknown_key_problems(given_config_keys())
    if problems:
        raise validation.ConfigError("\n".join(problems))

    def required(name: str) -> str:
        value = config.get(name)
        if value is None or value == "":
            raise validation.ConfigError(
                f"{_key(name)} is required: set it in Pulumi.{stack_name}.yaml "
                f"or with 'pulumi config set {name} <value>'"
            )
        return value

    def optional(name: str) -> str:
        value = config.get(name)
        return str(DEFAULTS[name]) if value is None else value

    def whole_number(name: str, lowest: int, highest: int) -> int:
        return validation.integer_in_range(optional(name), _key(name), lowest, highest)

    alias = validation.alias_name(required("alias"), _key("alias"))
    timeout_seconds = whole_number("timeoutSeconds", *component_args.TIMEOUT_SECONDS_RANGE)
    stage: StageArgs = {
        "name": validation.stage_name(
            optional("stageName") or stack_name,
            _key("stageName"),
            names.max_stage_name_length(),
        ),
        "alias": alias,
        "canary_alias": validation.canary_alias_for(
            alias, optional("canaryAlias") or None, _key("canaryAlias")
        ),
        "canary_percent": validation.canary_percent(
            required("canaryPercent"), _key("canaryPercent")
        ),
        "throttle_rate_limit": validation.positive_number(
            optional("throttleRateLimit"), _key("throttleRateLimit")
        ),
        "throttle_burst_limit": whole_number(
            "throttleBurstLimit", *component_args.THROTTLE_BURST_LIMIT_RANGE
        ),
        "canary_mode": component_args.canary_mode(optional("canaryMode"), _key("canaryMode")),
        "alarm_error_rate_percent": validation.alarm_error_rate_percent(
            optional("alarmErrorRatePercent"), _key("alarmErrorRatePercent")
        ),
    }
    stable = optional("stableVersion")
    if stable:
        stage["stable_version"] = validation.stable_version(stable, _key("stableVersion"))
    p99 = optional("alarmP99DurationMs")
    if p99:
        stage["alarm_p99_duration_ms"] = validation.alarm_p99_duration_ms(
            p99, _key("alarmP99DurationMs"), timeout_seconds
        )

    api_key_required = optional("apiKeyRequired").lower()
    if api_key_required not in ("true", "false"):
        raise validation.ConfigError(
            f"{_key('apiKeyRequired')} must be true or false, got {api_key_required!r}"
        )
    shards = optional("eventShards")
    return StackSettings(
        stage=stage,
        event_shards=(
            whole_number("eventShards", *EVENT_SHARDS_RANGE)
            if shards
            else default_event_shards(stage["throttle_rate_limit"])
        ),
        event_retention_days=whole_number("eventRetentionDays", *EVENT_RETENTION_DAYS_RANGE),
        memory_mb=whole_number("memoryMb", *component_args.MEMORY_MB_RANGE),
        timeout_seconds=timeout_seconds,
        log_retention_days=validation.one_of(
            whole_number("logRetentionDays", 1, component_args.LOG_RETENTION_DAYS[-1]),
            _key("logRetentionDays"),
            component_args.LOG_RETENTION_DAYS,
        ),
        api_key_required=api_key_required == "true",
    )
