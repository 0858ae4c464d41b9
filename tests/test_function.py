"""Tests for the Event Logger Lambda function (function/handler.py) against moto's DynamoDB.

Each test checks what the client would get *and* what the table holds afterwards. Every reply
is taken the way the deployed API takes it: encoded as the python3.12+ Lambda runtime encodes
it (``ensure_ascii=False`` JSON, then UTF-8, which fails on a lone surrogate), then rendered by
the API's default integration response template (versioned_lambda_api.api_spec, through the
project's VTL renderer), which picks the status and reads numbers as doubles. The table is inspected
with a Scan from the test's own client; the handler's client refuses Scan.
"""

import base64
import hashlib
import importlib.util
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from release import aws as release_aws
from tests import emf
from tests.events_table import create_events_table
from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.vtl import TemplateInput, render, render_response

HANDLER_PATH = Path(__file__).resolve().parents[1] / "function" / "handler.py"
HANDLER_LOGGER = "event_logger_handler"
TABLE_NAME = "event-logger-test"
REGION = "eu-west-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:event-logger"
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
DAY_SECONDS = 24 * 60 * 60
UNAVAILABLE = "[Unavailable] "
SORT_KEY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#[0-9a-f-]{36}")


@dataclass
class FakeContext:
    """The parts of Lambda's context object the handler reads; time_left_ms is mutable so a
    test can let time pass."""

    invoked_function_arn: str
    function_version: str
    time_left_ms: float = 10_000

    def get_remaining_time_in_millis(self) -> int:
        return int(self.time_left_ms)


def live() -> FakeContext:
    return FakeContext(f"{FUNCTION_ARN}:live", "7")


def canary() -> FakeContext:
    return FakeContext(f"{FUNCTION_ARN}:canary", "8")


LIVE_PROD = {"stage": "prod", "alias": "live", "version": "7"}


