"""The local API's pure parts: what it reads from the stack's program run, API Gateway's
decisions per request (method, API key, content type, canary, weighted alias), the request log
line, and the command line's options and refusals (which start nothing)."""

from __future__ import annotations

import argparse
import copy
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local_api import __main__ as cli
from local_api import routing, tables
from local_api.routing import Invoke, decide, log_line, served_versions
from local_api.stack import (
    Alias,
    LocalStack,
    Route,
    Share,
    Stage,
    UnservableStackError,
    local_stack,
    source_folder,
)
from tests.conftest import ROOT
from versioned_lambda_api import api_spec
from versioned_lambda_api.analysis.graph import ResourceRecord
from versioned_lambda_api.analysis.plan import run_with_assumed_versions
from versioned_lambda_api.analysis.routing import REST_API

KEY = "k" * 40


@pytest.fixture
def dev_canary() -> LocalStack:
    """Stack dev with a canary: 30% to the newest version, the live alias pinned to 1."""
    run = run_with_assumed_versions(ROOT, "dev", {"canaryPercent": "30", "stableVersion": "1"})
    return local_stack(run.graph)


def route(
    method: str = "GET",
    *,
    templates: dict[str, str] | None = None,
    passthrough: str = "NEVER",
    api_key_required: bool = True,
) -> Route:
    return Route(
        path="events",
        method=method,
        request_templates={"application/json": "T"} if templates is None else templates,
        passthrough_behavior=passthrough,
        responses=api_spec.INTEGRATION_RESPONSES,
        api_key_required=api_key_required,
        qualifier="${stageVariables.lambdaAlias}",
    )


def stack(canary_percent: float = 25.0, *, weights: dict[str, float] | None = None) -> LocalStack:
    shares = [Share("live", 100 - canary_percent, {"lambdaAlias": "live"})]
    if canary_percent:
        shares.append(Share("canary", canary_percent, {"lambdaAlias": "live-canary"}))
    return LocalStack(
        stages=(Stage("dev", tuple(shares)),),
        routes=(route("GET"), route("POST")),
        function=None,  # type: ignore[arg-type]  # no decision reads it
        aliases={
            "live": Alias("live", "3", weights or {}),
            "live-canary": Alias("live-canary", "4"),
        },
        tables=(),
        api_key_id="key-id",
    )


def decision(
    local: LocalStack,
    method: str = "GET",
    path: str = "/dev/events",
    headers: dict[str, str] | None = None,
    draws: tuple[float, float] = (0.99, 0.0),
) -> Invoke | routing.GatewayAnswer:
    return decide(
        local,
        KEY,
        method=method,
        url_path=path,
        headers={"x-api-key": KEY} if headers is None else headers,
        draws=draws,
    )


# --- What the program run declares -----------------------------------------------------------


