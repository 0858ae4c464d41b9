"""Tests for the Event Logger Lambda function (function/handler.py) against moto's DynamoDB.

Each test checks the reply or raised error *and* what the table holds afterwards. The table
is inspected with a Scan from the test's own client; the handler's client refuses Scan.
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
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

HANDLER_PATH = Path(__file__).resolve().parents[1] / "function" / "handler.py"
HANDLER_LOGGER = "event_logger_handler"
TABLE_NAME = "event-logger-test"
REGION = "eu-west-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:event-logger"
MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# The API's integration responses select 400 and 503 on these exact prefixes.
BAD_REQUEST = "[BadRequest] "
UNAVAILABLE = "[Unavailable] "


@dataclass(frozen=True)
class FakeContext:
    invoked_function_arn: str
    function_version: str


LIVE = FakeContext(f"{FUNCTION_ARN}:live", "7")
CANARY = FakeContext(f"{FUNCTION_ARN}:canary", "8")
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
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE_NAME,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.update_time_to_live(
            TableName=TABLE_NAME,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
        )
        yield client


@pytest.fixture
def handler(handler_module: ModuleType, dynamodb: Any) -> Iterator[ModuleType]:
    """The handler module with a fresh cached client, created inside moto, that refuses Scan."""
    handler_module.dynamodb_client.cache_clear()
    handler_module.dynamodb_client().meta.events.register("before-call.dynamodb.Scan", _refuse_scan)
    yield handler_module
    handler_module.dynamodb_client.cache_clear()


@pytest.fixture
def dynamodb_calls(handler: ModuleType) -> list[str]:
    """Names of the DynamoDB operations the handler's client performs, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    handler.dynamodb_client().meta.events.register("before-call.dynamodb", record)
    return calls


def _refuse_scan(**_: Any) -> NoReturn:
    raise AssertionError("the handler must not Scan the table")


def api_event(
    method: str,
    *,
    stage: str = "prod",
    body: bytes = b"",
    query: dict[str, str] | None = None,
    idempotency_key: str = "",
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


def invoke(handler: ModuleType, event: object, context: FakeContext = LIVE) -> dict[str, Any]:
    reply: dict[str, Any] = handler.handler(event, context)
    return reply


def post(
    handler: ModuleType, data: object, context: FakeContext = LIVE, **options: Any
) -> dict[str, Any]:
    return invoke(handler, post_event(data, **options), context)


def get(handler: ModuleType, query: dict[str, str] | None = None, **options: Any) -> dict[str, Any]:
    return invoke(handler, api_event("GET", query=query, **options))


def table_items(dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME):
        items.extend(page["Items"])
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def items_in(dynamodb: Any, partition: str) -> list[dict[str, Any]]:
    return [item for item in table_items(dynamodb) if item["pk"]["S"] == partition]


def error_body(error: BaseException, prefix: str) -> dict[str, Any]:
    text = str(error)
    assert text.startswith(prefix), text
    body: dict[str, Any] = json.loads(text.removeprefix(prefix))
    return body


def page_token(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_page_token(token: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


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


def raising(error: Exception) -> Callable[..., NoReturn]:
    def fail(**_: Any) -> NoReturn:
        raise error

    return fail


def log_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == HANDLER_LOGGER]


# --- POST /events -----------------------------------------------------------------------


def test_post_stores_one_item_with_every_field(handler: ModuleType, dynamodb: Any) -> None:
    raw_body = b'{ "kind": "signup",\n  "count": 2, "ratio": 0.5, "tags": ["a", null, true] }'

    reply = invoke(handler, post_raw(raw_body))

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
            "receivedAt": {"S": reply["receivedAt"]},
            "data": {"S": '{"kind":"signup","count":2,"ratio":0.5,"tags":["a",null,true]}'},
        }
    ]


