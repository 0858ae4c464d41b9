"""What a stage's live and canary traffic publish to CloudWatch, and the alarms and dashboard
that watch it, as plain data: no Pulumi, no AWS calls, so the component and the release tool
build their queries from the same definitions.

The metrics, as AWS documents them:

* Lambda publishes ``Invocations``, ``Errors``, ``Throttles`` and ``Duration`` in ``AWS/Lambda``
  per function (``FunctionName``), per alias or version (``FunctionName`` and
  ``Resource = "<function name>:<alias>"``), and, for the invocations of an alias, per version
  that ran them (``ExecutedVersion`` added): "Use the ExecutedVersion dimension to compare error
  rates for two versions of a function that are both targets of a weighted alias".
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics.html and
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html ; the ``Resource``
  value's form: https://github.com/aws/aws-cdk/pull/3728 , and ``ExecutedVersion`` on a
  weighted alias for a new version's alarm: https://github.com/aws/serverless-application-model/pull/656
* ``Duration`` supports percentile statistics (``p50``, ``p99``; Lambda's metrics page above).
  CloudWatch lists percentile rank beside them: ``PR(:300)`` is the percent of data points at
  most 300, so the share of invocations slower than 300 ms is ``100 - PR(:300)``.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html
* Metric math divides ``Errors`` by ``Invocations`` for an error rate, and ``IF`` with a
  comparison keeps or replaces each data point.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
* API Gateway publishes ``Count``, ``4XXError``, ``5XXError``, ``Latency`` and
  ``IntegrationLatency`` in ``AWS/ApiGateway`` per REST API (``ApiName``), per stage (``ApiName``,
  ``Stage``) and, with detailed metrics, per method. No dimension or value tells a stage's
  canary requests apart: the canary documentation says only that canary requests get "their own
  logs and metrics", reported to the stage's log group and a ``/Canary`` log group, and names no
  metric dimension for them.
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html
  https://docs.aws.amazon.com/apigateway/latest/developerguide/canary-release.html
  So the stage's metrics here are live and canary together, and the canary side is watched
  through Lambda's per-alias (or per-version) metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

LAMBDA_NAMESPACE = "AWS/Lambda"
APIGATEWAY_NAMESPACE = "AWS/ApiGateway"

PERIOD_SECONDS = 300
"""Every alarm and graph aggregates five minutes: long enough to hold a canary's share of a
quiet stage's requests, short enough to catch a bad release within a quarter of an hour."""

DEFAULT_ERROR_RATE_PERCENT = 1.0
DEFAULT_P99_SHARE_OF_TIMEOUT = 0.8
"""The p99 duration alarm's default threshold, as a share of the function's timeout: an
invocation that slow is about to be cut off (and answered 500)."""
MIN_INVOCATIONS = 20
"""Fewer invocations than this in a period never raise the error-rate alarm, so that one error
in two requests does not page."""

# A canary without traffic is not failing, and a period without invocations has no errors.
TREAT_MISSING_DATA = "notBreaching"

NEWEST: Literal["newest"] = "newest"
"""Stands for the function's newest published version, known only once it is published."""

Role = Literal["live", "canary"]


def lambda_alias_dimensions(function_name: str, alias: str) -> dict[str, str]:
    """The dimensions of every invocation of ``alias`` (whichever version ran it)."""
    return {"FunctionName": function_name, "Resource": f"{function_name}:{alias}"}


def lambda_version_dimensions(function_name: str, alias: str, version: str) -> dict[str, str]:
    """The dimensions of the invocations of ``alias`` that ``version`` ran: one side of a
    weighted alias."""
    return {**lambda_alias_dimensions(function_name, alias), "ExecutedVersion": version}


def apigateway_stage_dimensions(api_name: str, stage: str) -> dict[str, str]:
    """The dimensions of a REST API stage's requests, live and canary together (API Gateway
    publishes no separate canary metrics, see the module's docstring).

    ``api_name`` is the REST API's name, not its id.
    """
    return {"ApiName": api_name, "Stage": stage}


@dataclass(frozen=True)
class Traffic:
    """One side of a stage's traffic, as Lambda's metrics can single it out."""

    role: Role
    alias: str
    """The alias invoked."""
    version: int | Literal["newest"] | None = None
    """Only the invocations of ``alias`` that this version ran (one side of a weighted alias):
    a published version or ``"newest"``. ``None``: every invocation of ``alias``."""

    def executed_version(self, newest_version: str) -> str | None:
        """The version whose share this is, ``"newest"`` read as ``newest_version``."""
        if self.version is None:
            return None
        return newest_version if self.version == NEWEST else str(self.version)

    def dimensions(self, function_name: str, newest_version: str) -> dict[str, str]:
        """The Lambda dimensions of this traffic."""
        version = self.executed_version(newest_version)
        if version is None:
            return lambda_alias_dimensions(function_name, self.alias)
        return lambda_version_dimensions(function_name, self.alias, version)

    def describe(self, newest_version: str) -> str:
        """E.g. ``alias prod-canary`` or ``version 4 of alias prod``."""
        version = self.executed_version(newest_version)
        return (
            f"alias {self.alias}" if version is None else f"version {version} of alias {self.alias}"
        )


