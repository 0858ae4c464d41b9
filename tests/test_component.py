"""The component alone, under the recording mocks: what it creates and how it is wired."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from tests.conftest import PROJECT
from versioned_lambda_api import ConfigError, StageArgs, VersionedLambdaApi, VersionedLambdaApiArgs
from versioned_lambda_api.analysis.graph import ResourceRecord
from versioned_lambda_api.analysis.preflight import preflight
from versioned_lambda_api.api_spec import METHOD_RESPONSE_STATUSES
from versioned_lambda_api.args import CanaryMode
from versioned_lambda_api.component import PREVIOUS_TYPE_TOKEN, TYPE_TOKEN
from versioned_lambda_api.testing import (
    ACCOUNT,
    REGION,
    RecordingMocks,
    RecordingMonitor,
    start_mocks,
)

FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
PERMISSION = "aws:lambda/permission:Permission"
STAGE = "aws:apigateway/stage:Stage"
REST_API = "aws:apigateway/restApi:RestApi"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"

DEV: StageArgs = {"name": "dev", "alias": "dev"}
PROD: StageArgs = {"name": "prod", "alias": "prod", "canary_percent": 12.5, "stable_version": 3}


def api_args(**overrides: Any) -> VersionedLambdaApiArgs:
    args: dict[str, Any] = {
        "code": pulumi.AssetArchive({"handler.py": pulumi.StringAsset("def handler(e, c): ...")}),
        "handler": "handler.handler",
        "routes": [
            {"path": "events", "method": "POST"},
            {"path": "events", "method": "GET"},
            {"path": "events/{id}", "method": "GET"},
        ],
        "stages": [DEV, PROD],
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


def build(
    args: VersionedLambdaApiArgs,
    published_version: int = 4,
    name: str = "api",
    check: Callable[[VersionedLambdaApi], pulumi.Output[Any]] | None = None,
    region: str = REGION,
) -> RecordingMocks:
    """Run one component under fresh mocks; ``check`` may return an Output to await."""
    mocks = start_mocks(PROJECT, "dev", {"aws:region": region}, published_version)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        component = VersionedLambdaApi(name, args)
        return check(component) if check else component.function_name

    program()
    return mocks


@pytest.fixture
def built() -> RecordingMocks:
    return build(api_args())


def by_name(mocks: RecordingMocks, typ: str) -> dict[str, ResourceRecord]:
    return {resource.name: resource for resource in mocks.graph.of_type(typ)}


def execution_arn(mocks: RecordingMocks) -> str:
    return str(mocks.graph.one(REST_API).outputs["executionArn"])


def document(mocks: RecordingMocks) -> dict[str, Any]:
    """The OpenAPI document the REST API was created with."""
    return dict(json.loads(mocks.graph.one(REST_API).inputs["body"]))


def operations(mocks: RecordingMocks) -> dict[tuple[str, str], dict[str, Any]]:
    """(method key, path) to each operation of the document."""
    return {
        (method, path): operation
        for path, methods in document(mocks)["paths"].items()
        for method, operation in methods.items()
    }


# --- Shape of the tree ----------------------------------------------------------------------


def test_every_child_is_named_after_and_parented_by_the_component(built: RecordingMocks) -> None:
    component = built.graph.one(TYPE_TOKEN)
    children = [r for r in built.graph.resources.values() if r is not component]
    assert len(children) > 30
    for child in children:
        assert child.name.startswith("api-"), child.name
        assert child.parent_urn == component.urn, child.name


def test_the_old_type_token_is_an_alias_so_existing_stacks_keep_their_component(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aliases: list[str] = []
    register = RecordingMonitor.RegisterResource

    def recording(self: RecordingMonitor, request: Any) -> Any:
        if request.type == TYPE_TOKEN:
            aliases.extend(spec.spec.type for spec in request.aliases)
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", recording)
    build(api_args())
    assert TYPE_TOKEN == "versioned-lambda-api:index:VersionedLambdaApi"
    assert aliases == [PREVIOUS_TYPE_TOKEN] == ["event-logger:index:VersionedLambdaApi"]


def test_two_instances_in_one_program_do_not_collide() -> None:
    mocks = start_mocks(PROJECT, "dev", {}, published_version=4)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        first = VersionedLambdaApi("orders", api_args())
        second = VersionedLambdaApi("billing", api_args())
        return pulumi.Output.all(first.function_name, second.function_name)

    program()  # the mock raises on any name registered twice
    assert len(mocks.graph.of_type(FUNCTION)) == 2
    assert len(mocks.graph.of_type(STAGE)) == 4


# --- The function ---------------------------------------------------------------------------


def test_function_publishes_versions_with_json_logs_tracing_and_its_own_log_group(
    built: RecordingMocks,
) -> None:
    function = built.graph.one(FUNCTION).inputs
    log_group = built.graph.one("aws:cloudwatch/logGroup:LogGroup")
    assert function["publish"] is True
    assert function["runtime"] == "python3.13"
    assert function["loggingConfig"]["logFormat"] == "JSON"
    assert function["loggingConfig"]["logGroup"] == log_group.outputs["name"]
    assert log_group.inputs["retentionInDays"] == 30
    assert function["tracingConfig"] == {"mode": "Active"}
    assert function["role"] == built.graph.one("aws:iam/role:Role").outputs["arn"]


def test_role_policy_grants_exact_actions_only(built: RecordingMocks) -> None:
    policy = json.loads(built.graph.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    actions = [action for statement in policy["Statement"] for action in statement["Action"]]
    assert actions, "the policy grants nothing"
    assert all("*" not in action for action in actions)
    (logs,) = [s for s in policy["Statement"] if s["Sid"] == "WriteOwnLogs"]
    log_group_arn = built.graph.one("aws:cloudwatch/logGroup:LogGroup").outputs["arn"]
    assert logs["Resource"] == f"{log_group_arn}:*"


def test_extra_policy_statements_reach_the_role() -> None:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"
    mocks = build(
        api_args(policy_statements=[{"actions": ["dynamodb:Query"], "resources": [table]}])
    )
    policy = json.loads(mocks.graph.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert {"Effect": "Allow", "Action": ["dynamodb:Query"], "Resource": [table]} in policy[
        "Statement"
    ]


def test_function_waits_for_its_log_permissions(built: RecordingMocks) -> None:
    policy = built.graph.one("aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in built.graph.one(FUNCTION).dependencies


# --- Aliases --------------------------------------------------------------------------------


def test_aliases_per_stage_live_pinned_or_newest_canary_newest(built: RecordingMocks) -> None:
    aliases = {
        resource.inputs["name"]: resource.inputs["functionVersion"]
        for resource in built.graph.of_type(ALIAS)
    }
    assert aliases == {"dev": "4", "dev-canary": "4", "prod": "3", "prod-canary": "4"}
    function_name = built.graph.one(FUNCTION).outputs["name"]
    assert {r.inputs["functionName"] for r in built.graph.of_type(ALIAS)} == {function_name}


def test_no_alias_ever_points_at_latest() -> None:
    mocks = build(api_args(), published_version=3)
    assert all(r.inputs["functionVersion"] != "$LATEST" for r in mocks.graph.of_type(ALIAS))


# --- The API --------------------------------------------------------------------------------


def test_the_api_is_one_openapi_document_with_every_route(built: RecordingMocks) -> None:
    rest_api = built.graph.one(REST_API).inputs
    assert rest_api["putRestApiMode"] == "overwrite"
    assert rest_api["endpointConfiguration"] == {"types": "REGIONAL"}
    assert rest_api["parameters"] == {"endpointConfigurationTypes": "REGIONAL"}
    assert sorted(operations(built)) == [
        ("get", "/events"),
        ("get", "/events/{id}"),
        ("post", "/events"),
    ]
    # Nothing but the document declares routes: a removed route cannot outlive it.
    for typ in ("method", "integration", "resource", "methodResponse", "integrationResponse"):
        token = f"aws:apigateway/{typ}:{typ[0].upper()}{typ[1:]}"
        assert built.graph.of_type(token) == [], token


def test_each_route_invokes_the_alias_the_stage_variable_names(built: RecordingMocks) -> None:
    function_arn = built.graph.one(FUNCTION).outputs["arn"]
    for operation in operations(built).values():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws"
        assert integration["httpMethod"] == "POST"
        assert integration["uri"] == (
            f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
            f"{function_arn}:${{stageVariables.lambdaAlias}}/invocations"
        )
        assert '"stage": "$context.stage"' in integration["requestTemplates"]["application/json"]
        assert integration["passthroughBehavior"] == "never"


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_arns_follow_the_region_partition(region: str, partition: str) -> None:
    mocks = build(api_args(), region=region)
    function_arn = mocks.graph.one(FUNCTION).outputs["arn"]
    assert function_arn.startswith(f"arn:{partition}:lambda:{region}:")
    for operation in operations(mocks).values():
        uri = operation["x-amazon-apigateway-integration"]["uri"]
        assert uri.startswith(f"arn:{partition}:apigateway:{region}:lambda:path/")
    for permission in mocks.graph.of_type(PERMISSION):
        assert permission.inputs["sourceArn"].startswith(f"arn:{partition}:execute-api:{region}:")
    assert not [f for f in preflight(mocks.graph) if f.severity == "error"]


def test_the_document_is_an_output() -> None:
    seen: list[str] = []
    mocks = build(api_args(), check=lambda api: api.openapi.apply(seen.append))
    assert seen == [mocks.graph.one(REST_API).inputs["body"]]


def test_methods_require_an_api_key_by_default(built: RecordingMocks) -> None:
    securities = [operation["security"] for operation in operations(built).values()]
    assert securities == [[{"api_key": []}]] * 3
    assert document(built)["components"]["securitySchemes"]["api_key"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }
    keys = built.graph.of_type("aws:apigateway/apiKey:ApiKey")
    plans = built.graph.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert len(keys) == len(plans) == 2
    stages_in_plans = sorted(plan.inputs["apiStages"][0]["stage"] for plan in plans)
    assert stages_in_plans == ["dev", "prod"]
    assert len(built.graph.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")) == 2


def test_opting_out_of_api_keys_creates_no_keys_and_opens_methods() -> None:
    mocks = build(api_args(api_key_required=False))
    assert all("security" not in operation for operation in operations(mocks).values())
    assert "securitySchemes" not in document(mocks)["components"]
    assert mocks.graph.of_type("aws:apigateway/apiKey:ApiKey") == []
    assert mocks.graph.of_type("aws:apigateway/usagePlan:UsagePlan") == []


def test_every_integration_response_has_a_method_response(built: RecordingMocks) -> None:
    for operation in operations(built).values():
        responses = operation["x-amazon-apigateway-integration"]["responses"]
        statuses = {response["statusCode"] for response in responses.values()}
        assert statuses == {"200", "500", "503"}
        assert set(operation["responses"]) == set(METHOD_RESPONSE_STATUSES)
        assert responses["default"]["statusCode"] == "200"


# --- Stages, canaries and permissions -------------------------------------------------------


def test_stage_variables_and_canary_settings(built: RecordingMocks) -> None:
    stages = {r.inputs["stageName"]: r.inputs for r in built.graph.of_type(STAGE)}
    deployment_id = built.graph.one(DEPLOYMENT).id
    assert stages["dev"]["variables"] == {"lambdaAlias": "dev"}
    assert "canarySettings" not in stages["dev"]
    assert stages["prod"]["variables"] == {"lambdaAlias": "prod"}
    assert stages["prod"]["canarySettings"] == {
        "deploymentId": deployment_id,
        "percentTraffic": 12.5,
        "stageVariableOverrides": {"lambdaAlias": "prod-canary"},
        "useStageCache": False,
    }
    assert {s["deployment"] for s in stages.values()} == {deployment_id}
    assert all(s["xrayTracingEnabled"] for s in stages.values())


def reachable(stage_inputs: dict[str, Any]) -> set[str]:
    """Every alias a stage's requests can invoke, read from what was deployed."""
    aliases = {stage_inputs["variables"]["lambdaAlias"]}
    canary = stage_inputs.get("canarySettings")
    if canary and canary["percentTraffic"] > 0:
        aliases.add(canary["stageVariableOverrides"]["lambdaAlias"])
    return aliases