@pytest.fixture(scope="session")
def handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(HANDLER_LOGGER, HANDLER_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Create the events table in moto and yield a test-side client for inspecting it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.delenv("EVENT_SHARDS", raising=False)
    monkeypatch.delenv("EVENT_RETENTION_DAYS", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        create_events_table(client, TABLE_NAME)
        yield client


def handler_client(module: ModuleType) -> Any:
    """The client the handler uses when invoked with a FakeContext's default time left."""
    return module.dynamodb_client(module.attempt_seconds(10_000))


@pytest.fixture
def handler(handler_module: ModuleType, dynamodb: Any) -> Iterator[ModuleType]:
    """The handler module with a fresh cached client, created inside moto, that refuses Scan."""
    handler_module.dynamodb_client.cache_clear()
    handler_client(handler_module).meta.events.register("before-call.dynamodb.Scan", _refuse_scan)
    yield handler_module
    handler_module.dynamodb_client.cache_clear()


@pytest.fixture
def dynamodb_calls(handler: ModuleType) -> list[str]:
    """Names of the DynamoDB operations the handler's client performs, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    handler_client(handler).meta.events.register("before-call.dynamodb", record)
    return calls


@pytest.fixture
def sleeps(handler: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps the handler takes, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(handler.time, "sleep", slept.append)
    return slept


def _refuse_scan(**_: Any) -> NoReturn:
    raise AssertionError("the handler must not Scan the table")


# --- Requests and answers ---------------------------------------------------------------


def api_event(
    method: str,
    *,
    stage: str = "prod",
    body: bytes = b"",
    query: dict[str, str] | None = None,
    idempotency_key: str = "",
    caller_id: str = "",
) -> dict[str, Any]:
    """An event as rendered by the API's request mapping template."""
    return {
        "stage": stage,
        "method": method,
        "resourcePath": "/events",
        "requestId": "req-1",
        "isCanaryRequest": "false",
        "bodyBase64": base64.b64encode(body).decode(),
        "query": query or {},
        "idempotencyKey": idempotency_key,
        "callerId": caller_id,
    }


def post_event(data: object, **options: Any) -> dict[str, Any]:
    return api_event("POST", body=json.dumps(data).encode(), **options)


def with_fields(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**event, **fields}


def without_field(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != name}


def post_raw(body: bytes, **options: Any) -> dict[str, Any]:
    return api_event("POST", body=body, **options)


def get_with(**query: str) -> dict[str, Any]:
    return api_event("GET", query=query)


@dataclass(frozen=True)
class Answer:
    """What the client gets: the status and the body text the API answers with."""

    status: int
    text: str

    def body(self) -> Any:
        return json.loads(self.text)


def runtime_bytes(reply: object) -> bytes:
    """The reply as the python3.12+ runtime client sends it (lambda_runtime_marshaller.py):
    JSON with ensure_ascii=False, then UTF-8, which raises on a lone surrogate."""
    return json.dumps(reply, ensure_ascii=False, allow_nan=False).encode("utf-8")


def through_api(reply: object) -> Answer:
    text, status = render_response(
        api_spec.SUCCESS_TEMPLATE,
        TemplateInput(body=runtime_bytes(reply).decode("utf-8"), context={"requestId": "req-1"}),
    )
    return Answer(status or 200, text)


def invoke(handler: ModuleType, event: object, context: FakeContext | None = None) -> Answer:
    reply = handler.handler(event, context or live())
    assert set(reply) == {"statusCode", "body"}
    answer = through_api(reply)
    assert answer.status == reply["statusCode"]
    assert answer.body() == reply["body"]
    return answer


def ok(answer: Answer) -> dict[str, Any]:
    assert answer.status == 200, answer.text
    body: dict[str, Any] = answer.body()
    return body


def post(
    handler: ModuleType, data: object, context: FakeContext | None = None, **options: Any
) -> dict[str, Any]:
    return ok(invoke(handler, post_event(data, **options), context))


def get(handler: ModuleType, query: dict[str, str] | None = None, **options: Any) -> dict[str, Any]:
    return ok(invoke(handler, api_event("GET", query=query, **options)))


def all_pages(handler: ModuleType, limit: int, stage: str = "prod") -> list[dict[str, Any]]:
    pages = [get(handler, {"limit": str(limit)}, stage=stage)]
    while pages[-1]["next"] is not None:
        pages.append(get(handler, {"limit": str(limit), "next": pages[-1]["next"]}, stage=stage))
    return pages


def table_items(dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME):
        items.extend(page["Items"])
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def items_in(dynamodb: Any, partition: str) -> list[dict[str, Any]]:
    return [item for item in table_items(dynamodb) if item["pk"]["S"] == partition]


def event_items(dynamodb: Any) -> list[dict[str, Any]]:
    return [item for item in table_items(dynamodb) if "data" in item]


def record_partition(stage: str, caller_id: str, key: str) -> str:
    scope = json.dumps([stage, caller_id, key]).encode()
    return "idempotency#" + hashlib.sha256(scope).hexdigest()


def error_body(error: BaseException, prefix: str) -> dict[str, Any]:
    text = str(error)
    assert text.startswith(prefix), text
    body: dict[str, Any] = json.loads(text.removeprefix(prefix))
    return body


def page_token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def token_of(payload: object) -> str:
    return page_token(json.dumps(payload).encode())


def decode_page_token(token: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def exact(text: str) -> Any:
    """JSON parsed with every number exact, to compare what was sent with what came back."""
    return json.loads(text, parse_float=Decimal)


def client_error(code: str, operation: str, **response_fields: Any) -> Exception:
    error: Exception = botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": f"simulated {code}"}, **response_fields}, operation
    )
    return error


def transaction_cancelled(event_reason: str, record_reason: str) -> Exception:
    return client_error(
        "TransactionCanceledException",
        "TransactWriteItems",
        CancellationReasons=[{"Code": event_reason}, {"Code": record_reason}],
    )


def raising(error: Exception, calls: list[dict[str, Any]] | None = None) -> Callable[..., NoReturn]:
    def fail(**params: Any) -> NoReturn:
        if calls is not None:
            calls.append(params)
        raise error

    return fail


def log_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == HANDLER_LOGGER]


def nested(levels: int) -> bytes:
    """An object whose containers nest ``levels`` deep, the object itself included."""
    return b'{"a":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


# --- POST /events -----------------------------------------------------------------------


def test_post_stores_one_item_with_every_field(handler: ModuleType, dynamodb: Any) -> None:
    raw_body = b'{ "kind": "signup",\n  "count": 2, "ratio": 0.5, "tags": ["a", null, true] }'

    answer = invoke(handler, post_raw(raw_body, caller_id="key-id-1"))

    reply = ok(answer)
    assert set(reply) == {"id", "receivedAt", "servedBy", "replayed"}
    assert str(uuid.UUID(reply["id"], version=4)) == reply["id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", reply["receivedAt"])
    assert reply["servedBy"] == LIVE_PROD
    assert reply["replayed"] is False
    assert table_items(dynamodb) == [
        {
            "pk": {"S": "prod"},
            "sk": {"S": f"{reply['receivedAt']}#{reply['id']}"},
            "id": {"S": reply["id"]},
            "stage": {"S": "prod"},
            "alias": {"S": "live"},
            "version": {"S": "7"},
            "requestId": {"S": "req-1"},
            "callerId": {"S": "key-id-1"},
            "receivedAt": {"S": reply["receivedAt"]},
            # As sent: never larger than the body, whatever it holds.
            "data": {"S": raw_body.decode()},
        }
    ]


@pytest.mark.parametrize(
    ("context", "served_by"),
    [
        pytest.param(live(), LIVE_PROD, id="live-alias"),
        pytest.param(canary(), {"stage": "prod", "alias": "canary", "version": "8"}, id="canary"),
        pytest.param(
            FakeContext(FUNCTION_ARN, "$LATEST"),
            {"stage": "prod", "alias": "$LATEST", "version": "$LATEST"},
            id="unqualified-arn",
        ),
    ],
)
def test_reply_and_stored_event_name_the_alias_and_version_that_served_them(
    handler: ModuleType, dynamodb: Any, context: FakeContext, served_by: dict[str, str]
) -> None:
    reply = post(handler, {"n": 1}, context)

    assert reply["servedBy"] == served_by
    [item] = table_items(dynamodb)
    assert (item["alias"]["S"], item["version"]["S"]) == (served_by["alias"], served_by["version"])


def test_body_of_exactly_the_size_limit_is_accepted(handler: ModuleType, dynamodb: Any) -> None:
    envelope = b'{"pad":""}'
    body = envelope[:-2] + b"x" * (MAX_BODY_BYTES - len(envelope)) + envelope[-2:]
    assert len(body) == MAX_BODY_BYTES

    ok(invoke(handler, post_raw(body)))

    [item] = table_items(dynamodb)
    assert item["data"]["S"] == body.decode()


def test_body_over_the_size_limit_is_413(handler: ModuleType, dynamodb: Any) -> None:
    body = b'{"pad":"' + b"x" * (MAX_BODY_BYTES - 9) + b'"}'
    assert len(body) == MAX_BODY_BYTES + 1

    answer = invoke(handler, post_raw(body))

    assert answer.status == 413
    assert answer.body()["message"] == f"body is {MAX_BODY_BYTES + 1} bytes; the limit is 65536"
    assert table_items(dynamodb) == []


def test_post_accepts_an_event_with_only_the_required_fields(
    handler: ModuleType, dynamodb: Any
) -> None:
    event = {
        "stage": "prod",
        "method": "POST",
        "resourcePath": "/events",
        "bodyBase64": base64.b64encode(b'{"minimal":true}').decode(),
    }

    reply = ok(invoke(handler, event))

    assert reply["replayed"] is False
    [item] = table_items(dynamodb)
    assert (item["requestId"], item["callerId"]) == ({"S": ""}, {"S": ""})
    assert item["data"] == {"S": '{"minimal":true}'}


def test_events_expire_after_the_retention(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_RETENTION_DAYS", "30")
    before = int(time.time())

    post(handler, {"n": 1})

    after = int(time.time())
    [item] = table_items(dynamodb)
    expires_at = int(item["expiresAt"]["N"])
    assert before + 30 * DAY_SECONDS <= expires_at <= after + 30 * DAY_SECONDS


def test_events_never_expire_without_a_retention(handler: ModuleType, dynamodb: Any) -> None:
    post(handler, {"n": 1})

    [item] = table_items(dynamodb)
    assert "expiresAt" not in item


# --- GET /events ------------------------------------------------------------------------


def test_get_returns_this_stages_events_newest_first(handler: ModuleType, dynamodb: Any) -> None:
    posted = [post(handler, {"seq": seq}) for seq in range(3)]
    post(handler, {"seq": "elsewhere"}, stage="staging")

    listing = get(handler)

    assert listing["servedBy"] == LIVE_PROD
    assert listing["next"] is None
    assert listing["events"] == [
        {
            "id": reply["id"],
            "receivedAt": reply["receivedAt"],
            "stage": "prod",
            "alias": "live",
            "version": "7",
            "requestId": "req-1",
            "data": {"seq": seq},
        }
        for seq, reply in reversed(list(enumerate(posted)))
    ]
    assert len(table_items(dynamodb)) == 4


@pytest.mark.parametrize("shards", ["1", "4"])
def test_get_pages_through_every_event_exactly_once(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, shards: str
) -> None:
    monkeypatch.setenv("EVENT_SHARDS", shards)
    posted_ids = [post(handler, {"seq": seq})["id"] for seq in range(9)]
    staging_ids = [post(handler, {"seq": seq}, stage="staging")["id"] for seq in range(2)]

    pages = all_pages(handler, limit=2)

    assert [len(page["events"]) for page in pages] == [2, 2, 2, 2, 1]
    listed_ids = [event["id"] for page in pages for event in page["events"]]
    assert listed_ids == list(reversed(posted_ids))
    for page in pages[:-1]:
        token = decode_page_token(page["next"])
        assert set(token) == {"stage", "before"}
        assert len(token["before"]) == int(shards)
        assert all(SORT_KEY.fullmatch(position) for position in token["before"])
    staging_listing = get(handler, stage="staging")
    assert [event["id"] for event in staging_listing["events"]] == list(reversed(staging_ids))
    assert len(event_items(dynamodb)) == 11


def test_events_spread_over_the_stages_shards(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_SHARDS", "4")

    for seq in range(40):
        post(handler, {"seq": seq})
        post(handler, {"seq": seq}, idempotency_key=f"key-{seq}")

    event_partitions = {item["pk"]["S"] for item in event_items(dynamodb)}
    # Shard 0 keeps the partition key of the events stored before sharding.
    assert event_partitions <= {"prod", "prod#1", "prod#2", "prod#3"}
    # All 80 in one shard has a probability of 4 x 4^-80.
    assert len(event_partitions) > 1
    record_partitions = {
        item["pk"]["S"] for item in table_items(dynamodb) if item["pk"]["S"].startswith("idem")
    }
    assert record_partitions == {record_partition("prod", "", f"key-{seq}") for seq in range(40)}
    assert [event["data"] for event in get(handler, {"limit": "100"})["events"]] == [
        {"seq": seq} for seq in reversed(range(40)) for _ in range(2)
    ]


@pytest.mark.parametrize("shards", ["1", "3"])
def test_events_written_between_page_reads_are_neither_lost_nor_repeated(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, shards: str
) -> None:
    monkeypatch.setenv("EVENT_SHARDS", shards)
    before_listing = [post(handler, {"seq": seq})["id"] for seq in range(7)]

    pages = [get(handler, {"limit": "3"})]
    written_meanwhile: list[str] = []
    while pages[-1]["next"] is not None:
        written_meanwhile += [post(handler, {"late": seq})["id"] for seq in range(2)]
        pages.append(get(handler, {"limit": "3", "next": pages[-1]["next"]}))

    listed = [event["id"] for page in pages for event in page["events"]]
    # The listing is the stage as it was when it began: newer events wait for the next one.
    assert listed == list(reversed(before_listing))
    assert len(written_meanwhile) == 2 * (len(pages) - 1) > 0
    fresh = [event["id"] for page in all_pages(handler, limit=4) for event in page["events"]]
    assert fresh == list(reversed(before_listing + written_meanwhile))
    assert len(event_items(dynamodb)) == 7 + len(written_meanwhile)


def test_a_shard_cut_short_by_dynamodbs_1_mb_page_holds_the_others_back(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB ends a Query page at 1 MB whatever its Limit (moto does not); a shard that
    # stopped early may still hold events newer than the other shards' older ones.
    monkeypatch.setenv("EVENT_SHARDS", "2")
    posted = [post(handler, {"seq": seq})["id"] for seq in range(30)]
    client = handler_client(handler)
    real_query = client.query

    def shard_1_returns_one_item(**params: Any) -> Any:
        if params["ExpressionAttributeValues"][":pk"] == {"S": "prod#1"}:
            params = {**params, "Limit": 1}
        return real_query(**params)

    monkeypatch.setattr(client, "query", shard_1_returns_one_item)

    pages = all_pages(handler, limit=5)

    listed = [event["id"] for page in pages for event in page["events"]]
    assert listed == list(reversed(posted))
    assert {item["pk"]["S"] for item in event_items(dynamodb)} == {"prod", "prod#1"}


@pytest.mark.parametrize("shards", ["1", "3"])
def test_a_token_of_the_version_before_sharding_pages_on(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, shards: str
) -> None:
    # During a canary, a client may get page 1 from the old version and page 2 from this one.
    monkeypatch.setenv("EVENT_SHARDS", shards)
    posted = [post(handler, {"seq": seq}) for seq in range(5)]
    third = posted[2]
    old_token = token_of({"sk": f"{third['receivedAt']}#{third['id']}"})

    page = get(handler, {"limit": "10", "next": old_token})

    assert [event["id"] for event in page["events"]] == [posted[1]["id"], posted[0]["id"]]
    assert page["next"] is None
    assert len(table_items(dynamodb)) == 5


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({}, id="absent"),
        pytest.param({"limit": "", "next": ""}, id="empty-values"),
    ],
)
def test_get_without_limit_returns_20_events(
    handler: ModuleType, dynamodb: Any, query: dict[str, str]
) -> None:
    for seq in range(21):
        post(handler, {"seq": seq})

    first_page = get(handler, query)
    second_page = get(handler, {"next": first_page["next"]})

    assert [event["data"]["seq"] for event in first_page["events"]] == list(range(20, 0, -1))
    assert [event["data"]["seq"] for event in second_page["events"]] == [0]
    assert second_page["next"] is None
    assert len(table_items(dynamodb)) == 21


def test_get_on_a_stage_without_events_is_empty(handler: ModuleType, dynamodb: Any) -> None:
    post(handler, {"seq": 1}, stage="staging")

    listing = get(handler, {"limit": "100"})

    assert listing == {"events": [], "next": None, "servedBy": LIVE_PROD}
    assert len(table_items(dynamodb)) == 1


def test_a_page_stops_short_of_lambdas_response_limit(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 5 events of ~1 KB against a 2.5 KB page budget stand in for 100 of 64 KiB against 5 MiB.
    monkeypatch.setattr(handler, "MAX_PAGE_BYTES", 2500)
    posted = [post(handler, {"seq": seq, "pad": "é" * 450}) for seq in range(5)]

    pages = all_pages(handler, limit=100)

    assert [len(page["events"]) for page in pages] == [2, 2, 1]
    for page in pages:
        assert len(runtime_bytes(page["events"])) <= 2500
    listed = [event["id"] for page in pages for event in page["events"]]
    assert listed == [reply["id"] for reply in reversed(posted)]
    assert len(table_items(dynamodb)) == 5


def test_expired_events_are_not_listed_before_dynamodb_deletes_them(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_RETENTION_DAYS", "1")
    posted = [post(handler, {"seq": seq}) for seq in range(4)]
    expired = [event_items(dynamodb)[index] for index in (1, 2)]
    for item in expired:
        dynamodb.update_item(
            TableName=TABLE_NAME,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET expiresAt = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
        )

    pages = all_pages(handler, limit=2)

    listed = [event["id"] for page in pages for event in page["events"]]
    assert listed == [posted[3]["id"], posted[0]["id"]]
    assert len(event_items(dynamodb)) == 4


LEGACY_UNREADABLE = {
    "lone-surrogate": '{"x":"\\ud800"}',
    "duplicate-key": '{"a":1,"a":2}',
    "too-deep": nested(2000).decode(),
}


def test_events_stored_before_bodies_were_checked_do_not_break_the_listing(
    handler: ModuleType, dynamodb: Any
) -> None:
    # As the previous version stored them: partition "<stage>", data as ASCII-escaped JSON.
    for seq, data in enumerate([*LEGACY_UNREADABLE.values(), '{"ok":"caf\\u00e9"}']):
        event_id = str(uuid.UUID(int=seq + 1))
        received_at = f"2025-01-01T00:00:0{seq}.000000Z"
        dynamodb.put_item(
            TableName=TABLE_NAME,
            Item={
                "pk": {"S": "prod"},
                "sk": {"S": f"{received_at}#{event_id}"},
                "id": {"S": event_id},
                "stage": {"S": "prod"},
                "alias": {"S": "live"},
                "version": {"S": "6"},
                "requestId": {"S": "old"},
                "receivedAt": {"S": received_at},
                "data": {"S": data},
            },
        )
    post(handler, {"new": True})

    listing = get(handler)

    listed: list[tuple[Any, str]] = [
        (event["data"], event.get("dataProblem", "")) for event in listing["events"]
    ]
    assert listed[:2] == [({"new": True}, ""), ({"ok": "café"}, "")]
    assert [value for value, _ in listed[2:]] == [None, None, None]
    problems = [problem for _, problem in listed[2:]]
    assert problems[0].startswith("stored by an earlier version and unreadable: body is nested")
    assert "twice in one object" in problems[1]
    assert "lone UTF-16 surrogate" in problems[2]
    assert len(table_items(dynamodb)) == 5


def test_a_token_from_before_a_shard_count_change_asks_to_start_again(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seq in range(3):
        post(handler, {"seq": seq})
    first_page = get(handler, {"limit": "1"})
    monkeypatch.setenv("EVENT_SHARDS", "2")

    answer = invoke(handler, get_with(limit="1", next=first_page["next"]))

    assert answer.status == 400
    assert answer.body()["message"].endswith(
        "it was issued when this stage had 1 event shards and it now has 2: "
        "start the listing again without next"
    )
    assert len(table_items(dynamodb)) == 3


# --- What POST accepts reads back exactly ----------------------------------------------


ROUND_TRIP_BODIES = {
    "text": '{"text": "Zoë ✓ 🎉", "escaped": "\\u00e9\\ud83c\\udf89\\n\\t\\"\\\\\\/",'
    ' "nul": "\\u0000"}',
    "keys": '{"": 0, "clé ✓": 1, "\\ud83c\\udf89": 2, "a\\u0000b": 3}',
    "integers": '{"big": 123456789012345678901234567890123456789012345678901, "neg": -0,'
    ' "beyond-2^53": 9007199254740993}',
    "floats": '{"f": [0.1, 0.30000000000000004, 1e300, 1E+2, 5e-324, 2.2250738585072014e-308,'
    " 1.7976931348623157e308, -0.0, 0e10, 123456789.125, 1.5e-7]}",
    "empty": '{"string": "", "list": [], "object": {}, "null": null, "bools": [true, false]}',
    "max-depth": nested(MAX_DEPTH).decode(),
}


@pytest.mark.parametrize("body", ROUND_TRIP_BODIES.values(), ids=ROUND_TRIP_BODIES.keys())
def test_every_accepted_body_reads_back_as_sent_through_runtime_and_api(
    handler: ModuleType, dynamodb: Any, body: str
) -> None:
    ok(invoke(handler, post_raw(body.encode())))

    listing = invoke(handler, api_event("GET"))

    [event] = exact(listing.text)["events"]
    assert event["data"] == exact(body)
    assert set(event["data"]) == set(json.loads(body))
    [item] = table_items(dynamodb)
    assert item["data"]["S"] == body


def test_what_the_old_version_lost_is_now_refused_not_changed(
    handler: ModuleType, dynamodb: Any
) -> None:
    # D1, D2, D6 of issue 9: each of these was stored, then read back changed or not at all.
    refused = {
        b'{"x":"\\ud800"}': "lone UTF-16 surrogate (\\ud800)",
        nested(9994): f"nested more than {MAX_DEPTH} levels",
        b'{"n":1234567890.12345678901234567891}': "cannot hold exactly",
        b'{"n":1e-400}': "cannot hold exactly",
        b'{"a":1,"a":2}': "twice in one object",
    }
    for body, reason in refused.items():
        answer = invoke(handler, post_raw(body))
        assert (answer.status, reason in answer.body()["message"]) == (400, True), body[:40]

    assert table_items(dynamodb) == []


# --- Idempotency ------------------------------------------------------------------------


def test_idempotent_retry_stores_once_and_replays_the_first_reply(
    handler: ModuleType, dynamodb: Any
) -> None:
    data = {"order": 42}
    body = json.dumps(data).encode()
    before = int(time.time())

    first = post(handler, data, idempotency_key="order-42", caller_id="key-id-1")
    retry = post(handler, data, idempotency_key="order-42", caller_id="key-id-1")

    after = int(time.time())
    assert first["replayed"] is False
    assert retry == {**first, "replayed": True}
    [event_item] = items_in(dynamodb, "prod")
    assert event_item["id"] == {"S": first["id"]}
    [record] = items_in(dynamodb, record_partition("prod", "key-id-1", "order-42"))
    assert record["sk"] == {"S": "idempotency"}
    assert json.loads(record["reply"]["S"]) == first
    assert record["bodySha256"] == {"S": hashlib.sha256(body).hexdigest()}
    expires_at = int(record["expiresAt"]["N"])
    assert before + IDEMPOTENCY_TTL_SECONDS <= expires_at <= after + IDEMPOTENCY_TTL_SECONDS
    assert len(table_items(dynamodb)) == 2


def test_idempotency_key_reused_with_a_different_body_is_422(
    handler: ModuleType, dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    post(handler, {"order": 42}, idempotency_key="order-42")
    before = table_items(dynamodb)
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    answer = invoke(handler, post_event({"order": 43}, idempotency_key="order-42"))

    assert answer.status == 422
    assert answer.body() == {
        "message": "this Idempotency-Key was already used with a different body; "
        "use a new key for a new event",
        "servedBy": LIVE_PROD,
    }
    assert table_items(dynamodb) == before
    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.INFO, 422)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"stage": "prod"}, {"stage": "staging"}, id="stage"),
        pytest.param({"caller_id": "key-a"}, {"caller_id": "key-b"}, id="caller"),
        pytest.param({"caller_id": ""}, {"caller_id": "key-b"}, id="keyless-and-caller"),
    ],
)
def test_idempotency_keys_are_scoped_to_their_stage_and_caller(
    handler: ModuleType, dynamodb: Any, first: dict[str, Any], second: dict[str, Any]
) -> None:
    one = post(handler, {"order": 42}, idempotency_key="order-42", **first)
    other = post(handler, {"order": 42}, idempotency_key="order-42", **second)

    assert other["replayed"] is False
    assert other["id"] != one["id"]
    assert len(event_items(dynamodb)) == 2
    records = [item for item in table_items(dynamodb) if "bodySha256" in item]
    assert len(records) == 2


def test_expired_idempotency_record_no_longer_blocks_the_key(
    handler: ModuleType, dynamodb: Any
) -> None:
    first = post(handler, {"order": 42}, idempotency_key="order-42")
    partition = record_partition("prod", "", "order-42")
    # DynamoDB deletes expired items only eventually, so the record may still be present.
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": partition}, "sk": {"S": "idempotency"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )

    second = post(handler, {"order": 43}, idempotency_key="order-42")

    assert second["replayed"] is False
    assert second["id"] != first["id"]
    assert [item["id"]["S"] for item in items_in(dynamodb, "prod")] == [first["id"], second["id"]]
    [record] = items_in(dynamodb, partition)
    assert json.loads(record["reply"]["S"]) == second
    assert int(record["expiresAt"]["N"]) > time.time() + IDEMPOTENCY_TTL_SECONDS - 60


SECRET_KEY = "user-jane.doe@example.com-order-7"


@pytest.mark.parametrize(
    ("key", "data", "status"),
    [
        pytest.param(SECRET_KEY, {"order": 7}, 200, id="served"),
        pytest.param(SECRET_KEY, {"order": 8}, 422, id="reused"),
        pytest.param(SECRET_KEY + "-ü", {"order": 7}, 400, id="invalid"),
    ],
)
def test_the_idempotency_key_is_logged_as_a_digest_only(
    handler: ModuleType,
    dynamodb: Any,
    *,
    caplog: pytest.LogCaptureFixture,
    key: str,
    data: dict[str, int],
    status: int,
) -> None:
    post(handler, {"order": 7}, idempotency_key=SECRET_KEY)
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    answer = invoke(handler, post_event(data, idempotency_key=key))

    assert answer.status == status
    assert "jane" not in answer.text
    [log] = log_records(caplog)
    assert log.__dict__["idempotencyKeySha256"] == hashlib.sha256(key.encode()).hexdigest()[:12]
    assert "jane" not in caplog.text
    assert all("jane" not in str(value) for value in log.__dict__.values())
    assert len(event_items(dynamodb)) == 1


def test_the_idempotency_key_comes_from_the_header_whatever_its_case(
    handler: ModuleType, dynamodb: Any
) -> None:
    # The request the API's default template renders, with a query parameter of the same name
    # that must not count (D7 of issue 9) and the header as an HTTP/2 client spells it.
    def request(header_value: str) -> dict[str, Any]:
        rendered = render(
            api_spec.DEFAULT_REQUEST_TEMPLATE,
            TemplateInput(
                body='{"order": 42}',
                querystring={"Idempotency-Key": "from-query"},
                header={"idempotency-key": header_value},
                context={
                    "stage": "prod",
                    "httpMethod": "POST",
                    "resourcePath": "/events",
                    "requestId": "req-1",
                    "isCanaryRequest": "false",
                    "identity": {"apiKeyId": "key-id-1"},
                },
            ),
        )
        event: dict[str, Any] = json.loads(rendered)
        return event

    first = ok(invoke(handler, request("from-header")))
    retry = ok(invoke(handler, request("from-header")))

    assert retry == {**first, "replayed": True}
    assert items_in(dynamodb, record_partition("prod", "key-id-1", "from-header")) != []
    assert items_in(dynamodb, record_partition("prod", "key-id-1", "from-query")) == []


# --- Bad requests -----------------------------------------------------------------------


TOKEN_PROBLEM = "next must be the unchanged next value of an earlier GET /events reply; "
LIMIT_PROBLEM = "limit must be an integer from 1 to 100, got "
KEY_PROBLEM = "Idempotency-Key must be 1 to 128 printable ASCII characters, got "
A_POSITION = "2026-01-01T00:00:00.000000Z#0a1b2c3d-0000-4000-8000-000000000000"


BAD_REQUESTS = [
    # POST bodies
    pytest.param(
        post_raw(b"{not json"),
        "body is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 2",
        id="invalid-json",
    ),
    pytest.param(
        post_raw(b"  "),
        "body is not valid JSON: Expecting value at line 1 column 3",
        id="whitespace-body",
    ),
    pytest.param(
        post_raw(b'{"a": "\xff"}'),
        "body is not valid UTF-8: invalid start byte at byte 7",
        id="invalid-utf8",
    ),
    pytest.param(
        post_raw(b'{"a": "\xed\xa0\x80"}'),
        "body is not valid UTF-8: invalid continuation byte at byte 7",
        id="utf8-encoded-surrogate",
    ),
    pytest.param(post_raw(b"[1, 2]"), "body must be a JSON object, got array", id="array"),
    pytest.param(post_raw(b'"text"'), "body must be a JSON object, got string", id="string"),
    pytest.param(post_raw(b"42"), "body must be a JSON object, got number", id="number"),
    pytest.param(post_raw(b"null"), "body must be a JSON object, got null", id="null"),
    pytest.param(post_raw(b"true"), "body must be a JSON object, got boolean", id="boolean"),
    pytest.param(post_raw(b""), "body is empty; send a JSON object", id="empty-body"),
    pytest.param(
        post_raw(b"{}"),
        "body is an empty JSON object; an event needs at least one field",
        id="empty-object-as-api-gateway-sends-an-empty-body",
    ),
    pytest.param(
        without_field(post_raw(b""), "bodyBase64"),
        "body is empty; send a JSON object",
        id="missing-body",
    ),
    pytest.param(
        post_raw(b'{"a": NaN}'),
        "body is not valid JSON: NaN is not a JSON value",
        id="nan",
    ),
    pytest.param(
        post_raw(b'{"a": -Infinity}'),
        "body is not valid JSON: -Infinity is not a JSON value",
        id="infinity",
    ),
    *[
        pytest.param(
            post_raw(b'{"a": [1, ' + literal.encode() + b"]}"),
            f"body has the number {shown}, which a 64-bit float (how the API reads numbers "
            "back) cannot hold exactly; send it as a string to keep every digit",
            id=f"inexact-{name}",
        )
        for name, literal, shown in [
            ("digits", "1234567890.12345678901234567891", "1234567890.12345678901234567891"),
            ("underflow", "1e-400", "1e-400"),
            ("overflow", "1e999", "1e999"),
            ("near-0.1", "0.10000000000000000555", "0.10000000000000000555"),
            ("huge-exponent", "1e99999999999999999999", "1e99999999999999999999"),
            ("long", "0." + "1" * 100, "0." + "1" * 35 + "..."),
        ]
    ],
    pytest.param(
        post_raw(b'{"a": ' + b"9" * 5000 + b"}"),
        "body has an integer with 5000 digits; the limit is ",
        id="huge-integer",
    ),
    pytest.param(
        post_raw(nested(MAX_DEPTH + 1)),
        f"body is nested more than {MAX_DEPTH} levels deep; the limit is {MAX_DEPTH}",
        id="one-level-too-deep",
    ),
    pytest.param(
        post_raw(b'{"a": ' + b'{"b": ' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH + b"}"),
        f"body is nested more than {MAX_DEPTH} levels deep",
        id="too-deep-in-objects",
    ),
    pytest.param(
        post_raw(nested(30_000)),
        f"body is nested more than {MAX_DEPTH} levels deep",
        id="deeper-than-the-parser-recurses",
    ),
    *[
        pytest.param(
            post_raw(body),
            f"body has a {kind} holding a lone UTF-16 surrogate ({escape}), which is no "
            "character and cannot be stored",
            id=f"lone-surrogate-{name}",
        )
        for name, body, kind, escape in [
            ("high", b'{"x":"\\ud800"}', "string", "\\ud800"),
            ("low", b'{"x":"a\\udfffb"}', "string", "\\udfff"),
            ("reversed-pair", b'{"x":"\\ude00\\ud83d"}', "string", "\\ude00"),
            ("in-key", b'{"\\udbff":1}', "key", "\\udbff"),
            ("nested", b'{"x":[{"y":["ok", "\\ud83d"]}]}', "string", "\\ud83d"),
        ]
    ],
    pytest.param(
        post_raw(b'{"a": 1, "b": {"c": 2, "c": 3}}'),
        "body has the key 'c' twice in one object; only one would be kept",
        id="duplicate-key",
    ),
    pytest.param(
        post_raw(b'{"\\u0061": 1, "a": 2}'),
        "body has the key 'a' twice in one object",
        id="duplicate-key-escaped",
    ),
    pytest.param(
        with_fields(post_raw(b"{}"), bodyBase64="not base64!"),
        "bodyBase64 is not valid base64: ",
        id="body-not-base64",
    ),
    pytest.param(
        post_raw(b'{"a":1}', idempotency_key="k" * 129),
        KEY_PROBLEM + "129 characters",
        id="key-too-long",
    ),
    pytest.param(
        post_raw(b'{"a":1}', idempotency_key="line\nbreak"),
        KEY_PROBLEM + "10 characters",
        id="key-control-character",
    ),
    pytest.param(
        post_raw(b'{"a":1}', idempotency_key="clé"),
        KEY_PROBLEM + "3 characters",
        id="key-not-ascii",
    ),
    pytest.param(
        post_raw(b'{"a":1}', idempotency_key="\ud800"),
        "event field 'idempotencyKey' holds a lone UTF-16 surrogate",
        id="key-lone-surrogate",
    ),
    pytest.param(
        post_raw(b'{"a":1}', caller_id="\udfff"),
        "event field 'callerId' holds a lone UTF-16 surrogate",
        id="caller-lone-surrogate",
    ),
    pytest.param(
        with_fields(post_raw(b'{"a":1}'), requestId="req-\ud800"),
        "event field 'requestId' holds a lone UTF-16 surrogate",
        id="request-id-lone-surrogate",
    ),
    pytest.param(
        with_fields(post_raw(b'{"a":1}'), callerId=7),
        "event field 'callerId' must be a string, got 7",
        id="caller-not-string",
    ),
    # GET query parameters
    pytest.param(get_with(limit="0"), LIMIT_PROBLEM + "'0'", id="limit-0"),
    pytest.param(get_with(limit="101"), LIMIT_PROBLEM + "'101'", id="limit-101"),
    pytest.param(get_with(limit="abc"), LIMIT_PROBLEM + "'abc'", id="limit-abc"),
    pytest.param(get_with(limit="1.5"), LIMIT_PROBLEM + "'1.5'", id="limit-1.5"),
    pytest.param(get_with(limit="-1"), LIMIT_PROBLEM + "'-1'", id="limit-negative"),
    pytest.param(get_with(limit=" 5"), LIMIT_PROBLEM + "' 5'", id="limit-padded"),
    pytest.param(get_with(limit="٣"), LIMIT_PROBLEM + "'٣'", id="limit-arabic-digit"),
    pytest.param(get_with(limit="9" * 5000), LIMIT_PROBLEM + "'999", id="limit-huge"),
    pytest.param(
        get_with(next="not base64!"),
        TOKEN_PROBLEM + "it is not unpadded URL-safe base64",
        id="next-not-base64",
    ),
    pytest.param(
        get_with(next="\ud800"),
        "query parameter 'next' holds a lone UTF-16 surrogate",
        id="next-lone-surrogate-itself",
    ),
    pytest.param(
        get_with(next=base64.urlsafe_b64encode(b'{"stage":"prod"}').decode()),
        TOKEN_PROBLEM + "it is not unpadded URL-safe base64",
        id="next-padded",
    ),
    pytest.param(
        get_with(next="a" * 8193),
        TOKEN_PROBLEM + "it is not unpadded URL-safe base64",
        id="next-too-long",
    ),
    pytest.param(
        get_with(next="abcde"), TOKEN_PROBLEM + "it is not valid base64: ", id="next-bad-length"
    ),
    pytest.param(
        get_with(next=page_token(b"not json")),
        TOKEN_PROBLEM + "it does not decode to JSON",
        id="next-not-json",
    ),
    pytest.param(
        get_with(next=page_token(b"\xff\xfe")),
        TOKEN_PROBLEM + "it does not decode to JSON",
        id="next-not-utf8",
    ),
    pytest.param(
        get_with(next=page_token(b"[" * 2000 + b"]" * 2000)),
        TOKEN_PROBLEM + "it does not decode to JSON",
        id="next-deep",
    ),
    *[
        pytest.param(
            get_with(next=token_of(payload)),
            TOKEN_PROBLEM + "its content is not a page position",
            id=f"next-{name}",
        )
        for name, payload in [
            # D3 of issue 9: a lone surrogate in a position was a 500.
            ("lone-surrogate", {"stage": "prod", "before": ["\ud800"]}),
            (
                "surrogate-in-position",
                {"stage": "prod", "before": [A_POSITION[:-1] + "\udc00"]},
            ),
            ("old-format-lone-surrogate", {"sk": "\ud800"}),
            ("old-format-free-text", {"sk": "a"}),
            ("old-format-extra-field", {"sk": A_POSITION, "stage": "prod"}),
            ("extra-field", {"stage": "prod", "before": [A_POSITION], "pk": "prod"}),
            ("no-stage", {"before": [A_POSITION]}),
            ("before-not-list", {"stage": "prod", "before": A_POSITION}),
            ("position-not-string", {"stage": "prod", "before": [1]}),
            ("position-empty", {"stage": "prod", "before": [""]}),
            ("position-free-text", {"stage": "prod", "before": ["zzz"]}),
            ("position-upper-case-id", {"stage": "prod", "before": [A_POSITION.upper()]}),
            ("position-trailing-newline", {"stage": "prod", "before": [A_POSITION + "\n"]}),
            ("position-arabic-digits", {"stage": "prod", "before": ["٢" + A_POSITION[1:]]}),
            ("array", [A_POSITION]),
        ]
    ],
    pytest.param(
        get_with(next=token_of({"stage": "staging", "before": [A_POSITION]})),
        TOKEN_PROBLEM + "it belongs to another stage's listing",
        id="next-of-another-stage",
    ),
    pytest.param(
        get_with(next=token_of({"stage": "prod", "before": [A_POSITION] * 2})),
        TOKEN_PROBLEM + "it was issued when this stage had 2 event shards and it now has 1",
        id="next-wrong-shard-count",
    ),
    pytest.param(
        with_fields(api_event("GET"), query={"limit": 5}),
        "query parameter 'limit' must be a string, got 5",
        id="limit-not-string",
    ),
    # The event itself
    pytest.param(without_field(api_event("GET"), "stage"), "event has no stage", id="no-stage"),
    pytest.param(api_event("GET", stage=""), "event has no stage", id="empty-stage"),
    pytest.param(
        api_event("GET", stage="idempotency#prod"),
        "stage must be 1 to 128 letters, digits, '-' or '_', got 'idempotency#prod'",
        id="stage-with-hash",
    ),
    pytest.param(
        with_fields(api_event("GET"), stage=5),
        "event field 'stage' must be a string, got 5",
        id="stage-not-string",
    ),
    pytest.param(without_field(api_event("GET"), "method"), "event has no method", id="no-method"),
    pytest.param(
        without_field(api_event("GET"), "resourcePath"),
        "event has no resourcePath",
        id="no-resource-path",
    ),
    pytest.param(
        with_fields(api_event("GET"), query="limit=5"),
        "event field 'query' must be an object, got 'limit=5'",
        id="query-not-object",
    ),
    pytest.param(["not", "an", "object"], "event must be a JSON object, got list", id="not-object"),
]


@pytest.mark.parametrize(("event", "message_start"), BAD_REQUESTS)
def test_bad_request_is_a_400_reply_that_leaves_the_table_alone(
    handler: ModuleType,
    dynamodb: Any,
    *,
    dynamodb_calls: list[str],
    caplog: pytest.LogCaptureFixture,
    event: object,
    message_start: str,
) -> None:
    post(handler, {"existing": True})
    before = table_items(dynamodb)
    dynamodb_calls.clear()
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    answer = invoke(handler, event)

    assert answer.status == 400
    body = answer.body()
    assert set(body) == {"message", "servedBy"}
    assert body["message"].startswith(message_start), body["message"]
    assert len(body["message"]) < 250
    assert (body["servedBy"]["alias"], body["servedBy"]["version"]) == ("live", "7")
    assert dynamodb_calls == []
    assert table_items(dynamodb) == before
    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.INFO, 400)
    assert log.__dict__["reason"] == body["message"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param(
            api_event("DELETE"),
            "no route 'DELETE' '/events'; this API serves POST /events and GET /events",
            id="unknown-method",
        ),
        pytest.param(
            with_fields(api_event("GET"), resourcePath="/events/1"),
            "no route 'GET' '/events/1'; this API serves POST /events and GET /events",
            id="unknown-path",
        ),
    ],
)
def test_a_route_the_function_does_not_serve_is_404(
    handler: ModuleType, dynamodb: Any, event: dict[str, Any], message: str
) -> None:
    answer = invoke(handler, event)

    assert (answer.status, answer.body()) == (404, {"message": message, "servedBy": LIVE_PROD})
    assert table_items(dynamodb) == []


