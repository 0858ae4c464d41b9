"""Validation of user input: the single-value checks, the component's args and the stack config."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pytest
import yaml

import stack_config
from tests.conftest import ROOT
from versioned_lambda_api import args as component_args
from versioned_lambda_api import validation
from versioned_lambda_api.args import (
    CanaryMode,
    StageArgs,
    StagePlan,
    VersionedLambdaApiArgs,
    parse_args,
    parse_stage,
)
from versioned_lambda_api.metrics import AlarmThresholds, Traffic
from versioned_lambda_api.testing import stack_config as cli_stack_config
from versioned_lambda_api.validation import ConfigError

KEY = "stages[3].some_key"
LONGEST_ALIAS = "a" * 128
TOPIC = "arn:aws:sns:us-east-1:123456789012:pager"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/events"


def test_config_error_is_a_pulumi_run_error() -> None:
    """Pulumi prints a RunError as a plain message, without a traceback."""
    assert issubclass(ConfigError, pulumi.RunError)


# --- alias_name --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["dev", "prod-canary", "a_b-1", "v2", LONGEST_ALIAS])
def test_alias_name_accepts_what_lambda_accepts(value: str) -> None:
    assert validation.alias_name(value, KEY) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must not be empty"),
        ("123", "all digits"),
        ("dev.1", "only letters, digits"),
        ("dev canary", "only letters, digits"),
        ("dév", "only letters, digits"),
        ("$LATEST", "only letters, digits"),
        ("dev\n", "only letters, digits"),
        ("dev/canary", "only letters, digits"),
    ],
)
def test_alias_name_refuses_what_lambda_rejects(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validation.alias_name(value, KEY)
    assert KEY in str(raised.value)
    assert reason in str(raised.value)
    assert repr(value) in str(raised.value) or value == ""


def test_alias_name_refuses_129_characters_naming_the_key_and_the_limit() -> None:
    with pytest.raises(ConfigError, match=r"at most 128 characters, got 129") as raised:
        validation.alias_name("a" * 129, KEY)
    assert KEY in str(raised.value)


# --- canary_percent ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (10, 10.0), (12.5, 12.5), (100, 100.0), ("0", 0.0), ("10", 10.0), ("99.9", 99.9)],
)
def test_canary_percent_accepts_0_to_100_with_decimals(value: str | float, expected: float) -> None:
    assert validation.canary_percent(value, KEY) == expected


@pytest.mark.parametrize("value", [-1, -0.01, 100.01, "100.01", "abc", "", "nan", "inf", True])
def test_canary_percent_refuses_values_outside_0_to_100(value: str | float) -> None:
    with pytest.raises(ConfigError, match="0 to 100") as raised:
        validation.canary_percent(value, KEY)
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


# --- stable_version ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("3", 3), ("42", 42), (10, 10), (3.0, 3)])
def test_stable_version_accepts_published_versions(value: str | int, expected: int) -> None:
    assert validation.stable_version(value, KEY) == expected


@pytest.mark.parametrize(
    "value", ["$LATEST", "latest", "0", 0, -1, "-1", "1.5", 1.5, "01", True, "", " 3", "3\n"]
)
def test_stable_version_refuses_anything_but_a_positive_integer(value: str | int) -> None:
    with pytest.raises(ConfigError, match="positive integer") as raised:
        validation.stable_version(value, KEY)
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


# --- canary_alias_for --------------------------------------------------------------------------


def test_canary_alias_defaults_to_live_alias_with_canary_suffix() -> None:
    assert validation.canary_alias_for("prod", None, KEY) == "prod-canary"


def test_canary_alias_given_explicitly_is_kept() -> None:
    assert validation.canary_alias_for("prod", "prod-next", KEY) == "prod-next"


def test_canary_alias_default_may_reach_exactly_128_characters() -> None:
    live = "a" * (128 - len("-canary"))
    assert validation.canary_alias_for(live, None, KEY) == live + "-canary"


def test_canary_alias_equal_to_live_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="must differ from the live alias 'prod'") as raised:
        validation.canary_alias_for("prod", "prod", KEY)
    assert KEY in str(raised.value)


def test_canary_alias_default_longer_than_128_characters_is_refused() -> None:
    live = "a" * (129 - len("-canary"))
    with pytest.raises(ConfigError, match="at most 128 characters") as raised:
        validation.canary_alias_for(live, None, KEY)
    assert KEY in str(raised.value)
    assert "shorten the alias or set" in str(raised.value)


@pytest.mark.parametrize("canary", ["", "7", "prod.canary"])
def test_canary_alias_given_explicitly_must_be_a_valid_alias(canary: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validation.canary_alias_for("prod", canary, KEY)
    assert KEY in str(raised.value)


# --- stage_name --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["dev", "prod_2", "v1-beta", "7", "s" * 128])
def test_stage_name_accepts_api_gateway_stage_names(value: str) -> None:
    assert validation.stage_name(value, KEY) == value


@pytest.mark.parametrize("value", ["", "a b", "v1.0", "dév", "dev/1", "s" * 129])
def test_stage_name_refuses_other_names(value: str) -> None:
    with pytest.raises(ConfigError, match="1 to 128 letters") as raised:
        validation.stage_name(value, KEY)
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


# --- python_runtime ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["python3.12", "python3.13", "python3.14"])
def test_python_runtime_accepts_3_12_and_newer(value: str) -> None:
    assert validation.python_runtime(value, KEY) == value


@pytest.mark.parametrize(
    "value",
    [
        "python3.11",
        "python3.9",
        "nodejs20.x",
        "python3",
        "python3.",
        "Python3.13",
        "",
        "python3.\u0661\u0663",
    ],
)
def test_python_runtime_refuses_older_or_other_runtimes(value: str) -> None:
    with pytest.raises(ConfigError, match=r"3\.12 or newer") as raised:
        validation.python_runtime(value, KEY)
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


# --- iam_actions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actions", [["dynamodb:PutItem"], ["dynamodb:PutItem", "dynamodb:GetItem", "s3:GetObject"]]
)
def test_iam_actions_accepts_exact_actions(actions: list[str]) -> None:
    assert validation.iam_actions(actions, KEY) == actions


@pytest.mark.parametrize(
    "action",
    [
        "*",
        "dynamodb:*",
        "dynamodb:Put*",
        "*:PutItem",
        "PutItem",
        "dynamodb:",
        ":PutItem",
        # IAM also treats '?' as a wildcard in action names.
        "dynamodb:?utItem",
        "dynamodb:PutItem:x",
        " dynamodb:PutItem",
        "DynamoDB:PutItem",
    ],
)
def test_iam_actions_refuses_wildcards_and_incomplete_actions(action: str) -> None:
    with pytest.raises(ConfigError, match="no wildcards") as raised:
        validation.iam_actions(["dynamodb:GetItem", action], KEY)
    assert KEY in str(raised.value)
    assert repr(action) in str(raised.value)


def test_iam_actions_refuses_an_empty_list() -> None:
    with pytest.raises(ConfigError, match="at least one action") as raised:
        validation.iam_actions([], KEY)
    assert KEY in str(raised.value)


# --- canary_mode and the alarm thresholds -------------------------------------------------------


@pytest.mark.parametrize("value", ["stage", "alias"])
def test_canary_mode_accepts_stage_and_alias(value: str) -> None:
    assert component_args.canary_mode(value, KEY) == value


@pytest.mark.parametrize("value", ["", "Stage", "ALIAS", "lambda", "weighted", " alias"])
def test_canary_mode_refuses_anything_else_listing_the_modes(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        component_args.canary_mode(value, KEY)
    assert str(raised.value) == f"{KEY} must be 'stage' or 'alias', got {value!r}"


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1.0), ("0.5", 0.5), (100, 100.0), ("0.01", 0.01)]
)
def test_alarm_error_rate_accepts_percentages_above_0(value: str | float, expected: float) -> None:
    assert validation.alarm_error_rate_percent(value, KEY) == expected


@pytest.mark.parametrize("value", [0, "0", -1, 100.01, "150", "abc", "", "nan", "inf", True])
def test_alarm_error_rate_refuses_0_and_above_100(value: str | float) -> None:
    with pytest.raises(ConfigError, match="percentage above 0 and at most 100") as raised:
        validation.alarm_error_rate_percent(value, KEY)
    assert str(raised.value).startswith(f"{KEY} ")
    assert repr(value) in str(raised.value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), ("9999.5", 9999.5), (250, 250.0)])
def test_alarm_p99_duration_accepts_values_below_the_timeout(
    value: str | float, expected: float
) -> None:
    assert validation.alarm_p99_duration_ms(value, KEY, 10) == expected


@pytest.mark.parametrize("value", [0, -5, 10000, "10000", 12000, "abc", "inf", True])
def test_alarm_p99_duration_refuses_what_could_never_or_always_fire(value: str | float) -> None:
    with pytest.raises(ConfigError, match=r"below the function's timeout \(10000 ms\)") as raised:
        validation.alarm_p99_duration_ms(value, KEY, 10)
    assert str(raised.value).startswith(f"{KEY} ")
    assert repr(value) in str(raised.value)


# --- integer_in_range, positive_number, one_of -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(128, 128), ("128", 128), ("10240", 10240), (5000, 5000), (256.0, 256)],
)
def test_integer_in_range_accepts_the_bounds_and_between(value: str | int, expected: int) -> None:
    """A whole float is how Pulumi carries a number from another language: 256.0 is 256."""
    number = validation.integer_in_range(value, KEY, 128, 10240)
    assert number == expected
    assert type(number) is int


@pytest.mark.parametrize(
    "value",
    [127, "127", 10241, "10241", "256.5", "256.0", "", "abc", True, -256, 256.5, float("inf")],
)
def test_integer_in_range_refuses_values_outside_the_range(value: str | int) -> None:
    with pytest.raises(ConfigError, match="whole number from 128 to 10240") as raised:
        validation.integer_in_range(value, KEY, 128, 10240)
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"), [(0.5, 0.5), (1, 1.0), ("50", 50.0), ("12.5", 12.5)]
)
def test_positive_number_accepts_numbers_above_zero(value: str | float, expected: float) -> None:
    assert validation.positive_number(value, KEY) == expected


@pytest.mark.parametrize("value", [0, "0", -1, "-0.5", "nan", "inf", "", "abc", True])
def test_positive_number_refuses_zero_negative_and_non_numbers(value: str | float) -> None:
    with pytest.raises(ConfigError, match="number above 0") as raised:
        validation.positive_number(value, KEY)
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


@pytest.mark.parametrize("value", [30, 30.0])
def test_one_of_accepts_a_listed_value(value: float) -> None:
    listed = validation.one_of(value, KEY, (1, 30, 90))
    assert listed == 30
    assert type(listed) is int


@pytest.mark.parametrize("value", [2, 0, 31, 30.5, True])
def test_one_of_refuses_an_unlisted_value_and_lists_the_options(value: int) -> None:
    """``True`` equals 1 in Python; as a retention period it would keep logs for one day."""
    with pytest.raises(ConfigError, match="must be one of 1, 30, 90") as raised:
        validation.one_of(value, KEY, (1, 30, 90))
    assert KEY in str(raised.value)
    assert repr(value) in str(raised.value)


# --- args.parse_args ---------------------------------------------------------------------------


def valid_args(**overrides: Any) -> VersionedLambdaApiArgs:
    args: dict[str, Any] = {
        "code": pulumi.AssetArchive({}),
        "handler": "handler.handler",
        "routes": [{"path": "events", "method": "POST"}, {"path": "events", "method": "GET"}],
        "stages": [{"name": "dev", "alias": "dev"}],
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


def test_parse_args_fills_in_the_documented_defaults() -> None:
    plan = parse_args(valid_args())
    assert plan.runtime == "python3.13"
    assert plan.memory_size == 256
    assert plan.timeout == 10
    assert plan.log_retention_days == 30
    assert plan.api_key_required is True
    assert plan.policy_statements == []
    assert plan.alarm_actions == []
    assert [(route.path, route.method) for route in plan.routes] == [
        ("events", "POST"),
        ("events", "GET"),
    ]
    assert plan.stages == [
        StagePlan(
            name="dev",
            live_alias="dev",
            canary_alias="dev-canary",
            canary_percent=0,
            stable_version=None,
            throttle_rate_limit=50,
            throttle_burst_limit=100,
            canary_mode=CanaryMode.STAGE,
            alarm_thresholds=AlarmThresholds(error_rate_percent=1, p99_duration_ms=8000),
        )
    ]


def test_parse_args_keeps_given_values() -> None:
    statements = [{"actions": ["dynamodb:PutItem"], "resources": [TABLE]}]
    plan = parse_args(
        valid_args(
            routes=[{"path": "/events/{id}/", "method": "get"}],
            stages=[
                {"name": "dev", "alias": "dev"},
                {
                    "name": "prod",
                    "alias": "prod",
                    "canary_percent": 12.5,
                    "stable_version": 3,
                    "canary_alias": "prod-next",
                    "throttle_rate_limit": 7.5,
                    "throttle_burst_limit": 20,
                    "canary_mode": "alias",
                    "alarm_error_rate_percent": 2.5,
                    "alarm_p99_duration_ms": 28999,
                },
            ],
            runtime="python3.12",
            memory_size=10240,
            timeout=29,
            log_retention_days=3653,
            api_key_required=False,
            policy_statements=statements,
            alarm_actions=[TOPIC],
        )
    )
    assert [(route.path, route.method) for route in plan.routes] == [("events/{id}", "GET")]
    assert plan.stages[1] == StagePlan(
        name="prod",
        live_alias="prod",
        canary_alias="prod-next",
        canary_percent=12.5,
        stable_version=3,
        throttle_rate_limit=7.5,
        throttle_burst_limit=20,
        canary_mode=CanaryMode.ALIAS,
        alarm_thresholds=AlarmThresholds(error_rate_percent=2.5, p99_duration_ms=28999),
    )
    # The duration alarm's default follows the function's timeout.
    assert plan.stages[0].alarm_thresholds.p99_duration_ms == 29000 * 0.8
    assert (plan.runtime, plan.memory_size, plan.timeout) == ("python3.12", 10240, 29)
    assert (plan.log_retention_days, plan.api_key_required) == (3653, False)
    assert plan.policy_statements == statements
    assert plan.alarm_actions == [TOPIC]


PROD_STAGE: dict[str, Any] = {"name": "prod", "alias": "prod"}


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"stages": [PROD_STAGE, {**PROD_STAGE, "name": "b", "alias": "b", "canary_percent": 150}]},
         "stages[1].canary_percent"),
        ({"stages": [{**PROD_STAGE, "alias": "123"}]}, "stages[0].alias"),
        ({"stages": [{**PROD_STAGE, "name": "a b"}]}, "stages[0].name"),
        ({"stages": [{**PROD_STAGE, "stable_version": "$LATEST"}]}, "stages[0].stable_version"),
        ({"stages": [{**PROD_STAGE, "canary_alias": "prod"}]}, "stages[0].canary_alias"),
        ({"stages": [{**PROD_STAGE, "throttle_rate_limit": 0}]}, "stages[0].throttle_rate_limit"),
        ({"stages": [{**PROD_STAGE, "throttle_burst_limit": 5001}]},
         "stages[0].throttle_burst_limit"),
        ({"routes": [{"path": "events", "method": "FETCH"}]}, "routes[0].method"),
        ({"routes": [{"path": "events", "method": "GET"}, {"path": "/", "method": "GET"}]},
         "routes[1].path"),
        ({"routes": [{"path": "events", "method": "GET", "request_template": "{}"}]},
         "routes[0].request_template"),
        ({"policy_statements": [{"actions": ["dynamodb:*"], "resources": [TABLE]}]},
         "policy_statements[0].actions"),
        ({"policy_statements": [{"actions": ["s3:GetObject"], "resources": [TABLE]},
                                {"actions": [], "resources": [TABLE]}]},
         "policy_statements[1].actions"),
        ({"runtime": "python3.11"}, "runtime"),
        ({"memory_size": 64}, "memory_size"),
        ({"memory_size": 10241}, "memory_size"),
        ({"timeout": 30}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"log_retention_days": 2}, "log_retention_days"),
        ({"stages": [{**PROD_STAGE, "canary_mode": "lambda"}]}, "stages[0].canary_mode"),
        ({"stages": [{**PROD_STAGE, "canary_mode": "Alias"}]}, "stages[0].canary_mode"),
        ({"stages": [{**PROD_STAGE, "alarm_error_rate_percent": 0}]},
         "stages[0].alarm_error_rate_percent"),
        ({"stages": [{**PROD_STAGE, "alarm_error_rate_percent": 100.5}]},
         "stages[0].alarm_error_rate_percent"),
        ({"stages": [{**PROD_STAGE, "alarm_p99_duration_ms": 10000}]},
         "stages[0].alarm_p99_duration_ms"),
        ({"timeout": 5, "stages": [{**PROD_STAGE, "alarm_p99_duration_ms": 6000}]},
         "stages[0].alarm_p99_duration_ms"),
        ({"stages": [{**PROD_STAGE, "alarm_p99_duration_ms": -1}]},
         "stages[0].alarm_p99_duration_ms"),
        ({"alarm_actions": TOPIC}, "alarm_actions"),
        ({"alarm_actions": [TOPIC, "pager"]}, "alarm_actions[1]"),
        ({"alarm_actions": [None]}, "alarm_actions[0]"),
    ],
)  # fmt: skip
def test_parse_args_reports_an_invalid_field_by_its_path(
    overrides: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_args(valid_args(**overrides))
    assert str(raised.value).startswith(f"{key} ")


def test_alarm_actions_may_be_outputs_known_only_at_deploy_time() -> None:
    topic = pulumi.Output.from_input(TOPIC)
    assert parse_args(valid_args(alarm_actions=[topic])).alarm_actions == [topic]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            [{"name": "prod", "alias": "a"}, {"name": "prod", "alias": "b"}],
            "stages define stage 'prod' more than once",
        ),
        (
            [{"name": "one", "alias": "live"}, {"name": "two", "alias": "live"}],
            "stages 'one' and 'two' both use alias 'live'",
        ),
        (
            [{"name": "one", "alias": "a", "canary_alias": "c"}, {"name": "two", "alias": "c"}],
            "stages 'one' and 'two' both use alias 'c'",
        ),
        (
            [{"name": "one", "alias": "prod"}, {"name": "two", "alias": "prod-canary"}],
            "stages 'one' and 'two' both use alias 'prod-canary'",
        ),
        (
            [{"name": "one", "alias": "a"}, {"name": "two", "alias": "b", "canary_alias": "a"}],
            "stages 'one' and 'two' both use alias 'a'",
        ),
        (
            [
                {"name": "one", "alias": "a", "canary_alias": "shared"},
                {"name": "two", "alias": "b", "canary_alias": "shared"},
            ],
            "stages 'one' and 'two' both use alias 'shared'",
        ),
        ([], "stages must list at least one stage"),
    ],
)
def test_parse_args_refuses_stages_that_collide(stages: list[StageArgs], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_args(valid_args(stages=stages))


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            [{"path": "events", "method": "POST"}, {"path": "events", "method": "POST"}],
            "routes define POST /events more than once",
        ),
        (
            [{"path": "/events", "method": "POST"}, {"path": "events", "method": "POST"}],
            "routes define POST /events more than once",
        ),
        (
            [{"path": "events", "method": "post"}, {"path": "events/", "method": "POST"}],
            "routes define POST /events more than once",
        ),
        ([], "routes must list at least one route"),
    ],
)
def test_parse_args_refuses_duplicate_or_missing_routes(
    routes: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_args(valid_args(routes=routes))


def test_same_method_on_other_paths_and_stages_with_own_aliases_are_accepted() -> None:
    plan = parse_args(
        valid_args(
            routes=[
                {"path": "events", "method": "POST"},
                {"path": "events/{id}", "method": "POST"},
            ],
            stages=[{"name": "dev", "alias": "dev"}, {"name": "prod", "alias": "prod"}],
        )
    )
    assert [stage.canary_alias for stage in plan.stages] == ["dev-canary", "prod-canary"]


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (0, {"live": "prod"}),
        (0.5, {"live": "prod", "canary": "prod-canary"}),
        (100, {"live": "prod", "canary": "prod-canary"}),
    ],
)
def test_stage_reaches_its_canary_alias_only_when_it_gets_traffic(
    percent: float, expected: dict[str, str]
) -> None:
    stage = parse_stage({"name": "prod", "alias": "prod", "canary_percent": percent}, "stages[0]")
    assert stage.canary_enabled is (percent > 0)
    assert stage.reachable_aliases() == expected


@pytest.mark.parametrize("percent", [0, 10, 100])
def test_a_weighted_live_alias_leaves_the_stage_only_the_live_alias_to_reach(
    percent: float,
) -> None:
    stage = parse_stage(
        {
            "name": "prod",
            "alias": "prod",
            "canary_percent": percent,
            "canary_mode": CanaryMode.ALIAS,
        },
        "stages[0]",
    )
    assert stage.stage_canary is False
    assert stage.reachable_aliases() == {"live": "prod"}


@pytest.mark.parametrize(
    ("mode", "percent", "stable", "newest", "weights"),
    [
        ("alias", 10, 3, "4", {"4": 0.1}),
        ("alias", 12.5, 3, "7", {"7": 0.125}),
        ("alias", 100, 3, "4", {"4": 1.0}),
        # Lambda refuses a weight for the alias' own version.
        ("alias", 10, 4, "4", {}),
        # Without a pinned version the alias follows the newest: nothing to split.
        ("alias", 10, None, "4", {}),
        ("alias", 0, 3, "4", {}),
        # A stage canary leaves the live alias on one version.
        ("stage", 10, 3, "4", {}),
    ],
)
def test_alias_weights_send_the_canary_share_to_the_newest_version_only_when_it_differs(
    mode: CanaryMode,
    percent: float,
    stable: int | None,
    newest: str,
    weights: dict[str, float],
) -> None:
    args: StageArgs = {
        "name": "prod",
        "alias": "prod",
        "canary_percent": percent,
        "canary_mode": mode,
    }
    if stable is not None:
        args["stable_version"] = stable
    assert parse_stage(args, "stages[0]").alias_weights(newest) == weights


@pytest.mark.parametrize(
    ("mode", "stable", "expected"),
    [
        ("stage", 3, (Traffic("live", "prod"), Traffic("canary", "prod-canary"))),
        ("alias", 3, (Traffic("live", "prod", 3), Traffic("canary", "prod", "newest"))),
        ("alias", None, (Traffic("live", "prod"), Traffic("canary", "prod", "newest"))),
    ],
)
def test_stage_traffic_follows_who_splits_the_canary_share(
    mode: CanaryMode, stable: int | None, expected: tuple[Traffic, Traffic]
) -> None:
    args: StageArgs = {
        "name": "prod",
        "alias": "prod",
        "canary_percent": 10,
        "canary_mode": mode,
    }
    if stable is not None:
        args["stable_version"] = stable
    assert parse_stage(args, "stages[0]").traffic() == expected


def test_stage_variables_name_the_live_and_canary_alias_under_lambda_alias() -> None:
    stage = parse_stage(
        {"name": "prod", "alias": "prod", "canary_alias": "next", "canary_percent": 10}, "s"
    )
    assert stage.variables == {"lambdaAlias": "prod"}
    assert stage.canary_variable_overrides == {"lambdaAlias": "next"}


# --- stack_config.load_stack_settings ----------------------------------------------------------


def load(values: dict[str, str], stack: str = "prod") -> stack_config.StackSettings:
    """Settings read from ``values`` given as un-namespaced stack config keys."""
    pulumi.runtime.set_all_config({f"event-logger:{key}": value for key, value in values.items()})
    return stack_config.load_stack_settings(pulumi.Config("event-logger"), stack)


REQUIRED_ONLY = {"alias": "prod", "canaryPercent": "10"}


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({}, "alias"),
        ({"canaryPercent": "10"}, "alias"),
        ({"alias": "", "canaryPercent": "10"}, "alias"),
        ({"alias": "prod"}, "canaryPercent"),
        ({"alias": "prod", "canaryPercent": ""}, "canaryPercent"),
    ],
)
def test_missing_required_key_is_named_with_how_to_set_it(
    values: dict[str, str], missing: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(values, stack="prod")
    message = str(raised.value)
    assert message.startswith(f"event-logger:{missing} is required")
    assert "Pulumi.prod.yaml" in message
    assert f"pulumi config set {missing} " in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("canaryPercent", "150", "0 to 100"),
        ("canaryPercent", "ten", "0 to 100"),
        ("canaryPercent", "-5", "0 to 100"),
        ("alias", "123", "all digits"),
        ("alias", "prod.v1", "only letters, digits, '-' and '_'"),
        ("stableVersion", "$LATEST", "positive integer"),
        ("stableVersion", "latest", "positive integer"),
        ("stableVersion", "0", "positive integer"),
        ("canaryAlias", "prod", "must differ from the live alias"),
        ("canaryAlias", "prod canary", "only letters, digits, '-' and '_'"),
        ("memoryMb", "64", "128 to 10240"),
        ("memoryMb", "256.5", "128 to 10240"),
        ("timeoutSeconds", "60", "1 to 29"),
        ("logRetentionDays", "2", "one of 1, 3, 5, 7, 14, 30"),
        ("logRetentionDays", "4000", "1 to 3653"),
        ("apiKeyRequired", "yes", "true or false"),
        ("stageName", "a b", "1 to 82 letters, digits, '-' or '_'"),
        ("throttleBurstLimit", "0", "1 to 5000"),
        ("throttleRateLimit", "0", "above 0"),
        ("canaryMode", "weighted", "'stage' or 'alias'"),
        ("canaryMode", "Alias", "'stage' or 'alias'"),
        ("alarmErrorRatePercent", "0", "above 0 and at most 100"),
        ("alarmErrorRatePercent", "101", "above 0 and at most 100"),
        ("alarmErrorRatePercent", "one", "above 0 and at most 100"),
        ("alarmP99DurationMs", "10000", "below the function's timeout (10000 ms)"),
        ("alarmP99DurationMs", "fast", "below the function's timeout (10000 ms)"),
    ],
)
def test_invalid_stack_config_names_the_namespaced_key_and_what_is_allowed(
    key: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load({**REQUIRED_ONLY, key: value})
    message = str(raised.value)
    assert message.startswith(f"event-logger:{key} ")
    assert expected in message
    assert value in message


@pytest.mark.parametrize(
    ("key", "suggested"),
    [
        ("canaryPrecent", "canaryPercent"),
        ("stableversion", "stableVersion"),
        ("memoryMB", "memoryMb"),
        ("timeout", "timeoutSeconds"),
        ("canary_mode", "canaryMode"),
    ],
)
def test_a_misspelt_stack_config_key_is_refused_with_the_declared_key_it_resembles(
    key: str, suggested: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load({**REQUIRED_ONLY, key: "5"})
    assert str(raised.value) == (
        f"event-logger:{key} is not a setting of this program; "
        f"did you mean event-logger:{suggested}?"
    )


def test_every_unknown_stack_config_key_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load({**REQUIRED_ONLY, "canaryPrecent": "5", "colour": "blue"})
    lines = str(raised.value).splitlines()
    assert lines[0] == (
        "event-logger:canaryPrecent is not a setting of this program; "
        "did you mean event-logger:canaryPercent?"
    )
    # Nothing resembles it: every key the program reads is listed.
    assert lines[1].startswith("event-logger:colour is not a setting of this program, which reads")
    assert all(key in lines[1] for key in (*stack_config.REQUIRED, *stack_config.DEFAULTS))
    assert len(lines) == 2


def test_keys_of_other_namespaces_are_not_the_programs_to_judge() -> None:
    pulumi.runtime.set_all_config(
        {
            "event-logger:alias": "prod",
            "event-logger:canaryPercent": "10",
            "aws:region": "eu-west-1",
            "aws:profile": "ops",
        }
    )
    settings = stack_config.load_stack_settings(pulumi.Config("event-logger"), "prod")
    assert settings.stage["alias"] == "prod"


def test_unknown_keys_are_found_in_the_config_the_cli_passes_in_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI's language host hands the program its config as JSON in PULUMI_CONFIG."""
    pulumi.runtime.set_all_config({})
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps(
            {
                "event-logger:alias": "prod",
                "event-logger:canaryPercent": "10",
                "event-logger:stageNmae": "v1",
            }
        ),
    )
    with pytest.raises(ConfigError, match=r"did you mean event-logger:stageName\?"):
        stack_config.load_stack_settings(pulumi.Config("event-logger"), "prod")


