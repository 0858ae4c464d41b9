"""Event Logger: records JSON events per API Gateway stage and lists them back.

API Gateway invokes this function through a non-proxy Lambda integration whose default
response sets the HTTP status from the reply, so the function returns
``{"statusCode": <int>, "body": <object>}`` both for a success (200) and for a client error
(400, 404, 413, 422). Only server-side failures raise: a message starting with
UNAVAILABLE_PREFIX is answered 503 with the JSON after it, anything else 500 without the
message. Lambda's Errors metric, and every alarm built on it, therefore counts failures and
never client mistakes. Every body carries servedBy, so a canary alias can be told apart from
the stable one.

What POST accepts, GET gives back unchanged through the Lambda runtime's marshalling
(python3.12+ awslambdaric: ``ensure_ascii=False`` JSON, then UTF-8) and the integration
response's ``$input.json``, which reads numbers as Java doubles. A body that could not make
that trip (a lone surrogate, a duplicate key, nesting deeper than MAX_DEPTH, a number a
double cannot hold) is refused with a 400 that says why, rather than stored and changed.

Storage: a stage's events are spread over EVENT_SHARDS partitions, so no single DynamoDB
partition caps a stage (1,000 write units/s each); GET merges the shards newest-first and its
``next`` token carries every shard's position. Idempotency records live in partitions of
their own, one per (stage, caller, key).

Evidence for the release tool: every invocation prints one CloudWatch embedded metric format
line (see ``publish_metrics``), from which CloudWatch makes high-resolution per-alias and
per-version Requests, Failures and Duration metrics, so that a canary can be judged on
10-second periods rather than Lambda's minutes.
"""

import base64
import binascii
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, Protocol, TypedDict

import boto3
import botocore.exceptions
from botocore.config import Config

UNAVAILABLE_PREFIX = "[Unavailable] "

MAX_BODY_BYTES = 64 * 1024
# Deep enough for any reasonable event, and far inside every limit on the way back: CPython's
# recursion limit (1,000) that the runtime's encoder and json.loads run under, and the 32
# levels DynamoDB allows in a map, should events ever be stored as maps rather than text.
MAX_DEPTH = 32
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# A GET reply must stay under Lambda's 6 MB synchronous response limit (Lambda quotas:
# "Invocation payload (request and response): 6 MB each for synchronous"); a page is cut
# short, with a next token, before its events reach this many bytes as the runtime writes them.
MAX_PAGE_BYTES = 5 * 1024 * 1024
IDEMPOTENCY_TTL = timedelta(hours=24)
# Each GET queries every shard, and its next token holds one ~64-character position per shard,
# which must fit API Gateway's 10,240-byte limit on the request line and headers. 40 shards
# also reach the default on-demand table quota: 40 x 1,000 WRU/s = 40,000 WRU/s.
MAX_SHARDS = 40

# Retries are ours rather than botocore's so that each one can be weighed against the time the
# invocation has left (context.get_remaining_time_in_millis()): the chain of calls must end
# with a reply, 503 included, before the function's timeout turns it into an opaque 500.
MAX_ATTEMPTS = 3
# The time one attempt may take (connect + read timeouts), chosen per container from the time
# the invocation has left so that about three attempts fit: a 10 s function gets 3 s attempts
# (1 s connect, 2 s read), a 1 s function 0.3 s ones. DynamoDB answers in milliseconds, so a
# wait of seconds means the connection is lost and a fresh attempt is the better bet.
ATTEMPT_TIERS_SECONDS = (0.3, 0.75, 1.5, 3.0)
# Time kept back after the last DynamoDB attempt, to build the reply and hand it to the runtime.
REPLY_RESERVE_MS = 250
BACKOFF_BASE_MS = 25
BACKOFF_CAP_MS = 500

