"""The component's inputs (TypedDicts) and their validation into a plan of plain values.

The annotations are evaluated (no ``from __future__ import annotations``), use no unions but
``pulumi.Input[X]`` and ``X | None``, and enumerations are string Enums rather than Literals:
Pulumi's component analyzer reads these classes to publish the component to other languages,
and :func:`parse_args` walks the same annotations to check the shape of what a caller passed.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NotRequired, TypedDict

import pulumi

from versioned_lambda_api import archive, metrics, validation
from versioned_lambda_api.api_spec import Route, parse_route, unique_routes
from versioned_lambda_api.stage_variables import ALIAS_STAGE_VARIABLE

DEFAULT_RUNTIME = "python3.13"
DEFAULT_MEMORY_MB = 256
DEFAULT_TIMEOUT_SECONDS = 10
DEFAULT_LOG_RETENTION_DAYS = 30
DEFAULT_THROTTLE_RATE_LIMIT = 50
DEFAULT_THROTTLE_BURST_LIMIT = 100

MEMORY_MB_RANGE = (128, 10240)
# API Gateway gives up on an integration after 29 seconds, so a longer timeout only wastes money.
TIMEOUT_SECONDS_RANGE = (1, 29)
THROTTLE_BURST_LIMIT_RANGE = (1, 5000)


class CanaryMode(StrEnum):
    """Who splits off a stage's canary share of traffic."""

    STAGE = "stage"
    """API Gateway's canary settings send the share to the canary alias."""
    ALIAS = "alias"
    """The live alias, a Lambda weighted alias, sends the share to the newest version."""


DEFAULT_CANARY_MODE = CanaryMode.STAGE

# The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip


class RouteArgs(TypedDict):
    """One method on one resource path of the API."""

    path: str
    """Resource path such as ``events`` or ``events/{id}`` (leading ``/`` optional)."""
    method: str
    """HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS."""
    request_template: NotRequired[str]
    """``application/json`` request mapping template; must use ``$context.stage``.

    Defaults to a template passing stage, method, resource path, request id, canary flag,
    base64 body, query string and the ``Idempotency-Key`` header.
    """


class StageArgs(TypedDict):
    """One API stage and the pair of Lambda aliases it sends traffic to."""

    name: str
    """Stage name, part of the URL (``dev``, ``prod``)."""
    alias: str
    """The live alias this stage invokes."""
    canary_percent: NotRequired[float]
    """Share of the stage's requests (0 to 100, decimals allowed) sent to the canary alias.
    Defaults to 0: no canary."""
    stable_version: NotRequired[int]
    """Published version the live alias stays on. Unset: the live alias follows the newest
    version, so every deploy goes live."""
    canary_alias: NotRequired[str]
    """The alias on the newest version that canary requests invoke. Defaults to
    ``<alias>-canary``."""
    throttle_rate_limit: NotRequired[float]
    """Steady-state requests per second allowed on the stage. Defaults to 50."""
    throttle_burst_limit: NotRequired[int]
    """Burst of requests allowed on the stage. Defaults to 100."""
    canary_mode: NotRequired[CanaryMode]
    """Who splits off the canary share (a :class:`CanaryMode` or its value). ``"stage"``
    (default): API Gateway's canary settings
    send it to the canary alias. ``"alias"``: the live alias itself, a Lambda weighted alias
    sending it to the newest version beside ``stable_version``; the stage has no canary and
    invokes only the live alias, and the canary alias gets no traffic."""
    alarm_error_rate_percent: NotRequired[float]
    """Percent of failed invocations (above 0, at most 100) over which the live and the canary
    error-rate alarms go off; periods with fewer than 20 invocations never count. Defaults to
    1."""
    alarm_p99_duration_ms: NotRequired[float]
    """p99 invocation duration in ms, above 0 and below the function's timeout, over which the
    live and the canary duration alarms go off. Defaults to 80% of the timeout."""


class PolicyStatementArgs(TypedDict):
    """An extra permission for the function's role."""

    actions: list[str]
    """Exact IAM actions such as ``dynamodb:PutItem``; wildcards are refused."""
    resources: list[pulumi.Input[str]]
    """ARNs (or ``*``) the actions apply to; at least one."""


