"""The release tool's pre-traffic check, run against the local API instead of AWS.

    python -m local_api.check --stack dev [--port N] [--set KEY=VALUE ...]

(``make local-check STACK=dev``, beside a running ``make local STACK=dev``). It is
:meth:`release.commands.Release.check` itself: the routes and templates from the stack's
program, each request rendered and invoked on the canary alias with Lambda's Invoke, the
replies judged as API Gateway would answer them. Only two inputs differ from a release: the
stack's outputs (function name, aliases, versions) come from a run of the program with the
same ``--set`` overrides the local API was started with, since nothing was deployed; and the
Invoke goes to the local API on 127.0.0.1 with placeholder credentials, which it does not
verify.

Exit status: 0 the check passed, 1 it failed or could not run, 2 a wrong command line.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from local_api.__main__ import DEFAULT_PORT, CommandLineError, known_stacks
from local_api.stack import UnservableStackError, local_stack
from release.aws import AwsError
from release.commands import AwsClients, Release, ReleaseError
from release.config_file import StackConfigFile, project_name
from versioned_lambda_api.analysis.plan import parse_overrides, run_with_assumed_versions
from versioned_lambda_api.testing import ProgramError


class ProgramOutputs:
    """The stack's outputs as a deploy of the program would set them: what the local API
    serves. It deploys nothing, so only the check can use it."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self._outputs = outputs

    def outputs(self) -> dict[str, Any]:
        return self._outputs

    def up(self, on_output: Callable[[str], None]) -> None:
        raise ReleaseError("the local API's stack cannot be deployed; only 'check' runs here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_api.check",
        description="Run the release tool's pre-traffic check against the local API "
        "(make local): Invoke of the canary alias with each route's requests, judged as API "
        "Gateway would answer them. Run from the program's folder.",
    )
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the local API's port on 127.0.0.1 (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the config overrides the local API was started with, e.g. stableVersion=1 "
        "(repeatable): they decide the canary's version",
    )
    return parser


def local_clients(port: int, region: str) -> AwsClients:
    """Lambda clients that invoke the local API: one attempt, as the release tool's check
    makes (a retry would run a write again)."""
    import boto3  # noqa: PLC0415 - as the release tool, only what talks to Lambda pays for it
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 1}
    )
    invoker = boto3.client(
        "lambda",
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{port}",
        # The local API does not verify signatures; these only let botocore sign.
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - a placeholder, not a secret
        config=config,
    )
    return AwsClients(cloudwatch=None, apigateway=None, lambda_=invoker, invoker=invoker)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def main(argv: Sequence[str] | None = None, program: Path | None = None) -> int:
    args = build_parser().parse_args(argv)
    program = program or Path.cwd()
    try:
        if args.stack not in known_stacks(program):
            raise CommandLineError(
                f"unknown stack {args.stack!r}: there is no Pulumi.{args.stack}.yaml in {program}"
            )
        if not 1 <= args.port <= 65535:
            raise CommandLineError(f"--port takes 1 to 65535; got {args.port}")
        overrides = parse_overrides(args.overrides)
    except (CommandLineError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not _listening(args.port):
        print(
            f"error: nothing listens on 127.0.0.1:{args.port}: start the local API first "
            f"('make local STACK={args.stack}'), or pass the --port it printed (PORT= for make)",
            file=sys.stderr,
        )
        return 1
    try:
        run = run_with_assumed_versions(program, args.stack, overrides)
        region = local_stack(run.graph).function.region
    except ProgramError as error:
        print(f"error: the program failed for stack {args.stack}: {error}", file=sys.stderr)
        return 1
    except UnservableStackError as error:
        print(f"error: the local API cannot serve stack {args.stack}: {error}", file=sys.stderr)
        return 1
    release = Release(
        config=StackConfigFile(program, project_name(program), args.stack),
        deployer=ProgramOutputs(dict(run.exports)),
        apply=False,
    )
    try:
        release.check(local_clients(args.port, region))
    except (ReleaseError, AwsError) as error:
        message = error.message if isinstance(error, AwsError) else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
