"""The OpenAPI document as a plain function: operations, integrations, keys, fingerprint."""

import json
from typing import Any

import pytest

from versioned_lambda_api import openapi
from versioned_lambda_api.api_spec import (
    INTEGRATION_RESPONSES,
    METHOD_RESPONSE_STATUSES,
    Route,
    parse_route,
)

FUNCTION_ARN = "arn:aws:lambda:eu-west-2:123456789012:function:orders-function-1a2b3c4"


def route(path: str, method: str = "GET", template: str | None = None) -> Route:
    return parse_route(path, method, template, "routes[0]")


ROUTES = [
    route("orders", "POST"),
    route("orders"),
    route("orders/{id}"),
    route("orders/{id}/items/{itemId}", "DELETE"),
    route("files/{proxy+}", "ANY"),
]


def document(
    routes: list[Route] | None = None, api_key_required: bool = True, arn: str = FUNCTION_ARN
) -> dict[str, Any]:
    return openapi.document("orders", routes or ROUTES, api_key_required, arn)


def test_every_route_is_one_operation_under_its_path() -> None:
    paths = document()["paths"]
    assert {path: sorted(methods) for path, methods in paths.items()} == {
        "/files/{proxy+}": ["x-amazon-apigateway-any-method"],
        "/orders": ["get", "post"],
        "/orders/{id}": ["get"],
        "/orders/{id}/items/{itemId}": ["delete"],
    }


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("orders", []),
        ("orders/{id}", ["id"]),
        ("orders/{id}/items/{itemId}", ["id", "itemId"]),
        ("files/{proxy+}", ["proxy"]),
    ],
)
def test_path_parameters_are_declared_by_name(path: str, names: list[str]) -> None:
    (operation,) = document([route(path)])["paths"][f"/{path}"].values()
    declared = [p["name"] for p in operation.get("parameters", [])]
    assert declared == names
    assert all(p["in"] == "path" and p["required"] for p in operation.get("parameters", []))


def test_each_integration_invokes_the_alias_the_stage_variable_names() -> None:
    for methods in document()["paths"].values():
        for operation in methods.values():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws"
            assert integration["httpMethod"] == "POST"
            assert integration["uri"] == (
                "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/"
                f"{FUNCTION_ARN}:${{stageVariables.lambdaAlias}}/invocations"
            )
            assert integration["passthroughBehavior"] == "never"
            assert "$context.stage" in integration["requestTemplates"]["application/json"]


def test_a_custom_template_reaches_its_route_only() -> None:
    custom = '{"stage": "$context.stage", "raw": $input.json(\'$\')}'
    paths = document([route("a", "POST", custom), route("b", "POST")])["paths"]
    integration = paths["/a"]["post"]["x-amazon-apigateway-integration"]
    assert integration["requestTemplates"] == {"application/json": custom}
    other = paths["/b"]["post"]["x-amazon-apigateway-integration"]
    assert other["requestTemplates"]["application/json"] != custom


def test_responses_are_keyed_by_selection_pattern_with_one_default() -> None:
    operation = document([route("a")])["paths"]["/a"]["get"]
    responses = operation["x-amazon-apigateway-integration"]["responses"]
    assert {key: value["statusCode"] for key, value in responses.items()} == {
        (r.selection_pattern or "default"): r.status_code for r in INTEGRATION_RESPONSES
    }
    assert responses["default"]["statusCode"] == "200"
    # Every status an integration response maps to, or a reply sets, is a method response.
    assert {r["statusCode"] for r in responses.values()} <= set(operation["responses"])
    assert set(operation["responses"]) == set(METHOD_RESPONSE_STATUSES)


def test_api_keys_are_required_through_a_header_security_scheme() -> None:
    doc = document()
    assert doc["x-amazon-apigateway-api-key-source"] == "HEADER"
    assert doc["components"]["securitySchemes"] == {
        "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}
    }
    for methods in doc["paths"].values():
        assert all(op["security"] == [{"api_key": []}] for op in methods.values())


def test_an_open_api_has_no_security() -> None:
    doc = document(api_key_required=False)
    assert "securitySchemes" not in doc["components"]
    for methods in doc["paths"].values():
        assert all("security" not in op for op in methods.values())


def test_the_integration_uri_follows_the_function_partition() -> None:
    arn = "arn:aws-cn:lambda:cn-north-1:123456789012:function:f"
    (operation,) = document([route("a")], arn=arn)["paths"]["/a"].values()
    uri = operation["x-amazon-apigateway-integration"]["uri"]
    assert uri.startswith("arn:aws-cn:apigateway:cn-north-1:lambda:")


def test_the_json_is_the_same_for_the_same_api_whatever_the_route_order() -> None:
    body = openapi.document_json("orders", ROUTES, True, FUNCTION_ARN)
    assert json.loads(body) == document()
    shuffled = openapi.document_json("orders", list(reversed(ROUTES)), True, FUNCTION_ARN)
    assert shuffled == body
    assert openapi.fingerprint(shuffled) == openapi.fingerprint(body)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"routes": ROUTES[:-1]}, id="route removed"),
        pytest.param({"routes": [*ROUTES[:-1], route("files/{path+}", "ANY")]}, id="renamed"),
        pytest.param(
            {"routes": [route("orders", "POST", '{"s": "$context.stage"}'), *ROUTES[1:]]},
            id="template changed",
        ),
        pytest.param({"api_key_required": False}, id="api key dropped"),
        pytest.param({"function_arn": FUNCTION_ARN + "x"}, id="other function"),
    ],
)
def test_the_fingerprint_changes_with_what_a_deployment_snapshots(
    changed: dict[str, Any],
) -> None:
    base: dict[str, Any] = {
        "title": "orders",
        "routes": ROUTES,
        "api_key_required": True,
        "function_arn": FUNCTION_ARN,
    }
    before = openapi.fingerprint(openapi.document_json(**base))
    after = openapi.fingerprint(openapi.document_json(**{**base, **changed}))
    assert before != after
