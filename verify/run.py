"""One verification run: deploy the throwaway stack, send it traffic, release and roll back a
canary through the release tool, read what AWS recorded, decide every check
(:mod:`verify.checks`), and destroy the stack whatever happened (unless kept)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from pathlib import Path
from typing import Any

from release.aws import FUNCTION_NAMESPACE, AwsError, AwsErrorKind, aws_call, metric_query
from release.commands import SETTLE, AwsClients, Release, ReleaseError
from release.config_file import ConfigFileError, StackConfigFile
from release.deploy import ApplyError, StackBusyError
from verify import checks
from verify.checks import CheckResult, Sample, ServedBy
from verify.http import HttpTransport
from verify.report import Report
from verify.stack import CANARY_PERCENT, ThrowawayStack, next_event_shards, throwaway_config
from versioned_lambda_api import names
from versioned_lambda_api.metrics import lambda_version_dimensions

COMPONENT = "event-logger"
"""The name __main__.py gives the component: its alarms are named after it."""
MATH_ALARM_ROLE = "canary-error-rate-alarm"
"""The role in the name of the canary's alarm that uses metric math (names.alarm_role)."""
UNANSWERED: dict[str, AwsErrorKind] = {"InternalError": "unreachable", "Forbidden": "refused"}
"""GetMetricData's per-query statuses that answer nothing, and what they mean for a retry."""
DESTROY_ATTEMPTS = 4
DESTROY_RETRY_SECONDS = 20.0
CANARY_PHASES = ("canary", "rollback")
"""The requests sent while a canary version was deployed."""
OUTPUT_KEYS = (
    "url",
    "apiKey",
    "stage",
    "functionName",
    "restApiId",
    "liveAlias",
    "canaryAlias",
    "liveVersion",
    "canaryVersion",
    "canaryMode",
)


LIVE_REQUESTS = 20
CANARY_REQUESTS = 200
"""At a 50% share the binomial interval is 77-123: a share off by a quarter fails."""
ROLLBACK_DEADLINE_SECONDS = 60.0
WARM_UP_SECONDS = 120.0
"""How long a deploy may take to reach the stage's answers (a new API key, a new canary)."""
SETTLE_DEADLINE_SECONDS = 600.0
"""How long CloudWatch's metrics, the function's log lines and the alarm are waited for."""
POLL_SECONDS = 15.0
LATENCY_THRESHOLD_MS = 1000.0
"""The T of the PR(:T) query: any threshold shows whether CloudWatch takes the statistic."""


@dataclass
class VerifyClients:
    cloudwatch: Any
    apigateway: Any
    lambda_: Any
    logs: Any

    def release(self) -> AwsClients:
        return AwsClients(self.cloudwatch, self.apigateway, self.lambda_)


class VerifyAbortedError(Exception):
    """A step every later check depends on failed."""


@dataclass
class _Evidence:
    """What CloudWatch and the function's log say, read again every poll."""

    invocations: dict[ServedBy, float] = field(default_factory=dict)
    emf_requests: dict[ServedBy, float] = field(default_factory=dict)
    logged: dict[str, str] = field(default_factory=dict)
    alarm: str | None = None
    alarm_state: str | None = None
    alarm_reason: str = ""
    alarm_queries: list[dict[str, Any]] = field(default_factory=list)
    lag_seconds: float | None = None
    refused: dict[str, str] = field(default_factory=dict)
    """Source (metrics, log, alarm) -> AWS' words refusing to read it."""


