"""The release tool end to end against a fake AWS account (tests/release_world.py): real boto3
clients, botocore's retries, and one account state that the tool's calls and its deploys change.

Each scenario is a finding of issue 11: it asserts what AWS serves afterwards,
what the stack file says, and what the tool said (exit status and the words that matter). The
command line is driven in-process through ``release.__main__.main`` with the account's clients
and deployer in place of boto3's and Pulumi's; ``watch`` through ``Release.watch`` with the
account's clock, which the command line cannot take.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from release import __main__ as cli
from release.commands import AwsClients, CanaryStillLiveError, Release, ReleaseError
from release.config_file import StackConfigFile
from release.watch import METRICS_READ_ATTEMPTS, Watch
from tests.release_world import (
    MINUTE,
    PROJECT,
    AccountDeployer,
    FakeAccount,
    Mode,
    stack_setting,
    typical_stack,
)

CANARY_ERROR_RATE = {"4": 0.05}
"""v4 fails 5% of its requests, live's v3 1% (the account's base rate): a clear regression."""


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@dataclass
class World:
    """A typical prod stack mid-release (10% to v4 by the stage canary), its program folder,
    and the tool's command line wired to the account."""

    account: FakeAccount
    deployer: AccountDeployer
    clients: AwsClients
    program: Path
    capsys: pytest.CaptureFixture[str]

    def cli(self, *argv: str) -> Ran:
        code = cli.main([*argv, "--stack", "prod", "--program", str(self.program)])
        captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    def release(
        self, out: Callable[[str], None], latency_threshold_ms: float | None = None
    ) -> Release:
        return Release(
            config=StackConfigFile(self.program, PROJECT, "prod"),
            deployer=self.deployer,
            out=out,
            latency_threshold_ms=latency_threshold_ms,
        )

    def file(self, name: str = "canaryPercent") -> str | None:
        return stack_setting(self.program, name)


@pytest.fixture(autouse=True)
def botocore_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits botocore's retries ask for (its backoff calls ``time.sleep``), recorded
    instead of waited; ``watch`` gets the account's own sleep."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


def make_world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: Mode = "stage",
) -> World:
    account, deployer = typical_stack(tmp_path / "program", mode)
    clients = account.clients()  # one set, as one run of the tool makes
    monkeypatch.setattr(cli, "_clients", lambda region: clients)
    monkeypatch.setattr(cli, "_deployer", lambda program, stack: deployer)
    return World(account, deployer, clients, tmp_path / "program", capsys)


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> World:
    return make_world(tmp_path, monkeypatch, capsys)


# --- 1. CloudWatch answers part of the query --------------------------------------------------


def test_minutes_cloudwatch_answered_in_part_are_never_judged(world: World) -> None:
    account = world.account
    account.traffic.error_rate = CANARY_ERROR_RATE
    # Read as zero, the missing canary errors would make v4 look better than live and the
    # judge would advance within a few minutes.
    faulted_reads = 6
    account.fail_query("canary_errors", times=faulted_reads)
    said: list[str] = []
    decision = Watch(world.release(said.append)).run(
        world.clients, sleep=account.sleep, now=account.clock
    )
    assert decision == "ROLLBACK"
    # Nothing changed while the answers were partial: the first change is the rollback, on the
    # first read after them, and it took the share to 0, not up.
    _baseline, *reads = account.attempts_of("GetMetricData")
    first = account.changes[0]
    assert (first.by, first.at) == ("UpdateStage", reads[faulted_reads].at)
    assert first.what == "stage canary 10% -> 0%"
    assert all("-> 25%" not in change.what for change in account.changes)
    assert account.stage_percent == 0
    assert world.file() == "0"
    assert any("canary_errors: InternalError" in line for line in said)


# --- 2. The file already says 0, AWS still serves 10% ------------------------------------------


def test_rollback_stops_what_aws_serves_when_the_file_already_says_0(world: World) -> None:
    edited = world.cli("rollback", "--no-apply")
    assert edited.code == 0, edited.err
    assert (world.file(), world.account.stage_percent) == ("0", 10.0)

    stopped = world.cli("rollback")
    assert stopped.code == 0, stopped.err
    assert world.account.stage_percent == 0
    assert world.file() == "0"
    assert "10%" in stopped.out  # what AWS served before the stop
    assert [change.by for change in world.account.changes] == ["UpdateStage"]


