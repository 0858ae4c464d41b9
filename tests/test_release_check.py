"""The pre-traffic check: a new version takes no user traffic until it has answered a smoke test.

Pure parts first (the routes the program declares, the events their templates render, the
replies judged as API Gateway answers them, the checks file); then the exact Invoke call under
botocore's Stubber; then the flows on the fake AWS account (tests/release_world.py), whose
canary runs the real handler in-process against moto's DynamoDB.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import importlib.util
import io
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from release import commands, smoke
from release.aws import Invoked
from release.commands import DEFAULT_STEPS, AwsClients, Release, ReleaseError
from release.config_file import StackConfigFile
from release.lock import StackLockedError
from release.watch import Watch
from tests.conftest import ROOT, run_stack
from tests.events_table import create_events_table
from tests.release_fakes import OUTPUTS, FakeDeployer
from tests.release_world import CANARY_ALIAS, FUNCTION, PROJECT, REGION, Code, InvokeContext
from tests.test_release_world import World, make_world
from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.graph import ResourceGraph
from versioned_lambda_api.analysis.routing import REST_API, STAGE

TABLE = "events-prod"
FIRST_STEP = f"{DEFAULT_STEPS[0]:g}"


@pytest.fixture(scope="module")
def prod_graph() -> ResourceGraph:
    """What the real program declares for prod, pinned at share 0 after v4 was published."""
    # Set up before each test's own event loop (tests/conftest.py): one of its own.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        run = run_stack("prod", {"stableVersion": "3", "canaryPercent": "0"}, published_version=4)
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return run.graph


@pytest.fixture(scope="module")
def routes(prod_graph: ResourceGraph) -> list[smoke.Route]:
    """The prod stage's routes, as the check reads them."""
    return smoke.stage_routes(prod_graph, "prod")


def event_of(payload: bytes) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(payload.decode("utf-8"))
    return event


def invoked(reply: object, version: str = "4", error: str | None = None) -> Invoked:
    return Invoked(error, json.dumps(reply).encode(), version)


# --- The routes and the events their templates render --------------------------------------


def test_the_routes_and_templates_come_from_the_stacks_program(routes: list[smoke.Route]) -> None:
    assert [(route.method, route.path) for route in routes] == [
        ("GET", "/events"),
        ("POST", "/events"),
    ]
    assert {route.request_template for route in routes} == {api_spec.DEFAULT_REQUEST_TEMPLATE}
    # The methods' own integration responses, as deployed: the component's.
    assert {frozenset(route.responses) for route in routes} == {
        frozenset(api_spec.INTEGRATION_RESPONSES)
    }
    # Release.program_routes runs the program of the stack file it edits.
    release = Release(config=StackConfigFile(ROOT, PROJECT, "prod"), deployer=FakeDeployer())
    assert release.program_routes({**OUTPUTS, "canaryVersion": "4"}) == routes
    with pytest.raises(ReleaseError, match="no Lambda route on a stage named 'qa'"):
        release.program_routes({**OUTPUTS, "stage": "qa"})


def test_a_pinned_stack_at_share_0_still_points_the_canary_alias_at_the_newest_version() -> None:
    run = run_stack("prod", {"stableVersion": "3", "canaryPercent": "0"}, published_version=4)
    aliases = {
        a.inputs["name"]: a.inputs["functionVersion"]
        for a in run.graph.of_type("aws:lambda/alias:Alias")
    }
    assert aliases == {"prod": "3", "prod-canary": "4"}
    assert "canarySettings" not in run.graph.one(STAGE).inputs  # no user request reaches it
    assert (run.exports["liveVersion"], run.exports["canaryVersion"]) == ("3", "4")


