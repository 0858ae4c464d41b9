"""Simulated releases and the baseline canary judges our judge is compared with.

The simulator draws what CloudWatch would report for a canary release, one metric period at a
time; the baselines re-create three public canary judges; ``run`` puts a judge through a release
and ``tune`` sets a baseline's one threshold so its false rollbacks match a cap. The benchmark
(``bench/canary_bench.py``) puts it all together. Standard library only, and seeded: the same
seed gives the same releases, decisions and numbers on every machine.

Traffic model
-------------
Requests arrive as a Poisson process at ``total_rps``; each goes to the canary with probability
``canary_share`` (API Gateway's canary setting), so the two versions' request counts per period
are independent Poisson counts. Each request fails with its version's error probability and,
independently, is slower than the scenario's latency threshold with the probability its version's
lognormal latency gives. Thinning a Poisson process keeps it Poisson, so the four kinds of request
(failed and slow, failed, slow, neither) are independent Poisson counts; drawing those four gives
the exact joint law of (requests, errors, slow) per version and period with no per-request loop.
A period holds the sums CloudWatch gives: ``Invocations``, ``Errors`` and, for slow requests, the
count above the threshold (CloudWatch's percentile-rank statistic ``PR(threshold:)`` on
``Duration``, or an embedded-metric-format count the function publishes).

Exposure
--------
The harm a bad release does is the number of requests the bad version serves. Until the judge
decides, that is the canary's requests; after a ROLLBACK it stops. A bad release that is
PROMOTED serves *all* traffic from then on, until someone notices: we count that as exposure up
to the end of the simulated horizon (``Scenario.horizon_minutes``, 60 minutes by default, the
longest bake any judge here may take), at the scenario's mean traffic. So a false promote costs
far more than a slow rollback, as it does in production; ``Outcome.canary_requests`` keeps the
canary phase alone for those who want it separately.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from release.judge import Decision, JudgeConfig, JudgeState, Period, expected_sample_size

Metric = Literal["errors", "slow"]

# --- random variates ------------------------------------------------------------------------


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson variate: inversion by sequential search below a mean of 10, else Hörmann's
    transformed rejection with squeeze (PTRS, 1993), the method numpy uses. Exact for both."""
    if mean < 0.0 or not math.isfinite(mean):
        raise ValueError(f"a Poisson mean must be finite and >= 0, got {mean!r}")
    if mean == 0.0:
        return 0
    if mean < 10.0:
        k = 0
        p = math.exp(-mean)
        cumulative = p
        u = rng.random()
        while u > cumulative:
            k += 1
            p *= mean / k
            cumulative += p
            if p == 0.0:  # rounding left the sum just short of u: stop in the far tail
                break
        return k
    return _poisson_ptrs(rng, mean)


def _poisson_ptrs(rng: random.Random, mean: float) -> int:
    slam = math.sqrt(mean)
    loglam = math.log(mean)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= (
            -mean + k * loglam - math.lgamma(k + 1.0)
        ):
            return k


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


# --- the traffic model ----------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyModel:
    """A lognormal latency: ``median_ms`` and the standard deviation ``sigma`` of its log."""

    median_ms: float
    sigma: float

    def p_slower_than(self, threshold_ms: float) -> float:
        """P(latency > threshold_ms)."""
        return normal_sf(math.log(threshold_ms / self.median_ms) / self.sigma)


@dataclass(frozen=True)
class VersionModel:
    """How one version behaves: its error probability per request and its latency."""

    error_rate: float
    latency: LatencyModel


