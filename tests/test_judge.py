"""The canary judge: crafted series, the incremental form, and Monte Carlo checks of the error
rates and of Wald's expected sample size (seeded, so every run draws the same numbers)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pytest

from release.judge import (
    RATE_FLOOR,
    JudgeConfig,
    JudgeState,
    Period,
    Verdict,
    expected_errors,
    expected_sample_size,
    judge,
)

CONFIG = JudgeConfig()
ALPHA_PER_TEST = CONFIG.false_rollback_rate / 2
ROLLBACK_BOUND = math.log((1 - CONFIG.false_promote_rate) / ALPHA_PER_TEST)
PROMOTE_BOUND = math.log(CONFIG.false_promote_rate / (1 - ALPHA_PER_TEST))
EVIDENCE_KEYS = {
    "llr_errors",
    "llr_slow",
    "rollback_bound",
    "promote_bound",
    "live_error_rate",
    "canary_error_rate",
    "live_slow_rate",
    "canary_slow_rate",
    "canary_requests",
    "live_requests",
}


def prefix_verdicts(periods: list[Period], config: JudgeConfig = CONFIG) -> list[Verdict]:
    """judge() on every non-empty prefix."""
    return [judge(periods[:k], config) for k in range(1, len(periods) + 1)]


def llr_step(canary: int, live: int, n_c: int, n_l: int, ratio: float) -> float:
    """One period's LLR increment, written out as in the brief: c·log(q1/q0) + l·log(...)."""
    q0 = n_c / (n_c + n_l)
    q1 = ratio * n_c / (ratio * n_c + n_l)
    return canary * math.log(q1 / q0) + live * math.log((1 - q1) / (1 - q0))


# --- crafted series -----------------------------------------------------------------------------


def test_equal_rates_promote_once_both_tests_accept() -> None:
    # 0.5% errors and 2% slow on both; the error test needs about 20 periods at this traffic.
    period = Period(1000, 5, 20, 200, 1, 4)
    verdicts = prefix_verdicts([period] * 40)
    decided = next(v for v in verdicts if v.decision != "CONTINUE")
    assert decided.decision == "PROMOTE"
    assert all(v.decision == "CONTINUE" for v in verdicts[: decided.periods - 1])
    assert decided.evidence["llr_errors"] <= PROMOTE_BOUND
    assert decided.evidence["llr_slow"] <= PROMOTE_BOUND
    # the first period at which the error LLR is at or below the promote bound
    step = llr_step(1, 5, 200, 1000, 2.0)
    assert decided.periods == math.ceil(PROMOTE_BOUND / step)
    assert decided.periods <= 25
    assert "no worse than live" in decided.reason


def test_equal_rates_do_not_promote_before_min_canary_requests() -> None:
    config = JudgeConfig(min_canary_requests=6000)
    period = Period(1000, 5, 20, 200, 1, 4)  # the tests accept at 20 periods, 4,000 requests
    verdicts = prefix_verdicts([period] * 40, config)
    assert [v.decision for v in verdicts[:29]] == ["CONTINUE"] * 29
    assert "only 5,800 of the 6,000 requests" in verdicts[28].reason
    assert verdicts[29].decision == "PROMOTE"
    assert verdicts[29].evidence["canary_requests"] == 6000


def test_five_times_worse_errors_roll_back_within_three_periods() -> None:
    # 10% canary share of 1,000 requests a minute; live at 1% errors, the canary at 5%.
    verdicts = prefix_verdicts([Period(900, 9, 18, 100, 5, 2)] * 10)
    decided = next(v for v in verdicts if v.decision != "CONTINUE")
    assert decided.decision == "ROLLBACK"
    assert decided.periods <= 3
    assert decided.evidence["llr_errors"] >= ROLLBACK_BOUND
    assert decided.evidence["llr_slow"] < ROLLBACK_BOUND
    assert "errors 5% vs live 1%" in decided.reason
    assert "slow" not in decided.reason