class VersionedLambdaApiArgs(TypedDict):
    """Inputs of :class:`versioned_lambda_api.VersionedLambdaApi`. Give the function's code as
    exactly one of ``code`` and ``code_path``."""

    code: NotRequired[pulumi.Archive]
    """The function's code as an archive, e.g. from
    :func:`versioned_lambda_api.function_code_archive`."""
    code_path: NotRequired[str]
    """The function's source folder, archived by the component: its ``.py`` files only, without
    tests, caches or hidden files, so that the same sources always ship the same bytes and a
    deploy publishes a version only when a source changed. A relative path is resolved against
    the program's folder (the working directory Pulumi runs the program and this component's
    provider in)."""
    handler: str
    """Handler entry point, ``module.function`` (at most 128 characters)."""
    routes: list[RouteArgs]
    """The API's routes; every route invokes the function."""
    stages: list[StageArgs]
    """The API's stages, each with its own live and canary alias."""
    runtime: NotRequired[str]
    """Lambda Python runtime, 3.12 or newer. Defaults to ``python3.13``."""
    memory_size: NotRequired[int]
    """Memory in MB (128 to 10240). Defaults to 256."""
    timeout: NotRequired[int]
    """Timeout in seconds (1 to 29, API Gateway's integration limit). Defaults to 10."""
    environment: NotRequired[Mapping[str, pulumi.Input[str]]]
    """Environment variables of the function. Names are a letter followed by letters, digits
    or ``_``; Lambda's reserved names (``AWS_REGION``, ``_HANDLER``, ...) are refused."""
    policy_statements: NotRequired[list[PolicyStatementArgs]]
    """Permissions the function needs beyond writing its logs and traces."""
    log_retention_days: NotRequired[int]
    """Days the function's log group keeps logs. Defaults to 30."""
    api_key_required: NotRequired[bool]
    """Whether every method requires an API key (one key and usage plan per stage are created).
    Defaults to true; set false only for an API meant to be open to the internet."""
    alarm_actions: NotRequired[list[pulumi.Input[str]]]
    """ARNs (such as SNS topics') notified when any of the component's alarms goes off.
    Defaults to none: the alarms change state and show on the dashboards only."""


@dataclass(frozen=True)
class StagePlan:
    """A stage's validated routing: which alias serves which share of its traffic."""

    name: str
    live_alias: str
    canary_alias: str
    canary_percent: float
    stable_version: int | None
    throttle_rate_limit: float
    throttle_burst_limit: int
    canary_mode: CanaryMode
    alarm_thresholds: metrics.AlarmThresholds

    @property
    def canary_enabled(self) -> bool:
        return self.canary_percent > 0

    @property
    def stage_canary(self) -> bool:
        """Whether API Gateway splits off the canary share (the stage has canary settings)."""
        return self.canary_enabled and self.canary_mode == CanaryMode.STAGE

    @property
    def canary_is_inert(self) -> bool:
        """A canary share with no pinned live version: live and canary traffic both run the
        newest version."""
        return self.canary_enabled and self.stable_version is None

    @property
    def variables(self) -> dict[str, str]:
        """Stage variables: the live alias, invoked by every request not sent to the canary."""
        return {ALIAS_STAGE_VARIABLE: self.live_alias}

    @property
    def canary_variable_overrides(self) -> dict[str, str]:
        """What canary requests see instead of :attr:`variables`."""
        return {ALIAS_STAGE_VARIABLE: self.canary_alias}

    def reachable_aliases(self) -> dict[str, str]:
        """Role (``live``/``canary``) to alias name, for every alias the stage can invoke."""
        reachable = {"live": self.live_alias}
        if self.stage_canary:
            reachable["canary"] = self.canary_alias
        return reachable

    def alias_weights(self, newest_version: str) -> dict[str, float]:
        """The live alias' additional version weights: the canary share for the newest version.

        Empty unless the alias splits: in ``alias`` mode with a share and a pinned version other
        than the newest (Lambda refuses a weight for the alias' own version).
        """
        if (
            self.canary_mode != CanaryMode.ALIAS
            or not self.canary_enabled
            or self.stable_version is None
            or newest_version == str(self.stable_version)
        ):
            return {}
        return {newest_version: self.canary_percent / 100}

    def traffic(self) -> tuple[metrics.Traffic, metrics.Traffic]:
        """The live and canary sides of the stage's traffic, as its alarms watch them."""
        return metrics.stage_traffic(
            self.live_alias,
            self.canary_alias,
            weighted=self.canary_mode == CanaryMode.ALIAS,
            stable_version=self.stable_version,
        )


