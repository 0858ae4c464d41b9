"""The component's args: their shape, checked against the TypedDicts before any value; the
values AWS refuses; and the typing rules that let Pulumi publish the component to other
languages."""

import asyncio
import types
import typing
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, ForwardRef

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.component import ComponentProvider

from tests.conftest import PROJECT
from versioned_lambda_api import (
    CanaryMode,
    ConfigError,
    VersionedLambdaApi,
    VersionedLambdaApiArgs,
    function_code_archive,
)
from versioned_lambda_api import args as component_args
from versioned_lambda_api.args import parse_args
from versioned_lambda_api.testing import start_mocks
from versioned_lambda_api.validation import RESERVED_ENVIRONMENT_VARIABLES

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/events"
CODE_REQUIRED = (
    "code or code_path is required: the function's code as an archive (code) or its source "
    "folder (code_path)"
)
ROOT_KEYS = (
    "code, code_path, handler, routes, stages, runtime, memory_size, timeout, environment, "
    "policy_statements, log_retention_days, api_key_required, alarm_actions"
)


def valid_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "code": pulumi.AssetArchive({}),
        "handler": "handler.handler",
        "routes": [{"path": "events", "method": "POST"}],
        "stages": [{"name": "dev", "alias": "dev"}],
    }
    args.update(overrides)
    return args


def stage(**overrides: Any) -> dict[str, Any]:
    return {"name": "prod", "alias": "prod", **overrides}


def statement(**overrides: Any) -> dict[str, Any]:
    return {"actions": ["dynamodb:PutItem"], "resources": [TABLE], **overrides}


def parse(args: dict[str, Any]) -> component_args.ApiPlan:
    return parse_args(args)  # type: ignore[arg-type]


def refusal(args: object) -> list[str]:
    """The lines of the ConfigError ``args`` are refused with."""
    with pytest.raises(ConfigError) as raised:
        parse_args(args)  # type: ignore[arg-type]
    return str(raised.value).splitlines()


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name != key}


# --- Shape: missing, mistyped and unknown keys --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (without(valid_args(), "code"), CODE_REQUIRED),
        (without(valid_args(), "handler"), "handler is required: a string"),
        (without(valid_args(), "routes"), "routes is required: a list of dicts (RouteArgs)"),
        (without(valid_args(), "stages"), "stages is required: a list of dicts (StageArgs)"),
        (valid_args(routes=[{"method": "GET"}]), "routes[0].path is required: a string"),
        (
            valid_args(routes=[{"path": "events", "method": "GET"}, {"path": "events"}]),
            "routes[1].method is required: a string",
        ),
        (valid_args(stages=[{"alias": "dev"}]), "stages[0].name is required: a string"),
        (
            valid_args(stages=[stage(), {"name": "dev"}]),
            "stages[1].alias is required: a string",
        ),
        (
            valid_args(policy_statements=[{"resources": [TABLE]}]),
            "policy_statements[0].actions is required: a list of strings",
        ),
        (
            valid_args(policy_statements=[{"actions": ["s3:GetObject"]}]),
            "policy_statements[0].resources is required: a list of strings or Outputs",
        ),
    ],
)
def test_a_missing_required_key_is_named_by_its_path_with_what_it_takes(
    args: dict[str, Any], line: str
) -> None:
    assert refusal(args) == [line]


