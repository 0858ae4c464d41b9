"""The preflight rules (PF001-PF026) as CrossGuard stack policies, one policy per rule.

A stack policy gets every resource of the stack with its outputs (which include its inputs) as
``props``; this module turns them into the :class:`ResourceGraph` that
:mod:`versioned_lambda_api.analysis.preflight` reads under mocks, runs one rule on it and reports
each :class:`Finding` as a violation on the resource it names.

One policy per rule, not one for all, because the SDK's unit of control is the policy: each rule
gets its own enforcement level (errors mandatory, warnings advisory) that a stack can change or
disable in the pack's config (PF009 disabled is ``make plan --allow-open``), and a rule that
cannot decide at preview says so as that policy's "not applicable" reason while the other rules
still report.

Unknown values: during a preview the engine sends what a resource will only know once created
or updated (an id, an ARN, a body built from one) as sentinels, and pulumi_policy's
``unknown_checking_proxy`` raises ``UnknownValueError`` when one is read. Here each becomes an
:class:`Unknown` inside containers that note every read of one: a rule that read an unknown
value is undecided, and reports nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, SupportsIndex, overload

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from versioned_lambda_api.analysis import preflight, routing
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.preflight import Finding, Rule

PACK_NAME = "versioned-lambda-api-preflight"


class Unknown(str):
    """A value the engine will only know after the update; its text is the engine's sentinel
    (one per kind: string, number, array...), which no real value equals."""

    __slots__ = ()


class Reads:
    """Where a rule read unknown values, as ``<resource label>.<property path>``."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def note(self, path: str, value: object) -> None:
        if isinstance(value, Unknown):
            self.unknown.append(path)


class _TrackedDict(dict[str, Any]):
    """A dict that notes each unknown value read through it: by key, ``get``, ``items``,
    ``values``, or copied with ``dict(...)`` / ``{**...}`` (which go through ``keys`` and
    ``__getitem__`` because ``__iter__`` is overridden)."""

    def __init__(self, items: dict[str, Any], reads: Reads, path: str) -> None:
        super().__init__(items)
        self._reads = reads
        self._path = path

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        self._reads.note(f"{self._path}.{key}", value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        return self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(key, self[key]) for key in self]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[key] for key in self]


class _TrackedList(list[Any]):
    """A list that notes each unknown element read: by index, iterating, or ``in``."""

    def __init__(self, items: list[Any], reads: Reads, path: str) -> None:
        super().__init__(items)
        self._reads = reads
        self._path = path

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        value = super().__getitem__(index)
        self._reads.note(f"{self._path}[{int(index)}]", value)
        return value

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __contains__(self, item: object) -> bool:
        return any(value == item for value in self)


def _plain(value: Any, reads: Reads, path: str) -> Any:
    """``value`` (a policy prop, through pulumi_policy's proxies or not) as tracked dicts and
    lists, each unknown value an :class:`Unknown`."""
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, Mapping):
        return _TrackedDict(
            {str(key): _plain(_read(value, key), reads, f"{path}.{key}") for key in value},
            reads,
            path,
        )
    if isinstance(value, Sequence):
        return _TrackedList(
            [_plain(_read(value, i), reads, f"{path}[{i}]") for i in range(len(value))],
            reads,
            path,
        )
    return value


def _read(container: Any, key: Any) -> Any:
    # The proxies raise on an unknown value rather than return it; iterating a proxied list
    # would stop at the first one, hence reads by key and index.
    try:
        return container[key]
    except UnknownValueError as unknown:
        return Unknown(unknown.unknown_type_sentinel)


