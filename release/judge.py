"""The canary judge: PROMOTE, CONTINUE or ROLLBACK, as early as the metrics allow.

Every metric period (one CloudWatch minute) gives, for the live and the canary version, the
requests, the errors and the requests slower than a latency threshold. ``judge()`` reads the
periods of one bake and decides; ``JudgeState`` is the same judge fed one period at a time.
Standard library only, deterministic (no randomness, no clock), O(periods) per call.

Method
------
Two sequential probability ratio tests (Wald's SPRT) run side by side, one on errors and one on
slow requests; both work the same way, so only errors are described. In a period where the
canary served ``n_c`` requests and live ``n_l``, and ``m = c + l`` errors were seen (``c`` on
the canary, ``l`` on live), the canary's share of the errors is, given ``m``,

    c ~ Binomial(m, q(theta)),    q(theta) = theta·n_c / (theta·n_c + n_l),

where theta is the ratio of the canary's error rate to live's. This is exact when errors are
Poisson counts, and close for binomial counts at small rates (there it is a hypergeometric, with
the same mean under H0 and a smaller variance). Conditioning on ``m`` removes the unknown
baseline rate: the test needs no estimate of it, and the baseline and the traffic split may
change from one period to the next; only theta is assumed constant. H0 is theta = 1 (as good as
live), H1 is theta = theta1 = ``error_ratio``. The log-likelihood ratio (LLR) grows by

    c·log(q1/q0) + l·log((1 - q1)/(1 - q0))
        = c·log(theta1) + m·log((n_c + n_l)/(theta1·n_c + n_l))

per period and is summed over the periods. Periods in which the canary served no request add
nothing, nor do periods without live requests (there is nothing to compare with).

Wald's bounds, with alpha' = alpha/2 for each of the two tests (Bonferroni):

    rollback_bound A = log((1 - beta)/alpha'),    promote_bound B = log(beta/(1 - alpha')).

Decisions, in this order, after every period:

1. ROLLBACK as soon as either LLR is at or above A.
2. PROMOTE when both tests accept H0 *at the same period* and the canary has served at least
   ``min_canary_requests`` requests. A test accepts H0 while its LLR is at or below B, or by the
   zero-event path below. The tests keep running after one of them accepts H0: an accepted test
   can still drift back, or even roll back, until the other one agrees.
3. Otherwise, once ``max_periods`` periods have been judged, the bake time ran out:
   ``config.on_timeout``, except that a canary that served fewer than ``min_canary_requests``
   requests is rolled back even then (no traffic is not a pass). ``"PROMOTE"`` (the default)
   is what CodeDeploy, Flagger and Kayenta do when a bake shows no failure; ``"ROLLBACK"`` is
   for teams that would rather wait for the next release than ship one the data could not
   clear.
4. Otherwise CONTINUE.

The first PROMOTE or ROLLBACK is final: ``judge()`` ignores the periods after it, and the
verdict's ``periods`` says where it stopped (``max_periods`` for a timeout).

Zero-event path. With no errors anywhere, m = 0 and the ratio test cannot move. Zero errors on
both sides say nothing about a *ratio*, and no rate estimated from the data can change that: a
smoothed live rate such as Laplace's (l + 1)/(n_l + 2) shrinks as fast as the canary's evidence
grows, so at a 10% canary share it would never let a zero-error canary pass. So a test also
accepts H0 when the canary has had *no* event at all in at least
``log(1/beta)/(ratio·RATE_FLOOR)`` requests (2,303 with the defaults): a canary whose rate is at
least ``ratio·RATE_FLOOR`` shows no event in that many requests with probability at most
exp(-ratio·RATE_FLOOR·N_c) <= beta. Regressions that stay below that absolute rate (0.2% for a
2x ratio) are out of scope; a single canary event closes the path for good.

Guarantees
----------
Under the model above, exp(LLR) is a nonnegative martingale under H0 and exp(-LLR) one under
H1, so Ville's inequality bounds the chance that an LLR *ever* crosses a bound, however long the
test runs and whatever the traffic does. That is why judging after every period (continuous
monitoring) costs nothing, and why it is safe to keep a test running after it accepted H0, to
wait for ``min_canary_requests`` and to stop the bake at ``max_periods``.

* False rollback: when the canary is as good as live on both metrics (theta = 1),
  P(ROLLBACK on evidence) <= 2·alpha'/(1 - beta) = alpha/(1 - beta), which is alpha to Wald's
  approximation. Wald's bounds neglect the overshoot over the bound at the stopping period, so
  they are conservative: the real rate is below alpha.
* False promote: when one metric is worse by exactly its minimum regression (theta = ratio),
  P(PROMOTE) <= beta/(1 - alpha') + beta^(p/RATE_FLOOR), where p is live's rate of that metric.
  The SPRT term is beta to Wald's approximation (and below it, by the overshoot); the zero-event
  term is negligible once p is a few times RATE_FLOOR (and the regression is out of scope when
  p < RATE_FLOOR). A worse canary (theta > ratio) is promoted less often.
* The bake may end by timeout instead; such verdicts say so, with the canary requests a
  minimum regression of errors would have needed on average at the traffic seen (Wald's
  expected sample size), so a reader can tell a bake that could have caught it from one that
  could not. Promoting on timeout keeps the false-rollback bound (a rollback still needs the
  evidence) but weakens the false-promote one to the regressions the bake is long enough to
  detect: at 5 req/s with a 10% canary and 0.5% live errors, the 60-minute default rolled back
  all of 1,000 simulated 5x error regressions but only 263 of 1,000 2x ones. Rolling back on
  timeout keeps beta and gives up alpha instead: most good canaries with that little traffic
  are rolled back. Longer bakes (``max_periods``) or a larger canary share buy both.

Expected sample size
--------------------
``expected_errors`` and ``expected_sample_size`` give Wald's approximation of the error test's
average length, the reference bound for comparing judges: see ``expected_errors``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

Decision = Literal["PROMOTE", "CONTINUE", "ROLLBACK"]
_Outcome = Literal["PROMOTE", "CONTINUE", "ROLLBACK", "TIMEOUT"]

RATE_FLOOR: Final = 0.001
"""The lowest rate of errors (or of slow requests) whose regression the zero-event path guards
against: with no canary event at all, the canary passes once a rate of ``ratio * RATE_FLOOR``
would have shown an event with probability at least 1 - beta."""


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


@dataclass(frozen=True)
class JudgeConfig:
    """The design of the test: its error rates, the regression it detects, its limits."""

    false_rollback_rate: float = 0.01  # alpha: P(ROLLBACK) when the canary is as good as live
    false_promote_rate: float = 0.01  # beta: P(PROMOTE) when worse by the minimum regression
    error_ratio: float = 2.0  # minimum regression: canary error rate = 2x live's
    slow_ratio: float = 2.0  # minimum regression: canary share of slow requests = 2x live's
    min_canary_requests: int = 100  # never promote on fewer canary requests
    max_periods: int = 60  # hard maximum bake, in periods
    # At the end of the bake without a decision; never promotes under min_canary_requests.
    on_timeout: Literal["PROMOTE", "ROLLBACK"] = "PROMOTE"

    def __post_init__(self) -> None:
        for name in ("false_rollback_rate", "false_promote_rate"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 < value < 0.5:
                raise ValueError(
                    f"{name} must be a probability above 0 and below 0.5, got {value!r}"
                )
        for name in ("error_ratio", "slow_ratio"):
            value = getattr(self, name)
            if not _is_real(value) or not 1.0 < value < math.inf:
                raise ValueError(
                    f"{name} must be a finite ratio above 1 (the regression to detect), "
                    f"got {value!r}"
                )
        for name in ("min_canary_requests", "max_periods"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.on_timeout not in ("PROMOTE", "ROLLBACK"):
            raise ValueError(f"on_timeout must be 'PROMOTE' or 'ROLLBACK', got {self.on_timeout!r}")


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


DEFAULT_CONFIG: Final = JudgeConfig()


@dataclass(frozen=True)
class Verdict:
    """The judge's decision, why, after how many periods, and the numbers behind it."""

    decision: Decision
    reason: str  # one sentence a human reads in `release status`
    periods: int  # periods judged
    evidence: dict[str, float]


