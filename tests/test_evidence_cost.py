"""The cost of the function's own metrics (release/evidence_cost.py): the arithmetic from AWS's
prices, and the line size it starts from."""

from __future__ import annotations

from dataclasses import astuple

import pytest

from release import evidence_cost
from release.evidence_cost import evidence_cost as cost
from release.evidence_cost import line_bytes
from tests.conftest import ROOT


def test_a_million_500_byte_lines_cost_their_ingestion_and_a_months_storage() -> None:
    # (500 + 26) bytes x 10^6 = 0.526 GB; x ($0.50 ingestion + $0.03 storage) = $0.27878.
    # Live's six metrics all month: 6 x $0.30 = $1.80. A canary hour: its six metrics for an
    # hour (6 x $0.30 / 730 = $0.002466) and 360 reads of 16 metrics (5,760 x $0.01 / 1,000 =
    # $0.0576).
    assert astuple(cost(500, poll_seconds=10)) == pytest.approx((0.27878, 1.80, 0.060066), abs=1e-6)


def test_polling_every_minute_reads_a_sixth_as_often() -> None:
    hourly_metrics = 6 * 0.30 / 730
    assert cost(500, poll_seconds=60).per_canary_hour == pytest.approx(hourly_metrics + 0.0096)


def test_longer_names_make_a_longer_line() -> None:
    # A deployed function (Pulumi's auto-name, 29 characters) on its canary alias, version 12:
    # the name twice (+34), the alias (+7) and the version (+1).
    assert line_bytes("event-logger-function-1a2b3c4", "prod-canary", "12") == 542
    assert line_bytes("event-logger", "live", "7") == evidence_cost.MEASURED_LINE_BYTES


def test_the_readme_states_the_cost_of_a_deployed_functions_line() -> None:
    deployed = cost(line_bytes("event-logger-function-1a2b3c4", "prod-canary", "12"), 10)
    readme = (ROOT / "README.md").read_text()
    assert f"**${deployed.per_million_requests:.2f} per million requests**" in readme
    assert f"**${deployed.per_stage_month:.2f} a month per stage**" in readme