def test_every_missing_required_key_is_reported_at_once() -> None:
    assert refusal({}) == [
        CODE_REQUIRED,
        "handler is required: a string",
        "routes is required: a list of dicts (RouteArgs)",
        "stages is required: a list of dicts (StageArgs)",
    ]


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"routes": [{"path": 5, "method": "GET"}]}, "routes[0].path must be a string, got 5"),
        (
            {"routes": [{"path": "a", "method": None}]},
            "routes[0].method must be a string, got None",
        ),
        (
            {"routes": [{"path": "a", "method": "GET", "request_template": 5}]},
            "routes[0].request_template must be a string, got 5",
        ),
        ({"routes": {}}, "routes must be a list of dicts (RouteArgs), got {}"),
        ({"routes": ["events"]}, "routes[0] must be a dict (RouteArgs), got 'events'"),
        ({"stages": "dev"}, "stages must be a list of dicts (StageArgs), got 'dev'"),
        (
            {"stages": [stage(), stage(name="b", alias="b", canary_percent=None)]},
            "stages[1].canary_percent must be a number, got None",
        ),
        (
            {"stages": [stage(canary_percent="10")]},
            "stages[0].canary_percent must be a number, got '10'",
        ),
        (
            {"stages": [stage(canary_percent=True)]},
            "stages[0].canary_percent must be a number, got True",
        ),
        (
            {"stages": [stage(stable_version=3.5)]},
            "stages[0].stable_version must be a whole number, got 3.5",
        ),
        (
            {"stages": [stage(throttle_burst_limit=True)]},
            "stages[0].throttle_burst_limit must be a whole number, got True",
        ),
        (
            {"stages": [stage(canary_mode="lambda")]},
            "stages[0].canary_mode must be 'stage' or 'alias', got 'lambda'",
        ),
        (
            {"stages": [stage(canary_mode="Alias")]},
            "stages[0].canary_mode must be 'stage' or 'alias', got 'Alias'",
        ),
        ({"memory_size": True}, "memory_size must be a whole number, got True"),
        ({"memory_size": 256.5}, "memory_size must be a whole number, got 256.5"),
        ({"timeout": "10"}, "timeout must be a whole number, got '10'"),
        ({"log_retention_days": None}, "log_retention_days must be a whole number, got None"),
        ({"runtime": 3.13}, "runtime must be a string, got 3.13"),
        ({"api_key_required": "false"}, "api_key_required must be true or false, got 'false'"),
        ({"api_key_required": 1}, "api_key_required must be true or false, got 1"),
        ({"code": "function/"}, "code must be a pulumi.Archive, got 'function/'"),
        ({"handler": None}, "handler must be a string, got None"),
        (
            {"environment": ["TABLE"]},
            "environment must be a dict of names to strings or Outputs, got ['TABLE']",
        ),
        (
            {"environment": {"TABLE": 5}},
            "environment['TABLE'] must be a string or an Output, got 5",
        ),
        ({"environment": {5: "x"}}, "environment keys must be strings, got 5"),
        (
            {"policy_statements": [statement(actions="s3:GetObject")]},
            "policy_statements[0].actions must be a list of strings, got 's3:GetObject'",
        ),
        (
            {"policy_statements": [statement(resources=[None])]},
            "policy_statements[0].resources[0] must be a string or an Output, got None",
        ),
        ({"alarm_actions": [5]}, "alarm_actions[0] must be a string or an Output, got 5"),
    ],
)
def test_a_wrong_type_is_named_by_its_path_with_the_type_it_takes(
    overrides: dict[str, Any], line: str
) -> None:
    assert refusal(valid_args(**overrides)) == [line]


def test_args_that_are_no_dict_are_refused() -> None:
    assert refusal([]) == ["args must be a dict (VersionedLambdaApiArgs), got []"]


def test_a_long_wrong_value_is_shortened_in_the_message() -> None:
    (line,) = refusal(valid_args(routes={"path": "x" * 200}))
    assert line.startswith("routes must be a list of dicts (RouteArgs), got {'path': 'xxx")
    assert line.endswith("...")
    assert len(line) < 150


def test_an_output_where_the_value_must_be_known_when_the_program_runs() -> None:
    (line,) = refusal(valid_args(memory_size=pulumi.Output.from_input(512)))
    assert line.startswith("memory_size must be a whole number, got an Output: it must be known")


