"""event-logger-release {status,start,check,advance,promote,rollback,watch} --stack STACK [options]

Also ``python -m release``. Exit status: 0 done, 1 the step failed (its state, Pulumi or AWS
refused it), 2 the command line is wrong (options, the program folder, the stack), 3 rollback or
watch stopped while the canary still takes (or may take) traffic, 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from release import __version__
from release.aws import AwsError
from release.commands import (
    DEFAULT_FIRST_STEPS,
    DEFAULT_STEPS,
    AwsClients,
    CanaryStillLiveError,
    Release,
    ReleaseError,
)
from release.config_file import ConfigFileError, NotFoundError, StackConfigFile, project_name
from release.deploy import ApplyError, Deployer, PulumiDeployer
from release.judge import DEFAULT_CONFIG, JudgeConfig
from release.lock import StackLockedError, stack_lock
from release.state import share
from release.watch import Watch

WATCH_LOCK_WAIT_SECONDS = 60
"""How long watch waits to act for a colleague's step (a rollback, say) to finish."""
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
CANARY_STILL_LIVE = 3
"""Rollback or watch stopped while the canary still takes (or may take) traffic."""
# The commands whose failure leaves a canary someone meant to stop, or to watch, serving.
GUARDS_THE_CANARY = ("rollback", "watch")


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


def _prog() -> str:
    # Run as `python -m release`, argv[0] is the path of this file.
    name = Path(sys.argv[0]).name
    return "python -m release" if name in {"__main__.py", "-c", ""} else name


def _add_stack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. prod")
    parser.add_argument(
        "--program",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the Pulumi program's folder, holding Pulumi.yaml and Pulumi.<stack>.yaml "
        "(default: the current folder)",
    )


def _add_no_apply(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-apply",
        dest="apply",
        action="store_false",
        help="only edit the stack config file, for review; deploy it later with 'make up'",
    )


def _add_steps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        type=_steps,
        default=None,
        help="canary shares to advance through (default: the smallest of 1, 2, 5 and 10 at "
        "which live's traffic in the hour before lets a canary as good as live pass within the "
        "bake, then 25,50)",
    )


