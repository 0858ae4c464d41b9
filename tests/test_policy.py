"""The CrossGuard pack (policy/): the preflight rules as stack policies, run offline.

The Event Logger's stacks run under the recording mocks; each recorded resource becomes the
``PolicyResource`` the SDK builds for a stack policy (props are the outputs, id included, behind
``unknown_checking_proxy``, where the engine's unknown sentinels raise), and each policy's
``validate`` gets a ``StackValidationArgs`` and a collecting ``report_violation``.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import cache
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy.preflight_policies import POLICIES, violation_message
from tests.conftest import run_stack
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.preflight import RULES, preflight

PERMISSION = "aws:lambda/permission:Permission"
REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

STACKS: dict[str, tuple[str, dict[str, str], int]] = {
    "dev": ("dev", {}, 1),
    "prod": ("prod", {}, 4),
    "prod-pinned": ("prod", {"stableVersion": "3"}, 4),
    "prod-alias-mode": ("prod", {"canaryMode": "alias", "stableVersion": "3"}, 4),
}


@cache
def _recorded(stack: str) -> ResourceGraph:
    name, overrides, published = STACKS[stack]
    return run_stack(name, overrides, published_version=published).graph


def recorded(stack: str) -> ResourceGraph:
    """A fresh copy of the stack's recorded graph, for a test to break."""
    return copy.deepcopy(_recorded(stack))


@dataclasses.dataclass
class Outcome:
    violations: list[tuple[str, str | None]]
    """(message, URN) as reported."""
    undecided: str | None
    """The not-applicable reason, when the policy could not decide."""


def policy_resources(
    graph: ResourceGraph, unknown: dict[str, list[str]] | None = None
) -> list[PolicyResource]:
    """The resources as the SDK gives them to a stack policy: outputs (with the provider's
    ``id``) as props, parents and dependencies linked. ``unknown`` maps a logical name to the
    props the engine does not know yet (preview), sent as its unknown sentinel."""
    resources: dict[str, PolicyResource] = {}
    for record in graph.resources.values():
        props: dict[str, Any] = {**record.outputs, "id": record.id}
        for key in (unknown or {}).get(record.name, []):
            props[key] = UNKNOWN_STRING_VALUE
        resources[record.urn] = PolicyResource(
            record.type,
            unknown_checking_proxy(props),
            record.urn,
            record.name,
            PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []),
            None,
            None,
            [],
            {},
        )
    for record in graph.resources.values():
        resource = resources[record.urn]
        resource.parent = resources.get(record.parent_urn)
        resource.dependencies = [resources[urn] for urn in record.dependencies if urn in resources]
    return list(resources.values())


def run(policy: StackValidationPolicy, resources: list[PolicyResource]) -> Outcome:
    violations: list[tuple[str, str | None]] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        violations.append((message, urn))

    try:
        policy.validate(StackValidationArgs(resources), report_violation)
    except _NotApplicableError as error:  # what args.not_applicable raises, as the SDK expects
        return Outcome(violations, error.reason)
    return Outcome(violations, None)


def run_all(resources: list[PolicyResource]) -> dict[str, Outcome]:
    return {policy.name: run(policy, resources) for policy in POLICIES}


def _urn(graph: ResourceGraph, label: str) -> str:
    return next(r.urn for r in graph.resources.values() if r.label == label)


def test_there_is_one_policy_per_rule_errors_mandatory_warnings_advisory() -> None:
    assert [p.name for p in POLICIES] == [f"{r.id}-{r.name}" for r in RULES]
    for policy, rule in zip(POLICIES, RULES, strict=True):
        expected = (
            EnforcementLevel.MANDATORY if rule.severity == "error" else EnforcementLevel.ADVISORY
        )
        assert policy.enforcement_level == expected, rule.id
        assert policy.description == rule.summary


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_the_healthy_stacks_violate_no_policy_and_every_rule_decides(stack: str) -> None:
    graph = recorded(stack)
    assert preflight(graph) == []
    outcomes = run_all(policy_resources(graph))
    assert {name: o for name, o in outcomes.items() if o.violations or o.undecided} == {}


def _remove(graph: ResourceGraph, typ: str, predicate: Any) -> ResourceRecord:
    key, record = next((k, r) for k, r in graph.resources.items() if r.type == typ and predicate(r))
    del graph.resources[key]
    return record


def _replace_in_body(graph: ResourceGraph, old: str, new: str) -> None:
    api = graph.one(REST_API)
    body = str(api.inputs["body"])
    assert old in body
    api.inputs["body"] = api.outputs["body"] = body.replace(old, new)


def _break_permission(graph: ResourceGraph) -> None:
    _remove(graph, PERMISSION, lambda r: r.inputs.get("qualifier") == "prod-canary")