# --- 3. A failed apply of advance ------------------------------------------------------------


def test_advance_after_a_failed_apply_applies_the_files_share_not_the_next(world: World) -> None:
    world.deployer.fail_next_up()
    failed = world.cli("advance")
    assert failed.code == 1
    assert "pulumi up failed" in failed.err
    assert "make up STACK=prod" in failed.err
    assert (world.file(), world.account.stage_percent) == ("25", 10.0)

    again = world.cli("advance")
    assert again.code == 0, again.err
    assert (world.file(), world.account.stage_percent) == ("25", 25.0)
    assert "run advance again after its bake" in again.out
    assert world.deployer.ups == 2


# --- 4. Rollback when AWS' answer is lost, or AWS cannot be reached ----------------------------


def test_rollback_whose_answers_are_lost_confirms_by_reading_aws(world: World) -> None:
    # Every attempt reaches API Gateway and applies; no answer comes back.
    world.account.fail("UpdateStage", "lost_answer", times=None)
    ran = world.cli("rollback")
    assert ran.code == 0, ran.err
    assert len(world.account.attempts_of("UpdateStage")) == 2  # botocore retried the timeout
    assert world.account.stage_percent == 0
    assert world.file() == "0"
    assert world.deployer.ups == 1


def test_rollback_that_cannot_reach_aws_says_the_canary_still_takes_its_share(
    world: World,
) -> None:
    world.account.fail("UpdateStage", "unreachable", times=None)
    ran = world.cli("rollback")
    assert ran.code == 3
    assert "10%" in ran.err
    assert len(world.account.attempts_of("UpdateStage")) == 2
    assert world.account.stage_percent == 10.0
    assert world.file() == "10"
    assert world.deployer.ups == 0


# --- 5. Rollback refused ---------------------------------------------------------------------


def test_rollback_denied_names_access_denied_and_changes_nothing(world: World) -> None:
    world.account.fail("UpdateStage", "denied", times=None)
    ran = world.cli("rollback")
    assert ran.code == 3  # refused: nothing changed, so the canary still takes its share
    assert "AccessDenied" in ran.err
    assert "the canary still takes 10%" in ran.err
    assert len(world.account.attempts_of("UpdateStage")) == 1  # a 403 is not retried
    assert world.account.stage_percent == 10.0
    assert world.file() == "10"
    assert world.account.changes == []


# --- 6. A stage without canary settings ------------------------------------------------------


def test_rollback_of_a_stage_without_canary_settings_records_0(world: World) -> None:
    world.account.remove_stage_canary()
    ran = world.cli("rollback")
    assert ran.code == 0, ran.err
    assert world.account.attempts_of("UpdateStage") == []
    assert world.account.canary is None
    assert world.file() == "0"


def test_rollback_racing_a_deploy_that_removed_the_canary_settings(world: World) -> None:
    # Read with 10%, gone by the time the stop arrives: API Gateway answers NotFound.
    world.account.before_next("UpdateStage", world.account.remove_stage_canary)
    ran = world.cli("rollback")
    assert ran.code == 0, ran.err
    assert [attempt.fault for attempt in world.account.attempts_of("UpdateStage")] == [None]
    assert world.account.canary is None
    assert world.file() == "0"


# --- 7. Metrics throttled --------------------------------------------------------------------


def test_watch_waits_out_a_few_throttled_minutes(world: World, botocore_waits: list[float]) -> None:
    account = world.account
    account.traffic.error_rate = CANARY_ERROR_RATE
    throttled_reads, attempts = 3, 2
    account.fail("GetMetricData", "throttle", times=throttled_reads * attempts)
    said: list[str] = []
    decision = Watch(world.release(said.append, latency_threshold_ms=500.0)).run(
        world.clients, sleep=account.sleep, now=account.clock
    )
    assert decision == "ROLLBACK"
    faults = [attempt.fault for attempt in account.attempts_of("GetMetricData")]
    assert faults[: throttled_reads * attempts] == ["throttle"] * (throttled_reads * attempts)
    assert faults[throttled_reads * attempts] is None
    assert len(botocore_waits) >= throttled_reads  # botocore backed off before each retry
    assert sum("throttled" in line for line in said) == throttled_reads  # one line a minute
    assert account.stage_percent == 0
    assert world.file() == "0"


