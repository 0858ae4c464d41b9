"""Preflight: a healthy graph passes, and each rule catches the graph that breaks it.

Graphs are built here directly, record by record, in both forms preflight reads: a RestApi whose
``body`` is the OpenAPI document (``openapi``), and Resource/Method/Integration records
(``resources``, as raw programs declare APIs). Every test gets a fresh graph, so no test sees
another's changes. The shipped stacks and the component run under the recording mocks too.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Literal

import pulumi
import pytest

from tests.conftest import PROJECT, run_stack
from versioned_lambda_api import VersionedLambdaApi, VersionedLambdaApiArgs
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.preflight import (
    LAMBDA_POLICY_LIMIT,
    RULES,
    Finding,
    arn_like,
    preflight,
    source_arn_covers,
)
from versioned_lambda_api.testing import start_mocks

Source = Literal["openapi", "resources"]
SOURCES: tuple[Source, ...] = ("openapi", "resources")

ALIAS = "aws:lambda/alias:Alias"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
REST_API = "aws:apigateway/restApi:RestApi"
API_RESOURCE = "aws:apigateway/resource:Resource"
STAGE = "aws:apigateway/stage:Stage"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
METHOD_RESPONSE = "aws:apigateway/methodResponse:MethodResponse"
INTEGRATION_RESPONSE = "aws:apigateway/integrationResponse:IntegrationResponse"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
API_KEY = "aws:apigateway/apiKey:ApiKey"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
USAGE_PLAN_KEY = "aws:apigateway/usagePlanKey:UsagePlanKey"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_NAME = "fn-abc1234"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
API_ID = "a1b2c3d4e5"
EXECUTION_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}"
DEPLOYMENT_ID = "dep123"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/role-abc1234"
INVALID_PERMISSIONS = "500 'Invalid permissions on Lambda function'"

URI = (
    f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{FUNCTION_ARN}"
    ":${stageVariables.lambdaAlias}/invocations"
)
REQUEST_TEMPLATE = (
    '{"stage": "$context.stage", "method": "$context.httpMethod", '
    '"bodyBase64": "$util.base64Encode($input.body)"}'
)
BAD_REQUEST = r"^\[BadRequest\] [\s\S]*"
RESPONSES: tuple[tuple[str, str | None, str], ...] = (
    ("200", None, "$input.json('$')"),
    ("400", BAD_REQUEST, "$input.path('$.errorMessage').substring(13)"),
)
ROUTES = (("POST", "events"), ("GET", "events"))

PROD_STAGE = "Stage prod-stage"
DEV_STAGE = "Stage dev-stage"
API = "RestApi api"


def _record(
    typ: str,
    name: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any] | None = None,
    resource_id: str | None = None,
) -> ResourceRecord:
    return ResourceRecord(typ, name, inputs, {**inputs, **(outputs or {})}, resource_id or name)


def openapi_body(
    routes: tuple[tuple[str, str], ...] = ROUTES, api_key_required: bool = True
) -> dict[str, Any]:
    """The document the component declares its API with, for ``routes`` ((method, path))."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in routes:
        operation: dict[str, Any] = {
            "responses": {
                status: {"description": status, "content": {"application/json": {}}}
                for status, _, _ in RESPONSES
            },
            "x-amazon-apigateway-integration": {
                "type": "aws",
                "httpMethod": "POST",
                "uri": URI,
                "passthroughBehavior": "never",
                "requestTemplates": {"application/json": REQUEST_TEMPLATE},
                "responses": {
                    pattern or "default": {
                        "statusCode": status,
                        "responseTemplates": {"application/json": template},
                    }
                    for status, pattern, template in RESPONSES
                },
            },
        }
        if api_key_required:
            operation["security"] = [{"api_key": []}]
        key = "x-amazon-apigateway-any-method" if method == "ANY" else method.lower()
        paths.setdefault(f"/{path}", {})[key] = operation
    return {
        "openapi": "3.0.1",
        "info": {"title": "api", "version": "1.0"},
        "x-amazon-apigateway-api-key-source": "HEADER",
        "paths": paths,
        "components": {
            "securitySchemes": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}},
        },
    }


def _api_records(
    source: Source, routes: tuple[tuple[str, str], ...], api_key_required: bool
) -> list[ResourceRecord]:
    api_outputs = {"executionArn": EXECUTION_ARN, "rootResourceId": "root"}
    if source == "openapi":
        body = json.dumps(openapi_body(routes, api_key_required))
        inputs = {"body": body, "putRestApiMode": "overwrite"}
        return [_record(REST_API, "api", inputs, api_outputs, API_ID)]
    records = [_record(REST_API, "api", {"name": "api"}, api_outputs, API_ID)]
    resource_ids = {"": "root"}
    for _, path in routes:
        segments = path.split("/") if path else []
        for depth in range(1, len(segments) + 1):
            prefix = "/".join(segments[:depth])
            if prefix in resource_ids:
                continue
            resource_ids[prefix] = f"res-{prefix}"
            parent = resource_ids["/".join(segments[: depth - 1])]
            records.append(
                _record(
                    API_RESOURCE,
                    f"resource-{prefix}",
                    {"restApi": API_ID, "parentId": parent, "pathPart": segments[depth - 1]},
                    {"path": f"/{prefix}"},
                    f"res-{prefix}",
                )
            )
    for method, path in routes:
        key = {"restApi": API_ID, "resourceId": resource_ids[path], "httpMethod": method}
        route = f"{method}-{path}"
        records.append(
            _record(
                METHOD,
                route,
                {**key, "authorization": "NONE", "apiKeyRequired": api_key_required},
            )
        )
        records.append(
            _record(
                INTEGRATION,
                f"{route}-integration",
                {
                    **key,
                    "type": "AWS",
                    "integrationHttpMethod": "POST",
                    "uri": URI,
                    "requestTemplates": {"application/json": REQUEST_TEMPLATE},
                    "passthroughBehavior": "NEVER",
                },
            )
        )
        for status, pattern, template in RESPONSES:
            records.append(
                _record(METHOD_RESPONSE, f"{route}-{status}", {**key, "statusCode": status})
            )
            response = {
                **key,
                "statusCode": status,
                "responseTemplates": {"application/json": template},
            }
            if pattern is not None:
                response["selectionPattern"] = pattern
            records.append(_record(INTEGRATION_RESPONSE, f"{route}-{status}-integration", response))
    return records


