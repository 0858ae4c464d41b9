"""``python -m local_api`` end to end, through a plain HTTP client: the stack's routes, the
function's and templates' errors, API Gateway's own answers, the canary split, the request log,
the items kept with --data, and a clean stop on SIGINT; through boto3, Lambda's Invoke and the
release tool's pre-traffic check (which fails on a canary whose code raises).

The server runs stack dev with a canary (30%, the live alias pinned to version 1), started once
for the module on a free port, as a user starts it.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

import release.__main__ as release_cli
from local_api import check as local_check
from local_api.environment import FunctionConfig, LambdaEnvironment, LocalRuntimeError
from local_api.function_code import working_tree_root
from local_api.server import LocalApiServer
from local_api.stack import local_stack
from tests.conftest import ROOT
from tests.release_fakes import FakeDeployer
from versioned_lambda_api.analysis.plan import run_with_assumed_versions

CANARY_PERCENT = 30
SPLIT_REQUESTS = 1000
# Further from the expected count than this many binomial standard deviations is a broken
# split, not chance (p < 1e-5).
SPLIT_SIGMAS = 4.5
_START_TIMEOUT_S = 60.0
_LOG_LINE = re.compile(r"(\S+) (\S+) (\d{3}) (\S+) (\S+) (\d+)ms (\S+)")


@dataclass
class LocalApi:
    process: subprocess.Popen[str]
    port: int = 0
    api_key: str = ""
    work_dir: Path = Path()
    lines: list[str] = field(default_factory=list)
    ready_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def log_lines(self) -> dict[str, tuple[str, str, int, str, str]]:
        """Request id to (method, path, status, alias, version) of each request logged."""
        found = {}
        for line in self.output():
            match = _LOG_LINE.fullmatch(line)
            if match:
                method, path, status, alias, version, _, request_id = match.groups()
                found[request_id] = (method, path, int(status), alias, version)
        return found

    def send(
        self,
        method: str,
        path: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        key: bool = True,
    ) -> Response:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if key:
            sent["x-api-key"] = self.api_key
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            answer = connection.getresponse()
            return Response(answer.status, answer.read().decode(), dict(answer.getheaders()))
        finally:
            connection.close()


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def start(*args: str) -> LocalApi:
    """Start the local API as `make local` does and wait until it serves."""
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 - this venv's Python running the module under test
        [sys.executable, "-m", "local_api", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = LocalApi(process)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                with api._lock:
                    api.lines.append(line.rstrip("\n"))
                if line.startswith("Ready in"):
                    ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(_START_TIMEOUT_S) or process.poll() is not None:
        process.kill()
        pytest.fail("the local API did not start:\n" + "\n".join(api.output()))
    api.ready_s = time.monotonic() - started
    text = "\n".join(api.output())
    port = re.search(r"http://127\.0\.0\.1:(\d+)/", text)
    key = re.search(r"API key \(send it as x-api-key\): (\w+)", text)
    logs = re.search(r"Function logs: (\S+)/<alias>", text)
    assert port, text
    assert key, text
    assert logs, text
    api.port, api.api_key, api.work_dir = int(port.group(1)), key.group(1), Path(logs.group(1))
    return api


def stop(api: LocalApi) -> int:
    api.process.send_signal(signal.SIGINT)
    return api.process.wait(timeout=30)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-api-data")


@pytest.fixture(scope="module")
def local(data_dir: Path) -> Iterator[LocalApi]:
    api = start(
        "--stack",
        "dev",
        "--set",
        f"canaryPercent={CANARY_PERCENT}",
        "--set",
        "stableVersion=1",
        "--data",
        str(data_dir),
    )
    yield api
    if api.process.poll() is None:
        api.process.kill()
        api.process.wait(timeout=10)


def served_by(response: Response) -> dict[str, str]:
    body = response.json()
    assert isinstance(body, dict), response
    served: dict[str, str] = body["servedBy"]
    return served


# --- Routes ----------------------------------------------------------------------------------


def test_a_posted_event_is_stored_and_listed_back(local: LocalApi) -> None:
    marker = str(uuid.uuid4())
    posted = local.send("POST", "/dev/events", json.dumps({"marker": marker, "n": 1.5}))
    assert posted.status == 200, posted
    event_id = posted.json()["id"]
    assert served_by(posted)["stage"] == "dev"
    listed = local.send("GET", "/dev/events?limit=100")
    assert listed.status == 200, listed
    (event,) = [e for e in listed.json()["events"] if e["id"] == event_id]
    assert event["data"] == {"marker": marker, "n": 1.5}
    # The event names what stored it, and the API's request id reached the function.
    assert (event["alias"], event["version"]) == tuple(
        served_by(posted)[k] for k in ("alias", "version")
    )
    assert event["requestId"] == posted.headers["x-amzn-RequestId"]


# --- The function's and the templates' errors ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("not json", 400, "body is not valid JSON"),
        ("{}", 400, "body is an empty JSON object"),
        ("[1]", 400, "body must be a JSON object, got array"),
        ('{"a": 1, "a": 2}', 400, "twice in one object"),
        (json.dumps({"big": "x" * 70_000}), 413, "the limit is 65536"),
    ],
)
def test_a_refused_body_is_a_client_error_with_the_reason(
    local: LocalApi, body: str, status: int, says: str
) -> None:
    response = local.send("POST", "/dev/events", body)
    assert response.status == status, response
    assert says in response.json()["message"]
    assert served_by(response)["stage"] == "dev"


def test_a_bad_query_parameter_is_a_client_error(local: LocalApi) -> None:
    response = local.send("GET", "/dev/events?limit=1000")
    assert response.status == 400, response
    assert response.json()["message"] == "limit must be an integer from 1 to 100, got '1000'"


def test_an_idempotency_key_reused_with_another_body_is_422(local: LocalApi) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = local.send("POST", "/dev/events", '{"v": 1}', key)
    again = local.send("POST", "/dev/events", '{"v": 1}', key)
    other = local.send("POST", "/dev/events", '{"v": 2}', key)
    assert first.status == 200, first
    assert (again.status, again.json()["id"], again.json()["replayed"]) == (
        200,
        first.json()["id"],
        True,
    )
    assert other.status == 422, other


# --- API Gateway's own answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/dev/nothing"), ("DELETE", "/dev/events"), ("GET", "/prod/events"), ("GET", "/")],
)
def test_an_unknown_route_is_missing_authentication_token(
    local: LocalApi, method: str, path: str
) -> None:
    response = local.send(method, path)
    assert (response.status, response.json()) == (403, {"message": "Missing Authentication Token"})
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "not-the-key"}])
def test_a_missing_or_wrong_api_key_is_forbidden(local: LocalApi, headers: dict[str, str]) -> None:
    response = local.send("GET", "/dev/events", headers=headers, key=False)
    assert (response.status, response.json()) == (403, {"message": "Forbidden"})


def test_a_content_type_without_a_template_is_refused(local: LocalApi) -> None:
    response = local.send("POST", "/dev/events", "a=1", {"Content-Type": "text/plain"})
    assert (response.status, response.json()) == (415, {"message": "Unsupported Media Type"})


# --- The canary split ------------------------------------------------------------------------


def test_the_canary_gets_its_share_and_every_reply_names_what_the_log_names(
    local: LocalApi,
) -> None:
    # limit=0 is refused by the function before it reads DynamoDB: a full trip through the
    # gateway and the runtime that costs milliseconds, and still names who served it.
    def one(_: int) -> Response:
        return local.send("GET", "/dev/events?limit=0")

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(one, range(SPLIT_REQUESTS)))
    assert {response.status for response in responses} == {400}
    served = Counter((served_by(r)["alias"], served_by(r)["version"]) for r in responses)
    assert set(served) == {("dev", "1"), ("dev-canary", "2")}
    expected = SPLIT_REQUESTS * CANARY_PERCENT / 100
    spread = math.sqrt(SPLIT_REQUESTS * CANARY_PERCENT / 100 * (1 - CANARY_PERCENT / 100))
    assert abs(served[("dev-canary", "2")] - expected) <= SPLIT_SIGMAS * spread, served

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = local.log_lines()
        if all(r.headers["x-amzn-RequestId"] in logged for r in responses):
            break
        time.sleep(0.05)
    for response in responses:
        method, path, status, alias, version = logged[response.headers["x-amzn-RequestId"]]
        assert (method, path, status) == ("GET", "/dev/events", 400)
        assert (alias, version) == (
            served_by(response)["alias"],
            "v" + served_by(response)["version"],
        )


def test_a_version_whose_code_cannot_start_is_reported(tmp_path: Path) -> None:
    broken, working = tmp_path / "broken", tmp_path / "working"
    for root, code in ((broken, "import no_such_module\n"), (working, "def handler(e, c): ...\n")):
        root.mkdir()
        (root / "handler.py").write_text(code)
    problems = {}
    for root in (broken, working):
        environment = LambdaEnvironment(FunctionConfig(task_root=root), tmp_path, root.name)
        environment.start()
        try:
            problems[root.name] = environment.init_problem()
        finally:
            environment.stop()
    assert problems["working"] is None
    # A stopped environment starts no new process for a request that arrives late.
    with pytest.raises(LocalRuntimeError, match="working is stopped"):
        environment.invoke(b"{}")
    assert environment.pid is None
    assert problems["broken"] is not None
    assert problems["broken"].startswith("Runtime.ImportModuleError: ")
    assert "No module named 'no_such_module'" in problems["broken"]


@pytest.mark.parametrize("kept", ['{"pk": {"S": "x"}', '{"pk": {"N": "not a number"}}'])
def test_kept_items_that_cannot_be_read_back_stop_it_and_stay(tmp_path: Path, kept: str) -> None:
    (table,) = local_stack(run_with_assumed_versions(ROOT, "dev", {}).graph).tables
    data_file = tmp_path / f"{table.name}.jsonl"
    data_file.write_text(kept + "\n")
    command = ["--stack", "dev", "--port", "0", "--data", str(tmp_path)]
    done = subprocess.run(  # noqa: S603 - this venv's Python running the module under test
        [sys.executable, "-m", "local_api", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done
    assert "move the file away to start with an empty table" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert data_file.read_text() == kept + "\n"


def test_it_started_in_time(local: LocalApi) -> None:
    # From the process' start to serving: the program run, moto and two runtime processes;
    # generous, as other test processes share these cores.
    assert local.ready_s < 15, local.ready_s


# --- Lambda's Invoke, and the release tool's pre-traffic check through it ---------------------


@pytest.fixture(scope="module")
def outputs() -> dict[str, Any]:
    """The stack's outputs as a deploy with the local API's config would set them."""
    overrides = {"canaryPercent": str(CANARY_PERCENT), "stableVersion": "1"}
    return dict(run_with_assumed_versions(ROOT, "dev", overrides).exports)


def lambda_client(port: int) -> Any:
    """A stock boto3 Lambda client pointed at the local API, with credentials it ignores."""
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )


def list_event(**fields: Any) -> str:
    """An event as GET /events' template renders it."""
    event = {"stage": "dev", "method": "GET", "resourcePath": "/events", "query": {"limit": "1"}}
    return json.dumps({**event, "requestId": str(uuid.uuid4()), **fields})