def test_the_stack_is_read_from_its_program_run(dev_canary: LocalStack) -> None:
    (stage,) = dev_canary.stages
    assert stage.name == "dev"
    assert [(s.role, s.percent, dict(s.stage_variables)) for s in stage.shares] == [
        ("live", 70.0, {"lambdaAlias": "dev"}),
        ("canary", 30.0, {"lambdaAlias": "dev-canary"}),
    ]
    assert {(r.method, r.path) for r in dev_canary.routes} == {
        ("GET", "events"),
        ("POST", "events"),
    }
    for read in dev_canary.routes:
        assert read.api_key_required
        assert read.passthrough_behavior == "NEVER"
        assert read.request_templates == {"application/json": api_spec.DEFAULT_REQUEST_TEMPLATE}
        assert set(read.responses) == set(api_spec.INTEGRATION_RESPONSES)
    assert {name: alias.version for name, alias in dev_canary.aliases.items()} == {
        "dev": "1",
        "dev-canary": "2",
    }
    function = dev_canary.function
    assert function.newest_version == "2"
    assert function.handler == "handler.handler"
    assert source_folder(function) == ROOT / "function"
    (table,) = dev_canary.tables
    assert function.environment["TABLE_NAME"] == table.name
    assert table.create_arguments["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert dev_canary.api_key_id


def test_a_canary_share_of_zero_sends_everything_live() -> None:
    local = local_stack(run_with_assumed_versions(ROOT, "dev", {}).graph)
    assert [share.role for share in local.stages[0].shares] == ["live"]
    assert served_versions(local) == [("dev", "1")]
    for draw in (0.0, 0.5, 0.999):
        answer = decide(
            local,
            "",
            method="POST",
            url_path="/dev/events",
            headers={"x-api-key": ""},
            draws=(draw, 0.0),
        )
        assert isinstance(answer, Invoke)
        assert (answer.alias, answer.version, answer.share.role) == ("dev", "1", "live")


def test_a_weighted_alias_runs_each_of_its_versions() -> None:
    local = local_stack(
        run_with_assumed_versions(ROOT, "prod", {"stableVersion": "3", "canaryMode": "alias"}).graph
    )
    assert served_versions(local) == [("prod", "3"), ("prod", "4")]
    assert routing.pick_version(local.aliases["prod"], 0.89) == "3"
    assert routing.pick_version(local.aliases["prod"], 0.91) == "4"


def test_what_it_cannot_serve_as_api_gateway_would_is_refused_by_name() -> None:
    graph = run_with_assumed_versions(ROOT, "dev", {}).graph
    api = graph.one(REST_API)
    body = json.loads(api.inputs["body"])

    def refusal(change: Callable[[dict[str, Any]], None]) -> str:
        changed = copy.deepcopy(body)
        change(changed)
        api.inputs["body"] = json.dumps(changed)
        with pytest.raises(UnservableStackError) as refused:
            local_stack(graph)
        return str(refused.value)

    def proxy(document: dict[str, Any]) -> None:
        document["paths"]["/events"]["get"]["x-amazon-apigateway-integration"]["type"] = "aws_proxy"

    def iam(document: dict[str, Any]) -> None:
        document["components"]["securitySchemes"]["api_key"]["x-amazon-apigateway-authtype"] = (
            "awsSigv4"
        )

    def path_parameter(document: dict[str, Any]) -> None:
        document["paths"]["/events/{id}"] = document["paths"].pop("/events")

    assert refusal(proxy) == (
        "GET /events's integration is AWS_PROXY; the local API serves AWS (non-proxy Lambda) "
        "integrations"
    )
    assert refusal(iam).startswith("GET /events uses AWS_IAM authorization")
    assert refusal(path_parameter).startswith("GET /events/{id}: the local API serves fixed paths")
    api.inputs["body"] = json.dumps(body)
    graph.add(ResourceRecord(REST_API, "second", {}, {}, "second-id"))
    with pytest.raises(UnservableStackError, match=r"^the stack declares 2 REST APIs"):
        local_stack(graph)


# --- API Gateway's decisions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/dev/nothing"),
        ("GET", "/prod/events"),
        ("GET", "/"),
        ("GET", "/dev"),
        ("DELETE", "/dev/events"),
        ("HEAD", "/dev/events"),
        ("GET", "/dev/events/extra"),
    ],
)
def test_a_missing_route_or_method_is_missing_authentication_token(method: str, path: str) -> None:
    # Without a key too: API Gateway looks for the method before it checks a key.
    for headers in ({"x-api-key": KEY}, {}):
        assert decision(stack(), method, path, headers) == routing.MISSING_AUTHENTICATION_TOKEN
    assert routing.MISSING_AUTHENTICATION_TOKEN.status == 403
    assert (
        routing.MISSING_AUTHENTICATION_TOKEN.body() == '{"message": "Missing Authentication Token"}'
    )


def test_a_percent_encoded_path_is_the_same_path() -> None:
    assert isinstance(decision(stack(), path="/dev/%65vents"), Invoke)


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": KEY + "x"}])
def test_a_missing_or_wrong_api_key_is_forbidden(headers: dict[str, str]) -> None:
    # Before the content type is looked at.
    headers = {**headers, "Content-Type": "text/plain"}
    assert decision(stack(), "POST", headers=headers) == routing.INVALID_API_KEY
    assert routing.INVALID_API_KEY.status == 403
    assert routing.INVALID_API_KEY.body() == '{"message": "Forbidden"}'


def test_the_api_key_header_name_is_case_insensitive_and_open_methods_take_none() -> None:
    assert isinstance(decision(stack(), headers={"X-Api-Key": KEY}), Invoke)
    local = stack()
    open_stack = LocalStack(
        stages=local.stages,
        routes=(route("GET", api_key_required=False),),
        function=local.function,
        aliases=local.aliases,
        tables=(),
        api_key_id="key-id",
    )
    answer = decision(open_stack, headers={})
    assert isinstance(answer, Invoke)
    assert answer.api_key_id == ""
    keyed = decision(stack())
    assert isinstance(keyed, Invoke)
    assert keyed.api_key_id == "key-id"


@pytest.mark.parametrize(
    ("content_type", "passthrough", "templates", "expected"),
    [
        (None, "NEVER", None, "T"),
        ("application/json", "NEVER", None, "T"),
        ("Application/JSON; charset=utf-8", "NEVER", None, "T"),
        ("text/plain", "NEVER", None, routing.UNSUPPORTED_MEDIA_TYPE),
        ("text/plain", "WHEN_NO_TEMPLATES", None, routing.UNSUPPORTED_MEDIA_TYPE),
        ("text/plain", "WHEN_NO_TEMPLATES", {}, None),
        ("text/plain", "WHEN_NO_MATCH", None, None),
    ],
)
def test_the_content_type_picks_the_template_or_is_refused(
    content_type: str | None,
    passthrough: str,
    templates: dict[str, str] | None,
    expected: object,
) -> None:
    chosen = route(templates=templates, passthrough=passthrough)
    assert routing.request_template(chosen, content_type) == expected


