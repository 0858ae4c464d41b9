"""A test kit for programs that use the component: run a program for a stack under recording
mocks, with no Pulumi CLI, no credentials and no network, and inspect what it would deploy.

    from versioned_lambda_api.testing import run_program

    run = run_program(Path("."), "prod", {"stableVersion": "3"}, published_version=4)
    canary = next(row for row in run.routing() if row.stage == "prod" and row.role == "canary")
    assert (canary.alias, canary.share) == ("prod-canary", 10)
    assert not [f for f in run.findings() if f.severity == "error"]

The mocks answer like AWS and pulumi-aws would: physical names as the provider makes them
(``<logical name>-<7 hex>`` where it autonames, checked against each type's maximum length and
characters in :mod:`versioned_lambda_api.aws_names`), ARNs in the partition of the configured
``aws:region``, API ids, invoke URLs, published versions, API key values and ``getFunction``
lookups, under camelCase keys as the engine sends them. A name the provider or AWS would refuse
fails the run as the preview would. They also record each resource's parent and dependencies,
so the tree and the ordering can be checked, not just the inputs.

A program that fails (its own exception, a refused name, a failed invoke) raises
:class:`ProgramError` with the reason in a paragraph.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib
import json
import logging
import os
import re
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor

from versioned_lambda_api.analysis.graph import ResourceGraph, ResourceRecord
from versioned_lambda_api.analysis.preflight import Finding, preflight
from versioned_lambda_api.analysis.routing import RouteShare, routing_table
from versioned_lambda_api.aws_names import NAME_RULES, autoname, autoname_problem, name_problem

REGION = "us-east-1"
"""The region when the program's config sets no ``aws:region``."""
ACCOUNT = "123456789012"

FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
GET_FUNCTION = "aws:lambda/getFunction:getFunction"


class ProgramError(pulumi.RunError):
    """The program failed under the mocks: it raised, the provider refused a resource (a name
    too long or with characters AWS refuses), or an invoke failed. The message says why in a
    paragraph, without a traceback (a RunError, as Pulumi prints it); ``__cause__`` is the
    failure itself."""


# Region name patterns and DNS suffixes of the partitions, from botocore/data/partitions.json.
# A region no pattern matches is in the aws partition, as botocore assumes.
_PARTITIONS = (
    (re.compile(r"cn-\w+-\d+"), "aws-cn", "amazonaws.com.cn"),
    (re.compile(r"us-gov-\w+-\d+"), "aws-us-gov", "amazonaws.com"),
    (re.compile(r"us-iso-\w+-\d+"), "aws-iso", "c2s.ic.gov"),
    (re.compile(r"us-isob-\w+-\d+"), "aws-iso-b", "sc2s.sgov.gov"),
    (re.compile(r"eu-isoe-\w+-\d+"), "aws-iso-e", "cloud.adc-e.uk"),
    (re.compile(r"us-isof-\w+-\d+"), "aws-iso-f", "csp.hci.ic.gov"),
    (re.compile(r"eusc-de-\w+-\d+"), "aws-eusc", "amazonaws.eu"),
)


@dataclass(frozen=True)
class Place:
    """Where the program deploys: its region, the region's partition and DNS suffix."""

    region: str
    partition: str
    dns_suffix: str

    @classmethod
    def of(cls, region: str) -> Place:
        for pattern, partition, dns_suffix in _PARTITIONS:
            if pattern.fullmatch(region):
                return cls(region, partition, dns_suffix)
        return cls(region, "aws", "amazonaws.com")

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{ACCOUNT}:{resource}"


def program_place() -> Place:
    """Where the running program deploys: the ``aws:region`` of its config, else :data:`REGION`."""
    return Place.of(str(pulumi.runtime.config.CONFIG.get().get("aws:region") or REGION))


def _suffix(name: str, length: int = 7) -> str:
    # Deterministic stand-in for a random suffix or id, so runs are reproducible.
    return hashlib.sha256(name.encode()).hexdigest()[:length]


# A Lambda function named by its name or ARN, optionally qualified (botocore's lambda shape
# NamespacedFunctionName).
_FUNCTION_REFERENCE = re.compile(
    r"(?:arn:[a-z-]+:lambda:[a-z0-9-]+:\d{12}:function:)?(?P<name>[A-Za-z0-9_-]+)"
    r"(?::(?P<qualifier>[A-Za-z0-9_$-]+))?"
)


