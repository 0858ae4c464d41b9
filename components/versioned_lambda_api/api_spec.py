"""The API's shape as plain data: routes, mapping templates, error responses, ARNs.

Nothing here creates resources or touches Outputs, so every routing decision is testable as a
plain function; :mod:`versioned_lambda_api.openapi` assembles them into the API's OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from versioned_lambda_api.stage_variables import ALIAS_STAGE_VARIABLE
from versioned_lambda_api.validation import ConfigError

JSON_CONTENT_TYPE = "application/json"

# The function returns {"statusCode": <code>, "body": <object>} for a success or a client error,
# and raises only on a failure, so that Lambda's Errors metric (and every alarm and judge that
# reads it) counts failures, not client mistakes. A raised message that starts with
# UNAVAILABLE_PREFIX is answered 503 with the JSON after it; any other failure 500. The
# function's own copy of the prefix is checked against this one in the tests.
UNAVAILABLE_PREFIX = "[Unavailable] "

REPLY_STATUSES = ("200", "400", "404", "409", "413", "422")
"""The status codes a function's reply may carry: each is a declared method response."""

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
"""``ANY`` serves every method a path has no route of its own for."""

_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+|\{[A-Za-z0-9_]+\+?\}")


def _json_text(expression: str) -> str:
    """VTL that renders ``expression`` as the inside of a JSON string.

    escapeJavaScript also escapes ' as \\', which JSON does not allow, so that is undone.
    """
    return f'$util.escapeJavaScript({expression}).replaceAll("\\\\\'", "\'")'


# The request the function receives. The body travels base64-encoded so that whatever text a
# client sends (quotes, backslashes, control characters, any Unicode) arrives intact for the
# function to judge, with no JSON escaping to get wrong. API Gateway hands a template an empty
# body as "{}".
#
# The Idempotency-Key comes from the headers only ($input.params('Idempotency-Key') would also
# take a path or query parameter of that name), matched without regard to case: HTTP/2 clients
# send header names in lower case. callerId is the API key's id, so that two callers' keys never
# meet; it is empty when the API takes no keys.
DEFAULT_REQUEST_TEMPLATE = (
    "#set($query = $input.params().querystring)\n"
    "#set($headers = $input.params().header)\n"
    '#set($idempotencyKey = "")\n'
    "#foreach($name in $headers.keySet())"
    '#if($name.toLowerCase() == "idempotency-key")#set($idempotencyKey = $headers.get($name))#end'
    "#end\n"
    "{\n"
    '  "stage": "$context.stage",\n'
    '  "method": "$context.httpMethod",\n'
    '  "resourcePath": "$context.resourcePath",\n'
    '  "requestId": "$context.requestId",\n'
    '  "isCanaryRequest": "$context.isCanaryRequest",\n'
    '  "bodyBase64": "$util.base64Encode($input.body)",\n'
    '  "query": {#foreach($name in $query.keySet())'
    f'"{_json_text("$name")}": "{_json_text("$query.get($name)")}"'
    "#if($foreach.hasNext), #end#end},\n"
    f'  "idempotencyKey": "{_json_text("$idempotencyKey")}",\n'
    f'  "callerId": "{_json_text("$context.identity.apiKeyId")}"\n'
    "}\n"
)

STAGE_MARKER = "$context.stage"
# $context.stage in any of VTL's spellings ($!context.stage, ${context.stage}), but not
# $context.stageVariables or $context.stage-x (Velocity names may contain '-').
_STAGE_REFERENCE = re.compile(r"\$!?\{?context\.stage(?![A-Za-z0-9_-])")


def passes_stage(template: str) -> bool:
    """Whether a request template hands the function the stage it serves."""
    return _STAGE_REFERENCE.search(template) is not None


@dataclass(frozen=True)
class Route:
    """One method on one resource path, validated."""

    path: str
    """Resource path without leading or trailing slash, e.g. ``events`` or ``events/{id}``."""
    method: str
    request_template: str


@dataclass(frozen=True)
class IntegrationResponse:
    """How one kind of Lambda result becomes an HTTP response."""

    status_code: str
    selection_pattern: str | None
    """Java regex on the Lambda errorMessage; ``None`` is the default (successful) response."""
    template: str
    """Response mapping template."""


def _error_body_after(prefix: str) -> str:
    # The function puts a complete JSON body after the prefix, so the template only cuts it off.
    return f"$input.path('$.errorMessage').substring({len(prefix)})"


INTERNAL_ERROR_BODY = '{"message": "Internal error", "requestId": "$context.requestId"}'

_VALID_STATUS = " || ".join(f'$status == "{code}"' for code in REPLY_STATUSES)

