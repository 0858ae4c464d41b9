"""The local API's HTTP server: each request goes through API Gateway's decisions
(:mod:`local_api.routing`), then the integration (:mod:`local_api.integration`) invokes the
execution environment of the alias and version drawn, and the answer goes back with the one-line
log of the request. Lambda's Invoke path (:mod:`local_api.lambda_invoke`) is answered as the
Lambda service would, from the same environments.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from local_api import lambda_invoke, routing
from local_api.environment import LambdaEnvironment, LocalRuntimeError
from local_api.integration import Api
from local_api.runtime_api import InvocationResult
from local_api.stack import LocalStack
from versioned_lambda_api.analysis.gateway import GatewayRequest

# API Gateway's payload limit for REST APIs (10 MB, "API Gateway quotas for configuring and
# running a REST API"); a longer body is not read.
MAX_BODY_BYTES = 10 * 1024 * 1024
REQUEST_TOO_LONG = routing.GatewayAnswer(413, "Request Too Long", "RequestTooLongException")


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        """Listen on 127.0.0.1:``port`` (0: a free port); requests are refused until
        :meth:`serve` gives them somewhere to go."""
        super().__init__(("127.0.0.1", port), _Handler, bind_and_activate=True)
        self.stack: LocalStack | None = None
        self.api_key = ""
        self.environments: Mapping[tuple[str, str], LambdaEnvironment] = {}
        self.log: Callable[[str], None] = print
        self.random = random.Random()  # noqa: S311 - a traffic split, not a secret
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve(
        self,
        stack: LocalStack,
        api_key: str,
        environments: Mapping[tuple[str, str], LambdaEnvironment],
        log: Callable[[str], None],
    ) -> None:
        """Answer requests in a thread of their own until :meth:`stop`."""
        self.stack, self.api_key, self.environments, self.log = stack, api_key, environments, log
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="local-api"
        )
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not a traceback, for a request that broke off (a client that hung up)."""
        error = sys.exc_info()[1]
        self.log(f"error: a request from {client_address[0]} failed: {error!r}")

    def stop(self) -> None:
        """Stop taking requests (those under way finish) and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    # One write a response, without Nagle's delay (see local_api.runtime_api).
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # every request is logged once, in the local API's own line

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        request_id = str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        headers = dict(self.headers.items())
        server = self.server
        if server.stack is not None and lambda_invoke.is_invoke(self.command, url.path):
            self._handle_lambda_invoke(server.stack, url.path, url.query, length, started)
            return
        decision: routing.Invoke | routing.GatewayAnswer
        if server.stack is None:
            decision = routing.MISSING_AUTHENTICATION_TOKEN
        elif length > MAX_BODY_BYTES:
            decision = REQUEST_TOO_LONG
            self.close_connection = True
        else:
            draws = (server.random.random(), server.random.random())
            decision = routing.decide(
                server.stack,
                server.api_key,
                method=self.command,
                url_path=url.path,
                headers=headers,
                draws=draws,
            )
        if isinstance(decision, routing.GatewayAnswer):
            if length <= MAX_BODY_BYTES:
                self.rfile.read(length)  # what is left unread would be taken for a request
            status = decision.status
            self._answer(status, decision.body(), request_id, decision.error_type)
            invoked = None
        else:
            status, body = self._invoke(decision, url.query, headers, length, request_id)
            self._answer(status, body, request_id)
            invoked = decision
        elapsed_ms = (time.monotonic() - started) * 1000
        server.log(
            routing.log_line(
                self.command,
                url.path,
                status=status,
                invoked=invoked,
                ms=elapsed_ms,
                request_id=request_id,
            )
        )

    def _invoke(
        self,
        decision: routing.Invoke,
        query: str,
        headers: dict[str, str],
        length: int,
        request_id: str,
    ) -> tuple[int, str]:
        request = GatewayRequest(
            method=self.command,
            body=self.rfile.read(length).decode("utf-8", errors="replace"),
            # A repeated parameter reads as its last value, as $input.params() has it.
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers=headers,
            stage=decision.stage.name,
            api_key_id=decision.api_key_id,
            is_canary=decision.share.role == "canary",
            resource_path=f"/{decision.route.path}",
            request_id=request_id,
            stage_variables=decision.share.stage_variables,
        )
        environment = self.server.environments[(decision.alias, decision.version)]
        try:
            response = Api(environment).send(request, decision.template, decision.route.responses)
        except LocalRuntimeError:
            # Only a request that arrives as the local API stops finds its environment gone.
            answer = routing.INTERNAL_SERVER_ERROR
            return answer.status, answer.body()
        return response.status, response.body

    def _handle_lambda_invoke(
        self, stack: LocalStack, path: str, query: str, length: int, started: float
    ) -> None:
        answer = self._lambda_answer(stack, path, query, length)
        self._send(answer.status, answer.body, answer.request_id, answer.headers)
        named = parse_qs(query).get("Qualifier", [""])[-1]
        self.server.log(
            lambda_invoke.log_line(
                answer.invoked.qualifier if answer.invoked else named,
                status=answer.status,
                invoked=answer.invoked,
                ms=(time.monotonic() - started) * 1000,
                request_id=answer.request_id,
            )
        )

    def _lambda_answer(
        self, stack: LocalStack, path: str, query: str, length: int
    ) -> lambda_invoke.Answer:
        too_large = lambda_invoke.too_large(length)
        if too_large is not None:
            if length <= MAX_BODY_BYTES:
                self.rfile.read(length)  # what is left unread would be taken for a request
            else:
                self.close_connection = True
            return lambda_invoke.refusal(too_large)
        payload = self.rfile.read(length)
        server = self.server
        decided = lambda_invoke.target(
            stack,
            path,
            query,
            self.headers.get("X-Amz-Invocation-Type"),
            running={version for _, version in server.environments},
            draw=server.random.random(),
        )
        if isinstance(decided, lambda_invoke.LambdaError):
            return lambda_invoke.refusal(decided)
        problem = lambda_invoke.payload_problem(payload)
        if problem is not None:
            return lambda_invoke.refusal(problem)
        result = self._run(decided, stack.function.arn, payload)
        if result is None:
            return lambda_invoke.refusal(lambda_invoke.STOPPING)
        return lambda_invoke.reply(decided, result)

    def _run(
        self, target: lambda_invoke.Target, function_arn: str, payload: bytes
    ) -> InvocationResult | None:
        """Run ``payload`` in an environment of the target's version, which sees the ARN the
        caller named; None when the local API is stopping."""
        environments = self.server.environments
        environment = environments.get((target.alias or "", target.version)) or next(
            env for (_, version), env in environments.items() if version == target.version
        )
        try:
            return environment.invoke(payload, f"{function_arn}:{target.qualifier}")
        except LocalRuntimeError:
            return None

    def _answer(
        self, status: int, body: str, request_id: str, error_type: str | None = None
    ) -> None:
        headers = {"x-amzn-ErrorType": error_type} if error_type else {}
        self._send(status, body.encode("utf-8", errors="surrogatepass"), request_id, headers)

    def _send(self, status: int, data: bytes, request_id: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
