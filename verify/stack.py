"""The throwaway stack: its name, its config copied from the stack verified, and its life
through the Pulumi Automation API (create, up, outputs, destroy, remove).

Why a stack of its own: verify pins versions, opens and rolls back a canary and finally
destroys everything it deployed; run on the user's own stack that would change (and then
delete) what their clients use. A copy of the config deploys the same program the same way.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from release.deploy import ApplyError, StackBusyError, apply_error

CANARY_PERCENT = 50.0
"""The canary's share while verify measures it: the most requests on either side, so the
binomial test needs the fewest requests."""
EVENT_SHARDS_RANGE = (1, 32)
"""``eventShards``' allowed values: stack_config.EVENT_SHARDS_RANGE (a test holds them
together), not imported, since the program's config reader loads the Pulumi SDK."""


class StackSetupError(Exception):
    """The stack verified cannot be copied (unknown, secret values, no project)."""


class ThrowawayStack(Protocol):
    """What verify needs from Pulumi; also the release tool's ``Deployer``."""

    name: str

    def create(self) -> None: ...

    def up(self, on_output: Callable[[str], None]) -> None: ...

    def outputs(self) -> dict[str, Any]: ...

    def destroy(self, on_output: Callable[[str], None]) -> None: ...

    def remove(self) -> None: ...


def throwaway_name(token: str | None = None) -> str:
    """``verify-<7 hex>``: a name no user's stack has, unique per run."""
    return f"verify-{token or secrets.token_hex(4)[:7]}"


def throwaway_config(source_text: str, source_name: str, project: str) -> str:
    """The throwaway stack file: the verified stack's ``config`` with ``canaryPercent`` 0 and
    no ``stableVersion`` (a fresh stack has no published version to pin; verify pins through
    the release tool). Secret values are refused: they are encrypted for the stack they were
    set in, and a copy could not be decrypted."""
    yaml = YAML()
    yaml.preserve_quotes = True
    document = yaml.load(source_text) or {}
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackSetupError(f"{source_name} has no 'config' mapping to copy")
    secret = [str(key) for key, value in config.items() if isinstance(value, dict)]
    if secret:
        raise StackSetupError(
            f"{source_name} holds secret or structured values ({', '.join(secret)}): verify "
            "cannot copy them to a throwaway stack, whose secrets are encrypted with its own "
            "key. Verify a stack without them"
        )
    copied = CommentedMap(
        (key, value) for key, value in config.items() if key != f"{project}:stableVersion"
    )
    copied[f"{project}:canaryPercent"] = DoubleQuotedScalarString("0")
    out = StringIO()
    out.write(
        f"# make verify's throwaway copy of {source_name}: deployed, checked, destroyed and "
        "removed by verify.\n"
    )
    yaml.dump({"config": copied}, out)
    return out.getvalue()


def next_event_shards(current: str | None, default: int) -> str:
    """An ``eventShards`` other than the stack's (``current``, or ``default`` when unset):
    the function's environment changes with it, so the deploy publishes a new version without
    a change to the code."""
    shards = int(current) if current else default
    changed = shards + 1 if shards < EVENT_SHARDS_RANGE[1] else shards - 1
    return str(changed)


def backend_env(program_dir: Path) -> dict[str, str]:
    """As ``make up`` and the release tool do: without a configured backend, the state lives
    in the project's ``.pulumi``."""
    if os.environ.get("PULUMI_BACKEND_URL"):
        return {}
    logged_in = subprocess.run(
        ["pulumi", "whoami"],  # noqa: S607 - the CLI on the user's PATH is the one to use
        capture_output=True,
        check=False,
    )
    if logged_in.returncode == 0:
        return {}
    (program_dir / ".pulumi").mkdir(exist_ok=True)
    return {"PULUMI_BACKEND_URL": f"file://{program_dir / '.pulumi'}"}


class PulumiThrowawayStack:
    """The real thing, through the Automation API; every failure is an ``ApplyError``."""

    def __init__(self, program_dir: Path, name: str, env: dict[str, str]) -> None:
        self.program_dir = program_dir
        self.name = name
        self.env = env
        self._stack: Any = None

    def create(self) -> None:
        if shutil.which("pulumi") is None:
            raise ApplyError("verify needs the Pulumi CLI (https://www.pulumi.com/docs/install/)")
        # The Pulumi SDK is most of the start-up; --help and the up-front errors never need it.
        from pulumi import automation  # noqa: PLC0415

        try:
            self._stack = automation.create_stack(
                stack_name=self.name,
                work_dir=str(self.program_dir),
                opts=automation.LocalWorkspaceOptions(env_vars=self.env),
            )
        except automation.errors.CommandError as error:
            raise ApplyError(f"cannot create stack {self.name}: {error}") from error

    def _created(self) -> Any:
        if self._stack is None:
            raise ApplyError(f"stack {self.name} was not created")
        return self._stack

    def up(self, on_output: Callable[[str], None]) -> None:
        from pulumi import automation  # noqa: PLC0415 - loaded by create

        try:
            self._created().up(on_output=on_output)
        except automation.errors.CommandError as error:
            raise apply_error(error, self.name) from error

    def outputs(self) -> dict[str, Any]:
        from pulumi import automation  # noqa: PLC0415 - loaded by create

        try:
            answer = self._created().outputs()
        except automation.errors.CommandError as error:
            raise ApplyError(f"reading the outputs of stack {self.name}: {error}") from error
        return {name: output.value for name, output in answer.items()}

    def destroy(self, on_output: Callable[[str], None]) -> None:
        from pulumi import automation  # noqa: PLC0415 - loaded by create

        try:
            self._created().destroy(on_output=on_output)
        except automation.errors.ConcurrentUpdateError as error:
            raise StackBusyError(
                f"stack {self.name} is locked by another update: {error}"
            ) from error
        except automation.errors.CommandError as error:
            raise ApplyError(f"pulumi destroy failed for stack {self.name}: {error}") from error

    def remove(self) -> None:
        from pulumi import automation  # noqa: PLC0415 - loaded by create

        try:
            self._created().workspace.remove_stack(self.name)
        except automation.errors.CommandError as error:
            raise ApplyError(f"pulumi stack rm failed for stack {self.name}: {error}") from error