def healthy(
    source: Source = "openapi",
    routes: tuple[tuple[str, str], ...] = ROUTES,
    api_key_required: bool = True,
) -> ResourceGraph:
    """A graph that deploys and works: a function with a dev alias and pinned prod aliases, an
    API, a dev stage and a prod stage with a canary, one permission per stage and alias, keys,
    usage plans, throttling, logs."""
    graph = ResourceGraph()
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}],
    }
    records = [
        _record(LOG_GROUP, "logs", {"retentionInDays": 30}),
        _record(
            ROLE, "role", {"assumeRolePolicy": "{}"}, {"arn": ROLE_ARN, "name": "role-abc1234"}
        ),
        _record(ROLE_POLICY, "policy", {"role": "role-abc1234", "policy": json.dumps(policy)}),
        _record(
            FUNCTION,
            "fn",
            {"role": ROLE_ARN, "publish": True},
            {"name": FUNCTION_NAME, "arn": FUNCTION_ARN, "version": "4"},
            FUNCTION_NAME,
        ),
        _alias("dev-live-alias", "dev", "4"),
        _alias("prod-live-alias", "prod", "3"),
        _alias("prod-canary-alias", "prod-canary", "4"),
        *_api_records(source, routes, api_key_required),
        _record(
            DEPLOYMENT,
            "deployment",
            {"restApi": API_ID, "triggers": {"redeployment": hashlib.sha256(b"x").hexdigest()}},
            resource_id=DEPLOYMENT_ID,
        ),
    ]
    for stage, aliases, canary in (
        ("dev", ("dev",), None),
        ("prod", ("prod", "prod-canary"), "prod-canary"),
    ):
        inputs: dict[str, Any] = {
            "restApi": API_ID,
            "deployment": DEPLOYMENT_ID,
            "stageName": stage,
            "variables": {"lambdaAlias": stage},
        }
        if canary is not None:
            inputs["canarySettings"] = {
                "deploymentId": DEPLOYMENT_ID,
                "percentTraffic": 10,
                "stageVariableOverrides": {"lambdaAlias": canary},
            }
        records.append(_record(STAGE, f"{stage}-stage", inputs, resource_id=f"ags-{stage}"))
        for alias in aliases:
            role = "canary" if alias == canary else "live"
            records.append(
                _record(
                    PERMISSION,
                    f"{stage}-{role}-invoke",
                    {
                        "action": "lambda:InvokeFunction",
                        "function": FUNCTION_NAME,
                        "qualifier": alias,
                        "principal": "apigateway.amazonaws.com",
                        "sourceArn": f"{EXECUTION_ARN}/{stage}/*/*",
                        "statementId": f"apigateway-{stage}-{role}",
                    },
                )
            )
        records.append(
            _record(
                METHOD_SETTINGS,
                f"{stage}-method-settings",
                {
                    "restApi": API_ID,
                    "stageName": stage,
                    "methodPath": "*/*",
                    "settings": {"throttlingRateLimit": 50, "throttlingBurstLimit": 100},
                },
            )
        )
        records += [
            _record(API_KEY, f"{stage}-api-key", {"enabled": True}, resource_id=f"key-{stage}"),
            _record(
                USAGE_PLAN,
                f"{stage}-usage-plan",
                {
                    "apiStages": [{"apiId": API_ID, "stage": stage}],
                    "throttleSettings": {"rateLimit": 50, "burstLimit": 100},
                },
                resource_id=f"plan-{stage}",
            ),
            _record(
                USAGE_PLAN_KEY,
                f"{stage}-usage-plan-key",
                {"keyId": f"key-{stage}", "keyType": "API_KEY", "usagePlanId": f"plan-{stage}"},
            ),
        ]
    for record in records:
        graph.add(record)
    return graph


def _alias(name: str, alias: str, version: str) -> ResourceRecord:
    return _record(
        ALIAS,
        name,
        {"name": alias, "functionName": FUNCTION_NAME, "functionVersion": version},
        {"arn": f"{FUNCTION_ARN}:{alias}"},
    )


def body_of(graph: ResourceGraph) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(graph.resources["api"].inputs["body"])
    return body


def set_body(graph: ResourceGraph, body: dict[str, Any]) -> None:
    graph.resources["api"].inputs["body"] = json.dumps(body)


def integration(graph: ResourceGraph, source: Source, method: str, path: str) -> dict[str, Any]:
    """The integration of ``method /path`` to edit: in the body (written back by
    :func:`edit_integration`) or the Integration record's inputs."""
    if source == "openapi":
        operation = body_of(graph)["paths"][f"/{path}"][method.lower()]
        found: dict[str, Any] = operation["x-amazon-apigateway-integration"]
        return found
    inputs: dict[str, Any] = graph.resources[f"{method}-{path}-integration"].inputs
    return inputs


def edit_integration(
    graph: ResourceGraph, source: Source, method: str, path: str, **changes: Any
) -> None:
    """Set (or, with ``None``, remove) integration fields, named as the source names them."""
    if source == "openapi":
        body = body_of(graph)
        target = body["paths"][f"/{path}"][method.lower()]["x-amazon-apigateway-integration"]
    else:
        target = graph.resources[f"{method}-{path}-integration"].inputs
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    if source == "openapi":
        set_body(graph, body)


def integration_label(source: Source, method: str, path: str) -> str:
    return API if source == "openapi" else f"Integration {method}-{path}-integration"


def method_label(source: Source, method: str, path: str) -> str:
    return API if source == "openapi" else f"Method {method}-{path}"


def check(graph: ResourceGraph, open_methods_allowed: bool = False) -> list[Finding]:
    """Preflight's findings, checked against the rule table they claim to come from."""
    findings = preflight(graph, open_methods_allowed=open_methods_allowed)
    rules = {rule.id: rule for rule in RULES}
    for finding in findings:
        assert finding.name == rules[finding.rule].name, finding
        assert finding.severity == rules[finding.rule].severity, finding
    return findings


def one(findings: list[Finding], rule: str, resource: str, *words: str) -> Finding:
    """Assert ``findings`` is exactly one finding of ``rule`` on ``resource`` saying ``words``."""
    assert len(findings) == 1, findings
    (finding,) = findings
    assert (finding.rule, finding.resource) == (rule, resource), finding
    for word in words:
        assert word in finding.message, (word, finding.message)
    return finding


def delete(graph: ResourceGraph, *names: str) -> None:
    for name in names:
        del graph.resources[name]


# --- Healthy graphs and the shipped project ---------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_a_healthy_graph_has_no_findings(source: Source) -> None:
    assert check(healthy(source)) == []


@pytest.mark.parametrize("source", SOURCES)
def test_path_parameters_any_and_greedy_routes_pass(source: Source) -> None:
    routes = (("GET", "events/{id}"), ("ANY", "files/{proxy+}"), ("GET", ""))
    assert check(healthy(source, routes)) == []


@pytest.mark.parametrize(
    ("stack", "overrides", "version"),
    [("dev", None, 1), ("prod", None, 1), ("prod", {"stableVersion": "3"}, 4)],
)
def test_the_shipped_stacks_have_no_findings(
    stack: str, overrides: dict[str, str] | None, version: int
) -> None:
    assert check(run_stack(stack, overrides, published_version=version).graph) == []


def test_the_component_with_nested_parameterised_routes_has_no_findings() -> None:
    mocks = start_mocks(PROJECT, "dev", {}, published_version=4)
    args: dict[str, Any] = {
        "code": pulumi.AssetArchive({"handler.py": pulumi.StringAsset("def handler(e, c): ...")}),
        "handler": "handler.handler",
        "routes": [
            {"path": "events", "method": "POST"},
            {"path": "events/{id}", "method": "GET"},
            {"path": "events/{id}/items", "method": "GET"},
        ],
        "stages": [
            {"name": "dev", "alias": "dev"},
            {"name": "prod", "alias": "prod", "canary_percent": 12.5, "stable_version": 3},
        ],
    }

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        api_args: VersionedLambdaApiArgs = args  # type: ignore[assignment]
        return VersionedLambdaApi("api", api_args).function_name

    program()
    assert check(mocks.graph) == []


