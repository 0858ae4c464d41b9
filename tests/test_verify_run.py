"""make verify's run against fakes: a throwaway stack that applies its file to a fake API, an
HTTP transport answering as the deployed function would, botocore's Stubber for the CloudWatch,
Lambda and API Gateway calls (each with the parameters the service model takes), and moto's
CloudWatch Logs holding the function's log lines. Then the command line's up-front errors."""

from __future__ import annotations

import http.client
import json
import math
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from ruamel.yaml import YAML

from release.deploy import ApplyError, StackBusyError
from verify import checks
from verify.__main__ import main, run_and_report
from verify.http import HttpResponse, HttpsTransport
from verify.run import Verification, VerifyClients
from verify.stack import PulumiThrowawayStack

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "event-logger"
STACK = "verify-abc1234"
FUNCTION = "event-logger-function-1a2b3c4"
REST_API_ID = "a1b2c3d4e5"
API_KEY = "test-api-key-value"
LOG_GROUP = "event-logger-logs-5e6f7a8"
REGION = "us-east-1"


class FakeClock:
    """The run's monotonic clock and wall clock; time passes by requests and sleeps only."""

    def __init__(self) -> None:
        self.seconds = 0.0
        # Now, so that moto takes the log lines' timestamps as recent.
        self.start = datetime.now(UTC).replace(second=0, microsecond=0)
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.seconds += seconds


class World:
    """What the fake account serves: the versions, the aliases' versions, the stage canary."""

    def __init__(self) -> None:
        self.versions = 0
        self.live_version = ""
        self.canary_percent = 0.0
        self.canary_until = 0.0
        """The stage canary still sends its share until then (an update propagating)."""


class FakeStack:
    """The throwaway stack: ``up`` applies its stack file to the :class:`World` as the
    component would (a new version when the function's environment changes)."""

    def __init__(self, program_dir: Path, world: World, clock: FakeClock) -> None:
        self.name = STACK
        self.path = program_dir / f"Pulumi.{STACK}.yaml"
        self.world = world
        self.clock = clock
        self.events: list[str] = []
        self.deployed: list[dict[str, Any]] = []
        self.fail_up = False
        self.fail_destroy = False
        self.busy_destroys = 0
        """The next destroys meet Pulumi's lock (an update Ctrl-C stopped still ending)."""
        self.publishes = True

    def create(self) -> None:
        self.events.append("create")

    def up(self, on_output: Callable[[str], None]) -> None:
        self.events.append("up")
        if self.fail_up:
            raise ApplyError(f"pulumi up failed for stack {STACK}: injected")
        config = YAML(typ="safe").load(self.path.read_text())["config"]
        shards = config.get(f"{PROJECT}:eventShards")
        if not self.deployed or (self.publishes and shards != self.deployed[-1].get("shards")):
            self.world.versions += 1
        self.deployed.append({**config, "shards": shards})
        stable = str(config.get(f"{PROJECT}:stableVersion") or self.world.versions)
        self.world.live_version = stable
        self.world.canary_percent = float(config[f"{PROJECT}:canaryPercent"])
        on_output("Resources: applied")

    def outputs(self) -> dict[str, Any]:
        return {
            "url": f"https://{REST_API_ID}.execute-api.{REGION}.amazonaws.com/{STACK}/events",
            "apiKey": API_KEY,
            "stage": STACK,
            "functionName": FUNCTION,
            "restApiId": REST_API_ID,
            "liveAlias": "dev",
            "canaryAlias": "dev-canary",
            "liveVersion": self.world.live_version,
            "canaryVersion": str(self.world.versions),
            "canaryPercent": self.world.canary_percent,
            "canaryMode": "stage",
        }

    def destroy(self, on_output: Callable[[str], None]) -> None:
        self.events.append("destroy")
        if self.busy_destroys:
            self.busy_destroys -= 1
            raise StackBusyError(f"stack {STACK} is locked by another update: injected")
        if self.fail_destroy:
            raise ApplyError(f"pulumi destroy failed for stack {STACK}: injected")

    def remove(self) -> None:
        self.events.append("remove")
        self.path.unlink()


