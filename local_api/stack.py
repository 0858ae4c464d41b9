"""What the local API serves, read from the stack's program run: the resources a deploy would
create, recorded under mocks (:func:`versioned_lambda_api.analysis.plan.run_with_assumed_versions`).

Everything here is a plain function of the resource graph, so it is tested without starting
anything. What the local API cannot serve faithfully is refused by name when it starts
(:class:`UnservableStackError`), not served differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.routing import (
    ALIAS,
    FUNCTION,
    REST_API,
    STAGE,
    Endpoint,
    alias_weights,
    endpoints,
    traffic_shares,
)

TABLE = "aws:dynamodb/table:Table"
API_KEY = "aws:apigateway/apiKey:ApiKey"


class UnservableStackError(Exception):
    """The stack declares something the local API cannot serve as API Gateway would."""


@dataclass(frozen=True)
class Route:
    """One method of one resource path, as its integration is deployed."""

    path: str
    """Resource path without the leading ``/``, e.g. ``events``."""
    method: str
    request_templates: Mapping[str, str]
    """Request mapping templates by content type (lower case)."""
    passthrough_behavior: str
    """``WHEN_NO_MATCH``, ``WHEN_NO_TEMPLATES`` or ``NEVER``."""
    responses: tuple[api_spec.IntegrationResponse, ...]
    api_key_required: bool
    qualifier: str
    """The integration URI's qualifier: an alias name, or ``${stageVariables.<name>}``."""


@dataclass(frozen=True)
class Share:
    """A share of a stage's requests and the stage variables its requests see."""

    role: str
    """``live`` or ``canary``."""
    percent: float
    stage_variables: Mapping[str, str]


@dataclass(frozen=True)
class Stage:
    name: str
    shares: tuple[Share, ...]
    """The live share first, then the canary's when it has one."""


@dataclass(frozen=True)
class Alias:
    name: str
    version: str
    """The version the alias points to."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """A weighted alias' other versions and the share of its invocations each gets."""

    def versions(self) -> dict[str, float]:
        """Every version the alias invokes and its share, from 0 to 1."""
        extra = sum(self.weights.values())
        return {self.version: 1.0 - extra, **self.weights}


@dataclass(frozen=True)
class Function:
    name: str
    arn: str
    """Unqualified ARN."""
    region: str
    handler: str
    memory_mb: int
    timeout_s: float
    environment: Mapping[str, str]
    newest_version: str
    """The version a deploy publishes: the working tree's code."""
    source_files: Mapping[str, Path]
    """The code archive's entries: path inside the archive to the file it is made from."""


@dataclass(frozen=True)
class Table:
    name: str
    create_arguments: Mapping[str, Any]
    """DynamoDB CreateTable's arguments for it (without TableName)."""


@dataclass(frozen=True)
class LocalStack:
    """Everything the local API serves for one stack."""

    stages: tuple[Stage, ...]
    routes: tuple[Route, ...]
    function: Function
    aliases: Mapping[str, Alias]
    tables: tuple[Table, ...]
    api_key_id: str
    """``$context.identity.apiKeyId`` of the stage's key; empty when the API takes no keys."""

    @property
    def api_key_required(self) -> bool:
        return any(route.api_key_required for route in self.routes)

    def stage(self, name: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.name == name), None)