def test_a_broken_canary_rolls_back_in_one_period() -> None:
    verdict = judge([Period(900, 0, 0, 100, 100, 0)])
    assert (verdict.decision, verdict.periods) == ("ROLLBACK", 1)


def test_twice_the_slow_share_rolls_back_via_the_slow_test() -> None:
    # errors equal at 1%; 5% of live requests are slow, 10% of the canary's
    verdict = judge([Period(1000, 10, 50, 100, 1, 10)] * 20)
    assert verdict.decision == "ROLLBACK"
    assert verdict.evidence["llr_slow"] >= ROLLBACK_BOUND
    assert verdict.evidence["llr_errors"] < 0
    assert verdict.periods == math.ceil(ROLLBACK_BOUND / llr_step(10, 50, 100, 1000, 2.0))
    assert "slow requests 10% vs live 5%" in verdict.reason
    assert "errors" not in verdict.reason


@pytest.mark.parametrize("on_timeout", ["ROLLBACK", "PROMOTE"])
def test_no_canary_traffic_times_out_with_a_rollback_whatever_is_configured(
    on_timeout: Literal["PROMOTE", "ROLLBACK"],
) -> None:
    config = JudgeConfig(on_timeout=on_timeout)
    periods = [Period(1000, 5, 10, 0, 0, 0)] * (config.max_periods + 10)
    state = JudgeState(config)
    verdicts = [state.add(period) for period in periods]
    assert {v.decision for v in verdicts[: config.max_periods - 1]} == {"CONTINUE"}
    assert "no requests yet" in verdicts[0].reason
    timeout = verdicts[config.max_periods - 1]
    assert (timeout.decision, timeout.periods) == ("ROLLBACK", config.max_periods)
    assert "bake time ran out" in timeout.reason
    assert "served only 0 of the 100 requests required" in timeout.reason
    assert timeout.evidence["canary_requests"] == 0
    assert judge(periods, config) == timeout
    assert verdicts[-1] == timeout  # the decision is final


@pytest.mark.parametrize(
    "period",
    [
        Period(0, 0, 0, 1, 1, 0),  # nothing else at all
        Period(100, 0, 0, 10, 1, 0),  # live traffic without errors
    ],
)
def test_a_single_canary_error_is_not_enough(period: Period) -> None:
    verdict = judge([period])
    assert verdict.decision == "CONTINUE"
    assert verdict.evidence["canary_errors"] == 1
    assert 0 <= verdict.evidence["llr_errors"] < ROLLBACK_BOUND


def test_no_traffic_at_all_is_not_a_pass() -> None:
    verdicts = prefix_verdicts([Period(0, 0, 0, 0, 0, 0)] * 59)
    assert {v.decision for v in verdicts} == {"CONTINUE"}
    empty = judge([])
    assert (empty.decision, empty.periods) == ("CONTINUE", 0)


def test_zero_events_pass_once_a_floor_rate_regression_would_have_shown() -> None:
    needed = math.log(1 / CONFIG.false_promote_rate) / (CONFIG.error_ratio * RATE_FLOOR)
    assert 2302 < needed < 2303
    verdicts = prefix_verdicts([Period(2700, 0, 0, 300, 0, 0)] * 10)
    assert [v.decision for v in verdicts[:7]] == ["CONTINUE"] * 7  # 2,100 canary requests
    assert verdicts[7].decision == "PROMOTE"  # 2,400
    assert verdicts[7].evidence["llr_errors"] == 0.0
    assert "no canary error in 2,400 requests" in verdicts[7].reason
    assert verdicts[7].evidence["errors_zero_event_requests"] == pytest.approx(needed)


def test_one_canary_error_closes_the_zero_event_path() -> None:
    periods = [Period(2700, 0, 0, 300, 1, 0)] + [Period(2700, 0, 0, 300, 0, 0)] * 70
    verdict = judge(periods, JudgeConfig(on_timeout="ROLLBACK"))
    assert (verdict.decision, verdict.periods) == ("ROLLBACK", 60)
    assert "bake time ran out" in verdict.reason
    assert verdict.evidence["llr_errors"] > verdict.evidence["promote_bound"]