def test_rules_are_listed_once_each_in_id_order() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == [f"PF{number:03d}" for number in range(1, len(RULES) + 1)]
    assert len(RULES) == 26
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert {rule.severity for rule in RULES} == {"error", "warning"}
    assert all(rule.summary.endswith(".") for rule in RULES)


def test_a_hundred_route_api_is_checked_quickly() -> None:
    routes = tuple(
        (method, f"area{n % 10}/items{n}/{{id}}") for n in range(50) for method in ("GET", "PUT")
    )
    graph = healthy("openapi", routes)
    started = time.perf_counter()
    assert check(graph) == []
    assert time.perf_counter() - started < 1.5


def test_a_hundred_routes_with_a_permission_each_are_checked_quickly() -> None:
    routes = tuple((method, f"items{n}") for n in range(50) for method in ("GET", "PUT"))
    graph = healthy("resources", routes)
    per_route(graph, routes)
    started = time.perf_counter()
    findings = check(graph)
    assert time.perf_counter() - started < 1.5
    # The per-route policies overflow Lambda's limit; nothing else is wrong.
    assert {f.rule for f in findings} == {"PF014"}


def per_route(graph: ResourceGraph, routes: tuple[tuple[str, str], ...]) -> None:
    """Replace the stage-wide permissions with one per stage, alias and route, as raw
    programs often write them."""
    for name in [n for n, r in graph.resources.items() if r.type == PERMISSION]:
        stage, role, _ = name.split("-")
        alias = {"dev": "dev", "prod-live": "prod", "prod-canary": "prod-canary"}[
            stage if stage == "dev" else f"{stage}-{role}"
        ]
        del graph.resources[name]
        for method, path in routes:
            arn_path = "/".join("*" if p.startswith("{") else p for p in path.split("/"))
            graph.add(
                _record(
                    PERMISSION,
                    f"{stage}-{role}-{method}-{re.sub(r'[^A-Za-z0-9]', '_', path)}-invoke",
                    {
                        "action": "lambda:InvokeFunction",
                        "function": FUNCTION_NAME,
                        "qualifier": alias,
                        "principal": "apigateway.amazonaws.com",
                        "sourceArn": f"{EXECUTION_ARN}/{stage}/{method}/{arn_path}",
                    },
                    {"statementId": f"{stage}-{role}-{method}-{len(graph.resources)}"},
                )
            )


# --- ArnLike ----------------------------------------------------------------------------------

EXAMPLE = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/events"


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        (EXAMPLE, EXAMPLE, True),
        ("arn:aws:execute-api:*:123456789012:abc123/*", EXAMPLE, True),
        ("arn:aws:execute-api:us-east-?:123456789012:abc123/prod/GET/events", EXAMPLE, True),
        ("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/???/events", EXAMPLE, True),
        ("arn:aws:execute-api:us-east-1:123456789012:abc123/prod/??/events", EXAMPLE, False),
        # A wildcard stays inside its colon-separated part.
        ("arn:aws:execute-api:us-east-1*", EXAMPLE, False),
        ("arn:aws:execute-api:us-east-1:*", EXAMPLE, False),
        # Case-sensitive.
        ("arn:aws:execute-api:us-east-1:123456789012:ABC123/*", EXAMPLE, False),
        # The resource part keeps any further colons.
        ("arn:aws:s3:::bucket/a:b*", "arn:aws:s3:::bucket/a:bc", True),
        ("arn:aws:s3:::bucket/a:b?", "arn:aws:s3:::bucket/a:b", False),
    ],
)
def test_arn_like(pattern: str, arn: str, matches: bool) -> None:
    assert arn_like(pattern, arn) is matches


@pytest.mark.parametrize(
    ("suffix", "path", "covers"),
    [
        ("/prod/GET/events/*", "events/{id}", True),
        ("/prod/GET/*", "events/{id}", True),
        ("/prod/GET/events/e*", "events/{id}", False),
        ("/prod/GET/events/?", "events/{id}", False),
        ("/prod/GET/events/{id}", "events/{id}", False),
        ("/prod/GET/files/*", "files/{proxy+}", True),
        ("/prod/GET/", "", True),
        ("/prod/GET/*", "", True),
        ("/prod/GET/events", "", False),
    ],
)
def test_source_arn_covers_every_value_of_a_path_parameter(
    suffix: str, path: str, covers: bool
) -> None:
    execution = "arn:aws:execute-api:us-east-1:123456789012:abc123"
    assert source_arn_covers(execution + suffix, execution, "prod", "GET", path) is covers


# --- PF001 missing-invoke-permission ----------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf001_the_canary_without_its_permission(source: Source) -> None:
    graph = healthy(source)
    delete(graph, "prod-canary-invoke")
    finding = one(
        check(graph),
        "PF001",
        "Alias prod-canary-alias",
        "stage prod's canary (10% of requests) invokes alias prod-canary",
        "for GET /events, POST /events: ",
        INVALID_PERMISSIONS,
    )
    assert f"sourceArn {EXECUTION_ARN}/prod/*/* (every method and path" in finding.fix
    assert "qualifier prod-canary" in finding.fix
    assert "principal apigateway.amazonaws.com" in finding.fix


