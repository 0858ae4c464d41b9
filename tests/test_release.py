"""The release tool: config edits, the steps, its AWS calls (moto and Stubber), the CLI."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from release import __main__ as cli
from release import aws
from release.__main__ import main
from release.commands import AwsClients, CanaryStillLiveError, Release, ReleaseError
from release.config_file import ConfigFileError, NotFoundError, StackConfigFile, project_name
from release.deploy import ApplyError, StackBusyError, apply_error
from release.judge import JudgeConfig
from release.watch import Watch
from tests.conftest import ROOT
from tests.release_fakes import OUTPUTS, FakeDeployer, ServedTraffic
from versioned_lambda_api.metrics import Role

REGION = "us-east-1"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def release_for(
    program: Path, deployer: FakeDeployer | None = None, apply: bool = True
) -> tuple[Release, FakeDeployer, list[str]]:
    lines: list[str] = []
    fake = deployer or FakeDeployer()
    release = Release(
        config=StackConfigFile(program, "event-logger", "prod"),
        deployer=fake,
        apply=apply,
        out=lines.append,
    )
    return release, fake, lines


def reread(program: Path) -> StackConfigFile:
    return StackConfigFile(program, "event-logger", "prod")


def applied_to(traffic: ServedTraffic, program: Path) -> FakeDeployer:
    """A deployer whose ``up`` makes AWS serve what the stack file says."""

    def up() -> None:
        config = reread(program)
        traffic.deploy(float(config.get("canaryPercent") or 0), config.get("canaryMode") or "stage")

    return FakeDeployer(on_up=up)


def served(cloudwatch: Any, traffic: ServedTraffic) -> AwsClients:
    return AwsClients(cloudwatch, traffic, traffic)


# --- The config file ------------------------------------------------------------------------


def test_edits_keep_comments_order_and_quote_values(program: Path) -> None:
    original = (program / "Pulumi.prod.yaml").read_text().splitlines()
    config = StackConfigFile(program, "event-logger", "prod")
    assert config.set("canaryPercent", "25") is True
    assert config.set("stableVersion", "3") is True
    config.save()
    edited = (program / "Pulumi.prod.yaml").read_text().splitlines()
    changed = original.index('  event-logger:canaryPercent: "10"')
    expected = original.copy()
    expected[changed] = '  event-logger:canaryPercent: "25"'
    expected.append('  event-logger:stableVersion: "3"')  # a new key goes last, quoted
    assert edited == expected
    assert edited[0].startswith("# Production")  # the comments stay
    assert reread(program).get("canaryPercent") == "25"


def test_setting_the_same_value_changes_nothing(program: Path) -> None:
    config = StackConfigFile(program, "event-logger", "prod")
    assert config.set("canaryPercent", "10") is False
    assert config.get("stableVersion") is None
    assert config.get_raw("aws:region") == REGION


def test_a_missing_stack_file_is_a_clear_error(program: Path) -> None:
    with pytest.raises(NotFoundError, match=r"Pulumi\.qa\.yaml does not exist.*here: prod\)"):
        StackConfigFile(program, "event-logger", "qa")


def test_the_project_name_comes_from_pulumi_yaml(program: Path, tmp_path: Path) -> None:
    assert project_name(program) == "event-logger"
    with pytest.raises(NotFoundError, match=r"has no Pulumi\.yaml: run this in the program's"):
        project_name(tmp_path / "elsewhere")
    (tmp_path / "Pulumi.yaml").write_text("runtime: python\n")
    with pytest.raises(ConfigFileError, match="has no project 'name'"):
        project_name(tmp_path)


# --- Steps ----------------------------------------------------------------------------------


def test_start_pins_the_live_version_closes_the_share_and_applies(program: Path) -> None:
    config = reread(program)
    config.set("canaryPercent", "10")  # whatever the repository's stack file starts at
    config.save()
    release, deployer, lines = release_for(program)
    release.start()
    config = reread(program)
    assert (config.get("stableVersion"), config.get("canaryPercent")) == ("3", "0")
    assert deployer.ups == 1
    assert lines[0] == (
        "Pulumi.prod.yaml: stableVersion pinned to 3, canaryPercent 10 -> 0; deploy new code: "
        "its version takes no traffic until 'advance' (or 'watch') has checked it"
    )
    assert "Resources: 2 updated" in lines


def test_start_run_again_after_a_failed_apply_applies_the_pin(program: Path) -> None:
    release, deployer, _ = release_for(program, apply=False)
    release.start()  # as if its apply had failed: the file holds the pin, AWS does not
    release, deployer, lines = release_for(program)
    release.start()
    assert deployer.ups == 1
    assert (
        "Pulumi.prod.yaml: stableVersion already 3, canaryPercent 0: applying them, in case "
        "they are not deployed"
    ) in lines
    release, _, _ = release_for(program, apply=False)
    with pytest.raises(ReleaseError, match="already 3"):
        release.start()


def test_no_apply_only_edits_the_file(program: Path) -> None:
    release, deployer, lines = release_for(program, apply=False)
    release.start()
    assert reread(program).get("stableVersion") == "3"
    assert deployer.ups == 0
    assert any("--no-apply" in line for line in lines)


def test_advance_walks_the_schedule_then_refuses(program: Path) -> None:
    release, deployer, _ = release_for(program)
    assert release.advance() == 25
    assert release.advance() == 50
    with pytest.raises(ReleaseError, match="promote instead"):
        release.advance()
    assert reread(program).get("canaryPercent") == "50"
    assert deployer.ups == 2


def test_promote_pins_the_canary_version_and_closes_the_share(program: Path) -> None:
    release, deployer, lines = release_for(program)
    release.advance()
    release.promote()
    config = reread(program)
    # At 0 the next deploy's version waits for its pre-traffic check.
    assert (config.get("stableVersion"), config.get("canaryPercent")) == ("4", "0")
    assert deployer.ups == 2
    assert (
        "Pulumi.prod.yaml: stableVersion v3 -> v4; canaryPercent reset to 0: the next deploy's "
        "version waits for its check"
    ) in lines


def test_promote_refuses_when_canary_and_live_are_one_version(program: Path) -> None:
    release, _, _ = release_for(program, FakeDeployer({**OUTPUTS, "canaryVersion": "3"}))
    with pytest.raises(ReleaseError, match="nothing to promote"):
        release.promote()


def test_steps_need_a_deployed_stack(program: Path) -> None:
    release, _, _ = release_for(program, FakeDeployer({}))
    with pytest.raises(ReleaseError, match="deploy it first"):
        release.start()


# --- Rollback: immediate through AWS, then recorded -----------------------------------------


def live_canary_clients(
    stage_percent: float = 10.0, alias_weights: dict[str, float] | None = None
) -> tuple[Any, Any, Stubber, Stubber]:
    """Real API Gateway and Lambda clients whose answers say what AWS sends the canary now:
    the stage's canary settings, then the live alias' weights (as read_live_traffic asks)."""
    apigateway = boto3.client("apigateway", region_name=REGION)
    lambda_ = boto3.client("lambda", region_name=REGION)
    stages, functions = Stubber(apigateway), Stubber(lambda_)
    stages.add_response(
        "get_stage",
        {
            "stageName": "prod",
            "canarySettings": {
                "percentTraffic": stage_percent,
                "stageVariableOverrides": {"lambdaAlias": "prod-canary"},
                "deploymentId": "d1",
            },
        },
        {"restApiId": "a1b2c3d4e5", "stageName": "prod"},
    )
    routing = (
        {"RoutingConfig": {"AdditionalVersionWeights": alias_weights}} if alias_weights else {}
    )
    functions.add_response(
        "get_alias",
        {"Name": "prod", "FunctionVersion": "3", **routing},
        {"FunctionName": OUTPUTS["functionName"], "Name": "prod"},
    )
    return apigateway, lambda_, stages, functions


def test_stage_rollback_patches_the_canary_share_at_once(program: Path) -> None:
    apigateway, lambda_, stages, functions = live_canary_clients()
    stages.add_response(
        "update_stage",
        {"stageName": "prod"},
        {
            "restApiId": "a1b2c3d4e5",
            "stageName": "prod",
            "patchOperations": [
                {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"}
            ],
        },
    )
    # What the rollback reads back: the stage's canary at 0, the alias without weights.
    stages.add_response(
        "get_stage",
        {"stageName": "prod", "canarySettings": {"percentTraffic": 0.0}},
        {"restApiId": "a1b2c3d4e5", "stageName": "prod"},
    )
    functions.add_response(
        "get_alias",
        {"Name": "prod", "FunctionVersion": "3"},
        {"FunctionName": OUTPUTS["functionName"], "Name": "prod"},
    )
    release, deployer, lines = release_for(program)
    with stages, functions:
        release.rollback(AwsClients(cloudwatch=None, apigateway=apigateway, lambda_=lambda_))
    stages.assert_no_pending_responses()
    functions.assert_no_pending_responses()
    assert reread(program).get("canaryPercent") == "0"
    assert deployer.ups == 1
    assert not [line for line in lines if line.startswith("drift")]


def test_a_failed_advance_run_again_applies_the_unbaked_share_instead_of_skipping_it(
    program: Path,
) -> None:
    # The file says 25 (an earlier advance's apply failed); the stage still sends 10.
    config = StackConfigFile(program, "event-logger", "prod")
    config.set("canaryPercent", "25")
    config.save()
    traffic = ServedTraffic(stage_percent=10.0)
    release, deployer, lines = release_for(program)
    assert release.advance(AwsClients(None, traffic, traffic)) == 25
    assert reread(program).get("canaryPercent") == "25"
    assert deployer.ups == 1
    assert " ".join(" ".join(lines).split()).startswith(
        "drift: AWS sends the canary 10% (the stage canary sends 10% to prod-canary), "
        "Pulumi.prod.yaml means 25%: the file is not deployed; 'make up STACK=prod' applies it"
    )
    assert any(line.startswith("applying canaryPercent 25 first") for line in lines)


def test_advance_in_alias_mode_also_reapplies_a_share_aws_does_not_serve(program: Path) -> None:
    config = StackConfigFile(program, "event-logger", "prod")
    for name, value in (("canaryMode", "alias"), ("stableVersion", "3")):
        config.set(name, value)
    config.save()
    # The alias still carries no weight: the apply that should have added it failed.
    traffic = ServedTraffic(stage_percent=None)
    deployer = FakeDeployer({**OUTPUTS, "canaryMode": "alias"})
    deployer.on_up = lambda: traffic.deploy(
        float(reread(program).get("canaryPercent") or 0), "alias"
    )
    release, _, lines = release_for(program, deployer)
    assert release.advance(AwsClients(None, traffic, traffic)) == 10
    assert " ".join(lines).startswith("drift: AWS sends the canary 0% (no request reaches")
    assert traffic.alias_weights == {"4": 0.1}
    assert reread(program).get("canaryPercent") == "10"
    # Once AWS serves the file's share, advance steps on.
    assert release.advance(AwsClients(None, traffic, traffic)) == 25
    assert traffic.alias_weights == {"4": 0.25}


def test_rollback_acts_on_aws_when_the_file_already_says_0(program: Path) -> None:
    # An earlier `rollback --no-apply` edited the file only: the stage still sends 10%.
    release, _, lines = release_for(program, apply=False)
    release.rollback(None)
    traffic = ServedTraffic(stage_percent=10.0)
    release, deployer, lines = release_for(program)
    release.rollback(AwsClients(None, traffic, traffic))
    assert traffic.stage_percent == 0
    assert "AWS: the stage canary sends 10% to prod-canary" in lines
    assert any("now sends no requests to its canary" in line for line in lines)
    assert deployer.ups == 0  # the file already said 0: nothing to apply


@pytest.fixture
def lambda_with_weighted_alias() -> Iterator[Any]:
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("lambda", region_name=REGION)
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
        client.create_function(
            FunctionName=OUTPUTS["functionName"],
            Runtime="python3.13",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": code.getvalue()},
            Publish=True,
        )
        client.create_alias(
            FunctionName=OUTPUTS["functionName"],
            Name="prod",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
        )
        yield client


def test_alias_rollback_removes_the_weights_at_once(
    program: Path, lambda_with_weighted_alias: Any
) -> None:
    config = StackConfigFile(program, "event-logger", "prod")
    config.set("canaryMode", "alias")
    config.save()
    release, _, lines = release_for(program)
    apigateway = boto3.client("apigateway", region_name=REGION)
    stages = Stubber(apigateway)
    for _ in ("before", "after"):
        stages.add_response("get_stage", {"stageName": "prod"}, None)  # no canary settings
    with stages:
        release.rollback(
            AwsClients(cloudwatch=None, apigateway=apigateway, lambda_=lambda_with_weighted_alias)
        )
    alias = lambda_with_weighted_alias.get_alias(FunctionName=OUTPUTS["functionName"], Name="prod")
    assert alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {}) == {}
    assert reread(program).get("canaryPercent") == "0"
    assert any("alias prod now sends everything" in line for line in lines)


def test_rollback_without_apply_touches_no_aws(program: Path) -> None:
    release, deployer, _ = release_for(program, apply=False)
    release.rollback(None)
    assert reread(program).get("canaryPercent") == "0"
    assert deployer.ups == 0


# --- Metrics --------------------------------------------------------------------------------


ALIASES: dict[Role, dict[str, str]] = {
    "live": {"FunctionName": "fn", "Resource": "fn:prod"},
    "canary": {"FunctionName": "fn", "Resource": "fn:prod-canary"},
}


def test_queries_cover_both_aliases_in_one_call() -> None:
    queries = aws.metric_queries(ALIASES, 800, 60, 1800)
    ids = [query["Id"] for query in queries]
    assert len(ids) == len(set(ids)) == 12
    assert all(query_id[0].islower() for query_id in ids)
    stats = {q["Id"]: q["MetricStat"]["Stat"] for q in queries}
    assert stats["canary_fast"] == "PR(:800)"
    assert stats["live_p99"] == "p99"
    periods = {q["Id"]: q["MetricStat"]["Period"] for q in queries}
    assert (periods["live_errors"], periods["canary_p99"]) == (60, 1800)
    resources = {
        next(d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"] if d["Name"] == "Resource")
        for q in queries
    }
    assert resources == {"fn:prod", "fn:prod-canary"}


def dimensions_read(release: Release, canary_mode: str) -> dict[str, dict[str, str]]:
    """The dimensions ``release`` asks CloudWatch for, per side, in ``canary_mode``."""
    release.config.set("canaryMode", canary_mode)
    release.latency_threshold_ms = 1000
    cloudwatch = FakeCloudWatch([])
    traffic = ServedTraffic(stage_percent=None)
    traffic.deploy(10, canary_mode)  # AWS splits as the file says
    release.status(AwsClients(cloudwatch, traffic, traffic), 5, T0 + timedelta(minutes=5))
    (request,) = cloudwatch.requests
    return {
        q["Id"].removesuffix("_requests"): {
            d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]
        }
        for q in request["MetricDataQueries"]
        if q["Id"].endswith("_requests")
    }


def test_a_stage_canary_is_read_from_the_two_aliases(program: Path) -> None:
    release, _, _ = release_for(program)
    function = OUTPUTS["functionName"]
    assert dimensions_read(release, "stage") == {
        "live": {"FunctionName": function, "Resource": f"{function}:prod"},
        "canary": {"FunctionName": function, "Resource": f"{function}:prod-canary"},
    }


def test_a_weighted_alias_is_read_per_executed_version(program: Path) -> None:
    # The live alias serves both sides; the canary alias gets no traffic in this mode.
    release, _, _ = release_for(program)
    function = OUTPUTS["functionName"]
    alias = {"FunctionName": function, "Resource": f"{function}:prod"}
    assert dimensions_read(release, "alias") == {
        "live": {**alias, "ExecutedVersion": "3"},
        "canary": {**alias, "ExecutedVersion": "4"},
    }


def put(cloudwatch: Any, alias: str, metric: str, minute: int, value: float) -> None:
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "FunctionName", "Value": "fn"},
                    {"Name": "Resource", "Value": f"fn:{alias}"},
                ],
                "Timestamp": T0 + timedelta(minutes=minute, seconds=5),
                "Value": value,
            }
        ],
    )


def test_slow_requests_come_from_the_percentile_rank() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stubber = Stubber(cloudwatch)
    series = {
        "live_requests": [200.0], "live_errors": [1.0], "live_throttles": [0.0],
        "live_fast": [99.0], "live_p50": [120.0], "live_p99": [900.0],
        "canary_requests": [50.0], "canary_errors": [0.0], "canary_throttles": [2.0],
        "canary_fast": [90.0], "canary_p50": [130.0], "canary_p99": [1500.0],
    }  # fmt: skip
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {
                    "Id": key,
                    "Timestamps": [T0] * len(values),
                    "Values": values,
                    "StatusCode": "Complete",
                }
                for key, values in series.items()
            ]
        },
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY},
    )
    with stubber:
        window = aws.read_trusted_metrics(
            cloudwatch,
            dimensions=ALIASES,
            start=T0,
            end=T0 + timedelta(minutes=1),
            latency_threshold_ms=1000,
        )
    (period,) = window.usable_periods
    assert (period.live_slow, period.canary_slow) == (2, 5)
    assert window.canary.p99_ms == 1500.0
    assert window.canary.throttles == 2


def test_windows_are_whole_minutes_and_an_empty_one_costs_no_call() -> None:
    cloudwatch = FakeCloudWatch([(270, 1, 30, 0)] * 5)
    at = T0 + timedelta(seconds=42)
    assert aws.floor_to(at, 60) == T0
    window = aws.read_trusted_metrics(
        cloudwatch, dimensions=ALIASES, start=at, end=at + timedelta(seconds=10),
        latency_threshold_ms=1000,
    )  # fmt: skip
    assert (window.usable_periods, cloudwatch.requests) == ([], [])
    window = aws.read_trusted_metrics(
        cloudwatch, dimensions=ALIASES, start=at, end=at + timedelta(minutes=3),
        latency_threshold_ms=1000,
    )  # fmt: skip
    (request,) = cloudwatch.requests
    assert (request["StartTime"], request["EndTime"]) == (T0, T0 + timedelta(minutes=3))
    assert len(window.usable_periods) == 3


def test_live_p99_is_one_whole_window_query() -> None:
    # moto answers percentile statistics with nothing, so the call is checked with a Stubber.
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stubber = Stubber(cloudwatch)
    expected = {
        "MetricDataQueries": [
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Duration",
                        "Dimensions": [
                            {"Name": "FunctionName", "Value": "fn"},
                            {"Name": "Resource", "Value": "fn:prod"},
                        ],
                    },
                    "Period": 3600,
                    "Stat": "p99",
                },
            }
        ],
        "StartTime": T0 - timedelta(hours=1),
        "EndTime": T0,
        "ScanBy": "TimestampAscending",
    }
    answers: list[tuple[dict[str, Any], float | None]] = [
        ({"Timestamps": [T0], "Values": [412.5], "StatusCode": "Complete"}, 412.5),
        ({"Timestamps": [], "Values": [], "StatusCode": "Complete"}, None),
        # A p99 of part of the hour is no baseline: the caller's fallback applies.
        ({"Timestamps": [T0], "Values": [9.0], "StatusCode": "PartialData"}, None),
        ({"Timestamps": [], "Values": [], "StatusCode": "InternalError"}, None),
    ]
    for result, _ in answers:
        stubber.add_response(
            "get_metric_data", {"MetricDataResults": [{"Id": "p99", **result}]}, expected
        )
    with stubber:
        for _, expected_p99 in answers:
            assert (
                aws.live_p99_ms(
                    cloudwatch,
                    dimensions=ALIASES["live"],
                    start=T0 - timedelta(hours=1, seconds=-20),  # rounded down to the minute
                    end=T0 + timedelta(seconds=59),
                )
                == expected_p99
            )
    stubber.assert_no_pending_responses()


# --- Status and watch -----------------------------------------------------------------------


class FakeCloudWatch:
    """Answers GetMetricData from a script of per-minute (live requests, live errors, canary
    requests, canary errors) from T0 on, honouring the request's time range; live's p99
    before T0 is ``baseline_p99`` (None: no traffic then)."""

    def __init__(
        self, script: list[tuple[int, int, int, int]], baseline_p99: float | None = None
    ) -> None:
        self.script = script
        self.baseline_p99 = baseline_p99
        self.requests: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        start, end = request["StartTime"], request["EndTime"]
        minutes = [
            minute
            for minute in range(len(self.script))
            if start <= T0 + timedelta(minutes=minute) < end
        ]
        columns = {
            "live_requests": 0, "live_errors": 1, "canary_requests": 2, "canary_errors": 3,
        }  # fmt: skip
        results = []
        for query in request["MetricDataQueries"]:
            if query["Id"] == "p99":
                values = [] if self.baseline_p99 is None or end > T0 else [self.baseline_p99]
                results.append(
                    {
                        "Id": "p99",
                        "Timestamps": [start] * len(values),
                        "Values": values,
                        "StatusCode": "Complete",
                    }
                )
                continue
            role, _, suffix = query["Id"].partition("_")
            column = columns.get(query["Id"])
            if column is not None:
                rows = [(m, float(self.script[m][column])) for m in minutes]
            elif suffix == "fast":
                # Every request is fast (PR(:threshold) 100%); Lambda publishes Duration only
                # for minutes with invocations.
                requests = columns[f"{role}_requests"]
                rows = [(m, 100.0) for m in minutes if self.script[m][requests]]
            else:
                rows = []  # Throttles: no point when nothing was throttled
            results.append(
                {
                    "Id": query["Id"],
                    "Timestamps": [T0 + timedelta(minutes=m) for m, _ in rows],
                    "Values": [value for _, value in rows],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_status_shows_both_versions_and_the_verdict(program: Path) -> None:
    release, _, lines = release_for(program)
    cloudwatch = FakeCloudWatch([(900, 4, 100, 1)] * 30, baseline_p99=420.0)
    verdict = release.status(served(cloudwatch, ServedTraffic()), 30, T0 + timedelta(minutes=30))
    text = "\n".join(lines)
    assert "slow: over 420 ms, live's p99 in the hour before" in text
    assert "stack prod, 12:00-12:28 UTC" in text  # the newest two minutes are left out
    assert "v3" in text
    assert "v4" in text
    assert "25,200" in text  # live requests over those 28 minutes
    assert f"verdict: {verdict.decision}" in text
    assert "llr_errors" in text
    assert max(len(line) for line in lines) <= 80
    # One call for live's p99 before the window (the slow threshold), one for the window.
    baseline, window = cloudwatch.requests
    assert baseline["EndTime"] == window["StartTime"] == T0
    assert window["MetricDataQueries"][3]["MetricStat"]["Stat"] == "PR(:420)"


def test_status_with_a_latency_threshold_reads_metrics_once(program: Path) -> None:
    release, _, lines = release_for(program)
    release.latency_threshold_ms = 800
    cloudwatch = FakeCloudWatch([(900, 4, 100, 1)] * 30)
    release.status(served(cloudwatch, ServedTraffic()), 30, T0 + timedelta(minutes=30))
    (window,) = cloudwatch.requests
    assert window["MetricDataQueries"][3]["MetricStat"]["Stat"] == "PR(:800)"
    assert not any(line.startswith("slow:") for line in lines)


def test_watch_rolls_back_a_bad_canary(program: Path) -> None:
    traffic = ServedTraffic()
    release, deployer, lines = release_for(program, applied_to(traffic, program))
    clock = Clock()
    cloudwatch = FakeCloudWatch([(2700, 13, 300, 30)] * 60)
    outcome = Watch(release).run(served(cloudwatch, traffic), 30, now=clock, sleep=clock.sleep)
    assert outcome == "ROLLBACK"
    assert "UpdateStage" in traffic.calls  # stopped at once, then deployed without a canary
    assert not traffic.stage_percent
    assert reread(program).get("canaryPercent") == "0"
    assert deployer.ups == 1
    assert deployer.output_reads == 1  # the rollback reuses the watch's outputs
    assert any(line.startswith("[  1 min]") for line in lines)


def test_watch_advances_then_promotes_a_good_canary(program: Path) -> None:
    traffic = ServedTraffic()
    release, deployer, lines = release_for(program, applied_to(traffic, program))
    release.judge_config = JudgeConfig(min_canary_requests=100)
    clock = Clock()
    cloudwatch = FakeCloudWatch([(2700, 13, 300, 1)] * 600)
    outcome = Watch(release).run(served(cloudwatch, traffic), 600, now=clock, sleep=clock.sleep)
    assert outcome == "PROMOTE"
    config = reread(program)
    assert (config.get("stableVersion"), config.get("canaryPercent")) == ("4", "0")
    assert sum("advancing" in line for line in lines) == 2  # 10 -> 25 -> 50
    assert deployer.ups == 3
    # The stack's outputs (a Pulumi CLI call each) are read when the watch starts, before each
    # action (a deploy outside the release changes the versions) and by the promote, not
    # every minute.
    assert deployer.output_reads == 5


def test_watch_stops_at_its_time_limit(program: Path) -> None:
    release, deployer, lines = release_for(program)
    clock = Clock()
    outcome = Watch(release).run(
        served(FakeCloudWatch([(0, 0, 0, 0)] * 10), ServedTraffic()),
        3,
        now=clock,
        sleep=clock.sleep,
    )
    assert outcome == "CONTINUE"
    assert deployer.ups == 0
    assert "no decision" in lines[-1]


def test_watch_stops_on_a_canary_without_traffic_neither_passing_nor_failing_it(
    program: Path,
) -> None:
    traffic = ServedTraffic()
    release, deployer, lines = release_for(program, applied_to(traffic, program))
    release.judge_config = JudgeConfig(max_periods=20)
    clock = Clock()
    with pytest.raises(CanaryStillLiveError) as stopped:
        Watch(release).run(
            served(FakeCloudWatch([(2700, 13, 0, 0)] * 100), traffic), now=clock, sleep=clock.sleep
        )
    # 20 one-minute periods judged (the bake), each once it is two minutes old (SETTLE).
    assert clock.now == T0 + timedelta(minutes=22)
    message = str(stopped.value)
    assert message.startswith("stopped watching: undecidable at this traffic.")
    assert "undecided: neither a pass nor a failure" in message
    assert "the canary still takes 10%" in message
    assert "'--on-timeout PROMOTE' promotes it UNVERIFIED" in message
    assert (traffic.stage_percent, deployer.ups) == (10.0, 0)  # nothing changed
    assert lines[:2] == [
        "slow: no p99 of live for the hour before (no traffic, or CloudWatch answered in "
        "part), so over 1000 ms (--latency-threshold-ms to choose)",
        "watching the canary at 10% (then 25, 50): each step until the judge decides on evidence",
    ]


def test_watch_refuses_when_there_is_no_canary_to_watch(program: Path) -> None:
    release, _, _ = release_for(program, FakeDeployer({**OUTPUTS, "canaryVersion": "3"}))
    with pytest.raises(ReleaseError, match="nothing to watch"):
        Watch(release).run(AwsClients(FakeCloudWatch([]), None, None))


def test_rolling_back_twice_is_refused_and_touches_nothing(program: Path) -> None:
    release, deployer, _ = release_for(program, apply=False)
    release.rollback(None)
    traffic = ServedTraffic(stage_percent=None)
    with pytest.raises(ReleaseError, match="AWS sends it none and canaryPercent is 0"):
        release.rollback(served(None, traffic))
    assert traffic.calls == ["GetStage", "GetAlias"]
    assert deployer.ups == 0


def test_status_in_alias_mode_shows_both_sides_on_the_live_alias(program: Path) -> None:
    release, _, lines = release_for(program)
    release.config.set("canaryMode", "alias")
    release.latency_threshold_ms = 800
    traffic = ServedTraffic()
    traffic.deploy(10, "alias")
    release.status(
        served(FakeCloudWatch([(900, 4, 100, 1)] * 30), traffic), 30, T0 + timedelta(minutes=30)
    )
    alias_row = next(line for line in lines if line.strip().startswith("alias"))
    assert alias_row.split() == ["alias", "prod", "prod"]


# --- The command line -----------------------------------------------------------------------


def test_cli_advance_without_apply_needs_no_cloud(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["advance", "--stack", "prod", "--program", str(program), "--no-apply"]) == 0
    assert reread(program).get("canaryPercent") == "25"
    assert "--no-apply" in capsys.readouterr().out


def test_cli_apply_without_the_pulumi_cli_fails_clearly(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert main(["start", "--stack", "prod", "--program", str(program)]) == 1
    err = capsys.readouterr().err
    assert "reading the stack's outputs: this step needs the Pulumi CLI" in err
    assert "Traceback" not in err
    assert reread(program).get("stableVersion") is None  # nothing written


def test_cli_advance_without_the_pulumi_cli_edits_nothing(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # advance first compares the file with what is deployed, which needs the stack's outputs.
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert main(["advance", "--stack", "prod", "--program", str(program)]) == 1
    assert "needs the Pulumi CLI" in capsys.readouterr().err
    assert reread(program).get("canaryPercent") == "10"


def test_cli_a_failed_apply_after_the_edit_says_the_file_is_edited(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_up() -> None:
        raise ApplyError("pulumi up failed for stack prod: the update was cancelled")

    traffic = ServedTraffic()
    monkeypatch.setattr(cli, "_deployer", lambda *_: FakeDeployer(on_up=failing_up))
    monkeypatch.setattr(cli, "_clients", lambda _: served(None, traffic))
    assert main(["advance", "--stack", "prod", "--program", str(program)]) == 1
    err = capsys.readouterr().err
    assert "the update was cancelled" in err
    assert "Pulumi.prod.yaml is edited, so deploy it later with 'make up STACK=prod'" in err
    assert reread(program).get("canaryPercent") == "25"
    assert traffic.stage_percent == 10  # AWS still serves the share baked so far


def test_cli_unknown_stack_is_a_usage_error(
    program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["advance", "--stack", "qa", "--program", str(program), "--no-apply"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: " in err
    assert "advance: error: " in err
    assert "Pulumi.qa.yaml does not exist" in err


def test_cli_a_folder_without_pulumi_yaml_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--stack", "prod", "--program", str(tmp_path)])
    assert exit_.value.code == 2
    assert "has no Pulumi.yaml: run this in the program's folder or pass --program DIR" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("steps", "message"), [("50,25", "steps must rise"), ("ten", "steps must be numbers")]
)
def test_cli_bad_steps(
    program: Path, capsys: pytest.CaptureFixture[str], steps: str, message: str
) -> None:
    with pytest.raises(SystemExit):
        main(["advance", "--stack", "prod", "--program", str(program), "--steps", steps])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("minutes", ["0", "-5", "soon"])
def test_cli_bad_bake_minutes(
    program: Path, capsys: pytest.CaptureFixture[str], minutes: str
) -> None:
    with pytest.raises(SystemExit):
        main(["watch", "--stack", "prod", "--program", str(program), "--bake-minutes", minutes])
    assert "must be a whole number of minutes above 0" in capsys.readouterr().err


class FlakyCloudWatch(FakeCloudWatch):
    """Fails the first ``failures`` reads of the window's metrics, as a throttled CloudWatch
    does after botocore's retries; the hour-before baseline read always works."""

    def __init__(self, script: list[tuple[int, int, int, int]], failures: int) -> None:
        super().__init__(script, baseline_p99=420.0)
        self.failures = failures

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        if request["EndTime"] > T0 and self.failures > 0:
            self.failures -= 1
            raise aws.AwsError("throttled", "CloudWatch throttled GetMetricData")
        return super().get_metric_data(**request)