def test_a_baseline_spike_during_a_high_canary_share_is_not_a_regression() -> None:
    # Both versions fail 10% of requests in the first minute, while the canary has 90% of the
    # traffic, then 0.5% at a 10% share: pooled, the canary looks 8x worse; per period it is not.
    periods = [Period(100, 10, 0, 900, 90, 0), Period(1800, 9, 0, 200, 1, 0)]
    verdict = judge(periods)
    assert verdict.evidence["canary_error_rate"] > 8 * verdict.evidence["live_error_rate"]
    assert verdict.decision == "CONTINUE"
    assert verdict.evidence["llr_errors"] < 0


def test_evidence_is_complete_and_consistent() -> None:
    periods = [
        Period(900, 9, 30, 100, 3, 4),
        Period(1000, 0, 7, 0, 0, 0),  # no canary traffic: contributes nothing
        Period(800, 4, 16, 200, 2, 9),
    ]
    verdict = judge(periods)
    evidence = verdict.evidence
    assert evidence.keys() >= EVIDENCE_KEYS
    assert all(isinstance(value, float) for value in evidence.values())
    assert verdict.periods == 3
    assert evidence["live_requests"] == 1700
    assert evidence["canary_requests"] == 300
    assert evidence["live_error_rate"] == pytest.approx(13 / 1700)
    assert evidence["canary_error_rate"] == pytest.approx(5 / 300)
    assert evidence["live_slow_rate"] == pytest.approx(46 / 1700)
    assert evidence["canary_slow_rate"] == pytest.approx(13 / 300)
    assert evidence["rollback_bound"] == pytest.approx(math.log(0.99 / 0.005))
    assert evidence["promote_bound"] == pytest.approx(math.log(0.01 / 0.995))
    assert evidence["llr_errors"] == pytest.approx(
        llr_step(3, 9, 100, 900, 2.0) + llr_step(2, 4, 200, 800, 2.0)
    )
    assert evidence["llr_slow"] == pytest.approx(
        llr_step(4, 30, 100, 900, 2.0) + llr_step(9, 16, 200, 800, 2.0)
    )


def test_ratios_are_configurable_per_metric() -> None:
    config = JudgeConfig(error_ratio=3.0, slow_ratio=1.5)
    verdict = judge([Period(900, 9, 30, 100, 3, 4)], config)
    assert verdict.evidence["llr_errors"] == pytest.approx(llr_step(3, 9, 100, 900, 3.0))
    assert verdict.evidence["llr_slow"] == pytest.approx(llr_step(4, 30, 100, 900, 1.5))


def test_judge_stops_at_the_first_decision() -> None:
    bad, good = Period(900, 0, 0, 100, 100, 0), Period(900, 5, 5, 100, 0, 0)
    verdict = judge([bad] + [good] * 100)
    assert (verdict.decision, verdict.periods) == ("ROLLBACK", 1)
    assert verdict.evidence["canary_requests"] == 100


# --- the incremental form -----------------------------------------------------------------------


def random_series(rng: random.Random, length: int) -> list[Period]:
    """Traffic, shares, rates and regressions that vary by series and by period."""
    ratio = rng.choice([1.0, 1.0, 4.0])
    traffic = rng.choice([30, 500, 3000])
    rate = rng.choice([0.0, 0.002, 0.02])
    periods = []
    for _ in range(length):
        requests = rng.randint(0, traffic)
        canary = 0 if rng.random() < 0.1 else round(requests * rng.uniform(0.05, 0.5))
        live = requests - canary
        periods.append(
            Period(
                live,
                binomial(rng, live, rate),
                binomial(rng, live, 0.05),
                canary,
                binomial(rng, canary, rate * ratio),
                binomial(rng, canary, 0.05 * ratio),
            )
        )
    return periods


