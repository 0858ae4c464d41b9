"""Children's names: unambiguous between instances, and limits derived from AWS's rules."""

import itertools
import re

import pytest

from versioned_lambda_api import aws_names, names
from versioned_lambda_api.validation import ConfigError

ROLES = ("live-alias", "canary-alias", "stage", "dashboard", "live-error-rate-alarm")


def test_the_derived_limits_are_the_function_name_and_the_statement_id() -> None:
    # <name>-function-<7 hex> within Lambda's 64; apigateway-<stage>-canary within 100.
    assert names.max_component_name_length() == 64 - len("-function") - 8 == 47
    assert names.max_stage_name_length() == 100 - len("apigateway--canary") == 82


def test_the_longest_names_fit_every_rule() -> None:
    component = "c" * names.max_component_name_length()
    stage = "s" * names.max_stage_name_length()
    names.check_names(component, [stage])
    for name in names.PHYSICAL_NAMES:
        physical = name.build(component, stage)
        assert aws_names.name_problem(name.type_token, physical) is None, name.what


def test_a_component_name_one_too_long_names_the_function_and_the_limit() -> None:
    with pytest.raises(ConfigError) as caught:
        names.check_names("c" * 48, ["prod"])
    message = str(caught.value)
    assert "'" + "c" * 48 + "' (48 characters) cannot name the function" in message
    assert "1 to 47 letters" in message


def test_a_stage_name_one_too_long_names_the_field_and_its_limit() -> None:
    with pytest.raises(ConfigError, match=r"stages\[1\]\.name 's{83}' \(83 characters\)") as e:
        names.check_names("api", ["dev", "s" * 83])
    assert "at most 82 characters" in str(e.value)


@pytest.mark.parametrize("component", ["orders api", "orders.v2", "ordérs"])
def test_a_component_name_the_dashboard_cannot_carry_is_refused(component: str) -> None:
    with pytest.raises(ConfigError, match="may contain only letters, digits, '-' and '_'"):
        names.check_names(component, ["prod"])


def test_an_empty_component_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="must not be empty"):
        names.check_names("", ["prod"])


def test_statement_ids_are_valid_and_distinct_per_stage_and_role() -> None:
    ids = {
        names.statement_id(stage, role) for stage in ("dev", "prod") for role in ("live", "canary")
    }
    assert len(ids) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,100}", sid) for sid in ids)


NAMES = ["api", "api-eu", "a", "a-b", "a_b", "eu"]
STAGES = ["prod", "eu-prod", "b-prod", "dev", "x"]


def test_two_instances_never_share_a_logical_name() -> None:
    # Every (component, stage) pair gives names no other pair gives: the classic collision is
    # "api" + "eu-prod" against "api-eu" + "prod".
    owner: dict[str, tuple[str, str]] = {}
    for component, stage in itertools.product(NAMES, STAGES):
        for role in ROLES:
            for logical in (
                names.child(component, role),
                names.stage_child(component, role, stage),
            ):
                key = (component, "" if logical == names.child(component, role) else stage)
                assert owner.setdefault(logical, key) == key, logical


def test_dashboard_names_carry_the_api_id() -> None:
    assert names.dashboard_name("orders", "prod", "a1b2c3d4e5") == "orders-prod-a1b2c3d4e5"