def test_watch_throttled_too_long_stops_saying_the_canary_is_live(world: World) -> None:
    account = world.account
    account.traffic.error_rate = CANARY_ERROR_RATE
    account.fail("GetMetricData", "throttle", times=None)
    said: list[str] = []
    with pytest.raises(CanaryStillLiveError) as stopped:
        Watch(world.release(said.append, latency_threshold_ms=500.0)).run(
            world.clients, sleep=account.sleep, now=account.clock
        )
    assert "10%" in str(stopped.value)
    assert "release-rollback" in str(stopped.value)
    # One read a minute, each tried twice by botocore, then the tool gave up.
    reads = account.attempts_of("GetMetricData")
    assert len(reads) == METRICS_READ_ATTEMPTS * 2
    assert [attempt.at for attempt in reads[::2]] == [
        reads[0].at + minute * MINUTE for minute in range(METRICS_READ_ATTEMPTS)
    ]
    assert [attempt.at for attempt in reads[1::2]] == [attempt.at for attempt in reads[::2]]
    assert account.stage_percent == 10.0
    assert world.file() == "10"
    assert account.changes == []

    # As the message says: once CloudWatch answers again, watching resumes and judges.
    account.heal("GetMetricData")
    resumed = Watch(world.release(said.append, latency_threshold_ms=500.0)).run(
        world.clients, sleep=account.sleep, now=account.clock
    )
    assert resumed == "ROLLBACK"
    assert account.stage_percent == 0


# --- 8. Alias mode ---------------------------------------------------------------------------


def test_rollback_in_alias_mode_removes_the_live_alias_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path, monkeypatch, capsys, mode="alias")
    assert (world.account.live.version, world.account.live.weights) == ("3", {"4": 0.1})
    assert world.account.canary is None
    ran = world.cli("rollback")
    assert ran.code == 0, ran.err
    assert (world.account.live.version, world.account.live.weights) == ("3", {})
    assert world.file() == "0"
    assert world.file("canaryMode") == "alias"
    assert [change.by for change in world.account.changes] == ["UpdateAlias"]


# --- The account itself: what the tool measures is what it served ---------------------------


