"""Simulated releases, the canary judges we compare with, and the plumbing of a fair comparison.

The simulator draws what CloudWatch would report, minute by minute, for a whole release: from
the first canary minute until the new version serves everything (or is rolled back), up to a
horizon well beyond the longest bake (6 hours by default). Each judge drives its *own* traffic
schedule, as it does in production: the canary share of a minute is whatever the judge's schedule
says at that minute (``Rollout.share``), so a judge that shifts traffic sooner pays for it in
exposure when the release is bad. ``run`` puts a judge through a release; ``tune`` sets a judge's
sensitivity so its release-level false rollbacks stay within a budget. The benchmark
(``bench/canary_bench.py``) puts it all together. Standard library only, and seeded: the same seed
gives the same releases, decisions and numbers on every machine.

Traffic model
-------------
Requests arrive as a Poisson process at the scenario's rate (constant, or diurnal: a sine over
the day with a phase drawn per release); each goes to the canary with the probability the judge's
schedule gives that minute (API Gateway's or a Lambda alias' weighted routing). Each request fails
with its version's error probability and, independently, is slower than the latency threshold with
the probability its version's lognormal latency gives. Thinning a Poisson process keeps it
Poisson, so the four kinds of request (failed and slow, failed, slow, neither) are independent
Poisson counts; drawing those four gives the exact joint law of (requests, errors, slow) per
version and minute with no per-request loop.

Scenario effects, drawn per release so every judge faces the same events: a shared dependency
outage adds the same error rate to both versions for a few minutes; a shared slowdown multiplies
both versions' latency for a few minutes; a cold start multiplies the canary's latency in the
first minute after each share increase (the new execution environments are cold, good release or
not); clustered errors multiply each version's error rate per minute by a Gamma factor of mean 1
(errors arrive in bursts from one execution environment: the counts are negative binomial, not
Poisson).

Common random numbers: a minute's counts depend only on (release, minute, canary share, cold or
not), through a random stream seeded by those, and are cached; two judges that give the canary the
same share in the same minute see the same counts, and re-running a judge (tuning) costs no new
draws.

Exposure
--------
The harm a bad release does is the number of requests the bad version serves, counted to the
horizon: the canary's requests while the judge watches; nothing more after a ROLLBACK; after a
PROMOTE (full rollout) all the traffic until the horizon (the expected requests at the release's
traffic rate: someone notices eventually, and the horizon is the same for every judge); and a
release still undecided at the horizon has served what its canary served until then.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from release.commands import DEFAULT_STEPS
from release.judge import Decision, JudgeConfig, JudgeState, Period, Verdict

Metric = Literal["errors", "slow"]
METRICS: tuple[Metric, Metric] = ("errors", "slow")
HORIZON_MINUTES = 360
"""Exposure is counted for 6 hours: well beyond the longest bake of any judge here."""

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


def _stream(*parts: object) -> random.Random:
    """A reproducible random stream named by ``parts`` (a simulation's stream, not
    cryptography)."""
    return random.Random("/".join(str(part) for part in parts))  # noqa: S311


# --- the traffic model ----------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyModel:
    """A lognormal latency: ``median_ms`` and the standard deviation ``sigma`` of its log."""

    median_ms: float
    sigma: float

    def p_slower_than(self, threshold_ms: float, factor: float = 1.0) -> float:
        """P(latency > threshold_ms) when every latency is multiplied by ``factor``."""
        return normal_sf(math.log(threshold_ms / (self.median_ms * factor)) / self.sigma)


@dataclass(frozen=True)
class VersionModel:
    """How one version behaves: its error probability per request and its latency."""

    error_rate: float
    latency: LatencyModel


@dataclass(frozen=True)
class Scenario:
    """A release setting: traffic, the live version, a bad canary, and the events around them.

    The good canary behaves exactly like live (cold start aside); ``regression`` names the metric
    on which the bad canary is worse. Every judge watches both metrics.
    """

    name: str
    total_rps: float  # mean requests per second (both versions)
    live: VersionModel
    bad_canary: VersionModel
    regression: Metric
    description: str = ""
    slow_threshold_ms: float = 1000.0
    horizon_minutes: int = HORIZON_MINUTES
    diurnal_amplitude: float = 0.0  # rate = total_rps·(1 + A·sin(2π·(minute/1440 + phase)))
    outage_minutes: int = 0  # a shared dependency outage this long ...
    outage_error_rate: float = 0.0  # ... adding this error rate to both versions
    slowdown_minutes: int = 0  # a shared slowdown this long ...
    slowdown_factor: float = 1.0  # ... multiplying both versions' latency
    event_window_minutes: int = 20  # the outage or slowdown starts in [0, this) minutes
    cold_start_factor: float = 1.0  # the canary's latency factor in a share's first minute
    error_clustering: float = 0.0  # variance of the per-minute Gamma factor on error rates

    @property
    def good_canary(self) -> VersionModel:
        return self.live

    def live_rate(self, metric: Metric) -> float:
        """Live's nominal rate of ``metric`` (no event)."""
        if metric == "errors":
            return self.live.error_rate
        return self.live.latency.p_slower_than(self.slow_threshold_ms)

    def bad_rate(self, metric: Metric) -> float:
        """The bad canary's nominal rate of ``metric`` (no event)."""
        if metric == "errors":
            return self.bad_canary.error_rate
        return self.bad_canary.latency.p_slower_than(self.slow_threshold_ms)