def test_unknown_key_problems_judge_only_the_programs_namespace() -> None:
    assert (
        stack_config.unknown_key_problems(
            ["event-logger:alias", "aws:region", "event-logger:alarmP99DurationMs", "other:x"]
        )
        == []
    )
    assert stack_config.unknown_key_problems(["event-logger:alarmP99Duration"]) == [
        "event-logger:alarmP99Duration is not a setting of this program; "
        "did you mean event-logger:alarmP99DurationMs?"
    ]


def test_stack_config_with_only_required_keys_uses_the_defaults() -> None:
    settings = load({"alias": "live", "canaryPercent": "12.5"}, stack="prod")
    assert settings.stage == {
        "name": "prod",
        "alias": "live",
        "canary_alias": "live-canary",
        "canary_percent": 12.5,
        "throttle_rate_limit": 50.0,
        "throttle_burst_limit": 100,
        "canary_mode": "stage",
        "alarm_error_rate_percent": 1.0,
    }
    assert settings.memory_mb == 256
    assert settings.timeout_seconds == 10
    assert settings.log_retention_days == 30
    assert settings.api_key_required is True
    # 50 requests a second of worst-case writes, 7 a second per shard.
    assert settings.event_shards == 8
    assert settings.event_retention_days == 365


def test_stack_config_empty_defaults_mean_derived_values() -> None:
    """The CLI passes Pulumi.yaml's empty defaults as empty strings."""
    settings = load(
        {
            **REQUIRED_ONLY,
            "stableVersion": "",
            "canaryAlias": "",
            "stageName": "",
            "alarmP99DurationMs": "",
        },
        stack="prod",
    )
    assert settings.stage["name"] == "prod"
    assert settings.stage["canary_alias"] == "prod-canary"
    assert "stable_version" not in settings.stage
    # The component derives it from the function's timeout.
    assert "alarm_p99_duration_ms" not in settings.stage


