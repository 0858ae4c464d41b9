"""The release simulator, the baseline judges, tuning, and the benchmark's plumbing."""

from __future__ import annotations

import importlib.util
import math
import random
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from bench.simulate import (
    CanaryJudge,
    CodeDeployAlarm,
    FlaggerAnalysis,
    KayentaMannWhitney,
    LatencyModel,
    OurJudge,
    Release,
    Scenario,
    VersionModel,
    aggregate,
    false_rollback_rate,
    geometric_grid,
    make_releases,
    mann_whitney_u,
    percentile,
    poisson,
    run,
    simulate_period,
    sprt_bound,
    summarize,
    tune,
)
from release.judge import Decision, JudgeConfig, Period, expected_sample_size, judge

ROOT = Path(__file__).resolve().parent.parent
LATENCY = LatencyModel(median_ms=150.0, sigma=0.8155)
LIVE = VersionModel(error_rate=0.005, latency=LATENCY)
BAD = VersionModel(error_rate=0.025, latency=LATENCY)


def scenario(rps: float = 50.0, **changes: object) -> Scenario:
    base = Scenario(
        name=f"test-{rps:g}",
        total_rps=rps,
        canary_share=0.1,
        live=LIVE,
        bad_canary=BAD,
        regression="errors",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def period(
    *,
    canary_requests: int = 100,
    canary_errors: int = 0,
    live_requests: int = 900,
    live_errors: int = 0,
    canary_slow: int = 0,
    live_slow: int = 0,
) -> Period:
    return Period(
        live_requests=live_requests,
        live_errors=live_errors,
        live_slow=live_slow,
        canary_requests=canary_requests,
        canary_errors=canary_errors,
        canary_slow=canary_slow,
    )


def feed(judge_: CanaryJudge, periods: list[Period]) -> list[Decision]:
    """Decisions after each period until the first final one."""
    session = judge_.session()
    decisions: list[Decision] = []
    for p in periods:
        decisions.append(session.add(p))
        if decisions[-1] != "CONTINUE":
            break
    return decisions


# --- the simulator --------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [0.3, 4.0, 9.5, 12.0, 250.0, 30_000.0])
def test_poisson_has_the_right_mean_and_variance(mean: float) -> None:
    rng = random.Random(f"poisson-{mean}")  # noqa: S311
    draws = [poisson(rng, mean) for _ in range(20_000)]
    standard_error = math.sqrt(mean / len(draws))
    assert abs(statistics.fmean(draws) - mean) < 4 * standard_error
    assert statistics.variance(draws) == pytest.approx(mean, rel=0.05)
    assert min(draws) >= 0


def test_poisson_of_zero_is_zero_and_negative_means_are_refused() -> None:
    rng = random.Random(0)  # noqa: S311
    assert poisson(rng, 0.0) == 0
    with pytest.raises(ValueError, match="Poisson mean"):
        poisson(rng, -1.0)


def test_latency_model_tail() -> None:
    assert LATENCY.p_slower_than(150.0) == pytest.approx(0.5)
    assert LATENCY.p_slower_than(1000.0) == pytest.approx(0.01, rel=1e-3)
    assert LatencyModel(250.0, 0.8155).p_slower_than(1000.0) == pytest.approx(0.0446, abs=5e-4)


def test_simulated_periods_have_the_expected_mean_counts() -> None:
    s = scenario(rps=50.0)
    rng = random.Random("means")  # noqa: S311
    periods = [simulate_period(rng, s, BAD, 60.0) for _ in range(400)]
    expected = {
        "canary_requests": 50 * 60 * 0.1,  # 300
        "live_requests": 50 * 60 * 0.9,  # 2700
        "canary_errors": 300 * 0.025,
        "live_errors": 2700 * 0.005,
        "canary_slow": 300 * 0.01,
        "live_slow": 2700 * 0.01,
    }
    for name, mean in expected.items():
        values = [getattr(p, name) for p in periods]
        # Poisson counts: standard error sqrt(mean / n).
        assert abs(statistics.fmean(values) - mean) < 4 * math.sqrt(mean / len(values)), name


def test_same_seed_same_release_and_other_seeds_differ() -> None:
    s = scenario(rps=5.0)
    first = [Release(s, True, "seed-a").period(i) for i in range(20)]
    again = Release(s, True, "seed-a")
    assert [again.period(i) for i in range(20)] == first
    assert [Release(s, True, "seed-b").period(i) for i in range(20)] != first


def test_releases_do_not_depend_on_how_many_are_made() -> None:
    s = scenario(rps=5.0)
    few = make_releases(s, bad=False, count=2, seed="x")
    many = make_releases(s, bad=False, count=5, seed="x")
    assert [r.period(3) for r in few] == [r.period(3) for r in many[:2]]


def test_stream_sums_periods_and_stops_at_the_horizon() -> None:
    s = scenario(rps=50.0, period_seconds=10, horizon_minutes=2)
    release = Release(s, False, "stream")
    fine = list(release.stream())
    minutes = list(release.stream(6))
    assert len(fine) == 12
    assert len(minutes) == 2
    assert minutes[0] == aggregate(fine[:6])
    assert minutes[1].canary_requests == sum(p.canary_requests for p in fine[6:])
    with pytest.raises(IndexError):
        release.period(12)


# --- running and scoring --------------------------------------------------------------------


def test_our_judge_through_run_matches_judge_on_the_prefix() -> None:
    s = scenario(rps=50.0)
    release = Release(s, True, "ours")
    outcome = run(OurJudge(), release)
    assert outcome.decision == "ROLLBACK"
    prefix = [release.period(i) for i in range(outcome.periods)]
    verdict = judge(prefix)
    assert verdict.decision == "ROLLBACK"
    assert verdict.periods == outcome.periods
    assert outcome.canary_requests == sum(p.canary_requests for p in prefix)
    assert outcome.exposure == outcome.canary_requests


def test_a_promoted_bad_release_is_exposed_until_the_horizon() -> None:
    s = scenario(rps=5.0)
    release = Release(s, True, "promoted")
    outcome = run(CodeDeployAlarm(threshold=1.0), release)  # never alarms: promotes at 10 min
    assert outcome.decision == "PROMOTE"
    assert outcome.seconds == 600.0
    assert outcome.exposure == pytest.approx(outcome.canary_requests + 5.0 * 50 * 60)


def test_summary_shares_and_percentiles() -> None:
    s = scenario(rps=50.0)
    good = [
        run(CodeDeployAlarm(threshold=0.0), r)
        for r in make_releases(s, bad=False, count=5, seed="g")
    ]
    bad = [
        run(CodeDeployAlarm(threshold=1.0), r)
        for r in make_releases(s, bad=True, count=4, seed="b")
    ]
    summary = summarize(good, bad)
    assert summary.false_rollback == 1.0  # every minute has an error rate above 0
    assert summary.false_promote == 1.0
    assert summary.minutes_bad_median == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.9) == pytest.approx(4.6)


