"""A fake AWS account holding the prod stack of ``tests.release_fakes.OUTPUTS``, answering real
boto3 clients, and a deployer that applies the stack file to it as the component would.

Why: the release tool's hard cases (issue 11) are about the gap between what the stack file
says and what AWS serves, over several calls: a rollback whose answer was lost, an apply that
failed after the file was edited, CloudWatch answering part of a query. A Stubber answers one
call at a time and holds no state; this account keeps one state (versions, aliases, the stage's
canary settings, the metrics Lambda published from the traffic it served) that every call reads
and changes, so a test asserts what AWS holds afterwards rather than which calls were made.

Every HTTP attempt of the clients from :meth:`FakeAccount.clients` is answered by the account
in a ``before-send`` handler, with the bytes the real service sends, so botocore serializes,
retries (its standard mode counts throttles, 5xx and transport errors) and parses as it does
against AWS; :attr:`FakeAccount.attempts` lets a test count those retries. What the account
does not model fails the test with an ``AssertionError`` naming the operation, never a
silent answer.

CloudWatch: its service model lists smithy-rpc-v2-cbor first, but the botocore this project
pins (1.44.8) takes the first protocol of *its own* priority list
(``botocore.utils.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS``: ``json`` before
``smithy-rpc-v2-cbor``) that the service offers, so it sends GetMetricData as awsJson1_0
(``X-Amz-Target: GraniteServiceVersion20100801.GetMetricData``; errors query-compatible, their
code in ``x-amzn-query-error``). The account answers on that wire rather than with a parsed dict
at ``before-call`` (as a Stubber does): a ``before-call`` answer skips botocore's retries, and
``watch`` under throttling is about exactly those. Should an upgrade of botocore switch to CBOR,
the request's Content-Type stops matching and every metrics read fails with an
``AssertionError`` saying so, rather than being answered in the wrong protocol.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from release.aws import FUNCTION_NAMESPACE
from release.commands import AwsClients
from release.deploy import ApplyError
from tests.release_fakes import OUTPUTS
from versioned_lambda_api.args import CanaryMode, StagePlan
from versioned_lambda_api.metrics import (
    AlarmThresholds,
    lambda_alias_dimensions,
    lambda_version_dimensions,
)
from versioned_lambda_api.stage_variables import ALIAS_STAGE_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "event-logger"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
FUNCTION = str(OUTPUTS["functionName"])
REST_API_ID = str(OUTPUTS["restApiId"])
STAGE = str(OUTPUTS["stage"])
LIVE_ALIAS = str(OUTPUTS["liveAlias"])
CANARY_ALIAS = str(OUTPUTS["canaryAlias"])
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
P50_MS = 40.0
P99_MS = 400.0
"""Every version's Duration percentiles: the model has no latency distribution, only a share of
fast invocations (see :class:`TrafficModel`)."""
HOLD_TIMEOUT_SECONDS = 5.0
"""The longest a held ``up`` waits for the test to let it go: a test that forgets fails."""

Fault = Literal["unreachable", "lost_answer", "throttle", "server_error", "denied"]
"""What the next attempt of an operation meets instead of a plain answer:

* ``unreachable``: no connection (``EndpointConnectionError``); nothing applied;
* ``lost_answer``: the change is applied, then the answer never arrives (``ReadTimeoutError``);
* ``throttle``: the service's "slow down" (429; CloudWatch: 400 Throttling); nothing applied;
* ``server_error``: 500; nothing applied;
* ``denied``: 403 AccessDeniedException; nothing applied.
"""

Mode = Literal["stage", "alias"]
"""Who splits off the canary share: the stage's canary settings, or the live alias' weights."""

Operation = Literal["GetStage", "UpdateStage", "GetAlias", "UpdateAlias", "GetMetricData", "Invoke"]

Code = Callable[[Any, "InvokeContext"], Any]
"""A version's code: the handler Lambda runs with the event and a context."""


@dataclass(frozen=True)
class InvokeContext:
    """The parts of Lambda's context object a handler reads."""

    invoked_function_arn: str
    function_version: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass(frozen=True)
class Invocation:
    """One Invoke the account ran: the qualifier asked, the version it ran, the event."""

    qualifier: str
    version: str
    event: Any


