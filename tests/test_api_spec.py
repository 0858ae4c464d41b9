"""The API's routing decisions as plain functions: templates, responses, ARNs, fingerprint."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType

import pytest

from tests.conftest import ROOT
from versioned_lambda_api import api_spec
from versioned_lambda_api.api_spec import Route, parse_route
from versioned_lambda_api.validation import ConfigError

FUNCTION_ARN = "arn:aws:lambda:eu-west-2:123456789012:function:event-logger-function-1a2b3c4"


def load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "handler_under_test", ROOT / "function/handler.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def route(path: str = "events", method: str = "POST", template: str | None = None) -> Route:
    return parse_route(path, method, template, "routes[0]")


# --- The request template -------------------------------------------------------------------


def test_default_template_undoes_escape_javascript_single_quote_escape() -> None:
    # escapeJavaScript turns ' into \' (not valid JSON); every text value must undo it.
    template = api_spec.DEFAULT_REQUEST_TEMPLATE
    escapes = template.count("$util.escapeJavaScript(")
    assert escapes == 4
    assert template.count(""".replaceAll("\\\\'", "'")""") == escapes


def test_default_template_sends_the_body_base64_encoded_not_raw() -> None:
    assert '"bodyBase64": "$util.base64Encode($input.body)"' in api_spec.DEFAULT_REQUEST_TEMPLATE
    assert "$input.json(" not in api_spec.DEFAULT_REQUEST_TEMPLATE


# --- Routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("events", "POST", ("events", "POST")),
        ("/events/", "get", ("events", "GET")),
        ("a/b/{id}", "DELETE", ("a/b/{id}", "DELETE")),
        ("files/{proxy+}", "GET", ("files/{proxy+}", "GET")),
    ],
)
def test_parse_route_normalises(path: str, method: str, expected: tuple[str, str]) -> None:
    parsed = parse_route(path, method, None, "routes[3]")
    assert (parsed.path, parsed.method) == expected
    assert parsed.request_template == api_spec.DEFAULT_REQUEST_TEMPLATE


@pytest.mark.parametrize(
    ("path", "method", "template", "message"),
    [
        ("events", "FETCH", None, "routes[3].method must be one of GET, POST"),
        ("", "GET", None, "routes[3].path must be"),
        ("/", "GET", None, "routes[3].path must be"),
        ("a//b", "GET", None, "routes[3].path must be"),
        ("a b", "GET", None, "routes[3].path must be"),
        ("{}", "GET", None, "routes[3].path must be"),
        ("events", "GET", '{"body": "$input.body"}', "routes[3].request_template must pass"),
    ],
)
def test_parse_route_refuses(path: str, method: str, template: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_route(path, method, template, "routes[3]")


def test_custom_template_with_stage_is_kept() -> None:
    template = '{"stage": "$context.stage", "raw": $input.json(\'$\')}'
    assert route(template=template).request_template == template


def test_unique_routes_refuses_a_tree_api_gateway_refuses() -> None:
    with pytest.raises(ConfigError, match=re.escape("routes: routes /a/{id}, /a/{key}/b give /a")):
        api_spec.unique_routes([route("a/{id}", "GET"), route("a/{key}/b", "GET")])


def test_unique_routes_refuses_a_method_defined_twice_and_no_routes() -> None:
    with pytest.raises(ConfigError, match=re.escape("POST /events more than once")):
        api_spec.unique_routes([route("/events", "post"), route("events", "POST")])
    with pytest.raises(ConfigError, match="at least one route"):
        api_spec.unique_routes([])


# --- ARNs -----------------------------------------------------------------------------------


def test_integration_uri_lets_the_stage_variable_pick_the_alias() -> None:
    assert api_spec.lambda_integration_uri(FUNCTION_ARN) == (
        "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/"
        f"{FUNCTION_ARN}:${{stageVariables.lambdaAlias}}/invocations"
    )


@pytest.mark.parametrize(
    ("partition", "region"), [("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")]
)
def test_integration_uri_stays_in_the_function_partition(partition: str, region: str) -> None:
    function_arn = f"arn:{partition}:lambda:{region}:123456789012:function:f"
    assert api_spec.lambda_integration_uri(function_arn).startswith(
        f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}:"
    )


def test_a_stage_permission_covers_every_method_and_path_of_that_stage_only() -> None:
    assert api_spec.stage_source_arn_suffix("prod") == "/prod/*/*"


# --- Error responses ------------------------------------------------------------------------

ERROR_MESSAGES = {
    '[Unavailable] {"message": "retry"}': "503",
    '[Unavailable] {"message": "two\\nlines"}\nand a real newline': "503",
    "Task timed out after 10.00 seconds": "500",
    "'TABLE_NAME'": "500",
    "An error occurred (AccessDeniedException) when calling the PutItem operation": "500",
    "line one\nline two": "500",
    "[Unavailable]no space": "500",
    " [Unavailable] leading space": "500",
    '[BadRequest] {"message": "client errors are replies now"}': "500",
}


@pytest.mark.parametrize(("message", "status"), ERROR_MESSAGES.items())
@pytest.mark.parametrize("semantics", ["fullmatch", "search"])
def test_exactly_one_error_response_selects_each_error(
    message: str, status: str, semantics: str
) -> None:
    # API Gateway's Java regex engine agrees with Python's on these constructs; checking both
    # whole-string and find semantics keeps the patterns right whichever the service applies.
    selected = [
        response.status_code
        for response in api_spec.INTEGRATION_RESPONSES
        if response.selection_pattern is not None
        and getattr(re.compile(response.selection_pattern), semantics)(message)
    ]
    assert selected == [status]


def test_every_response_status_is_distinct_and_success_has_no_pattern() -> None:
    statuses = [response.status_code for response in api_spec.INTEGRATION_RESPONSES]
    assert sorted(statuses) == ["200", "500", "503"]
    default = [r for r in api_spec.INTEGRATION_RESPONSES if r.selection_pattern is None]
    assert [r.status_code for r in default] == ["200"]


def test_every_status_a_reply_or_failure_may_have_is_a_method_response() -> None:
    assert api_spec.METHOD_RESPONSE_STATUSES == (
        "200",
        "400",
        "404",
        "409",
        "413",
        "422",
        "500",
        "503",
    )


def test_the_unavailable_template_cuts_exactly_the_prefix() -> None:
    prefix = api_spec.UNAVAILABLE_PREFIX
    (response,) = [r for r in api_spec.INTEGRATION_RESPONSES if r.status_code == "503"]
    assert response.template is not None
    offset = int(re.fullmatch(r".*\.substring\((\d+)\)", response.template).group(1))  # type: ignore[union-attr]
    body = {"message": "bad 'limit'", "servedBy": {"stage": "prod"}}
    error_message = prefix + json.dumps(body)
    assert json.loads(error_message[offset:]) == body


def test_internal_error_body_is_json_and_leaks_nothing() -> None:
    (response,) = [r for r in api_spec.INTEGRATION_RESPONSES if r.status_code == "500"]
    assert response.template is not None
    rendered = response.template.replace("$context.requestId", "req-9")
    assert json.loads(rendered) == {"message": "Internal error", "requestId": "req-9"}


def test_function_raises_with_the_prefix_the_api_matches() -> None:
    assert load_handler().UNAVAILABLE_PREFIX == api_spec.UNAVAILABLE_PREFIX


# --- Route trees API Gateway refuses ----------------------------------------------------------


@pytest.mark.parametrize(
    "paths",
    [
        [],
        ["", "events", "events/{id}", "events/{id}/items", "events/{id}/items/{itemId}"],
        ["orders/{id}", "orders/{id}/items", "orders/recent"],  # one parameter, one name
        ["files/{proxy+}", "files/index", "{proxy+}"],  # plain siblings of a greedy one
        ["a/{id}", "b/{other}"],  # parameters under different parents
    ],
)
def test_route_trees_api_gateway_accepts(paths: list[str]) -> None:
    assert api_spec.route_tree_problems(paths) == []


def test_two_variable_siblings_are_refused_naming_both_routes() -> None:
    (problem,) = api_spec.route_tree_problems(["orders/{id}", "orders/{orderId}/items", "orders"])
    assert problem.startswith("routes /orders/{id}, /orders/{orderId}/items give /orders ")
    assert "more than one path parameter as children ({id}, {orderId})" in problem
    assert "one variable path part per resource" in problem


def test_variable_siblings_under_the_root() -> None:
    (problem,) = api_spec.route_tree_problems(["{a}", "{b}/c"])
    assert "routes /{a}, /{b}/c give / more than one path parameter" in problem


def test_a_greedy_and_a_plain_variable_as_siblings() -> None:
    (problem,) = api_spec.route_tree_problems(["files/{proxy+}", "files/{name}"])
    assert "a greedy and a plain path parameter as children ({name}, {proxy+})" in problem


def test_a_child_under_a_greedy_parameter() -> None:
    (problem,) = api_spec.route_tree_problems(
        ["files/{proxy+}", "files/{proxy+}/meta", "files/{proxy+}/x/y"]
    )
    assert problem.startswith(
        "routes /files/{proxy+}/meta, /files/{proxy+}/x/y continue below the greedy path "
        "parameter of /files/{proxy+}: "
    )
    assert "cannot create a child of a resource with a greedy path variable" in problem


def test_every_problem_of_a_tree_is_reported_once() -> None:
    problems = api_spec.route_tree_problems(
        ["a/{x}", "a/{y}", "a/{y}", "b/{proxy+}/c", "a/{x}/d/{p+}/e", "a/{x}/d/{q}"]
    )
    assert len(problems) == 4
    assert sum("continue below the greedy" in p for p in problems) == 2
    assert sum("({x}, {y})" in p for p in problems) == 1
    assert sum("({p+}, {q})" in p for p in problems) == 1
