"""The README's Python examples run as written."""

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from versioned_lambda_api.testing import run_program

README = (ROOT / "README.md").read_text()


def python_example(marker: str) -> str:
    """The README's ```python block that contains ``marker``."""
    blocks = re.findall(r"^```python\n(.*?)^```$", README, flags=re.DOTALL | re.MULTILINE)
    (found,) = [block for block in blocks if marker in block]
    return str(found)


def test_the_test_kit_example_passes_against_this_project() -> None:
    namespace: dict[str, Any] = {"__file__": str(ROOT / "tests" / "test_example.py")}
    exec(python_example("from versioned_lambda_api.testing import run_program"), namespace)  # noqa: S102
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        test()


def test_the_component_example_deploys_as_a_program_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: orders\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    (tmp_path / "orders_function").mkdir()
    (tmp_path / "orders_function" / "handler.py").write_text("def handler(event, context):\n")
    (tmp_path / "__main__.py").write_text(python_example("VersionedLambdaApi("))

    # stable_version 7 is live; the deploy publishes version 8.
    run = run_program(tmp_path, "dev", published_version=8)

    assert run.exports["prodUrl"].endswith("/prod")
    document = json.loads(run.exports["openapi"])
    assert set(document["paths"]) == {"/orders", "/orders/{id}", "/files/{proxy+}"}
    canary = [row for row in run.routing() if row.stage == "prod" and row.role == "canary"]
    assert [(row.alias, row.share, row.version) for row in canary] == [("prod-canary", 5, "8")]
    assert not [f for f in run.findings() if f.severity == "error"]