def test_judge_state_matches_judge_on_every_prefix() -> None:
    rng = random.Random(20240601)  # noqa: S311 - simulation, not cryptography
    outcomes = set()
    for _ in range(12):
        periods = random_series(rng, 75)
        state = JudgeState(CONFIG)
        assert state.verdict == judge([])
        for k, period in enumerate(periods, start=1):
            added = state.add(period)
            assert added == judge(periods[:k])
            assert state.verdict == added
        outcomes.add("timeout" if "ran out" in added.reason else added.decision)
    assert outcomes == {"PROMOTE", "ROLLBACK", "timeout"}  # every path was compared


# --- Monte Carlo --------------------------------------------------------------------------------


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw in O(n·p) steps: skip geometric gaps between successes."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    log_miss = math.log1p(-p)
    successes, position = 0, 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_miss) + 1
        if position > n:
            return successes
        successes += 1


def test_binomial_sampler_has_the_right_mean_and_variance() -> None:
    rng = random.Random(7)  # noqa: S311 - simulation, not cryptography
    draws = [binomial(rng, 400, 0.05) for _ in range(20000)]
    mean = sum(draws) / len(draws)
    variance = sum((d - mean) ** 2 for d in draws) / len(draws)
    assert mean == pytest.approx(20.0, rel=0.01)
    assert variance == pytest.approx(400 * 0.05 * 0.95, rel=0.05)


@dataclass(frozen=True)
class Bake:
    """A simulated release: fixed traffic per period, live rates and the canary's ratios."""

    live_requests: int
    canary_requests: int
    error_rate: float
    slow_rate: float
    error_ratio: float
    slow_ratio: float

    def run(self, rng: random.Random, config: JudgeConfig = CONFIG) -> Verdict:
        state = JudgeState(config)
        while True:
            verdict = state.add(
                Period(
                    self.live_requests,
                    binomial(rng, self.live_requests, self.error_rate),
                    binomial(rng, self.live_requests, self.slow_rate),
                    self.canary_requests,
                    binomial(rng, self.canary_requests, self.error_rate * self.error_ratio),
                    binomial(rng, self.canary_requests, self.slow_rate * self.slow_ratio),
                )
            )
            if verdict.decision != "CONTINUE":
                return verdict


RELEASES = 2000


def tolerance(rate: float, n: int) -> float:
    """Three binomial standard deviations."""
    return 3 * math.sqrt(rate * (1 - rate) / n)


def tally(verdicts: list[Verdict]) -> dict[str, float]:
    """Shares of the releases by how they ended; timeouts apart from decisions on evidence."""

    def share(ended: Callable[[Verdict], bool]) -> float:
        return sum(1 for verdict in verdicts if ended(verdict)) / len(verdicts)

    def timed_out(v: Verdict) -> bool:
        return "ran out" in v.reason

    return {
        "promote": share(lambda v: v.decision == "PROMOTE" and not timed_out(v)),
        "rollback": share(lambda v: v.decision == "ROLLBACK" and not timed_out(v)),
        "rollback_errors": share(
            lambda v: v.evidence["llr_errors"] >= v.evidence["rollback_bound"]
        ),
        "rollback_slow": share(lambda v: v.evidence["llr_slow"] >= v.evidence["rollback_bound"]),
        "timeout": share(timed_out),
        "mean_periods": sum(v.periods for v in verdicts) / len(verdicts),
    }


# A 20% canary share of 1,000 requests a minute, live at 1% errors and 2% slow: long enough
# for both tests to decide well within max_periods, so timeouts stay rare.
TRAFFIC = (800, 200, 0.01, 0.02)