@dataclass
class Verification:
    program_dir: Path
    project: str
    source_stack: str
    stack: ThrowawayStack
    clients: VerifyClients
    http: HttpTransport
    region: str
    out: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    keep: bool = False
    report: Report = field(init=False)
    _wrote_file: bool = field(default=False, init=False)
    _created: bool = field(default=False, init=False)
    _outputs: dict[str, Any] = field(default_factory=dict, init=False)
    _samples: list[tuple[str, Sample]] = field(default_factory=list, init=False)
    _first_sent: datetime | None = field(default=None, init=False)
    _last_sent: datetime | None = field(default=None, init=False)

    @property
    def stack_file(self) -> Path:
        return self.program_dir / f"Pulumi.{self.stack.name}.yaml"

    def run(self) -> Report:
        """Every check, then the clean-up; a Ctrl-C still destroys the stack (and is raised
        again afterwards, with :attr:`report` saying what was done)."""
        self.report = Report(
            stack=self.source_stack,
            throwaway=self.stack.name,
            region=self.region,
            started_at=self.now().isoformat(timespec="seconds"),
        )
        try:
            self._verify()
        except (
            ApplyError,
            AwsError,
            ReleaseError,
            ConfigFileError,
            VerifyAbortedError,
        ) as error:
            self.report.aborted = str(error)
        finally:
            self.report.results.sort(key=lambda result: checks.CHECKS.index(result.name))
            self._clean_up()
        return self.report

    # --- the steps ----------------------------------------------------------------------

    def _verify(self) -> None:
        source = self.program_dir / f"Pulumi.{self.source_stack}.yaml"
        if self.stack_file.exists():
            raise VerifyAbortedError(f"{self.stack_file} exists already: run verify again")
        self.stack_file.write_text(throwaway_config(source.read_text(), source.name, self.project))
        self._wrote_file = True
        self.out(f"==> creating throwaway stack {self.stack.name} (config of {source.name})")
        self.stack.create()
        self._created = True
        self.out(f"==> deploying {self.stack.name} (pulumi up; a few minutes)")
        self.stack.up(self._pulumi_line)
        outputs = self._read_outputs()
        live = ServedBy(
            str(outputs["stage"]), str(outputs["liveAlias"]), str(outputs["liveVersion"])
        )

        self._guarded("endpoint-configuration", self._endpoint_configuration)
        self._warm_up(live, "the stage answering 200 from the live alias")
        self.out(f"==> {LIVE_REQUESTS} requests with no canary")
        samples = self._send_many("live", LIVE_REQUESTS)
        self._record(checks.served_by_live(samples, live))
        self._record(checks.content_type_charset(self._charset_post(), live))
        self._header_case()

        config = StackConfigFile(self.program_dir, self.project, self.stack.name)
        release = Release(config=config, deployer=self.stack, out=self._release_line)
        self.out("==> release start: pinning the live version (pulumi up)")
        release.start()
        canary = self._deploy_canary(config, live)
        self._warm_up(canary, "a request served by the canary")

        self.out(f"==> {CANARY_REQUESTS} requests at canaryPercent {CANARY_PERCENT:g}")
        samples = self._send_many("canary", CANARY_REQUESTS)
        self._record(checks.canary_share(samples, live, canary, CANARY_PERCENT))
        self._roll_back(config, canary)

        evidence = self._settle()
        self._decide_from(evidence)

    def _read_outputs(self) -> dict[str, Any]:
        outputs = self.stack.outputs()
        missing = [key for key in OUTPUT_KEYS if key not in outputs]
        if missing:
            raise VerifyAbortedError(
                f"stack {self.stack.name} has no outputs {missing}: is {self.program_dir} "
                "the Event Logger program?"
            )
        self._outputs = outputs
        return outputs

    def _deploy_canary(self, config: StackConfigFile, live: ServedBy) -> ServedBy:
        from stack_config import DEFAULTS, default_event_shards  # noqa: PLC0415 - loads Pulumi

        rate = float(config.get("throttleRateLimit") or DEFAULTS["throttleRateLimit"])
        shards = next_event_shards(config.get("eventShards"), default_event_shards(rate))
        config.set("eventShards", shards)
        config.set("canaryPercent", f"{CANARY_PERCENT:g}")
        config.save()
        self.out(
            f"==> deploying a second version as the canary: canaryPercent {CANARY_PERCENT:g}, "
            f"eventShards {shards} (reaches the function's environment, so Lambda publishes a "
            "new version; pulumi up)"
        )
        self.stack.up(self._pulumi_line)
        outputs = self._read_outputs()
        version = str(outputs["canaryVersion"])
        if version == live.version or str(outputs["liveVersion"]) != live.version:
            raise VerifyAbortedError(
                f"after the second deploy live serves v{outputs['liveVersion']} and the canary "
                f"v{version}; expected live to stay on v{live.version} and a new canary version"
            )
        alias = live.alias if outputs["canaryMode"] == "alias" else str(outputs["canaryAlias"])
        return ServedBy(live.stage, alias, version)

    def _roll_back(self, config: StackConfigFile, canary: ServedBy) -> None:
        self.out("==> release rollback (through AWS; the stack file only records it)")
        # Timed from the command's start, as a person rolling back counts.
        rolled_back_at = self.clock()
        Release(config=config, deployer=self.stack, apply=False, out=self._release_line).rollback(
            self.clients.release(), self._outputs
        )
        samples: list[Sample] = []
        streak = 0
        deadline = rolled_back_at + ROLLBACK_DEADLINE_SECONDS
        while streak < checks.ROLLBACK_STREAK and self.clock() < deadline:
            sample = self._get("rollback")
            samples.append(sample)
            served_by_live = sample.status == 200 and sample.served_by not in (None, canary)
            streak = streak + 1 if served_by_live else 0
        self._record(checks.rollback_stops_canary(samples, rolled_back_at, canary))

    # --- requests -----------------------------------------------------------------------

    def _warm_up(self, served_by: ServedBy, what: str) -> None:
        """Wait for a deploy to reach the stage's answers: API Gateway takes a moment to
        apply a new API key or canary everywhere, and requests before that would be counted
        against what it is about to serve."""
        self.out(f"==> waiting for {what} ({served_by})")
        deadline = self.clock() + WARM_UP_SECONDS
        while True:
            sample = self._get("warm-up")
            if sample.status == 200 and sample.served_by == served_by:
                return
            if self.clock() >= deadline:
                raise VerifyAbortedError(
                    f"no {what} within {WARM_UP_SECONDS:g} s: the last request "
                    f"was answered {sample.status} by {sample.served_by or 'no servedBy'}"
                )
            self.sleep(1.0)

    def _headers(self, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        key = str(self._outputs.get("apiKey") or "")
        return [("x-api-key", key), *extra] if key else list(extra)

    def _send(
        self, phase: str, method: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[Sample, dict[str, Any]]:
        url = str(self._outputs["url"]) + ("?limit=1" if method == "GET" else "")
        if self._first_sent is None:
            self._first_sent = self.now()
        try:
            response = self.http.request(method, url, self._headers(headers), body)
        except (OSError, HTTPException) as error:
            raise VerifyAbortedError(f"{method} {url} failed: {error}") from error
        try:
            reply = json.loads(response.body)
        except (UnicodeDecodeError, ValueError):
            reply = None
        self._last_sent = self.now()
        sample = Sample(
            status=response.status,
            served_by=checks.parse_served_by(response.body),
            request_id=response.headers.get("x-amzn-requestid", ""),
            at=self.clock(),
        )
        self._samples.append((phase, sample))
        return sample, reply if isinstance(reply, dict) else {}

    def _get(self, phase: str) -> Sample:
        return self._send(phase, "GET", [], None)[0]

    def _send_many(self, phase: str, count: int) -> list[Sample]:
        samples = []
        for number in range(1, count + 1):
            samples.append(self._get(phase))
            if number % 50 == 0 and number < count:
                self.out(f"    {number}/{count} sent")
        return samples

    def _post(self, headers: list[tuple[str, str]], body: dict[str, Any]) -> tuple[Sample, Any]:
        sample, reply = self._send("live", "POST", headers, json.dumps(body).encode())
        return sample, reply.get("replayed")

    def _charset_post(self) -> Sample:
        body = {"type": "make-verify", "check": "content-type-charset"}
        return self._post([("Content-Type", "application/json; charset=utf-8")], body)[0]

    def _header_case(self) -> None:
        headers = [
            ("Content-Type", "application/json"),
            ("iDEMPOTENCY-kEY", f"make-verify-{self.stack.name}"),
        ]
        body = {"type": "make-verify", "check": "header-case"}
        first, first_replayed = self._post(headers, body)
        second, second_replayed = self._post(headers, body)
        self._record(checks.header_case(first, first_replayed, second, second_replayed))

    # --- what AWS recorded --------------------------------------------------------------

    def _endpoint_configuration(self) -> CheckResult:
        with aws_call("reading the REST API"):
            api = self.clients.apigateway.get_rest_api(restApiId=str(self._outputs["restApiId"]))
        return checks.endpoint_configuration(api.get("endpointConfiguration", {}).get("types", []))

    def _served(self) -> Counter[ServedBy]:
        return Counter(sample.served_by for _, sample in self._samples if sample.served_by)

    def _window(self, period: timedelta) -> tuple[datetime, datetime]:
        assert self._first_sent is not None  # noqa: S101 - requests were sent before
        seconds = period.total_seconds()
        start = datetime.fromtimestamp(
            self._first_sent.timestamp() // seconds * seconds - seconds, UTC
        )
        return start, self.now() + period

    def _metric_data(
        self, queries: list[dict[str, Any]], period: timedelta = timedelta(minutes=1)
    ) -> dict[str, list[float]]:
        start, end = self._window(period)
        values: dict[str, list[float]] = {query["Id"]: [] for query in queries}
        token = None
        while True:
            extra: dict[str, str] = {"NextToken": token} if token else {}
            with aws_call("reading CloudWatch metrics"):
                answer = self.clients.cloudwatch.get_metric_data(
                    MetricDataQueries=queries, StartTime=start, EndTime=end, **extra
                )
            for result in answer["MetricDataResults"]:
                values[result["Id"]] += [float(value) for value in result["Values"]]
                status = result.get("StatusCode")
                if status in UNANSWERED:
                    said = "; ".join(m.get("Value", "") for m in result.get("Messages", []))
                    raise AwsError(
                        UNANSWERED[status],
                        f"reading CloudWatch metrics: query {result['Id']} answered {status} "
                        f"({said or 'no message'})",
                    )
            token = answer.get("NextToken")
            if not token:
                return values

    def _count_queries(self, who: Sequence[ServedBy]) -> list[dict[str, Any]]:
        function = str(self._outputs["functionName"])
        queries = []
        for index, served in enumerate(who):
            dimensions = lambda_version_dimensions(function, served.alias, served.version)
            queries.append(
                metric_query(f"invocations{index}", dimensions, "Invocations", "Sum", 60)
            )
            queries.append(
                metric_query(
                    f"emf{index}", dimensions, "Requests", "Sum", 10, namespace=FUNCTION_NAMESPACE
                )
            )
        return queries

    def _read_logs(self, evidence: _Evidence, since_ms: int) -> None:
        with aws_call("reading the function's configuration"):
            configuration = self.clients.lambda_.get_function_configuration(
                FunctionName=str(self._outputs["functionName"])
            )
        # Lambda's default group, unless the function names its own (the component does).
        function = str(self._outputs["functionName"])
        group = configuration.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function}"
        token = None
        while True:
            extra: dict[str, str] = {"nextToken": token} if token else {}
            with aws_call(f"reading log group {group}"):
                answer = self.clients.logs.filter_log_events(
                    logGroupName=group,
                    startTime=since_ms,
                    filterPattern='"isCanaryRequest"',
                    **extra,
                )
            for event in answer.get("events", []):
                try:
                    line = json.loads(event["message"])
                except ValueError:
                    continue
                if isinstance(line, dict) and "apiRequestId" in line:
                    evidence.logged[str(line["apiRequestId"])] = str(line.get("isCanaryRequest"))
            token = answer.get("nextToken")
            if not token:
                return

    def _read_alarm(self, evidence: _Evidence) -> None:
        # Pulumi names an alarm <logical name>-<7 hex>.
        stage = str(self._outputs["stage"])
        prefix = f"{names.stage_child(COMPONENT, MATH_ALARM_ROLE, stage)}-"
        with aws_call("reading the canary's alarms"):
            answer = self.clients.cloudwatch.describe_alarms(
                AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]
            )
        alarms = answer.get("MetricAlarms", [])
        if alarms:
            alarm = alarms[0]
            evidence.alarm = alarm["AlarmName"]
            evidence.alarm_state = alarm["StateValue"]
            evidence.alarm_reason = alarm.get("StateReason", "")
            evidence.alarm_queries = alarm.get("Metrics", [])

    def _settle(self) -> _Evidence:
        """Poll CloudWatch, the function's log and the canary's alarm until each holds what
        the requests sent should have left there, or the deadline passes. A source AWS
        refuses to read (e.g. a permission missing) is not read again: its checks fail with
        AWS' words, the others go on."""
        served = self._served()
        who = sorted(served, key=str)
        canary_phase = {s.request_id for phase, s in self._samples if phase in CANARY_PHASES}
        assert self._first_sent is not None  # noqa: S101 - requests were sent before
        since_ms = int(self._first_sent.timestamp() * 1000) - 60_000
        assert self._last_sent is not None  # noqa: S101 - requests were sent before
        # The release tool judges a minute SETTLE after the minute ends.
        last_minute_ends = datetime.fromtimestamp(self._last_sent.timestamp() // 60 * 60 + 60, UTC)
        evidence = _Evidence()

        def read_counts() -> None:
            values = self._metric_data(self._count_queries(who))
            evidence.invocations = {w: sum(values[f"invocations{i}"]) for i, w in enumerate(who)}
            evidence.emf_requests = {w: sum(values[f"emf{i}"]) for i, w in enumerate(who)}

        sources: dict[str, Callable[[], None]] = {
            "metrics": read_counts,
            "log": lambda: self._read_logs(evidence, since_ms),
            "alarm": lambda: self._read_alarm(evidence),
        }
        deadline = self.clock() + SETTLE_DEADLINE_SECONDS
        self.out("==> waiting for CloudWatch's metrics, the function's log and the alarm")
        while True:
            for source, read in sources.items():
                if source not in evidence.refused:
                    self._poll(source, read, evidence)
            complete = all(evidence.invocations.get(w) == served[w] for w in who)
            if complete and evidence.lag_seconds is None:
                evidence.lag_seconds = (self.now() - last_minute_ends).total_seconds()
            waiting = {
                "metrics": not complete
                or any(evidence.emf_requests.get(w) != served[w] for w in who),
                "log": not canary_phase <= evidence.logged.keys(),
                "alarm": evidence.alarm_state in (None, "INSUFFICIENT_DATA"),
            }
            left = deadline - self.clock()
            if left <= 0 or not any(
                waiting[source] for source in sources if source not in evidence.refused
            ):
                return evidence
            self.out(
                f"    Invocations {sum(evidence.invocations.values()):g}/{served.total()}, "
                f"EMF Requests {sum(evidence.emf_requests.values()):g}/{served.total()}, log "
                f"lines {len(canary_phase & evidence.logged.keys())}/{len(canary_phase)}, "
                f"alarm {evidence.alarm_state}; {left / 60:.0f} min left"
            )
            self.sleep(POLL_SECONDS)

    def _poll(self, source: str, read: Callable[[], None], evidence: _Evidence) -> None:
        try:
            read()
        except AwsError as error:
            if error.kind == "refused":
                evidence.refused[source] = error.message
                self.out(f"    {error.message}; the checks that read the {source} fail")
            elif error.retryable:
                self.out(f"    {error.message}; trying again")
            else:
                raise

    def _decide_from(self, evidence: _Evidence) -> None:
        served = self._served()
        canary_version = str(self._outputs["canaryVersion"])
        canary_served = {
            s.request_id: s.served_by.version == canary_version
            for phase, s in self._samples
            if phase in CANARY_PHASES and s.served_by is not None
        }
        stage_canary = self._outputs["canaryMode"] != "alias"
        decisions: list[tuple[str, str, Callable[[], CheckResult]]] = [
            (
                "metrics",
                "executed-version-dimension",
                lambda: checks.executed_version_dimension(served, evidence.invocations),
            ),
            ("metrics", "emf-metrics", lambda: checks.emf_metrics(served, evidence.emf_requests)),
            (
                "log",
                "is-canary-request",
                lambda: checks.is_canary_request(canary_served, evidence.logged, stage_canary),
            ),
            (
                "metrics",
                "metrics-settle-lag",
                lambda: checks.metrics_settle_lag(
                    evidence.lag_seconds, SETTLE.total_seconds(), POLL_SECONDS
                ),
            ),
        ]
        for source, name, decide in decisions:
            refused = evidence.refused.get(source)
            self._record(
                CheckResult(name, "FAIL", f"AWS refused the read: {refused}")
                if refused
                else decide()
            )
        self._guarded(
            "percentile-rank-stat", lambda: self._percentile_rank(sorted(served, key=str))
        )
        if "alarm" in evidence.refused:
            refusal = f"AWS refused the read: {evidence.refused['alarm']}"
            self._record(CheckResult("alarm-metric-math", "FAIL", refusal))
        else:
            self._guarded("alarm-metric-math", lambda: self._alarm_metric_math(evidence))

    def _percentile_rank(self, who: Sequence[ServedBy]) -> CheckResult:
        threshold = LATENCY_THRESHOLD_MS
        function = str(self._outputs["functionName"])
        queries = [
            metric_query(
                f"rank{index}",
                lambda_version_dimensions(function, served.alias, served.version),
                "Duration",
                f"PR(:{threshold:g})",
                60,
            )
            for index, served in enumerate(who)
        ]
        try:
            values = self._metric_data(queries)
        except AwsError as error:
            if error.kind != "refused":
                raise
            return checks.percentile_rank_stat(threshold, {}, error.message)
        return checks.percentile_rank_stat(
            threshold, {w: values[f"rank{i}"] for i, w in enumerate(who)}, None
        )

    def _alarm_metric_math(self, evidence: _Evidence) -> CheckResult:
        if evidence.alarm is None or not evidence.alarm_queries:
            return checks.alarm_metric_math(None, None, "", [])
        returned = [q["Id"] for q in evidence.alarm_queries if q.get("ReturnData", True)]
        values = self._metric_data(evidence.alarm_queries, timedelta(minutes=5))
        return checks.alarm_metric_math(
            evidence.alarm,
            evidence.alarm_state,
            evidence.alarm_reason,
            [value for query in returned for value in values.get(query, [])],
        )

    # --- bookkeeping --------------------------------------------------------------------

    def _record(self, result: CheckResult) -> None:
        self.report.results.append(result)
        self.out(f"{result.status}  {result.name}: {result.evidence}")

    def _guarded(self, name: str, check: Callable[[], CheckResult]) -> None:
        """A check whose AWS read AWS refuses fails with AWS' words; the others go on."""
        try:
            result = check()
        except AwsError as error:
            if error.kind != "refused":
                raise
            result = CheckResult(name, "FAIL", f"AWS refused the read: {error.message}")
        self._record(result)

    def _pulumi_line(self, line: str) -> None:
        if line.strip():
            self.out(f"    pulumi: {line.rstrip()}")

    def _release_line(self, line: str) -> None:
        self.out(f"    release: {line}")

    def _clean_up(self) -> None:
        name = self.stack.name
        if not self._created:
            if self._wrote_file:
                self.stack_file.unlink(missing_ok=True)
            self.report.cleanup = "nothing was deployed"
            return
        if self.keep:
            self.report.cleanup = (
                f"stack {name} kept (--keep): 'pulumi destroy --stack {name}' and 'pulumi "
                f"stack rm {name}' remove it"
            )
            return
        self.out(f"==> destroying {name} (pulumi destroy; a few minutes)")
        with self._cleanup_step(
            f"pulumi destroy of stack {name}",
            f"its resources may still exist; run 'pulumi destroy --stack {name}' and then "
            f"'pulumi stack rm {name}' (its config file {self.stack_file.name} is kept for it)",
        ):
            self._destroy()
        if self.report.cleanup_failed:
            return
        with self._cleanup_step(
            f"removing stack {name}",
            f"its resources are destroyed, but the stack is not removed: run 'pulumi stack rm "
            f"{name}'",
        ):
            self.stack.remove()
        if not self.report.cleanup_failed:
            self.stack_file.unlink(missing_ok=True)
            self.report.cleanup = f"stack {name} destroyed and removed"

    def _destroy(self) -> None:
        """Destroy the stack, waiting out Pulumi's lock on it: an update that Ctrl-C (or a CI
        job's cancellation) stopped may still be ending."""
        for attempt in range(1, DESTROY_ATTEMPTS + 1):
            try:
                self.stack.destroy(self._pulumi_line)
                return
            except StackBusyError as error:
                if attempt == DESTROY_ATTEMPTS:
                    raise
                self.out(f"    {error}; trying again in {DESTROY_RETRY_SECONDS:g} s")
                self.sleep(DESTROY_RETRY_SECONDS)

    @contextmanager
    def _cleanup_step(self, step: str, advice: str) -> Iterator[None]:
        try:
            yield
        except ApplyError as error:
            self.report.cleanup = f"FAILED: {step}: {error}; {advice}"
            self.report.cleanup_failed = True
        except KeyboardInterrupt:
            self.report.cleanup = f"INTERRUPTED: {step}; {advice}"
            self.report.cleanup_failed = True
            raise
