"""Edits to a stack's config file that keep its comments, order and formatting.

The release tool changes a stack only through ``Pulumi.<stack>.yaml``, so what is deployed is
always what the file says; a reviewer sees each step as a one-line diff.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString


class ConfigFileError(Exception):
    """The stack config file or the project file is not what Pulumi reads."""


class NotFoundError(ConfigFileError):
    """The folder is not a Pulumi program, or the stack has no config file in it: the command
    line names the wrong folder or stack."""


def project_name(program_dir: Path) -> str:
    """The ``name`` in the program's ``Pulumi.yaml``: the namespace of its config keys."""
    path = program_dir / "Pulumi.yaml"
    if not path.is_file():
        raise NotFoundError(
            f"{program_dir} has no Pulumi.yaml: run this in the program's folder or pass "
            "--program DIR"
        )
    document = YAML(typ="safe").load(path.read_text())
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigFileError(f"{path} has no project 'name'")
    return name


class StackConfigFile:
    """``Pulumi.<stack>.yaml`` of a project, read and written round-trip."""

    def __init__(self, program_dir: Path, project: str, stack: str) -> None:
        self.path = program_dir / f"Pulumi.{stack}.yaml"
        self.project = project
        if not self.path.is_file():
            stacks = sorted(
                found.name.removeprefix("Pulumi.").removesuffix(".yaml")
                for found in program_dir.glob("Pulumi.*.yaml")
            )
            raise NotFoundError(
                f"{self.path} does not exist: is '{stack}' a stack of this project? "
                f"(stacks with a config file here: {', '.join(stacks) or 'none'})"
            )
        self._yaml = YAML()
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096  # never re-wrap a user's long lines
        document = self._yaml.load(self.path.read_text())
        if not isinstance(document, CommentedMap):
            raise ConfigFileError(f"{self.path} is not a mapping with a 'config:' section")
        self._document = document
        config = document.get("config")
        if config is None:
            config = document["config"] = CommentedMap()
        if not isinstance(config, CommentedMap):
            raise ConfigFileError(f"{self.path}: 'config' is not a mapping")
        self._config = config

    def _key(self, name: str) -> str:
        return f"{self.project}:{name}"

    def get(self, name: str) -> str | None:
        """The value of a project key as the program sees it (a string), or ``None``."""
        value = self._config.get(self._key(name))
        return None if value is None else str(value)

    def get_raw(self, key: str) -> str | None:
        """The value of any key, namespaced as written (``aws:region``)."""
        value = self._config.get(key)
        return None if value is None else str(value)

    def set(self, name: str, value: str) -> bool:
        """Set a project key; returns whether the file's content changes.

        Values are written quoted, as ``pulumi config set`` stores them, so the project's
        declared ``string`` types hold.
        """
        if self.get(name) == value:
            return False
        self._config[self._key(name)] = DoubleQuotedScalarString(value)
        return True

    def text(self) -> str:
        buffer = StringIO()
        self._yaml.dump(self._document, buffer)
        return buffer.getvalue()

    def save(self) -> None:
        self.path.write_text(self.text())