class FakeApi:
    """The stage URL as API Gateway and the function answer it: the stage canary's share to the
    canary alias (spread evenly, so the counts are known), servedBy in every reply,
    Idempotency-Key in any case, 415 without a JSON Content-Type, and the function's log line
    of each request in moto's CloudWatch Logs."""

    def __init__(self, world: World, clock: FakeClock, logs: Any) -> None:
        self.world = world
        self.clock = clock
        self.logs = logs
        self.sent = 0
        self.at_share = 0
        self.share: float | None = None
        self.stored: dict[str, str] = {}
        self.interrupt_at: int | None = None
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="s")

    def _to_canary(self) -> bool:
        percent = (
            self.world.canary_percent if self.clock.seconds >= self.world.canary_until else 50.0
        )
        if percent != self.share:
            self.share, self.at_share = percent, 0
        self.at_share += 1
        k, p = self.at_share, percent / 100
        return math.floor(k * p) > math.floor((k - 1) * p)

    def request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> HttpResponse:
        self.sent += 1
        if self.sent == self.interrupt_at:
            raise KeyboardInterrupt
        self.clock.seconds += 0.1
        assert url.startswith(f"https://{REST_API_ID}.execute-api.{REGION}.amazonaws.com/")
        assert ("x-api-key", API_KEY) in headers
        request_id = f"req-{self.sent:04d}"
        named = {name.lower(): value for name, value in headers}
        if method == "POST" and not named.get("content-type", "").startswith("application/json"):
            return HttpResponse(415, {"x-amzn-requestid": request_id}, b'{"message": "no"}')
        canary = self.world.canary_percent > 0 or self.clock.seconds < self.world.canary_until
        canary = canary and self._to_canary()
        served = {
            "stage": STACK,
            "alias": "dev-canary" if canary else "dev",
            "version": str(self.world.versions) if canary else self.world.live_version,
        }
        reply: dict[str, Any] = {"servedBy": served}
        if method == "POST":
            key = named.get("idempotency-key")
            reply["replayed"] = key is not None and key in self.stored
            if key is not None:
                self.stored[key] = "stored"
        self.logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName="s",
            logEvents=[
                {
                    "timestamp": int(self.clock.now().timestamp() * 1000),
                    "message": json.dumps(
                        {
                            "level": "INFO",
                            "message": "request served",
                            "apiRequestId": request_id,
                            "isCanaryRequest": "true" if canary else "false",
                        }
                    ),
                }
            ],
        )
        return HttpResponse(200, {"x-amzn-requestid": request_id}, json.dumps(reply).encode())


# --- the AWS calls, as the service models shape them ---------------------------------------

# Before the canary: one warm-up GET, 20 GETs, a POST with a charset and two with an
# Idempotency-Key. Then two warm-up GETs until the canary serves one, 100 of the 200 at 50%,
# and after the rollback half of the 2 s the change takes to propagate (9 to the canary, 9 to
# live), then 30 on live.
SERVED = {("dev-canary", "2"): 110, ("dev", "1"): 164}


def _dimensions(alias: str, version: str | None = None) -> list[dict[str, str]]:
    dimensions = [
        {"Name": "FunctionName", "Value": FUNCTION},
        {"Name": "Resource", "Value": f"{FUNCTION}:{alias}"},
    ]
    if version is not None:
        dimensions.append({"Name": "ExecutedVersion", "Value": version})
    return dimensions


def _query(
    query_id: str, namespace: str, metric: str, dimensions: Any, *, period: int, stat: str
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": stat,
        },
    }


def _answer(values: dict[str, list[float]], at: datetime) -> dict[str, Any]:
    return {
        "MetricDataResults": [
            {
                "Id": query_id,
                "Label": query_id,
                "Timestamps": [at + timedelta(minutes=n) for n in range(len(points))],
                "Values": points,
                "StatusCode": "Complete",
            }
            for query_id, points in values.items()
        ],
        "Messages": [],
    }


