"""A test kit for programs that use the component: run a program for a stack under recording
mocks, with no Pulumi CLI, no credentials and no network, and inspect what it would deploy.

    from components.testing import run_program

    run = run_program(Path("."), "prod", {"stableVersion": "3"})
    canary = next(row for row in run.routing() if row.stage == "prod" and row.role == "canary")
    assert (canary.alias, canary.share) == ("prod-canary", 10)
    assert not [f for f in run.findings() if f.severity == "error"]

The mocks answer like AWS would: physical names with Pulumi's random suffix, ARNs, API ids,
invoke URLs, published versions and API key values, under camelCase keys as the engine sends
them. They also record each resource's parent and dependencies, so the tree and the ordering can
be checked, not just the inputs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor

from components.graph import ResourceGraph, ResourceRecord
from components.preflight import Finding, preflight
from components.routing import RouteShare, routing_table

REGION = "us-east-1"
ACCOUNT = "123456789012"


def _suffix(name: str, length: int = 7) -> str:
    # Deterministic stand-in for Pulumi's random auto-name suffix.
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def _invoke_arn(function_arn: str) -> str:
    return (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )


# What AWS computes for each resource type, from the logical name, the physical name (given or
# auto-named) and the inputs. Types not listed get an id only.
Computed = dict[str, Any]


def _function(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
    version = str(mocks.published_version) if inputs.get("publish") else "$LATEST"
    return {
        "id": physical,
        "name": physical,
        "arn": arn,
        "version": version,
        "qualifiedArn": f"{arn}:{version}",
        "invokeArn": _invoke_arn(arn),
    }


def _alias(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{inputs['functionName']}:{physical}"
    return {"id": arn, "arn": arn, "invokeArn": _invoke_arn(arn)}


def _permission(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    statement = f"terraform-{_suffix(name, 20)}"
    return {"id": statement, "statementId": statement}


def _rest_api(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    api_id = _suffix(name, 10)
    mocks.resource_paths[f"{api_id}-root"] = ""
    return {
        "id": api_id,
        "name": physical,
        "rootResourceId": f"{api_id}-root",
        "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}",
    }


def _api_resource(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    path = f"{mocks.resource_paths.get(inputs['parentId'], '')}/{inputs['pathPart']}"
    resource_id = _suffix(name, 6)
    mocks.resource_paths[resource_id] = path
    return {"id": resource_id, "path": path}


def _deployment(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    return {"id": _suffix(name, 6), "createdDate": "2026-11-26T12:00:00Z"}


def _stage(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    api, stage = inputs["restApi"], inputs["stageName"]
    return {
        "id": f"ags-{api}-{stage}",
        "invokeUrl": f"https://{api}.execute-api.{REGION}.amazonaws.com/{stage}",
        "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{stage}",
        "arn": f"arn:aws:apigateway:{REGION}::/restapis/{api}/stages/{stage}",
    }


def _api_key(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    return {"id": _suffix(name, 10), "name": physical, "value": _suffix(name + "key", 40)}


def _dashboard(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
    dashboard = inputs["dashboardName"]
    return {"id": dashboard, "dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{dashboard}"}


def _named(arn_format: str) -> Any:
    def computed(mocks: RecordingMocks, name: str, physical: str, inputs: Computed) -> Computed:
        arn = arn_format.format(region=REGION, account=ACCOUNT, name=physical)
        return {"id": physical, "name": physical, "arn": arn}

    return computed


_COMPUTED = {
    "aws:lambda/function:Function": _function,
    "aws:lambda/alias:Alias": _alias,
    "aws:lambda/permission:Permission": _permission,
    "aws:apigateway/restApi:RestApi": _rest_api,
    "aws:apigateway/resource:Resource": _api_resource,
    "aws:apigateway/deployment:Deployment": _deployment,
    "aws:apigateway/stage:Stage": _stage,
    "aws:apigateway/apiKey:ApiKey": _api_key,
    "aws:apigateway/usagePlan:UsagePlan": _named("arn:aws:apigateway:{region}::/usageplans/{name}"),
    "aws:iam/role:Role": _named("arn:aws:iam::{account}:role/{name}"),
    "aws:cloudwatch/logGroup:LogGroup": _named("arn:aws:logs:{region}:{account}:log-group:{name}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named(
        "arn:aws:cloudwatch:{region}:{account}:alarm:{name}"
    ),
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:dynamodb/table:Table": _named("arn:aws:dynamodb:{region}:{account}:table/{name}"),
}

_INVOKE_RESULTS: dict[str, dict[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
        "userId": "AIDATEST",
    },
    "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION},
}


class _Collect(logging.Handler):
    def __init__(self, messages: list[tuple[str, str]]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelname.lower(), record.getMessage()))


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that return realistic computed outputs and remember every resource."""

    def __init__(self, published_version: int = 1) -> None:
        self.published_version = published_version
        """The version Lambda reports as newest for every function published."""
        self.graph = ResourceGraph()
        self.resource_paths: dict[str, str] = {}
        """API Gateway resource id to its path, so child resources report full paths."""
        self.log = logging.getLogger(f"{__name__}.engine.{id(self)}")
        """Where the program's ``pulumi.log`` messages go; kept, not printed."""
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.messages: list[tuple[str, str]] = []
        """(level, message) of every warning or error the program logged."""
        self.log.addHandler(_Collect(self.messages))

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        physical = args.inputs.get("name") or f"{args.name}-{_suffix(args.name)}"
        compute = _COMPUTED.get(args.typ)
        computed = compute(self, args.name, physical, args.inputs) if compute else {}
        resource_id = computed.pop("id", f"{args.name}-id")
        outputs = {**args.inputs, **computed}
        self.graph.add(ResourceRecord(args.typ, args.name, args.inputs, outputs, resource_id))
        return resource_id, outputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return _INVOKE_RESULTS.get(args.token, {}), None


