"""Event Logger: records JSON events per API Gateway stage and lists them back.

API Gateway invokes this function through a non-proxy Lambda integration, so a
reply is returned as a plain dict while a failure has to be raised: API Gateway
picks the HTTP status by matching the Lambda error message against
BAD_REQUEST_PREFIX (400) and UNAVAILABLE_PREFIX (503); any other message is a
500 whose text never reaches the client. Every reply and every 400/503 body
carries servedBy, so a canary alias can be told apart from the stable one.
"""

import base64
import functools
import hashlib
import json
import logging
import math
import os
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, Protocol, TypedDict

import boto3
import botocore.exceptions
from botocore.config import Config

BAD_REQUEST_PREFIX = "[BadRequest] "
UNAVAILABLE_PREFIX = "[Unavailable] "

MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
IDEMPOTENCY_TTL = timedelta(hours=24)

# API Gateway's own stage-name rule. Enforcing it keeps "#" out of stage names, so an
# event partition can never be confused with an "idempotency#<stage>" partition.
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,128}")
# Bounded so that int() is never handed a string longer than Python will convert.
_LIMIT_DIGITS = re.compile(r"[0-9]{1,3}")
_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_MAX_SORT_KEY_BYTES = 1024  # DynamoDB rejects longer sort keys in ExclusiveStartKey.

_RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
_RETRYABLE_CANCELLATION_CODES = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError"}
)
# botocore's ConnectionError also covers connect timeouts and unreachable endpoints.
_RETRYABLE_TRANSPORT_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)

# DynamoDB answers in milliseconds, so waiting seconds only means the connection is lost.
# Short timeouts let the standard-mode retries run and still report 503 well before the
# ~10 s function timeout would turn the failure into an opaque 500.
_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 3},
)

logger = logging.getLogger(__name__)


class ServedBy(TypedDict):
    stage: str
    alias: str
    version: str


class LambdaContext(Protocol):
    invoked_function_arn: str
    function_version: str


@dataclass(frozen=True)
class Request:
    stage: str
    method: str
    resource_path: str
    request_id: str
    body_base64: str
    query: Mapping[str, object]
    idempotency_key: str


class InvalidRequestError(Exception):
    """The request cannot succeed until the client changes it."""


class TransientError(Exception):
    """The request failed for a reason that retrying the same request may clear."""


class BadRequestError(Exception):
    def __init__(self, message: str, served_by: ServedBy) -> None:
        super().__init__(BAD_REQUEST_PREFIX + _error_body(message, served_by))


class ServiceUnavailableError(Exception):
    def __init__(self, served_by: ServedBy) -> None:
        message = "the event store is temporarily unavailable; retry the request shortly"
        super().__init__(UNAVAILABLE_PREFIX + _error_body(message, served_by))


@functools.cache
def dynamodb_client() -> Any:
    """Return the container-wide DynamoDB client, created on first use."""
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)


def handler(event: object, context: LambdaContext) -> dict[str, Any]:
    served_by = ServedBy(
        stage=_text_or_empty(event, "stage"),
        alias=_alias(context.invoked_function_arn),
        version=context.function_version,
    )
    log_fields = {
        "servedBy": served_by,
        "method": _text_or_empty(event, "method"),
        "resourcePath": _text_or_empty(event, "resourcePath"),
        # Named apiRequestId because Lambda's JSON log format already uses requestId
        # for the invocation id.
        "apiRequestId": _text_or_empty(event, "requestId"),
        "isCanaryRequest": _text_or_empty(event, "isCanaryRequest"),
    }
    try:
        reply = _serve(_parse_request(event), served_by)
    except InvalidRequestError as error:
        logger.info("request rejected", extra={**log_fields, "status": 400, "reason": str(error)})
        raise BadRequestError(str(error), served_by) from error
    except Exception as error:
        if isinstance(error, TransientError) or _is_retryable_aws_error(error):
            logger.exception("event store unavailable", extra={**log_fields, "status": 503})
            raise ServiceUnavailableError(served_by) from error
        logger.exception("request failed", extra={**log_fields, "status": 500})
        raise
    logger.info("request served", extra={**log_fields, "status": 200})
    return reply


def _parse_request(event: object) -> Request:
    if not isinstance(event, dict):
        raise InvalidRequestError(f"event must be a JSON object, got {type(event).__name__}")
    stage = _required_text(event, "stage")
    if not _STAGE_NAME.fullmatch(stage):
        raise InvalidRequestError(
            f"stage must be 1 to 128 letters, digits, '-' or '_', got {stage!r}"
        )
    query = event.get("query") or {}
    if not isinstance(query, dict):
        raise InvalidRequestError(f"event field 'query' must be an object, got {query!r}")
    return Request(
        stage=stage,
        method=_required_text(event, "method"),
        resource_path=_required_text(event, "resourcePath"),
        request_id=_text_field(event, "requestId", "event field"),
        body_base64=_text_field(event, "bodyBase64", "event field"),
        query=query,
        idempotency_key=_text_field(event, "idempotencyKey", "event field"),
    )