@dataclass(frozen=True)
class _Design:
    """What a config implies, computed once per config."""

    error_ratio: float
    slow_ratio: float
    log_error_ratio: float
    log_slow_ratio: float
    rollback_bound: float
    promote_bound: float
    errors_zero_requests: float
    slow_zero_requests: float
    min_canary_requests: int
    max_periods: int


@lru_cache(maxsize=256)
def _design_of(config: JudgeConfig) -> _Design:
    alpha = config.false_rollback_rate / 2.0  # per test: two tests can each roll back
    beta = config.false_promote_rate
    return _Design(
        error_ratio=config.error_ratio,
        slow_ratio=config.slow_ratio,
        log_error_ratio=math.log(config.error_ratio),
        log_slow_ratio=math.log(config.slow_ratio),
        rollback_bound=math.log((1.0 - beta) / alpha),
        promote_bound=math.log(beta / (1.0 - alpha)),
        errors_zero_requests=zero_event_requests(config, config.error_ratio),
        slow_zero_requests=zero_event_requests(config, config.slow_ratio),
        min_canary_requests=config.min_canary_requests,
        max_periods=config.max_periods,
    )


def zero_event_requests(config: JudgeConfig, ratio: float) -> float:
    """Canary requests without any event after which the zero-event path accepts H0:
    log(1/beta) / (ratio * RATE_FLOOR)."""
    return math.log(1.0 / config.false_promote_rate) / (ratio * RATE_FLOOR)