def test_each_route_gets_a_default_request_rendered_as_a_canary_request(
    routes: list[smoke.Route],
) -> None:
    get, post = smoke.default_requests(routes, "4")
    assert (get.method, get.body, get.expect) == ("GET", "", "2xx")
    assert (post.method, post.headers, post.expect) == (
        "POST",
        {"Content-Type": "application/json"},
        "2xx",
    )
    # A write is stored like any client's: its body says whose it is.
    assert json.loads(post.body) == {
        "type": "release-check",
        "note": "pre-traffic check of v4 by the release tool",
    }
    sent = smoke.gateway_request(post, "prod", CANARY_ALIAS)
    event = event_of(smoke.event_payload(sent, smoke.route_for(post, routes)))
    assert base64.b64decode(event.pop("bodyBase64")).decode() == post.body
    assert event.pop("requestId").startswith("release-check-")
    assert event == {
        "stage": "prod",
        "method": "POST",
        "resourcePath": "/events",
        "isCanaryRequest": "true",
        "query": {},
        "idempotencyKey": "",
        "callerId": "release-check",
    }


def with_get_integration(graph: ResourceGraph, **changes: Any) -> ResourceGraph:
    """``graph`` with GET /events' integration in the API's OpenAPI body changed."""
    changed = copy.deepcopy(graph)
    api = changed.one(REST_API)
    document = json.loads(api.inputs["body"])
    integration = document["paths"]["/events"]["get"]["x-amazon-apigateway-integration"]
    integration.update(changes)
    api.inputs["body"] = json.dumps(document)
    return changed


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"type": "aws_proxy"},
            "GET /events has an integration of type AWS_PROXY: the check renders the request "
            "templates of non-proxy Lambda",
        ),
        ({"requestTemplates": {}}, "GET /events has no application/json request template"),
        ({"responses": {"5\\d\\d": {"statusCode": "500"}}}, "no default integration response"),
    ],
)
def test_a_route_the_check_cannot_model_is_refused(
    prod_graph: ResourceGraph, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(smoke.CheckError, match=re.escape(message)):
        smoke.stage_routes(with_get_integration(prod_graph, **changes), "prod")


def test_a_route_with_a_path_parameter_gets_no_default_and_is_named_unchecked() -> None:
    routes = [
        smoke.Route("GET", "/orders", api_spec.DEFAULT_REQUEST_TEMPLATE),
        smoke.Route("GET", "/orders/{id}", api_spec.DEFAULT_REQUEST_TEMPLATE),
    ]
    requests = smoke.default_requests(routes, "4")
    assert [request.path for request in requests] == ["/orders"]
    assert smoke.unchecked_routes(routes, requests) == ["GET /orders/{id}"]


# --- Replies, as the client would get them --------------------------------------------------


def judged(reply: Invoked, **request: Any) -> smoke.Outcome:
    asked = smoke.SmokeRequest(
        **{"method": "GET", "path": "/events", "source": "default", **request}
    )
    return smoke.judge_reply(asked, smoke.gateway_request(asked, "prod", CANARY_ALIAS), reply, "4")


def test_a_2xx_reply_of_the_canary_version_passes() -> None:
    outcome = judged(invoked({"statusCode": 200, "body": {"events": [], "next": None}}))
    assert (outcome.passed, outcome.status, json.loads(outcome.body)) == (
        True,
        200,
        {"events": [], "next": None},
    )
    assert smoke.describe_outcome(outcome) == ["  GET /events (default) -> 200 (v4) ok"]


def test_a_reply_of_another_status_class_fails_with_its_body() -> None:
    outcome = judged(invoked({"statusCode": 404, "body": {"message": "no route GET '/events'"}}))
    assert outcome.problems == ("status 404, expected 2xx",)
    # The body as API Gateway's $input.json renders it: compact.
    assert smoke.describe_outcome(outcome)[1:] == [
        '    body: {"message":"no route GET \'/events\'"}'
    ]
    assert judged(invoked({"statusCode": 400, "body": {}}), expect="4xx").passed


def test_a_function_error_is_the_clients_500_and_names_lambdas_error_type() -> None:
    error = {"errorMessage": "secret detail", "errorType": "KeyError", "stackTrace": []}
    outcome = judged(invoked(error, error="Unhandled"))
    assert (outcome.status, outcome.error_type) == (500, "KeyError")
    assert "secret detail" not in outcome.body  # API Gateway's 500 does not leak it
    lines = smoke.describe_outcome(outcome)
    assert lines[0] == "  GET /events (default) -> 500 (v4) FAILED: status 500, expected 2xx"
    assert lines[1] == "    Lambda error: KeyError"
    unavailable = {"errorMessage": '[Unavailable] {"message": "retry"}', "errorType": "E"}
    assert judged(invoked(unavailable, error="Unhandled")).status == 503


def test_another_version_answering_or_a_body_without_the_text_fails() -> None:
    reply = {"statusCode": 200, "body": {"events": []}}
    outcome = judged(invoked(reply, version="3"), body_contains='"next"')
    assert outcome.problems == (
        "body lacks '\"next\"'",
        "v3 answered, the stack's canaryVersion is v4",
    )


def test_a_long_body_is_cut_short() -> None:
    outcome = judged(invoked({"statusCode": 400, "body": {"message": "x" * 500}}))
    body_line = smoke.describe_outcome(outcome)[-1]
    assert body_line.endswith("...")
    assert len(body_line) == len("    body: ") + 200


# --- The checks file ------------------------------------------------------------------------


def test_the_checks_file_adds_requests(routes: list[smoke.Route]) -> None:
    text = json.dumps(
        [
            {"method": "get", "path": "events", "query": {"limit": "1"}, "bodyContains": "next"},
            {"method": "POST", "path": "/events", "body": [1], "expect": "4xx"},
            {"method": "POST", "path": "/events", "body": "{not json"},
        ]
    )
    listing, refused, raw = smoke.parse_checks(text, routes)
    assert (listing.method, listing.path, listing.query) == ("GET", "/events", {"limit": "1"})
    assert (listing.source, listing.body_contains) == ("release_checks.json[0]", "next")
    assert (refused.body, refused.headers, refused.expect) == (
        "[1]",
        {"Content-Type": "application/json"},
        "4xx",
    )
    assert (raw.body, raw.headers) == ("{not json", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", r"release_checks\.json is not JSON: .* at line 1 column 3"),
        ('{"method": "GET"}', r"must be a JSON array of requests, got an object"),
        ("[3]", r"release_checks\.json\[0\] must be an object with method and path, got a number"),
        (
            '[{"method": "GET", "path": "/events", "expected": "2xx"}]',
            r"\[0\] has unknown key\(s\) \['expected'\]; allowed: method, path, body, query",
        ),
        (
            '[{"path": "/events"}]',
            r"\[0\]\.method and release_checks\.json\[0\]\.path are required",
        ),
        (
            '[{"method": "DELETE", "path": "/events"}]',
            r"DELETE /events is not a route of the stage; its routes: GET /events, POST /events",
        ),
        (
            '[{"method": "GET", "path": "/events", "expect": "200"}]',
            r"\[0\]\.expect must be one of 2xx, 3xx, 4xx, 5xx, got '200'",
        ),
        (
            '[{"method": "GET", "path": "/events", "query": {"limit": 1}}]',
            r"\[0\]\.query must be an object of strings",
        ),
        (
            '[{"method": "GET", "path": "/events", "bodyContains": ""}]',
            r"\[0\]\.bodyContains must be a non-empty string",
        ),
    ],
)
def test_a_bad_checks_file_is_refused_naming_the_key(
    routes: list[smoke.Route], text: str, message: str
) -> None:
    with pytest.raises(smoke.CheckError, match=message):
        smoke.parse_checks(text, routes)