def test_one_permission_per_stage_and_alias_it_can_reach(built: RecordingMocks) -> None:
    api = execution_arn(built)
    expected = {
        (alias, f"{api}/{stage.inputs['stageName']}/*/*")
        for stage in built.graph.of_type(STAGE)
        for alias in reachable(stage.inputs)
    }
    permissions = built.graph.of_type(PERMISSION)
    granted = {(p.inputs["qualifier"], p.inputs["sourceArn"]) for p in permissions}
    assert granted == expected
    assert len(permissions) == len(expected) == 3  # dev live; prod live and canary
    assert {p.inputs["statementId"] for p in permissions} == {
        "apigateway-dev-live",
        "apigateway-prod-live",
        "apigateway-prod-canary",
    }
    function_name = built.graph.one(FUNCTION).outputs["name"]
    for permission in permissions:
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["principal"] == "apigateway.amazonaws.com"
        assert permission.inputs["function"] == function_name


def test_permissions_do_not_grow_with_the_routes() -> None:
    routes = [{"path": f"r{index}/{{id}}", "method": "GET"} for index in range(60)]
    mocks = build(api_args(routes=routes))
    assert len(mocks.graph.of_type(PERMISSION)) == 3


def test_a_stage_starts_only_after_its_permissions_exist(built: RecordingMocks) -> None:
    for stage in built.graph.of_type(STAGE):
        name = stage.inputs["stageName"]
        own = [p.urn for p in built.graph.of_type(PERMISSION) if p.name.endswith(f".{name}")]
        assert own
        assert set(own) <= set(stage.dependencies)