def test_boto3_invokes_each_alias_at_its_version(local: LocalApi, outputs: dict[str, Any]) -> None:
    client = lambda_client(local.port)
    for role in ("canary", "live"):
        alias, version = outputs[f"{role}Alias"], outputs[f"{role}Version"]
        answer = client.invoke(
            FunctionName=outputs["functionName"], Qualifier=alias, Payload=list_event()
        )
        assert (answer["StatusCode"], answer["ExecutedVersion"]) == (200, version), role
        assert "FunctionError" not in answer
        reply = json.loads(answer["Payload"].read())
        assert reply["statusCode"] == 200, reply
        assert reply["body"]["servedBy"] == {"stage": "dev", "alias": alias, "version": version}
        request_id = answer["ResponseMetadata"]["RequestId"]
        expected = f"INVOKE {alias} 200 {alias} v{version} "
        assert _logged(local, request_id).startswith(expected), local.output()[-5:]
    assert (outputs["canaryVersion"], outputs["liveVersion"]) == ("2", "1")
    # A version number runs that version, and the function sees the ARN the call named.
    answer = client.invoke(
        FunctionName=outputs["functionName"], Qualifier="1", Payload=list_event()
    )
    assert answer["ExecutedVersion"] == "1"
    served = json.loads(answer["Payload"].read())["body"]["servedBy"]
    assert served == {"stage": "dev", "alias": "1", "version": "1"}