@pytest.mark.parametrize(
    ("pattern", "uncovered"),
    [
        ("{arn}/prod/POST/events", "GET /events"),
        ("{arn}/*/POST/events", "GET /events"),  # any stage, one method
        ("{arn}/prod/*/*", None),  # every method and path of prod
        ("{arn}/*", None),
        ("{arn}/prod/GET/*", "POST /events"),  # GET only
        ("{arn}/pro?/*/event?", None),
        ("{arn}/prod/post/events", "GET /events, POST /events"),  # case-sensitive
        ("{arn}/prod/*/events/*", "GET /events, POST /events"),  # no deeper path
        ("{arn}/dev/*/*", "GET /events, POST /events"),
        (f"arn:aws:execute-api:*:{ACCOUNT}:{API_ID}/prod/*/*", None),
        (
            f"arn:aws:execute-api:{REGION}:210987654321:{API_ID}/prod/*/*",
            "GET /events, POST /events",
        ),
        (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:0therap1id/prod/*/*",
            "GET /events, POST /events",
        ),
        (f"arn:aws:execute-api:{REGION}*/prod/*/*", "GET /events, POST /events"),
    ],
)
def test_pf001_source_arns_match_like_iam_arnlike(pattern: str, uncovered: str | None) -> None:
    graph = healthy()
    for name in ("prod-live-invoke", "prod-canary-invoke"):
        graph.resources[name].inputs["sourceArn"] = pattern.format(arn=EXECUTION_ARN)
    findings = [f for f in check(graph) if f.rule == "PF001"]
    if uncovered is None:
        assert findings == []
        return
    assert [f.resource for f in findings] == ["Alias prod-canary-alias", "Alias prod-live-alias"]
    assert all(f"for {uncovered}: " in finding.message for finding in findings)


@pytest.mark.parametrize("source", SOURCES)
def test_pf001_any_needs_every_method(source: Source) -> None:
    graph = healthy(source, (("ANY", "files/{proxy+}"),))
    graph.resources["dev-live-invoke"].inputs["sourceArn"] = f"{EXECUTION_ARN}/dev/GET/*"
    one(check(graph), "PF001", "Alias dev-live-alias", "for ANY /files/{proxy+}: ")


def test_pf001_per_route_permissions_cover_their_routes_only() -> None:
    routes = (("GET", "events/{id}"), ("POST", "events"))
    graph = healthy("resources", routes)
    per_route(graph, routes)
    assert check(graph) == []
    for name, record in graph.resources.items():
        if name.startswith("prod-live-GET"):
            record.inputs["sourceArn"] = f"{EXECUTION_ARN}/prod/GET/events/{{id}}"
    one(check(graph), "PF001", "Alias prod-live-alias", "for GET /events/{id}: ")


def test_pf001_a_permission_on_the_unqualified_function_does_not_cover_an_alias() -> None:
    graph = healthy()
    del graph.resources["dev-live-invoke"].inputs["qualifier"]
    one(
        check(graph),
        "PF001",
        "Alias dev-live-alias",
        "stage dev's live traffic (100% of requests) invokes alias dev,",
    )


@pytest.mark.parametrize("source", SOURCES)
def test_pf001_a_permission_on_an_alias_does_not_cover_the_unqualified_function(
    source: Source,
) -> None:
    graph = healthy(source, (("GET", "events"),))
    edit_integration(
        graph, source, "GET", "events", uri=URI.replace(":${stageVariables.lambdaAlias}", "")
    )
    # The canary then invokes what live traffic does: PF004's.
    findings = [f for f in check(graph) if f.rule == "PF001"]
    assert {f.resource for f in findings} == {"Function fn"}
    assert all("invokes the unqualified function fn-abc1234" in f.message for f in findings)
    assert all("no qualifier" in f.fix for f in findings)


@pytest.mark.parametrize(
    ("function", "qualifier"),
    [
        (f"{FUNCTION_ARN}:dev", None),  # full ARN with the alias as suffix
        (f"{FUNCTION_NAME}:dev", None),  # name with the alias as suffix
        (f"{ACCOUNT}:function:{FUNCTION_NAME}", "dev"),  # partial ARN
        (f"{ACCOUNT}:function:{FUNCTION_NAME}:dev", None),  # partial ARN with suffix
        (FUNCTION_ARN, "dev"),  # full ARN and qualifier
        (f"{FUNCTION_ARN}:dev", "dev"),  # both, agreeing
    ],
)
def test_pf001_every_way_of_naming_the_function_and_alias_counts(
    function: str, qualifier: str | None
) -> None:
    graph = healthy()
    inputs = graph.resources["dev-live-invoke"].inputs
    inputs["function"] = function
    inputs.pop("qualifier")
    if qualifier is not None:
        inputs["qualifier"] = qualifier
    assert [f for f in check(graph) if f.rule == "PF001"] == []


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("action", "lambda:*", True),
        ("action", "*", True),
        ("action", "LAMBDA:invokeFunction", True),  # IAM action names are case-insensitive
        ("action", "lambda:GetFunction", False),
        ("principal", "s3.amazonaws.com", False),
        ("function", "another-function", False),
        ("function", f"{FUNCTION_ARN}:dev-canary", False),  # suffix disagrees with qualifier
        ("sourceAccount", ACCOUNT, True),
        ("sourceAccount", "210987654321", False),
    ],
)
def test_pf001_what_a_permission_must_say(key: str, value: str, allowed: bool) -> None:
    graph = healthy()
    graph.resources["dev-live-invoke"].inputs[key] = value
    findings = [f for f in check(graph) if f.rule == "PF001"]
    if allowed:
        assert findings == []
    else:
        one(findings, "PF001", "Alias dev-live-alias", "for GET /events, POST /events: ")


def test_pf001_a_version_needs_its_own_permission() -> None:
    graph = healthy()
    graph.resources["prod-stage"].inputs["canarySettings"]["stageVariableOverrides"] = {
        "lambdaAlias": "4"
    }
    finding = one(
        check(graph),
        "PF001",
        "Function fn",
        "stage prod's canary (10% of requests) invokes version 4,",
    )
    assert "qualifier 4 " in finding.fix


# --- PF002 undefined-stage-variable -----------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf002_live_traffic_without_its_stage_variable(source: Source) -> None:
    graph = healthy(source)
    graph.resources["prod-stage"].inputs["variables"] = {}
    finding = one(
        check(graph),
        "PF002",
        PROD_STAGE,
        "stage prod's live traffic (90% of requests)",
        "stage variable lambdaAlias",
        "the stage variables do not define it",
        "GET /events, POST /events",
    )
    assert finding.fix == "set variables.lambdaAlias on stage prod"


def test_pf002_the_canary_without_the_variable_either() -> None:
    graph = healthy()
    stage = graph.resources["prod-stage"]
    stage.inputs["variables"] = {"other": "x"}
    stage.inputs["canarySettings"]["stageVariableOverrides"] = {}
    findings = check(graph)
    assert [(f.rule, f.resource) for f in findings] == [("PF002", PROD_STAGE)] * 2
    canary = [f for f in findings if "canary (10% of requests)" in f.message]
    one(canary, "PF002", PROD_STAGE, "neither the stage variables nor the canary overrides")
    assert "canarySettings.stageVariableOverrides.lambdaAlias" in canary[0].fix


# --- PF003 alias-missing ----------------------------------------------------------------------


def test_pf003_the_canary_alias_is_not_in_the_program() -> None:
    graph = healthy()
    delete(graph, "prod-canary-alias")
    finding = one(
        check(graph),
        "PF003",
        PROD_STAGE,
        "stage prod's canary (10% of requests) invokes alias prod-canary",
        "no such alias",
    )
    assert "(dev, prod)" in finding.fix
    assert "stage variable" in finding.fix


@pytest.mark.parametrize("source", SOURCES)
def test_pf003_a_qualifier_written_into_the_uri(source: Source) -> None:
    graph = healthy(source, (("POST", "events"),))
    edit_integration(
        graph, source, "POST", "events", uri=URI.replace("${stageVariables.lambdaAlias}", "nope")
    )
    findings = [f for f in check(graph) if f.rule == "PF003"]
    assert {f.resource for f in findings} == {integration_label(source, "POST", "events")}
    assert all("alias nope" in f.message and "integration URI" in f.fix for f in findings)


def test_pf003_a_version_number_is_not_an_alias() -> None:
    graph = healthy()
    graph.resources["prod-stage"].inputs["canarySettings"]["stageVariableOverrides"] = {
        "lambdaAlias": "7"
    }
    assert [f.rule for f in check(graph)] == ["PF001"]


# --- PF004 canary-equals-live -----------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf004_the_canary_invokes_the_live_alias(source: Source) -> None:
    graph = healthy(source)
    graph.resources["prod-stage"].inputs["canarySettings"]["stageVariableOverrides"] = {
        "lambdaAlias": "prod"
    }
    finding = one(
        check(graph),
        "PF004",
        PROD_STAGE,
        "stage prod's canary (10% of requests) invokes alias prod for GET /events, POST /events",
        "the same as its live traffic",
    )
    assert "canarySettings.stageVariableOverrides.lambdaAlias" in finding.fix


# --- PF005 canary-percent-range ---------------------------------------------------------------


@pytest.mark.parametrize("percent", [150, -1, 100.5, "ten", True, float("nan"), [10]])
def test_pf005_percent_traffic_out_of_range_or_not_a_number(percent: object) -> None:
    graph = healthy()
    graph.resources["prod-stage"].inputs["canarySettings"]["percentTraffic"] = percent
    one(check(graph), "PF005", PROD_STAGE, f"percentTraffic is {percent!r}", "0.0 to 100.0")


@pytest.mark.parametrize("percent", [0, 0.5, 100, 12.5])
def test_pf005_percent_traffic_in_range(percent: float) -> None:
    graph = healthy()
    graph.resources["prod-stage"].inputs["canarySettings"]["percentTraffic"] = percent
    assert check(graph) == []


# --- PF006 alias-on-latest --------------------------------------------------------------------


def test_pf006_an_alias_on_latest() -> None:
    graph = healthy()
    graph.resources["prod-live-alias"].inputs["functionVersion"] = "$LATEST"
    one(check(graph), "PF006", "Alias prod-live-alias", "alias prod of fn-abc1234", "$LATEST")


@pytest.mark.parametrize("source", SOURCES)
def test_pf006_an_integration_uri_on_latest(source: Source) -> None:
    graph = healthy(source, (("POST", "events"),))
    edit_integration(
        graph, source, "POST", "events", uri=URI.replace("${stageVariables.lambdaAlias}", "$LATEST")
    )
    one(
        [f for f in check(graph) if f.rule == "PF006"],  # the canary's is PF004's
        "PF006",
        integration_label(source, "POST", "events"),
        "POST /events",
        ":$LATEST",
    )


def test_pf006_a_stage_variable_naming_latest() -> None:
    graph = healthy()
    graph.resources["dev-stage"].inputs["variables"] = {"lambdaAlias": "$LATEST"}
    one(check(graph), "PF006", DEV_STAGE, "stage dev's live traffic", "invokes $LATEST")


# --- PF007 deployment-without-triggers --------------------------------------------------------


@pytest.mark.parametrize("triggers", [None, {}])
def test_pf007_a_deployment_without_triggers(triggers: dict[str, str] | None) -> None:
    graph = healthy()
    deployment = graph.resources["deployment"]
    if triggers is None:
        del deployment.inputs["triggers"]
    else:
        deployment.inputs["triggers"] = triggers
    finding = one(check(graph), "PF007", "Deployment deployment", "has no triggers")
    assert finding.severity == "warning"
    assert "sha256 of the API's OpenAPI body" in finding.fix


# --- PF008 integration-response-without-method-response ---------------------------------------


def test_pf008_an_integration_response_without_its_method_response_in_the_body() -> None:
    graph = healthy("openapi", (("POST", "events"),))
    body = body_of(graph)
    del body["paths"]["/events"]["post"]["responses"]["400"]
    set_body(graph, body)
    finding = one(
        check(graph),
        "PF008",
        API,
        "integration response 400 of POST /events has no method response 400",
    )
    assert "operation's responses" in finding.fix


def test_pf008_an_integration_response_without_its_method_response_record() -> None:
    graph = healthy("resources", (("POST", "events"),))
    delete(graph, "POST-events-400")
    one(
        check(graph),
        "PF008",
        "IntegrationResponse POST-events-400-integration",
        "integration response 400 of POST /events has no method response 400",
    )


# --- PF009 open-method ------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf009_methods_anyone_can_call(source: Source) -> None:
    graph = healthy(source, (("POST", "events"),), api_key_required=False)
    findings = [f for f in check(graph) if f.rule == "PF009"]
    one(findings, "PF009", method_label(source, "POST", "events"), "POST /events", "no API key")
    assert [f for f in check(graph, open_methods_allowed=True) if f.rule == "PF009"] == []


def test_pf009_the_document_level_security_does_not_count() -> None:
    graph = healthy("openapi", ROUTES, api_key_required=False)
    body = body_of(graph)
    body["security"] = [{"api_key": []}]
    set_body(graph, body)
    one(
        check(graph),
        "PF009",
        API,
        "GET /events, POST /events take no authorization and no API key",
        "ignores the document-level security",
    )


@pytest.mark.parametrize(
    "scheme",
    [
        {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "awsSigv4",
        },
        {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authorizer": {"type": "token"},
        },
        {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "cognito_user_pools",
        },
    ],
)
def test_pf009_an_authorizer_in_the_body_protects_a_method(scheme: dict[str, Any]) -> None:
    graph = healthy("openapi", api_key_required=False)
    body = body_of(graph)
    body["components"]["securitySchemes"]["auth"] = scheme
    for operation in body["paths"]["/events"].values():
        operation["security"] = [{"auth": []}]
    set_body(graph, body)
    assert check(graph) == []


def test_pf009_an_api_key_scheme_in_another_header_is_no_api_key() -> None:
    graph = healthy("openapi", (("GET", "events"),))
    body = body_of(graph)
    body["components"]["securitySchemes"]["api_key"]["name"] = "token"
    set_body(graph, body)
    one([f for f in check(graph) if f.rule == "PF009"], "PF009", API, "GET /events takes")


@pytest.mark.parametrize("protection", [{"authorization": "AWS_IAM"}, {"authorizerId": "abc123"}])
def test_pf009_authorization_without_an_api_key(protection: dict[str, str]) -> None:
    graph = healthy("resources", api_key_required=False)
    for record in graph.of_type(METHOD):
        record.inputs.update(protection)
    assert check(graph) == []


# --- PF010 template-invalid -------------------------------------------------------------------


def set_template(graph: ResourceGraph, source: Source, template: str) -> None:
    edit_integration(
        graph, source, "POST", "events", requestTemplates={"application/json": template}
    )


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "template",
    [
        '{"method": "$context.httpMethod"}',  # no stage at all
        '## $context.stage\n{"method": "$context.httpMethod"}',  # in a line comment
        '#* "stage": "$context.stage" *#{"method": "$context.httpMethod"}',  # a block comment
        '{#if(false)"stage": "$context.stage", #end"method": "$context.httpMethod"}',  # dead
        '{"stageVariables": "$context.stageVariables"}',  # another variable
    ],
)
def test_pf010_a_template_whose_payload_lacks_the_stage(source: Source, template: str) -> None:
    graph = healthy(source, (("POST", "events"),))
    set_template(graph, source, template)
    one(
        check(graph),
        "PF010",
        integration_label(source, "POST", "events"),
        "application/json request template of POST /events does not pass $context.stage",
        "for dev live, prod live, prod canary:",
    )


def test_pf010_a_template_passing_the_stage_to_one_stage_only() -> None:
    graph = healthy("openapi", (("POST", "events"),))
    set_template(graph, "openapi", '{#if($context.stage == "dev")"stage": "$context.stage"#end}')
    one(check(graph), "PF010", API, "for prod live, prod canary:")


@pytest.mark.parametrize("template", ['{"stage": "${context.stage}"}', '{"s": "$!context.stage"}'])
def test_pf010_every_spelling_of_the_stage_passes(template: str) -> None:
    graph = healthy()
    set_template(graph, "openapi", template)
    assert check(graph) == []


@pytest.mark.parametrize("source", SOURCES)
def test_pf010_a_template_that_renders_broken_json(source: Source) -> None:
    graph = healthy(source, (("POST", "events"),))
    set_template(graph, source, '{"stage": "$context.stage" "x": 1}')
    one(
        check(graph),
        "PF010",
        integration_label(source, "POST", "events"),
        "request template of POST /events does not render to valid JSON",
        "dev live, prod live, prod canary: not valid JSON",
    )


def test_pf010_a_template_that_cannot_be_rendered() -> None:
    graph = healthy("openapi", (("POST", "events"),))
    set_template(graph, "openapi", '#if($context.stage == "dev")\n{"stage": "$context.stage"}\n')
    one(check(graph), "PF010", API, "dev live, prod live, prod canary: cannot render")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("passthrough", "words"),
    [
        (None, "passthroughBehavior WHEN_NO_MATCH: the raw request body reaches the function"),
        ("when_no_templates", "the raw request body reaches the function"),
        ("NEVER", "rejects its requests with 415"),
    ],
)
def test_pf010_an_integration_without_templates(
    source: Source, passthrough: str | None, words: str
) -> None:
    graph = healthy(source, (("POST", "events"),))
    edit_integration(
        graph, source, "POST", "events", requestTemplates=None, passthroughBehavior=passthrough
    )
    one(check(graph), "PF010", integration_label(source, "POST", "events"), "POST /events", words)


def test_pf010_templates_that_let_other_content_types_through() -> None:
    graph = healthy("openapi", (("POST", "events"),))
    edit_integration(graph, "openapi", "POST", "events", passthroughBehavior="when_no_match")
    one(check(graph), "PF010", API, "reaches the function raw")


@pytest.mark.parametrize("source", SOURCES)
def test_pf010_a_proxy_integration_needs_no_template(source: Source) -> None:
    graph = healthy(source, (("POST", "events"),))
    edit_integration(
        graph,
        source,
        "POST",
        "events",
        type="aws_proxy",
        requestTemplates=None,
        passthroughBehavior=None,
    )
    assert check(graph) == []


# --- PF011 iam-wildcard-action ----------------------------------------------------------------


def add_statement(record: ResourceRecord, statement: dict[str, Any]) -> None:
    policy = json.loads(record.inputs["policy"])
    policy["Statement"].append(statement)
    record.inputs["policy"] = json.dumps(policy)


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ({"Sid": "All", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}, "dynamodb:*"),
        ({"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get?bject"]}, "s3:Get?bject"),
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "allows *:"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "allows NotAction"),
    ],
)
def test_pf011_a_wildcard_in_the_role_policy(statement: dict[str, Any], words: str) -> None:
    graph = healthy()
    add_statement(graph.resources["policy"], statement)
    one(check(graph), "PF011", "RolePolicy policy", words)


def test_pf011_a_wildcard_deny_is_fine() -> None:
    graph = healthy()
    add_statement(
        graph.resources["policy"], {"Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": "*"}
    )
    assert check(graph) == []


def test_pf011_inline_policies_of_a_role_and_managed_policies() -> None:
    graph = healthy()
    wildcard = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sqs:*"}}
    graph.resources["role"].inputs["inlinePolicies"] = [
        {"name": "queue", "policy": json.dumps(wildcard)}
    ]
    graph.add(_record("aws:iam/policy:Policy", "extra", {"policy": wildcard}))
    findings = check(graph)
    assert [(f.rule, f.resource) for f in findings] == [
        ("PF011", "Policy extra"),
        ("PF011", "Role role"),
    ]
    assert "statement #1 of policy queue allows sqs:*" in findings[1].message


# --- PF012 log-group-without-retention --------------------------------------------------------


@pytest.mark.parametrize("retention", [None, 0])
def test_pf012_logs_kept_forever(retention: int | None) -> None:
    graph = healthy()
    inputs = graph.resources["logs"].inputs
    del inputs["retentionInDays"]
    if retention is not None:
        inputs["retentionInDays"] = retention
    finding = one(check(graph), "PF012", "LogGroup logs", "never expire")
    assert finding.severity == "warning"


# --- PF013 permission-without-source-arn ------------------------------------------------------


def test_pf013_a_permission_any_api_may_use() -> None:
    graph = healthy()
    del graph.resources["prod-canary-invoke"].inputs["sourceArn"]
    finding = one(
        check(graph),
        "PF013",
        "Permission prod-canary-invoke",
        "(qualifier prod-canary) with no sourceArn",
        "any account",
    )
    assert finding.severity == "warning"


# --- PF014 resource-policy-too-large ----------------------------------------------------------


def test_pf014_one_permission_per_route_overflows_the_alias_policy() -> None:
    routes = tuple(
        (method, f"area/items{n}/{{id}}") for n in range(35) for method in ("GET", "PUT")
    )
    graph = healthy("resources", routes)
    per_route(graph, routes)
    findings = check(graph)
    assert {(f.rule, f.resource) for f in findings} == {
        ("PF014", "Alias dev-live-alias"),
        ("PF014", "Alias prod-live-alias"),
        ("PF014", "Alias prod-canary-alias"),
    }
    message = next(f.message for f in findings if "fn-abc1234:prod-canary" in f.message)
    assert "with its 70 statements" in message
    assert f"Lambda allows {LAMBDA_POLICY_LIMIT}" in message
    assert "PolicyLengthExceededException" in message


def test_pf014_a_policy_just_under_the_limit_passes() -> None:
    graph = healthy()
    permission = graph.resources["dev-live-invoke"]
    # One statement as Lambda writes it, padded through the source ARN to the limit exactly.
    statement = {
        "Sid": "apigateway-dev-live",
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": f"{FUNCTION_ARN}:dev",
        "Condition": {"ArnLike": {"AWS:SourceArn": f"{EXECUTION_ARN}/dev/*/*"}},
    }
    policy = {"Version": "2012-10-17", "Id": "default", "Statement": [statement]}
    size = len(json.dumps(policy, separators=(",", ":")))
    padding = "x" * (LAMBDA_POLICY_LIMIT - size)
    permission.inputs["sourceArn"] = f"{EXECUTION_ARN}/dev/*/*{padding}"
    assert [f for f in check(graph) if f.rule == "PF014"] == []
    permission.inputs["sourceArn"] += "x"
    one(
        [f for f in check(graph) if f.rule == "PF014"],
        "PF014",
        "Alias dev-live-alias",
        f"would take {LAMBDA_POLICY_LIMIT + 1} bytes with its 1 statements",
    )


# --- PF015 statement-id-invalid ---------------------------------------------------------------


@pytest.mark.parametrize("statement_id", ["GET-orders/{id}-invoke", "a" * 101, "has space"])
def test_pf015_a_statement_id_lambda_refuses(statement_id: str) -> None:
    graph = healthy()
    graph.resources["dev-live-invoke"].inputs["statementId"] = statement_id
    finding = one(
        check(graph), "PF015", "Permission dev-live-invoke", "would refuse the statement id"
    )
    assert "at most 100 letters" in finding.fix


def test_pf015_an_autonamed_statement_id_too_long_for_its_suffix() -> None:
    graph = healthy()
    record = graph.resources.pop("dev-live-invoke")
    del record.inputs["statementId"]
    long_name = "p" * 93  # 93 + '-' + 7 hex = 101
    graph.add(ResourceRecord(PERMISSION, long_name, record.inputs, record.inputs, long_name))
    finding = one(
        check(graph), "PF015", f"Permission {long_name}", "longer than maximum length 100"
    )
    assert "<resource name>-<7 hex>" in finding.fix


def test_pf015_two_statements_with_one_id_in_one_policy() -> None:
    graph = healthy()
    graph.resources["prod-canary-invoke"].inputs["qualifier"] = "prod"
    graph.resources["prod-canary-invoke"].inputs["statementId"] = "apigateway-prod-live"
    findings = [f for f in check(graph) if f.rule == "PF015"]
    one(
        findings,
        "PF015",
        "Permission prod-canary-invoke",
        "prod-live-invoke and prod-canary-invoke both add statement apigateway-prod-live",
        "ResourceConflictException",
    )


def test_pf015_one_id_in_two_policies_is_fine() -> None:
    graph = healthy()
    graph.resources["prod-canary-invoke"].inputs["statementId"] = "apigateway-prod-live"
    assert check(graph) == []


# --- PF016 physical-name-invalid --------------------------------------------------------------


def test_pf016_a_given_name_aws_refuses() -> None:
    graph = healthy()
    graph.add(_record(DASHBOARD, "board", {"dashboardName": "api/prod dashboard"}))
    one(check(graph), "PF016", "Dashboard board", "dashboardName 'api/prod dashboard' may contain")


def test_pf016_a_logical_name_too_long_for_its_autoname() -> None:
    graph = healthy()
    name = "r" * 57  # 57 + '-' + 7 hex = 65 > a role name's 64
    graph.add(_record(ROLE, name, {"assumeRolePolicy": "{}"}))
    one(check(graph), "PF016", f"Role {name}", "longer than maximum length 64")


def test_pf016_a_function_name_over_64() -> None:
    graph = healthy()
    graph.resources["fn"].inputs["name"] = "f" * 65
    one(check(graph), "PF016", "Function fn", "65 characters long")


# --- PF017 route-tree-refused -----------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf017_two_variable_siblings(source: Source) -> None:
    graph = healthy(source, (("GET", "orders/{id}"), ("GET", "orders/{orderId}/items")))
    finding = one(
        check(graph),
        "PF017",
        API,
        "give /orders more than one path parameter as children ({id}, {orderId})",
    )
    assert "/orders/{id}, " in finding.message
    assert "/orders/{orderId}/items give" in finding.message


@pytest.mark.parametrize("source", SOURCES)
def test_pf017_a_route_below_a_greedy_parameter(source: Source) -> None:
    graph = healthy(source, (("ANY", "files/{proxy+}"), ("GET", "files/{proxy+}/meta")))
    one(check(graph), "PF017", API, "continue below the greedy path parameter of /files/{proxy+}")


def test_pf017_a_resource_without_methods_counts() -> None:
    graph = healthy("resources", (("GET", "orders/{id}"),))
    graph.add(
        _record(
            API_RESOURCE,
            "resource-orders/{orderId}",
            {"restApi": API_ID, "parentId": "res-orders", "pathPart": "{orderId}"},
            {"path": "/orders/{orderId}"},
        )
    )
    one(check(graph), "PF017", API, "({id}, {orderId})")


# --- PF018 api-key-unusable -------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf018_no_usage_plan_lists_the_stage(source: Source) -> None:
    graph = healthy(source)
    delete(graph, "prod-usage-plan", "prod-usage-plan-key")
    finding = one(
        check(graph),
        "PF018",
        PROD_STAGE,
        "GET /events, POST /events on stage prod require an API key",
        "no usage plan lists the stage",
        "403 Forbidden",
    )
    assert "apiStages" in finding.fix


def test_pf018_a_usage_plan_for_another_stage_does_not_count() -> None:
    graph = healthy()
    graph.resources["prod-usage-plan"].inputs["apiStages"] = [{"apiId": API_ID, "stage": "dev"}]
    one(check(graph), "PF018", PROD_STAGE, "no usage plan lists the stage")


def test_pf018_a_usage_plan_without_a_key() -> None:
    graph = healthy()
    delete(graph, "prod-usage-plan-key")
    one(check(graph), "PF018", "UsagePlan prod-usage-plan", "no API key is linked")


def test_pf018_a_disabled_key() -> None:
    graph = healthy()
    graph.resources["prod-api-key"].inputs["enabled"] = False
    one(check(graph), "PF018", "ApiKey prod-api-key", "every key of its usage plans is disabled")


def test_pf018_no_key_needed_without_keyed_methods() -> None:
    graph = healthy(api_key_required=False)
    delete(graph, "prod-usage-plan", "prod-usage-plan-key", "prod-api-key")
    assert check(graph, open_methods_allowed=True) == []


# --- PF019 lambda-integration-not-post --------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_pf019_a_lambda_integration_called_with_get(source: Source) -> None:
    graph = healthy(source, (("GET", "events"),))
    field = "httpMethod" if source == "openapi" else "integrationHttpMethod"
    edit_integration(graph, source, "GET", "events", **{field: "GET"})
    finding = one(
        check(graph),
        "PF019",
        integration_label(source, "GET", "events"),
        "the Lambda integration of GET /events calls Lambda with GET",
    )
    assert f"set {field} POST" in finding.fix


def test_pf019_a_lambda_integration_without_a_method() -> None:
    graph = healthy("resources", (("GET", "events"),))
    edit_integration(graph, "resources", "GET", "events", integrationHttpMethod=None)
    one(check(graph), "PF019", "Integration GET-events-integration", "with no method")


# --- PF020 no-default-integration-response ----------------------------------------------------


def test_pf020_no_default_response_in_the_body() -> None:
    graph = healthy("openapi", (("POST", "events"),))
    responses = integration(graph, "openapi", "POST", "events")["responses"]
    del responses["default"]
    edit_integration(graph, "openapi", "POST", "events", responses=responses)
    finding = one(check(graph), "PF020", API, "POST /events has no default integration response")
    assert "keyed 'default'" in finding.fix


def test_pf020_every_integration_response_record_has_a_pattern() -> None:
    graph = healthy("resources", (("POST", "events"),))
    graph.resources["POST-events-200-integration"].inputs["selectionPattern"] = "ok"
    one(check(graph), "PF020", "Integration POST-events-integration", "No match for output mapping")


def test_pf020_a_proxy_integration_has_no_integration_responses() -> None:
    graph = healthy("resources", (("POST", "events"),))
    delete(graph, "POST-events-200-integration", "POST-events-400-integration")
    edit_integration(graph, "resources", "POST", "events", type="AWS_PROXY")
    assert check(graph) == []


# --- PF021 alias-weights-invalid --------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "words"),
    [
        ({"4": 1.5}, "gives version 4 the weight 1.5"),
        ({"4": -0.1}, "the weight -0.1"),
        ({"4": "0.1"}, "the weight '0.1'"),
        ({"3": 0.1}, "gives a weight to version 3, which the alias serves already"),
        ({"latest": 0.1}, "'latest', which is no version number"),
        ({"4": 0.1, "5": 0.1}, "names 2 extra versions (4, 5)"),
    ],
)
def test_pf021_alias_weights_lambda_refuses(weights: dict[str, Any], words: str) -> None:
    graph = healthy()
    graph.resources["prod-live-alias"].inputs["routingConfig"] = {
        "additionalVersionWeights": weights
    }
    one(check(graph), "PF021", "Alias prod-live-alias", words, "Lambda refuses the alias")


@pytest.mark.parametrize("weight", [0, 0.1, 1])
def test_pf021_a_weight_from_0_to_1_on_another_version(weight: float) -> None:
    graph = healthy()
    graph.resources["prod-live-alias"].inputs["routingConfig"] = {
        "additionalVersionWeights": {"4": weight}
    }
    assert check(graph) == []


# --- PF022 canary-deployment-foreign ----------------------------------------------------------


def test_pf022_a_canary_on_another_apis_deployment() -> None:
    graph = healthy()
    graph.add(
        _record(
            DEPLOYMENT,
            "other",
            {"restApi": "other-api", "triggers": {"r": "1"}},
            resource_id="dep-other",
        )
    )
    graph.resources["prod-stage"].inputs["canarySettings"]["deploymentId"] = "dep-other"
    one(check(graph), "PF022", PROD_STAGE, "deployment other of another API", f"API {API_ID}")


def test_pf022_a_canary_on_an_unknown_deployment() -> None:
    graph = healthy()
    graph.resources["prod-stage"].inputs["canarySettings"]["deploymentId"] = "nope"
    one(check(graph), "PF022", PROD_STAGE, "'nope', no deployment in the program")


# --- PF023 source-arn-wildcard ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_arn", "words"),
    [
        (
            f"arn:aws:execute-api:{REGION}:*:{API_ID}/dev/*/*",
            "the account (*): APIs in any AWS account",
        ),
        (f"arn:aws:execute-api:{REGION}::{API_ID}/dev/*/*", "the account (empty)"),
        (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/dev/*/*",
            "the API id (*): any API in the account",
        ),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:a1b2c3d4e?/dev/*/*", "the API id (a1b2c3d4e?)"),
    ],
)
def test_pf023_a_source_arn_with_a_wildcard_account_or_api(source_arn: str, words: str) -> None:
    graph = healthy()
    graph.resources["dev-live-invoke"].inputs["sourceArn"] = source_arn
    findings = [f for f in check(graph) if f.rule == "PF023"]  # an empty account is PF001's too
    finding = one(findings, "PF023", "Permission dev-live-invoke", words)
    assert finding.severity == "warning"


def test_pf023_a_source_account_pins_the_account() -> None:
    graph = healthy()
    inputs = graph.resources["dev-live-invoke"].inputs
    inputs["sourceArn"] = f"arn:aws:execute-api:{REGION}:*:{API_ID}/dev/*/*"
    inputs["sourceAccount"] = ACCOUNT
    assert check(graph) == []


# --- PF024 admin-policy-on-function-role ------------------------------------------------------


@pytest.mark.parametrize(
    "policy_arn",
    [
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/PowerUserAccess",
        "arn:aws:iam::aws:policy/IAMFullAccess",
        "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess",
        "arn:aws-us-gov:iam::aws:policy/AmazonS3FullAccess",
        "arn:aws:iam::aws:policy/job-function/AdministratorAccess",
    ],
)
def test_pf024_an_admin_policy_attached_to_the_function_role(policy_arn: str) -> None:
    graph = healthy()
    graph.add(
        _record(ROLE_POLICY_ATTACHMENT, "admin", {"role": "role-abc1234", "policyArn": policy_arn})
    )
    one(check(graph), "PF024", "RolePolicyAttachment admin", f"has {policy_arn} attached")


def test_pf024_managed_policy_arns_of_the_role() -> None:
    graph = healthy()
    graph.resources["role"].inputs["managedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AWSLambdaExecute",
        "arn:aws:iam::aws:policy/AdministratorAccess",
    ]
    one(check(graph), "PF024", "Role role", "AdministratorAccess")


@pytest.mark.parametrize(
    ("role", "policy_arn"),
    [
        ("role-abc1234", "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"),
        ("role-abc1234", f"arn:aws:iam::{ACCOUNT}:policy/MyFullAccess"),  # the account's own
        ("other-role", "arn:aws:iam::aws:policy/AdministratorAccess"),  # no function's role
    ],
)
def test_pf024_what_is_not_an_admin_policy_on_the_function_role(role: str, policy_arn: str) -> None:
    graph = healthy()
    graph.add(_record(ROLE_POLICY_ATTACHMENT, "attached", {"role": role, "policyArn": policy_arn}))
    assert check(graph) == []


# --- PF025 throttling-zero --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["throttlingRateLimit", "throttlingBurstLimit"])
def test_pf025_a_stage_throttled_to_zero(key: str) -> None:
    graph = healthy()
    graph.resources["prod-method-settings"].inputs["settings"][key] = 0
    one(
        check(graph),
        "PF025",
        "MethodSettings prod-method-settings",
        f"{key} of */* on stage prod is 0",
        "429 Too Many Requests",
    )


def test_pf025_a_usage_plan_throttled_to_zero() -> None:
    graph = healthy()
    plan = graph.resources["dev-usage-plan"].inputs
    plan["throttleSettings"]["burstLimit"] = 0
    plan["apiStages"][0]["throttles"] = [{"path": "/events/GET", "rateLimit": 0, "burstLimit": 5}]
    one(
        check(graph),
        "PF025",
        "UsagePlan dev-usage-plan",
        "throttleSettings.burstLimit, rateLimit of /events/GET on stage dev is 0",
    )


# --- PF026 openapi-body-invalid ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", "is not JSON: Expecting property name"),
        ("[]", "is a JSON list, not an OpenAPI object"),
        ('{"openapi": "3.0.1"}', "has no 'paths' object"),
    ],
)
def test_pf026_a_body_api_gateway_cannot_import(body: str, words: str) -> None:
    graph = healthy("openapi")
    graph.resources["api"].inputs["body"] = body
    findings = check(graph)
    one([f for f in findings if f.rule == "PF026"], "PF026", API, words)