def test_bad_request_names_the_stage_that_rejected_it(handler: ModuleType) -> None:
    answer = invoke(handler, api_event("GET", stage="staging", query={"limit": "0"}), canary())

    assert answer.body()["servedBy"] == {"stage": "staging", "alias": "canary", "version": "8"}


def test_an_unusable_stage_is_not_echoed_in_served_by(handler: ModuleType) -> None:
    answer = invoke(handler, api_event("GET", stage="pr\ud800od"))

    assert answer.status == 400
    assert answer.body()["servedBy"] == {"stage": "", "alias": "live", "version": "7"}


# --- DynamoDB failures ------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A DynamoDB client method of the handler that raises, and a request that calls it."""

    method: str
    error: Exception
    idempotency_key: str = ""

    def event(self) -> dict[str, Any]:
        if self.method == "query":
            return api_event("GET")
        return post_event({"order": 42}, idempotency_key=self.idempotency_key)


RETRYABLE_CODES = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
]
ENDPOINT = f"https://dynamodb.{REGION}.amazonaws.com"

RETRYABLE_FAILURES = [
    *[
        pytest.param(Failure("put_item", client_error(code, "PutItem")), id=f"put-{code}")
        for code in RETRYABLE_CODES
    ],
    pytest.param(
        Failure("query", client_error("ThrottlingException", "Query")), id="query-throttled"
    ),
    *[
        pytest.param(
            Failure(
                "transact_write_items",
                transaction_cancelled(event_reason, record_reason),
                idempotency_key="order-42",
            ),
            id=f"transaction-{event_reason}-{record_reason}",
        )
        for event_reason, record_reason in [
            ("None", "TransactionConflict"),
            ("ThrottlingError", "None"),
            ("ProvisionedThroughputExceeded", "None"),
        ]
    ],
    # D5 of issue 9: our own retried transaction, still being applied.
    pytest.param(
        Failure(
            "transact_write_items",
            client_error("TransactionInProgressException", "TransactWriteItems"),
            idempotency_key="order-42",
        ),
        id="transaction-in-progress",
    ),
    pytest.param(
        Failure("put_item", botocore.exceptions.ReadTimeoutError(endpoint_url=ENDPOINT)),
        id="read-timeout",
    ),
    pytest.param(
        Failure("put_item", botocore.exceptions.ConnectTimeoutError(endpoint_url=ENDPOINT)),
        id="connect-timeout",
    ),
    pytest.param(
        Failure("put_item", botocore.exceptions.EndpointConnectionError(endpoint_url=ENDPOINT)),
        id="endpoint-unreachable",
    ),
    pytest.param(
        Failure(
            "query",
            botocore.exceptions.ConnectionClosedError(endpoint_url=ENDPOINT),
        ),
        id="connection-closed",
    ),
]