@dataclass(frozen=True)
class Scenario:
    """A release setting: traffic, the live version, a good and a bad canary.

    ``regression`` names the metric on which the bad canary is worse; the baselines watch that
    metric only (see ``bench/canary_bench.py``). The good canary behaves exactly like live.
    """

    name: str
    total_rps: float
    canary_share: float
    live: VersionModel
    bad_canary: VersionModel
    regression: Metric
    slow_threshold_ms: float = 1000.0
    period_seconds: int = 60
    horizon_minutes: int = 60
    description: str = ""

    @property
    def good_canary(self) -> VersionModel:
        return self.live

    @property
    def horizon_periods(self) -> int:
        return self.horizon_minutes * 60 // self.period_seconds

    def canary_rps(self) -> float:
        return self.total_rps * self.canary_share

    def rates(self, version: VersionModel) -> tuple[float, float]:
        """(error rate, slow rate) of a version."""
        return version.error_rate, version.latency.p_slower_than(self.slow_threshold_ms)

    def live_rate(self, metric: Metric) -> float:
        errors, slow = self.rates(self.live)
        return errors if metric == "errors" else slow

    def true_ratio(self, metric: Metric) -> float:
        """The bad canary's rate of ``metric`` over live's."""
        errors, slow = self.rates(self.bad_canary)
        return (errors if metric == "errors" else slow) / self.live_rate(metric)


def _version_counts(
    rng: random.Random, mean_requests: float, error_rate: float, slow_rate: float
) -> tuple[int, int, int]:
    """(requests, errors, slow) of one version in one period."""
    failed_slow = poisson(rng, mean_requests * error_rate * slow_rate)
    failed_fast = poisson(rng, mean_requests * error_rate * (1.0 - slow_rate))
    ok_slow = poisson(rng, mean_requests * (1.0 - error_rate) * slow_rate)
    ok_fast = poisson(rng, mean_requests * (1.0 - error_rate) * (1.0 - slow_rate))
    requests = failed_slow + failed_fast + ok_slow + ok_fast
    return requests, failed_slow + failed_fast, failed_slow + ok_slow


def simulate_period(
    rng: random.Random, scenario: Scenario, canary: VersionModel, seconds: float
) -> Period:
    """One metric period of ``seconds`` for live and the given canary."""
    live_errors, live_slow = scenario.rates(scenario.live)
    canary_errors, canary_slow = scenario.rates(canary)
    arrivals = scenario.total_rps * seconds
    c = _version_counts(rng, arrivals * scenario.canary_share, canary_errors, canary_slow)
    live = _version_counts(rng, arrivals * (1.0 - scenario.canary_share), live_errors, live_slow)
    return Period(
        live_requests=live[0],
        live_errors=live[1],
        live_slow=live[2],
        canary_requests=c[0],
        canary_errors=c[1],
        canary_slow=c[2],
    )


def aggregate(periods: Sequence[Period]) -> Period:
    """Several periods summed into one, as CloudWatch sums a metric over a longer period."""
    return Period(
        live_requests=sum(p.live_requests for p in periods),
        live_errors=sum(p.live_errors for p in periods),
        live_slow=sum(p.live_slow for p in periods),
        canary_requests=sum(p.canary_requests for p in periods),
        canary_errors=sum(p.canary_errors for p in periods),
        canary_slow=sum(p.canary_slow for p in periods),
    )


@dataclass
class Release:
    """One simulated release: its periods are drawn on demand (up to the horizon) from its own
    random stream and kept, so every judge sees exactly the same traffic."""

    scenario: Scenario
    bad: bool
    seed: str
    _rng: random.Random = field(init=False, repr=False)
    _periods: list[Period] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        # A simulation's reproducible stream, not cryptography.
        self._rng = random.Random(self.seed)  # noqa: S311

    @property
    def canary(self) -> VersionModel:
        return self.scenario.bad_canary if self.bad else self.scenario.good_canary

    def period(self, index: int) -> Period:
        """The period ``index`` (0-based) at the scenario's resolution."""
        if not 0 <= index < self.scenario.horizon_periods:
            raise IndexError(f"period {index} is outside the horizon")
        while len(self._periods) <= index:
            self._periods.append(
                simulate_period(self._rng, self.scenario, self.canary, self.scenario.period_seconds)
            )
        return self._periods[index]

    def stream(self, factor: int = 1) -> Iterator[Period]:
        """The periods up to the horizon, each ``factor`` consecutive ones summed into one
        (``factor=6`` turns 10-second periods into CloudWatch minutes)."""
        for start in range(0, self.scenario.horizon_periods - factor + 1, factor):
            yield aggregate([self.period(start + i) for i in range(factor)])