def test_stack_config_maps_every_key_into_the_stage_and_settings() -> None:
    settings = load(
        {
            "alias": "live",
            "canaryPercent": "0.5",
            "stableVersion": "3",
            "canaryAlias": "next",
            "stageName": "v1",
            "memoryMb": "512",
            "timeoutSeconds": "29",
            "logRetentionDays": "90",
            "apiKeyRequired": "false",
            "throttleRateLimit": "12.5",
            "throttleBurstLimit": "200",
            "canaryMode": "alias",
            "alarmErrorRatePercent": "2.5",
            "alarmP99DurationMs": "20000",
            "eventShards": "3",
            "eventRetentionDays": "30",
        },
        stack="prod",
    )
    assert (settings.event_shards, settings.event_retention_days) == (3, 30)
    assert settings.stage == {
        "name": "v1",
        "alias": "live",
        "canary_alias": "next",
        "canary_percent": 0.5,
        "stable_version": 3,
        "throttle_rate_limit": 12.5,
        "throttle_burst_limit": 200,
        "canary_mode": "alias",
        "alarm_error_rate_percent": 2.5,
        "alarm_p99_duration_ms": 20000.0,
    }
    assert (settings.memory_mb, settings.timeout_seconds) == (512, 29)
    assert (settings.log_retention_days, settings.api_key_required) == (90, False)
    # What the stack config produces is valid component input.
    plan = parse_stage(settings.stage, "stages[0]", settings.timeout_seconds)
    assert plan.reachable_aliases() == {"live": "live"}
    assert plan.alias_weights("4") == {"4": 0.005}
    assert plan.alarm_thresholds == AlarmThresholds(error_rate_percent=2.5, p99_duration_ms=20000)


