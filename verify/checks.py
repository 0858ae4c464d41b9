"""Each check's pass/fail decision from its evidence, as plain functions, and the statistics
they use. Nothing here talks to AWS: :mod:`verify.run` gathers the evidence."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["PASS", "FAIL"]

CHECKS = (
    "served-by-live",
    "canary-share",
    "rollback-stops-canary",
    "endpoint-configuration",
    "content-type-charset",
    "header-case",
    "is-canary-request",
    "executed-version-dimension",
    "percentile-rank-stat",
    "alarm-metric-math",
    "emf-metrics",
    "metrics-settle-lag",
)
"""Every check, in the order the report lists them. README's section "What `make verify`
checks on real AWS" names each (a test holds the two together)."""

SHARE_FALSE_FAIL_RATE = 0.001
"""How often a canary share that is exactly what the stage says fails the share check by
chance."""
ROLLBACK_WITHIN_SECONDS = 10.0
"""The README promises that a rollback stops the canary "within seconds"."""
ROLLBACK_STREAK = 30
"""Consecutive requests served by live that show the canary stopped: at a 50% share, 30 in a
row happen by chance once in a billion."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    evidence: str

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def _result(name: str, passed: bool, evidence: str) -> CheckResult:
    if name not in CHECKS:
        raise ValueError(f"{name} is not a check of make verify")
    return CheckResult(name, "PASS" if passed else "FAIL", evidence)


@dataclass(frozen=True)
class ServedBy:
    """Who served a request, as every reply of the function says."""

    stage: str
    alias: str
    version: str

    def __str__(self) -> str:
        return f"{self.stage}/{self.alias}/v{self.version}"


def parse_served_by(body: bytes) -> ServedBy | None:
    """The reply's ``servedBy``; ``None`` when the body is not the function's JSON reply."""
    try:
        reply = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    served = reply.get("servedBy") if isinstance(reply, dict) else None
    if not isinstance(served, dict):
        return None
    fields = [served.get(name) for name in ("stage", "alias", "version")]
    if not all(isinstance(value, str) for value in fields):
        return None
    stage, alias, version = (str(value) for value in fields)
    return ServedBy(stage, alias, version)


@dataclass(frozen=True)
class Sample:
    """One request sent to the stage and what came back."""

    status: int
    served_by: ServedBy | None
    request_id: str
    """API Gateway's id of the request (``x-amzn-RequestId``, the template's
    ``$context.requestId``)."""
    at: float
    """Seconds on the run's monotonic clock when the reply arrived."""


def _tally(samples: Sequence[Sample]) -> str:
    counts = Counter(
        str(sample.served_by) if sample.served_by else f"HTTP {sample.status} without servedBy"
        for sample in samples
    )
    return ", ".join(f"{count} {who}" for who, count in counts.most_common())


# --- statistics ---------------------------------------------------------------------------


def binomial_interval(trials: int, share: float, false_fail_rate: float) -> tuple[int, int]:
    """The counts of successes ``(low, high)`` outside of which ``trials`` draws of a coin of
    probability ``share`` land at most ``false_fail_rate`` of the time (half below, half
    above), from the exact binomial distribution."""
    if trials < 1 or not 0 <= share <= 1 or not 0 < false_fail_rate < 1:
        raise ValueError(
            f"binomial_interval needs trials >= 1, share in [0, 1] and a false fail rate in "
            f"(0, 1), got {trials}, {share}, {false_fail_rate}"
        )
    probabilities = [
        math.comb(trials, k) * share**k * (1 - share) ** (trials - k) for k in range(trials + 1)
    ]
    tail = false_fail_rate / 2
    low, below = 0, 0.0
    while below + probabilities[low] <= tail:
        below += probabilities[low]
        low += 1
    high, above = trials, 0.0
    while above + probabilities[high] <= tail:
        above += probabilities[high]
        high -= 1
    return low, high


# --- the checks ---------------------------------------------------------------------------


def served_by_live(samples: Sequence[Sample], live: ServedBy) -> CheckResult:
    """With no canary, every request is answered 200 by the live alias' version."""
    wrong = [s for s in samples if s.status != 200 or s.served_by != live]
    passed = bool(samples) and not wrong
    return _result(
        "served-by-live",
        passed,
        f"{len(samples)} requests, expected all 200 from {live}: {_tally(samples) or 'none'}",
    )