def stage_traffic(
    live_alias: str, canary_alias: str, *, weighted: bool, stable_version: int | None
) -> tuple[Traffic, Traffic]:
    """The live and canary sides of a stage's traffic.

    A stage canary sends its share to the canary alias, so each side is an alias. A weighted
    live alias (``weighted``) serves both sides itself, the canary share running the newest
    version; only ``ExecutedVersion`` tells them apart, and the canary alias gets no traffic.
    """
    if not weighted:
        return Traffic("live", live_alias), Traffic("canary", canary_alias)
    return Traffic("live", live_alias, stable_version), Traffic("canary", live_alias, NEWEST)


@dataclass(frozen=True)
class AlarmThresholds:
    """When a side of a stage's traffic is unhealthy."""

    error_rate_percent: float
    """Errors per invocation, in percent, above which a period breaches."""
    p99_duration_ms: float
    """p99 of ``Duration`` above which a period breaches."""
    min_invocations: int = MIN_INVOCATIONS
    """Invocations a period needs before its error rate counts."""


@dataclass(frozen=True)
class MetricStat:
    """A Lambda metric of the alarm's traffic, aggregated over a period."""

    id: str
    metric_name: str
    stat: str


@dataclass(frozen=True)
class Expression:
    """Metric math over the other queries' ids."""

    id: str
    expression: str
    label: str


@dataclass(frozen=True)
class AlarmDefinition:
    """One CloudWatch alarm on one side of a stage's traffic."""

    suffix: str
    """Unique within the stage, e.g. ``canary-error-rate``."""
    traffic: Traffic
    whole_alias: bool
    """Watch every invocation of the traffic's alias, not only its version's share. Throttles
    are watched so: Lambda documents ``ExecutedVersion`` as the version that ran an alias'
    invocation, and not whether a throttled invocation, which ran none, carries one."""
    description: str
    queries: tuple[MetricStat | Expression, ...]
    """The last query is the value compared with the threshold."""
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    low_sample_percentiles: Literal["ignore"] | None = None
    """``ignore``: a period with too few invocations for a meaningful percentile leaves the
    alarm as it is, so one slow cold start in three requests does not page."""
    period: int = PERIOD_SECONDS
    treat_missing_data: str = TREAT_MISSING_DATA

    @property
    def role(self) -> Role:
        return self.traffic.role

    def dimensions(self, function_name: str, newest_version: str) -> dict[str, str]:
        """The Lambda dimensions every metric of this alarm is read with."""
        if self.whole_alias:
            return lambda_alias_dimensions(function_name, self.traffic.alias)
        return self.traffic.dimensions(function_name, newest_version)


def alarm_definitions(
    traffic: Sequence[Traffic], thresholds: AlarmThresholds
) -> list[AlarmDefinition]:
    """Error rate and p99 duration alarms for each side of the traffic, and a throttles alarm
    for each alias invoked (a weighted alias' sides share one)."""
    definitions: list[AlarmDefinition] = []
    throttle_watched: set[str] = set()
    for side in traffic:
        definitions += [
            AlarmDefinition(
                suffix=f"{side.role}-error-rate",
                traffic=side,
                whole_alias=False,
                description=(
                    f"More than {thresholds.error_rate_percent:g}% of the {side.role} "
                    f"invocations failed in 2 of 3 periods of {PERIOD_SECONDS // 60} minutes "
                    f"(periods with fewer than {thresholds.min_invocations} invocations count "
                    "as healthy)"
                ),
                queries=(
                    MetricStat("errors", "Errors", "Sum"),
                    MetricStat("invocations", "Invocations", "Sum"),
                    Expression("rate", "100 * errors / invocations", "Error rate (%)"),
                    Expression(
                        "guarded_rate",
                        f"IF(invocations >= {thresholds.min_invocations}, rate, 0)",
                        f"Error rate (%), 0 below {thresholds.min_invocations} invocations",
                    ),
                ),
                threshold=thresholds.error_rate_percent,
                comparison="GreaterThanThreshold",
                evaluation_periods=3,
                datapoints_to_alarm=2,
            ),
            AlarmDefinition(
                suffix=f"{side.role}-p99-duration",
                traffic=side,
                whole_alias=False,
                description=(
                    f"The {side.role} invocations' p99 duration exceeded "
                    f"{thresholds.p99_duration_ms:g} ms in 2 of 3 periods of "
                    f"{PERIOD_SECONDS // 60} minutes"
                ),
                queries=(MetricStat("p99", "Duration", "p99"),),
                threshold=thresholds.p99_duration_ms,
                comparison="GreaterThanThreshold",
                evaluation_periods=3,
                datapoints_to_alarm=2,
                low_sample_percentiles="ignore",
            ),
        ]
        if side.alias not in throttle_watched:
            throttle_watched.add(side.alias)
            definitions.append(
                AlarmDefinition(
                    suffix=f"{side.role}-throttles",
                    traffic=side,
                    whole_alias=True,
                    description=(
                        f"Lambda refused at least one invocation of alias {side.alias} "
                        f"for want of concurrency in the last {PERIOD_SECONDS // 60} minutes"
                    ),
                    queries=(MetricStat("throttles", "Throttles", "Sum"),),
                    threshold=1,
                    comparison="GreaterThanOrEqualToThreshold",
                    evaluation_periods=1,
                    datapoints_to_alarm=1,
                )
            )
    return definitions


