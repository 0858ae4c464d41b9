"""The release tool's command line as its users meet it: the options each command takes, exit
statuses in a real process, what it loads to start, status as JSON, Ctrl-C in watch, and what
it says when AWS credentials or the region are missing."""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import release
from release import __main__ as cli
from release.aws import AwsError
from release.commands import AwsClients
from release.config_file import NotWritableError, StackConfigFile
from release.lock import stack_lock
from release.watch import Watch
from tests.release_fakes import OUTPUTS, FakeDeployer, ServedTraffic

# Not tests.conftest's ROOT: that module loads the component's test kit (and pulumi_aws) into
# the processes below that check what the tool loads.
ROOT = Path(__file__).resolve().parent.parent
# Each side's requests, errors, throttles and percent of requests within the slow threshold.
PER_MINUTE = {"requests": 900.0, "errors": 1.0, "throttles": 0.0, "fast": 99.0}


class SteadyCloudWatch:
    """Every per-minute metric the same in each minute asked for; p50 40 ms, p99 400 ms."""

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        start: datetime = request["StartTime"]
        minutes = int((request["EndTime"] - start).total_seconds()) // 60
        results = []
        for query in request["MetricDataQueries"]:
            suffix = query["Id"].rpartition("_")[2]
            if suffix in PER_MINUTE:
                stamps = [start + timedelta(minutes=minute) for minute in range(minutes)]
                values = [PER_MINUTE[suffix]] * minutes
            else:
                stamps, values = [start], [40.0 if suffix == "p50" else 400.0]
            results.append({"Id": query["Id"], "Timestamps": stamps, "Values": values})
        return {"MetricDataResults": results}


def install_fakes(interrupt_watch: bool = False, slow_up: bool = False) -> None:
    """Stand-ins for Pulumi and AWS in this process; with ``interrupt_watch``, Ctrl-C arrives
    in the first wait of watch's loop; with ``slow_up``, an apply says "APPLYING" on stdout
    and takes a minute (for a signal to cut it short)."""

    def slow() -> None:
        print("APPLYING", flush=True)
        time.sleep(60)

    cli._deployer = lambda program, stack: FakeDeployer(on_up=slow if slow_up else None)
    traffic = ServedTraffic()
    cli._clients = lambda region: AwsClients(SteadyCloudWatch(), traffic, traffic)
    if interrupt_watch:

        def ctrl_c(seconds: float) -> None:
            raise KeyboardInterrupt

        Watch.run = functools.partialmethod(Watch.run, sleep=ctrl_c)  # type: ignore[assignment,method-assign]


