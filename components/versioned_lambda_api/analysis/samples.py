"""Mapping templates rendered for a sample request, as API Gateway would render them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from versioned_lambda_api.analysis.vtl import TemplateError, TemplateInput, render

SAMPLE_BODY = '{"note": "it\'s \\"q\\" — ü"}'
"""A body with the characters templates most often mangle: quotes, apostrophes, non-ASCII."""
SAMPLE_QUERY = {"limit": "10"}
SAMPLE_REQUEST_ID = "c0ffee00-0000-4000-8000-000000000001"


@dataclass(frozen=True)
class RenderedTemplate:
    """A template's output for a sample request."""

    text: str
    """What API Gateway would send (empty when the template could not be rendered)."""
    payload: Any
    """The output parsed as JSON; ``None`` when it is not valid JSON."""
    error: str | None
    """Why the output is not valid JSON, or why the template could not be rendered."""


def sample_input(stage: str, http_method: str, path: str, is_canary: bool) -> TemplateInput:
    """A realistic request to ``http_method /path`` on ``stage``."""
    has_body = http_method in ("POST", "PUT", "PATCH")
    return TemplateInput(
        body=SAMPLE_BODY if has_body else "",
        querystring={} if has_body else dict(SAMPLE_QUERY),
        header={"Content-Type": "application/json", "Idempotency-Key": "sample-key-1"}
        if has_body
        else {},
        context={
            "stage": stage,
            "httpMethod": http_method,
            "resourcePath": f"/{path}",
            "path": f"/{stage}/{path}",
            "requestId": SAMPLE_REQUEST_ID,
            "isCanaryRequest": "true" if is_canary else "false",
        },
    )


def render_request(
    template: str, stage: str, http_method: str, path: str, is_canary: bool = False
) -> RenderedTemplate:
    """Render a request template for a sample request and parse the result as JSON."""
    try:
        text = render(template, sample_input(stage, http_method, path, is_canary))
    except TemplateError as error:
        return RenderedTemplate("", None, f"cannot render: {error}")
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        return RenderedTemplate(
            text, None, f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        )
    except _NotJsonError as error:
        return RenderedTemplate(text, None, f"not valid JSON: {error}")
    return RenderedTemplate(text, payload, None)


class _NotJsonError(ValueError):
    pass


def _reject_constant(constant: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (and so Lambda) does not.
    raise _NotJsonError(f"{constant} is not a JSON value")