def test_sprt_bound_is_the_judges_expected_sample_size() -> None:
    s = scenario(rps=5.0)
    config = JudgeConfig()
    assert sprt_bound(config, s, "errors", 5.0) == expected_sample_size(config, 0.005, 0.1, 5.0)
    slow = sprt_bound(config, s, "slow", 4.0)
    assert slow == pytest.approx(expected_sample_size(config, 0.01, 0.1, 4.0), rel=1e-3)


# --- CodeDeploy -----------------------------------------------------------------------------


def test_codedeploy_rolls_back_when_the_alarm_fires() -> None:
    quiet, loud = period(canary_errors=1), period(canary_errors=5)
    decisions = feed(CodeDeployAlarm(threshold=0.02), [quiet, quiet, loud, quiet])
    assert decisions == ["CONTINUE", "CONTINUE", "ROLLBACK"]


def test_codedeploy_promotes_after_the_bake_without_alarm() -> None:
    decisions = feed(CodeDeployAlarm(threshold=0.02), [period(canary_errors=2)] * 12)
    assert decisions == ["CONTINUE"] * 9 + ["PROMOTE"]


def test_codedeploy_m_of_n_datapoints_and_missing_data() -> None:
    alarm = CodeDeployAlarm(threshold=0.02, datapoints_to_alarm=2, evaluation_periods=3)
    loud, quiet, empty = period(canary_errors=5), period(), period(canary_requests=0)
    assert feed(alarm, [loud, quiet, quiet, loud, quiet, loud])[-1] == "ROLLBACK"
    assert len(feed(alarm, [loud, quiet, quiet, loud, quiet, loud])) == 6
    assert feed(alarm, [loud, empty, empty, empty, loud, quiet, quiet])[-1] == "CONTINUE"


