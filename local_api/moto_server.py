"""moto's DynamoDB as a server process on 127.0.0.1, and a client to talk to it directly."""

from __future__ import annotations

import select
import subprocess
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_api.environment import LocalRuntimeError, runtime_python

_START_TIMEOUT_S = 30.0
_MAIN = Path(__file__).with_name("moto_main.py")


class MotoServer:
    def __init__(self, log_path: Path) -> None:
        self._log = log_path.open("wb")
        self._process = subprocess.Popen(  # noqa: S603 - the runtime venv's Python, our script
            [str(runtime_python()), str(_MAIN)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            # Out of the terminal's Ctrl-C: whoever started it stops it, after reading its data.
            start_new_session=True,
        )
        stdout = self._process.stdout
        if stdout is None:
            raise LocalRuntimeError("moto's server was started without a pipe for its port")
        ready, _, _ = select.select([stdout], [], [], _START_TIMEOUT_S)
        line = stdout.readline() if ready else b""
        if not line.strip().isdigit():
            exited = self._process.poll() is not None
            self.stop()
            raise LocalRuntimeError(
                f"moto's server {'exited' if exited else 'did not start'} within "
                f"{_START_TIMEOUT_S} s: {_last_line(log_path)} (see {log_path})"
            )
        self.port = int(line)
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def client(self, region: str) -> Any:
        """A DynamoDB client that talks to moto directly, past any fault proxy."""
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto takes any credentials
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}, proxies={}),
        )

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()


def _last_line(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "it wrote nothing"