@dataclass
class JudgeState:
    """The judge fed one period at a time: ``add`` returns what ``judge()`` returns on all the
    periods added so far, in O(1) per period. After a PROMOTE or ROLLBACK (final) it keeps
    returning that verdict and ignores further periods."""

    config: JudgeConfig
    _design: _Design = field(init=False, repr=False)
    _periods: int = field(default=0, init=False)
    _live_requests: int = field(default=0, init=False)
    _live_errors: int = field(default=0, init=False)
    _live_slow: int = field(default=0, init=False)
    _canary_requests: int = field(default=0, init=False)
    _canary_errors: int = field(default=0, init=False)
    _canary_slow: int = field(default=0, init=False)
    _llr_errors: float = field(default=0.0, init=False)
    _llr_slow: float = field(default=0.0, init=False)
    _final: Verdict | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._design = _design_of(self.config)

    def add(self, period: Period) -> Verdict:
        """Judge one more period; returns the verdict on all periods so far."""
        if self._final is not None:
            return self._final
        verdict = self._verdict(self._step(period))
        if verdict.decision != "CONTINUE":
            self._final = verdict
        return verdict

    @property
    def verdict(self) -> Verdict:
        """The verdict on the periods added so far (CONTINUE before the first)."""
        if self._final is not None:
            return self._final
        return self._verdict(self._outcome())

    def _step(self, period: Period) -> _Outcome:
        """Take one period into the totals and the LLRs, then decide."""
        self._periods += 1
        n_c = period.canary_requests
        if n_c:
            n_l = period.live_requests
            c_e, l_e = period.canary_errors, period.live_errors
            c_s, l_s = period.canary_slow, period.live_slow
            self._canary_requests += n_c
            self._canary_errors += c_e
            self._canary_slow += c_s
            self._live_requests += n_l
            self._live_errors += l_e
            self._live_slow += l_s
            if n_l:
                d = self._design
                total = n_c + n_l
                if c_e or l_e:
                    log_k = math.log(total / (d.error_ratio * n_c + n_l))
                    self._llr_errors += c_e * d.log_error_ratio + (c_e + l_e) * log_k
                if c_s or l_s:
                    log_k = math.log(total / (d.slow_ratio * n_c + n_l))
                    self._llr_slow += c_s * d.log_slow_ratio + (c_s + l_s) * log_k
        return self._outcome()

    def _outcome(self) -> _Outcome:
        d = self._design
        if self._llr_errors >= d.rollback_bound or self._llr_slow >= d.rollback_bound:
            return "ROLLBACK"
        if (
            self._canary_requests >= d.min_canary_requests
            and self._errors_accepted()
            and self._slow_accepted()
        ):
            return "PROMOTE"
        if self._periods >= d.max_periods:
            return "TIMEOUT"
        return "CONTINUE"

    def _errors_accepted(self) -> bool:
        return self._llr_errors <= self._design.promote_bound or self._errors_zero_path()

    def _slow_accepted(self) -> bool:
        return self._llr_slow <= self._design.promote_bound or self._slow_zero_path()

    def _errors_zero_path(self) -> bool:
        return (
            self._canary_errors == 0 and self._canary_requests >= self._design.errors_zero_requests
        )

    def _slow_zero_path(self) -> bool:
        return self._canary_slow == 0 and self._canary_requests >= self._design.slow_zero_requests

    # --- the verdict -----------------------------------------------------------------------

    def _evidence(self) -> dict[str, float]:
        d = self._design
        return {
            "llr_errors": self._llr_errors,
            "llr_slow": self._llr_slow,
            "rollback_bound": d.rollback_bound,
            "promote_bound": d.promote_bound,
            "live_error_rate": _rate(self._live_errors, self._live_requests),
            "canary_error_rate": _rate(self._canary_errors, self._canary_requests),
            "live_slow_rate": _rate(self._live_slow, self._live_requests),
            "canary_slow_rate": _rate(self._canary_slow, self._canary_requests),
            "canary_requests": float(self._canary_requests),
            "live_requests": float(self._live_requests),
            "canary_errors": float(self._canary_errors),
            "live_errors": float(self._live_errors),
            "canary_slow": float(self._canary_slow),
            "live_slow": float(self._live_slow),
            "errors_zero_event_requests": d.errors_zero_requests,
            "slow_zero_event_requests": d.slow_zero_requests,
        }

    def _verdict(self, outcome: _Outcome) -> Verdict:
        decision: Decision
        if outcome == "TIMEOUT":
            decision = self._timeout_decision()
            reason = self._timeout_reason(decision)
        else:
            decision = outcome
            reason = {
                "ROLLBACK": self._rollback_reason,
                "PROMOTE": self._promote_reason,
                "CONTINUE": self._continue_reason,
            }[outcome]()
        return Verdict(decision, reason, self._periods, self._evidence())

    def _errors_text(self) -> str:
        canary = _rate(self._canary_errors, self._canary_requests)
        live = _rate(self._live_errors, self._live_requests)
        return f"errors {_percent(canary)} vs live {_percent(live)}"

    def _slow_text(self) -> str:
        canary = _rate(self._canary_slow, self._canary_requests)
        live = _rate(self._live_slow, self._live_requests)
        return f"slow requests {_percent(canary)} vs live {_percent(live)}"

    def _rollback_reason(self) -> str:
        d = self._design
        worse = []
        if self._llr_errors >= d.rollback_bound:
            worse.append(f"{self._errors_text()} (LLR {self._llr_errors:.2f})")
        if self._llr_slow >= d.rollback_bound:
            worse.append(f"{self._slow_text()} (LLR {self._llr_slow:.2f})")
        return (
            f"Roll back: the canary is worse than live beyond chance after "
            f"{self._canary_requests:,} canary requests: {' and '.join(worse)} reached the "
            f"rollback bound {d.rollback_bound:.2f}."
        )

    def _promote_reason(self) -> str:
        errors = self._errors_text()
        if self._errors_zero_path() and self._llr_errors > self._design.promote_bound:
            errors = f"no canary error in {self._canary_requests:,} requests"
        slow = self._slow_text()
        if self._slow_zero_path() and self._llr_slow > self._design.promote_bound:
            slow = f"no slow canary request in {self._canary_requests:,}"
        return (
            f"Promote: after {self._canary_requests:,} canary requests the canary is no worse "
            f"than live ({errors}; {slow})."
        )

    def _continue_reason(self) -> str:
        d = self._design
        when = f"period {self._periods} of {d.max_periods}"
        if self._canary_requests == 0:
            return f"Waiting: the canary has served no requests yet ({when})."
        if self._errors_accepted() and self._slow_accepted():
            return (
                f"Waiting: both tests pass but the canary has served only "
                f"{self._canary_requests:,} of the {d.min_canary_requests:,} requests required "
                f"({when})."
            )
        return (
            f"Waiting for evidence after {self._canary_requests:,} canary requests: "
            f"{self._errors_text()} (LLR {self._llr_errors:.2f}), {self._slow_text()} "
            f"(LLR {self._llr_slow:.2f}); roll back at {d.rollback_bound:.2f}, promote when "
            f"both reach {d.promote_bound:.2f} ({when})."
        )

    def _timeout_decision(self) -> Decision:
        if self._canary_requests < self._design.min_canary_requests:
            return "ROLLBACK"
        return self.config.on_timeout

    def _timeout_reason(self, decision: Decision) -> str:
        d = self._design
        if decision == "ROLLBACK" and self._canary_requests < d.min_canary_requests:
            why = (
                f"rolling back: the canary served only {self._canary_requests:,} of the "
                f"{d.min_canary_requests:,} requests required to promote"
            )
        else:
            action = "rolling back" if decision == "ROLLBACK" else "promoting"
            why = f"{action} as configured (on_timeout)"
        needed = self._requests_to_detect_errors()
        power = (
            f"; a {d.error_ratio:g}x error regression needs about {needed:,.0f} canary "
            f"requests at this traffic"
            if needed is not None
            else ""
        )
        return (
            f"The bake time ran out after {self._periods} periods without a decision, so "
            f"{why}: {self._canary_requests:,} canary requests, {self._errors_text()}, "
            f"{self._slow_text()}{power}."
        )

    def _requests_to_detect_errors(self) -> float | None:
        """Wald's expected canary requests to roll back a canary worse by exactly the minimum
        error regression, at the live error rate and canary share seen; None without them."""
        requests = self._canary_requests + self._live_requests
        live_rate = _rate(self._live_errors, self._live_requests)
        if not self._canary_requests or not 0.0 < live_rate < 1.0:
            return None
        share = self._canary_requests / requests
        return expected_sample_size(self.config, live_rate, share, self.config.error_ratio)


