"""The physical-name rules of the AWS resource types this project registers.

Pure data and functions, no Pulumi: the recording mocks name resources with them and refuse the
names AWS or pulumi-aws would refuse, and the component and preflight derive their limits from
them. Each rule says where it comes from:

- pulumi-aws ``provider/resources.go`` (github.com/pulumi/pulumi-aws) says which property the
  provider fills when a program leaves it out, with ``tfbridge.AutoName(property, maxlen, "-")``:
  ``<logical name>-<7 random hex>``. Every TF ``name`` input not configured otherwise gets
  ``AutoName("name", 255, "-")`` from its ``setAutonaming``. The bridge does not truncate: a
  logical name too long for the suffix fails the preview with "could not make instance of
  '<type>': name '<name>-' plus 7 random chars is longer than maximum length <max>"
  (pulumi-terraform-bridge ``pkg/tfbridge/info/autonaming.go`` ``ComputeAutoNameDefault`` calling
  pulumi ``sdk/go/common/resource`` ``NewUniqueName``).
- botocore's service models (``botocore/data/<service>/<version>/service-2.json``: the shape's
  min, max and pattern, or its documentation) and terraform-provider-aws's validators, which the
  provider runs at preview, say what AWS accepts, whether the name was given or generated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AUTONAME_SUFFIX_LENGTH = 8
"""What pulumi-aws appends to a logical name: the separator "-" and 7 random hex digits
(``AutoName``'s ``Randlen: 7``)."""

_RESOURCES_GO = "https://github.com/pulumi/pulumi-aws/blob/master/provider/resources.go"
_BOTOCORE = "botocore/data/{}/service-2.json"


@dataclass(frozen=True)
class NameRule:
    """How one resource type's physical name is made and what AWS accepts for it."""

    property: str
    """camelCase input and output key holding the physical name."""
    max_length: int
    """Longest name AWS accepts, given or generated."""
    pattern: re.Pattern[str]
    """The characters AWS accepts; the whole name must match."""
    autonamed: bool
    """pulumi-aws fills the property with ``<logical name>-<7 hex>`` when it is not given."""
    source: str
    """Where the rule comes from."""
    charset: str
    """``pattern`` in words, for messages."""
    min_length: int = 1
    """Shortest name AWS accepts."""
    autoname_max_length: int | None = None
    """The maximum pulumi-aws's AutoName enforces on the names it generates (only then); None
    when the property is not autonamed."""


def _rule(
    property: str,
    max_length: int,
    pattern: str,
    charset: str,
    source: str,
    *,
    autoname_max_length: int | None = None,
    min_length: int = 1,
) -> NameRule:
    return NameRule(
        property=property,
        max_length=max_length,
        pattern=re.compile(pattern, re.ASCII | re.DOTALL),
        autonamed=autoname_max_length is not None,
        source=source,
        charset=charset,
        min_length=min_length,
        autoname_max_length=autoname_max_length,
    )


_NAME_CHARS = "letters, digits, '-' and '_'"
_IAM_CHARS = "letters, digits and '_+=,.@-'"
_NO_CONTROL_CHARS = "any character but ASCII control characters"
_DEFAULT_AUTONAME = f'{_RESOURCES_GO} (setAutonaming: AutoName("name", 255, "-"))'

NAME_RULES: dict[str, NameRule] = {
    "aws:lambda/function:Function": _rule(
        "name",
        64,
        r"[A-Za-z0-9_-]+",
        _NAME_CHARS,
        f'{_RESOURCES_GO} (aws_lambda_function: function_name AutoName("name", 64, "-")); '
        f"{_BOTOCORE.format('lambda/2015-03-31')} CreateFunction FunctionName: a bare name is "
        "limited to 64 characters, pattern [a-zA-Z0-9-_]+",
        autoname_max_length=64,
    ),
    "aws:lambda/alias:Alias": _rule(
        "name",
        128,
        r"(?![0-9]+$)[A-Za-z0-9_-]+",
        f"{_NAME_CHARS}, not all digits",
        f"{_DEFAULT_AUTONAME}; {_BOTOCORE.format('lambda/2015-03-31')} shape Alias: 1-128, "
        "pattern (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        autoname_max_length=255,
    ),
    "aws:lambda/permission:Permission": _rule(
        "statementId",
        100,
        r"[A-Za-z0-9_-]+",
        _NAME_CHARS,
        f'{_RESOURCES_GO} (aws_lambda_permission: statement_id AutoName("statementId", 100, '
        '"-")); terraform-provider-aws internal/service/lambda validPolicyStatementID: '
        "^[0-9A-Za-z_-]+$, 1-100; "
        f"{_BOTOCORE.format('lambda/2015-03-31')} shape StatementId: 1-100",
        autoname_max_length=100,
    ),
    "aws:iam/role:Role": _rule(
        "name",
        64,
        r"[\w+=,.@-]+",
        _IAM_CHARS,
        f'{_RESOURCES_GO} (aws_iam_role: name AutoName("name", 64, "-")); '
        f"{_BOTOCORE.format('iam/2010-05-08')} shape roleNameType: 1-64, pattern [\\w+=,.@-]+",
        autoname_max_length=64,
    ),
    "aws:iam/rolePolicy:RolePolicy": _rule(
        "name",
        128,
        r"[\w+=,.@-]+",
        _IAM_CHARS,
        f"{_DEFAULT_AUTONAME}; {_BOTOCORE.format('iam/2010-05-08')} shape policyNameType: "
        "1-128, pattern [\\w+=,.@-]+",
        autoname_max_length=255,
    ),
    "aws:cloudwatch/logGroup:LogGroup": _rule(
        "name",
        512,
        r"[A-Za-z0-9_./#-]+",
        "letters, digits and '_./#-'",
        f"{_DEFAULT_AUTONAME}; {_BOTOCORE.format('logs/2014-03-28')} shape LogGroupName: "
        "1-512, pattern [\\.\\-_/#A-Za-z0-9]+",
        autoname_max_length=255,
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _rule(
        "name",
        255,
        r"[^\x00-\x1f\x7f]+",
        _NO_CONTROL_CHARS,
        f'{_RESOURCES_GO} (aws_cloudwatch_metric_alarm: alarm_name AutoName("name", 255, '
        f'"-")); {_BOTOCORE.format("cloudwatch/2010-08-01")} shape AlarmName: 1-255, '
        "no ASCII control characters",
        autoname_max_length=255,
    ),
    "aws:cloudwatch/dashboard:Dashboard": _rule(
        "dashboardName",
        255,
        r"[A-Za-z0-9_-]+",
        _NAME_CHARS,
        f"{_BOTOCORE.format('cloudwatch/2010-08-01')} PutDashboard DashboardName: at most 255, "
        "A-Z, a-z, 0-9, '-' and '_'; terraform-provider-aws internal/service/cloudwatch "
        "validDashboardName: ^[0-9A-Za-z_-]+$, at most 255; not autonamed (required input)",
    ),
    "aws:apigateway/restApi:RestApi": _rule(
        "name",
        255,
        r".+",
        "any characters",
        f"{_DEFAULT_AUTONAME}; AWS documents no limit "
        f"({_BOTOCORE.format('apigateway/2015-07-09')} CreateRestApi name is a plain String), "
        "so the autoname maximum is the only bound known",
        autoname_max_length=255,
    ),
    "aws:apigateway/stage:Stage": _rule(
        "stageName",
        128,
        r"[A-Za-z0-9_-]+",
        _NAME_CHARS,
        f"{_BOTOCORE.format('apigateway/2015-07-09')} CreateStage stageName: alphanumeric "
        "characters, hyphens and underscores, at most 128; not autonamed (required input)",
    ),
    "aws:apigateway/apiKey:ApiKey": _rule(
        "name",
        255,
        r".+",
        "any characters",
        f"{_DEFAULT_AUTONAME}; AWS documents no limit "
        f"({_BOTOCORE.format('apigateway/2015-07-09')} CreateApiKey name is a plain String), "
        "so the autoname maximum is the only bound known",
        autoname_max_length=255,
    ),
    "aws:apigateway/usagePlan:UsagePlan": _rule(
        "name",
        255,
        r".+",
        "any characters",
        f"{_DEFAULT_AUTONAME}; AWS documents no limit "
        f"({_BOTOCORE.format('apigateway/2015-07-09')} CreateUsagePlan name is a plain "
        "String), so the autoname maximum is the only bound known",
        autoname_max_length=255,
    ),
    "aws:dynamodb/table:Table": _rule(
        "name",
        255,
        r"[A-Za-z0-9_.-]+",
        "letters, digits and '_.-'",
        f"{_DEFAULT_AUTONAME}; {_BOTOCORE.format('dynamodb/2012-08-10')} shape TableName: "
        "3-255, pattern [a-zA-Z0-9_.-]+",
        autoname_max_length=255,
        min_length=3,
    ),
}
"""By Pulumi type token. Types not listed have no physical name to check."""


def autoname(logical_name: str, suffix: str) -> str:
    """The physical name pulumi-aws generates for ``logical_name`` with random ``suffix``."""
    return f"{logical_name}-{suffix}"


def name_problem(type_token: str, physical_name: str) -> str | None:
    """Why AWS would refuse ``physical_name`` for a resource of ``type_token``, or None."""
    rule = NAME_RULES.get(type_token)
    if rule is None:
        return None
    length = len(physical_name)
    if length > rule.max_length:
        return (
            f"{rule.property} {physical_name!r} is {length} characters long; "
            f"{type_token} allows at most {rule.max_length}"
        )
    if length < rule.min_length:
        return (
            f"{rule.property} {physical_name!r} is {length} characters long; "
            f"{type_token} needs at least {rule.min_length}"
        )
    if not rule.pattern.fullmatch(physical_name):
        return f"{rule.property} {physical_name!r} may contain only {rule.charset}"
    return None


def autoname_problem(type_token: str, logical_name: str) -> str | None:
    """Why the preview would fail when pulumi-aws names a ``type_token`` resource called
    ``logical_name``, or None (also None when the type is not autonamed)."""
    rule = NAME_RULES.get(type_token)
    if rule is None or rule.autoname_max_length is None:
        return None
    prefix = f"{logical_name}-"
    random_length = AUTONAME_SUFFIX_LENGTH - 1
    if len(prefix) + random_length > rule.autoname_max_length:
        # The bridge's own wording, so a reader can search for it.
        return (
            f"could not make instance of '{type_token}': name '{prefix}' plus {random_length} "
            f"random chars is longer than maximum length {rule.autoname_max_length} "
            f"(the logical name is {len(logical_name)} characters; at most "
            f"{rule.autoname_max_length - AUTONAME_SUFFIX_LENGTH} fit)"
        )
    return name_problem(type_token, autoname(logical_name, "0" * random_length))


def max_logical_name_length(type_token: str) -> int | None:
    """The longest logical name whose autoname pulumi-aws can make and AWS accepts, or None
    when ``type_token`` is not autonamed."""
    rule = NAME_RULES.get(type_token)
    if rule is None or rule.autoname_max_length is None:
        return None
    return min(rule.max_length, rule.autoname_max_length) - AUTONAME_SUFFIX_LENGTH