@pytest.mark.parametrize("mode", ["stage", "alias"])
def test_the_tool_measures_the_traffic_the_account_served(
    mode: Mode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = make_world(tmp_path, monkeypatch, capsys, mode=mode)
    world.account.traffic.error_rate = CANARY_ERROR_RATE
    # CloudWatch's newest 2 minutes not out yet: the minutes the tool leaves to settle.
    world.account.lag_minutes = 2
    world.account.sleep(12 * 60)
    report = world.release(lambda _: None).status_report(world.clients, 12, world.account.now)
    # 10 settled minutes of 6,000 requests: 10% to v4 (5% failing), the rest to v3 (1%).
    assert (report.window.canary.requests, report.window.canary.errors) == (6000, 300)
    assert (report.window.live.requests, report.window.live.errors) == (54000, 540)
    assert report.verdict.decision == "ROLLBACK"


def test_rollback_stops_the_canary_before_its_apply_ends(world: World) -> None:
    # The stop goes through AWS first: while Pulumi still applies, no request reaches v4.
    world.deployer.hold = threading.Event()
    codes: list[int] = []
    argv = ["rollback", "--stack", "prod", "--program", str(world.program)]
    step = threading.Thread(target=lambda: codes.append(cli.main(argv)))
    step.start()
    try:
        assert world.deployer.holding.wait(5)
        assert world.account.stage_percent == 0
        assert world.file() == "0"
    finally:
        world.deployer.hold.set()
        step.join(5)
    assert codes == [0]
    assert world.account.canary is None  # the apply removed the settings, as the file says


# --- 9. A colleague's rollback while watch runs -------------------------------------------------


def test_a_colleagues_rollback_mid_watch_is_not_undone(world: World) -> None:
    # B rolls back at minute 5 while watch judges minutes (healthy ones) from before it: watch
    # must neither advance on them nor write 25 over B's 0.
    account = world.account
    started = account.now
    rolled_back: list[Ran] = []

    def minutes_pass(seconds: float) -> None:
        account.sleep(seconds)
        if account.now == started + 5 * MINUTE:
            rolled_back.append(world.cli("rollback"))

    said: list[str] = []
    with pytest.raises(ReleaseError) as stopped:
        Watch(world.release(said.append, latency_threshold_ms=500.0)).run(
            world.clients, sleep=minutes_pass, now=account.clock
        )
    assert [ran.code for ran in rolled_back] == [0]
    assert "someone else changed the release" in str(stopped.value)
    assert "AWS sends the canary no traffic now" in str(stopped.value)
    assert account.changes[0].what == "stage canary 10% -> 0%"  # B's stop, at minute 5
    assert all("-> 25%" not in change.what for change in account.changes)
    assert (account.stage_percent, world.file()) == (0, "0")


# --- 10. The file's mode is not the deployed one ------------------------------------------------


def test_status_and_rollback_follow_the_mode_aws_serves_not_the_files(world: World) -> None:
    # The file says alias (edited, not deployed); the stack serves a stage canary whose v4
    # fails 5%. Status sees the canary's requests and errors; rollback stops the stage.
    config = StackConfigFile(world.program, PROJECT, "prod")
    config.set("canaryMode", "alias")
    config.save()
    world.account.traffic.error_rate = CANARY_ERROR_RATE
    world.account.sleep(12 * 60)
    said: list[str] = []
    report = world.release(said.append, latency_threshold_ms=500.0).status_report(
        world.clients, 12, world.account.now
    )
    assert report.state.mode == "stage"
    assert report.window.canary.requests > 0
    assert report.verdict.decision == "ROLLBACK"
    assert any("canaryMode alias" in difference for difference in report.state.differences())

    ran = world.cli("rollback")
    assert ran.code == 0, ran.err
    assert world.account.changes[0].by == "UpdateStage"
    assert world.account.attempts_of("UpdateAlias") == []  # nothing to stop there
    assert world.file() == "0"


# --- 11. Ctrl-C during an apply --------------------------------------------------------------


def test_ctrl_c_during_an_apply_says_what_the_file_and_aws_say(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(on_output: Callable[[str], None]) -> None:
        raise KeyboardInterrupt  # the signal arrives while Pulumi applies

    monkeypatch.setattr(world.deployer, "up", interrupted)
    ran = world.cli("advance")
    assert ran.code == 130
    lines = ran.err.splitlines()
    assert lines[0] == (
        "interrupted: advance stopped; Pulumi.prod.yaml says canaryPercent 25, stableVersion 3"
    )
    assert "AWS: the stage canary sends 10% to prod-canary" in lines
    assert any(
        line.startswith("drift: AWS sends the canary 10%") and "means 25%" in line for line in lines
    )
    assert world.account.stage_percent == 10.0
    assert "Traceback" not in ran.err


def test_a_rollback_whose_apply_failed_converges_when_run_again(world: World) -> None:
    world.deployer.fail_next_up()
    failed = world.cli("rollback")
    assert failed.code == 1  # the canary is stopped: only the record failed
    assert "pulumi up failed" in failed.err
    assert (world.account.stage_percent, world.file()) == (0, "0")
    assert world.deployer.outputs()["canaryPercent"] == 10  # the stack still says 10

    again = world.cli("rollback")
    assert again.code == 0, again.err
    assert "re-applied" in again.out
    assert world.deployer.outputs()["canaryPercent"] == 0
    assert world.account.canary is None  # the apply removed the settings, as the file says


def test_watch_says_it_judges_on_lambdas_minutes_when_the_versions_publish_none(
    world: World,
) -> None:
    # The account's versions predate the function's own metrics.
    world.account.traffic.error_rate = CANARY_ERROR_RATE
    said: list[str] = []
    Watch(world.release(said.append, latency_threshold_ms=500.0)).run(
        world.clients, sleep=world.account.sleep, now=world.account.clock
    )
    sources = [line for line in said if line.startswith("evidence:")]
    assert len(sources) == 1  # said once, not every minute
    assert sources[0].startswith("evidence: Lambda's per-minute metrics (")
    assert "publishes no metrics of its own" in sources[0]