# The function's own metrics, published through CloudWatch's embedded metric format (EMF):
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
# A JSON line on stdout is all Lambda needs ("Lambda automatically sends everything that your
# function writes to standard output to a CloudWatch Logs log group, and CloudWatch Logs
# extracts metrics from any log events that follow the embedded metric format specification",
# CloudWatch_Embedded_Metric_Format_Lambda.html): no agent, no API call on the request's path
# and no permission beyond the log group the function already writes. release/aws.py reads
# them under the same names (FUNCTION_NAMESPACE there).
METRICS_NAMESPACE = "EventLogger/Canary"
# Lambda's own dimension names and values (FunctionName, Resource = "<name>:<alias>",
# ExecutedVersion), so that one side of the traffic has the same dimensions in AWS/Lambda and
# here (versioned_lambda_api.metrics.Traffic.dimensions): the alias alone for a stage canary,
# the alias and the version that ran it for a weighted alias. Each dimension set is a metric of
# its own for every distinct value, which is what CloudWatch bills (README, "Per-version
# metrics").
_METRIC_DIMENSIONS = (("FunctionName", "Resource"), ("FunctionName", "Resource", "ExecutedVersion"))
# StorageResolution 1 stores points to the second, so periods of 10 seconds can be asked for.
_METRICS_DIRECTIVE = {
    "Namespace": METRICS_NAMESPACE,
    "Dimensions": [list(names) for names in _METRIC_DIMENSIONS],
    "Metrics": [
        {"Name": "Requests", "Unit": "Count", "StorageResolution": 1},
        {"Name": "Failures", "Unit": "Count", "StorageResolution": 1},
        {"Name": "Duration", "Unit": "Milliseconds", "StorageResolution": 1},
    ],
}

# API Gateway's own stage-name rule. It keeps "#" out of stage names, so the partitions of one
# stage ("<stage>", "<stage>#1", ...) never meet another stage's or an idempotency record's.
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,128}")
# Bounded so that int() is never handed a string longer than Python will convert.
_LIMIT_DIGITS = re.compile(r"[0-9]{1,3}")
_SETTING_DIGITS = re.compile(r"[0-9]{1,6}")
_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,8192}")
# An event's sort key: its receivedAt and id, so that sort order is time order.
_SORT_KEY = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
    r"#[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
# Above every event id, so "<time>#<this>" bounds a listing at a moment, that moment included.
_LAST_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_RECEIVED_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        # The same ClientRequestToken is still being applied: our own earlier attempt.
        "TransactionInProgressException",
    }
)
_RETRYABLE_CANCELLATION_CODES = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError"}
)
# ConnectionError covers connect timeouts and unreachable endpoints; HTTPClientError read
# timeouts and connections closed mid-response.
_RETRYABLE_TRANSPORT_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)

logger = logging.getLogger(__name__)


class ServedBy(TypedDict):
    stage: str
    alias: str
    version: str


class LambdaContext(Protocol):
    invoked_function_arn: str
    function_version: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Request:
    stage: str
    method: str
    resource_path: str
    request_id: str
    body_base64: str
    query: Mapping[str, object]
    idempotency_key: str
    caller_id: str


@dataclass(frozen=True)
class Settings:
    table_name: str
    shards: int
    retention: timedelta | None


class RequestRefusedError(Exception):
    """The request cannot succeed until the client changes it; answered with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TransientError(Exception):
    """The request failed for a reason that retrying the same request may clear."""


class ConfigurationError(Exception):
    """The function's environment is wrong; every request fails until the stack is fixed."""


class ServiceUnavailableError(Exception):
    def __init__(self, served_by: ServedBy) -> None:
        message = "the event store is temporarily unavailable; retry the request shortly"
        body = json.dumps({"message": message, "servedBy": served_by})
        super().__init__(UNAVAILABLE_PREFIX + body)


