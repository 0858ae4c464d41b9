"""The release tool's stack-file edits (atomic, faithful, merged) and its per-stack lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from release import progress
from release.aws import Minute, TrustedWindow, VersionSummary
from release.config_file import (
    ConfigFileError,
    ConflictError,
    NotWritableError,
    StackConfigFile,
)
from release.judge import JudgeConfig, JudgeState, Period
from release.lock import StackLockedError, lock_path, stack_lock
from tests.conftest import ROOT


@pytest.fixture
def program(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def stack_file(program: Path) -> Path:
    return program / "Pulumi.prod.yaml"


def open_prod(program: Path) -> StackConfigFile:
    return StackConfigFile(program, "event-logger", "prod")


def write_config(program: Path, body: str) -> None:
    stack_file(program).write_text("config:\n" + textwrap.indent(textwrap.dedent(body), "  "))


# --- Faithful writes ------------------------------------------------------------------------


def test_a_crlf_file_with_a_bom_changes_in_one_line_only(program: Path) -> None:
    original = stack_file(program).read_bytes()
    crlf = b"\xef\xbb\xbf" + original.replace(b"\n", b"\r\n")
    stack_file(program).write_bytes(crlf)
    config = open_prod(program)
    config.set("canaryPercent", "25")
    config.save()
    edited = stack_file(program).read_bytes()
    assert edited.startswith(b"\xef\xbb\xbf")
    assert edited.count(b"\r\n") == crlf.count(b"\r\n")
    assert b"\n" not in edited.replace(b"\r\n", b"")
    changed = [
        (old, new)
        for old, new in zip(crlf.split(b"\r\n"), edited.split(b"\r\n"), strict=True)
        if old != new
    ]
    assert changed == [
        (b'  event-logger:canaryPercent: "10"', b'  event-logger:canaryPercent: "25"')
    ]


def test_the_file_keeps_its_permission_bits(program: Path) -> None:
    stack_file(program).chmod(0o640)
    config = open_prod(program)
    config.set("canaryPercent", "25")
    config.save()
    assert stack_file(program).stat().st_mode & 0o777 == 0o640


def test_a_colleagues_edit_of_another_key_is_kept(program: Path) -> None:
    mine = open_prod(program)
    colleague = open_prod(program)
    colleague.set("stableVersion", "3")
    colleague.save()
    mine.set("canaryPercent", "25")
    mine.save()
    after = open_prod(program)
    assert (after.get("canaryPercent"), after.get("stableVersion")) == ("25", "3")


def test_a_colleagues_change_of_the_same_key_is_not_overwritten(program: Path) -> None:
    watch = open_prod(program)  # read while the canary was at 10
    rollback = open_prod(program)
    rollback.set("canaryPercent", "0")
    rollback.save()
    before = stack_file(program).read_bytes()
    watch.set("canaryPercent", "25")
    with pytest.raises(
        ConflictError,
        match=r"event-logger:canaryPercent was '10' when read, is '0' now \(line \d+\), "
        r"this edit sets '25'",
    ):
        watch.save()
    assert stack_file(program).read_bytes() == before


def test_the_same_change_made_twice_is_no_conflict(program: Path) -> None:
    first, second = open_prod(program), open_prod(program)
    first.set("canaryPercent", "0")
    first.save()
    second.set("canaryPercent", "0")
    second.save()
    assert open_prod(program).get("canaryPercent") == "0"


# --- Atomic writes --------------------------------------------------------------------------


def test_a_write_interrupted_before_the_rename_leaves_the_old_file(
    program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = stack_file(program).read_bytes()

    def interrupted(source: str, target: object) -> None:
        assert Path(source).read_bytes() != before  # the new content was written in full
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    config = open_prod(program)
    config.set("canaryPercent", "25")
    with pytest.raises(KeyboardInterrupt):
        config.save()
    assert stack_file(program).read_bytes() == before
    assert sorted(path.name for path in program.iterdir()) == ["Pulumi.prod.yaml", "Pulumi.yaml"]


def test_a_process_killed_between_write_and_rename_leaves_the_old_file(program: Path) -> None:
    before = stack_file(program).read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from release.config_file import StackConfigFile
        os.replace = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
        config = StackConfigFile(Path({str(program)!r}), "event-logger", "prod")
        config.set("canaryPercent", "25")
        config.save()
    """)
    child = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=ROOT, check=False
    )
    assert child.returncode == -signal.SIGKILL
    assert stack_file(program).read_bytes() == before
    # The dead writer's temporary file stays behind, hidden; the stack file is whole.
    (leftover,) = program.glob(".Pulumi.prod.yaml.*.tmp")
    assert b'canaryPercent: "25"' in leftover.read_bytes()
    assert open_prod(program).get("canaryPercent") == "10"