def test_a_function_that_raises_is_an_unhandled_function_error(
    local: LocalApi, outputs: dict[str, Any]
) -> None:
    # DynamoDB refuses an item over 400 KB, and the handler raises what it cannot retry.
    answer = lambda_client(local.port).invoke(
        FunctionName=outputs["functionName"],
        Qualifier=outputs["canaryAlias"],
        Payload=list_event(
            method="POST",
            bodyBase64=base64.b64encode(b'{"a": 1}').decode(),
            requestId="r" * 500_000,
        ),
    )
    assert (answer["StatusCode"], answer.get("FunctionError")) == (200, "Unhandled")
    assert answer["ExecutedVersion"] == outputs["canaryVersion"]
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "ClientError", error
    assert "Item size has exceeded the maximum allowed size" in error["errorMessage"]


def test_an_unknown_qualifier_is_resource_not_found(
    local: LocalApi, outputs: dict[str, Any]
) -> None:
    client = lambda_client(local.port)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        client.invoke(FunctionName=outputs["functionName"], Qualifier="nope", Payload="{}")
    response = raised.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{outputs['functionName']}"
    assert response["Error"]["Message"] == f"Function not found: {function_arn}:nope"
    assert _logged(local, response["ResponseMetadata"]["RequestId"]).startswith(
        "INVOKE nope 404 - - "
    )


