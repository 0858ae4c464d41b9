"""See and prove a stack's routing before anything is deployed.

    versioned-lambda-api-plan --stack prod [--program DIR] [--set key=value ...]
                              [--format text|json] [--allow-open] [--openapi DIR]

(also ``python -m versioned_lambda_api.analysis.plan``). Runs the stack's real program with its
stack file's config under recording mocks (no Pulumi CLI, no credentials, no network) and prints
the resource tree, the routing table, each route's request template rendered for a sample
request, and the preflight findings; ``--openapi`` also writes each REST API's OpenAPI document
to a file. Exits 1 when the stack fails the plan (a finding is an error, or the program itself
failed), 2 when the command line is wrong (options, no Pulumi.yaml in --program, an unknown
stack, a --set without '=', an --openapi that is a file).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from versioned_lambda_api import __version__
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.preflight import Finding, preflight
from versioned_lambda_api.analysis.routing import (
    ALIAS,
    FUNCTION,
    REST_API,
    STAGE,
    RouteShare,
    endpoints,
    openapi_document,
    routing_table,
)
from versioned_lambda_api.analysis.samples import RenderedTemplate, render_request
from versioned_lambda_api.testing import (
    ProgramError,
    ProgramRun,
    execute_program,
    project_name,
    run_program,
    stack_config,
    start_program_mocks,
)

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
        template = endpoint.request_templates.get(_JSON_CONTENT_TYPE)
        if template is None:
            continue
        for stage in run.graph.of_type(STAGE):
            if stage.inputs.get("restApi") != endpoint.api.id:
                continue
            name = str(stage.inputs["stageName"])
            samples.append(
                TemplateSample(
                    name,
                    endpoint.http_method,
                    endpoint.path,
                    render_request(template, name, endpoint.request_methods[0], endpoint.path),
                )
            )
    return Plan(
        stack=stack,
        graph=run.graph,
        # Registrations finish in no fixed order; the plan should read the same every time.
        routing=sorted(routing_table(run.graph), key=lambda row: (row.api, row.stage)),
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
    """The routing table; with several REST APIs (component instances), one block per API,
    since their stages and aliases may have the same names."""
    apis = list(dict.fromkeys(row.api for row in rows))
    if len(apis) == 1:
        return _routing_rows(rows, "  ")
    lines = []
    for api in apis:
        lines.append(_fit(f"  REST API {api}"))
        lines += _routing_rows([row for row in rows if row.api == api], "    ")
    return lines


def _routing_rows(rows: list[RouteShare], indent: str) -> list[str]:
    stage_width = max((len(row.stage) for row in rows), default=5)
    alias_width = max((len(row.alias or "-") for row in rows), default=5)
    lines = []
    previous = None
    for row in rows:
        stage = row.stage if row.stage != previous else ""
        previous = row.stage
        lines.append(
            _fit(
                f"{indent}{stage:<{stage_width}}  {row.share:>5g}%"
                f"  → {row.alias or '-':<{alias_width}}  → {_version_text(row)}"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="versioned-lambda-api-plan",
        description="Show a stack's resources, routing and rendered templates, and check them, "
        "without deploying anything. Exit status: 0 the plan passes, 1 it fails (an error "
        "finding, or the program failed), 2 a wrong command line.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--program",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the Pulumi program's folder, holding Pulumi.yaml and Pulumi.<stack>.yaml "
        "(default: the current folder)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of the project, like 'pulumi config set' (repeatable)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, or one JSON object for scripts (default: text)",
    )
    parser.add_argument(
        "--allow-open",
        action="store_true",
        help="do not report methods open to the internet (also implied by the project's "
        "apiKeyRequired=false)",
    )
    parser.add_argument(
        "--openapi",
        type=Path,
        metavar="DIR",
        help="also write each REST API's OpenAPI document to DIR/<api>.json, for review and "
        "publishing",
    )
    return parser


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` pairs as config overrides; ValueError naming a malformed one. The
    local API and its check take the same option."""
    overrides = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


# The survey run publishes this for every function: every pinned version then exists (the
# component refuses a pin above the newest), and an alias that follows the newest version shows
# a number no one pins, so it is not mistaken for a pin.
_SURVEY_VERSION = 999_999_999