@pytest.mark.parametrize("failure", RETRYABLE_FAILURES)
def test_retryable_dynamodb_failure_is_retried_then_unavailable_and_writes_nothing(
    handler: ModuleType,
    dynamodb: Any,
    *,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
    failure: Failure,
) -> None:
    attempts: list[dict[str, Any]] = []
    monkeypatch.setattr(handler_client(handler), failure.method, raising(failure.error, attempts))
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    with pytest.raises(handler.ServiceUnavailableError) as raised:
        invoke(handler, failure.event())

    body = error_body(raised.value, UNAVAILABLE)
    assert "retry" in body["message"]
    assert body["servedBy"] == LIVE_PROD
    assert len(attempts) == handler.MAX_ATTEMPTS
    assert len(sleeps) == handler.MAX_ATTEMPTS - 1
    assert all(0 <= delay <= 0.5 for delay in sleeps)
    assert table_items(dynamodb) == []
    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.ERROR, 503)
    assert log.exc_info is not None
    assert log.exc_info[1] is failure.error


@pytest.mark.parametrize("failure", RETRYABLE_FAILURES)
def test_retryable_dynamodb_failure_that_clears_is_served(
    handler: ModuleType,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: list[float],
    failure: Failure,
) -> None:
    client = handler_client(handler)
    real_method = getattr(client, failure.method)
    failures_left = [failure.error]

    def fail_once(**params: Any) -> Any:
        if failures_left:
            raise failures_left.pop()
        return real_method(**params)

    monkeypatch.setattr(client, failure.method, fail_once)

    answer = invoke(handler, failure.event())

    assert answer.status == 200
    assert len(sleeps) == 1
    expected_events = 0 if failure.method == "query" else 1
    assert len(event_items(dynamodb)) == expected_events


