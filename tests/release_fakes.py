"""The deployed stack as the release tool's tests fake it: light enough for the subprocesses
that check what the tool loads (no moto, no component test kit)."""

from collections.abc import Callable
from typing import Any

OUTPUTS = {
    "functionName": "event-logger-function-abc1234",
    "liveAlias": "prod",
    "canaryAlias": "prod-canary",
    "liveVersion": "3",
    "canaryVersion": "4",
    "restApiId": "a1b2c3d4e5",
    "stage": "prod",
}


class FakeDeployer:
    """Stands in for the Automation API: fixed outputs, and a record of every ``up``."""

    def __init__(self, outputs: dict[str, Any] | None = None) -> None:
        self.stack_outputs = dict(OUTPUTS if outputs is None else outputs)
        self.ups = 0
        self.output_reads = 0

    def outputs(self) -> dict[str, Any]:
        self.output_reads += 1
        return self.stack_outputs

    def up(self, on_output: Callable[[str], None]) -> None:
        self.ups += 1
        on_output("Resources: 2 updated")