def test_pf026_a_body_given_as_an_object_is_read() -> None:
    graph = healthy("openapi")
    graph.resources["api"].inputs["body"] = body_of(graph)
    assert check(graph) == []


# --- All together -----------------------------------------------------------------------------


def broken_everywhere() -> ResourceGraph:
    graph = healthy("openapi")
    delete(graph, "prod-canary-invoke")
    del graph.resources["deployment"].inputs["triggers"]
    del graph.resources["logs"].inputs["retentionInDays"]
    del graph.resources["prod-live-invoke"].inputs["sourceArn"]
    add_statement(graph.resources["policy"], {"Effect": "Allow", "Action": "s3:*"})
    body = body_of(graph)
    post = body["paths"]["/events"]["post"]
    del post["security"]
    post["x-amazon-apigateway-integration"]["requestTemplates"] = {
        "application/json": '{"stage": "$context.stage" "x": 1}'
    }
    del body["paths"]["/events"]["get"]["responses"]["400"]
    set_body(graph, body)
    return graph


def test_findings_are_sorted_errors_first_and_deterministic() -> None:
    findings = check(broken_everywhere())
    assert [f.rule for f in findings] == [
        "PF001",
        "PF008",
        "PF009",
        "PF010",
        "PF011",
        "PF007",
        "PF012",
        "PF013",
    ]
    keys = [(f.severity != "error", f.rule, f.resource, f.message) for f in findings]
    assert keys == sorted(keys)
    assert check(broken_everywhere()) == findings


def test_findings_wrap_into_an_80_column_terminal() -> None:
    findings = check(broken_everywhere())
    words = [word for f in findings for text in (f.message, f.fix) for word in text.split()]
    longest = max(words, key=len)
    # Wrapped with a six-column indent, as the plan prints them.
    assert len(longest) <= 74, longest
