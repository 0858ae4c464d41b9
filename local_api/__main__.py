"""Serve a stack's API on this machine as API Gateway would serve its stage.

    python -m local_api --stack dev [--port N] [--live-ref REV] [--data DIR] [--set KEY=VALUE ...]

(``make local STACK=dev``). Runs the stack's program under the plan's recording mocks, so the
routes, templates, stage variables, canary share, API key requirement and versions served are
those a deploy would create; then starts moto's DynamoDB with the stack's tables, one warm Lambda
runtime process (awslambdaric, Python 3.13) per alias and version that gets traffic (and one
for each other version an alias points to), and an HTTP server on 127.0.0.1 at
``/<stage>/<path>`` that also answers Lambda's Invoke of the function, under the name the
program gives it. Ctrl-C (SIGINT) or SIGTERM stops all of it.

Exit status: 0 stopped by a signal, 1 it could not start (the program failed, no runtime venv,
a stack it cannot serve, kept items it cannot read back), 2 a wrong command line (an option, an
unknown stack, a --live-ref that names no commit, a port in use).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import string
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

from local_api.environment import (
    FunctionConfig,
    LambdaEnvironment,
    LocalRuntimeError,
    LogRecord,
    runtime_python,
)
from local_api.function_code import (
    LiveRefError,
    repository_root,
    resolve_ref,
    revision_root,
    working_tree_root,
)
from local_api.lambda_invoke import runtime_processes
from local_api.moto_server import MotoServer
from local_api.server import LocalApiServer
from local_api.stack import LocalStack, UnservableStackError, local_stack
from local_api.tables import KeptItemsError, create_tables, dump_items, load_items
from versioned_lambda_api.analysis.plan import parse_overrides, run_with_assumed_versions
from versioned_lambda_api.testing import ProgramError

DEFAULT_PORT = 8080
# API Gateway's generated keys: 40 letters and digits.
_KEY_ALPHABET = string.ascii_letters + string.digits
_KEY_LENGTH = 40


class CommandLineError(Exception):
    """A wrong command line: exit status 2."""


class _Stopped(BaseException):
    """SIGINT or SIGTERM arrived: a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` on the way swallows it."""


@dataclass(frozen=True)
class Options:
    stack: str
    port: int
    live_ref: str
    data: Path | None
    overrides: dict[str, str]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_api",
        description="Serve a stack's API on 127.0.0.1 as API Gateway would serve its stage: "
        "its routes, API key, templates and canary split, the function in a real Lambda "
        "runtime process per alias, DynamoDB in moto. Run from the program's folder.",
    )
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port on 127.0.0.1, 1 to 65535, or 0 for any free one (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--live-ref",
        default="HEAD",
        metavar="REV",
        help="git revision whose function code a version older than the newest runs: what a "
        "live alias pinned by stableVersion serves (default: HEAD)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="keep the tables' items in DIR between runs (default: in memory, gone at stop)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key of the stack, e.g. canaryPercent=50 (repeatable)",
    )
    return parser


def known_stacks(program: Path) -> list[str]:
    files = program.glob("Pulumi.*.yaml")
    return sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in files)


def validate(args: argparse.Namespace, program: Path) -> Options:
    """The options, or CommandLineError naming the one that is wrong and what it takes."""
    if not (program / "Pulumi.yaml").is_file():
        raise CommandLineError(f"{program} has no Pulumi.yaml: run this in the program's folder")
    stacks = known_stacks(program)
    if args.stack not in stacks:
        raise CommandLineError(
            f"unknown stack {args.stack!r}: there is no Pulumi.{args.stack}.yaml; "
            f"--stack takes one of {', '.join(stacks) or '(none: no stack files here)'}"
        )
    if not 0 <= args.port <= 65535:
        raise CommandLineError(f"--port takes 1 to 65535, or 0 for any free port; got {args.port}")
    if args.data is not None and args.data.exists() and not args.data.is_dir():
        raise CommandLineError(f"--data takes a folder, and {args.data} is a file")
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as error:
        raise CommandLineError(str(error)) from None
    return Options(args.stack, args.port, args.live_ref, args.data, overrides)


def new_api_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH))


_OUTPUT_LOCK = threading.Lock()


def _say(text: str) -> None:
    """Print one line; requests are served in threads, and one print is two writes."""
    with _OUTPUT_LOCK:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _bind(port: int) -> LocalApiServer:
    try:
        return LocalApiServer(port)
    except OSError as error:
        raise CommandLineError(
            f"cannot listen on 127.0.0.1:{port}: {error.strerror}; "
            "pass another --port (PORT= for make), or 0 for any free one"
        ) from error


def _stop_on_signals() -> Callable[[], None]:
    """Turn SIGINT and SIGTERM into :class:`_Stopped`; returns what puts the previous
    handlers back."""

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stopped

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


def _run_program(program: Path, options: Options) -> LocalStack:
    try:
        run = run_with_assumed_versions(program, options.stack, options.overrides)
    except ProgramError as error:
        raise LocalRuntimeError(f"the program failed for stack {options.stack}: {error}") from error
    return local_stack(run.graph)


def _writer(path: Path) -> Callable[[LogRecord], None]:
    output = path.open("a", encoding="utf-8")

    def write(record: LogRecord) -> None:
        output.write(record.message.rstrip("\n") + "\n")
        output.flush()

    return write


def serve(options: Options, program: Path, cleanup: ExitStack) -> None:
    """Start everything, registering each thing's stop with ``cleanup``, and serve until a
    signal."""
    started = time.monotonic()
    runtime_python()
    repository = repository_root(program)
    if repository is None:
        raise CommandLineError(f"{program} is not in a git repository, which --live-ref reads")
    live_commit = resolve_ref(options.live_ref, repository)
    server = _bind(options.port)
    cleanup.callback(server.server_close)
    _say(f"Running the program for stack {options.stack} under mocks...")
    stack = _run_program(program, options)
    work = Path(tempfile.mkdtemp(prefix="local-api-"))
    cleanup.callback(shutil.rmtree, work, ignore_errors=True)

    function = stack.function
    roots = {function.newest_version: working_tree_root(function, work / "code-working-tree")}
    processes = runtime_processes(stack)
    code_of = {function.newest_version: "the working tree"}
    for version in sorted({version for _, version in processes} - set(roots)):
        roots[version] = revision_root(function, live_commit, repository, work / f"code-v{version}")
        code_of[version] = f"{options.live_ref} ({live_commit[:12]})"

    moto = MotoServer(work / "moto.log")
    cleanup.callback(moto.stop)
    _start_tables(moto, stack, options.data, cleanup)

    environments = {
        (alias, version): _start_environment(
            stack,
            alias=alias,
            version=version,
            task_root=roots[version],
            dynamodb_url=moto.endpoint_url,
            work=work,
            cleanup=cleanup,
        )
        for alias, version in processes
    }
    for (alias, version), environment in environments.items():
        problem = environment.init_problem()
        if problem is not None:
            # Lambda would answer every request with this init error; so will the local API.
            _say(f"Warning: {alias} v{version} ({code_of[version]}) failed to start: {problem}")
    api_key = new_api_key() if stack.api_key_required else ""
    server.serve(stack, api_key, environments, _say)
    # Registered last so that it runs first: no request reaches what is being stopped.
    cleanup.callback(server.stop)
    _say("")
    for line in banner(stack, server.port, api_key, processes, code_of):
        _say(line)
    _say(f"Function logs: {work}/<alias>-v<version>.out; DynamoDB: moto at {moto.endpoint_url}")
    _say(f"Ready in {time.monotonic() - started:.1f} s. Ctrl-C stops it.")
    while True:
        signal.pause()


def _start_tables(
    moto: MotoServer, stack: LocalStack, data: Path | None, cleanup: ExitStack
) -> None:
    """Create the stack's tables, with the items kept in ``data`` put back, and keep them
    there again at stop."""
    client = moto.client(stack.function.region)
    create_tables(client, stack.tables)
    if data is None:
        return
    for table in stack.tables:
        loaded = load_items(client, table, data)
        _say(f"Loaded {loaded} item(s) of table {table.name} from {data}")

    def keep_items() -> None:
        for table in stack.tables:
            try:
                kept = dump_items(client, table, data)
            except OSError as error:
                _say(f"error: could not keep table {table.name}'s items in {data}: {error}")
                continue
            _say(f"Kept {kept} item(s) of table {table.name} in {data}")

    cleanup.callback(keep_items)


def _start_environment(
    stack: LocalStack,
    *,
    alias: str,
    version: str,
    task_root: Path,
    dynamodb_url: str,
    work: Path,
    cleanup: ExitStack,
) -> LambdaEnvironment:
    """Start the runtime process of ``alias`` at ``version`` (its init phase runs now, so that
    no request waits for it)."""
    function = stack.function
    label = f"{alias}-v{version}"
    config = FunctionConfig(
        task_root=task_root,
        handler=function.handler,
        name=function.name,
        version=version,
        qualifier=alias,
        memory_mb=function.memory_mb,
        timeout_s=function.timeout_s,
        region=function.region,
        environment={**function.environment, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url},
    )
    environment = LambdaEnvironment(config, work, label, _writer(work / f"{label}.out"))
    environment.start()
    cleanup.callback(environment.stop)
    return environment


def banner(
    stack: LocalStack,
    port: int,
    api_key: str,
    served: list[tuple[str, str]],
    code_of: dict[str, str],
) -> list[str]:
    """What the local API tells its user once it serves."""
    lines = []
    for stage in stack.stages:
        lines.append(f"Stage {stage.name}:")
        for route in stack.routes:
            lines.append(f"  {route.method:<6} http://127.0.0.1:{port}/{stage.name}/{route.path}")
        for share in stage.shares:
            lines.append(f"  {share.role:<6} {share.percent:g}% of requests")
    lines.append("Runtime processes (alias, version, code):")
    for alias, version in served:
        lines.append(f"  {alias:<14} v{version:<4} {code_of[version]}")
    # Signed requests are accepted unverified: any credentials do.
    lines.append(f"Lambda Invoke: http://127.0.0.1:{port} (function {stack.function.name})")
    if api_key:
        lines.append(f"API key (send it as x-api-key): {api_key}")
    else:
        lines.append("No API key: the stack's methods are open (apiKeyRequired is false)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    program = Path.cwd()
    with ExitStack() as cleanup:
        cleanup.callback(_stop_on_signals())
        try:
            options = validate(args, program)
            serve(options, program, cleanup)
        except (CommandLineError, LiveRefError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except (LocalRuntimeError, UnservableStackError, KeptItemsError) as error:
            print(f"error: cannot serve stack {args.stack}: {error}", file=sys.stderr)
            return 1
        except _Stopped:
            _say("Stopping...")
    _say("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