def make_releases(scenario: Scenario, *, bad: bool, count: int, seed: str) -> list[Release]:
    """``count`` independent releases; release i's stream depends only on (seed, scenario name,
    good/bad, i), so adding scenarios or releases never changes the others."""
    kind = "bad" if bad else "good"
    return [Release(scenario, bad, f"{seed}/{scenario.name}/{kind}/{i}") for i in range(count)]


# --- judges ---------------------------------------------------------------------------------


class Session(Protocol):
    """A judge watching one release: fed one period at a time."""

    def add(self, period: Period) -> Decision: ...


class CanaryJudge(Protocol):
    """A judge: a name for the table and a fresh session per release."""

    @property
    def name(self) -> str: ...

    def session(self) -> Session: ...


def _counts(period: Period, metric: Metric) -> tuple[int, int, int, int]:
    """(canary requests, canary events, live requests, live events) for ``metric``."""
    if metric == "errors":
        return (
            period.canary_requests,
            period.canary_errors,
            period.live_requests,
            period.live_errors,
        )
    return period.canary_requests, period.canary_slow, period.live_requests, period.live_slow


@dataclass
class _OurSession:
    state: JudgeState

    def add(self, period: Period) -> Decision:
        return self.state.add(period).decision


@dataclass(frozen=True)
class OurJudge:
    """``release.judge`` (two SPRTs on errors and slow requests), fed with ``JudgeState.add``."""

    config: JudgeConfig = field(default_factory=JudgeConfig)
    label: str = "ours (SPRT)"

    @property
    def name(self) -> str:
        return self.label

    def session(self) -> Session:
        return _OurSession(JudgeState(self.config))


@dataclass
class _CodeDeploySession:
    judge: CodeDeployAlarm
    periods: int = 0
    breaches: deque[bool] = field(default_factory=deque)

    def add(self, period: Period) -> Decision:
        j = self.judge
        self.periods += 1
        requests, events, _, _ = _counts(period, j.metric)
        # No invocation: metric math gives no datapoint, treated as not breaching.
        self.breaches.append(requests > 0 and events / requests > j.threshold)
        if len(self.breaches) > j.evaluation_periods:
            self.breaches.popleft()
        if sum(self.breaches) >= j.datapoints_to_alarm:
            return "ROLLBACK"
        if self.periods >= j.bake_periods:
            return "PROMOTE"
        return "CONTINUE"


@dataclass(frozen=True)
class CodeDeployAlarm:
    """CodeDeploy's ``Canary10Percent10Minutes`` with a CloudWatch alarm on the canary.

    From AWS's public descriptions: the predefined Lambda deployment configuration shifts 10% of
    the traffic to the new version, waits 10 minutes and then shifts the rest
    (``TimeBasedCanary``: CanaryPercentage 10, CanaryInterval 10; CodeDeploy User Guide,
    "Deployment configurations on an AWS Lambda compute platform"). CodeDeploy watches the
    deployment group's CloudWatch alarms during the deployment and, with automatic rollback on
    ``DEPLOYMENT_STOP_ON_ALARM``, stops and rolls back as soon as one is in ALARM. The alarm here
    is metric math ``Errors / Invocations`` on the canary alias (dimension ``Resource =
    function:alias``), period 60 s, in ALARM when ``datapoints_to_alarm`` of the last
    ``evaluation_periods`` datapoints are above ``threshold`` (a rate; a minute without
    invocations has no datapoint and does not breach). The one knob tuned is ``threshold``; with
    ``metric="slow"`` the alarm watches the share of requests over the latency threshold instead
    (``Duration`` with the percentile-rank statistic). Periods are one minute.
    """

    threshold: float
    metric: Metric = "errors"
    datapoints_to_alarm: int = 1
    evaluation_periods: int = 1
    bake_periods: int = 10

    @property
    def name(self) -> str:
        return "CodeDeploy alarm"

    def session(self) -> Session:
        return _CodeDeploySession(self)