# A process running the tool's main() with the fakes, reporting which Pulumi packages it loaded.
FAKED_MAIN = """
import sys
from tests.test_cli import install_fakes
install_fakes(interrupt_watch={interrupt}, slow_up={slow_up})
from release.__main__ import main
code = main(sys.argv[1:])
print("loaded:", [m for m in ("pulumi", "pulumi_aws") if m in sys.modules], file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def program(tmp_path: Path) -> Path:
    folder = tmp_path / "program"
    folder.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def run_tool(
    *argv: str, cwd: Path, python_options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, *python_options, "-m", "release", *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )


def faked_main(*argv: str, interrupt: bool = False, slow_up: bool = False) -> list[str]:
    return [sys.executable, "-c", FAKED_MAIN.format(interrupt=interrupt, slow_up=slow_up), *argv]


def run_faked(*argv: str, interrupt: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter
        faked_main(*argv, interrupt=interrupt),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


# --- Exit statuses, in a real process ---------------------------------------------------------


def test_help_and_version_start_without_the_pulumi_sdk(tmp_path: Path) -> None:
    result = run_tool("--help", cwd=tmp_path, python_options=("-X", "importtime"))
    assert result.returncode == 0, result.stderr
    assert "watch" in result.stdout
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()}
    assert "release.commands" in imported  # the measurement saw the tool's own modules
    assert not {name for name in imported if name.split(".")[0] in {"pulumi", "pulumi_aws"}}
    version = run_tool("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"python -m release {release.__version__}\n")


def test_a_step_done_exits_0_from_the_program_folder(program: Path) -> None:
    result = run_tool("advance", "--stack", "prod", "--no-apply", cwd=program)
    assert result.returncode == 0, result.stderr
    assert "canaryPercent 10 -> 25" in result.stdout
    assert 'event-logger:canaryPercent: "25"' in (program / "Pulumi.prod.yaml").read_text()


def test_a_step_that_fails_exits_1(program: Path) -> None:
    # The dev stack's canary already gets nothing.
    result = run_tool(
        "rollback", "--stack", "dev", "--no-apply", "--program", str(program), cwd=ROOT
    )
    assert result.returncode == 1
    assert result.stderr == "error: canaryPercent is already 0: no traffic reaches the canary\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "--stack", "prod", "--steps", "10,20"], "unrecognized arguments: --steps"),
        (["launch", "--stack", "prod"], "invalid choice: 'launch'"),
        (["watch"], "the following arguments are required: --stack"),
        # A folder that is not the program's.
        (["status", "--stack", "prod"], "has no Pulumi.yaml: run this in the program's folder"),
    ],
)
def test_a_wrong_command_line_exits_2_with_the_usage(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    result = run_tool(*argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m release")
    assert message in result.stderr


def test_ctrl_c_in_watch_stops_with_one_line_and_130(program: Path) -> None:
    result = run_faked(
        "watch", "--stack", "prod", "--program", str(program), "--latency-threshold-ms", "500",
        interrupt=True,
    )  # fmt: skip
    assert result.returncode == 130, result.stderr
    *said, loaded = result.stderr.splitlines()  # and no traceback
    assert said == [
        "interrupted: watch stopped; Pulumi.prod.yaml says canaryPercent 10, stableVersion unset",
        "reading what AWS serves now (Ctrl-C again to skip) ...",
        "AWS: the stage canary sends 10% to prod-canary",
        "the canary is live and unwatched: 'make release-watch STACK=prod' resumes, "
        "'make release-rollback STACK=prod' stops it",
    ]
    assert loaded.startswith("loaded:")  # main() returned
    assert result.stdout.startswith("watching the canary at 10%")


def test_status_runs_without_pulumi_aws(program: Path) -> None:
    result = run_faked("status", "--stack", "prod", "--program", str(program))
    assert result.returncode == 0, result.stderr
    assert "verdict:" in result.stdout
    # The Pulumi SDK comes with the program's config reader (canaryMode's default); the
    # provider does not.
    assert result.stderr.splitlines()[-1] == "loaded: ['pulumi']"


# --- Each command's own options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["start", "--no-apply"], {"apply": False}),
        (["advance", "--steps", "5,50"], {"steps": (5.0, 50.0), "apply": True}),
        (["promote", "--no-apply"], {"apply": False}),
        (["check"], {}),
        (["rollback"], {"apply": True}),
        (
            ["status", "--minutes", "90", "--format", "json", "--on-timeout", "ROLLBACK"],
            {"minutes": 90, "format": "json", "on_timeout": "ROLLBACK"},
        ),
        (
            [
                "watch",
                "--max-minutes",
                "45",
                "--bake-minutes",
                "15",
                "--latency-threshold-ms",
                "300",
            ],
            {"max_minutes": 45, "bake_minutes": 15, "latency_threshold_ms": 300.0},
        ),
    ],
)
def test_each_command_takes_its_options(argv: list[str], expected: dict[str, Any]) -> None:
    args = cli.build_parser().parse_args([*argv, "--stack", "prod", "--program", "/p"])
    assert (args.command, args.stack, args.program) == (argv[0], "prod", Path("/p"))
    assert {name: getattr(args, name) for name in expected} == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--steps", "10,20"],
        ["rollback", "--steps", "10,20"],
        ["status", "--no-apply"],
        ["advance", "--minutes", "5"],
        ["promote", "--max-minutes", "5"],
        ["promote", "--steps", "20,40"],
        ["check", "--no-apply"],
        ["watch", "--format", "json"],
    ],
)
def test_a_command_refuses_the_options_of_others(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([*argv, "--stack", "prod"])
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_every_command_has_a_description() -> None:
    parser = cli.build_parser()
    (commands,) = [action for action in parser._actions if action.dest == "command"]
    assert isinstance(commands, argparse._SubParsersAction)
    assert set(commands.choices) == {
        "status",
        "start",
        "check",
        "advance",
        "promote",
        "rollback",
        "watch",
    }
    for name, sub in commands.choices.items():
        assert sub.description, name
        assert len(sub.description) > 40, name


# --- status --format json ---------------------------------------------------------------------


def test_status_json_is_one_object_on_stdout(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_deployer", lambda program, stack: FakeDeployer())
    traffic = ServedTraffic()
    monkeypatch.setattr(
        cli, "_clients", lambda region: AwsClients(SteadyCloudWatch(), traffic, traffic)
    )
    argv = ["status", "--stack", "prod", "--program", str(program), "--format", "json"]
    assert cli.main([*argv, "--minutes", "12"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert captured.err.startswith("slow: over 400 ms")  # progress stays off stdout
    assert set(report) == {
        "stack", "from", "until", "canaryMode", "latencyThresholdMs", "aws", "file", "drift",
        "live", "canary", "verdict",
    }  # fmt: skip
    assert report["aws"] == {
        "mode": "stage",
        "canaryPercent": 10.0,
        "canary": "prod-canary",
        "describe": "the stage canary sends 10% to prod-canary",
    }
    assert report["file"] == {"canaryPercent": 10.0, "canaryMode": "stage", "stableVersion": None}
    assert report["drift"] == []
    assert (report["stack"], report["canaryMode"], report["latencyThresholdMs"]) == (
        "prod",
        "stage",
        400.0,
    )
    # 12 minutes less the 2 CloudWatch is still filling in.
    minutes = datetime.fromisoformat(report["until"]) - datetime.fromisoformat(report["from"])
    assert minutes.total_seconds() == 600
    assert report["live"] == {
        "alias": "prod",
        "version": "3",
        "percent": 90.0,
        "requests": 9000,
        "errors": 10,
        "errorRate": 10 / 9000,
        "throttles": 0,
        "p50Ms": 40.0,
        "p99Ms": 400.0,
    }
    assert (report["canary"]["alias"], report["canary"]["version"]) == ("prod-canary", "4")
    assert report["canary"]["percent"] == 10.0
    verdict = report["verdict"]
    assert verdict["decision"] in {"PROMOTE", "CONTINUE", "ROLLBACK"}
    assert isinstance(verdict["periods"], int)
    assert verdict["reason"]
    assert all(isinstance(value, float | int) for value in verdict["evidence"].values())


# --- AWS credentials and region ---------------------------------------------------------------


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or region from the environment, files or the instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(cli, "_deployer", lambda program, stack: FakeDeployer())


@pytest.mark.usefixtures("no_aws_environment")
def test_missing_credentials_say_how_to_provide_them(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["status", "--stack", "prod", "--program", str(program)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(
        "error: no AWS credentials (Unable to locate credentials): set AWS_PROFILE"
    )
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in err
    assert len(err.splitlines()) == 1


@pytest.mark.usefixtures("no_aws_environment")
def test_a_missing_region_says_where_to_set_it(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = program / "Pulumi.prod.yaml"
    text = stack_file.read_text()
    stack_file.write_text(
        "".join(line for line in text.splitlines(True) if "aws:region" not in line)
    )
    assert cli.main(["watch", "--stack", "prod", "--program", str(program)]) == 1
    assert capsys.readouterr().err == (
        "error: no AWS region: set aws:region in Pulumi.prod.yaml ('pulumi config set "
        "aws:region <region> --stack prod'), or AWS_REGION\n"
    )


@pytest.mark.usefixtures("no_aws_environment")
def test_a_profile_that_does_not_exist_is_named(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "prdo")
    assert cli.main(["status", "--stack", "prod", "--program", str(program)]) == 1
    assert capsys.readouterr().err == (
        "error: The config profile (prdo) could not be found: set AWS_PROFILE to a profile of "
        "~/.aws/config, or unset it\n"
    )


# --- One operator at a time, and the truth about a failed AWS step ------------------------------


def test_a_second_operator_is_refused_while_a_step_holds_the_stack(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with stack_lock(program / "Pulumi.prod.yaml", "prod", command="release watch"):
        code = cli.main(["rollback", "--stack", "prod", "--program", str(program), "--no-apply"])
    assert code == 1
    error = capsys.readouterr().err
    assert "stack prod is being changed by" in error
    assert "release watch" in error


def test_nothing_reaches_aws_when_the_stack_file_cannot_be_written(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unwritable(self: StackConfigFile) -> None:
        raise NotWritableError("Pulumi.prod.yaml is read-only")

    reached: list[str] = []
    monkeypatch.setattr(StackConfigFile, "check_writable", unwritable)
    monkeypatch.setattr(cli, "run", lambda *_: reached.append("aws"))
    assert cli.main(["rollback", "--stack", "prod", "--program", str(program)]) == 1
    assert reached == []
    assert "read-only" in capsys.readouterr().err


class FailingTraffic(ServedTraffic):
    """Served traffic whose ``failing`` call raises ``error`` (as release.aws classifies)."""

    def __init__(self, failing: str, error: AwsError, stage_percent: float | None = 10) -> None:
        super().__init__(stage_percent)
        self.failing, self.error = failing, error

    def __getattribute__(self, name: str) -> Any:
        if name == object.__getattribute__(self, "failing"):
            raise object.__getattribute__(self, "error")
        return super().__getattribute__(name)


UNKNOWN = AwsError("unreachable", "no answer from API Gateway; the outcome is unknown")
DENIED = AwsError("refused", "AccessDenied: not allowed")
THROTTLED = AwsError("throttled", "reading stage prod: AWS throttled the call")


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        pytest.param(
            FailingTraffic("update_stage", UNKNOWN),
            # The stop re-reads the stage; its error says what that showed.
            [
                f"error: {UNKNOWN.message}; re-read: the stage canary sends 10% to prod-canary",
                "the canary still takes 10% (the stage canary sends 10% to prod-canary): "
                "'make release-rollback STACK=prod' stops it",
            ],
            id="stop-unknown",
        ),
        pytest.param(
            FailingTraffic("update_stage", DENIED),
            [
                f"error: {DENIED.message}",
                "the canary still takes 10% (the stage canary sends 10% to prod-canary): "
                "'make release-rollback STACK=prod' stops it",
            ],
            id="stop-refused",
        ),
        pytest.param(
            FailingTraffic("get_stage", THROTTLED),
            [
                f"error: {THROTTLED.message}",
                "the canary may still take traffic: AWS could not be read; 'make "
                "release-status STACK=prod' shows it once it can",
            ],
            id="first-read-throttled",
        ),
    ],
)
def test_a_failed_rollback_says_what_is_true_and_exits_3_while_the_canary_may_be_live(
    program: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fault: FailingTraffic,
    said: list[str],
) -> None:
    monkeypatch.setattr(cli, "_deployer", lambda *_: FakeDeployer())
    monkeypatch.setattr(cli, "_clients", lambda _: AwsClients(None, fault, fault))
    assert cli.main(["rollback", "--stack", "prod", "--program", str(program)]) == 3
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("AWS")]
    assert errors == said
    assert 'canaryPercent: "10"' in (program / "Pulumi.prod.yaml").read_text()


def test_a_rollback_with_nothing_to_stop_exits_1_or_applies_an_unapplied_0(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = ServedTraffic(stage_percent=None)
    deployer = FakeDeployer({**OUTPUTS, "canaryPercent": 0})
    monkeypatch.setattr(cli, "_deployer", lambda *_: deployer)
    monkeypatch.setattr(cli, "_clients", lambda _: AwsClients(None, traffic, traffic))
    (program / "Pulumi.prod.yaml").write_text(
        (program / "Pulumi.prod.yaml").read_text().replace('Percent: "10"', 'Percent: "0"')
    )
    assert cli.main(["rollback", "--stack", "prod", "--program", str(program)]) == 1
    assert capsys.readouterr().err == (
        "error: no traffic reaches the canary: AWS sends it none and canaryPercent is 0\n"
    )
    assert deployer.ups == 0
    # An earlier rollback stopped AWS and edited the file, and its apply failed: the stack
    # still says 10. Run again, the rollback converges by applying the file.
    deployer.stack_outputs["canaryPercent"] = 10
    assert cli.main(["rollback", "--stack", "prod", "--program", str(program)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "drift: the last deploy set canaryPercent 10, Pulumi.prod.yaml says 0" in out
    assert "canaryPercent 0 (unchanged, re-applied)" in out
    assert deployer.ups == 1


def test_sigint_during_an_apply_stops_cleanly_and_says_what_aws_serves(program: Path) -> None:
    # A real process and a real signal: the apply of advance's 10 -> 25 is cut short.
    child = subprocess.Popen(  # noqa: S603 - our own interpreter
        faked_main("advance", "--stack", "prod", "--program", str(program), slow_up=True),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == "APPLYING":
            break
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    *said, loaded = stderr.splitlines()  # and no traceback
    assert said == [
        "interrupted: advance stopped; Pulumi.prod.yaml says canaryPercent 25, stableVersion unset",
        "reading what AWS serves now (Ctrl-C again to skip) ...",
        "AWS: the stage canary sends 10% to prod-canary",
        "drift: AWS sends the canary 10% (the stage canary sends 10% to prod-canary), "
        "Pulumi.prod.yaml means 25%: the file is not deployed; 'make up STACK=prod' applies it",
    ]
    assert loaded.startswith("loaded:")
    assert 'event-logger:canaryPercent: "25"' in (program / "Pulumi.prod.yaml").read_text()


class Operators:
    """Two operators' commands through main() on threads, sharing one faked AWS and stack."""

    def __init__(self, program: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.program = program
        self.traffic = ServedTraffic()
        self.codes: dict[str, int] = {}

        def apply_the_file() -> None:
            config = StackConfigFile(program, "event-logger", "prod")
            self.traffic.deploy(float(config.get("canaryPercent") or 0))

        self.deployer = FakeDeployer(on_up=apply_the_file)
        monkeypatch.setattr(cli, "_deployer", lambda *_: self.deployer)
        monkeypatch.setattr(
            cli, "_clients", lambda _: AwsClients(SteadyCloudWatch(), self.traffic, self.traffic)
        )

    def run(self, name: str, *argv: str) -> threading.Thread:
        def command() -> None:
            self.codes[name] = cli.main([*argv, "--stack", "prod", "--program", str(self.program)])

        thread = threading.Thread(target=command, name=name)
        thread.start()
        return thread

    def file_percent(self) -> str | None:
        return StackConfigFile(self.program, "event-logger", "prod").get("canaryPercent")


def test_a_rollback_while_watch_waits_is_not_undone_by_the_watch(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding 1: B rolls back at 12:05 while watch runs; watch must not then advance 10 -> 25
    # on minutes from before the rollback.
    operators = Operators(program, monkeypatch)
    meet, rolled_back = threading.Barrier(2), threading.Event()
    clock = {"now": datetime(2026, 11, 30, 12, 0, tzinfo=UTC)}

    def minutes_pass(seconds: float) -> None:
        clock["now"] += timedelta(seconds=seconds)
        if clock["now"].minute == 5:
            meet.wait(timeout=10)  # watch is between two periods, holding no lock
            rolled_back.wait(timeout=10)

    monkeypatch.setattr(
        Watch,
        "run",
        functools.partialmethod(Watch.run, now=lambda: clock["now"], sleep=minutes_pass),
    )
    watcher = operators.run("watch", "watch", "--latency-threshold-ms", "500")
    meet.wait(timeout=10)
    operators.run("rollback", "rollback").join(timeout=10)
    rolled_back.set()
    watcher.join(timeout=10)
    assert operators.codes == {"rollback": 0, "watch": 1}
    assert operators.file_percent() == "0"
    assert not operators.traffic.stage_percent
    err = capsys.readouterr().err
    assert "stopped watching: someone else changed the release" in err
    assert "AWS sends the canary no traffic now" in err


def test_advance_racing_a_rollback_is_refused_and_changes_nothing(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding 1: advance racing rollback ended with both at 25%. The rollback holds the stack
    # (its apply is slow); the advance is refused, naming it.
    operators = Operators(program, monkeypatch)
    applying, finish = threading.Event(), threading.Event()
    apply_the_file = operators.deployer.on_up
    assert apply_the_file is not None

    def slow_apply() -> None:
        applying.set()
        finish.wait(timeout=10)
        apply_the_file()

    operators.deployer.on_up = slow_apply
    rollback = operators.run("rollback", "rollback")
    assert applying.wait(timeout=10)
    operators.run("advance", "advance").join(timeout=10)
    finish.set()
    rollback.join(timeout=10)
    assert operators.codes == {"advance": 1, "rollback": 0}
    err = capsys.readouterr().err
    assert "stack prod is being changed by" in err
    assert "'release rollback'" in err
    assert operators.file_percent() == "0"
    assert not operators.traffic.stage_percent
    assert operators.deployer.ups == 1
