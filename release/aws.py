"""The release tool's AWS calls: canary metrics in one GetMetricData call per page, the
canary share AWS actually serves, and the rollback that takes effect in seconds, before
``pulumi up`` records it. Every failure of these calls is an :class:`AwsError` whose ``kind``
says what is known: refused, throttled, unreachable (outcome unknown) or no credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from release.judge import Period
from versioned_lambda_api.metrics import Role
from versioned_lambda_api.stage_variables import ALIAS_STAGE_VARIABLE

NAMESPACE = "AWS/Lambda"
FUNCTION_NAMESPACE = "EventLogger/Canary"
"""The function's own high-resolution metrics (function/handler.py, METRICS_NAMESPACE there):
``Requests``, ``Failures`` and ``Duration`` under Lambda's dimension names and values, so a
side's dimensions are the same in both namespaces."""
ROLES: tuple[Role, Role] = ("live", "canary")

MetricSource = Literal["lambda", "function"]
"""Where a window's counts come from: Lambda's per-minute metrics, or the function's own
high-resolution ones (checked against Lambda's minutes)."""

# (query id suffix, metric, statistic). PR(:T) is CloudWatch's percentile rank: the percent of
# invocations that took at most T ms, so the share slower than T is 100 minus it.
_PER_PERIOD = (
    ("requests", "Invocations", "Sum"),
    ("errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
    ("fast", "Duration", "PR(:{threshold})"),
)
_WHOLE_WINDOW = (("p50", "Duration", "p50"), ("p99", "Duration", "p99"))
# The function's own counts, per period, under the same query id suffixes as Lambda's.
_FUNCTION_PER_PERIOD = (
    ("requests", "Requests", "Sum"),
    ("errors", "Failures", "Sum"),
    ("fast", "Duration", "PR(:{threshold})"),
)
# Lambda's, per minute, to check the function's counts against and to add what it never saw.
_LAMBDA_PER_MINUTE = (
    ("lambda_requests", "Invocations", "Sum"),
    ("lambda_errors", "Errors", "Sum"),
    ("throttles", "Throttles", "Sum"),
)


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


def metric_query(
    query_id: str,
    dimensions: Mapping[str, str],
    metric: str,
    statistic: str,
    period: int,
    *,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """One GetMetricData query of a Lambda metric (or, with ``namespace``, another)."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [
                    {"Name": name, "Value": value} for name, value in dimensions.items()
                ],
            },
            "Period": period,
            "Stat": statistic,
        },
    }


def _side_queries(
    role: Role,
    dimensions: Mapping[str, str],
    specs: Sequence[tuple[str, str, str]],
    period_seconds: int,
    latency_threshold_ms: float,
    *,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """One side's queries of ``(id suffix, metric, statistic)`` specs at one period; a
    statistic's ``{threshold}`` is the latency threshold."""
    threshold = f"{latency_threshold_ms:g}"
    return [
        metric_query(
            f"{role}_{suffix}",
            dimensions,
            metric,
            statistic.format(threshold=threshold),
            period_seconds,
            namespace=namespace,
        )
        for suffix, metric, statistic in specs
    ]


def metric_queries(
    dimensions: Mapping[Role, Mapping[str, str]],
    latency_threshold_ms: float,
    period_seconds: int,
    window_seconds: int,
) -> list[dict[str, Any]]:
    """GetMetricData queries for both sides of the traffic (each side's Lambda dimensions, see
    ``versioned_lambda_api.metrics.Traffic``): per-period counts, whole-window percentiles."""
    queries = []
    for role in ROLES:
        side = dimensions[role]
        queries += _side_queries(role, side, _PER_PERIOD, period_seconds, latency_threshold_ms)
        queries += _side_queries(role, side, _WHOLE_WINDOW, window_seconds, latency_threshold_ms)
    return queries


def function_metric_queries(
    dimensions: Mapping[Role, Mapping[str, str]],
    latency_threshold_ms: float,
    period_seconds: int,
    window_seconds: int,
) -> list[dict[str, Any]]:
    """GetMetricData queries for both sides from the function's own metrics: per-period counts
    and whole-window percentiles, with Lambda's per-minute invocations, errors and throttles
    beside them (see :func:`read_trusted_metrics`)."""
    minute = _checked_minute(period_seconds)
    threshold, own = latency_threshold_ms, FUNCTION_NAMESPACE
    queries = []
    for role in ROLES:
        side = dimensions[role]
        queries += _side_queries(
            role, side, _FUNCTION_PER_PERIOD, period_seconds, threshold, namespace=own
        )
        queries += _side_queries(role, side, _LAMBDA_PER_MINUTE, minute, threshold)
        queries += _side_queries(
            role, side, _WHOLE_WINDOW, window_seconds, threshold, namespace=own
        )
    return queries


def _checked_minute(period_seconds: int) -> int:
    """The Lambda period that whole function periods fill: 60 s for periods that divide a
    minute, the period itself for whole minutes. CloudWatch answers high-resolution metrics at
    1, 5, 10, 20 or 30 seconds or whole minutes (GetMetricData, MetricStat.Period)."""
    if period_seconds in (1, 5, 10, 20, 30):
        return 60
    if period_seconds > 0 and period_seconds % 60 == 0:
        return period_seconds
    raise ValueError(
        f"a period of the function's metrics is 1, 5, 10, 20 or 30 seconds or whole minutes, "
        f"got {period_seconds}"
    )


def live_p99_ms(
    cloudwatch: Any,
    *,
    dimensions: Mapping[str, str],
    start: datetime,
    end: datetime,
    source: MetricSource = "lambda",
) -> float | None:
    """The p99 of ``Duration`` over ``start``..``end`` for one side's dimensions; ``None``
    when it had no invocations, or when CloudWatch did not answer the query in full (the
    caller then falls back to a fixed threshold rather than a p99 of part of the hour).

    ``source="function"`` reads the function's own ``Duration`` (its handler's time, a few
    milliseconds below Lambda's, which adds the runtime's), the one a window read from the
    function's metrics counts slow requests on."""
    start, end = floor_to(start, 60), floor_to(end, 60)
    seconds = max(60, int((end - start).total_seconds()) // 60 * 60)
    namespace = FUNCTION_NAMESPACE if source == "function" else NAMESPACE
    queries = [metric_query("p99", dimensions, "Duration", "p99", seconds, namespace=namespace)]
    with aws_call("reading live's latency from CloudWatch"):
        fetched = _fetch(cloudwatch, queries, start, end)["p99"]
    if fetched.status != "Complete" or not fetched.values:
        return None
    return max(fetched.values.values())


@dataclass(frozen=True)
class LiveHour:
    """Live's requests and errors over a span (Lambda's ``Invocations`` and ``Errors``)."""

    requests: float
    errors: float
    minutes: float


def live_requests_and_errors(
    cloudwatch: Any, *, dimensions: Mapping[str, str], start: datetime, end: datetime
) -> LiveHour | None:
    """Live's requests and errors over ``start``..``end`` (whole minutes), in one period;
    ``None`` when CloudWatch did not answer both in full (the caller then does without)."""
    start, end = floor_to(start, 60), floor_to(end, 60)
    seconds = max(60, int((end - start).total_seconds()) // 60 * 60)
    queries = [
        metric_query("requests", dimensions, "Invocations", "Sum", seconds),
        metric_query("errors", dimensions, "Errors", "Sum", seconds),
    ]
    with aws_call("reading live's traffic from CloudWatch"):
        fetched = _fetch(cloudwatch, queries, start, end)
    if any(series.status != "Complete" for series in fetched.values()):
        return None
    return LiveHour(
        requests=sum(fetched["requests"].values.values()),
        errors=sum(fetched["errors"].values.values()),
        minutes=seconds / 60.0,
    )


def floor_to(moment: datetime, period_seconds: int) -> datetime:
    """``moment`` rounded down to a whole multiple of ``period_seconds`` since the epoch."""
    seconds = int(moment.timestamp())
    return moment.fromtimestamp(seconds - seconds % period_seconds, tz=moment.tzinfo)


# --- Errors -------------------------------------------------------------------------------

AwsErrorKind = Literal["refused", "throttled", "unreachable", "credentials"]

# Error codes of AWS' throttling answers (CloudWatch: Throttling; Lambda and API Gateway:
# TooManyRequestsException), as botocore's standard retry mode lists them:
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
_THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# Credentials that AWS itself rejects (expired or unknown): the fix is the same as for none.
_CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)


class AwsError(Exception):
    """An AWS call that failed, and what is known about its outcome.

    ``kind``:
    * ``refused``: AWS answered 4xx (AccessDenied, NotFound, Validation...). Nothing changed.
    * ``throttled``: AWS answered "slow down" after botocore's retries. Nothing changed; retry
      later.
    * ``unreachable``: no answer (connection refused or closed, connect or read timeout) or a
      5xx after botocore's retries. A change may or may not have reached AWS: re-read it.
    * ``credentials``: no (or rejected) credentials, or no region. Nothing was sent or changed.

    ``live``: what a re-read of AWS showed after the failure, when the caller made one (see
    :func:`stop_stage_canary`).
    """

    def __init__(self, kind: AwsErrorKind, message: str, live: LiveTraffic | None = None) -> None:
        super().__init__(message)
        self.kind: AwsErrorKind = kind
        self.message = message
        self.live = live

    @property
    def outcome_known(self) -> bool:
        """Whether AWS is known not to have applied the request (every kind but unreachable)."""
        return self.kind != "unreachable"

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later without anyone changing anything."""
        return self.kind in ("throttled", "unreachable")


def classify(error: BotoCoreError | ClientError, action: str) -> AwsError:
    """The :class:`AwsError` for a botocore failure of ``action`` (e.g. "reading stage prod"),
    with a one-line message."""
    if isinstance(error, ClientError):
        return _classify_answer(error, action)
    if isinstance(error, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return AwsError("credentials", f"{action}: {error}")
    if isinstance(
        error,
        EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError,
    ):
        return AwsError(
            "unreachable", f"{action}: no answer from AWS ({error}); the outcome is unknown"
        )
    # Other transport failures (e.g. a proxy or SSL error): nothing says the request did not
    # arrive.
    return AwsError("unreachable", f"{action}: {error}; the outcome is unknown")


def _classify_answer(error: ClientError, action: str) -> AwsError:
    """An error AWS answered (after botocore's retries of throttles and 5xx)."""
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = " ".join(str(details.get("Message", "")).split())
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    said = f"{code}: {message}" if message else code
    if code in _THROTTLE_CODES or status == 429:
        return AwsError("throttled", f"{action}: AWS throttled the call ({said})")
    if code in _CREDENTIAL_CODES:
        return AwsError("credentials", f"{action}: AWS rejected the credentials ({said})")
    if status >= 500:
        return AwsError("unreachable", f"{action}: AWS failed ({said}); the outcome is unknown")
    return AwsError("refused", f"{action}: AWS refused ({said})")


@contextmanager
def aws_call(action: str) -> Iterator[None]:
    """Turn botocore's exceptions in the block into :class:`AwsError` (see :func:`classify`)."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise classify(error, action) from error


def _is_not_found(error: AwsError) -> bool:
    cause = error.__cause__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
        "NotFoundException",
        "NotFound",
    )


# --- Metrics you can trust ------------------------------------------------------------------


@dataclass
class _Series:
    """One query's answer, over all pages."""

    values: dict[datetime, float] = field(default_factory=dict)
    # The status of the last page that carried the query: CloudWatch answers PartialData on a
    # page whose query has more points on the next one (NextToken), so only the last counts.
    # A result without a status (moto, older stubs) is taken as Complete.
    status: str = "Complete"
    messages: tuple[str, ...] = ()


def _fetch(
    cloudwatch: Any, queries: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, _Series]:
    """Every query's points and final status, following ``NextToken``."""
    series = {query["Id"]: _Series() for query in queries}
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
            got = series[result["Id"]]
            got.values.update(zip(result["Timestamps"], result["Values"], strict=True))
            got.status = result.get("StatusCode", "Complete")
            got.messages += tuple(
                f"{message.get('Code', '')}: {message.get('Value', '')}"
                for message in result.get("Messages", [])
            )
        token = response.get("NextToken")
        if not token:
            return series


@dataclass(frozen=True)
class Minute:
    """One period of both sides, and whether the judge may use it.

    ``period`` is ``None`` when the minute is unusable; ``missing`` then names why, e.g.
    ``canary_errors: InternalError`` or ``canary_fast: no point``.
    """

    at: datetime
    period: Period | None
    missing: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.period is not None


@dataclass(frozen=True)
class TrustedWindow:
    """Both sides' metrics, period by period, with the periods CloudWatch did not fully answer
    marked unusable (never counted as zero).

    ``live``/``canary`` sum the usable periods only; their p50/p99 are ``None`` unless the
    whole-window percentile query was Complete. ``incomplete``: query id -> status, for every
    query whose final status was not Complete. ``source`` and ``period_seconds``: where the
    counts come from and how long a period is (Lambda's minutes, or e.g. the function's 10
    seconds). ``fallback``: why :func:`read_finest_metrics` read Lambda's minutes instead of
    the function's metrics, ``None`` when it did not have to.
    """

    minutes: list[Minute]
    live: VersionSummary
    canary: VersionSummary
    incomplete: dict[str, str]
    source: MetricSource = "lambda"
    period_seconds: int = 60
    fallback: str | None = None

    @property
    def usable_periods(self) -> list[Period]:
        """The periods the judge may use, oldest first."""
        return [minute.period for minute in self.minutes if minute.period is not None]

    @property
    def unusable(self) -> list[Minute]:
        """The periods left out, oldest first."""
        return [minute for minute in self.minutes if minute.period is None]


def read_trusted_metrics(
    cloudwatch: Any,
    *,
    dimensions: Mapping[Role, Mapping[str, str]],
    start: datetime,
    end: datetime,
    latency_threshold_ms: float,
    period_seconds: int = 60,
    source: MetricSource = "lambda",
) -> TrustedWindow:
    """Both sides' metrics from ``start`` to ``end`` (rounded down to whole periods), one entry
    per period of the range, each usable or not.

    ``source="lambda"`` (Lambda's ``AWS/Lambda`` metrics): a period is usable when every
    per-period query ended ``Complete`` (after all pages) and:

    * ``Invocations`` has a point, or has none: Lambda sends ``Invocations`` only when it is
      nonzero, so a Complete query without a point is a minute without traffic, not a gap
      (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/lam-metricscollected.html:
      "AWS Lambda only sends these metrics to CloudWatch if they have a nonzero value");
    * when it served requests, ``Errors`` and the ``Duration`` percentile rank have a point too:
      Lambda sends ``Errors`` (0 or 1) and ``Duration`` with every invocation
      (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html: "invocation
      metrics are binary indicators of the outcome"), so a missing one means CloudWatch has not
      got it yet.

    ``Throttles`` counts refused attempts (not invocations) and is sent only when nonzero: a
    Complete query without a point is 0; it is not judged, only summed.

    ``source="function"`` (the function's own high-resolution metrics, ``FUNCTION_NAMESPACE``;
    ``period_seconds`` 1, 5, 10, 20, 30 or whole minutes, ``start`` rounded down to a whole
    minute): the same rules on ``Requests``, ``Failures`` and ``Duration``, which the function
    publishes together for every invocation it finishes, so a period without a point served
    nothing. The function cannot count an invocation that timed out or crashed, so each whole
    minute is checked against Lambda's: the minute's last period also needs Lambda's
    ``Invocations`` and ``Errors`` for the minute answered in full, and carries, as requests
    and errors, the errors Lambda counted beyond the function's failures; a minute in which
    Lambda saw invocations of a side and the function published none is unusable throughout
    (its metrics are late, or that version publishes none). Periods of a minute that has not
    ended stand on the function's counts alone, and a side whose version publishes nothing
    looks idle there: :func:`read_finest_metrics` checks that both sides publish first.

    Botocore failures raise :class:`AwsError` (throttled/unreachable: retry later).
    """
    if source == "function":
        return _read_function_metrics(
            cloudwatch,
            dimensions=dimensions,
            start=start,
            end=end,
            latency_threshold_ms=latency_threshold_ms,
            period_seconds=period_seconds,
        )[0]
    start, end = floor_to(start, period_seconds), floor_to(end, period_seconds)
    if end <= start:  # not one whole period yet
        return TrustedWindow([], VersionSummary.empty(), VersionSummary.empty(), {})
    window = int((end - start).total_seconds()) // 60 * 60
    queries = metric_queries(dimensions, latency_threshold_ms, period_seconds, window)
    with aws_call("reading the canary's metrics from CloudWatch"):
        fetched = _fetch(cloudwatch, queries, start, end)
    minutes = []
    at = start
    while at < end:
        minutes.append(_minute(fetched, at))
        at += timedelta(seconds=period_seconds)
    counted = {minute.at for minute in minutes if minute.usable}
    return TrustedWindow(
        minutes,
        _summary(fetched, "live", minutes, counted),
        _summary(fetched, "canary", minutes, counted),
        _incomplete(fetched),
        period_seconds=period_seconds,
    )


def read_finest_metrics(
    cloudwatch: Any,
    *,
    dimensions: Mapping[Role, Mapping[str, str]],
    start: datetime,
    end: datetime,
    latency_threshold_ms: float,
    period_seconds: int = 10,
) -> TrustedWindow:
    """The function's own ``period_seconds`` periods when both sides publish them, else
    Lambda's minutes (``fallback`` says why): see :func:`read_trusted_metrics`.

    Both sides publish when the window holds at least one whole minute that Lambda's metrics
    answered in full, and each side that Lambda saw invocations of has at least one point of
    the function's ``Requests``. A version from before the function published its metrics
    fails that test (the first release with them still has such a live side), as does a
    function whose application log level drops its metric lines. One GetMetricData call, and a
    second for Lambda's minutes when it falls back.
    """
    window, fallback = _read_function_metrics(
        cloudwatch,
        dimensions=dimensions,
        start=start,
        end=end,
        latency_threshold_ms=latency_threshold_ms,
        period_seconds=period_seconds,
    )
    if fallback is None:
        return window
    minutes = read_trusted_metrics(
        cloudwatch,
        dimensions=dimensions,
        start=start,
        end=end,
        latency_threshold_ms=latency_threshold_ms,
    )
    return replace(minutes, fallback=fallback)


def _incomplete(fetched: Mapping[str, _Series]) -> dict[str, str]:
    return {
        query_id: got.status + (f" ({'; '.join(got.messages)})" if got.messages else "")
        for query_id, got in fetched.items()
        if got.status != "Complete"
    }


def _summary(
    fetched: Mapping[str, _Series], role: Role, minutes: list[Minute], counted: set[datetime]
) -> VersionSummary:
    """One side over the usable periods; throttles from the points at ``counted`` moments."""
    periods = [minute.period for minute in minutes if minute.period is not None]

    def percentile(suffix: str) -> float | None:
        got = fetched[f"{role}_{suffix}"]
        if got.status != "Complete" or not got.values:
            return None
        return got.values[max(got.values)]

    throttles = fetched[f"{role}_throttles"].values
    return VersionSummary(
        requests=sum(getattr(p, f"{role}_requests") for p in periods),
        errors=sum(getattr(p, f"{role}_errors") for p in periods),
        throttles=round(sum(value for moment, value in throttles.items() if moment in counted)),
        p50_ms=percentile("p50"),
        p99_ms=percentile("p99"),
    )


def _minute(
    fetched: Mapping[str, _Series],
    at: datetime,
    specs: Sequence[tuple[str, str, str]] = _PER_PERIOD,
) -> Minute:
    """One period of both sides from the per-period queries of ``specs`` (Lambda's, or the
    function's own): unusable when a query is not Complete or a point that must exist is
    missing."""
    missing: list[str] = []
    counts: dict[str, int] = {}
    for role in ROLES:
        for suffix, _, _ in specs:
            got = fetched[f"{role}_{suffix}"]
            if got.status != "Complete":
                missing.append(f"{role}_{suffix}: {got.status}")
        requests = round(fetched[f"{role}_requests"].values.get(at) or 0.0)
        errors = fetched[f"{role}_errors"].values.get(at)
        fast = fetched[f"{role}_fast"].values.get(at)
        if requests:
            for suffix, point in (("errors", errors), ("fast", fast)):
                if point is None and fetched[f"{role}_{suffix}"].status == "Complete":
                    missing.append(f"{role}_{suffix}: no point")
        counts[f"{role}_requests"] = requests
        counts[f"{role}_errors"] = round(errors or 0.0)
        counts[f"{role}_slow"] = round(
            requests * (100.0 - (100.0 if fast is None else fast)) / 100.0
        )
    if missing:
        return Minute(at, None, tuple(missing))
    return Minute(at, Period(**counts))


def _read_function_metrics(
    cloudwatch: Any,
    *,
    dimensions: Mapping[Role, Mapping[str, str]],
    start: datetime,
    end: datetime,
    latency_threshold_ms: float,
    period_seconds: int,
) -> tuple[TrustedWindow, str | None]:
    """The window from the function's metrics (``source="function"``), and why it may not be
    used as both sides' evidence (``None``: both sides publish; see read_finest_metrics)."""
    minute = _checked_minute(period_seconds)
    start, end = floor_to(start, minute), floor_to(end, period_seconds)
    if end <= start:
        empty = VersionSummary.empty()
        window = TrustedWindow([], empty, empty, {}, "function", period_seconds)
        return window, "not one whole period yet"
    window_seconds = max(60, int((end - start).total_seconds()) // 60 * 60)
    queries = function_metric_queries(
        dimensions, latency_threshold_ms, period_seconds, window_seconds
    )
    with aws_call("reading the canary's metrics from CloudWatch"):
        fetched = _fetch(cloudwatch, queries, start, end)
    periods: list[Minute] = []
    counted: set[datetime] = set()
    checked = False
    lambda_saw: set[Role] = set()
    at = start
    while at < end:
        block_end = min(at + timedelta(seconds=minute), end)
        block = []
        moment = at
        while moment < block_end:
            block.append(_minute(fetched, moment, _FUNCTION_PER_PERIOD))
            moment += timedelta(seconds=period_seconds)
        if block_end == at + timedelta(seconds=minute):
            block = _checked_against_lambda(fetched, at, block)
            checked = all(fetched[f"{r}_lambda_requests"].status == "Complete" for r in ROLES)
            if block[-1].usable:
                counted.add(at)
            lambda_saw.update(
                role for role in ROLES if fetched[f"{role}_lambda_requests"].values.get(at)
            )
        periods.extend(block)
        at = block_end
    window = TrustedWindow(
        periods,
        _summary(fetched, "live", periods, counted),
        _summary(fetched, "canary", periods, counted),
        _incomplete(fetched),
        "function",
        period_seconds,
    )
    silent = [
        role for role in ROLES if role in lambda_saw and not fetched[f"{role}_requests"].values
    ]
    if silent:
        return window, (
            f"the {' and '.join(silent)} side's version publishes no metrics of its own: "
            "Lambda saw its invocations, the function counted none"
        )
    if not checked:
        return window, "no whole minute of Lambda's invocations to check the function's against"
    return window, None


def _checked_against_lambda(
    fetched: Mapping[str, _Series], minute_at: datetime, block: list[Minute]
) -> list[Minute]:
    """A whole minute's periods, checked against Lambda's minute at ``minute_at``: the last
    period carries the errors Lambda counted beyond the function's failures (timeouts and
    crashes, which the function cannot publish), or is unusable while Lambda's minute is not
    answered in full; every period is unusable when Lambda saw invocations of a side and the
    function published none."""
    *earlier, last = block
    last_missing: list[str] = []
    block_missing: list[str] = []
    unseen: dict[str, int] = {}
    for role in ROLES:
        for suffix in ("lambda_requests", "lambda_errors"):
            got = fetched[f"{role}_{suffix}"]
            if got.status != "Complete":
                last_missing.append(f"{role}_{suffix}: {got.status}")
        invocations = round(fetched[f"{role}_lambda_requests"].values.get(minute_at) or 0.0)
        errors = fetched[f"{role}_lambda_errors"].values.get(minute_at)
        if invocations and errors is None and fetched[f"{role}_lambda_errors"].status == "Complete":
            last_missing.append(f"{role}_lambda_errors: no point")
        published = fetched[f"{role}_requests"].values
        if invocations and not any(published.get(minute.at) for minute in block):
            block_missing.append(
                f"{role}_requests: none published for Lambda's {invocations} invocation(s)"
            )
        failures = sum(
            getattr(minute.period, f"{role}_errors")
            for minute in block
            if minute.period is not None
        )
        unseen[role] = max(0, round(errors or 0.0) - failures)
    if any(not minute.usable for minute in earlier):
        last_missing.append("an earlier period of the minute is unusable")
    if block_missing:
        return [Minute(minute.at, None, (*minute.missing, *block_missing)) for minute in block]
    if last_missing or last.period is None:
        return [*earlier, Minute(last.at, None, (*last.missing, *last_missing))]
    p = last.period
    return [
        *earlier,
        Minute(
            last.at,
            replace(
                p,
                live_requests=p.live_requests + unseen["live"],
                live_errors=p.live_errors + unseen["live"],
                canary_requests=p.canary_requests + unseen["canary"],
                canary_errors=p.canary_errors + unseen["canary"],
            ),
        ),
    ]


# --- The canary share AWS serves ------------------------------------------------------------

CanaryMode = Literal["stage", "alias", "both", "none"]


@dataclass(frozen=True)
class StageCanary:
    """A stage's canary settings as deployed."""

    percent: float
    """Percent of the stage's requests sent to the canary deployment (0-100)."""
    canary_alias: str | None
    """The alias the canary's requests invoke (its ``lambdaAlias`` override), if set."""
    deployment_id: str | None


@dataclass(frozen=True)
class AliasWeights:
    """A live alias' extra version weights as deployed."""

    alias: str
    version: str
    """The alias' own version."""
    weights: Mapping[str, float]
    """Additional version -> share of the invocations (0-1)."""

    @property
    def percent(self) -> float:
        return 100.0 * sum(self.weights.values())


@dataclass(frozen=True)
class LiveTraffic:
    """Where AWS sends the canary's share right now.

    ``stage``: ``None`` when the stage has no canary settings (no canary, not an error).
    ``alias``: ``None`` when not read (or the alias has no extra weights).
    """

    stage: StageCanary | None = None
    alias: AliasWeights | None = None

    @property
    def mode(self) -> CanaryMode:
        """Which mechanism sends traffic to the canary now: a stage canary above 0%, alias
        weights, both (drift: the stack was switched without the other being undone), none."""
        stage = self.stage is not None and self.stage.percent > 0
        alias = self.alias is not None and self.alias.percent > 0
        if stage and alias:
            return "both"
        return "stage" if stage else "alias" if alias else "none"

    @property
    def percent(self) -> float:
        """The canary's share in percent: the stage canary's, else the alias weights'; in
        ``both`` mode the stage canary's share plus the alias' share of the rest."""
        stage = self.stage.percent if self.stage is not None else 0.0
        alias = self.alias.percent if self.alias is not None else 0.0
        return stage + (100.0 - stage) * alias / 100.0

    @property
    def canary(self) -> str | None:
        """The canary: the stage canary's alias, or the weighted version(s), e.g. ``v4``."""
        names = []
        if self.stage is not None and self.stage.percent > 0:
            names.append(self.stage.canary_alias or f"deployment {self.stage.deployment_id}")
        if self.alias is not None and self.alias.percent > 0:
            names += [f"v{version}" for version in sorted(self.alias.weights)]
        return ", ".join(names) or None

    def describe(self) -> str:
        """One line for people, e.g. ``the stage canary sends 10% to alias prod-canary``."""
        parts = []
        if self.stage is not None and self.stage.percent > 0:
            target = self.stage.canary_alias or f"deployment {self.stage.deployment_id}"
            parts.append(f"the stage canary sends {self.stage.percent:g}% to {target}")
        if self.alias is not None and self.alias.percent > 0:
            shares = ", ".join(
                f"{100 * weight:g}% to v{version}"
                for version, weight in sorted(self.alias.weights.items())
            )
            parts.append(f"alias {self.alias.alias} sends {shares}")
        return "; ".join(parts) or "no request reaches a canary"


def read_stage_canary(apigateway: Any, rest_api_id: str, stage: str) -> StageCanary | None:
    """The stage's canary settings (``GetStage``), ``None`` when it has none."""
    with aws_call(f"reading stage {stage}"):
        answer = apigateway.get_stage(restApiId=rest_api_id, stageName=stage)
    settings = answer.get("canarySettings")
    if settings is None:
        return None
    overrides = settings.get("stageVariableOverrides") or {}
    return StageCanary(
        percent=float(settings.get("percentTraffic") or 0.0),
        canary_alias=overrides.get(ALIAS_STAGE_VARIABLE),
        deployment_id=settings.get("deploymentId"),
    )


def read_alias_weights(lambda_client: Any, function_name: str, alias: str) -> AliasWeights:
    """The live alias' version and extra version weights (``GetAlias``)."""
    with aws_call(f"reading alias {alias}"):
        answer = lambda_client.get_alias(FunctionName=function_name, Name=alias)
    weights = (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return AliasWeights(
        alias=alias,
        version=str(answer["FunctionVersion"]),
        weights={str(version): float(weight) for version, weight in weights.items()},
    )


def read_live_traffic(
    apigateway: Any,
    lambda_client: Any,
    *,
    rest_api_id: str,
    stage: str,
    function_name: str,
    live_alias: str,
) -> LiveTraffic:
    """Both mechanisms at once, so the caller sees the mode actually deployed whatever the
    stack file says (e.g. ``LiveTraffic.mode == "stage"`` with ``canaryMode: alias``)."""
    return LiveTraffic(
        stage=read_stage_canary(apigateway, rest_api_id, stage),
        alias=read_alias_weights(lambda_client, function_name, live_alias),
    )


# --- Stopping the canary now ----------------------------------------------------------------

StopOutcome = Literal["applied", "confirmed", "already"]


@dataclass(frozen=True)
class Stopped:
    """The canary takes no traffic now; ``outcome`` says how that is known:

    * ``applied``: AWS accepted the change;
    * ``confirmed``: the change's answer was lost, and re-reading AWS shows no canary traffic;
    * ``already``: there was nothing to stop (e.g. a stage without canary settings).
    """

    outcome: StopOutcome
    message: str


def stop_stage_canary(apigateway: Any, rest_api_id: str, stage: str) -> Stopped:
    """Send no more of the stage's requests to its canary, now.

    Raises :class:`AwsError`: refused, throttled and credentials errors mean nothing changed;
    after an unknown outcome the stage is re-read, and the error (``kind="unreachable"``)
    carries what is live in ``live`` when the re-read worked.
    """
    action = f"stopping the canary of stage {stage}"
    try:
        with aws_call(action):
            apigateway.update_stage(
                restApiId=rest_api_id,
                stageName=stage,
                patchOperations=[
                    {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"}
                ],
            )
    except AwsError as error:
        if error.kind == "refused" and _is_not_found(error):
            # API Gateway answers NotFound to a patch of absent canary settings; a stage
            # that exists without them sends nothing to a canary.
            if read_stage_canary(apigateway, rest_api_id, stage) is None:
                return Stopped("already", f"stage {stage} has no canary settings")
            raise
        if error.outcome_known:
            raise
        return _confirm(
            error, lambda: LiveTraffic(stage=read_stage_canary(apigateway, rest_api_id, stage))
        )
    return Stopped("applied", f"stage {stage} now sends no requests to its canary")


def stop_alias_canary(lambda_client: Any, function_name: str, alias: str) -> Stopped:
    """Make the live alias send every invocation to its own version, now.

    Errors as for :func:`stop_stage_canary`.
    """
    try:
        with aws_call(f"removing the canary weights of alias {alias}"):
            lambda_client.update_alias(
                FunctionName=function_name,
                Name=alias,
                RoutingConfig={"AdditionalVersionWeights": {}},
            )
    except AwsError as error:
        if error.outcome_known:
            raise
        return _confirm(
            error,
            lambda: LiveTraffic(alias=read_alias_weights(lambda_client, function_name, alias)),
        )
    return Stopped("applied", f"alias {alias} now sends everything to its own version")


def _confirm(error: AwsError, reread: Callable[[], LiveTraffic]) -> Stopped:
    """After a change whose answer was lost: what AWS serves now decides."""
    try:
        live = reread()
    except AwsError as again:
        raise AwsError(
            "unreachable",
            f"{error.message}, and re-reading AWS failed too ({again.message}): the canary "
            "may still take traffic",
        ) from error
    if live.mode == "none":
        return Stopped("confirmed", f"{error.message}; re-read: {live.describe()}")
    raise AwsError("unreachable", f"{error.message}; re-read: {live.describe()}", live) from error


# --- The pre-traffic check ------------------------------------------------------------------


@dataclass(frozen=True)
class Invoked:
    """What Lambda's Invoke answered."""

    function_error: str | None
    """``X-Amz-Function-Error`` (``Unhandled``): the payload is Lambda's error object."""
    payload: bytes
    executed_version: str
    """``X-Amz-Executed-Version``: the version the qualifier resolved to."""


def invoke(lambda_client: Any, function_name: str, qualifier: str, payload: bytes) -> Invoked:
    """Invoke ``function_name:qualifier`` synchronously with ``payload``, as API Gateway's
    Lambda integration does, and read the whole reply."""
    with aws_call(f"invoking {function_name}:{qualifier}"):
        answer = lambda_client.invoke(
            FunctionName=function_name,
            Qualifier=qualifier,
            InvocationType="RequestResponse",
            Payload=payload,
        )
        body = answer["Payload"].read()
    return Invoked(answer.get("FunctionError"), body, str(answer.get("ExecutedVersion", "")))
