"""One writer per stack: a lock file beside the stack file, held while a command edits the file
and applies it.

The lock is ``fcntl.flock`` on ``.Pulumi.<stack>.yaml.lock``. The kernel releases it when the
holder's process ends, however it ends (kill -9 included), so a lock left by a dead process is
never in the way: the next operator simply gets it, and is told whose lock it took over. The
file also names its holder (pid, host, user, command, since when) so the second operator knows
whom to ask.

flock locks belong to an open file description: two threads that each open the file contend
like two processes, and a forked child that inherits the descriptor keeps the lock held (this
module's descriptors are not inherited across exec: Python opens them close-on-exec).

The lock file is never deleted: removing it would let a third operator create and lock a new
file while a second one still waits on the old one, and both would think they hold the lock.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

POLL_SECONDS = 0.1
NAMING_SECONDS = 0.5


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a stack's lock, as written in the lock file."""

    pid: int
    host: str
    user: str
    command: str
    since: str
    """UTC, ISO 8601 to the second."""

    def describe(self) -> str:
        return f"{self.user} (pid {self.pid} on {self.host}, '{self.command}')"

    def alive_here(self) -> bool | None:
        """Whether the process still runs; ``None`` when it ran on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's live process
        return True


class StackLockedError(Exception):
    """Another operator holds the stack's lock: this command changed nothing."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Lock:
    """A held lock: ``previous`` is the holder a dead process left in the file, if any."""

    path: Path
    holder: Holder
    previous: Holder | None


def lock_path(stack_file: Path) -> Path:
    """``.Pulumi.<stack>.yaml.lock`` beside the stack file (hidden: not part of the program)."""
    return stack_file.with_name(f".{stack_file.name}.lock")


def _read_holder(descriptor: int) -> Holder | None:
    os.lseek(descriptor, 0, os.SEEK_SET)
    raw = os.read(descriptor, 4096)
    try:
        fields = json.loads(raw)
        return Holder(**fields) if isinstance(fields, dict) else None
    except (ValueError, TypeError):
        return None  # empty (released cleanly) or written by something else


def _named_holder(descriptor: int) -> Holder | None:
    """The holder of a lock found taken. A holder writes its name just after it takes the
    lock: an empty file is given a moment to be named before the holder is called unknown."""
    deadline = time.monotonic() + NAMING_SECONDS
    while (holder := _read_holder(descriptor)) is None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 10)
    return holder


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"  # a container's user may have no name


@contextmanager
def stack_lock(
    stack_file: Path, stack: str, command: str | None = None, wait_seconds: float = 0
) -> Iterator[Lock]:
    """Hold the stack's lock for the ``with`` block; raise :class:`StackLockedError` naming the
    holder if another operator has it (after ``wait_seconds``, default: at once).

    ``command`` is what the lock file says this holder does (default: the command line).
    """
    path = lock_path(stack_file)
    holder = Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        user=_current_user(),
        command=command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        since=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if time.monotonic() >= deadline:
                busy = _named_holder(descriptor)
                raise StackLockedError(_busy_message(stack, path, busy), busy)
            time.sleep(POLL_SECONDS)
        # A holder still named in the file ended without releasing cleanly (the kernel freed
        # its lock when it died): take over, and tell the caller whose lock it was.
        previous = _read_holder(descriptor)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(asdict(holder)).encode(), 0)
        os.fsync(descriptor)
        try:
            yield Lock(path=path, holder=holder, previous=previous)
        finally:
            # Empty means free: the next holder reports no takeover.
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _busy_message(stack: str, path: Path, holder: Holder | None) -> str:
    if holder is None:
        # Locked, but the holder has not written its name yet (or is not this tool).
        return f"stack {stack} is being changed by another operator ({path} is locked)"
    message = f"stack {stack} is being changed by {holder.describe()} since {holder.since}"
    if holder.alive_here() is False:
        # flock outlives its process only through a descriptor a child inherited.
        message += (
            f"; that process has ended, but a process it started still holds {path}: "
            "find it with 'fuser' or 'lsof'"
        )
    return message + ". Wait for it to finish, or ask them"
