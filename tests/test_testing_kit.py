"""The test kit as another program uses it: run a program folder for a stack, then assert.

The mocks name resources as pulumi-aws does and refuse what it or AWS would refuse; the limits
themselves are tested against their sources in test_aws_names.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pulumi
import pytest
import yaml

from tests.conftest import ROOT
from versioned_lambda_api import ConfigError
from versioned_lambda_api.testing import (
    ACCOUNT,
    REGION,
    ProgramError,
    execute_program,
    run_program,
    stack_config,
    start_program_mocks,
)

CONSUMER_MAIN = """
from pathlib import Path

import pulumi
from versioned_lambda_api import VersionedLambdaApi, function_code_archive

config = pulumi.Config()
api = VersionedLambdaApi(
    "orders",
    {
        "code": function_code_archive(Path(__file__).parent / "src"),
        "handler": "app.handler",
        "routes": [{"path": "orders/{id}", "method": "GET"}],
        "stages": [
            {
                "name": "live",
                "alias": config.require("alias"),
                "canary_percent": float(config.require("share")),
                "stable_version": int(config.require("pinned")),
            }
        ],
    },
)
pulumi.export("urls", api.stage_urls)
"""

FUNCTION = "aws:lambda/function:Function"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/fn"
HEX7 = "[0-9a-f]{7}"


@pytest.fixture
def consumer(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "__main__.py").write_text(CONSUMER_MAIN)
    (tmp_path / "Pulumi.yaml").write_text(
        textwrap.dedent(
            """\
            name: orders
            runtime: python
            config:
              share:
                type: string
                default: "5"
            """
        )
    )
    (tmp_path / "Pulumi.live.yaml").write_text(
        "config:\n  orders:alias: current\n  orders:pinned: 7\n"
    )
    return tmp_path


def program(folder: Path, main: str, config: dict[str, str] | None = None, **files: str) -> Path:
    """A program folder with stack ``test``: ``main`` is its ``__main__.py``; ``files`` are
    modules beside it (``helper="..."`` writes ``helper.py``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text("name: kit\nruntime: python\n")
    (folder / "Pulumi.test.yaml").write_text(yaml.safe_dump({"config": config or {}}))
    (folder / "__main__.py").write_text(textwrap.dedent(main))
    for module, text in files.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(text))
    return folder


def one_resource(folder: Path, constructor: str) -> Path:
    """A program registering ``constructor`` (``aws.<module>.<Type>(...)``), exporting it."""
    return program(
        folder,
        f"""
        import pulumi
        import pulumi_aws as aws

        resource = {constructor}
        pulumi.export("id", resource.id)
        """,
    )


def test_the_documented_example_asserts_prods_canary_in_a_few_lines() -> None:
    run = run_program(ROOT, "prod", {"stableVersion": "3"}, published_version=4)
    canary = next(row for row in run.routing() if row.stage == "prod" and row.role == "canary")
    assert (canary.alias, canary.share) == ("prod-canary", 10)
    assert not [f for f in run.findings() if f.severity == "error"]


def test_another_program_runs_with_its_own_project_defaults_and_stack(consumer: Path) -> None:
    assert stack_config(consumer, "live") == {
        "orders:share": "5",
        "orders:alias": "current",
        "orders:pinned": "7",
    }
    run = run_program(consumer, "live", published_version=9)
    assert [(r.stage, r.role, r.share, r.alias, r.version) for r in run.routing()] == [
        ("live", "live", 95.0, "current", "7"),
        ("live", "canary", 5.0, "current-canary", "9"),
    ]
    assert run.findings() == []
    assert set(run.exports["urls"]) == {"live"}


def test_overrides_win_over_the_stack_file(consumer: Path) -> None:
    run = run_program(consumer, "live", {"share": "0"}, published_version=7)
    assert [(r.role, r.share) for r in run.routing()] == [("live", 100.0)]


def test_the_program_runs_in_its_folder_and_leaves_no_trace(consumer: Path) -> None:
    before_cwd, before_path = os.getcwd(), list(sys.path)
    run_program(consumer, "live", published_version=7)
    assert (os.getcwd(), sys.path) == (before_cwd, before_path)