@pytest.mark.parametrize(
    ("rate", "shards"), [("1", 1), ("7", 1), ("7.5", 2), ("50", 8), ("1000", 32)]
)
def test_event_shards_default_to_the_stage_throttle(rate: str, shards: int) -> None:
    settings = load({**REQUIRED_ONLY, "throttleRateLimit": rate, "eventShards": ""})
    assert settings.event_shards == shards


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("eventShards", "0", "event-logger:eventShards must be a whole number from 1 to 32"),
        ("eventShards", "33", "event-logger:eventShards must be a whole number from 1 to 32"),
        (
            "eventRetentionDays",
            "0",
            "event-logger:eventRetentionDays must be a whole number from 1 to 3650",
        ),
    ],
)
def test_event_storage_settings_are_bounded(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load({**REQUIRED_ONLY, key: value})


def test_stack_config_bounds_the_duration_alarm_by_the_configured_timeout() -> None:
    with pytest.raises(ConfigError) as raised:
        load({**REQUIRED_ONLY, "timeoutSeconds": "5", "alarmP99DurationMs": "6000"})
    assert str(raised.value) == (
        "event-logger:alarmP99DurationMs must be a number of milliseconds above 0 and below "
        "the function's timeout (5000 ms), got '6000'"
    )
    settings = load({**REQUIRED_ONLY, "timeoutSeconds": "29", "alarmP99DurationMs": "28000"})
    assert settings.stage["alarm_p99_duration_ms"] == 28000


def project_config() -> dict[str, dict[str, Any]]:
    declared: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())[
        "config"
    ]
    return declared


