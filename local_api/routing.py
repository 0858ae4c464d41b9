"""How API Gateway decides what becomes of one request to a stage, as plain functions: the
method it matches, the API key check, the mapping template the content type picks, the canary
draw and the version a weighted alias invokes; and the one-line request log.

API Gateway's own answers (gateway responses) are those of a REST API without customised
gateway responses (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html):
a path or method the API does not have is MISSING_AUTHENTICATION_TOKEN (403, "Missing
Authentication Token", whichever the reason), a missing or unknown API key INVALID_API_KEY
(403, "Forbidden"), a content type without a template where passthrough is refused
UNSUPPORTED_MEDIA_TYPE (415).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from local_api.stack import Alias, LocalStack, Route, Share, Stage

# API Gateway takes a request without Content-Type as JSON when it picks a mapping template
# (integration-passthrough-behaviors.html).
DEFAULT_CONTENT_TYPE = "application/json"
API_KEY_HEADER = "x-api-key"


@dataclass(frozen=True)
class GatewayAnswer:
    """An answer API Gateway gives itself, without invoking anything."""

    status: int
    message: str
    error_type: str
    """``x-amzn-ErrorType``, which API Gateway sends with its own answers."""

    def body(self) -> str:
        return json.dumps({"message": self.message})


MISSING_AUTHENTICATION_TOKEN = GatewayAnswer(
    403, "Missing Authentication Token", "MissingAuthenticationTokenException"
)
INVALID_API_KEY = GatewayAnswer(403, "Forbidden", "ForbiddenException")
UNSUPPORTED_MEDIA_TYPE = GatewayAnswer(
    415, "Unsupported Media Type", "UnsupportedMediaTypeException"
)


@dataclass(frozen=True)
class Matched:
    stage: Stage
    route: Route


def match(stack: LocalStack, method: str, url_path: str) -> Matched | GatewayAnswer:
    """The stage and route a request for ``url_path`` (``/<stage>/<resource path>``, query
    string removed) with ``method`` reaches."""
    stage_name, _, resource = url_path.lstrip("/").partition("/")
    stage = stack.stage(unquote(stage_name))
    if stage is None:
        return MISSING_AUTHENTICATION_TOKEN
    path = "/".join(unquote(segment) for segment in resource.split("/"))
    route = next((r for r in stack.routes if r.path == path and r.method == method), None)
    return MISSING_AUTHENTICATION_TOKEN if route is None else Matched(stage, route)


def api_key_problem(
    route: Route, headers: Mapping[str, str], valid_key: str
) -> GatewayAnswer | None:
    """INVALID_API_KEY when ``route`` requires a key and the request does not carry
    ``valid_key`` in ``x-api-key`` (header names are case-insensitive)."""
    if not route.api_key_required:
        return None
    sent = next((v for k, v in headers.items() if k.lower() == API_KEY_HEADER), None)
    return None if sent == valid_key else INVALID_API_KEY


def request_template(route: Route, content_type: str | None) -> str | GatewayAnswer | None:
    """The mapping template the request's content type selects; None when the body passes
    through untransformed; UNSUPPORTED_MEDIA_TYPE when the integration refuses it.

    The media type is compared without its parameters (``; charset=utf-8``) and case."""
    media_type = (content_type or DEFAULT_CONTENT_TYPE).split(";")[0].strip().lower()
    template = route.request_templates.get(media_type)
    if template is not None:
        return template
    behavior = route.passthrough_behavior
    if behavior == "WHEN_NO_MATCH" or (
        behavior == "WHEN_NO_TEMPLATES" and not route.request_templates
    ):
        return None
    return UNSUPPORTED_MEDIA_TYPE


def pick_share(stage: Stage, draw: float) -> Share:
    """The share a request falls in, for ``draw`` uniform in [0, 1): the canary's percent of
    draws go to the canary, as API Gateway sends each request to it with that probability."""
    canary = next((share for share in stage.shares if share.role == "canary"), None)
    if canary is not None and draw * 100 < canary.percent:
        return canary
    return stage.shares[0]


def qualifier_for(route: Route, share: Share) -> str:
    """The alias the route's integration URI names for requests of ``share``: its
    ``${stageVariables.x}`` replaced by the share's value of ``x``."""
    qualifier = route.qualifier
    for name, value in share.stage_variables.items():
        qualifier = qualifier.replace(f"${{stageVariables.{name}}}", value)
    return qualifier


def pick_version(alias: Alias, draw: float) -> str:
    """The version an invocation of ``alias`` runs, for ``draw`` uniform in [0, 1): a weighted
    alias sends each of its other versions its weight of the invocations."""
    start = 0.0
    versions = alias.versions()
    for version, weight in versions.items():
        start += weight
        if draw < start:
            return version
    return alias.version


# What API Gateway answers when it cannot invoke the alias the stage variables name.
INTERNAL_SERVER_ERROR = GatewayAnswer(500, "Internal server error", "InternalServerErrorException")


@dataclass(frozen=True)
class Invoke:
    """A request API Gateway hands to the function: through which route, share, alias,
    version and mapping template (None: the body passes through)."""

    stage: Stage
    route: Route
    share: Share
    alias: str
    version: str
    template: str | None
    api_key_id: str
    """``$context.identity.apiKeyId``: the key's id when the method takes keys, else empty."""


def decide(
    stack: LocalStack,
    api_key: str,
    *,
    method: str,
    url_path: str,
    headers: Mapping[str, str],
    draws: tuple[float, float],
) -> Invoke | GatewayAnswer:
    """What API Gateway does with a request, in its order: find the method, check the API
    key, pick the mapping template, draw the canary (``draws[0]``) and, for a weighted alias,
    the version (``draws[1]``)."""
    matched = match(stack, method, url_path)
    if isinstance(matched, GatewayAnswer):
        return matched
    route = matched.route
    refused = api_key_problem(route, headers, api_key)
    if refused is not None:
        return refused
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    template = request_template(route, content_type)
    if isinstance(template, GatewayAnswer):
        return template
    share = pick_share(matched.stage, draws[0])
    alias = stack.aliases.get(qualifier_for(route, share))
    if alias is None:
        return INTERNAL_SERVER_ERROR
    return Invoke(
        matched.stage,
        route,
        share,
        alias.name,
        pick_version(alias, draws[1]),
        template,
        stack.api_key_id if route.api_key_required else "",
    )


def log_line(
    method: str,
    path: str,
    *,
    status: int,
    invoked: Invoke | None,
    ms: float,
    request_id: str,
) -> str:
    """One request as the local API logs it; alias and version are ``-`` when API Gateway
    answered without invoking the function."""
    alias, version = (invoked.alias, f"v{invoked.version}") if invoked else ("-", "-")
    return f"{method} {path} {status} {alias} {version} {ms:.0f}ms {request_id}"


def served_versions(stack: LocalStack) -> list[tuple[str, str]]:
    """Each (alias, version) that some share of a stage's requests can reach, in the order the
    stages, shares and routes list them."""
    served: list[tuple[str, str]] = []
    for stage in stack.stages:
        for share in stage.shares:
            if share.percent <= 0:
                continue
            for route in stack.routes:
                alias = stack.aliases.get(qualifier_for(route, share))
                if alias is None:
                    continue
                for version, weight in alias.versions().items():
                    if weight > 0 and (alias.name, version) not in served:
                        served.append((alias.name, version))
    return served
