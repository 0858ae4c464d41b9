"""The pass/fail report: one line per check with its evidence, for a person or a bug report,
and the same as JSON (``--report FILE``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from verify.checks import CHECKS, CheckResult


@dataclass
class Report:
    stack: str
    """The stack whose config was verified."""
    throwaway: str
    """The stack deployed for it."""
    region: str
    started_at: str
    """ISO 8601, UTC."""
    results: list[CheckResult] = field(default_factory=list)
    aborted: str | None = None
    """Why the run stopped before every check could run."""
    cleanup: str = ""
    """What became of the throwaway stack."""
    cleanup_failed: bool = False
    """The stack may still hold what verify deployed."""

    @property
    def passed(self) -> bool:
        ran = {result.name for result in self.results}
        return (
            self.aborted is None
            and not self.cleanup_failed
            and ran == set(CHECKS)
            and all(result.passed for result in self.results)
        )

    def missing(self) -> list[str]:
        """The checks that never ran (the run stopped first)."""
        ran = {result.name for result in self.results}
        return [name for name in CHECKS if name not in ran]

    def lines(self) -> list[str]:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"make verify: {verdict} for stack {self.stack} (throwaway stack "
            f"{self.throwaway}, {self.region}, started {self.started_at})"
        ]
        lines += [f"{r.status}  {r.name}: {r.evidence}" for r in self.results]
        if self.aborted is not None:
            lines.append(f"ABORTED: {self.aborted}")
        lines += [f"NOT RUN  {name}" for name in self.missing()]
        if self.cleanup:
            lines.append(f"cleanup: {self.cleanup}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "stack": self.stack,
            "throwawayStack": self.throwaway,
            "region": self.region,
            "startedAt": self.started_at,
            "checks": [
                {"name": r.name, "status": r.status, "evidence": r.evidence} for r in self.results
            ],
            "notRun": self.missing(),
            "aborted": self.aborted,
            "cleanup": self.cleanup,
        }