@pytest.mark.parametrize(
    ("context", "served_by"),
    [
        pytest.param(LIVE, LIVE_PROD, id="live-alias"),
        pytest.param(CANARY, {"stage": "prod", "alias": "canary", "version": "8"}, id="canary"),
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

    invoke(handler, post_raw(body))

    [item] = table_items(dynamodb)
    assert item["data"]["S"] == body.decode()


def test_post_accepts_an_event_with_only_the_required_fields(
    handler: ModuleType, dynamodb: Any
) -> None:
    event = {
        "stage": "prod",
        "method": "POST",
        "resourcePath": "/events",
        "bodyBase64": base64.b64encode(b'{"minimal":true}').decode(),
    }

    reply = invoke(handler, event)

    assert reply["replayed"] is False
    [item] = table_items(dynamodb)
    assert item["requestId"] == {"S": ""}
    assert item["data"] == {"S": '{"minimal":true}'}


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


def test_get_pages_through_every_event_exactly_once(handler: ModuleType, dynamodb: Any) -> None:
    posted_ids = [post(handler, {"seq": seq})["id"] for seq in range(5)]
    staging_ids = [post(handler, {"seq": seq}, stage="staging")["id"] for seq in range(2)]

    pages = [get(handler, {"limit": "2"})]
    while pages[-1]["next"] is not None:
        pages.append(get(handler, {"limit": "2", "next": pages[-1]["next"]}))

    assert [len(page["events"]) for page in pages] == [2, 2, 1]
    listed_ids = [event["id"] for page in pages for event in page["events"]]
    assert listed_ids == list(reversed(posted_ids))
    for page in pages[:-1]:
        last = page["events"][-1]
        assert decode_page_token(page["next"]) == {"sk": f"{last['receivedAt']}#{last['id']}"}
    staging_listing = get(handler, stage="staging")
    assert [event["id"] for event in staging_listing["events"]] == list(reversed(staging_ids))
    assert len(items_in(dynamodb, "prod")) == 5


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


def test_stored_data_round_trips_values_dynamodb_numbers_cannot_hold(
    handler: ModuleType, dynamodb: Any
) -> None:
    data = {
        "big": 12345678901234567890123456789012345678901234567890,
        "float": 0.1,
        "text": "Zoë ✓ 🎉",
        "lone_surrogate": "\ud800",
        "empty": {"string": "", "list": [], "object": {}},
    }

    post(handler, data)

    assert get(handler)["events"][0]["data"] == data
    assert len(table_items(dynamodb)) == 1


# --- Idempotency ------------------------------------------------------------------------


def test_idempotent_retry_stores_once_and_replays_the_first_reply(
    handler: ModuleType, dynamodb: Any
) -> None:
    data = {"order": 42}
    body = json.dumps(data).encode()
    before = int(time.time())

    first = post(handler, data, idempotency_key="order-42")
    retry = post(handler, data, idempotency_key="order-42")

    after = int(time.time())
    assert first["replayed"] is False
    assert retry == {**first, "replayed": True}
    [event_item] = items_in(dynamodb, "prod")
    assert event_item["id"] == {"S": first["id"]}
    [record] = items_in(dynamodb, "idempotency#prod")
    assert record["sk"] == {"S": "order-42"}
    assert json.loads(record["reply"]["S"]) == first
    assert record["bodySha256"] == {"S": hashlib.sha256(body).hexdigest()}
    expires_at = int(record["expiresAt"]["N"])
    assert before + IDEMPOTENCY_TTL_SECONDS <= expires_at <= after + IDEMPOTENCY_TTL_SECONDS


def test_idempotency_key_reused_with_a_different_body_is_rejected(
    handler: ModuleType, dynamodb: Any
) -> None:
    post(handler, {"order": 42}, idempotency_key="order-42")
    before = table_items(dynamodb)

    with pytest.raises(handler.BadRequestError) as raised:
        post(handler, {"order": 43}, idempotency_key="order-42")

    body = error_body(raised.value, BAD_REQUEST)
    assert body == {
        "message": "Idempotency-Key 'order-42' was already used with a different body; "
        "use a new key for a new event",
        "servedBy": LIVE_PROD,
    }
    assert table_items(dynamodb) == before


def test_idempotency_keys_are_scoped_to_their_stage(handler: ModuleType, dynamodb: Any) -> None:
    prod = post(handler, {"order": 42}, idempotency_key="order-42")
    staging = post(handler, {"order": 42}, idempotency_key="order-42", stage="staging")

    assert staging["replayed"] is False
    assert staging["id"] != prod["id"]
    assert len(items_in(dynamodb, "prod")) == 1
    assert len(items_in(dynamodb, "staging")) == 1
    assert len(items_in(dynamodb, "idempotency#staging")) == 1


def test_expired_idempotency_record_no_longer_blocks_the_key(
    handler: ModuleType, dynamodb: Any
) -> None:
    first = post(handler, {"order": 42}, idempotency_key="order-42")
    # DynamoDB deletes expired items only eventually, so the record may still be present.
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": "idempotency#prod"}, "sk": {"S": "order-42"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )

    second = post(handler, {"order": 43}, idempotency_key="order-42")

    assert second["replayed"] is False
    assert second["id"] != first["id"]
    assert [item["id"]["S"] for item in items_in(dynamodb, "prod")] == [first["id"], second["id"]]
    [record] = items_in(dynamodb, "idempotency#prod")
    assert json.loads(record["reply"]["S"]) == second
    assert int(record["expiresAt"]["N"]) > time.time() + IDEMPOTENCY_TTL_SECONDS - 60


# --- Bad requests -----------------------------------------------------------------------


OVERSIZED_BODY = b'{"pad":"' + b"x" * (MAX_BODY_BYTES - 9) + b'"}'
DEEPLY_NESTED_BODY = b'{"a":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
TOKEN_PROBLEM = "next must be the unchanged next value of an earlier GET /events reply; "
LIMIT_PROBLEM = "limit must be an integer from 1 to 100, got "
KEY_PROBLEM = "Idempotency-Key must be 1 to 128 printable ASCII characters, got "

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
        post_raw(OVERSIZED_BODY),
        f"body is {MAX_BODY_BYTES + 1} bytes; the limit is {MAX_BODY_BYTES}",
        id="oversized-body",
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
    pytest.param(
        post_raw(b'{"a": 1e999}'),
        "body has a number too large to store: 1e999",
        id="float-overflow",
    ),
    pytest.param(
        post_raw(b'{"a": ' + b"9" * 5000 + b"}"),
        "body has an integer with 5000 digits; the limit is ",
        id="huge-integer",
    ),
    pytest.param(
        post_raw(DEEPLY_NESTED_BODY), "body is nested too deeply to process", id="deep-nesting"
    ),
    pytest.param(
        with_fields(post_raw(b"{}"), bodyBase64="not base64!"),
        "bodyBase64 is not valid base64: ",
        id="body-not-base64",
    ),
    pytest.param(
        post_raw(b"{}", idempotency_key="k" * 129),
        KEY_PROBLEM + "129 characters: 'kkk",
        id="key-too-long",
    ),
    pytest.param(
        post_raw(b"{}", idempotency_key="line\nbreak"),
        KEY_PROBLEM + "10 characters: 'line\\nbreak'",
        id="key-control-character",
    ),
    pytest.param(
        post_raw(b"{}", idempotency_key="clé"),
        KEY_PROBLEM + "3 characters: 'clé'",
        id="key-not-ascii",
    ),
    # GET query parameters
    pytest.param(get_with(limit="0"), LIMIT_PROBLEM + "'0'", id="limit-0"),
    pytest.param(get_with(limit="101"), LIMIT_PROBLEM + "'101'", id="limit-101"),
    pytest.param(get_with(limit="abc"), LIMIT_PROBLEM + "'abc'", id="limit-abc"),
    pytest.param(get_with(limit="1.5"), LIMIT_PROBLEM + "'1.5'", id="limit-1.5"),
    pytest.param(get_with(limit="-1"), LIMIT_PROBLEM + "'-1'", id="limit-negative"),
    pytest.param(get_with(limit=" 5"), LIMIT_PROBLEM + "' 5'", id="limit-padded"),
    pytest.param(get_with(limit="9" * 5000), LIMIT_PROBLEM + "'999", id="limit-huge"),
    pytest.param(
        get_with(next="not base64!"),
        TOKEN_PROBLEM + "it is not unpadded URL-safe base64",
        id="next-not-base64",
    ),
    pytest.param(
        get_with(next=base64.urlsafe_b64encode(b'{"sk":"a"}').decode()),
        TOKEN_PROBLEM + "it is not unpadded URL-safe base64",
        id="next-padded",
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
    *[
        pytest.param(
            get_with(next=page_token(payload)),
            TOKEN_PROBLEM + "its content is not a page position",
            id=f"next-{name}",
        )
        for name, payload in [
            ("sk-not-string", b'{"sk":1}'),
            ("extra-field", b'{"sk":"a","pk":"prod"}'),
            ("no-sk", b'{"id":"a"}'),
            ("array", b'["a"]'),
            ("empty-sk", b'{"sk":""}'),
            ("sk-too-long", b'{"sk":"' + b"a" * 1025 + b'"}'),
        ]
    ],
    pytest.param(
        with_fields(api_event("GET"), query={"limit": 5}),
        "query parameter 'limit' must be a string, got 5",
        id="limit-not-string",
    ),
    # The event itself
    pytest.param(
        api_event("DELETE"),
        "unsupported request DELETE /events; this API serves POST /events and GET /events",
        id="unknown-method",
    ),
    pytest.param(
        with_fields(api_event("GET"), resourcePath="/events/1"),
        "unsupported request GET /events/1; this API serves POST /events and GET /events",
        id="unknown-path",
    ),
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
def test_bad_request_is_rejected_without_touching_the_table(
    handler: ModuleType,
    dynamodb: Any,
    dynamodb_calls: list[str],
    event: object,
    message_start: str,
) -> None:
    post(handler, {"existing": True})
    before = table_items(dynamodb)
    dynamodb_calls.clear()

    with pytest.raises(handler.BadRequestError) as raised:
        invoke(handler, event)

    body = error_body(raised.value, BAD_REQUEST)
    assert set(body) == {"message", "servedBy"}
    assert body["message"].startswith(message_start), body["message"]
    assert (body["servedBy"]["alias"], body["servedBy"]["version"]) == ("live", "7")
    assert dynamodb_calls == []
    assert table_items(dynamodb) == before


def test_bad_request_names_the_stage_that_rejected_it(handler: ModuleType) -> None:
    with pytest.raises(handler.BadRequestError) as raised:
        invoke(handler, api_event("GET", stage="staging", query={"limit": "0"}), CANARY)

    served_by = error_body(raised.value, BAD_REQUEST)["servedBy"]
    assert served_by == {"stage": "staging", "alias": "canary", "version": "8"}


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
]


@pytest.mark.parametrize("failure", RETRYABLE_FAILURES)
def test_retryable_dynamodb_failure_is_unavailable_and_writes_nothing(
    handler: ModuleType,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
) -> None:
    monkeypatch.setattr(handler.dynamodb_client(), failure.method, raising(failure.error))
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    with pytest.raises(handler.ServiceUnavailableError) as raised:
        invoke(handler, failure.event())

    body = error_body(raised.value, UNAVAILABLE)
    assert "retry" in body["message"]
    assert body["servedBy"] == LIVE_PROD
    assert table_items(dynamodb) == []
    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.ERROR, 503)
    assert log.exc_info is not None
    assert log.exc_info[1] is failure.error


def test_idempotency_record_vanishing_before_replay_is_unavailable(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    post(handler, {"order": 42}, idempotency_key="order-42")
    before = table_items(dynamodb)
    monkeypatch.setattr(handler.dynamodb_client(), "get_item", lambda **_: {})

    with pytest.raises(handler.ServiceUnavailableError) as raised:
        post(handler, {"order": 42}, idempotency_key="order-42")

    assert error_body(raised.value, UNAVAILABLE)["servedBy"] == LIVE_PROD
    assert table_items(dynamodb) == before


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
    ],
)
def test_non_retryable_dynamodb_failure_is_raised_as_is(
    handler: ModuleType,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Failure,
) -> None:
    monkeypatch.setattr(handler.dynamodb_client(), failure.method, raising(failure.error))
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        invoke(handler, failure.event())

    assert raised.value is failure.error
    assert not str(raised.value).startswith((BAD_REQUEST, UNAVAILABLE))
    assert table_items(dynamodb) == []
    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.ERROR, 500)
    assert log.exc_info is not None