# --- Reading refuses what Pulumi would not give the program -----------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'aws:region: us-east-1\ncanaryPercent: "0"\n',
            r"line 3: key 'canaryPercent' has no namespace; the program reads "
            r"'event-logger:canaryPercent'",
        ),
        (
            'event_logger:canaryPercent: "0"\n',
            r"line 2: key 'event_logger:canaryPercent' has 'event_logger:'",
        ),
        (
            'event-logger:canaryPercent: "10"\nevent-logger:canaryPercent: "0"\n',
            r"Pulumi\.prod\.yaml line 3: found duplicate key \"event-logger:canaryPercent\"",
        ),
        (
            'event-logger:canaryPercent: "10%"\n',
            r"line 2: event-logger:canaryPercent is '10%'; it must be a number from 0 to 100",
        ),
        (
            "event-logger:canaryPercent: [10, 25]\n",
            r"line 2: event-logger:canaryPercent is a list; it must be a single value",
        ),
        (
            'event-logger:stableVersion: "$LATEST"\n',
            r"line 2: event-logger:stableVersion is '\$LATEST'; it must be a published version",
        ),
        (
            'event-logger:canaryMode: "weights"\n',
            r"line 2: event-logger:canaryMode is 'weights'; it must be \"stage\" or \"alias\"",
        ),
    ],
)
def test_a_key_pulumi_would_not_read_as_written_is_refused(
    program: Path, body: str, message: str
) -> None:
    write_config(program, body)
    with pytest.raises(ConfigFileError, match=message):
        open_prod(program)


def test_unquoted_numbers_are_read_as_the_program_sees_them(program: Path) -> None:
    write_config(program, "event-logger:canaryPercent: 2.5\nevent-logger:stableVersion: 3\n")
    config = open_prod(program)
    assert (config.get("canaryPercent"), config.get("stableVersion")) == ("2.5", "3")


def test_a_misplaced_key_the_release_does_not_check_is_refused_when_read(program: Path) -> None:
    write_config(program, 'aws:region: us-east-1\nlistenPort: "8080"\n')
    config = open_prod(program)
    with pytest.raises(ConfigFileError, match=r"line 3: key 'listenPort' has no namespace"):
        config.get("listenPort")
    with pytest.raises(ConfigFileError, match=r"key 'listenPort' has no namespace"):
        config.set("listenPort", "9090")


def test_a_malformed_value_is_never_written(program: Path) -> None:
    config = open_prod(program)
    with pytest.raises(ConfigFileError, match=r"canaryPercent is '10%'; it must be a number"):
        config.set("canaryPercent", "10%")
    assert config.get("canaryPercent") == "10"


def test_a_colleagues_broken_edit_stops_the_save(program: Path) -> None:
    config = open_prod(program)
    config.set("canaryPercent", "25")
    text = stack_file(program).read_text()
    stack_file(program).write_text(text + '  event-logger:canaryPercent: "0"\n')
    with pytest.raises(ConfigFileError, match="duplicate key"):
        config.save()


