"""``watch``: judge a release every period and act on the verdict through its steps.

A :class:`Watch` holds one watch of a :class:`~release.commands.Release`: the loop, what it says
once, and its decisions; the steps it takes (``advance``, ``promote``, ``rollback``) are the
release's own. :meth:`release.commands.Release.watch` runs it.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from release import aws, progress
from release.commands import SETTLE, AwsClients, CanaryStillLiveError, Release, ReleaseError
from release.judge import JudgeState, Verdict, minutes_needed
from release.lock import StackLockedError
from release.state import StackState, share
from versioned_lambda_api.metrics import Role

CATCH_UP = timedelta(hours=3)
"""The furthest back a resumed watch reads the metrics it did not judge."""
UNDECIDABLE = timedelta(hours=24)
"""A step whose evidence needs longer than this at the traffic seen is undecidable."""

METRICS_READ_ATTEMPTS = 5
"""Consecutive periods ``watch`` tolerates without readable metrics or traffic settings (a
throttle, a 5xx, a lost connection) before it stops, saying the canary is still live."""

# The keys whose change by someone else stops ``watch``: they decide what the canary serves.
RELEASE_KEYS = ("canaryPercent", "canaryMode", "stableVersion")


@dataclass
class Watch:
    """One ``watch`` of :attr:`release`: the loop and what it has said once; the steps it takes
    are the release's own."""

    release: Release
    # What watch has said once: the step it planned, the step it called undecided, and where
    # its evidence comes from.
    _announced_step: int = field(default=0, init=False, repr=False)
    _planned_step: int = field(default=0, init=False, repr=False)
    _source: tuple[str, int] | None = field(default=None, init=False, repr=False)

    def run(
        self,
        clients: AwsClients,
        max_minutes: int | None = None,
        period_seconds: int = 60,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Judge the release every ``period_seconds`` and act on the verdict: advance through
        the steps, promote, or roll back; until the judge decides, the evidence is judged
        undecidable at this traffic, or ``max_minutes`` pass.

        One judge state carries the evidence across the steps and across restarts (kept beside
        the stack file, see :mod:`release.progress`). Every period also re-reads the file and
        what AWS serves: when someone else changed either since watch last acted, it stops and
        says so (a failing canary is still rolled back).

        From share 0 it first runs the canary's pre-traffic check and advances to the first
        step (under the lock); a failed check stops it with nothing changed."""
        opened = self._watchable(clients, now())
        if opened is None:
            self.release.out("stopped watching: watch again once the first step is deployed")
            return "ADVANCED"
        state = opened
        outputs = state.outputs
        started = now()
        dimensions = self.release.traffic_dimensions(outputs, state.mode)
        run = self._watch_run(clients, outputs, dimensions, started)
        following = self.release.following_steps()
        then = f" (then {', '.join(f'{step:g}' for step in following)})" if following else ""
        limit = f"; stopping after {max_minutes} min" if max_minutes is not None else ""
        self.release.out(
            f"watching the canary at {self.release.canary_percent():g}%{then}: each step until "
            f"the judge decides on evidence{limit}"
        )
        deadline = None if max_minutes is None else started + timedelta(minutes=max_minutes)
        failed_reads = 0
        while True:
            sleep(period_seconds)
            current = now()
            elapsed = f"[{int((current - started).total_seconds() // 60):>3} min]"
            try:
                window = aws.read_finest_metrics(
                    clients.cloudwatch,
                    dimensions=dimensions,
                    start=max(run.judged_until, current - CATCH_UP),
                    end=current - SETTLE,
                    latency_threshold_ms=run.threshold_ms,
                )
                seen = self.release.read_state(clients, outputs)
            except aws.AwsError as error:
                failed_reads += 1
                self._unreadable(error, failed_reads, elapsed)
                continue
            failed_reads = 0
            verdict = run.feed(window, current)
            self._say_source(window)
            self._say_period(elapsed, window, verdict)
            self._plan(verdict)
            progress.save(self._progress_path, run)
            if verdict.decision == "CONTINUE" and not self._changes(state, seen):
                self._undecided(verdict, window)
                if deadline is not None and current >= deadline:
                    self.release.out(f"stopped watching after {max_minutes} min with no decision")
                    return "CONTINUE"
                continue
            with self._acting():
                # Under the lock, what others did so far is final: read it once more.
                outcome = self._act(
                    verdict, state, self.release.read_state(clients, outputs), clients, run
                )
            if outcome != "ADVANCED":
                return outcome
            # Saved first: a watch stopped by the check below resumes at the new share.
            self._next_step(run)
            state = self._check_applied(clients, outputs)

    @property
    def _progress_path(self) -> Path:
        return progress.progress_path(self.release.config.path)

    def _next_step(self, run: progress.Progress) -> None:
        """The file's share is the next step's: the judge starts it, and the progress says so."""
        run.judge.start_step()
        run.percent = self.release.canary_percent()
        progress.save(self._progress_path, run)

    def _watch_run(
        self,
        clients: AwsClients,
        outputs: dict[str, Any],
        dimensions: dict[Role, dict[str, str]],
        started: datetime,
    ) -> progress.Progress:
        """The release's evidence: resumed from an interrupted watch of the same release, or
        new (with the slow threshold set now)."""
        live, canary = str(outputs["liveVersion"]), str(outputs["canaryVersion"])
        saved, unusable = progress.load(self._progress_path, self.release.judge_config)
        mismatch = (
            saved.matches(live, canary, self.release.canary_percent())
            if saved is not None
            else None
        )
        if saved is not None and mismatch is None:
            judged = saved.judge.verdict.evidence
            self.release.out(
                f"resuming this release's evidence, judged until {saved.judged_until:%H:%M} "
                f"UTC: step {judged['step']:g}, {judged['canary_requests']:,.0f} canary requests"
            )
            return saved
        if unusable or mismatch:
            self.release.out(
                f"judging afresh: the saved progress is not this release's ({unusable or mismatch})"
            )
        threshold = self.release.latency_threshold(clients, dimensions["live"], started)
        return progress.Progress(
            live_version=live,
            canary_version=canary,
            percent=self.release.canary_percent(),
            threshold_ms=threshold,
            judged_until=aws.floor_to(started, 60),
            judge=JudgeState(self.release.judge_config),
        )

    def _say_source(self, window: aws.TrustedWindow) -> None:
        """Say where the evidence comes from whenever that changes: the function's own
        counts, or Lambda's minutes and why."""
        source = (window.source, window.period_seconds)
        if not window.minutes or source == self._source:
            return  # an empty window says nothing of where the evidence comes from
        self._source = source
        if window.source == "function":
            self.release.out(
                f"evidence: the function's own counts, every {window.period_seconds} s"
            )
        else:
            why = f" ({window.fallback})" if window.fallback else ""
            self.release.out(f"evidence: Lambda's per-minute metrics{why}")

    def _plan(self, verdict: Verdict) -> None:
        """Say once per step, as soon as a minute of it shows the traffic, how long the step
        needs for a decision on a canary as good as live."""
        evidence = verdict.evidence
        step = int(evidence["step"])
        if (
            verdict.decision != "CONTINUE"
            or self._planned_step == step
            or evidence["step_seconds"] < 60
            or not evidence["live_requests"]
        ):
            return
        self._planned_step = step
        needed = minutes_needed(self.release.judge_config, evidence)
        when = "more than a day" if math.isinf(needed) else f"about {needed:,.0f} min more"
        self.release.out(
            f"step {step} at {self.release.canary_percent():g}%: at this traffic a canary as good "
            f"as live passes in {when} (a plan: Wald's average, not a promise)"
        )

    def _undecided(self, verdict: Verdict, window: aws.TrustedWindow) -> None:
        """After a step's bake without a decision: keep watching while the evidence can come
        within :data:`UNDECIDABLE` at the canary's traffic now (said once per step), else
        stop."""
        if not verdict.timed_out:
            return
        periods = window.usable_periods
        recent = None
        if periods:
            minutes = len(periods) * window.period_seconds / 60.0
            recent = sum(period.canary_requests for period in periods) / minutes
        needed = minutes_needed(self.release.judge_config, verdict.evidence, recent)
        if needed * 60 > UNDECIDABLE.total_seconds():
            raise CanaryStillLiveError(
                f"stopped watching: undecidable at this traffic. {verdict.reason} That is more "
                f"than {UNDECIDABLE.total_seconds() / 3600:g} h more: the canary still takes "
                f"{self.release.canary_percent():g}%; 'make release-rollback "
                f"STACK={self.release.stack}' stops it, watching with '--on-timeout PROMOTE' "
                "promotes it UNVERIFIED"
            )
        step = int(verdict.evidence["step"])
        if self._announced_step != step:
            self._announced_step = step
            self.release.out(
                f"step {step} is undecided after its bake; at this traffic the evidence needs "
                f"about {needed:,.0f} min more: watching on"
            )

    @contextmanager
    def _acting(self) -> Iterator[None]:
        """Hold the stack's lock for one of watch's actions (watch judges without it, so a
        colleague can roll back meanwhile)."""
        try:
            with self.release.exclusive():
                yield
        except StackLockedError as error:
            raise CanaryStillLiveError(
                f"stopped watching: {error}. The canary still takes "
                f"{self.release.canary_percent():g}% unwatched: 'make release-watch "
                f"STACK={self.release.stack}' resumes"
            ) from error

    def _act(
        self,
        verdict: Verdict,
        before: StackState,
        seen: StackState,
        clients: AwsClients,
        run: progress.Progress,
    ) -> str:
        """Take the verdict's step, unless someone else changed the release since ``before``:
        ``ROLLBACK``, ``PROMOTE`` (or an edit only, with --no-apply), or ``ADVANCED``."""
        changes = self._changes(before, seen)
        if verdict.decision == "PROMOTE" and not changes:
            # A deploy outside this tool changes the versions, which AWS' traffic settings
            # need not show: the stack's outputs are read again before acting.
            changes = self._version_changes(seen.outputs, self.release.read_outputs())
        if changes:
            outcome = self._changed_by_others(changes, seen, verdict, clients)
            progress.clear(self._progress_path)
            return outcome
        if verdict.decision == "ROLLBACK":
            self._explain("rolling back", verdict)
            self.release.rollback(clients, seen.outputs)
            progress.clear(self._progress_path)
            return "ROLLBACK"
        if not verdict.verified:
            run.unverified.append(f"{self.release.canary_percent():g}%")
            self.release.out(
                f"UNVERIFIED: step {verdict.evidence['step']:g} passes without the evidence"
            )
        if not self.release.following_steps():
            self._explain("promoting", verdict)
            self.release.promote(unverified=run.unverified)
            progress.clear(self._progress_path)
            return "PROMOTE"
        self._explain("advancing", verdict)
        self.release.advance()
        if not self.release.apply:
            # The next watch, once the new share is deployed, resumes with this evidence.
            self._next_step(run)
            self.release.out("stopped watching: watch again once the new share is deployed")
            return "PROMOTE"
        return "ADVANCED"

    def _watchable(self, clients: AwsClients, now: datetime) -> StackState | None:
        """The state ``watch`` starts from, refused when there is no canary to judge or AWS
        does not serve the share the file sets. At share 0: the first step opened after the
        pre-traffic check, or ``None`` when ``--no-apply`` left it to deploy."""
        outputs = self.release.read_outputs()
        if str(outputs["canaryVersion"]) == str(outputs["liveVersion"]):
            raise ReleaseError(
                f"the canary serves v{outputs['liveVersion']}, as live does: nothing to watch; "
                "pin the live version ('start') and deploy new code first"
            )
        state = self.release.read_state(clients, outputs)
        if self.release.report_drift(state):
            raise ReleaseError(
                "watch judges the share the file sets, and AWS does not serve it (see above): "
                "'advance' applies the file's share again, 'rollback' stops the canary"
            )
        if self.release.canary_percent() > 0:
            return state
        try:
            with self.release.exclusive():
                self.release.advance(clients, now)
        except StackLockedError as error:
            raise ReleaseError(
                f"{error}; the canary takes no traffic and nothing was changed"
            ) from error
        if not self.release.apply:
            return None
        return self._check_applied(clients, outputs)

    def _say_period(self, elapsed: str, window: aws.TrustedWindow, verdict: Verdict) -> None:
        """One line a period: the release's evidence so far and the verdict."""
        if window.unusable:
            self.release.out(f"{elapsed} {_unusable(window)}")
        evidence = verdict.evidence
        if not evidence["canary_requests"]:
            self.release.out(
                f"{elapsed} {self.release.canary_percent():g}%: no canary request judged yet"
            )
            return
        self.release.out(
            f"{elapsed} {self.release.canary_percent():g}%: canary "
            f"{_errors_of(evidence, 'canary')} | live {_errors_of(evidence, 'live')} -> "
            f"{verdict.decision}"
        )

    def _changes(self, before: StackState, seen: StackState) -> list[str]:
        """What someone else changed in the file or in AWS since ``before`` was read."""
        changes = [
            f"{self.release.config.path.name}: {change}"
            for change in self.release.config.changed_by_others(*RELEASE_KEYS)
        ]
        if seen.live != before.live:
            was, now = before.live.describe(), seen.live.describe()
            changes.append(
                f"AWS: {was} -> {now}" if was != now else f"AWS: a new deployment, {now}"
            )
        return changes

    @staticmethod
    def _version_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        return [
            f"the stack's {key} v{before[key]} -> v{after[key]} (a deploy outside the release)"
            for key in ("liveVersion", "canaryVersion")
            if str(before[key]) != str(after[key])
        ]

    def _changed_by_others(
        self, changes: list[str], seen: StackState, verdict: Verdict, clients: AwsClients
    ) -> str:
        """Stop watching a release someone else changed; a failing canary is rolled back
        first, since stopping it is safe whatever they did."""
        why = "; ".join(changes)
        if verdict.decision == "ROLLBACK" and seen.live.percent > 0:
            self.release.out(f"someone else changed the release ({why}); the canary fails, so:")
            self._explain("rolling back", verdict)
            self.release.rollback(clients, seen.outputs)
            return "ROLLBACK"
        if seen.live.percent > 0:
            raise CanaryStillLiveError(
                f"stopped watching: someone else changed the release ({why}). The canary "
                f"still takes {share(seen.live.percent)}% ({seen.live.describe()}) and the "
                f"minutes so far describe another state: 'make release-watch STACK="
                f"{self.release.stack}' judges it afresh, 'make release-rollback "
                f"STACK={self.release.stack}' stops it"
            )
        raise ReleaseError(
            f"stopped watching: someone else changed the release ({why}); AWS sends the "
            "canary no traffic now"
        )

    def _check_applied(self, clients: AwsClients, outputs: dict[str, Any]) -> StackState:
        """After watch's own advance: AWS must serve the file's new share, which the next
        periods judge."""
        state = self.release.read_state(clients, outputs)
        if not state.serves_the_file:
            raise CanaryStillLiveError(
                f"stopped watching: canaryPercent {self.release.canary_percent():g} is applied, "
                f"but AWS sends the canary {share(state.live.percent)}% ({state.live.describe()}): "
                f"'make release-status STACK={self.release.stack}' shows the difference"
            )
        return state

    def _unreadable(self, error: aws.AwsError, failed_reads: int, elapsed: str) -> None:
        """Wait out a transient failure to read the metrics or the traffic settings; stop,
        saying the canary is still live and how to go on, after
        :data:`METRICS_READ_ATTEMPTS` periods in a row."""
        if not error.retryable:
            raise error
        if failed_reads >= METRICS_READ_ATTEMPTS:
            raise CanaryStillLiveError(
                f"stopped watching: AWS unreadable for {failed_reads} periods in a row "
                f"({error.message}); the canary still takes {self.release.canary_percent():g}% "
                f"of the requests: 'make release-watch STACK={self.release.stack}' resumes, "
                f"'make release-rollback STACK={self.release.stack}' stops it"
            ) from error
        self.release.out(f"{elapsed} AWS unreadable ({error.message}); trying again next minute")

    def _explain(self, action: str, verdict: Verdict) -> None:
        for line in textwrap.wrap(f"{action}: {verdict.reason}", width=78, subsequent_indent="  "):
            self.release.out(line)


def _unusable(window: aws.TrustedWindow) -> str:
    """The periods CloudWatch has not fully answered, which the judge does not count (watch
    waits for them a while)."""
    first = window.unusable[0]
    at = f"{first.at:%H:%M}" if window.period_seconds % 60 == 0 else f"{first.at:%H:%M:%S}"
    return (
        f"{len(window.unusable)} period(s) of {window.period_seconds} s not counted, "
        f"CloudWatch's answer incomplete (e.g. {at}: {', '.join(first.missing)})"
    )


def _errors_of(evidence: dict[str, float], side: Role) -> str:
    """E.g. ``0.48% errors of 21,600``, from the judge's evidence for the release."""
    return f"{evidence[f'{side}_error_rate']:.2%} errors of {evidence[f'{side}_requests']:,.0f}"