class _ServiceError(Exception):
    """An answer the service gives as an error (a 4xx of the model itself, e.g. NotFound)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt botocore made, and the fault it met (``None``: answered normally)."""

    operation: str
    at: datetime
    fault: Fault | None


@dataclass(frozen=True)
class Change:
    """A change to what the account serves: when, through what (an operation or ``up``), what."""

    at: datetime
    by: str
    what: str


@dataclass
class Alias:
    """A Lambda alias: its version, and the extra versions it sends a share to (0-1)."""

    version: str
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CanarySettings:
    """A stage's canary settings, as API Gateway holds them."""

    percent_traffic: float
    deployment_id: str
    stage_variable_overrides: dict[str, str]


@dataclass
class TrafficModel:
    """The requests the stage gets, and how each version answers them.

    ``error_rate``/``fast_share``: version -> share of its invocations that fail / that finish
    within any latency threshold asked (PR(:T)); versions not named take the ``base_`` ones.
    """

    requests_per_minute: int = 6000
    error_rate: dict[str, float] = field(default_factory=dict)
    fast_share: dict[str, float] = field(default_factory=dict)
    base_error_rate: float = 0.01
    base_fast_share: float = 0.99


@dataclass
class _Counts:
    """One minute of one dimension set: what Lambda publishes from it."""

    invocations: int = 0
    errors: int = 0
    fast: float = 0.0