@functools.cache
def dynamodb_client(attempt_seconds: float) -> Any:
    """The container's DynamoDB client for attempts of ``attempt_seconds``, created on first use.

    A container serves one function version, whose timeout never changes, so in practice it
    creates one client; the retries are left to ``EventStore.call``.
    """
    config = Config(
        connect_timeout=attempt_seconds / 3,
        read_timeout=attempt_seconds * 2 / 3,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return boto3.client("dynamodb", config=config)


def attempt_seconds(remaining_ms: int) -> float:
    """The largest attempt tier of which three fit in ``remaining_ms``, or the smallest."""
    fitting = [tier for tier in ATTEMPT_TIERS_SECONDS if tier * 3 * 1000 <= remaining_ms]
    return fitting[-1] if fitting else ATTEMPT_TIERS_SECONDS[0]


def handler(event: object, context: LambdaContext) -> dict[str, Any]:
    """Answer the request, and publish its metrics whether it was answered or raised.

    Failures counts what Lambda's Errors counts, an invocation that raised (the 500 and 503
    paths), and never a client's 4xx reply. The metrics are printed in ``finally``, so a raised
    failure is counted before the exception reaches the runtime; an invocation that times out
    or kills the runtime never gets there, which is why the release tool still reads Lambda's
    Errors for the failures this function could not see.
    """
    started_ms = time.time() * 1000
    started = time.perf_counter()
    failed = True
    try:
        reply = _respond(event, context)
        failed = False
        return reply
    finally:
        publish_metrics(context, started_ms, (time.perf_counter() - started) * 1000, failed)


def publish_metrics(
    context: LambdaContext, started_ms: float, duration_ms: float, failed: bool
) -> None:
    """Print the invocation's embedded-metric-format line: one compact JSON object on one line
    of stdout, which is what CloudWatch Logs takes as one log event to extract metrics from.

    Printed rather than logged: Lambda's JSON log format wraps what the logging module writes in
    a record of its own, while a line printed to stdout reaches the log group as it is (Lambda
    reads a JSON line without a "level" as INFO, which the function's application log level
    keeps). The timestamp is the invocation's start, so a request counts in the period it
    arrived in.
    """
    # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    function_name = context.invoked_function_arn.split(":")[6]
    document = {
        "_aws": {"Timestamp": int(started_ms), "CloudWatchMetrics": [_METRICS_DIRECTIVE]},
        "FunctionName": function_name,
        "Resource": f"{function_name}:{_alias(context.invoked_function_arn)}",
        "ExecutedVersion": context.function_version,
        "Requests": 1,
        "Failures": int(failed),
        "Duration": round(duration_ms, 2),
    }
    print(json.dumps(document, separators=(",", ":")), flush=True)


def _respond(event: object, context: LambdaContext) -> dict[str, Any]:
    stage = _text_or_empty(event, "stage")
    served_by = ServedBy(
        # Only a valid stage name is echoed: servedBy is in every reply, and a reply holding
        # text that UTF-8 cannot encode would crash the runtime.
        stage=stage if _STAGE_NAME.fullmatch(stage) else "",
        alias=_alias(context.invoked_function_arn),
        version=context.function_version,
    )
    log_fields: dict[str, object] = {
        "servedBy": served_by,
        "method": _text_or_empty(event, "method"),
        "resourcePath": _text_or_empty(event, "resourcePath"),
        # Named apiRequestId because Lambda's JSON log format already uses requestId
        # for the invocation id.
        "apiRequestId": _text_or_empty(event, "requestId"),
        "isCanaryRequest": _text_or_empty(event, "isCanaryRequest"),
    }
    raw_key = event.get("idempotencyKey") if isinstance(event, dict) else None
    if isinstance(raw_key, str) and raw_key:
        # Keys may carry personal data (user-<email>-order); a digest is enough to correlate.
        key_bytes = raw_key.encode("utf-8", "surrogatepass")
        log_fields["idempotencyKeySha256"] = hashlib.sha256(key_bytes).hexdigest()[:12]
    try:
        request = _parse_request(event)
        store = EventStore(_settings(), context)
        body = _serve(request, served_by, store)
    except RequestRefusedError as refusal:
        status, reason = refusal.status, str(refusal)
        logger.info("request refused", extra={**log_fields, "status": status, "reason": reason})
        return {"statusCode": status, "body": {"message": reason, "servedBy": served_by}}
    except Exception as error:
        if isinstance(error, TransientError) or _is_retryable_aws_error(error):
            logger.exception("event store unavailable", extra={**log_fields, "status": 503})
            raise ServiceUnavailableError(served_by) from error
        logger.exception("request failed", extra={**log_fields, "status": 500})
        raise
    logger.info("request served", extra={**log_fields, "status": 200})
    return {"statusCode": 200, "body": body}


def _settings() -> Settings:
    table_name = os.environ.get("TABLE_NAME", "")
    if not table_name:
        raise ConfigurationError("TABLE_NAME is not set")
    shards = _whole_number_setting("EVENT_SHARDS", 1, MAX_SHARDS)
    retention_days = _whole_number_setting("EVENT_RETENTION_DAYS", 1, 36_500)
    return Settings(
        table_name=table_name,
        shards=shards or 1,
        retention=timedelta(days=retention_days) if retention_days else None,
    )


def _whole_number_setting(name: str, low: int, high: int) -> int | None:
    """An integer environment variable in [low, high], or None when unset or empty."""
    text = os.environ.get(name, "")
    if not text:
        return None
    if _SETTING_DIGITS.fullmatch(text) and low <= int(text) <= high:
        return int(text)
    raise ConfigurationError(f"{name} must be an integer from {low} to {high}, got {text!r}")


def _parse_request(event: object) -> Request:
    if not isinstance(event, dict):
        raise RequestRefusedError(f"event must be a JSON object, got {type(event).__name__}")
    stage = _required_text(event, "stage")
    if not _STAGE_NAME.fullmatch(stage):
        raise RequestRefusedError(
            f"stage must be 1 to 128 letters, digits, '-' or '_', got {_excerpt(stage)}"
        )
    query = event.get("query") or {}
    if not isinstance(query, dict):
        raise RequestRefusedError(f"event field 'query' must be an object, got {_excerpt(query)}")
    return Request(
        stage=stage,
        method=_required_text(event, "method"),
        resource_path=_required_text(event, "resourcePath"),
        request_id=_text_field(event, "requestId", "event field"),
        body_base64=_text_field(event, "bodyBase64", "event field"),
        query=query,
        idempotency_key=_text_field(event, "idempotencyKey", "event field"),
        caller_id=_text_field(event, "callerId", "event field"),
    )


def _required_text(event: Mapping[str, object], name: str) -> str:
    value = _text_field(event, name, "event field")
    if not value:
        raise RequestRefusedError(f"event has no {name}")
    return value


def _text_field(fields: Mapping[str, object], name: str, kind: str) -> str:
    """Read a string field, treating a missing or null one as empty.

    A lone surrogate is refused here: stored, it would make every later reply that holds it
    unencodable.
    """
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequestRefusedError(f"{kind} {name!r} must be a string, got {_excerpt(value)}")
    if _LONE_SURROGATE.search(value):
        raise RequestRefusedError(f"{kind} {name!r} holds a lone UTF-16 surrogate")
    return value


def _text_or_empty(event: object, name: str) -> str:
    """Read a field for logging and servedBy, where an unusable event must not raise."""
    value = event.get(name) if isinstance(event, dict) else None
    if not isinstance(value, str):
        return ""
    # A lone surrogate would make the log line unencodable; write it as its escape instead.
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _excerpt(value: object) -> str:
    """repr() of a client's value, cut short: messages echo input but must stay small."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _alias(invoked_function_arn: str) -> str:
    # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    parts = invoked_function_arn.split(":")
    return parts[7] if len(parts) == 8 else "$LATEST"


def _serve(request: Request, served_by: ServedBy, store: "EventStore") -> dict[str, Any]:
    route = (request.method, request.resource_path)
    if route == ("POST", "/events"):
        return _record_event(request, served_by, store)
    if route == ("GET", "/events"):
        return _list_events(request, served_by, store)
    raise RequestRefusedError(
        f"no route {_excerpt(request.method)} {_excerpt(request.resource_path)}; "
        "this API serves POST /events and GET /events",
        status=404,
    )


# --- DynamoDB ---------------------------------------------------------------------------


class EventStore:
    """The table, reached through calls that retry while the invocation has time left."""

    def __init__(self, settings: Settings, context: LambdaContext) -> None:
        self.settings = settings
        self._context = context
        seconds = attempt_seconds(context.get_remaining_time_in_millis())
        self._attempt_ms = seconds * 1000
        self.client = dynamodb_client(seconds)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call a DynamoDB operation, retrying retryable failures while time allows.

        A retryable failure that cannot be retried in time raises TransientError (503).
        """
        attempt = 1
        while True:
            self._require_time_for_attempt(after_ms=0)
            try:
                response: dict[str, Any] = getattr(self.client, operation)(**params)
            except Exception as error:
                if attempt == MAX_ATTEMPTS or not _is_retryable_aws_error(error):
                    raise
                # Full jitter, so that callers throttled together do not retry together.
                delay_ms = secrets.randbelow(min(BACKOFF_CAP_MS, BACKOFF_BASE_MS << attempt) + 1)
                self._require_time_for_attempt(after_ms=delay_ms, cause=error)
                time.sleep(delay_ms / 1000)
                attempt += 1
            else:
                return response

    def _require_time_for_attempt(self, after_ms: int, cause: Exception | None = None) -> None:
        remaining_ms = self._context.get_remaining_time_in_millis()
        if remaining_ms - after_ms < self._attempt_ms + REPLY_RESERVE_MS:
            raise TransientError(
                f"{remaining_ms} ms left: too little for another DynamoDB attempt"
            ) from cause


def _is_retryable_aws_error(error: Exception) -> bool:
    if isinstance(error, _RETRYABLE_TRANSPORT_ERRORS):
        return True
    if not isinstance(error, botocore.exceptions.ClientError):
        return False
    code = _error_code(error)
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") in _RETRYABLE_CANCELLATION_CODES for reason in reasons)
    return code in _RETRYABLE_ERROR_CODES


def _error_code(error: botocore.exceptions.ClientError) -> str | None:
    code: str | None = error.response.get("Error", {}).get("Code")
    return code


def _partition(stage: str, shard: int) -> str:
    # Shard 0 keeps the partition key events had before sharding, so those stay listed and a
    # stack with one shard stores exactly as before.
    return stage if shard == 0 else f"{stage}#{shard}"


# --- POST /events -----------------------------------------------------------------------


def _record_event(request: Request, served_by: ServedBy, store: EventStore) -> dict[str, Any]:
    idempotency_key = request.idempotency_key
    if idempotency_key and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        # The key itself is not echoed: it may carry personal data, and reasons are logged.
        raise RequestRefusedError(
            "Idempotency-Key must be 1 to 128 printable ASCII characters, "
            f"got {len(idempotency_key)} characters"
        )
    body = _decode_body(request.body_base64)
    text = _body_text(body)
    parse_event_data(text)

    settings = store.settings
    now = datetime.now(UTC)
    received_at = now.strftime(_RECEIVED_AT_FORMAT)
    event_id = str(uuid.uuid4())
    reply: dict[str, Any] = {
        "id": event_id,
        "receivedAt": received_at,
        "servedBy": served_by,
        "replayed": False,
    }
    event_item = {
        "pk": {"S": _partition(request.stage, secrets.randbelow(settings.shards))},
        "sk": {"S": f"{received_at}#{event_id}"},
        "id": {"S": event_id},
        "stage": {"S": request.stage},
        "alias": {"S": served_by["alias"]},
        "version": {"S": served_by["version"]},
        "requestId": {"S": request.request_id},
        "callerId": {"S": request.caller_id},
        "receivedAt": {"S": received_at},
        # The body as sent, already proven to parse back to the same values. Text rather than
        # a map, because DynamoDB numbers stop at 38 digits; as sent rather than re-encoded,
        # so that the item is never larger than the body (re-encoding 1e15 writes 18 bytes).
        "data": {"S": text},
    }
    if settings.retention is not None:
        expires_at = int((now + settings.retention).timestamp())
        event_item["expiresAt"] = {"N": str(expires_at)}
    # The event's sort key holds a fresh UUID, so the condition fails only when our own
    # earlier attempt was applied and its response lost (then the item returned is ours).
    event_put = {
        "TableName": settings.table_name,
        "Item": event_item,
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    if not idempotency_key:
        try:
            store.call("put_item", **event_put, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except botocore.exceptions.ClientError as error:
            is_ours = error.response.get("Item") == event_item
            if _error_code(error) != "ConditionalCheckFailedException" or not is_ours:
                raise
        return reply

    # The raw bytes are hashed because a genuine retry resends them unchanged.
    body_sha256 = hashlib.sha256(body).hexdigest()
    scope = json.dumps([request.stage, request.caller_id, idempotency_key])
    scope_sha256 = hashlib.sha256(scope.encode()).hexdigest()
    record_put = {
        "TableName": settings.table_name,
        "Item": {
            # One partition per key: idempotent writes spread like the keys themselves.
            "pk": {"S": f"idempotency#{scope_sha256}"},
            "sk": {"S": "idempotency"},
            "reply": {"S": json.dumps(reply, separators=(",", ":"))},
            "bodySha256": {"S": body_sha256},
            "expiresAt": {"N": str(int((now + IDEMPOTENCY_TTL).timestamp()))},
        },
        # DynamoDB's TTL deletes expired items only eventually, so an expired record must
        # not block a new write under the same key.
        "ConditionExpression": "attribute_not_exists(pk) OR expiresAt < :now",
        "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    try:
        store.call(
            "transact_write_items",
            TransactItems=[{"Put": event_put}, {"Put": record_put}],
            # One token for all our attempts: DynamoDB applies a retried transaction once.
            ClientRequestToken=str(uuid.uuid4()),
        )
    except botocore.exceptions.ClientError as error:
        record = _record_that_blocked(error)
        if record is None:
            raise
        return _replay(record, reply, body_sha256)
    return reply


def _record_that_blocked(error: botocore.exceptions.ClientError) -> dict[str, Any] | None:
    """The idempotency record whose condition cancelled the transaction, if that is why."""
    if _error_code(error) != "TransactionCanceledException":
        return None
    reasons = error.response.get("CancellationReasons", [])
    # Reasons are listed in TransactItems order: the event first, the record second.
    if len(reasons) != 2 or reasons[1].get("Code") != "ConditionalCheckFailed":
        return None
    record: dict[str, Any] | None = reasons[1].get("Item")
    return record


def _replay(record: Mapping[str, Any], reply: dict[str, Any], body_sha256: str) -> dict[str, Any]:
    if record["bodySha256"]["S"] != body_sha256:
        # 422, as the IETF Idempotency-Key draft (draft-ietf-httpapi-idempotency-key-header)
        # prescribes for a key reused with a different payload; it keeps 409 for a first
        # request still in progress, which cannot happen here as the write is one transaction.
        raise RequestRefusedError(
            "this Idempotency-Key was already used with a different body; "
            "use a new key for a new event",
            status=422,
        )
    first_reply: dict[str, Any] = json.loads(record["reply"]["S"])
    if first_reply["id"] == reply["id"]:
        # Our own earlier attempt wrote it and its response was lost: this is the first reply.
        return reply
    return {**first_reply, "replayed": True}


def _decode_body(body_base64: str) -> bytes:
    try:
        body = base64.b64decode(body_base64, validate=True)
    except binascii.Error as error:
        raise RequestRefusedError(f"bodyBase64 is not valid base64: {error}") from error
    if not body:
        raise RequestRefusedError("body is empty; send a JSON object")
    if len(body) > MAX_BODY_BYTES:
        raise RequestRefusedError(
            f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}", status=413
        )
    return body


def _body_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestRefusedError(
            f"body is not valid UTF-8: {error.reason} at byte {error.start}"
        ) from error


# --- The event's JSON -------------------------------------------------------------------


def parse_event_data(text: str) -> dict[str, Any]:
    """Parse an event body, refusing whatever would not read back exactly as sent."""
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object_without_duplicate_keys,
            parse_constant=_refuse_constant,
            parse_float=_float_held_exactly,
            parse_int=_convertible_int,
        )
    except json.JSONDecodeError as error:
        raise RequestRefusedError(
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except RecursionError as error:
        raise RequestRefusedError(_too_deep()) from error
    if not isinstance(data, dict):
        raise RequestRefusedError(f"body must be a JSON object, got {_json_type_name(data)}")
    if not data:
        # API Gateway hands the template an empty request body as "{}", so this is also
        # what a POST without a body looks like by the time it gets here.
        raise RequestRefusedError("body is an empty JSON object; an event needs at least one field")
    _check_tree(data)
    return data


def _check_tree(data: dict[str, Any]) -> None:
    """Refuse nesting beyond MAX_DEPTH and lone surrogates in keys and strings.

    json.loads turns a "\\ud800" escape without its pair into a lone surrogate, which the
    runtime cannot encode as UTF-8 when it writes the reply.
    """
    pending: list[tuple[object, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise RequestRefusedError(_too_deep())
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _refuse_lone_surrogate(key, "key")
                pending.append((item, depth + 1))
        elif isinstance(value, str):
            _refuse_lone_surrogate(value, "string")


def _too_deep() -> str:
    return f"body is nested more than {MAX_DEPTH} levels deep; the limit is {MAX_DEPTH}"


def _refuse_lone_surrogate(text: str, kind: str) -> None:
    found = _LONE_SURROGATE.search(text)
    if found:
        raise RequestRefusedError(
            f"body has a {kind} holding a lone UTF-16 surrogate "
            f"(\\u{ord(found.group()):04x}), which is no character and cannot be stored"
        )


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RequestRefusedError(
                    f"body has the key {_excerpt(key)} twice in one object; only one would be kept"
                )
            seen.add(key)
    return obj


# Python's json module accepts NaN and Infinity, which are not JSON, and raises a bare
# ValueError for integers longer than sys.get_int_max_str_digits(); these hooks make them 400s.
def _refuse_constant(constant: str) -> NoReturn:
    raise RequestRefusedError(f"body is not valid JSON: {constant} is not a JSON value")


def _float_held_exactly(literal: str) -> float:
    """The literal as a double, if that double writes back as the same number.

    API Gateway's $input.json reads numbers as doubles, so any other number would come back
    changed. The test is against the double's shortest decimal form (repr), what the runtime
    writes: 0.1 passes, 1234567890.12345678901234567891 (a double keeps 17 digits), 1e-400
    (underflows to 0) and 1e999 (overflows) do not.
    """
    value = float(literal)
    try:
        exact = Decimal(repr(value)) == Decimal(literal)
    except InvalidOperation:  # an exponent beyond Decimal's range, far beyond a double's
        exact = False
    if not exact:
        shown = literal if len(literal) <= 40 else literal[:37] + "..."
        raise RequestRefusedError(
            f"body has the number {shown}, which a 64-bit float (how the API reads numbers "
            "back) cannot hold exactly; send it as a string to keep every digit"
        )
    return value


def _convertible_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError as error:
        digits = len(literal.lstrip("-"))
        raise RequestRefusedError(
            f"body has an integer with {digits} digits; the limit is {sys.get_int_max_str_digits()}"
        ) from error


def _json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "number"


# --- GET /events ------------------------------------------------------------------------


def _list_events(request: Request, served_by: ServedBy, store: EventStore) -> dict[str, Any]:
    settings = store.settings
    limit = _parse_limit(_text_field(request.query, "limit", "query parameter"))
    now = datetime.now(UTC)
    token = _text_field(request.query, "next", "query parameter")
    # Each shard's position: its next events are those whose sort key is below it. A new
    # listing starts every shard at this moment, so events written while a client pages
    # through it wait for the next listing instead of appearing out of order.
    positions = (
        decode_page_token(token, request.stage, settings.shards)
        if token
        else [f"{now.strftime(_RECEIVED_AT_FORMAT)}#{_LAST_ID}"] * settings.shards
    )

    candidates: list[tuple[str, int, dict[str, Any]]] = []
    # Events below the newest "last evaluated" key of a shard that has more may not be taken:
    # that shard's unread events could be newer than them.
    floor = ""
    unfinished: set[int] = set()
    for shard, position in enumerate(positions):
        response = store.call(
            "query",
            TableName=settings.table_name,
            KeyConditionExpression="pk = :pk AND sk < :before",
            ExpressionAttributeValues={
                ":pk": {"S": _partition(request.stage, shard)},
                ":before": {"S": position},
            },
            ScanIndexForward=False,
            Limit=limit,
        )
        candidates.extend((item["sk"]["S"], shard, item) for item in response["Items"])
        last_key = response.get("LastEvaluatedKey")
        if last_key:
            unfinished.add(shard)
            floor = max(floor, last_key["sk"]["S"])
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)

    events: list[dict[str, Any]] = []
    taken = 0
    page_bytes = 0
    epoch_now = now.timestamp()
    for sort_key, shard, item in candidates:
        if taken == limit or sort_key < floor:
            break
        view = _event_view(item)
        # Measured as the runtime writes it: default separators, non-ASCII unescaped.
        size = len(json.dumps(view, ensure_ascii=False).encode())
        if taken and page_bytes + size > MAX_PAGE_BYTES:
            break
        taken += 1
        positions[shard] = sort_key
        # DynamoDB deletes expired items only eventually; the retention is what clients see.
        expires_at = item.get("expiresAt")
        if expires_at is None or int(expires_at["N"]) > epoch_now:
            events.append(view)
            page_bytes += size
    finished = not unfinished and taken == len(candidates)
    return {
        "events": events,
        "next": None if finished else _encode_page_token(request.stage, positions),
        "servedBy": served_by,
    }


def _event_view(item: Mapping[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": item["id"]["S"],
        "receivedAt": item["receivedAt"]["S"],
        "stage": item["stage"]["S"],
        "alias": item["alias"]["S"],
        "version": item["version"]["S"],
        "requestId": item["requestId"]["S"],
    }
    try:
        view["data"] = parse_event_data(item["data"]["S"])
    except RequestRefusedError as problem:
        # Only events stored before POST checked bodies this way can fail here. Returning
        # their data would break the reply for the whole page, and every page after it.
        view["data"] = None
        view["dataProblem"] = f"stored by an earlier version and unreadable: {problem}"
    return view


def _parse_limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if _LIMIT_DIGITS.fullmatch(text) and 1 <= int(text) <= MAX_LIMIT:
        return int(text)
    raise RequestRefusedError(
        f"limit must be an integer from 1 to {MAX_LIMIT}, got {_excerpt(text)}"
    )


def _encode_page_token(stage: str, positions: list[str]) -> str:
    payload = json.dumps({"stage": stage, "before": positions}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, stage: str, shards: int) -> list[str]:
    """The shard positions in a next token, refusing anything but a token we issued."""
    problem = "next must be the unchanged next value of an earlier GET /events reply"
    if not _PAGE_TOKEN.fullmatch(token):
        raise RequestRefusedError(f"{problem}; it is not unpadded URL-safe base64")
    try:
        payload_bytes = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except binascii.Error as error:
        raise RequestRefusedError(f"{problem}; it is not valid base64: {error}") from error
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise RequestRefusedError(f"{problem}; it does not decode to JSON") from error
    if (
        isinstance(payload, dict)
        and payload.keys() == {"sk"}
        and isinstance(payload["sk"], str)
        and _SORT_KEY.fullmatch(payload["sk"])
    ):
        # Issued by the version before sharding (a canary may page on from its live alias's
        # pages), which listed shard 0 alone: every shard continues below that position.
        return [payload["sk"]] * shards
    if not (
        isinstance(payload, dict)
        and payload.keys() == {"stage", "before"}
        and isinstance(payload["before"], list)
        and all(
            isinstance(position, str) and _SORT_KEY.fullmatch(position)
            for position in payload["before"]
        )
    ):
        raise RequestRefusedError(f"{problem}; its content is not a page position")
    if payload["stage"] != stage:
        raise RequestRefusedError(f"{problem}; it belongs to another stage's listing")
    positions: list[str] = payload["before"]
    if len(positions) != shards:
        raise RequestRefusedError(
            f"{problem}; it was issued when this stage had {len(positions)} event shards and "
            f"it now has {shards}: start the listing again without next"
        )
    return positions
