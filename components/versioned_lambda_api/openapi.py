"""The REST API as one OpenAPI 3 document, with API Gateway's extensions.

Declaring the API as a document on ``aws.apigateway.RestApi(body=...)`` (imported in overwrite
mode) instead of one Resource, Method and Integration per route is what makes a removed or
renamed route disappear in the same ``pulumi up``: the import replaces the whole API at once, and
the deployment that follows snapshots exactly the document. With separate resources, Pulumi
deletes a removed route's Method only after the new Deployment has snapshotted it, while its
invoke permission is already gone, so the route answers 500 until some later deploy
(pulumi/pulumi-aws#3289, #3683). It is also how SAM and Pulumi's own ``aws-apigateway``
component declare REST APIs.

The extensions used, as AWS documents them
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions.html):
``x-amazon-apigateway-integration`` (per operation: type, httpMethod, uri, passthroughBehavior,
requestTemplates, responses keyed by selection pattern or ``default``),
``x-amazon-apigateway-any-method`` (the ``ANY`` method), ``x-amazon-apigateway-api-key-source``
(API keys read from the ``x-api-key`` header), and an ``apiKey`` security scheme named
``x-api-key`` in the header, which API Gateway reads as "this method requires an API key".

Pure functions of plain values: the component renders the document once the function's ARN is
known, tests and ``make plan`` read it back.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from versioned_lambda_api.api_spec import (
    INTEGRATION_RESPONSES,
    JSON_CONTENT_TYPE,
    METHOD_RESPONSE_STATUSES,
    Route,
    lambda_integration_uri,
)

OPENAPI_VERSION = "3.0.1"
API_KEY_SCHEME = "api_key"
API_KEY_HEADER = "x-api-key"
ANY_METHOD_KEY = "x-amazon-apigateway-any-method"
EMPTY_MODEL = "Empty"


def operation_key(method: str) -> str:
    """The key of a method's operation under its path."""
    return ANY_METHOD_KEY if method == "ANY" else method.lower()


def path_parameters(path: str) -> list[str]:
    """The names of a path's parameters: ``orders/{id}/files/{proxy+}`` -> ``id``, ``proxy``."""
    return [
        segment[1:-1].removesuffix("+")
        for segment in path.split("/")
        if segment.startswith("{") and segment.endswith("}")
    ]


def _integration(route: Route, integration_uri: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for response in INTEGRATION_RESPONSES:
        responses[response.selection_pattern or "default"] = {
            "statusCode": response.status_code,
            "responseTemplates": {JSON_CONTENT_TYPE: response.template},
        }
    return {
        "type": "aws",
        # Lambda's Invoke API is a POST whatever the client's method.
        "httpMethod": "POST",
        "uri": integration_uri,
        # Without a matching template the raw body would reach the function unmapped.
        "passthroughBehavior": "never",
        "requestTemplates": {JSON_CONTENT_TYPE: route.request_template},
        "responses": responses,
    }


def _operation(route: Route, api_key_required: bool, integration_uri: str) -> dict[str, Any]:
    operation: dict[str, Any] = {}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_parameters(route.path)
    ]
    if parameters:
        operation["parameters"] = parameters
    if api_key_required:
        operation["security"] = [{API_KEY_SCHEME: []}]
    # Every status a reply may set through $context.responseOverride.status is declared too.
    operation["responses"] = {
        status: {
            "description": f"{status} response",
            "content": {
                JSON_CONTENT_TYPE: {"schema": {"$ref": f"#/components/schemas/{EMPTY_MODEL}"}}
            },
        }
        for status in METHOD_RESPONSE_STATUSES
    }
    operation["x-amazon-apigateway-integration"] = _integration(route, integration_uri)
    return operation


def document(
    title: str,
    routes: list[Route],
    api_key_required: bool,
    function_arn: str,
) -> dict[str, Any]:
    """The OpenAPI document of an API whose every route invokes the function ``function_arn``
    through the alias its stage variable names."""
    integration_uri = lambda_integration_uri(function_arn)
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        paths.setdefault(f"/{route.path}", {})[operation_key(route.method)] = _operation(
            route, api_key_required, integration_uri
        )
    components: dict[str, Any] = {
        "schemas": {EMPTY_MODEL: {"type": "object", "title": "Empty Schema"}},
    }
    if api_key_required:
        components["securitySchemes"] = {
            API_KEY_SCHEME: {"type": "apiKey", "name": API_KEY_HEADER, "in": "header"}
        }
    return {
        "openapi": OPENAPI_VERSION,
        # The title becomes the API's name on import; the provider then sets the RestApi's own.
        "info": {"title": title, "version": "1.0"},
        # Overwrite mode resets every API-level property the document leaves out.
        "x-amazon-apigateway-api-key-source": "HEADER",
        "paths": paths,
        "components": components,
    }


def document_json(
    title: str, routes: list[Route], api_key_required: bool, function_arn: str
) -> str:
    """:func:`document` as the JSON text given to the RestApi's ``body``: keys sorted, so the
    same API always gives the same text and the same :func:`fingerprint`."""
    return json.dumps(
        document(title, routes, api_key_required, function_arn),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def fingerprint(body: str) -> str:
    """The deployment trigger: a new deployment exactly when the document changes."""
    return hashlib.sha256(body.encode()).hexdigest()
