"""The release steps: start, check, advance, promote, roll back, status and watch.

Every step changes the stack only through its config file and then applies that file with
the Automation API (unless ``--no-apply``), so the deployed state never drifts from the code.
Rollback first stops the canary directly through AWS, so it takes effect in seconds. A new
version takes no traffic until it has passed its pre-traffic check (:mod:`release.smoke`):
``start`` and ``promote`` leave the canary's share at 0, and ``advance`` and ``watch`` leave 0
only after the check.

Before acting, a step reads what AWS serves and reports where it differs from the file and the
last deploy (:mod:`release.state`); ``watch`` does so every period and stops when someone else
changed either. The status report's shape and its text for people are :mod:`release.status`'s.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from release import aws, progress
from release.config_file import ConfigFileError, StackConfigFile
from release.deploy import ApplyError, Deployer
from release.judge import (
    JudgeConfig,
    JudgeState,
    Verdict,
    choose_first_step,
    judge,
    minutes_needed,
    plan_step,
)
from release.lock import StackLockedError
from release.state import FileSays, Mode, StackState, share
from release.status import StatusReport, format_status
from versioned_lambda_api.metrics import Role, stage_traffic

if TYPE_CHECKING:
    from release import smoke

# A first step of 5% halves what a bad canary reaches before the judge can act; where traffic is
# low it leaves good releases undecided for hours, so by default the first step is 5% or 10%,
# whichever the hour before lets a good canary pass within the bake (judge.choose_first_step).
DEFAULT_STEPS = (5.0, 25.0, 50.0)
DEFAULT_FIRST_STEPS = (5.0, 10.0)
# With the default threshold, live's p99, about 1% of live's requests are slow by construction.
LIVE_SLOW_RATE = 0.01
# Lambda's newest minute may not have reached CloudWatch yet: judge only minutes older than this.
SETTLE = timedelta(minutes=2)
# Live's p99 before the canary sets what counts as slow; this when live had no traffic.
BASELINE = timedelta(hours=1)
FALLBACK_LATENCY_THRESHOLD_MS = 1000.0


class ReleaseError(Exception):
    """A step that cannot be taken in the stack's current state."""


class CanaryStillLiveError(ReleaseError):
    """``watch`` had to stop while the canary still takes its share of the traffic."""


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
class AwsClients:
    """The AWS clients a release uses, created by the caller (real, moto or stubbed)."""

    cloudwatch: Any
    apigateway: Any
    lambda_: Any
    invoker: Any = None
    """The Lambda client the pre-traffic check invokes with: one attempt (a retried Invoke runs
    the function, and its write, again) and an answer awaited past API Gateway's 29 s; ``None``:
    :attr:`lambda_`, for tests that stub one client."""


