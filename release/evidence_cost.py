"""What the function's own per-version metrics cost: the embedded-metric-format line it prints for
every request (function/handler.py, ``publish_metrics``), the custom metrics CloudWatch makes of
it, and the release tool's reads of them (release/aws.py, ``read_finest_metrics``).

Prices are AWS's public CloudWatch prices in us-east-1, Standard log class, first tier, before
the free tier (https://aws.amazon.com/cloudwatch/pricing/):

* Logs, "Collect (Data Ingestion)": $0.50 per GB (Lambda's logs are vended logs since May 2025,
  whose first 10 TB a month are priced the same);
* Logs, "Store (Archival)": $0.03 per GB-month, of compressed data; counted here uncompressed
  for the component's default 30-day retention, an upper bound;
* Metrics: $0.30 per metric-month for the first 10,000 metrics, "prorated by the hour" and
  metered only in hours a metric is published; EMF "is charged for log ingestion, log
  archival, and custom metrics", with no PutMetricData request; high-resolution storage costs
  nothing extra (only high-resolution *alarms* do, and the component's alarms are per-minute);
* API: GetMetricData, $0.01 per 1,000 metrics requested.

The CloudWatch Logs PutLogEvents quota counts 26 bytes per log event on top of its message
(https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html);
whether ingestion is billed on it is not documented, so it is counted (an upper bound). A GB is
taken as 10^9 bytes, the larger count if AWS meant 2^30.
"""

from __future__ import annotations

from dataclasses import dataclass

LOGS_INGESTION_USD_PER_GB = 0.50
LOGS_STORAGE_USD_PER_GB_MONTH = 0.03
CUSTOM_METRIC_USD_PER_MONTH = 0.30
GET_METRIC_DATA_USD_PER_1000_METRICS = 0.01
LOG_EVENT_OVERHEAD_BYTES = 26
BYTES_PER_GB = 10**9

MEASURED_LINE_BYTES = 500
"""The line the handler prints, measured through the Lambda runtime harness (function
``event-logger``, alias ``live``, version ``7``; tests/test_function_runtime.py asserts the
line fits): 498 bytes with a 5-character duration (71.32 ms), so 500 for the longest a request
can take (9999.99 ms; the function's timeout is 10 s)."""
_MEASURED_NAMES = ("event-logger", "live", "7")

METRICS_PER_SIDE = 6
"""Requests, Failures and Duration, each under two dimension sets (the alias; the alias and the
version that ran the request): the custom metrics one side of a stage's traffic makes. A stage
that serves only its live alias has one side; a stage canary adds one (a weighted alias adds
three, its alias-only metrics being the live side's)."""

HOURS_PER_MONTH = 730
"""The month AWS's examples prorate hourly charges over (365 x 24 / 12)."""

READ_METRICS = 16
"""Metrics one read of a window from the function's metrics requests (release.aws
``function_metric_queries``, both sides: three of the function's, three of Lambda's per
minute, two whole-window percentiles)."""


@dataclass(frozen=True)
class EvidenceCost:
    """US dollars, per unit of what drives each part of the cost."""

    per_million_requests: float
    """Log ingestion and (at most) a month's storage of the lines of a million requests."""
    per_stage_month: float
    """The custom metrics of a stage's live side, published all month."""
    per_canary_hour: float
    """A stage canary's own metrics, and the release tool reading the window every poll."""


def line_bytes(function_name: str, alias: str, version: str) -> int:
    """The line's size for other names than the harness's: the function's name appears twice
    (``FunctionName`` and ``Resource``), the alias and the version once."""
    name, measured_alias, measured_version = _MEASURED_NAMES
    return (
        MEASURED_LINE_BYTES
        + 2 * (len(function_name) - len(name))
        + len(alias)
        - len(measured_alias)
        + len(version)
        - len(measured_version)
    )


def evidence_cost(line: int, poll_seconds: float) -> EvidenceCost:
    """What the evidence costs for a metric line of ``line`` bytes, read every
    ``poll_seconds`` while a canary is watched."""
    gigabytes = 1_000_000 * (line + LOG_EVENT_OVERHEAD_BYTES) / BYTES_PER_GB
    side_month = METRICS_PER_SIDE * CUSTOM_METRIC_USD_PER_MONTH
    reads_per_hour = 3600 / poll_seconds
    return EvidenceCost(
        per_million_requests=gigabytes
        * (LOGS_INGESTION_USD_PER_GB + LOGS_STORAGE_USD_PER_GB_MONTH),
        per_stage_month=side_month,
        per_canary_hour=side_month / HOURS_PER_MONTH
        + reads_per_hour * READ_METRICS * GET_METRIC_DATA_USD_PER_1000_METRICS / 1000,
    )