def _break_template(graph: ResourceGraph) -> None:
    # The stage goes out of every request template: the body is JSON, the template a string in it.
    _replace_in_body(graph, '\\"$context.stage\\"', '\\"prod\\"')


def _break_retention(graph: ResourceGraph) -> None:
    log_group = graph.one(LOG_GROUP)
    log_group.inputs["retentionInDays"] = log_group.outputs["retentionInDays"] = 0


@pytest.mark.parametrize(
    ("broken", "rule", "label", "level"),
    [
        (_break_permission, "PF001", "Alias", EnforcementLevel.MANDATORY),
        (_break_template, "PF010", "RestApi", EnforcementLevel.MANDATORY),
        (_break_retention, "PF012", "LogGroup", EnforcementLevel.ADVISORY),
    ],
)
def test_a_broken_graph_reports_what_preflight_finds_on_the_resource_to_fix(
    broken: Any, rule: str, label: str, level: EnforcementLevel
) -> None:
    graph = recorded("prod")
    broken(graph)
    findings = preflight(graph)
    assert {f.rule for f in findings} == {rule}
    assert all(f.resource.startswith(label) for f in findings)
    outcomes = run_all(policy_resources(graph))
    # Every finding, no more, each on the URN of the resource it names, under its rule's policy.
    reported = sorted(
        (name, message, urn) for name, o in outcomes.items() for message, urn in o.violations
    )
    assert reported == sorted(
        (f"{f.rule}-{f.name}", violation_message(f), _urn(graph, f.resource)) for f in findings
    )
    assert not [name for name, o in outcomes.items() if o.undecided]
    policy = next(p for p in POLICIES if p.name.startswith(rule))
    assert policy.enforcement_level == level
    message = reported[0][1]
    assert message.startswith(f"{rule} ")
    assert findings[0].resource in message
    assert f"fix: {findings[0].fix}" in message


def test_an_unknown_source_arn_is_undecided_where_a_wrong_one_is_a_violation() -> None:
    graph = recorded("prod")
    name = next(
        r.name for r in graph.of_type(PERMISSION) if r.inputs.get("qualifier") == "prod-canary"
    )
    undecided = run_all(policy_resources(graph, {name: ["sourceArn"]}))
    assert not [n for n, o in undecided.items() if o.violations]
    reason = undecided["PF001-missing-invoke-permission"].undecided
    assert reason is not None
    assert f"Permission {name}.sourceArn" in reason
    # Rules that never read it still decide.
    assert undecided["PF012-log-group-without-retention"].undecided is None

    wrong = next(r for r in graph.of_type(PERMISSION) if r.name == name)
    wrong.outputs["sourceArn"] = "arn:aws:execute-api:us-east-1:123456789012:other/prod/*/*"
    decided = run_all(policy_resources(graph))
    assert [m for m, _ in decided["PF001-missing-invoke-permission"].violations]


def test_an_unknown_openapi_body_makes_no_violation() -> None:
    # Broken on purpose as well: only the body could show it, and the body is not known yet.
    graph = recorded("prod")
    _break_template(graph)
    api = graph.one(REST_API)
    outcomes = run_all(policy_resources(graph, {api.name: ["body"]}))
    assert {n: o.violations for n, o in outcomes.items() if o.violations} == {}
    for rule in ("PF001", "PF009", "PF010", "PF026"):
        reason = next(o.undecided for n, o in outcomes.items() if n.startswith(rule))
        assert reason is not None
        assert f"RestApi {api.name}.body" in reason


def test_a_new_api_whose_id_and_references_are_unknown_makes_no_violation() -> None:
    # A first preview: the API's id and what refers to it are only known once it is created.
    graph = recorded("prod")
    api = graph.one(REST_API)
    unknown = {api.name: ["id", "executionArn", "rootResourceId", "body"]}
    for record in graph.of_type(STAGE) + graph.of_type(PERMISSION):
        unknown[record.name] = ["restApi", "sourceArn"]
    outcomes = run_all(policy_resources(graph, unknown))
    assert {n: o.violations for n, o in outcomes.items() if o.violations} == {}


def test_an_unknown_stage_variable_inside_a_prop_is_undecided() -> None:
    graph = recorded("prod")
    stage = graph.of_type(STAGE)[0]
    resources = policy_resources(graph)
    variables = {**stage.outputs["variables"], "lambdaAlias": UNKNOWN_STRING_VALUE}
    target = next(r for r in resources if r.urn == stage.urn)
    target.props = unknown_checking_proxy({**stage.outputs, "variables": variables})
    outcome = run(next(p for p in POLICIES if p.name.startswith("PF002")), resources)
    assert outcome.violations == []
    assert outcome.undecided is not None
    assert "variables.lambdaAlias" in outcome.undecided