def test_the_canary_gets_its_percent_of_draws_and_its_stage_variables() -> None:
    local = stack(25.0)
    canary = decision(local, draws=(0.2499, 0.0))
    live = decision(local, draws=(0.25, 0.0))
    assert isinstance(canary, Invoke)
    assert isinstance(live, Invoke)
    assert (canary.share.role, canary.alias, canary.version) == ("canary", "live-canary", "4")
    assert (live.share.role, live.alias, live.version) == ("live", "live", "3")


def test_an_alias_the_stage_variables_do_not_name_is_an_internal_error() -> None:
    local = stack()
    broken = LocalStack(
        stages=(Stage("dev", (Share("live", 100.0, {"lambdaAlias": "gone"}),)),),
        routes=local.routes,
        function=local.function,
        aliases=local.aliases,
        tables=(),
        api_key_id="",
    )
    assert decision(broken) == routing.INTERNAL_SERVER_ERROR


def test_served_versions_skip_a_share_of_zero_and_list_weighted_versions_once() -> None:
    assert served_versions(stack(25.0)) == [("live", "3"), ("live-canary", "4")]
    assert served_versions(stack(0.0, weights={"5": 0.2})) == [("live", "3"), ("live", "5")]


# --- The request log -------------------------------------------------------------------------


def test_the_log_line_names_what_served_the_request() -> None:
    invoked = decision(stack(), draws=(0.1, 0.0))
    assert isinstance(invoked, Invoke)
    line = log_line("GET", "/dev/events", status=200, invoked=invoked, ms=12.4, request_id="r-1")
    assert line == "GET /dev/events 200 live-canary v4 12ms r-1"
    answered = log_line("GET", "/dev/x", status=403, invoked=None, ms=0.2, request_id="r-2")
    assert answered == "GET /dev/x 403 - - 0ms r-2"


# --- The command line ------------------------------------------------------------------------


def options(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["--stack", "dev", *argv])


def test_options_are_read() -> None:
    read = cli.validate(options("--port", "0", "--set", "canaryPercent=50", "--set", "x=a=b"), ROOT)
    assert (read.stack, read.port, read.live_ref, read.data) == ("dev", 0, "HEAD", None)
    assert read.overrides == {"canaryPercent": "50", "x": "a=b"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--stack", "staging"],
            "unknown stack 'staging': there is no Pulumi.staging.yaml; "
            "--stack takes one of dev, prod",
        ),
        (["--stack", "dev", "--port", "70000"], "--port takes 1 to 65535"),
        (["--stack", "dev", "--set", "canaryPercent"], "--set takes KEY=VALUE"),
        (["--stack", "dev", "--set", "=5"], "--set takes KEY=VALUE"),
        (["--stack", "dev", "--data", "Makefile"], "--data takes a folder, and Makefile is a file"),
    ],
)
def test_wrong_options_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(cli.CommandLineError, match="^" + message.replace("(", r"\(")):
        cli.validate(cli.build_parser().parse_args(argv), ROOT)


def test_the_generated_api_key_is_new_each_time() -> None:
    keys = {cli.new_api_key() for _ in range(3)}
    assert len(keys) == 3
    assert all(len(key) == 40 and key.isalnum() for key in keys)


def run_main(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.chdir(ROOT)
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.err


def test_an_unknown_stack_exits_2_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    status, err = run_main(["--stack", "qa", "--data", str(tmp_path / "d")], capsys, monkeypatch)
    assert status == 2
    assert err.startswith("error: unknown stack 'qa'")
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_a_live_ref_that_names_no_commit_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for ref in ("no-such-branch-anywhere", "--output=x"):
        status, err = run_main(["--stack", "dev", f"--live-ref={ref}"], capsys, monkeypatch)
        assert status == 2
        assert f"--live-ref {ref!r}" in err


def test_a_port_in_use_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, err = run_main(["--stack", "dev", "--port", str(port)], capsys, monkeypatch)
    assert status == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "pass another --port" in err


def test_no_runtime_venv_says_how_to_build_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAMBDA_RUNTIME_VENV", str(tmp_path / "missing"))
    status, err = run_main(["--stack", "dev"], capsys, monkeypatch)
    assert status == 1
    assert "run `make runtime-venv` (or `make test`, which builds it)" in err


# --- The items kept with --data ----------------------------------------------------------------


def test_kept_items_come_back_with_their_binary_values() -> None:
    item = {
        "pk": {"S": "p"},
        "blob": {"B": b"\x00\xff"},
        "blobs": {"BS": [b"a", b"\x80"]},
        # An attribute named like a type descriptor is still an attribute.
        "B": {"S": "not base64!"},
        "nested": {"M": {"inner": {"B": b"\x01"}, "list": {"L": [{"B": b"\x02"}, {"N": "1"}]}}},
    }
    kept = json.loads(json.dumps(tables.item_to_json(item)))
    assert kept["blob"] == {"B": "AP8="}
    assert tables.item_from_json(kept) == item
