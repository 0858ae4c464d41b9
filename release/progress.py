"""What an interrupted ``watch`` resumes from: the judge's evidence for the release so far.

The judge's promises hold for a whole release only if its evidence is carried from step to step
and across a restart: a ``watch`` stopped by Ctrl-C, a lost connection or a reboot, started
again, must neither forget what it saw (and take longer) nor judge afresh (and spend its false
rollback budget again). So ``watch`` keeps its state in ``.Pulumi.<stack>.yaml.watch.json``
beside the stack file after every period it judges, and removes it when the release ends. A
saved state is used only for the same release: the same live and canary versions, the same
share of the traffic and the same slow threshold; anything else starts afresh, and says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from release.aws import TrustedWindow
from release.config_file import atomic_write
from release.judge import JudgeConfig, JudgeState, Verdict

FORMAT = 1
GIVE_UP = timedelta(minutes=10)
"""How long a period CloudWatch has not fully answered is waited for before it is left out."""


def progress_path(stack_file: Path) -> Path:
    """``.Pulumi.<stack>.yaml.watch.json`` beside the stack file (hidden, as the lock)."""
    return stack_file.with_name(f".{stack_file.name}.watch.json")


@dataclass
class Progress:
    """One release's evidence: whose it is, up to when it was judged, and the judge's state.
    ``unverified``: the steps passed without the evidence (``--on-timeout PROMOTE``)."""

    live_version: str
    canary_version: str
    percent: float
    threshold_ms: float
    judged_until: datetime
    judge: JudgeState
    unverified: list[str] = field(default_factory=list)

    def matches(self, live_version: str, canary_version: str, percent: float) -> str | None:
        """Why this progress is not the release's now, ``None`` when it is."""
        if (self.live_version, self.canary_version) != (live_version, canary_version):
            return (
                f"it is v{self.live_version} against v{self.canary_version}, the stack now "
                f"v{live_version} against v{canary_version}"
            )
        if self.percent != percent:
            return f"it was at {self.percent:g}%, the canary now takes {percent:g}%"
        return None

    def feed(self, window: TrustedWindow, now: datetime) -> Verdict:
        """Give the judge the window's periods it has not judged, oldest first. A period
        CloudWatch has not fully answered is waited for (the judge sees periods in order),
        unless it is older than :data:`GIVE_UP`: then it is left out for good."""
        verdict = self.judge.verdict
        length = timedelta(seconds=window.period_seconds)
        for minute in window.minutes:
            if minute.at < self.judged_until:
                continue
            if minute.period is None and now - minute.at < GIVE_UP:
                break
            if minute.period is not None:
                verdict = self.judge.add(minute.period, window.period_seconds)
            self.judged_until = minute.at + length
            if verdict.decision != "CONTINUE":
                break
        return verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "liveVersion": self.live_version,
            "canaryVersion": self.canary_version,
            "percent": self.percent,
            "thresholdMs": self.threshold_ms,
            "judgedUntil": self.judged_until.isoformat(),
            "unverified": self.unverified,
            "judge": self.judge.to_dict(),
        }


def save(path: Path, progress: Progress) -> None:
    atomic_write(path, json.dumps(progress.to_json(), indent=1).encode())


def load(path: Path, config: JudgeConfig) -> tuple[Progress | None, str | None]:
    """The saved progress, or ``None`` and why it cannot be used (``None`` when there is none
    at all)."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as error:
        return None, f"{path.name} is unreadable ({error})"
    try:
        if raw["format"] != FORMAT:
            return None, f"{path.name} is of another format"
        return Progress(
            live_version=str(raw["liveVersion"]),
            canary_version=str(raw["canaryVersion"]),
            percent=float(raw["percent"]),
            threshold_ms=float(raw["thresholdMs"]),
            judged_until=datetime.fromisoformat(raw["judgedUntil"]),
            judge=JudgeState.from_dict(config, raw["judge"]),
            unverified=[str(step) for step in raw["unverified"]],
        ), None
    except (KeyError, TypeError, ValueError) as error:
        return None, f"{path.name} is not a watch's progress ({error})"


def clear(path: Path) -> None:
    path.unlink(missing_ok=True)
