"""API Gateway's side of the component's non-proxy Lambda integration, as pure functions.

A client request becomes the function's event by rendering a route's request template with
``$context`` (stage, request id, canary flag, caller) and the stage's variables; Lambda's answer
becomes what the client gets through the API's integration responses
(:data:`versioned_lambda_api.api_spec.INTEGRATION_RESPONSES`): a Lambda error picks the response
whose selection pattern matches its ``errorMessage`` in full (the default one when none does), a
reply the default one, and the chosen template is rendered with the status that
``$context.responseOverride.status`` sets, if any. The local API, the release tool's pre-traffic
check and the runtime tests all go through here, so they agree with each other and with the
deployed templates.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.vtl import TemplateInput, render, render_response


@dataclass(frozen=True)
class GatewayRequest:
    """One client request as a stage of the API sees it."""

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
    stage_variables: Mapping[str, str] = field(default_factory=dict)
    """The stage's variables, or the canary's overrides of them for a canary request."""

    def context(self) -> dict[str, object]:
        """``$context`` as the templates see it."""
        return {
            "stage": self.stage,
            "httpMethod": self.method,
            "resourcePath": self.resource_path,
            "requestId": self.request_id,
            "isCanaryRequest": "true" if self.is_canary else "false",
            "identity": {"apiKeyId": self.api_key_id},
        }


def render_event(request: GatewayRequest, template: str = api_spec.DEFAULT_REQUEST_TEMPLATE) -> str:
    """The event text ``template`` renders for ``request``."""
    return render(
        template,
        TemplateInput(
            body=request.body,
            querystring=dict(request.query),
            header=dict(request.headers),
            context=request.context(),
            stage_variables=dict(request.stage_variables),
        ),
    )


def integration_response(
    is_error: bool,
    payload: bytes,
    request: GatewayRequest,
    responses: Sequence[api_spec.IntegrationResponse] = api_spec.INTEGRATION_RESPONSES,
) -> tuple[int, str]:
    """The status and body the client gets when Lambda answers ``request`` with ``payload``
    (``is_error``: Invoke carried ``X-Amz-Function-Error``), through ``responses`` (the
    component's own unless a deployed method's are given)."""
    text = payload.decode("utf-8", errors="replace")
    default = next(r for r in responses if r.selection_pattern is None)
    chosen = default
    if is_error:
        try:
            message = str(json.loads(text).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = ""
        for response in responses:
            pattern = response.selection_pattern
            if pattern is not None and re.fullmatch(pattern, message):
                chosen = response
                break
    rendered, override = render_response(
        chosen.template,
        TemplateInput(
            body=text, context=request.context(), stage_variables=request.stage_variables
        ),
    )
    return (override if override is not None else int(chosen.status_code)), rendered
