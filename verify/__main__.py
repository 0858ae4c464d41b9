"""python -m verify --stack STACK [--keep] [--report FILE] [--program DIR]

Deploys a throwaway copy of STACK (``verify-<7 hex>``, its config copied from
``Pulumi.<STACK>.yaml``) to the AWS account of the current credentials, checks on it what only
real AWS can show, prints a pass/fail report and destroys the copy. Exit status: 0 every check
passed; 1 a check failed, the run stopped early, or the copy could not be destroyed (the
report says what is left); 2 a wrong command line (an unknown stack, a stack file verify cannot
copy); 130 stopped by Ctrl-C (after destroying the copy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from release.config_file import ConfigFileError, project_name
from verify.http import HttpsTransport
from verify.report import Report
from verify.run import Verification, VerifyClients
from verify.stack import (
    PulumiThrowawayStack,
    StackSetupError,
    backend_env,
    throwaway_config,
    throwaway_name,
)

INTERRUPTED = 130


class SetupError(Exception):
    """Something verify needs before it deploys anything is missing."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m verify",
        description="Deploy a throwaway copy of a stack to AWS, check what only real AWS can "
        "show (routing, canary share, rollback, metrics, alarms, logs), print a pass/fail "
        "report and destroy the copy. Exit status: 0 all passed, 1 a check failed or the copy "
        "was not destroyed, 2 a wrong command line, 130 Ctrl-C.",
    )
    parser.add_argument("--stack", required=True, help="the stack whose config to verify, e.g. dev")
    parser.add_argument(
        "--program",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the Pulumi program's folder (default: the current folder)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the throwaway stack deployed afterwards, to look at it (the report says "
        "how to remove it)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="also write the report as JSON to FILE"
    )
    return parser


def _region(stack_text: str) -> str | None:
    from ruamel.yaml import YAML  # noqa: PLC0415

    document = YAML(typ="safe").load(stack_text) or {}
    config = document.get("config") or {}
    region = config.get("aws:region")
    return str(region) if region else None


def _session(region: str | None) -> tuple[Any, str]:
    """A boto3 session with credentials and a region, or :class:`SetupError` saying how to
    provide them."""
    import boto3  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415

    try:
        session = boto3.session.Session(region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise SetupError(f"AWS is not set up: {error}") from error
    if credentials is None:
        raise SetupError(
            "no AWS credentials: set AWS_PROFILE to a profile of ~/.aws/config (after 'aws "
            "sso login' or 'aws configure'), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(and AWS_SESSION_TOKEN for temporary ones). Nothing was deployed"
        )
    if not session.region_name:
        raise SetupError(
            "no AWS region: set aws:region in the stack file, or AWS_REGION. Nothing was deployed"
        )
    return session, str(session.region_name)


def _clients(session: Any) -> VerifyClients:
    from botocore.config import Config  # noqa: PLC0415

    # As the release tool's clients: give up within about a minute rather than botocore's
    # default minutes.
    config = Config(
        connect_timeout=5, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3}
    )

    def client(service: str) -> Any:
        return session.client(service, config=config)

    return VerifyClients(
        cloudwatch=client("cloudwatch"),
        apigateway=client("apigateway"),
        lambda_=client("lambda"),
        logs=client("logs"),
    )


def _check_backend(env: dict[str, str]) -> None:
    backend = env.get("PULUMI_BACKEND_URL") or os.environ.get("PULUMI_BACKEND_URL", "")
    passphrase = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
    if backend.startswith("file://") and not any(name in os.environ for name in passphrase):
        raise SetupError(
            f"the Pulumi state is kept in {backend.removeprefix('file://')}, whose stacks "
            "encrypt their secrets (the API key output) with a passphrase: set "
            "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE. Nothing was deployed"
        )


def _write_json(path: Path | None, report: Report) -> None:
    if path is not None:
        path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"report written to {path}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    program = args.program.resolve()
    if args.report is not None and not args.report.resolve().parent.is_dir():
        # Found out after a quarter of an hour of deploying, it would lose the report.
        parser.error(f"--report {args.report}: its folder does not exist")
    source = program / f"Pulumi.{args.stack}.yaml"
    try:
        project = project_name(program)
        if not source.is_file():
            stacks = sorted(
                p.name[len("Pulumi.") : -len(".yaml")] for p in program.glob("Pulumi.*.yaml")
            )
            raise StackSetupError(
                f"unknown stack {args.stack!r}: {source} does not exist (stacks with a config "
                f"file here: {', '.join(stacks) or 'none'})"
            )
        stack_text = source.read_text()
        throwaway_config(stack_text, source.name, project)
    except (ConfigFileError, StackSetupError) as error:
        parser.error(str(error))
    try:
        if shutil.which("pulumi") is None:
            raise SetupError(
                "verify needs the Pulumi CLI (https://www.pulumi.com/docs/install/) and AWS "
                "credentials. Nothing was deployed; 'make test' needs neither"
            )
        session, region = _session(_region(stack_text))
        env = backend_env(program)
        _check_backend(env)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    name = throwaway_name()
    verification = Verification(
        program_dir=program,
        project=project,
        source_stack=args.stack,
        stack=PulumiThrowawayStack(program, name, env),
        clients=_clients(session),
        http=HttpsTransport(),
        region=region,
        out=lambda line: print(line, file=sys.stderr),
        keep=args.keep,
    )
    return run_and_report(verification, args.report)


def run_and_report(verification: Verification, report_path: Path | None) -> int:
    """Run, print the report (and write it as JSON), and give the exit status."""
    status = 0
    try:
        report = verification.run()
    except KeyboardInterrupt:
        report = verification.report
        report.aborted = report.aborted or "interrupted by Ctrl-C"
        status = INTERRUPTED
    print()
    for line in report.lines():
        print(line)
    _write_json(report_path, report)
    if status == 0 and not report.passed:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
