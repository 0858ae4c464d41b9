"""The offline plan: its output for the shipped stacks, a broken stack, and bad invocations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from versioned_lambda_api.analysis import plan
from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.preflight import RULES
from versioned_lambda_api.analysis.routing import ALIAS, FUNCTION, REST_API, openapi_document
from versioned_lambda_api.args import StagePlan

SHOP_FUNCTION = ROOT / "tests" / "programs" / "many_routes" / "function"


def run_plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = plan.main(["--program", str(ROOT), *argv])
    except SystemExit as exit_:  # argparse's way out of a wrong command line
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_plan_cleanly_from_the_command_line(stack: str, tmp_path: Path) -> None:
    # The component's script, from another folder than the program's.
    script = Path(sys.executable).parent / "versioned-lambda-api-plan"
    assert script.is_file(), "the component's scripts are missing: pip install -e ./components"
    result = subprocess.run(  # noqa: S603 - our own script
        [str(script), "--stack", stack, "--program", str(ROOT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Plan for stack {stack}" in result.stdout
    assert "Preflight: 0 error(s), 0 warning(s)" in result.stdout


def test_text_plan_shows_tree_routing_templates_and_findings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_plan(capsys, "--stack", "prod", "--set", "stableVersion=3")
    assert code == 0
    lines = out.splitlines()
    component = lines.index("  event-logger  [versioned-lambda-api:index:VersionedLambdaApi]")
    assert "    event-logger-function  [lambda:Function]" in lines[component:]
    assert "  events  [dynamodb:Table]" in lines
    assert "  prod     90%  → prod         → v3 (pinned)" in lines
    # The plan assumes the deploy after a pin publishes the next version.
    assert "           10%  → prod-canary  → v4 (newest)" in lines
    assert "  POST /events on stage prod:" in lines
    assert '      "stage": "prod",' in lines
    assert all(len(line) <= plan.WIDTH for line in lines), [
        line for line in lines if len(line) > plan.WIDTH
    ]


def test_program_warnings_are_shown_not_lost(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_plan(capsys, "--stack", "prod")
    assert "The program says" in out
    assert "no stable" in out


def test_json_plan_carries_the_same_content(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_plan(
        capsys, "--stack", "prod", "--set", "stableVersion=3", "--format", "json"
    )
    assert code == 0
    document = json.loads(out)
    assert document["stack"] == "prod"
    assert document["errors"] == 0
    assert document["findings"] == []
    assert [(r["stage"], r["share"], r["alias"], r["version"]) for r in document["routing"]] == [
        ("prod", 90.0, "prod", "3"),
        ("prod", 10.0, "prod-canary", "4"),
    ]
    by_name = {r["name"]: r for r in document["resources"]}
    assert by_name["event-logger-function"]["parent"] == "event-logger"
    assert by_name["events"]["parent"] is None
    post = next(t for t in document["templates"] if t["method"] == "POST")
    assert post["valid"] is True
    assert post["payload"]["stage"] == "prod"
    assert json.loads(post["text"]) == post["payload"]


def test_a_forgotten_canary_permission_fails_the_plan(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inject the bug users hit most: the canary alias gets traffic but no invoke permission.
    monkeypatch.setattr(StagePlan, "reachable_aliases", lambda self: {"live": self.live_alias})
    code, out, _ = run_plan(capsys, "--stack", "prod")
    assert code == 1
    assert "ERROR PF001 missing-invoke-permission" in out
    assert "prod-canary" in out
    assert all(len(line) <= plan.WIDTH for line in out.splitlines())


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        # A wrong command line: usage errors.
        (["--stack", "staging"], 2, "Pulumi.staging.yaml does not exist"),
        (["--stack", "prod", "--set", "canaryPercent"], 2, "--set takes KEY=VALUE"),
        (
            ["--stack", "prod", "--program", "/nonexistent"],
            2,
            "/nonexistent has no Pulumi.yaml: run this in the program's folder or pass "
            "--program DIR",
        ),
        # The program refuses the stack's config: the stack fails the plan.
        (
            ["--stack", "prod", "--set", "canaryPercent=150"],
            1,
            "event-logger:canaryPercent must be a number from 0 to 100",
        ),
    ],
)
def test_a_plan_that_cannot_be_made_says_why(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    exit_code, out, err = run_plan(capsys, *argv)
    assert exit_code == code
    assert out == ""
    assert message in err
    assert ("usage: versioned-lambda-api-plan" in err) == (code == 2)
    assert "Traceback" not in err


def test_readme_documents_every_preflight_rule() -> None:
    readme = (ROOT / "README.md").read_text()
    for rule in RULES:
        assert f"| {rule.id} | `{rule.name}` | {rule.severity} | {rule.summary} |" in readme


def write_program(folder: Path, main: str, config: str = "") -> Path:
    """A program folder of project ``shop`` with stack ``dev``."""
    folder.mkdir(exist_ok=True)
    (folder / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (folder / "Pulumi.dev.yaml").write_text(f"config:\n  aws:region: us-east-1\n{config}")
    (folder / "__main__.py").write_text(textwrap.dedent(main))
    return folder


# Registers resources whose outputs others wait on, so they are still in flight when it fails.
_REGISTERS_THEN = """
    import pulumi
    import pulumi_aws as aws

    table = aws.dynamodb.Table("t", hash_key="pk", attributes=[{"name": "pk", "type": "S"}])
    for number in range(10):
        aws.iam.Role(f"r{number}", assume_role_policy=table.arn.apply(lambda arn: "{}"))
    pulumi.export("table", table.arn.apply(lambda arn: arn + "!"))
