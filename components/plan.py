"""See and prove a stack's routing before anything is deployed.

    python -m components.plan --stack prod [--program DIR] [--set key=value ...]
                              [--format text|json] [--allow-open]

Runs the stack's real program with its stack file's config under recording mocks (no Pulumi
CLI, no credentials, no network) and prints the resource tree, the routing table, each route's
request template rendered for a sample request, and the preflight findings. Exits 1 when a
finding is an error, 2 when the plan cannot be made.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.graph import ResourceGraph, ResourceRecord
from components.preflight import Finding, preflight
from components.routing import RouteShare, endpoints, routing_table
from components.samples import RenderedTemplate, render_request
from components.testing import ProgramRun, project_name, run_program, stack_config

WIDTH = 80
_JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class TemplateSample:
    """A route's request template rendered for a sample request to one stage."""

    stage: str
    method: str
    path: str
    rendered: RenderedTemplate


@dataclass(frozen=True)
class Plan:
    """Everything the plan shows, for one stack."""

    stack: str
    graph: ResourceGraph
    routing: list[RouteShare]
    templates: list[TemplateSample]
    findings: list[Finding]
    messages: list[tuple[str, str]]
    """Warnings and errors the program itself logged."""

    @property
    def has_errors(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)


def make_plan(run: ProgramRun, stack: str, open_methods_allowed: bool) -> Plan:
    """Derive the plan of a program run."""
    samples = []
    for endpoint in endpoints(run.graph):
        template = (endpoint.integration.inputs.get("requestTemplates") or {}).get(
            _JSON_CONTENT_TYPE
        )
        if template is None:
            continue
        for stage in run.graph.of_type("aws:apigateway/stage:Stage"):
            if stage.inputs.get("restApi") != endpoint.api.id:
                continue
            name = str(stage.inputs["stageName"])
            samples.append(
                TemplateSample(
                    name,
                    endpoint.http_method,
                    endpoint.path,
                    render_request(template, name, endpoint.http_method, endpoint.path),
                )
            )
    return Plan(
        stack=stack,
        graph=run.graph,
        routing=routing_table(run.graph),
        templates=samples,
        findings=preflight(run.graph, open_methods_allowed=open_methods_allowed),
        messages=run.messages,
    )


# --- Text --------------------------------------------------------------------------------


def _short_type(token: str) -> str:
    # aws:lambda/function:Function -> lambda:Function; a component's own token stays whole.
    package, _, rest = token.partition(":")
    module, _, name = rest.partition(":")
    if package == "aws":
        return f"{module.partition('/')[0]}:{name}"
    return token


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def format_tree(graph: ResourceGraph) -> list[str]:
    lines: list[str] = []

    def walk(parent_urn: str, depth: int) -> None:
        for record in sorted(
            graph.children(parent_urn), key=lambda r: (_short_type(r.type), r.name)
        ):
            lines.append(_fit(f"{'  ' * depth}{record.name}  [{_short_type(record.type)}]"))
            if record.urn:
                walk(record.urn, depth + 1)

    walk("", 1)
    return lines


def _version_text(row: RouteShare) -> str:
    if row.version is None:
        return "(alias not found)"
    text = f"v{row.version} ({'newest' if row.newest else 'pinned'})"
    if row.weights:
        extra = ", ".join(f"v{version} {weight:.0%}" for version, weight in row.weights.items())
        text += f"; within the alias: {extra}"
    return text


def format_routing(rows: list[RouteShare]) -> list[str]:
    stage_width = max((len(row.stage) for row in rows), default=5)
    alias_width = max((len(row.alias or "-") for row in rows), default=5)
    lines = []
    previous = None
    for row in rows:
        stage = row.stage if row.stage != previous else ""
        previous = row.stage
        lines.append(
            _fit(
                f"  {stage:<{stage_width}}  {row.share:>5g}%  → {row.alias or '-':<{alias_width}}"
                f"  → {_version_text(row)}"
            )
        )
    return lines


def format_templates(samples: list[TemplateSample]) -> list[str]:
    lines: list[str] = []
    for sample in samples:
        lines.append(f"  {sample.method} /{sample.path} on stage {sample.stage}:")
        rendered = sample.rendered
        if rendered.error is None:
            body = json.dumps(rendered.payload, indent=2, ensure_ascii=False)
            lines += [_fit(f"    {line}") for line in body.splitlines()]
        else:
            lines.append(_fit(f"    INVALID: {rendered.error}"))
            lines += [_fit(f"    | {line}") for line in rendered.text.splitlines()]
    return lines


