"""The CloudWatch side as plain data: dimensions, the traffic a stage's alarms watch, alarm
definitions and the dashboard body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from versioned_lambda_api import metrics
from versioned_lambda_api.metrics import (
    AlarmDefinition,
    AlarmThresholds,
    Expression,
    MetricStat,
    Traffic,
    alarm_definitions,
    stage_traffic,
)

FUNCTION = "event-logger-function-17554db"
THRESHOLDS = AlarmThresholds(error_rate_percent=1.5, p99_duration_ms=800)
STAGE_TRAFFIC = stage_traffic("prod", "prod-canary", weighted=False, stable_version=3)
WEIGHTED_TRAFFIC = stage_traffic("prod", "prod-canary", weighted=True, stable_version=3)


# --- Dimensions ---------------------------------------------------------------------------------


def test_an_alias_is_its_function_name_and_the_qualified_resource() -> None:
    assert metrics.lambda_alias_dimensions(FUNCTION, "prod-canary") == {
        "FunctionName": FUNCTION,
        "Resource": f"{FUNCTION}:prod-canary",
    }


def test_a_version_inside_an_alias_adds_the_executed_version() -> None:
    assert metrics.lambda_version_dimensions(FUNCTION, "prod", "4") == {
        "FunctionName": FUNCTION,
        "Resource": f"{FUNCTION}:prod",
        "ExecutedVersion": "4",
    }


def test_a_stage_is_its_api_name_and_stage_name() -> None:
    assert metrics.apigateway_stage_dimensions("event-logger-api-1a2b3c4", "prod") == {
        "ApiName": "event-logger-api-1a2b3c4",
        "Stage": "prod",
    }


@pytest.mark.parametrize(
    ("traffic", "dimensions", "described"),
    [
        (
            Traffic("canary", "prod-canary"),
            {"Resource": f"{FUNCTION}:prod-canary"},
            "alias prod-canary",
        ),
        (
            Traffic("live", "prod", 3),
            {"Resource": f"{FUNCTION}:prod", "ExecutedVersion": "3"},
            "version 3 of alias prod",
        ),
        (
            Traffic("canary", "prod", "newest"),
            {"Resource": f"{FUNCTION}:prod", "ExecutedVersion": "7"},
            "version 7 of alias prod",
        ),
    ],
)
def test_traffic_reads_newest_as_the_published_version(
    traffic: Traffic, dimensions: dict[str, str], described: str
) -> None:
    assert traffic.dimensions(FUNCTION, "7") == {"FunctionName": FUNCTION, **dimensions}
    assert traffic.describe("7") == described


def test_a_stage_canary_is_watched_as_two_aliases() -> None:
    traffic = stage_traffic("prod", "prod-canary", weighted=False, stable_version=3)
    assert traffic == (Traffic("live", "prod"), Traffic("canary", "prod-canary"))


def test_a_weighted_alias_is_watched_as_two_versions_of_the_live_alias() -> None:
    pinned = stage_traffic("prod", "prod-canary", weighted=True, stable_version=3)
    assert pinned == (Traffic("live", "prod", 3), Traffic("canary", "prod", "newest"))
    unpinned = stage_traffic("prod", "prod-canary", weighted=True, stable_version=None)
    assert unpinned == (Traffic("live", "prod"), Traffic("canary", "prod", "newest"))


# --- Alarm definitions --------------------------------------------------------------------------


def by_suffix(definitions: list[AlarmDefinition]) -> dict[str, AlarmDefinition]:
    return {definition.suffix: definition for definition in definitions}


def test_every_side_gets_error_rate_and_duration_alarms_and_every_alias_a_throttle_alarm() -> None:
    assert [d.suffix for d in alarm_definitions(STAGE_TRAFFIC, THRESHOLDS)] == [
        "live-error-rate",
        "live-p99-duration",
        "live-throttles",
        "canary-error-rate",
        "canary-p99-duration",
        "canary-throttles",
    ]
    # Both sides of a weighted alias are one alias: one throttle alarm.
    assert [d.suffix for d in alarm_definitions(WEIGHTED_TRAFFIC, THRESHOLDS)] == [
        "live-error-rate",
        "live-p99-duration",
        "live-throttles",
        "canary-error-rate",
        "canary-p99-duration",
    ]


def test_error_rate_is_errors_per_invocation_guarded_by_a_minimum_of_invocations() -> None:
    thresholds = AlarmThresholds(error_rate_percent=2, p99_duration_ms=800, min_invocations=50)
    alarm = by_suffix(alarm_definitions(STAGE_TRAFFIC, thresholds))["canary-error-rate"]
    assert alarm.queries == (
        MetricStat("errors", "Errors", "Sum"),
        MetricStat("invocations", "Invocations", "Sum"),
        Expression("rate", "100 * errors / invocations", "Error rate (%)"),
        Expression(
            "guarded_rate",
            "IF(invocations >= 50, rate, 0)",
            "Error rate (%), 0 below 50 invocations",
        ),
    )
    assert (alarm.threshold, alarm.comparison) == (2, "GreaterThanThreshold")
    assert (alarm.evaluation_periods, alarm.datapoints_to_alarm) == (3, 2)
    assert "More than 2% of the canary invocations failed" in alarm.description
    assert "fewer than 50 invocations" in alarm.description


def test_duration_alarm_reads_the_p99_and_ignores_too_few_samples() -> None:
    alarm = by_suffix(alarm_definitions(STAGE_TRAFFIC, THRESHOLDS))["live-p99-duration"]
    assert alarm.queries == (MetricStat("p99", "Duration", "p99"),)
    assert (alarm.threshold, alarm.comparison) == (800, "GreaterThanThreshold")
    assert alarm.low_sample_percentiles == "ignore"
    assert "800 ms" in alarm.description


def test_throttle_alarm_goes_off_on_a_single_throttle() -> None:
    alarm = by_suffix(alarm_definitions(STAGE_TRAFFIC, THRESHOLDS))["canary-throttles"]
    assert alarm.queries == (MetricStat("throttles", "Throttles", "Sum"),)
    assert (alarm.threshold, alarm.comparison) == (1, "GreaterThanOrEqualToThreshold")
    assert (alarm.evaluation_periods, alarm.datapoints_to_alarm) == (1, 1)
    assert alarm.low_sample_percentiles is None


def test_every_alarm_treats_missing_data_as_healthy_over_five_minute_periods() -> None:
    for definition in alarm_definitions(STAGE_TRAFFIC + WEIGHTED_TRAFFIC, THRESHOLDS):
        assert definition.treat_missing_data == "notBreaching"
        assert definition.period == 300


def test_alarm_dimensions_single_out_the_side_except_for_throttles() -> None:
    alarms = by_suffix(alarm_definitions(WEIGHTED_TRAFFIC, THRESHOLDS))
    alias = {"FunctionName": FUNCTION, "Resource": f"{FUNCTION}:prod"}
    assert alarms["live-error-rate"].dimensions(FUNCTION, "4") == {**alias, "ExecutedVersion": "3"}
    assert alarms["canary-p99-duration"].dimensions(FUNCTION, "4") == {
        **alias,
        "ExecutedVersion": "4",
    }
    assert alarms["live-throttles"].dimensions(FUNCTION, "4") == alias
    assert [alarm.role for alarm in alarms.values()] == ["live"] * 3 + ["canary"] * 2


# --- The dashboard ------------------------------------------------------------------------------


def body(traffic: tuple[Traffic, Traffic], newest: str = "4") -> dict[str, Any]:
    return metrics.dashboard_body(
        region="eu-west-1",
        api_name="event-logger-api-1a2b3c4",
        stage="prod",
        function_name=FUNCTION,
        newest_version=newest,
        traffic=traffic,
    )


def named_metrics(widget: dict[str, Any]) -> list[dict[str, str]]:
    """Each metric of a widget as {namespace, metric, dimension: value, ...}; math is left out."""
    found = []
    for row in widget["properties"]["metrics"]:
        names = [part for part in row if isinstance(part, str)]
        if names:
            dimensions = dict(zip(names[2::2], names[3::2], strict=True))
            found.append({"namespace": names[0], "metric": names[1], **dimensions})
    return found


def test_dashboard_is_json_with_every_widget_in_the_region_on_the_grid() -> None:
    widgets = json.loads(json.dumps(body(STAGE_TRAFFIC)))["widgets"]
    assert len(widgets) == 2 + 2 * 3
    cells = set()
    for widget in widgets:
        assert widget["type"] == "metric"
        assert widget["properties"]["region"] == "eu-west-1"
        assert widget["properties"]["period"] == 300
        assert widget["x"] + widget["width"] <= 24
        cells.add((widget["x"], widget["y"]))
    assert len(cells) == len(widgets), "widgets overlap"


def test_the_top_row_is_the_stage_in_api_gateway() -> None:
    top = [w for w in body(STAGE_TRAFFIC)["widgets"] if w["y"] == 0]
    seen = {m["metric"] for widget in top for m in named_metrics(widget)}
    assert seen == {"Count", "4XXError", "5XXError", "Latency"}
    for widget in top:
        assert "live and canary together" in widget["properties"]["title"]
        for metric in named_metrics(widget):
            assert metric["namespace"] == "AWS/ApiGateway"
            assert (metric["ApiName"], metric["Stage"]) == ("event-logger-api-1a2b3c4", "prod")


@pytest.mark.parametrize(
    ("traffic", "columns"),
    [
        (
            STAGE_TRAFFIC,
            {
                0: {"Resource": f"{FUNCTION}:prod"},
                12: {"Resource": f"{FUNCTION}:prod-canary"},
            },
        ),
        (
            WEIGHTED_TRAFFIC,
            {
                0: {"Resource": f"{FUNCTION}:prod", "ExecutedVersion": "3"},
                12: {"Resource": f"{FUNCTION}:prod", "ExecutedVersion": "4"},
            },
        ),
    ],
)
def test_live_is_the_left_column_and_canary_the_right(
    traffic: tuple[Traffic, Traffic], columns: dict[int, dict[str, str]]
) -> None:
    lambda_widgets = [w for w in body(traffic)["widgets"] if w["y"] > 0]
    assert {w["x"] for w in lambda_widgets} == set(columns)
    seen: dict[int, set[str]] = {x: set() for x in columns}
    for widget in lambda_widgets:
        role = "live" if widget["x"] == 0 else "canary"
        assert widget["properties"]["title"].startswith(f"{role}: ")
        for metric in named_metrics(widget):
            seen[widget["x"]].add(metric["metric"])
            assert metric["namespace"] == "AWS/Lambda"
            assert metric["FunctionName"] == FUNCTION
            expected = dict(columns[widget["x"]])
            if metric["metric"] == "Throttles":
                # The alias' throttles, as the alarms read them.
                expected.pop("ExecutedVersion", None)
            assert {k: v for k, v in metric.items() if k in ("Resource", "ExecutedVersion")} == (
                expected
            )
    assert seen == {x: {"Invocations", "Errors", "Duration", "Throttles"} for x in columns}


def test_each_side_shows_p50_and_p99_duration_and_its_error_rate() -> None:
    live = [w for w in body(STAGE_TRAFFIC)["widgets"] if w["y"] > 0 and w["x"] == 0]
    stats = [
        row[-1]["stat"]
        for widget in live
        for row in widget["properties"]["metrics"]
        if "Duration" in row
    ]
    assert stats == ["p50", "p99"]
    expressions = [
        row[0]["expression"]
        for widget in live
        for row in widget["properties"]["metrics"]
        if "expression" in row[0]
    ]
    assert expressions == ["100 * err / inv"]


def test_a_weighted_canary_is_titled_with_the_version_it_runs() -> None:
    titles = [w["properties"]["title"] for w in body(WEIGHTED_TRAFFIC, newest="9")["widgets"]]
    assert "canary: version 9 of alias prod: duration" in titles
    assert "live: version 3 of alias prod: duration" in titles
