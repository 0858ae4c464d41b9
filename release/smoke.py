"""The pre-traffic check: the canary alias answers each route's sample requests as API Gateway
would have them answered, before it takes any user's request.

Each request is rendered into the function's event by the route's real request template (from
the stack's program, run as ``make plan`` runs it), sent to the canary alias with Lambda's
Invoke, and its reply put through the API's integration responses
(:mod:`versioned_lambda_api.analysis.gateway`), so the status and body judged are the ones a
client would have got. Every route gets a default request expecting a 2xx; a project adds its
own in ``release_checks.json`` beside ``Pulumi.yaml``.

Everything here is pure but :func:`load_checks`, which reads the checks file;
:meth:`release.commands.Release.check` wires it to the program and to AWS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from release.aws import Invoked
from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.gateway import (
    GatewayRequest,
    integration_response,
    render_event,
)
from versioned_lambda_api.analysis.graph import ResourceGraph
from versioned_lambda_api.analysis.routing import STAGE, endpoints
from versioned_lambda_api.stage_variables import ALIAS_STAGE_VARIABLE

CHECKS_FILE = "release_checks.json"
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
MARK = "release-check"
"""What makes the check's requests recognisable where they leave a trace: the caller id (the
API key id the template passes), the request ids, and the body of a write."""
_WITH_BODY = ("POST", "PUT", "PATCH")
_BODY_EXCERPT = 200
_REQUEST_KEYS = ("method", "path", "body", "query", "headers", "expect", "bodyContains")


class CheckError(Exception):
    """The check cannot run: a bad checks file, or a route it cannot render a request for."""


@dataclass(frozen=True)
class Route:
    """One method on one path of the stage's API: the template that makes its event, and the
    integration responses that make a client's answer of the reply."""

    method: str
    """``GET``, ``POST``, ... or ``ANY``."""
    path: str
    """With the leading ``/``: ``/events``."""
    request_template: str
    responses: tuple[api_spec.IntegrationResponse, ...] = api_spec.INTEGRATION_RESPONSES

    def serves(self, method: str) -> bool:
        return self.method in (method, "ANY")


@dataclass(frozen=True)
class SmokeRequest:
    """A request the canary must answer, and what its answer must be."""

    method: str
    path: str
    source: str
    """Where it comes from: ``default`` or ``release_checks.json[2]``."""
    body: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    expect: str = "2xx"
    """The status class the client must get."""
    body_contains: str | None = None

    def describe(self) -> str:
        query = f"?{urlencode(dict(self.query))}" if self.query else ""
        return f"{self.method} {self.path}{query} ({self.source})"


@dataclass(frozen=True)
class Outcome:
    """One request's reply as the client would have got it, and why it fails (if it does)."""

    request: SmokeRequest
    status: int
    body: str
    error_type: str | None
    """Lambda's ``errorType`` when the function failed."""
    executed_version: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


# --- What to send ---------------------------------------------------------------------------


def stage_routes(graph: ResourceGraph, stage: str) -> list[Route]:
    """The Lambda routes of the REST API that has stage ``stage``, from a run of the program,
    with their JSON request templates (API Gateway picks a template by the request's
    Content-Type, and the check sends JSON)."""
    apis = {
        record.inputs.get("restApi")
        for record in graph.of_type(STAGE)
        if record.inputs.get("stageName") == stage
    }
    routes = []
    for endpoint in endpoints(graph):
        if endpoint.api.id not in apis or endpoint.function_arn is None:
            continue
        route = f"{endpoint.http_method} /{endpoint.path}"
        if endpoint.integration_type != "AWS":
            raise CheckError(
                f"{route} has an integration of type {endpoint.integration_type}: the check "
                "renders the request templates of non-proxy Lambda (AWS) integrations"
            )
        template = endpoint.request_templates.get(api_spec.JSON_CONTENT_TYPE)
        if template is None:
            raise CheckError(
                f"{route} has no {api_spec.JSON_CONTENT_TYPE} request template: the check "
                "cannot render the event its requests would carry"
            )
        responses = endpoint.json_responses
        if not any(response.selection_pattern is None for response in responses):
            raise CheckError(
                f"{route} has no default integration response: the check cannot tell what a "
                "client gets of a reply"
            )
        routes.append(Route(endpoint.http_method, f"/{endpoint.path}", template, responses))
    if not routes:
        raise CheckError(f"the program declares no Lambda route on a stage named {stage!r}")
    return sorted(routes, key=lambda route: (route.path, route.method))