def test_codedeploy_watches_slow_requests_when_asked() -> None:
    slow = period(canary_slow=10)
    assert feed(CodeDeployAlarm(threshold=0.05), [slow]) == ["CONTINUE"]
    assert feed(CodeDeployAlarm(threshold=0.05, metric="slow"), [slow]) == ["ROLLBACK"]


# --- Flagger --------------------------------------------------------------------------------


def test_flagger_rolls_back_at_the_threshold_of_failed_checks() -> None:
    bad, good = period(canary_errors=5), period()
    flagger = FlaggerAnalysis(max_rate=0.01)
    assert feed(flagger, [bad] * 6) == ["CONTINUE"] * 4 + ["ROLLBACK"]
    # Failed checks accumulate over the analysis and do not advance it.
    mixed = [bad, good, bad, good, bad, good, bad, good, bad]
    assert feed(flagger, mixed)[-1] == "ROLLBACK"
    assert len(feed(flagger, mixed)) == 9


def test_flagger_promotes_after_its_iterations_with_fewer_failures() -> None:
    bad, good = period(canary_errors=5), period()
    decisions = feed(FlaggerAnalysis(max_rate=0.01), [bad] * 4 + [good] * 10)
    assert decisions == ["CONTINUE"] * 13 + ["PROMOTE"]


def test_flagger_consecutive_reading_needs_an_unbroken_run() -> None:
    bad, good = period(canary_errors=5), period()
    consecutive = FlaggerAnalysis(max_rate=0.01, consecutive=True, iterations=20)
    assert feed(consecutive, [bad, bad, bad, bad, good] * 3)[-1] == "CONTINUE"
    assert feed(consecutive, [good] + [bad] * 5) == ["CONTINUE"] * 5 + ["ROLLBACK"]


def test_flagger_fails_a_check_without_canary_traffic() -> None:
    assert feed(
        FlaggerAnalysis(max_rate=1.0, failed_checks=2), [period(canary_requests=0)] * 2
    ) == [
        "CONTINUE",
        "ROLLBACK",
    ]


# --- Mann-Whitney and Kayenta ---------------------------------------------------------------


def test_mann_whitney_on_textbook_examples() -> None:
    # ClickHouse's mannWhitneyUTest('greater') example: (9, 0.04042779918503192).
    u, p = mann_whitney_u([10, 11, 12], [1, 2, 3])
    assert u == 9.0
    assert p == pytest.approx(0.04042779918503192, rel=1e-9)
    # SciPy's mannwhitneyu example (males vs females): U1 = 17; asymptotic two-sided p
    # 0.11134688653314041, so one-sided "greater" is half of it.
    u, p = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert u == 17.0
    assert p == pytest.approx(0.11134688653314041 / 2, rel=1e-9)


