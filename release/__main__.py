"""python -m release {status,start,advance,promote,rollback,watch} --stack STACK [options]"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from release.commands import DEFAULT_STEPS, AwsClients, Release, ReleaseError
from release.config_file import ConfigFileError, StackConfigFile
from release.deploy import ApplyError, PulumiDeployer
from release.judge import DEFAULT_CONFIG, JudgeConfig

PROJECT = "event-logger"


def _steps(text: str) -> tuple[float, ...]:
    try:
        steps = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"steps must be numbers like 10,25,50, got {text!r}"
        ) from None
    if not steps or list(steps) != sorted(set(steps)) or not 0 < steps[0] <= steps[-1] <= 100:
        raise argparse.ArgumentTypeError(
            f"steps must rise strictly within 0-100 (exclusive of 0), got {text!r}"
        )
    return steps


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of minutes above 0, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m release",
        description="Take a stack's canary from start to promotion or rollback.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", required=True, help="stack name, e.g. prod")
    common.add_argument("--program", type=Path, default=Path("."), help="program folder")
    common.add_argument(
        "--no-apply",
        dest="apply",
        action="store_false",
        help="only edit the stack config file, for review; deploy it later with 'make up'",
    )
    common.add_argument(
        "--steps",
        type=_steps,
        default=DEFAULT_STEPS,
        help="canary shares to advance through (default: 10,25,50)",
    )
    common.add_argument(
        "--latency-threshold-ms",
        type=float,
        help="a request slower than this counts as slow (default: live's p99 in the hour "
        "before, so the slow test compares the canary's tail with live's)",
    )
    common.add_argument(
        "--on-timeout",
        choices=("PROMOTE", "ROLLBACK"),
        default=DEFAULT_CONFIG.on_timeout,
        help="the decision when a step's bake ends undecided; a canary with too little "
        f"traffic is rolled back either way (default: {DEFAULT_CONFIG.on_timeout})",
    )
    common.add_argument(
        "--bake-minutes",
        type=_positive_int,
        default=DEFAULT_CONFIG.max_periods,
        help="the longest the judge watches one canary share before the --on-timeout "
        f"decision (default: {DEFAULT_CONFIG.max_periods}); low traffic needs longer",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", parents=[common], help="versions, metrics, verdict")
    status.add_argument(
        "--minutes", type=_positive_int, default=30, help="metrics window (default 30)"
    )
    commands.add_parser("start", parents=[common], help="pin the live version (stableVersion)")
    commands.add_parser("advance", parents=[common], help="move to the next canary share")
    commands.add_parser("promote", parents=[common], help="pin the canary's version as stable")
    commands.add_parser("rollback", parents=[common], help="send no traffic to the canary")
    watch = commands.add_parser("watch", parents=[common], help="judge each period and act")
    watch.add_argument(
        "--max-minutes",
        type=_positive_int,
        help="stop watching after this long (default: a full bake for each remaining step)",
    )
    return parser.parse_args(argv)


def _clients(region: str | None) -> AwsClients:
    import boto3  # noqa: PLC0415 - only the steps that talk to AWS pay for it

    session = boto3.session.Session(region_name=region)
    return AwsClients(
        cloudwatch=session.client("cloudwatch"),
        apigateway=session.client("apigateway"),
        lambda_=session.client("lambda"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    program = args.program.resolve()
    try:
        config = StackConfigFile(program, PROJECT, args.stack)
        release = Release(
            config=config,
            deployer=PulumiDeployer(program, args.stack),
            apply=args.apply,
            steps=args.steps,
            judge_config=JudgeConfig(on_timeout=args.on_timeout, max_periods=args.bake_minutes),
            latency_threshold_ms=args.latency_threshold_ms,
        )
        region = config.get_raw("aws:region")
        if args.command == "start":
            release.start()
        elif args.command == "advance":
            release.advance()
        elif args.command == "promote":
            release.promote()
        elif args.command == "rollback":
            release.rollback(_clients(region) if args.apply else None)
        elif args.command == "status":
            release.status(_clients(region), args.minutes, datetime.now(UTC))
        else:
            release.watch(_clients(region), args.max_minutes)
    except (ReleaseError, ApplyError, ConfigFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # AWS errors (no credentials, throttling, access denied) end the step, not the shell.
        if type(error).__module__.startswith(("botocore", "boto3")):
            print(f"error: AWS refused the step: {error}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
