"""Edits to a stack's config file that keep its comments, order and formatting.

The release tool changes a stack only through ``Pulumi.<stack>.yaml``, so what is deployed is
always what the file says; a reviewer sees each step as a one-line diff.

A save is atomic (a temporary file in the same folder, fsynced, then ``os.replace``): a crash or
a full disk leaves the old file, never a half-written one that drops ``canaryPercent``. A save
changes only the keys this object set: it re-reads the file just before writing, so a
colleague's edit made since is kept, and it refuses when the colleague changed one of the same
keys (:class:`ConflictError`).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

BOM = b"\xef\xbb\xbf"


class ConfigFileError(Exception):
    """The stack config file or the project file is not what Pulumi reads."""


class NotFoundError(ConfigFileError):
    """The folder is not a Pulumi program, or the stack has no config file in it: the command
    line names the wrong folder or stack."""


class ConflictError(ConfigFileError):
    """Someone else changed a key this edit changes since the file was read: writing would
    undo their change (a colleague's rollback, say), so nothing is written."""


class NotWritableError(ConfigFileError):
    """The stack file cannot be replaced: an edit would fail after AWS was already changed."""


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


def _number(value: str) -> bool:
    try:
        percent = float(value)
    except ValueError:
        return False
    return math.isfinite(percent) and 0 <= percent <= 100


# What the release tool itself reads as numbers or choices: a malformed value is refused when
# the file is read, before any AWS call, instead of a ValueError traceback mid-release.
_VALIDATORS: dict[str, tuple[Callable[[str], bool], str]] = {
    "canaryPercent": (_number, "a number from 0 to 100, such as 10 or 2.5"),
    "stableVersion": (
        lambda value: value == "" or re.fullmatch(r"[1-9][0-9]*", value) is not None,
        'a published version number such as 3, or "" for none',
    ),
    "canaryMode": (lambda value: value in ("stage", "alias"), '"stage" or "alias"'),
}


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader, or the file after a crash, holds either
    the old or the new content, never a part: a temporary file in the same folder (a rename
    is atomic only within one file system), fsynced, then ``os.replace``. The file keeps its
    permission bits."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        # Also on KeyboardInterrupt: the old file is intact, only the temporary file goes.
        Path(temporary).unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the folder's entry is on disk.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class _Parsed:
    """One read of the file: the document, its ``config`` mapping and its byte format."""

    def __init__(self, yaml: YAML, path: Path) -> None:
        raw = path.read_bytes()
        self.bom = raw.startswith(BOM)
        # The first line break decides: a file is written with the line endings it was read with.
        first_break = raw.find(b"\n")
        self.crlf = first_break > 0 and raw[first_break - 1 : first_break] == b"\r"
        try:
            text = raw.removeprefix(BOM).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigFileError(f"{path} is not UTF-8 text: {error}") from error
        try:
            document = yaml.load(text)
        except MarkedYAMLError as error:
            # A duplicate key is one of these: Pulumi refuses the file, and so does this tool.
            mark = error.problem_mark or error.context_mark
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = error.problem or "is not valid YAML"
            raise ConfigFileError(
                f"{path}{where}: {problem} {error.context or ''}".rstrip()
            ) from error
        except YAMLError as error:
            raise ConfigFileError(f"{path} is not valid YAML: {error}") from error
        if not isinstance(document, CommentedMap):
            raise ConfigFileError(f"{path} is not a mapping with a 'config:' section")
        config = document.get("config")
        if config is None:
            config = document["config"] = CommentedMap()
        if not isinstance(config, CommentedMap):
            raise ConfigFileError(f"{path}: 'config' is not a mapping")
        self.document = document
        self.config = config

    def line(self, key: str) -> int:
        """The 1-based line of ``key`` in ``config``."""
        return int(self.config.lc.key(key)[0]) + 1


class StackConfigFile:
    """``Pulumi.<stack>.yaml`` of a project, read and written round-trip."""

    def __init__(self, program_dir: Path, project: str, stack: str) -> None:
        self.path = program_dir / f"Pulumi.{stack}.yaml"
        self.project = project
        self.stack = stack
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
        self._parsed = self._read()
        # The values as read: a save compares the file's values then with these.
        self._read_values = {key: self._value(self._parsed, key) for key in self._parsed.config}
        self._changes: dict[str, str] = {}
        self._notes: dict[str, str | None] = {}

    def _read(self) -> _Parsed:
        parsed = _Parsed(self._yaml, self.path)
        for name in _VALIDATORS:
            self._check_placement(parsed, name)
            key = self._key(name)
            if key in parsed.config:
                self._check_value(name, self._value(parsed, key), parsed.line(key))
        return parsed

    def _key(self, name: str) -> str:
        return f"{self.project}:{name}"

    def _check_placement(self, parsed: _Parsed, name: str) -> None:
        """Refuse ``name`` written without the project's namespace or in another one: Pulumi
        does not give it to the program, and reading it as absent would append a second key."""
        for key in parsed.config:
            namespace, _, bare = str(key).rpartition(":")
            if bare == name and namespace != self.project:
                spelled = f"'{namespace}:'" if namespace else "no namespace"
                raise ConfigFileError(
                    f"{self.path} line {parsed.line(key)}: key '{key}' has {spelled}; the "
                    f"program reads '{self._key(name)}': rename it"
                )

    def _check_value(self, name: str, value: str | None, line: int | None) -> None:
        check, expected = _VALIDATORS.get(name, (None, ""))
        if check is not None and value is not None and not check(value):
            where = f" line {line}" if line is not None else ""
            raise ConfigFileError(
                f"{self.path}{where}: {self._key(name)} is {value!r}; it must be {expected}"
            )

    def _value(self, parsed: _Parsed, key: str) -> str | None:
        """A key's value as the program sees it: a string, or ``None``. A list or a mapping
        is refused: every key this tool reads is a scalar."""
        value: Any = parsed.config.get(key)
        if value is None:
            return None
        if isinstance(value, (list, dict)):
            kind = "a list" if isinstance(value, list) else "a mapping"
            raise ConfigFileError(
                f"{self.path} line {parsed.line(key)}: {key} is {kind}; it must be a single value"
            )
        if isinstance(value, bool):
            # YAML's true/false; Pulumi hands the program "true"/"false".
            return "true" if value else "false"
        return str(value)

    def get(self, name: str) -> str | None:
        """The value of a project key as the program sees it (a string), or ``None``."""
        self._check_placement(self._parsed, name)
        return self._value(self._parsed, self._key(name))

    def read(self, name: str) -> str | None:
        """A project key's value as the file held it when read or last saved: without this
        object's unsaved edits."""
        return self._read_values.get(self._key(name))

    def get_raw(self, key: str) -> str | None:
        """The value of any key, namespaced as written (``aws:region``)."""
        return self._value(self._parsed, key)

    def set(self, name: str, value: str) -> bool:
        """Set a project key; returns whether the file's content changes. :meth:`save` writes.

        Values are written quoted, as ``pulumi config set`` stores them, so the project's
        declared ``string`` types hold.
        """
        self._check_value(name, value, None)
        if self.get(name) == value:
            return False
        key = self._key(name)
        self._parsed.config[key] = DoubleQuotedScalarString(value)
        self._changes[key] = value
        return True

    def note(self, name: str, text: str | None) -> None:
        """Put the release tool's one-line note above a project key (replacing an earlier
        one), or remove it (``None``), at the next :meth:`save`."""
        self._notes[self._key(name)] = text

    def text(self) -> str:
        """The file's content with this object's edits, line endings as in the file."""
        return self._render(self._parsed).decode("utf-8-sig")

    def _render(self, parsed: _Parsed) -> bytes:
        buffer = StringIO()
        self._yaml.dump(parsed.document, buffer)
        text = buffer.getvalue()
        if parsed.crlf:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return (BOM if parsed.bom else b"") + text.encode("utf-8")

    def check_writable(self) -> None:
        """Prove that :meth:`save` can replace the file, before changing anything in AWS: the
        folder takes a new file (created and removed here) and the file is writable. Raises
        :class:`NotWritableError` saying what to fix. (A full disk can still fail the save.)"""
        folder = self.path.parent
        if not os.access(self.path, os.W_OK):
            raise NotWritableError(
                f"{self.path} is read-only for this user: the release could not record its "
                "step; make it writable (chmod u+w) and run the command again"
            )
        try:
            descriptor, probe = tempfile.mkstemp(
                dir=folder, prefix=f".{self.path.name}.", suffix=".probe"
            )
        except OSError as error:
            raise NotWritableError(
                f"cannot create a file in {folder} ({error.strerror}): the release replaces "
                f"{self.path.name} through a temporary file there; make the folder writable "
                "and run the command again"
            ) from error
        os.close(descriptor)
        os.unlink(probe)

    def changed_by_others(self, *names: str) -> list[str]:
        """The project keys among ``names`` someone else changed in the file since this object
        read (or last saved) it, e.g. ``canaryPercent '10' -> '0'``: the file is re-read."""
        current = self._read()
        changed = []
        for name in names:
            key = self._key(name)
            was, now = self._read_values.get(key), self._value(current, key)
            if now != was:
                changed.append(f"{name} {was!r} -> {now!r}")
        return changed

    def save(self) -> None:
        """Write this object's edits, atomically, over the file as it is now.

        The file is re-read first: keys someone else changed since this object read it are
        kept; if one of them is a key this edit changes (to another value), nothing is
        written and :class:`ConflictError` names it.
        """
        if not self._changes and not self._notes:
            return
        current = self._read()
        conflicts = []
        for key, value in self._changes.items():
            now = self._value(current, key)
            if now != self._read_values.get(key) and now != value:
                conflicts.append(
                    f"{key} was {self._read_values.get(key)!r} when read, is {now!r} now "
                    f"(line {current.line(key) if key in current.config else '-'}), "
                    f"this edit sets {value!r}"
                )
        if conflicts:
            raise ConflictError(
                f"{self.path} was changed by someone else since it was read: "
                + "; ".join(conflicts)
                + ". Nothing written: re-read the stack's state and run the command again"
            )
        for key, value in self._changes.items():
            current.config[key] = DoubleQuotedScalarString(value)
        atomic_write(self.path, _with_notes(self._render(current), self._notes))
        self._parsed = self._read()
        self._read_values = {key: self._value(self._parsed, key) for key in self._parsed.config}
        self._changes = {}
        self._notes = {}


NOTE = "# release note: "


def _with_notes(data: bytes, notes: dict[str, str | None]) -> bytes:
    """The file's bytes with each key's release notes replaced by its new one (or removed):
    a comment line right above the key, at its indentation, that the tool alone writes."""
    if not notes:
        return data
    bom = data.startswith(BOM)
    text = data.removeprefix(BOM).decode("utf-8")
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(newline)
    for key, note in notes.items():
        pattern = re.compile(r"^(\s*)[\"']?" + re.escape(key) + r"[\"']?\s*:")
        index = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
        if index is None:
            continue
        while index > 0 and lines[index - 1].lstrip().startswith(NOTE):
            del lines[index - 1]
            index -= 1
        if note is not None:
            indent = pattern.match(lines[index]).group(1)  # type: ignore[union-attr]
            lines.insert(index, f"{indent}{NOTE}{note}")
    return (BOM if bom else b"") + newline.join(lines).encode("utf-8")