@dataclass
class _FlaggerSession:
    judge: FlaggerAnalysis
    failed: int = 0
    passed: int = 0

    def add(self, period: Period) -> Decision:
        j = self.judge
        requests, events, _, _ = _counts(period, j.metric)
        # Flagger fails a check whose metric query returns no value (no canary traffic).
        ok = requests > 0 and events / requests <= j.max_rate
        if ok:
            self.passed += 1
            if j.consecutive:
                self.failed = 0
            if self.passed >= j.iterations:
                return "PROMOTE"
            return "CONTINUE"
        self.failed += 1
        if self.failed >= j.failed_checks:
            return "ROLLBACK"
        return "CONTINUE"


@dataclass(frozen=True)
class FlaggerAnalysis:
    """Flagger's canary analysis: a metric check every interval, rollback at a number of failed
    checks, promotion after a number of passed ones.

    From Flagger's documentation ("Deployment Strategies", "Metrics Analysis"): every
    ``interval`` (1m) it runs the metric checks; the built-in ``request-success-rate`` check
    passes when the success rate is at least ``thresholdRange.min`` (99 in the examples), i.e.
    when the error rate is at most ``max_rate``, the one knob tuned here. The canary is rolled
    back when the number of failed checks reaches ``threshold`` (5 in the examples) and
    promoted after ``maxWeight/stepWeight`` successful iterations; with our fixed 10% canary
    share we use the fixed-iterations form Flagger documents for A/B testing (``iterations``,
    10 here, to match CodeDeploy's 10-minute bake). As in Flagger's scheduler, a failed check
    does not advance the analysis and failed checks accumulate over the whole analysis (they are
    not reset by a passing check); ``consecutive=True`` resets them on every pass instead, the
    "N consecutive failures" reading. A check with no canary traffic fails (no metric value).
    ``metric="slow"`` checks the share of slow requests, as a custom MetricTemplate would.
    Intervals are one minute.
    """

    max_rate: float
    metric: Metric = "errors"
    failed_checks: int = 5
    iterations: int = 10
    consecutive: bool = False

    @property
    def name(self) -> str:
        return "Flagger"

    def session(self) -> Session:
        return _FlaggerSession(self)