def test_throttling_per_stage(built: RecordingMocks) -> None:
    settings = built.graph.of_type("aws:apigateway/methodSettings:MethodSettings")
    assert {s.inputs["stageName"] for s in settings} == {"dev", "prod"}
    for setting in settings:
        assert setting.inputs["methodPath"] == "*/*"
        assert setting.inputs["settings"]["throttlingRateLimit"] == 50
        assert setting.inputs["settings"]["throttlingBurstLimit"] == 100
        assert setting.inputs["settings"]["metricsEnabled"] is True


# --- Redeployment ---------------------------------------------------------------------------


def trigger(mocks: RecordingMocks) -> str:
    return str(mocks.graph.one(DEPLOYMENT).inputs["triggers"]["redeployment"])


def test_deployment_follows_the_document(built: RecordingMocks) -> None:
    deployment = built.graph.one(DEPLOYMENT)
    rest_api = built.graph.one(REST_API)
    assert rest_api.urn in deployment.dependencies
    body = rest_api.inputs["body"]
    assert trigger(built) == hashlib.sha256(body.encode()).hexdigest()


def test_a_removed_route_redeploys_the_api() -> None:
    before = build(api_args())
    after = build(api_args(routes=api_args()["routes"][:2]))
    assert ("get", "/events/{id}") not in operations(after)
    assert trigger(before) != trigger(after)