def _add_judge(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--latency-threshold-ms",
        type=float,
        help="a request slower than this counts as slow (default: live's p99 in the hour "
        "before, so the slow test compares the canary's tail with live's)",
    )
    parser.add_argument(
        "--on-timeout",
        choices=("WAIT", "PROMOTE", "ROLLBACK"),
        default=DEFAULT_CONFIG.on_timeout,
        help="what a step whose bake ends undecided does: WAIT (the default) keeps judging "
        "while the evidence can come within 24 h at this traffic, as too little traffic is "
        "neither a pass nor a failure; PROMOTE passes the step UNVERIFIED (said, and noted "
        "above stableVersion in the stack file); ROLLBACK rolls back",
    )
    parser.add_argument(
        "--bake-minutes",
        type=_positive_int,
        default=DEFAULT_CONFIG.max_periods,
        help="the bake: minutes a step is judged before --on-timeout applies (default: "
        f"{DEFAULT_CONFIG.max_periods})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Take a stack's canary from start to promotion or rollback. Exit status: "
        "0 done, 1 the step failed, 2 a wrong command line, 3 rollback or watch stopped with "
        "the canary still live, 130 stopped by Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # What the steps without a given option take (each subcommand has only its own options).
    parser.set_defaults(
        apply=True,
        steps=None,
        latency_threshold_ms=None,
        on_timeout=DEFAULT_CONFIG.on_timeout,
        bake_minutes=DEFAULT_CONFIG.max_periods,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, summary: str, description: str, *options: Callable[..., None]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=description)
        sub.set_defaults(command_parser=sub)  # to report a wrong --program or --stack
        _add_stack(sub)
        for add in options:
            add(sub)
        return sub

    status = command(
        "status",
        "versions, shares, metrics and the judge's verdict",
        "Show the live and the canary side (aliases, versions, shares), their metrics side by "
        "side over the last --minutes, and the judge's verdict with its evidence. Changes "
        "nothing.",
        _add_judge,
    )
    status.add_argument(
        "--minutes", type=_positive_int, default=30, help="metrics window (default: 30)"
    )
    status.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, or one JSON object on stdout for scripts (default: text)",
    )
    command(
        "start",
        "pin the live version (stableVersion), canary share 0",
        "Set stableVersion to the live version and canaryPercent to 0, so the next deploy's "
        "new version becomes the canary and takes no traffic until its pre-traffic check "
        "passes ('advance' or 'watch' runs it).",
        _add_no_apply,
    )
    command(
        "check",
        "smoke-test the canary before it takes traffic",
        "Invoke the canary alias directly with each route's sample requests (and those of "
        "release_checks.json beside Pulumi.yaml), rendered by the routes' request templates, "
        "and judge each reply as API Gateway would answer it: status class, body, the version "
        "that answered. A write request records its event in the stack's table. Changes "
        "nothing else.",
    )
    command(
        "advance",
        "move the canary to the next share",
        "Set canaryPercent to the next of --steps above it. From 0 the pre-traffic check "
        "('check') runs first, and a failure changes nothing.",
        _add_no_apply,
        _add_steps,
    )
    command(
        "promote",
        "pin the canary's version as stable",
        "Set stableVersion to the canary's version and canaryPercent to 0, so the next "
        "deploy's version waits for its pre-traffic check.",
        _add_no_apply,
    )
    command(
        "rollback",
        "send no traffic to the canary",
        "Stop the canary at once through the AWS API (the stage's canary share, or the live "
        "alias' weights, to 0), then set canaryPercent to 0 in the stack file and apply it.",
        _add_no_apply,
    )
    watch = command(
        "watch",
        "judge every minute; advance, promote or roll back",
        "Judge the canary every minute and act on the verdict: advance through --steps, "
        "then promote, or roll back. From canaryPercent 0 it first runs the pre-traffic check "
        "and advances to the first step. One judgement carries its evidence across the steps, "
        "and across a restart: run again, watch resumes where it stopped. A rollback stops "
        "the canary through AWS even with --no-apply. Stops when someone else changes the "
        "stack file or what AWS serves, or when the evidence is undecidable at this traffic. "
        "Ctrl-C stops watching and changes nothing more.",
        _add_no_apply,
        _add_steps,
        _add_judge,
    )
    watch.add_argument(
        "--max-minutes",
        type=_positive_int,
        help="stop watching after this long (default: until the judge decides, or the "
        "evidence is undecidable at this traffic)",
    )
    return parser


def _clients(region: str | None) -> AwsClients:
    import boto3  # noqa: PLC0415 - only the steps that talk to AWS pay for it
    from botocore.config import Config  # noqa: PLC0415

    # botocore waits 60 s for a connection and for an answer by default: a person stopping a
    # canary learns that AWS is unreachable within a minute instead (3 tries of 5 + 10 s).
    config = Config(
        connect_timeout=5, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 3}
    )
    # The pre-traffic check's Invoke runs the function: one attempt, since a retry after a lost
    # answer would run it (and its write) again, and up to 30 s for the answer, past API
    # Gateway's 29 s integration limit.
    invoke_config = Config(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 1}
    )
    session = boto3.session.Session(region_name=region)
    return AwsClients(
        cloudwatch=session.client("cloudwatch", config=config),
        apigateway=session.client("apigateway", config=config),
        lambda_=session.client("lambda", config=config),
        invoker=session.client("lambda", config=invoke_config),
    )


def _deployer(program: Path, stack: str) -> Deployer:
    return PulumiDeployer(program, stack)


