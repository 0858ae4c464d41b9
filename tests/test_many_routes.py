"""A program with 100 routes of every shape API Gateway accepts, through the plan and preflight:
the API stays one document, and the invoke permissions do not grow with the routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from versioned_lambda_api.analysis import plan
from versioned_lambda_api.analysis.routing import REQUEST_METHODS
from versioned_lambda_api.api_spec import route_tree_problems

PROGRAM = ROOT / "tests" / "programs" / "many_routes"
ROUTES = 100
OPENAPI_METHODS = {method.lower() for method in REQUEST_METHODS} | {
    "x-amazon-apigateway-any-method"
}


@pytest.fixture
def planned(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """The exit code and JSON plan of the program's ``test`` stack; its OpenAPI documents are
    written to ``tmp_path``."""
    argv = ["--program", str(PROGRAM), "--stack", "test", "--format", "json"]
    code = plan.main([*argv, "--openapi", str(tmp_path)])
    return code, json.loads(capsys.readouterr().out)


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (path, key)
        for path, item in document["paths"].items()
        for key in item
        if key in OPENAPI_METHODS
    ]


def test_the_plan_finds_nothing_wrong(planned: tuple[int, dict[str, Any]]) -> None:
    code, document = planned
    assert [f for f in document["findings"] if f["severity"] == "error"] == []
    assert code == 0


def test_the_routing_table_follows_each_stage(planned: tuple[int, dict[str, Any]]) -> None:
    _, document = planned
    rows = [
        (row["api"], row["stage"], row["share"], row["alias"], row["version"], row["newest"])
        for row in document["routing"]
    ]
    # prod pins 3 in Pulumi.test.yaml, so the deploy is assumed to publish 4.
    assert rows == [
        ("shop-api", "prod", 90.0, "prod", "3", False),
        ("shop-api", "prod", 10.0, "prod-canary", "4", True),
        ("shop-api", "staging", 100.0, "staging", "4", True),
    ]


def test_one_permission_per_stage_and_reachable_alias_not_per_route(
    planned: tuple[int, dict[str, Any]],
) -> None:
    _, document = planned
    types = [resource["type"] for resource in document["resources"]]
    # staging's live alias, prod's live and canary aliases.
    assert types.count("aws:lambda/permission:Permission") == 3
    assert "aws:apigateway/method:Method" not in types
    assert "aws:apigateway/integration:Integration" not in types


@pytest.mark.usefixtures("planned")
def test_the_openapi_document_has_every_route(tmp_path: Path) -> None:
    document = json.loads((tmp_path / "shop-api.json").read_text())
    operations = _operations(document)
    assert len(operations) == ROUTES
    assert all(
        "x-amazon-apigateway-integration" in document["paths"][path][key]
        for path, key in operations
    )
    paths = {path for path, _ in operations}
    assert {"/orders/{id}/items/{itemId}", "/files/{proxy+}", "/v1/health"} <= paths
    assert sum(key == "x-amazon-apigateway-any-method" for _, key in operations) == 12
    assert route_tree_problems(path.lstrip("/") for path in paths) == []


def test_every_route_renders_its_request_for_every_stage(
    planned: tuple[int, dict[str, Any]],
) -> None:
    _, document = planned
    templates = document["templates"]
    assert len(templates) == 2 * ROUTES
    assert all(template["valid"] for template in templates)
    greedy = next(t for t in templates if t["path"] == "/files/{proxy+}" and t["stage"] == "prod")
    assert greedy["payload"]["stage"] == "prod"