def test_watch_waits_out_a_few_unreadable_minutes(program: Path) -> None:
    traffic = ServedTraffic()
    release, _, lines = release_for(program, applied_to(traffic, program))
    release.judge_config = JudgeConfig(min_canary_requests=100)
    clock = Clock()
    cloudwatch = FlakyCloudWatch([(2700, 13, 300, 1)] * 600, failures=3)
    outcome = Watch(release).run(served(cloudwatch, traffic), 600, now=clock, sleep=clock.sleep)
    assert outcome == "PROMOTE"
    unreadable = [line for line in lines if "AWS unreadable" in line]
    assert len(unreadable) == 3
    assert "CloudWatch throttled GetMetricData" in unreadable[0]


def test_watch_stops_saying_the_canary_is_live_when_metrics_stay_unreadable(
    program: Path,
) -> None:
    release, deployer, _ = release_for(program)
    clock = Clock()
    cloudwatch = FlakyCloudWatch([(2700, 13, 300, 1)] * 600, failures=100)
    with pytest.raises(CanaryStillLiveError) as stopped:
        Watch(release).run(served(cloudwatch, ServedTraffic()), 600, now=clock, sleep=clock.sleep)
    message = str(stopped.value)
    assert "AWS unreadable for 5 periods in a row" in message
    assert "the canary still takes 10% of the requests" in message
    assert "'make release-rollback STACK=prod' stops it" in message
    assert deployer.ups == 0
    assert reread(program).get("canaryPercent") == "10"