def format_findings(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["  none: every reachable alias is allowed in, and nothing is open"]
    lines = []
    for finding in findings:
        lines.append(_fit(f"  {finding.severity.upper()} {finding.rule} {finding.name}"))
        lines.append(_fit(f"    on {finding.resource}"))
        for label, text in (("", finding.message), ("fix: ", finding.fix)):
            lines += textwrap.wrap(
                label + text, WIDTH, initial_indent="    ", subsequent_indent="      "
            )
    return lines


def format_text(plan: Plan) -> str:
    errors = sum(1 for f in plan.findings if f.severity == "error")
    warnings = len(plan.findings) - errors
    sections = [
        (f"Resources ({len(plan.graph.resources)})", format_tree(plan.graph)),
        ("Routing (share of a stage's requests → alias → version)", format_routing(plan.routing)),
        ("Request templates, rendered for a sample request", format_templates(plan.templates)),
        (f"Preflight: {errors} error(s), {warnings} warning(s)", format_findings(plan.findings)),
    ]
    if plan.messages:
        sections.insert(
            0,
            (
                "The program says",
                [
                    line
                    for level, message in plan.messages
                    for line in textwrap.wrap(
                        f"{level}: {message}", WIDTH, initial_indent="  ", subsequent_indent="    "
                    )
                ],
            ),
        )
    out = [f"Plan for stack {plan.stack}"]
    for title, lines in sections:
        out += ["", title, *lines]
    return "\n".join(out) + "\n"


# --- JSON --------------------------------------------------------------------------------


def _resource_json(graph: ResourceGraph, record: ResourceRecord) -> dict[str, Any]:
    parent = graph.by_urn(record.parent_urn)
    return {"type": record.type, "name": record.name, "parent": parent.name if parent else None}


def format_json(plan: Plan) -> str:
    document = {
        "stack": plan.stack,
        "resources": [_resource_json(plan.graph, r) for r in plan.graph.resources.values()],
        "routing": [asdict(row) for row in plan.routing],
        "templates": [
            {
                "stage": s.stage,
                "method": s.method,
                "path": f"/{s.path}",
                "valid": s.rendered.error is None,
                "payload": s.rendered.payload,
                "error": s.rendered.error,
                "text": s.rendered.text,
            }
            for s in plan.templates
        ],
        "findings": [asdict(finding) for finding in plan.findings],
        "messages": [{"level": level, "message": message} for level, message in plan.messages],
        "errors": sum(1 for f in plan.findings if f.severity == "error"),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- Command line ------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m components.plan",
        description="Show a stack's resources, routing and rendered templates, and check them, "
        "without deploying anything.",
    )
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--program", type=Path, default=Path("."), help="program folder (default: .)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of the project, like 'pulumi config set' (repeatable)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--allow-open",
        action="store_true",
        help="do not report methods open to the internet (also implied by the project's "
        "apiKeyRequired=false)",
    )
    return parser.parse_args(argv)


def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


def assumed_newest_version(
    program: Path, stack: str, project: str, overrides: dict[str, str]
) -> int:
    """The version the plan shows as newest: the one after a pinned ``stableVersion`` (a
    release deploys new code after pinning), else 1. Offline, nothing tells the real one."""
    pinned = overrides.get(
        "stableVersion", stack_config(program, stack).get(f"{project}:stableVersion")
    )
    return int(pinned) + 1 if pinned is not None and pinned.isdigit() else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    program = args.program.resolve()
    try:
        project = project_name(program)
        overrides = _overrides(args.overrides)
        run = run_program(
            program,
            args.stack,
            overrides,
            published_version=assumed_newest_version(program, args.stack, project, overrides),
        )
    except (FileNotFoundError, ValueError, pulumi.RunError) as error:
        print(f"error: cannot plan stack {args.stack}: {error}", file=sys.stderr)
        return 2
    open_allowed = args.allow_open or run.config.get(f"{project}:apiKeyRequired") == "false"
    plan = make_plan(run, args.stack, open_allowed)
    sys.stdout.write(format_json(plan) if args.format == "json" else format_text(plan))
    return 1 if plan.has_errors else 0


if __name__ == "__main__":
    sys.exit(main())
