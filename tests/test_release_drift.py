"""Where the stack file, the last deploy and AWS disagree (release.state), and what each step
does about it: report before acting, re-apply instead of skipping ahead, and ``watch`` stopping
when someone else changes the release under it."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from release.aws import AliasWeights, LiveTraffic, StageCanary
from release.commands import CanaryStillLiveError, Release, ReleaseError
from release.config_file import StackConfigFile
from release.judge import JudgeConfig, JudgeState
from release.state import FileSays, StackState
from release.watch import Watch
from tests.conftest import ROOT
from tests.release_fakes import OUTPUTS, FakeDeployer, ServedTraffic
from tests.test_release import T0, Clock, FakeCloudWatch, applied_to, reread, served


@pytest.fixture
def program(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


STAGE_10 = LiveTraffic(stage=StageCanary(10.0, "prod-canary", "d1"))
ALIAS_10 = LiveTraffic(alias=AliasWeights("prod", "3", {"4": 0.1}))


def state(
    live: LiveTraffic,
    percent: float = 10,
    mode: str = "stage",
    stable: str | None = "3",
    **outputs: Any,
) -> StackState:
    return StackState(
        stack="prod",
        file_name="Pulumi.prod.yaml",
        file=FileSays(percent, "alias" if mode == "alias" else "stage", stable),
        outputs={**OUTPUTS, **outputs},
        live=live,
    )


# --- The three sides compared (pure) --------------------------------------------------------


def test_agreeing_sides_have_no_differences() -> None:
    assert state(STAGE_10).differences() == []
    assert state(ALIAS_10, mode="alias", canaryMode="alias").differences() == []
    # A file at 0, deployed: no canary settings, no weights.
    assert state(LiveTraffic(), percent=0, canaryPercent=0).differences() == []


def test_a_file_not_deployed_and_a_change_outside_pulumi_are_told_apart() -> None:
    (undeployed,) = state(STAGE_10, percent=25).differences()
    assert undeployed == (
        "AWS sends the canary 10% (the stage canary sends 10% to prod-canary), "
        "Pulumi.prod.yaml means 25%: the file is not deployed; 'make up STACK=prod' applies it"
    )
    # The last deploy set the file's 10%; AWS serves 0: someone changed it in the console.
    (outside,) = state(LiveTraffic()).differences()
    assert "changed outside Pulumi since the last deploy; 'make up STACK=prod' restores" in outside


def test_an_alias_canary_with_nothing_to_split_means_no_weight() -> None:
    # No pinned version, or the pinned one is the newest: Lambda carries no weight at all.
    unpinned = state(LiveTraffic(), mode="alias", stable=None, canaryMode="alias")
    assert unpinned.expected_percent == 0
    assert unpinned.differences() == []
    promoted = state(LiveTraffic(), mode="alias", canaryMode="alias", canaryVersion="3")
    assert promoted.differences() == []


def test_the_mode_aws_splits_with_decides_and_a_different_file_is_reported() -> None:
    drifted = state(STAGE_10, mode="alias", canaryMode="alias")
    assert drifted.mode == "stage"  # the metrics to read are the stage canary's
    assert any(
        "AWS splits the canary off with the stage's canary settings, Pulumi.prod.yaml says "
        "canaryMode alias" in difference
        for difference in drifted.differences()
    )
    # Nothing served: the last deploy's mode decides, and a file that differs is reported.
    idle = state(LiveTraffic(), percent=0, mode="alias", canaryPercent=0)
    assert idle.mode == "stage"
    assert idle.differences() == [
        "the last deploy used canaryMode stage, Pulumi.prod.yaml says alias: 'make up "
        "STACK=prod' applies it"
    ]


def test_both_mechanisms_at_once_are_reported() -> None:
    both = LiveTraffic(stage=STAGE_10.stage, alias=ALIAS_10.alias)
    differences = state(both).differences()
    assert differences[0].startswith("AWS splits the canary off twice")
    assert "'rollback' stops both" in differences[0]


def test_a_stack_deployed_before_canary_mode_was_exported_falls_back_to_the_file() -> None:
    outputs = {key: value for key, value in OUTPUTS.items() if key != "canaryMode"}
    old = StackState("prod", "Pulumi.prod.yaml", FileSays(0, "alias", "3"), outputs, LiveTraffic())
    assert old.deployed_mode is None
    assert old.mode == "alias"


# --- Steps report drift before acting ---------------------------------------------------------


def release_for(
    program: Path, traffic: ServedTraffic, deployer: FakeDeployer | None = None
) -> tuple[Release, FakeDeployer, list[str]]:
    lines: list[str] = []
    deployer = deployer or applied_to(traffic, program)
    release = Release(
        config=StackConfigFile(program, "event-logger", "prod"),
        deployer=deployer,
        out=lines.append,
        latency_threshold_ms=500,
    )
    return release, deployer, lines


def drift_lines(lines: list[str]) -> str:
    """The drift report, its wrapped lines joined."""
    return " ".join(" ".join(line.split()) for line in lines if line.startswith(("drift", "  ")))


def test_status_shows_what_aws_serves_and_the_drift(program: Path) -> None:
    traffic = ServedTraffic(stage_percent=5.0)  # someone set 5% in the console
    release, _, lines = release_for(program, traffic)
    cloudwatch = FakeCloudWatch([(900, 4, 100, 1)] * 30)
    release.status(served(cloudwatch, traffic), 30, T0 + timedelta(minutes=30))
    assert "AWS: the stage canary sends 5% to prod-canary" in lines
    assert "Pulumi.prod.yaml means 10%: changed outside Pulumi" in drift_lines(lines)
    share = next(line for line in lines if line.strip().startswith("share"))
    assert share.split() == ["share", "95%", "5%"]  # AWS' shares, not the file's


@pytest.mark.parametrize("step", ["start", "promote"])
def test_start_and_promote_report_drift_then_act(program: Path, step: str) -> None:
    traffic = ServedTraffic(stage_percent=None)
    release, deployer, lines = release_for(program, traffic)
    getattr(release, step)(served(None, traffic))
    assert drift_lines(lines).startswith("drift: AWS sends the canary 0%")
    assert deployer.ups == 1


def test_rollback_that_cannot_record_says_what_aws_serves_and_what_to_do(
    program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = ServedTraffic()
    release, deployer, _ = release_for(program, traffic)

    def full_disk(self: StackConfigFile) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StackConfigFile, "save", full_disk)
    with pytest.raises(ReleaseError) as failed:
        release.rollback(served(None, traffic))
    message = str(failed.value)
    assert message.startswith("AWS sends the canary no traffic now, but Pulumi.prod.yaml could")
    assert "No space left on device" in message
    assert "it still says canaryPercent 10, so the next 'make up'" in message
    assert 'Set event-logger:canaryPercent to "0" in it' in message
    assert traffic.stage_percent == 0
    assert deployer.ups == 0


def test_rollback_reads_back_and_says_when_aws_still_serves_the_canary(program: Path) -> None:
    class Reopened(ServedTraffic):
        """Someone (a colleague's ``pulumi up``) reopens the canary right after the patch."""

        def update_stage(self, **request: Any) -> Any:
            answer = super().update_stage(**request)
            self.stage_percent = 10.0
            return answer

    traffic = Reopened()
    release, deployer, _ = release_for(program, traffic)
    with pytest.raises(CanaryStillLiveError, match="reads back 'the stage canary sends 10%"):
        release.rollback(served(None, traffic))
    assert reread(program).get("canaryPercent") == "10"
    assert deployer.ups == 0


# --- Watch stops when someone else changes the release ------------------------------------------


def watch(
    release: Release, traffic: ServedTraffic, script: list[tuple[int, int, int, int]], **kw: Any
) -> str:
    clock = kw.pop("clock", Clock())
    return Watch(release).run(
        served(kw.pop("cloudwatch", FakeCloudWatch(script)), traffic),
        kw.pop("max_minutes", 60),
        now=clock,
        sleep=kw.pop("sleep", clock.sleep),
    )


GOOD = [(2700, 13, 300, 1)] * 600
BAD = [(2700, 13, 300, 30)] * 600


def test_watch_refuses_to_start_when_aws_does_not_serve_the_files_share(program: Path) -> None:
    traffic = ServedTraffic(stage_percent=25.0)
    release, deployer, lines = release_for(program, traffic)
    with pytest.raises(ReleaseError, match="'advance' applies the file's share again"):
        watch(release, traffic, GOOD)
    assert "AWS sends the canary 25%" in drift_lines(lines)
    assert deployer.ups == 0


def test_watch_stops_when_a_colleague_edits_the_file(program: Path) -> None:
    traffic = ServedTraffic()
    release, deployer, _ = release_for(program, traffic)
    clock = Clock()

    def edit_after_two_minutes(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now == T0 + timedelta(minutes=2):
            colleague = StackConfigFile(program, "event-logger", "prod")
            colleague.set("stableVersion", "2")
            colleague.save()

    release.judge_config = JudgeConfig(min_canary_requests=10**9)  # undecided by the metrics
    with pytest.raises(CanaryStillLiveError) as stopped:
        watch(release, traffic, GOOD, clock=clock, sleep=edit_after_two_minutes)
    message = str(stopped.value)
    assert "someone else changed the release (Pulumi.prod.yaml: stableVersion None -> '2')" in (
        message
    )
    assert "The canary still takes 10% (the stage canary sends 10% to prod-canary)" in message
    assert "'make release-watch STACK=prod' judges it afresh" in message
    assert clock.now == T0 + timedelta(minutes=2)  # at the first period after the edit
    assert deployer.ups == 0


def test_watch_stops_when_someone_rolls_back_in_aws(program: Path) -> None:
    traffic = ServedTraffic()
    release, deployer, _ = release_for(program, traffic)
    clock = Clock()

    def console_rollback(seconds: float) -> None:
        clock.sleep(seconds)
        traffic.stage_percent = 0.0

    # The metrics still look good (minutes from before the rollback): nothing is promoted.
    with pytest.raises(ReleaseError) as stopped:
        watch(release, traffic, GOOD, clock=clock, sleep=console_rollback)
    assert not isinstance(stopped.value, CanaryStillLiveError)
    assert str(stopped.value) == (
        "stopped watching: someone else changed the release (AWS: the stage canary sends 10% "
        "to prod-canary -> no request reaches a canary); AWS sends the canary no traffic now"
    )
    assert reread(program).get("canaryPercent") == "10"
    assert deployer.ups == 0


def test_watch_still_rolls_back_a_failing_canary_someone_changed(program: Path) -> None:
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    clock = Clock()

    def raised_by_hand(seconds: float) -> None:
        clock.sleep(seconds)
        # The second minute judged (each two minutes old), when the evidence reaches a rollback.
        if clock.now == T0 + timedelta(minutes=4):
            traffic.stage_percent = 20.0

    assert watch(release, traffic, BAD, clock=clock, sleep=raised_by_hand) == "ROLLBACK"
    assert any(line.startswith("someone else changed the release (AWS:") for line in lines)
    assert "UpdateStage" in traffic.calls
    assert reread(program).get("canaryPercent") == "0"


def test_watch_stops_before_advancing_when_the_versions_changed(program: Path) -> None:
    traffic = ServedTraffic()
    deployer = applied_to(traffic, program)
    release, _, _ = release_for(program, traffic, deployer)
    release.judge_config = JudgeConfig(min_canary_requests=100)
    clock = Clock()

    def new_code_deployed(seconds: float) -> None:
        clock.sleep(seconds)
        deployer.stack_outputs = {**OUTPUTS, "canaryVersion": "5"}

    with pytest.raises(CanaryStillLiveError, match="canaryVersion v4 -> v5"):
        watch(release, traffic, GOOD, clock=clock, sleep=new_code_deployed)
    assert reread(program).get("canaryPercent") == "10"
    assert deployer.ups == 0


def test_watch_stops_when_its_own_apply_does_not_reach_aws(program: Path) -> None:
    traffic = ServedTraffic()
    release, deployer, _ = release_for(program, traffic, FakeDeployer())  # up changes nothing
    release.judge_config = JudgeConfig(min_canary_requests=100)
    with pytest.raises(CanaryStillLiveError) as stopped:
        watch(release, traffic, GOOD)
    assert str(stopped.value).startswith(
        "stopped watching: canaryPercent 25 is applied, but AWS sends the canary 10%"
    )
    assert deployer.ups == 1


def test_watch_without_apply_stops_after_editing_and_still_stops_a_failing_canary(
    program: Path,
) -> None:
    traffic = ServedTraffic()
    release, deployer, lines = release_for(program, traffic)
    release.apply = False
    release.judge_config = JudgeConfig(min_canary_requests=100)
    assert watch(release, traffic, GOOD) == "PROMOTE"
    assert reread(program).get("canaryPercent") == "25"
    assert lines[-1] == "stopped watching: watch again once the new share is deployed"
    assert (traffic.stage_percent, deployer.ups) == (10.0, 0)

    # A failing canary is stopped in AWS (the only way the decision takes effect in time);
    # the file records it for review.
    traffic = ServedTraffic()
    release, deployer, _ = release_for(tmp := program, traffic)
    release.config.set("canaryPercent", "10")
    release.config.save()
    release.apply = False
    assert watch(release, traffic, BAD) == "ROLLBACK"
    assert traffic.stage_percent == 0
    assert reread(tmp).get("canaryPercent") == "0"
    assert deployer.ups == 0


def test_changed_by_others_names_only_what_someone_else_changed(program: Path) -> None:
    mine = StackConfigFile(program, "event-logger", "prod")
    mine.set("canaryPercent", "25")  # an unsaved edit of mine is not someone else's
    assert mine.changed_by_others("canaryPercent", "stableVersion") == []
    theirs = StackConfigFile(program, "event-logger", "prod")
    theirs.set("canaryPercent", "0")
    theirs.save()
    assert mine.changed_by_others("canaryPercent", "stableVersion") == ["canaryPercent '10' -> '0'"]


def test_status_reads_the_metrics_of_the_mode_aws_splits_with_not_the_files(
    program: Path,
) -> None:
    # Finding 9: the file says alias, the stack serves a stage canary. Reading the weighted
    # alias' versions would show the canary no requests while it serves 10%.
    config = StackConfigFile(program, "event-logger", "prod")
    config.set("canaryMode", "alias")
    config.save()
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    cloudwatch = FakeCloudWatch([(900, 4, 100, 1)] * 10)
    release.status(served(cloudwatch, traffic), 10, T0 + timedelta(minutes=10))
    (window,) = cloudwatch.requests
    canary = next(q for q in window["MetricDataQueries"] if q["Id"] == "canary_requests")
    resource = {d["Name"]: d["Value"] for d in canary["MetricStat"]["Metric"]["Dimensions"]}
    assert resource == {
        "FunctionName": OUTPUTS["functionName"],
        "Resource": f"{OUTPUTS['functionName']}:prod-canary",
    }
    assert "canaryMode alias: 'make up STACK=prod' switches it" in drift_lines(lines)
    requests = next(line for line in lines if line.strip().startswith("requests"))
    assert requests.split()[-1] == "800"  # the canary's requests, seen


# --- One judgement per release: carried across steps and restarts ------------------------------


def progress_file(program: Path) -> Path:
    return program / ".Pulumi.prod.yaml.watch.json"


def test_an_interrupted_watch_resumes_with_its_evidence(program: Path) -> None:
    traffic = ServedTraffic()
    release, _, _ = release_for(program, traffic)
    release.judge_config = JudgeConfig(min_canary_requests=100)
    clock = Clock()

    def ctrl_c_at_minute_4(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now == T0 + timedelta(minutes=4):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch(release, traffic, GOOD, clock=clock, sleep=ctrl_c_at_minute_4)
    saved = json.loads(progress_file(program).read_text())
    assert saved["judgedUntil"] == (T0 + timedelta(minutes=1)).isoformat()
    assert saved["judge"]["tests"]["errors"]["canary_requests"] == 300

    release, _, lines = release_for(program, traffic)
    release.judge_config = JudgeConfig(min_canary_requests=100)
    assert watch(release, traffic, GOOD, clock=clock, max_minutes=600) == "PROMOTE"
    assert lines[0] == (
        "resuming this release's evidence, judged until 12:01 UTC: step 1, 300 canary requests"
    )
    # Nothing judged twice: the first read after the restart starts where the judge stopped
    # (12:01), so at 12:05 it adds 12:01 and 12:02 to the 300 requests saved.
    first = next(line for line in lines if line.startswith("["))
    assert "canary 0.33% errors of 900 |" in first
    assert not progress_file(program).exists()  # the release ended: its progress goes


def test_a_progress_of_another_release_is_not_resumed(program: Path) -> None:
    progress_file(program).write_text(
        json.dumps(
            {
                "format": 1,
                "liveVersion": "2",
                "canaryVersion": "3",
                "percent": 10,
                "thresholdMs": 500,
                "judgedUntil": T0.isoformat(),
                "unverified": [],
                "judge": JudgeState(JudgeConfig()).to_dict(),
            }
        )
    )
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    assert watch(release, traffic, BAD) == "ROLLBACK"
    assert lines[0] == (
        "judging afresh: the saved progress is not this release's (it is v2 against v3, the "
        "stack now v3 against v4)"
    )


def test_the_evidence_carries_across_steps(program: Path) -> None:
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    release.judge_config = JudgeConfig(min_canary_requests=100)
    assert watch(release, traffic, GOOD) == "PROMOTE"
    advancing = [i for i, line in enumerate(lines) if line.startswith("advancing:")]
    first_step = advancing[0]
    # The first step gathers the evidence; the next ones need only their own 100 requests.
    assert "Promote step 2" in " ".join(lines[advancing[1] : advancing[1] + 3])
    assert advancing[1] - first_step < first_step


def test_an_undecided_step_says_how_long_the_evidence_needs_and_watches_on(
    program: Path,
) -> None:
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    # A 5-minute bake, 30 canary requests a minute, live at 0.5% errors: a decision takes
    # longer than the bake, but well under a day.
    release.judge_config = JudgeConfig(max_periods=5)
    assert watch(release, traffic, [(270, 1, 30, 0)] * 600, max_minutes=30) == "CONTINUE"
    said = [line for line in lines if "undecided after its bake" in line]
    assert len(said) == 1  # once per step
    assert said[0].startswith("step 1 is undecided after its bake; at this traffic the evidence")
    assert lines[-1] == "stopped watching after 30 min with no decision"


def test_a_promotion_without_the_evidence_is_said_and_noted_in_the_stack_file(
    program: Path,
) -> None:
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    release.judge_config = JudgeConfig(max_periods=3, on_timeout="PROMOTE")
    release.steps = (10.0,)
    assert watch(release, traffic, [(270, 1, 30, 0)] * 600) == "PROMOTE"
    assert "UNVERIFIED: step 1 passes without the evidence" in lines
    text = (program / "Pulumi.prod.yaml").read_text()
    note = "  # release note: v4 promoted UNVERIFIED on "
    assert note in text
    assert text.index(note) < text.index("\n  event-logger:stableVersion")
    # A promotion on evidence takes the note away.
    release, _, _ = release_for(program, traffic)
    release.promote()
    assert "release note" not in (program / "Pulumi.prod.yaml").read_text()


def test_each_step_says_how_long_it_needs_once_it_sees_the_traffic(program: Path) -> None:
    traffic = ServedTraffic()
    release, _, lines = release_for(program, traffic)
    release.judge_config = JudgeConfig(min_canary_requests=100)
    assert watch(release, traffic, GOOD) == "PROMOTE"
    plans = [line for line in lines if "a canary as good as live passes in" in line]
    # Step 1 gathers the evidence; the later ones, carrying it, pass in their first minute,
    # before a plan is worth saying.
    assert [line.split(":")[0] for line in plans] == ["step 1 at 10%"]
    assert "min more (a plan: Wald's average, not a promise)" in plans[0]


def test_an_undecided_step_whose_traffic_dries_up_stops_saying_so(program: Path) -> None:
    traffic = ServedTraffic()
    release, deployer, lines = release_for(program, traffic)
    release.judge_config = JudgeConfig(max_periods=5)
    # Traffic for the bake and a little after, then none reaches the canary any more.
    script = [(270, 1, 30, 0)] * 8 + [(270, 1, 0, 0)] * 600
    with pytest.raises(CanaryStillLiveError, match="undecidable at this traffic"):
        watch(release, traffic, script)
    assert sum("undecided after its bake" in line for line in lines) == 1
    assert (traffic.stage_percent, deployer.ups) == (10.0, 0)
