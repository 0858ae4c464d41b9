"""The offline plan: its output for the shipped stacks, a broken stack, and bad invocations."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import plan
from components.args import StagePlan
from components.preflight import RULES
from tests.conftest import ROOT


def run_plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = plan.main(["--program", str(ROOT), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_plan_cleanly_from_the_command_line(stack: str) -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "components.plan", "--stack", stack],
        cwd=ROOT,
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
    component = lines.index("  event-logger  [event-logger:index:VersionedLambdaApi]")
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
    ("argv", "message"),
    [
        (["--stack", "staging"], "Pulumi.staging.yaml does not exist"),
        (["--stack", "prod", "--set", "canaryPercent"], "--set takes KEY=VALUE"),
        (
            ["--stack", "prod", "--set", "canaryPercent=150"],
            "event-logger:canaryPercent must be a number from 0 to 100",
        ),
    ],
)
def test_a_plan_that_cannot_be_made_says_why(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_plan(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_readme_documents_every_preflight_rule() -> None:
    readme = (ROOT / "README.md").read_text()
    for rule in RULES:
        assert f"| {rule.id} | `{rule.name}` | {rule.severity} | {rule.summary} |" in readme


def test_the_plan_assumes_a_deploy_after_a_pin_publishes_the_next_version(
    tmp_path: Path,
) -> None:
    assert plan.assumed_newest_version(ROOT, "prod", "event-logger", {}) == 1
    assert plan.assumed_newest_version(ROOT, "prod", "event-logger", {"stableVersion": "7"}) == 8
    # A bad pin is left for the program's validation to refuse.
    assert plan.assumed_newest_version(ROOT, "prod", "event-logger", {"stableVersion": "x"}) == 1
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text() + '  event-logger:stableVersion: "12"\n')
    assert plan.assumed_newest_version(tmp_path, "prod", "event-logger", {}) == 13
