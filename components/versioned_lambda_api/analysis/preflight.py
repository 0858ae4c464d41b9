"""Offline preflight checks: what in a resource graph would fail or be unsafe once deployed.

Each rule is a small function from the graph to findings; :func:`preflight` runs them all. The
rules read the graph (and :mod:`versioned_lambda_api.analysis.routing`'s view of it, which
reads a REST API from its OpenAPI ``body`` and from Method/Integration resources alike) the way
AWS would evaluate the deployed resources:

* Lambda resource policies are per qualifier: a permission on the unqualified function does not
  let API Gateway invoke an alias or a version, and a permission on an alias does not cover the
  unqualified function or the version behind it.
* Lambda turns a permission's ``sourceArn`` into an ``ArnLike`` condition on ``aws:SourceArn``,
  and API Gateway invokes with ``<execution ARN>/<stage>/<METHOD>/<resource path>``: each of the
  six colon-separated ARN parts is matched on its own, case-sensitively, ``*`` matching any run
  of characters (``/`` included) and ``?`` exactly one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis import routing
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.routing import Endpoint, Invocation
from versioned_lambda_api.analysis.samples import render_request
from versioned_lambda_api.aws_names import NAME_RULES, autoname, autoname_problem, name_problem

Severity = Literal["error", "warning"]

PERMISSION = "aws:lambda/permission:Permission"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
USAGE_PLAN_KEY = "aws:apigateway/usagePlanKey:UsagePlanKey"
API_KEY = "aws:apigateway/apiKey:ApiKey"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE = "aws:iam/role:Role"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

API_GATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
LATEST = "$LATEST"
INVALID_PERMISSIONS = "500 'Invalid permissions on Lambda function'"

LAMBDA_POLICY_LIMIT = 20 * 1024
"""Bytes a Lambda function's, alias' or version's resource policy may take: "Function
resource-based policy: 20 KB", not adjustable (Lambda quotas,
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); AddPermission then
fails with PolicyLengthExceededException ("The final policy size is bigger than the limit",
https://repost.aws/knowledge-center/lambda-resource-based-policy-size-error)."""

# AddPermission accepts exactly these action forms: lambda:<Action>, lambda:* or *. IAM action
# names are case-insensitive, and both wildcards include lambda:InvokeFunction.
_INVOKE_ACTIONS = frozenset({"lambda:invokefunction", "lambda:*", "*"})
_PATH_PARAMETER = re.compile(r"\{[^{}/]+\}")
_WILDCARDS = re.compile(r"[*?]")
# Two stage names no real stage is likely to share a rendering with: a template whose output is
# the same for a stage and for the probe does not pass the stage to the function.
_PROBE_STAGES = ("preflight-probe-a", "preflight-probe-b")


@dataclass(frozen=True)
class Finding:
    """One problem in the graph, with the resource to change and how."""

    rule: str
    """Rule id, e.g. ``PF001``."""
    name: str
    """Rule name, e.g. ``missing-invoke-permission``."""
    severity: Severity
    resource: str
    """:attr:`ResourceRecord.label` of the resource to fix."""
    message: str
    """What is wrong, concretely."""
    fix: str
    """How to fix it, concretely."""


@dataclass(frozen=True)
class Rule:
    """A check preflight runs, for docs and ``--help``."""

    id: str
    name: str
    severity: Severity
    summary: str


RULES: tuple[Rule, ...] = (
    Rule(
        "PF001",
        "missing-invoke-permission",
        "error",
        "Every qualifier a stage's live or canary traffic invokes has a Lambda permission for "
        "API Gateway whose source ARN covers each method and path.",
    ),
    Rule(
        "PF002",
        "undefined-stage-variable",
        "error",
        "Every stage variable an integration URI names is defined for the live traffic and for "
        "the canary.",
    ),
    Rule(
        "PF003",
        "alias-missing",
        "error",
        "Every invoked qualifier is a version number or an alias of that function.",
    ),
    Rule(
        "PF004",
        "canary-equals-live",
        "error",
        "A stage's canary invokes another qualifier than its live traffic.",
    ),
    Rule(
        "PF005",
        "canary-percent-range",
        "error",
        "canarySettings.percentTraffic is a number from 0 to 100.",
    ),
    Rule(
        "PF006",
        "alias-on-latest",
        "error",
        "No alias or invocation uses $LATEST instead of a published version.",
    ),
    Rule(
        "PF007",
        "deployment-without-triggers",
        "warning",
        "Every API deployment has triggers, so that changed routes are redeployed.",
    ),
    Rule(
        "PF008",
        "integration-response-without-method-response",
        "error",
        "Every integration response has a method response with its status code.",
    ),
    Rule(
        "PF009",
        "open-method",
        "error",
        "Every method needs authorization or an API key (unless open methods are allowed).",
    ),
    Rule(
        "PF010",
        "template-invalid",
        "error",
        "Every Lambda integration maps requests with templates whose rendered payload carries "
        "$context.stage and is valid JSON for each stage, live and canary; no raw body reaches "
        "the function.",
    ),
    Rule(
        "PF011",
        "iam-wildcard-action",
        "error",
        "No IAM policy allows wildcard actions or uses NotAction.",
    ),
    Rule(
        "PF012",
        "log-group-without-retention",
        "warning",
        "Every log group has a retention period.",
    ),
    Rule(
        "PF013",
        "permission-without-source-arn",
        "warning",
        "Every Lambda permission for API Gateway names the source ARN it allows.",
    ),
    Rule(
        "PF014",
        "resource-policy-too-large",
        "error",
        "The resource policy Lambda builds from the permissions of each function, alias or "
        "version stays within its 20 KB limit.",
    ),
    Rule(
        "PF015",
        "statement-id-invalid",
        "error",
        "Every Lambda permission's statement id is 1-100 letters, digits, '-' or '_', and "
        "unique within its function and qualifier.",
    ),
    Rule(
        "PF016",
        "physical-name-invalid",
        "error",
        "Every resource's physical name, given or generated, fits its type's length and "
        "characters.",
    ),
    Rule(
        "PF017",
        "route-tree-refused",
        "error",
        "No REST API has two path parameters under one parent or a resource below a greedy "
        "path parameter.",
    ),
    Rule(
        "PF018",
        "api-key-unusable",
        "error",
        "A stage whose methods require an API key is in a usage plan that has an enabled key.",
    ),
    Rule(
        "PF019",
        "lambda-integration-not-post",
        "error",
        "Every Lambda integration calls Lambda with POST.",
    ),
    Rule(
        "PF020",
        "no-default-integration-response",
        "error",
        "Every non-proxy integration has a default integration response.",
    ),
    Rule(
        "PF021",
        "alias-weights-invalid",
        "error",
        "A weighted alias sends a share from 0 to 1 to one other published version.",
    ),
    Rule(
        "PF022",
        "canary-deployment-foreign",
        "error",
        "A stage's canary runs a deployment of the stage's own API.",
    ),
    Rule(
        "PF023",
        "source-arn-wildcard",
        "warning",
        "No permission for API Gateway wildcards the account or the API id of its source ARN.",
    ),
    Rule(
        "PF024",
        "admin-policy-on-function-role",
        "error",
        "No function's role has an administrator or full-access AWS managed policy attached.",
    ),
    Rule(
        "PF025",
        "throttling-zero",
        "error",
        "No stage, method or usage plan throttles with a rate or burst limit of 0.",
    ),
    Rule(
        "PF026",
        "openapi-body-invalid",
        "error",
        "Every REST API's OpenAPI body is a JSON object with paths.",
    ),
)

_RULES_BY_ID = {rule.id: rule for rule in RULES}


def _finding(rule_id: str, resource: ResourceRecord, message: str, fix: str) -> Finding:
    rule = _RULES_BY_ID[rule_id]
    return Finding(rule.id, rule.name, rule.severity, resource.label, message, fix)


def preflight(graph: ResourceGraph, open_methods_allowed: bool = False) -> list[Finding]:
    """Every finding of every rule, errors first, then by rule, resource and message."""
    found = routing.endpoints(graph)
    invoked = _invocations(graph, found)
    findings: list[Finding] = [
        *missing_invoke_permission(graph, invoked),
        *undefined_stage_variable(graph, invoked),
        *alias_missing(graph, invoked),
        *canary_equals_live(graph, invoked),
        *canary_percent_range(graph),
        *alias_on_latest(graph, found, invoked),
        *deployment_without_triggers(graph),
        *integration_response_without_method_response(found),
        *open_method(found, open_methods_allowed),
        *template_invalid(found, invoked),
        *iam_wildcard_action(graph),
        *log_group_without_retention(graph),
        *permission_without_source_arn(graph),
        *resource_policy_too_large(graph),
        *statement_id_invalid(graph),
        *physical_name_invalid(graph),
        *route_tree_refused(graph, found),
        *api_key_unusable(graph, found),
        *lambda_integration_not_post(found),
        *no_default_integration_response(found),
        *alias_weights_invalid(graph),
        *canary_deployment_foreign(graph),
        *source_arn_wildcard(graph),
        *admin_policy_on_function_role(graph),
        *throttling_zero(graph),
        *openapi_body_invalid(graph),
    ]
    return sorted(findings, key=lambda f: (f.severity != "error", f.rule, f.resource, f.message))


# --- ARN matching ------------------------------------------------------------------------------


def arn_like(pattern: str, arn: str) -> bool:
    """IAM ``ArnLike``: each of the six colon-separated parts matched on its own, ``*`` any run
    of characters, ``?`` one character; the last part (the resource) may contain ``/`` and
    further colons."""
    return _arn_parts_match(pattern, [list(part) for part in arn.split(":", 5)])


def source_arn_covers(
    source_arn: str, execution_arn: str, stage: str, http_method: str, path: str
) -> bool:
    """Whether a permission's ``sourceArn`` matches every request API Gateway makes for
    ``http_method /path`` on ``stage``: a path parameter (``{id}``, ``{proxy+}``) can take any
    value, so only a ``*`` in the pattern can match it."""
    parts: list[list[str]] = [list(part) for part in execution_arn.split(":", 5)]
    if len(parts) != 6:
        return False
    resource = parts[5] + list(f"/{stage}/{http_method}/")
    for index, segment in enumerate(path.split("/")):
        if index:
            resource.append("/")
        # A token longer than one character stands for a value no literal or '?' can match.
        resource += [segment] if _PATH_PARAMETER.fullmatch(segment) else list(segment)
    parts[5] = resource
    return _arn_parts_match(source_arn, parts)


def _arn_parts_match(pattern: str, parts: Sequence[Sequence[str]]) -> bool:
    patterns = pattern.split(":", 5)
    if len(patterns) != 6 or len(parts) != 6:
        return False
    return all(_glob(p, tokens) for p, tokens in zip(patterns, parts, strict=True))


def _glob(pattern: str, tokens: Sequence[str]) -> bool:
    """Match ``pattern`` against tokens: single characters, or longer tokens for values that
    only ``*`` can absorb."""
    positions = {0}
    for char in pattern:
        if char == "*":
            positions = set(range(min(positions), len(tokens) + 1))
        elif char == "?":
            positions = {p + 1 for p in positions if p < len(tokens) and len(tokens[p]) == 1}
        else:
            positions = {p + 1 for p in positions if p < len(tokens) and tokens[p] == char}
        if not positions:
            return False
    return len(tokens) in positions


# --- Shared helpers ----------------------------------------------------------------------------


def _invocations(graph: ResourceGraph, found: Sequence[Endpoint]) -> list[Invocation]:
    """``routing.invocations``, with any stage whose canary percent is not a number read as
    having no canary (PF005 reports it) instead of failing."""
    broken = [s for s in graph.of_type(routing.STAGE) if not _float_like(_canary_percent(s))]
    if not broken:
        return routing.invocations(graph, found)
    readable = ResourceGraph(dict(graph.resources))
    for stage in broken:
        inputs = {key: value for key, value in stage.inputs.items() if key != "canarySettings"}
        readable.resources[stage.name] = dataclasses.replace(stage, inputs=inputs)
    return routing.invocations(readable, found)


def _canary_percent(stage: ResourceRecord) -> Any:
    canary = stage.inputs.get("canarySettings")
    return canary.get("percentTraffic") if isinstance(canary, dict) else None


def _float_like(value: Any) -> bool:
    try:
        float(value or 0)
    except (TypeError, ValueError):
        return False
    return True


def _number(value: object) -> float | None:
    """A JSON number as a float; ``None`` for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _share_text(invocation: Invocation) -> str:
    role = "canary" if invocation.role == "canary" else "live traffic"
    return f"stage {invocation.stage_name}'s {role} ({invocation.share:g}% of requests)"


def _route(endpoint: Endpoint) -> str:
    return f"{endpoint.http_method} /{endpoint.path}"


def _routes(endpoints: Iterable[Endpoint]) -> str:
    return ", ".join(_route(e) for e in sorted(endpoints, key=lambda e: (e.path, e.http_method)))


def _declared_in(endpoint: Endpoint) -> str:
    """Where the method is written, for fixes."""
    return "its x-amazon-apigateway-integration" if endpoint.in_openapi else "the Integration"


def _function_name(function_arn: str) -> str:
    return function_arn.rpartition(":")[2]


def _target_text(function_arn: str, qualifier: str | None) -> str:
    if qualifier is None:
        return f"the unqualified function {_function_name(function_arn)}"
    if qualifier.isdigit():
        return f"version {qualifier}"
    return f"alias {qualifier}"


def _execution_arn(api: ResourceRecord, function_arn: str) -> str:
    known = api.outputs.get("executionArn")
    if isinstance(known, str) and known:
        return known
    # Same partition, region and account as the function the API invokes.
    _, partition, _, region, account, _ = (function_arn.split(":", 5) + [""] * 6)[:6]
    return f"arn:{partition}:execute-api:{region}:{account}:{api.id}"


def _by_target(invocation: Invocation) -> tuple[str, str, str | None, str | None]:
    """Stage, share, function and qualifier: what one finding about invocations covers."""
    return (
        invocation.stage.name,
        invocation.role,
        invocation.endpoint.function_arn,
        invocation.qualifier,
    )


def _group(invocations: Iterable[Invocation]) -> list[list[Invocation]]:
    """Invocations grouped by :func:`_by_target`, each group in path and method order (the
    order in which a program registers resources can change from run to run)."""
    groups: dict[tuple[str, str, str | None, str | None], list[Invocation]] = {}
    for invocation in invocations:
        groups.setdefault(_by_target(invocation), []).append(invocation)
    return [sorted(group, key=_route_order) for group in groups.values()]


def _route_order(invocation: Invocation) -> tuple[str, str]:
    return invocation.endpoint.path, invocation.endpoint.http_method


def _uses_stage_variable(endpoint: Endpoint) -> bool:
    return "${stageVariables." in (endpoint.qualifier or "")


# --- PF001 missing-invoke-permission ----------------------------------------------------------


@dataclass(frozen=True)
class _Grant:
    """What one Lambda permission lets API Gateway invoke."""

    record: ResourceRecord
    function: str
    """The ``function`` input without its qualifier suffix: name, partial or full ARN."""
    qualifier: str | None
    source_arn: str | None
    source_account: str | None


def _grants(graph: ResourceGraph) -> list[_Grant]:
    grants = []
    for record in graph.of_type(PERMISSION):
        inputs = record.inputs
        if str(inputs.get("action", "")).lower() not in _INVOKE_ACTIONS:
            continue
        if inputs.get("principal") != API_GATEWAY_PRINCIPAL:
            continue
        function, suffix = _split_function(str(inputs.get("function") or ""))
        explicit = inputs.get("qualifier") or None
        if explicit is not None and suffix is not None and explicit != suffix:
            continue  # Lambda refuses a function name and a qualifier that disagree
        grants.append(
            _Grant(
                record,
                function,
                explicit if explicit is not None else suffix,
                inputs.get("sourceArn") or None,
                inputs.get("sourceAccount") or None,
            )
        )
    return grants


def _split_function(function: str) -> tuple[str, str | None]:
    """``name[:qualifier]``, ``account:function:name[:qualifier]`` or the full ARN, split into
    the function and its qualifier suffix."""
    parts = function.split(":")
    unqualified_length = 7 if function.startswith("arn:") else 3 if len(parts) >= 3 else 1
    if len(parts) > unqualified_length:
        return ":".join(parts[:unqualified_length]), ":".join(parts[unqualified_length:])
    return function, None


def _names_function(function: str, function_arn: str) -> bool:
    if function.startswith("arn:"):
        return function == function_arn
    arn_parts = function_arn.split(":")
    parts = function.split(":")
    if len(parts) == 3:  # account:function:name
        return parts == arn_parts[4:7]
    return function == _function_name(function_arn)


class _GrantIndex:
    """The grants by qualifier, those with a literal source ARN also by that ARN: a program
    with one permission per route and stage has hundreds, and each request needs only the few
    that can match it."""

    def __init__(self, grants: Iterable[_Grant]) -> None:
        self.literal: dict[tuple[str | None, str], list[_Grant]] = {}
        self.patterns: dict[str | None, list[tuple[_Grant, str]]] = {}
        for grant in grants:
            source_arn = grant.source_arn
            if source_arn is not None and not _WILDCARDS.search(source_arn):
                self.literal.setdefault((grant.qualifier, source_arn), []).append(grant)
            else:
                # What any ARN the pattern matches starts with: its text up to the first
                # wildcard (each ARN part is matched on its own, so the parts before are equal).
                prefix = _WILDCARDS.split(source_arn, maxsplit=1)[0] if source_arn else ""
                self.patterns.setdefault(grant.qualifier, []).append((grant, prefix))

    def allows(self, invocation: Invocation, execution_arn: str, http_method: str) -> bool:
        endpoint = invocation.endpoint
        function_arn = endpoint.function_arn or ""
        account = execution_arn.split(":")[4] if execution_arn.count(":") >= 5 else ""
        request_arn = f"{execution_arn}/{invocation.stage_name}/{http_method}/{endpoint.path}"

        def applies(grant: _Grant) -> bool:
            return _names_function(grant.function, function_arn) and (
                grant.source_account is None or grant.source_account == account
            )

        # A path parameter takes values no literal ARN can name; only a pattern covers it.
        if not _PATH_PARAMETER.search(endpoint.path) and any(
            applies(grant) for grant in self.literal.get((invocation.qualifier, request_arn), [])
        ):
            return True
        return any(
            request_arn.startswith(prefix)
            and applies(grant)
            and (
                grant.source_arn is None
                or source_arn_covers(
                    grant.source_arn,
                    execution_arn,
                    invocation.stage_name,
                    http_method,
                    endpoint.path,
                )
            )
            for grant, prefix in self.patterns.get(invocation.qualifier, [])
        )


def missing_invoke_permission(
    graph: ResourceGraph, invoked: Sequence[Invocation]
) -> Iterator[Finding]:
    """PF001: API Gateway may invoke every qualifier each share of each stage reaches, for
    every method a client can call (each of them for ``ANY``)."""
    index = _GrantIndex(_grants(graph))
    uncovered = []
    for invocation in invoked:
        function_arn = invocation.endpoint.function_arn
        if function_arn is None or invocation.undefined_variables:  # PF002
            continue
        if invocation.qualifier == LATEST:  # PF006: $LATEST takes no resource policy
            continue
        execution_arn = _execution_arn(invocation.endpoint.api, function_arn)
        if not all(
            index.allows(invocation, execution_arn, method)
            for method in invocation.endpoint.request_methods
        ):
            uncovered.append(invocation)
    for group in _group(uncovered):
        first = group[0]
        function_arn = first.endpoint.function_arn or ""
        alias = (
            routing.find_alias(graph, function_arn, first.qualifier) if first.qualifier else None
        )
        resource = alias or routing.find_function(graph, function_arn) or first.stage
        qualifier = f"qualifier {first.qualifier}" if first.qualifier else "no qualifier"
        source_arn = f"{_execution_arn(first.endpoint.api, function_arn)}/{first.stage_name}/*/*"
        yield _finding(
            "PF001",
            resource,
            f"{_share_text(first)} invokes {_target_text(function_arn, first.qualifier)}, but "
            f"API Gateway may not invoke it for {_routes(i.endpoint for i in group)}: those "
            f"requests fail with {INVALID_PERMISSIONS}",
            f"add an aws.lambda.Permission with action lambda:InvokeFunction, principal "
            f"{API_GATEWAY_PRINCIPAL}, function {_function_name(function_arn)}, {qualifier} "
            f"and sourceArn {source_arn} (every method and path of the stage)",
        )


# --- PF002 undefined-stage-variable -----------------------------------------------------------


def undefined_stage_variable(
    graph: ResourceGraph, invoked: Sequence[Invocation]
) -> Iterator[Finding]:
    """PF002: each share defines every stage variable its integration URIs name."""
    missing = [(i, name) for i in invoked for name in i.undefined_variables]
    groups: dict[tuple[str, str, str], list[Invocation]] = {}
    for invocation, name in missing:
        groups.setdefault((invocation.stage.name, invocation.role, name), []).append(invocation)
    for (_, role, name), members in groups.items():
        first = members[0]
        routes = _routes(i.endpoint for i in members)
        if role == "live":
            where = "the stage variables do not define it"
            fix = f"set variables.{name} on stage {first.stage_name}"
        else:
            where = "neither the stage variables nor the canary overrides define it"
            fix = (
                f"set canarySettings.stageVariableOverrides.{name} (or variables.{name}) "
                f"on stage {first.stage_name}"
            )
        yield _finding(
            "PF002",
            first.stage,
            f"{_share_text(first)} calls {routes} through stage variable {name}, but {where}: "
            f"API Gateway cannot resolve the integration URI and those requests fail",
            fix,
        )


# --- PF003 alias-missing ----------------------------------------------------------------------


def alias_missing(graph: ResourceGraph, invoked: Sequence[Invocation]) -> Iterator[Finding]:
    """PF003: every qualifier invoked is a version number or an alias in the graph."""
    aliases = {
        (str(a.inputs.get("functionName")), str(a.inputs.get("name")))
        for a in graph.of_type(routing.ALIAS)
    }
    missing = [
        i
        for i in invoked
        if i.endpoint.function_arn is not None
        and not i.undefined_variables
        and i.qualifier is not None
        and i.qualifier != LATEST
        and not i.qualifier.isdigit()
        and (_function_name(i.endpoint.function_arn), i.qualifier) not in aliases
        and (i.endpoint.function_arn, i.qualifier) not in aliases
    ]
    for group in _group(missing):
        first = group[0]
        function_arn = first.endpoint.function_arn or ""
        function = _function_name(function_arn)
        existing = sorted(name for owner, name in aliases if owner in (function, function_arn))
        via_variable = _uses_stage_variable(first.endpoint)
        resource = first.stage if via_variable else first.endpoint.integration
        where = "the stage variable" if via_variable else "the integration URI"
        yield _finding(
            "PF003",
            resource,
            f"{_share_text(first)} invokes alias {first.qualifier} of {function} for "
            f"{_routes(i.endpoint for i in group)}, but the function has no such alias or "
            f"version: those requests fail",
            f"create an aws.lambda.Alias named {first.qualifier} for {function}, or change "
            f"{where} to an existing alias"
            + (f" ({', '.join(existing)})" if existing else "")
            + " or version number",
        )


# --- PF004 canary-equals-live -----------------------------------------------------------------


def canary_equals_live(graph: ResourceGraph, invoked: Sequence[Invocation]) -> Iterator[Finding]:
    """PF004: a stage's canary invokes something else than its live traffic."""
    live = {
        (i.stage.name, i.endpoint.api.name, i.endpoint.path, i.endpoint.http_method): i
        for i in invoked
        if i.role == "live" and not i.undefined_variables
    }
    same = [
        canary
        for canary in invoked
        if canary.role == "canary"
        and not canary.undefined_variables
        and (
            match := live.get(
                (
                    canary.stage.name,
                    canary.endpoint.api.name,
                    canary.endpoint.path,
                    canary.endpoint.http_method,
                )
            )
        )
        is not None
        and match.qualifier == canary.qualifier
    ]
    for group in _group(same):
        first = group[0]
        target = _target_text(first.endpoint.function_arn or "", first.qualifier)
        variables = sorted(
            {
                name
                for i in group
                for name in re.findall(r"\$\{stageVariables\.(\w+)\}", i.endpoint.qualifier or "")
            }
        )
        fix = (
            "set canarySettings.stageVariableOverrides."
            + " and .".join(variables)
            + " to the canary alias"
            if variables
            else "make the integration URI name the alias through a stage variable "
            "(${stageVariables.lambdaAlias}) and override it for the canary"
        )
        yield _finding(
            "PF004",
            first.stage,
            f"{_share_text(first)} invokes {target} for {_routes(i.endpoint for i in group)}, "
            f"the same as its live traffic: the canary release tests nothing new",
            f"{fix} on stage {first.stage_name}",
        )


# --- PF005 canary-percent-range ---------------------------------------------------------------


def canary_percent_range(graph: ResourceGraph) -> Iterator[Finding]:
    """PF005: canarySettings.percentTraffic is a number from 0 to 100."""
    for stage in graph.of_type(routing.STAGE):
        if not isinstance(stage.inputs.get("canarySettings"), dict):
            continue
        percent = _canary_percent(stage)
        if percent is None:
            continue  # API Gateway's default: 0.0
        number = _number(percent)
        if number is not None and math.isfinite(number) and 0 <= number <= 100:
            continue
        yield _finding(
            "PF005",
            stage,
            f"stage {stage.inputs.get('stageName', stage.name)}'s "
            f"canarySettings.percentTraffic is {percent!r}: API Gateway takes the percentage "
            f"of requests sent to the canary, a number from 0.0 to 100.0",
            "set percentTraffic to a number from 0 to 100, e.g. 10 for a tenth of requests",
        )


# --- PF006 alias-on-latest --------------------------------------------------------------------


def alias_on_latest(
    graph: ResourceGraph, found: Sequence[Endpoint], invoked: Sequence[Invocation]
) -> Iterator[Finding]:
    """PF006: no alias serves $LATEST and no integration invokes $LATEST."""
    for alias in graph.of_type(routing.ALIAS):
        if alias.inputs.get("functionVersion") != LATEST:
            continue
        yield _finding(
            "PF006",
            alias,
            f"alias {alias.inputs.get('name')} of {alias.inputs.get('functionName')} points at "
            f"$LATEST: it serves whatever code was deployed last, unpublished, so a release "
            f"can neither be pinned nor rolled back",
            "publish versions (publish=True) and point the alias at a version number "
            "(function.version, or the pinned stable version)",
        )
    fix = (
        "invoke an alias or a version number instead: Lambda cannot attach a resource policy "
        "to $LATEST, and $LATEST changes with every deploy"
    )
    for endpoint in found:
        if endpoint.qualifier == LATEST:
            yield _finding(
                "PF006",
                endpoint.integration,
                f"the integration URI of {_route(endpoint)} invokes "
                f"{_function_name(endpoint.function_arn or '')}:$LATEST",
                fix,
            )
    via_variables = [
        i for i in invoked if i.qualifier == LATEST and _uses_stage_variable(i.endpoint)
    ]
    for group in _group(via_variables):
        first = group[0]
        yield _finding(
            "PF006",
            first.stage,
            f"{_share_text(first)} invokes $LATEST through its stage variables for "
            f"{_routes(i.endpoint for i in group)}",
            fix,
        )


# --- PF007 deployment-without-triggers --------------------------------------------------------


def deployment_without_triggers(graph: ResourceGraph) -> Iterator[Finding]:
    """PF007: every deployment redeploys when what it snapshots changes."""
    for deployment in graph.of_type(DEPLOYMENT):
        if deployment.inputs.get("triggers"):
            continue
        yield _finding(
            "PF007",
            deployment,
            f"deployment {deployment.name} has no triggers: a deployment is a snapshot, so "
            f"changed methods, integrations or templates will not reach the stages",
            "set triggers={'redeployment': <sha256 of the API's OpenAPI body>} (or of the "
            "routes, integrations and templates); dependsOn only orders creation and never "
            "redeploys",
        )


# --- PF008 integration-response-without-method-response ---------------------------------------


def integration_response_without_method_response(found: Sequence[Endpoint]) -> Iterator[Finding]:
    """PF008: every integration response maps to a method response with its status code."""
    for endpoint in found:
        for response in endpoint.responses:
            status = response.status_code
            if status in endpoint.method_responses:
                continue
            route = _route(endpoint)
            fix = (
                f"add a response {status} to the {route} operation's responses"
                if endpoint.in_openapi
                else f"add an aws.apigateway.MethodResponse with statusCode {status} on {route} "
                f"and make the integration response depend on it"
            )
            yield _finding(
                "PF008",
                response.record,
                f"integration response {status} of {route} has no method response {status}: "
                f"API Gateway maps an integration response onto an existing method response, "
                f"and answers 500 'Output mapping refers to an invalid method response' "
                f"otherwise",
                fix,
            )


# --- PF009 open-method ------------------------------------------------------------------------


def open_method(found: Sequence[Endpoint], open_methods_allowed: bool = False) -> Iterator[Finding]:
    """PF009: every method needs authorization or an API key."""
    if open_methods_allowed:
        return
    groups: dict[str, list[Endpoint]] = {}
    for endpoint in found:
        if endpoint.authorization == "NONE" and not endpoint.api_key_required:
            groups.setdefault(endpoint.method.name, []).append(endpoint)
    for members in groups.values():
        first = members[0]
        document = routing.openapi_document(first.api) if first.in_openapi else None
        ignored = (
            " (API Gateway ignores the document-level security: it must be on each operation)"
            if document is not None and document.get("security")
            else ""
        )
        fix = (
            "add security [{api_key: []}] to each operation, with an apiKey scheme named "
            "x-api-key in the header (and a usage plan and key)"
            if first.in_openapi
            else "set apiKeyRequired=True (with a usage plan and key)"
        )
        yield _finding(
            "PF009",
            first.method,
            f"{_routes(members)} take{'s' if len(members) == 1 else ''} no authorization and "
            f"no API key{ignored}: anyone who finds the URL can call "
            f"{'it' if len(members) == 1 else 'them'}",
            f"{fix}, or authorization AWS_IAM, CUSTOM or COGNITO_USER_POOLS; if the API is "
            f"meant to be public, allow open methods explicitly",
        )


# --- PF010 template-invalid -------------------------------------------------------------------


def template_invalid(found: Sequence[Endpoint], invoked: Sequence[Invocation]) -> Iterator[Finding]:
    """PF010: a Lambda integration's request templates render, for every stage and share, to
    JSON that carries the stage; without templates the raw body would reach the function."""
    shares: dict[int, set[tuple[str, bool]]] = {}
    for invocation in invoked:
        shares.setdefault(id(invocation.endpoint), set()).add(
            (invocation.stage_name, invocation.role == "canary")
        )
    for endpoint in found:
        if endpoint.function_arn is None or endpoint.integration_type == "AWS_PROXY":
            continue  # a proxy integration sends the whole request; templates do not apply
        # By stage, live before canary; an API no stage serves is rendered for a probe stage.
        yield from _template_findings(
            endpoint, sorted(shares.get(id(endpoint), ())) or [(_PROBE_STAGES[0], False)]
        )


def _template_findings(endpoint: Endpoint, shares: list[tuple[str, bool]]) -> Iterator[Finding]:
    route = _route(endpoint)
    templates = endpoint.request_templates
    passthrough = endpoint.passthrough_behavior
    if not templates:
        if passthrough == "NEVER":
            message = (
                f"{route} has no request template and passthroughBehavior NEVER: API Gateway "
                f"rejects its requests with 415 Unsupported Media Type"
            )
        else:
            message = (
                f"{route} has no request template and passthroughBehavior {passthrough}: the "
                f"raw request body reaches the function, without $context.stage"
            )
        yield _finding(
            "PF010",
            endpoint.integration,
            message,
            f"set requestTemplates {{'application/json': <template passing $context.stage>}} "
            f"and passthroughBehavior NEVER in {_declared_in(endpoint)}",
        )
        return
    if passthrough == "WHEN_NO_MATCH":
        yield _finding(
            "PF010",
            endpoint.integration,
            f"{route} has passthroughBehavior WHEN_NO_MATCH: a request whose Content-Type "
            f"matches none of its templates ({', '.join(sorted(templates))}) reaches the "
            f"function raw, without $context.stage",
            f"set passthroughBehavior NEVER in {_declared_in(endpoint)}, so that unmapped "
            f"content types get 415",
        )
    for content_type, template in sorted(templates.items()):
        yield from _rendering_findings(endpoint, content_type, template, shares)


def _rendering_findings(
    endpoint: Endpoint, content_type: str, template: str, shares: list[tuple[str, bool]]
) -> Iterator[Finding]:
    """Render the template for each share, and again as if the stage had another name: when
    both payloads are the same, the stage never reaches the function (it is only in a comment,
    a dead branch, or not there at all)."""
    route = _route(endpoint)
    failed: list[str] = []
    first_error = ""
    stageless: list[str] = []
    for stage, is_canary in shares:
        share = f"{stage} {'canary' if is_canary else 'live'}"
        rendered = render_request(template, stage, endpoint.http_method, endpoint.path, is_canary)
        if rendered.error is not None:
            # The error's position moves with the stage name's length: the first one says it.
            first_error = first_error or rendered.error
            failed.append(share)
            continue
        probe = _PROBE_STAGES[1] if stage == _PROBE_STAGES[0] else _PROBE_STAGES[0]
        other = render_request(template, probe, endpoint.http_method, endpoint.path, is_canary)
        if other.error is None and other.payload == rendered.payload:
            stageless.append(share)
    if stageless:
        yield _finding(
            "PF010",
            endpoint.integration,
            f"the {content_type} request template of {route} does not pass $context.stage to "
            f"the function for {', '.join(stageless)}: its payload is the same whatever the "
            f"stage (a reference in a comment or a branch not taken does not count)",
            'add "stage": "$context.stage" to the JSON the template renders',
        )
    if failed:
        yield _finding(
            "PF010",
            endpoint.integration,
            f"the {content_type} request template of {route} does not render to valid JSON "
            f"for a sample request to {', '.join(failed)}: {first_error}",
            "make the template render a JSON object for every request; preview it with "
            "python -m versioned_lambda_api.analysis.plan --stack <stack>",
        )


# --- PF011 iam-wildcard-action ----------------------------------------------------------------


def _policy_documents(graph: ResourceGraph) -> Iterator[tuple[ResourceRecord, str, Any]]:
    """(record, policy name, document) for every IAM policy document in the graph."""
    for record in graph.of_type(ROLE_POLICY) + graph.of_type(IAM_POLICY):
        yield record, str(record.inputs.get("name") or record.name), record.inputs.get("policy")
    for role in graph.of_type(IAM_ROLE):
        for index, inline in enumerate(role.inputs.get("inlinePolicies") or []):
            if isinstance(inline, dict):
                name = str(inline.get("name") or f"inline policy #{index + 1}")
                yield role, name, inline.get("policy")


def _statements(document: Any) -> list[Any]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement")
    return statements if isinstance(statements, list) else [statements]


def iam_wildcard_action(graph: ResourceGraph) -> Iterator[Finding]:
    """PF011: no Allow statement grants wildcard actions or uses NotAction."""
    for record, policy, document in _policy_documents(graph):
        for index, statement in enumerate(_statements(document)):
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            label = f"statement {statement.get('Sid') or f'#{index + 1}'} of policy {policy}"
            if "NotAction" in statement:
                yield _finding(
                    "PF011",
                    record,
                    f"{label} allows NotAction: it grants every action except those listed, "
                    f"including actions AWS adds later",
                    "replace NotAction with an Action list of the exact actions needed",
                )
                continue
            actions = statement.get("Action")
            listed = [actions] if isinstance(actions, str) else actions or []
            wild = [str(a) for a in listed if "*" in str(a) or "?" in str(a)]
            if wild:
                yield _finding(
                    "PF011",
                    record,
                    f"{label} allows {', '.join(wild)}: a wildcard grants every matching "
                    f"action, including ones AWS adds later",
                    "list the exact actions the function calls, e.g. dynamodb:PutItem",
                )


# --- PF012 log-group-without-retention --------------------------------------------------------


def log_group_without_retention(graph: ResourceGraph) -> Iterator[Finding]:
    """PF012: every log group expires its events."""
    for log_group in graph.of_type(LOG_GROUP):
        if log_group.inputs.get("retentionInDays"):
            continue
        yield _finding(
            "PF012",
            log_group,
            f"log group {log_group.outputs.get('name') or log_group.name} has no "
            f"retentionInDays (or 0): its events never expire and storage grows without bound",
            "set retentionInDays to one of CloudWatch's periods, e.g. 30",
        )


# --- PF013 permission-without-source-arn ------------------------------------------------------


def permission_without_source_arn(graph: ResourceGraph) -> Iterator[Finding]:
    """PF013: every permission for API Gateway names the API, stage, method and path."""
    for permission in graph.of_type(PERMISSION):
        inputs = permission.inputs
        if inputs.get("principal") != API_GATEWAY_PRINCIPAL or inputs.get("sourceArn"):
            continue
        qualifier = inputs.get("qualifier")
        target = f"{inputs.get('function')}" + (f" (qualifier {qualifier})" if qualifier else "")
        yield _finding(
            "PF013",
            permission,
            f"permission {permission.name} lets {API_GATEWAY_PRINCIPAL} invoke {target} with "
            f"no sourceArn: any API Gateway API, in any account, may invoke it (confused "
            f"deputy)",
            "set sourceArn to the API's execution ARN followed by /<stage>/*/* (or "
            "/<stage>/<METHOD>/<path>), e.g. <executionArn>/prod/*/*",
        )


# --- PF014 resource-policy-too-large ----------------------------------------------------------


def _qualified_function(permission: ResourceRecord) -> tuple[str, str | None]:
    """The function name a permission is on, and its qualifier (explicit or as a suffix)."""
    function, suffix = _split_function(str(permission.inputs.get("function") or ""))
    return _function_name(function), permission.inputs.get("qualifier") or suffix


def _statement_id(permission: ResourceRecord) -> tuple[str, bool]:
    """The permission's statement id, and whether the program set it (else pulumi-aws
    generates ``<logical name>-<7 hex>``)."""
    given = permission.inputs.get("statementId")
    if given:
        return str(given), True
    recorded = permission.outputs.get("statementId")
    if recorded:
        return str(recorded), False
    return autoname(permission.name, "0" * 7), False


def _policy_statement(permission: ResourceRecord, function_arn: str) -> dict[str, Any]:
    """The statement Lambda's AddPermission adds to the resource policy, as GetPolicy shows
    it: the principal as a service or an account root, the resource the qualified ARN, and
    the source conditions."""
    inputs = permission.inputs
    _, qualifier = _qualified_function(permission)
    principal = str(inputs.get("principal") or "")
    partition = function_arn.split(":")[1] if function_arn.count(":") >= 1 else "aws"
    if principal.isdigit():
        principal_block: Any = {"AWS": f"arn:{partition}:iam::{principal}:root"}
    elif principal == "*":
        principal_block = "*"
    elif "." in principal:
        principal_block = {"Service": principal}
    else:
        principal_block = {"AWS": principal}
    condition: dict[str, dict[str, str]] = {}
    if inputs.get("sourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = str(inputs["sourceAccount"])
    if inputs.get("principalOrgId"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = str(
            inputs["principalOrgId"]
        )
    if inputs.get("sourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": str(inputs["sourceArn"])}
    statement: dict[str, Any] = {
        "Sid": _statement_id(permission)[0],
        "Effect": "Allow",
        "Principal": principal_block,
        "Action": str(inputs.get("action") or ""),
        "Resource": f"{function_arn}:{qualifier}" if qualifier else function_arn,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def _function_arns(graph: ResourceGraph) -> dict[str, str]:
    """Function name to ARN, for the functions in the graph."""
    return {
        str(f.outputs.get("name") or _function_name(str(f.outputs["arn"]))): str(f.outputs["arn"])
        for f in graph.of_type(routing.FUNCTION)
        if f.outputs.get("arn")
    }


def _arn_for(function: str, known: dict[str, str]) -> str:
    """The ARN of the function a permission names; one outside the graph gets an ARN of the
    same length as a real one would have."""
    if function.startswith("arn:"):
        return function
    name = function.rpartition(":")[2]
    if name in known:
        return known[name]
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def resource_policy_too_large(graph: ResourceGraph) -> Iterator[Finding]:
    """PF014: the resource policy of each function, alias and version fits Lambda's limit."""
    known = _function_arns(graph)
    policies: dict[tuple[str, str | None], list[ResourceRecord]] = {}
    for permission in graph.of_type(PERMISSION):
        policies.setdefault(_qualified_function(permission), []).append(permission)
    for (function, qualifier), permissions in policies.items():
        function_arn = _arn_for(
            _split_function(str(permissions[0].inputs.get("function") or ""))[0], known
        )
        policy = {
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": [_policy_statement(p, function_arn) for p in permissions],
        }
        size = len(json.dumps(policy, separators=(",", ":")).encode())
        if size <= LAMBDA_POLICY_LIMIT:
            continue
        target = f"{function}:{qualifier}" if qualifier else function
        alias = routing.find_alias(graph, function_arn, qualifier) if qualifier else None
        yield _finding(
            "PF014",
            alias or routing.find_function(graph, function_arn) or permissions[0],
            f"the resource policy of {target} would take {size} bytes with its "
            f"{len(permissions)} statements; Lambda allows {LAMBDA_POLICY_LIMIT} and fails "
            f"the deploy midway with PolicyLengthExceededException",
            "grant API Gateway once per stage and alias with sourceArn "
            "<execution ARN>/<stage>/*/* instead of once per route",
        )


# --- PF015 statement-id-invalid ---------------------------------------------------------------


def statement_id_invalid(graph: ResourceGraph) -> Iterator[Finding]:
    """PF015: statement ids are valid, and unique within one function and qualifier (the
    policy they are statements of)."""
    seen: dict[tuple[str, str | None, str], ResourceRecord] = {}
    for permission in graph.of_type(PERMISSION):
        statement_id, given = _statement_id(permission)
        problem = (
            name_problem(PERMISSION, statement_id)
            if given
            else autoname_problem(PERMISSION, permission.name)
        )
        if problem is not None:
            yield _finding(
                "PF015",
                permission,
                f"Lambda would refuse the statement id of permission {permission.name}: {problem}",
                "set statementId to at most 100 letters, digits, '-' or '_', e.g. "
                "apigateway-<stage>-<alias>"
                if given
                else "set statementId explicitly, or shorten the permission's resource name "
                "(pulumi-aws names the statement <resource name>-<7 hex>)",
            )
            continue
        function, qualifier = _qualified_function(permission)
        other = seen.setdefault((function, qualifier, statement_id), permission)
        if other is not permission:
            target = f"{function}:{qualifier}" if qualifier else function
            yield _finding(
                "PF015",
                permission,
                f"permissions {other.name} and {permission.name} both add statement "
                f"{statement_id} to the policy of {target}: Lambda refuses the second with "
                f"ResourceConflictException",
                "give each permission on one function and qualifier its own statementId",
            )


# --- PF016 physical-name-invalid --------------------------------------------------------------


def physical_name_invalid(graph: ResourceGraph) -> Iterator[Finding]:
    """PF016: every physical name fits its type's rule, whether the program gave it or
    pulumi-aws generates it (statement ids are PF015's)."""
    for record in graph.resources.values():
        rule = NAME_RULES.get(record.type)
        if rule is None or record.type == PERMISSION:
            continue
        given = record.inputs.get(rule.property)
        if given:
            problem = name_problem(record.type, str(given))
        elif rule.autonamed:
            problem = autoname_problem(record.type, record.name)
        else:
            recorded = record.outputs.get(rule.property)
            problem = name_problem(record.type, str(recorded)) if recorded else None
        if problem is None:
            continue
        yield _finding(
            "PF016",
            record,
            f"AWS or pulumi-aws would refuse the name of {record.name}: {problem}",
            f"shorten or change {rule.property} (or the resource name it is generated from) "
            f"to at most {rule.max_length} characters: {rule.charset}",
        )


# --- PF017 route-tree-refused -----------------------------------------------------------------


def route_tree_refused(graph: ResourceGraph, found: Sequence[Endpoint]) -> Iterator[Finding]:
    """PF017: API Gateway can build each API's resource tree (see
    :func:`api_spec.route_tree_problems`)."""
    paths: dict[str, set[str]] = {}
    apis = {api.id: api for api in graph.of_type(routing.REST_API)}
    for endpoint in found:
        paths.setdefault(endpoint.api.id, set()).add(endpoint.path)
    for resource in graph.of_type(routing.API_RESOURCE):
        path = str(resource.outputs.get("path", "")).strip("/")
        paths.setdefault(str(resource.inputs.get("restApi")), set()).add(path)
    for api_id, api_paths in paths.items():
        api = apis.get(api_id)
        if api is None:
            continue
        for problem in api_spec.route_tree_problems(api_paths):
            yield _finding(
                "PF017",
                api,
                problem,
                "rename the path parameters so that siblings share one name, or move the "
                "routes; API Gateway refuses the whole API otherwise",
            )


# --- PF018 api-key-unusable -------------------------------------------------------------------


def api_key_unusable(graph: ResourceGraph, found: Sequence[Endpoint]) -> Iterator[Finding]:
    """PF018: a key can reach each stage whose methods require one: a usage plan lists the
    stage, an API key is linked to that plan, and the key is enabled. API Gateway answers
    403 Forbidden to every request otherwise."""
    keyed: dict[str, list[Endpoint]] = {}
    for endpoint in found:
        if endpoint.api_key_required:
            keyed.setdefault(endpoint.api.id, []).append(endpoint)
    plan_keys: dict[str, list[str]] = {}
    for link in graph.of_type(USAGE_PLAN_KEY):
        if str(link.inputs.get("keyType", "API_KEY")) == "API_KEY":
            plan_keys.setdefault(str(link.inputs.get("usagePlanId")), []).append(
                str(link.inputs.get("keyId"))
            )
    keys = {key.id: key for key in graph.of_type(API_KEY)}
    for stage in graph.of_type(routing.STAGE):
        api_id = str(stage.inputs.get("restApi"))
        requiring = keyed.get(api_id)
        if not requiring:
            continue
        name = str(stage.inputs.get("stageName"))
        routes = _routes(requiring)
        plans = [
            plan
            for plan in graph.of_type(USAGE_PLAN)
            if any(
                isinstance(s, dict) and s.get("apiId") == api_id and s.get("stage") == name
                for s in plan.inputs.get("apiStages") or []
            )
        ]
        if not plans:
            yield _finding(
                "PF018",
                stage,
                f"{routes} on stage {name} require an API key, but no usage plan lists the "
                f"stage: API Gateway refuses every request with 403 Forbidden",
                f"add an aws.apigateway.UsagePlan with apiStages [{{apiId, stage: {name}}}], "
                f"an ApiKey and a UsagePlanKey linking them",
            )
            continue
        linked = [keys[k] for plan in plans for k in plan_keys.get(plan.id, []) if k in keys]
        if not linked:
            yield _finding(
                "PF018",
                plans[0],
                f"{routes} on stage {name} require an API key, but no API key is linked to "
                f"the usage plans listing the stage: API Gateway refuses every request with "
                f"403 Forbidden",
                "add an aws.apigateway.ApiKey and a UsagePlanKey (keyType API_KEY) linking it "
                "to the usage plan",
            )
        elif all(key.inputs.get("enabled") is False for key in linked):
            yield _finding(
                "PF018",
                linked[0],
                f"{routes} on stage {name} require an API key, but every key of its usage "
                f"plans is disabled: API Gateway refuses every request with 403 Forbidden",
                "set enabled=True on the API key",
            )


# --- PF019 lambda-integration-not-post --------------------------------------------------------


def lambda_integration_not_post(found: Sequence[Endpoint]) -> Iterator[Finding]:
    """PF019: API Gateway calls Lambda's Invoke API, ``POST .../invocations``, with the
    integration's own method: "For Lambda function invocations, the value must be POST"
    (x-amazon-apigateway-integration, httpMethod)."""
    for endpoint in found:
        if endpoint.function_arn is None or endpoint.integration_type not in ("AWS", "AWS_PROXY"):
            continue
        if endpoint.integration_http_method == "POST":
            continue
        used = endpoint.integration_http_method or "no method"
        field = "httpMethod" if endpoint.in_openapi else "integrationHttpMethod"
        yield _finding(
            "PF019",
            endpoint.integration,
            f"the Lambda integration of {_route(endpoint)} calls Lambda with {used}: Lambda's "
            f"Invoke API takes only POST, so every request fails with 500",
            f"set {field} POST in {_declared_in(endpoint)}, whatever the client's method",
        )


# --- PF020 no-default-integration-response ----------------------------------------------------


def no_default_integration_response(found: Sequence[Endpoint]) -> Iterator[Finding]:
    """PF020: a non-proxy integration has a response without a selection pattern, the one a
    successful result (with no error message to match) maps to."""
    for endpoint in found:
        if endpoint.integration_type not in ("AWS", "HTTP", "MOCK"):
            continue  # proxy integrations pass the response through; no integration at all
        if any(response.selection_pattern is None for response in endpoint.responses):
            continue
        where = (
            "a response keyed 'default' in its x-amazon-apigateway-integration responses"
            if endpoint.in_openapi
            else "an aws.apigateway.IntegrationResponse without selectionPattern"
        )
        yield _finding(
            "PF020",
            endpoint.integration,
            f"{_route(endpoint)} has no default integration response: a successful call "
            f"matches no selection pattern, and API Gateway answers 500 ('No match for output "
            f"mapping and no default output mapping specified')",
            f"add {where}, with statusCode 200",
        )


# --- PF021 alias-weights-invalid --------------------------------------------------------------


def alias_weights_invalid(graph: ResourceGraph) -> Iterator[Finding]:
    """PF021: routingConfig.additionalVersionWeights names one published version other than
    the alias' own, with a weight from 0.0 to 1.0 (botocore's Lambda model: AdditionalVersion
    pattern [0-9]+, Weight a double from 0.0 to 1.0; an alias points to at most two versions,
    https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html)."""
    for alias in graph.of_type(routing.ALIAS):
        config = alias.inputs.get("routingConfig")
        weights = config.get("additionalVersionWeights") if isinstance(config, dict) else None
        if not isinstance(weights, dict) or not weights:
            continue
        name = alias.inputs.get("name")
        own = str(alias.inputs.get("functionVersion"))
        problems = []
        if len(weights) > 1:
            problems.append(
                f"names {len(weights)} extra versions ({', '.join(sorted(map(str, weights)))}); "
                f"an alias routes to at most one besides its own"
            )
        for version, weight in sorted(weights.items(), key=lambda item: str(item[0])):
            number = _number(weight)
            if number is None or not math.isfinite(number) or not 0 <= number <= 1:
                problems.append(
                    f"gives version {version} the weight {weight!r}; a weight is a fraction "
                    f"from 0.0 to 1.0 (0.1 sends a tenth of invocations)"
                )
            if str(version) == own:
                problems.append(
                    f"gives a weight to version {version}, which the alias serves already"
                )
            elif not str(version).isdigit():
                problems.append(f"gives a weight to {version!r}, which is no version number")
        for problem in problems:
            yield _finding(
                "PF021",
                alias,
                f"alias {name}'s routingConfig {problem}: Lambda refuses the alias",
                "set additionalVersionWeights to {<the other published version>: <fraction "
                "from 0 to 1>}",
            )


# --- PF022 canary-deployment-foreign ----------------------------------------------------------


def canary_deployment_foreign(graph: ResourceGraph) -> Iterator[Finding]:
    """PF022: a stage's canary runs a deployment of the same API."""
    deployments = {d.id: d for d in graph.of_type(DEPLOYMENT)}
    for stage in graph.of_type(routing.STAGE):
        canary = stage.inputs.get("canarySettings")
        if not isinstance(canary, dict) or not canary.get("deploymentId"):
            continue
        deployment_id = str(canary["deploymentId"])
        deployment = deployments.get(deployment_id)
        api_id = stage.inputs.get("restApi")
        if deployment is not None and deployment.inputs.get("restApi") == api_id:
            continue
        whose = (
            f"deployment {deployment.name} of another API"
            if deployment is not None
            else f"{deployment_id!r}, no deployment in the program"
        )
        yield _finding(
            "PF022",
            stage,
            f"stage {stage.inputs.get('stageName')}'s canarySettings.deploymentId is "
            f"{whose}: API Gateway refuses a canary that is not a deployment of the stage's "
            f"API {api_id}",
            "set canarySettings.deploymentId to the id of an aws.apigateway.Deployment of "
            "the stage's own REST API",
        )


# --- PF023 source-arn-wildcard ----------------------------------------------------------------


def source_arn_wildcard(graph: ResourceGraph) -> Iterator[Finding]:
    """PF023: a permission's source ARN pins the account and the API: with either wildcarded,
    other APIs (in any account, or in this one) may invoke the function."""
    for permission in graph.of_type(PERMISSION):
        inputs = permission.inputs
        source_arn = inputs.get("sourceArn")
        if inputs.get("principal") != API_GATEWAY_PRINCIPAL or not source_arn:
            continue
        parts = str(source_arn).split(":", 5)
        if len(parts) != 6:
            continue
        account, api_id = parts[4], parts[5].split("/", 1)[0]
        wild = []
        if (not account or _WILDCARDS.search(account)) and not inputs.get("sourceAccount"):
            wild.append(f"the account ({account or 'empty'}): APIs in any AWS account")
        if not api_id or _WILDCARDS.search(api_id):
            wild.append(f"the API id ({api_id or 'empty'}): any API in the account")
        if not wild:
            continue
        yield _finding(
            "PF023",
            permission,
            f"permission {permission.name}'s sourceArn {source_arn} wildcards "
            f"{' and '.join(wild)} may invoke the function",
            "use the API's execution ARN (restApi.executionArn) followed by /<stage>/*/*",
        )


# --- PF024 admin-policy-on-function-role ------------------------------------------------------

_ADMIN_POLICY = re.compile(
    r"arn:[\w-]+:iam::aws:policy/(?:[\w+=,.@/-]*/)?"
    r"(?:AdministratorAccess|PowerUserAccess|IAMFullAccess|[\w+=,.@-]*FullAccess)"
)


def admin_policy_on_function_role(graph: ResourceGraph) -> Iterator[Finding]:
    """PF024: a function's role has no AWS managed policy granting administrator, power user
    or a service's full access: the function needs a few actions on its own resources."""
    function_roles = {str(f.inputs.get("role")) for f in graph.of_type(routing.FUNCTION)}
    for role in graph.of_type(IAM_ROLE):
        identities = {
            str(value)
            for value in (role.outputs.get("arn"), role.outputs.get("name"), role.id)
            if value
        }
        if not identities & function_roles:
            continue
        attached = [
            (role, str(arn))
            for arn in role.inputs.get("managedPolicyArns") or []
            if _ADMIN_POLICY.fullmatch(str(arn))
        ]
        attached += [
            (attachment, str(attachment.inputs.get("policyArn")))
            for attachment in graph.of_type(ROLE_POLICY_ATTACHMENT)
            if str(attachment.inputs.get("role")) in identities
            and _ADMIN_POLICY.fullmatch(str(attachment.inputs.get("policyArn")))
        ]
        for record, policy_arn in attached:
            yield _finding(
                "PF024",
                record,
                f"role {role.name}, which a Lambda function runs as, has {policy_arn} "
                f"attached: any bug or injected code in the function can do what that policy "
                f"allows",
                "detach it and grant the exact actions on the function's own resources in a "
                "role policy",
            )


# --- PF025 throttling-zero --------------------------------------------------------------------


def _zero_limits(settings: object, rate: str, burst: str) -> list[str]:
    if not isinstance(settings, dict):
        return []
    return [key for key in (rate, burst) if _number(settings.get(key)) == 0]


def throttling_zero(graph: ResourceGraph) -> Iterator[Finding]:
    """PF025: no throttle of 0. API Gateway throttles with a token bucket whose size is the
    burst and whose refill is the rate (api-gateway-request-throttling): a burst of 0 holds no
    token and a rate of 0 never adds one, so every request gets 429 Too Many Requests."""
    fix = "set the limit above 0, or leave it unset for the account's default"
    for settings in graph.of_type(METHOD_SETTINGS):
        zero = _zero_limits(
            settings.inputs.get("settings"), "throttlingRateLimit", "throttlingBurstLimit"
        )
        if zero:
            yield _finding(
                "PF025",
                settings,
                f"{' and '.join(zero)} of {settings.inputs.get('methodPath')} on stage "
                f"{settings.inputs.get('stageName')} is 0: API Gateway answers every request "
                f"429 Too Many Requests",
                fix,
            )
    for plan in graph.of_type(USAGE_PLAN):
        zero = [
            f"throttleSettings.{key}"
            for key in _zero_limits(plan.inputs.get("throttleSettings"), "rateLimit", "burstLimit")
        ]
        for api_stage in plan.inputs.get("apiStages") or []:
            for throttle in (
                (api_stage.get("throttles") or []) if isinstance(api_stage, dict) else []
            ):
                zero += [
                    f"{key} of {throttle.get('path')} on stage {api_stage.get('stage')}"
                    for key in _zero_limits(throttle, "rateLimit", "burstLimit")
                ]
        if zero:
            yield _finding(
                "PF025",
                plan,
                f"usage plan {plan.name}'s {', '.join(zero)} is 0: API Gateway answers every "
                f"request with its keys 429 Too Many Requests",
                fix,
            )


# --- PF026 openapi-body-invalid ---------------------------------------------------------------


def openapi_body_invalid(graph: ResourceGraph) -> Iterator[Finding]:
    """PF026: API Gateway can import each REST API's body."""
    for api in graph.of_type(routing.REST_API):
        problem = routing.openapi_problem(api)
        if problem is None:
            continue
        yield _finding(
            "PF026",
            api,
            f"the OpenAPI body of REST API {api.name} {problem}: PutRestApi refuses it, and "
            f"preflight cannot check its routes",
            "give body the OpenAPI document as JSON text: an object with openapi, info and paths",
        )
