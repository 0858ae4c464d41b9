"""What each stage's traffic invokes, read from a resource graph.

Everything here is derived from what would be deployed (stages, integrations, aliases), not
from the component's own plan, so it also describes graphs the component did not build, and
graphs that are wrong: that is what preflight checks. A REST API is read from both ways of
declaring one: the OpenAPI document of a RestApi's ``body`` (with API Gateway's
``x-amazon-apigateway-*`` extensions), and Resource, Method, Integration, MethodResponse and
IntegrationResponse resources, as raw programs declare it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord

REST_API = "aws:apigateway/restApi:RestApi"
API_RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
METHOD_RESPONSE = "aws:apigateway/methodResponse:MethodResponse"
INTEGRATION_RESPONSE = "aws:apigateway/integrationResponse:IntegrationResponse"
STAGE = "aws:apigateway/stage:Stage"
FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"

Role = Literal["live", "canary"]

ANY_METHOD = "ANY"
REQUEST_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
"""The methods a client can send; ``ANY`` stands for each of them."""

# OpenAPI operations API Gateway imports, by their key in a path item
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-any-method.html).
_OPERATION_KEYS = {method.lower(): method for method in REQUEST_METHODS} | {
    "x-amazon-apigateway-any-method": ANY_METHOD
}
_INTEGRATION_KEY = "x-amazon-apigateway-integration"
_API_KEY_HEADER = "x-api-key"
# API Gateway documents integration types and passthrough behaviours in either case ("aws",
# "AWS_PROXY", "when_no_match", api-gateway-swagger-extensions-integration); Endpoint holds them
# upper-cased, with API Gateway's default passthrough when none is set.
_DEFAULT_PASSTHROUGH = "WHEN_NO_MATCH"

_LAMBDA_URI = re.compile(
    r"arn:aws[\w-]*:apigateway:[^:]+:lambda:path/2015-03-31/functions/"
    r"(?P<function>arn:aws[\w-]*:lambda:[^:]+:[^:]+:function:[^:/]+)"
    r"(?::(?P<qualifier>[^/]+))?/invocations"
)
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class MappedResponse:
    """An integration response: which Lambda results it selects, and the method response it
    answers with."""

    status_code: str
    selection_pattern: str | None
    """Regex on the Lambda error message; ``None`` for the default response."""
    templates: dict[str, str]
    """Response mapping templates by content type."""
    record: ResourceRecord
    """The record declaring it: an IntegrationResponse, or the RestApi whose body does."""


@dataclass(frozen=True)
class Endpoint:
    """One method on one path of a REST API, and what its integration does, read from either
    source: an OpenAPI ``body`` on the RestApi, or Method and Integration resources."""

    api: ResourceRecord
    method: ResourceRecord
    """The record declaring the method: a Method, or the RestApi whose body declares it."""
    integration: ResourceRecord
    """The record declaring the integration: an Integration, or the RestApi (as ``method``)."""
    http_method: str
    """``GET``, ``POST``, ... or ``ANY``."""
    path: str
    """Resource path without the leading ``/`` (``""`` for the API root)."""
    integration_type: str
    """``AWS``, ``AWS_PROXY``, ``HTTP``, ``HTTP_PROXY``, ``MOCK``; ``""`` without integration."""
    integration_http_method: str | None
    """The method API Gateway calls the backend with (Lambda's Invoke takes only POST)."""
    uri: str
    request_templates: dict[str, str]
    passthrough_behavior: str
    """Upper-cased; ``WHEN_NO_MATCH`` when unset, as API Gateway defaults it."""
    responses: tuple[MappedResponse, ...]
    method_responses: frozenset[str]
    """Status codes of the method's responses."""
    api_key_required: bool
    authorization: str
    """``NONE``, ``AWS_IAM``, ``CUSTOM`` or ``COGNITO_USER_POOLS``."""
    function_arn: str | None
    """Unqualified ARN of the function invoked; ``None`` for a non-Lambda integration."""
    qualifier: str | None
    """The qualifier as written in the URI: an alias, a version, ``${stageVariables.x}``, or
    ``None`` for the unqualified function."""

    @property
    def json_responses(self) -> tuple[api_spec.IntegrationResponse, ...]:
        """Its integration responses with their JSON templates, as
        :func:`versioned_lambda_api.analysis.gateway.integration_response` takes them."""
        return tuple(
            api_spec.IntegrationResponse(
                response.status_code,
                response.selection_pattern,
                response.templates.get(api_spec.JSON_CONTENT_TYPE, ""),
            )
            for response in self.responses
        )

    @property
    def in_openapi(self) -> bool:
        """Whether the endpoint is an operation of the RestApi's OpenAPI body."""
        return self.method is self.api

    @property
    def request_methods(self) -> tuple[str, ...]:
        """The methods clients call it with: each one for ``ANY``."""
        return REQUEST_METHODS if self.http_method == ANY_METHOD else (self.http_method,)


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
    api: str = field(kw_only=True)
    """Logical name of the REST API the stage belongs to: two component instances can have
    stages and aliases of the same names."""


# --- Reading the API ---------------------------------------------------------------------------


def openapi_document(api: ResourceRecord) -> dict[str, Any] | None:
    """The RestApi's OpenAPI ``body`` as a JSON object; ``None`` when it has none or it cannot
    be read (:func:`openapi_problem` says why)."""
    body = api.inputs.get("body")
    if isinstance(body, dict):
        return body
    if not isinstance(body, str) or not body:
        return None
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def openapi_problem(api: ResourceRecord) -> str | None:
    """Why API Gateway could not import the RestApi's ``body``; ``None`` when it can, or when
    the API has no body."""
    body = api.inputs.get("body")
    if body is None or body == "":
        return None
    if isinstance(body, str):
        try:
            document = json.loads(body)
        except json.JSONDecodeError as error:
            return f"is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
    else:
        document = body
    if not isinstance(document, dict):
        return f"is a JSON {type(document).__name__}, not an OpenAPI object"
    if not isinstance(document.get("paths"), dict):
        return "has no 'paths' object"
    return None


def endpoints(graph: ResourceGraph) -> list[Endpoint]:
    """Every method of every REST API: operations of OpenAPI bodies, then Method resources."""
    found: list[Endpoint] = []
    apis_by_id: dict[str, ResourceRecord] = {}
    for api in graph.of_type(REST_API):
        apis_by_id[api.id] = api
        document = openapi_document(api)
        if document is not None:
            found += _openapi_endpoints(api, document)
    found += _resource_endpoints(graph, apis_by_id)
    return found


def _openapi_endpoints(api: ResourceRecord, document: dict[str, Any]) -> list[Endpoint]:
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return []
    schemes = _security_schemes(document)
    found = []
    for path_key, item in paths.items():
        if not isinstance(item, dict):
            continue
        for key, operation in item.items():
            http_method = _OPERATION_KEYS.get(key)
            if http_method is None or not isinstance(operation, dict):
                continue
            integration = operation.get(_INTEGRATION_KEY)
            integration = integration if isinstance(integration, dict) else {}
            found.append(
                _endpoint(
                    api=api,
                    method=api,
                    integration=api,
                    http_method=http_method,
                    path=str(path_key).strip("/"),
                    integration_type=str(integration.get("type") or ""),
                    integration_http_method=integration.get("httpMethod"),
                    uri=str(integration.get("uri") or ""),
                    request_templates=integration.get("requestTemplates"),
                    passthrough_behavior=integration.get("passthroughBehavior"),
                    responses=[
                        MappedResponse(
                            str(response.get("statusCode", "")),
                            None if pattern == "default" else str(pattern),
                            _templates(response.get("responseTemplates")),
                            api,
                        )
                        for pattern, response in (integration.get("responses") or {}).items()
                        if isinstance(response, dict)
                    ],
                    # OpenAPI's "default" response has no status code to map onto.
                    method_responses=[
                        str(code)
                        for code in (operation.get("responses") or {})
                        if code != "default"
                    ],
                    **_openapi_security(operation.get("security"), schemes),
                )
            )
    return found


def _security_schemes(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Security schemes by name, from OpenAPI 3's components or Swagger 2's definitions."""
    components = document.get("components")
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    schemes = schemes if isinstance(schemes, dict) else document.get("securityDefinitions")
    if not isinstance(schemes, dict):
        return {}
    return {str(name): scheme for name, scheme in schemes.items() if isinstance(scheme, dict)}


def _openapi_security(requirements: object, schemes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether an operation requires an API key, and its authorization type.

    Only the operation's own ``security`` counts: API Gateway ignores the document-level one
    (AWS in amazon-archives/aws-apigateway-importer#204). A scheme is the API key when it is
    ``apiKey`` in the ``x-api-key`` header without an authorizer; one with
    ``x-amazon-apigateway-authtype`` ``awsSigv4`` is IAM, with an authorizer it is a Lambda or
    Cognito authorizer (api-gateway-swagger-extensions-authtype / -authorizer)."""
    api_key_required = False
    authorization = "NONE"
    for requirement in requirements if isinstance(requirements, list) else []:
        for name in requirement if isinstance(requirement, dict) else {}:
            scheme = schemes.get(str(name), {})
            auth_type = str(scheme.get("x-amazon-apigateway-authtype") or "").lower()
            authorizer = scheme.get("x-amazon-apigateway-authorizer")
            if auth_type == "awssigv4":
                authorization = "AWS_IAM"
            elif auth_type == "cognito_user_pools" or (
                isinstance(authorizer, dict) and authorizer.get("type") == "cognito_user_pools"
            ):
                authorization = "COGNITO_USER_POOLS"
            elif authorizer is not None or auth_type:
                authorization = "CUSTOM"
            elif (
                scheme.get("type") == "apiKey"
                and scheme.get("in") == "header"
                and str(scheme.get("name", "")).lower() == _API_KEY_HEADER
            ):
                api_key_required = True
    return {"api_key_required": api_key_required, "authorization": authorization}


def _resource_endpoints(
    graph: ResourceGraph, apis_by_id: dict[str, ResourceRecord]
) -> list[Endpoint]:
    """Methods declared as Method resources, joined with their integration and responses by
    (API, resource, method), indexed once so that large APIs stay fast."""
    paths = {r.id: str(r.outputs.get("path", "")).strip("/") for r in graph.of_type(API_RESOURCE)}
    integrations = {_method_key(r): r for r in graph.of_type(INTEGRATION)}
    method_responses: dict[tuple[str, str, str], list[str]] = {}
    for record in graph.of_type(METHOD_RESPONSE):
        method_responses.setdefault(_method_key(record), []).append(
            str(record.inputs.get("statusCode"))
        )
    responses: dict[tuple[str, str, str], list[MappedResponse]] = {}
    for record in graph.of_type(INTEGRATION_RESPONSE):
        responses.setdefault(_method_key(record), []).append(
            MappedResponse(
                str(record.inputs.get("statusCode")),
                record.inputs.get("selectionPattern") or None,
                _templates(record.inputs.get("responseTemplates")),
                record,
            )
        )
    found = []
    for method in graph.of_type(METHOD):
        key = _method_key(method)
        api = apis_by_id.get(key[0])
        if api is None:
            continue
        integration = integrations.get(key)
        inputs = integration.inputs if integration is not None else {}
        authorization = str(method.inputs.get("authorization") or "NONE").upper()
        found.append(
            _endpoint(
                api=api,
                method=method,
                integration=integration or method,
                http_method=str(method.inputs.get("httpMethod")),
                path="" if key[1] == api.outputs.get("rootResourceId") else paths.get(key[1], ""),
                integration_type=str(inputs.get("type") or ""),
                integration_http_method=inputs.get("integrationHttpMethod"),
                uri=str(inputs.get("uri") or ""),
                request_templates=inputs.get("requestTemplates"),
                passthrough_behavior=inputs.get("passthroughBehavior"),
                responses=responses.get(key, []),
                method_responses=method_responses.get(key, []),
                api_key_required=method.inputs.get("apiKeyRequired") is True,
                authorization="CUSTOM"
                if authorization == "NONE" and method.inputs.get("authorizerId")
                else authorization,
            )
        )
    return found


def _method_key(record: ResourceRecord) -> tuple[str, str, str]:
    inputs = record.inputs
    return str(inputs.get("restApi")), str(inputs.get("resourceId")), str(inputs.get("httpMethod"))


def _templates(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _endpoint(
    *,
    api: ResourceRecord,
    method: ResourceRecord,
    integration: ResourceRecord,
    http_method: str,
    path: str,
    integration_type: str,
    integration_http_method: object,
    uri: str,
    request_templates: object,
    passthrough_behavior: object,
    responses: Iterable[MappedResponse],
    method_responses: Iterable[str],
    api_key_required: bool,
    authorization: str,
) -> Endpoint:
    match = _LAMBDA_URI.fullmatch(uri)
    return Endpoint(
        api=api,
        method=method,
        integration=integration,
        http_method=http_method.upper(),
        path=path,
        integration_type=integration_type.upper(),
        integration_http_method=(
            str(integration_http_method).upper() if integration_http_method else None
        ),
        uri=uri,
        request_templates=_templates(request_templates),
        passthrough_behavior=str(passthrough_behavior or _DEFAULT_PASSTHROUGH).upper(),
        responses=tuple(responses),
        method_responses=frozenset(method_responses),
        api_key_required=api_key_required,
        authorization=authorization,
        function_arn=match.group("function") if match else None,
        qualifier=match.group("qualifier") if match else None,
    )


# --- Traffic -----------------------------------------------------------------------------------


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


def invocations(graph: ResourceGraph, among: Sequence[Endpoint] | None = None) -> list[Invocation]:
    """For every stage, share of traffic and Lambda endpoint: the qualifier invoked.

    ``among`` are the graph's :func:`endpoints` when the caller has them already."""
    by_api: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints(graph) if among is None else among:
        if endpoint.function_arn is not None:
            by_api.setdefault(endpoint.api.id, []).append(endpoint)
    found: list[Invocation] = []
    for stage in graph.of_type(STAGE):
        stage_endpoints = by_api.get(str(stage.inputs.get("restApi")), [])
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
            and alias.inputs.get("functionName") in (function_name, function_arn)
        ),
        None,
    )


def find_function(graph: ResourceGraph, function_arn: str) -> ResourceRecord | None:
    return next((f for f in graph.of_type(FUNCTION) if f.outputs.get("arn") == function_arn), None)


def alias_weights(alias: ResourceRecord) -> dict[str, float]:
    """A weighted alias' extra versions and their shares; a weight that is not a number is left
    out (preflight reports it)."""
    routing = alias.inputs.get("routingConfig")
    weights = routing.get("additionalVersionWeights") if isinstance(routing, dict) else None
    return {
        str(version): float(weight)
        for version, weight in (weights.items() if isinstance(weights, dict) else ())
        if isinstance(weight, int | float) and not isinstance(weight, bool)
    }


def routing_table(graph: ResourceGraph) -> list[RouteShare]:
    """One row per REST API, stage and share of its traffic (live, canary), in stage order."""
    rows: list[RouteShare] = []
    seen: set[tuple[str, str, Role, str | None]] = set()
    for invocation in invocations(graph):
        api = invocation.endpoint.api.name
        key = (api, invocation.stage_name, invocation.role, invocation.qualifier)
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
        rows.append(
            RouteShare(
                stage=invocation.stage_name,
                role=invocation.role,
                share=invocation.share,
                alias=invocation.qualifier,
                version=version,
                newest=version is not None and version == newest,
                weights=alias_weights(alias) if alias else {},
                api=api,
            )
        )
    return rows