# --- The exact Invoke call ------------------------------------------------------------------


class EventOf:
    """Matches Invoke's ``Payload`` bytes when they are this event as UTF-8 JSON."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def __eq__(self, payload: object) -> bool:
        return isinstance(payload, bytes) and event_of(payload) == self.event

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"EventOf({self.event})"


def test_the_check_invokes_the_canary_alias_synchronously_with_each_rendered_event(
    program: Path, routes: list[smoke.Route], monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = uuid.UUID("00000000-0000-4000-8000-000000000042")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    lambda_ = boto3.client("lambda", region_name=REGION)
    stubber = Stubber(lambda_)
    common = {
        "stage": "prod",
        "resourcePath": "/events",
        "requestId": f"release-check-{fixed}",
        "isCanaryRequest": "true",
        "query": {},
        "idempotencyKey": "",
        "callerId": "release-check",
    }
    note = b'{"type": "release-check", "note": "pre-traffic check of v4 by the release tool"}'
    # API Gateway hands a template an empty body as {}.
    for method, body in (("GET", b"{}"), ("POST", note)):
        reply = json.dumps({"statusCode": 200, "body": {}}).encode()
        stubber.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "ExecutedVersion": "4",
                "Payload": StreamingBody(io.BytesIO(reply), len(reply)),
            },
            {
                "FunctionName": OUTPUTS["functionName"],
                "Qualifier": "prod-canary",
                "InvocationType": "RequestResponse",
                "Payload": EventOf(
                    {**common, "method": method, "bodyBase64": base64.b64encode(body).decode()}
                ),
            },
        )
    lines: list[str] = []
    release = Release(
        config=StackConfigFile(program, PROJECT, "prod"),
        deployer=FakeDeployer(),
        out=lines.append,
        smoke_routes=lambda _: routes,
    )
    with stubber:
        release.check(AwsClients(None, None, lambda_))
        stubber.assert_no_pending_responses()
    assert lines[-1] == "pre-traffic check passed: v4 answered every request as expected"


@pytest.fixture
def program(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    return tmp_path


# --- On the fake account, the canary running the real handler --------------------------------


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "release_check_handler", ROOT / "function" / "handler.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MotoDynamoDB:
    """moto's DynamoDB, its mock on only while a version's code runs (or the test reads the
    table): while on, moto answers every boto3 client's calls, the account's too."""

    def __init__(self) -> None:
        self.mock = mock_aws()

    @contextmanager
    def on(self) -> Iterator[Any]:
        """The mock on, with the data of earlier sessions; yields a client of it."""
        self.mock.start(reset=False)
        try:
            yield boto3.client("dynamodb")
        finally:
            self.mock.stop(remove_data=False)

    def running(self, code: Code) -> Code:
        def run(event: Any, context: InvokeContext) -> Any:
            with self.on():
                return code(event, context)

        return run

    def events(self) -> list[dict[str, Any]]:
        """The table's events (its idempotency records left out)."""
        with self.on() as client:
            items: list[dict[str, Any]] = client.scan(TableName=TABLE)["Items"]
        return [item for item in items if not item["pk"]["S"].startswith("idempotency#")]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoDynamoDB]:
    """The stack's events table in moto, which the handler's own client finds through its
    environment."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TABLE_NAME": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "EVENT_SHARDS", "EVENT_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    dynamodb = MotoDynamoDB()
    dynamodb.mock.start()  # a fresh account
    create_events_table(boto3.client("dynamodb"), TABLE)
    dynamodb.mock.stop(remove_data=False)
    yield dynamodb
    dynamodb.mock.start(reset=False)
    dynamodb.mock.stop()  # and its data gone


@pytest.fixture
def real_code(handler: ModuleType, table: MotoDynamoDB) -> Code:
    """The Event Logger's handler, as Lambda runs it, against the table in moto."""
    return table.running(handler.handler)