def test_missing_table_configuration_is_an_internal_error(
    handler: ModuleType, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABLE_NAME")

    with pytest.raises(KeyError) as raised:
        post(handler, {"order": 42})

    assert not str(raised.value).startswith((BAD_REQUEST, UNAVAILABLE))
    assert table_items(dynamodb) == []


# --- DynamoDB access --------------------------------------------------------------------


def test_handler_reads_with_query_and_never_scans(
    handler: ModuleType, dynamodb_calls: list[str]
) -> None:
    post(handler, {"n": 1})
    post(handler, {"n": 2}, idempotency_key="k")
    post(handler, {"n": 2}, idempotency_key="k")
    listing = get(handler, {"limit": "1"})
    get(handler, {"limit": "1", "next": listing["next"]})

    assert dynamodb_calls == [
        "PutItem",
        "TransactWriteItems",
        "TransactWriteItems",
        "GetItem",
        "Query",
        "Query",
    ]


def test_scan_guard_on_the_handlers_client_is_armed(handler: ModuleType) -> None:
    with pytest.raises(AssertionError, match="must not Scan"):
        handler.dynamodb_client().scan(TableName=TABLE_NAME)


def test_client_is_created_once_with_standard_retries_within_the_timeout(
    handler: ModuleType,
) -> None:
    client = handler.dynamodb_client()

    assert handler.dynamodb_client() is client
    config = client.meta.config
    assert config.retries["mode"] == "standard"
    worst_case_seconds = (config.connect_timeout + config.read_timeout) * config.retries[
        "total_max_attempts"
    ]
    assert worst_case_seconds < 10


# --- Logging ----------------------------------------------------------------------------


def test_each_served_request_logs_one_info_line_with_its_context(
    handler: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    invoke(handler, with_fields(post_event({"n": 1}), isCanaryRequest="true"), CANARY)

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


def test_rejected_request_logs_one_info_line_with_the_reason(
    handler: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HANDLER_LOGGER)

    with pytest.raises(handler.BadRequestError):
        get(handler, {"limit": "0"})

    [log] = log_records(caplog)
    assert (log.levelno, log.__dict__["status"]) == (logging.INFO, 400)
    assert log.__dict__["reason"] == "limit must be an integer from 1 to 100, got '0'"