def canary_share(
    samples: Sequence[Sample], live: ServedBy, canary: ServedBy, percent: float
) -> CheckResult:
    """Every request is served by live or canary, and the canary's count is within the
    binomial interval of the stage's share."""
    others = [s for s in samples if s.status != 200 or s.served_by not in (live, canary)]
    to_canary = sum(1 for s in samples if s.status == 200 and s.served_by == canary)
    if not samples:
        return _result("canary-share", False, "no request was sent")
    low, high = binomial_interval(len(samples), percent / 100, SHARE_FALSE_FAIL_RATE)
    passed = not others and low <= to_canary <= high
    return _result(
        "canary-share",
        passed,
        f"{to_canary} of {len(samples)} requests served by canary {canary} at "
        f"canaryPercent {percent:g} (expected {low}-{high}, false fail rate "
        f"{SHARE_FALSE_FAIL_RATE:g}); {_tally(samples)}",
    )


def rollback_stops_canary(
    samples: Sequence[Sample], rolled_back_at: float, canary: ServedBy
) -> CheckResult:
    """After the release tool's rollback began, the last request the canary served came within
    :data:`ROLLBACK_WITHIN_SECONDS`, followed by :data:`ROLLBACK_STREAK` served by live."""
    canary_times = [s.at for s in samples if s.served_by == canary]
    stopped_after = max(canary_times) - rolled_back_at if canary_times else 0.0
    streak = 0
    for sample in reversed(samples):
        if sample.status != 200 or sample.served_by == canary or sample.served_by is None:
            break
        streak += 1
    passed = stopped_after <= ROLLBACK_WITHIN_SECONDS and streak >= ROLLBACK_STREAK
    return _result(
        "rollback-stops-canary",
        passed,
        f"canary's last request {max(stopped_after, 0.0):.1f} s after the rollback began "
        f"(limit {ROLLBACK_WITHIN_SECONDS:g} s), then {streak} in a row served by live "
        f"(needed {ROLLBACK_STREAK}); {len(samples)} requests over "
        f"{(samples[-1].at - rolled_back_at) if samples else 0.0:.1f} s",
    )


def endpoint_configuration(types: Sequence[str]) -> CheckResult:
    """The OpenAPI import kept the REGIONAL endpoint (``endpointConfigurationTypes``)."""
    return _result(
        "endpoint-configuration",
        list(types) == ["REGIONAL"],
        f"GetRestApi endpointConfiguration.types = {list(types)}, expected ['REGIONAL']",
    )


def content_type_charset(sample: Sample, live: ServedBy) -> CheckResult:
    """A POST with ``Content-Type: application/json; charset=utf-8`` is mapped, not refused
    (415) as a type without a template would be."""
    return _result(
        "content-type-charset",
        sample.status == 200 and sample.served_by == live,
        f"POST with 'application/json; charset=utf-8' answered {sample.status} by "
        f"{sample.served_by or 'no servedBy'}",
    )


def header_case(
    first: Sample, first_replayed: bool | None, second: Sample, second_replayed: bool | None
) -> CheckResult:
    """An ``Idempotency-Key`` header sent in odd case reaches the function: the same POST
    twice is stored once and replayed the second time."""
    passed = (
        first.status == 200
        and second.status == 200
        and first_replayed is False
        and second_replayed is True
    )
    return _result(
        "header-case",
        passed,
        "the same POST twice with header 'iDEMPOTENCY-kEY': answered "
        f"{first.status} replayed={first_replayed}, then {second.status} "
        f"replayed={second_replayed} (expected 200 false, then 200 true)",
    )


def is_canary_request(
    canary_served: Mapping[str, bool], logged: Mapping[str, str], stage_canary: bool
) -> CheckResult:
    """``$context.isCanaryRequest`` is "true" exactly for the requests the stage canary sent
    to the canary, as the function logged it; with no stage canary (``canaryMode: alias``, the
    live alias splits) it is "false" for all. ``canary_served``: API request id -> served by
    the canary's version; ``logged``: API request id -> the logged ``isCanaryRequest``."""
    seen = {rid: logged[rid] for rid in canary_served if rid in logged}
    wrong = {
        rid: value
        for rid, value in seen.items()
        if value != ("true" if canary_served[rid] and stage_canary else "false")
    }
    canary_seen = sum(1 for rid in seen if canary_served[rid])
    passed = canary_seen > 0 and not wrong
    examples = ", ".join(f"{rid}={value!r}" for rid, value in list(wrong.items())[:3])
    return _result(
        "is-canary-request",
        passed,
        f"{len(seen)} of {len(canary_served)} requests found in the function's log "
        f"({canary_seen} served by the canary); {len(wrong)} with the wrong isCanaryRequest"
        + (f" (e.g. {examples})" if examples else "")
        + ("" if stage_canary else "; canaryMode alias: no stage canary, so all must be false"),
    )


