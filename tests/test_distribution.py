"""The component as another program gets it: a wheel built from components/, installed into a
fresh venv, imported from there (not from this checkout) by a program run under mocks.

Every subprocess here runs an interpreter this test made or this one, on files it wrote.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

CONSUMER = """
    import json
    import sys
    from pathlib import Path

    import versioned_lambda_api
    from versioned_lambda_api.testing import run_program

    run = run_program(Path(sys.argv[1]), "dev", published_version=3)
    print(json.dumps({
        "version": versioned_lambda_api.__version__,
        "file": versioned_lambda_api.__file__,
        "routing": [[row.stage, row.role, row.alias, row.version] for row in run.routing()],
        "errors": [f.rule for f in run.findings() if f.severity == "error"],
    }))
"""

PROGRAM = """
    from pathlib import Path

    import pulumi
    from versioned_lambda_api import VersionedLambdaApi, function_code_archive

    api = VersionedLambdaApi(
        "orders",
        {
            "code": function_code_archive(Path(__file__).parent / "function"),
            "handler": "handler.handler",
            "routes": [{"path": "orders", "method": "POST"}],
            "stages": [{"name": "dev", "alias": "dev", "canary_percent": 10, "stable_version": 2}],
        },
    )
    pulumi.export("url", api.stage_urls)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: setuptools leaves a build/ folder beside the sources.
    source = tmp_path_factory.mktemp("source") / "components"
    shutil.copytree(
        ROOT / "components", source, ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # noqa: S603 - see the module docstring
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("pulumi_versioned_lambda_api-*.whl")
    return built


def test_the_wheel_carries_the_whole_package_its_types_and_its_dependency_ranges(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        ]
    sources = {
        path.relative_to(ROOT / "components").as_posix()
        for path in (ROOT / "components" / "versioned_lambda_api").rglob("*.py")
    }
    assert sources <= names
    assert "versioned_lambda_api/py.typed" in names
    assert "pulumi-aws<8,>=7" in requires
    assert any(requirement.startswith("pulumi<4") for requirement in requires)


def test_a_fresh_venv_installs_the_wheel_and_runs_a_consumer_under_mocks(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    subprocess.run(  # noqa: S603 - see the module docstring
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies come from this checkout's venv, so the test needs no download: a path
    # entry (not a site directory) whose .pth files, this checkout's editable install among
    # them, are not read.
    site_packages = Path(
        subprocess.run(  # noqa: S603 - see the module docstring
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site_packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    program = tmp_path / "program"
    (program / "function").mkdir(parents=True)
    (program / "function" / "handler.py").write_text("def handler(event, context): ...\n")
    (program / "Pulumi.yaml").write_text("name: orders\nruntime: python\n")
    (program / "Pulumi.dev.yaml").write_text("config: {}\n")
    (program / "__main__.py").write_text(textwrap.dedent(PROGRAM))
    consumer = tmp_path / "consumer.py"
    consumer.write_text(textwrap.dedent(CONSUMER))

    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(  # noqa: S603 - see the module docstring
        [str(python), str(consumer), str(program)],
        cwd=tmp_path,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout)
    assert Path(report["file"]).is_relative_to(venv)
    assert report["version"] == wheel.name.split("-")[1]
    assert report["routing"] == [["dev", "live", "dev", "2"], ["dev", "canary", "dev-canary", "3"]]
    assert report["errors"] == []
