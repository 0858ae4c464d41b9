"""The function's code archive, built so the same source always ships the same bytes.

Lambda publishes a new version whenever the code's hash changes. Pulumi hashes an asset archive
by file name and content only (its zip writer also fixes every timestamp), so an archive of
exactly the handler's Python sources changes when, and only when, a source file does: no
``__pycache__``, editor swap files, tests or stray artifacts to make a redeploy publish.
"""

from __future__ import annotations

from pathlib import Path

import pulumi


def source_files(source_dir: Path) -> dict[str, Path]:
    """The Python sources under ``source_dir``, keyed by their path inside the archive.

    Hidden files and folders, ``__pycache__`` and tests are left out; keys use ``/`` and are
    sorted, so two equal trees give equal mappings.
    """
    if not source_dir.is_dir():
        raise FileNotFoundError(f"function source folder {source_dir} does not exist")
    selected: dict[str, Path] = {}
    for path in sorted(source_dir.rglob("*.py")):
        relative = path.relative_to(source_dir)
        if any(_excluded(part) for part in relative.parts) or not path.is_file():
            continue
        selected[relative.as_posix()] = path
    if not selected:
        raise FileNotFoundError(f"function source folder {source_dir} holds no .py files")
    return selected


def _excluded(part: str) -> bool:
    return (
        part.startswith((".", "#", "test_"))
        or part in ("__pycache__", "tests", "conftest.py")
        or part.endswith("_test.py")
    )


def function_code_archive(source_dir: Path) -> pulumi.AssetArchive:
    """A Pulumi archive of :func:`source_files`, ready for the component's ``code`` arg."""
    return pulumi.AssetArchive(
        {name: pulumi.FileAsset(str(path)) for name, path in source_files(source_dir).items()}
    )