@dataclass(frozen=True)
class Events:
    """What happens around one release, drawn once from its seed."""

    phase: float  # diurnal phase, a fraction of the day
    outage_start: int
    slowdown_start: int


def _version_counts(
    rng: random.Random, mean_requests: float, error_rate: float, slow_rate: float
) -> tuple[int, int, int]:
    """(requests, errors, slow) of one version in one minute."""
    error_rate = min(error_rate, 1.0)
    failed_slow = poisson(rng, mean_requests * error_rate * slow_rate)
    failed_fast = poisson(rng, mean_requests * error_rate * (1.0 - slow_rate))
    ok_slow = poisson(rng, mean_requests * (1.0 - error_rate) * slow_rate)
    ok_fast = poisson(rng, mean_requests * (1.0 - error_rate) * (1.0 - slow_rate))
    requests = failed_slow + failed_fast + ok_slow + ok_fast
    return requests, failed_slow + failed_fast, failed_slow + ok_slow


@dataclass
class Release:
    """One simulated release: its events are drawn from its seed, its minutes on demand (see the
    module docstring on common random numbers)."""

    scenario: Scenario
    bad: bool
    seed: str
    events: Events = field(init=False)
    _periods: dict[tuple[int, int, int, float, bool], Period] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        rng = _stream(self.seed, "events")
        window = max(self.scenario.event_window_minutes, 1)
        self.events = Events(
            phase=rng.random(),
            outage_start=rng.randrange(window),
            slowdown_start=rng.randrange(window),
        )

    @property
    def canary(self) -> VersionModel:
        return self.scenario.bad_canary if self.bad else self.scenario.good_canary

    def rps(self, minute: int) -> float:
        """The mean request rate in ``minute`` (0-based)."""
        s = self.scenario
        if not s.diurnal_amplitude:
            return s.total_rps
        angle = 2.0 * math.pi * (minute / 1440.0 + self.events.phase)
        return s.total_rps * (1.0 + s.diurnal_amplitude * math.sin(angle))

    def expected_requests(self, start: float, end: int) -> float:
        """Requests expected from minute ``start`` (a fraction: a decision within a minute) to
        minute ``end``, both versions."""
        first = math.ceil(start)
        partial = self.rps(math.floor(start)) * 60.0 * (first - start) if first > start else 0.0
        return partial + sum(self.rps(minute) * 60.0 for minute in range(first, end))

    def _in_outage(self, minute: int) -> bool:
        start = self.events.outage_start
        return start <= minute < start + self.scenario.outage_minutes

    def _in_slowdown(self, minute: int) -> bool:
        start = self.events.slowdown_start
        return start <= minute < start + self.scenario.slowdown_minutes

    def period(
        self, minute: int, share: float, cold: bool = False, part: int = 0, parts: int = 1
    ) -> Period:
        """The counts of ``minute`` (or of its ``part``-th of ``parts`` equal periods: 10-second
        periods are parts of 6) when the canary takes ``share`` of the requests; ``cold``: within
        the canary's first minute at this share (its environments start cold)."""
        s = self.scenario
        if not 0 <= minute < s.horizon_minutes:
            raise IndexError(f"minute {minute} is outside the horizon")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"a canary share must be within [0, 1], got {share!r}")
        if not 0 <= part < parts:
            raise ValueError(f"part {part} of {parts} does not exist")
        key = (minute, part, parts, share, cold)
        cached = self._periods.get(key)
        if cached is not None:
            return cached
        live_factor = canary_factor = 1.0
        if s.error_clustering:
            shape = 1.0 / s.error_clustering
            burst = _stream(self.seed, "bursts", minute)
            live_factor = burst.gammavariate(shape, s.error_clustering)
            canary_factor = burst.gammavariate(shape, s.error_clustering)
        extra_errors = s.outage_error_rate if self._in_outage(minute) else 0.0
        slowdown = s.slowdown_factor if self._in_slowdown(minute) else 1.0
        canary_latency = slowdown * (s.cold_start_factor if cold else 1.0)
        canary, live = self.canary, s.live
        rng = _stream(self.seed, minute, share, cold, *((part, parts) if parts > 1 else ()))
        arrivals = self.rps(minute) * 60.0 / parts
        c = _version_counts(
            rng,
            arrivals * share,
            canary.error_rate * canary_factor + extra_errors,
            canary.latency.p_slower_than(s.slow_threshold_ms, canary_latency),
        )
        v = _version_counts(
            rng,
            arrivals * (1.0 - share),
            live.error_rate * live_factor + extra_errors,
            live.latency.p_slower_than(s.slow_threshold_ms, slowdown),
        )
        period = Period(
            live_requests=v[0],
            live_errors=v[1],
            live_slow=v[2],
            canary_requests=c[0],
            canary_errors=c[1],
            canary_slow=c[2],
        )
        self._periods[key] = period
        return period