def test_a_failing_program_raises_its_reason_and_leaves_the_graph_to_inspect() -> None:
    mocks = start_program_mocks(ROOT, "prod", {"canaryPercent": "-1"})
    with pytest.raises(ProgramError, match="canaryPercent") as raised:
        execute_program(ROOT, mocks)
    # A RunError: Pulumi, and the plan, print it without a traceback.
    assert isinstance(raised.value, pulumi.RunError)
    assert isinstance(raised.value.__cause__, ConfigError)
    assert "Traceback" not in str(raised.value)
    assert mocks.graph.resources == {}


def test_a_missing_stack_file_is_named(consumer: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Pulumi\.staging\.yaml does not exist"):
        run_program(consumer, "staging")


def test_alarms_and_dashboards_get_the_arns_aws_would_give_them() -> None:
    run = run_program(ROOT, "prod", published_version=4)
    alarms = run.graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    for alarm in alarms:
        name = alarm.outputs["name"]
        assert alarm.id == name
        assert alarm.outputs["arn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    dashboard = run.graph.one("aws:cloudwatch/dashboard:Dashboard")
    name = dashboard.inputs["dashboardName"]
    assert dashboard.id == name
    assert dashboard.outputs["dashboardArn"] == f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{name}"


def test_a_name_left_out_is_generated_as_the_provider_does_and_the_same_each_run(
    tmp_path: Path,
) -> None:
    folder = one_resource(tmp_path, f'aws.lambda_.Function("orders-function", role="{ROLE_ARN}")')
    first = run_program(folder, "test").graph.one(FUNCTION)
    assert re.fullmatch(f"orders-function-{HEX7}", first.outputs["name"])
    assert "name" not in first.inputs
    assert first.id == first.outputs["name"]
    assert first.outputs["arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{first.id}"
    assert run_program(folder, "test").graph.one(FUNCTION).outputs["name"] == first.id


def test_a_name_given_is_the_physical_name(tmp_path: Path) -> None:
    folder = one_resource(tmp_path, f'aws.lambda_.Function("fn", name="orders", role="{ROLE_ARN}")')
    assert run_program(folder, "test").graph.one(FUNCTION).id == "orders"


def test_one_logical_name_may_serve_resources_of_different_types(tmp_path: Path) -> None:
    # Their URNs differ, so Pulumi allows it; the same type twice it refuses.
    folder = program(
        tmp_path,
        """
        import pulumi_aws as aws

        aws.sqs.Queue("orders")
        aws.sns.Topic("orders")
        """,
    )
    graph = run_program(folder, "test").graph
    assert graph.find("aws:sqs/queue:Queue", "orders") is not None
    assert graph.find("aws:sns/topic:Topic", "orders") is not None
    twice = program(
        tmp_path / "twice",
        """
        import pulumi_aws as aws

        aws.sqs.Queue("orders")
        aws.sqs.Queue("orders")
        """,
    )
    with pytest.raises(ProgramError, match="registered twice"):
        run_program(twice, "test")


def test_a_47_character_component_fits_the_function_name(tmp_path: Path) -> None:
    component = "c" * 47
    folder = one_resource(tmp_path, f'aws.lambda_.Function("{component}-function", role="x")')
    assert len(run_program(folder, "test").graph.one(FUNCTION).id) == 64


def test_a_48_character_component_fails_the_run_as_the_preview_would(tmp_path: Path) -> None:
    logical = "c" * 48 + "-function"
    folder = one_resource(tmp_path, f'aws.lambda_.Function("{logical}", role="x")')
    with pytest.raises(ProgramError) as raised:
        run_program(folder, "test")
    # Pulumi raises a failed registration from itself; the chain given ends.
    assert raised.value.__cause__ is not None
    assert raised.value.__cause__.__cause__ is None
    assert str(raised.value) == (
        f"{FUNCTION} resource '{logical}' has a problem: could not make instance of "
        f"'{FUNCTION}': name '{logical}-' plus 7 random chars is longer than maximum length 64 "
        "(the logical name is 57 characters; at most 56 fit)"
    )


def test_a_given_name_over_the_limit_names_its_length_and_the_limit(tmp_path: Path) -> None:
    role = "r" * 65
    folder = one_resource(
        tmp_path, f'aws.iam.Role("role", name="{role}", assume_role_policy="{{}}")'
    )
    with pytest.raises(ProgramError) as raised:
        run_program(folder, "test")
    assert str(raised.value) == (
        f"aws:iam/role:Role resource 'role' has a problem: name '{role}' is 65 characters long; "
        "aws:iam/role:Role allows at most 64"
    )


def permission(statement_id: str | None = None, logical: str = "invoke") -> str:
    given = f', statement_id="{statement_id}"' if statement_id is not None else ""
    return (
        f'aws.lambda_.Permission("{logical}", action="lambda:InvokeFunction", function="fn", '
        f'principal="apigateway.amazonaws.com"{given})'
    )


def test_a_statement_id_is_autonamed_from_the_logical_name_unless_given(tmp_path: Path) -> None:
    autonamed = run_program(one_resource(tmp_path / "a", permission()), "test")
    record = autonamed.graph.one("aws:lambda/permission:Permission")
    assert re.fullmatch(f"invoke-{HEX7}", record.outputs["statementId"])
    assert record.id == record.outputs["statementId"]
    given = run_program(one_resource(tmp_path / "b", permission("AllowProd")), "test")
    assert given.graph.one("aws:lambda/permission:Permission").id == "AllowProd"


@pytest.mark.parametrize("bad", ["/", "{", "."])
def test_a_statement_id_from_a_route_path_is_refused(tmp_path: Path, bad: str) -> None:
    logical = f"api-prod-live-GET-orders{bad}id-invoke"
    with pytest.raises(ProgramError, match="may contain only letters, digits, '-' and '_'"):
        run_program(one_resource(tmp_path, permission(logical=logical)), "test")


def test_a_statement_id_over_100_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"is 101 characters long; .* at most 100"):
        run_program(one_resource(tmp_path / "given", permission("s" * 101)), "test")
    with pytest.raises(ProgramError, match="maximum length 100"):
        run_program(one_resource(tmp_path / "auto", permission(logical="s" * 93)), "test")
    run_program(one_resource(tmp_path / "fits", permission(logical="s" * 92)), "test")


def test_a_dashboard_name_with_a_dot_is_refused(tmp_path: Path) -> None:
    folder = one_resource(
        tmp_path, 'aws.cloudwatch.Dashboard("d", dashboard_name="api.prod", dashboard_body="{}")'
    )
    with pytest.raises(ProgramError, match=r"dashboardName 'api\.prod' may contain only"):
        run_program(folder, "test")


REGIONAL_PROGRAM = """
import pulumi
import pulumi_aws as aws

fn = aws.lambda_.Function("fn", role="r", publish=True)
api = aws.apigateway.RestApi("api")
stage = aws.apigateway.Stage("stage", rest_api=api.id, deployment="d", stage_name="prod")
partition = aws.get_partition()
pulumi.export("function", fn.arn)
pulumi.export("invoke", fn.invoke_arn)
pulumi.export("execution", api.execution_arn)
pulumi.export("url", stage.invoke_url)
pulumi.export("partition", [partition.partition, partition.dns_suffix])
pulumi.export("region", aws.get_region().region)
pulumi.export("caller", aws.get_caller_identity().arn)
"""


@pytest.mark.parametrize(
    ("region", "partition", "dns_suffix"),
    [
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
        ("eu-west-1", "aws", "amazonaws.com"),
    ],
)
def test_arns_use_the_partition_of_the_configured_region(
    tmp_path: Path, region: str, partition: str, dns_suffix: str
) -> None:
    folder = program(tmp_path, REGIONAL_PROGRAM, {"aws:region": region})
    exports = run_program(folder, "test").exports
    api = exports["execution"].rpartition(":")[2]
    function = exports["function"]
    assert re.fullmatch(f"arn:{partition}:lambda:{region}:{ACCOUNT}:function:fn-{HEX7}", function)
    assert exports["invoke"] == (
        f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function}"
        "/invocations"
    )
    assert exports["execution"] == f"arn:{partition}:execute-api:{region}:{ACCOUNT}:{api}"
    assert exports["url"] == f"https://{api}.execute-api.{region}.{dns_suffix}/prod"
    assert exports["partition"] == [partition, dns_suffix]
    assert exports["region"] == region
    assert exports["caller"] == f"arn:{partition}:iam::{ACCOUNT}:user/test"


def test_without_a_region_the_program_deploys_to_the_default(tmp_path: Path) -> None:
    exports = run_program(program(tmp_path, REGIONAL_PROGRAM), "test").exports
    assert exports["region"] == REGION == "us-east-1"
    assert exports["partition"] == ["aws", "amazonaws.com"]


GET_FUNCTION_PROGRAM = """
import pulumi
import pulumi_aws as aws

config = pulumi.Config()
fn = aws.lambda_.Function("fn", role="r", publish=True)
alias = aws.lambda_.Alias("live", name="live", function_name=fn.name, function_version="2")
# Looked up once the alias exists.
registered = pulumi.Output.all(fn.name, alias.arn).apply(lambda values: values[0])
found = aws.lambda_.get_function_output(
    function_name=config.get("function") or registered, qualifier=config.get("qualifier")
)
pulumi.export("found", found.apply(lambda f: [f.version, f.qualified_arn, f.arn]))
pulumi.export("name", fn.name)
"""


@pytest.mark.parametrize(
    ("qualifier", "version", "qualified_suffix"),
    [
        ("3", "3", ":3"),
        ("4", "4", ":4"),
        ("1", "1", ":1"),
        (None, "$LATEST", ":$LATEST"),
        ("live", "2", ":live"),
    ],
)
def test_get_function_answers_for_a_published_version_or_an_alias(
    tmp_path: Path, qualifier: str | None, version: str, qualified_suffix: str
) -> None:
    config = {"kit:qualifier": qualifier} if qualifier else {}
    exports = run_program(
        program(tmp_path, GET_FUNCTION_PROGRAM, config), "test", published_version=4
    ).exports
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{exports['name']}"
    assert exports["found"] == [version, arn + qualified_suffix, arn]


@pytest.mark.parametrize(("qualifier", "failed"), [("5", "qualifier"), ("dev", "qualifier")])
def test_get_function_fails_like_aws_for_what_was_never_published(
    tmp_path: Path, qualifier: str, failed: str
) -> None:
    folder = program(tmp_path, GET_FUNCTION_PROGRAM, {"kit:qualifier": qualifier})
    with pytest.raises(ProgramError) as raised:
        run_program(folder, "test", published_version=4)
    message = str(raised.value)
    match = re.fullmatch(
        "invoke of aws:lambda/getFunction:getFunction failed: ResourceNotFoundException: "
        rf"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn-{HEX7}:(\S+) "
        rf"\({failed}\)",
        message,
    )
    assert match is not None, message
    assert match[1] == qualifier


def test_get_function_fails_for_a_function_the_program_did_not_register(tmp_path: Path) -> None:
    folder = program(tmp_path, GET_FUNCTION_PROGRAM, {"kit:function": "elsewhere"})
    with pytest.raises(ProgramError, match=r"Function not found: .*:function:elsewhere \("):
        run_program(folder, "test")


def test_each_function_publishes_its_own_version_when_told(tmp_path: Path) -> None:
    folder = program(
        tmp_path,
        """
        import pulumi_aws as aws

        aws.lambda_.Function("a", role="r", publish=True)
        aws.lambda_.Function("b", role="r", publish=True)
        aws.lambda_.Function("c", role="r")
        """,
    )
    mocks = start_program_mocks(folder, "test", published_version=2)
    mocks.published_versions["a"] = 7
    graph = execute_program(folder, mocks).graph
    assert {r.name: r.outputs["version"] for r in graph.of_type(FUNCTION)} == {
        "a": "7",
        "b": "2",
        "c": "$LATEST",
    }


def test_an_api_from_an_openapi_body_has_its_root_and_execution_arn(tmp_path: Path) -> None:
    body = json.dumps({"openapi": "3.0.1", "info": {"title": "t", "version": "1"}, "paths": {}})
    folder = one_resource(tmp_path, f"aws.apigateway.RestApi('api', body={body!r})")
    api = run_program(folder, "test").graph.one("aws:apigateway/restApi:RestApi")
    assert api.outputs["rootResourceId"]
    assert api.outputs["executionArn"] == f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api.id}"
    assert api.outputs["arn"] == f"arn:aws:apigateway:{REGION}::/restapis/{api.id}"
    assert re.fullmatch(f"api-{HEX7}", api.outputs["name"])
    assert json.loads(api.outputs["body"]) == json.loads(body)


