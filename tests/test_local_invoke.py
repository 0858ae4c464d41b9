"""Lambda's Invoke as the local API answers it, as plain functions: which alias and version a
call runs, Lambda's refusals, the reply's headers, the runtime processes started so that every
alias can be invoked, the log line; and the local check's command line. End to end, through
boto3 and the release tool's check, in tests/test_local_api.py.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest

from local_api import check, lambda_invoke
from local_api.lambda_invoke import LambdaError, Target
from local_api.runtime_api import InvocationResult
from local_api.stack import Alias, LocalStack, local_stack
from tests.conftest import ROOT
from versioned_lambda_api.analysis.plan import run_with_assumed_versions


@pytest.fixture(scope="module")
def pinned() -> LocalStack:
    """Stack dev right after a deploy with stableVersion 1: the canary alias on v2, at 0%."""
    return local_stack(run_with_assumed_versions(ROOT, "dev", {"stableVersion": "1"}).graph)


def invoke_path(function_name: str) -> str:
    return f"/2015-03-31/functions/{function_name}/invocations"


def target(
    stack: LocalStack,
    function_name: str,
    query: str = "",
    invocation_type: str | None = None,
    draw: float = 0.0,
) -> Target | LambdaError:
    return lambda_invoke.target(
        stack,
        invoke_path(function_name),
        query,
        invocation_type,
        running={"1", "2"},
        draw=draw,
    )


def test_an_alias_runs_the_version_it_points_to_and_a_version_number_itself(
    pinned: LocalStack,
) -> None:
    name = pinned.function.name
    assert target(pinned, name, "Qualifier=dev-canary") == Target("dev-canary", "dev-canary", "2")
    assert target(pinned, name, "Qualifier=dev") == Target("dev", "dev", "1")
    assert target(pinned, name, "Qualifier=1") == Target("1", None, "1")
    # An alias on a version that has no process (a server started by hand) is not found.
    refused = lambda_invoke.target(
        pinned, invoke_path(name), "Qualifier=dev-canary", None, running={"1"}, draw=0.0
    )
    assert isinstance(refused, LambdaError)
    assert refused.status == 404


@pytest.mark.parametrize(
    "named",
    [
        "{name}:dev-canary",
        "{arn}:dev-canary",
        "123456789012:function:{name}:dev-canary",
        # URL-encoded, as botocore sends the ':' of a path parameter.
        "{name}%3Adev-canary",
    ],
)
def test_the_function_name_may_carry_the_qualifier_in_any_of_lambdas_forms(
    pinned: LocalStack, named: str
) -> None:
    function_name = named.format(name=pinned.function.name, arn=pinned.function.arn)
    assert target(pinned, function_name) == Target("dev-canary", "dev-canary", "2")
    # The same qualifier given twice is one.
    assert target(pinned, function_name, "Qualifier=dev-canary") == Target(
        "dev-canary", "dev-canary", "2"
    )


def test_a_weighted_alias_sends_each_version_its_weight(pinned: LocalStack) -> None:
    weighted = replace(pinned, aliases={**pinned.aliases, "dev": Alias("dev", "1", {"2": 0.3})})
    name = pinned.function.name
    versions = [target(weighted, name, "Qualifier=dev", draw=d) for d in (0.0, 0.69, 0.71, 0.99)]
    assert [t.version for t in versions if isinstance(t, Target)] == ["1", "1", "2", "2"]


@pytest.mark.parametrize(
    ("function_name", "query", "message"),
    [
        ("{name}", "Qualifier=nope", "Function not found: {arn}:nope"),
        # A version the stack published once but no alias points to: no code runs it here.
        ("{name}", "Qualifier=7", "Function not found: {arn}:7"),
        ("other", "Qualifier=dev", "Function not found: {region_arn}other"),
        # The function's name in another account is another function.
        ("{other_account}{name}", "Qualifier=dev", "Function not found: {other_account}{name}"),
    ],
)  # fmt: skip
def test_an_unknown_function_or_qualifier_is_resource_not_found(
    pinned: LocalStack, function_name: str, query: str, message: str
) -> None:
    names = {
        "name": pinned.function.name,
        "arn": pinned.function.arn,
        "region_arn": "arn:aws:lambda:us-east-1:123456789012:function:",
        "other_account": "arn:aws:lambda:us-east-1:210987654321:function:",
    }
    refused = target(pinned, function_name.format(**names), query)
    assert refused == LambdaError(404, "ResourceNotFoundException", message.format(**names))
    answer = lambda_invoke.refusal(refused)
    assert (answer.status, answer.headers, answer.invoked) == (
        404,
        {"x-amzn-ErrorType": "ResourceNotFoundException"},
        None,
    )
    assert json.loads(answer.body) == {"Type": "User", "Message": refused.message}


@pytest.mark.parametrize(
    ("function_name", "query", "invocation_type", "says"),
    [
        ("{name}:dev", "Qualifier=dev-canary", None, "does not match the specified qualifier"),
        ("{name}", "Qualifier=dev", "Event", "serves InvocationType RequestResponse only"),
        ("{name}", "Qualifier=dev", "DryRun", "got 'DryRun'"),
        ("{name}", "", None, "not $LATEST: name one as Qualifier (aliases: dev, dev-canary"),
        ("{name}", "Qualifier=$LATEST", None, "versions: 1, 2)"),
    ],
)
def test_what_the_local_api_does_not_run_is_a_400_that_says_why(
    pinned: LocalStack, function_name: str, query: str, invocation_type: str | None, says: str
) -> None:
    refused = target(
        pinned, function_name.format(name=pinned.function.name), query, invocation_type
    )
    assert isinstance(refused, LambdaError)
    assert (refused.status, refused.error_type) == (400, "InvalidParameterValueException")
    assert says in refused.message


def test_a_payload_over_6_mb_or_not_json_is_refused_before_anything_runs() -> None:
    assert lambda_invoke.too_large(lambda_invoke.MAX_PAYLOAD_BYTES) is None
    refused = lambda_invoke.too_large(lambda_invoke.MAX_PAYLOAD_BYTES + 1)
    assert refused is not None
    assert (refused.status, refused.error_type) == (413, "RequestEntityTooLargeException")
    assert lambda_invoke.payload_problem(b'{"a": [1]}') is None
    for payload in (b"not json", b""):
        problem = lambda_invoke.payload_problem(payload)
        assert problem is not None
        assert (problem.status, problem.error_type) == (400, "InvalidRequestContentException")


def test_a_reply_carries_the_executed_version_and_a_failure_is_unhandled() -> None:
    ran = Target("dev-canary", "dev-canary", "2")
    ok = InvocationResult("r-1", b'{"statusCode": 200}', None, 0.01)
    failed = InvocationResult("r-2", b'{"errorType": "RuntimeError"}', "RuntimeError", 0.01)
    assert lambda_invoke.reply(ran, ok) == lambda_invoke.Answer(
        200, b'{"statusCode": 200}', {"X-Amz-Executed-Version": "2"}, "r-1", ran
    )
    assert lambda_invoke.reply(ran, failed).headers == {
        "X-Amz-Executed-Version": "2",
        "X-Amz-Function-Error": "Unhandled",
    }
    assert lambda_invoke.reply(ran, failed).status == 200  # Lambda's status is not the function's


def test_lambdas_path_is_told_apart_from_a_stages() -> None:
    assert lambda_invoke.is_invoke("POST", invoke_path("f"))
    assert not lambda_invoke.is_invoke("GET", invoke_path("f"))
    assert not lambda_invoke.is_invoke("POST", "/2015-03-31/functions/f/invocations/more")
    assert not lambda_invoke.is_invoke("POST", "/dev/events")


def test_every_alias_gets_a_process_even_at_share_0(pinned: LocalStack) -> None:
    # The stage sends nothing to the canary at 0%, but its check invokes it.
    assert lambda_invoke.runtime_processes(pinned) == [("dev", "1"), ("dev-canary", "2")]
    # Two aliases on one version share its process, as they share Lambda's environments.
    both_on_1 = replace(pinned, aliases={**pinned.aliases, "dev-canary": Alias("dev-canary", "1")})
    assert lambda_invoke.runtime_processes(both_on_1) == [("dev", "1")]


def test_the_log_line() -> None:
    ran = Target("1", None, "1")
    assert lambda_invoke.log_line("1", status=200, invoked=ran, ms=3.4, request_id="r") == (
        "INVOKE 1 200 - v1 3ms r"
    )
    assert lambda_invoke.log_line("", status=400, invoked=None, ms=0, request_id="r") == (
        "INVOKE - 400 - - 0ms r"
    )


# --- The local check's command line ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "status", "says"),
    [
        (["--stack", "qa"], 2, "unknown stack 'qa': there is no Pulumi.qa.yaml"),
        (["--stack", "dev", "--set", "stableVersion"], 2, "--set takes KEY=VALUE"),
        (["--stack", "dev", "--port", "0"], 2, "--port takes 1 to 65535; got 0"),
        (["--stack", "dev", "--port", "{free}"], 1, "nothing listens on 127.0.0.1:{free}"),
    ],
)
def test_the_local_check_refuses_what_it_cannot_run(
    argv: list[str], status: int, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    free = str(_free_port())
    assert check.main([a.format(free=free) for a in argv], ROOT) == status
    captured = capsys.readouterr()
    assert says.format(free=free) in captured.err
    assert "pre-traffic check" not in captured.out  # nothing was invoked