def assumed_published_versions(graph: ResourceGraph) -> dict[str, int]:
    """Function (logical name) to the version the plan assumes a deploy publishes for it: the
    one after the highest version any of its aliases, in any stage or instance, is pinned to (a
    release pins what is live, then deploys new code), else 1. Offline, nothing tells the real
    one. A pin is an alias' numeric ``functionVersion`` other than the version the run published.
    """
    by_reference: dict[str, ResourceRecord] = {}
    for function in graph.of_type(FUNCTION):
        # An alias names its function by name or by ARN.
        by_reference[str(function.outputs.get("name"))] = function
        by_reference[str(function.outputs.get("arn"))] = function
    versions = {function.name: 1 for function in graph.of_type(FUNCTION)}
    for alias in graph.of_type(ALIAS):
        pinned_function = by_reference.get(str(alias.inputs.get("functionName")))
        pinned = str(alias.inputs.get("functionVersion"))
        if (
            pinned_function is not None
            and pinned.isdigit()
            and pinned != str(pinned_function.outputs.get("version"))
        ):
            name = pinned_function.name
            versions[name] = max(versions[name], int(pinned) + 1)
    return versions


def run_with_assumed_versions(program: Path, stack: str, overrides: dict[str, str]) -> ProgramRun:
    """Run the program twice: once to read what its aliases pin, then with every function
    publishing the version :func:`assumed_published_versions` gives it."""
    survey = run_program(program, stack, overrides, published_version=_SURVEY_VERSION)
    mocks = start_program_mocks(program, stack, overrides)
    mocks.published_versions = assumed_published_versions(survey.graph)
    return execute_program(program, mocks)


def _file_name(api: str) -> str:
    # A logical name may hold any character; a file name should not.
    return re.sub(r"[^A-Za-z0-9._-]", "_", api) + ".json"


def write_openapi_documents(graph: ResourceGraph, directory: Path) -> list[Path]:
    """Write the OpenAPI document of each REST API declared by one (its ``body``) to
    ``directory/<api>.json``, pretty-printed; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for api in graph.of_type(REST_API):
        document = openapi_document(api)
        if document is None:
            continue
        path = directory / _file_name(api.name)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    program = args.program.resolve()
    if not (program / "Pulumi.yaml").is_file():
        parser.error(
            f"{program} has no Pulumi.yaml: run this in the program's folder or pass --program DIR"
        )
    try:
        project = project_name(program)
        stack_config(program, args.stack)
        overrides = parse_overrides(args.overrides)
        if args.openapi is not None and args.openapi.exists() and not args.openapi.is_dir():
            raise ValueError(f"--openapi takes a folder, and {args.openapi} is a file")
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"cannot plan stack {args.stack}: {error}")
    try:
        run = run_with_assumed_versions(program, args.stack, overrides)
    except ProgramError as error:
        print(f"error: cannot plan stack {args.stack}: {error}", file=sys.stderr)
        return 1
    open_allowed = args.allow_open or run.config.get(f"{project}:apiKeyRequired") == "false"
    plan = make_plan(run, args.stack, open_allowed)
    sys.stdout.write(format_json(plan) if args.format == "json" else format_text(plan))
    if args.openapi is not None:
        written = write_openapi_documents(run.graph, args.openapi)
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
        if not written:
            print("no REST API is declared by an OpenAPI document: none written", file=sys.stderr)
    return 1 if plan.has_errors else 0


def _silence_runtime_noise() -> None:
    """Keep what the Pulumi runtime leaves behind when a program fails off the terminal.

    Registrations still running when the program raised end with errors no one retrieves and
    event loops that die half-closed; asyncio and the interpreter would print those at exit,
    under the plan's one-line reason.
    """
    logging.getLogger("asyncio").disabled = True
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited")
    sys.unraisablehook = lambda _: None


def cli() -> int:
    """The ``versioned-lambda-api-plan`` script and ``python -m``: :func:`main` with the Pulumi
    runtime's leftovers silenced. In-process callers (tests) call :func:`main`, which leaves
    the interpreter's hooks alone."""
    _silence_runtime_noise()
    return main()


if __name__ == "__main__":
    sys.exit(cli())
