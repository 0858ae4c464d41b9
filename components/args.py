"""The component's inputs (TypedDicts) and their validation into a plan of plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pulumi

from components import validation
from components.api_spec import ALIAS_STAGE_VARIABLE, Route, parse_route, unique_routes

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


class PolicyStatementArgs(TypedDict):
    """An extra permission for the function's role."""

    actions: list[str]
    """Exact IAM actions such as ``dynamodb:PutItem``; wildcards are refused."""
    resources: list[pulumi.Input[str]]
    """ARNs the actions apply to."""


class VersionedLambdaApiArgs(TypedDict):
    """Inputs of :class:`components.VersionedLambdaApi`."""

    code: pulumi.Archive
    """The function's code, e.g. from :func:`components.function_code_archive`."""
    handler: str
    """Handler entry point, ``module.function``."""
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
    """Environment variables of the function."""
    policy_statements: NotRequired[list[PolicyStatementArgs]]
    """Permissions the function needs beyond writing its logs and traces."""
    log_retention_days: NotRequired[int]
    """Days the function's log group keeps logs. Defaults to 30."""
    api_key_required: NotRequired[bool]
    """Whether every method requires an API key (one key and usage plan per stage are created).
    Defaults to true; set false only for an API meant to be open to the internet."""


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

    @property
    def canary_enabled(self) -> bool:
        return self.canary_percent > 0

    @property
    def canary_is_inert(self) -> bool:
        """A canary share with no pinned live version: both aliases serve the same version."""
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
        if self.canary_enabled:
            reachable["canary"] = self.canary_alias
        return reachable


@dataclass(frozen=True)
class ApiPlan:
    """Validated component inputs."""

    routes: list[Route]
    stages: list[StagePlan]
    runtime: str
    memory_size: int
    timeout: int
    log_retention_days: int
    api_key_required: bool
    policy_statements: list[PolicyStatementArgs]


def parse_stage(stage: StageArgs, key: str) -> StagePlan:
    """Validate one stage's args; ``key`` names it in errors."""
    live_alias = validation.alias_name(stage["alias"], f"{key}.alias")
    stable = stage.get("stable_version")
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


def parse_args(args: VersionedLambdaApiArgs) -> ApiPlan:
    """Validate the component's args, naming the offending field in any error."""
    routes = unique_routes(
        [
            parse_route(
                route["path"], route["method"], route.get("request_template"), f"routes[{index}]"
            )
            for index, route in enumerate(args["routes"])
        ]
    )
    stages = distinct_stages(
        [parse_stage(stage, f"stages[{index}]") for index, stage in enumerate(args["stages"])]
    )
    statements = args.get("policy_statements", [])
    for index, statement in enumerate(statements):
        validation.iam_actions(statement["actions"], f"policy_statements[{index}].actions")
    return ApiPlan(
        routes=routes,
        stages=stages,
        runtime=validation.python_runtime(args.get("runtime", DEFAULT_RUNTIME), "runtime"),
        memory_size=validation.integer_in_range(
            args.get("memory_size", DEFAULT_MEMORY_MB), "memory_size", *MEMORY_MB_RANGE
        ),
        timeout=validation.integer_in_range(
            args.get("timeout", DEFAULT_TIMEOUT_SECONDS), "timeout", *TIMEOUT_SECONDS_RANGE
        ),
        log_retention_days=validation.one_of(
            args.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS),
            "log_retention_days",
            LOG_RETENTION_DAYS,
        ),
        api_key_required=validation.boolean(args.get("api_key_required", True), "api_key_required"),
        policy_statements=statements,
    )