# The default (success) response: the reply's statusCode becomes the response's status
# ($context.responseOverride.status, which API Gateway applies to non-proxy integrations; an
# override may be set only once, hence one #set per branch) and its body the response's body.
#
# A Lambda error whose message is empty (``raise MemoryError()``) arrives here too: API Gateway
# matches selection patterns against the error message, and an empty one is what a success
# looks like ("if the success response returns nothing ... use the .+ regex to match error
# response", IntegrationResponse.selectionPattern in the API reference). So this template also
# recognises Lambda's error shape (errorType), and a reply that breaks the contract, and answers
# both 500 without the runtime's errorType and stackTrace.
SUCCESS_TEMPLATE = (
    "#set($status = \"$!input.path('$.statusCode')\")\n"
    "#set($errorType = \"$!input.path('$.errorType')\")\n"
    f'#if($errorType == "" && ({_VALID_STATUS}))'
    '#if($status != "200")'
    "#set($context.responseOverride.status = $input.path('$.statusCode'))#end"
    "$input.json('$.body')"
    "#else#set($context.responseOverride.status = 500)"
    f"{INTERNAL_ERROR_BODY}#end"
)

INTEGRATION_RESPONSES = (
    IntegrationResponse("200", None, SUCCESS_TEMPLATE),
    IntegrationResponse(
        "503",
        "^" + re.escape(UNAVAILABLE_PREFIX) + r"[\s\S]*",
        _error_body_after(UNAVAILABLE_PREFIX),
    ),
    # Everything else (an unexpected exception, a timeout) is a 500 that does not leak the message.
    IntegrationResponse(
        "500",
        "^(?!" + re.escape(UNAVAILABLE_PREFIX) + r")[\s\S]+",
        INTERNAL_ERROR_BODY,
    ),
)

METHOD_RESPONSE_STATUSES = tuple(
    sorted({*REPLY_STATUSES, *(response.status_code for response in INTEGRATION_RESPONSES)})
)
"""Every status the API may answer: the replies' and the failures' (500, 503)."""


def parse_route(path: str, method: str, request_template: str | None, key: str) -> Route:
    """Validate one route as the user wrote it; ``key`` names it in errors."""
    normalised_method = method.upper()
    if normalised_method not in HTTP_METHODS:
        raise ConfigError(f"{key}.method must be one of {', '.join(HTTP_METHODS)}, got {method!r}")
    normalised_path = path.strip("/")
    segments = normalised_path.split("/")
    if not normalised_path or not all(_PATH_SEGMENT.fullmatch(part) for part in segments):
        raise ConfigError(
            f"{key}.path must be one or more '/'-separated segments of letters, digits, "
            f"'.', '_', '~', '-' or a {{parameter}}, got {path!r}"
        )
    template = DEFAULT_REQUEST_TEMPLATE if request_template is None else request_template
    if not passes_stage(template):
        raise ConfigError(
            f"{key}.request_template must pass {STAGE_MARKER} to the function, "
            "so that it knows which stage it serves"
        )
    return Route(normalised_path, normalised_method, template)


def unique_routes(routes: list[Route]) -> list[Route]:
    """Return ``routes`` if no method is defined twice on the same path and API Gateway accepts
    their resource tree."""
    seen: set[tuple[str, str]] = set()
    for route in routes:
        if (route.path, route.method) in seen:
            raise ConfigError(f"routes define {route.method} /{route.path} more than once")
        seen.add((route.path, route.method))
    if not routes:
        raise ConfigError("routes must list at least one route")
    problems = route_tree_problems(route.path for route in routes)
    if problems:
        raise ConfigError("routes: " + "; ".join(problems))
    return routes


def arn_region(arn: str) -> str:
    """The region an ARN names (``arn:partition:service:region:account:resource``)."""
    return arn.split(":")[3]


def arn_partition(arn: str) -> str:
    """The partition an ARN names: ``aws``, ``aws-cn``, ``aws-us-gov``, ..."""
    return arn.split(":")[1]


def lambda_integration_uri(function_arn: str) -> str:
    """The integration URI that invokes whichever alias the stage variable names, in the
    function's own partition and region."""
    return (
        f"arn:{arn_partition(function_arn)}:apigateway:{arn_region(function_arn)}:lambda:"
        f"path/2015-03-31/functions/{function_arn}:${{stageVariables.{ALIAS_STAGE_VARIABLE}}}"
        "/invocations"
    )


def stage_source_arn_suffix(stage: str) -> str:
    """What follows the API's execution ARN in an invoke permission's source ARN: every method
    and path of ``stage``, its canary included (canary requests come from the same stage)."""
    return f"/{stage}/*/*"


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
