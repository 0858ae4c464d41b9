"""API Gateway's side of a non-proxy Lambda integration, offline: the pure part
(:mod:`versioned_lambda_api.analysis.gateway`) in front of one execution environment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from local_api.environment import LambdaEnvironment
from local_api.runtime_api import InvocationResult
from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.gateway import GatewayRequest, integration_response, render_event

# What API Gateway answers when the integration itself fails (Lambda refused the payload).
_INTEGRATION_FAILURE = '{"message": "Internal server error"}'


@dataclass(frozen=True)
class ClientResponse:
    status: int
    body: str
    """The response body the client receives."""
    event: bytes
    """The event the function was invoked with."""
    invocation: InvocationResult | None
    """What Lambda answered API Gateway; None if the event never reached the function."""

    def json(self, **options: Any) -> Any:
        """The body parsed as strict JSON (``options`` go to ``json.loads``)."""
        return json.loads(self.body, parse_constant=_refuse_constant, **options)

    def describe(self) -> str:
        lambda_answer = (
            "never invoked"
            if self.invocation is None
            else f"error_type={self.invocation.error_type} payload={self.invocation.payload!r:.600}"
        )
        return f"HTTP {self.status} {self.body[:600]!r}; Lambda: {lambda_answer}"


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class Api:
    """One stage of the API in front of one execution environment."""

    def __init__(self, environment: LambdaEnvironment) -> None:
        self.environment = environment

    def send(
        self,
        request: GatewayRequest,
        template: str | None = api_spec.DEFAULT_REQUEST_TEMPLATE,
        responses: Sequence[api_spec.IntegrationResponse] = api_spec.INTEGRATION_RESPONSES,
    ) -> ClientResponse:
        """Invoke the function as a method whose integration has ``template`` (None: the body
        passes through untransformed) and ``responses`` would, and answer as it would."""
        event_text = request.body if template is None else render_event(request, template)
        event = event_text.encode("utf-8", errors="surrogatepass")
        try:
            json.loads(event_text, parse_constant=_refuse_constant)
        except ValueError:
            # Lambda's Invoke refuses a payload that is not JSON (InvalidRequestContentException),
            # and API Gateway answers 500.
            return ClientResponse(500, _INTEGRATION_FAILURE, event, None)
        result = self.environment.invoke(event)
        status, body = integration_response(result.is_error, result.payload, request, responses)
        return ClientResponse(status, body, event, result)