def _setup_advice(error: BaseException, config: StackConfigFile) -> str | None:
    """How to fix boto3's setup errors (no credentials, region or profile), ``None`` for any
    other error. AWS' own answers are :class:`AwsError` already (``release.aws.classify``)."""
    if not type(error).__module__.startswith(("botocore", "boto3")):
        return None
    # botocore is loaded: the error came from it.
    from botocore import exceptions  # noqa: PLC0415

    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return (
            f"no AWS credentials ({error}): set AWS_PROFILE to a profile of ~/.aws/config "
            "(after 'aws sso login' or 'aws configure'), or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)"
        )
    if isinstance(error, exceptions.NoRegionError):
        return (
            f"no AWS region: set aws:region in {config.path.name} ('pulumi config set "
            f"aws:region <region> --stack {config.stack}'), or "
            "AWS_REGION"
        )
    if isinstance(error, exceptions.ProfileNotFound):
        return f"{error}: set AWS_PROFILE to a profile of ~/.aws/config, or unset it"
    return None


def _message(error: Exception, config: StackConfigFile) -> str:
    """An error for people; missing credentials or region come with how to provide them."""
    if not isinstance(error, AwsError):
        return str(error)
    if error.kind == "credentials" and error.__cause__ is not None:
        return _setup_advice(error.__cause__, config) or error.message
    return error.message


def _interrupted(
    command: str, config: StackConfigFile, release: Release, clients: AwsClients | None
) -> None:
    """Say on Ctrl-C what the stack file says and, when the step had read AWS, what AWS
    serves now (read again: an apply the interrupt cut short may have changed it; Pulumi
    cancels its update on the same Ctrl-C)."""

    if command in ("status", "check"):
        # Neither edits the file or applies anything: there is nothing to say of the stack.
        _say("interrupted")
        return
    stack = config.stack
    stopped = (
        f"interrupted: {command} stopped; {config.path.name} says canaryPercent "
        f"{config.read('canaryPercent')}, stableVersion {config.read('stableVersion') or 'unset'}"
    )
    if release.last_state is None or clients is None:
        _say(f"{stopped} (if an apply was cut short, 'make up STACK={stack}' completes it)")
        return
    _say(stopped)
    _say("reading what AWS serves now (Ctrl-C again to skip) ...")
    try:
        state = release.read_state(clients, release.last_state.outputs)
    except (AwsError, KeyboardInterrupt) as error:
        reason = error.message if isinstance(error, AwsError) else "skipped"
        _say(f"AWS not read again ({reason}): 'make release-status STACK={stack}' shows it")
        return
    _say(f"AWS: {state.live.describe()}")
    for difference in state.differences():
        _say(f"drift: {difference}")
    if command == "watch" and state.live.percent > 0:
        _say(
            f"the canary is live and unwatched: 'make release-watch STACK={stack}' resumes, "
            f"'make release-rollback STACK={stack}' stops it"
        )


def _aws_clients(args: argparse.Namespace, config: StackConfigFile) -> AwsClients | None:
    """The AWS clients of a step that talks to AWS: every one but those editing only the file
    (``--no-apply``); watch reads metrics either way, and an advance from 0 invokes the canary
    for its pre-traffic check."""
    from_zero = args.command == "advance" and float(config.get("canaryPercent") or 0) == 0
    if args.command in ("status", "check", "watch") or args.apply or from_zero:
        return _clients(config.get_raw("aws:region"))
    return None


def run(args: argparse.Namespace, release: Release, clients: AwsClients | None) -> None:
    """Take the step the command line names."""
    if args.command == "start":
        release.start(clients)
    elif args.command == "advance":
        release.advance(clients)
    elif args.command == "promote":
        release.promote(clients)
    elif args.command == "rollback":
        release.rollback(clients)
    else:
        assert clients is not None  # noqa: S101 - _aws_clients gives these theirs
        if args.command == "check":
            release.check(clients)
        elif args.command == "watch":
            Watch(release).run(clients, args.max_minutes)
        elif args.format == "json":
            report = release.status_report(clients, args.minutes, datetime.now(UTC))
            print(json.dumps(report.to_json(), indent=2))
        else:
            release.status(clients, args.minutes, datetime.now(UTC))