class RecordingMonitor(MockMonitor):
    """A mock monitor that also keeps each registration's parent and explicit dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        recorded = self.recording.graph.resources.get(request.name)
        if recorded is not None:
            recorded.urn = response.urn
            recorded.parent_urn = request.parent
            recorded.dependencies = list(request.dependencies)
        return response


def project_name(program_dir: Path) -> str:
    """The project name declared in the program's ``Pulumi.yaml``."""
    return str(_read_yaml(program_dir / "Pulumi.yaml")["name"])


def stack_config(program_dir: Path, stack: str) -> dict[str, str]:
    """The config the CLI would give the program: project defaults, then the stack file."""
    project = _read_yaml(program_dir / "Pulumi.yaml")
    name = project["name"]
    config = {
        f"{name}:{key}": declaration["default"]
        for key, declaration in (project.get("config") or {}).items()
        if isinstance(declaration, dict) and "default" in declaration
    }
    stack_file = _read_yaml(program_dir / f"Pulumi.{stack}.yaml")
    config.update(stack_file.get("config") or {})
    return {key: _config_string(value) for key, value in config.items()}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    loaded = yaml.safe_load(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _config_string(value: Any) -> str:
    # The CLI hands every config value to the program as a string; objects as JSON.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def start_mocks(
    project: str, stack: str, config: dict[str, str], published_version: int = 1
) -> RecordingMocks:
    """Install fresh recording mocks for ``project``/``stack`` with ``config``."""
    mocks = RecordingMocks(published_version)
    pulumi.runtime.set_mocks(
        mocks,
        project=project,
        stack=stack,
        preview=False,
        monitor=RecordingMonitor(mocks),
        logger=mocks.log,
    )
    pulumi.runtime.set_all_config(config)
    return mocks


@dataclass
class ProgramRun:
    """What running a program under the mocks produced."""

    graph: ResourceGraph
    """Every resource the program registered."""
    exports: dict[str, Any]
    """Stack output name to its resolved value."""
    secret_exports: set[str]
    """Names of the stack outputs Pulumi would store encrypted."""
    config: dict[str, str]
    """The config the program ran with (namespaced keys)."""
    messages: list[tuple[str, str]]
    """(level, message) of each warning or error the program logged with ``pulumi.log``."""

    def routing(self) -> list[RouteShare]:
        """The routing table: each stage's shares of traffic, their aliases and versions."""
        return routing_table(self.graph)

    def findings(self, open_methods_allowed: bool = False) -> list[Finding]:
        """The preflight findings for what the program would deploy."""
        return preflight(self.graph, open_methods_allowed=open_methods_allowed)


def start_program_mocks(
    program_dir: Path,
    stack: str,
    overrides: dict[str, str] | None = None,
    published_version: int = 1,
) -> RecordingMocks:
    """Mocks for ``stack`` with its stack file's config plus ``overrides`` (un-namespaced keys
    of the project, as ``pulumi config set`` takes them)."""
    project = project_name(program_dir)
    config = stack_config(program_dir, stack)
    config.update({f"{project}:{key}": value for key, value in (overrides or {}).items()})
    return start_mocks(project, stack, config, published_version)


def execute_program(program_dir: Path, mocks: RecordingMocks) -> ProgramRun:
    """Run the program in ``program_dir`` (its ``__main__.py``) under ``mocks``."""
    exports: dict[str, Any] = {}
    secrets: dict[str, bool] = {}
    outputs: dict[str, Any] = {}

    def export(name: str, value: Any) -> None:
        outputs[name] = value

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        with _running_in(program_dir), _exports_to(export):
            runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")
        secrecy = {
            name: asyncio.ensure_future(pulumi.Output.from_input(value).is_secret())
            for name, value in outputs.items()
        }
        return pulumi.Output.all(
            pulumi.Output.from_input(outputs).apply(exports.update),
            pulumi.Output.all(**secrecy).apply(secrets.update),
        ).apply(lambda _: None)

    program()
    return ProgramRun(
        graph=mocks.graph,
        exports=exports,
        secret_exports={name for name, secret in secrets.items() if secret},
        config=dict(pulumi.runtime.config.CONFIG.get()),
        messages=mocks.messages,
    )


def run_program(
    program_dir: Path,
    stack: str,
    overrides: dict[str, str] | None = None,
    published_version: int = 1,
) -> ProgramRun:
    """Run the program in ``program_dir`` for ``stack`` as ``pulumi up`` would, under mocks.

    ``published_version`` is the version Lambda reports as newest for every function.
    """
    mocks = start_program_mocks(program_dir, stack, overrides, published_version)
    return execute_program(program_dir, mocks)


@contextmanager
def _running_in(program_dir: Path) -> Iterator[None]:
    # Pulumi runs a program from its project folder, with that folder importable.
    previous_cwd = Path.cwd()
    sys.path.insert(0, str(program_dir))
    os.chdir(program_dir)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path.remove(str(program_dir))


@contextmanager
def _exports_to(export: Any) -> Iterator[None]:
    original = pulumi.export
    pulumi.export = export
    try:
        yield
    finally:
        pulumi.export = original
