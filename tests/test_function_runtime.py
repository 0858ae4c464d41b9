"""The Event Logger function through the real Lambda runtime, under faults and at concurrency.

Every test here runs function/handler.py as Lambda's python3.13 runtime does: under the AWS
Lambda runtime interface client (``awslambdaric``, pinned in requirements-runtime.txt) in a
Python 3.13 process, fed through a local Runtime API (local_api), so the runtime's
own unmarshalling, marshalling (``ensure_ascii=False`` JSON, then UTF-8) and error handling are
part of what is tested. Requests are what a client sends: the API's real default request
template renders the event, and the real integration responses turn Lambda's answer into the
status and body the client gets. DynamoDB is moto's server behind a fault-injecting proxy, so
throttling, lost responses and timeouts reach the function's botocore as DynamoDB would send
them.

The contract tested (issue 9): the function returns ``{"statusCode", "body"}`` for successes
and client errors (400, 404, 413, 422), which the default integration response turns into that
status; server-side failures raise (``[Unavailable] `` + JSON: 503; anything else: 500). Client
errors must therefore never be Lambda errors, and nothing a client sends may crash the runtime.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from local_api.environment import (
    ROOT,
    FunctionConfig,
    LambdaEnvironment,
    build_task_root,
)
from local_api.integration import Api, ClientResponse
from local_api.moto_server import MotoServer
from release import evidence_cost
from tests import emf
from tests.events_table import create_events_table
from tests.lambda_runtime.fault_proxy import FaultProxy
from versioned_lambda_api.analysis.gateway import GatewayRequest as ClientRequest

REGION = "eu-west-1"
TABLE_NAME = "event-logger-runtime-test"
STAGE = "prod"
# More than one write shard, so that listing merges shards and pages carry every position.
SHARDS = 3
# The deployed function's timeout (versioned_lambda_api.args.DEFAULT_TIMEOUT_SECONDS).
TIMEOUT_S = 10.0
SHORT_TIMEOUT_S = 3.0
CONCURRENCY = 20
LIVE = {"stage": STAGE, "alias": "live", "version": "7"}


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lambda-runtime")


@pytest.fixture(scope="module")
def moto(work_dir: Path) -> Iterator[MotoServer]:
    server = MotoServer(work_dir / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(moto.port)
    yield fault_proxy
    fault_proxy.stop()


@pytest.fixture(scope="module")
def task_root(work_dir: Path) -> Path:
    """The function's code as the deployed archive holds it; EVENT_LOGGER_SOURCE=DIR tests
    another copy of it (say, an older commit's) with the same tests."""
    source = Path(os.environ.get("EVENT_LOGGER_SOURCE") or ROOT / "function")
    return build_task_root(source, work_dir / "task")


def event_logger(task_root: Path, proxy: FaultProxy, **changes: Any) -> FunctionConfig:
    settings: dict[str, Any] = {
        "task_root": task_root,
        "timeout_s": TIMEOUT_S,
        "region": REGION,
        "environment": {
            "TABLE_NAME": TABLE_NAME,
            "EVENT_SHARDS": str(SHARDS),
            "AWS_ENDPOINT_URL_DYNAMODB": proxy.endpoint_url,
        },
    }
    settings.update(changes)
    return FunctionConfig(**settings)


@pytest.fixture(scope="module")
def environment(task_root: Path, proxy: FaultProxy, work_dir: Path) -> Iterator[LambdaEnvironment]:
    """One execution environment, reused by the tests (a warm container)."""
    env = LambdaEnvironment(event_logger(task_root, proxy), work_dir, "event-logger")
    yield env
    env.stop()


@pytest.fixture(scope="module")
def short_environment(
    task_root: Path, proxy: FaultProxy, work_dir: Path
) -> Iterator[LambdaEnvironment]:
    """An environment whose function has a 3 s timeout."""
    config = event_logger(task_root, proxy, timeout_s=SHORT_TIMEOUT_S)
    env = LambdaEnvironment(config, work_dir, "event-logger-short")
    yield env
    env.stop()


@pytest.fixture
def table(moto: MotoServer, proxy: FaultProxy) -> Any:
    """A new, empty events table (as __main__.py defines it) and no faults; a client that
    reads moto directly."""
    proxy.reset()
    client = moto.client(REGION)
    if TABLE_NAME in client.list_tables()["TableNames"]:
        client.delete_table(TableName=TABLE_NAME)
    create_events_table(client, TABLE_NAME)
    return client


@pytest.fixture
def api(environment: LambdaEnvironment, table: Any) -> Api:
    return Api(environment)


@pytest.fixture
def cold_api(environment: LambdaEnvironment, table: Any) -> Api:
    """The environment after a cold start: botocore's retry quota and connections are new, so
    how many attempts a fault test sees does not depend on the tests before it."""
    environment.restart()
    return Api(environment)


@pytest.fixture
def short_api(short_environment: LambdaEnvironment, table: Any) -> Api:
    short_environment.restart()
    return Api(short_environment)


# --- Helpers ----------------------------------------------------------------------------------


def post(
    api: Api,
    body: str,
    *,
    key: str | None = None,
    key_header: str = "Idempotency-Key",
    caller: str = "",
    query: dict[str, str] | None = None,
) -> ClientResponse:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[key_header] = key
    return api.send(
        ClientRequest("POST", body=body, headers=headers, query=query or {}, api_key_id=caller)
    )


def get(api: Api, **query: str) -> ClientResponse:
    return api.send(ClientRequest("GET", query=query))


def list_all(api: Api, limit: int = 100) -> list[dict[str, Any]]:
    """Every event of the stage, following ``next`` (at most 50 pages)."""
    events: list[dict[str, Any]] = []
    query = {"limit": str(limit)}
    for _ in range(50):
        response = get(api, **query)
        assert response.status == 200, response.describe()
        page = response.json(parse_float=Decimal)
        events.extend(page["events"])
        if page["next"] is None:
            return events
        query = {"limit": str(limit), "next": page["next"]}
    raise AssertionError("more than 50 pages")


def exact(text: str) -> Any:
    """JSON text parsed with every number exact."""
    return json.loads(text, parse_float=Decimal)


def canonical(value: Any) -> Any:
    """``value`` with types made explicit, so that 1 and true, or 1 and "1", differ while
    numbers compare by value (1.0 == 1, 1e2 == 100)."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float | Decimal):
        return ("number", Decimal(value) if not isinstance(value, float) else Decimal(repr(value)))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", [canonical(item) for item in value])
    assert isinstance(value, dict)
    return ("object", {key: canonical(item) for key, item in value.items()})


def stored_events(table: Any) -> list[dict[str, Any]]:
    """The table's event items: those with the event's ``data`` (idempotency records hold a
    reply and a body digest, never the data)."""
    items: list[dict[str, Any]] = []
    for page in table.get_paginator("scan").paginate(TableName=TABLE_NAME):
        items.extend(page["Items"])
    return [item for item in items if "data" in item]


def assert_reply(response: ClientResponse, status: int) -> Any:
    """``response`` has ``status``, came from a returned reply (not a Lambda error) and carries
    servedBy; its body, parsed exactly."""
    assert response.status == status, response.describe()
    assert response.invocation is not None
    if status < 500:
        # Client errors are replies: Lambda's Errors metric must not count them.
        assert not response.invocation.is_error, response.describe()
    body = response.json(parse_float=Decimal)
    assert body["servedBy"] == LIVE, response.describe()
    return body


def assert_failure(response: ClientResponse, status: int) -> Any:
    """``response`` has ``status`` and came from a raised error (a Lambda error)."""
    assert response.status == status, response.describe()
    assert response.invocation is not None
    assert response.invocation.is_error, response.describe()
    return response.json()


def warm(environment: LambdaEnvironment) -> int:
    """Start the environment's process if it has none; how many it has started."""
    environment.start()
    return environment.starts


def same_process(environment: LambdaEnvironment, starts: int) -> None:
    assert environment.starts == starts, (
        f"the runtime process was restarted (a cold start); its output:\n"
        f"{environment.output()[-3000:]}"
    )


# --- The harness itself -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(work_dir: Path) -> Iterator[LambdaEnvironment]:
    root = ROOT / "tests" / "lambda_runtime" / "probe"
    config = FunctionConfig(task_root=root, handler="probe.handler", timeout_s=1.5)
    env = LambdaEnvironment(config, work_dir, "probe")
    yield env
    env.stop()


def probe_invoke(probe: LambdaEnvironment, event: dict[str, Any]) -> Any:
    return probe.invoke(json.dumps(event).encode())


def test_the_runtime_hands_the_handler_lambdas_context_and_environment(
    probe: LambdaEnvironment,
) -> None:
    result = probe_invoke(probe, {"do": "context"})
    assert not result.is_error, result
    seen = result.document()
    assert seen["requestId"] == result.request_id
    assert seen["invokedFunctionArn"] == (
        "arn:aws:lambda:eu-west-1:123456789012:function:event-logger:live"
    )
    assert seen["functionVersion"] == "7"
    assert seen["memoryLimitInMb"] == "256"
    # Lambda-Runtime-Deadline-Ms became get_remaining_time_in_millis().
    assert 1000 < seen["remainingMs"] <= 1500
    assert seen["environment"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert seen["environment"]["TZ"] == ":UTC"
    assert seen["environment"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")


def test_the_runtime_marshals_replies_as_python313_does(probe: LambdaEnvironment) -> None:
    # ensure_ascii=False, then UTF-8: non-ASCII text arrives as raw UTF-8, not \u escapes.
    result = probe_invoke(probe, {"do": "echo", "value": {"t": "caf\u00e9 \U0001f600"}})
    assert result.payload == '{"t": "caf\u00e9 \U0001f600"}'.encode()


def test_a_reply_utf8_cannot_encode_kills_the_runtime(probe: LambdaEnvironment) -> None:
    # The runtime encodes the reply outside its error handling: the process dies, Lambda
    # answers Runtime.ExitError, and the next invocation is a cold start.
    starts = warm(probe)
    result = probe_invoke(probe, {"do": "echo", "value": "\ud800"})
    assert result.error_type == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 1" in result.document()["errorMessage"]
    assert "UnicodeEncodeError" in probe.output()
    assert not probe_invoke(probe, {"do": "echo", "value": 1}).is_error
    assert probe.starts == starts + 1


def test_a_raised_error_is_posted_as_an_error_document(probe: LambdaEnvironment) -> None:
    result = probe_invoke(probe, {"do": "raise", "message": "[Unavailable] {}"})
    assert result.error_type == "Unhandled"
    document = result.document()
    assert document["errorType"] == "ValueError"
    assert document["errorMessage"] == "[Unavailable] {}"


def test_an_invocation_past_its_deadline_times_out_and_the_next_starts_cold(
    probe: LambdaEnvironment,
) -> None:
    starts = warm(probe)
    result = probe_invoke(probe, {"do": "sleep", "seconds": 30})
    assert result.error_type == "Sandbox.Timedout"
    assert 1.5 <= result.duration_s < 2.5
    assert probe_invoke(probe, {"do": "echo", "value": 2}).payload == b"2"
    assert probe.starts == starts + 1


def test_application_logs_arrive_through_the_telemetry_fd_as_json(
    probe: LambdaEnvironment,
) -> None:
    result = probe_invoke(probe, {"do": "log", "detail": "d-1"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = [r.document() for r in probe.logs() if '"d-1"' in r.message]
        if records:
            break
        time.sleep(0.02)
    assert records[0]["message"] == "probe log"
    assert records[0]["requestId"] == result.request_id


# --- Metrics: the embedded-metric-format line as CloudWatch Logs receives it -------------------


def printed_since(environment: LambdaEnvironment, offset: int) -> list[str]:
    """What the runtime process wrote to stdout after ``offset`` characters of its output, line
    by line: what Lambda sends to the log group as one log event a line."""
    return environment.output()[offset:].splitlines()


def test_a_request_prints_one_metric_line_that_cloudwatch_extracts(api: Api) -> None:
    env = api.environment
    warm(env)
    offset = len(env.output())

    reply = assert_reply(post(api, '{"kind": "signup"}'), 200)

    [line] = printed_since(env, offset)
    document = emf.check(line)
    assert (document["Requests"], document["Failures"]) == (1, 0)
    assert (document["FunctionName"], document["Resource"], document["ExecutedVersion"]) == (
        "event-logger",
        "event-logger:live",
        LIVE["version"],
    )
    assert reply["servedBy"] == LIVE
    # Printed, not logged: the JSON log format would wrap a logged line in a record of its own.
    assert not [record for record in env.logs() if '"_aws"' in record.message]
    # The line whose size the README's cost per million requests is computed from.
    assert len(line.encode()) <= evidence_cost.MEASURED_LINE_BYTES


def test_a_raised_503_prints_a_failure_before_the_runtime_reports_it(
    cold_api: Api, proxy: FaultProxy
) -> None:
    env = cold_api.environment
    warm(env)
    offset = len(env.output())
    proxy.throttle("PutItem", "ThrottlingException")

    assert_failure(post(cold_api, '{"a": 1}'), 503)

    [line] = [text for text in printed_since(env, offset) if text.startswith("{")]
    document = emf.check(line)
    assert (document["Requests"], document["Failures"]) == (1, 1)


# --- Round trips through the template, the runtime and the integration response -----------------


def test_a_post_is_answered_200_and_get_returns_it(api: Api, table: Any) -> None:
    env = api.environment
    response = post(api, '{"kind": "signup", "n": 1}')
    reply = assert_reply(response, 200)
    assert set(reply) >= {"id", "receivedAt", "servedBy"}
    events = list_all(api)
    assert [event["id"] for event in events] == [reply["id"]]
    assert events[0]["data"] == {"kind": "signup", "n": 1}
    assert len(stored_events(table)) == 1
    # A second request is served by the same (warm) process.
    starts = warm(env)
    assert_reply(get(api), 200)
    same_process(env, starts)


HOSTILE_BODIES = {
    "quotes": '{"q": "say \\"hi\\"", "apostrophe": "it\'s", "\\"key\\"": "\'"}',
    "backslashes": '{"path": "C:\\\\temp\\\\new\\\\", "re": "\\\\d+\\\\$", "tail": "\\\\"}',
    "crlf": '{\r\n  "crlf": "line1\\r\\nline2\\n",\r\n  "tab": "a\\tb"\r\n}\r\n',
    "dollar": '{"vtl": "$context.stage ${input.body} $util.escapeJavaScript(\'x\') $!x $ $$"}',
    "hash": '{"#set": "#set($x = 1)#if(true)yes#end ## not a comment #* nor this *#", "#": "#"}',
    "empty key": '{"": "", " ": " "}',
    "bmp": '{"text": "caf\u00e9 \u4e2d\u6587 \u03a9 \u00bd \u00a0 \u2028 \u2029 \ufeff"}',
    "astral": '{"emoji": "\U0001f600\U0001f389", "math": "\U0001d518\U0001d52b", "k\U0001f511": 1}',
    "escaped astral": '{"emoji": "\\ud83d\\ude00", "\\u00e9": "\\u4e2d"}',
    "controls": '{"nul": "\\u0000", "bell": "\\u0007", "esc": "\\u001b", "del": "\x7f"}',
    "json in json": '{"json": "{\\"a\\": [1, 2], \\"b\\": \\"\\\\\\"\\"}", "b64": "eyJ4IjoxfQ=="}',
    "literals": '{"null": null, "t": true, "f": false, "arr": [], "obj": {}, "one": "1"}',
    "numbers": '{"int": 9007199254740993, "neg": -12, "frac": 0.1, "exp": 1.5e300, "zero": 0}',
    "nested": '{"a": ' + "[" * 20 + '{"deep": "x"}' + "]" * 20 + "}",
    "html": '{"html": "<script>alert(1)</script>", "amp": "&amp; &#x27;"}',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_hostile_body_is_stored_and_read_back_exactly_as_sent(
    api: Api, table: Any, body: str
) -> None:
    env = api.environment
    starts = warm(env)
    reply = assert_reply(post(api, body), 200)
    events = list_all(api)
    assert [event["id"] for event in events] == [reply["id"]]
    # What the client gets back is what it sent: same keys, strings and numbers.
    assert canonical(events[0]["data"]) == canonical(exact(body))
    same_process(env, starts)


def test_a_body_near_the_size_limit_round_trips(api: Api) -> None:
    body = json.dumps({"blob": "\u00e9" * 30_000, "n": 1}, ensure_ascii=False)
    assert 60_000 < len(body.encode()) <= 64 * 1024
    reply = assert_reply(post(api, body), 200)
    (event,) = list_all(api)
    assert event["id"] == reply["id"]
    assert event["data"] == json.loads(body)


def test_a_lone_surrogate_is_refused_and_never_reaches_a_get(api: Api, table: Any) -> None:
    # Issue 9, D1: a 14-byte POST {"x":"\ud800"} was stored, and every GET page holding it
    # then crashed the runtime (Runtime.ExitError, 500, a cold start each time).
    env = api.environment
    starts = warm(env)
    refused = assert_reply(post(api, '{"x":"\\ud800"}'), 400)
    assert "surrogate" in refused["message"]
    assert stored_events(table) == []
    assert list_all(api) == []
    same_process(env, starts)


def legacy_event(data_json: str, received_at: str) -> dict[str, Any]:
    """An event item as the handler before issue 9 stored it: partition ``<stage>``, the
    data as ASCII-escaped JSON text."""
    event_id = str(uuid.uuid4())
    return {
        "pk": {"S": STAGE},
        "sk": {"S": f"{received_at}#{event_id}"},
        "id": {"S": event_id},
        "stage": {"S": STAGE},
        "alias": {"S": "live"},
        "version": {"S": "6"},
        "requestId": {"S": "legacy"},
        "receivedAt": {"S": received_at},
        "data": {"S": data_json},
    }


def test_a_lone_surrogate_stored_before_the_fix_never_crashes_a_get(api: Api, table: Any) -> None:
    # Tables written before the fix may already hold D1's event; a GET over it must still be
    # answered, by the same process, and paging must get past it.
    env = api.environment
    table.put_item(TableName=TABLE_NAME, Item=legacy_event('{"x":"\\ud800"}', _AT_1))
    table.put_item(TableName=TABLE_NAME, Item=legacy_event('{"ok":1}', _AT_2))
    starts = warm(env)
    response = get(api)
    assert response.invocation is not None
    assert response.invocation.error_type != "Runtime.ExitError", env.output()[-2000:]
    assert_reply(response, 200)
    assert {"ok": 1} in [event["data"] for event in list_all(api)]
    same_process(env, starts)


_AT_1 = "2026-01-01T00:00:00.000001Z"
_AT_2 = "2026-01-01T00:00:00.000002Z"


@pytest.mark.parametrize(
    "body",
    [
        '{"x": "\\udc00"}',
        '{"x": "\\udc00\\ud800"}',
        '{"\\ud800": 1}',
        '{"x": ["ok", {"y": "a\\ud83d"}]}',
    ],
)
def test_every_lone_surrogate_is_refused(api: Api, table: Any, body: str) -> None:
    refused = assert_reply(post(api, body), 400)
    assert "surrogate" in refused["message"]
    assert stored_events(table) == []


REFUSED_BODIES = {
    "empty": "",
    "blank": "   ",
    "not json": "not json at all: ' \" \\ \u00e9",
    "array": "[1, 2]",
    "string": '"text"',
    "null": "null",
    "empty object": "{}",
    "trailing garbage": '{"a": 1} {"b": 2}',
    "nan": '{"a": NaN}',
    "infinity": '{"a": -Infinity}',
    "duplicate key": '{"a": 1, "a": 2}',
    "nested duplicate key": '{"a": {"b": 1, "b": 1}}',
    "deep nesting": '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "huge integer": '{"a": ' + "9" * 5000 + "}",
    "overflowing float": '{"a": 1e400}',
    "single quotes": "{'a': 1}",
    "unterminated": '{"a": "b',
}


@pytest.mark.parametrize("body", REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
def test_a_body_that_cannot_round_trip_is_a_400_reply(api: Api, table: Any, body: str) -> None:
    env = api.environment
    starts = warm(env)
    refused = assert_reply(post(api, body), 400)
    assert refused["message"]
    assert stored_events(table) == []
    same_process(env, starts)


@pytest.mark.parametrize(
    "number",
    ["1234567890.12345678901234567891", "1e-400", "123456789012345678901234567890", "-0.0"],
)
def test_a_number_is_either_refused_or_read_back_unchanged(
    api: Api, table: Any, number: str
) -> None:
    # Issue 9, D6: 1234567890.12345678901234567891 came back as 1234567890.1234567 and 1e-400
    # as 0.0, answered 200. Either answer is right except a silently changed number.
    body = '{"n": ' + number + "}"
    response = post(api, body)
    if response.status == 400:
        assert_reply(response, 400)
        assert stored_events(table) == []
        return
    assert_reply(response, 200)
    (event,) = list_all(api)
    assert canonical(event["data"]) == canonical(exact(body))


def test_a_body_over_64_kib_is_a_413_reply(api: Api, table: Any) -> None:
    body = json.dumps({"blob": "x" * (64 * 1024)})
    refused = assert_reply(post(api, body), 413)
    assert "65" in refused["message"] or "limit" in refused["message"]
    assert stored_events(table) == []


def test_an_unknown_route_is_a_404_reply(api: Api) -> None:
    response = api.send(ClientRequest("DELETE", resource_path="/events"))
    assert_reply(response, 404)


# --- GET paging ------------------------------------------------------------------------------


def test_pages_merge_the_shards_newest_first_without_loss_or_repeats(api: Api, table: Any) -> None:
    sent = [assert_reply(post(api, json.dumps({"i": i})), 200)["id"] for i in range(7)]
    pages: list[list[str]] = []
    query: dict[str, str] = {"limit": "2"}
    for _ in range(10):
        page = assert_reply(get(api, **query), 200)
        pages.append([event["id"] for event in page["events"]])
        if page["next"] is None:
            break
        # A write between pages must not move what the next page holds.
        query = {"limit": "2", "next": page["next"]}
    listed = [event_id for page in pages for event_id in page]
    assert listed == list(reversed(sent))
    assert all(len(page) <= 2 for page in pages)
    # The events really are spread over more than one partition.
    assert len({item["pk"]["S"] for item in stored_events(table)}) > 1


def _token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "!!!!",
        _token(b'{"sk":"\\ud800"}'),
        _token(b'{"sk":"2026-01-01T00:00:00.000000Z#x"}'),
        _token(b"[]"),
        _token(b"\xff\xfe"),
        "A" * 9000,
        '"',
        "\\",
        "$context.stage",
        "#set($x=1)",
    ],
)
def test_a_next_token_we_did_not_issue_is_a_400_reply(api: Api, token: str) -> None:
    # Issue 9, D3: a token whose sort key held a lone surrogate was a 500.
    env = api.environment
    starts = warm(env)
    assert_reply(get(api, next=token), 400)
    same_process(env, starts)


def test_a_tampered_next_token_is_a_400_reply(api: Api) -> None:
    for i in range(3):
        assert_reply(post(api, json.dumps({"i": i})), 200)
    token = assert_reply(get(api, limit="1"), 200)["next"]
    assert isinstance(token, str)
    middle = len(token) // 2
    flipped = token[:middle] + ("B" if token[middle] == "A" else "A") + token[middle + 1 :]
    assert_reply(get(api, limit="1", next=flipped), 400)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "x", "10\r\n", "1e2", "\u0661"])
def test_a_bad_limit_is_a_400_reply(api: Api, limit: str) -> None:
    assert_reply(get(api, limit=limit), 400)


# --- Idempotency through the template ---------------------------------------------------------


@pytest.mark.parametrize("header", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_the_idempotency_key_header_is_read_whatever_its_case(
    api: Api, table: Any, header: str
) -> None:
    first = assert_reply(post(api, '{"a": 1}', key="order-1", key_header=header), 200)
    second = assert_reply(post(api, '{"a": 1}', key="order-1", key_header=header), 200)
    assert second["id"] == first["id"]
    assert len(stored_events(table)) == 1


def test_a_query_parameter_named_idempotency_key_is_not_a_key(api: Api, table: Any) -> None:
    # Issue 9, D7: $input.params('Idempotency-Key') also read the path and the query string.
    first = assert_reply(post(api, '{"a": 1}', query={"Idempotency-Key": "k"}), 200)
    second = assert_reply(post(api, '{"a": 1}', query={"Idempotency-Key": "k"}), 200)
    assert first["id"] != second["id"]
    assert len(stored_events(table)) == 2


def test_a_hostile_idempotency_key_replays_and_is_never_logged(api: Api, table: Any) -> None:
    key = 'user-"alice"@example.com\\order $context.stage #set \' 1'
    first = assert_reply(post(api, '{"a": 1}', key=key), 200)
    second = assert_reply(post(api, '{"a": 1}', key=key), 200)
    assert second["id"] == first["id"]
    assert len(stored_events(table)) == 1
    logs = "\n".join(record.message for record in api.environment.logs())
    assert "alice" not in logs


def test_a_key_reused_with_another_body_is_a_422_reply(api: Api, table: Any) -> None:
    # draft-ietf-httpapi-idempotency-key-header: 422 for a key reused with another payload.
    assert_reply(post(api, '{"a": 1}', key="k-1"), 200)
    assert_reply(post(api, '{"a": 2}', key="k-1"), 422)
    assert len(stored_events(table)) == 1


def test_keys_are_scoped_to_the_caller(api: Api, table: Any) -> None:
    alice = assert_reply(post(api, '{"a": 1}', key="k", caller="key-id-alice"), 200)
    bob = assert_reply(post(api, '{"a": 1}', key="k", caller="key-id-bob"), 200)
    assert alice["id"] != bob["id"]
    again = assert_reply(post(api, '{"a": 1}', key="k", caller="key-id-alice"), 200)
    assert again["id"] == alice["id"]
    assert len(stored_events(table)) == 2


# --- Faults between botocore and DynamoDB ------------------------------------------------------


@pytest.mark.parametrize("error", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttling_that_clears_is_retried_to_a_success(
    cold_api: Api, proxy: FaultProxy, table: Any, error: str
) -> None:
    proxy.throttle("PutItem", error, times=2)
    reply = assert_reply(post(cold_api, '{"a": 1}'), 200)
    outcomes = [attempt.outcome for attempt in proxy.attempts("PutItem")]
    assert outcomes == [f"error:{error}", f"error:{error}", "forwarded"]
    assert [item["id"]["S"] for item in stored_events(table)] == [reply["id"]]


@pytest.mark.parametrize(
    "case",
    [
        ("PutItem", "ProvisionedThroughputExceededException", None),
        ("PutItem", "ThrottlingException", None),
        ("TransactWriteItems", "ThrottlingException", "k"),
        # Issue 9, D5: TransactionInProgressException was a 500.
        ("TransactWriteItems", "TransactionInProgressException", "k"),
        ("Query", "ProvisionedThroughputExceededException", None),
    ],
    ids=lambda case: f"{case[0]}-{case[1]}",
)
def test_throttling_that_persists_is_a_503_before_the_deadline(
    cold_api: Api, proxy: FaultProxy, table: Any, case: tuple[str, str, str | None]
) -> None:
    operation, error, key = case
    proxy.throttle(operation, error)
    response = get(cold_api) if operation == "Query" else post(cold_api, '{"a": 1}', key=key)
    body = assert_failure(response, 503)
    assert body["servedBy"] == LIVE
    assert response.invocation is not None
    assert response.invocation.duration_s < TIMEOUT_S
    assert len(proxy.attempts(operation)) >= 2  # it was retried
    assert stored_events(table) == []


def test_a_lost_put_response_is_a_success_with_one_event(
    cold_api: Api, proxy: FaultProxy, table: Any
) -> None:
    # Issue 9, D4: the put was applied, its response lost; the retried put's
    # attribute_not_exists guard fired and the client got a 500, then retried: two events.
    proxy.lose_response("PutItem")
    reply = assert_reply(post(cold_api, '{"a": 1}'), 200)
    outcomes = [attempt.outcome for attempt in proxy.attempts("PutItem")]
    assert outcomes[0] == "lost"
    assert len(outcomes) >= 2
    assert [item["id"]["S"] for item in stored_events(table)] == [reply["id"]]
    assert [event["id"] for event in list_all(cold_api)] == [reply["id"]]


def test_a_lost_transaction_response_is_a_success_with_one_event(
    cold_api: Api, proxy: FaultProxy, table: Any
) -> None:
    proxy.lose_response("TransactWriteItems")
    reply = assert_reply(post(cold_api, '{"a": 1}', key="k-lost"), 200)
    assert proxy.attempts("TransactWriteItems")[0].outcome == "lost"
    assert [item["id"]["S"] for item in stored_events(table)] == [reply["id"]]
    # The client's own retry is a replay of the same event.
    again = assert_reply(post(cold_api, '{"a": 1}', key="k-lost"), 200)
    assert again["id"] == reply["id"]
    assert len(stored_events(table)) == 1


def test_a_slow_answer_after_the_write_is_a_success_with_one_event(
    cold_api: Api, proxy: FaultProxy, table: Any
) -> None:
    # The put is applied at once but its answer comes after botocore's read timeout.
    proxy.delay("PutItem", 20.0, times=1, after_forward=True)
    response = post(cold_api, '{"a": 1}')
    reply = assert_reply(response, 200)
    assert response.invocation is not None
    assert response.invocation.duration_s < TIMEOUT_S
    assert [item["id"]["S"] for item in stored_events(table)] == [reply["id"]]


@pytest.mark.parametrize("key", [None, "k-slow"])
def test_a_dynamodb_that_never_answers_is_a_503_before_a_short_timeout(
    short_api: Api, proxy: FaultProxy, table: Any, key: str | None
) -> None:
    # Every DynamoDB call chain must end with a reply before the function's timeout, from
    # context.get_remaining_time_in_millis(): fixed timeouts (3 x 3 s) overrun a 3 s function,
    # whose timeout Lambda would answer with an opaque 500.
    proxy.delay("PutItem", 30.0)
    proxy.delay("TransactWriteItems", 30.0)
    response = post(short_api, '{"a": 1}', key=key)
    assert response.invocation is not None
    assert response.invocation.error_type != "Sandbox.Timedout", response.describe()
    assert_failure(response, 503)
    assert response.invocation.duration_s < SHORT_TIMEOUT_S
    assert stored_events(table) == []


# --- Concurrency -------------------------------------------------------------------------------


@pytest.fixture
def environments(
    task_root: Path, proxy: FaultProxy, work_dir: Path, table: Any
) -> Iterator[list[LambdaEnvironment]]:
    """CONCURRENCY execution environments, as Lambda scales out for concurrent requests: each
    its own runtime process with its own botocore client and connections."""
    envs = [
        LambdaEnvironment(event_logger(task_root, proxy), work_dir, f"concurrent-{n}")
        for n in range(CONCURRENCY)
    ]
    try:
        for env in envs:
            env.start()
        yield envs
    finally:
        for env in envs:
            env.stop()


def test_one_idempotent_post_from_20_clients_at_once_stores_one_event(
    environments: list[LambdaEnvironment], proxy: FaultProxy, table: Any
) -> None:
    # Each of the 20 concurrent invocations runs in its own runtime process, as Lambda runs
    # concurrent invocations in separate environments: an in-process handler would share one
    # botocore client and one interpreter, and skip the runtime. The environments are warmed
    # first (a GET each), so the 20 POSTs reach DynamoDB together rather than staggered by
    # cold starts. The fault proxy serialises moto's transactions (see its docstring).
    apis = [Api(env) for env in environments]
    for warm in apis:
        assert_reply(get(warm), 200)
    barrier = threading.Barrier(CONCURRENCY, timeout=30)
    responses: list[ClientResponse | BaseException] = [RuntimeError("not run")] * CONCURRENCY
    body = json.dumps({"order": "o-1", "amount": 5})

    def send(index: int) -> None:
        try:
            barrier.wait()
            responses[index] = post(apis[index], body, key="order-o-1", caller="key-id-1")
        except BaseException as error:  # reported by the assertions below
            responses[index] = error

    threads = [threading.Thread(target=send, args=(n,)) for n in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    ids = set()
    for response in responses:
        assert isinstance(response, ClientResponse), response
        ids.add(assert_reply(response, 200)["id"])
    assert len(ids) == 1
    assert len(stored_events(table)) == 1
    assert [event["id"] for event in list_all(apis[0])] == list(ids)
    transactions = proxy.attempts("TransactWriteItems")
    assert len(transactions) >= CONCURRENCY
