"""How long the plan takes, for the prod stack and for a 100-route program, next to a baseline
measured in the same run.

    venv/bin/python bench/plan_speed.py [--runs N]

Each plan runs as users run it, a fresh
``python -m versioned_lambda_api.analysis.plan``. The baseline is a fresh interpreter
 that only imports the Pulumi SDK and pulumi-aws: the cost no plan can avoid. The
three commands take turns, round after round, so a drift in the machine's speed touches them
alike; each plan's ratio to the baseline is taken round by round. Timings on these 2-core
machines are noisy: mean, median and p90 are printed, the goals are judged on the median, and
no test asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Command:
    label: str
    argv: list[str]


@dataclass(frozen=True)
class Plan(Command):
    goal_seconds: float
    """Judged on the median."""


def _baseline(python: str) -> Command:
    return Command(
        "baseline (import pulumi, pulumi_aws)", [python, "-c", "import pulumi, pulumi_aws"]
    )


def _plans(python: str) -> list[Plan]:
    plan = [python, "-m", "versioned_lambda_api.analysis.plan"]
    program = ["--program", "tests/programs/many_routes"]
    return [
        Plan("prod plan", [*plan, "--stack", "prod"], 3.0),
        Plan("100-route plan", [*plan, "--stack", "test", *program], 5.0),
    ]


def _seconds(command: Command) -> float:
    started = time.perf_counter()
    # The plans exit 0; anything else means the timing is of a failure.
    subprocess.run(command.argv, cwd=ROOT, check=True, capture_output=True)  # noqa: S603
    return time.perf_counter() - started


def _summary(values: list[float], unit: str) -> str:
    p90 = statistics.quantiles(values, n=10, method="inclusive")[-1]
    return (
        f"mean {statistics.mean(values):5.2f}{unit}  median {statistics.median(values):5.2f}{unit}"
        f"  p90 {p90:5.2f}{unit}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds, at least 2 (default 7)")
    runs = parser.parse_args().runs
    if runs < 2:
        parser.error("--runs must be at least 2, for a p90")
    baseline, plans = _baseline(sys.executable), _plans(sys.executable)
    commands = [baseline, *plans]
    print(f"timing {runs} rounds of {len(commands)} fresh processes, after a warm-up round ...")
    timings: dict[str, list[float]] = {command.label: [] for command in commands}
    for round_number in range(runs + 1):
        for command in commands:
            seconds = _seconds(command)
            if round_number > 0:
                timings[command.label].append(seconds)
    base = timings[baseline.label]
    width = max(len(command.label) for command in commands)
    print(f"{baseline.label:<{width}}  {_summary(base, ' s')}")
    for plan in plans:
        ratios = [s / b for s, b in zip(timings[plan.label], base, strict=True)]
        print(f"{plan.label:<{width}}  {_summary(timings[plan.label], ' s')}")
        print(f"{'  ratio to baseline':<{width}}  {_summary(ratios, ' x')}")
    for plan in plans:
        verdict = (
            "meets" if statistics.median(timings[plan.label]) < plan.goal_seconds else "MISSES"
        )
        print(f"goal: {plan.label} under {plan.goal_seconds:.0f} s (median) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
