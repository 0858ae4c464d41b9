"""An HTTP proxy between the function's botocore and moto that injects DynamoDB's faults.

The function's ``AWS_ENDPOINT_URL_DYNAMODB`` points here, so every attempt botocore makes,
retries included, passes through: a fault answers an attempt as DynamoDB would, and botocore's
real retry logic decides what to do next. Faults are queued per operation (the
``X-Amz-Target`` header's ``DynamoDB_20120810.<Operation>``) and used up in order:

* ``error``: answer without forwarding, as DynamoDB answers throttling and its other errors:
  an HTTP status (400 for throttling) and a JSON body whose ``__type`` names the error, with
  the ``x-amz-crc32`` header botocore checks
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
* ``lose``: forward the request, so the write is applied, then close the connection without
  an answer: the client cannot tell whether the write happened.
* ``delay``: hold the request (or, with ``after_forward``, its answer) for a while; botocore's
  read timeout fires first. Held requests are dropped, never forwarded, once the test that
  queued them is over.

**The proxy serialises every request it forwards to moto.** DynamoDB applies each conditional
write and each transaction atomically, and transactions are serializable with every other
write and read (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-isolation).
moto's threaded server does not: its TransactWriteItems (moto 5.2.5,
dynamodb/models/__init__.py) deep-copies the tables, checks each condition and applies each
item one after another, and on a cancelled transaction puts the copies back. Two concurrent
transactions can therefore both pass an ``attribute_not_exists`` check, a cancelled one can
undo another request's write, and a read can see half a transaction. Holding one lock around
each forwarded request makes moto's DynamoDB as isolated as the real one, which the concurrency
test relies on (without the lock, moto answered some of its 20 concurrent transactions with
an internal error, 500, in one run out of three).

The proxy also gives TransactWriteItems DynamoDB's ``ClientRequestToken`` idempotency, which
moto ignores: botocore fills the token in once per call and resends it on every retry, and
DynamoDB answers a repeat of a successful transaction with the same token (within 10 minutes)
as a success without applying it again, or ``IdempotentParameterMismatchException`` if the
request differs (TransactWriteItems in the DynamoDB API reference).
"""

from __future__ import annotations

import http.client
import json
import threading
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

DYNAMODB_PREFIX = "com.amazonaws.dynamodb.v20120810#"
# The __type values DynamoDB sends; ThrottlingException comes from the coral framework.
ERROR_TYPES = {
    "ProvisionedThroughputExceededException": DYNAMODB_PREFIX
    + "ProvisionedThroughputExceededException",
    "ThrottlingException": "com.amazon.coral.availability#ThrottlingException",
    "RequestLimitExceeded": DYNAMODB_PREFIX + "RequestLimitExceeded",
    "TransactionInProgressException": DYNAMODB_PREFIX + "TransactionInProgressException",
    "TransactionConflictException": DYNAMODB_PREFIX + "TransactionConflictException",
    "TransactionCanceledException": DYNAMODB_PREFIX + "TransactionCanceledException",
    "InternalServerError": DYNAMODB_PREFIX + "InternalServerError",
    "IdempotentParameterMismatchException": DYNAMODB_PREFIX
    + "IdempotentParameterMismatchException",
}
ERROR_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "TransactionInProgressException": (
        "The transaction with the given request token is already in progress."
    ),
    "InternalServerError": "Internal server error",
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_UPSTREAM_TIMEOUT_S = 30.0

Kind = Literal["error", "lose", "delay"]


@dataclass
class Fault:
    kind: Kind
    operation: str
    times: int | None
    """How many attempts it answers; None for every one."""
    status: int = HTTPStatus.BAD_REQUEST
    error: str = ""
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    after_forward: bool = False