# --- The dashboard ------------------------------------------------------------------------------

_GRID_WIDTH = 24
_HEIGHT = 6


def _metric(
    namespace: str,
    metric_name: str,
    dimensions: dict[str, str],
    stat: str,
    label: str,
    **extra: Any,
) -> list[Any]:
    """One entry of a metric widget's ``metrics``: namespace, name, dimension name/value pairs,
    then the rendering properties."""
    row: list[Any] = [namespace, metric_name]
    for name, value in dimensions.items():
        row += [name, value]
    return [*row, {"stat": stat, "label": label, **extra}]


def dashboard_body(
    *,
    region: str,
    api_name: str,
    stage: str,
    function_name: str,
    newest_version: str,
    traffic: Sequence[Traffic],
) -> dict[str, Any]:
    """The dashboard of one stage: its API Gateway requests and latency on top, then a column
    per side of its traffic (live left, canary right) with invocations and errors, p50 and p99
    duration, and throttles, from Lambda.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html
    """

    def widget(title: str, metrics: list[list[Any]], *, x: int, y: int, width: int) -> Any:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": width,
            "height": _HEIGHT,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "period": PERIOD_SECONDS,
                "metrics": metrics,
            },
        }

    api = apigateway_stage_dimensions(api_name, stage)
    half = _GRID_WIDTH // 2
    together = "API Gateway, live and canary together"
    widgets = [
        widget(
            f"Stage {stage}: requests and errors ({together})",
            [
                # API Gateway documents SampleCount as the statistic of Count.
                _metric(APIGATEWAY_NAMESPACE, "Count", api, "SampleCount", "Requests"),
                _metric(APIGATEWAY_NAMESPACE, "4XXError", api, "Sum", "4XX"),
                _metric(APIGATEWAY_NAMESPACE, "5XXError", api, "Sum", "5XX"),
            ],
            x=0,
            y=0,
            width=half,
        ),
        widget(
            f"Stage {stage}: latency ({together})",
            [
                _metric(APIGATEWAY_NAMESPACE, "Latency", api, "p50", "p50"),
                _metric(APIGATEWAY_NAMESPACE, "Latency", api, "p99", "p99"),
            ],
            x=half,
            y=0,
            width=half,
        ),
    ]
    width = _GRID_WIDTH // max(len(traffic), 1)
    for column, side in enumerate(traffic):
        x = column * width
        heading = f"{side.role}: {side.describe(newest_version)}"
        served = side.dimensions(function_name, newest_version)
        widgets += [
            widget(
                f"{heading}: invocations and errors",
                [
                    _metric(
                        LAMBDA_NAMESPACE, "Invocations", served, "Sum", "Invocations", id="inv"
                    ),
                    _metric(LAMBDA_NAMESPACE, "Errors", served, "Sum", "Errors", id="err"),
                    [
                        {
                            "expression": "100 * err / inv",
                            "label": "Error rate (%)",
                            "yAxis": "right",
                        }
                    ],
                ],
                x=x,
                y=_HEIGHT,
                width=width,
            ),
            widget(
                f"{heading}: duration",
                [
                    _metric(LAMBDA_NAMESPACE, "Duration", served, "p50", "p50"),
                    _metric(LAMBDA_NAMESPACE, "Duration", served, "p99", "p99"),
                ],
                x=x,
                y=2 * _HEIGHT,
                width=width,
            ),
            widget(
                # Throttles are read per alias, as the alarms read them (see AlarmDefinition).
                f"{side.role}: throttles of alias {side.alias}",
                [
                    _metric(
                        LAMBDA_NAMESPACE,
                        "Throttles",
                        lambda_alias_dimensions(function_name, side.alias),
                        "Sum",
                        "Throttles",
                    )
                ],
                x=x,
                y=3 * _HEIGHT,
                width=width,
            ),
        ]
    return {"widgets": widgets}
