"""Offline preflight checks: what in a resource graph would fail or be unsafe once deployed.

Each rule is a small function from the graph to findings; :func:`preflight` runs them all. The
rules read the graph (and :mod:`components.routing`'s view of it) the way AWS would evaluate the
deployed resources:

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

from components import routing
from components.api_spec import passes_stage, source_arn_suffix
from components.graph import ResourceGraph, ResourceRecord
from components.routing import Endpoint, Invocation
from components.samples import render_request

Severity = Literal["error", "warning"]

PERMISSION = "aws:lambda/permission:Permission"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
METHOD_RESPONSE = "aws:apigateway/methodResponse:MethodResponse"
INTEGRATION_RESPONSE = "aws:apigateway/integrationResponse:IntegrationResponse"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE = "aws:iam/role:Role"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

API_GATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
LATEST = "$LATEST"
INVALID_PERMISSIONS = "500 'Invalid permissions on Lambda function'"

# AddPermission accepts exactly these action forms: lambda:<Action>, lambda:* or *. IAM action
# names are case-insensitive, and both wildcards include lambda:InvokeFunction.
_INVOKE_ACTIONS = frozenset({"lambda:invokefunction", "lambda:*", "*"})
_PATH_PARAMETER = re.compile(r"\{[^{}/]+\}")


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
        "Every Lambda integration maps requests with templates that pass $context.stage and "
        "render to valid JSON for each stage, live and canary; no raw body reaches the function.",
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
)

_RULES_BY_ID = {rule.id: rule for rule in RULES}


def _finding(rule_id: str, resource: ResourceRecord, message: str, fix: str) -> Finding:
    rule = _RULES_BY_ID[rule_id]
    return Finding(rule.id, rule.name, rule.severity, resource.label, message, fix)


def preflight(graph: ResourceGraph, open_methods_allowed: bool = False) -> list[Finding]:
    """Every finding of every rule, errors first, then by rule, resource and message."""
    invoked = _invocations(graph)
    findings: list[Finding] = [
        *missing_invoke_permission(graph, invoked),
        *undefined_stage_variable(graph, invoked),
        *alias_missing(graph, invoked),
        *canary_equals_live(graph, invoked),
        *canary_percent_range(graph),
        *alias_on_latest(graph, invoked),
        *deployment_without_triggers(graph),
        *integration_response_without_method_response(graph),
        *open_method(graph, open_methods_allowed),
        *template_invalid(graph, invoked),
        *iam_wildcard_action(graph),
        *log_group_without_retention(graph),
        *permission_without_source_arn(graph),
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


def _invocations(graph: ResourceGraph) -> list[Invocation]:
    """``routing.invocations``, with any stage whose canary percent is not a number read as
    having no canary (PF005 reports it) instead of failing."""
    broken = [s for s in graph.of_type(routing.STAGE) if not _float_like(_canary_percent(s))]
    if not broken:
        return routing.invocations(graph)
    readable = ResourceGraph(dict(graph.resources))
    for stage in broken:
        inputs = {key: value for key, value in stage.inputs.items() if key != "canarySettings"}
        readable.resources[stage.name] = dataclasses.replace(stage, inputs=inputs)
    return routing.invocations(readable)


def _canary_percent(stage: ResourceRecord) -> Any:
    canary = stage.inputs.get("canarySettings")
    return canary.get("percentTraffic") if isinstance(canary, dict) else None


def _float_like(value: Any) -> bool:
    try:
        float(value or 0)
    except (TypeError, ValueError):
        return False
    return True


def _share_text(invocation: Invocation) -> str:
    role = "canary" if invocation.role == "canary" else "live traffic"
    return f"stage {invocation.stage_name}'s {role} ({invocation.share:g}% of requests)"


def _route(endpoint: Endpoint) -> str:
    return f"{endpoint.http_method} /{endpoint.path}"


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


def _allows(grant: _Grant, invocation: Invocation, execution_arn: str) -> bool:
    endpoint = invocation.endpoint
    function_arn = endpoint.function_arn or ""
    if not _names_function(grant.function, function_arn) or grant.qualifier != invocation.qualifier:
        return False
    if grant.source_account is not None and grant.source_account != execution_arn.split(":")[4]:
        return False
    return grant.source_arn is None or source_arn_covers(
        grant.source_arn,
        execution_arn,
        invocation.stage_name,
        endpoint.http_method,
        endpoint.path,
    )


def missing_invoke_permission(
    graph: ResourceGraph, invoked: Sequence[Invocation]
) -> Iterator[Finding]:
    """PF001: API Gateway may invoke every qualifier each share of each stage reaches."""
    grants = _grants(graph)
    uncovered = [
        invocation
        for invocation in invoked
        if invocation.endpoint.function_arn is not None
        and not invocation.undefined_variables  # PF002
        and invocation.qualifier != LATEST  # PF006: $LATEST takes no resource policy
        and not any(
            _allows(
                grant,
                invocation,
                _execution_arn(invocation.endpoint.api, invocation.endpoint.function_arn),
            )
            for grant in grants
        )
    ]
    for group in _group(uncovered):
        first = group[0]
        function_arn = first.endpoint.function_arn or ""
        routes = ", ".join(_route(i.endpoint) for i in group)
        source_arns = " and ".join(
            _execution_arn(i.endpoint.api, function_arn)
            + source_arn_suffix(i.stage_name, i.endpoint.http_method, i.endpoint.path)
            for i in group
        )
        alias = (
            routing.find_alias(graph, function_arn, first.qualifier) if first.qualifier else None
        )
        resource = alias or routing.find_function(graph, function_arn) or first.stage
        qualifier = f"qualifier {first.qualifier}" if first.qualifier else "no qualifier"
        yield _finding(
            "PF001",
            resource,
            f"{_share_text(first)} invokes {_target_text(function_arn, first.qualifier)}, but "
            f"API Gateway may not invoke it for {routes}: those requests fail with "
            f"{INVALID_PERMISSIONS}",
            f"add an aws.lambda.Permission per route with action lambda:InvokeFunction, "
            f"principal {API_GATEWAY_PRINCIPAL}, function {_function_name(function_arn)}, "
            f"{qualifier} and sourceArn {source_arns}",
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
        group = sorted(members, key=_route_order)
        first = group[0]
        routes = ", ".join(_route(i.endpoint) for i in group)
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
    missing = [
        i
        for i in invoked
        if i.endpoint.function_arn is not None
        and not i.undefined_variables
        and i.qualifier is not None
        and i.qualifier != LATEST
        and not i.qualifier.isdigit()
        and routing.find_alias(graph, i.endpoint.function_arn, i.qualifier) is None
    ]
    for group in _group(missing):
        first = group[0]
        function_arn = first.endpoint.function_arn or ""
        function = _function_name(function_arn)
        existing = sorted(
            str(alias.inputs.get("name"))
            for alias in graph.of_type(routing.ALIAS)
            if alias.inputs.get("functionName") in (function, function_arn)
        )
        via_variable = _uses_stage_variable(first.endpoint)
        resource = first.stage if via_variable else first.endpoint.integration
        where = "the stage variable" if via_variable else "the integration URI"
        yield _finding(
            "PF003",
            resource,
            f"{_share_text(first)} invokes alias {first.qualifier} of {function} for "
            f"{', '.join(_route(i.endpoint) for i in group)}, but the function has no such "
            f"alias or version: those requests fail",
            f"create an aws.lambda.Alias named {first.qualifier} for {function}, or change "
            f"{where} to an existing alias"
            + (f" ({', '.join(existing)})" if existing else "")
            + " or version number",
        )


# --- PF004 canary-equals-live -----------------------------------------------------------------


def canary_equals_live(graph: ResourceGraph, invoked: Sequence[Invocation]) -> Iterator[Finding]:
    """PF004: a stage's canary invokes something else than its live traffic."""
    live = {
        (i.stage.name, i.endpoint.integration.name): i
        for i in invoked
        if i.role == "live" and not i.undefined_variables
    }
    same = [
        canary
        for canary in invoked
        if canary.role == "canary"
        and not canary.undefined_variables
        and (match := live.get((canary.stage.name, canary.endpoint.integration.name))) is not None
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
            f"{_share_text(first)} invokes {target} for "
            f"{', '.join(_route(i.endpoint) for i in group)}, the same as its live traffic: "
            f"the canary release tests nothing new",
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
        number = isinstance(percent, int | float) and not isinstance(percent, bool)
        if number and math.isfinite(percent) and 0 <= percent <= 100:
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


def alias_on_latest(graph: ResourceGraph, invoked: Sequence[Invocation]) -> Iterator[Finding]:
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
    for endpoint in routing.endpoints(graph):
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
            f"{', '.join(_route(i.endpoint) for i in group)}",
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
            "set triggers={'redeployment': <hash of the routes, integrations and templates>}; "
            "dependsOn only orders creation and never redeploys",
        )


