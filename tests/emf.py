"""The CloudWatch embedded metric format (EMF), as a check of one log event against the rules of
its specification, so a test can tell whether CloudWatch Logs would extract metrics from a line.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
Its rules, as checked here: the log event is one JSON object and nothing else; its ``_aws``
member holds ``Timestamp`` (integer milliseconds since the epoch) and ``CloudWatchMetrics``, an
array of MetricDirectives (``Namespace``, ``Dimensions``, ``Metrics``, no other member); each
DimensionSet is an array of at most 30 dimension names; at most 100 MetricDefinitions a
directive, each a ``Name``, an optional ``Unit`` among CloudWatch's units and an optional
``StorageResolution`` of 1 (high resolution) or 60; every dimension name is a top-level member
with a string value, every metric name one with a number or an array of at most 100 numbers.
Names and namespaces are 1 to 255 characters (the spec's JSON schema), dimension values 1 to
1,024 (CloudWatch's Dimension), and a log event is at most 1 MiB (CloudWatch Logs'
PutLogEvents quota, which EMF shares).
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

MAX_EVENT_BYTES = 1024 * 1024
MAX_DIMENSIONS = 30
MAX_METRICS = 100
MAX_VALUES = 100
UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)
# Milliseconds since the epoch between 2001 and 2286: a value in seconds or microseconds is not.
_PLAUSIBLE_MS = (10**12, 10**13)


def problems(message: str) -> list[str]:
    """Every rule ``message`` (one log event's text) breaks; empty when it is valid EMF."""
    found: list[str] = []
    if len(message.encode()) > MAX_EVENT_BYTES:
        found.append(f"the event is over {MAX_EVENT_BYTES} bytes")
    if message != message.strip():
        found.append("data before or after the JSON object")
    try:
        root = json.loads(message)
    except ValueError as error:
        return [*found, f"not JSON: {error}"]
    if not isinstance(root, dict):
        return [*found, "not a JSON object"]
    metadata = root.get("_aws")
    if not isinstance(metadata, dict):
        return [*found, "no _aws object"]
    found += _unknown(metadata, {"Timestamp", "CloudWatchMetrics"}, "_aws")
    timestamp = metadata.get("Timestamp")
    if not _is_int(timestamp):
        found.append(f"_aws.Timestamp is not an integer: {timestamp!r}")
    elif not _PLAUSIBLE_MS[0] <= timestamp < _PLAUSIBLE_MS[1]:
        found.append(f"_aws.Timestamp is not milliseconds since the epoch: {timestamp}")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*found, "_aws.CloudWatchMetrics is not a non-empty array"]
    for index, directive in enumerate(directives):
        found += _directive_problems(root, directive, f"CloudWatchMetrics[{index}]")
    return found


def check(message: str) -> dict[str, Any]:
    """The parsed event, after asserting that it is valid EMF."""
    assert not problems(message), problems(message)
    document: dict[str, Any] = json.loads(message)
    return document


def _directive_problems(root: dict[str, Any], directive: object, where: str) -> list[str]:
    if not isinstance(directive, dict):
        return [f"{where} is not an object"]
    found = _unknown(directive, {"Namespace", "Dimensions", "Metrics"}, where)
    namespace = directive.get("Namespace")
    if not _is_name(namespace):
        found.append(f"{where}.Namespace is not a 1-255 character string: {namespace!r}")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list):
        found.append(f"{where}.Dimensions is not an array")
        dimension_sets = []
    for set_index, names in enumerate(dimension_sets):
        if not isinstance(names, list) or len(names) > MAX_DIMENSIONS:
            found.append(f"{where}.Dimensions[{set_index}] is not an array of <= 30 names")
            continue
        for name in names:
            value = root.get(name) if isinstance(name, str) else None
            if not _is_name(name):
                found.append(f"{where}: dimension name {name!r} is not a 1-255 character string")
            elif not (isinstance(value, str) and 1 <= len(value) <= 1024):
                found.append(f"dimension {name!r} is not a top-level 1-1024 character string")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
        return [*found, f"{where}.Metrics is not an array of <= {MAX_METRICS} definitions"]
    for definition in metrics:
        found += _metric_problems(root, definition, where)
    return found


def _metric_problems(root: dict[str, Any], definition: object, where: str) -> list[str]:
    if not isinstance(definition, dict):
        return [f"{where}: a metric definition is not an object"]
    found = _unknown(definition, {"Name", "Unit", "StorageResolution"}, f"{where} metric")
    name = definition.get("Name")
    if not _is_name(name):
        return [*found, f"{where}: metric name {name!r} is not a 1-255 character string"]
    if "Unit" in definition and definition["Unit"] not in UNITS:
        found.append(f"metric {name!r}: unit {definition['Unit']!r} is not CloudWatch's")
    if "StorageResolution" in definition and not (
        _is_int(definition["StorageResolution"]) and definition["StorageResolution"] in (1, 60)
    ):
        found.append(f"metric {name!r}: StorageResolution is not 1 or 60")
    value = root.get(name)
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_VALUES or not all(_is_number(v) for v in values):
        found.append(f"metric {name!r} is not a top-level number or array of <= 100 numbers")
    return found


def _unknown(obj: dict[str, Any], allowed: set[str], where: str) -> list[str]:
    return [f"{where} has a member the spec does not define: {key}" for key in obj.keys() - allowed]


def _is_name(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 1 <= len(value) <= 255


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