# --- Writability, checked before AWS is changed ---------------------------------------------


def test_a_writable_stack_file_passes_and_leaves_no_probe(program: Path) -> None:
    open_prod(program).check_writable()
    assert sorted(path.name for path in program.iterdir()) == ["Pulumi.prod.yaml", "Pulumi.yaml"]


def test_a_folder_that_takes_no_new_file_is_refused(
    program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests may run as root, whom permission bits do not stop: refuse the file creation.
    def refused(**_: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(
        NotWritableError, match=r"cannot create a file in .* \(Permission denied\): the release"
    ):
        open_prod(program).check_writable()


def test_a_read_only_stack_file_is_refused(program: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != stack_file(program))
    with pytest.raises(NotWritableError, match=r"Pulumi\.prod\.yaml is read-only for this user"):
        open_prod(program).check_writable()


# --- The lock -------------------------------------------------------------------------------


def test_two_operators_on_threads_one_gets_the_lock_the_other_a_clear_error(
    program: Path,
) -> None:
    start, release = threading.Barrier(2), threading.Event()
    outcomes: dict[str, str] = {}

    def operator(command: str) -> None:
        start.wait()
        try:
            with stack_lock(stack_file(program), "prod", command=command):
                outcomes[command] = "held"
                release.wait(timeout=10)
        except StackLockedError as error:
            outcomes[command] = str(error)
            release.set()

    threads = [threading.Thread(target=operator, args=(name,)) for name in ("watch", "rollback")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()).count("held") == 1
    winner = next(command for command, outcome in outcomes.items() if outcome == "held")
    (refusal,) = (outcome for outcome in outcomes.values() if outcome != "held")
    assert refusal.startswith("stack prod is being changed by ")
    assert f"(pid {os.getpid()} on " in refusal
    assert f"'{winner}') since 20" in refusal
    # Released: the next operator gets it, with no takeover to report.
    with stack_lock(stack_file(program), "prod", command="status") as lock:
        assert lock.previous is None


def test_the_lock_file_names_its_holder_while_held_and_nobody_after(program: Path) -> None:
    with stack_lock(stack_file(program), "prod", command="release advance") as lock:
        written = json.loads(lock_path(stack_file(program)).read_text())
        assert written["command"] == "release advance"
        assert written["pid"] == os.getpid()
        assert lock.path.name == ".Pulumi.prod.yaml.lock"
    assert lock_path(stack_file(program)).read_text() == ""


def test_a_lock_left_by_a_killed_process_is_taken_over(program: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from release.lock import stack_lock
        with stack_lock(Path({str(stack_file(program))!r}), "prod", command="release watch"):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    with subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "held\n"
            with (
                pytest.raises(StackLockedError, match=r"'release watch'\) since") as refused,
                stack_lock(stack_file(program), "prod", command="release rollback"),
            ):
                pass
            assert refused.value.holder is not None
            assert refused.value.holder.pid == child.pid
        finally:
            # kill -9 runs no cleanup: the file still names the child, the kernel freed the lock.
            child.kill()
            child.wait()
    with stack_lock(stack_file(program), "prod", command="release rollback") as lock:
        assert lock.previous is not None
        assert lock.previous.pid == child.pid
        assert lock.previous.alive_here() is False


def test_waiting_for_the_lock_gets_it_once_released(program: Path) -> None:
    held, got = threading.Event(), threading.Event()

    def first() -> None:
        with stack_lock(stack_file(program), "prod", command="advance"):
            held.set()
            got.wait(timeout=0.3)  # still held when the second operator starts waiting

    thread = threading.Thread(target=first)
    thread.start()
    held.wait()
    with stack_lock(stack_file(program), "prod", command="rollback", wait_seconds=10):
        got.set()
    thread.join()


# --- The release tool's notes, and a watch's progress --------------------------------------


def test_a_note_goes_above_its_key_once_keeps_crlf_and_goes_away(program: Path) -> None:
    crlf = b"\xef\xbb\xbf" + stack_file(program).read_bytes().replace(b"\n", b"\r\n")
    stack_file(program).write_bytes(crlf)
    for text in ("v4 promoted UNVERIFIED", "v5 promoted UNVERIFIED"):
        config = open_prod(program)
        config.set("stableVersion", text[1])
        config.note("stableVersion", text)
        config.save()
    edited = stack_file(program).read_bytes()
    assert edited.startswith(b"\xef\xbb\xbf")
    assert b"\n" not in edited.replace(b"\r\n", b"")
    lines = edited.decode("utf-8-sig").split("\r\n")
    key = lines.index('  event-logger:stableVersion: "5"')
    assert lines[key - 1] == "  # release note: v5 promoted UNVERIFIED"
    assert sum("release note" in line for line in lines) == 1  # replaced, not added
    config = open_prod(program)
    config.note("stableVersion", None)
    config.save()
    assert b"release note" not in stack_file(program).read_bytes()
    assert open_prod(program).get("stableVersion") == "5"


def test_a_watchs_progress_round_trips_and_anything_else_is_refused_with_why(
    program: Path,
) -> None:
    path = progress.progress_path(stack_file(program))
    assert path.name == ".Pulumi.prod.yaml.watch.json"
    assert progress.load(path, JudgeConfig()) == (None, None)  # none at all
    judge = JudgeState(JudgeConfig())
    judge.add(Period(2700, 14, 27, 300, 1, 3))
    saved = progress.Progress("3", "4", 10.0, 420.0, datetime(2026, 11, 30, 12, 1, tzinfo=UTC),
                              judge, ["10%"])  # fmt: skip
    progress.save(path, saved)
    loaded, why = progress.load(path, JudgeConfig())
    assert why is None
    assert loaded is not None
    assert loaded.to_json() == saved.to_json()
    assert loaded.matches("3", "4", 10.0) is None
    assert loaded.matches("3", "4", 25.0) == "it was at 10%, the canary now takes 25%"
    path.write_text("{not json")
    assert progress.load(path, JudgeConfig())[1].startswith(f"{path.name} is unreadable")  # type: ignore[union-attr]
    path.write_text(json.dumps({**saved.to_json(), "format": 99}))
    assert progress.load(path, JudgeConfig()) == (None, f"{path.name} is of another format")
    progress.clear(path)
    progress.clear(path)  # clearing twice is fine
    assert not path.exists()


def test_a_watch_feeds_each_period_once_waits_for_an_incomplete_one_then_gives_up() -> None:
    t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    run = progress.Progress("3", "4", 10.0, 420.0, t0, JudgeState(JudgeConfig()))
    good = Period(2700, 14, 27, 300, 1, 3)

    def window(*usable: bool) -> TrustedWindow:
        minutes = [
            Minute(t0 + timedelta(minutes=k), good if ok else None, () if ok else ("x: no point",))
            for k, ok in enumerate(usable)
        ]
        return TrustedWindow(minutes, VersionSummary.empty(), VersionSummary.empty(), {})

    # 12:01 is incomplete and young: judged up to it, and waited for.
    run.feed(window(True, False, True), t0 + timedelta(minutes=5))
    assert run.judged_until == t0 + timedelta(minutes=1)
    assert run.judge.verdict.evidence["canary_requests"] == 300
    # The same minutes read again: nothing judged twice; 12:01 now complete.
    run.feed(window(True, True, True), t0 + timedelta(minutes=6))
    assert run.judge.verdict.evidence["canary_requests"] == 900
    # An incomplete minute older than GIVE_UP is left out for good, and the rest judged.
    run.feed(window(True, True, True, False, True), t0 + timedelta(minutes=14))
    assert run.judged_until == t0 + timedelta(minutes=5)
    assert run.judge.verdict.evidence["canary_requests"] == 1200