def test_outputs_and_awaitables_are_taken_on_trust_where_the_type_is_an_input() -> None:
    table_name = pulumi.Output.from_input("events")
    pending: asyncio.Future[str] = asyncio.get_event_loop().create_future()
    role = pulumi.Output.from_input(TABLE)
    topic = pulumi.Output.from_input("arn:aws:sns:us-east-1:123456789012:pager")
    plan = parse(
        valid_args(
            environment={"TABLE_NAME": table_name, "MODE": pending},
            policy_statements=[statement(resources=[role])],
            alarm_actions=[topic],
        )
    )
    assert plan.environment == {"TABLE_NAME": table_name, "MODE": pending}
    assert plan.policy_statements[0]["resources"] == [role]
    assert plan.alarm_actions == [topic]
    pending.cancel()


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"handlr": "handler.handler"}, "args has no key 'handlr'; did you mean 'handler'?"),
        ({"memory_sise": 512}, "args has no key 'memory_sise'; did you mean 'memory_size'?"),
        (
            {"policy_statement": []},
            "args has no key 'policy_statement'; did you mean 'policy_statements'?",
        ),
        (
            {"routes": [{"path": "events", "method": "GET", "methd": "POST"}]},
            "routes[0] has no key 'methd'; did you mean 'method'?",
        ),
        (
            {"routes": [{"path": "events", "method": "GET", "request_templte": "{}"}]},
            "routes[0] has no key 'request_templte'; did you mean 'request_template'?",
        ),
        (
            {"stages": [stage(canary_precent=10)]},
            "stages[0] has no key 'canary_precent'; did you mean 'canary_percent'?",
        ),
        (
            {"stages": [stage(), stage(name="b", alias="b", stable_verison=3)]},
            "stages[1] has no key 'stable_verison'; did you mean 'stable_version'?",
        ),
        (
            {"policy_statements": [statement(resource=[TABLE])]},
            "policy_statements[0] has no key 'resource'; did you mean 'resources'?",
        ),
        ({"colour": "blue"}, f"args has no key 'colour'; its keys are {ROOT_KEYS}"),
    ],
)
def test_an_unknown_key_is_refused_with_the_closest_known_key(
    overrides: dict[str, Any], line: str
) -> None:
    assert refusal(valid_args(**overrides)) == [line]


def test_every_shape_problem_is_reported_at_once_in_the_order_of_the_typeddicts() -> None:
    args = valid_args(
        routes=[{"path": 5, "method": "GET"}, {"pth": "orders"}],
        stages=[stage(canary_precent=10), stage(name="b", alias="b", canary_percent=None)],
        memory_size=True,
        handlr="handler.handler",
    )
    del args["handler"]
    assert refusal(args) == [
        "handler is required: a string",
        "routes[0].path must be a string, got 5",
        "routes[1].path is required: a string",
        "routes[1].method is required: a string",
        "routes[1] has no key 'pth'; did you mean 'path'?",
        "stages[0] has no key 'canary_precent'; did you mean 'canary_percent'?",
        "stages[1].canary_percent must be a number, got None",
        "memory_size must be a whole number, got True",
        "args has no key 'handlr'; did you mean 'handler'?",
    ]


def test_the_shape_is_judged_before_any_value() -> None:
    """A memory size out of range is a value problem: the mistyped path is reported alone."""
    assert refusal(valid_args(memory_size=64, routes=[{"path": 5, "method": "GET"}])) == [
        "routes[0].path must be a string, got 5"
    ]


def test_whole_floats_are_whole_numbers_as_pulumi_carries_them_between_languages() -> None:
    plan = parse(
        valid_args(
            memory_size=512.0,
            timeout=20.0,
            log_retention_days=90.0,
            stages=[stage(stable_version=3.0, throttle_burst_limit=200.0)],
        )
    )
    assert (plan.memory_size, plan.timeout, plan.log_retention_days) == (512, 20, 90)
    assert (plan.stages[0].stable_version, plan.stages[0].throttle_burst_limit) == (3, 200)
    assert all(
        type(number) is int
        for number in (
            plan.memory_size,
            plan.timeout,
            plan.log_retention_days,
            plan.stages[0].stable_version,
            plan.stages[0].throttle_burst_limit,
        )
    )


def test_numbers_may_be_ints_where_decimals_are_allowed() -> None:
    plan = parse(valid_args(stages=[stage(canary_percent=10, throttle_rate_limit=20)]))
    assert (plan.stages[0].canary_percent, plan.stages[0].throttle_rate_limit) == (10, 20)


# --- Values AWS refuses ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RESERVED_ENVIRONMENT_VARIABLES))
def test_environment_variables_lambda_reserves_are_refused(name: str) -> None:
    assert refusal(valid_args(environment={"TABLE_NAME": "events", name: "x"})) == [
        f"environment[{name!r}] is reserved: Lambda sets it in every function and refuses it "
        "in the function's configuration"
    ]