@pytest.fixture
def world(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    routes: list[smoke.Route],
    real_code: Code,
) -> World:
    """The prod stack after 'start' and 'make up': v3 live and pinned, v4 behind the canary
    alias at share 0; both versions run the real handler."""
    world = make_world(tmp_path, monkeypatch, capsys)
    config = StackConfigFile(world.program, PROJECT, "prod")
    config.set("canaryPercent", "0")
    config.save()
    world.deployer.up(lambda _: None)
    world.account.changes.clear()
    world.deployer.ups = 0
    world.account.code = {"3": real_code, "4": real_code}
    monkeypatch.setattr(Release, "program_routes", lambda self, outputs: routes)
    return world


def crash(event: object, context: InvokeContext) -> object:
    raise RuntimeError("v4 cannot reach its table")


def assert_untouched(world: World) -> None:
    """Live untouched: no share opened, nothing applied, the file still at 0."""
    assert (world.account.stage_percent, world.account.changes) == (0.0, [])
    assert (world.deployer.ups, world.file()) == (0, "0")


def test_check_invokes_the_canary_which_answers_and_records_its_event(
    world: World, table: MotoDynamoDB
) -> None:
    ran = world.cli("check")
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        f"pre-traffic check of v4: 2 request(s) to {FUNCTION}:{CANARY_ALIAS}",
        "  GET /events (default) -> 200 (v4) ok",
        "  POST /events (default) -> 200 (v4) ok",
        "pre-traffic check passed: v4 answered every request as expected",
    ]
    assert [(i.qualifier, i.version) for i in world.account.invocations] == [
        (CANARY_ALIAS, "4"),
        (CANARY_ALIAS, "4"),
    ]
    # The write is a real event in the stack's table, recognisably the check's.
    (event,) = table.events()
    assert event["callerId"]["S"] == "release-check"
    assert event["requestId"]["S"].startswith("release-check-")
    assert json.loads(event["data"]["S"])["type"] == "release-check"
    assert (event["version"]["S"], event["alias"]["S"]) == ("4", CANARY_ALIAS)
    assert_untouched(world)


