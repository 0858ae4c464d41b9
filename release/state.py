"""A stack's canary as the three places that hold it say: the stack file (what the next deploy
applies), the stack's outputs (what the last deploy applied) and AWS (what serves requests now).

AWS is the truth for traffic. Every step reads all three and reports where they differ before
it acts, so an operator learns of a hand edit, a failed apply or a console change before the
tool builds on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from release.aws import LiveTraffic

Mode = Literal["stage", "alias"]

_HOW: dict[str, str] = {
    "stage": "the stage's canary settings",
    "alias": "the live alias' version weights",
}


def same_share(a: float, b: float) -> bool:
    """Whether two shares in percent are one: alias weights read back as 0.1 make
    10.000000000000002%."""
    return math.isclose(a, b, abs_tol=1e-6)


def share(percent: float) -> str:
    """A share for people: ``10``, ``2.5``; alias weights read back as 0.1 print as 10."""
    return f"{round(percent, 4):g}"


@dataclass(frozen=True)
class FileSays:
    """The stack file's canary keys, as the program reads them."""

    percent: float
    mode: Mode
    stable_version: str | None


@dataclass(frozen=True)
class StackState:
    """The file, the last deploy and AWS, side by side."""

    stack: str
    file_name: str
    file: FileSays
    outputs: dict[str, Any]
    live: LiveTraffic

    @property
    def deployed_percent(self) -> float | None:
        value = self.outputs.get("canaryPercent")
        return None if value is None else float(value)

    @property
    def deployed_mode(self) -> Mode | None:
        """``None`` for a stack deployed before the program exported ``canaryMode``."""
        value = self.outputs.get("canaryMode")
        return value if value in ("stage", "alias") else None

    @property
    def expected_percent(self) -> float:
        """The share AWS sends the canary once the file is deployed: ``canaryPercent``, except
        an alias-mode canary with nothing to split off (no pinned version, or the pinned one is
        the newest), where Lambda carries no weight at all."""
        if self.file.mode == "alias" and (
            self.file.stable_version is None
            or str(self.outputs["canaryVersion"]) == str(self.outputs["liveVersion"])
        ):
            return 0.0
        return self.file.percent

    @property
    def file_not_deployed(self) -> bool:
        """Whether the last deploy set another ``canaryPercent`` than the file says."""
        deployed = self.deployed_percent
        return deployed is not None and not same_share(deployed, self.file.percent)

    @property
    def serves_the_file(self) -> bool:
        """Whether AWS sends the canary the share the file means."""
        return same_share(self.live.percent, self.expected_percent)

    @property
    def mode(self) -> Mode:
        """The mechanism whose metrics show the canary: the one AWS splits with now, else the
        one the last deploy set up, else the file's."""
        if self.live.mode in ("stage", "alias"):
            return self.live.mode
        return self.deployed_mode or self.file.mode

    def differences(self) -> list[str]:
        """Each way the file, the last deploy and AWS disagree, with what to do about it."""
        found = []
        make_up = f"'make up STACK={self.stack}'"
        if self.live.mode == "both":
            found.append(
                f"AWS splits the canary off twice, {self.live.describe()}: a mode switch left "
                "one behind ('rollback' stops both)"
            )
        live, expected, deployed = self.live.percent, self.expected_percent, self.deployed_percent
        if not self.serves_the_file:
            if deployed is not None and not self.file_not_deployed:
                cause = f"changed outside Pulumi since the last deploy; {make_up} restores it"
            else:
                cause = f"the file is not deployed; {make_up} applies it"
            found.append(
                f"AWS sends the canary {share(live)}% ({self.live.describe()}), "
                f"{self.file_name} means {share(expected)}%: {cause}"
            )
        elif self.file_not_deployed:
            found.append(
                f"the last deploy set canaryPercent {share(deployed or 0)}, {self.file_name} says "
                f"{share(self.file.percent)} (which AWS serves already, e.g. after a rollback "
                f"whose apply failed): {make_up} records it in the stack"
            )
        if self.live.mode in ("stage", "alias") and self.live.mode != self.file.mode:
            found.append(
                f"AWS splits the canary off with {_HOW[self.live.mode]}, {self.file_name} says "
                f"canaryMode {self.file.mode}: {make_up} switches it"
            )
        elif self.deployed_mode is not None and self.deployed_mode != self.file.mode:
            found.append(
                f"the last deploy used canaryMode {self.deployed_mode}, {self.file_name} says "
                f"{self.file.mode}: {make_up} applies it"
            )
        return found