@dataclass(frozen=True)
class Attempt:
    """One request botocore sent, and what the proxy did with it."""

    operation: str
    outcome: str
    """``forwarded``, ``replayed`` (a repeated transaction token), ``error:<code>``, ``lost``,
    ``delayed`` (then forwarded) or ``abandoned`` (held past its test)."""
    body: dict[str, Any]


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._lock = threading.Lock()
        # Serialises moto; see the module docstring.
        self._dynamodb_lock = threading.Lock()
        self._faults: list[Fault] = []
        self._attempts: list[Attempt] = []
        self._tokens: dict[str, tuple[dict[str, Any], int, list[tuple[str, str]], bytes]] = {}
        self._generation = 0
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget faults, attempts and tokens, and drop the requests still held."""
        with self._lock:
            self._faults.clear()
            self._attempts.clear()
            self._tokens.clear()
            self._generation += 1
            self._release.set()
            self._release = threading.Event()

    # Queuing faults

    def fail(
        self,
        operation: str,
        error: str,
        *,
        times: int | None = None,
        status: int = HTTPStatus.BAD_REQUEST,
        message: str | None = None,
        **extra: Any,
    ) -> None:
        """Answer ``operation`` with DynamoDB's ``error`` (e.g. ``ThrottlingException``)."""
        text = ERROR_MESSAGES.get(error, error) if message is None else message
        self._add(Fault("error", operation, times, status, error, text, extra))

    def throttle(
        self,
        operation: str,
        error: str = "ProvisionedThroughputExceededException",
        *,
        times: int | None = None,
    ) -> None:
        self.fail(operation, error, times=times)

    def lose_response(self, operation: str, *, times: int | None = 1) -> None:
        """Apply ``operation``, then close the connection without answering."""
        self._add(Fault("lose", operation, times))

    def delay(
        self,
        operation: str,
        seconds: float,
        *,
        times: int | None = None,
        after_forward: bool = False,
    ) -> None:
        """Hold ``operation`` for ``seconds`` before forwarding it, or (``after_forward``)
        forward it at once and hold its answer."""
        self._add(Fault("delay", operation, times, delay_s=seconds, after_forward=after_forward))

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    # What happened

    def attempts(self, operation: str | None = None) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts if operation is None or a.operation == operation]

    def operations(self) -> list[str]:
        return [attempt.operation for attempt in self.attempts()]

    # Serving

    def _take_fault(self, operation: str) -> tuple[Fault | None, int, threading.Event]:
        with self._lock:
            for fault in self._faults:
                if fault.operation == operation and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault, self._generation, self._release
            return None, self._generation, self._release

    def _record(self, generation: int, attempt: Attempt) -> None:
        with self._lock:
            if generation == self._generation:
                self._attempts.append(attempt)

    def _current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _forward(
        self, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self._upstream_port, timeout=_UPSTREAM_TIMEOUT_S
        )
        try:
            with self._dynamodb_lock:
                connection.request("POST", path, body, dict(headers))
                response = connection.getresponse()
                data = response.read()
            return response.status, response.getheaders(), data
        finally:
            connection.close()

    def _transact(
        self, path: str, headers: list[tuple[str, str]], body: bytes, request: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        token = request.get("ClientRequestToken")
        params = {key: value for key, value in request.items() if key != "ClientRequestToken"}
        if isinstance(token, str):
            with self._lock:
                seen = self._tokens.get(token)
            if seen is not None:
                if seen[0] != params:
                    status, reply_headers, data = _error_response(
                        HTTPStatus.BAD_REQUEST,
                        "IdempotentParameterMismatchException",
                        "The request uses the same client token as a previous, but non-identical"
                        " request.",
                        {},
                    )
                    return status, reply_headers, data, False
                return seen[1], seen[2], seen[3], True
        status, reply_headers, data = self._forward(path, headers, body)
        if isinstance(token, str) and status == HTTPStatus.OK:
            with self._lock:
                self._tokens[token] = (params, status, reply_headers, data)
        return status, reply_headers, data, False


def _error_response(
    status: int, error: str, message: str, extra: dict[str, Any]
) -> tuple[int, list[tuple[str, str]], bytes]:
    document = {"__type": ERROR_TYPES.get(error, DYNAMODB_PREFIX + error), "message": message}
    document.update(extra)
    data = json.dumps(document).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", "FAULTPROXY0000000000000000000000000000000000000000000"),
        ("x-amz-crc32", str(zlib.crc32(data))),
    ]
    return status, headers, data


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # botocore's connection pool keeps connections open

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = self.headers.get("X-Amz-Target", "")
            operation = target.rsplit(".", 1)[-1]
            try:
                request: dict[str, Any] = json.loads(body or b"{}")
            except ValueError:
                request = {}
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            fault, generation, release = proxy._take_fault(operation)
            outcome = "forwarded"
            if fault is not None and fault.kind == "error":
                proxy._record(generation, Attempt(operation, f"error:{fault.error}", request))
                self._reply(*_error_response(fault.status, fault.error, fault.message, fault.extra))
                return
            if fault is not None and fault.kind == "delay" and not fault.after_forward:
                release.wait(fault.delay_s)
                if not proxy._current(generation):
                    self.close_connection = True
                    return
                outcome = "delayed"
            if operation == "TransactWriteItems":
                status, reply_headers, data, replayed = proxy._transact(
                    self.path, headers, body, request
                )
                if replayed:
                    outcome = "replayed"
            else:
                status, reply_headers, data = proxy._forward(self.path, headers, body)
            if fault is not None and fault.kind == "lose":
                proxy._record(generation, Attempt(operation, "lost", request))
                self.close_connection = True
                return
            if fault is not None and fault.kind == "delay" and fault.after_forward:
                outcome = "delayed"
                release.wait(fault.delay_s)
            proxy._record(generation, Attempt(operation, outcome, request))
            self._reply(status, reply_headers, data)

        def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (its read timeout fired) before the answer came.
                self.close_connection = True

    return Handler