def _dimension_key(dimensions: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(dimensions.items())


class FakeAccount:
    """What AWS holds for the prod stack, changed by the clients' calls and by
    :class:`AccountDeployer`, with a clock and the Lambda metrics of the traffic it served.

    Before the first deploy both aliases serve the newest version and the stage has no canary
    settings. Time passes only through :meth:`sleep`: each whole minute that passes is served
    as the account stands at that moment (see :meth:`sleep`).
    """

    def __init__(self, versions: int = 4, now: datetime = T0) -> None:
        self.versions = [str(number) for number in range(1, versions + 1)]
        newest = self.versions[-1]
        self.aliases = {LIVE_ALIAS: Alias(newest), CANARY_ALIAS: Alias(newest)}
        self.stage_variables = {ALIAS_STAGE_VARIABLE: LIVE_ALIAS}
        self.deployment_id = "dep1"
        self.canary: CanarySettings | None = None
        self.now = now
        self.traffic = TrafficModel()
        self.lag_minutes = 0
        """The newest minutes CloudWatch has not published yet."""
        self.changes: list[Change] = []
        self.attempts: list[Attempt] = []
        self._served_until = now
        self._points: dict[frozenset[tuple[str, str]], dict[datetime, _Counts]] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._every_attempt: dict[str, Fault] = {}
        self._query_faults: dict[str, int] = {}
        self._before_next: dict[str, list[Callable[[], None]]] = {}
        self.code: dict[str, Code] = {}
        """Version -> the handler Invoke runs for it; invoking a version without one fails the
        test."""
        self.invocations: list[Invocation] = []
        self.logs: list[str] = []
        """What each invocation printed (its log stream)."""

    # --- what a test reads ----------------------------------------------------------------

    @property
    def stage_percent(self) -> float:
        """The share of the stage's requests its canary takes now (0 without canary settings)."""
        return self.canary.percent_traffic if self.canary is not None else 0.0

    @property
    def live(self) -> Alias:
        return self.aliases[LIVE_ALIAS]

    def attempts_of(self, operation: Operation) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.operation == operation]

    def clock(self) -> datetime:
        """The account's time, for ``Watch.run(now=...)``."""
        return self.now

    # --- what a test injects --------------------------------------------------------------

    def fail(self, operation: Operation, fault: Fault, times: int | None = 1) -> None:
        """The next ``times`` attempts of ``operation`` meet ``fault``; ``None``: every attempt
        from now on, until :meth:`heal`."""
        if times is None:
            self._every_attempt[operation] = fault
        else:
            self._faults.setdefault(operation, []).extend([fault] * times)

    def heal(self, operation: Operation) -> None:
        """No more faults for ``operation``."""
        self._every_attempt.pop(operation, None)
        self._faults.pop(operation, None)

    def fail_query(self, query_id: str, times: int = 1) -> None:
        """The next ``times`` GetMetricData answers carry query ``query_id`` (e.g.
        ``canary_errors``) as ``StatusCode: InternalError`` with no points, the other queries
        Complete: CloudWatch's partial answer."""
        self._query_faults[query_id] = self._query_faults.get(query_id, 0) + times

    def before_next(self, operation: Operation, action: Callable[[], None]) -> None:
        """Run ``action`` just before the next attempt of ``operation`` is answered: another
        operator's change racing the tool's read and its write."""
        self._before_next.setdefault(operation, []).append(action)

    def remove_stage_canary(self) -> None:
        """The stage loses its canary settings, as a deploy with canaryPercent 0 does."""
        self.set_stage_canary(None, by="another operator")

    # --- time and traffic -----------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass, for ``Watch.run(sleep=...)``. Every whole minute that ends
        meanwhile is served as the account stands now (changes happen between sleeps, so that
        is how it stood all that minute) and published to CloudWatch."""
        self.now += timedelta(seconds=seconds)
        while self._served_until + MINUTE <= self.now:
            self._serve(self._served_until)
            self._served_until += MINUTE

    def _serve(self, minute: datetime) -> None:
        """Split one minute's requests as API Gateway and Lambda would: the stage canary's
        share to the alias its overrides name, the rest to the stage variables' alias; each
        alias' weights to their versions, the rest to its own version."""
        total = self.traffic.requests_per_minute
        to_canary = round(total * self.stage_percent / 100)
        targets = [(self.stage_variables[ALIAS_STAGE_VARIABLE], total - to_canary)]
        if self.canary is not None:
            targets.append((self.canary.stage_variable_overrides[ALIAS_STAGE_VARIABLE], to_canary))
        for alias_name, requests in targets:
            alias = self.aliases[alias_name]
            shares = {version: round(requests * w) for version, w in alias.weights.items()}
            shares[alias.version] = requests - sum(shares.values())
            for version, invocations in shares.items():
                if invocations:
                    self._invoke(alias_name, version, invocations, minute)

    def _invoke(self, alias: str, version: str, invocations: int, minute: datetime) -> None:
        errors = round(
            invocations * self.traffic.error_rate.get(version, self.traffic.base_error_rate)
        )
        fast = invocations * self.traffic.fast_share.get(version, self.traffic.base_fast_share)
        for dimensions in (
            lambda_alias_dimensions(FUNCTION, alias),
            lambda_version_dimensions(FUNCTION, alias, version),
        ):
            counts = self._points.setdefault(_dimension_key(dimensions), {}).setdefault(
                minute, _Counts()
            )
            counts.invocations += invocations
            counts.errors += errors
            counts.fast += fast

    # --- changes, from the API and from deploys -------------------------------------------

    def set_stage_canary(self, canary: CanarySettings | None, by: str) -> None:
        if canary != self.canary:
            self.changes.append(
                Change(
                    self.now, by, f"stage canary {_describe(self.canary)} -> {_describe(canary)}"
                )
            )
            self.canary = canary

    def set_alias(self, name: str, version: str, weights: dict[str, float], by: str) -> None:
        alias = self.aliases[name]
        if (alias.version, alias.weights) != (version, weights):
            self.changes.append(
                Change(
                    self.now,
                    by,
                    f"alias {name} v{alias.version} {alias.weights} -> v{version} {weights}",
                )
            )
            self.aliases[name] = Alias(version, dict(weights))

    # --- the clients ----------------------------------------------------------------------

    def clients(self, max_attempts: int = 2) -> AwsClients:
        """Real boto3 clients whose every HTTP attempt this account answers; ``max_attempts``:
        botocore's ``total_max_attempts`` (standard retry mode)."""

        def client(service: str, attempts: int = max_attempts) -> Any:
            made = boto3.client(
                service,
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=Config(
                    retries={"mode": "standard", "total_max_attempts": attempts},
                    connect_timeout=1,
                    read_timeout=1,
                ),
            )
            made.meta.events.register("before-send", self._on_send)
            return made

        return AwsClients(
            cloudwatch=client("cloudwatch"),
            apigateway=client("apigateway"),
            lambda_=client("lambda"),
            invoker=client("lambda", attempts=1),  # as the tool's: Invoke is never retried
        )

    def _on_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse:
        operation = event_name.rpartition(".")[2]
        handlers: dict[str, Callable[[AWSPreparedRequest], dict[str, Any]]] = {
            "GetStage": self._get_stage,
            "UpdateStage": self._update_stage,
            "GetAlias": self._get_alias,
            "UpdateAlias": self._update_alias,
            "GetMetricData": self._get_metric_data,
        }
        if operation not in {*handlers, "Invoke"}:
            raise AssertionError(f"the fake account does not model {operation} ({request.url})")
        dialect = _AWS_JSON if operation == "GetMetricData" else _REST_JSON
        for action in self._before_next.pop(operation, []):
            action()
        queued = self._faults.get(operation)
        fault = queued.pop(0) if queued else self._every_attempt.get(operation)
        self.attempts.append(Attempt(operation, self.now, fault))
        if fault == "unreachable":
            raise EndpointConnectionError(endpoint_url=request.url)
        if fault in ("throttle", "server_error", "denied"):
            return dialect.fault(request, fault, operation)
        try:
            if operation == "Invoke":
                answer = self._run_code(request)
            else:
                answer = dialect.answer(request, handlers[operation](request))
        except _ServiceError as error:
            return dialect.error(request, error.status, error.code, error.message)
        if fault == "lost_answer":
            raise ReadTimeoutError(endpoint_url=request.url)
        return answer

    # --- API Gateway (rest-json) ------------------------------------------------------------

    def _stage_path(self, request: AWSPreparedRequest) -> None:
        parts = _path(request)
        if parts[:1] != ["restapis"] or len(parts) != 4 or parts[2] != "stages":
            raise AssertionError(f"not a stage's path: {request.url}")
        if parts[1] != REST_API_ID:
            raise _ServiceError(404, "NotFoundException", "Invalid API identifier specified")
        if parts[3] != STAGE:
            raise _ServiceError(404, "NotFoundException", "Invalid Stage identifier specified")

    def _stage(self) -> dict[str, Any]:
        stage: dict[str, Any] = {
            "deploymentId": self.deployment_id,
            "stageName": STAGE,
            "variables": dict(self.stage_variables),
            "tracingEnabled": True,
            "createdDate": int(T0.timestamp()),
            "lastUpdatedDate": int(self.now.timestamp()),
        }
        if self.canary is not None:
            stage["canarySettings"] = {
                "percentTraffic": self.canary.percent_traffic,
                "deploymentId": self.canary.deployment_id,
                "stageVariableOverrides": dict(self.canary.stage_variable_overrides),
                "useStageCache": False,
            }
        return stage

    def _get_stage(self, request: AWSPreparedRequest) -> dict[str, Any]:
        self._stage_path(request)
        return self._stage()

    def _update_stage(self, request: AWSPreparedRequest) -> dict[str, Any]:
        self._stage_path(request)
        canary = self.canary
        for patch in _json_body(request)["patchOperations"]:
            if (patch["op"], patch["path"]) != ("replace", "/canarySettings/percentTraffic"):
                raise AssertionError(f"UpdateStage: the fake account does not model {patch}")
            if canary is None:
                # What API Gateway answers to a patch of canary settings the stage lacks.
                raise _ServiceError(404, "NotFoundException", "Canary settings not found")
            percent = float(patch["value"])
            if not 0 <= percent <= 100:
                raise _ServiceError(400, "BadRequestException", "percentTraffic must be 0 to 100")
            canary = CanarySettings(percent, canary.deployment_id, canary.stage_variable_overrides)
        self.set_stage_canary(canary, by="UpdateStage")
        return self._stage()

    # --- Lambda (rest-json) ---------------------------------------------------------------

    def _alias_name(self, request: AWSPreparedRequest) -> str:
        parts = _path(request)
        if len(parts) != 4 or parts[0] != "functions" or parts[2] != "aliases":
            raise AssertionError(f"not an alias' path: {request.url}")
        function, name = parts[1], parts[3]
        if function != FUNCTION or name not in self.aliases:
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}:{name}"
            raise _ServiceError(404, "ResourceNotFoundException", f"Alias not found: {arn}")
        return name

    def _alias(self, name: str) -> dict[str, Any]:
        alias = self.aliases[name]
        answer: dict[str, Any] = {
            "AliasArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION}:{name}",
            "Name": name,
            "FunctionVersion": alias.version,
            "Description": "",
            "RevisionId": f"rev-{len(self.changes)}",
        }
        if alias.weights:
            answer["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
        return answer

    def _get_alias(self, request: AWSPreparedRequest) -> dict[str, Any]:
        return self._alias(self._alias_name(request))

    def _update_alias(self, request: AWSPreparedRequest) -> dict[str, Any]:
        name = self._alias_name(request)
        body = _json_body(request)
        unmodelled = set(body) - {"FunctionVersion", "RoutingConfig"}
        if unmodelled:
            raise AssertionError(f"UpdateAlias: the fake account does not model {unmodelled}")
        alias = self.aliases[name]
        version = str(body.get("FunctionVersion", alias.version))
        weights = alias.weights
        if "RoutingConfig" in body:
            weights = {
                str(v): float(w)
                for v, w in (body["RoutingConfig"].get("AdditionalVersionWeights") or {}).items()
            }
        if version not in self.versions or not set(weights) <= set(self.versions):
            raise _ServiceError(400, "InvalidParameterValueException", "version not published")
        if version in weights or len(weights) > 1 or not all(0 <= w <= 1 for w in weights.values()):
            raise _ServiceError(
                400,
                "InvalidParameterValueException",
                "one additional version, other than the alias' own, weighted 0 to 1",
            )
        self.set_alias(name, version, weights, by="UpdateAlias")
        return self._alias(name)

    def _run_code(self, request: AWSPreparedRequest) -> AWSResponse:
        """Run the code of the version the qualifier names, as Lambda's synchronous Invoke: the
        handler's result as JSON, or Lambda's error object with ``X-Amz-Function-Error``;
        ``X-Amz-Executed-Version`` names the version that ran."""
        parts = _path(request)
        if len(parts) != 3 or parts[0] != "functions" or parts[2] != "invocations":
            raise AssertionError(f"not a function's invocations path: {request.url}")
        invocation_type = request.headers.get("X-Amz-Invocation-Type")
        if invocation_type not in (b"RequestResponse", "RequestResponse"):
            raise AssertionError(
                f"Invoke: only RequestResponse is modelled, got {invocation_type!r}"
            )
        qualifier = parse_qs(urlsplit(request.url).query).get("Qualifier", ["$LATEST"])[0]
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{parts[1]}:{qualifier}"
        if parts[1] != FUNCTION:
            raise _ServiceError(404, "ResourceNotFoundException", f"Function not found: {arn}")
        if qualifier in self.aliases:
            alias = self.aliases[qualifier]
            if alias.weights:
                raise AssertionError("Invoke: a weighted alias' choice is not modelled")
            version = alias.version
        elif qualifier in self.versions:
            version = qualifier
        else:
            raise _ServiceError(404, "ResourceNotFoundException", f"Function not found: {arn}")
        code = self.code.get(version)
        if code is None:
            raise AssertionError(f"Invoke: the test gave v{version} no code")
        event = json.loads(_body_bytes(request))
        self.invocations.append(Invocation(qualifier, version, event))
        context = InvokeContext(arn, version, f"invocation-{len(self.invocations)}")
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": context.aws_request_id,
            "X-Amz-Executed-Version": version,
        }
        try:
            # What the function prints goes to its log group, not to the caller.
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                result = code(event, context)
        except Exception as error:  # what the runtime reports of any exception
            headers["X-Amz-Function-Error"] = "Unhandled"
            result = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": [],
            }
        finally:
            self.logs.append(printed.getvalue())
        # The python3.12+ runtime's encoding: JSON without ASCII escapes, then UTF-8.
        body = json.dumps(result, ensure_ascii=False).encode("utf-8")
        return AWSResponse(request.url, 200, headers, _Raw(body))

    # --- CloudWatch (smithy-rpc-v2-cbor) ---------------------------------------------------

    def _get_metric_data(self, request: AWSPreparedRequest) -> dict[str, Any]:
        query = _aws_json_body(request)
        unmodelled = set(query) - {"MetricDataQueries", "StartTime", "EndTime", "ScanBy"}
        if unmodelled:  # NextToken among them: the account never hands one out
            raise AssertionError(f"GetMetricData: the fake account does not model {unmodelled}")
        start, end = query["StartTime"], query["EndTime"]
        published = self.now - timedelta(minutes=self.lag_minutes)
        results = []
        for metric_query in query["MetricDataQueries"]:
            query_id = metric_query["Id"]
            if self._query_faults.get(query_id):
                self._query_faults[query_id] -= 1
                results.append(
                    {
                        "Id": query_id,
                        "Label": query_id,
                        "Timestamps": [],
                        "Values": [],
                        "StatusCode": "InternalError",
                        "Messages": [{"Code": "InternalError", "Value": "Internal error"}],
                    }
                )
                continue
            points = self._answer_query(metric_query, start, end, published)
            if query.get("ScanBy") != "TimestampAscending":  # CloudWatch's default: newest first
                points.reverse()
            results.append(
                {
                    "Id": query_id,
                    "Label": query_id,
                    "Timestamps": [int(at.timestamp()) for at, _ in points],
                    "Values": [value for _, value in points],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}

    def _answer_query(
        self, query: dict[str, Any], start: datetime, end: datetime, published: datetime
    ) -> list[tuple[datetime, float]]:
        """One MetricStat query's points, oldest first: the minutes of ``start``..``end``
        CloudWatch has published, summed into periods counted from ``start``."""
        if "MetricStat" not in query:
            raise AssertionError(f"GetMetricData: only MetricStat queries are modelled: {query}")
        stat = query["MetricStat"]
        metric = stat["Metric"]
        if metric["Namespace"] == FUNCTION_NAMESPACE:
            # The account's versions predate the function's own metrics: nothing published,
            # so the tool falls back to Lambda's minutes.
            return []
        if metric["Namespace"] != "AWS/Lambda":
            raise AssertionError(f"GetMetricData: namespace {metric['Namespace']} not modelled")
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        series = self._points.get(_dimension_key(dimensions), {})
        period = timedelta(seconds=stat["Period"])
        periods: dict[datetime, _Counts] = {}
        for minute, counts in sorted(series.items()):
            if start <= minute < end and minute + MINUTE <= published:
                bucket = start + (minute - start) // period * period
                total = periods.setdefault(bucket, _Counts())
                total.invocations += counts.invocations
                total.errors += counts.errors
                total.fast += counts.fast
        value = _statistic(metric["MetricName"], stat["Stat"])
        return [(at, value(total)) for at, total in periods.items()]


def _statistic(metric: str, statistic: str) -> Callable[[_Counts], float]:
    """How a period's counts become the value CloudWatch answers for ``metric``/``statistic``.

    Throttles are never in the account's series (it models no throttled invocation, and Lambda
    sends the metric only when nonzero), so a Throttles query finds no period at all."""
    if (metric, statistic) == ("Invocations", "Sum"):
        return lambda counts: float(counts.invocations)
    if (metric, statistic) == ("Errors", "Sum"):
        return lambda counts: float(counts.errors)
    if metric == "Throttles" and statistic == "Sum":
        return lambda counts: 0.0
    if metric == "Duration" and statistic.startswith("PR(:") and statistic.endswith(")"):
        return lambda counts: 100.0 * counts.fast / counts.invocations
    if (metric, statistic) == ("Duration", "p50"):
        return lambda counts: P50_MS
    if (metric, statistic) == ("Duration", "p99"):
        return lambda counts: P99_MS
    raise AssertionError(f"GetMetricData: {metric} {statistic} is not modelled")


def _describe(canary: CanarySettings | None) -> str:
    return "none" if canary is None else f"{canary.percent_traffic:g}%"


def _path(request: AWSPreparedRequest) -> list[str]:
    """The URL path's segments after the API version (Lambda's ``/2015-03-31``), unquoted."""
    parts = [unquote(part) for part in urlsplit(request.url).path.split("/") if part]
    return parts[1:] if parts[:1] == ["2015-03-31"] else parts


def _body_bytes(request: AWSPreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else bytes(body)


def _json_body(request: AWSPreparedRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(_body_bytes(request) or b"{}")
    return body


def _aws_json_body(request: AWSPreparedRequest) -> dict[str, Any]:
    """An awsJson1_0 request's body, its epoch-second timestamps as datetimes."""
    content_type = request.headers.get("Content-Type", b"")
    if content_type not in (b"application/x-amz-json-1.0", "application/x-amz-json-1.0"):
        raise AssertionError(
            f"the fake account answers CloudWatch in awsJson1_0, botocore sent {content_type!r}"
        )
    body = _json_body(request)
    for name in ("StartTime", "EndTime"):
        body[name] = datetime.fromtimestamp(body[name], UTC)
    return body


class _Raw:
    """The raw HTTP body botocore streams from, or reads as a file for a streaming member (such
    as Invoke's ``Payload``)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._unread = io.BytesIO(body)

    def stream(self, **_: Any) -> Any:
        yield self.body

    def read(self, amount: int | None = None) -> bytes:
        return self._unread.read(amount)


@dataclass(frozen=True)
class _Dialect:
    """How one of the two JSON protocols writes answers and errors on the wire."""

    content_type: str
    error_headers: Callable[[str], dict[str, str]]
    """error code -> the headers that name it (each protocol has its own)."""
    error_body: Callable[[str, str], dict[str, str]]
    """(error code, message) -> the body of an error answer."""
    faults: dict[str, tuple[int, str]]
    """fault -> (status, error code)."""

    def _response(
        self, request: AWSPreparedRequest, status: int, body: Any, headers: dict[str, str]
    ) -> AWSResponse:
        headers = {"Content-Type": self.content_type, "x-amzn-RequestId": "req", **headers}
        return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))

    def answer(self, request: AWSPreparedRequest, body: dict[str, Any]) -> AWSResponse:
        return self._response(request, 200, body, {})

    def error(
        self, request: AWSPreparedRequest, status: int, code: str, message: str
    ) -> AWSResponse:
        return self._response(
            request, status, self.error_body(code, message), self.error_headers(code)
        )

    def fault(self, request: AWSPreparedRequest, fault: Fault, operation: str) -> AWSResponse:
        status, code = self.faults[fault]
        return self.error(request, status, code, f"{operation}: {code} (injected {fault})")


# API Gateway and Lambda: rest-json, the error's code in x-amzn-ErrorType.
_REST_JSON = _Dialect(
    content_type="application/json",
    error_headers=lambda code: {"x-amzn-ErrorType": code},
    error_body=lambda _, message: {"message": message},
    faults={
        "throttle": (429, "TooManyRequestsException"),
        "server_error": (500, "ServiceException"),
        "denied": (403, "AccessDeniedException"),
    },
)

# CloudWatch: awsJson1_0, query-compatible: x-amzn-query-error carries the code (and fault side)
# its query API used, which botocore reports as the error's code.
_QUERY_CODES = {
    "ThrottlingException": "Throttling;Sender",
    "InternalServiceFault": "InternalServiceError;Receiver",
    "AccessDeniedException": "AccessDenied;Sender",
}
_AWS_JSON = _Dialect(
    content_type="application/x-amz-json-1.0",
    error_headers=lambda code: {"x-amzn-query-error": _QUERY_CODES[code]},
    error_body=lambda code, message: {
        "__type": f"com.amazonaws.cloudwatch#{code}",
        "message": message,
    },
    faults={
        "throttle": (400, "ThrottlingException"),
        "server_error": (500, "InternalServiceFault"),
        "denied": (403, "AccessDeniedException"),
    },
)


class AccountDeployer:
    """The Deployer protocol against a :class:`FakeAccount`: ``up`` reads the stack file and
    applies it as the component does (through its :class:`StagePlan`), ``outputs`` are those of
    the last successful ``up``.

    ``hold``: when set to an Event, ``up`` reads the file (Pulumi reads the stack's config as
    its update starts), sets :attr:`holding` and waits for ``hold`` before applying, so a test
    can look at, race or interrupt the step meanwhile.
    """

    def __init__(self, account: FakeAccount, program_dir: Path, stack: str = "prod") -> None:
        self.account = account
        self.path = program_dir / f"Pulumi.{stack}.yaml"
        self.stack = stack
        self.ups = 0
        """Calls of ``up``, failed ones included."""
        self.hold: threading.Event | None = None
        self.holding = threading.Event()
        self._stack_outputs: dict[str, Any] = {}
        self._fail_next = False

    def fail_next_up(self) -> None:
        """The next ``up`` raises :class:`ApplyError` and applies nothing."""
        self._fail_next = True

    def outputs(self) -> dict[str, Any]:
        return dict(self._stack_outputs)

    def up(self, on_output: Callable[[str], None]) -> None:
        self.ups += 1
        config = YAML(typ="safe").load(self.path.read_text())["config"]

        def setting(name: str, default: str) -> str:
            value = config.get(f"{PROJECT}:{name}")
            return default if value is None else str(value)

        if self.hold is not None:
            self.holding.set()
            if not self.hold.wait(HOLD_TIMEOUT_SECONDS):
                raise AssertionError("the test never let the held up go")
        if self._fail_next:
            self._fail_next = False
            raise ApplyError(f"pulumi up failed for stack {self.stack}: injected failure")
        stable = setting("stableVersion", "")
        plan = StagePlan(
            name=STAGE,
            live_alias=LIVE_ALIAS,
            canary_alias=CANARY_ALIAS,
            canary_percent=float(setting("canaryPercent", "0")),
            stable_version=int(stable) if stable else None,
            throttle_rate_limit=50,
            throttle_burst_limit=100,
            canary_mode=CanaryMode(setting("canaryMode", CanaryMode.STAGE.value)),
            alarm_thresholds=AlarmThresholds(error_rate_percent=1.0, p99_duration_ms=8000.0),
        )
        account = self.account
        newest = account.versions[-1]
        live = stable or newest
        if live not in account.versions:
            raise ApplyError(f"pulumi up failed: version {live} of {FUNCTION} does not exist")
        account.set_alias(LIVE_ALIAS, live, plan.alias_weights(newest), by="up")
        account.set_alias(CANARY_ALIAS, newest, {}, by="up")
        account.set_stage_canary(
            CanarySettings(
                plan.canary_percent, account.deployment_id, plan.canary_variable_overrides
            )
            if plan.stage_canary
            else None,
            by="up",
        )
        self._stack_outputs = {
            **OUTPUTS,
            "liveVersion": live,
            "canaryVersion": newest,
            "canaryPercent": plan.canary_percent,
            "canaryMode": plan.canary_mode.value,
        }
        on_output(f"Resources: applied canaryPercent {plan.canary_percent:g}")


def typical_stack(program_dir: Path, mode: Mode = "stage") -> tuple[FakeAccount, AccountDeployer]:
    """A deployed prod stack mid-release: versions 1..4, stableVersion 3 pinned, 10% to the
    canary (v4) by the stage canary, or in ``alias`` mode by the live alias' weights.

    ``program_dir`` gets the repository's ``Pulumi.yaml`` and ``Pulumi.prod.yaml`` with
    ``stableVersion: "3"`` (and ``canaryMode: "alias"``) added. The account's change log and
    the deployer's count of ups start empty."""
    program_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", program_dir / "Pulumi.yaml")
    yaml = YAML()
    yaml.preserve_quotes = True
    stack_file = program_dir / "Pulumi.prod.yaml"
    document = yaml.load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"][f"{PROJECT}:stableVersion"] = DoubleQuotedScalarString("3")
    if mode == "alias":
        document["config"][f"{PROJECT}:canaryMode"] = DoubleQuotedScalarString("alias")
    with stack_file.open("w") as file:
        yaml.dump(document, file)
    account = FakeAccount()
    deployer = AccountDeployer(account, program_dir)
    deployer.up(lambda _: None)
    account.changes.clear()
    deployer.ups = 0
    return account, deployer


def stack_setting(program_dir: Path, name: str) -> str | None:
    """A project key of ``Pulumi.prod.yaml`` as the program reads it."""
    config = YAML(typ="safe").load((program_dir / "Pulumi.prod.yaml").read_text())["config"]
    value = config.get(f"{PROJECT}:{name}")
    return None if value is None else str(value)