def test_new_code_alone_does_not_redeploy_the_api() -> None:
    before = build(api_args(), published_version=4)
    new_code = pulumi.AssetArchive({"handler.py": pulumi.StringAsset("def handler(e, c): 1")})
    after = build(api_args(code=new_code), published_version=5)
    assert trigger(before) == trigger(after)


def test_a_changed_template_redeploys_the_api() -> None:
    before = build(api_args())
    routes = [
        {"path": "events", "method": "POST", "request_template": '{"stage": "$context.stage"}'},
        {"path": "events", "method": "GET"},
        {"path": "events/{id}", "method": "GET"},
    ]
    after = build(api_args(routes=routes))
    assert trigger(before) != trigger(after)


# --- Outputs --------------------------------------------------------------------------------


def test_outputs_name_each_stage_alias_and_version() -> None:
    seen: dict[str, Any] = {}

    def check(api: VersionedLambdaApi) -> pulumi.Output[Any]:
        return pulumi.Output.all(
            newest=api.newest_version,
            urls=api.stage_urls,
            live=api.live_aliases,
            live_versions=api.live_versions,
            canary=api.canary_aliases,
            canary_versions=api.canary_versions,
            keys=api.api_keys,
        ).apply(seen.update)

    mocks = build(api_args(), check=check)
    api_id = mocks.graph.one("aws:apigateway/restApi:RestApi").id
    assert seen["newest"] == "4"
    assert seen["urls"] == {
        stage: f"https://{api_id}.execute-api.{REGION}.amazonaws.com/{stage}"
        for stage in ("dev", "prod")
    }
    assert seen["live"] == {"dev": "dev", "prod": "prod"}
    assert seen["live_versions"] == {"dev": "4", "prod": "3"}
    assert seen["canary"] == {"dev": "dev-canary", "prod": "prod-canary"}
    assert seen["canary_versions"] == {"dev": "4", "prod": "4"}
    key_values = {
        k.name: k.outputs["value"] for k in mocks.graph.of_type("aws:apigateway/apiKey:ApiKey")
    }
    assert seen["keys"] == {
        "dev": key_values["api-api-key.dev"],
        "prod": key_values["api-api-key.prod"],
    }


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stages": [{"name": "prod", "alias": "prod", "canary_percent": 150}]}, "canary_percent"),
        ({"stages": [{"name": "prod", "alias": "prod", "stable_version": 0}]}, "stable_version"),
        ({"stages": [DEV, {"name": "qa", "alias": "dev"}]}, "both use alias 'dev'"),
        ({"routes": [{"path": "events", "method": "BREW"}]}, "routes[0].method"),
        ({"runtime": "python3.11"}, "runtime"),
        (
            {"policy_statements": [{"actions": ["dynamodb:*"], "resources": ["arn"]}]},
            "policy_statements[0].actions",
        ),
    ],
)
def test_bad_args_fail_clearly_and_register_nothing(
    overrides: dict[str, Any], message: str
) -> None:
    mocks = start_mocks(PROJECT, "dev", {})
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        VersionedLambdaApi("api", api_args(**overrides))
    assert mocks.graph.resources == {}