def on_the_accounts_clock(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line reads the account's clock (an hour of its traffic behind it)."""
    account = world.account

    class AccountTime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> AccountTime:
            return cls.fromtimestamp(account.clock().timestamp(), tz)

    monkeypatch.setattr(commands, "datetime", AccountTime)
    account.sleep(3600)


def test_advance_from_0_checks_the_canary_then_opens_the_first_step(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_accounts_clock(world, monkeypatch)
    ran = world.cli("advance")
    assert ran.code == 0, ran.err
    assert "pre-traffic check passed" in ran.out
    assert ran.out.index("pre-traffic check passed") < ran.out.index("first step")
    assert ran.out.index("first step") < ran.out.index("applying with pulumi up")
    assert len(world.account.invocations) == 2
    # 6,000 requests a minute: a good canary passes even a 1% step within the bake.
    assert "first step 1% (of 1, 2, 5, 10): at live's 6000 requests a minute" in ran.out
    assert (world.file(), world.account.stage_percent) == ("1", 1.0)


def test_at_low_traffic_the_first_step_is_10_percent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.account.traffic.requests_per_minute = 300  # 5 a second: 5% would need hours
    on_the_accounts_clock(world, monkeypatch)
    ran = world.cli("advance")
    assert ran.code == 0, ran.err
    assert "first step 10% (of 1, 2, 5, 10): at live's 300 requests a minute" in ran.out
    assert (world.file(), world.account.stage_percent) == ("10", 10.0)
    # The schedule goes on above it.
    assert world.cli("advance").code == 0
    assert world.file() == "25"


def test_steps_given_are_kept_whatever_the_traffic(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.account.traffic.requests_per_minute = 300
    on_the_accounts_clock(world, monkeypatch)
    ran = world.cli("advance", "--steps", "5,25,50")
    assert ran.code == 0, ran.err
    assert "first step" not in ran.out
    assert world.file() == "5"


def test_live_traffic_that_cannot_be_read_leaves_the_smallest_first_step(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.account.traffic.requests_per_minute = 300
    on_the_accounts_clock(world, monkeypatch)
    world.account.fail_query("requests")
    ran = world.cli("advance")
    assert ran.code == 0, ran.err
    assert "first step 5%: live's traffic in the hour before could not be read" in ran.out
    assert world.file() == "5"


def test_advance_from_0_stops_on_a_failing_canary_and_changes_nothing(world: World) -> None:
    world.account.code["4"] = crash
    ran = world.cli("advance")
    assert ran.code == 1
    assert "  GET /events (default) -> 500 (v4) FAILED: status 500, expected 2xx" in ran.out
    assert "    Lambda error: RuntimeError" in ran.out
    assert '    body: {"message": "Internal error", "requestId": "release-check-' in ran.out
    assert ran.err.startswith(
        "error: pre-traffic check failed: 2 of 2 request(s) (above); nothing was changed, "
        "canaryPercent stays 0."
    )
    assert_untouched(world)


def test_a_reply_of_an_unexpected_status_class_fails_the_check(world: World) -> None:
    world.account.code["4"] = lambda event, context: {"statusCode": 422, "body": {"m": "no"}}
    ran = world.cli("advance")
    assert ran.code == 1
    assert "  POST /events (default) -> 422 (v4) FAILED: status 422, expected 2xx" in ran.out
    assert '    body: {"m":"no"}' in ran.out
    assert_untouched(world)


def test_invoke_denied_names_the_permission_and_changes_nothing(world: World) -> None:
    world.account.fail("Invoke", "denied")
    ran = world.cli("advance")
    assert ran.code == 1
    assert "AWS refused (AccessDeniedException" in ran.err
    assert (
        f"the check needs lambda:InvokeFunction on {FUNCTION}:{CANARY_ALIAS} (the function's "
        f"ARN with the qualifier :{CANARY_ALIAS})"
    ) in ran.err
    assert_untouched(world)


def test_a_canary_alias_that_does_not_exist_says_to_deploy(world: World) -> None:
    del world.account.aliases[CANARY_ALIAS]
    ran = world.cli("check")
    assert ran.code == 1
    assert "AWS refused (ResourceNotFoundException: Function not found" in ran.err
    assert f"no alias {CANARY_ALIAS} of {FUNCTION}: deploy the stack first" in ran.err
    assert world.account.invocations == []


def test_a_bad_checks_file_stops_before_any_invocation(world: World) -> None:
    (world.program / "release_checks.json").write_text('[{"method": "GET", "path": "/orders"}]')
    ran = world.cli("advance")
    assert ran.code == 1
    assert ran.err == (
        "error: pre-traffic check: release_checks.json[0]: GET /orders is not a route of the "
        "stage; its routes: GET /events, POST /events; nothing was invoked\n"
    )
    assert world.account.invocations == []
    assert_untouched(world)


def test_the_checks_files_requests_are_sent_and_judged(world: World) -> None:
    (world.program / "release_checks.json").write_text(
        json.dumps(
            [
                {
                    "method": "GET",
                    "path": "/events",
                    "query": {"limit": "1"},
                    "bodyContains": "n/a",
                },
                {"method": "POST", "path": "/events", "body": [1], "expect": "4xx"},
            ]
        )
    )
    ran = world.cli("check")
    assert ran.code == 1
    assert (
        "  GET /events?limit=1 (release_checks.json[0]) -> 200 (v4) FAILED: body lacks 'n/a'"
        in ran.out
    )
    assert "  POST /events (release_checks.json[1]) -> 400 (v4) ok" in ran.out
    assert world.account.invocations[2].event["query"] == {"limit": "1"}


def test_watch_from_0_checks_then_watches_the_first_step(world: World) -> None:
    lines: list[str] = []
    release = world.release(lines.append, latency_threshold_ms=1000)
    outcome = Watch(release).run(
        world.clients, 2, now=world.account.clock, sleep=world.account.sleep
    )
    assert outcome == "CONTINUE"
    passed = lines.index("pre-traffic check passed: v4 answered every request as expected")
    watching = next(i for i, line in enumerate(lines) if line.startswith("watching the canary"))
    assert passed < watching
    assert lines[watching].startswith(f"watching the canary at {FIRST_STEP}%")
    assert world.account.stage_percent == DEFAULT_STEPS[0]


def test_watch_from_0_stops_when_the_check_fails_with_live_untouched(world: World) -> None:
    world.account.code["4"] = crash
    ran = world.cli("watch")
    assert ran.code == 1  # not 3: the canary takes no traffic
    assert "pre-traffic check failed: 2 of 2 request(s)" in ran.err
    assert_untouched(world)


def test_watch_from_0_without_apply_checks_edits_the_file_and_stops(world: World) -> None:
    lines: list[str] = []
    release = Release(
        config=StackConfigFile(world.program, PROJECT, "prod"),
        deployer=world.deployer,
        apply=False,
        out=lines.append,
    )
    outcome = Watch(release).run(
        world.clients, 2, now=world.account.clock, sleep=world.account.sleep
    )
    assert outcome == "ADVANCED"
    assert "pre-traffic check passed: v4 answered every request as expected" in lines
    assert lines[-1] == "stopped watching: watch again once the first step is deployed"
    assert (world.file(), world.deployer.ups, world.account.stage_percent) == (FIRST_STEP, 0, 0.0)


def test_advance_from_0_needs_aws_for_its_check(program: Path) -> None:
    config = StackConfigFile(program, PROJECT, "prod")
    config.set("canaryPercent", "0")
    config.save()
    deployer = FakeDeployer()
    release = Release(config=StackConfigFile(program, PROJECT, "prod"), deployer=deployer)
    with pytest.raises(ReleaseError, match="advancing from it runs the pre-traffic check"):
        release.advance()
    assert (StackConfigFile(program, PROJECT, "prod").get("canaryPercent"), deployer.ups) == (
        "0",
        0,
    )


def test_after_a_promotion_the_next_version_waits_for_its_own_check(world: World) -> None:
    assert world.cli("advance").code == 0
    promoted = world.cli("promote")
    assert promoted.code == 0, promoted.err
    assert (world.file("stableVersion"), world.file()) == ("4", "0")
    # The next release's code: v5 published behind the canary alias, at share 0.
    world.account.versions.append("5")
    world.account.code["5"] = crash
    world.deployer.up(lambda _: None)
    assert (world.account.aliases[CANARY_ALIAS].version, world.account.stage_percent) == ("5", 0)
    failed = world.cli("advance")
    assert failed.code == 1
    assert "  POST /events (default) -> 500 (v5) FAILED: status 500, expected 2xx" in failed.out
    assert (world.account.live.version, world.account.stage_percent, world.file()) == ("4", 0, "0")


def test_a_reply_is_answered_through_the_routes_own_integration_responses(program: Path) -> None:
    """A method deployed with other responses than the component's: its default answers 202."""
    accepted = api_spec.IntegrationResponse("202", None, '{"queued": true}')
    route = smoke.Route("GET", "/events", api_spec.DEFAULT_REQUEST_TEMPLATE, (accepted,))
    lambda_ = boto3.client("lambda", region_name=REGION)
    stubber = Stubber(lambda_)
    reply = b'{"statusCode": 200, "body": {}}'
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "ExecutedVersion": "4",
            "Payload": StreamingBody(io.BytesIO(reply), 31),
        },
    )
    lines: list[str] = []
    release = Release(
        config=StackConfigFile(program, PROJECT, "prod"),
        deployer=FakeDeployer(),
        out=lines.append,
        smoke_routes=lambda _: [route],
    )
    with stubber:
        release.check(AwsClients(None, None, lambda_))
    assert lines[1] == "  GET /events (default) -> 202 (v4) ok"


def test_ctrl_c_during_the_check_stops_it_and_says_only_that(world: World) -> None:
    def interrupted(event: object, context: InvokeContext) -> object:
        raise KeyboardInterrupt

    world.account.code["4"] = interrupted
    ran = world.cli("check")
    assert (ran.code, ran.err) == (130, "interrupted\n")
    assert_untouched(world)


def test_watch_from_0_checks_and_changes_nothing_while_another_step_holds_the_stack(
    world: World,
) -> None:
    def locked() -> AbstractContextManager[object]:
        raise StackLockedError("stack prod is locked by ada (release advance) since 12:00", None)

    release = world.release(lambda _: None)
    release.exclusive = locked
    with pytest.raises(ReleaseError) as refused:
        Watch(release).run(world.clients, 2, now=world.account.clock, sleep=world.account.sleep)
    assert str(refused.value) == (
        "stack prod is locked by ada (release advance) since 12:00; the canary takes no traffic "
        "and nothing was changed"
    )
    assert world.account.invocations == []
    assert_untouched(world)


def test_advance_from_0_without_apply_still_checks_then_only_edits_the_file(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_accounts_clock(world, monkeypatch)
    ran = world.cli("advance", "--no-apply")
    assert ran.code == 0, ran.err
    assert len(world.account.invocations) == 2
    assert (world.file(), world.deployer.ups, world.account.stage_percent) == ("1", 0, 0)