def test_pulumi_yaml_declares_the_same_defaults_as_stack_config() -> None:
    declared = project_config()
    defaults = {key: spec["default"] for key, spec in declared.items() if "default" in spec}
    assert defaults == stack_config.DEFAULTS
    python_type = {"string": str, "integer": int, "boolean": bool}
    for key, default in stack_config.DEFAULTS.items():
        assert type(default) is python_type[declared[key]["type"]], key


def test_pulumi_yaml_declares_exactly_the_keys_stack_config_reads() -> None:
    declared = project_config()
    assert all(":" not in key for key in declared)
    assert set(declared) == set(stack_config.DEFAULTS) | set(stack_config.REQUIRED)
    assert not set(stack_config.DEFAULTS) & set(stack_config.REQUIRED)


def test_required_keys_have_no_default_so_the_cli_insists_on_them() -> None:
    declared = project_config()
    for key in stack_config.REQUIRED:
        assert "default" not in declared[key], key


def test_namespace_is_the_project_name() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == stack_config.NAMESPACE


@pytest.mark.parametrize(
    ("stack", "alias", "percent"), [("dev", "dev", 0.0), ("prod", "prod", 10.0)]
)
def test_each_stack_file_loads(stack: str, alias: str, percent: float) -> None:
    assert (ROOT / f"Pulumi.{stack}.yaml").is_file()
    pulumi.runtime.set_all_config(cli_stack_config(ROOT, stack))
    settings = stack_config.load_stack_settings(pulumi.Config("event-logger"), stack)
    assert settings.stage["name"] == stack
    assert settings.stage["alias"] == alias
    assert settings.stage["canary_alias"] == f"{alias}-canary"
    assert settings.stage["canary_percent"] == percent