def default_requests(routes: Sequence[Route], version: str) -> list[SmokeRequest]:
    """One request per route expecting a 2xx: a write carries a JSON body that says it is the
    check's (it is stored like any client's). A route with a path parameter gets none: no
    default value is valid for it."""
    requests = []
    for route in routes:
        if "{" in route.path:
            continue
        method = "GET" if route.method == "ANY" else route.method
        if method in _WITH_BODY:
            body = json.dumps(
                {"type": MARK, "note": f"pre-traffic check of v{version} by the release tool"}
            )
            requests.append(
                SmokeRequest(
                    method,
                    route.path,
                    "default",
                    body=body,
                    headers={"Content-Type": api_spec.JSON_CONTENT_TYPE},
                )
            )
        else:
            requests.append(SmokeRequest(method, route.path, "default"))
    return requests


def unchecked_routes(routes: Sequence[Route], requests: Sequence[SmokeRequest]) -> list[str]:
    """The routes no request reaches (a path parameter, and no request in the checks file)."""
    return [
        f"{route.method} {route.path}"
        for route in routes
        if not any(
            request.path == route.path and route.serves(request.method) for request in requests
        )
    ]


def parse_checks(
    text: str, routes: Sequence[Route], file_name: str = CHECKS_FILE
) -> list[SmokeRequest]:
    """The requests a project's checks file adds, validated against the stage's routes.

    The file is a JSON array of objects: ``method`` and ``path`` (a route of the API, required),
    ``body`` (a string sent as it is, or any other JSON value sent as its JSON text),
    ``query`` and ``headers`` (objects of strings), ``expect`` (a status class, default
    ``2xx``), ``bodyContains`` (text the body the client gets must contain)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckError(
            f"{file_name} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    if not isinstance(document, list):
        raise CheckError(
            f"{file_name} must be a JSON array of requests, got {_json_type(document)}"
        )
    return [
        _parse_request(item, f"{file_name}[{index}]", routes) for index, item in enumerate(document)
    ]


def _parse_request(item: object, key: str, routes: Sequence[Route]) -> SmokeRequest:
    if not isinstance(item, dict):
        raise CheckError(f"{key} must be an object with method and path, got {_json_type(item)}")
    unknown = sorted(set(item) - set(_REQUEST_KEYS))
    if unknown:
        raise CheckError(f"{key} has unknown key(s) {unknown}; allowed: {', '.join(_REQUEST_KEYS)}")
    method, path = item.get("method"), item.get("path")
    if not isinstance(method, str) or not isinstance(path, str):
        raise CheckError(f'{key}.method and {key}.path are required strings, e.g. "GET", "/events"')
    method = method.upper()
    path = "/" + path.strip("/")
    served = [f"{route.method} {route.path}" for route in routes]
    if not any(route.path == path and route.serves(method) for route in routes):
        raise CheckError(
            f"{key}: {method} {path} is not a route of the stage; its routes: {', '.join(served)}"
        )
    if "{" in path:
        raise CheckError(
            f"{key}: {path} has a path parameter, which the check cannot fill in; name routes "
            "without one"
        )
    expect = item.get("expect", "2xx")
    if expect not in STATUS_CLASSES:
        raise CheckError(f"{key}.expect must be one of {', '.join(STATUS_CLASSES)}, got {expect!r}")
    body_contains = item.get("bodyContains")
    if body_contains is not None and (not isinstance(body_contains, str) or not body_contains):
        raise CheckError(f"{key}.bodyContains must be a non-empty string, got {body_contains!r}")
    body = item.get("body", "")
    headers = _strings(item.get("headers", {}), f"{key}.headers")
    if not isinstance(body, str):
        body = json.dumps(body)
        headers = {"Content-Type": api_spec.JSON_CONTENT_TYPE, **headers}
    return SmokeRequest(
        method,
        path,
        key,
        body=body,
        query=_strings(item.get("query", {}), f"{key}.query"),
        headers=headers,
        expect=expect,
        body_contains=body_contains,
    )


def _strings(value: object, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CheckError(
            f'{key} must be an object of strings, e.g. {{"limit": "1"}}, got {value!r}'
        )
    return dict(value)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "null")


def load_checks(program_dir: Path, routes: Sequence[Route]) -> list[SmokeRequest]:
    """The checks file's requests; none when the project has no checks file."""
    path = program_dir / CHECKS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise CheckError(f"cannot read {CHECKS_FILE}: {error}") from error
    return parse_checks(text, routes)