@pytest.mark.parametrize("name", ["my-var", "A", "1ABC", "_PRIVATE", "MY VAR", "ÉTAT", "A.B", ""])
def test_environment_variable_names_lambda_refuses_are_refused(name: str) -> None:
    assert refusal(valid_args(environment={name: "x"})) == [
        f"environment[{name!r}] is not a name Lambda accepts: a letter followed by at least "
        "one letter, digit or '_'"
    ]


@pytest.mark.parametrize(
    "name", ["TABLE_NAME", "aB", "a_1", "LANG", "PATH", "AWS_LAMBDA_EXEC_WRAPPER", "AWS_REGION_2"]
)
def test_environment_variable_names_lambda_accepts_pass(name: str) -> None:
    assert parse(valid_args(environment={name: "x"})).environment == {name: "x"}


def test_environment_variables_may_fill_4_kb_but_no_more() -> None:
    # Names and values count: 3 + 4093 bytes is Lambda's limit exactly.
    assert parse(valid_args(environment={"BIG": "x" * 4093})).environment["BIG"] == "x" * 4093
    assert refusal(valid_args(environment={"BIG": "x" * 4094})) == [
        "environment must hold at most 4096 bytes of names and values (Lambda's 4 KB), got 4097"
    ]
    # Non-ASCII text counts by its UTF-8 bytes.
    assert refusal(valid_args(environment={"BIG": "é" * 2047})) == [
        "environment must hold at most 4096 bytes of names and values (Lambda's 4 KB), got 4097"
    ]


def test_an_output_counts_for_its_name_only_until_it_is_known() -> None:
    unknown = pulumi.Output.from_input("x" * 5000)
    assert parse(valid_args(environment={"BIG": unknown})).environment == {"BIG": unknown}


@pytest.mark.parametrize(
    "handler", ["handler.handler", "pkg/mod.fn", "pkg.mod.fn", "a.b", "h" * 126 + ".f"]
)
def test_handlers_lambda_and_the_python_runtime_accept(handler: str) -> None:
    assert parse(valid_args(handler=handler)).handler == handler


@pytest.mark.parametrize(
    "handler",
    [
        "handler handler",
        "handler.handler ",
        "handler.\thandler",
        "handler",
        ".handler",
        "handler.",
        "",
        "h" * 127 + ".f",
    ],
)
def test_handlers_lambda_or_the_python_runtime_refuse(handler: str) -> None:
    assert refusal(valid_args(handler=handler)) == [
        "handler must be 'module.function' such as 'handler.handler', at most 128 characters "
        f"without spaces, got {handler!r}"
    ]


def test_a_policy_statement_without_resources_is_refused() -> None:
    assert refusal(valid_args(policy_statements=[statement(), statement(resources=[])])) == [
        "policy_statements[1].resources must list at least one ARN"
    ]


@pytest.mark.parametrize(
    "resource", ["table/events", "events", "arn:aws:dynamodb:table/events", "arn:aws:s3", " *"]
)
def test_a_resource_iam_would_not_read_as_an_arn_is_refused(resource: str) -> None:
    assert refusal(valid_args(policy_statements=[statement(resources=[TABLE, resource])])) == [
        "policy_statements[0].resources[1] must be an ARN "
        f"(arn:partition:service:region:account:resource) or '*', as IAM requires, got {resource!r}"
    ]


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        TABLE,
        "arn:aws:s3:::bucket/*",
        "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/events/index/*",
        "arn:aws:dynamodb:*:*:table/events-*",
    ],
)
def test_resources_iam_accepts_pass(resource: str) -> None:
    plan = parse(valid_args(policy_statements=[statement(resources=[resource])]))
    assert plan.policy_statements[0]["resources"] == [resource]


# --- What the plan carries ---------------------------------------------------------------------


def test_the_plan_carries_the_function_inputs_for_the_component_to_use() -> None:
    code = pulumi.AssetArchive({})
    plan = parse(valid_args(code=code, environment={"TABLE_NAME": "events"}))
    assert plan.code is code
    assert plan.handler == "handler.handler"
    assert plan.environment == {"TABLE_NAME": "events"}
    assert parse(valid_args()).environment == {}


