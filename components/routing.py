"""What each stage's traffic invokes, read from a resource graph.

Everything here is derived from what would be deployed (stages, integrations, aliases), not
from the component's own plan, so it also describes graphs the component did not build, and
graphs that are wrong: that is what preflight checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from components.graph import ResourceGraph, ResourceRecord

REST_API = "aws:apigateway/restApi:RestApi"
API_RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
STAGE = "aws:apigateway/stage:Stage"
FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"

Role = Literal["live", "canary"]

_LAMBDA_URI = re.compile(
    r"arn:aws[\w-]*:apigateway:[^:]+:lambda:path/2015-03-31/functions/"
    r"(?P<function>arn:aws[\w-]*:lambda:[^:]+:[^:]+:function:[^:/]+)"
    r"(?::(?P<qualifier>[^/]+))?/invocations"
)
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class Endpoint:
    """One method on one path of a REST API, and the Lambda target its integration names."""

    api: ResourceRecord
    method: ResourceRecord
    integration: ResourceRecord
    http_method: str
    path: str
    """Resource path without the leading ``/`` (``""`` for the API root)."""
    function_arn: str | None
    """Unqualified ARN of the function invoked; ``None`` for a non-Lambda integration."""
    qualifier: str | None
    """The qualifier as written in the URI: an alias, a version, ``${stageVariables.x}``, or
    ``None`` for the unqualified function."""


@dataclass(frozen=True)
class Invocation:
    """What one share of a stage's traffic invokes on one endpoint."""

    stage: ResourceRecord
    role: Role
    share: float
    """Percent of the stage's requests."""
    endpoint: Endpoint
    qualifier: str | None
    """The qualifier with stage variables substituted; ``None`` when unqualified."""
    undefined_variables: tuple[str, ...]
    """Stage variables the URI names that this share of traffic does not define."""

    @property
    def stage_name(self) -> str:
        return str(self.stage.inputs["stageName"])


@dataclass(frozen=True)
class RouteShare:
    """A row of the routing table: a share of a stage's traffic, the alias, its version."""

    stage: str
    role: Role
    share: float
    alias: str | None
    version: str | None
    """The version the alias serves; ``None`` when the alias is not in the graph."""
    newest: bool
    """Whether that is the function's newest published version (else it is pinned)."""
    weights: dict[str, float] = field(default_factory=dict)
    """Lambda weighted alias routing: extra version to its share of the alias' invocations."""


def endpoints(graph: ResourceGraph) -> list[Endpoint]:
    """Every method that has an integration, with the Lambda target its URI names."""
    found: list[Endpoint] = []
    for integration in graph.of_type(INTEGRATION):
        api = graph.by_id(REST_API, str(integration.inputs.get("restApi")))
        method = next(
            (
                m
                for m in graph.of_type(METHOD)
                if m.inputs.get("restApi") == integration.inputs.get("restApi")
                and m.inputs.get("resourceId") == integration.inputs.get("resourceId")
                and m.inputs.get("httpMethod") == integration.inputs.get("httpMethod")
            ),
            None,
        )
        if api is None or method is None:
            continue
        match = _LAMBDA_URI.fullmatch(str(integration.inputs.get("uri", "")))
        found.append(
            Endpoint(
                api=api,
                method=method,
                integration=integration,
                http_method=str(integration.inputs["httpMethod"]),
                path=_resource_path(graph, api, str(integration.inputs.get("resourceId"))),
                function_arn=match.group("function") if match else None,
                qualifier=match.group("qualifier") if match else None,
            )
        )
    return found


def _resource_path(graph: ResourceGraph, api: ResourceRecord, resource_id: str) -> str:
    if resource_id == api.outputs.get("rootResourceId"):
        return ""
    resource = graph.by_id(API_RESOURCE, resource_id)
    return str(resource.outputs.get("path", "")).lstrip("/") if resource else ""


def traffic_shares(stage: ResourceRecord) -> list[tuple[Role, float, dict[str, str]]]:
    """The stage's live and canary shares with the stage variables each sees."""
    variables = dict(stage.inputs.get("variables") or {})
    canary = stage.inputs.get("canarySettings") or {}
    # An out-of-range or non-numeric share is preflight's to report (PF005); here it is
    # clamped so the table still adds up.
    percent = _percent(canary.get("percentTraffic"))
    shares: list[tuple[Role, float, dict[str, str]]] = [("live", 100 - percent, variables)]
    if canary and percent > 0:
        overrides = dict(canary.get("stageVariableOverrides") or {})
        shares.append(("canary", percent, {**variables, **overrides}))
    return shares