def _function_name(reference: str) -> str:
    match = _FUNCTION_REFERENCE.fullmatch(reference)
    return match["name"] if match else reference


def _invoke_arn(place: Place, function_arn: str) -> str:
    return (
        f"arn:{place.partition}:apigateway:{place.region}:lambda:path/2015-03-31/functions/"
        f"{function_arn}/invocations"
    )


# What AWS computes for each resource type, from the logical name, the physical name (given or
# autonamed) and the inputs. Types not listed get an id only.
Computed = dict[str, Any]
_Compute = Callable[["RecordingMocks", Place, str, str, Computed], Computed]


def _function(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    arn = place.arn("lambda", f"function:{physical}")
    version = str(mocks.version_published_by(name)) if inputs.get("publish") else "$LATEST"
    return {
        "id": physical,
        "arn": arn,
        "version": version,
        "qualifiedArn": f"{arn}:{version}",
        "invokeArn": _invoke_arn(place, arn),
        "qualifiedInvokeArn": _invoke_arn(place, f"{arn}:{version}"),
    }


def _alias(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    function = _function_name(str(inputs["functionName"]))
    arn = place.arn("lambda", f"function:{function}:{physical}")
    return {"id": arn, "arn": arn, "invokeArn": _invoke_arn(place, arn)}


def _permission(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    return {"id": physical}


def _rest_api(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    # The same whether the API comes as an OpenAPI ``body`` or as Resource/Method resources:
    # API Gateway creates the root resource either way.
    api_id = _suffix(name, 10)
    mocks.resource_paths[f"{api_id}-root"] = ""
    return {
        "id": api_id,
        "rootResourceId": f"{api_id}-root",
        "executionArn": place.arn("execute-api", api_id),
        "arn": f"arn:{place.partition}:apigateway:{place.region}::/restapis/{api_id}",
        "createdDate": "2026-11-26T12:00:00Z",
    }


def _api_resource(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    path = f"{mocks.resource_paths.get(inputs['parentId'], '')}/{inputs['pathPart']}"
    resource_id = _suffix(name, 6)
    mocks.resource_paths[resource_id] = path
    return {"id": resource_id, "path": path}


def _deployment(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    return {"id": _suffix(name, 6), "createdDate": "2026-11-26T12:00:00Z"}


def _stage(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    api, stage = inputs["restApi"], physical
    return {
        "id": f"ags-{api}-{stage}",
        "invokeUrl": f"https://{api}.execute-api.{place.region}.{place.dns_suffix}/{stage}",
        "executionArn": place.arn("execute-api", f"{api}/{stage}"),
        "arn": f"arn:{place.partition}:apigateway:{place.region}::/restapis/{api}/stages/{stage}",
    }


def _api_key(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    key_id = _suffix(name, 10)
    return {
        "id": key_id,
        "value": _suffix(name + "key", 40),
        "arn": f"arn:{place.partition}:apigateway:{place.region}::/apikeys/{key_id}",
    }


def _usage_plan(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    plan_id = _suffix(name, 6)
    return {
        "id": plan_id,
        "arn": f"arn:{place.partition}:apigateway:{place.region}::/usageplans/{plan_id}",
    }


def _role_policy(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    # terraform-provider-aws's id for an inline policy: role name and policy name.
    return {"id": f"{inputs.get('role')}:{physical}"}


def _dashboard(
    mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
) -> Computed:
    return {
        "id": physical,
        "dashboardArn": place.arn("cloudwatch", f"dashboard/{physical}", regional=False),
    }


def _named(service: str, resource: str, *, regional: bool = True) -> _Compute:
    """A type whose id is its physical name, with ``resource`` its ARN's resource part
    (``{name}`` stands for the physical name)."""

    def computed(
        mocks: RecordingMocks, place: Place, name: str, physical: str, inputs: Computed
    ) -> Computed:
        arn = place.arn(service, resource.format(name=physical), regional=regional)
        return {"id": physical, "arn": arn}

    return computed


_COMPUTED: dict[str, _Compute] = {
    FUNCTION: _function,
    ALIAS: _alias,
    "aws:lambda/permission:Permission": _permission,
    "aws:apigateway/restApi:RestApi": _rest_api,
    "aws:apigateway/resource:Resource": _api_resource,
    "aws:apigateway/deployment:Deployment": _deployment,
    "aws:apigateway/stage:Stage": _stage,
    "aws:apigateway/apiKey:ApiKey": _api_key,
    "aws:apigateway/usagePlan:UsagePlan": _usage_plan,
    "aws:iam/role:Role": _named("iam", "role/{name}", regional=False),
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:cloudwatch/logGroup:LogGroup": _named("logs", "log-group:{name}"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _named("cloudwatch", "alarm:{name}"),
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:dynamodb/table:Table": _named("dynamodb", "table/{name}"),
}


def _caller_identity(place: Place) -> dict[str, Any]:
    return {
        "id": ACCOUNT,
        "accountId": ACCOUNT,
        "arn": f"arn:{place.partition}:iam::{ACCOUNT}:user/test",
        "userId": "AIDATEST",
    }


def _region(place: Place) -> dict[str, Any]:
    return {
        "id": place.region,
        "region": place.region,
        "name": place.region,
        "endpoint": f"ec2.{place.region}.{place.dns_suffix}",
    }


def _partition(place: Place) -> dict[str, Any]:
    return {
        "id": place.partition,
        "partition": place.partition,
        "dnsSuffix": place.dns_suffix,
        "reverseDnsPrefix": ".".join(reversed(place.dns_suffix.split("."))),
    }


# What the account and region invokes answer; any other invoke but getFunction answers {}.
_INVOKE_ANSWERS: dict[str, Callable[[Place], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getPartition:getPartition": _partition,
}


class _Collect(logging.Handler):
    def __init__(self, messages: list[tuple[str, str]]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelname.lower(), record.getMessage()))


InvokeFailures = list[tuple[str, str]]


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that answer like pulumi-aws and AWS would and remember every resource."""

    def __init__(self, published_version: int = 1) -> None:
        self.published_version = published_version
        """The version Lambda reports as newest for every function published."""
        self.published_versions: dict[str, int] = {}
        """Function logical name to the version it publishes, where it differs from
        ``published_version``."""
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

    def version_published_by(self, function: str) -> int:
        """The newest version of the function with logical name ``function``."""
        return self.published_versions.get(function, self.published_version)

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        place = program_place()
        physical = self._physical_name(args.typ, args.name, args.inputs)
        rule = NAME_RULES.get(args.typ)
        # The provider reports the name it generated as an output, like any other.
        named = {**args.inputs, rule.property: physical} if rule else args.inputs
        compute = _COMPUTED.get(args.typ)
        computed = compute(self, place, args.name, physical, named) if compute else {}
        resource_id = computed.pop("id", f"{args.name}-id")
        outputs = {**named, **computed}
        self.graph.add(ResourceRecord(args.typ, args.name, args.inputs, outputs, resource_id))
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], InvokeFailures]:
        place = program_place()
        if args.token == GET_FUNCTION:
            return self._get_function(Place.of(args.args.get("region") or place.region), args.args)
        answer = _INVOKE_ANSWERS.get(args.token)
        # No failures is an empty list: the mock monitor iterates over it.
        return (answer(place) if answer else {}), []

    def _physical_name(self, typ: str, name: str, inputs: Computed) -> str:
        """The physical name the provider would use: the one given, else the one it generates
        (the logical name for types without one). Raises :class:`ProgramError` as the preview
        would fail when the provider or AWS would refuse that name."""
        rule = NAME_RULES.get(typ)
        if rule is None:
            return name
        given = inputs.get(rule.property)
        if given is not None:
            problem = name_problem(typ, str(given))
            physical = str(given)
        elif rule.autonamed:
            problem = autoname_problem(typ, name)
            physical = autoname(name, _suffix(f"{pulumi.get_stack()}::{typ}::{name}"))
        else:
            problem, physical = f"missing required property '{rule.property}'", ""
        if problem is not None:
            # The engine's wording for a provider's check failure.
            raise ProgramError(f"{typ} resource '{name}' has a problem: {problem}")
        return physical

    def _get_function(
        self, place: Place, args: dict[str, Any]
    ) -> tuple[dict[str, Any], InvokeFailures]:
        """GetFunction as Lambda answers it for the functions and aliases the program
        registered: an unknown function, version or alias is ResourceNotFoundException."""
        reference = _FUNCTION_REFERENCE.fullmatch(str(args.get("functionName", "")))
        name = reference["name"] if reference else str(args.get("functionName"))
        qualifier = args.get("qualifier") or (reference["qualifier"] if reference else None)
        arn = place.arn("lambda", f"function:{name}")
        requested = f"{arn}:{qualifier}" if qualifier else arn
        # Invokes run on executor threads while others register: iterate over a copy, which
        # list() takes at once.
        records = list(self.graph.resources.values())
        function = next(
            (r for r in records if r.type == FUNCTION and r.outputs.get("name") == name), None
        )
        version = None if function is None else _version_at(records, function, qualifier)
        if function is None or version is None:
            return {}, [
                (
                    "qualifier" if function is not None else "functionName",
                    f"ResourceNotFoundException: Function not found: {requested}",
                )
            ]
        qualified = requested if qualifier else f"{arn}:{version}"
        inputs = function.inputs
        return {
            "id": name,
            "functionName": name,
            "qualifier": qualifier,
            "arn": arn,
            "qualifiedArn": qualified,
            "invokeArn": _invoke_arn(place, arn),
            "qualifiedInvokeArn": _invoke_arn(place, qualified),
            "version": version,
            "role": inputs.get("role"),
            "handler": inputs.get("handler"),
            "runtime": inputs.get("runtime"),
            "memorySize": inputs.get("memorySize"),
            "timeout": inputs.get("timeout"),
            "architectures": inputs.get("architectures"),
            "lastModified": "2026-11-26T12:00:00.000+0000",
        }, []


def _version_at(
    records: list[ResourceRecord], function: ResourceRecord, qualifier: str | None
) -> str | None:
    """The version ``qualifier`` names on ``function`` (absent: $LATEST), or None when Lambda
    has no such version or alias."""
    newest = str(function.outputs.get("version"))
    if qualifier is None or qualifier == "$LATEST":
        return "$LATEST"
    if qualifier.isdigit():
        exists = newest.isdigit() and 1 <= int(qualifier) <= int(newest)
        return qualifier if exists else None
    alias = next(
        (
            a
            for a in records
            if a.type == ALIAS
            and a.outputs.get("name") == qualifier
            and _function_name(str(a.inputs.get("functionName"))) == function.outputs.get("name")
        ),
        None,
    )
    return None if alias is None else str(alias.inputs.get("functionVersion"))


class RecordingMonitor(MockMonitor):
    """A mock monitor that also keeps each registration's parent and explicit dependencies."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        recorded = self.recording.graph.find(request.type, request.name)
        if recorded is not None:
            recorded.urn = response.urn
            recorded.parent_urn = request.parent
            recorded.dependencies = list(request.dependencies)
        return response


def project_name(program_dir: Path) -> str:
    """The project name declared in the program's ``Pulumi.yaml``."""
    return str(_read_yaml(Path(program_dir) / "Pulumi.yaml")["name"])


def stack_config(program_dir: Path, stack: str) -> dict[str, str]:
    """The config the CLI would give the program: project defaults, then the stack file."""
    project = _read_yaml(Path(program_dir) / "Pulumi.yaml")
    name = project["name"]
    config = {
        f"{name}:{key}": declaration["default"]
        for key, declaration in (project.get("config") or {}).items()
        if isinstance(declaration, dict) and "default" in declaration
    }
    stack_file = _read_yaml(Path(program_dir) / f"Pulumi.{stack}.yaml")
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
    """Run the program in ``program_dir`` (its ``__main__.py``; a relative folder is taken from
    the current directory) under ``mocks``, as the Pulumi CLI would in a process of its own.

    Raises :class:`ProgramError` when the program fails.
    """
    program_dir = Path(program_dir).resolve()
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

    with _own_modules(program_dir), _quiet_failures() as failures:
        try:
            program()
        except Exception as error:
            failures.append(error)
            cause = _first_failure(error)
            raise ProgramError(_reason(cause, program_dir)) from cause
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

    ``published_version`` is the version Lambda reports as newest for every function. Raises
    :class:`ProgramError` when the program fails.
    """
    program_dir = Path(program_dir).resolve()
    mocks = start_program_mocks(program_dir, stack, overrides, published_version)
    return execute_program(program_dir, mocks)


def _first_failure(error: BaseException) -> BaseException:
    """The innermost cause of ``error``: a failed registration fails each resource that waited
    on it in turn, each raised from the one before."""
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    # Pulumi re-raises the first failure from itself: a loop that tells nothing and sends
    # whoever follows the chain round it forever.
    error.__cause__ = None
    return error


def _reason(error: BaseException, program_dir: Path) -> str:
    """Why the program failed, in a paragraph: what ``error`` says and, unless it is a message
    written for the user, where in the program it was raised."""
    if isinstance(error, pulumi.RunError):
        # A refused resource, or the program's own RunError (the component's ConfigError too).
        return _paragraph(str(error))
    # The SDK raises a bare Exception for a failed invoke: its message says it all.
    named = error if type(error) is Exception else f"{type(error).__name__}: {error}"
    reason = _paragraph(str(named))
    environment = Path(sys.prefix).resolve()
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).is_relative_to(program_dir)
        and not Path(frame.filename).is_relative_to(environment)
    ]
    if frames:
        where = Path(frames[-1].filename).relative_to(program_dir)
        reason += f" (raised at {where}, line {frames[-1].lineno})"
    return reason


def _paragraph(text: str) -> str:
    return " ".join(text.split())


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
def _own_modules(program_dir: Path) -> Iterator[None]:
    """Forget, after the run, the modules the program imported from its own folder, as its
    process ending would: another program's ``import helper`` must find its own helper.

    Only top-level modules new to this process go (with their submodules): a module of an
    already imported package stays, so no class is ever loaded twice.
    """
    before = set(sys.modules)
    # A folder written since the last import may hold files the import system has not seen.
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            if name.partition(".")[0] not in before and _loaded_from(
                sys.modules[name], program_dir
            ):
                del sys.modules[name]


def _loaded_from(module: Any, folder: Path) -> bool:
    """Whether ``module`` is a file of ``folder``'s own, not of a Python environment in it."""
    file = getattr(module, "__file__", None)
    if file is None:
        return False
    path = Path(file).resolve()
    return path.is_relative_to(folder) and not path.is_relative_to(Path(sys.prefix).resolve())


@contextmanager
def _quiet_failures() -> Iterator[list[BaseException]]:
    """Hold what asyncio reports during a run; if the run fails (its failure is appended to the
    list yielded), drop the reports that only echo it ("Task exception was never retrieved",
    "Task was destroyed but it is pending!": every output that waited on a failed resource
    holds the failure) since the caller gets it as a :class:`ProgramError`. Others go on to
    the loop's handler."""
    loop = _event_loop()
    previous = loop.get_exception_handler()
    held: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: held.append(context))
    try:
        yield failures
    finally:
        if failures:
            _settle(loop, failures)
        loop.set_exception_handler(previous)
        for context in held:
            if not (failures and _echoes_a_failure(context)):
                loop.call_exception_handler(context)


def _echoes_a_failure(context: dict[str, Any]) -> bool:
    message = str(context.get("message"))
    return "exception was never retrieved" in message or "destroyed but it is pending" in message


def _settle(loop: asyncio.AbstractEventLoop, failures: list[BaseException]) -> None:
    """After a failed run: cancel what still waits on the failure, as ``asyncio.run`` would
    at its end, and mark the failure retrieved in every future that holds it (the caller
    keeps the failure, and with it those futures), so none complains when it is collected."""
    if not loop.is_running():
        waiting = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in waiting:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*waiting, return_exceptions=True))
    for failure in _chain(failures):
        for holder in gc.get_referrers(failure):
            if isinstance(holder, asyncio.Future) and holder.done() and not holder.cancelled():
                holder.exception()


def _chain(errors: list[BaseException]) -> list[BaseException]:
    """``errors`` and every exception they were raised from or while handling."""
    found: dict[int, BaseException] = {}
    pending = list(errors)
    while pending:
        error = pending.pop()
        if id(error) not in found:
            found[id(error)] = error
            pending += [e for e in (error.__cause__, error.__context__) if e is not None]
    return list(found.values())


def _event_loop() -> asyncio.AbstractEventLoop:
    # The loop pulumi.runtime.test runs the program on (pulumi's _ensure_event_loop).
    try:
        return asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop


@contextmanager
def _exports_to(export: Any) -> Iterator[None]:
    original = pulumi.export
    pulumi.export = export
    try:
        yield
    finally:
        pulumi.export = original