# --- PF008 integration-response-without-method-response ---------------------------------------


def _method_key(record: ResourceRecord) -> tuple[str, str, str, str]:
    inputs = record.inputs
    return (
        str(inputs.get("restApi")),
        str(inputs.get("resourceId")),
        str(inputs.get("httpMethod")),
        str(inputs.get("statusCode")),
    )


def _path_of(graph: ResourceGraph, api_id: str, resource_id: str) -> str:
    api = graph.by_id(routing.REST_API, api_id)
    if api is not None and api.outputs.get("rootResourceId") == resource_id:
        return ""
    resource = graph.by_id(routing.API_RESOURCE, resource_id)
    return str(resource.outputs.get("path", "")).lstrip("/") if resource else resource_id


def integration_response_without_method_response(graph: ResourceGraph) -> Iterator[Finding]:
    """PF008: every integration response maps to a method response with its status code."""
    declared = {_method_key(record) for record in graph.of_type(METHOD_RESPONSE)}
    for response in graph.of_type(INTEGRATION_RESPONSE):
        key = _method_key(response)
        if key in declared:
            continue
        api_id, resource_id, method, status = key
        route = f"{method} /{_path_of(graph, api_id, resource_id)}"
        yield _finding(
            "PF008",
            response,
            f"integration response {status} of {route} has no method response {status}: "
            f"API Gateway maps an integration response onto an existing method response, and "
            f"answers 500 'Output mapping refers to an invalid method response' otherwise",
            f"add an aws.apigateway.MethodResponse with statusCode {status} on {route} and "
            f"make the integration response depend on it",
        )


