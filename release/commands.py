"""The release steps: start, check, advance, promote, roll back, status and watch.

Every step changes the stack only through its config file and then applies that file with
the Automation API (unless ``--no-apply``), so the deployed state never drifts from the code.
Rollback first stops the canary directly through AWS, so it takes effect in seconds. A new
version takes no traffic until it has passed its pre-traffic check (:mod:`release.smoke`):
``start`` and ``promote`` leave the canary's share at 0, and ``advance`` and ``watch`` leave 0
only after the check.

Before acting, a step reads what AWS serves and reports where it differs from the file and the
last deploy (:mod:`release.state`); ``watch`` does so every period and stops when someone else
changed either. ``watch``'s loop, which judges every period and takes these steps, is
:mod:`release.watch`'s; the status report's shape and its text for people are
:mod:`release.status`'s.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from release import aws
from release.config_file import ConfigFileError, StackConfigFile
from release.deploy import ApplyError, Deployer
from release.judge import JudgeConfig, Verdict, choose_first_step, judge
from release.state import FileSays, Mode, StackState
from release.status import StatusReport, format_status
from versioned_lambda_api.metrics import Role, stage_traffic

if TYPE_CHECKING:
    from release import smoke

# The smaller the first step, the fewer users a bad canary reaches before the judge acts, and
# the longer a good one takes to pass; where traffic is low a small step leaves good releases
# undecided for hours. So by default the first step is the smallest of DEFAULT_FIRST_STEPS at
# which live's traffic in the hour before lets a good canary pass within the bake
# (judge.choose_first_step); DEFAULT_STEPS[0] when that traffic cannot be read.
DEFAULT_STEPS = (5.0, 25.0, 50.0)
DEFAULT_FIRST_STEPS = (1.0, 2.0, 5.0, 10.0)
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

    # --- state -------------------------------------------------------------------------

    @property
    def stack(self) -> str:
        return self.config.stack

    def read_outputs(self) -> dict[str, Any]:
        """The stack's outputs; :class:`ReleaseError` when it lacks those a release needs (not
        deployed yet)."""
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

    def canary_percent(self) -> float:
        """The canary's share the stack file sets."""
        return float(self.config.get("canaryPercent") or 0)

    def following_steps(self) -> list[float]:
        """The steps of the schedule above the current canary share."""
        return [step for step in self.steps if step > self.canary_percent()]

    def file_says(self) -> FileSays:
        # The program's config reader loads the Pulumi SDK: only the steps that read the
        # stack's outputs (which load it anyway) ask this.
        from stack_config import DEFAULTS  # noqa: PLC0415

        mode = self.config.get("canaryMode") or DEFAULTS["canaryMode"]
        return FileSays(
            percent=self.canary_percent(),
            mode="alias" if mode == "alias" else "stage",
            stable_version=self.config.get("stableVersion") or None,
        )

    def read_state(self, clients: AwsClients, outputs: dict[str, Any] | None = None) -> StackState:
        """The file, the stack's outputs (read unless given) and what AWS serves now."""
        outputs = outputs or self.read_outputs()
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

    def report_drift(self, state: StackState) -> list[str]:
        """Print where the file, the last deploy and AWS differ; returns the differences."""
        differences = state.differences()
        for difference in differences:
            for line in textwrap.wrap(f"drift: {difference}", width=78, subsequent_indent="  "):
                self.out(line)
        return differences

    def traffic_dimensions(self, outputs: dict[str, Any], mode: Mode) -> dict[Role, dict[str, str]]:
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
        outputs = self.read_outputs()
        if clients is not None:
            self.report_drift(self.read_state(clients, outputs))
        live, share_was = str(outputs["liveVersion"]), self.canary_percent()
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
        current = self.canary_percent()
        outputs = None
        state = None
        if clients is not None:
            state = self.read_state(clients)
            outputs = state.outputs
            self.report_drift(state)
            if self.apply and not state.serves_the_file:
                self.out(
                    f"applying canaryPercent {current:g} first, so AWS serves it; run advance "
                    "again after its bake"
                )
                self._commit(f"canaryPercent {current:g} (unchanged, re-applied)")
                return current
        following = self.following_steps()
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
        """Of :attr:`first_steps`, the smallest at which live's traffic in the hour before
        ``now`` lets a canary as good as live pass within the bake; the first of :attr:`steps`
        when that traffic cannot be read."""
        live = self.traffic_dimensions(state.outputs, state.mode)["live"]
        hour = aws.live_requests_and_errors(
            clients.cloudwatch, dimensions=live, start=now - BASELINE, end=now - SETTLE
        )
        if hour is None:
            self.out(
                f"first step {self.steps[0]:g}%: live's traffic in the hour before could not be "
                "read"
            )
            return self.steps[0]
        per_minute = hour.requests / hour.minutes
        error_rate = hour.errors / hour.requests if hour.requests else 0.0
        config = self.judge_config
        first = choose_first_step(config, error_rate, LIVE_SLOW_RATE, per_minute, self.first_steps)
        if not hour.requests:
            self.out(f"first step {first.percent:g}%: live served no request in the hour before")
            return first.percent
        self.out(
            f"first step {first.percent:g}% (of {', '.join(f'{s:g}' for s in self.first_steps)}): "
            f"at live's {per_minute:.0f} requests a minute in the hour before, a canary as good "
            f"as live needs about {first.minutes:.0f} minutes to pass it (bake "
            f"{config.max_periods * config.period_seconds // 60} minutes)"
        )
        return first.percent

    def promote(self, clients: AwsClients | None = None, unverified: Sequence[str] = ()) -> None:
        """Pin the canary's version as stable, and close the canary's share: the next
        deploy's version takes no traffic until its pre-traffic check passes.
        With ``clients``, where the file and AWS differ is reported first. ``unverified``: the
        shares whose step passed without the evidence, which a note above ``stableVersion``
        records (a verified promotion removes an old note)."""
        outputs = self.read_outputs()
        if clients is not None:
            self.report_drift(self.read_state(clients, outputs))
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

        outputs = outputs or self.read_outputs()
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
                f"nothing was changed, canaryPercent stays {self.canary_percent():g}. Fix the code "
                f"and deploy again ('make up STACK={self.stack}'); 'make release-check "
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
            if self.canary_percent() == 0:
                raise ReleaseError("canaryPercent is already 0: no traffic reaches the canary")
            self.config.set("canaryPercent", "0")
            self._commit("canaryPercent -> 0 (rolled back)")
            return
        state = self.read_state(clients, outputs)
        live = state.live
        if live.percent == 0 and self.canary_percent() == 0:
            if not (self.apply and state.file_not_deployed):
                raise ReleaseError(
                    "no traffic reaches the canary: AWS sends it none and canaryPercent is 0"
                )
            # An earlier rollback stopped AWS and edited the file, but its apply failed:
            # converge by applying the file, so the stack records the rollback too.
            self.report_drift(state)
            self._commit("canaryPercent 0 (unchanged, re-applied)")
            return
        self.report_drift(state)
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
        if self.canary_percent() != 0:
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
        dimensions = self.traffic_dimensions(state.outputs, state.mode)
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
        self.report_drift(report.state)
        for line in format_status(report):
            self.out(line)
        return report.verdict


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