HELPER_PROGRAM = """
import pulumi
import helper

pulumi.export("helper", helper.WHO)
"""


def test_each_program_imports_its_own_modules(tmp_path: Path) -> None:
    first = program(tmp_path / "a", HELPER_PROGRAM, helper="WHO = 'a'\n")
    second = program(tmp_path / "b", HELPER_PROGRAM, helper="WHO = 'b'\n")
    assert run_program(first, "test").exports["helper"] == "a"
    assert run_program(second, "test").exports["helper"] == "b"
    assert "helper" not in sys.modules


def test_a_relative_program_folder_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program(tmp_path / "programs" / "x", HELPER_PROGRAM, helper="WHO = 'x'\n")
    monkeypatch.chdir(tmp_path)
    run = run_program(Path("programs/x"), "test")
    assert run.exports["helper"] == "x"
    mocks = start_program_mocks(Path("programs/x"), "test")
    assert execute_program(Path("programs/x"), mocks).exports["helper"] == "x"


def test_a_program_error_says_what_was_raised_and_where_without_a_traceback(
    tmp_path: Path,
) -> None:
    folder = program(
        tmp_path,
        HELPER_PROGRAM,
        helper="""\
        SETTINGS = {}
        WHO = SETTINGS["who"]
        """,
    )
    with pytest.raises(ProgramError) as raised:
        run_program(folder, "test")
    assert str(raised.value) == "KeyError: 'who' (raised at helper.py, line 2)"
    assert isinstance(raised.value.__cause__, KeyError)
    # The failed program's module is forgotten too.
    assert "helper" not in sys.modules


