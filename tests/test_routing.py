"""The routing read back from a resource graph: endpoints, invocations, the routing table."""

from __future__ import annotations

import copy

import pytest

from components.graph import ResourceGraph, ResourceRecord
from components.routing import (
    ALIAS,
    INTEGRATION,
    STAGE,
    RouteShare,
    endpoints,
    invocations,
    route_tree_problems,
    routing_table,
    traffic_shares,
)
from tests.conftest import run_stack


def graph_of(
    stack: str, overrides: dict[str, str] | None = None, version: int = 1
) -> ResourceGraph:
    return copy.deepcopy(run_stack(stack, overrides, published_version=version).graph)


def stage_record(percent: object = None, overrides: dict[str, str] | None = None) -> ResourceRecord:
    inputs: dict[str, object] = {"stageName": "prod", "variables": {"lambdaAlias": "prod"}}
    if percent is not None:
        inputs["canarySettings"] = {
            "percentTraffic": percent,
            "stageVariableOverrides": overrides or {},
        }
    return ResourceRecord(STAGE, "s", inputs, inputs, "id")


def test_endpoints_read_method_path_and_the_stage_variable_qualifier() -> None:
    graph = graph_of("prod")
    function_arn = graph.one("aws:lambda/function:Function").outputs["arn"]
    found = {(e.http_method, e.path, e.function_arn, e.qualifier) for e in endpoints(graph)}
    assert found == {
        ("POST", "events", function_arn, "${stageVariables.lambdaAlias}"),
        ("GET", "events", function_arn, "${stageVariables.lambdaAlias}"),
    }


def test_a_non_lambda_integration_has_no_function() -> None:
    graph = graph_of("dev")
    for integration in graph.of_type(INTEGRATION):
        integration.inputs["uri"] = "https://example.com/{proxy}"
    assert {e.function_arn for e in endpoints(graph)} == {None}
    assert invocations(graph) == []


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
    ],
)
def test_traffic_shares(stage: ResourceRecord, expected: list[tuple[str, float, str]]) -> None:
    shares = [(role, share, seen["lambdaAlias"]) for role, share, seen in traffic_shares(stage)]
    assert shares == expected


def test_invocations_substitute_each_shares_stage_variables() -> None:
    graph = graph_of("prod")
    invoked = {(i.role, i.share, i.endpoint.http_method, i.qualifier) for i in invocations(graph)}
    assert invoked == {
        ("live", 90.0, "POST", "prod"),
        ("live", 90.0, "GET", "prod"),
        ("canary", 10.0, "POST", "prod-canary"),
        ("canary", 10.0, "GET", "prod-canary"),
    }
    assert all(i.undefined_variables == () for i in invocations(graph))


def test_an_undefined_stage_variable_is_reported_per_share() -> None:
    graph = graph_of("prod")
    stage = graph.one(STAGE)
    stage.inputs["canarySettings"]["stageVariableOverrides"] = {}
    stage.inputs["variables"] = {"other": "x"}
    undefined = {(i.role, i.undefined_variables) for i in invocations(graph)}
    assert undefined == {("live", ("lambdaAlias",)), ("canary", ("lambdaAlias",))}


def test_routing_table_for_a_pinned_release() -> None:
    rows = routing_table(graph_of("prod", {"stableVersion": "3"}, version=4))
    assert rows == [
        RouteShare("prod", "live", 90.0, "prod", "3", newest=False),
        RouteShare("prod", "canary", 10.0, "prod-canary", "4", newest=True),
    ]


def test_routing_table_for_dev_sends_everything_to_the_newest_version() -> None:
    assert routing_table(graph_of("dev")) == [
        RouteShare("dev", "live", 100.0, "dev", "1", newest=True)
    ]


def test_routing_table_shows_weights_inside_a_weighted_alias() -> None:
    graph = graph_of("dev", version=5)
    (live,) = [a for a in graph.of_type(ALIAS) if a.inputs["name"] == "dev"]
    live.inputs["functionVersion"] = "4"
    live.inputs["routingConfig"] = {"additionalVersionWeights": {"5": 0.25}}
    assert routing_table(graph) == [
        RouteShare("dev", "live", 100.0, "dev", "4", newest=False, weights={"5": 0.25})
    ]


def test_routing_table_marks_an_alias_missing_from_the_graph() -> None:
    graph = graph_of("prod")
    graph.resources = {
        name: record
        for name, record in graph.resources.items()
        if not (record.type == ALIAS and record.inputs["name"] == "prod-canary")
    }
    canary = [row for row in routing_table(graph) if row.role == "canary"]
    assert canary == [RouteShare("prod", "canary", 10.0, "prod-canary", None, newest=False)]


# --- Route trees API Gateway refuses --------------------------------------------------------


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
    assert route_tree_problems(paths) == []


def test_two_variable_siblings_are_refused_naming_both_routes() -> None:
    (problem,) = route_tree_problems(["orders/{id}", "orders/{orderId}/items", "orders"])
    assert problem.startswith("routes /orders/{id}, /orders/{orderId}/items give /orders ")
    assert "more than one path parameter as children ({id}, {orderId})" in problem
    assert "one variable path part per resource" in problem


def test_variable_siblings_under_the_root() -> None:
    (problem,) = route_tree_problems(["{a}", "{b}/c"])
    assert "routes /{a}, /{b}/c give / more than one path parameter" in problem


def test_a_greedy_and_a_plain_variable_as_siblings() -> None:
    (problem,) = route_tree_problems(["files/{proxy+}", "files/{name}"])
    assert "a greedy and a plain path parameter as children ({name}, {proxy+})" in problem


def test_a_child_under_a_greedy_parameter() -> None:
    (problem,) = route_tree_problems(
        ["files/{proxy+}", "files/{proxy+}/meta", "files/{proxy+}/x/y"]
    )
    assert problem.startswith(
        "routes /files/{proxy+}/meta, /files/{proxy+}/x/y continue below the greedy path "
        "parameter of /files/{proxy+}: "
    )
    assert "cannot create a child of a resource with a greedy path variable" in problem


def test_every_problem_of_a_tree_is_reported_once() -> None:
    problems = route_tree_problems(
        ["a/{x}", "a/{y}", "a/{y}", "b/{proxy+}/c", "a/{x}/d/{p+}/e", "a/{x}/d/{q}"]
    )
    assert len(problems) == 4
    assert sum("continue below the greedy" in p for p in problems) == 2
    assert sum("({x}, {y})" in p for p in problems) == 1
    assert sum("({p+}, {q})" in p for p in problems) == 1