# --- Where the code comes from: an archive or a folder -----------------------------------------


def write_function(folder: Path) -> Path:
    (folder / "helpers").mkdir(parents=True)
    (folder / "handler.py").write_text("def handler(event, context): ...\n")
    (folder / "helpers" / "__init__.py").write_text("")
    (folder / "tests").mkdir()
    (folder / "tests" / "test_handler.py").write_text("def test(): ...\n")
    return folder


def archived_files(archive: pulumi.Archive) -> dict[str, str]:
    assert isinstance(archive, pulumi.AssetArchive)
    files: dict[str, str] = {}
    for name, asset in archive.assets.items():
        assert isinstance(asset, pulumi.FileAsset)
        files[name] = str(asset.path)
    return files


def test_code_path_is_archived_like_function_code_archive(tmp_path: Path) -> None:
    folder = write_function(tmp_path / "function")
    plan = parse(without(valid_args(code_path=str(folder)), "code"))
    assert archived_files(plan.code) == archived_files(function_code_archive(folder))
    assert sorted(archived_files(plan.code)) == ["handler.py", "helpers/__init__.py"]


def test_a_relative_code_path_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_function(tmp_path / "function")
    monkeypatch.chdir(tmp_path)
    plan = parse(without(valid_args(code_path="function"), "code"))
    assert sorted(archived_files(plan.code)) == ["handler.py", "helpers/__init__.py"]


def test_code_and_code_path_together_are_refused_with_the_other_problems(tmp_path: Path) -> None:
    folder = write_function(tmp_path / "function")
    assert refusal(valid_args(code_path=str(folder), handler=None)) == [
        "code and code_path are both set; give exactly one: the function's code as an archive "
        "(code) or its source folder (code_path)",
        "handler must be a string, got None",
    ]


@pytest.mark.parametrize(
    ("code_path", "line"),
    [
        (5, "code_path must be a string, got 5"),
        ("", "code_path must name the function's source folder, got ''"),
        ("  ", "code_path must name the function's source folder, got '  '"),
    ],
)
def test_a_code_path_that_is_no_path_is_refused(code_path: object, line: str) -> None:
    assert refusal(without(valid_args(code_path=code_path), "code")) == [line]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (None, "does not exist"),
        ({"notes.txt": "todo"}, r"holds no \.py files"),
    ],
    ids=["missing", "no-sources"],
)
def test_a_code_path_without_sources_is_refused_naming_the_key_and_folder(
    tmp_path: Path, files: dict[str, str] | None, message: str
) -> None:
    folder = tmp_path / "function"
    for name, content in (files or {}).items():
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        parse(without(valid_args(code_path=str(folder)), "code"))
    assert str(raised.value).startswith(f"code_path: function source folder {folder} ")
    assert "resolved against the working directory" in str(raised.value)


@pytest.mark.parametrize("mode", [CanaryMode.ALIAS, "alias"])
def test_canary_mode_takes_the_enum_member_or_its_value(mode: str) -> None:
    (planned,) = parse(valid_args(stages=[stage(canary_mode=mode)])).stages
    assert planned.canary_mode is CanaryMode.ALIAS
    # Comparisons and messages with the plain string keep working.
    as_text: str = planned.canary_mode
    assert as_text == "alias"
    assert f"{planned.canary_mode}" == "alias"


def test_canary_mode_defaults_to_stage() -> None:
    (planned,) = parse(valid_args()).stages
    assert planned.canary_mode is CanaryMode.STAGE
    assert component_args.DEFAULT_CANARY_MODE is CanaryMode.STAGE


# --- Typing rules: the component can be published to other Pulumi languages --------------------


def annotations_of(typed_dict: Any) -> dict[str, Any]:
    return dict(typed_dict.__annotations__)


def nested_hints(hint: Any) -> list[Any]:
    """``hint`` and every type inside it, pulumi.Input's Output[T] reference excepted."""
    found = [hint]
    for inner in typing.get_args(hint):
        if not isinstance(inner, ForwardRef):
            found += nested_hints(inner)
    return found


ARG_TYPES = (
    component_args.VersionedLambdaApiArgs,
    component_args.RouteArgs,
    component_args.StageArgs,
    component_args.PolicyStatementArgs,
)