def make_releases(scenario: Scenario, *, bad: bool, count: int, seed: str) -> list[Release]:
    """``count`` independent releases; release i depends only on (seed, scenario name, good/bad,
    i), so adding scenarios or releases never changes the others, and two seeds give disjoint
    sets (tuning and evaluation)."""
    kind = "bad" if bad else "good"
    return [Release(scenario, bad, f"{seed}/{scenario.name}/{kind}/{i}") for i in range(count)]


def aggregate(periods: Sequence[Period]) -> Period:
    """Several minutes summed into one period, as CloudWatch sums a metric over a longer one."""
    return Period(
        live_requests=sum(p.live_requests for p in periods),
        live_errors=sum(p.live_errors for p in periods),
        live_slow=sum(p.live_slow for p in periods),
        canary_requests=sum(p.canary_requests for p in periods),
        canary_errors=sum(p.canary_errors for p in periods),
        canary_slow=sum(p.canary_slow for p in periods),
    )


def _canary_rate(period: Period, metric: Metric) -> float | None:
    """The canary's rate of ``metric`` in ``period``; None without canary requests."""
    if not period.canary_requests:
        return None
    events = period.canary_errors if metric == "errors" else period.canary_slow
    return events / period.canary_requests


# --- judges ---------------------------------------------------------------------------------


class Rollout(Protocol):
    """A judge driving one release: the canary share it asks for this minute, and its decision
    after the minute's metrics. PROMOTE means the release is fully rolled out (100%), ROLLBACK
    that it stopped; CONTINUE keeps watching (possibly at another share next minute)."""

    @property
    def share(self) -> float: ...

    def add(self, period: Period) -> Decision: ...


class Judge(Protocol):
    """A judge with its traffic schedule: a name for the table and a fresh rollout per release."""

    @property
    def name(self) -> str: ...

    def session(self) -> Rollout: ...


# Ours ---------------------------------------------------------------------------------------

OUR_STEPS = tuple(percent / 100 for percent in DEFAULT_STEPS)
"""The release tool's canary shares; PROMOTE after the last one goes to 100%."""