def test_the_function_ships_the_sources_code_path_names(tmp_path: Path) -> None:
    """The input other languages give: a folder the component archives itself."""
    (tmp_path / "handler.py").write_text("def handler(event, context): ...\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "handler.cpython-313.pyc").write_bytes(b"\x00")
    args = api_args(code_path=str(tmp_path))
    del args["code"]
    code = build(args).graph.one(FUNCTION).inputs["code"]
    assert isinstance(code, pulumi.AssetArchive)
    assert list(code.assets) == ["handler.py"]
    shipped = code.assets["handler.py"]
    assert isinstance(shipped, pulumi.FileAsset)
    assert shipped.path == str(tmp_path / "handler.py")


@pytest.mark.parametrize(
    ("code_source", "message"),
    [
        ({"code_path": "no/such/folder"}, r"code_path: function source folder no/such/folder"),
        ({}, "code or code_path is required"),
        ({"code": pulumi.AssetArchive({}), "code_path": "function"}, "both set"),
    ],
    ids=["missing-folder", "neither", "both"],
)
def test_a_bad_code_source_registers_nothing(code_source: dict[str, Any], message: str) -> None:
    mocks = start_mocks(PROJECT, "dev", {})
    args = api_args()
    del args["code"]
    with pytest.raises(ConfigError, match=message):
        VersionedLambdaApi("api", {**args, **code_source})  # type: ignore[typeddict-item]
    assert mocks.graph.resources == {}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("orders api", "may contain only letters, digits"),
        ("orders.v2", "may contain only letters, digits"),
        ("", "must not be empty"),
        ("a" * 48, "cannot name the function"),
    ],
)
def test_a_name_aws_cannot_use_is_refused_before_any_resource(name: str, message: str) -> None:
    mocks = start_mocks(PROJECT, "dev", {})
    with pytest.raises(ConfigError, match=message):
        VersionedLambdaApi(name, api_args())
    assert mocks.graph.resources == {}