def resource_graph(resources: Iterable[Any], reads: Reads) -> ResourceGraph:
    """The preflight graph of a stack policy's ``resources`` (``PolicyResource``): type,
    logical name, URN, parent and dependencies as the engine gives them; the props as both
    inputs and outputs (the engine sends outputs, which hold the inputs and what preflight
    reads of the outputs: ids, ``executionArn``, ``rootResourceId``, ``path``, ``arn``...)."""
    graph = ResourceGraph()
    for resource in resources:
        label = f"{resource.resource_type.rpartition(':')[2]} {resource.name}"
        props = _plain(resource.props, reads, label)
        resource_id = props.get("id")
        record = ResourceRecord(
            type=resource.resource_type,
            name=resource.name,
            inputs=props,
            outputs=props,
            # An id not known yet, or none (components, providers), is unlike every other id;
            # whatever refers to an unknown id is unknown itself, and noted when read.
            id=resource_id
            if isinstance(resource_id, str) and not isinstance(resource_id, Unknown)
            else resource.urn,
            urn=resource.urn,
            parent_urn=resource.parent.urn if resource.parent is not None else "",
            dependencies=[dependency.urn for dependency in resource.dependencies],
        )
        try:
            graph.add(record)
        except ValueError:
            # The same type and name under parents of different types: distinct URNs that
            # the engine accepts; keyed by URN, the record is still found by type and id.
            graph.resources[record.urn] = record
    return graph


def rule_check(rule: Rule) -> Callable[[ResourceGraph], Iterable[Finding]]:
    """The preflight function of ``rule`` (named after it: ``missing_invoke_permission`` for
    ``missing-invoke-permission``), called with the arguments its signature names, computed
    as :func:`preflight.preflight` does. Open methods are refused as there; a stack that
    allows them disables PF009."""
    check = getattr(preflight, rule.name.replace("-", "_"))
    parameters = list(inspect.signature(check).parameters)

    def run(graph: ResourceGraph) -> Iterable[Finding]:
        arguments: dict[str, Any] = {"graph": graph, "open_methods_allowed": False}
        if "found" in parameters or "invoked" in parameters:
            # One list of endpoints for both: PF010 matches invocations to endpoints by identity.
            arguments["found"] = routing.endpoints(graph)
            arguments["invoked"] = routing.invocations(graph, arguments["found"])
        return check(*(arguments[name] for name in parameters))  # type: ignore[no-any-return]

    return run


def evaluate(
    check: Callable[[ResourceGraph], Iterable[Finding]], resources: Iterable[Any]
) -> tuple[list[Finding], list[str]]:
    """The findings of a rule's ``check`` on the stack, and the unknown values it read; when
    it read any, its findings are undecided and the list is empty."""
    reads = Reads()
    graph = resource_graph(resources, reads)
    try:
        findings = list(check(graph))
    except Exception:
        # An unknown (an object for a dict, text for a number) can break what a known value
        # would not; without one, the failure is preflight's own and must show.
        if not reads.unknown:
            raise
    if reads.unknown:
        return [], sorted(set(reads.unknown))
    return findings, []


def _urns_by_label(resources: Iterable[Any]) -> dict[str, list[str]]:
    urns: dict[str, list[str]] = {}
    for resource in resources:
        label = f"{resource.resource_type.rpartition(':')[2]} {resource.name}"
        urns.setdefault(label, []).append(resource.urn)
    return urns


def violation_message(finding: Finding) -> str:
    """The rule, the resource, what is wrong and the fix, on one line each."""
    return (
        f"{finding.rule} {finding.name} on {finding.resource}: {finding.message}\n"
        f"fix: {finding.fix}"
    )


def validator(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    # Looked up now, so that a rule preflight has no function for fails as the pack loads.
    check = rule_check(rule)

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        findings, unknown = evaluate(check, args.resources)
        if unknown:
            shown = ", ".join(unknown[:3]) + (
                f" and {len(unknown) - 3} more" if unknown[3:] else ""
            )
            args.not_applicable(
                f"undecided until the update: {rule.id} reads values not known yet ({shown})"
            )
        urns = _urns_by_label(args.resources)
        for finding in findings:
            matching = urns.get(finding.resource, [])
            # A label two resources share (types of one name from different modules) names
            # neither for sure: the violation goes on the stack, the message names the label.
            report_violation(
                violation_message(finding), matching[0] if len(matching) == 1 else None
            )

    return validate


def policy(rule: Rule) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=f"{rule.id}-{rule.name}",
        description=rule.summary,
        validate=validator(rule),
        enforcement_level=(
            EnforcementLevel.MANDATORY if rule.severity == "error" else EnforcementLevel.ADVISORY
        ),
    )


POLICIES: list[StackValidationPolicy] = [policy(rule) for rule in preflight.RULES]
