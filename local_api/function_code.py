"""The function's code for each version the local API runs: the version a deploy would publish
is the working tree's code, as the code archive holds it; an older version a live alias stays
on (a pinned stableVersion) is the code of a git revision, ``--live-ref`` (default HEAD).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from local_api.environment import build_task_root
from local_api.stack import Function, source_folder


class LiveRefError(Exception):
    """``--live-ref`` names no commit of the repository, or one without the function's code."""


def working_tree_root(function: Function, target: Path) -> Path:
    """The code archive's files, laid out as the deployed archive holds them."""
    target.mkdir(parents=True, exist_ok=True)
    for name, path in function.source_files.items():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(path.read_bytes())
    return target


def resolve_ref(ref: str, repository: Path) -> str:
    """The commit ``ref`` names, or LiveRefError saying it names none."""
    if ref.startswith("-"):
        raise LiveRefError(f"--live-ref {ref!r} is not a git revision (it starts with '-')")
    found = _git(repository, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise LiveRefError(
            f"--live-ref {ref!r} names no commit of the repository at {repository} "
            "(give a branch, tag or commit, e.g. HEAD or HEAD~1)"
        )
    return found.stdout.decode().strip()


def revision_root(function: Function, commit: str, repository: Path, target: Path) -> Path:
    """The function's code at ``commit``: its source folder from ``git archive``, with the
    code archive's own choice of files (:func:`versioned_lambda_api.archive.source_files`)."""
    folder = source_folder(function).resolve().relative_to(repository.resolve()).as_posix()
    archive = _git(repository, "archive", "--format=tar", commit, "--", folder)
    if archive.returncode != 0:
        raise LiveRefError(
            f"--live-ref commit {commit[:12]} has no {folder}/ folder: "
            f"{archive.stderr.decode(errors='replace').strip()}"
        )
    extracted = target.with_name(target.name + "-source")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(extracted, filter="data")
    try:
        return build_task_root(extracted / folder, target)
    except FileNotFoundError as error:
        raise LiveRefError(f"--live-ref commit {commit[:12]}: {error}") from error


def repository_root(folder: Path) -> Path | None:
    """The git work tree ``folder`` is in; None when it is in none."""
    found = _git(folder, "rev-parse", "--show-toplevel")
    return Path(found.stdout.decode().strip()) if found.returncode == 0 else None


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - git with our own arguments, no shell
        ["git", "-C", str(folder), *args],  # noqa: S607 - git from PATH, as a developer runs it
        capture_output=True,
        check=False,
    )
