"""The routing read back from a resource graph: endpoints from both ways of declaring a REST API,
invocations, the routing table, and the route trees API Gateway refuses."""

from __future__ import annotations

import json

import pytest

from tests.test_preflight import (
    FUNCTION,
    FUNCTION_ARN,
    REQUEST_TEMPLATE,
    REST_API,
    SOURCES,
    Source,
    body_of,
    edit_integration,
    healthy,
    set_body,
)
from versioned_lambda_api.analysis.graph import ResourceRecord
from versioned_lambda_api.analysis.routing import (
    ALIAS,
    REQUEST_METHODS,
    STAGE,
    RouteShare,
    endpoints,
    invocations,
    openapi_problem,
    routing_table,
    traffic_shares,
)


def stage_record(percent: object = None, overrides: dict[str, str] | None = None) -> ResourceRecord:
    inputs: dict[str, object] = {"stageName": "prod", "variables": {"lambdaAlias": "prod"}}
    if percent is not None:
        inputs["canarySettings"] = {
            "percentTraffic": percent,
            "stageVariableOverrides": overrides or {},
        }
    return ResourceRecord(STAGE, "s", inputs, inputs, "id")


# --- Endpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_both_sources_read_the_same_endpoints(source: Source) -> None:
    routes = (("POST", "events"), ("GET", "events/{id}"), ("ANY", "files/{proxy+}"))
    found = {
        (e.http_method, e.path): (
            e.integration_type,
            e.integration_http_method,
            e.passthrough_behavior,
            e.request_templates,
            tuple((r.status_code, r.selection_pattern) for r in e.responses),
            e.method_responses,
            e.api_key_required,
            e.authorization,
            e.function_arn,
            e.qualifier,
            e.in_openapi,
        )
        for e in endpoints(healthy(source, routes))
    }
    expected = (
        "AWS",
        "POST",
        "NEVER",
        {"application/json": REQUEST_TEMPLATE},
        (("200", None), ("400", r"^\[BadRequest\] [\s\S]*")),
        frozenset({"200", "400"}),
        True,
        "NONE",
        FUNCTION_ARN,
        "${stageVariables.lambdaAlias}",
        source == "openapi",
    )
    assert found == {route: expected for route in routes}


@pytest.mark.parametrize("source", SOURCES)
def test_any_stands_for_every_method(source: Source) -> None:
    (endpoint,) = endpoints(healthy(source, (("ANY", "{proxy+}"),)))
    assert (endpoint.http_method, endpoint.path) == ("ANY", "{proxy+}")
    assert endpoint.request_methods == REQUEST_METHODS
    (other,) = endpoints(healthy(source, (("GET", ""),)))
    assert (other.path, other.request_methods) == ("", ("GET",))


def test_the_body_may_spell_types_and_behaviours_in_lower_case() -> None:
    graph = healthy("openapi", (("GET", "events"),))
    edit_integration(graph, "openapi", "GET", "events", type="aws_proxy", passthroughBehavior=None)
    (endpoint,) = endpoints(graph)
    assert (endpoint.integration_type, endpoint.passthrough_behavior) == (
        "AWS_PROXY",
        "WHEN_NO_MATCH",  # API Gateway's default
    )


@pytest.mark.parametrize(
    ("scheme", "key_required", "authorization"),
    [
        ({"type": "apiKey", "name": "X-API-Key", "in": "header"}, True, "NONE"),
        ({"type": "apiKey", "name": "x-api-key", "in": "query"}, False, "NONE"),
        (
            {"type": "apiKey", "name": "Authorization", "in": "header",
             "x-amazon-apigateway-authtype": "awsSigv4"},
            False,
            "AWS_IAM",
        ),
        (
            {"type": "apiKey", "name": "Authorization", "in": "header",
             "x-amazon-apigateway-authorizer": {"type": "cognito_user_pools"}},
            False,
            "COGNITO_USER_POOLS",
        ),
        (
            {"type": "apiKey", "name": "Authorization", "in": "header",
             "x-amazon-apigateway-authorizer": {"type": "request"}},
            False,
            "CUSTOM",
        ),
    ],
)  # fmt: skip
def test_an_operations_security_scheme_says_key_or_authorizer(
    scheme: dict[str, object], key_required: bool, authorization: str
) -> None:
    graph = healthy("openapi", (("GET", "events"),))
    body = body_of(graph)
    body["components"]["securitySchemes"]["api_key"] = scheme
    set_body(graph, body)
    (endpoint,) = endpoints(graph)
    assert (endpoint.api_key_required, endpoint.authorization) == (key_required, authorization)


def test_only_the_operations_own_security_counts() -> None:
    graph = healthy("openapi", (("GET", "events"),), api_key_required=False)
    body = body_of(graph)
    body["security"] = [{"api_key": []}]
    set_body(graph, body)
    (endpoint,) = endpoints(graph)
    assert endpoint.api_key_required is False


def test_a_body_given_as_an_object_is_read() -> None:
    graph = healthy("openapi")
    graph.resources["api"].inputs["body"] = body_of(graph)
    assert {(e.http_method, e.path) for e in endpoints(graph)} == {
        ("GET", "events"),
        ("POST", "events"),
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{", "is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ('"text"', "is a JSON str, not an OpenAPI object"),
        ('{"paths": []}', "has no 'paths' object"),
    ],
)
def test_a_body_api_gateway_cannot_import_has_no_endpoints(body: str, problem: str) -> None:
    graph = healthy("openapi")
    graph.resources["api"].inputs["body"] = body
    assert endpoints(graph) == []
    assert openapi_problem(graph.resources["api"]) == problem


def test_an_api_without_a_body_has_no_problem() -> None:
    assert openapi_problem(healthy("resources").resources["api"]) is None


