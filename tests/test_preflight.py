"""Preflight: the shipped stacks pass, and each rule catches the graph that breaks it.

Breaking graphs are the real program's graph with records changed, deleted or added; every graph
is a deep copy, so no test sees another's changes.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pulumi
import pytest

from components import VersionedLambdaApi, VersionedLambdaApiArgs
from components.api_spec import DEFAULT_REQUEST_TEMPLATE
from components.graph import ResourceGraph, ResourceRecord
from components.preflight import (
    RULES,
    Finding,
    arn_like,
    preflight,
    source_arn_covers,
)
from components.testing import ACCOUNT, REGION, start_mocks
from tests.conftest import PROJECT, run_stack

ALIAS = "aws:lambda/alias:Alias"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"

PROD_STAGE = "Stage event-logger-prod-stage"
DEV_STAGE = "Stage event-logger-dev-stage"
POST_INTEGRATION = "event-logger-POST-events-integration"
INVALID_PERMISSIONS = "500 'Invalid permissions on Lambda function'"


@cache
def _shipped(stack: str, overrides: tuple[tuple[str, str], ...], version: int) -> ResourceGraph:
    return run_stack(stack, dict(overrides) or None, published_version=version).graph


def graph_of(
    stack: str = "prod", overrides: dict[str, str] | None = None, version: int = 1
) -> ResourceGraph:
    """A private copy of the graph the real program registers for ``stack``."""
    return copy.deepcopy(_shipped(stack, tuple(sorted((overrides or {}).items())), version))


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


def execution_arn(graph: ResourceGraph) -> str:
    return str(graph.one(REST_API).outputs["executionArn"])


def function_arn(graph: ResourceGraph) -> str:
    return str(graph.one(FUNCTION).outputs["arn"])


def permission(graph: ResourceGraph, stage: str, role: str, method: str) -> ResourceRecord:
    return graph.resources[f"event-logger-{stage}-{role}-{method}-events-invoke"]


def delete(graph: ResourceGraph, *names: str) -> None:
    for name in names:
        del graph.resources[name]


# --- The shipped project ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "overrides", "version"),
    [
        ("dev", None, 1),
        ("prod", None, 1),
        ("prod", {"stableVersion": "3"}, 4),
    ],
)
def test_the_shipped_stacks_have_no_findings(
    stack: str, overrides: dict[str, str] | None, version: int
) -> None:
    assert check(graph_of(stack, overrides, version)) == []


def test_rules_are_listed_once_each_in_id_order() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == [f"PF{number:03d}" for number in range(1, 14)]
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert {rule.severity for rule in RULES} == {"error", "warning"}
    assert all(rule.summary.endswith(".") for rule in RULES)


def component_graph(routes: list[dict[str, str]]) -> ResourceGraph:
    """The component alone, with a dev stage and a pinned prod stage with a canary."""
    mocks = start_mocks(PROJECT, "dev", {}, published_version=4)
    args: dict[str, Any] = {
        "code": pulumi.AssetArchive({"handler.py": pulumi.StringAsset("def handler(e, c): ...")}),
        "handler": "handler.handler",
        "routes": routes,
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
    return mocks.graph


ROUTES_WITH_PARAMETER = [
    {"path": "events", "method": "POST"},
    {"path": "events/{id}", "method": "GET"},
]


def test_a_component_with_path_parameters_passes() -> None:
    assert check(component_graph(ROUTES_WITH_PARAMETER)) == []


def test_a_literal_path_parameter_in_a_source_arn_does_not_cover_its_values() -> None:
    graph = component_graph(ROUTES_WITH_PARAMETER)
    arn = str(graph.one(REST_API).outputs["executionArn"])
    for record in graph.of_type(PERMISSION):
        if record.inputs["sourceArn"].endswith("/prod/GET/events/*"):
            record.inputs["sourceArn"] = f"{arn}/prod/GET/events/{{id}}"
    findings = check(graph)
    assert {(f.rule, f.resource) for f in findings} == {
        ("PF001", "Alias api-prod-live-alias"),
        ("PF001", "Alias api-prod-canary-alias"),
    }
    assert all("for GET /events/{id}: " in f.message for f in findings)
    assert all(f"{arn}/prod/GET/events/*" in f.fix for f in findings)


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


def test_pf001_the_canary_without_permissions() -> None:
    graph = graph_of("prod")
    delete(
        graph,
        "event-logger-prod-canary-POST-events-invoke",
        "event-logger-prod-canary-GET-events-invoke",
    )
    finding = one(
        check(graph),
        "PF001",
        "Alias event-logger-prod-canary-alias",
        "stage prod's canary (10% of requests) invokes alias prod-canary",
        "for GET /events, POST /events: ",
        INVALID_PERMISSIONS,
    )
    assert finding.severity == "error"
    arn = execution_arn(graph)
    assert f"sourceArn {arn}/prod/GET/events and {arn}/prod/POST/events" in finding.fix
    assert "qualifier prod-canary" in finding.fix
    assert "principal apigateway.amazonaws.com" in finding.fix


@pytest.mark.parametrize(
    "wrong",
    [
        "{arn}/dev/POST/events",  # another stage
        "{arn}/prod/GET/events",  # another method
        "{arn}/prod/POST/event",  # another path
        "arn:aws:execute-api:us-east-1:123456789012:0therap1id/prod/POST/events",  # another API
    ],
)
def test_pf001_one_permission_broken_names_its_stage_share_and_method(wrong: str) -> None:
    graph = graph_of("prod")
    permission(graph, "prod", "live", "POST").inputs["sourceArn"] = wrong.format(
        arn=execution_arn(graph)
    )
    finding = one(
        check(graph),
        "PF001",
        "Alias event-logger-prod-live-alias",
        "stage prod's live traffic (90% of requests) invokes alias prod,",
        "for POST /events: ",
    )
    assert "GET" not in finding.message
    assert f"sourceArn {execution_arn(graph)}/prod/POST/events" in finding.fix


def test_pf001_a_permission_on_the_unqualified_function_does_not_cover_an_alias() -> None:
    graph = graph_of("dev")
    for method in ("POST", "GET"):
        del permission(graph, "dev", "live", method).inputs["qualifier"]
    one(
        check(graph),
        "PF001",
        "Alias event-logger-dev-live-alias",
        "stage dev's live traffic (100% of requests) invokes alias dev,",
        "for GET /events, POST /events: ",
    )


def test_pf001_a_permission_on_an_alias_does_not_cover_the_unqualified_function() -> None:
    graph = graph_of("dev")
    for integration in graph.of_type(INTEGRATION):
        integration.inputs["uri"] = integration.inputs["uri"].replace(
            ":${stageVariables.lambdaAlias}", ""
        )
    finding = one(
        check(graph),
        "PF001",
        "Function event-logger-function",
        "invokes the unqualified function event-logger-function-",
    )
    assert "no qualifier" in finding.fix


@pytest.mark.parametrize(
    ("function", "qualifier"),
    [
        ("{arn}:dev", None),  # full ARN with the alias as suffix
        ("{name}:dev", None),  # name with the alias as suffix
        (f"{ACCOUNT}:function:{{name}}", "dev"),  # partial ARN
        (f"{ACCOUNT}:function:{{name}}:dev", None),  # partial ARN with suffix
        ("{arn}", "dev"),  # full ARN and qualifier
        ("{arn}:dev", "dev"),  # both, agreeing
    ],
)
def test_pf001_every_way_of_naming_the_function_and_alias_counts(
    function: str, qualifier: str | None
) -> None:
    graph = graph_of("dev")
    arn = function_arn(graph)
    for method in ("POST", "GET"):
        inputs = permission(graph, "dev", "live", method).inputs
        inputs["function"] = function.format(arn=arn, name=arn.rpartition(":")[2])
        inputs.pop("qualifier")
        if qualifier is not None:
            inputs["qualifier"] = qualifier
    assert check(graph) == []


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("action", "lambda:*", True),
        ("action", "*", True),
        ("action", "LAMBDA:invokeFunction", True),  # IAM action names are case-insensitive
        ("action", "lambda:GetFunction", False),
        ("principal", "s3.amazonaws.com", False),
        ("function", "another-function", False),
        ("function", "{arn}:dev-canary", False),  # suffix disagrees with the qualifier
        ("sourceAccount", ACCOUNT, True),
        ("sourceAccount", "210987654321", False),
    ],
)
def test_pf001_what_a_permission_must_say(key: str, value: str, allowed: bool) -> None:
    graph = graph_of("dev")
    permission(graph, "dev", "live", "GET").inputs[key] = value.format(arn=function_arn(graph))
    findings = check(graph)
    if allowed:
        assert findings == []
    else:
        one(findings, "PF001", "Alias event-logger-dev-live-alias", "for GET /events: ")


@pytest.mark.parametrize(
    ("pattern", "uncovered"),
    [
        ("{arn}/prod/POST/events", "GET /events"),
        ("{arn}/*/POST/events", "GET /events"),  # any stage, one method
        ("{arn}/prod/*/*", None),  # every method and path of prod
        ("{arn}/*", None),
        ("{arn}/prod/GET/*", "POST /events"),  # GET only
        ("{arn}/pro?/POST/events", "GET /events"),
        ("{arn}/pro?/*/event?", None),
        ("{arn}/prod/post/events", "GET /events, POST /events"),  # case-sensitive
        ("{arn}/prod/*/events/*", "GET /events, POST /events"),  # no deeper path
        ("{arn}/dev/*/*", "GET /events, POST /events"),
        (f"arn:aws:execute-api:*:{ACCOUNT}:{{api}}/prod/*/*", None),
        (
            f"arn:aws:execute-api:{REGION}:210987654321:{{api}}/prod/*/*",
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
    graph = graph_of("prod")
    api_id = graph.one(REST_API).id
    for record in graph.of_type(PERMISSION):
        record.inputs["sourceArn"] = pattern.format(arn=execution_arn(graph), api=api_id)
    findings = check(graph)
    if uncovered is None:
        assert findings == []
        return
    assert [(f.rule, f.resource) for f in findings] == [
        ("PF001", "Alias event-logger-prod-canary-alias"),
        ("PF001", "Alias event-logger-prod-live-alias"),
    ]
    assert all(f"for {uncovered}: " in finding.message for finding in findings)


def test_pf001_a_version_needs_its_own_permission() -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["canarySettings"]["stageVariableOverrides"] = {"lambdaAlias": "1"}
    finding = one(
        check(graph),
        "PF001",
        "Function event-logger-function",
        "stage prod's canary (10% of requests) invokes version 1,",
    )
    assert "qualifier 1 " in finding.fix


# --- PF002 undefined-stage-variable -----------------------------------------------------------


def test_pf002_live_traffic_without_its_stage_variable() -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["variables"] = {}
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
    graph = graph_of("prod")
    stage = graph.one(STAGE)
    stage.inputs["variables"] = {"other": "x"}
    stage.inputs["canarySettings"]["stageVariableOverrides"] = {}
    findings = check(graph)
    assert [(f.rule, f.resource) for f in findings] == [("PF002", PROD_STAGE)] * 2
    canary = [f for f in findings if "canary (10% of requests)" in f.message]
    one(canary, "PF002", PROD_STAGE, "neither the stage variables nor the canary overrides")
    assert "canarySettings.stageVariableOverrides.lambdaAlias" in canary[0].fix


# --- PF003 alias-missing ----------------------------------------------------------------------


def test_pf003_the_canary_alias_is_not_in_the_program() -> None:
    graph = graph_of("prod")
    delete(graph, "event-logger-prod-canary-alias")
    finding = one(
        check(graph),
        "PF003",
        PROD_STAGE,
        "stage prod's canary (10% of requests) invokes alias prod-canary",
        "no such alias",
    )
    assert "(prod)" in finding.fix
    assert "stage variable" in finding.fix


def test_pf003_a_qualifier_written_into_the_uri() -> None:
    graph = graph_of("dev")
    integration = graph.resources[POST_INTEGRATION]
    integration.inputs["uri"] = integration.inputs["uri"].replace(
        "${stageVariables.lambdaAlias}", "nope"
    )
    findings = [f for f in check(graph) if f.rule == "PF003"]
    one(findings, "PF003", f"Integration {POST_INTEGRATION}", "alias nope", "POST /events")
    assert "integration URI" in findings[0].fix


def test_pf003_a_version_number_is_not_an_alias() -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["canarySettings"]["stageVariableOverrides"] = {"lambdaAlias": "7"}
    assert [f.rule for f in check(graph)] == ["PF001"]


# --- PF004 canary-equals-live -----------------------------------------------------------------


def test_pf004_the_canary_invokes_the_live_alias() -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["canarySettings"]["stageVariableOverrides"] = {"lambdaAlias": "prod"}
    finding = one(
        check(graph),
        "PF004",
        PROD_STAGE,
        "stage prod's canary (10% of requests) invokes alias prod",
        "the same as its live traffic",
    )
    assert "canarySettings.stageVariableOverrides.lambdaAlias" in finding.fix


def test_pf004_a_canary_without_overrides() -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["canarySettings"]["stageVariableOverrides"] = {}
    one(check(graph), "PF004", PROD_STAGE, "GET /events, POST /events")


# --- PF005 canary-percent-range ---------------------------------------------------------------


@pytest.mark.parametrize("percent", [150, -1, 100.5, "ten", True, float("nan"), [10]])
def test_pf005_percent_traffic_out_of_range_or_not_a_number(percent: object) -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["canarySettings"]["percentTraffic"] = percent
    one(check(graph), "PF005", PROD_STAGE, f"percentTraffic is {percent!r}", "0.0 to 100.0")


@pytest.mark.parametrize("percent", [0, 0.5, 100, 12.5])
def test_pf005_percent_traffic_in_range(percent: float) -> None:
    graph = graph_of("prod")
    graph.one(STAGE).inputs["canarySettings"]["percentTraffic"] = percent
    assert check(graph) == []


# --- PF006 alias-on-latest --------------------------------------------------------------------


def test_pf006_an_alias_on_latest() -> None:
    graph = graph_of("prod")
    graph.resources["event-logger-prod-live-alias"].inputs["functionVersion"] = "$LATEST"
    one(
        check(graph),
        "PF006",
        "Alias event-logger-prod-live-alias",
        "alias prod of event-logger-function-",
        "points at $LATEST",
    )


def test_pf006_an_integration_uri_on_latest() -> None:
    graph = graph_of("dev")
    integration = graph.resources[POST_INTEGRATION]
    integration.inputs["uri"] = integration.inputs["uri"].replace(
        "${stageVariables.lambdaAlias}", "$LATEST"
    )
    one(check(graph), "PF006", f"Integration {POST_INTEGRATION}", "POST /events", ":$LATEST")


def test_pf006_a_stage_variable_naming_latest() -> None:
    graph = graph_of("dev")
    graph.one(STAGE).inputs["variables"] = {"lambdaAlias": "$LATEST"}
    one(check(graph), "PF006", DEV_STAGE, "stage dev's live traffic", "invokes $LATEST")


# --- PF007 deployment-without-triggers --------------------------------------------------------


@pytest.mark.parametrize("triggers", [None, {}])
def test_pf007_a_deployment_without_triggers(triggers: dict[str, str] | None) -> None:
    graph = graph_of("prod")
    deployment = graph.resources["event-logger-deployment"]
    if triggers is None:
        del deployment.inputs["triggers"]
    else:
        deployment.inputs["triggers"] = triggers
    finding = one(check(graph), "PF007", "Deployment event-logger-deployment", "has no triggers")
    assert finding.severity == "warning"


# --- PF008 integration-response-without-method-response ---------------------------------------


def test_pf008_an_integration_response_without_its_method_response() -> None:
    graph = graph_of("prod")
    delete(graph, "event-logger-POST-events-503")
    one(
        check(graph),
        "PF008",
        "IntegrationResponse event-logger-POST-events-503-integration",
        "integration response 503 of POST /events has no method response 503",
    )


# --- PF009 open-method ------------------------------------------------------------------------


def test_pf009_a_method_anyone_can_call() -> None:
    graph = graph_of("prod")
    graph.resources["event-logger-POST-events"].inputs["apiKeyRequired"] = False
    one(check(graph), "PF009", "Method event-logger-POST-events", "POST /events", "no API key")
    assert check(graph, open_methods_allowed=True) == []


def test_pf009_missing_authorization_counts_as_none() -> None:
    graph = graph_of("dev")
    inputs = graph.resources["event-logger-GET-events"].inputs
    del inputs["authorization"], inputs["apiKeyRequired"]
    one(check(graph), "PF009", "Method event-logger-GET-events", "GET /events")


@pytest.mark.parametrize("protection", [{"authorization": "AWS_IAM"}, {"authorizerId": "abc123"}])
def test_pf009_authorization_without_an_api_key(protection: dict[str, str]) -> None:
    graph = graph_of("prod")
    for method in graph.of_type(METHOD):
        method.inputs["apiKeyRequired"] = False
        method.inputs.update(protection)
    assert check(graph) == []


# --- PF010 template-invalid -------------------------------------------------------------------


def set_post_template(graph: ResourceGraph, template: str) -> None:
    graph.resources[POST_INTEGRATION].inputs["requestTemplates"] = {"application/json": template}


def test_pf010_a_template_without_the_stage() -> None:
    graph = graph_of("prod")
    set_post_template(graph, '{"method": "$context.httpMethod", "id": "$context.requestId"}')
    one(
        check(graph),
        "PF010",
        f"Integration {POST_INTEGRATION}",
        "application/json request template of POST /events does not pass $context.stage",
    )


def test_pf010_a_stage_variable_is_not_the_stage() -> None:
    graph = graph_of("prod")
    set_post_template(graph, '## $context.stageVariables\n{"method": "$context.httpMethod"}')
    one(check(graph), "PF010", f"Integration {POST_INTEGRATION}", "does not pass $context.stage")


def test_pf010_the_formal_reference_passes_the_stage() -> None:
    graph = graph_of("prod")
    set_post_template(graph, '{"stage": "${context.stage}"}')
    assert check(graph) == []


def test_pf010_a_template_that_renders_broken_json() -> None:
    graph = graph_of("prod")
    missing_comma = DEFAULT_REQUEST_TEMPLATE.replace(
        '"stage": "$context.stage",\n', '"stage": "$context.stage"\n'
    )
    assert missing_comma != DEFAULT_REQUEST_TEMPLATE
    set_post_template(graph, missing_comma)
    one(
        check(graph),
        "PF010",
        f"Integration {POST_INTEGRATION}",
        "request template of POST /events does not render to valid JSON",
        "prod live, prod canary: not valid JSON",
    )


def test_pf010_a_template_that_cannot_be_rendered() -> None:
    graph = graph_of("dev")
    set_post_template(graph, '#if($context.stage == "dev")\n{"stage": "$context.stage"}\n')
    one(check(graph), "PF010", f"Integration {POST_INTEGRATION}", "dev live: cannot render")


@pytest.mark.parametrize(
    ("passthrough", "words"),
    [
        (None, "passthroughBehavior WHEN_NO_MATCH: the raw request body reaches the function"),
        ("WHEN_NO_TEMPLATES", "the raw request body reaches the function"),
        ("NEVER", "rejects its requests with 415"),
    ],
)
def test_pf010_an_integration_without_templates(passthrough: str | None, words: str) -> None:
    graph = graph_of("dev")
    inputs = graph.resources[POST_INTEGRATION].inputs
    del inputs["requestTemplates"], inputs["passthroughBehavior"]
    if passthrough is not None:
        inputs["passthroughBehavior"] = passthrough
    one(check(graph), "PF010", f"Integration {POST_INTEGRATION}", "POST /events", words)


def test_pf010_templates_that_let_other_content_types_through() -> None:
    graph = graph_of("dev")
    graph.resources[POST_INTEGRATION].inputs["passthroughBehavior"] = "WHEN_NO_MATCH"
    one(check(graph), "PF010", f"Integration {POST_INTEGRATION}", "reaches the function raw")


def test_pf010_a_proxy_integration_needs_no_template() -> None:
    graph = graph_of("dev")
    inputs = graph.resources[POST_INTEGRATION].inputs
    inputs["type"] = "AWS_PROXY"
    del inputs["requestTemplates"], inputs["passthroughBehavior"]
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
    graph = graph_of("prod")
    add_statement(graph.resources["event-logger-policy"], statement)
    one(check(graph), "PF011", "RolePolicy event-logger-policy", words)


def test_pf011_a_wildcard_deny_is_fine() -> None:
    graph = graph_of("prod")
    add_statement(
        graph.resources["event-logger-policy"],
        {"Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": "*"},
    )
    assert check(graph) == []


def test_pf011_inline_policies_of_a_role_and_managed_policies() -> None:
    graph = graph_of("prod")
    wildcard = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sqs:*"}}
    graph.resources["event-logger-role"].inputs["inlinePolicies"] = [
        {"name": "queue", "policy": json.dumps(wildcard)}
    ]
    graph.add(
        ResourceRecord("aws:iam/policy:Policy", "extra", {"policy": wildcard}, {}, "extra-id")
    )
    findings = check(graph)
    assert [(f.rule, f.resource) for f in findings] == [
        ("PF011", "Policy extra"),
        ("PF011", "Role event-logger-role"),
    ]
    assert "statement #1 of policy queue allows sqs:*" in findings[1].message


# --- PF012 log-group-without-retention --------------------------------------------------------


@pytest.mark.parametrize("retention", [None, 0])
def test_pf012_logs_kept_forever(retention: int | None) -> None:
    graph = graph_of("prod")
    inputs = graph.resources["event-logger-logs"].inputs
    del inputs["retentionInDays"]
    if retention is not None:
        inputs["retentionInDays"] = retention
    finding = one(check(graph), "PF012", "LogGroup event-logger-logs", "never expire")
    assert finding.severity == "warning"


# --- PF013 permission-without-source-arn ------------------------------------------------------


def test_pf013_a_permission_any_api_may_use() -> None:
    graph = graph_of("prod")
    del permission(graph, "prod", "canary", "GET").inputs["sourceArn"]
    finding = one(
        check(graph),
        "PF013",
        "Permission event-logger-prod-canary-GET-events-invoke",
        "(qualifier prod-canary) with no sourceArn",
        "any account",
    )
    assert finding.severity == "warning"


# --- All together -----------------------------------------------------------------------------


def broken_everywhere() -> ResourceGraph:
    graph = graph_of("prod")
    delete(graph, "event-logger-prod-canary-GET-events-invoke", "event-logger-GET-events-503")
    del graph.resources["event-logger-deployment"].inputs["triggers"]
    del graph.resources["event-logger-logs"].inputs["retentionInDays"]
    graph.resources["event-logger-POST-events"].inputs["apiKeyRequired"] = False
    del permission(graph, "prod", "live", "POST").inputs["sourceArn"]
    add_statement(graph.resources["event-logger-policy"], {"Effect": "Allow", "Action": "s3:*"})
    set_post_template(graph, '{"stage": "$context.stage" "x": 1}')
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
    # Wrapped with a six-column indent, as `python -m components.plan` prints them.
    assert len(longest) <= 74, longest
