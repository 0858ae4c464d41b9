"""The status report: the stack's two sides over a window, the judge's verdict, and where the
file, the last deploy and AWS differ, for people (:func:`format_status`) and for scripts
(:meth:`StatusReport.to_json`). :meth:`release.commands.Release.status_report` reads it from AWS.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from release import aws
from release.judge import Verdict
from release.state import StackState, share
from versioned_lambda_api.metrics import Role


@dataclass(frozen=True)
class StatusReport:
    """What ``status`` shows: the stack's two sides over a window, the judge's verdict, and
    the file, the last deploy and AWS side by side."""

    since: datetime
    until: datetime
    latency_threshold_ms: float
    state: StackState
    window: aws.TrustedWindow
    verdict: Verdict

    @property
    def alias_mode(self) -> bool:
        return self.state.mode == "alias"

    def to_json(self) -> dict[str, Any]:
        """The report for scripts (``status --format json``): camelCase keys, as the stack's
        outputs; shares in percent (what AWS serves), rates as fractions, durations in ms
        (null: no data)."""
        outputs, live = self.state.outputs, self.state.live

        def side(role: Role, summary: aws.VersionSummary) -> dict[str, Any]:
            alias_output = "liveAlias" if role == "live" or self.alias_mode else "canaryAlias"
            return {
                "alias": str(outputs[alias_output]),
                "version": str(outputs[f"{role}Version"]),
                "percent": 100 - live.percent if role == "live" else live.percent,
                "requests": summary.requests,
                "errors": summary.errors,
                "errorRate": summary.error_rate,
                "throttles": summary.throttles,
                "p50Ms": summary.p50_ms,
                "p99Ms": summary.p99_ms,
            }

        return {
            "stack": self.state.stack,
            "from": self.since.isoformat(),
            "until": self.until.isoformat(),
            "canaryMode": self.state.mode,
            "latencyThresholdMs": self.latency_threshold_ms,
            "aws": {
                "mode": live.mode,
                "canaryPercent": live.percent,
                "canary": live.canary,
                "describe": live.describe(),
            },
            "file": {
                "canaryPercent": self.state.file.percent,
                "canaryMode": self.state.file.mode,
                "stableVersion": self.state.file.stable_version,
            },
            "drift": self.state.differences(),
            "live": side("live", self.window.live),
            "canary": side("canary", self.window.canary),
            "verdict": {
                "decision": self.verdict.decision,
                "periods": self.verdict.periods,
                "reason": self.verdict.reason,
                "evidence": self.verdict.evidence,
            },
        }


def format_status(report: StatusReport) -> list[str]:
    """Live and canary side by side, with the shares AWS serves, then the judge's verdict with
    its evidence. In alias mode both sides run through the live alias (a weighted alias)."""
    outputs, window, verdict = report.state.outputs, report.window, report.verdict
    percent = report.state.live.percent

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    rows = [
        ("", "live", "canary"),
        (
            "alias",
            str(outputs["liveAlias"]),
            str(outputs["liveAlias" if report.alias_mode else "canaryAlias"]),
        ),
        ("version", f"v{outputs['liveVersion']}", f"v{outputs['canaryVersion']}"),
        ("share", f"{share(100 - percent)}%", f"{share(percent)}%"),
        ("requests", f"{window.live.requests:,}", f"{window.canary.requests:,}"),
        ("errors", _rate(window.live), _rate(window.canary)),
        ("throttles", f"{window.live.throttles:,}", f"{window.canary.throttles:,}"),
        ("p50", ms(window.live.p50_ms), ms(window.canary.p50_ms)),
        ("p99", ms(window.live.p99_ms), ms(window.canary.p99_ms)),
    ]
    lines = [f"  {label:<10}{live:>22}{canary:>22}" for label, live, canary in rows]
    lines.append(f"verdict: {verdict.decision} after {verdict.periods} period(s)")
    lines += textwrap.wrap(verdict.reason, width=78, initial_indent="  ", subsequent_indent="  ")
    lines.append("evidence:")
    lines += [
        f"  {name:<28}{_evidence(name, value):>14}"
        for name, value in sorted(verdict.evidence.items())
    ]
    return lines


def _rate(summary: aws.VersionSummary) -> str:
    return f"{summary.errors:,} ({summary.error_rate:.2%})"


def _evidence(name: str, value: float) -> str:
    if name.endswith("_rate"):
        return f"{value:.3%}"
    if value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"