def test_every_stack_file_in_the_project_loads() -> None:
    """A new stack file must hold a valid config too."""
    stacks = sorted(path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml"))
    assert {"dev", "prod"} <= set(stacks)
    for stack in stacks:
        pulumi.runtime.set_all_config(cli_stack_config(ROOT, stack))
        stack_config.load_stack_settings(pulumi.Config("event-logger"), stack)


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_api_key_required_must_be_a_real_boolean(value: object) -> None:
    args = {
        "code": pulumi.AssetArchive({}),
        "handler": "handler.handler",
        "routes": [{"path": "events", "method": "GET"}],
        "stages": [{"name": "dev", "alias": "dev"}],
        "api_key_required": value,
    }
    with pytest.raises(ConfigError, match="api_key_required must be true or false"):
        parse_args(args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stage", "inert"),
    [
        ({"name": "prod", "alias": "prod", "canary_percent": 10}, True),
        ({"name": "prod", "alias": "prod", "canary_percent": 10, "stable_version": 3}, False),
        ({"name": "prod", "alias": "prod", "canary_percent": 0}, False),
        # A weighted alias without a pinned version has no second version to weigh: accepted
        # (the component warns, as for a stage canary) rather than refused, so that switching
        # canaryMode never breaks a stack that has not pinned a version yet.
        ({"name": "prod", "alias": "prod", "canary_percent": 10, "canary_mode": "alias"}, True),
        (
            {
                "name": "prod",
                "alias": "prod",
                "canary_percent": 10,
                "canary_mode": "alias",
                "stable_version": 3,
            },
            False,
        ),
    ],
)
def test_a_canary_without_a_pinned_live_version_is_inert(stage: StageArgs, inert: bool) -> None:
    assert parse_stage(stage, "stages[0]").canary_is_inert is inert