def test_mann_whitney_with_ties_by_hand() -> None:
    # Pooled 1 2 2 | 2 3 3: midranks 1, 3, 3 | 3, 5.5, 5.5. U_x = 7 - 6 = 1 (two tied pairs).
    # Tie-corrected variance: 3*3/12 * (7 - ((3**3 - 3) + (2**3 - 2)) / (6*5)) = 0.75 * 6 = 4.5.
    u, p = mann_whitney_u([1, 2, 2], [2, 3, 3])
    assert u == 1.0
    assert p == pytest.approx(0.5 * math.erfc((1 - 4.5 - 0.5) / math.sqrt(4.5) / math.sqrt(2)))
    u, p = mann_whitney_u([2, 3, 3], [1, 2, 2])
    assert u == 8.0
    assert p == pytest.approx(0.5 * math.erfc((8 - 4.5 - 0.5) / math.sqrt(4.5) / math.sqrt(2)))
    assert mann_whitney_u([0.0, 0.0], [0.0, 0.0, 0.0]) == (3.0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney_u([], [1.0])


def test_kayenta_rolls_back_a_clearly_worse_canary_at_the_end_of_the_bake() -> None:
    kayenta = KayentaMannWhitney(alpha=0.01, bake_periods=10)
    worse = [period(canary_errors=5 + i % 3, live_errors=9 + i % 2) for i in range(10)]
    assert feed(kayenta, worse) == ["CONTINUE"] * 9 + ["ROLLBACK"]


def test_kayenta_promotes_identical_and_similar_series() -> None:
    kayenta = KayentaMannWhitney(alpha=0.01, bake_periods=10)
    same = [period(canary_errors=1, live_errors=9)] * 10  # identical rates: 1%
    assert feed(kayenta, same)[-1] == "PROMOTE"
    similar = [period(canary_errors=i % 2, live_errors=4 + i % 3) for i in range(10)]
    assert feed(kayenta, similar) == ["CONTINUE"] * 9 + ["PROMOTE"]


# --- tuning ---------------------------------------------------------------------------------


def test_tuning_picks_the_most_sensitive_threshold_within_the_cap() -> None:
    s = scenario(rps=5.0)
    good = make_releases(s, bad=False, count=150, seed="tuning")
    grid = geometric_grid(1.0, 1e-3, 1 / 1.25)
    cap = 0.02
    tuning = tune(lambda t: CodeDeployAlarm(threshold=t), grid, good, cap)
    assert tuning.met
    assert tuning.false_rollback <= cap
    assert (
        false_rollback_rate(CodeDeployAlarm(threshold=tuning.value), good) == tuning.false_rollback
    )
    index = grid.index(tuning.value)
    assert index + 1 < len(grid)
    assert false_rollback_rate(CodeDeployAlarm(threshold=grid[index + 1]), good) > cap
    assert tuning.evaluations < len(grid)  # a binary search, not a sweep


def test_tuning_reports_an_unreachable_cap() -> None:
    s = scenario(rps=50.0)
    good = make_releases(s, bad=False, count=20, seed="unreachable")
    tuning = tune(lambda t: CodeDeployAlarm(threshold=t), [0.0, -1.0], good, 0.0)
    assert not tuning.met
    assert tuning.value == 0.0
    assert tuning.false_rollback > 0.0


def test_geometric_grid() -> None:
    assert geometric_grid(1.0, 8.0, 2.0) == [1.0, 2.0, 4.0, 8.0]
    assert geometric_grid(1.0, 0.25, 0.5) == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="geometric"):
        geometric_grid(1.0, 2.0, 1.0)


# --- the benchmark's plumbing ---------------------------------------------------------------


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "canary_bench", ROOT / "bench" / "canary_bench.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["canary_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_runs_end_to_end_on_a_few_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench()
    monkeypatch.setattr(bench, "QUICK", bench.Sizes(good=12, bad=12, tune=12))
    monkeypatch.setattr(bench, "write_chart", lambda results, path: False)
    assert bench.main(["--quick", "--seed", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| low | ours (SPRT) |" in out
    assert "| low | SPRT (Wald) |" in out
    assert "Targets on the reference scenario" in out
    assert "Recommendation:" in out
    document = (tmp_path / "canary.json").read_text()
    assert '"seed": 3' in document
    assert '"high_resolution"' in document