@pytest.mark.parametrize("typed_dict", ARG_TYPES, ids=lambda typed_dict: typed_dict.__name__)
def test_arg_annotations_are_real_types_with_no_union_but_inputs_and_optionals(
    typed_dict: Any,
) -> None:
    """Pulumi's analyzer reads the annotations unevaluated: a string (``from __future__ import
    annotations``) or a union it cannot publish fails the schema."""
    for name, hint in annotations_of(typed_dict).items():
        assert not isinstance(hint, str | ForwardRef), name
        for inner in nested_hints(hint):
            if typing.get_origin(inner) not in (typing.Union, types.UnionType):
                continue
            members = typing.get_args(inner)
            is_input = any(typing.get_origin(member) is Awaitable for member in members)
            is_optional = len(members) == 2 and type(None) in members
            assert is_input or is_optional, f"{typed_dict.__name__}.{name}: {inner}"


class _Published(pulumi.ComponentResource):
    """Stands in for the component as Pulumi's analyzer and provider see it: only the
    annotation of ``args`` matters."""

    def __init__(
        self,
        name: str,
        args: VersionedLambdaApiArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("event-logger:index:Published", name, None, opts)


def test_pulumis_analyzer_publishes_the_args_with_canary_mode_as_a_string_enum() -> None:
    analyzed = Analyzer("event-logger").analyze([_Published])
    inputs = analyzed["component_definitions"]["_Published"].inputs
    required = {name for name, prop in inputs.items() if not prop.optional}
    # code and code_path: exactly one, which a schema cannot say; parse_args checks it.
    assert required == {"handler", "routes", "stages"}
    assert inputs["codePath"].type is not None
    assert inputs["codePath"].type.value == "string"
    assert inputs["code"].ref == "pulumi.json#/Archive"
    types_ = analyzed["type_definitions"]
    assert set(types_) == {"RouteArgs", "StageArgs", "CanaryMode", "PolicyStatementArgs"}
    canary_mode = types_["CanaryMode"]
    assert canary_mode.type is not None
    assert canary_mode.type.value == "string"
    assert [(member.name, member.value) for member in canary_mode.enum or []] == [
        ("STAGE", "stage"),
        ("ALIAS", "alias"),
    ]
    assert types_["StageArgs"].properties["canaryMode"].ref == (
        "#/types/event-logger:index:CanaryMode"
    )


def test_args_from_another_language_parse_as_pulumis_provider_hands_them_over() -> None:
    """Camel-cased names, numbers as doubles, the enum as its value: the provider maps them
    to snake_case and a CanaryMode, and the numbers stay doubles."""
    provider = ComponentProvider([_Published], "event-logger")
    mapped = provider.map_inputs(
        {
            "code": pulumi.AssetArchive({}),
            "handler": "handler.handler",
            "routes": [{"path": "events", "method": "GET"}],
            "stages": [
                {
                    "name": "prod",
                    "alias": "prod",
                    "canaryPercent": 10.0,
                    "stableVersion": 3.0,
                    "canaryMode": "alias",
                }
            ],
            "memorySize": 512.0,
            "logRetentionDays": 90.0,
        },
        provider._component_defs["_Published"],
    )
    plan = parse(dict(mapped))
    assert (plan.memory_size, plan.log_retention_days) == (512, 90)
    assert plan.stages[0].stable_version == 3
    assert plan.stages[0].canary_mode is CanaryMode.ALIAS


# --- Nothing is registered when the args are refused ------------------------------------------


def test_refused_args_leave_nothing_registered() -> None:
    """Without a handler the component once registered its log group, role, policy and REST
    API before failing."""
    mocks = start_mocks(PROJECT, "dev", {})
    bad_args = without(valid_args(stages=[stage(canary_precent=10)]), "handler")

    @pulumi.runtime.test
    def program() -> None:
        with pytest.raises(ConfigError) as raised:
            VersionedLambdaApi("api", bad_args)  # type: ignore[arg-type]
        assert str(raised.value).splitlines() == [
            "handler is required: a string",
            "stages[0] has no key 'canary_precent'; did you mean 'canary_percent'?",
        ]

    program()
    assert mocks.graph.resources == {}