def test_a_put_applied_whose_response_was_lost_is_stored_once(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    # D4 of issue 9: the retry met the attribute_not_exists guard and answered 500, with the
    # event stored; the client's own retry then stored it twice.
    client = handler_client(handler)
    real_put = client.put_item
    attempts: list[dict[str, Any]] = []

    def applied_then_lost(**params: Any) -> Any:
        attempts.append(params)
        response = real_put(**params)
        if len(attempts) == 1:
            raise botocore.exceptions.ReadTimeoutError(endpoint_url=ENDPOINT)
        return response

    monkeypatch.setattr(client, "put_item", applied_then_lost)

    reply = post(handler, {"order": 42})

    assert len(attempts) == 2
    assert attempts[0] == attempts[1]
    [item] = table_items(dynamodb)
    assert item["id"] == {"S": reply["id"]}
    assert reply["replayed"] is False


def test_a_transaction_applied_whose_response_was_lost_is_the_first_reply(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    # Real DynamoDB answers the retry from its ClientRequestToken; moto does not keep tokens,
    # so the retry meets both conditions and the record found is this request's own.
    client = handler_client(handler)
    real_transact = client.transact_write_items
    attempts: list[dict[str, Any]] = []

    def applied_then_lost(**params: Any) -> Any:
        attempts.append(params)
        response = real_transact(**params)
        if len(attempts) == 1:
            raise botocore.exceptions.ConnectionClosedError(endpoint_url=ENDPOINT)
        return response

    monkeypatch.setattr(client, "transact_write_items", applied_then_lost)

    reply = post(handler, {"order": 42}, idempotency_key="order-42")

    assert reply["replayed"] is False
    assert len(attempts) == 2
    assert attempts[0]["ClientRequestToken"] == attempts[1]["ClientRequestToken"]
    [item] = event_items(dynamodb)
    assert item["id"] == {"S": reply["id"]}
    [record] = items_in(dynamodb, record_partition("prod", "", "order-42"))
    assert json.loads(record["reply"]["S"]) == reply


def test_a_condition_failing_on_someone_elses_item_is_not_taken_for_ours(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = client_error(
        "ConditionalCheckFailedException", "PutItem", Item={"pk": {"S": "prod"}, "sk": {"S": "x"}}
    )
    monkeypatch.setattr(handler_client(handler), "put_item", raising(error))

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        invoke(handler, post_event({"order": 42}))

    assert raised.value is error
    assert table_items(dynamodb) == []


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(
            Failure("put_item", client_error("AccessDeniedException", "PutItem")),
            id="access-denied",
        ),
        pytest.param(
            Failure("query", client_error("ValidationException", "Query")),
            id="query-validation",
        ),
        pytest.param(
            Failure(
                "transact_write_items",
                transaction_cancelled("None", "ValidationError"),
                idempotency_key="order-42",
            ),
            id="transaction-validation",
        ),
        pytest.param(
            Failure(
                "transact_write_items",
                transaction_cancelled("ConditionalCheckFailed", "None"),
                idempotency_key="order-42",
            ),
            id="transaction-event-exists",
        ),
    ],
)
def test_non_retryable_dynamodb_failure_is_raised_as_is(
    handler: ModuleType,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
) -> None:
    attempts: list[dict[str, Any]] = []
    monkeypatch.setattr(handler_client(handler), failure.method, raising(failure.error, attempts))
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        invoke(handler, failure.event())

    assert raised.value is failure.error
    assert not str(raised.value).startswith(UNAVAILABLE)
    assert len(attempts) == 1
    assert table_items(dynamodb) == []
    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.ERROR, 500)
    assert log.exc_info is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TABLE_NAME", ""),
        ("EVENT_SHARDS", "0"),
        ("EVENT_SHARDS", "41"),
        ("EVENT_SHARDS", "four"),
        ("EVENT_SHARDS", "٤"),
        ("EVENT_RETENTION_DAYS", "-1"),
        ("EVENT_RETENTION_DAYS", "1.5"),
    ],
)
def test_a_bad_setting_is_an_internal_error(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(handler.ConfigurationError, match=name) as raised:
        invoke(handler, post_event({"order": 42}))

    assert not str(raised.value).startswith(UNAVAILABLE)
    assert table_items(dynamodb) == []


# --- Time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time_left_ms", "connect", "read"),
    [
        (29_000, 1.0, 2.0),
        (10_000, 1.0, 2.0),
        (5_000, 0.5, 1.0),
        (3_000, 0.25, 0.5),
        (1_000, 0.1, 0.2),
        (200, 0.1, 0.2),
    ],
)
def test_attempt_timeouts_follow_the_time_the_invocation_has(
    handler: ModuleType, time_left_ms: int, connect: float, read: float
) -> None:
    client = handler.dynamodb_client(handler.attempt_seconds(time_left_ms))

    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == pytest.approx((connect, read))
    # Retries are the handler's, each weighed against the time left.
    assert config.retries["total_max_attempts"] == 1
    # About three attempts fit; whether each may start is decided against the time left then.
    if time_left_ms >= 1_000:
        assert handler.MAX_ATTEMPTS * (connect + read) * 1000 <= time_left_ms


