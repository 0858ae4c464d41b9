"""The release tool's AWS calls: canary metrics in one GetMetricData call per page, and the
rollback that takes effect in seconds, before ``pulumi up`` records it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from release.judge import Period
from versioned_lambda_api.metrics import Role

NAMESPACE = "AWS/Lambda"
ROLES: tuple[Role, Role] = ("live", "canary")

# (query id suffix, metric, statistic). PR(:T) is CloudWatch's percentile rank: the percent of
# invocations that took at most T ms, so the share slower than T is 100 minus it.
_PER_PERIOD = (
    ("requests", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
    ("fast", "Duration", "PR(:{threshold})"),
)
_WHOLE_WINDOW = (("p50", "Duration", "p50"), ("p99", "Duration", "p99"))


@dataclass(frozen=True)
class VersionSummary:
    """One alias over the whole window."""

    requests: int
    errors: int
    throttles: int
    p50_ms: float | None
    p99_ms: float | None

    @classmethod
    def empty(cls) -> VersionSummary:
        return cls(requests=0, errors=0, throttles=0, p50_ms=None, p99_ms=None)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class MetricsWindow:
    """What the live and canary aliases did, per period and in total."""

    periods: list[Period]
    live: VersionSummary
    canary: VersionSummary


def metric_query(
    query_id: str, dimensions: Mapping[str, str], metric: str, statistic: str, period: int
) -> dict[str, Any]:
    """One GetMetricData query of a Lambda metric."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": metric,
                "Dimensions": [
                    {"Name": name, "Value": value} for name, value in dimensions.items()
                ],
            },
            "Period": period,
            "Stat": statistic,
        },
    }


def metric_queries(
    dimensions: Mapping[Role, Mapping[str, str]],
    latency_threshold_ms: float,
    period_seconds: int,
    window_seconds: int,
) -> list[dict[str, Any]]:
    """GetMetricData queries for both sides of the traffic (each side's Lambda dimensions, see
    ``versioned_lambda_api.metrics.Traffic``): per-period counts, whole-window percentiles."""
    threshold = f"{latency_threshold_ms:g}"
    queries = []
    for role in ROLES:
        for suffix, metric, statistic in _PER_PERIOD:
            queries.append(
                metric_query(
                    f"{role}_{suffix}",
                    dimensions[role],
                    metric,
                    statistic.format(threshold=threshold),
                    period_seconds,
                )
            )
        for suffix, metric, statistic in _WHOLE_WINDOW:
            queries.append(
                metric_query(
                    f"{role}_{suffix}", dimensions[role], metric, statistic, window_seconds
                )
            )
    return queries


def read_metrics(
    cloudwatch: Any,
    *,
    dimensions: Mapping[Role, Mapping[str, str]],
    start: datetime,
    end: datetime,
    latency_threshold_ms: float,
    period_seconds: int = 60,
) -> MetricsWindow:
    """Both sides' metrics from ``start`` to ``end``, in as few GetMetricData calls as the
    results' pages need (one, for a release window). Both ends are rounded down to the
    period, as CloudWatch rounds the start (and answers aligned requests faster)."""
    start, end = floor_to(start, period_seconds), floor_to(end, period_seconds)
    if end <= start:  # not one whole period yet
        return MetricsWindow([], VersionSummary.empty(), VersionSummary.empty())
    window = int((end - start).total_seconds()) // 60 * 60
    queries = metric_queries(dimensions, latency_threshold_ms, period_seconds, window)
    series: dict[str, dict[datetime, float]] = {query["Id"]: {} for query in queries}
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            request["NextToken"] = token
        response = cloudwatch.get_metric_data(**request)
        for result in response["MetricDataResults"]:
            series[result["Id"]].update(zip(result["Timestamps"], result["Values"], strict=True))
        token = response.get("NextToken")
        if not token:
            break
    return _window(series)


def live_p99_ms(
    cloudwatch: Any, *, dimensions: Mapping[str, str], start: datetime, end: datetime
) -> float | None:
    """The p99 of ``Duration`` over ``start``..``end`` for one side's dimensions; ``None``
    when it had no invocations."""
    start, end = floor_to(start, 60), floor_to(end, 60)
    seconds = max(60, int((end - start).total_seconds()) // 60 * 60)
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[metric_query("p99", dimensions, "Duration", "p99", seconds)],
        StartTime=start,
        EndTime=end,
    )
    values = [value for result in response["MetricDataResults"] for value in result["Values"]]
    return max(values) if values else None


def floor_to(moment: datetime, period_seconds: int) -> datetime:
    """``moment`` rounded down to a whole multiple of ``period_seconds`` since the epoch."""
    seconds = int(moment.timestamp())
    return moment.fromtimestamp(seconds - seconds % period_seconds, tz=moment.tzinfo)


def _window(series: dict[str, dict[datetime, float]]) -> MetricsWindow:
    per_period_ids = [f"{role}_{suffix}" for role in ROLES for suffix, _, _ in _PER_PERIOD]
    timestamps = sorted({t for query_id in per_period_ids for t in series[query_id]})

    def count(role: str, suffix: str, at: datetime) -> int:
        return round(series[f"{role}_{suffix}"].get(at, 0.0))

    def slow(role: str, at: datetime) -> int:
        fast_percent = series[f"{role}_fast"].get(at)
        if fast_percent is None:
            return 0
        return round(count(role, "requests", at) * (100.0 - fast_percent) / 100.0)

    periods = [
        Period(
            live_requests=count("live", "requests", at),
            live_errors=count("live", "errors", at),
            live_slow=slow("live", at),
            canary_requests=count("canary", "requests", at),
            canary_errors=count("canary", "errors", at),
            canary_slow=slow("canary", at),
        )
        for at in timestamps
    ]

    def summary(role: str) -> VersionSummary:
        def total(suffix: str) -> int:
            return round(sum(series[f"{role}_{suffix}"].values()))

        def latest(suffix: str) -> float | None:
            values = series[f"{role}_{suffix}"]
            return values[max(values)] if values else None

        return VersionSummary(
            requests=total("requests"),
            errors=total("errors"),
            throttles=total("throttles"),
            p50_ms=latest("p50"),
            p99_ms=latest("p99"),
        )

    return MetricsWindow(periods, summary("live"), summary("canary"))


def stop_stage_canary(apigateway: Any, rest_api_id: str, stage: str) -> None:
    """Send no more of the stage's requests to its canary, now."""
    apigateway.update_stage(
        restApiId=rest_api_id,
        stageName=stage,
        patchOperations=[
            {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"}
        ],
    )


def stop_alias_canary(lambda_client: Any, function_name: str, alias: str) -> None:
    """Make the live alias send every invocation to its own version, now."""
    lambda_client.update_alias(
        FunctionName=function_name,
        Name=alias,
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