@dataclass
class Release:
    """One stack's release, driven through its config file."""

    config: StackConfigFile
    deployer: Deployer
    apply: bool = True
    steps: Sequence[float] = DEFAULT_STEPS
    first_steps: Sequence[float] = ()
    """The shares the first step is chosen from by live's traffic in the hour before
    (:func:`release.judge.choose_first_step`); empty: the first of :attr:`steps`."""
    out: Callable[[str], None] = print
    judge_config: JudgeConfig = field(default_factory=JudgeConfig)
    latency_threshold_ms: float | None = None
    """A request slower than this is slow; ``None``: live's p99 in the hour before."""
    exclusive: Callable[[], AbstractContextManager[object]] = nullcontext
    """The stack's lock, which ``watch`` takes for each of its actions."""
    smoke_routes: Callable[[dict[str, Any]], list[smoke.Route]] | None = None
    """The stage's routes for the pre-traffic check, from the stack's outputs; ``None``: from a
    run of the stack's program (:meth:`program_routes`)."""
    last_state: StackState | None = field(default=None, init=False)
    """What the step last read of the file, the stack and AWS: what an interrupted step
    reports."""
    # What watch has said once: the step it planned, the step it called undecided, and where
    # its evidence comes from.
    _announced_step: int = field(default=0, init=False, repr=False)
    _planned_step: int = field(default=0, init=False, repr=False)
    _source: tuple[str, int] | None = field(default=None, init=False, repr=False)

    # --- state -------------------------------------------------------------------------

    @property
    def stack(self) -> str:
        return self.config.stack

    def _outputs(self) -> dict[str, Any]:
        try:
            outputs = self.deployer.outputs()
        except ApplyError as error:
            raise ApplyError(f"reading the stack's outputs: {error}") from error
        missing = {"functionName", "liveAlias", "canaryAlias", "liveVersion", "canaryVersion"}
        missing -= outputs.keys()
        if missing:
            raise ReleaseError(
                f"the stack has no outputs {sorted(missing)}: deploy it first ('make up')"
            )
        return outputs

    def _percent(self) -> float:
        return float(self.config.get("canaryPercent") or 0)

    def _following_steps(self) -> list[float]:
        """The steps of the schedule above the current canary share."""
        return [step for step in self.steps if step > self._percent()]

    def file_says(self) -> FileSays:
        # The program's config reader loads the Pulumi SDK: only the steps that read the
        # stack's outputs (which load it anyway) ask this.
        from stack_config import DEFAULTS  # noqa: PLC0415

        mode = self.config.get("canaryMode") or DEFAULTS["canaryMode"]
        return FileSays(
            percent=self._percent(),
            mode="alias" if mode == "alias" else "stage",
            stable_version=self.config.get("stableVersion") or None,
        )

    def read_state(self, clients: AwsClients, outputs: dict[str, Any] | None = None) -> StackState:
        """The file, the stack's outputs (read unless given) and what AWS serves now."""
        outputs = outputs or self._outputs()
        live = aws.read_live_traffic(
            clients.apigateway,
            clients.lambda_,
            rest_api_id=str(outputs["restApiId"]),
            stage=str(outputs["stage"]),
            function_name=str(outputs["functionName"]),
            live_alias=str(outputs["liveAlias"]),
        )
        self.last_state = StackState(
            stack=self.stack,
            file_name=self.config.path.name,
            file=self.file_says(),
            outputs=outputs,
            live=live,
        )
        return self.last_state

    def _report(self, state: StackState) -> list[str]:
        """Print where the file, the last deploy and AWS differ; returns the differences."""
        differences = state.differences()
        for difference in differences:
            for line in textwrap.wrap(f"drift: {difference}", width=78, subsequent_indent="  "):
                self.out(line)
        return differences

    def _traffic_dimensions(
        self, outputs: dict[str, Any], mode: Mode
    ) -> dict[Role, dict[str, str]]:
        """The Lambda metric dimensions of the live and the canary side of the stage."""
        sides = stage_traffic(
            str(outputs["liveAlias"]),
            str(outputs["canaryAlias"]),
            weighted=mode == "alias",
            stable_version=int(outputs["liveVersion"]),
        )
        newest = str(outputs["canaryVersion"])
        return {side.role: side.dimensions(str(outputs["functionName"]), newest) for side in sides}

    def _commit(self, summary: str, aws_changed: str | None = None) -> None:
        """Save the file's edit and apply it. ``aws_changed``: what this step already changed
        in AWS, for the message when the file then cannot be written."""
        try:
            self.config.save()
        except (ConfigFileError, OSError) as error:
            if aws_changed is None:
                raise
            raise ReleaseError(
                f"{aws_changed}, but {self.config.path.name} could not be written ({error}): "
                f"it still says canaryPercent {self.config.read('canaryPercent')}, so the next "
                f"'make up' would send the canary that share again. Set "
                f'{self.config.project}:canaryPercent to "0" in it (or run \'rollback '
                "--no-apply' once it can be written)"
            ) from error
        self.out(f"{self.config.path.name}: {summary}")
        if not self.apply:
            self.out("--no-apply: review the change, then deploy it with 'make up'")
            return
        self.out("applying with pulumi up ...")
        try:
            self.deployer.up(self.out)
        except ApplyError as error:
            raise type(error)(
                f"{error}; {self.config.path.name} is edited, so deploy it later with "
                f"'make up STACK={self.stack}'"
            ) from error

    # --- steps -------------------------------------------------------------------------

    def start(self, clients: AwsClients | None = None) -> None:
        """Pin the live version and close the canary's share, so the next deploy's new version
        becomes the canary and takes no traffic until its pre-traffic check passes (``advance``
        or ``watch`` runs it).

        Run again after an apply that failed, it applies the pin the file already holds
        (a deploy that changes nothing when it is in place) instead of stopping at the file.
        With ``clients``, where the file and AWS differ is reported first."""
        outputs = self._outputs()
        if clients is not None:
            self._report(self.read_state(clients, outputs))
        live, share_was = str(outputs["liveVersion"]), self._percent()
        pinned = self.config.set("stableVersion", live)
        closed = self.config.set("canaryPercent", "0")
        if pinned or closed:
            done = f"stableVersion pinned to {live}" if pinned else f"stableVersion already {live}"
            if closed:
                done += f", canaryPercent {share_was:g} -> 0"
            self._commit(
                f"{done}; deploy new code: its version takes no traffic until 'advance' (or "
                "'watch') has checked it"
            )
        elif self.apply:
            self._commit(
                f"stableVersion already {live}, canaryPercent 0: applying them, in case they "
                "are not deployed"
            )
        else:
            raise ReleaseError(f"stableVersion is already {live}: the release has started")

    def advance(self, clients: AwsClients | None = None, now: datetime | None = None) -> float:
        """Move the canary's share to the next step of the schedule.

        With ``clients``, the share AWS serves now is read first: when it is not the file's
        (an earlier apply failed: the file says 25, AWS still sends 10), the file's share is
        applied again instead of stepping past it, so no share goes unbaked.

        From 0 the canary's pre-traffic check (:meth:`check`, which needs ``clients``) runs
        first: a failure stops here, with nothing changed. The first step is then chosen from
        :attr:`first_steps`, if any, by live's traffic in the hour before ``now``."""
        current = self._percent()
        outputs = None
        state = None
        if clients is not None:
            state = self.read_state(clients)
            outputs = state.outputs
            self._report(state)
            if self.apply and not state.serves_the_file:
                self.out(
                    f"applying canaryPercent {current:g} first, so AWS serves it; run advance "
                    "again after its bake"
                )
                self._commit(f"canaryPercent {current:g} (unchanged, re-applied)")
                return current
        following = self._following_steps()
        if not following:
            raise ReleaseError(
                f"canaryPercent is {current:g}, at or past the last step "
                f"({self.steps[-1]:g}): promote instead"
            )
        if current == 0:
            if clients is None:
                raise ReleaseError(
                    "canaryPercent is 0: advancing from it runs the pre-traffic check, which "
                    "invokes the canary in AWS"
                )
            self.check(clients, outputs)
            if self.first_steps and state is not None:
                following = [self._first_step(clients, state, now or datetime.now(UTC))]
        self.config.set("canaryPercent", f"{following[0]:g}")
        self._commit(f"canaryPercent {current:g} -> {following[0]:g}")
        return following[0]

    def _first_step(self, clients: AwsClients, state: StackState, now: datetime) -> float:
        """Of :attr:`first_steps`, the one live's traffic in the hour before ``now`` lets a
        canary as good as live pass within the bake; the smallest when that traffic cannot be
        read."""
        live = self._traffic_dimensions(state.outputs, state.mode)["live"]
        hour = aws.live_requests_and_errors(
            clients.cloudwatch, dimensions=live, start=now - BASELINE, end=now - SETTLE
        )
        if hour is None:
            first = min(self.first_steps)
            self.out(f"first step {first:g}%: live's traffic in the hour before could not be read")
            return first
        if not hour.requests:
            first = max(self.first_steps)
            self.out(f"first step {first:g}%: live served no request in the hour before")
            return first
        per_minute = hour.requests / hour.minutes
        error_rate = hour.errors / hour.requests if hour.requests else 0.0
        config = self.judge_config
        first = choose_first_step(config, error_rate, LIVE_SLOW_RATE, per_minute, self.first_steps)
        needs = plan_step(config, error_rate, LIVE_SLOW_RATE, first / 100, per_minute * first / 100)
        self.out(
            f"first step {first:g}% (of {', '.join(f'{s:g}' for s in self.first_steps)}): at "
            f"live's {per_minute:.0f} requests a minute in the hour before, a canary as good as "
            f"live needs about {needs.minutes(60):.0f} minutes to pass it (bake "
            f"{config.max_periods * config.period_seconds // 60} minutes)"
        )
        return first

    def promote(self, clients: AwsClients | None = None, unverified: Sequence[str] = ()) -> None:
        """Pin the canary's version as stable, and close the canary's share: the next
        deploy's version takes no traffic until its pre-traffic check passes.
        With ``clients``, where the file and AWS differ is reported first. ``unverified``: the
        shares whose step passed without the evidence, which a note above ``stableVersion``
        records (a verified promotion removes an old note)."""
        outputs = self._outputs()
        if clients is not None:
            self._report(self.read_state(clients, outputs))
        canary, live = str(outputs["canaryVersion"]), str(outputs["liveVersion"])
        if canary == live:
            raise ReleaseError(f"the canary serves v{canary}, as live does: nothing to promote")
        self.config.set("stableVersion", canary)
        self.config.set("canaryPercent", "0")
        note = None
        if unverified:
            note = (
                f"v{canary} promoted UNVERIFIED on {datetime.now(UTC):%Y-%m-%d}: the steps at "
                f"{', '.join(unverified)} passed without the evidence (--on-timeout PROMOTE)"
            )
            self.out(f"{self.config.path.name}: note above stableVersion: {note}")
        self.config.note("stableVersion", note)
        self._commit(
            f"stableVersion v{live} -> v{canary}; canaryPercent reset to 0: the next deploy's "
            "version waits for its check"
        )

    def check(self, clients: AwsClients, outputs: dict[str, Any] | None = None) -> None:
        """The pre-traffic check: invoke the canary alias directly with each route's sample
        requests (and the checks file's), rendered by the routes' real request templates, and
        judge each reply as API Gateway would answer the client. Every request is sent and
        shown; any failure raises :class:`ReleaseError` after them. Changes nothing of the
        stack; a write request records its event in the stack's table."""
        # The check's templates and gateway model load the Pulumi SDK: only the check pays.
        from release import smoke  # noqa: PLC0415

        outputs = outputs or self._outputs()
        function, alias = str(outputs["functionName"]), str(outputs["canaryAlias"])
        version, stage = str(outputs["canaryVersion"]), str(outputs["stage"])
        routes = (self.smoke_routes or self.program_routes)(outputs)
        try:
            requests = smoke.default_requests(routes, version) + smoke.load_checks(
                self.config.path.parent, routes
            )
        except smoke.CheckError as error:
            raise ReleaseError(f"pre-traffic check: {error}; nothing was invoked") from error
        self.out(
            f"pre-traffic check of v{version}: {len(requests)} request(s) to {function}:{alias}"
        )
        unchecked = smoke.unchecked_routes(routes, requests)
        if unchecked:
            self.out(f"  not checked (a path parameter): {', '.join(unchecked)}")
        failed = 0
        for request in requests:
            route = smoke.route_for(request, routes)
            sent = smoke.gateway_request(request, stage, alias)
            invoked = self._invoke(clients, function, alias, smoke.event_payload(sent, route))
            outcome = smoke.judge_reply(request, sent, invoked, version, route.responses)
            failed += not outcome.passed
            for line in smoke.describe_outcome(outcome):
                self.out(line)
        if failed:
            raise ReleaseError(
                f"pre-traffic check failed: {failed} of {len(requests)} request(s) (above); "
                f"nothing was changed, canaryPercent stays {self._percent():g}. Fix the code and "
                f"deploy again ('make up STACK={self.stack}'); 'make release-check "
                f"STACK={self.stack}' checks again"
            )
        self.out(f"pre-traffic check passed: v{version} answered every request as expected")

    def _invoke(
        self, clients: AwsClients, function: str, alias: str, payload: bytes
    ) -> aws.Invoked:
        try:
            return aws.invoke(clients.invoker or clients.lambda_, function, alias, payload)
        except aws.AwsError as error:
            if error.kind == "credentials":
                raise
            raise ReleaseError(
                f"pre-traffic check: {error.message}{_invoke_advice(error, function, alias)}"
            ) from error

    def program_routes(self, outputs: dict[str, Any]) -> list[smoke.Route]:
        """The stage's routes and request templates from the stack's program, run with the
        stack file's config under recording mocks, as ``make plan`` runs it: the templates the
        last deploy made from the same program and file."""
        from release import smoke  # noqa: PLC0415 - as in check
        from versioned_lambda_api.testing import ProgramError, run_program  # noqa: PLC0415

        try:
            run = run_program(
                self.config.path.parent,
                self.stack,
                published_version=int(outputs["canaryVersion"]),
            )
            return smoke.stage_routes(run.graph, str(outputs["stage"]))
        except (ProgramError, smoke.CheckError) as error:
            raise ReleaseError(
                f"pre-traffic check: cannot read the routes from the program: {error}"
            ) from error

    def rollback(self, clients: AwsClients | None, outputs: dict[str, Any] | None = None) -> None:
        """Send no traffic to the canary: at once through AWS, then in the config file.

        AWS is the truth for traffic: the live stage canary and alias weights are read first,
        and whatever still sends requests to the canary is stopped, even when the file already
        says 0 (an earlier ``--no-apply``, a hand edit). Without ``clients`` only the file is
        edited. ``outputs``: the stack's, if the caller has read them (saves a Pulumi CLI
        call)."""
        if clients is None:
            if self._percent() == 0:
                raise ReleaseError("canaryPercent is already 0: no traffic reaches the canary")
            self.config.set("canaryPercent", "0")
            self._commit("canaryPercent -> 0 (rolled back)")
            return
        state = self.read_state(clients, outputs)
        live = state.live
        if live.percent == 0 and self._percent() == 0:
            if not (self.apply and state.file_not_deployed):
                raise ReleaseError(
                    "no traffic reaches the canary: AWS sends it none and canaryPercent is 0"
                )
            # An earlier rollback stopped AWS and edited the file, but its apply failed:
            # converge by applying the file, so the stack records the rollback too.
            self._report(state)
            self._commit("canaryPercent 0 (unchanged, re-applied)")
            return
        self._report(state)
        aws_changed = None
        if live.percent > 0:
            self.out(f"AWS: {live.describe()}")
            self._stop_canary_now(clients, state.outputs, live)
            # Read back, so what this step reports (and an interrupt after it) is AWS' word.
            after = self.read_state(clients, state.outputs).live
            if after.percent > 0:
                raise CanaryStillLiveError(
                    f"AWS accepted the rollback, but reads back '{after.describe()}': "
                    f"someone changed it since; run 'make release-rollback STACK={self.stack}' "
                    "again"
                )
            aws_changed = "AWS sends the canary no traffic now"
        else:
            self.out("AWS already sends the canary no traffic; recording it in the stack file")
        if self._percent() != 0:
            self.config.set("canaryPercent", "0")
            self._commit("canaryPercent -> 0 (rolled back)", aws_changed=aws_changed)

    def _stop_canary_now(
        self, clients: AwsClients, outputs: dict[str, Any], live: aws.LiveTraffic
    ) -> None:
        """Stop every mechanism AWS shows sending the canary traffic, whatever the file's mode."""
        if live.stage is not None and live.stage.percent > 0:
            stopped = aws.stop_stage_canary(
                clients.apigateway, str(outputs["restApiId"]), str(outputs["stage"])
            )
            self.out(stopped.message)
        if live.alias is not None and live.alias.percent > 0:
            stopped = aws.stop_alias_canary(
                clients.lambda_, str(outputs["functionName"]), str(outputs["liveAlias"])
            )
            self.out(stopped.message)

    # --- judging -----------------------------------------------------------------------

    def measure(
        self,
        clients: AwsClients,
        dimensions: dict[Role, dict[str, str]],
        since: datetime,
        until: datetime,
        latency_threshold_ms: float,
    ) -> tuple[aws.TrustedWindow, Verdict]:
        """Both sides' metrics from ``since`` to ``until`` and the judge's verdict on the
        minutes CloudWatch answered in full (a minute it did not is left out, never zero)."""
        window = aws.read_trusted_metrics(
            clients.cloudwatch,
            dimensions=dimensions,
            start=since,
            end=until,
            latency_threshold_ms=latency_threshold_ms,
        )
        return window, judge(window.usable_periods, self.judge_config)

    def latency_threshold(
        self, clients: AwsClients, live: dict[str, str], before: datetime
    ) -> float:
        """The configured threshold, or the p99 of ``live`` (its dimensions) over the hour
        before ``before``, so that about 1% of live's requests count as slow and the slow test
        has events to compare."""
        if self.latency_threshold_ms is not None:
            return self.latency_threshold_ms
        p99 = aws.live_p99_ms(
            clients.cloudwatch, dimensions=live, start=before - BASELINE, end=before
        )
        if p99 is None:
            self.out(
                f"slow: no p99 of live for the hour before (no traffic, or CloudWatch answered "
                f"in part), so over {FALLBACK_LATENCY_THRESHOLD_MS:g} ms "
                "(--latency-threshold-ms to choose)"
            )
            return FALLBACK_LATENCY_THRESHOLD_MS
        self.out(f"slow: over {p99:.0f} ms, live's p99 in the hour before")
        return p99

    def status_report(self, clients: AwsClients, minutes: int, now: datetime) -> StatusReport:
        """Both sides and the judge's verdict over the last ``minutes`` before ``now``, less
        the newest minutes CloudWatch may still be filling in, and where the file, the last
        deploy and AWS differ."""
        state = self.read_state(clients)
        dimensions = self._traffic_dimensions(state.outputs, state.mode)
        since, until = now - timedelta(minutes=minutes), now - SETTLE
        threshold = self.latency_threshold(clients, dimensions["live"], since)
        window, verdict = self.measure(clients, dimensions, since, until, threshold)
        return StatusReport(
            since=aws.floor_to(since, 60),
            until=aws.floor_to(until, 60),
            latency_threshold_ms=threshold,
            state=state,
            window=window,
            verdict=verdict,
        )

    def status(self, clients: AwsClients, minutes: int, now: datetime) -> Verdict:
        """Print the status report for people; returns its verdict."""
        report = self.status_report(clients, minutes, now)
        self.out(
            f"stack {self.stack}, {report.since:%H:%M}-{report.until:%H:%M} UTC "
            f"(CloudWatch's newest {SETTLE.seconds // 60} min left out: still arriving)"
        )
        self.out(f"AWS: {report.state.live.describe()}")
        self._report(report.state)
        for line in format_status(report):
            self.out(line)
        return report.verdict

    def watch(
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
            self.out("stopped watching: watch again once the first step is deployed")
            return "ADVANCED"
        state = opened
        outputs = state.outputs
        started = now()
        dimensions = self._traffic_dimensions(outputs, state.mode)
        run = self._watch_run(clients, outputs, dimensions, started)
        following = self._following_steps()
        then = f" (then {', '.join(f'{step:g}' for step in following)})" if following else ""
        limit = f"; stopping after {max_minutes} min" if max_minutes is not None else ""
        self.out(
            f"watching the canary at {self._percent():g}%{then}: each step until the judge "
            f"decides on evidence{limit}"
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
                seen = self.read_state(clients, outputs)
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
                    self.out(f"stopped watching after {max_minutes} min with no decision")
                    return "CONTINUE"
                continue
            with self._acting():
                # Under the lock, what others did so far is final: read it once more.
                outcome = self._act(verdict, state, self.read_state(clients, outputs), clients, run)
            if outcome != "ADVANCED":
                return outcome
            # Saved first: a watch stopped by the check below resumes at the new share.
            self._next_step(run)
            state = self._check_applied(clients, outputs)

    @property
    def _progress_path(self) -> Path:
        return progress.progress_path(self.config.path)

    def _next_step(self, run: progress.Progress) -> None:
        """The file's share is the next step's: the judge starts it, and the progress says so."""
        run.judge.start_step()
        run.percent = self._percent()
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
        saved, unusable = progress.load(self._progress_path, self.judge_config)
        mismatch = saved.matches(live, canary, self._percent()) if saved is not None else None
        if saved is not None and mismatch is None:
            judged = saved.judge.verdict.evidence
            self.out(
                f"resuming this release's evidence, judged until {saved.judged_until:%H:%M} "
                f"UTC: step {judged['step']:g}, {judged['canary_requests']:,.0f} canary requests"
            )
            return saved
        if unusable or mismatch:
            self.out(
                f"judging afresh: the saved progress is not this release's ({unusable or mismatch})"
            )
        threshold = self.latency_threshold(clients, dimensions["live"], started)
        return progress.Progress(
            live_version=live,
            canary_version=canary,
            percent=self._percent(),
            threshold_ms=threshold,
            judged_until=aws.floor_to(started, 60),
            judge=JudgeState(self.judge_config),
        )

    def _say_source(self, window: aws.TrustedWindow) -> None:
        """Say where the evidence comes from whenever that changes: the function's own
        counts, or Lambda's minutes and why."""
        source = (window.source, window.period_seconds)
        if not window.minutes or source == self._source:
            return  # an empty window says nothing of where the evidence comes from
        self._source = source
        if window.source == "function":
            self.out(f"evidence: the function's own counts, every {window.period_seconds} s")
        else:
            why = f" ({window.fallback})" if window.fallback else ""
            self.out(f"evidence: Lambda's per-minute metrics{why}")

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
        needed = minutes_needed(self.judge_config, evidence)
        when = "more than a day" if math.isinf(needed) else f"about {needed:,.0f} min more"
        self.out(
            f"step {step} at {self._percent():g}%: at this traffic a canary as good as live "
            f"passes in {when} (a plan: Wald's average, not a promise)"
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
        needed = minutes_needed(self.judge_config, verdict.evidence, recent)
        if needed * 60 > UNDECIDABLE.total_seconds():
            raise CanaryStillLiveError(
                f"stopped watching: undecidable at this traffic. {verdict.reason} That is more "
                f"than {UNDECIDABLE.total_seconds() / 3600:g} h more: the canary still takes "
                f"{self._percent():g}%; 'make release-rollback STACK={self.stack}' stops it, "
                "watching with '--on-timeout PROMOTE' promotes it UNVERIFIED"
            )
        step = int(verdict.evidence["step"])
        if self._announced_step != step:
            self._announced_step = step
            self.out(
                f"step {step} is undecided after its bake; at this traffic the evidence needs "
                f"about {needed:,.0f} min more: watching on"
            )

    @contextmanager
    def _acting(self) -> Iterator[None]:
        """Hold the stack's lock for one of watch's actions (watch judges without it, so a
        colleague can roll back meanwhile)."""
        try:
            with self.exclusive():
                yield
        except StackLockedError as error:
            raise CanaryStillLiveError(
                f"stopped watching: {error}. The canary still takes {self._percent():g}% "
                f"unwatched: 'make release-watch STACK={self.stack}' resumes"
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
            changes = self._version_changes(seen.outputs, self._outputs())
        if changes:
            outcome = self._changed_by_others(changes, seen, verdict, clients)
            progress.clear(self._progress_path)
            return outcome
        if verdict.decision == "ROLLBACK":
            self._explain("rolling back", verdict)
            self.rollback(clients, seen.outputs)
            progress.clear(self._progress_path)
            return "ROLLBACK"
        if not verdict.verified:
            run.unverified.append(f"{self._percent():g}%")
            self.out(f"UNVERIFIED: step {verdict.evidence['step']:g} passes without the evidence")
        if not self._following_steps():
            self._explain("promoting", verdict)
            self.promote(unverified=run.unverified)
            progress.clear(self._progress_path)
            return "PROMOTE"
        self._explain("advancing", verdict)
        self.advance()
        if not self.apply:
            # The next watch, once the new share is deployed, resumes with this evidence.
            self._next_step(run)
            self.out("stopped watching: watch again once the new share is deployed")
            return "PROMOTE"
        return "ADVANCED"

    def _watchable(self, clients: AwsClients, now: datetime) -> StackState | None:
        """The state ``watch`` starts from, refused when there is no canary to judge or AWS
        does not serve the share the file sets. At share 0: the first step opened after the
        pre-traffic check, or ``None`` when ``--no-apply`` left it to deploy."""
        outputs = self._outputs()
        if str(outputs["canaryVersion"]) == str(outputs["liveVersion"]):
            raise ReleaseError(
                f"the canary serves v{outputs['liveVersion']}, as live does: nothing to watch; "
                "pin the live version ('start') and deploy new code first"
            )
        state = self.read_state(clients, outputs)
        if self._report(state):
            raise ReleaseError(
                "watch judges the share the file sets, and AWS does not serve it (see above): "
                "'advance' applies the file's share again, 'rollback' stops the canary"
            )
        if self._percent() > 0:
            return state
        try:
            with self.exclusive():
                self.advance(clients, now)
        except StackLockedError as error:
            raise ReleaseError(
                f"{error}; the canary takes no traffic and nothing was changed"
            ) from error
        if not self.apply:
            return None
        return self._check_applied(clients, outputs)

    def _say_period(self, elapsed: str, window: aws.TrustedWindow, verdict: Verdict) -> None:
        """One line a period: the release's evidence so far and the verdict."""
        if window.unusable:
            self.out(f"{elapsed} {_unusable(window)}")
        evidence = verdict.evidence
        if not evidence["canary_requests"]:
            self.out(f"{elapsed} {self._percent():g}%: no canary request judged yet")
            return
        self.out(
            f"{elapsed} {self._percent():g}%: canary {_errors_of(evidence, 'canary')} | live "
            f"{_errors_of(evidence, 'live')} -> {verdict.decision}"
        )

    def _changes(self, before: StackState, seen: StackState) -> list[str]:
        """What someone else changed in the file or in AWS since ``before`` was read."""
        changes = [
            f"{self.config.path.name}: {change}"
            for change in self.config.changed_by_others(*RELEASE_KEYS)
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
            self.out(f"someone else changed the release ({why}); the canary fails, so:")
            self._explain("rolling back", verdict)
            self.rollback(clients, seen.outputs)
            return "ROLLBACK"
        if seen.live.percent > 0:
            raise CanaryStillLiveError(
                f"stopped watching: someone else changed the release ({why}). The canary "
                f"still takes {share(seen.live.percent)}% ({seen.live.describe()}) and the "
                f"minutes so far describe another state: 'make release-watch STACK="
                f"{self.stack}' judges it afresh, 'make release-rollback STACK={self.stack}' "
                "stops it"
            )
        raise ReleaseError(
            f"stopped watching: someone else changed the release ({why}); AWS sends the "
            "canary no traffic now"
        )

    def _check_applied(self, clients: AwsClients, outputs: dict[str, Any]) -> StackState:
        """After watch's own advance: AWS must serve the file's new share, which the next
        periods judge."""
        state = self.read_state(clients, outputs)
        if not state.serves_the_file:
            raise CanaryStillLiveError(
                f"stopped watching: canaryPercent {self._percent():g} is applied, but AWS "
                f"sends the canary {share(state.live.percent)}% ({state.live.describe()}): "
                f"'make release-status STACK={self.stack}' shows the difference"
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
                f"({error.message}); the canary still takes {self._percent():g}% of the "
                f"requests: 'make release-watch STACK={self.stack}' resumes, "
                f"'make release-rollback STACK={self.stack}' stops it"
            ) from error
        self.out(f"{elapsed} AWS unreadable ({error.message}); trying again next minute")

    def _explain(self, action: str, verdict: Verdict) -> None:
        for line in textwrap.wrap(f"{action}: {verdict.reason}", width=78, subsequent_indent="  "):
            self.out(line)


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


def _invoke_advice(error: aws.AwsError, function: str, alias: str) -> str:
    """What to do about an Invoke that AWS refused for a reason the operator can fix."""
    code = getattr(error.__cause__, "response", {}).get("Error", {}).get("Code")
    if code == "AccessDeniedException":
        return (
            f"; the check needs lambda:InvokeFunction on {function}:{alias} (the function's ARN "
            f"with the qualifier :{alias})"
        )
    if code == "ResourceNotFoundException":
        return f"; no alias {alias} of {function}: deploy the stack first ('make up')"
    return ""
