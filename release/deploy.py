"""Applying a stack's config with the Pulumi Automation API, behind an interface tests can fake."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class ApplyError(Exception):
    """The stack cannot be read or updated (no Pulumi CLI, no backend, a failed update)."""


class StackBusyError(ApplyError):
    """Pulumi's own stack lock is held: another update of the stack is running."""


class Deployer(Protocol):
    """What the release tool needs from Pulumi."""

    def outputs(self) -> dict[str, Any]:
        """The stack's current outputs."""
        ...

    def up(self, on_output: Callable[[str], None]) -> None:
        """Deploy the stack as its config file now says."""
        ...


class PulumiDeployer:
    """The real thing: ``pulumi up`` and stack outputs through the Automation API."""

    def __init__(self, program_dir: Path, stack: str) -> None:
        self.program_dir = program_dir
        self.stack_name = stack

    def _stack(self) -> Any:
        if shutil.which("pulumi") is None:
            raise ApplyError(
                "this step needs the Pulumi CLI (https://www.pulumi.com/docs/install/) and AWS "
                "credentials"
            )
        # The Pulumi SDK is most of the tool's start-up; --help and the steps that only edit
        # the file (--no-apply) never need it.
        from pulumi import automation  # noqa: PLC0415

        env = {}
        if not os.environ.get("PULUMI_BACKEND_URL") and not _logged_in():
            # As 'make up' does: without a configured backend, state lives in the project.
            env["PULUMI_BACKEND_URL"] = f"file://{self.program_dir / '.pulumi'}"
        try:
            return automation.select_stack(
                stack_name=self.stack_name,
                work_dir=str(self.program_dir),
                opts=automation.LocalWorkspaceOptions(env_vars=env),
            )
        except automation.errors.CommandError as error:
            raise ApplyError(f"cannot select stack {self.stack_name}: {error}") from error

    def outputs(self) -> dict[str, Any]:
        return {name: output.value for name, output in self._stack().outputs().items()}

    def up(self, on_output: Callable[[str], None]) -> None:
        stack = self._stack()
        from pulumi import automation  # noqa: PLC0415 - loaded by _stack already

        try:
            stack.up(on_output=on_output)
        except automation.errors.CommandError as error:
            raise apply_error(error, self.stack_name) from error


def apply_error(error: Exception, stack: str) -> ApplyError:
    """The :class:`ApplyError` for a failed ``pulumi up``. Pulumi locks a stack in its backend
    while it updates it (Pulumi Cloud answers 409, a file or bucket backend keeps a lock file),
    so an update started outside this tool, which takes no lock file of ours, is named as such
    rather than reported as a failed deploy."""
    from pulumi import automation  # noqa: PLC0415 - loaded by whoever ran the update

    if isinstance(error, automation.errors.ConcurrentUpdateError):
        # Pulumi's own words name the lock's holder (a file backend: user, host, pid, time).
        said = _lock_lines(str(error))
        return StackBusyError(
            f"stack {stack} is locked by another Pulumi update (someone runs 'pulumi up', "
            "'refresh' or 'destroy' on it): nothing was deployed. Wait for it to end and run "
            f"the command again; if it died, 'pulumi cancel --stack {stack}' frees the lock. "
            f"Pulumi said: {said}"
        )
    return ApplyError(f"pulumi up failed for stack {stack}: {error}")


def _logged_in() -> bool:
    result = subprocess.run(
        ["pulumi", "whoami"],  # noqa: S607 - the CLI on the user's PATH is the one to use
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _lock_lines(text: str) -> str:
    """Pulumi's lines about its stack lock (a file backend names the lock file, its user, host
    and pid on the line after), without the rest of the command's output."""
    lines = [line.strip().removeprefix("stderr:").strip() for line in text.splitlines()]
    for index, line in enumerate(lines):
        if "locked by" in line or "Conflict" in line:
            return " ".join(part for part in lines[index : index + 2] if part)
    return "another update is in progress"