def _failure(command: str, error: Exception, release: Release) -> int:
    """The exit status of a failed step: 3 when a rollback or watch stopped while the canary
    still takes, or may take, traffic (and what is live is said), else 1."""
    if command in GUARDS_THE_CANARY and _canary_may_be_live(error, release):
        return CANARY_STILL_LIVE
    return 1


def _canary_may_be_live(error: Exception, release: Release) -> bool:
    """Whether the canary may still take traffic after ``error``, saying so (and how to stop
    it) unless the error's own message already does."""
    if isinstance(error, CanaryStillLiveError):
        return True
    if isinstance(error, AwsError) and error.live is None and not error.outcome_known:
        return True  # its message says the outcome is unknown, and the re-read failed
    # A failed stop's re-read is the newest word on AWS; else what the step last read.
    live = error.live if isinstance(error, AwsError) and error.live is not None else None
    if live is None and release.last_state is not None:
        live = release.last_state.live
    if live is None:
        if isinstance(error, AwsError):
            _say(
                "the canary may still take traffic: AWS could not be read; "
                f"'make release-status STACK={release.stack}' shows it once it can"
            )
        # Else it stopped before asking AWS anything (the stack, the file, Pulumi).
        return isinstance(error, AwsError)
    if live.percent > 0:
        _say(
            f"the canary still takes {share(live.percent)}% ({live.describe()}): "
            f"'make release-rollback STACK={release.stack}' stops it"
        )
    return live.percent > 0


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    program = args.program.resolve()

    def exclusive(wait_seconds: float = 0) -> AbstractContextManager[object]:
        return stack_lock(
            program / f"Pulumi.{args.stack}.yaml",
            args.stack,
            command=f"release {args.command}",
            wait_seconds=wait_seconds,
        )

    if args.command in ("status", "check"):
        # Neither edits the stack file: no lock, so they work beside another operator's step.
        return _step(args, program)
    if args.command == "watch":
        # Watch takes the lock for each action only: between them a colleague may roll back,
        # which watch then sees when it re-reads the file and AWS.
        return _step(args, program, lambda: exclusive(WATCH_LOCK_WAIT_SECONDS))
    # One operator at a time edits and applies a stack: taken before the stack file is read, so
    # what a step reads is what it changes.
    try:
        with exclusive():
            return _step(args, program)
    except StackLockedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _step(
    args: argparse.Namespace,
    program: Path,
    exclusive: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> int:
    try:
        config = StackConfigFile(program, project_name(program), args.stack)
    except NotFoundError as error:
        args.command_parser.error(str(error))
    except ConfigFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    # JSON goes to stdout alone; the progress lines a report prints go to stderr.
    to_stderr = args.command == "status" and args.format == "json"
    release = Release(
        config=config,
        deployer=_deployer(program, args.stack),
        apply=args.apply,
        steps=args.steps or DEFAULT_STEPS,
        first_steps=() if args.steps else DEFAULT_FIRST_STEPS,
        out=(lambda line: print(line, file=sys.stderr)) if to_stderr else print,
        judge_config=JudgeConfig(on_timeout=args.on_timeout, max_periods=args.bake_minutes),
        latency_threshold_ms=args.latency_threshold_ms,
        exclusive=exclusive,
    )
    clients = None
    try:
        if args.command not in ("status", "check"):
            # Before any AWS change: a step must be able to record what it did.
            config.check_writable()
        clients = _aws_clients(args, config)
        run(args, release, clients)
    except KeyboardInterrupt:
        _interrupted(args.command, config, release, clients)
        return INTERRUPTED
    except (AwsError, ReleaseError, ApplyError, ConfigFileError) as error:
        print(f"error: {_message(error, config)}", file=sys.stderr)
        return _failure(args.command, error, release)
    except Exception as error:
        # boto3 refuses to make clients without a region, or with a profile that is not
        # there; anything else is a bug, and its traceback says where.
        message = _setup_advice(error, config)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
