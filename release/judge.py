"""The canary judge: PROMOTE, CONTINUE or ROLLBACK, as early as the evidence allows, with its
promises kept for a whole release (every step from the first, 1 to 10%, through 25 and 50%),
not for one step.

Every metric period (a CloudWatch minute, or 10 seconds from the function's own metrics) gives,
for the live and the canary version, the requests, the errors and the requests slower than a
latency threshold. :class:`JudgeState` is the judge of one *release*: ``start_step()`` when the
canary's share changes, ``add(period)`` for each period. ``judge()`` reads the periods of a single
step (``status``). Standard library only, deterministic (no randomness, no clock), O(1) per
period.

The model
---------
Errors and slow requests are judged alike, so only errors are described. In a period where the
canary served ``n_c`` requests and live ``n_l``, and ``m = c + l`` errors were seen (``c`` on the
canary), the canary's share of the errors is, given ``m``,

    c ~ Binomial(m, q(theta)),    q(theta) = theta·n_c / (theta·n_c + n_l),

where theta is the canary's error rate over live's. Conditioning on ``m`` removes the unknown,
changing baseline: traffic, the live rate and the canary's share may all change from one period
to the next (diurnal traffic, a new step); only theta is assumed constant. The log-likelihood
ratio of theta against 1 grows per period by

    c·log(theta) + m·log((n_c + n_l)/(theta·n_c + n_l)).

The two decisions
-----------------
* **Rollback** on a mixture likelihood ratio (an always-valid "mSPRT", Robbins 1970; Johari et
  al. 2017; Lindon & Malek 2022, the count-metric test behind Netflix's canaries): the average of
  the likelihood ratios at ``THETAS`` (1.5x … 21x). Under theta = 1 it is a nonnegative
  martingale, so by Ville's inequality it *ever* reaches ``1/alpha'`` with probability at most
  ``alpha'``: a whole release may be watched every period, for any length, through every step,
  and a canary as good as live is rolled back at most ``alpha = false_rollback_rate`` of the
  time (``alpha' = alpha/2`` per metric). The mixture spans the regressions worth stopping: a
  canary 20x worse is rolled back on a handful of errors, where a test tuned to 2x needs many
  (a live version that never errs against a canary failing 0.5%: every error is the canary's).
* **Promote** on Wald's sequential test of 1 against ``error_ratio`` (2x): a step passes when
  the log-likelihood ratio of 2x against 1 is at or below ``log(beta)``. Under theta = 2 its
  exponential is a martingale too, so a canary 2x worse (or more) passes, ever, with probability
  at most ``beta = false_promote_rate``, again for the whole release. A step also needs
  ``min_canary_requests`` canary requests of its own; both metrics must pass at the same period.

The evidence is carried across steps: one release, one pair of promises. A step's first
periods therefore inherit the earlier steps' evidence, and a later step mostly confirms it at a
larger share; a bad canary that slipped through a small step is caught by the same running
statistics at the next one.

Robustness
----------
* **Shared outages and slowdowns.** A period in which live's rate of a metric is far above the
  release's so far (``outage_factor``x, and significantly so), in the period itself or over the
  last minute of periods (``OUTAGE_WINDOW_SECONDS``: a 10-second period of an outage may hold too
  few events to show it alone), is left out of that metric's statistics, and so is the minute
  after it: a dependency failing both versions alike says nothing about the canary, and counted
  as evidence it would make a bad canary look like live. Live's counts, not the canary's, pick
  the periods (a canary failing alone is a regression), so the promises hold nearly exactly.
  What a period teaches the guard's rate and the dispersion is learnt once it has left that
  minute's window without an outage in it, so an outage's first, still quiet, period teaches
  neither. The release's rate starts from a prior (``OUTAGE_PRIOR_RATE`` over
  ``OUTAGE_PRIOR_REQUESTS``), so an outage in the first minute is caught too, and a service
  whose normal rate is high teaches the prior within a few periods.
* **Cold starts.** The canary's slow requests are not judged during the first
  ``warmup_seconds`` of each step: the share just grew, new execution environments start cold,
  and a good canary would look slow. Errors are judged from the first period.
* **Clustered errors.** Errors that come in bursts (one bad execution environment, a retried
  request) make ``c`` overdispersed: its variance is ``phi`` times the binomial one. The judge
  estimates ``phi`` from the data (Pearson's residuals of each period against the rate ratio
  estimated from the periods before it, shrunk to 1 by ``DISPERSION_PRIOR`` pseudo-periods) and
  divides every log-likelihood ratio by it (quasi-likelihood), so a burst raises the bar instead
  of rolling back a good canary; ``dispersion`` sets a floor.

Too little traffic
------------------
A step that has not decided after ``max_periods`` periods is *undecided*, neither a pass nor a
failure: with ``on_timeout="WAIT"`` (the default) the verdict stays CONTINUE, marked
``timed_out``, and says how many canary requests a decision needs at the traffic seen.
``"PROMOTE"`` promotes anyway, marked ``verified=False`` (the caller records it as such);
``"ROLLBACK"`` rolls back. :func:`plan_step` says, before a step, how long it needs.

Zero-event path. With no errors anywhere, ``m = 0`` and the ratio test cannot move. So a test
also passes when the canary has had *no* event at all in at least
``log(1/beta)/(ratio·RATE_FLOOR)`` requests (2,303 with the defaults): a canary whose rate is at
least ``ratio·RATE_FLOOR`` shows no event in that many requests with probability at most beta.
Regressions below that absolute rate (0.2% for a 2x ratio) are out of scope; a single canary
event closes the path for good.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Final, Literal

Decision = Literal["PROMOTE", "CONTINUE", "ROLLBACK"]
OnTimeout = Literal["WAIT", "PROMOTE", "ROLLBACK"]
Metric = Literal["errors", "slow"]
METRICS: Final[tuple[Metric, Metric]] = ("errors", "slow")

RATE_FLOOR: Final = 0.001
"""The lowest rate of errors (or of slow requests) whose regression the zero-event path guards
against: with no canary event at all, the canary passes once a rate of ``ratio * RATE_FLOOR``
would have shown an event with probability at least 1 - beta."""

THETAS: Final = (1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)
"""The rate ratios the rollback mixture averages, equally weighted: from barely worse to a
canary that fails most requests live serves."""

OUTAGE_PRIOR_RATE: Final = 0.01
OUTAGE_PRIOR_REQUESTS: Final = 1000.0
"""The release's pooled rate before any period: 1% over a thousand requests, outweighed by a
few minutes of real traffic."""
OUTAGE_MIN_EVENTS: Final = 5
"""A period with fewer pooled events is never an outage: too few to tell one from chance."""
OUTAGE_WINDOW_SECONDS: Final = 60
"""Live's rate is also tested over the last minute of periods: a 10-second period of an outage
can hold too few events to be significant alone, and one let through would count a shared
failure as evidence (and as live's overdispersion)."""

CAP_EVENTS: Final = 40
"""A period with up to this many events (both versions) does at most half of a rollback's work;
one with more, proportionally more: one burst of a few errors is not a regression, a thousand
requests failing at once is."""

DISPERSION_PRIOR: Final = 20.0
"""Pseudo-periods of binomial variance the dispersion estimate starts from."""


@dataclass(frozen=True)
class Period:
    """One metric period for both versions.

    Counts must not be negative. Errors or slow requests above the requests are accepted as
    given (CloudWatch publishes the metrics separately, so one period's counts may disagree).
    """

    live_requests: int
    live_errors: int
    live_slow: int  # live requests slower than the latency threshold
    canary_requests: int
    canary_errors: int
    canary_slow: int

    def __post_init__(self) -> None:
        if (
            min(
                self.live_requests,
                self.live_errors,
                self.live_slow,
                self.canary_requests,
                self.canary_errors,
                self.canary_slow,
            )
            < 0
        ):
            raise ValueError(f"a period's counts must not be negative, got {self}")

    def counts(self, metric: Metric) -> tuple[int, int, int, int]:
        """(canary requests, canary events, live requests, live events) of ``metric``."""
        if metric == "errors":
            return self.canary_requests, self.canary_errors, self.live_requests, self.live_errors
        return self.canary_requests, self.canary_slow, self.live_requests, self.live_slow


@dataclass(frozen=True)
class JudgeConfig:
    """The design of the test: its error rates, the regression it detects, its limits."""

    false_rollback_rate: float = 0.01  # alpha: P(ROLLBACK) per release, canary as good as live
    false_promote_rate: float = 0.01  # beta: P(PROMOTE) per release, worse by the regression
    error_ratio: float = 2.0  # minimum regression: canary error rate = 2x live's
    slow_ratio: float = 2.0  # minimum regression: canary share of slow requests = 2x live's
    min_canary_requests: int = 100  # never pass a step on fewer canary requests of its own
    max_periods: int = 60  # periods (of period_seconds) after which an undecided step times out
    on_timeout: OnTimeout = "WAIT"
    period_seconds: int = 60  # a period's length unless ``add`` is told otherwise
    warmup_seconds: int = 60  # the canary's slow requests are not judged this long per step
    outage_factor: float = 5.0  # a pooled rate this many times the release's is an outage
    dispersion: float = 1.0  # the least variance inflation assumed (1: none)

    def __post_init__(self) -> None:
        for name in ("false_rollback_rate", "false_promote_rate"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < value < 0.5:
                raise ValueError(
                    f"{name} must be a probability above 0 and below 0.5, got {value!r}"
                )
        for name in ("error_ratio", "slow_ratio", "outage_factor"):
            value = getattr(self, name)
            if not _is_real(value) or not 1.0 < value < math.inf:
                raise ValueError(f"{name} must be a finite ratio above 1, got {value!r}")
        if not _is_real(self.dispersion) or not 1.0 <= self.dispersion < math.inf:
            raise ValueError(f"dispersion must be a finite number >= 1, got {self.dispersion!r}")
        for name in ("min_canary_requests", "max_periods", "period_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if (
            isinstance(self.warmup_seconds, bool)
            or not isinstance(self.warmup_seconds, int)
            or self.warmup_seconds < 0
        ):
            raise ValueError(f"warmup_seconds must be an integer >= 0, got {self.warmup_seconds!r}")
        if self.on_timeout not in ("WAIT", "PROMOTE", "ROLLBACK"):
            raise ValueError(
                f"on_timeout must be 'WAIT', 'PROMOTE' or 'ROLLBACK', got {self.on_timeout!r}"
            )


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


DEFAULT_CONFIG: Final = JudgeConfig()


@dataclass(frozen=True)
class Verdict:
    """The judge's decision, why, after how many periods of the step, and the numbers behind
    it. ``verified``: False for a promotion the evidence did not reach (``on_timeout``);
    ``timed_out``: the step ran ``max_periods`` without a decision on evidence."""

    decision: Decision
    reason: str  # one sentence a human reads in `release status`
    periods: int  # periods of the step judged
    evidence: dict[str, float]
    verified: bool = True
    timed_out: bool = False


@dataclass(frozen=True)
class _Design:
    """What a config implies, computed once per config."""

    ratio: dict[Metric, float]
    log_ratio: dict[Metric, float]
    rollback_bound: float  # on the log of the mixture likelihood ratio
    promote_bound: float  # on the log-likelihood ratio of the regression against 1
    zero_requests: dict[Metric, float]
    outage_factor: float
    dispersion: float


@lru_cache(maxsize=256)
def _design_of(config: JudgeConfig) -> _Design:
    ratio: dict[Metric, float] = {"errors": config.error_ratio, "slow": config.slow_ratio}
    return _Design(
        ratio=ratio,
        log_ratio={metric: math.log(value) for metric, value in ratio.items()},
        rollback_bound=math.log(2.0 / config.false_rollback_rate),  # alpha/2 per metric
        promote_bound=math.log(config.false_promote_rate),
        zero_requests={metric: zero_event_requests(config, ratio[metric]) for metric in METRICS},
        outage_factor=config.outage_factor,
        dispersion=config.dispersion,
    )


def zero_event_requests(config: JudgeConfig, ratio: float) -> float:
    """Canary requests without any event after which the zero-event path passes a test:
    log(1/beta) / (ratio * RATE_FLOOR)."""
    return math.log(1.0 / config.false_promote_rate) / (ratio * RATE_FLOOR)


@dataclass
class _Test:
    """One metric's running statistics over the release."""

    thetas: list[float] = field(default_factory=lambda: [0.0] * len(THETAS))  # LLR per THETAS
    promote: float = 0.0  # LLR of the regression against 1
    canary_requests: int = 0
    canary_events: int = 0
    live_requests: int = 0
    live_events: int = 0
    # The pooled rate of the periods judged so far, from the prior, for the outage guard.
    pooled_requests: float = OUTAGE_PRIOR_REQUESTS
    pooled_events: float = OUTAGE_PRIOR_REQUESTS * OUTAGE_PRIOR_RATE
    # Squared Pearson residuals and the periods they came from, from the prior.
    residuals: float = DISPERSION_PRIOR
    residual_periods: float = DISPERSION_PRIOR
    outages: int = 0
    # The periods of the last OUTAGE_WINDOW_SECONDS, oldest first. What they teach the outage
    # guard and the dispersion is learnt when they leave the window, unless an outage was found
    # while they were in it.
    recent: list[dict[str, float]] = field(default_factory=list)

    def dispersion(self, floor: float) -> float:
        return max(floor, self.residuals / self.residual_periods)

    def add(
        self, counts: tuple[int, int, int, int], seconds: int, design: _Design, metric: Metric
    ) -> None:
        """One period of this metric, ``seconds`` long: its counts, and its evidence unless it
        is an outage or follows one within the window (the last ``OUTAGE_WINDOW_SECONDS``,
        this period included)."""
        n_c, c, n_l, l_ = counts
        m = c + l_
        period: dict[str, float] = {
            "seconds": seconds,
            "live_requests": n_l,
            "live_events": l_,
            "requests": n_c + n_l,
            "events": m,
            "residual": self._residual(n_l, l_),
            "outage": 0.0,
            "tainted": 0.0,
        }
        self._enter(period)
        after_outage = any(entry["outage"] for entry in self.recent)
        window_requests = int(sum(entry["live_requests"] for entry in self.recent))
        window_events = int(sum(entry["live_events"] for entry in self.recent))
        factor = design.outage_factor
        if (
            n_c
            and n_l
            and (
                self._outage(n_l, l_, factor)
                # The minute shows it; this period's own rate must be up too, or the quiet
                # periods after an outage would extend it.
                or (
                    self._outage(window_requests, window_events, factor)
                    and l_ > factor * self._expected(n_l)
                )
            )
        ):
            period["outage"] = 1.0
            # The periods just before it may have held its first, still insignificant, events.
            for entry in self.recent:
                entry["tainted"] = 1.0
        if period["outage"] or after_outage:
            # Left out on live's counts in this period and the minute before, which the test
            # of this period's canary share does not depend on.
            period["tainted"] = 1.0
            self.outages += 1
            return
        if n_c and n_l and m:
            total = n_c + n_l
            # A period of few events (a burst) never does more than half of a rollback's
            # work; one of many events may do it all.
            cap = design.rollback_bound / 2.0 * max(1.0, m / CAP_EVENTS)
            for index, theta in enumerate(THETAS):
                step = c * math.log(theta) + m * math.log(total / (theta * n_c + n_l))
                self.thetas[index] += min(step, cap)
            ratio = design.ratio[metric]
            self.promote += c * design.log_ratio[metric] + m * math.log(total / (ratio * n_c + n_l))
        self.canary_requests += n_c
        self.canary_events += c
        self.live_requests += n_l
        self.live_events += l_

    def _enter(self, period: dict[str, float]) -> None:
        """Put ``period`` in the window; learn from the periods it pushes out: the release's
        pooled rate (periods with both versions and an event) and live's dispersion, unless
        they were in an outage's window."""
        self.recent.append(period)
        while sum(entry["seconds"] for entry in self.recent) > OUTAGE_WINDOW_SECONDS:
            old = self.recent.pop(0)
            if old["tainted"]:
                continue
            if old["residual"] >= 0.0:
                self.residuals += old["residual"]
                self.residual_periods += 1.0
            if old["events"] and old["requests"] > old["live_requests"] > 0:
                self.pooled_requests += old["requests"]
                self.pooled_events += old["events"]

    def _expected(self, requests: int) -> float:
        """Events expected in ``requests`` at the release's pooled rate so far."""
        return requests * self.pooled_events / self.pooled_requests

    def _outage(self, n_l: int, l_: int, factor: float) -> bool:
        """Whether live's rate in a period is far above the release's so far: more events than
        ``factor`` times the expected count, beyond a Poisson upper tail of about 1e-4 (normal
        approximation with continuity correction). Live, not the pool: a broken canary is a
        regression, a failing dependency shows on live too."""
        if l_ < OUTAGE_MIN_EVENTS:
            return False
        expected = factor * self._expected(n_l)
        return l_ - 0.5 > expected + 3.7 * math.sqrt(expected)

    def _residual(self, n_l: int, l_: int) -> float:
        """The squared Pearson residual of live's count against live's rate before this
        period; -1 when there is none (no live requests, or no live event yet). Live's counts
        show how clustered the events are (both versions run on the same kind of execution
        environments) and, unlike the canary's, they do not move with the canary's regression,
        so a real regression never passes for noise."""
        if not n_l or not self.live_events:
            return -1.0
        expected = n_l * self.live_events / self.live_requests
        # The rate is itself estimated from the periods before: without the second term a
        # steady Poisson stream would average 1 + n_l/live_requests, not 1.
        variance = expected * (1.0 + n_l / self.live_requests)
        return (l_ - expected) ** 2 / variance

    def mixture(self, dispersion: float) -> float:
        """The log of the mixture likelihood ratio, each LLR divided by the dispersion."""
        scaled = [llr / dispersion for llr in self.thetas]
        top = max(scaled)
        return top + math.log(sum(math.exp(value - top) for value in scaled) / len(scaled))

    def zero_path(self, design: _Design, metric: Metric) -> bool:
        return self.canary_events == 0 and self.canary_requests >= design.zero_requests[metric]

    def rate(self, side: Literal["canary", "live"]) -> float:
        if side == "canary":
            return _rate(self.canary_events, self.canary_requests)
        return _rate(self.live_events, self.live_requests)


_Outcome = Literal["PROMOTE", "CONTINUE", "ROLLBACK", "TIMEOUT"]


@dataclass
class JudgeState:
    """The judge of one release, fed one period at a time: ``start_step()`` whenever the
    canary's share changes (the first step starts by itself), then ``add`` per period.

    PROMOTE means the step passed: the caller advances the share (and calls ``start_step``), or
    promotes after the last step. ROLLBACK is final for the release; PROMOTE for the step.
    """

    config: JudgeConfig
    _design: _Design = field(init=False, repr=False)
    _tests: dict[Metric, _Test] = field(init=False, repr=False)
    _steps: int = field(default=0, init=False)
    _periods: int = field(default=0, init=False)
    _step_periods: int = field(default=0, init=False)
    _step_seconds: int = field(default=0, init=False)
    _step_canary_requests: int = field(default=0, init=False)
    _final: Verdict | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._design = _design_of(self.config)
        self._tests = {metric: _Test() for metric in METRICS}

    @property
    def steps(self) -> int:
        """The steps started (the current one's number)."""
        return self._steps

    def start_step(self) -> None:
        """The canary's share changed: a new step needs its own canary requests to pass, and
        the canary's new execution environments warm up. After a ROLLBACK nothing starts."""
        if self._final is not None and self._final.decision == "ROLLBACK":
            return
        self._steps += 1
        self._step_periods = 0
        self._step_seconds = 0
        self._step_canary_requests = 0
        self._final = None

    def add(self, period: Period, seconds: int | None = None) -> Verdict:
        """Judge one more period, ``seconds`` long (default: the config's ``period_seconds``;
        the function's own metrics come in 10-second periods, Lambda's in minutes); returns
        the verdict on the release so far."""
        if self._steps == 0:
            self.start_step()
        if self._final is not None:
            return self._final
        self._take(period, self.config.period_seconds if seconds is None else seconds)
        verdict = self._verdict(self._outcome())
        if verdict.decision != "CONTINUE":
            self._final = verdict
        return verdict

    @property
    def verdict(self) -> Verdict:
        """The verdict on the periods added so far (CONTINUE before the first)."""
        if self._final is not None:
            return self._final
        return self._verdict(self._outcome())

    def _take(self, period: Period, seconds: int) -> None:
        warm = self._step_seconds >= self.config.warmup_seconds
        self._periods += 1
        self._step_periods += 1
        self._step_seconds += seconds
        self._step_canary_requests += period.canary_requests
        self._tests["errors"].add(period.counts("errors"), seconds, self._design, "errors")
        if warm:
            self._tests["slow"].add(period.counts("slow"), seconds, self._design, "slow")

    # --- the decision ----------------------------------------------------------------------

    def _dispersion(self, metric: Metric) -> float:
        return self._tests[metric].dispersion(self._design.dispersion)

    def _mixture(self, metric: Metric) -> float:
        return self._tests[metric].mixture(self._dispersion(metric))

    def _promote_llr(self, metric: Metric) -> float:
        return self._tests[metric].promote / self._dispersion(metric)

    def _passed(self, metric: Metric) -> bool:
        return self._promote_llr(metric) <= self._design.promote_bound or self._tests[
            metric
        ].zero_path(self._design, metric)

    def _outcome(self) -> _Outcome:
        d = self._design
        if any(self._mixture(metric) >= d.rollback_bound for metric in METRICS):
            return "ROLLBACK"
        if self._step_canary_requests >= self.config.min_canary_requests and all(
            self._passed(metric) for metric in METRICS
        ):
            return "PROMOTE"
        if self._step_seconds >= self.config.max_periods * self.config.period_seconds:
            return "TIMEOUT"
        return "CONTINUE"

    # --- the verdict -----------------------------------------------------------------------

    def _evidence(self) -> dict[str, float]:
        d = self._design
        evidence = {
            "rollback_bound": d.rollback_bound,
            "promote_bound": d.promote_bound,
            "step": float(self._steps),
            "step_periods": float(self._step_periods),
            "step_seconds": float(self._step_seconds),
            "step_canary_requests": float(self._step_canary_requests),
        }
        for metric in METRICS:
            test = self._tests[metric]
            evidence |= {
                f"llr_{metric}": self._promote_llr(metric),
                f"mixture_{metric}": self._mixture(metric),
                f"dispersion_{metric}": self._dispersion(metric),
                f"outages_{metric}": float(test.outages),
                f"live_{_singular(metric)}_rate": test.rate("live"),
                f"canary_{_singular(metric)}_rate": test.rate("canary"),
                f"canary_{metric}": float(test.canary_events),
                f"live_{metric}": float(test.live_events),
                f"{metric}_zero_event_requests": d.zero_requests[metric],
            }
        errors = self._tests["errors"]
        evidence["canary_requests"] = float(errors.canary_requests)
        evidence["live_requests"] = float(errors.live_requests)
        return evidence

    def _verdict(self, outcome: _Outcome) -> Verdict:
        if outcome == "TIMEOUT":
            return self._timeout_verdict()
        reason = {
            "ROLLBACK": self._rollback_reason,
            "PROMOTE": self._promote_reason,
            "CONTINUE": self._continue_reason,
        }[outcome]()
        return Verdict(outcome, reason, self._step_periods, self._evidence())

    def _text(self, metric: Metric) -> str:
        test = self._tests[metric]
        what = "errors" if metric == "errors" else "slow requests"
        return f"{what} {_percent(test.rate('canary'))} vs live {_percent(test.rate('live'))}"

    def _rollback_reason(self) -> str:
        d = self._design
        worse = [
            f"{self._text(metric)} (mixture LR e^{self._mixture(metric):.2f})"
            for metric in METRICS
            if self._mixture(metric) >= d.rollback_bound
        ]
        canary = self._tests["errors"].canary_requests
        return (
            f"Roll back: the canary is worse than live beyond chance after {canary:,} canary "
            f"requests: {' and '.join(worse)} reached the rollback bound e^{d.rollback_bound:.2f}."
        )

    def _promote_reason(self) -> str:
        parts = []
        for metric in METRICS:
            test = self._tests[metric]
            if test.zero_path(self._design, metric) and not (
                self._promote_llr(metric) <= self._design.promote_bound
            ):
                what = "canary error" if metric == "errors" else "slow canary request"
                parts.append(f"no {what} in {test.canary_requests:,} requests")
            else:
                parts.append(self._text(metric))
        return (
            f"Promote step {self._steps}: after {self._tests['errors'].canary_requests:,} canary "
            f"requests a {self._regressions()} regression is ruled out ({'; '.join(parts)})."
        )

    def _regressions(self) -> str:
        errors, slow = self.config.error_ratio, self.config.slow_ratio
        return f"{errors:g}x" if errors == slow else f"{errors:g}x error or {slow:g}x slow"

    def _continue_reason(self) -> str:
        d = self._design
        when = f"step {self._steps}, period {self._step_periods} of {self.config.max_periods}"
        canary = self._tests["errors"].canary_requests
        if canary == 0:
            return f"Waiting: the canary has served no requests yet ({when})."
        if all(self._passed(metric) for metric in METRICS):
            return (
                f"Waiting: both tests pass but this step has served only "
                f"{self._step_canary_requests:,} of the {self.config.min_canary_requests:,} "
                f"canary requests required ({when})."
            )
        return (
            f"Waiting for evidence after {canary:,} canary requests: "
            + ", ".join(
                f"{self._text(metric)} (LLR {self._promote_llr(metric):.2f})" for metric in METRICS
            )
            + f"; a step passes when both reach {d.promote_bound:.2f} ({when})."
        )

    def _timeout_verdict(self) -> Verdict:
        config = self.config
        enough = self._step_canary_requests >= config.min_canary_requests
        decision: Decision
        if config.on_timeout == "ROLLBACK":
            decision, action = "ROLLBACK", "rolling back as configured (on_timeout)"
        elif config.on_timeout == "PROMOTE" and enough:
            decision, action = "PROMOTE", "promoting UNVERIFIED as configured (on_timeout)"
        else:
            decision, action = "CONTINUE", "undecided: neither a pass nor a failure"
        needed = self._requests_needed()
        power = (
            f"; a decision needs about {needed:,.0f} canary requests at this traffic"
            if needed is not None
            else ""
        )
        reason = (
            f"No decision after {self._step_periods} periods of step {self._steps}, "
            f"{action}: {self._tests['errors'].canary_requests:,} canary requests, "
            f"{self._text('errors')}, {self._text('slow')}{power}."
        )
        return Verdict(
            decision,
            reason,
            self._step_periods,
            self._evidence(),
            verified=decision != "PROMOTE",
            timed_out=True,
        )

    def _requests_needed(self) -> float | None:
        """The canary requests a step needs to pass a canary as good as live, at the rates and
        share seen (see :func:`plan_step`); None before there are rates."""
        errors, slow = self._tests["errors"], self._tests["slow"]
        requests = errors.canary_requests + errors.live_requests
        if not errors.canary_requests or not requests:
            return None
        share = errors.canary_requests / requests
        if not 0.0 < share < 1.0:
            return None
        # Rounded, so a step waiting period after period plans once, not every period.
        return _planned_requests(
            self.config, round(errors.rate("live"), 5), round(slow.rate("live"), 5), round(share, 3)
        )

    # --- resuming --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON data: ``from_dict`` carries a release across processes (an
        interrupted ``watch`` resumes with its evidence)."""
        return {
            "steps": self._steps,
            "periods": self._periods,
            "step_periods": self._step_periods,
            "step_seconds": self._step_seconds,
            "step_canary_requests": self._step_canary_requests,
            "tests": {
                metric: {f.name: getattr(test, f.name) for f in fields(test)}
                for metric, test in self._tests.items()
            },
        }

    @classmethod
    def from_dict(cls, config: JudgeConfig, data: dict[str, Any]) -> JudgeState:
        """A state saved by ``to_dict``, judged by ``config``; ValueError when it is not one."""
        state = cls(config)
        try:
            state._steps = int(data["steps"])
            state._periods = int(data["periods"])
            state._step_periods = int(data["step_periods"])
            state._step_seconds = int(data["step_seconds"])
            state._step_canary_requests = int(data["step_canary_requests"])
            for metric in METRICS:
                saved = dict(data["tests"][metric])
                if len(saved["thetas"]) != len(THETAS):
                    raise ValueError("saved for another mixture")
                state._tests[metric] = _Test(**saved)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a saved judge state: {error}") from error
        final = state._outcome()
        if final in ("PROMOTE", "ROLLBACK"):
            state._final = state._verdict(final)
        return state


@lru_cache(maxsize=64)
def _planned_requests(
    config: JudgeConfig, error_rate: float, slow_rate: float, share: float
) -> float:
    return plan_step(config, error_rate, slow_rate, share, 1.0).canary_requests


def _singular(metric: Metric) -> str:
    return "error" if metric == "errors" else "slow"


def _rate(events: int, requests: int) -> float:
    """Events per request; 0.0 without requests."""
    return events / requests if requests else 0.0


def _percent(rate: float) -> str:
    return f"{rate * 100:.3g}%"


def judge(periods: Sequence[Period], config: JudgeConfig = DEFAULT_CONFIG) -> Verdict:
    """Judge one step from its periods, oldest first: the first PROMOTE or ROLLBACK is final
    (the periods after it are ignored)."""
    state = JudgeState(config)
    verdict = state.verdict
    for period in periods:
        verdict = state.add(period)
        if verdict.decision != "CONTINUE":
            break
    return verdict


# --- planning: the evidence a step needs -----------------------------------------------------


@dataclass(frozen=True)
class StepPlan:
    """What a step needs at the traffic seen: canary requests and periods for a canary as good
    as live to pass (on average, Wald's approximation), and for one worse by the regression to
    be rolled back."""

    canary_requests: float
    periods: float
    rollback_canary_requests: float

    def minutes(self, period_seconds: int) -> float:
        return self.periods * period_seconds / 60.0


def plan_step(
    config: JudgeConfig,
    live_error_rate: float,
    live_slow_rate: float,
    canary_share: float,
    canary_requests_per_period: float,
) -> StepPlan:
    """How long a step needs (see :class:`StepPlan`): the slower of the two metrics, and no
    less than ``min_canary_requests``. A metric whose live rate is 0 passes on the zero-event
    path. ``math.inf`` when there is no canary traffic."""
    _check_open_unit("canary_share", canary_share)
    design = _design_of(config)
    good, bad = [float(config.min_canary_requests)], [0.0]
    rates: tuple[tuple[Metric, float], ...] = (
        ("errors", live_error_rate),
        ("slow", live_slow_rate),
    )
    for metric, rate in rates:
        ratio = design.ratio[metric]
        if rate <= 0.0:
            good.append(design.zero_requests[metric])
            continue
        good.append(_sample_size(config, min(rate, 0.5), canary_share, 1.0, ratio))
        bad.append(_sample_size(config, min(rate, 0.5), canary_share, ratio, ratio))
    requests = max(good)
    periods = requests / canary_requests_per_period if canary_requests_per_period > 0 else math.inf
    return StepPlan(requests, periods, max(bad))


@dataclass(frozen=True)
class FirstStep:
    """The first step :func:`choose_first_step` chose."""

    percent: float
    minutes: float
    """Minutes a canary as good as live is expected to need to pass it; inf without traffic."""


def choose_first_step(
    config: JudgeConfig,
    live_error_rate: float,
    live_slow_rate: float,
    requests_per_minute: float,
    shares: Sequence[float],
) -> FirstStep:
    """The first step, of ``shares`` (percents): the smallest at which a canary as good as live
    is expected to pass it within the bake (``max_periods`` periods) at live's traffic, by
    :func:`plan_step`; the largest when none is, or without traffic. A small first step reaches
    fewer users with a bad canary; where traffic is low, it leaves good releases undecided for
    hours, and a larger one decides in about half the time."""
    bake_minutes = config.max_periods * config.period_seconds / 60.0
    steps = [
        FirstStep(
            percent,
            plan_step(
                config,
                live_error_rate,
                live_slow_rate,
                percent / 100.0,
                requests_per_minute * percent / 100.0,
            ).minutes(60),
        )
        for percent in sorted(shares)
    ]
    return next((step for step in steps if step.minutes <= bake_minutes), steps[-1])


def minutes_needed(
    config: JudgeConfig, evidence: dict[str, float], per_minute: float | None = None
) -> float:
    """Minutes more a verdict's ``evidence`` needs for a decision on a canary as good as
    live, at the rates seen and ``per_minute`` canary requests (default: the current step's
    average), by :func:`plan_step`; inf without canary traffic."""
    if per_minute is None:
        minutes = evidence["step_seconds"] / 60.0
        per_minute = evidence["step_canary_requests"] / minutes if minutes else 0.0
    requests = evidence["canary_requests"] + evidence["live_requests"]
    share = evidence["canary_requests"] / requests if requests else 0.0
    if per_minute <= 0 or not 0.0 < share < 1.0:
        return math.inf
    plan = plan_step(
        config, evidence["live_error_rate"], evidence["live_slow_rate"], share, per_minute
    )
    return max(0.0, plan.canary_requests - evidence["canary_requests"]) / per_minute


def _sample_size(
    config: JudgeConfig, rate: float, share: float, true_ratio: float, ratio: float
) -> float:
    errors = _expected_events(config, share, true_ratio, ratio)
    return errors * share / (rate * (true_ratio * share + 1.0 - share))


# --- Wald's expected sample size ------------------------------------------------------------


def expected_errors(config: JudgeConfig, canary_share: float, true_ratio: float) -> float:
    """Wald's approximate expected number of errors *observed* (live and canary together)
    before the error test decides, when the canary's error rate is ``true_ratio`` times live's
    and the canary serves ``canary_share`` of the requests.

    The decision is approximated by one SPRT of 1 against ``error_ratio``: the promote bound
    B = log(beta), and the rollback bound ``A = log(2/alpha) + log(len(THETAS))``, the level the
    component of the mixture at the regression must reach for the average to reach its bound.
    Each error is a step of the LLR: ``Z = log(q1/q0)`` if it hit the canary, which it does with
    probability ``q = theta·s/(theta·s + 1 - s)`` (s the share, theta the true ratio), else
    ``Z = log((1 - q1)/(1 - q0))``. Let h != 0 solve

        q·(q1/q0)^h + (1 - q)·((1 - q1)/(1 - q0))^h = 1;

    the probability of accepting H0 is ``L = (e^(hA) - 1)/(e^(hA) - e^(hB))`` and

        E[M] = (L·B + (1 - L)·A) / E[Z],     or  -A·B / E[Z^2]  when E[Z] = 0.

    It neglects the overshoot over the bounds, the slow-request test, the zero-event path,
    ``min_canary_requests`` and ``max_periods``: a plan, not a promise.
    """
    return _expected_events(config, canary_share, true_ratio, config.error_ratio)


def _expected_events(config: JudgeConfig, share: float, true_ratio: float, ratio: float) -> float:
    _check_open_unit("canary_share", share)
    if not _is_real(true_ratio) or not 0.0 < true_ratio < math.inf:
        raise ValueError(f"true_ratio must be a positive finite number, got {true_ratio!r}")
    design = _design_of(config)
    q0 = share
    q1 = ratio * share / (ratio * share + 1.0 - share)
    q = true_ratio * share / (true_ratio * share + 1.0 - share)
    up = math.log(q1 / q0)
    down = math.log((1.0 - q1) / (1.0 - q0))
    upper = design.rollback_bound + math.log(len(THETAS))
    lower = design.promote_bound
    mean = q * up + (1.0 - q) * down
    if abs(mean) < 1e-12:
        return -upper * lower / (q * up * up + (1.0 - q) * down * down)
    h = _wald_h(q, up, down, mean)
    if h > 0:
        accept = -math.expm1(-h * upper) / -math.expm1(h * (lower - upper))
    else:
        accept = (math.exp(h * (upper - lower)) - math.exp(-h * lower)) / math.expm1(
            h * (upper - lower)
        )
    return (accept * lower + (1.0 - accept) * upper) / mean


def expected_sample_size(
    config: JudgeConfig, live_error_rate: float, canary_share: float, true_ratio: float
) -> float:
    """Wald's approximate expected number of *canary requests* before the error test decides:
    ``expected_errors(config, canary_share, true_ratio) · s / (p·(theta·s + 1 - s))``, since per
    canary request the step sees theta·p canary errors and p·(1 - s)/s live errors on average (p
    the live error rate, s the canary share, theta the true ratio). Same caveats as
    ``expected_errors``."""
    _check_open_unit("live_error_rate", live_error_rate)
    return _sample_size(config, live_error_rate, canary_share, true_ratio, config.error_ratio)


def _check_open_unit(name: str, value: float) -> None:
    if not _is_real(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be above 0 and below 1, got {value!r}")


def _wald_h(q: float, up: float, down: float, mean: float) -> float:
    """The nonzero root of q·e^(h·up) + (1 - q)·e^(h·down) = 1 (bisection). The function is
    convex and 0 at h = 0 with slope ``mean``, so the root lies on the side opposite the sign
    of the mean."""
    sign = 1.0 if mean < 0 else -1.0

    def excess(h: float) -> float:
        return q * _exp(h * up) + (1.0 - q) * _exp(h * down) - 1.0

    low, high = 0.0, sign
    while excess(high) <= 0.0:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if excess(middle) <= 0.0:
            low = middle
        else:
            high = middle
        if abs(high - low) <= 1e-15 * abs(high):
            break
    return (low + high) / 2.0


def _exp(x: float) -> float:
    return math.exp(min(x, 700.0))