def test_false_rollback_rate_is_at_most_alpha() -> None:
    rng = random.Random(1)  # noqa: S311 - simulation, not cryptography
    result = tally([Bake(*TRAFFIC, 1.0, 1.0).run(rng) for _ in range(RELEASES)])
    print(f"equal rates: {result}")
    alpha = CONFIG.false_rollback_rate
    assert result["rollback"] <= alpha + tolerance(alpha, RELEASES)
    for test in ("rollback_errors", "rollback_slow"):  # alpha/2 each
        assert result[test] <= alpha / 2 + tolerance(alpha / 2, RELEASES)
    assert result["timeout"] <= 0.005
    assert result["promote"] >= 1 - alpha - tolerance(alpha, RELEASES) - 0.005


def test_false_promote_rate_is_at_most_beta() -> None:
    # The canary fails exactly twice as often as live (the minimum regression); slow is equal.
    rng = random.Random(2)  # noqa: S311 - simulation, not cryptography
    result = tally([Bake(*TRAFFIC, 2.0, 1.0).run(rng) for _ in range(RELEASES)])
    print(f"2x errors: {result}")
    beta = CONFIG.false_promote_rate
    assert result["promote"] <= beta + tolerance(beta, RELEASES)
    assert result["timeout"] <= 0.005
    assert result["rollback_errors"] >= 1 - beta - tolerance(beta, RELEASES) - 0.005


def test_expected_sample_size_matches_a_monte_carlo_average() -> None:
    # 10% canary share of 200 requests a minute, live at 1% errors, the canary 5x worse; no slow
    # requests, so the error test alone decides.
    live_requests, canary_requests, rate, ratio = 180, 20, 0.01, 5.0
    rng = random.Random(3)  # noqa: S311 - simulation, not cryptography
    bake = Bake(live_requests, canary_requests, rate, 0.0, ratio, 1.0)
    verdicts = [bake.run(rng) for _ in range(1000)]
    assert sum(v.decision == "ROLLBACK" for v in verdicts) >= 990
    share = canary_requests / (live_requests + canary_requests)
    mean_requests = sum(v.evidence["canary_requests"] for v in verdicts) / len(verdicts)
    mean_errors = sum(
        v.evidence["canary_errors"] + v.evidence["live_errors"] for v in verdicts
    ) / len(verdicts)
    wald_requests = expected_sample_size(CONFIG, rate, share, ratio)
    wald_errors = expected_errors(CONFIG, share, ratio)
    print(f"canary requests: {mean_requests:.1f} vs Wald {wald_requests:.1f}")
    print(f"errors observed: {mean_errors:.1f} vs Wald {wald_errors:.1f}")
    assert mean_requests == pytest.approx(wald_requests, rel=0.2)
    assert mean_errors == pytest.approx(wald_errors, rel=0.2)


# --- Wald's formulas ----------------------------------------------------------------------------


@pytest.mark.parametrize(("true_ratio", "accept"), [(1.0, 1 - ALPHA_PER_TEST), (2.0, 0.01)])
def test_expected_errors_at_the_hypotheses(true_ratio: float, accept: float) -> None:
    # At H0 and H1 the probability of accepting H0 is 1 - alpha' and beta: E[M] in closed form.
    share = 0.1
    q0, q1 = share, 2 * share / (2 * share + 1 - share)
    q = q0 if true_ratio == 1.0 else q1
    drift = q * math.log(q1 / q0) + (1 - q) * math.log((1 - q1) / (1 - q0))
    wald = (accept * PROMOTE_BOUND + (1 - accept) * ROLLBACK_BOUND) / drift
    assert expected_errors(CONFIG, share, true_ratio) == pytest.approx(wald, rel=1e-9)
    assert expected_sample_size(CONFIG, 0.01, share, true_ratio) == pytest.approx(
        wald * share / (0.01 * (true_ratio * share + 1 - share)), rel=1e-9
    )


