"""An execution environment: the function run by the real runtime client in Python 3.13.

Each :class:`LambdaEnvironment` is one Runtime API server and one runtime process,
``<runtime venv>/bin/python -m awslambdaric handler.handler`` started in the task root with
the environment variables Lambda defines for a function
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
Like Lambda, it runs one invocation at a time; it starts the process on first use (a cold
start) and again after the process died or was killed at the deadline. Application logs
arrive through ``_LAMBDA_TELEMETRY_LOG_FD`` in the framed format awslambdaric writes there
(bootstrap.FramedTelemetryLogSink), which is how Lambda collects them; anything the process
writes to stdout or stderr goes to a file for the test's failure messages.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_api.runtime_api import (
    Invocation,
    InvocationResult,
    RuntimeApi,
    exit_error,
    timeout_error,
)

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_VENV = ROOT / "venv-runtime"
RUNTIME_PYTHON_VERSION = (3, 13)
# Lambda allows 10 s for a function's init phase.
INIT_TIMEOUT_S = 10.0
# How long after the deadline a platform error is awaited before the harness gives up.
_GRACE_S = 5.0
_POLL_S = 0.02
_LOG_FRAME_HEADER = 16  # type (4), length (4), timestamp in microseconds (8)


class LocalRuntimeError(Exception):
    """The local runtime could not do what was asked: no runtime venv, a server that did not
    start, an invocation that outlived its deadline."""


def runtime_python() -> Path:
    """The Python 3.13 of the runtime venv that ``make runtime-venv`` builds."""
    python = Path(os.environ.get("LAMBDA_RUNTIME_VENV", RUNTIME_VENV)) / "bin" / "python"
    if not python.exists():
        raise LocalRuntimeError(
            f"{python} does not exist: running the function locally needs the Python "
            f"{RUNTIME_PYTHON_VERSION[0]}.{RUNTIME_PYTHON_VERSION[1]} venv with awslambdaric; "
            "run `make runtime-venv` (or `make test`, which builds it)"
        )
    return python


@dataclass(frozen=True)
class FunctionConfig:
    """What Lambda knows about the function: its code, handler, settings and variables."""

    task_root: Path
    handler: str = "handler.handler"
    name: str = "event-logger"
    version: str = "7"
    qualifier: str | None = "live"
    """The alias the invocation names (its ARN's last part); None invokes the bare ARN."""
    memory_mb: int = 256
    timeout_s: float = 10.0
    region: str = "eu-west-1"
    account: str = "123456789012"
    log_format: str = "JSON"
    log_level: str = "INFO"
    environment: Mapping[str, str] = field(default_factory=dict)
    """The function's own variables (TABLE_NAME, AWS_ENDPOINT_URL_DYNAMODB, ...)."""

    @property
    def function_arn(self) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"
        return arn if self.qualifier is None else f"{arn}:{self.qualifier}"


@dataclass(frozen=True)
class LogRecord:
    frame_type: int
    timestamp_us: int
    message: str

    def document(self) -> Any:
        return json.loads(self.message)


class LambdaEnvironment:
    """One execution environment of the function."""

    def __init__(
        self,
        config: FunctionConfig,
        work_dir: Path,
        label: str = "env",
        log_sink: Callable[[LogRecord], None] | None = None,
    ) -> None:
        """``log_sink`` takes each of the function's log records as it arrives; without one they
        are kept for :meth:`logs`, which a long-running server could not afford."""
        self.config = config
        self._log_sink = log_sink
        self.label = label
        self._python = runtime_python()
        self._work_dir = work_dir
        self._api: RuntimeApi | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._invoke_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._logs: list[LogRecord] = []
        self._log_thread: threading.Thread | None = None
        self._stopped = False
        self.starts = 0
        self.output_path = work_dir / f"{label}.out"

    # Life cycle

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or process.poll() is not None else process.pid

    def start(self) -> None:
        """Start the runtime process unless one is running."""
        if self._process is not None and self._process.poll() is None:
            return
        # A new process gets a new Runtime API: a dead process may have left a GET .../next
        # waiting on the old one, which would take the next event and write it to a closed
        # socket.
        if self._api is not None:
            self._api.stop()
        self._api = RuntimeApi()
        self._api.start()
        read_fd, write_fd = os.pipe()
        config = self.config
        env = {
            "PATH": f"{self._python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(config.task_root),
            "LAMBDA_RUNTIME_DIR": str(self._python.parent.parent),
            "_HANDLER": config.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": (
                f"{time.strftime('%Y/%m/%d')}/[{config.version}]{uuid.uuid4().hex}"
            ),
            "AWS_LAMBDA_LOG_FORMAT": config.log_format,
            "AWS_LAMBDA_LOG_LEVEL": config.log_level,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "_LAMBDA_TELEMETRY_LOG_FD": str(write_fd),
            **config.environment,
        }
        with self.output_path.open("ab") as output:
            output.write(f"--- start {self.starts + 1} ---\n".encode())
            output.flush()
            self._process = subprocess.Popen(  # noqa: S603 - the runtime venv's own Python
                [str(self._python), "-m", "awslambdaric", config.handler],
                cwd=config.task_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                # Its own session: a Ctrl-C in the terminal reaches whoever started it, who
                # stops it in order, rather than interrupting it mid-invocation.
                start_new_session=True,
            )
        os.close(write_fd)
        self.starts += 1
        self._log_thread = threading.Thread(
            target=self._read_logs, args=(read_fd,), name=f"{self.label}-logs", daemon=True
        )
        self._log_thread.start()

    def init_problem(self, timeout_s: float = INIT_TIMEOUT_S) -> str | None:
        """Wait for the runtime process to finish its init phase (it asks for an event); None
        when it did, else why not: the init error it reported, its exit, or the time it took."""
        process, api = self._process, self._api
        if process is None or api is None:
            return "the runtime process was not started"
        deadline = time.monotonic() + timeout_s
        while not api.asked.wait(_POLL_S):
            if api.init_errors:
                error_type, body = api.init_errors[0]
                return f"{error_type}: {body.decode(errors='replace')[:500]}"
            if process.poll() is not None:
                how = _exit_reason(process)
                return f"the runtime process exited ({how}); see {self.output_path}"
            if time.monotonic() > deadline:
                return f"its init phase took longer than {timeout_s:g} s"
        return None

    def kill(self) -> None:
        """Kill the runtime process (the next invocation starts a new one)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if self._log_thread is not None:
            self._log_thread.join(timeout=5)

    def restart(self) -> None:
        """A fresh process: a cold start, with none of the last one's state."""
        with self._invoke_lock:
            self.kill()
            self.start()

    def stop(self) -> None:
        """Stop for good, after the invocation under way; later invocations are refused."""
        with self._invoke_lock:
            self._stopped = True
            self.kill()
        if self._api is not None:
            self._api.stop()

    # Invoking

    def invoke(self, event: bytes, invoked_arn: str | None = None) -> InvocationResult:
        """Invoke the function with ``event`` (the payload bytes) and wait for the outcome,
        at most the init time, the function's timeout and a grace period. ``invoked_arn``: the
        ARN the caller named, which the function sees (Lambda runs a version's invocations
        in the same environments whichever alias or version number named it); default: the
        configured alias'."""
        with self._invoke_lock:
            if self._stopped:
                raise LocalRuntimeError(f"{self.label} is stopped")
            self.start()
            process, api = self._process, self._api
            if process is None or api is None:
                raise LocalRuntimeError(f"{self.label}: the runtime process did not start")
            invocation = Invocation(
                event=event,
                function_arn=invoked_arn or self.config.function_arn,
                timeout_s=self.config.timeout_s,
            )
            api.submit(invocation)
            self._await(invocation, process, api)
            if invocation.result is None:
                raise LocalRuntimeError(f"{self.label}: the invocation ended without a result")
            return invocation.result

    def _await(
        self, invocation: Invocation, process: subprocess.Popen[bytes], api: RuntimeApi
    ) -> None:
        init_deadline = time.monotonic() + INIT_TIMEOUT_S
        while not invocation.handed_out.wait(_POLL_S):
            if invocation.done.is_set():
                return
            if process.poll() is not None:
                api.complete_current(
                    exit_error(invocation.request_id, _exit_reason(process)),
                    "Runtime.ExitError",
                )
                return
            if time.monotonic() > init_deadline:
                self.kill()
                api.complete_current(
                    timeout_error(invocation.request_id, INIT_TIMEOUT_S), "Sandbox.Timedout"
                )
                return
        deadline = invocation.started + invocation.timeout_s
        while not invocation.done.wait(_POLL_S):
            if process.poll() is not None:
                # The process may have posted its answer just before it died.
                if not invocation.done.wait(0.2):
                    api.complete_current(
                        exit_error(invocation.request_id, _exit_reason(process)),
                        "Runtime.ExitError",
                    )
                return
            if time.monotonic() > deadline:
                # Lambda stops the environment at the deadline; the next invocation is a cold
                # start.
                self.kill()
                api.complete_current(
                    timeout_error(invocation.request_id, invocation.timeout_s), "Sandbox.Timedout"
                )
                return
        if time.monotonic() > deadline + _GRACE_S:
            raise LocalRuntimeError(f"{self.label}: invocation outlived its deadline")

    # Logs

    def logs(self) -> list[LogRecord]:
        with self._log_lock:
            return list(self._logs)

    def output(self) -> str:
        """What the runtime processes wrote to stdout and stderr."""
        return self.output_path.read_text(errors="replace")

    def _read_logs(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            while True:
                header = _read_exactly(pipe, _LOG_FRAME_HEADER)
                if header is None:
                    return
                length = int.from_bytes(header[4:8], "big")
                message = _read_exactly(pipe, length)
                if message is None:
                    return
                record = LogRecord(
                    frame_type=int.from_bytes(header[:4], "big"),
                    timestamp_us=int.from_bytes(header[8:16], "big"),
                    message=message.decode("utf-8", errors="replace"),
                )
                if self._log_sink is not None:
                    self._log_sink(record)
                    continue
                with self._log_lock:
                    self._logs.append(record)


def _read_exactly(pipe: Any, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = pipe.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


_SIGNAL_TEXT = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
}


def _exit_reason(process: subprocess.Popen[bytes]) -> str:
    """How Lambda words a runtime's exit: Go's ``ProcessState.String()``."""
    code = process.returncode
    if code is not None and code < 0:
        number = signal.Signals(-code)
        return f"signal: {_SIGNAL_TEXT.get(number, number.name)}"
    return f"exit status {code}"


def build_task_root(source_dir: Path, target: Path) -> Path:
    """Lay out ``source_dir``'s Python sources as the deployed archive holds them."""
    # Imported here: versioned_lambda_api.archive imports pulumi, which only the main venv has.
    from versioned_lambda_api.archive import source_files  # noqa: PLC0415

    target.mkdir(parents=True, exist_ok=True)
    for relative, path in source_files(source_dir).items():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    return target


__all__ = [
    "FunctionConfig",
    "LambdaEnvironment",
    "LocalRuntimeError",
    "LogRecord",
    "build_task_root",
    "runtime_python",
]
