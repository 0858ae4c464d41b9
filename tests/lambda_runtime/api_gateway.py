"""API Gateway's side of a non-proxy Lambda integration, offline.

A client request is turned into the function's event by rendering the API's real default
request template (``versioned_lambda_api.api_spec.DEFAULT_REQUEST_TEMPLATE``) with
``versioned_lambda_api.analysis.vtl.render``; the environment invokes the function with it;
the outcome is turned into what the client gets by the API's real integration responses
(``versioned_lambda_api.api_spec.INTEGRATION_RESPONSES``): a Lambda error picks the response whose
selection pattern matches its ``errorMessage`` (the default one when none does), a reply the
default one, and ``versioned_lambda_api.analysis.vtl.render_response`` renders its template,
with the status that ``$context.responseOverride.status`` sets, if any.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.lambda_runtime.environment import LambdaEnvironment
from tests.lambda_runtime.runtime_api import InvocationResult
from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.vtl import TemplateInput, render, render_response

# What API Gateway answers when the integration itself fails (Lambda refused the payload).
_INTEGRATION_FAILURE = '{"message": "Internal server error"}'


@dataclass(frozen=True)
class ClientRequest:
    method: str
    body: str = ""
    """The request body as API Gateway hands it to templates: text (an empty body reads as
    ``{}``)."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    stage: str = "prod"
    api_key_id: str = ""
    """``$context.identity.apiKeyId``: empty when the API takes no keys."""
    is_canary: bool = False
    resource_path: str = "/events"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def context(self) -> dict[str, object]:
        return {
            "stage": self.stage,
            "httpMethod": self.method,
            "resourcePath": self.resource_path,
            "requestId": self.request_id,
            "isCanaryRequest": "true" if self.is_canary else "false",
            "identity": {"apiKeyId": self.api_key_id},
        }


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


def render_event(request: ClientRequest) -> str:
    """The event text the default request template renders for ``request``."""
    template_input = TemplateInput(
        body=request.body,
        querystring=dict(request.query),
        header=dict(request.headers),
        context=request.context(),
    )
    return render(api_spec.DEFAULT_REQUEST_TEMPLATE, template_input)


def integration_response(result: InvocationResult, request: ClientRequest) -> tuple[int, str]:
    """What the client gets for Lambda's answer ``result``."""
    text = result.payload.decode("utf-8", errors="replace")
    default = next(r for r in api_spec.INTEGRATION_RESPONSES if r.selection_pattern is None)
    chosen = default
    if result.is_error:
        try:
            message = str(json.loads(text).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = ""
        for response in api_spec.INTEGRATION_RESPONSES:
            pattern = response.selection_pattern
            if pattern is not None and re.fullmatch(pattern, message):
                chosen = response
                break
    rendered, override = render_response(
        chosen.template, TemplateInput(body=text, context=request.context())
    )
    return (override if override is not None else int(chosen.status_code)), rendered


class Api:
    """One stage of the API in front of one execution environment."""

    def __init__(self, environment: LambdaEnvironment) -> None:
        self.environment = environment

    def send(self, request: ClientRequest) -> ClientResponse:
        event_text = render_event(request)
        event = event_text.encode("utf-8", errors="surrogatepass")
        try:
            json.loads(event_text, parse_constant=_refuse_constant)
        except ValueError:
            # Lambda's Invoke refuses a payload that is not JSON (InvalidRequestContentException),
            # and API Gateway answers 500.
            return ClientResponse(500, _INTEGRATION_FAILURE, event, None)
        result = self.environment.invoke(event)
        status, body = integration_response(result, request)
        return ClientResponse(status, body, event, result)