ALARM_QUERIES = [
    {**_query("errors", "AWS/Lambda", "Errors", _dimensions("dev-canary"), period=300, stat="Sum")},
    {
        **_query(
            "invocations",
            "AWS/Lambda",
            "Invocations",
            _dimensions("dev-canary"),
            period=300,
            stat="Sum",
        )
    },
    {"Id": "rate", "Expression": "100 * errors / invocations", "Label": "Error rate (%)"},
    {
        "Id": "guarded_rate",
        "Expression": "IF(invocations >= 20, rate, 0)",
        "Label": "Error rate (%), 0 below 20 invocations",
    },
]
for _query_of_alarm in ALARM_QUERIES:
    _query_of_alarm["ReturnData"] = _query_of_alarm["Id"] == "guarded_rate"


class Aws:
    """Real boto3 clients: Stubber for CloudWatch, Lambda and API Gateway, moto for Logs
    (a Stubber of its own too, for a test that has AWS refuse the read)."""

    def __init__(self) -> None:
        def client(service: str) -> Any:
            return boto3.client(
                service,
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )

        self.clients = VerifyClients(
            cloudwatch=client("cloudwatch"),
            apigateway=client("apigateway"),
            lambda_=client("lambda"),
            logs=client("logs"),
        )
        self.cloudwatch = Stubber(self.clients.cloudwatch)
        self.apigateway = Stubber(self.clients.apigateway)
        self.lambda_ = Stubber(self.clients.lambda_)
        self.logs = Stubber(self.clients.logs)
        self.logs_writer = client("logs")
        """The function's side: it writes its log lines."""

    def stub_endpoint(self, types: list[str]) -> None:
        self.apigateway.add_response(
            "get_rest_api",
            {
                "id": REST_API_ID,
                "name": "event-logger-api-1a2b3c4",
                "endpointConfiguration": {"types": types},
            },
            {"restApiId": REST_API_ID},
        )

    def stub_rollback(self, world: World, clock: FakeClock) -> None:
        stage = {"restApiId": REST_API_ID, "stageName": STACK}

        def answer(percent: float) -> dict[str, Any]:
            return {
                "stageName": STACK,
                "deploymentId": "d1",
                "variables": {"lambdaAlias": "dev"},
                "canarySettings": {
                    "percentTraffic": percent,
                    "deploymentId": "d1",
                    "stageVariableOverrides": {"lambdaAlias": "dev-canary"},
                    "useStageCache": False,
                },
            }

        alias = {
            "Name": "dev",
            "FunctionVersion": "1",
            "AliasArn": f"arn:aws:lambda:{REGION}:1:function:{FUNCTION}:dev",
        }
        self.apigateway.add_response("get_stage", answer(50.0), stage)
        self.lambda_.add_response("get_alias", alias, {"FunctionName": FUNCTION, "Name": "dev"})
        self.apigateway.add_response(
            "update_stage",
            answer(0.0),
            {
                **stage,
                "patchOperations": [
                    {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"}
                ],
            },
        )
        self.apigateway.add_response("get_stage", answer(0.0), stage)
        self.lambda_.add_response("get_alias", alias, {"FunctionName": FUNCTION, "Name": "dev"})

        def propagating(**_: Any) -> None:
            # API Gateway takes a moment to apply the change everywhere.
            world.canary_percent = 0.0
            world.canary_until = clock.seconds + 2.0

        self.clients.apigateway.meta.events.register(
            "after-call.api-gateway.UpdateStage", propagating
        )

    def stub_evidence(
        self, clock: FakeClock, *, log_reads: int = 2, rank_refused: bool = False
    ) -> None:
        """Two looks: the canary's newest minute missing, then everything; then the
        percentile ranks and the alarm's own queries. ``log_reads``: the looks that read the
        log; ``rank_refused``: CloudWatch refuses PR(:1000)."""
        start = clock.start.replace(second=0) - timedelta(minutes=1)
        counts = []
        for index, (alias, version) in enumerate(SERVED):
            dimensions = _dimensions(alias, version)
            counts.append(
                _query(
                    f"invocations{index}",
                    "AWS/Lambda",
                    "Invocations",
                    dimensions,
                    period=60,
                    stat="Sum",
                )
            )
            counts.append(
                _query(
                    f"emf{index}",
                    "EventLogger/Canary",
                    "Requests",
                    dimensions,
                    period=10,
                    stat="Sum",
                )
            )
        window = {"MetricDataQueries": counts, "StartTime": start, "EndTime": ANY}
        # The first look finds the canary's newest minute missing, the second everything.
        self.cloudwatch.add_response(
            "get_metric_data",
            _answer(
                {"invocations0": [60.0], "emf0": [60.0], "invocations1": [164.0], "emf1": [164.0]},
                start,
            ),
            window,
        )
        alarm_name = f"event-logger-canary-error-rate-alarm.{STACK}-9f8e7d6"
        alarms = {
            "AlarmNamePrefix": f"event-logger-canary-error-rate-alarm.{STACK}-",
            "AlarmTypes": ["MetricAlarm"],
        }

        def alarm(state: str) -> dict[str, Any]:
            return {
                "MetricAlarms": [
                    {
                        "AlarmName": alarm_name,
                        "StateValue": state,
                        "StateReason": "Threshold Crossed: no datapoints were received",
                        "Metrics": ALARM_QUERIES,
                    }
                ]
            }

        self.lambda_.add_response(
            "get_function_configuration",
            {
                "FunctionName": FUNCTION,
                "LoggingConfig": {"LogFormat": "JSON", "LogGroup": LOG_GROUP},
            },
            {"FunctionName": FUNCTION},
        )
        self.cloudwatch.add_response("describe_alarms", alarm("INSUFFICIENT_DATA"), alarms)
        self.cloudwatch.add_response(
            "get_metric_data",
            _answer(
                {
                    "invocations0": [60.0, 50.0],
                    "emf0": [110.0],
                    "invocations1": [164.0],
                    "emf1": [164.0],
                },
                start,
            ),
            window,
        )
        if log_reads == 2:
            self.lambda_.add_response(
                "get_function_configuration",
                {
                    "FunctionName": FUNCTION,
                    "LoggingConfig": {"LogFormat": "JSON", "LogGroup": LOG_GROUP},
                },
                {"FunctionName": FUNCTION},
            )
        self.cloudwatch.add_response("describe_alarms", alarm("OK"), alarms)
        ranks = [
            _query(
                f"rank{index}",
                "AWS/Lambda",
                "Duration",
                _dimensions(alias, version),
                period=60,
                stat="PR(:1000)",
            )
            for index, (alias, version) in enumerate(SERVED)
        ]
        rank_window = {"MetricDataQueries": ranks, "StartTime": start, "EndTime": ANY}
        if rank_refused:
            self.cloudwatch.add_client_error(
                "get_metric_data",
                service_error_code="InvalidParameterValue",
                service_message="The value PR(:1000) for parameter Stat is not valid.",
                http_status_code=400,
                expected_params=rank_window,
            )
        else:
            self.cloudwatch.add_response(
                "get_metric_data",
                _answer({"rank0": [99.0, 100.0], "rank1": [100.0]}, start),
                rank_window,
            )
        five_minutes = clock.start.replace(minute=clock.start.minute // 5 * 5, second=0)
        self.cloudwatch.add_response(
            "get_metric_data",
            _answer({"guarded_rate": [0.0]}, start),
            {
                "MetricDataQueries": ALARM_QUERIES,
                "StartTime": five_minutes - timedelta(minutes=5),
                "EndTime": ANY,
            },
        )

    def activate(self) -> None:
        for stubber in (self.cloudwatch, self.apigateway, self.lambda_):
            stubber.activate()

    def assert_all_called(self) -> None:
        for stubber in (self.cloudwatch, self.apigateway, self.lambda_, self.logs):
            stubber.assert_no_pending_responses()


class Run:
    """One verification of a copy of the repository's dev stack against the fakes."""

    def __init__(self, program_dir: Path) -> None:
        program_dir.mkdir(exist_ok=True)
        shutil.copy(ROOT / "Pulumi.yaml", program_dir / "Pulumi.yaml")
        shutil.copy(ROOT / "Pulumi.dev.yaml", program_dir / "Pulumi.dev.yaml")
        self.program_dir = program_dir
        self.clock = FakeClock()
        self.world = World()
        self.stack = FakeStack(program_dir, self.world, self.clock)
        self.aws = Aws()
        self.api = FakeApi(self.world, self.clock, self.aws.logs_writer)
        self.lines: list[str] = []
        self.verification = Verification(
            program_dir=program_dir,
            project=PROJECT,
            source_stack="dev",
            stack=self.stack,
            clients=self.aws.clients,
            http=self.api,
            region=REGION,
            out=self.lines.append,
            clock=self.clock.clock,
            sleep=self.clock.sleep,
            now=self.clock.now,
        )

    def stub_everything(
        self,
        endpoint_types: list[str] | None = None,
        *,
        log_reads: int = 2,
        rank_refused: bool = False,
    ) -> None:
        self.aws.stub_endpoint(endpoint_types or ["REGIONAL"])
        self.aws.stub_rollback(self.world, self.clock)
        self.aws.stub_evidence(self.clock, log_reads=log_reads, rank_refused=rank_refused)
        self.aws.activate()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    with mock_aws():
        yield Run(tmp_path / "program")


def test_every_check_passes_on_a_stack_that_behaves_and_the_stack_is_destroyed(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.stub_everything()
    status = run_and_report(run.verification, run.program_dir / "report.json")

    printed = capsys.readouterr().out.splitlines()
    assert status == 0, "\n".join(printed)
    run.aws.assert_all_called()
    report = json.loads((run.program_dir / "report.json").read_text())
    assert report["passed"] is True
    assert [check["name"] for check in report["checks"]] == list(checks.CHECKS)
    assert {check["status"] for check in report["checks"]} == {"PASS"}
    evidence = {check["name"]: check["evidence"] for check in report["checks"]}
    assert evidence["canary-share"].startswith("100 of 200 requests served by canary")
    assert evidence["rollback-stops-canary"].startswith(
        "canary's last request 1.8 s after the rollback began"
    )
    # The last request 28 s into its minute; the second look, 15 s later, finds it counted.
    assert (
        "served -17 s from the end of the last request's minute" in evidence["metrics-settle-lag"]
    )
    assert printed[1].startswith(f"make verify: PASS for stack dev (throwaway stack {STACK}")
    assert printed[-1] == f"cleanup: stack {STACK} destroyed and removed"

    # Deployed: unpinned with no canary, pinned by the release tool, then the canary at 50%
    # by a change of the function's environment only.
    first, pinned, canary = run.stack.deployed
    assert (first[f"{PROJECT}:canaryPercent"], first.get(f"{PROJECT}:stableVersion")) == ("0", None)
    assert pinned[f"{PROJECT}:stableVersion"] == "1"
    assert (canary[f"{PROJECT}:canaryPercent"], canary["shards"]) == ("50", "9")
    assert run.stack.events == ["create", "up", "up", "up", "destroy", "remove"]
    assert not (run.program_dir / f"Pulumi.{STACK}.yaml").exists()
    assert run.clock.sleeps == [1.0, 15.0]
    assert any("release: stage " in line and "now sends no requests" in line for line in run.lines)
    # The API key is a secret: never in what verify prints.
    assert not any(API_KEY in line for line in run.lines + printed)


def test_a_failing_check_fails_the_run_and_the_stack_is_still_destroyed(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.stub_everything(endpoint_types=["EDGE"])
    assert run_and_report(run.verification, None) == 1
    printed = capsys.readouterr().out
    assert "make verify: FAIL" in printed
    assert (
        "FAIL  endpoint-configuration: GetRestApi endpointConfiguration.types = ['EDGE']" in printed
    )
    assert printed.count("PASS  ") == len(checks.CHECKS) - 1
    assert run.stack.events[-2:] == ["destroy", "remove"]


def test_a_destroy_that_fails_is_said_with_what_is_left_and_fails_the_run(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.stub_everything()
    run.stack.fail_destroy = True
    assert run_and_report(run.verification, None) == 1
    printed = capsys.readouterr().out
    assert (
        f"cleanup: FAILED: pulumi destroy of stack {STACK}: pulumi destroy failed for stack "
        f"{STACK}: injected; its resources may still exist; run 'pulumi destroy --stack {STACK}'"
    ) in printed
    assert "remove" not in run.stack.events
    # Kept for the destroy the user runs.
    assert (run.program_dir / f"Pulumi.{STACK}.yaml").exists()


def test_ctrl_c_destroys_the_stack_and_reports_what_ran(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.aws.stub_endpoint(["REGIONAL"])
    run.aws.activate()
    run.api.interrupt_at = 60  # in the canary's requests
    assert run_and_report(run.verification, run.program_dir / "report.json") == 130
    printed = capsys.readouterr().out
    assert "ABORTED: interrupted by Ctrl-C" in printed
    assert "NOT RUN  canary-share" in printed
    assert "PASS  served-by-live" in printed
    assert run.stack.events[-2:] == ["destroy", "remove"]
    assert json.loads((run.program_dir / "report.json").read_text())["aborted"] == (
        "interrupted by Ctrl-C"
    )


def test_a_failed_deploy_stops_the_run_and_destroys_what_it_left(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.aws.activate()
    run.stack.fail_up = True
    assert run_and_report(run.verification, None) == 1
    printed = capsys.readouterr().out
    assert f"ABORTED: pulumi up failed for stack {STACK}: injected" in printed
    assert f"NOT RUN  {checks.CHECKS[0]}" in printed
    assert run.stack.events == ["create", "up", "destroy", "remove"]


def test_a_second_deploy_that_publishes_no_version_stops_the_run(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.aws.stub_endpoint(["REGIONAL"])
    run.aws.activate()
    run.stack.publishes = False
    assert run_and_report(run.verification, None) == 1
    printed = capsys.readouterr().out
    assert (
        "ABORTED: after the second deploy live serves v1 and the canary v1; expected live to "
        "stay on v1 and a new canary version"
    ) in printed
    assert run.stack.events[-2:] == ["destroy", "remove"]


# --- the command line's up-front errors: nothing is created ----------------------------------


@pytest.fixture
def program(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    return tmp_path


def _created(program: Path) -> list[str]:
    return sorted(path.name for path in program.iterdir() if path.name.startswith("Pulumi.verify"))


def test_an_unknown_stack_is_a_wrong_command_line(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--stack", "prdo", "--program", str(program)])
    assert exited.value.code == 2
    message = capsys.readouterr().err
    assert "unknown stack 'prdo'" in message
    assert "stacks with a config file here: dev)" in message
    assert _created(program) == []


def test_a_stack_with_secrets_is_refused_before_anything_is_deployed(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (program / "Pulumi.dev.yaml").open("a") as file:
        file.write("  event-logger:token:\n    secure: AAABAxyz\n")
    with pytest.raises(SystemExit) as exited:
        main(["--stack", "dev", "--program", str(program)])
    assert exited.value.code == 2
    assert "holds secret or structured values (event-logger:token)" in capsys.readouterr().err
    assert _created(program) == []


def test_without_the_pulumi_cli_nothing_is_deployed(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert main(["--stack", "dev", "--program", str(program)]) == 1
    assert "verify needs the Pulumi CLI" in capsys.readouterr().err
    assert _created(program) == []


def test_without_aws_credentials_nothing_is_deployed(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: "/usr/bin/pulumi")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(program / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(program / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["--stack", "dev", "--program", str(program)]) == 1
    message = capsys.readouterr().err
    assert "no AWS credentials: set AWS_PROFILE" in message
    assert "Nothing was deployed" in message
    assert _created(program) == []


def test_a_read_aws_refuses_fails_its_check_with_aws_words_and_the_others_go_on(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.stub_everything(log_reads=1, rank_refused=True)
    run.aws.logs.add_client_error(
        "filter_log_events",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: logs:FilterLogEvents",
        http_status_code=400,
        expected_params={
            "logGroupName": LOG_GROUP,
            "startTime": int(run.clock.start.timestamp() * 1000) - 60_000,
            "filterPattern": '"isCanaryRequest"',
        },
    )
    run.aws.logs.activate()
    assert run_and_report(run.verification, None) == 1
    run.aws.assert_all_called()
    printed = capsys.readouterr().out
    assert (
        f"FAIL  is-canary-request: AWS refused the read: reading log group {LOG_GROUP}: AWS "
        "refused (AccessDeniedException: not authorized to perform: logs:FilterLogEvents)"
    ) in printed
    assert (
        "FAIL  percentile-rank-stat: PR(:1000) refused: reading CloudWatch metrics: AWS refused "
        "(InvalidParameterValue: The value PR(:1000) for parameter Stat is not valid.)"
    ) in printed
    assert printed.count("PASS  ") == len(checks.CHECKS) - 2
    assert run.stack.events[-2:] == ["destroy", "remove"]


def test_the_destroy_waits_for_pulumis_lock_on_the_stack(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.stub_everything()
    run.stack.busy_destroys = 2
    assert run_and_report(run.verification, None) == 0
    assert run.stack.events[-4:] == ["destroy", "destroy", "destroy", "remove"]
    assert run.clock.sleeps[-2:] == [20.0, 20.0]
    assert f"cleanup: stack {STACK} destroyed and removed" in capsys.readouterr().out


def test_a_lock_that_outlasts_the_retries_is_said(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    run.stub_everything()
    run.stack.busy_destroys = 4
    assert run_and_report(run.verification, None) == 1
    assert run.stack.events.count("destroy") == 4
    assert (
        f"cleanup: FAILED: pulumi destroy of stack {STACK}: stack {STACK} is locked by another "
        "update: injected; its resources may still exist"
    ) in capsys.readouterr().out


# --- the HTTPS transport ---------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, list[str], bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Recorder.seen.append(
            (self.command, self.path, list(self.headers.keys()), self.rfile.read(length))
        )
        body = b'{"servedBy": {"stage": "s", "alias": "a", "version": "1"}}'
        self.send_response(200)
        self.send_header("X-Amzn-RequestId", "abc")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Not a line on the test's stderr per request.
        pass


def test_the_transport_sends_header_names_in_the_case_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # TLS aside (the stage's certificate is AWS'), what goes on the wire is http.client's.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(
        http.client,
        "HTTPSConnection",
        lambda host, port, timeout: http.client.HTTPConnection(host, port, timeout=timeout),
    )
    try:
        response = HttpsTransport().request(
            "POST",
            f"https://127.0.0.1:{port}/stage/events?limit=1",
            [("iDEMPOTENCY-kEY", "k1"), ("Content-Type", "application/json; charset=utf-8")],
            b"{}",
        )
    finally:
        server.shutdown()
        server.server_close()
    method, path, names, body = _Recorder.seen[-1]
    assert (method, path, body) == ("POST", "/stage/events?limit=1", b"{}")
    assert "iDEMPOTENCY-kEY" in names
    assert response.status == 200
    assert response.headers["x-amzn-requestid"] == "abc"
    assert checks.parse_served_by(response.body) == checks.ServedBy("s", "a", "1")


def test_the_transport_takes_only_https_urls() -> None:
    with pytest.raises(ValueError, match="the stage URL must be https://host/"):
        HttpsTransport().request("GET", "http://example.com/events", [], None)


def test_a_local_state_without_a_passphrase_is_refused_before_anything_is_deployed(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: "/usr/bin/pulumi")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{program / 'state'}")
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--stack", "dev", "--program", str(program)]) == 1
    message = capsys.readouterr().err
    assert "set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE" in message
    assert _created(program) == []


def test_a_stack_file_left_by_an_earlier_run_is_neither_used_nor_deleted(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    left = run.program_dir / f"Pulumi.{STACK}.yaml"
    left.write_text("config: {}\n")
    assert run_and_report(run.verification, None) == 1
    assert f"ABORTED: {left} exists already" in capsys.readouterr().out
    assert left.read_text() == "config: {}\n"
    assert run.stack.events == []


def test_the_pulumi_stack_needs_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(ApplyError, match="verify needs the Pulumi CLI"):
        PulumiThrowawayStack(tmp_path, STACK, {}).create()


def test_a_report_file_in_a_missing_folder_is_refused_up_front(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = program / "no-such-folder" / "report.json"
    with pytest.raises(SystemExit) as exited:
        main(["--stack", "dev", "--program", str(program), "--report", str(report)])
    assert exited.value.code == 2
    assert "its folder does not exist" in capsys.readouterr().err
    assert _created(program) == []
