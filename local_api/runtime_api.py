"""A local Lambda Runtime API: what an execution environment's runtime talks to.

The runtime interface client (``awslambdaric``) long-polls ``GET
/2018-06-01/runtime/invocation/next`` for an event and answers it with ``POST
.../invocation/<request id>/response`` (the marshalled reply's bytes) or ``POST
.../invocation/<request id>/error`` (an error document plus the
``Lambda-Runtime-Function-Error-Type`` header); an import failure goes to ``POST
/2018-06-01/runtime/init/error``. The event is handed over with the headers Lambda sends:
``Lambda-Runtime-Aws-Request-Id``, ``Lambda-Runtime-Deadline-Ms`` (the deadline in Unix epoch
milliseconds), ``Lambda-Runtime-Invoked-Function-Arn`` and ``Lambda-Runtime-Trace-Id``
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html; the headers' lower-case names
are those aws-lambda-cpp 0.2.6, which awslambdaric's C extension wraps, reads in
src/runtime.cpp).

One server serves one execution environment, so it holds at most one invocation at a time,
as Lambda does outside Managed Instances. What happens when the runtime process dies or runs
past the deadline is the environment's business (:mod:`local_api.environment`); it
completes the invocation through :meth:`RuntimeApi.complete_current`.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Lambda refuses a synchronous response above 6 MB; the Runtime Interface Emulator and Lambda
# report 6,291,556 bytes (6 MiB plus 100) as the limit.
MAX_RESPONSE_BYTES = 6_291_556

_RESULT_PATH = re.compile(API_PREFIX + r"/invocation/([^/]+)/(response|error)")
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class InvocationResult:
    """What Lambda's Invoke would answer: the runtime's bytes, or an error document."""

    request_id: str
    payload: bytes
    """The reply's bytes as the runtime posted them, or the error document."""
    error_type: str | None
    """None for a reply; else the runtime's Lambda-Runtime-Function-Error-Type header, or
    Lambda's own ``Runtime.ExitError``, ``Sandbox.Timedout``, ``Function.ResponseSizeTooLarge``."""
    duration_s: float
    content_type: str | None = None

    @property
    def is_error(self) -> bool:
        """Whether Invoke would carry ``X-Amz-Function-Error: Unhandled``."""
        return self.error_type is not None

    def document(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


@dataclass
class Invocation:
    """One event on its way through an environment."""

    event: bytes
    function_arn: str
    timeout_s: float
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(
        default_factory=lambda: (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=0"
        )
    )
    deadline_ms: int = 0
    started: float = 0.0
    handed_out: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: InvocationResult | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self) -> None:
        self.started = time.monotonic()
        self.deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)

    def complete(
        self, payload: bytes, error_type: str | None, content_type: str | None = None
    ) -> bool:
        """Record the outcome; the first one wins, as only one can reach the caller."""
        with self._lock:
            if self.result is not None:
                return False
            self.result = InvocationResult(
                request_id=self.request_id,
                payload=payload,
                error_type=error_type,
                duration_s=time.monotonic() - self.started,
                content_type=content_type,
            )
        self.done.set()
        return True


class RuntimeApi:
    """The Runtime API of one execution environment, on 127.0.0.1 and an ephemeral port."""

    def __init__(self) -> None:
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._current: Invocation | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.init_errors: list[tuple[str | None, bytes]] = []
        self.next_polls = 0
        self.asked = threading.Event()
        """Set once the runtime asks for an event: its init phase is over."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="runtime-api",
            daemon=True,
        )

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def submit(self, invocation: Invocation) -> None:
        """Queue ``invocation`` for the runtime's next poll."""
        self._pending.put(invocation)

    def current(self) -> Invocation | None:
        with self._lock:
            return self._current

    def complete_current(self, payload: bytes, error_type: str) -> bool:
        """End the invocation the runtime holds (or will be handed next) with a platform error."""
        with self._lock:
            invocation, self._current = self._current, None
        if invocation is None:
            try:
                invocation = self._pending.get_nowait()
            except queue.Empty:
                return False
        return invocation.complete(payload, error_type)

    # Called by the request handler.

    def _next(self) -> Invocation | None:
        self.asked.set()
        while not self._stopping.is_set():
            try:
                invocation = self._pending.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if invocation.done.is_set():
                continue
            with self._lock:
                self._current = invocation
                self.next_polls += 1
            invocation.begin()
            invocation.handed_out.set()
            return invocation
        return None

    def _return(self, invocation: Invocation) -> None:
        with self._lock:
            if self._current is invocation:
                self._current = None
        invocation.handed_out.clear()
        self._pending.put(invocation)

    def _finish(
        self, request_id: str, payload: bytes, error_type: str | None, content_type: str | None
    ) -> HTTPStatus:
        with self._lock:
            invocation = self._current
            if invocation is None or invocation.request_id != request_id:
                return HTTPStatus.BAD_REQUEST
            self._current = None
        if error_type is None and len(payload) > MAX_RESPONSE_BYTES:
            invocation.complete(
                _platform_error(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size ({len(payload)} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_RESPONSE_BYTES} bytes).",
                ),
                "Function.ResponseSizeTooLarge",
            )
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        invocation.complete(payload, error_type, content_type)
        return HTTPStatus.ACCEPTED


def _platform_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def exit_error(request_id: str, how: str) -> bytes:
    """The error document Lambda answers when the runtime process dies mid-invocation."""
    return _platform_error(
        "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {how}"
    )


def timeout_error(request_id: str, timeout_s: float) -> bytes:
    """The error document Lambda answers when an invocation runs past its deadline."""
    return _platform_error(
        "Sandbox.Timedout",
        f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
    )


def _make_handler(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # curl keeps its connection to the Runtime API open
        # Headers and body leave in one write, without Nagle's delay: a body sent after its
        # headers otherwise waits for the client's delayed ACK, some 40 ms an invocation.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            if self.path != API_PREFIX + "/invocation/next":
                self._answer(HTTPStatus.NOT_FOUND, {"errorMessage": f"no route {self.path}"})
                return
            invocation = api._next()
            if invocation is None:
                self.close_connection = True
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(invocation.event)))
            self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn)
            self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
            try:
                self.end_headers()
                self.wfile.write(invocation.event)
            except (BrokenPipeError, ConnectionResetError):
                # The runtime that asked is gone; the event waits for the next one to ask.
                api._return(invocation)
                self.close_connection = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            error_type = self.headers.get(ERROR_TYPE_HEADER)
            if self.path == API_PREFIX + "/init/error":
                api.init_errors.append((error_type, body))
                self._answer(HTTPStatus.ACCEPTED, {"status": "OK"})
                return
            match = _RESULT_PATH.fullmatch(self.path)
            if match is None:
                self._answer(HTTPStatus.NOT_FOUND, {"errorMessage": f"no route {self.path}"})
                return
            request_id, kind = match.groups()
            if kind == "error" and not error_type:
                error_type = "Unhandled"
            status = api._finish(
                request_id,
                body,
                error_type if kind == "error" else None,
                self.headers.get("Content-Type"),
            )
            if status == HTTPStatus.ACCEPTED:
                self._answer(status, {"status": "OK"})
            else:
                self._answer(status, {"errorMessage": "Invalid request ID or payload"})

        def _answer(self, status: HTTPStatus, document: dict[str, str]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