def test_the_cli_exits_3_when_watch_stops_with_the_canary_live(
    program: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def stopped(*_: object) -> None:
        raise CanaryStillLiveError("stopped watching: the canary still takes 10%")

    monkeypatch.setattr(cli, "run", stopped)
    assert main(["watch", "--stack", "prod", "--program", str(program)]) == 3
    assert "the canary still takes 10%" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stderr", "holder"),
    [
        pytest.param(
            "error: the stack is currently locked by 1 lock(s). Either wait for the other "
            "process(es) to end or delete the lock file with `pulumi cancel`.\n"
            "  file:///srv/.pulumi/locks/organization/event-logger/prod/bf4d.json: created by "
            "ana@laptop (pid 42) at 2026-11-30T01:00:00Z\n",
            "created by ana@laptop (pid 42)",
            id="file-backend",
        ),
        pytest.param(
            "error: [409] Conflict: Another update is currently in progress.\n",
            "Another update is currently in progress",
            id="pulumi-cloud",
        ),
    ],
)
def test_pulumis_own_stack_lock_is_named_not_reported_as_a_failed_deploy(
    stderr: str, holder: str
) -> None:
    from pulumi.automation._cmd import CommandResult  # noqa: PLC0415
    from pulumi.automation.errors import create_command_error  # noqa: PLC0415

    # The Automation API's own classification of the CLI's answer, as `stack.up` raises it.
    error = apply_error(create_command_error(CommandResult("Updating (prod)", stderr, 255)), "prod")
    assert isinstance(error, StackBusyError)
    message = str(error)
    assert message.startswith("stack prod is locked by another Pulumi update")
    assert "nothing was deployed" in message
    assert holder in message
    assert "Updating (prod)" not in message  # the rest of the CLI's output stays out
    other = apply_error(create_command_error(CommandResult("", "error: boom\n", 255)), "prod")
    assert not isinstance(other, StackBusyError)
    assert str(other).startswith("pulumi up failed for stack prod")