@dataclass(frozen=True)
class ApiPlan:
    """Validated component inputs."""

    code: pulumi.Archive
    handler: str
    routes: list[Route]
    stages: list[StagePlan]
    runtime: str
    memory_size: int
    timeout: int
    log_retention_days: int
    api_key_required: bool
    policy_statements: list[PolicyStatementArgs]
    alarm_actions: list[pulumi.Input[str]]
    environment: dict[str, pulumi.Input[str]]
    """Empty when the function has no environment variables."""


def canary_mode(value: str, key: str) -> CanaryMode:
    """The canary mode ``value`` names (a member or its value)."""
    try:
        return CanaryMode(value)
    except ValueError:
        listed = " or ".join(repr(mode.value) for mode in CanaryMode)
        raise validation.ConfigError(f"{key} must be {listed}, got {value!r}") from None


def default_p99_duration_ms(timeout_seconds: int) -> float:
    return timeout_seconds * 1000 * metrics.DEFAULT_P99_SHARE_OF_TIMEOUT


def parse_stage(
    stage: StageArgs, key: str, timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
) -> StagePlan:
    """Validate one stage's args; ``key`` names it in errors. ``timeout_seconds`` is the
    function's, which bounds the duration alarm."""
    live_alias = validation.alias_name(stage["alias"], f"{key}.alias")
    stable = stage.get("stable_version")
    p99 = stage.get("alarm_p99_duration_ms")
    return StagePlan(
        name=validation.stage_name(stage["name"], f"{key}.name"),
        live_alias=live_alias,
        canary_alias=validation.canary_alias_for(
            live_alias, stage.get("canary_alias"), f"{key}.canary_alias"
        ),
        canary_percent=validation.canary_percent(
            stage.get("canary_percent", 0), f"{key}.canary_percent"
        ),
        stable_version=(
            None if stable is None else validation.stable_version(stable, f"{key}.stable_version")
        ),
        throttle_rate_limit=validation.positive_number(
            stage.get("throttle_rate_limit", DEFAULT_THROTTLE_RATE_LIMIT),
            f"{key}.throttle_rate_limit",
        ),
        throttle_burst_limit=validation.integer_in_range(
            stage.get("throttle_burst_limit", DEFAULT_THROTTLE_BURST_LIMIT),
            f"{key}.throttle_burst_limit",
            *THROTTLE_BURST_LIMIT_RANGE,
        ),
        canary_mode=canary_mode(
            stage.get("canary_mode", DEFAULT_CANARY_MODE), f"{key}.canary_mode"
        ),
        alarm_thresholds=metrics.AlarmThresholds(
            error_rate_percent=validation.alarm_error_rate_percent(
                stage.get("alarm_error_rate_percent", metrics.DEFAULT_ERROR_RATE_PERCENT),
                f"{key}.alarm_error_rate_percent",
            ),
            p99_duration_ms=(
                default_p99_duration_ms(timeout_seconds)
                if p99 is None
                else validation.alarm_p99_duration_ms(
                    p99, f"{key}.alarm_p99_duration_ms", timeout_seconds
                )
            ),
        ),
    )


def distinct_stages(stages: list[StagePlan]) -> list[StagePlan]:
    """Return ``stages`` if no two share a name or an alias (aliases are per function)."""
    if not stages:
        raise validation.ConfigError("stages must list at least one stage")
    names: set[str] = set()
    aliases: dict[str, str] = {}
    for stage in stages:
        if stage.name in names:
            raise validation.ConfigError(f"stages define stage {stage.name!r} more than once")
        names.add(stage.name)
        for alias in (stage.live_alias, stage.canary_alias):
            if alias in aliases:
                raise validation.ConfigError(
                    f"stages {aliases[alias]!r} and {stage.name!r} both use alias {alias!r}; "
                    "each stage needs its own aliases"
                )
            aliases[alias] = stage.name
    return stages