def _rate(events: int, requests: int) -> float:
    """Events per request; 0.0 without requests."""
    return events / requests if requests else 0.0


def _percent(rate: float) -> str:
    return f"{rate * 100:.3g}%"


def judge(periods: Sequence[Period], config: JudgeConfig = DEFAULT_CONFIG) -> Verdict:
    """Judge a bake from its periods, oldest first: see the module's docstring."""
    state = JudgeState(config)
    outcome = state._outcome()
    for period in periods:
        outcome = state._step(period)
        if outcome != "CONTINUE":
            break
    return state._verdict(outcome)


# --- Wald's expected sample size ------------------------------------------------------------


def expected_errors(config: JudgeConfig, canary_share: float, true_ratio: float) -> float:
    """Wald's approximate expected number of errors *observed* (live and canary together)
    before the error SPRT stops, when the canary's error rate is ``true_ratio`` times live's
    and the canary serves ``canary_share`` of the requests.

    Each error is a step of the LLR: ``Z = log(q1/q0)`` if it hit the canary, which it does
    with probability ``q = theta·s/(theta·s + 1 - s)`` (s the share, theta the true ratio), else
    ``Z = log((1 - q1)/(1 - q0))``. Let h != 0 solve

        q·(q1/q0)^h + (1 - q)·((1 - q1)/(1 - q0))^h = 1;

    the probability of accepting H0 is ``L = (e^(hA) - 1)/(e^(hA) - e^(hB))`` and

        E[M] = (L·B + (1 - L)·A) / E[Z],     or  -A·B / E[Z^2]  when E[Z] = 0,

    with A and B the rollback and promote bounds. It neglects the overshoot over the bounds
    (so real runs are a little longer), the slow-request test, the zero-event path,
    ``min_canary_requests`` and ``max_periods``.
    """
    _check_open_unit("canary_share", canary_share)
    if not _is_real(true_ratio) or not 0.0 < true_ratio < math.inf:
        raise ValueError(f"true_ratio must be a positive finite number, got {true_ratio!r}")
    design = _design_of(config)
    s = canary_share
    q0 = s
    q1 = config.error_ratio * s / (config.error_ratio * s + 1.0 - s)
    q = true_ratio * s / (true_ratio * s + 1.0 - s)
    up = math.log(q1 / q0)
    down = math.log((1.0 - q1) / (1.0 - q0))
    upper, lower = design.rollback_bound, design.promote_bound
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
    """Wald's approximate expected number of *canary requests* before the error SPRT stops: the
    "SPRT bound" reference for comparing judges.

    ``expected_errors(config, canary_share, true_ratio) · s / (p·(theta·s + 1 - s))``: per canary
    request the bake sees theta·p canary errors and p·(1 - s)/s live errors on average (p the live
    error rate, s the canary share, theta the true ratio). Divide by the canary requests per period
    for periods. Same caveats as ``expected_errors``.
    """
    _check_open_unit("live_error_rate", live_error_rate)
    errors = expected_errors(config, canary_share, true_ratio)
    s = canary_share
    return errors * s / (live_error_rate * (true_ratio * s + 1.0 - s))


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