def _percent(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        return min(max(float(value), 0.0), 100.0)
    except ValueError:
        return 0.0


def invocations(graph: ResourceGraph) -> list[Invocation]:
    """For every stage, share of traffic and Lambda endpoint: the qualifier invoked."""
    found: list[Invocation] = []
    all_endpoints = endpoints(graph)
    for stage in graph.of_type(STAGE):
        stage_endpoints = [
            e
            for e in all_endpoints
            if e.function_arn is not None and e.api.id == stage.inputs.get("restApi")
        ]
        for role, share, variables in traffic_shares(stage):
            for endpoint in stage_endpoints:
                qualifier, undefined = _substitute(endpoint.qualifier, variables)
                found.append(Invocation(stage, role, share, endpoint, qualifier, undefined))
    return found


def _substitute(
    qualifier: str | None, variables: dict[str, str]
) -> tuple[str | None, tuple[str, ...]]:
    if qualifier is None:
        return None, ()
    undefined = tuple(
        name for name in _STAGE_VARIABLE.findall(qualifier) if not variables.get(name)
    )
    resolved = _STAGE_VARIABLE.sub(lambda match: variables.get(match.group(1), ""), qualifier)
    return resolved, undefined


def find_alias(graph: ResourceGraph, function_arn: str, name: str) -> ResourceRecord | None:
    """The alias ``name`` of the function with ``function_arn``, if the graph has it."""
    function_name = function_arn.rpartition(":")[2]
    return next(
        (
            alias
            for alias in graph.of_type(ALIAS)
            if alias.inputs.get("name") == name
            and alias.inputs.get("functionName")
            in (
                function_name,
                function_arn,
            )
        ),
        None,
    )


def find_function(graph: ResourceGraph, function_arn: str) -> ResourceRecord | None:
    return next((f for f in graph.of_type(FUNCTION) if f.outputs.get("arn") == function_arn), None)


def routing_table(graph: ResourceGraph) -> list[RouteShare]:
    """One row per stage and share of its traffic (live, canary), in stage order."""
    rows: list[RouteShare] = []
    seen: set[tuple[str, Role, str | None]] = set()
    for invocation in invocations(graph):
        key = (invocation.stage_name, invocation.role, invocation.qualifier)
        if key in seen:
            continue
        seen.add(key)
        function_arn = invocation.endpoint.function_arn or ""
        function = find_function(graph, function_arn)
        newest = str(function.outputs.get("version")) if function else None
        alias = (
            find_alias(graph, function_arn, invocation.qualifier) if invocation.qualifier else None
        )
        version = (
            str(alias.inputs.get("functionVersion"))
            if alias
            else invocation.qualifier
            if invocation.qualifier and invocation.qualifier.isdigit()
            else None
        )
        routing = (alias.inputs.get("routingConfig") or {}) if alias else {}
        rows.append(
            RouteShare(
                stage=invocation.stage_name,
                role=invocation.role,
                share=invocation.share,
                alias=invocation.qualifier,
                version=version,
                newest=version is not None and version == newest,
                weights={
                    str(v): float(w)
                    for v, w in (routing.get("additionalVersionWeights") or {}).items()
                },
            )
        )
    return rows


# --- Route trees API Gateway refuses ------------------------------------------------------------
#
# API Gateway builds a REST API's paths as a tree of resources, one per path segment, and refuses
# two shapes of it, whether the resources are created one by one or imported from OpenAPI
# (LocalStack reproduces both messages in its parity-tested CreateResource, and the importer
# reports them, amazon-archives/aws-apigateway-importer#202):
# * "A sibling ({id}) of this resource already has a variable path part -- only one is allowed":
#   one parent has at most one child that is a path parameter, greedy ({proxy+}) or not;
# * "Cannot create a child of a resource with a greedy path variable": a greedy parameter
#   stands for every deeper path, so it ends its route.


def _is_variable(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _is_greedy(segment: str) -> bool:
    return _is_variable(segment) and segment.endswith("+}")


def route_tree_problems(paths: Iterable[str]) -> list[str]:
    """Why API Gateway would refuse the resource tree of these routes: one sentence per
    problem, naming the routes. ``paths`` are written without the leading ``/`` (``orders/{id}``;
    ``""`` is the root)."""
    unique = sorted({path for path in paths if path})
    # parent path -> variable child segment -> the routes through it
    variables: dict[str, dict[str, list[str]]] = {}
    # greedy resource path -> the routes that continue below it
    below_greedy: dict[str, list[str]] = {}
    for path in unique:
        segments = path.split("/")
        for depth, segment in enumerate(segments):
            parent = "/".join(segments[:depth])
            if _is_variable(segment):
                variables.setdefault(parent, {}).setdefault(segment, []).append(path)
            if _is_greedy(segment) and depth < len(segments) - 1:
                below_greedy.setdefault("/".join(segments[: depth + 1]), []).append(path)
                break
    problems: list[str] = []
    for parent, children in variables.items():
        if len(children) < 2:
            continue
        names = sorted(children)
        routes = sorted({route for members in children.values() for route in members})
        kinds = {_is_greedy(name) for name in names}
        why = (
            "a greedy and a plain path parameter"
            if kinds == {True, False}
            else "more than one path parameter"
        )
        problems.append(
            f"routes {_route_list(routes)} give /{parent} {why} as children "
            f"({', '.join(names)}): API Gateway allows one variable path part per resource "
            f"and refuses the API; use one name (and one kind) for the parameter at this "
            f"position in every route"
        )
    for greedy, routes in below_greedy.items():
        problems.append(
            f"routes {_route_list(routes)} continue below the greedy path parameter of "
            f"/{greedy}: API Gateway cannot create a child of a resource with a greedy path "
            f"variable, which already stands for every deeper path; end those routes at it "
            f"or move them beside it"
        )
    return problems


def _route_list(paths: Iterable[str]) -> str:
    return ", ".join(f"/{path}" for path in paths)