def alarm_actions(actions: list[pulumi.Input[str]], key: str) -> list[pulumi.Input[str]]:
    """Return ``actions`` if each is an ARN (an Output is taken on trust)."""
    for index, action in enumerate(actions):
        if isinstance(action, str) and not action.startswith("arn:"):
            raise validation.ConfigError(
                f"{key}[{index}] must be an ARN (such as an SNS topic's), got {action!r}"
            )
    return actions


def parse_args(args: VersionedLambdaApiArgs) -> ApiPlan:
    """Validate the component's args, naming the offending field in any error.

    First the shape: every missing required key, unknown key and value of the wrong type is
    reported at once, one per line, so that a caller fixes them in one go and no value parser
    below is handed something it cannot read. Then the values, stopping at the first the
    component or AWS would refuse.
    """
    problems = _code_source_problems(args) + validation.shape_problems(
        args, VersionedLambdaApiArgs, ""
    )
    if problems:
        raise validation.ConfigError("\n".join(problems))
    timeout = validation.integer_in_range(
        args.get("timeout", DEFAULT_TIMEOUT_SECONDS), "timeout", *TIMEOUT_SECONDS_RANGE
    )
    routes = unique_routes(
        [
            parse_route(
                route["path"], route["method"], route.get("request_template"), f"routes[{index}]"
            )
            for index, route in enumerate(args["routes"])
        ]
    )
    stages = distinct_stages(
        [
            parse_stage(stage, f"stages[{index}]", timeout)
            for index, stage in enumerate(args["stages"])
        ]
    )
    statements = args.get("policy_statements", [])
    for index, statement in enumerate(statements):
        key = f"policy_statements[{index}]"
        validation.iam_actions(statement["actions"], f"{key}.actions")
        validation.iam_resources(statement["resources"], f"{key}.resources")
    return ApiPlan(
        code=args["code"] if "code" in args else code_archive(args["code_path"]),
        handler=validation.handler(args["handler"], "handler"),
        routes=routes,
        stages=stages,
        runtime=validation.python_runtime(args.get("runtime", DEFAULT_RUNTIME), "runtime"),
        memory_size=validation.integer_in_range(
            args.get("memory_size", DEFAULT_MEMORY_MB), "memory_size", *MEMORY_MB_RANGE
        ),
        timeout=timeout,
        log_retention_days=validation.one_of(
            args.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS),
            "log_retention_days",
            LOG_RETENTION_DAYS,
        ),
        api_key_required=args.get("api_key_required", True),
        policy_statements=statements,
        alarm_actions=alarm_actions(args.get("alarm_actions", []), "alarm_actions"),
        environment=validation.environment_variables(args.get("environment", {}), "environment"),
    )


def _code_source_problems(args: object) -> list[str]:
    """What is wrong with where the code comes from: exactly one of the two keys gives it."""
    if not isinstance(args, Mapping):
        return []  # the shape check says what args must be
    given = [key for key in ("code", "code_path") if key in args]
    if len(given) == 1:
        return []
    what = "the function's code as an archive (code) or its source folder (code_path)"
    if not given:
        return [f"code or code_path is required: {what}"]
    return [f"code and code_path are both set; give exactly one: {what}"]


def code_archive(code_path: str) -> pulumi.Archive:
    """The deterministic archive of the sources in ``code_path`` (see
    :func:`versioned_lambda_api.archive.function_code_archive`)."""
    if not code_path.strip():
        raise validation.ConfigError(
            f"code_path must name the function's source folder, got {code_path!r}"
        )
    try:
        return archive.function_code_archive(Path(code_path))
    except FileNotFoundError as error:
        raise validation.ConfigError(
            f"code_path: {error} (a relative path is resolved against the working directory, "
            f"{Path.cwd()}, which Pulumi sets to the program's folder)"
        ) from None
