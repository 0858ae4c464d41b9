"""make verify's pure parts: the binomial bound, servedBy, each check's decision from its
evidence, the report, the throwaway stack's name and config; and the README's list of
assumptions held together with the checks."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import stack_config
from verify import checks
from verify.checks import Sample, ServedBy
from verify.report import Report
from verify.run import COMPONENT, MATH_ALARM_ROLE
from verify.stack import (
    EVENT_SHARDS_RANGE,
    StackSetupError,
    next_event_shards,
    throwaway_config,
    throwaway_name,
)
from versioned_lambda_api import names
from versioned_lambda_api.metrics import (
    AlarmThresholds,
    Expression,
    alarm_definitions,
    stage_traffic,
)

ROOT = Path(__file__).resolve().parent.parent
LIVE = ServedBy("dev", "dev", "1")
CANARY = ServedBy("dev", "dev-canary", "2")


def _sample(served_by: ServedBy | None, at: float = 0.0, status: int = 200) -> Sample:
    return Sample(status=status, served_by=served_by, request_id="r", at=at)


# --- the binomial bound -------------------------------------------------------------------


def _pmf(trials: int, share: float, k: int) -> float:
    return math.comb(trials, k) * share**k * (1 - share) ** (trials - k)


@pytest.mark.parametrize(("trials", "share"), [(200, 0.5), (50, 0.1), (1000, 0.25), (7, 0.5)])
def test_binomial_interval_is_the_tightest_with_each_tail_within_half_the_rate(
    trials: int, share: float
) -> None:
    rate = 0.001
    low, high = checks.binomial_interval(trials, share, rate)
    below = sum(_pmf(trials, share, k) for k in range(low))
    above = sum(_pmf(trials, share, k) for k in range(high + 1, trials + 1))
    assert below <= rate / 2
    assert above <= rate / 2
    # One count further in, a tail would hold more than its half.
    assert below + _pmf(trials, share, low) > rate / 2
    assert above + _pmf(trials, share, high) > rate / 2


def test_binomial_interval_at_an_even_share_is_symmetric_and_narrows_with_the_rate() -> None:
    assert checks.binomial_interval(200, 0.5, 0.001) == (77, 123)
    low, high = checks.binomial_interval(200, 0.5, 0.05)
    assert low > 77
    assert high < 123
    assert low + high == 200
    assert checks.binomial_interval(10, 0.0, 0.001) == (0, 0)


@pytest.mark.parametrize(
    ("trials", "share", "rate"), [(0, 0.5, 0.01), (10, 1.5, 0.01), (10, 0.5, 0)]
)
def test_binomial_interval_refuses_meaningless_input(
    trials: int, share: float, rate: float
) -> None:
    with pytest.raises(ValueError, match="binomial_interval needs"):
        checks.binomial_interval(trials, share, rate)


# --- servedBy ------------------------------------------------------------------------------


def test_served_by_is_read_from_the_functions_reply() -> None:
    body = json.dumps({"events": [], "servedBy": {"stage": "dev", "alias": "dev", "version": "1"}})
    assert checks.parse_served_by(body.encode()) == LIVE
    assert str(LIVE) == "dev/dev/v1"


@pytest.mark.parametrize(
    "body",
    [
        b'{"message": "Forbidden"}',
        b"<html>gateway timeout</html>",
        b"\xff\xfe",
        b'["servedBy"]',
        b'{"servedBy": {"stage": "dev", "alias": "dev", "version": 1}}',
        b'{"servedBy": {"stage": "dev", "alias": "dev"}}',
    ],
)
def test_a_reply_without_a_complete_served_by_has_none(body: bytes) -> None:
    assert checks.parse_served_by(body) is None


# --- each check's decision ------------------------------------------------------------------


def test_served_by_live_needs_every_request_answered_by_live() -> None:
    assert checks.served_by_live([_sample(LIVE)] * 20, LIVE).passed
    failed = checks.served_by_live([_sample(LIVE)] * 19 + [_sample(CANARY)], LIVE)
    assert not failed.passed
    assert "19 dev/dev/v1, 1 dev/dev-canary/v2" in failed.evidence
    assert not checks.served_by_live([_sample(None, status=403)], LIVE).passed
    assert not checks.served_by_live([], LIVE).passed


def test_canary_share_passes_within_the_bound_and_fails_outside_or_on_a_stranger() -> None:
    def share(to_canary: int, total: int = 200) -> checks.CheckResult:
        samples = [_sample(CANARY)] * to_canary + [_sample(LIVE)] * (total - to_canary)
        return checks.canary_share(samples, LIVE, CANARY, 50)

    assert share(100).passed
    assert share(77).passed
    assert share(123).passed
    assert not share(76).passed
    assert not share(124).passed
    assert "76 of 200 requests served by canary dev/dev-canary/v2" in share(76).evidence
    stranger = [_sample(CANARY)] * 100 + [_sample(LIVE)] * 99 + [_sample(ServedBy("dev", "x", "9"))]
    assert not checks.canary_share(stranger, LIVE, CANARY, 50).passed
    assert not checks.canary_share([], LIVE, CANARY, 50).passed


def test_rollback_needs_the_canary_stopped_in_time_then_a_streak_of_live() -> None:
    streak = [_sample(LIVE, at=104.0 + n) for n in range(checks.ROLLBACK_STREAK)]
    quick = checks.rollback_stops_canary([_sample(CANARY, at=103.0), *streak], 100.0, CANARY)
    assert quick.passed
    assert "canary's last request 3.0 s after the rollback began" in quick.evidence
    late = [_sample(CANARY, at=100.0 + checks.ROLLBACK_WITHIN_SECONDS + 1)]
    assert not checks.rollback_stops_canary([*late, *streak], 100.0, CANARY).passed
    assert not checks.rollback_stops_canary(streak[1:], 100.0, CANARY).passed
    ends_on_canary = [*streak, _sample(CANARY, at=140.0)]
    assert not checks.rollback_stops_canary(ends_on_canary, 100.0, CANARY).passed


def test_endpoint_configuration_must_stay_regional() -> None:
    assert checks.endpoint_configuration(["REGIONAL"]).passed
    assert not checks.endpoint_configuration(["EDGE"]).passed
    assert not checks.endpoint_configuration([]).passed


def test_content_type_with_a_charset_must_reach_the_function() -> None:
    assert checks.content_type_charset(_sample(LIVE), LIVE).passed
    refused = checks.content_type_charset(_sample(None, status=415), LIVE)
    assert not refused.passed
    assert "answered 415 by no servedBy" in refused.evidence


def test_header_case_needs_the_second_post_replayed() -> None:
    ok = _sample(LIVE)
    assert checks.header_case(ok, False, ok, True).passed
    # The header was lost: both stored as new events.
    assert not checks.header_case(ok, False, ok, False).passed
    assert not checks.header_case(ok, None, _sample(None, status=415), None).passed


def test_is_canary_request_must_be_true_exactly_for_the_canary_served() -> None:
    served = {"a": True, "b": False, "c": True}
    assert checks.is_canary_request(served, {"a": "true", "b": "false", "c": "true"}, True).passed
    # Requests not (yet) in the log are not judged, but one canary-served request must be.
    assert checks.is_canary_request(served, {"a": "true"}, True).passed
    assert not checks.is_canary_request(served, {"b": "false"}, True).passed
    wrong = checks.is_canary_request(served, {"a": "", "b": "false"}, True)
    assert not wrong.passed
    assert "1 with the wrong isCanaryRequest (e.g. a='')" in wrong.evidence


def test_without_a_stage_canary_is_canary_request_must_be_false_for_all() -> None:
    served = {"a": True, "b": False}
    assert checks.is_canary_request(served, {"a": "false", "b": "false"}, False).passed
    flagged = checks.is_canary_request(served, {"a": "true", "b": "false"}, False)
    assert not flagged.passed
    assert "canaryMode alias: no stage canary, so all must be false" in flagged.evidence


def test_metric_counts_must_equal_the_requests_each_side_served() -> None:
    expected = {LIVE: 153, CANARY: 100}
    assert checks.executed_version_dimension(expected, {LIVE: 153.0, CANARY: 100.0}).passed
    short = checks.emf_metrics(expected, {LIVE: 153.0, CANARY: 99.0})
    assert not short.passed
    assert "dev/dev-canary/v2 99 of 100" in short.evidence
    missing = checks.emf_metrics(expected, {LIVE: 153.0})
    assert not missing.passed
    assert "dev/dev-canary/v2 no data of 100" in missing.evidence
    assert not checks.executed_version_dimension({}, {}).passed


def test_percentile_rank_needs_percents_and_fails_on_a_refusal() -> None:
    assert checks.percentile_rank_stat(1000, {LIVE: [100.0, 99.5], CANARY: []}, None).passed
    assert not checks.percentile_rank_stat(1000, {LIVE: [], CANARY: []}, None).passed
    assert not checks.percentile_rank_stat(1000, {LIVE: [250.0]}, None).passed
    refused = checks.percentile_rank_stat(1000, {}, "Invalid statistic PR(:1000)")
    assert not refused.passed
    assert "PR(:1000) refused: Invalid statistic" in refused.evidence


def test_alarm_metric_math_needs_an_evaluated_state_and_values() -> None:
    assert checks.alarm_metric_math("a", "OK", "Threshold Crossed", [0.0]).passed
    assert checks.alarm_metric_math("a", "ALARM", "Threshold Crossed", [5.0]).passed
    assert not checks.alarm_metric_math("a", "INSUFFICIENT_DATA", "", [0.0]).passed
    assert not checks.alarm_metric_math("a", "OK", "", []).passed
    assert not checks.alarm_metric_math(None, None, "", []).passed


def test_settle_lag_must_be_within_what_the_release_tool_waits() -> None:
    assert checks.metrics_settle_lag(95, 120, 15).passed
    assert checks.metrics_settle_lag(-20, 120, 15).passed
    assert not checks.metrics_settle_lag(150, 120, 15).passed
    assert "matched the requests served +150 s from the end" in (
        checks.metrics_settle_lag(150, 120, 15).evidence
    )
    never = checks.metrics_settle_lag(None, 120, 15)
    assert not never.passed
    assert "never matched" in never.evidence


def test_the_alarm_verify_reads_is_the_components_canary_alarm_with_metric_math() -> None:
    for weighted in (False, True):
        traffic = stage_traffic("dev", "dev-canary", weighted=weighted, stable_version=1)
        with_math = {
            names.alarm_role(definition)
            for definition in alarm_definitions(traffic, AlarmThresholds(1.0, 8000.0))
            if definition.role == "canary"
            and any(isinstance(query, Expression) for query in definition.queries)
        }
        assert with_math == {MATH_ALARM_ROLE}
    # ... of the component the program names so.
    assert f'VersionedLambdaApi(\n    "{COMPONENT}",' in (ROOT / "__main__.py").read_text()


# --- the report ------------------------------------------------------------------------------


def _report(failing: str | None = None) -> Report:
    report = Report("dev", "verify-abc1234", "us-east-1", "2026-11-30T02:00:00+00:00")
    report.results = [
        checks.CheckResult(name, "FAIL" if name == failing else "PASS", f"evidence of {name}")
        for name in checks.CHECKS
    ]
    report.cleanup = "stack verify-abc1234 destroyed and removed"
    return report


def test_the_report_passes_only_when_every_check_ran_and_passed() -> None:
    report = _report()
    assert report.passed
    lines = report.lines()
    assert lines[0] == (
        "make verify: PASS for stack dev (throwaway stack verify-abc1234, us-east-1, started "
        "2026-11-30T02:00:00+00:00)"
    )
    assert lines[1] == "PASS  served-by-live: evidence of served-by-live"
    assert lines[-1] == "cleanup: stack verify-abc1234 destroyed and removed"
    assert len(lines) == len(checks.CHECKS) + 2

    assert not _report(failing="canary-share").passed
    assert "FAIL  canary-share: evidence of canary-share" in _report("canary-share").lines()


def test_a_stopped_run_lists_what_did_not_run_and_a_failed_cleanup_fails_it() -> None:
    report = _report()
    report.results = report.results[:3]
    report.aborted = "pulumi up failed"
    lines = report.lines()
    assert "ABORTED: pulumi up failed" in lines
    assert "NOT RUN  endpoint-configuration" in lines
    assert not report.passed
    as_json = report.to_json()
    assert as_json["passed"] is False
    assert as_json["notRun"] == list(checks.CHECKS[3:])
    assert as_json["checks"][0] == {
        "name": "served-by-live",
        "status": "PASS",
        "evidence": "evidence of served-by-live",
    }
    json.dumps(as_json)

    left = _report()
    left.cleanup_failed = True
    assert not left.passed


# --- the throwaway stack --------------------------------------------------------------------


def test_throwaway_names_are_verify_and_7_hex_and_differ_per_run() -> None:
    names = {throwaway_name() for _ in range(20)}
    assert all(re.fullmatch(r"verify-[0-9a-f]{7}", name) for name in names)
    assert len(names) == 20
    assert throwaway_name("abc1234") == "verify-abc1234"


def test_the_throwaway_config_copies_the_stack_unpinned_and_without_canary() -> None:
    source = (
        "# prod\n"
        "config:\n"
        "  aws:region: eu-west-1\n"
        "  event-logger:alias: prod\n"
        '  event-logger:canaryPercent: "10"\n'
        '  event-logger:stableVersion: "3"\n'
        "  event-logger:memoryMb: 512\n"
    )
    text = throwaway_config(source, "Pulumi.prod.yaml", "event-logger")
    assert text.startswith("# make verify's throwaway copy of Pulumi.prod.yaml")
    config = YAML(typ="safe").load(text)["config"]
    assert config == {
        "aws:region": "eu-west-1",
        "event-logger:alias": "prod",
        "event-logger:canaryPercent": "0",
        "event-logger:memoryMb": 512,
    }


def test_the_repositorys_dev_stack_can_be_copied() -> None:
    text = throwaway_config(
        (ROOT / "Pulumi.dev.yaml").read_text(), "Pulumi.dev.yaml", "event-logger"
    )
    assert YAML(typ="safe").load(text)["config"]["event-logger:alias"] == "dev"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "config:\n  event-logger:alias: dev\n  event-logger:token:\n    secure: AAAB\n",
            r"holds secret or structured values \(event-logger:token\)",
        ),
        ("encryptionsalt: x\n", "has no 'config' mapping"),
        ("", "has no 'config' mapping"),
    ],
)
def test_a_stack_file_that_cannot_be_copied_is_refused(source: str, message: str) -> None:
    with pytest.raises(StackSetupError, match=message):
        throwaway_config(source, "Pulumi.dev.yaml", "event-logger")


def test_the_second_deploy_changes_event_shards_within_their_range() -> None:
    assert EVENT_SHARDS_RANGE == stack_config.EVENT_SHARDS_RANGE
    assert next_event_shards(None, 8) == "9"
    assert next_event_shards("3", 8) == "4"
    assert next_event_shards("32", 8) == "31"


# --- the README's assumptions, each checked ---------------------------------------------------

README_SECTION = "### What `make verify` checks on real AWS"


def assumption_checks(readme: str) -> list[str]:
    """The check named at the start of each bullet of the README's section."""
    heading = re.search(f"^{re.escape(README_SECTION)}$", readme, flags=re.MULTILINE)
    if heading is None:
        raise AssertionError(f"README.md has no section {README_SECTION!r}")
    section = re.split(r"\n#{1,3} ", readme[heading.end() :], maxsplit=1)[0]
    return re.findall(r"^- \*\*`([a-z-]+)`\*\*", section, flags=re.MULTILINE)


def test_assumption_checks_are_read_from_the_sections_bullets() -> None:
    readme = (
        f"# T\n{README_SECTION}\n\nIntro.\n\n- **`canary-share`**: the share.\n"
        "  More words.\n- **`header-case`**: case.\n\n## Next\n- **`emf-metrics`**: not here\n"
    )
    assert assumption_checks(readme) == ["canary-share", "header-case"]
    with pytest.raises(AssertionError, match="no section"):
        assumption_checks("# T\n")
    # Only the heading on a line of its own starts the section.
    with pytest.raises(AssertionError, match="no section"):
        assumption_checks(f"see '{README_SECTION}' below\n- **`canary-share`**: x\n")


def test_every_assumption_the_readme_lists_has_a_check_and_every_check_is_listed() -> None:
    listed = assumption_checks((ROOT / "README.md").read_text())
    assert sorted(listed) == sorted(checks.CHECKS)