def _logged(api: LocalApi, request_id: str) -> str:
    """The log line of ``request_id`` (the server logs it just after it answers)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [line for line in api.output() if line.endswith(" " + request_id)]
        if found:
            return found[0]
        time.sleep(0.02)
    return ""


def test_the_release_tools_check_passes_on_the_working_trees_canary(
    local: LocalApi,
    outputs: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `python -m release check` itself, with the outputs a deploy would give instead of the
    # Pulumi CLI's, and its boto3 clients sent to the local API by the standard variable.
    monkeypatch.setattr(release_cli, "_deployer", lambda program, stack: FakeDeployer(outputs))
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{local.port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    invokes_before = len(_invokes(local))

    assert release_cli.main(["check", "--stack", "dev", "--program", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "GET /events (default) -> 200 (v2) ok" in out, out
    assert "POST /events (default) -> 200 (v2) ok" in out, out
    assert "pre-traffic check passed: v2 answered every request as expected" in out
    # It was the local canary that answered.
    time.sleep(0.1)
    assert [line.split()[:5] for line in _invokes(local)[invokes_before:]] == [
        ["INVOKE", "dev-canary", "200", "dev-canary", "v2"]
    ] * 2


def _invokes(api: LocalApi) -> list[str]:
    return [line for line in api.output() if line.startswith("INVOKE ")]


def test_the_check_fails_on_a_canary_whose_code_raises_and_shows_the_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A second, small local API: stack dev unpinned (both aliases on v1), and v1's code a copy
    # of the working tree's whose handler raises. It fails before reading DynamoDB: no moto.
    stack = local_stack(run_with_assumed_versions(ROOT, "dev", {}).graph)
    function = stack.function
    code = working_tree_root(function, tmp_path / "code")
    module, _, name = function.handler.rpartition(".")
    with (code / f"{module}.py").open("a") as handler:
        handler.write(f"\n\ndef {name}(event, context):\n    raise RuntimeError('broken')\n")
    config = FunctionConfig(
        task_root=code,
        handler=function.handler,
        name=function.name,
        version="1",
        qualifier="dev-canary",
        region=function.region,
        environment=function.environment,
    )
    environment = LambdaEnvironment(config, tmp_path, "dev-canary-v1")
    server = LocalApiServer(0)
    lines: list[str] = []
    try:
        environment.start()
        server.serve(stack, "", {("dev-canary", "1"): environment}, lines.append)
        status = local_check.main(["--stack", "dev", "--port", str(server.port)], ROOT)
    finally:
        server.stop()
        environment.stop()
    captured = capsys.readouterr()
    assert status == 1, captured
    assert "GET /events (default) -> 500 (v1) FAILED: status 500, expected 2xx" in captured.out
    assert "    Lambda error: RuntimeError" in captured.out
    # The reply as API Gateway's default 5xx response gives it, request id and all.
    assert '    body: {"message": "Internal error", "requestId": "release-check-' in captured.out
    assert "pre-traffic check failed: 2 of 2 request(s)" in captured.err
    assert [line.split()[:5] for line in lines] == [
        ["INVOKE", "dev-canary", "200", "dev-canary", "v1"]
    ] * 2


# --- Stopping, and the data kept -------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Processes started by ``pid`` (their own sessions do not hide them from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_sigint_stops_everything_and_the_items_are_kept(local: LocalApi, data_dir: Path) -> None:
    marker = str(uuid.uuid4())
    posted = local.send("POST", "/dev/events", json.dumps({"kept": marker}))
    assert posted.status == 200, posted
    children = _children(local.process.pid)
    # moto's server and one runtime process per alias and version (dev v1, dev-canary v2).
    assert len(children) == 3, children

    assert stop(local) == 0
    output = "\n".join(local.output())
    assert "Traceback" not in output
    assert output.endswith("Stopped."), output
    assert not local.work_dir.exists()
    assert not [pid for pid in children if _running(pid)], "a process it started still runs"
    (kept,) = data_dir.glob("*.jsonl")
    assert marker in kept.read_text()

    # Started again without a canary: everything goes live, and the kept event is back.
    again = start("--stack", "dev", "--data", str(data_dir))
    try:
        listed = again.send("GET", "/dev/events?limit=100")
        assert listed.status == 200, listed
        assert marker in json.dumps(listed.json()["events"])
        assert served_by(listed) == {"stage": "dev", "alias": "dev", "version": "1"}
    finally:
        assert stop(again) == 0


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has, and awaits its reaper)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status
