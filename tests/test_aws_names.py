"""The physical-name rules against the limits pulumi-aws, terraform-provider-aws and botocore
document, each case beside its source."""

from __future__ import annotations

import pytest

from versioned_lambda_api.aws_names import (
    AUTONAME_SUFFIX_LENGTH,
    NAME_RULES,
    autoname,
    autoname_problem,
    max_logical_name_length,
    name_problem,
)

FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
PERMISSION = "aws:lambda/permission:Permission"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
API_KEY = "aws:apigateway/apiKey:ApiKey"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
TABLE = "aws:dynamodb/table:Table"


def test_the_suffix_is_a_dash_and_seven_hex_digits() -> None:
    # pulumi-aws resources.go: AutoName(..., "-") with Randlen 7.
    assert AUTONAME_SUFFIX_LENGTH == 8
    assert autoname("orders-function", "abcdef0") == "orders-function-abcdef0"


@pytest.mark.parametrize(
    ("typ", "prop", "max_length", "autonamed", "cited"),
    [
        # resources.go: function_name AutoName("name", 64, "-"); botocore: a bare name <= 64.
        (FUNCTION, "name", 64, True, 'AutoName("name", 64'),
        # resources.go setAutonaming (255); botocore shape Alias: 1-128.
        (ALIAS, "name", 128, True, "shape Alias: 1-128"),
        # resources.go: statement_id AutoName("statementId", 100, "-"); validPolicyStatementID.
        (PERMISSION, "statementId", 100, True, "validPolicyStatementID"),
        # resources.go: name AutoName("name", 64, "-"); botocore roleNameType: 1-64.
        (ROLE, "name", 64, True, "roleNameType: 1-64"),
        (ROLE_POLICY, "name", 128, True, "policyNameType: 1-128"),
        (LOG_GROUP, "name", 512, True, "LogGroupName: 1-512"),
        # resources.go: alarm_name AutoName("name", 255, "-"); botocore AlarmName: 1-255.
        (ALARM, "name", 255, True, "AlarmName: 1-255"),
        # A required input; botocore PutDashboard and validDashboardName: at most 255.
        (DASHBOARD, "dashboardName", 255, False, "validDashboardName"),
        # AWS documents no limit: the autoname maximum is the only bound.
        (REST_API, "name", 255, True, "documents no limit"),
        # A required input; botocore CreateStage stageName: at most 128.
        (STAGE, "stageName", 128, False, "at most 128"),
        (API_KEY, "name", 255, True, "documents no limit"),
        (USAGE_PLAN, "name", 255, True, "documents no limit"),
        (TABLE, "name", 255, True, "TableName: 3-255"),
    ],
)
def test_each_type_has_its_rule_with_its_source(
    typ: str, prop: str, max_length: int, autonamed: bool, cited: str
) -> None:
    rule = NAME_RULES[typ]
    assert (rule.property, rule.max_length, rule.autonamed) == (prop, max_length, autonamed)
    assert cited in rule.source
    assert name_problem(typ, "a" * max_length) is None
    assert name_problem(typ, "a" * (max_length + 1)) == (
        f"{prop} {'a' * (max_length + 1)!r} is {max_length + 1} characters long; "
        f"{typ} allows at most {max_length}"
    )


def test_types_without_a_physical_name_have_no_rule() -> None:
    assert name_problem("aws:apigateway/deployment:Deployment", "any/thing {at} all") is None
    assert autoname_problem("aws:apigateway/deployment:Deployment", "x" * 500) is None
    assert max_logical_name_length("aws:apigateway/deployment:Deployment") is None


def test_a_47_character_component_fits_the_function_name_and_48_does_not() -> None:
    fits, too_long = "c" * 47 + "-function", "c" * 48 + "-function"
    assert autoname_problem(FUNCTION, fits) is None
    assert len(autoname(fits, "abcdef0")) == 64
    # The bridge's message (pulumi sdk NewUniqueName): it refuses, it does not truncate.
    assert autoname_problem(FUNCTION, too_long) == (
        f"could not make instance of '{FUNCTION}': name '{too_long}-' plus 7 random chars is "
        "longer than maximum length 64 (the logical name is 57 characters; at most 56 fit)"
    )


@pytest.mark.parametrize(
    ("typ", "longest"),
    [
        (FUNCTION, 56),
        (ROLE, 56),
        (PERMISSION, 92),
        # The alias' 128 binds before the provider's 255.
        (ALIAS, 120),
        (ROLE_POLICY, 120),
        # The provider's 255 binds before the log group's 512.
        (LOG_GROUP, 247),
        (ALARM, 247),
        (TABLE, 247),
        (DASHBOARD, None),
        (STAGE, None),
    ],
)
def test_the_longest_logical_name_each_type_can_autoname(typ: str, longest: int | None) -> None:
    assert max_logical_name_length(typ) == longest
    if longest is not None:
        assert autoname_problem(typ, "n" * longest) is None
        assert autoname_problem(typ, "n" * (longest + 1)) is not None


def test_a_log_group_name_the_provider_cannot_generate_may_still_be_given() -> None:
    assert autoname_problem(LOG_GROUP, "g" * 248) is not None
    assert name_problem(LOG_GROUP, "/aws/lambda/" + "g" * 300) is None


@pytest.mark.parametrize("bad", ["/", "{", "}", "+", ".", ":", " "])
def test_statement_ids_take_letters_digits_dash_and_underscore_only(bad: str) -> None:
    statement = f"api-prod-live-GET-orders{bad}id-invoke"
    assert name_problem(PERMISSION, statement) == (
        f"statementId {statement!r} may contain only letters, digits, '-' and '_'"
    )
    assert autoname_problem(PERMISSION, statement) is not None
    assert name_problem(PERMISSION, "api-prod_live-GET-orders-id-invoke") is None


def test_an_autonamed_statement_id_over_100_is_refused() -> None:
    assert autoname_problem(PERMISSION, "p" * 92) is None
    assert autoname_problem(PERMISSION, "p" * 93) is not None
    assert name_problem(PERMISSION, "p" * 101) is not None


@pytest.mark.parametrize(
    ("typ", "name", "accepted"),
    [
        (DASHBOARD, "event-logger-prod_1", True),
        (DASHBOARD, "event.logger", False),
        (DASHBOARD, "event logger", False),
        (DASHBOARD, "event/logger", False),
        (STAGE, "eu-prod_2", True),
        (STAGE, "v1.2", False),
        (ALIAS, "prod-canary", True),
        (ALIAS, "123", False),  # would read as a version
        (ALIAS, "1a", True),
        (ROLE, "svc+role=a,b.c@d-e_f", True),
        (ROLE, "role/path", False),
        (LOG_GROUP, "/aws/lambda/fn#1.x", True),
        (LOG_GROUP, "group:1", False),
        (ALARM, "api prod: error rate > 1%", True),
        (ALARM, "tab\there", False),
        (TABLE, "ab", False),  # DynamoDB's minimum is 3
        (TABLE, "a.b", True),
        (TABLE, "a/b", False),
        (FUNCTION, "fn.v2", False),
        (REST_API, "any name: at all", True),
        (REST_API, "", False),
    ],
)
def test_characters_each_type_accepts(typ: str, name: str, accepted: bool) -> None:
    assert (name_problem(typ, name) is None) is accepted
