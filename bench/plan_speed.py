"""How long the prod plan takes, next to a baseline measured in the same run.

    venv/bin/python bench/plan_speed.py [--runs N]

Each plan runs as users run it, a fresh ``python -m components.plan --stack prod``. The baseline
is a fresh interpreter that only imports the Pulumi SDK and pulumi-aws: the cost no plan can
avoid. Timings on these 2-core machines are noisy, so the medians and their ratio are printed;
the goal (well under 3 s) is judged on the median, and no test asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 3.0


def _median_seconds(command: list[str], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # noqa: S603
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    python = sys.executable
    print(f"timing {runs} runs each ...", flush=True)
    baseline = _median_seconds([python, "-c", "import pulumi, pulumi_aws"], runs)
    plan = _median_seconds([python, "-m", "components.plan", "--stack", "prod"], runs)
    print(f"baseline (import pulumi, pulumi_aws): {baseline:6.2f} s median")
    print(f"prod plan (python -m components.plan): {plan:6.2f} s median")
    print(f"ratio plan / baseline:                {plan / baseline:6.2f}x")
    verdict = "meets" if plan < GOAL_SECONDS else "MISSES"
    print(f"goal: under {GOAL_SECONDS:.0f} s -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