def test_no_attempt_starts_without_time_to_finish_and_reply(
    handler: ModuleType, dynamodb: Any, dynamodb_calls: list[str]
) -> None:
    # 0.3 s attempts and 0.25 s to reply do not fit in 0.5 s.
    context = FakeContext(f"{FUNCTION_ARN}:live", "7", time_left_ms=500)

    with pytest.raises(handler.ServiceUnavailableError):
        invoke(handler, post_event({"order": 42}), context)

    assert dynamodb_calls == []
    assert table_items(dynamodb) == []


def test_retries_stop_while_there_is_time_to_answer_503(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = FakeContext(f"{FUNCTION_ARN}:live", "7", time_left_ms=10_000)
    started_with: list[float] = []

    def slow_throttle(**_: Any) -> NoReturn:
        started_with.append(context.time_left_ms)
        context.time_left_ms -= 4_000  # an attempt that ran into its timeouts
        raise client_error("ThrottlingException", "PutItem")

    def sleep(seconds: float) -> None:
        context.time_left_ms -= seconds * 1000

    monkeypatch.setattr(handler_client(handler), "put_item", slow_throttle)
    monkeypatch.setattr(handler.time, "sleep", sleep)

    with pytest.raises(handler.ServiceUnavailableError) as raised:
        invoke(handler, post_event({"order": 42}), context)

    # The third attempt would have started with under 2 s left, for up to 3 s.
    assert len(started_with) == 2
    assert all(left >= 3_000 + handler.REPLY_RESERVE_MS for left in started_with)
    assert context.time_left_ms > 0
    assert isinstance(raised.value.__cause__, handler.TransientError)
    assert table_items(dynamodb) == []


# --- DynamoDB access --------------------------------------------------------------------


def test_handler_reads_with_query_and_never_scans(
    handler: ModuleType, dynamodb_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    post(handler, {"n": 1})
    post(handler, {"n": 2}, idempotency_key="k")
    post(handler, {"n": 2}, idempotency_key="k")
    listing = get(handler, {"limit": "1"})
    get(handler, {"limit": "1", "next": listing["next"]})
    monkeypatch.setenv("EVENT_SHARDS", "3")
    get(handler)

    assert dynamodb_calls == [
        "PutItem",
        "TransactWriteItems",
        "TransactWriteItems",
        "Query",
        "Query",
        "Query",
        "Query",
        "Query",
    ]


def test_scan_guard_on_the_handlers_client_is_armed(handler: ModuleType) -> None:
    with pytest.raises(AssertionError, match="must not Scan"):
        handler_client(handler).scan(TableName=TABLE_NAME)


def test_client_is_created_once_per_container(handler: ModuleType, dynamodb: Any) -> None:
    client = handler_client(handler)

    post(handler, {"n": 1})
    get(handler)

    assert handler_client(handler) is client
    assert handler.dynamodb_client.cache_info().currsize == 1


# --- Logging ----------------------------------------------------------------------------


def test_each_served_request_logs_one_info_line_with_its_context(
    handler: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    invoke(handler, with_fields(post_event({"n": 1}), isCanaryRequest="true"), canary())

    [log] = log_records(caplog)
    assert log.levelno == logging.INFO
    context_fields = (
        "status",
        "servedBy",
        "method",
        "resourcePath",
        "apiRequestId",
        "isCanaryRequest",
    )
    assert {name: log.__dict__[name] for name in context_fields} == {
        "status": 200,
        "servedBy": {"stage": "prod", "alias": "canary", "version": "8"},
        "method": "POST",
        "resourcePath": "/events",
        "apiRequestId": "req-1",
        "isCanaryRequest": "true",
    }
    assert "idempotencyKeySha256" not in log.__dict__


def test_a_log_line_never_holds_text_utf8_cannot_encode(
    handler: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    invoke(handler, with_fields(api_event("GET"), requestId="r\ud800", method="G\udc00"))

    [log] = log_records(caplog)
    assert (log.__dict__["apiRequestId"], log.__dict__["method"]) == ("r\\ud800", "G\\udc00")


# --- Metrics (CloudWatch embedded metric format) ----------------------------------------------


def metric_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents the handler printed since the last call, each checked against the
    format's rules; every line of stdout must be one."""
    return [emf.check(line) for line in capsys.readouterr().out.splitlines()]


def test_a_success_publishes_one_request_and_no_failure(
    handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    before_ms = time.time() * 1000
    post(handler, {"order": 42})

    [line] = metric_lines(capsys)
    assert (line["Requests"], line["Failures"]) == (1, 0)
    assert 0 <= line["Duration"] < 10_000
    assert before_ms - 1 <= line["_aws"]["Timestamp"] <= time.time() * 1000
    assert (line["FunctionName"], line["Resource"], line["ExecutedVersion"]) == (
        "event-logger",
        "event-logger:live",
        "7",
    )
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == handler.METRICS_NAMESPACE
    # The dimensions release/aws.py reads either side with (Traffic.dimensions): the alias
    # alone, and the alias with the version that ran the request.
    assert directive["Dimensions"] == [
        ["FunctionName", "Resource"],
        ["FunctionName", "Resource", "ExecutedVersion"],
    ]
    assert {m["Name"]: (m["Unit"], m["StorageResolution"]) for m in directive["Metrics"]} == {
        "Requests": ("Count", 1),
        "Failures": ("Count", 1),
        "Duration": ("Milliseconds", 1),
    }


def test_the_release_tool_reads_the_namespace_the_function_publishes_in(
    handler_module: ModuleType,
) -> None:
    assert release_aws.FUNCTION_NAMESPACE == handler_module.METRICS_NAMESPACE


def test_a_canary_request_is_published_under_the_canary_alias_and_version(
    handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    post(handler, {"order": 42}, canary())

    [line] = metric_lines(capsys)
    assert (line["Resource"], line["ExecutedVersion"]) == ("event-logger:canary", "8")


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (lambda: post_event("not an object"), 400),
        (lambda: api_event("DELETE"), 404),
        (lambda: post_event({"big": "x" * MAX_BODY_BYTES}), 413),
    ],
    ids=["400", "404", "413"],
)
def test_a_client_error_is_a_request_and_no_failure(
    handler: ModuleType,
    capsys: pytest.CaptureFixture[str],
    event: Callable[[], dict[str, Any]],
    status: int,
) -> None:
    assert invoke(handler, event()).status == status

    [line] = metric_lines(capsys)
    assert (line["Requests"], line["Failures"]) == (1, 0)


def test_a_503_is_a_failure_published_before_it_is_raised(
    handler: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sleeps: list[float],
) -> None:
    throttled = botocore.exceptions.ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"
    )
    monkeypatch.setattr(handler_client(handler), "put_item", raising(throttled))

    with pytest.raises(handler.ServiceUnavailableError):
        invoke(handler, post_event({"order": 42}))

    [line] = metric_lines(capsys)
    assert (line["Requests"], line["Failures"]) == (1, 1)


def test_a_500_is_a_failure_published_before_it_is_raised(
    handler: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABLE_NAME")

    with pytest.raises(handler.ConfigurationError):
        invoke(handler, post_event({"order": 42}))

    [line] = metric_lines(capsys)
    assert (line["Requests"], line["Failures"]) == (1, 1)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("Resource"), "dimension 'Resource' is not a top-level"),
        (lambda d: d.update(Failures="1"), "metric 'Failures' is not a top-level number"),
        (lambda d: d["_aws"].update(Timestamp=1.5e12), "Timestamp is not an integer"),
        (lambda d: d["_aws"].update(Timestamp=1_700_000_000), "not milliseconds"),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0]["Dimensions"].append(
                [f"d{n}" for n in range(31)]
            ),
            "is not an array of <= 30 names",
        ),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(StorageResolution=10),
            "StorageResolution is not 1 or 60",
        ),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"),
            "unit 'ms' is not CloudWatch's",
        ),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].pop("Namespace"), "Namespace is not"),
    ],
)
def test_the_format_check_refuses_what_cloudwatch_would_not_extract(
    handler: ModuleType,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, Any]], object],
    problem: str,
) -> None:
    post(handler, {"order": 42})
    [line] = capsys.readouterr().out.splitlines()
    assert emf.problems(line) == []
    document = json.loads(line)
    change(document)

    assert any(problem in found for found in emf.problems(json.dumps(document)))
    assert emf.problems(f"{line} ") == ["data before or after the JSON object"]