def test_a_stage_name_too_long_for_its_statement_id_is_refused() -> None:
    mocks = start_mocks(PROJECT, "dev", {})
    with pytest.raises(ConfigError, match=r"stages\[0\]\.name 's{83}' \(83 characters\)"):
        VersionedLambdaApi("api", api_args(stages=[{"name": "s" * 83, "alias": "live"}]))
    assert mocks.graph.resources == {}


def test_the_longest_names_fit_aws() -> None:
    longest: StageArgs = {"name": "s" * 82, "alias": "live"}
    build(api_args(stages=[longest]), name="a" * 47)  # the mocks refuse what AWS refuses


def test_a_route_tree_api_gateway_refuses_is_refused_before_any_resource() -> None:
    mocks = start_mocks(PROJECT, "dev", {})
    routes = [
        {"path": "orders/{id}", "method": "GET"},
        {"path": "orders/{orderId}/items", "method": "GET"},
    ]
    with pytest.raises(ConfigError, match=r"orders/\{id\}"):
        VersionedLambdaApi("api", api_args(routes=routes))
    assert mocks.graph.resources == {}


def test_warns_when_a_canary_share_cannot_differ_from_live() -> None:
    inert: StageArgs = {"name": "prod", "alias": "prod", "canary_percent": 10}
    mocks = build(api_args(stages=[DEV, inert]))
    assert len(mocks.messages) == 1
    level, message = mocks.messages[0]
    assert level == "warning"
    assert "stage prod" in message
    assert "no stable version pinned" in message


def test_no_warning_when_the_live_version_is_pinned(built: RecordingMocks) -> None:
    assert built.messages == []


# --- Alias mode: a weighted live alias splits the canary share ------------------------------

ALIAS_PROD: StageArgs = {**PROD, "canary_mode": CanaryMode.ALIAS}


