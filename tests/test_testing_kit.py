"""The test kit as another program uses it: run a program folder for a stack, then assert."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from components import ConfigError
from components.testing import (
    ACCOUNT,
    REGION,
    execute_program,
    run_program,
    stack_config,
    start_program_mocks,
)
from tests.conftest import ROOT

CONSUMER_MAIN = """
from pathlib import Path

import pulumi
from components import VersionedLambdaApi, function_code_archive

config = pulumi.Config()
api = VersionedLambdaApi(
    "orders",
    {
        "code": function_code_archive(Path(__file__).parent / "src"),
        "handler": "app.handler",
        "routes": [{"path": "orders/{id}", "method": "GET"}],
        "stages": [
            {
                "name": "live",
                "alias": config.require("alias"),
                "canary_percent": float(config.require("share")),
                "stable_version": int(config.require("pinned")),
            }
        ],
    },
)
pulumi.export("urls", api.stage_urls)
"""


@pytest.fixture
def consumer(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "__main__.py").write_text(CONSUMER_MAIN)
    (tmp_path / "Pulumi.yaml").write_text(
        textwrap.dedent(
            """\
            name: orders
            runtime: python
            config:
              share:
                type: string
                default: "5"
            """
        )
    )
    (tmp_path / "Pulumi.live.yaml").write_text(
        "config:\n  orders:alias: current\n  orders:pinned: 7\n"
    )
    return tmp_path


def test_the_documented_example_asserts_prods_canary_in_a_few_lines() -> None:
    run = run_program(ROOT, "prod", {"stableVersion": "3"})
    canary = next(row for row in run.routing() if row.stage == "prod" and row.role == "canary")
    assert (canary.alias, canary.share) == ("prod-canary", 10)
    assert not [f for f in run.findings() if f.severity == "error"]


def test_another_program_runs_with_its_own_project_defaults_and_stack(consumer: Path) -> None:
    assert stack_config(consumer, "live") == {
        "orders:share": "5",
        "orders:alias": "current",
        "orders:pinned": "7",
    }
    run = run_program(consumer, "live", published_version=9)
    assert [(r.stage, r.role, r.share, r.alias, r.version) for r in run.routing()] == [
        ("live", "live", 95.0, "current", "7"),
        ("live", "canary", 5.0, "current-canary", "9"),
    ]
    assert run.findings() == []
    assert set(run.exports["urls"]) == {"live"}


def test_overrides_win_over_the_stack_file(consumer: Path) -> None:
    run = run_program(consumer, "live", {"share": "0"})
    assert [(r.role, r.share) for r in run.routing()] == [("live", 100.0)]


def test_the_program_runs_in_its_folder_and_leaves_no_trace(consumer: Path) -> None:
    before_cwd, before_path = os.getcwd(), list(sys.path)
    run_program(consumer, "live")
    assert (os.getcwd(), sys.path) == (before_cwd, before_path)


def test_a_failing_program_leaves_the_graph_to_inspect() -> None:
    mocks = start_program_mocks(ROOT, "prod", {"canaryPercent": "-1"})
    with pytest.raises(ConfigError, match="canaryPercent"):
        execute_program(ROOT, mocks)
    assert mocks.graph.resources == {}


def test_a_missing_stack_file_is_named(consumer: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Pulumi\.staging\.yaml does not exist"):
        run_program(consumer, "staging")


def test_alarms_and_dashboards_get_the_arns_aws_would_give_them() -> None:
    run = run_program(ROOT, "prod")
    alarms = run.graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    for alarm in alarms:
        name = alarm.inputs["name"]
        assert alarm.id == name
        assert alarm.outputs["arn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    dashboard = run.graph.one("aws:cloudwatch/dashboard:Dashboard")
    assert dashboard.id == "event-logger-prod"
    assert dashboard.outputs["dashboardArn"] == (
        f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/event-logger-prod"
    )