def _number(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _counts(
    name: str, metric: str, expected: Mapping[ServedBy, int], measured: Mapping[ServedBy, float]
) -> CheckResult:
    wrong = {
        who: measured.get(who) for who, count in expected.items() if measured.get(who) != count
    }
    parts = [f"{who} {_number(measured.get(who))} of {count}" for who, count in expected.items()]
    return _result(
        name, bool(expected) and not wrong, f"{metric} (measured of served): {'; '.join(parts)}"
    )


def executed_version_dimension(
    expected: Mapping[ServedBy, int], measured: Mapping[ServedBy, float]
) -> CheckResult:
    """Lambda's Invocations with ``ExecutedVersion`` count exactly the requests each
    (alias, version) served."""
    return _counts(
        "executed-version-dimension",
        "AWS/Lambda Invocations by FunctionName, Resource, ExecutedVersion",
        expected,
        measured,
    )


def emf_metrics(
    expected: Mapping[ServedBy, int], measured: Mapping[ServedBy, float]
) -> CheckResult:
    """The function's EMF line, printed under Lambda's JSON log format, became the
    high-resolution ``Requests`` metric, counting every request it served."""
    return _counts(
        "emf-metrics",
        "EventLogger/Canary Requests (10 s periods) by FunctionName, Resource, ExecutedVersion",
        expected,
        measured,
    )


def percentile_rank_stat(
    threshold_ms: float, values: Mapping[ServedBy, Sequence[float]], error: str | None
) -> CheckResult:
    """GetMetricData accepts ``PR(:T)`` on Lambda's Duration and answers percents."""
    if error is not None:
        return _result("percentile-rank-stat", False, f"PR(:{threshold_ms:g}) refused: {error}")
    answered = {who: list(points) for who, points in values.items() if points}
    in_range = all(0 <= point <= 100 for points in answered.values() for point in points)
    parts = [f"{who} {[round(p, 1) for p in points]}" for who, points in answered.items()]
    return _result(
        "percentile-rank-stat",
        bool(answered) and in_range,
        f"Duration PR(:{threshold_ms:g}) per minute: {'; '.join(parts) or 'no datapoints'}",
    )


def alarm_metric_math(
    alarm: str | None, state: str | None, reason: str, values: Sequence[float]
) -> CheckResult:
    """The canary's error-rate alarm (metric math with IF) is evaluated: its state is not
    INSUFFICIENT_DATA after traffic, and its own queries answer values in GetMetricData."""
    if alarm is None:
        return _result("alarm-metric-math", False, "no canary error-rate alarm found")
    passed = state in ("OK", "ALARM") and bool(values)
    return _result(
        "alarm-metric-math",
        passed,
        f"{alarm}: state {state} ({reason}); its expression over the traffic: "
        f"{[round(value, 2) for value in values] or 'no values'}",
    )


def metrics_settle_lag(lag_seconds: float | None, limit_seconds: float, poll: float) -> CheckResult:
    """Lambda's per-minute metrics of the requests sent are complete in CloudWatch by the time
    the release tool judges their minute: ``limit_seconds`` (``SETTLE``) after the minute ends.
    ``lag_seconds``: from the end of the last request's minute to the first look that found
    every request counted (negative: before it ended)."""
    if lag_seconds is None:
        return _result(
            "metrics-settle-lag",
            False,
            f"Lambda's Invocations never matched the requests served while polled every {poll:g} s",
        )
    return _result(
        "metrics-settle-lag",
        lag_seconds <= limit_seconds,
        f"Invocations matched the requests served {lag_seconds:+.0f} s from the end of the last "
        f"request's minute (polled every {poll:g} s; the release tool judges a minute "
        f"{limit_seconds:g} s after its end)",
    )