@pytest.mark.parametrize("source", SOURCES)
def test_a_non_lambda_integration_has_no_function(source: Source) -> None:
    graph = healthy(source, (("GET", "events"),))
    edit_integration(graph, source, "GET", "events", uri="https://example.com/{proxy}")
    assert [e.function_arn for e in endpoints(graph)] == [None]
    assert invocations(graph) == []


def test_a_method_without_integration_is_an_endpoint_without_one() -> None:
    graph = healthy("resources", (("GET", "events"),))
    del graph.resources["GET-events-integration"]
    (endpoint,) = endpoints(graph)
    assert (endpoint.integration_type, endpoint.function_arn) == ("", None)
    assert endpoint.integration is endpoint.method


# --- Traffic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (stage_record(), [("live", 100.0, "prod")]),
        (stage_record(0, {"lambdaAlias": "prod-canary"}), [("live", 100.0, "prod")]),
        (
            stage_record(12.5, {"lambdaAlias": "prod-canary"}),
            [("live", 87.5, "prod"), ("canary", 12.5, "prod-canary")],
        ),
        (stage_record(10, {}), [("live", 90.0, "prod"), ("canary", 10.0, "prod")]),
        (stage_record("ten", {"lambdaAlias": "x"}), [("live", 100.0, "prod")]),
    ],
)
def test_traffic_shares(stage: ResourceRecord, expected: list[tuple[str, float, str]]) -> None:
    shares = [(role, share, seen["lambdaAlias"]) for role, share, seen in traffic_shares(stage)]
    assert shares == expected


@pytest.mark.parametrize("source", SOURCES)
def test_invocations_substitute_each_shares_stage_variables(source: Source) -> None:
    invoked = {
        (i.stage_name, i.role, i.share, i.endpoint.http_method, i.qualifier)
        for i in invocations(healthy(source))
    }
    assert invoked == {
        (stage, role, share, method, alias)
        for stage, role, share, alias in (
            ("dev", "live", 100.0, "dev"),
            ("prod", "live", 90.0, "prod"),
            ("prod", "canary", 10.0, "prod-canary"),
        )
        for method in ("GET", "POST")
    }


def test_an_undefined_stage_variable_is_reported_per_share() -> None:
    graph = healthy()
    stage = graph.resources["prod-stage"]
    stage.inputs["canarySettings"]["stageVariableOverrides"] = {}
    stage.inputs["variables"] = {"other": "x"}
    undefined = {(i.role, i.undefined_variables) for i in invocations(graph) if i.stage is stage}
    assert undefined == {("live", ("lambdaAlias",)), ("canary", ("lambdaAlias",))}


# --- The routing table ------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_routing_table_of_a_pinned_release(source: Source) -> None:
    assert routing_table(healthy(source)) == [
        RouteShare("dev", "live", 100.0, "dev", "4", newest=True, api="api"),
        RouteShare("prod", "live", 90.0, "prod", "3", newest=False, api="api"),
        RouteShare("prod", "canary", 10.0, "prod-canary", "4", newest=True, api="api"),
    ]


def test_routing_table_keeps_two_apis_with_the_same_stage_and_alias_names_apart() -> None:
    graph = healthy()
    other_arn = FUNCTION_ARN.replace("fn-abc1234", "fn2-def5678")
    body = json.loads(json.dumps(body_of(graph)).replace(FUNCTION_ARN, other_arn))
    records = [
        ResourceRecord(
            FUNCTION, "fn2", {}, {"name": "fn2-def5678", "arn": other_arn, "version": "9"}, "fn2"
        ),
        ResourceRecord(
            ALIAS,
            "fn2-dev-alias",
            {"name": "dev", "functionName": "fn2-def5678", "functionVersion": "9"},
            {},
            "fn2-dev-alias",
        ),
        ResourceRecord(REST_API, "api2", {"body": json.dumps(body)}, {}, "b2b2b2b2b2"),
        ResourceRecord(
            STAGE,
            "api2-dev-stage",
            {"restApi": "b2b2b2b2b2", "stageName": "dev", "variables": {"lambdaAlias": "dev"}},
            {},
            "ags-api2-dev",
        ),
    ]
    for record in records:
        graph.add(record)
    dev_rows = [row for row in routing_table(graph) if row.stage == "dev"]
    assert dev_rows == [
        RouteShare("dev", "live", 100.0, "dev", "4", newest=True, api="api"),
        RouteShare("dev", "live", 100.0, "dev", "9", newest=True, api="api2"),
    ]


def test_routing_table_shows_weights_inside_a_weighted_alias() -> None:
    graph = healthy()
    graph.resources["dev-live-alias"].inputs["functionVersion"] = "3"
    graph.resources["dev-live-alias"].inputs["routingConfig"] = {
        "additionalVersionWeights": {"4": 0.25, "5": "lots"}
    }
    dev = [row for row in routing_table(graph) if row.stage == "dev"]
    # A weight that is no number is left out; preflight reports it.
    assert dev == [
        RouteShare("dev", "live", 100.0, "dev", "3", newest=False, weights={"4": 0.25}, api="api")
    ]


def test_routing_table_marks_an_alias_missing_from_the_graph() -> None:
    graph = healthy()
    del graph.resources["prod-canary-alias"]
    canary = [row for row in routing_table(graph) if row.role == "canary"]
    assert canary == [
        RouteShare("prod", "canary", 10.0, "prod-canary", None, newest=False, api="api")
    ]


def test_a_route_share_names_its_api() -> None:
    with pytest.raises(TypeError, match="api"):
        RouteShare("dev", "live", 100.0, "dev", "4", newest=True)  # type: ignore[call-arg]
