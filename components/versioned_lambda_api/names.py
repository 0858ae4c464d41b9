"""The names the component gives its children, and the AWS names built from them.

Logical names: every child is ``<component>-<role>``; a stage's children are
``<component>-<role>.<stage>``. Component and stage names are letters, digits, ``-`` and ``_``,
never ``.``, so the dot makes the name unambiguous: ``api`` with stage ``eu-prod`` and ``api-eu``
with stage ``prod`` give ``api-live-alias.eu-prod`` and ``api-eu-live-alias.prod``, where a
plain ``-`` would have given both the same URN.

Physical names: pulumi-aws autonames most children ``<logical name>-<7 hex>``; the invoke
permissions' statement ids and the dashboards are named here. Each must fit its type's rule
(:mod:`versioned_lambda_api.aws_names`), which is what bounds the component and stage names:
the limits are derived from every physical name built from them, not written down separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from versioned_lambda_api import aws_names, metrics
from versioned_lambda_api.validation import ConfigError

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
REST_API = "aws:apigateway/restApi:RestApi"
PERMISSION = "aws:lambda/permission:Permission"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
API_KEY = "aws:apigateway/apiKey:ApiKey"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"

# A REST API id, as API Gateway assigns it: ten lower-case letters and digits.
_REST_API_ID_EXAMPLE = "a1b2c3d4e5"
# What an autonamed name ends with, as long as the real suffix.
_AUTONAME_EXAMPLE = "0" * (aws_names.AUTONAME_SUFFIX_LENGTH - 1)


def child(component: str, role: str) -> str:
    """The logical name of one of the component's own children, e.g. ``orders-function``."""
    return f"{component}-{role}"


def stage_child(component: str, role: str, stage: str) -> str:
    """The logical name of one of a stage's children, e.g. ``orders-live-alias.prod``."""
    return f"{component}-{role}.{stage}"


def statement_id(stage: str, role: str) -> str:
    """The id of the statement letting ``stage`` invoke its ``live`` or ``canary`` alias.

    Unique within the alias' resource policy: an alias belongs to one stage, and a stage has
    one statement per alias.
    """
    return f"apigateway-{stage}-{role}"


def dashboard_name(component: str, stage: str, rest_api_id: str) -> str:
    """The stage's dashboard. Dashboards are per account, so the name carries the REST API's
    id: two stacks (two developers' ``dev``) never share or delete each other's dashboard."""
    return f"{component}-{stage}-{rest_api_id}"


@dataclass(frozen=True)
class PhysicalName:
    """A physical name built from the component name and (for a stage's children) a stage."""

    what: str
    """What carries the name, for messages: ``the function``, ``stage X's dashboard``."""
    type_token: str
    build: Callable[[str, str], str]
    """(component name, stage name) to the physical name, with an example autoname suffix."""


def _autonamed(logical: Callable[[str, str], str]) -> Callable[[str, str], str]:
    return lambda component, stage: aws_names.autoname(logical(component, stage), _AUTONAME_EXAMPLE)


def _own(role: str) -> Callable[[str, str], str]:
    return _autonamed(lambda component, _stage: child(component, role))


def _stage(role: str) -> Callable[[str, str], str]:
    return _autonamed(lambda component, stage: stage_child(component, role, stage))


def _longest_alarm_role() -> str:
    traffic = metrics.stage_traffic("live", "canary", weighted=False, stable_version=None)
    thresholds = metrics.AlarmThresholds(error_rate_percent=1, p99_duration_ms=1)
    return max((alarm_role(d) for d in metrics.alarm_definitions(traffic, thresholds)), key=len)


def alarm_role(definition: metrics.AlarmDefinition) -> str:
    """The role part of an alarm's logical name, e.g. ``canary-error-rate-alarm``."""
    return f"{definition.suffix}-alarm"


PHYSICAL_NAMES: tuple[PhysicalName, ...] = (
    PhysicalName("the function", FUNCTION, _own("function")),
    PhysicalName("the function's role", ROLE, _own("role")),
    PhysicalName("the function's role policy", ROLE_POLICY, _own("policy")),
    PhysicalName("the function's log group", LOG_GROUP, _own("logs")),
    PhysicalName("the REST API", REST_API, _own("api")),
    PhysicalName(
        "an invoke permission's statement id",
        PERMISSION,
        lambda _component, stage: statement_id(stage, "canary"),
    ),
    PhysicalName("an alarm", ALARM, _stage(_longest_alarm_role())),
    PhysicalName("the API key", API_KEY, _stage("api-key")),
    PhysicalName("the usage plan", USAGE_PLAN, _stage("usage-plan")),
    PhysicalName(
        "the dashboard",
        DASHBOARD,
        lambda component, stage: dashboard_name(component, stage, _REST_API_ID_EXAMPLE),
    ),
)
"""Every physical name the component builds from its name or a stage's, at its longest."""

# The shortest stage name API Gateway accepts, for checking the component name on its own.
_SHORTEST_STAGE = "x"
_SHORTEST_COMPONENT = "x"


def _limit(fits: Callable[[int], bool]) -> int:
    """The longest length (up to 1,024) for which ``fits`` holds; 0 if none does."""
    return max((length for length in range(1, 1025) if fits(length)), default=0)


@cache
def max_component_name_length() -> int:
    """The longest component name every physical name built from it can carry."""
    return _limit(lambda length: _first_refused("a" * length, _SHORTEST_STAGE) is None)


@cache
def max_stage_name_length(component: str = _SHORTEST_COMPONENT) -> int:
    """The longest stage name every physical name built from it (and from ``component``, by
    default the shortest) can carry."""
    return _limit(lambda length: _first_refused(component, "a" * length) is None)


def check_names(component: str, stages: list[str], stages_key: str = "stages") -> None:
    """Refuse a component name or stage name that would make a physical name AWS refuses,
    naming the name that breaks and what it must fit."""
    if not component:
        raise ConfigError("the component name must not be empty")
    refused = _first_refused(component, _SHORTEST_STAGE)
    if refused is not None:
        what, problem = refused
        raise ConfigError(
            f"the component name {component!r} ({len(component)} characters) cannot name "
            f"{what}: {problem}. Component names are 1 to {max_component_name_length()} "
            "letters, digits, '-' or '_'"
        )
    for index, stage in enumerate(stages):
        refused = _first_refused(component, stage)
        if refused is not None:
            what, problem = refused
            raise ConfigError(
                f"{stages_key}[{index}].name {stage!r} ({len(stage)} characters) cannot name "
                f"{what} of component {component!r}: {problem}. With this component name, "
                f"stage names are at most {max_stage_name_length(component)} characters"
            )


def _first_refused(component: str, stage: str) -> tuple[str, str] | None:
    """What the first physical name AWS would refuse names, and why."""
    for name in PHYSICAL_NAMES:
        problem = aws_names.name_problem(name.type_token, name.build(component, stage))
        if problem is not None:
            return name.what, problem
    return None