def aliases_by_name(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    return {alias.inputs["name"]: alias.inputs for alias in mocks.graph.of_type(ALIAS)}


def test_alias_mode_weights_the_newest_version_inside_the_live_alias() -> None:
    mocks = build(api_args(stages=[DEV, ALIAS_PROD]), published_version=4)
    aliases = aliases_by_name(mocks)
    assert aliases["prod"]["functionVersion"] == "3"
    assert aliases["prod"]["routingConfig"] == {"additionalVersionWeights": {"4": 0.125}}
    # The stage-mode stage and the canary alias are untouched.
    assert "routingConfig" not in aliases["dev"]
    assert "routingConfig" not in aliases["prod-canary"]


def test_alias_mode_sets_no_weight_once_the_newest_version_is_the_pinned_one() -> None:
    mocks = build(api_args(stages=[ALIAS_PROD]), published_version=3)
    assert "routingConfig" not in aliases_by_name(mocks)["prod"]


def test_alias_mode_gives_the_stage_no_canary_and_api_gateway_only_the_live_alias() -> None:
    mocks = build(api_args(stages=[DEV, ALIAS_PROD]))
    stages = {r.inputs["stageName"]: r.inputs for r in mocks.graph.of_type(STAGE)}
    assert "canarySettings" not in stages["prod"]
    assert stages["prod"]["variables"] == {"lambdaAlias": "prod"}
    granted = {
        (p.inputs["qualifier"], p.inputs["sourceArn"].split("/")[1])
        for p in mocks.graph.of_type(PERMISSION)
    }
    assert granted == {("dev", "dev"), ("prod", "prod")}
    assert len(mocks.graph.of_type(PERMISSION)) == 2


def test_alias_mode_without_a_pinned_version_warns_and_splits_nothing() -> None:
    unpinned: StageArgs = {"name": "prod", "alias": "prod", "canary_percent": 10}
    mocks = build(api_args(stages=[{**unpinned, "canary_mode": "alias"}]), published_version=4)
    assert "routingConfig" not in aliases_by_name(mocks)["prod"]
    ((level, message),) = mocks.messages
    assert level == "warning"
    assert message == (
        "stage prod: 10.0% of prod's invocations go to the newest version, but with no stable "
        "version pinned the live alias serves the newest version too; pin the live version to "
        "release a canary"
    )


# --- Alarms and dashboards ------------------------------------------------------------------


def alarms(mocks: RecordingMocks, component: str = "api") -> dict[str, dict[str, Any]]:
    """Each alarm by ``<component>-<stage>-<suffix>``, read from its logical name
    ``<component>-<suffix>-alarm.<stage>``."""
    found = {}
    for alarm in mocks.graph.of_type(ALARM):
        role, _, stage = alarm.name.rpartition(".")
        suffix = role.removeprefix(f"{component}-").removesuffix("-alarm")
        found[f"{component}-{stage}-{suffix}"] = alarm.inputs
    return found


def metric_dimensions(alarm: dict[str, Any]) -> list[dict[str, str]]:
    """The dimensions of every metric an alarm reads, single metric or metric math."""
    if "metricQueries" not in alarm:
        return [alarm["dimensions"]]
    return [q["metric"]["dimensions"] for q in alarm["metricQueries"] if "metric" in q]


def test_each_stage_has_error_rate_duration_and_throttle_alarms_per_role(
    built: RecordingMocks,
) -> None:
    function = built.graph.one(FUNCTION).outputs["name"]
    found = alarms(built)
    assert set(found) == {
        f"api-{stage}-{role}-{kind}"
        for stage in ("dev", "prod")
        for role in ("live", "canary")
        for kind in ("error-rate", "p99-duration", "throttles")
    }
    for name, alarm in found.items():
        stage, role = name.split("-")[1:3]
        alias = stage if role == "live" else f"{stage}-canary"
        assert metric_dimensions(alarm), name
        for dimensions in metric_dimensions(alarm):
            assert dimensions == {"FunctionName": function, "Resource": f"{function}:{alias}"}
        assert alarm["treatMissingData"] == "notBreaching"
        assert "alarmActions" not in alarm


def test_error_rate_alarm_ignores_periods_with_few_invocations(built: RecordingMocks) -> None:
    alarm = alarms(built)["api-prod-canary-error-rate"]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert {q: queries[q]["metric"]["metricName"] for q in ("errors", "invocations")} == {
        "errors": "Errors",
        "invocations": "Invocations",
    }
    assert queries["rate"]["expression"] == "100 * errors / invocations"
    assert queries["guarded_rate"]["expression"] == "IF(invocations >= 20, rate, 0)"
    assert [q["id"] for q in alarm["metricQueries"] if q["returnData"]] == ["guarded_rate"]
    assert (alarm["threshold"], alarm["comparisonOperator"]) == (1, "GreaterThanThreshold")
    assert (alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (3, 2)


def test_duration_and_throttle_alarms_read_one_statistic(built: RecordingMocks) -> None:
    found = alarms(built)
    duration = found["api-prod-live-p99-duration"]
    assert (duration["metricName"], duration["extendedStatistic"]) == ("Duration", "p99")
    assert "statistic" not in duration
    assert duration["evaluateLowSampleCountPercentiles"] == "ignore"
    # 80% of the default 10 s timeout.
    assert duration["threshold"] == 8000
    throttles = found["api-prod-canary-throttles"]
    assert (throttles["metricName"], throttles["statistic"]) == ("Throttles", "Sum")
    assert (throttles["threshold"], throttles["comparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert throttles["namespace"] == duration["namespace"] == "AWS/Lambda"


def test_alarm_thresholds_follow_the_stage_and_the_timeout() -> None:
    strict: StageArgs = {**PROD, "alarm_error_rate_percent": 0.5, "alarm_p99_duration_ms": 900}
    found = alarms(build(api_args(stages=[DEV, strict], timeout=3)))
    assert found["api-prod-live-error-rate"]["threshold"] == 0.5
    assert found["api-prod-canary-p99-duration"]["threshold"] == 900
    assert found["api-dev-canary-error-rate"]["threshold"] == 1
    assert found["api-dev-live-p99-duration"]["threshold"] == 2400


def test_alias_mode_alarms_tell_the_versions_apart_inside_the_live_alias() -> None:
    mocks = build(api_args(stages=[ALIAS_PROD]), published_version=4)
    function = mocks.graph.one(FUNCTION).outputs["name"]
    found = alarms(mocks)
    alias = {"FunctionName": function, "Resource": f"{function}:prod"}
    for kind in ("error-rate", "p99-duration"):
        assert metric_dimensions(found[f"api-prod-live-{kind}"])[0] == {
            **alias,
            "ExecutedVersion": "3",
        }
        assert metric_dimensions(found[f"api-prod-canary-{kind}"])[0] == {
            **alias,
            "ExecutedVersion": "4",
        }
    assert metric_dimensions(found["api-prod-live-throttles"]) == [alias]
    assert "api-prod-canary-throttles" not in found


def test_alarm_actions_reach_every_alarm() -> None:
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:pager"
    mocks = build(api_args(alarm_actions=[topic]))
    assert {tuple(alarm["alarmActions"]) for alarm in alarms(mocks).values()} == {(topic,)}


def dashboard_metrics(widget: dict[str, Any]) -> list[dict[str, str]]:
    """Each metric of a widget as {namespace, metric, dimension: value, ...}."""
    found = []
    for row in widget["properties"]["metrics"]:
        names = [part for part in row if isinstance(part, str)]
        if names:
            found.append(
                {
                    "namespace": names[0],
                    "metric": names[1],
                    **dict(zip(names[2::2], names[3::2], strict=True)),
                }
            )
    return found


def test_each_stage_has_a_dashboard_with_live_and_canary_side_by_side(
    built: RecordingMocks,
) -> None:
    function = built.graph.one(FUNCTION).outputs["name"]
    api_name = built.graph.one("aws:apigateway/restApi:RestApi").outputs["name"]
    api_id = built.graph.one(REST_API).id
    dashboards = {d.inputs["dashboardName"]: d for d in built.graph.of_type(DASHBOARD)}
    assert set(dashboards) == {f"api-dev-{api_id}", f"api-prod-{api_id}"}
    widgets = json.loads(dashboards[f"api-prod-{api_id}"].inputs["dashboardBody"])["widgets"]
    for widget in widgets:
        assert widget["properties"]["region"] == REGION
        for metric in dashboard_metrics(widget):
            if metric["namespace"] == "AWS/ApiGateway":
                assert (metric["ApiName"], metric["Stage"]) == (api_name, "prod")
            else:
                assert metric["FunctionName"] == function
                alias = "prod" if widget["x"] == 0 else "prod-canary"
                assert metric["Resource"] == f"{function}:{alias}"
    columns = {w["x"] for w in widgets if "Lambda" in json.dumps(w)}
    assert columns == {0, 12}


def test_alarms_are_autonamed_so_two_stacks_never_share_one(built: RecordingMocks) -> None:
    for alarm in built.graph.of_type(ALARM):
        assert "name" not in alarm.inputs
        assert alarm.outputs["name"].startswith(f"{alarm.name}-")


def test_two_instances_name_their_alarms_and_dashboards_apart() -> None:
    mocks = start_mocks(PROJECT, "dev", {}, published_version=4)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        first = VersionedLambdaApi("api", api_args(stages=[{"name": "eu-prod", "alias": "a"}]))
        second = VersionedLambdaApi("api-eu", api_args(stages=[{"name": "prod", "alias": "a"}]))
        return pulumi.Output.all(first.dashboard_names, second.dashboard_names)

    program()  # the same logical names would have been refused
    alarm_names = [alarm.outputs["name"] for alarm in mocks.graph.of_type(ALARM)]
    assert len(alarm_names) == len(set(alarm_names)) == 2 * 6
    dashboards = [d.inputs["dashboardName"] for d in mocks.graph.of_type(DASHBOARD)]
    assert len(set(dashboards)) == 2


def test_dashboard_names_are_an_output_per_stage() -> None:
    seen: dict[str, Any] = {}

    def check(api: VersionedLambdaApi) -> pulumi.Output[Any]:
        return api.dashboard_names.apply(seen.update)

    mocks = build(api_args(), check=check)
    api_id = mocks.graph.one(REST_API).id
    assert seen == {"dev": f"api-dev-{api_id}", "prod": f"api-prod-{api_id}"}
