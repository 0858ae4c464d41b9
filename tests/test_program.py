"""Each stack's real ``__main__.py`` with that stack file's config, under the recording mocks."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, run_stack
from versioned_lambda_api.analysis.routing import RouteShare, routing_table
from versioned_lambda_api.testing import (
    ProgramError,
    ProgramRun,
    execute_program,
    start_program_mocks,
)

TABLE = "aws:dynamodb/table:Table"
PERMISSION = "aws:lambda/permission:Permission"
STAGE = "aws:apigateway/stage:Stage"
ALIAS = "aws:lambda/alias:Alias"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
API = "event-logger-api"
"""The REST API's logical name: the component's name, ``-api``."""


def alarms_by_role(run: ProgramRun) -> dict[str, dict[str, object]]:
    """Each alarm by ``<stage>-<role>-<kind>``, from its logical name
    ``event-logger-<role>-<kind>-alarm.<stage>``."""
    found = {}
    for alarm in run.graph.of_type(ALARM):
        role, _, stage = alarm.name.rpartition(".")
        found[f"{stage}-{role.removeprefix('event-logger-').removesuffix('-alarm')}"] = alarm.inputs
    return found


@pytest.fixture
def dev() -> ProgramRun:
    return run_stack("dev")


@pytest.fixture
def prod() -> ProgramRun:
    return run_stack("prod")


def granted(run: ProgramRun) -> set[str]:
    """The aliases API Gateway may invoke, each for every method and path of the stack's
    stage only."""
    api_arn = run.graph.one("aws:apigateway/restApi:RestApi").outputs["executionArn"]
    stage = run.exports["stage"]
    aliases = set()
    for permission in run.graph.of_type(PERMISSION):
        assert permission.inputs["sourceArn"] == f"{api_arn}/{stage}/*/*"
        aliases.add(permission.inputs["qualifier"])
    return aliases


def test_dev_goes_live_on_every_deploy_with_no_canary(dev: ProgramRun) -> None:
    stage = dev.graph.one(STAGE).inputs
    assert stage["stageName"] == "dev"
    assert stage["variables"] == {"lambdaAlias": "dev"}
    assert "canarySettings" not in stage
    assert granted(dev) == {"dev"}
    assert dev.exports["liveVersion"] == dev.exports["canaryVersion"] == "1"


def test_prod_sends_ten_percent_to_its_canary_alias_and_may_invoke_both(prod: ProgramRun) -> None:
    stage = prod.graph.one(STAGE).inputs
    assert stage["variables"] == {"lambdaAlias": "prod"}
    assert stage["canarySettings"]["percentTraffic"] == 10
    assert stage["canarySettings"]["stageVariableOverrides"] == {"lambdaAlias": "prod-canary"}
    assert granted(prod) == {"prod", "prod-canary"}


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (
            "dev",
            {
                "stage": "dev",
                "liveAlias": "dev",
                "canaryAlias": "dev-canary",
                "canaryPercent": 0,
                "canaryMode": "stage",
            },
        ),
        (
            "prod",
            {
                "stage": "prod",
                "liveAlias": "prod",
                "canaryAlias": "prod-canary",
                "canaryPercent": 10,
                "canaryMode": "stage",
            },
        ),
    ],
)
def test_exports(stack: str, expected: dict[str, object]) -> None:
    run = run_stack(stack)
    api_id = run.graph.one("aws:apigateway/restApi:RestApi").id
    table = run.graph.one(TABLE).outputs["name"]
    key = run.graph.one("aws:apigateway/apiKey:ApiKey").outputs["value"]
    function = run.graph.one("aws:lambda/function:Function").outputs["name"]
    assert run.exports == {
        **expected,
        "functionName": function,
        "restApiId": api_id,
        "url": f"https://{api_id}.execute-api.us-east-1.amazonaws.com/{stack}/events",
        "liveVersion": "1",
        "canaryVersion": "1",
        "tableName": table,
        "apiKey": key,
        "dashboard": f"event-logger-{stack}-{api_id}",
    }
    assert run.secret_exports == {"apiKey"}


def test_pinned_stable_version_keeps_live_while_the_canary_gets_the_newest() -> None:
    run = run_stack("prod", {"stableVersion": "3"}, published_version=4)
    aliases = {
        a.inputs["name"]: a.inputs["functionVersion"]
        for a in run.graph.of_type("aws:lambda/alias:Alias")
    }
    assert aliases == {"prod": "3", "prod-canary": "4"}
    assert (run.exports["liveVersion"], run.exports["canaryVersion"]) == ("3", "4")


def test_a_stable_version_never_published_fails_before_any_alias_changes() -> None:
    mocks = start_program_mocks(ROOT, "prod", {"stableVersion": "3"}, published_version=2)
    with pytest.raises(
        ProgramError,
        match=r"stages\[0\]\.stable_version is 3, but function event-logger-function-\w+ has "
        r"published versions 1 to 2 only",
    ):
        execute_program(ROOT, mocks)
    assert mocks.graph.of_type(ALIAS) == []


def test_alias_mode_shows_the_weights_inside_the_live_alias_in_the_routing_table() -> None:
    """What `python -m versioned_lambda_api.analysis.plan --stack prod --set canaryMode=alias --set
    stableVersion=3` prints as the routing table."""
    run = run_stack("prod", {"canaryMode": "alias", "stableVersion": "3"}, published_version=4)
    assert routing_table(run.graph) == [
        RouteShare("prod", "live", 100.0, "prod", "3", newest=False, weights={"4": 0.1}, api=API)
    ]
    stage = run.graph.one(STAGE).inputs
    assert "canarySettings" not in stage
    assert granted(run) == {"prod"}
    assert not [f for f in run.findings() if f.severity == "error"]
    assert run.messages == []


def test_alias_mode_without_a_pinned_version_splits_nothing_and_says_so() -> None:
    run = run_stack("prod", {"canaryMode": "alias"}, published_version=4)
    assert routing_table(run.graph) == [
        RouteShare("prod", "live", 100.0, "prod", "4", newest=True, weights={}, api=API)
    ]
    ((level, message),) = run.messages
    assert level == "warning"
    assert "10.0% of prod's invocations go to the newest version" in message
    assert "no stable version pinned" in message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_stack_watches_its_live_and_canary_traffic(stack: str) -> None:
    run = run_stack(stack, {"stableVersion": "3"}, published_version=4)
    function = run.graph.one("aws:lambda/function:Function").outputs["name"]
    alarms = alarms_by_role(run)
    assert set(alarms) == {
        f"{stack}-{role}-{kind}"
        for role in ("live", "canary")
        for kind in ("error-rate", "p99-duration", "throttles")
    }
    canary = alarms[f"{stack}-canary-p99-duration"]
    assert canary["dimensions"] == {
        "FunctionName": function,
        "Resource": f"{function}:{stack}-canary",
    }
    # 80% of the default 10 s timeout.
    assert canary["threshold"] == 8000
    dashboard = run.graph.one(DASHBOARD).inputs
    api_id = run.graph.one("aws:apigateway/restApi:RestApi").id
    assert dashboard["dashboardName"] == f"event-logger-{stack}-{api_id}"
    assert f"{function}:{stack}-canary" in dashboard["dashboardBody"]


def test_alias_mode_watches_the_canary_as_the_newest_version_of_the_live_alias() -> None:
    run = run_stack(
        "prod",
        {"canaryMode": "alias", "stableVersion": "3", "alarmErrorRatePercent": "2.5"},
        published_version=4,
    )
    function = run.graph.one("aws:lambda/function:Function").outputs["name"]
    alarms = alarms_by_role(run)
    canary = alarms["prod-canary-p99-duration"]
    assert canary["dimensions"] == {
        "FunctionName": function,
        "Resource": f"{function}:prod",
        "ExecutedVersion": "4",
    }
    assert alarms["prod-live-error-rate"]["threshold"] == 2.5
    # The one alias invoked has one throttles alarm.
    assert [name for name in alarms if name.endswith("throttles")] == ["prod-live-throttles"]


def test_events_table_is_durable_encrypted_and_expires_idempotency_records(
    dev: ProgramRun,
) -> None:
    table = dev.graph.one(TABLE).inputs
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert (table["hashKey"], table["rangeKey"]) == ("pk", "sk")
    assert table["attributes"] == [{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}]
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["ttl"] == {"attributeName": "expiresAt", "enabled": True}


def test_function_gets_the_table_and_least_privilege_access_to_it(dev: ProgramRun) -> None:
    table = dev.graph.one(TABLE).outputs
    function = dev.graph.one("aws:lambda/function:Function").inputs
    assert function["environment"] == {
        "variables": {
            "TABLE_NAME": table["name"],
            "EVENT_SHARDS": "8",
            "EVENT_RETENTION_DAYS": "365",
        }
    }
    assert function["handler"] == "handler.handler"
    policy = json.loads(dev.graph.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    table_statements = [s for s in policy["Statement"] if table["arn"] in s["Resource"]]
    assert table_statements == [
        {
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:Query"],
            "Resource": [table["arn"]],
        }
    ]


def test_function_ships_only_its_sources(dev: ProgramRun) -> None:
    code = dev.graph.one("aws:lambda/function:Function").inputs["code"]
    assert set(code.assets) == {"handler.py"}


def test_nothing_is_open_to_the_internet(prod: ProgramRun) -> None:
    document = json.loads(prod.graph.one("aws:apigateway/restApi:RestApi").inputs["body"])
    operations = [op for methods in document["paths"].values() for op in methods.values()]
    assert len(operations) == 2
    assert all(op["security"] == [{"api_key": []}] for op in operations)
    plan = prod.graph.one("aws:apigateway/usagePlan:UsagePlan").inputs
    assert plan["apiStages"] == [
        {"apiId": prod.graph.one("aws:apigateway/restApi:RestApi").id, "stage": "prod"}
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"canaryPercent": "150"}, "event-logger:canaryPercent must be a number from 0 to 100"),
        ({"canaryPercent": "ten"}, "event-logger:canaryPercent must be a number from 0 to 100"),
        ({"alias": "123"}, "event-logger:alias must not be all digits"),
        ({"alias": ""}, "event-logger:alias is required"),
        ({"stableVersion": "$LATEST"}, "event-logger:stableVersion must be a published version"),
        ({"stableVersion": "0"}, "event-logger:stableVersion must be a published version"),
        ({"canaryAlias": "prod"}, "event-logger:canaryAlias must differ from the live alias"),
        ({"canaryMode": "lambda"}, "event-logger:canaryMode must be 'stage' or 'alias'"),
        (
            {"stageName": "s" * 83},
            "event-logger:stageName must be 1 to 82 letters, digits, '-' or '_'",
        ),
        ({"alarmErrorRatePercent": "0"}, "event-logger:alarmErrorRatePercent must be a percentage"),
        (
            {"timeoutSeconds": "5", "alarmP99DurationMs": "5000"},
            "event-logger:alarmP99DurationMs must be a number of milliseconds above 0 and below "
            "the function's timeout (5000 ms)",
        ),
    ],
)
def test_bad_stack_config_fails_by_key_before_any_resource(
    overrides: dict[str, str], message: str
) -> None:
    mocks = start_program_mocks(ROOT, "prod", overrides)
    with pytest.raises(ProgramError, match=re.escape(message)):
        execute_program(ROOT, mocks)
    assert mocks.graph.resources == {}