def mann_whitney_u(sample: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Mann-Whitney U of ``sample`` against ``reference`` and the one-sided p-value for
    "``sample`` is stochastically greater": midranks for ties, the normal approximation with the
    tie-corrected variance and a continuity correction of 1/2 (as R's ``wilcox.test`` with
    ``exact=FALSE`` and SciPy's ``mannwhitneyu(method="asymptotic")``). ``U`` counts the pairs
    in which the sample is larger, ties counting one half. With every value tied, p is 1."""
    n1, n2 = len(sample), len(reference)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    pooled = sorted([(value, 0) for value in sample] + [(value, 1) for value in reference])
    n = n1 + n2
    rank_sum = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        midrank = (i + j) / 2.0 + 1.0
        size = j - i + 1
        tie_term += size**3 - size
        rank_sum += midrank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        i = j + 1
    u = rank_sum - n1 * (n1 + 1) / 2.0
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0.0:
        return u, 1.0
    z = (u - mean - 0.5) / math.sqrt(variance)
    return u, normal_sf(z)


@dataclass
class _KayentaSession:
    judge: KayentaMannWhitney
    canary: list[float] = field(default_factory=list)
    live: list[float] = field(default_factory=list)
    periods: int = 0

    def add(self, period: Period) -> Decision:
        j = self.judge
        self.periods += 1
        c_requests, c_events, l_requests, l_events = _counts(period, j.metric)
        if c_requests:
            self.canary.append(c_events / c_requests)
        if l_requests:
            self.live.append(l_events / l_requests)
        if self.periods < j.bake_periods:
            return "CONTINUE"
        if not self.canary or not self.live or self.canary == self.live:
            return "PROMOTE"  # Kayenta: no data or identical series classify as Pass
        _, p_value = mann_whitney_u(self.canary, self.live)
        return "ROLLBACK" if p_value < j.alpha else "PROMOTE"


@dataclass(frozen=True)
class KayentaMannWhitney:
    """Kayenta (Spinnaker's automated canary analysis) at the end of a fixed bake.

    From Kayenta's public description and its NetflixACAJudge: each metric is fetched as a time
    series for the canary and for a baseline over the canary's lifetime, and the two series are
    compared with a Mann-Whitney U test (the ``MannWhitneyClassifier``); a metric classified
    "High" fails the canary. With a CloudWatch error-rate metric at one-minute resolution the
    samples are the per-minute error rates of canary and live (our live version is the baseline;
    Kayenta ideally deploys a fresh baseline of the old version beside the canary). Here the
    metric fails when the one-sided p-value (canary greater) is below ``alpha``, the one knob
    tuned. Kayenta's classifier instead asks the test's confidence interval for the shift to
    clear a margin (a fraction of the Hodges-Lehmann estimate), which is stricter at the same
    level, so this form favours Kayenta. The decision is taken once, after ``bake_periods``
    minutes (30); ``metric="slow"`` compares the per-minute shares of slow requests.
    """

    alpha: float
    metric: Metric = "errors"
    bake_periods: int = 30

    @property
    def name(self) -> str:
        return "Kayenta MW"

    def session(self) -> Session:
        return _KayentaSession(self)


# --- running and scoring --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one judge did with one release."""

    decision: Decision  # CONTINUE: no decision within the horizon
    periods: int  # periods read before deciding (at the resolution fed)
    seconds: float  # time to the decision
    canary_requests: int  # canary requests served up to and including the deciding period
    exposure: float  # requests served by the new version if bad (see the module docstring)


def run(judge: CanaryJudge, release: Release, factor: int = 1) -> Outcome:
    """Feed ``release`` to a fresh session of ``judge`` until it decides or the horizon ends;
    ``factor`` sums that many simulated periods into each period the judge sees."""
    session = judge.session()
    scenario = release.scenario
    seconds_per_period = scenario.period_seconds * factor
    canary_requests = 0
    periods = 0
    decision: Decision = "CONTINUE"
    for period in release.stream(factor):
        periods += 1
        canary_requests += period.canary_requests
        decision = session.add(period)
        if decision != "CONTINUE":
            break
    seconds = float(periods * seconds_per_period)
    exposure = float(canary_requests)
    if decision == "PROMOTE":
        remaining = scenario.horizon_minutes * 60.0 - seconds
        exposure += scenario.total_rps * max(remaining, 0.0)
    return Outcome(decision, periods, seconds, canary_requests, exposure)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) with linear interpolation between order statistics."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """A judge's results on a scenario's good and bad releases."""

    good: int
    bad: int
    false_rollback: float  # share of good releases rolled back (timeouts included)
    false_promote: float  # share of bad releases promoted
    undecided: float  # share of all releases without a decision within the horizon
    exposure_median: float  # bad releases: requests served by the bad version (see Outcome)
    exposure_p90: float
    canary_phase_median: float  # bad releases: canary requests until the decision
    minutes_bad_median: float  # bad releases: minutes to a decision
    minutes_bad_p90: float
    minutes_good_median: float  # good releases: minutes to a decision
    minutes_good_p90: float

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in self.__dict__.items()}


def summarize(good: Sequence[Outcome], bad: Sequence[Outcome]) -> Summary:
    def share(outcomes: Sequence[Outcome], decision: Decision) -> float:
        return sum(o.decision == decision for o in outcomes) / len(outcomes) if outcomes else 0.0

    exposure = [o.exposure for o in bad]
    minutes_bad = [o.seconds / 60.0 for o in bad]
    minutes_good = [o.seconds / 60.0 for o in good]
    total = len(good) + len(bad)
    undecided = sum(o.decision == "CONTINUE" for o in (*good, *bad)) / total if total else 0.0
    return Summary(
        good=len(good),
        bad=len(bad),
        false_rollback=share(good, "ROLLBACK"),
        false_promote=share(bad, "PROMOTE"),
        undecided=undecided,
        exposure_median=percentile(exposure, 0.5),
        exposure_p90=percentile(exposure, 0.9),
        canary_phase_median=percentile([float(o.canary_requests) for o in bad], 0.5),
        minutes_bad_median=percentile(minutes_bad, 0.5),
        minutes_bad_p90=percentile(minutes_bad, 0.9),
        minutes_good_median=percentile(minutes_good, 0.5),
        minutes_good_p90=percentile(minutes_good, 0.9),
    )


def false_rollback_rate(
    judge: CanaryJudge, good: Sequence[Release], stop_above: float = math.inf
) -> float:
    """Share of ``good`` releases the judge rolls back; stops counting (returning a value above
    ``stop_above``) as soon as the share is certain to exceed it."""
    limit = stop_above * len(good)
    rollbacks = 0
    for release in good:
        if run(judge, release).decision == "ROLLBACK":
            rollbacks += 1
            if rollbacks > limit:
                break
    return rollbacks / len(good) if good else 0.0


@dataclass(frozen=True)
class Tuning:
    """The knob value chosen for a baseline, and how it was chosen."""

    value: float
    false_rollback: float  # on the tuning releases (exact unless above the cap)
    cap: float
    met: bool  # False: even the least sensitive value in the grid rolls back too often
    evaluations: int


def tune(
    make: Callable[[float], CanaryJudge],
    grid: Sequence[float],
    good: Sequence[Release],
    cap: float,
) -> Tuning:
    """The most sensitive knob value whose false-rollback rate on ``good`` is at most ``cap``.

    ``grid`` runs from the least to the most sensitive value; the false-rollback rate must not
    decrease along it (true of every baseline here: a lower rate threshold or a higher alpha
    can only add rollbacks on the same release), so a binary search finds the value.
    """
    if not grid:
        raise ValueError("the grid is empty")
    evaluations = 0

    def frr(index: int) -> float:
        nonlocal evaluations
        evaluations += 1
        return false_rollback_rate(make(grid[index]), good, stop_above=cap)

    first = frr(0)
    if first > cap:
        return Tuning(grid[0], first, cap, False, evaluations)
    low, high = 0, len(grid) - 1  # invariant: grid[low] meets the cap
    best_rate = first
    while low < high:
        middle = (low + high + 1) // 2
        rate = frr(middle)
        if rate <= cap:
            low, best_rate = middle, rate
        else:
            high = middle - 1
    return Tuning(grid[low], best_rate, cap, True, evaluations)


def geometric_grid(start: float, stop: float, factor: float) -> list[float]:
    """start, start·factor, ... up to stop (inclusive within rounding); factor may be < 1."""
    if start <= 0 or stop <= 0 or factor <= 0 or factor == 1:
        raise ValueError("a geometric grid needs positive bounds and a factor other than 1")
    values = []
    value = start
    ascending = factor > 1
    while (value <= stop * (1 + 1e-12)) if ascending else (value >= stop * (1 - 1e-12)):
        values.append(value)
        value *= factor
    return values


def sprt_bound(config: JudgeConfig, scenario: Scenario, metric: Metric, true_ratio: float) -> float:
    """Wald's expected number of canary requests for the SPRT on ``metric`` (the reference
    bound), from ``release.judge.expected_sample_size``; for slow requests the same formula with
    the slow ratio as the minimum regression."""
    if metric == "slow":
        config = replace(config, error_ratio=config.slow_ratio)
    return expected_sample_size(
        config, scenario.live_rate(metric), scenario.canary_share, true_ratio
    )
