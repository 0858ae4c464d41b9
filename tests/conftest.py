"""The one recording mock every Pulumi test runs under, and the fixtures that run programs.

The mock answers like AWS would: physical names with Pulumi's random suffix, ARNs, API ids,
invoke URLs, published versions, API key values, all under camelCase keys as the engine sends
them. It also records each resource's parent and explicit dependencies, so tests can check the
tree and the ordering, not just the inputs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockMonitor

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "event-logger"
REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class Recorded:
    """One resource as the engine saw it."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    urn: str = ""
    parent_urn: str = ""
    dependencies: list[str] = field(default_factory=list)


def _suffix(name: str, length: int = 7) -> str:
    # Deterministic stand-in for Pulumi's random auto-name suffix.
    return hashlib.sha256(name.encode()).hexdigest()[:length]


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that return realistic computed outputs and remember every resource."""

    def __init__(self, published_version: int = 1) -> None:
        self.published_version = published_version
        self.resources: dict[str, Recorded] = {}
        self._resource_paths: dict[str, str] = {}

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        # Pulumi refuses two resources with one URN; the mock refuses any reuse of a name so
        # that collisions between instances or stages show up in tests.
        if args.name in self.resources:
            raise ValueError(f"resource name {args.name!r} registered twice")
        computed = self._computed(args.typ, args.name, args.inputs)
        resource_id = computed.pop("id", f"{args.name}-id")
        outputs = {**args.inputs, **computed}
        self.resources[args.name] = Recorded(args.typ, args.name, args.inputs, outputs, resource_id)
        return resource_id, outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                "userId": "AIDA",
            }, None
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION}, None
        return {}, None

    def _computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        physical = inputs.get("name") or f"{name}-{_suffix(name)}"
        if typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
            version = str(self.published_version) if inputs.get("publish") else "$LATEST"
            return {
                "id": physical,
                "name": physical,
                "arn": arn,
                "version": version,
                "qualifiedArn": f"{arn}:{version}",
                "invokeArn": _invoke_arn(arn),
            }
        if typ == "aws:lambda/alias:Alias":
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{inputs['functionName']}:{physical}"
            return {"id": arn, "arn": arn, "invokeArn": _invoke_arn(arn)}
        if typ == "aws:lambda/permission:Permission":
            return {
                "id": f"terraform-{_suffix(name, 20)}",
                "statementId": f"terraform-{_suffix(name, 20)}",
            }
        if typ == "aws:apigateway/restApi:RestApi":
            api_id = _suffix(name, 10)
            self._resource_paths[f"{api_id}-root"] = ""
            return {
                "id": api_id,
                "name": physical,
                "rootResourceId": f"{api_id}-root",
                "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}",
            }
        if typ == "aws:apigateway/resource:Resource":
            path = f"{self._resource_paths.get(inputs['parentId'], '')}/{inputs['pathPart']}"
            resource_id = _suffix(name, 6)
            self._resource_paths[resource_id] = path
            return {"id": resource_id, "path": path}
        if typ == "aws:apigateway/deployment:Deployment":
            return {"id": _suffix(name, 6), "createdDate": "2026-11-26T12:00:00Z"}
        if typ == "aws:apigateway/stage:Stage":
            api, stage = inputs["restApi"], inputs["stageName"]
            return {
                "id": f"ags-{api}-{stage}",
                "invokeUrl": f"https://{api}.execute-api.{REGION}.amazonaws.com/{stage}",
                "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{stage}",
                "arn": f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/{stage}",
            }
        if typ == "aws:apigateway/apiKey:ApiKey":
            return {"id": _suffix(name, 10), "name": physical, "value": _suffix(name + "key", 40)}
        if typ == "aws:apigateway/usagePlan:UsagePlan":
            return {"id": _suffix(name, 6), "name": physical}
        if typ == "aws:iam/role:Role":
            return {
                "id": physical,
                "name": physical,
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
            }
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}"
            return {"id": physical, "name": physical, "arn": arn}
        if typ == "aws:dynamodb/table:Table":
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
            return {"id": physical, "name": physical, "arn": arn}
        return {}

    def of_type(self, typ: str) -> list[Recorded]:
        """Every recorded resource of a type token, in registration order."""
        return [resource for resource in self.resources.values() if resource.type == typ]

    def one(self, typ: str) -> Recorded:
        """The single recorded resource of a type token."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]


def _invoke_arn(function_arn: str) -> str:
    return (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )


class RecordingMonitor(MockMonitor):
    """A mock monitor that also keeps each registration's parent and explicit dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        recorded = self.recording.resources.get(request.name)
        if recorded is not None:
            recorded.urn = response.urn
            recorded.parent_urn = request.parent
            recorded.dependencies = list(request.dependencies)
        return response


def stack_config(stack: str) -> dict[str, str]:
    """The config the CLI would give the program: project defaults, then the stack file."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = {
        f"{PROJECT}:{key}": declaration["default"]
        for key, declaration in project.get("config", {}).items()
        if "default" in declaration
    }
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config.update(stack_file.get("config") or {})
    return {key: _config_string(value) for key, value in config.items()}


def _config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def start_mocks(stack: str, config: dict[str, str], published_version: int = 1) -> RecordingMocks:
    """Install fresh recording mocks for ``stack`` with ``config``."""
    mocks = RecordingMocks(published_version)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
    pulumi.runtime.set_all_config(config)
    return mocks


@pytest.fixture(autouse=True)
def fresh_event_loop() -> Iterator[None]:
    """Each test gets its own event loop, so no Pulumi state leaks between tests."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def mocks() -> RecordingMocks:
    """Recording mocks for the ``dev`` stack with no config (for component tests)."""
    return start_mocks("dev", {})


@dataclass
class ProgramRun:
    """What running ``__main__.py`` under the mocks produced."""

    mocks: RecordingMocks
    exports: dict[str, Any]
    """Export name to its resolved value."""
    secret_exports: set[str]
    """Names of the exports Pulumi will store encrypted."""


def prepare_program(
    stack: str, overrides: dict[str, str] | None = None, published_version: int = 1
) -> RecordingMocks:
    """Mocks for ``stack`` with ``Pulumi.<stack>.yaml``'s config plus ``overrides``."""
    config = stack_config(stack)
    config.update({f"{PROJECT}:{key}": value for key, value in (overrides or {}).items()})
    return start_mocks(stack, config, published_version)


def execute_program(mocks: RecordingMocks) -> ProgramRun:
    """Run the real ``__main__.py`` under ``mocks`` and collect its exports."""
    exports: dict[str, Any] = {}
    secrets: dict[str, bool] = {}
    outputs: dict[str, Any] = {}

    def export(name: str, value: Any) -> None:
        outputs[name] = value

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        original_export = pulumi.export
        pulumi.export = export
        try:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original_export
        secrecy = {
            name: asyncio.ensure_future(pulumi.Output.from_input(value).is_secret())
            for name, value in outputs.items()
        }
        return pulumi.Output.all(
            pulumi.Output.from_input(outputs).apply(exports.update),
            pulumi.Output.all(**secrecy).apply(secrets.update),
        ).apply(lambda _: None)

    program()
    return ProgramRun(mocks, exports, {name for name, secret in secrets.items() if secret})


def run_program(
    stack: str, overrides: dict[str, str] | None = None, published_version: int = 1
) -> ProgramRun:
    """Run the real ``__main__.py`` with ``Pulumi.<stack>.yaml``'s config and ``overrides``."""
    return execute_program(prepare_program(stack, overrides, published_version))