"""

_RUNTIME_NOISE = (
    "Traceback",
    "never retrieved",
    "Task was destroyed",
    "Exception ignored",
    "was never awaited",
    "pulumi:",
)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (
            'raise RuntimeError("the table is not ready")',
            "RuntimeError: the table is not ready (raised at __main__.py, line 9)",
        ),
        # The provider refuses the name (over 64 characters) while other registrations wait.
        (
            'aws.iam.Role("long", name="r" * 65, assume_role_policy="{}")',
            "resource 'long'",
        ),
    ],
)
def test_a_failing_program_exits_1_with_its_reason_and_no_runtime_noise(
    tmp_path: Path, failure: str, reason: str
) -> None:
    program = write_program(tmp_path / "broken", _REGISTERS_THEN + f"    {failure}\n")
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "versioned_lambda_api.analysis.plan",
            "--stack",
            "dev",
            "--program",
            str(program),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot plan stack dev: ")
    assert reason in result.stderr
    assert len(result.stderr.splitlines()) <= 2, result.stderr
    assert not [noise for noise in _RUNTIME_NOISE if noise in result.stderr], result.stderr


def test_an_error_raised_from_itself_is_reported_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Pulumi re-raises an apply's error with itself as the cause; the reason must not loop.
    program = write_program(
        tmp_path,
        """
        import pulumi_aws as aws

        table = aws.dynamodb.Table("t", hash_key="pk", attributes=[{"name": "pk", "type": "S"}])
        aws.iam.Role("r", assume_role_policy=table.arn.apply(lambda arn: {}["policy"]))
        """,
    )
    code, out, err = run_plan(capsys, "--program", str(program), "--stack", "dev")
    assert (code, out) == (1, "")
    assert "KeyError: 'policy'" in err
    assert "line 5" in err


def _two_shops(folder: Path) -> Path:
    # Two instances whose stages and aliases have the same names, pinned differently.
    return write_program(
        folder,
        f"""
        from pathlib import Path

        from versioned_lambda_api import VersionedLambdaApi, function_code_archive

        for name, stable in (("orders", 3), ("billing", 7)):
            VersionedLambdaApi(
                name,
                {{
                    "code": function_code_archive(Path({str(SHOP_FUNCTION)!r})),
                    "handler": "handler.handler",
                    "routes": [{{"path": name, "method": "GET"}}],
                    "stages": [
                        {{"name": "dev", "alias": "live", "canary_percent": 10,
                          "stable_version": stable}},
                        {{"name": "qa", "alias": "qa"}},
                    ],
                }},
            )
        """,
    )


def test_the_routing_table_tells_instances_apart(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run_plan(capsys, "--program", str(_two_shops(tmp_path)), "--stack", "dev")
    assert code == 0, out
    routing = out[out.index("Routing") : out.index("Request templates")].splitlines()[1:-1]
    # Each function publishes the version after its own pin: 4 for orders, 8 for billing.
    assert routing == [
        "  REST API billing-api",
        "    dev     90%  → live         → v7 (pinned)",
        "            10%  → live-canary  → v8 (newest)",
        "    qa     100%  → qa           → v8 (newest)",
        "  REST API orders-api",
        "    dev     90%  → live         → v3 (pinned)",
        "            10%  → live-canary  → v4 (newest)",
        "    qa     100%  → qa           → v4 (newest)",
    ]


def _record(typ: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> ResourceRecord:
    return ResourceRecord(typ, name, inputs, {**inputs, **outputs}, f"{name}-id")


def _function(name: str, version: str) -> ResourceRecord:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}-0a1b2c3"
    return _record(FUNCTION, name, {}, {"name": f"{name}-0a1b2c3", "arn": arn, "version": version})


def _alias(name: str, function: str, version: str) -> ResourceRecord:
    return _record(ALIAS, name, {"functionName": function, "functionVersion": version}, {})


def test_a_deploy_publishes_the_version_after_each_functions_highest_pin() -> None:
    graph = ResourceGraph()
    for record in (
        _function("a", "99"),
        _function("b", "99"),
        _function("c", "99"),
        _alias("a-prod", "a-0a1b2c3", "3"),
        # Stages pinned apart: the newest is past the highest pin.
        _alias("a-eu", "a-0a1b2c3", "5"),
        # Following the newest version is no pin.
        _alias("a-dev", "a-0a1b2c3", "99"),
        # An alias may name its function by ARN.
        _alias("b-prod", "arn:aws:lambda:us-east-1:123456789012:function:b-0a1b2c3", "7"),
        _alias("c-dev", "c-0a1b2c3", "$LATEST"),
        _alias("elsewhere", "not-in-the-program", "12"),
    ):
        graph.add(record)
    assert plan.assumed_published_versions(graph) == {"a": 6, "b": 8, "c": 1}


def test_a_pin_in_the_stack_file_is_read_from_what_the_program_registers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "function").symlink_to(ROOT / "function")
    stack_file = (ROOT / "Pulumi.prod.yaml").read_text()
    (tmp_path / "Pulumi.prod.yaml").write_text(stack_file + '  event-logger:stableVersion: "12"\n')
    code, out, _ = run_plan(capsys, "--program", str(tmp_path), "--stack", "prod")
    assert code == 0, out
    assert "  prod     90%  → prod         → v12 (pinned)" in out
    assert "           10%  → prod-canary  → v13 (newest)" in out


def test_openapi_documents_are_written_for_review(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "docs" / "prod"
    code, out, err = run_plan(capsys, "--stack", "prod", "--openapi", str(folder))
    assert code == 0
    assert out.startswith("Plan for stack prod")
    written = folder / "event-logger-api.json"
    assert err == f"wrote {written}\n"
    text = written.read_text()
    assert text.startswith('{\n  "components": {')
    assert text.endswith("}\n")
    # The very document the RestApi is created with.
    run = plan.run_with_assumed_versions(ROOT, "prod", {})
    assert json.loads(text) == openapi_document(run.graph.one(REST_API))


def test_a_program_without_openapi_documents_says_none_were_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    program = write_program(
        tmp_path / "raw",
        """
        import pulumi_aws as aws

        aws.apigateway.RestApi("raw")
        """,
    )
    code, _, err = run_plan(
        capsys, "--program", str(program), "--stack", "dev", "--openapi", str(tmp_path / "docs")
    )
    assert code == 0
    assert err == "no REST API is declared by an OpenAPI document: none written\n"
    assert list((tmp_path / "docs").iterdir()) == []


def test_openapi_needs_a_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    file = tmp_path / "document.json"
    file.write_text("{}")
    code, out, err = run_plan(capsys, "--stack", "prod", "--openapi", str(file))
    assert (code, out) == (2, "")
    assert f"--openapi takes a folder, and {file} is a file" in err