class StepJudge(Protocol):
    """What the rollout needs of ``release.judge.JudgeState`` (a test may script it): one state
    per release, carrying its evidence and its error budget across the steps; ``start_step``
    before the first period of every step (the first one included, as ``watch`` does it)."""

    def start_step(self) -> None: ...

    def add(self, period: Period) -> Verdict: ...


@dataclass
class _OurRollout:
    state: StepJudge
    steps: tuple[float, ...]
    step: int = 0

    def __post_init__(self) -> None:
        self.state.start_step()

    @property
    def share(self) -> float:
        return self.steps[self.step]

    def add(self, period: Period) -> Decision:
        decision = self.state.add(period).decision
        if decision != "PROMOTE":
            return decision
        self.step += 1
        if self.step == len(self.steps):
            return "PROMOTE"
        self.state.start_step()
        return "CONTINUE"


@dataclass(frozen=True)
class OurJudge:
    """The release tool: its default steps (5% → 25% → 50% → 100%), a step advancing when
    ``release.judge`` says PROMOTE for it, ROLLBACK stopping the release. One judge state per
    release."""

    config: JudgeConfig = field(default_factory=JudgeConfig)
    steps: tuple[float, ...] = OUR_STEPS
    make_state: Callable[[JudgeConfig], StepJudge] = JudgeState
    label: str = "ours"

    @property
    def name(self) -> str:
        return self.label

    def session(self) -> Rollout:
        return _OurRollout(self.make_state(self.config), self.steps)