def test_expected_errors_is_continuous_at_zero_drift() -> None:
    # The drift is zero at one ratio between 1 and 2; the formula switches to -A·B/E[Z²] there.
    low, high = 1.0, 2.0
    for _ in range(100):
        middle = (low + high) / 2
        q = middle * 0.1 / (middle * 0.1 + 0.9)
        q1 = 0.2 / 1.1
        drift = q * math.log(q1 / 0.1) + (1 - q) * math.log((1 - q1) / 0.9)
        low, high = (middle, high) if drift < 0 else (low, middle)
    exact = expected_errors(CONFIG, 0.1, low)
    assert expected_errors(CONFIG, 0.1, low * (1 + 1e-6)) == pytest.approx(exact, rel=1e-3)
    assert expected_errors(CONFIG, 0.1, low * (1 - 1e-6)) == pytest.approx(exact, rel=1e-3)
    assert exact > expected_errors(CONFIG, 0.1, 1.0)
    assert exact > expected_errors(CONFIG, 0.1, 2.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 0.1, 2.0), "live_error_rate"),
        ((0.01, 1.0, 2.0), "canary_share"),
        ((0.01, 0.1, 0.0), "true_ratio"),
        ((0.01, 0.1, math.nan), "true_ratio"),
    ],
)
def test_expected_sample_size_refuses_bad_arguments(
    args: tuple[float, float, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        expected_sample_size(CONFIG, *args)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("false_rollback_rate", 0.0),
        ("false_rollback_rate", 0.5),
        ("false_rollback_rate", -0.01),
        ("false_rollback_rate", math.nan),
        ("false_promote_rate", 0.7),
        ("false_promote_rate", True),
        ("error_ratio", 1.0),
        ("error_ratio", 0.5),
        ("error_ratio", math.inf),
        ("slow_ratio", math.nan),
        ("slow_ratio", "2"),
        ("min_canary_requests", 0),
        ("min_canary_requests", 10.5),
        ("min_canary_requests", True),
        ("max_periods", -1),
        ("on_timeout", "CONTINUE"),
    ],
)
def test_invalid_configs_raise(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        JudgeConfig(**{field: value})  # type: ignore[arg-type]


def test_edge_configs_are_valid() -> None:
    config = JudgeConfig(
        false_rollback_rate=0.49,
        false_promote_rate=1e-9,
        error_ratio=1.01,
        slow_ratio=100,
        min_canary_requests=1,
        max_periods=1,
        on_timeout="PROMOTE",
    )
    assert judge([Period(10, 0, 0, 1, 0, 0)], config).decision == "PROMOTE"


def test_negative_counts_raise() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        Period(100, -1, 0, 10, 0, 0)


# An undecided bake: the canary fails 1.5 times as often as live (1 in 180 requests against 1 in
# 270), between H0 and H1, so neither bound is reached in 60 periods of 30 canary requests.
UNDECIDED = ([Period(270, 1, 3, 30, 1, 0)] + [Period(270, 1, 3, 30, 0, 0)] * 5) * 10


@pytest.mark.parametrize("on_timeout", ["ROLLBACK", "PROMOTE"])
def test_an_undecided_bake_with_enough_traffic_ends_as_configured(
    on_timeout: Literal["PROMOTE", "ROLLBACK"],
) -> None:
    config = JudgeConfig(on_timeout=on_timeout)
    verdict = judge(UNDECIDED, config)
    assert (verdict.decision, verdict.periods) == (on_timeout, config.max_periods)
    assert verdict.evidence["promote_bound"] < verdict.evidence["llr_errors"] < ROLLBACK_BOUND
    assert "as configured (on_timeout)" in verdict.reason
    # The reason says how much traffic a minimum regression needs here, from Wald's ASN.
    needed = expected_sample_size(config, 60 / 16200, 1800 / 18000, config.error_ratio)
    assert f"needs about {needed:,.0f} canary requests" in verdict.reason
    assert needed > verdict.evidence["canary_requests"]  # this bake was too short to tell


def test_the_default_is_to_promote_an_undecided_bake() -> None:
    assert judge(UNDECIDED).decision == "PROMOTE"