def local_stack(graph: ResourceGraph) -> LocalStack:
    """What the local API serves for the stack whose resources ``graph`` records."""
    apis = graph.of_type(REST_API)
    if len(apis) != 1:
        raise UnservableStackError(
            f"the stack declares {len(apis)} REST APIs; the local API serves a stack with one"
        )
    api = apis[0]
    found = [endpoint for endpoint in endpoints(graph) if endpoint.api is api]
    invoked = sorted({str(endpoint.function_arn) for endpoint in found})
    function_arn = found[0].function_arn if found else None
    if function_arn is None or len(invoked) != 1:
        raise UnservableStackError(
            "the local API serves REST APIs whose every method invokes one Lambda function; "
            f"this one's methods invoke {', '.join(invoked) or 'nothing'}"
        )
    routes = tuple(_route(endpoint) for endpoint in found)
    stages = tuple(
        Stage(
            name=str(stage.inputs["stageName"]),
            shares=tuple(
                Share(role, percent, dict(variables))
                for role, percent, variables in traffic_shares(stage)
            ),
        )
        for stage in graph.of_type(STAGE)
        if stage.inputs.get("restApi") == api.id
    )
    function = _function(graph, function_arn)
    aliases = {
        str(alias.inputs["name"]): Alias(
            str(alias.inputs["name"]),
            str(alias.inputs.get("functionVersion")),
            alias_weights(alias),
        )
        for alias in graph.of_type(ALIAS)
        if alias.inputs.get("functionName") in (function.name, function.arn)
    }
    keys = graph.of_type(API_KEY)
    return LocalStack(
        stages=stages,
        routes=routes,
        function=function,
        aliases=aliases,
        tables=tuple(_table(record) for record in graph.of_type(TABLE)),
        api_key_id=keys[0].id if keys else "",
    )


def _route(endpoint: Endpoint) -> Route:
    method = f"{endpoint.http_method} /{endpoint.path}"
    if endpoint.integration_type != "AWS":
        raise UnservableStackError(
            f"{method}'s integration is {endpoint.integration_type or 'missing'}; the local "
            "API serves AWS (non-proxy Lambda) integrations"
        )
    if endpoint.authorization != "NONE":
        raise UnservableStackError(
            f"{method} uses {endpoint.authorization} authorization, which the local API does "
            "not check; it serves methods open or behind an API key"
        )
    if "{" in endpoint.path or endpoint.http_method == "ANY":
        raise UnservableStackError(
            f"{method}: the local API serves fixed paths and methods, not path parameters or ANY"
        )
    return Route(
        path=endpoint.path,
        method=endpoint.http_method,
        request_templates={kind.lower(): text for kind, text in endpoint.request_templates.items()},
        passthrough_behavior=endpoint.passthrough_behavior,
        responses=endpoint.json_responses,
        api_key_required=endpoint.api_key_required,
        qualifier=endpoint.qualifier or "",
    )


def _function(graph: ResourceGraph, arn: str) -> Function:
    record = next((f for f in graph.of_type(FUNCTION) if f.outputs.get("arn") == arn), None)
    if record is None:
        raise UnservableStackError(f"the API invokes {arn}, which the stack does not declare")
    inputs = record.inputs
    code = inputs.get("code")
    assets = getattr(code, "assets", None)
    if not isinstance(assets, dict):
        raise UnservableStackError(
            f"function {record.name}'s code is not an archive of local files"
        )
    variables = (inputs.get("environment") or {}).get("variables") or {}
    return Function(
        name=str(record.outputs.get("name")),
        arn=arn,
        region=arn.split(":")[3],
        handler=str(inputs.get("handler")),
        memory_mb=int(inputs.get("memorySize") or 128),
        timeout_s=float(inputs.get("timeout") or 3),
        environment={str(k): str(v) for k, v in variables.items()},
        newest_version=str(record.outputs.get("version")),
        source_files={name: Path(asset.path) for name, asset in assets.items()},
    )


def _table(record: ResourceRecord) -> Table:
    inputs = record.inputs
    if inputs.get("globalSecondaryIndexes") or inputs.get("localSecondaryIndexes"):
        raise UnservableStackError(
            f"table {record.name} has secondary indexes, which the local API does not create"
        )
    keys = [("HASH", inputs.get("hashKey")), ("RANGE", inputs.get("rangeKey"))]
    return Table(
        name=str(record.outputs.get("name")),
        create_arguments={
            "KeySchema": [{"AttributeName": name, "KeyType": kind} for kind, name in keys if name],
            "AttributeDefinitions": [
                {"AttributeName": a["name"], "AttributeType": a["type"]}
                for a in inputs.get("attributes") or []
            ],
            # Capacity is not modelled locally: every table is on demand.
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def source_folder(function: Function) -> Path:
    """The folder the function's code archive is made from."""
    name, path = next(iter(function.source_files.items()))
    folder = path
    for _ in Path(name).parts:
        folder = folder.parent
    return folder