# CodeDeploy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficPreset:
    """A CodeDeploy Lambda deployment configuration: ``canary`` shifts ``percent`` then, after
    ``minutes``, the rest; ``linear`` shifts ``percent`` more every ``minutes`` until 100%."""

    name: str
    kind: Literal["canary", "linear"]
    percent: int
    minutes: int

    def share(self, minute: int) -> float:
        """The new version's share in ``minute`` (0-based) since the deployment started."""
        if self.kind == "canary":
            return self.percent / 100.0 if minute < self.minutes else 1.0
        return min(self.percent * (1 + minute // self.minutes), 100) / 100.0

    @property
    def shift_minutes(self) -> int:
        """Minutes until all traffic is shifted."""
        if self.kind == "canary":
            return self.minutes
        return (math.ceil(100 / self.percent) - 1) * self.minutes


CODEDEPLOY_PRESETS = tuple(
    [TrafficPreset(f"Canary10Percent{m}Minutes", "canary", 10, m) for m in (5, 10, 15, 30)]
    + [
        TrafficPreset(f"Linear10PercentEvery{m}Minute{'s' if m > 1 else ''}", "linear", 10, m)
        for m in (1, 2, 3, 10)
    ]
)
"""CodeDeploy's predefined Lambda configurations (CodeDeployDefault.Lambda...): CodeDeploy User
Guide, "Deployment configurations on an AWS Lambda compute platform"."""


@dataclass(frozen=True)
class AlarmShape:
    """A CloudWatch alarm's period and its M-of-N rule."""

    period_minutes: int
    evaluation_periods: int
    datapoints_to_alarm: int

    @property
    def label(self) -> str:
        return (
            f"{self.period_minutes} min x {self.datapoints_to_alarm} of {self.evaluation_periods}"
        )


SAM_EXAMPLE_ALARM = AlarmShape(period_minutes=1, evaluation_periods=2, datapoints_to_alarm=2)
"""AWS SAM's gradual-deployment example ("Deploying serverless applications gradually"): the
alarms ``AliasErrorMetricGreaterThanZeroAlarm`` and
``LatestVersionErrorMetricGreaterThanZeroAlarm``, ``Errors`` Sum > 0 over ``Period: 60`` with
``EvaluationPeriods: 2``."""
FIVE_MINUTE_ALARM = AlarmShape(period_minutes=5, evaluation_periods=1, datapoints_to_alarm=1)


@dataclass
class _CodeDeployRollout:
    judge: CodeDeployAlarms
    minute: int = 0
    window: list[Period] = field(default_factory=list)
    breaches: deque[bool] = field(default_factory=deque)

    @property
    def share(self) -> float:
        return self.judge.preset.share(self.minute)

    def add(self, period: Period) -> Decision:
        j = self.judge
        self.minute += 1
        self.window.append(period)
        if len(self.window) == j.alarm.period_minutes:
            datapoint = aggregate(self.window)
            self.window.clear()
            self.breaches.append(j.breaching(datapoint))
            if len(self.breaches) > j.alarm.evaluation_periods:
                self.breaches.popleft()
            if sum(self.breaches) >= j.alarm.datapoints_to_alarm:
                return "ROLLBACK"
        if self.minute >= j.preset.shift_minutes:
            return "PROMOTE"
        return "CONTINUE"


@dataclass(frozen=True)
class CodeDeployAlarms:
    """CodeDeploy shifting a Lambda alias by a predefined configuration, with automatic rollback
    when a CloudWatch alarm goes to ALARM (``DEPLOYMENT_STOP_ON_ALARM``).

    Schedule (CodeDeploy User Guide, "Deployment configurations on an AWS Lambda compute
    platform"): ``LambdaCanary10Percent{5,10,15,30}Minutes`` shift 10% of the traffic, then the
    remaining 90% that many minutes later; ``LambdaLinear10PercentEvery{1,2,3,10}Minute(s)``
    shift 10% more at each interval until all traffic is shifted. The deployment succeeds when
    all traffic is shifted; CodeDeploy watches the deployment group's alarms until then.

    Alarms: one on the new version's error rate (metric math ``Errors / Invocations`` with the
    ``ExecutedVersion`` dimension) and one on its slow share (requests over the latency
    threshold, the percentile-rank statistic ``PR(1000:)`` of ``Duration``: "p99 under 1 s" is
    "at most 1% over 1 s"), each above its threshold (a rate) in ``datapoints_to_alarm`` of the
    last ``evaluation_periods`` datapoints of ``period_minutes``. A period without invocations
    has no datapoint and does not breach (``TreatMissingData: notBreaching``). AWS's gradual
    deployment example (AWS SAM Developer Guide, "Deploying serverless applications gradually")
    alarms on ``Errors > 0`` with ``Period: 60`` and ``EvaluationPeriods: 2``; AWS documents no
    latency threshold (it is service-specific). CloudWatch's evaluation delay is not modelled:
    a favour to CodeDeploy.
    """

    preset: TrafficPreset
    alarm: AlarmShape
    max_error_rate: float
    max_slow_rate: float
    label: str = "CodeDeploy"

    @property
    def name(self) -> str:
        return self.label

    def breaching(self, datapoint: Period) -> bool:
        errors = _canary_rate(datapoint, "errors")
        slow = _canary_rate(datapoint, "slow")
        if errors is None or slow is None:
            return False
        return errors > self.max_error_rate or slow > self.max_slow_rate

    def session(self) -> Rollout:
        return _CodeDeployRollout(self)


# Flagger ------------------------------------------------------------------------------------


@dataclass
class _FlaggerRollout:
    judge: FlaggerAnalysis
    weight: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        self.weight = self.judge.step_weight

    @property
    def share(self) -> float:
        return self.weight / 100.0

    def add(self, period: Period) -> Decision:
        j = self.judge
        if j.passes(period):
            if self.weight >= j.max_weight:
                return "PROMOTE"
            self.weight = min(self.weight + j.step_weight, j.max_weight)
            return "CONTINUE"
        self.failed += 1
        if self.failed >= j.threshold:
            return "ROLLBACK"
        return "CONTINUE"


@dataclass(frozen=True)
class FlaggerAnalysis:
    """Flagger's canary release: progressive traffic shifting with a metric analysis each
    interval.

    From Flagger's documentation ("Deployment Strategies: Canary Release", "Metrics Analysis"):
    every ``analysis.interval`` (1m) Flagger runs the metric checks; when they pass it raises the
    canary weight by ``stepWeight`` up to ``maxWeight`` (10 and 50 in the tutorials), and when
    they pass at ``maxWeight`` it promotes the canary (all traffic). A failed check does not
    advance the weight and counts towards ``threshold`` (5 in the tutorials; the strategy page's
    example uses 10): at that many failed checks the canary is rolled back. Failed checks add up
    over the analysis (a passing check does not reset them). The built-in checks:
    ``request-success-rate`` with ``thresholdRange.min: 99`` (at most 1% errors, here
    ``max_error_rate``) and ``request-duration`` with ``thresholdRange.max: 500`` (p99 under
    500 ms; here the slow share over the scenario's latency threshold, ``max_slow_rate``).
    A check whose query returns no value (no canary request) fails.
    """

    max_error_rate: float
    max_slow_rate: float
    step_weight: int = 10
    max_weight: int = 50
    threshold: int = 5
    label: str = "Flagger"

    @property
    def name(self) -> str:
        return self.label

    def passes(self, period: Period) -> bool:
        errors = _canary_rate(period, "errors")
        slow = _canary_rate(period, "slow")
        if errors is None or slow is None:
            return False
        return errors <= self.max_error_rate and slow <= self.max_slow_rate

    def session(self) -> Rollout:
        return _FlaggerRollout(self)


# Kayenta ------------------------------------------------------------------------------------


def _normal_quantile(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def hodges_lehmann(
    sample: Sequence[float], reference: Sequence[float], confidence: float
) -> tuple[float, float, float]:
    """(lower, estimate, upper): the Hodges-Lehmann estimate of the shift ``sample - reference``
    (the median of the pairwise differences) and the Mann-Whitney confidence interval for it,
    from the order statistics of the differences whose ranks the normal approximation of U's
    distribution gives (as R's ``wilcox.test(conf.int=TRUE)`` for large samples, without its
    tie correction)."""
    n1, n2 = len(sample), len(reference)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"a confidence level must be within (0, 1), got {confidence!r}")
    differences = sorted([x - y for x in sample for y in reference])
    n = n1 * n2
    estimate = statistics.median(differences)
    z = _normal_quantile(0.5 + confidence / 2.0)
    k = math.floor(n / 2.0 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0))
    k = min(max(k, 0), (n - 1) // 2)
    return differences[k], estimate, differences[n - 1 - k]


@dataclass
class _KayentaRollout:
    judge: KayentaAnalysis
    minute: int = 0
    canary: dict[Metric, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    live: dict[Metric, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    @property
    def share(self) -> float:
        return self.judge.share

    def add(self, period: Period) -> Decision:
        j = self.judge
        self.minute += 1
        for metric in METRICS:
            canary = _canary_rate(period, metric)
            if canary is not None:
                self.canary[metric].append(canary)
            if period.live_requests:
                events = period.live_errors if metric == "errors" else period.live_slow
                self.live[metric].append(events / period.live_requests)
        last = self.minute >= j.lifetime_minutes
        if not last and self.minute % j.interval_minutes:
            return "CONTINUE"
        score = j.score(self.canary, self.live)
        if last:
            return "PROMOTE" if score >= j.pass_score else "ROLLBACK"
        return "ROLLBACK" if score < j.marginal_score else "CONTINUE"


@dataclass(frozen=True)
class KayentaAnalysis:
    """Spinnaker's automated canary analysis (Kayenta) with its default judge, NetflixACAJudge.

    Schedule (Kayenta's ``CanaryAnalysisExecutionRequest``, Spinnaker's "Add a canary stage to a
    pipeline"): the canary takes ``share`` of the traffic for ``lifetime_minutes``; every
    ``interval_minutes`` a judgement scores the metrics over a growing window (from the start,
    the default when no ``lookbackMins`` is given); every judgement but the last must score at
    least ``marginal`` (75) and the last at least ``pass`` (95), or the canary fails (rolled
    back); after a passing last judgement the pipeline deploys the new version everywhere.
    Spinnaker's help text recommends intervals of at least 30 minutes and its best practices at
    least 50 datapoints per metric: defaults here 60 minutes with two 30-minute judgements.

    Judge ("How canary judgment works"; ``MannWhitneyClassifier`` in kayenta-judge, tolerance
    0.25, confidence 0.98): each metric's per-minute values (error rate, slow share; minutes
    without data dropped) of canary and baseline are compared by the Mann-Whitney confidence
    interval for the shift; the metric is High when the interval's lower end lies above
    ``tolerance`` times the Hodges-Lehmann estimate (and the canary's mean is at least the
    baseline's). The score is the share of metrics that pass (one group per metric, equal
    weights): with two metrics a High scores 50, below the marginal 75. Our live version stands
    in for Kayenta's fresh baseline cluster.
    """

    confidence: float = 0.98
    tolerance: float = 0.25
    lifetime_minutes: int = 60
    interval_minutes: int = 30
    marginal_score: float = 75.0
    pass_score: float = 95.0
    share: float = 0.10
    label: str = "Kayenta"

    @property
    def name(self) -> str:
        return self.label

    def high(self, canary: Sequence[float], baseline: Sequence[float]) -> bool:
        """The NetflixACAJudge's classification of one metric: True for High."""
        if not canary or not baseline:
            return False  # no data: Kayenta's NODATA, not a failure of a non-critical metric
        lower, estimate, _ = hodges_lehmann(canary, baseline, self.confidence)
        baseline_mean = statistics.fmean(baseline)
        ratio_ok = baseline_mean == 0.0 or statistics.fmean(canary) >= baseline_mean
        return lower > self.tolerance * abs(estimate) and ratio_ok

    def score(self, canary: dict[Metric, list[float]], live: dict[Metric, list[float]]) -> float:
        passed = sum(not self.high(canary[m], live[m]) for m in METRICS)
        return 100.0 * passed / len(METRICS)

    def session(self) -> Rollout:
        return _KayentaRollout(self)


# --- running and scoring --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one judge did with one release."""

    decision: Decision  # CONTINUE: still undecided at the horizon
    minutes: float  # minutes to the decision (the horizon when undecided)
    canary_requests: int  # requests the new version served while watched
    exposure: float  # bad releases: requests served by the bad version (module docstring)


def run(judge: Judge, release: Release, period_seconds: int = 60) -> Outcome:
    """Drive ``release`` with a fresh rollout of ``judge``, period by period (of
    ``period_seconds``, a divisor of 60) at the share its schedule asks for, until it decides or
    the horizon ends. The canary is cold for a minute after each share increase."""
    if period_seconds <= 0 or 60 % period_seconds:
        raise ValueError(f"a period must divide a minute, got {period_seconds!r} s")
    parts = 60 // period_seconds
    session = judge.session()
    horizon = release.scenario.horizon_minutes
    canary_requests = 0
    previous_share = 0.0
    warm_at = 0  # seconds: the canary is cold until then
    decision: Decision = "CONTINUE"
    seconds = horizon * 60
    for elapsed in range(0, horizon * 60, period_seconds):
        share = session.share
        if share > previous_share:
            warm_at = elapsed + 60
        previous_share = share
        minute, part = divmod(elapsed // period_seconds, parts)
        period = release.period(minute, share, elapsed < warm_at, part, parts)
        canary_requests += period.canary_requests
        decision = session.add(period)
        if decision != "CONTINUE":
            seconds = elapsed + period_seconds
            break
    minutes = seconds / 60.0
    exposure = 0.0
    if release.bad:
        exposure = float(canary_requests)
        if decision == "PROMOTE":
            exposure += release.expected_requests(minutes, horizon)
    return Outcome(decision, minutes, canary_requests, exposure)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) with linear interpolation between order statistics."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def quantile_interval(values: Sequence[float], q: float, z: float = 1.96) -> tuple[float, float]:
    """A distribution-free confidence interval for the q-quantile: the order statistics whose
    ranks are ``n q ± z sqrt(n q (1 - q))`` (the binomial count of values below the quantile)."""
    if not values:
        return math.nan, math.nan
    ordered = sorted(values)
    n = len(ordered)
    spread = z * math.sqrt(n * q * (1 - q))
    low = max(math.floor(n * q - spread), 1)
    high = min(math.ceil(n * q + spread), n)
    return ordered[low - 1], ordered[high - 1]


@dataclass(frozen=True)
class Summary:
    """A judge's results on a scenario's good and bad releases, release-level."""

    good: int
    bad: int
    false_rollback: float  # share of good releases rolled back
    false_promote: float  # share of bad releases fully rolled out
    undecided_good: float  # share of good releases undecided at the horizon
    undecided_bad: float  # share of bad releases undecided at the horizon
    exposure_mean: float  # bad releases: requests served by the bad version
    exposure_median: float
    exposure_p90: float
    exposure_sd: float  # sample standard deviation, for the mean's sampling error
    exposure_p90_low: float  # a 95% distribution-free interval around the p90 (order statistics)
    exposure_p90_high: float
    minutes_bad_median: float  # bad releases: minutes to a decision (horizon if none)
    minutes_bad_p90: float
    minutes_good_median: float  # good releases: minutes to a decision (horizon if none)
    minutes_good_p90: float

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in self.__dict__.items()}


def summarize(good: Sequence[Outcome], bad: Sequence[Outcome]) -> Summary:
    def share(outcomes: Sequence[Outcome], decision: Decision) -> float:
        return sum(o.decision == decision for o in outcomes) / len(outcomes) if outcomes else 0.0

    exposure = [o.exposure for o in bad]
    minutes_bad = [o.minutes for o in bad]
    minutes_good = [o.minutes for o in good]
    return Summary(
        good=len(good),
        bad=len(bad),
        false_rollback=share(good, "ROLLBACK"),
        false_promote=share(bad, "PROMOTE"),
        undecided_good=share(good, "CONTINUE"),
        undecided_bad=share(bad, "CONTINUE"),
        exposure_mean=statistics.fmean(exposure) if exposure else math.nan,
        exposure_median=percentile(exposure, 0.5),
        exposure_p90=percentile(exposure, 0.9),
        exposure_sd=statistics.stdev(exposure) if len(exposure) > 1 else math.nan,
        exposure_p90_low=quantile_interval(exposure, 0.9)[0],
        exposure_p90_high=quantile_interval(exposure, 0.9)[1],
        minutes_bad_median=percentile(minutes_bad, 0.5),
        minutes_bad_p90=percentile(minutes_bad, 0.9),
        minutes_good_median=percentile(minutes_good, 0.5),
        minutes_good_p90=percentile(minutes_good, 0.9),
    )


def evaluate(
    judge: Judge, good: Sequence[Release], bad: Sequence[Release], period_seconds: int = 60
) -> Summary:
    """``judge`` on every release, in periods of ``period_seconds``."""
    return summarize(
        [run(judge, r, period_seconds) for r in good], [run(judge, r, period_seconds) for r in bad]
    )


def false_rollback_rate(
    judge: Judge, good: Sequence[Release], stop_above: float = math.inf
) -> float:
    """Share of ``good`` releases the judge rolls back. With ``stop_above`` it stops counting as
    soon as the share of releases rolled back so far exceeds it, and returns that share, which is
    then above ``stop_above`` (compared as the same float division as the result, so a cap whose
    product with the count falls just below a whole number cannot come back as exactly the
    cap)."""
    if not good:
        return 0.0
    rollbacks = 0
    for release in good:
        if run(judge, release).decision == "ROLLBACK":
            rollbacks += 1
            if rollbacks / len(good) > stop_above:
                break
    return rollbacks / len(good)


@dataclass(frozen=True)
class Tuning:
    """The knob value chosen for a judge, and how it was chosen."""

    value: float
    false_rollback: float  # on the tuning releases (exact unless above the cap)
    cap: float
    met: bool  # False: even the least sensitive value in the grid rolls back too often
    evaluations: int


def tune(
    make: Callable[[float], Judge],
    grid: Sequence[float],
    good: Sequence[Release],
    cap: float,
) -> Tuning:
    """The most sensitive knob value whose false-rollback rate on ``good`` is at most ``cap``.

    ``grid`` runs from the least to the most sensitive value; the false-rollback rate must not
    decrease along it (true of the judges here: a lower rate threshold or a lower confidence
    level can only add rollbacks on the same release, whose minutes are the same while it is not
    rolled back), so a binary search finds the value.
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