def gateway_request(request: SmokeRequest, stage: str, canary_alias: str) -> GatewayRequest:
    """The request as the stage's canary would hand it to its template: a canary request, with
    the canary's stage variables, from a caller whose id says it is the check."""
    return GatewayRequest(
        method=request.method,
        body=request.body,
        query=request.query,
        headers=request.headers,
        stage=stage,
        api_key_id=MARK,
        is_canary=True,
        resource_path=request.path,
        request_id=f"{MARK}-{uuid.uuid4()}",
        stage_variables={ALIAS_STAGE_VARIABLE: canary_alias},
    )


def route_for(request: SmokeRequest, routes: Sequence[Route]) -> Route:
    # Its own method's route before ANY, as API Gateway matches them.
    candidates = [r for r in routes if r.path == request.path and r.serves(request.method)]
    return min(candidates, key=lambda route: route.method == "ANY")


def event_payload(request: GatewayRequest, route: Route) -> bytes:
    """What Invoke sends: the event the route's template renders, as API Gateway sends it."""
    return render_event(request, route.request_template).encode("utf-8")


# --- What came back -------------------------------------------------------------------------


def judge_reply(
    request: SmokeRequest,
    sent: GatewayRequest,
    invoked: Invoked,
    expected_version: str,
    responses: Sequence[api_spec.IntegrationResponse] = api_spec.INTEGRATION_RESPONSES,
) -> Outcome:
    """The reply as the client would get it through the route's integration ``responses``,
    and what is wrong with it: another status class than expected, a body without the text it
    must contain, or another version answering than the stack's canary version."""
    status, body = integration_response(
        invoked.function_error is not None, invoked.payload, sent, responses
    )
    error_type = _error_type(invoked) if invoked.function_error is not None else None
    problems = []
    if f"{status // 100}xx" != request.expect:
        problems.append(f"status {status}, expected {request.expect}")
    if request.body_contains is not None and request.body_contains not in body:
        problems.append(f"body lacks {request.body_contains!r}")
    if invoked.executed_version != expected_version:
        problems.append(
            f"v{invoked.executed_version} answered, the stack's canaryVersion is "
            f"v{expected_version}"
        )
    return Outcome(request, status, body, error_type, invoked.executed_version, tuple(problems))


def _error_type(invoked: Invoked) -> str:
    try:
        error: Any = json.loads(invoked.payload)
    except ValueError:
        return invoked.function_error or "unknown"
    kind = error.get("errorType") if isinstance(error, dict) else None
    return str(kind) if kind else (invoked.function_error or "unknown")


def describe_outcome(outcome: Outcome) -> list[str]:
    """A passing request in one line; a failing one with its status, body excerpt and Lambda's
    error type."""
    request = outcome.request
    verdict = "ok" if outcome.passed else "FAILED: " + "; ".join(outcome.problems)
    lines = [f"  {request.describe()} -> {outcome.status} (v{outcome.executed_version}) {verdict}"]
    if outcome.passed:
        return lines
    if outcome.error_type is not None:
        lines.append(f"    Lambda error: {outcome.error_type}")
    body = " ".join(outcome.body.split())
    if len(body) > _BODY_EXCERPT:
        body = body[: _BODY_EXCERPT - 3] + "..."
    lines.append(f"    body: {body}")
    return lines