def test_a_failing_program_prints_nothing(tmp_path: Path) -> None:
    # Outputs wait on the refused resource, and an invoke fails: both leave failed futures,
    # which asyncio reports when they are collected, at the latest as the process exits.
    folder = program(
        tmp_path / "failing",
        """
        import pulumi
        import pulumi_aws as aws

        fn = aws.lambda_.Function("f" * 60, role="r")
        pulumi.export("arn", fn.arn)
        alias = aws.lambda_.Alias("a", function_name=fn.name, function_version="1")
        pulumi.export("alias", alias.arn)
        pulumi.export("found", aws.lambda_.get_function_output(function_name="none").arn)
        """,
    )
    fine = program(tmp_path / "fine", "import pulumi\npulumi.export('fine', True)\n")
    # On a loop of its own, as each test's; a second run lets go of the failed one.
    script = textwrap.dedent(
        f"""
        import asyncio
        import gc
        from pathlib import Path
        from versioned_lambda_api.testing import ProgramError, run_program

        asyncio.set_event_loop(asyncio.new_event_loop())


        def run(folder):
            try:
                print(run_program(Path(folder), "test").exports)
            except ProgramError as error:
                print(error)


        run({str(folder)!r})
        run({str(fine)!r})
        gc.collect()
        """
    )
    ran = subprocess.run(  # noqa: S603 - this interpreter, a script of this test's own
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "has a problem" in ran.stdout
    assert "{'fine': True}" in ran.stdout
    assert ran.stderr == ""
