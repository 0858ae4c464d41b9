"""The deployed stack as the release tool's tests fake it: light enough for the subprocesses
that check what the tool loads (no moto, no component test kit)."""

from collections.abc import Callable
from typing import Any

OUTPUTS: dict[str, Any] = {
    "functionName": "event-logger-function-abc1234",
    "liveAlias": "prod",
    "canaryAlias": "prod-canary",
    "liveVersion": "3",
    "canaryVersion": "4",
    "restApiId": "a1b2c3d4e5",
    "stage": "prod",
    "canaryPercent": 10,
    "canaryMode": "stage",
}


class FakeDeployer:
    """Stands in for the Automation API: fixed outputs, and a record of every ``up``;
    ``on_up`` is what an ``up`` does besides (e.g. apply the file to :class:`ServedTraffic`)."""

    def __init__(
        self, outputs: dict[str, Any] | None = None, on_up: Callable[[], None] | None = None
    ) -> None:
        self.stack_outputs = dict(OUTPUTS if outputs is None else outputs)
        self.on_up = on_up
        self.ups = 0
        self.output_reads = 0

    def outputs(self) -> dict[str, Any]:
        self.output_reads += 1
        return self.stack_outputs

    def up(self, on_output: Callable[[str], None]) -> None:
        self.ups += 1
        if self.on_up is not None:
            self.on_up()
        on_output("Resources: 2 updated")


class ServedTraffic:
    """API Gateway's stage canary and Lambda's live alias as the release tool reads and
    changes them, one object standing in for both clients (answers shaped as boto3 parses
    them). The end-to-end tests use real boto3 clients instead (tests/release_world.py).

    ``stage_percent``: the stage canary's share, ``None`` for a stage without canary settings;
    ``alias_weights``: the live alias' additional version weights (0-1)."""

    def __init__(
        self, stage_percent: float | None = 10.0, alias_weights: dict[str, float] | None = None
    ) -> None:
        self.stage_percent = stage_percent
        self.alias_weights = dict(alias_weights or {})
        self.calls: list[str] = []

    def get_stage(self, *, restApiId: str, stageName: str) -> dict[str, Any]:  # noqa: N803
        self.calls.append("GetStage")
        answer: dict[str, Any] = {"stageName": stageName}
        if self.stage_percent is not None:
            answer["canarySettings"] = {
                "percentTraffic": self.stage_percent,
                "deploymentId": "d1",
                "stageVariableOverrides": {"lambdaAlias": OUTPUTS["canaryAlias"]},
            }
        return answer

    def update_stage(self, *, restApiId: str, stageName: str, patchOperations: Any) -> Any:  # noqa: N803
        self.calls.append("UpdateStage")
        assert patchOperations == [
            {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"}
        ]
        self.stage_percent = 0.0
        return {"stageName": stageName}

    def get_alias(self, *, FunctionName: str, Name: str) -> dict[str, Any]:  # noqa: N803
        self.calls.append("GetAlias")
        routing = {"AdditionalVersionWeights": self.alias_weights} if self.alias_weights else {}
        return {"Name": Name, "FunctionVersion": OUTPUTS["liveVersion"], "RoutingConfig": routing}

    def update_alias(self, *, FunctionName: str, Name: str, RoutingConfig: Any) -> Any:  # noqa: N803
        self.calls.append("UpdateAlias")
        self.alias_weights = dict(RoutingConfig["AdditionalVersionWeights"])
        return {"Name": Name}

    def deploy(self, percent: float, mode: str = "stage") -> None:
        """What ``pulumi up`` of a file with this share and mode leaves (a pinned version)."""
        self.stage_percent = percent if mode == "stage" and percent > 0 else None
        weighted = mode == "alias" and percent > 0
        self.alias_weights = {OUTPUTS["canaryVersion"]: percent / 100} if weighted else {}