def _required_text(event: Mapping[str, object], name: str) -> str:
    value = _text_field(event, name, "event field")
    if not value:
        raise InvalidRequestError(f"event has no {name}")
    return value


def _text_field(fields: Mapping[str, object], name: str, kind: str) -> str:
    """Read a string field, treating a missing or null one as empty."""
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{kind} {name!r} must be a string, got {value!r}")
    return value


def _text_or_empty(event: object, name: str) -> str:
    """Read a field for logging and servedBy, where an unusable event must not raise."""
    value = event.get(name) if isinstance(event, dict) else None
    return value if isinstance(value, str) else ""


def _alias(invoked_function_arn: str) -> str:
    # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    parts = invoked_function_arn.split(":")
    return parts[7] if len(parts) == 8 else "$LATEST"


def _serve(request: Request, served_by: ServedBy) -> dict[str, Any]:
    table_name = os.environ["TABLE_NAME"]
    route = (request.method, request.resource_path)
    if route == ("POST", "/events"):
        return _record_event(request, served_by, table_name)
    if route == ("GET", "/events"):
        return _list_events(request, served_by, table_name)
    raise InvalidRequestError(
        f"unsupported request {request.method} {request.resource_path}; "
        "this API serves POST /events and GET /events"
    )


def _record_event(request: Request, served_by: ServedBy, table_name: str) -> dict[str, Any]:
    idempotency_key = request.idempotency_key
    if idempotency_key and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidRequestError(
            "Idempotency-Key must be 1 to 128 printable ASCII characters, "
            f"got {len(idempotency_key)} characters: {idempotency_key!r}"
        )
    body = _decode_body(request.body_base64)
    data = _parse_json_object(body)

    now = datetime.now(UTC)
    received_at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event_id = str(uuid.uuid4())
    reply: dict[str, Any] = {
        "id": event_id,
        "receivedAt": received_at,
        "servedBy": served_by,
        "replayed": False,
    }
    event_item = {
        "pk": {"S": request.stage},
        "sk": {"S": f"{received_at}#{event_id}"},
        "id": {"S": event_id},
        "stage": {"S": request.stage},
        "alias": {"S": served_by["alias"]},
        "version": {"S": served_by["version"]},
        "requestId": {"S": request.request_id},
        "receivedAt": {"S": received_at},
        # Stored as a JSON string because DynamoDB numbers stop at 38 significant digits, so
        # a map would not round-trip every body. ASCII escaping keeps lone surrogates
        # storable and at most triples a 64 KiB body, well inside the 400 KB item limit.
        "data": {"S": json.dumps(data, separators=(",", ":"))},
    }
    client = dynamodb_client()
    # The event's sort key holds a fresh UUID, so this condition only guards against
    # silently overwriting an event if that assumption were ever broken.
    event_put = {
        "TableName": table_name,
        "Item": event_item,
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    if not idempotency_key:
        client.put_item(**event_put)
        return reply

    # The raw bytes are hashed because a genuine retry resends them unchanged.
    body_sha256 = hashlib.sha256(body).hexdigest()
    epoch_now = int(now.timestamp())
    record_key = {"pk": {"S": f"idempotency#{request.stage}"}, "sk": {"S": idempotency_key}}
    record_put = {
        "TableName": table_name,
        "Item": {
            **record_key,
            "reply": {"S": json.dumps(reply, separators=(",", ":"))},
            "bodySha256": {"S": body_sha256},
            "expiresAt": {"N": str(int((now + IDEMPOTENCY_TTL).timestamp()))},
        },
        # DynamoDB's TTL deletes expired items only eventually, so an expired record must
        # not block a new write under the same key.
        "ConditionExpression": "attribute_not_exists(pk) OR expiresAt < :now",
        "ExpressionAttributeValues": {":now": {"N": str(epoch_now)}},
    }
    try:
        client.transact_write_items(TransactItems=[{"Put": event_put}, {"Put": record_put}])
    except botocore.exceptions.ClientError as error:
        if not _record_condition_failed(error):
            raise
        return _replay(table_name, record_key, idempotency_key, body_sha256)
    return reply


def _record_condition_failed(error: Any) -> bool:
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    # Reasons are listed in TransactItems order: the event first, the record second.
    return len(reasons) == 2 and reasons[1].get("Code") == "ConditionalCheckFailed"


def _replay(
    table_name: str, record_key: dict[str, Any], idempotency_key: str, body_sha256: str
) -> dict[str, Any]:
    response = dynamodb_client().get_item(TableName=table_name, Key=record_key, ConsistentRead=True)
    record = response.get("Item")
    if record is None:
        # The record expired and was deleted after the transaction saw it, so the key is
        # free again and a retry will write the event.
        raise TransientError(f"idempotency record {idempotency_key!r} vanished before replay")
    if record["bodySha256"]["S"] != body_sha256:
        raise InvalidRequestError(
            f"Idempotency-Key {idempotency_key!r} was already used with a different body; "
            "use a new key for a new event"
        )
    first_reply: dict[str, Any] = json.loads(record["reply"]["S"])
    return {**first_reply, "replayed": True}


def _decode_body(body_base64: str) -> bytes:
    try:
        body = base64.b64decode(body_base64, validate=True)
    except ValueError as error:
        raise InvalidRequestError(f"bodyBase64 is not valid base64: {error}") from error
    if not body:
        raise InvalidRequestError("body is empty; send a JSON object")
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequestError(f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    return body


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"body is not valid UTF-8: {error.reason} at byte {error.start}"
        ) from error
    try:
        data = json.loads(
            text,
            parse_constant=_reject_non_finite_constant,
            parse_float=_parse_finite_float,
            parse_int=_parse_convertible_int,
        )
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except RecursionError as error:
        raise InvalidRequestError("body is nested too deeply to process") from error
    if not isinstance(data, dict):
        raise InvalidRequestError(f"body must be a JSON object, got {_json_type_name(data)}")
    if not data:
        # API Gateway hands the template an empty request body as "{}", so this is also
        # what a POST without a body looks like by the time it gets here.
        raise InvalidRequestError("body is an empty JSON object; an event needs at least one field")
    return data


# Python's json module accepts NaN, Infinity and numbers that overflow to infinity, none
# of which it could write back as standard JSON, and it raises a bare ValueError for
# integers longer than sys.get_int_max_str_digits(). These hooks make all of them 400s.
def _reject_non_finite_constant(constant: str) -> NoReturn:
    raise InvalidRequestError(f"body is not valid JSON: {constant} is not a JSON value")


def _parse_finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise InvalidRequestError(f"body has a number too large to store: {literal}")
    return value


def _parse_convertible_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError as error:
        digits = len(literal.lstrip("-"))
        raise InvalidRequestError(
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


def _list_events(request: Request, served_by: ServedBy, table_name: str) -> dict[str, Any]:
    limit = _parse_limit(_text_field(request.query, "limit", "query parameter"))
    start_sort_key = _decode_page_token(_text_field(request.query, "next", "query parameter"))
    query: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :stage",
        "ExpressionAttributeValues": {":stage": {"S": request.stage}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_sort_key is not None:
        query["ExclusiveStartKey"] = {"pk": {"S": request.stage}, "sk": {"S": start_sort_key}}
    response = dynamodb_client().query(**query)
    last_key = response.get("LastEvaluatedKey")
    return {
        "events": [_event_view(item) for item in response["Items"]],
        "next": _encode_page_token(last_key["sk"]["S"]) if last_key else None,
        "servedBy": served_by,
    }


def _event_view(item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"]["S"],
        "receivedAt": item["receivedAt"]["S"],
        "stage": item["stage"]["S"],
        "alias": item["alias"]["S"],
        "version": item["version"]["S"],
        "requestId": item["requestId"]["S"],
        "data": json.loads(item["data"]["S"]),
    }


def _parse_limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if _LIMIT_DIGITS.fullmatch(text) and 1 <= int(text) <= MAX_LIMIT:
        return int(text)
    raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {text!r}")


def _encode_page_token(sort_key: str) -> str:
    payload = json.dumps({"sk": sort_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def _decode_page_token(token: str) -> str | None:
    if not token:
        return None
    problem = "next must be the unchanged next value of an earlier GET /events reply"
    if not _PAGE_TOKEN.fullmatch(token):
        raise InvalidRequestError(f"{problem}; it is not unpadded URL-safe base64")
    try:
        payload_bytes = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as error:
        raise InvalidRequestError(f"{problem}; it is not valid base64: {error}") from error
    try:
        payload = json.loads(payload_bytes.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise InvalidRequestError(f"{problem}; it does not decode to JSON") from error
    if not (
        isinstance(payload, dict)
        and payload.keys() == {"sk"}
        and isinstance(payload["sk"], str)
        and 0 < len(payload["sk"].encode("utf-8")) <= _MAX_SORT_KEY_BYTES
    ):
        raise InvalidRequestError(f"{problem}; its content is not a page position")
    sort_key: str = payload["sk"]
    return sort_key


def _is_retryable_aws_error(error: Exception) -> bool:
    if isinstance(error, _RETRYABLE_TRANSPORT_ERRORS):
        return True
    if not isinstance(error, botocore.exceptions.ClientError):
        return False
    code = error.response.get("Error", {}).get("Code")
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(reason.get("Code") in _RETRYABLE_CANCELLATION_CODES for reason in reasons)
    return code in _RETRYABLE_ERROR_CODES


def _error_body(message: str, served_by: ServedBy) -> str:
    return json.dumps({"message": message, "servedBy": served_by})