# --- PF009 open-method ------------------------------------------------------------------------


def open_method(graph: ResourceGraph, open_methods_allowed: bool = False) -> Iterator[Finding]:
    """PF009: every method needs authorization or an API key."""
    if open_methods_allowed:
        return
    for method in graph.of_type(routing.METHOD):
        inputs = method.inputs
        if inputs.get("authorization") not in (None, "", "NONE") or inputs.get("authorizerId"):
            continue
        if inputs.get("apiKeyRequired") is True:
            continue
        api_id = str(inputs.get("restApi"))
        route = (
            f"{inputs.get('httpMethod')} /{_path_of(graph, api_id, str(inputs.get('resourceId')))}"
        )
        yield _finding(
            "PF009",
            method,
            f"{route} takes no authorization and no API key: anyone who finds the URL can call it",
            "set apiKeyRequired=True (with a usage plan and key), or authorization AWS_IAM, "
            "CUSTOM or COGNITO_USER_POOLS; if the API is meant to be public, allow open "
            "methods explicitly",
        )


# --- PF010 template-invalid -------------------------------------------------------------------


def template_invalid(graph: ResourceGraph, invoked: Sequence[Invocation]) -> Iterator[Finding]:
    """PF010: a Lambda integration's request templates pass $context.stage and render to JSON
    for every stage and share; without templates the raw body would reach the function."""
    shares: dict[str, list[tuple[str, bool]]] = {}
    for invocation in invoked:
        seen = shares.setdefault(invocation.endpoint.integration.name, [])
        share = (invocation.stage_name, invocation.role == "canary")
        if share not in seen:
            seen.append(share)
            seen.sort()  # by stage, live before canary
    for endpoint in routing.endpoints(graph):
        integration = endpoint.integration
        if endpoint.function_arn is None or integration.inputs.get("type") == "AWS_PROXY":
            continue  # a proxy integration sends the whole request; templates do not apply
        yield from _template_findings(endpoint, shares.get(integration.name, []))


def _template_findings(endpoint: Endpoint, shares: list[tuple[str, bool]]) -> Iterator[Finding]:
    integration = endpoint.integration
    route = _route(endpoint)
    templates = integration.inputs.get("requestTemplates") or {}
    passthrough = integration.inputs.get("passthroughBehavior") or "WHEN_NO_MATCH"
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
            integration,
            message,
            "set requestTemplates={'application/json': <template passing $context.stage>} "
            "and passthroughBehavior NEVER",
        )
        return
    if passthrough == "WHEN_NO_MATCH":
        yield _finding(
            "PF010",
            integration,
            f"{route} has passthroughBehavior WHEN_NO_MATCH: a request whose Content-Type "
            f"matches none of its templates ({', '.join(sorted(templates))}) reaches the "
            f"function raw, without $context.stage",
            "set passthroughBehavior NEVER, so that unmapped content types get 415",
        )
    for content_type, template in sorted(templates.items()):
        text = str(template)
        if not passes_stage(text):
            yield _finding(
                "PF010",
                integration,
                f"the {content_type} request template of {route} does not pass "
                f"$context.stage: the function cannot tell which stage it serves",
                'add "stage": "$context.stage" to the template',
            )
        failures: dict[str, list[str]] = {}
        for stage, is_canary in shares:
            rendered = render_request(
                text, stage, endpoint.http_method, endpoint.path, is_canary=is_canary
            )
            if rendered.error is not None:
                share = f"{stage} {'canary' if is_canary else 'live'}"
                failures.setdefault(rendered.error, []).append(share)
        for error, failed in failures.items():
            yield _finding(
                "PF010",
                integration,
                f"the {content_type} request template of {route} does not render to valid "
                f"JSON for a sample request to {', '.join(failed)}: {error}",
                "make the template render a JSON object for every request; preview it with "
                "python -m components.plan --stack <stack>",
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
            "set sourceArn to the API's execution ARN followed by /<stage>/<METHOD>/<path>, "
            "e.g. <executionArn>/prod/POST/events",
        )
