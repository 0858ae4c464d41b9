"""release.aws against real boto3 clients whose HTTP answers are faked: Stubber for answers,
a ``before-send`` hook for transport failures and answers that botocore's retries see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)
from botocore.stub import ANY, Stubber

from release import aws, evidence_cost
from versioned_lambda_api.metrics import Role

REGION = "us-east-1"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ALIASES: dict[Role, dict[str, str]] = {
    "live": {"FunctionName": "fn", "Resource": "fn:prod"},
    "canary": {"FunctionName": "fn", "Resource": "fn:prod-canary"},
}
STAGE = {"restApiId": "a1b2c3d4e5", "stageName": "prod"}
STOP_PATCH = [{"op": "replace", "path": "/canarySettings/percentTraffic", "value": "0.0"}]


def client(service: str, attempts: int = 2) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=1,
            read_timeout=1,
        ),
    )


def on_send(
    client_: Any, operation: str, answers: list[Callable[[Any], AWSResponse | None]]
) -> list[Any]:
    """Each HTTP attempt of ``operation`` gets the next answer (raise, or return a response);
    returns the list of requests sent, so the test sees botocore's retries."""
    sent: list[Any] = []

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        sent.append(request)
        return answers[min(len(sent), len(answers)) - 1](request)

    client_.meta.events.register(f"before-send.*.{operation}", handler)
    return sent


def raising(error: Exception) -> Callable[[Any], AWSResponse | None]:
    def answer(_: Any) -> AWSResponse | None:
        raise error

    return answer


def answering(status: int, body: bytes, headers: dict[str, str]) -> Callable[[Any], AWSResponse]:
    class Raw:
        def stream(self, **_: Any) -> Any:
            yield body

    return lambda request: AWSResponse(request.url, status, headers, Raw())


def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _: None)


# --- Errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://apigateway"),
        ConnectTimeoutError(endpoint_url="https://apigateway"),
        ReadTimeoutError(endpoint_url="https://apigateway"),
        ConnectionClosedError(endpoint_url="https://apigateway"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_no_answer_is_unreachable_after_botocores_retries(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_sleep(monkeypatch)
    apigateway = client("apigateway", attempts=3)
    sent = on_send(apigateway, "GetStage", [raising(error)])
    with pytest.raises(aws.AwsError) as raised:
        aws.read_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert len(sent) == 3  # botocore's own retries ran
    assert raised.value.kind == "unreachable"
    assert not raised.value.outcome_known
    assert raised.value.retryable
    assert "outcome is unknown" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_throttle_is_retried_then_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    no_sleep(monkeypatch)
    apigateway = client("apigateway", attempts=2)
    throttle = answering(
        429,
        b'{"message": "Too Many Requests"}',
        {"x-amzn-ErrorType": "TooManyRequestsException"},
    )
    sent = on_send(apigateway, "GetStage", [throttle])
    with pytest.raises(aws.AwsError) as raised:
        aws.read_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert len(sent) == 2
    assert raised.value.kind == "throttled"
    assert raised.value.outcome_known
    assert raised.value.retryable


def test_a_5xx_after_retries_leaves_the_outcome_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    no_sleep(monkeypatch)
    apigateway = client("apigateway", attempts=2)
    failure = answering(500, b'{"message": "oops"}', {"x-amzn-ErrorType": "InternalFailure"})
    on_send(apigateway, "GetStage", [failure])
    with pytest.raises(aws.AwsError) as raised:
        aws.read_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert raised.value.kind == "unreachable"


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDeniedException", 403), ("NotFoundException", 404), ("BadRequestException", 400)],
)
def test_a_4xx_is_refused(code: str, status: int) -> None:
    apigateway = client("apigateway")
    with Stubber(apigateway) as stubber:
        stubber.add_client_error("get_stage", code, "no", status, expected_params=STAGE)
        with pytest.raises(aws.AwsError) as raised:
            aws.read_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert raised.value.kind == "refused"
    assert raised.value.outcome_known
    assert not raised.value.retryable
    assert code in raised.value.message


def test_missing_credentials_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for error in (NoCredentialsError(), NoRegionError()):
        assert aws.classify(error, "reading stage prod").kind == "credentials"
    expired = client("lambda")
    with Stubber(expired) as stubber:
        stubber.add_client_error("get_alias", "ExpiredTokenException", "expired", 403)
        with pytest.raises(aws.AwsError) as raised:
            aws.read_alias_weights(expired, "fn", "prod")
    assert raised.value.kind == "credentials"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = boto3.Session().client("apigateway", region_name=REGION)
    with pytest.raises(aws.AwsError) as raised:
        aws.read_stage_canary(anonymous, "a1b2c3d4e5", "prod")
    assert raised.value.kind == "credentials"


# --- Live traffic ---------------------------------------------------------------------------


def test_a_stage_canary_is_read_from_the_stage() -> None:
    apigateway = client("apigateway")
    with Stubber(apigateway) as stubber:
        stubber.add_response(
            "get_stage",
            {
                "stageName": "prod",
                "canarySettings": {
                    "percentTraffic": 10.0,
                    "deploymentId": "dep1",
                    "stageVariableOverrides": {"lambdaAlias": "prod-canary"},
                },
            },
            STAGE,
        )
        stubber.add_response("get_stage", {"stageName": "prod"}, STAGE)
        live = aws.LiveTraffic(stage=aws.read_stage_canary(apigateway, "a1b2c3d4e5", "prod"))
        assert (live.mode, live.percent, live.canary) == ("stage", 10.0, "prod-canary")
        assert live.describe() == "the stage canary sends 10% to prod-canary"
        # no canary settings: no canary, not an error
        assert aws.read_stage_canary(apigateway, "a1b2c3d4e5", "prod") is None


def test_alias_weights_and_mode_drift() -> None:
    apigateway, lambda_ = client("apigateway"), client("lambda")
    with Stubber(apigateway) as stage_stub, Stubber(lambda_) as alias_stub:
        stage_stub.add_response(
            "get_stage",
            {"stageName": "prod", "canarySettings": {"percentTraffic": 0.0}},
            STAGE,
        )
        alias_stub.add_response(
            "get_alias",
            {
                "Name": "prod",
                "FunctionVersion": "3",
                "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}},
            },
            {"FunctionName": "fn", "Name": "prod"},
        )
        live = aws.read_live_traffic(
            apigateway,
            lambda_,
            rest_api_id="a1b2c3d4e5",
            stage="prod",
            function_name="fn",
            live_alias="prod",
        )
    assert (live.mode, round(live.percent, 6), live.canary) == ("alias", 10.0, "v4")
    both = aws.LiveTraffic(stage=aws.StageCanary(10.0, "prod-canary", None), alias=live.alias)
    assert both.mode == "both"
    assert round(both.percent, 6) == 19.0
    assert aws.LiveTraffic().mode == "none"


# --- Stopping the canary --------------------------------------------------------------------


def test_stop_stage_canary_applied() -> None:
    apigateway = client("apigateway")
    with Stubber(apigateway) as stubber:
        stubber.add_response(
            "update_stage", {"stageName": "prod"}, {**STAGE, "patchOperations": STOP_PATCH}
        )
        assert aws.stop_stage_canary(apigateway, "a1b2c3d4e5", "prod").outcome == "applied"


def test_stop_on_a_stage_without_canary_settings_is_already_stopped() -> None:
    apigateway = client("apigateway")
    with Stubber(apigateway) as stubber:
        stubber.add_client_error("update_stage", "NotFoundException", "no canary", 404)
        stubber.add_response("get_stage", {"stageName": "prod"}, STAGE)
        stopped = aws.stop_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert stopped.outcome == "already"


def test_stop_refused_raises_refused() -> None:
    apigateway = client("apigateway")
    with Stubber(apigateway) as stubber:
        stubber.add_client_error("update_stage", "AccessDeniedException", "no", 403)
        with pytest.raises(aws.AwsError) as raised:
            aws.stop_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert raised.value.kind == "refused"


def stage_answer(percent: float | None) -> Callable[[Any], AWSResponse]:
    body = b'{"stageName": "prod"}'
    if percent is not None:
        body = b'{"stageName": "prod", "canarySettings": {"percentTraffic": %g}}' % percent
    return answering(200, body, {"Content-Type": "application/json"})


def test_a_lost_answer_is_confirmed_by_rereading(monkeypatch: pytest.MonkeyPatch) -> None:
    # The change reached AWS, its answer did not: the re-read shows 0%.
    no_sleep(monkeypatch)
    apigateway = client("apigateway", attempts=1)
    on_send(apigateway, "UpdateStage", [raising(ReadTimeoutError(endpoint_url="x"))])
    on_send(apigateway, "GetStage", [stage_answer(0.0)])
    stopped = aws.stop_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert stopped.outcome == "confirmed"
    assert "no request reaches a canary" in stopped.message


def test_a_lost_change_says_the_canary_is_still_live(monkeypatch: pytest.MonkeyPatch) -> None:
    no_sleep(monkeypatch)
    apigateway = client("apigateway", attempts=1)
    on_send(apigateway, "UpdateStage", [raising(EndpointConnectionError(endpoint_url="x"))])
    on_send(apigateway, "GetStage", [stage_answer(10.0)])
    with pytest.raises(aws.AwsError) as raised:
        aws.stop_stage_canary(apigateway, "a1b2c3d4e5", "prod")
    assert raised.value.kind == "unreachable"
    assert raised.value.live is not None
    assert raised.value.live.percent == 10.0
    assert "sends 10%" in raised.value.message


def test_a_lost_change_and_a_failed_reread(monkeypatch: pytest.MonkeyPatch) -> None:
    no_sleep(monkeypatch)
    lambda_ = client("lambda", attempts=1)
    on_send(lambda_, "UpdateAlias", [raising(ConnectionClosedError(endpoint_url="x"))])
    on_send(lambda_, "GetAlias", [raising(ConnectTimeoutError(endpoint_url="x"))])
    with pytest.raises(aws.AwsError) as raised:
        aws.stop_alias_canary(lambda_, "fn", "prod")
    assert raised.value.kind == "unreachable"
    assert raised.value.live is None
    assert "may still take traffic" in raised.value.message


def test_stop_alias_canary_applied() -> None:
    lambda_ = client("lambda")
    with Stubber(lambda_) as stubber:
        stubber.add_response(
            "update_alias",
            {"Name": "prod"},
            {
                "FunctionName": "fn",
                "Name": "prod",
                "RoutingConfig": {"AdditionalVersionWeights": {}},
            },
        )
        assert aws.stop_alias_canary(lambda_, "fn", "prod").outcome == "applied"


# --- Metrics --------------------------------------------------------------------------------

PER_MINUTE = ("requests", "errors", "throttles", "fast")


def results(
    minutes: int, overrides: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every query Complete with a point per minute (live 100 req, 1 error; canary 10 req, 0
    errors; 99% fast), unless ``overrides`` replaces a query's result fields."""
    values = {"requests": (100.0, 10.0), "errors": (1.0, 0.0), "throttles": (0.0, 0.0)}
    answer = []
    for side, role in enumerate(("live", "canary")):
        for suffix in (*PER_MINUTE, "p50", "p99"):
            query_id = f"{role}_{suffix}"
            if suffix in ("p50", "p99"):
                stamps, points = [T0], [120.0 if suffix == "p50" else 900.0]
            else:
                value = values[suffix][side] if suffix in values else 99.0
                stamps = [T0 + timedelta(minutes=m) for m in range(minutes)]
                points = [value] * minutes
            result = {
                "Id": query_id,
                "Timestamps": stamps,
                "Values": points,
                "StatusCode": "Complete",
            }
            result.update((overrides or {}).get(query_id, {}))
            answer.append(result)
    return answer


def read(cloudwatch: Any, minutes: int = 3) -> aws.TrustedWindow:
    return aws.read_trusted_metrics(
        cloudwatch,
        dimensions=ALIASES,
        start=T0,
        end=T0 + timedelta(minutes=minutes),
        latency_threshold_ms=1000,
    )


REQUEST = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY}


def test_complete_answers_give_usable_minutes() -> None:
    cloudwatch = client("cloudwatch")
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": results(3)}, REQUEST)
        window = read(cloudwatch)
    assert [minute.usable for minute in window.minutes] == [True] * 3
    (period, *_) = window.usable_periods
    assert (period.live_requests, period.live_errors, period.canary_requests) == (100, 1, 10)
    assert (period.live_slow, period.canary_slow) == (1, 0)
    assert (window.live.requests, window.canary.p99_ms, window.incomplete) == (300, 900.0, {})


def test_an_internal_error_makes_every_minute_unusable_not_zero() -> None:
    cloudwatch = client("cloudwatch")
    failed = {"canary_errors": {"StatusCode": "InternalError", "Timestamps": [], "Values": []}}
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": results(3, failed)}, REQUEST)
        window = read(cloudwatch)
    assert window.usable_periods == []
    assert window.unusable[0].missing == ("canary_errors: InternalError",)
    assert window.incomplete == {"canary_errors": "InternalError"}
    assert window.canary.requests == 0  # nothing counted from minutes the judge may not use


def test_forbidden_and_a_missing_minute() -> None:
    cloudwatch = client("cloudwatch")
    stamps = [T0, T0 + timedelta(minutes=2)]  # 12:01 missing
    gaps = {"canary_fast": {"Timestamps": stamps, "Values": [80.0, 80.0]}}
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": results(3, gaps)}, REQUEST)
        stubber.add_response(
            "get_metric_data",
            {"MetricDataResults": results(3, {"live_p99": {"StatusCode": "Forbidden"}})},
            REQUEST,
        )
        window = read(cloudwatch)
        forbidden = read(cloudwatch)
    assert [minute.usable for minute in window.minutes] == [True, False, True]
    assert window.minutes[1].missing == ("canary_fast: no point",)
    assert [p.canary_slow for p in window.usable_periods] == [2, 2]
    # a whole-window percentile not Complete: no p99, the per-minute counts still usable
    assert forbidden.live.p99_ms is None
    assert len(forbidden.usable_periods) == 3


def test_a_minute_without_invocations_is_no_traffic_when_complete() -> None:
    cloudwatch = client("cloudwatch")
    # Lambda sends nothing for a minute without invocations: no point in any series.
    nothing: dict[str, dict[str, Any]] = {
        f"{role}_{suffix}": {"Timestamps": [], "Values": []}
        for role in ("live", "canary")
        for suffix in PER_MINUTE
    }
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": results(2, nothing)}, REQUEST)
        window = read(cloudwatch, minutes=2)
    assert [p.canary_requests for p in window.usable_periods] == [0, 0]


def test_pages_are_followed_and_only_the_last_status_counts() -> None:
    cloudwatch = client("cloudwatch")
    first = results(1)
    for result in first:
        result["StatusCode"] = "PartialData"
    second = results(2)
    for result in second:
        result["Timestamps"], result["Values"] = result["Timestamps"][1:], result["Values"][1:]
    with Stubber(cloudwatch) as stubber:
        stubber.add_response(
            "get_metric_data", {"MetricDataResults": first, "NextToken": "page2"}, REQUEST
        )
        stubber.add_response(
            "get_metric_data",
            {"MetricDataResults": second},
            {**REQUEST, "NextToken": "page2"},
        )
        window = read(cloudwatch, minutes=2)
        stubber.assert_no_pending_responses()
    assert len(window.usable_periods) == 2
    assert window.live.requests == 200


def test_a_query_left_partial_is_unusable() -> None:
    cloudwatch = client("cloudwatch")
    partial = {"live_requests": {"StatusCode": "PartialData"}}
    with Stubber(cloudwatch) as stubber:
        stubber.add_response("get_metric_data", {"MetricDataResults": results(2, partial)}, REQUEST)
        window = read(cloudwatch, minutes=2)
    assert window.usable_periods == []


def test_a_metrics_read_that_fails_is_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    no_sleep(monkeypatch)
    cloudwatch = client("cloudwatch", attempts=2)
    sent = on_send(cloudwatch, "GetMetricData", [raising(ReadTimeoutError(endpoint_url="x"))])
    with pytest.raises(aws.AwsError) as raised:
        read(cloudwatch)
    assert (raised.value.kind, len(sent)) == ("unreachable", 2)


# --- The function's own 10-second metrics -----------------------------------------------------

TEN_SECONDS = [T0 + timedelta(seconds=10 * n) for n in range(12)]
WHOLE_MINUTES = [T0, T0 + timedelta(minutes=1)]


def function_results(overrides: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Two whole minutes, every query Complete: the function's 10-second counts (live 10
    requests, none failed, 90% fast; canary 2 requests, none failed, all fast) and Lambda's
    minutes (live 60 invocations, 0 errors; canary 12 invocations and 1 error the function never
    saw, a timeout), unless ``overrides`` replaces a query's result fields."""
    series: dict[str, tuple[list[datetime], list[float]]] = {
        "live_requests": (TEN_SECONDS, [10.0] * 12),
        "live_errors": (TEN_SECONDS, [0.0] * 12),
        "live_fast": (TEN_SECONDS, [90.0] * 12),
        "live_lambda_requests": (WHOLE_MINUTES, [60.0, 60.0]),
        "live_lambda_errors": (WHOLE_MINUTES, [0.0, 0.0]),
        "live_throttles": (WHOLE_MINUTES, [3.0, 0.0]),
        "canary_requests": (TEN_SECONDS, [2.0] * 12),
        "canary_errors": (TEN_SECONDS, [0.0] * 12),
        "canary_fast": (TEN_SECONDS, [100.0] * 12),
        "canary_lambda_requests": (WHOLE_MINUTES, [12.0, 12.0]),
        "canary_lambda_errors": (WHOLE_MINUTES, [1.0, 0.0]),
        "canary_throttles": ([], []),
    }
    for role in ("live", "canary"):
        series[f"{role}_p50"] = ([T0], [40.0])
        series[f"{role}_p99"] = ([T0], [300.0])
    answer = []
    for query_id, (stamps, points) in series.items():
        result = {"Id": query_id, "Timestamps": stamps, "Values": points, "StatusCode": "Complete"}
        result.update((overrides or {}).get(query_id, {}))
        answer.append(result)
    return answer


def finest(cloudwatch: Any, seconds: int = 120) -> aws.TrustedWindow:
    return aws.read_finest_metrics(
        cloudwatch,
        dimensions=ALIASES,
        start=T0,
        end=T0 + timedelta(seconds=seconds),
        latency_threshold_ms=250,
    )


def answered(*answers: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    """A CloudWatch client that answers GetMetricData with ``answers`` in turn, and the
    requests it was sent."""
    cloudwatch = client("cloudwatch")
    sent: list[Any] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params)

    cloudwatch.meta.events.register("provide-client-params.cloudwatch.GetMetricData", record)
    stubber = Stubber(cloudwatch)
    for answer in answers:
        stubber.add_response("get_metric_data", {"MetricDataResults": answer}, REQUEST)
    stubber.activate()
    return cloudwatch, sent


def test_the_function_metrics_are_read_at_10_seconds_beside_lambdas_minutes() -> None:
    queries = aws.function_metric_queries(ALIASES, 250, 10, 120)
    shape = {
        q["Id"]: (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            q["MetricStat"]["Stat"],
            q["MetricStat"]["Period"],
        )
        for q in queries
        if q["Id"].startswith("canary_")
    }
    function = aws.FUNCTION_NAMESPACE
    assert shape == {
        "canary_requests": (function, "Requests", "Sum", 10),
        "canary_errors": (function, "Failures", "Sum", 10),
        "canary_fast": (function, "Duration", "PR(:250)", 10),
        "canary_lambda_requests": ("AWS/Lambda", "Invocations", "Sum", 60),
        "canary_lambda_errors": ("AWS/Lambda", "Errors", "Sum", 60),
        "canary_throttles": ("AWS/Lambda", "Throttles", "Sum", 60),
        "canary_p50": (function, "Duration", "p50", 120),
        "canary_p99": (function, "Duration", "p99", 120),
    }
    # The same dimensions in both namespaces: a side is one set of Lambda's dimensions.
    assert {
        tuple((d["Name"], d["Value"]) for d in q["MetricStat"]["Metric"]["Dimensions"])
        for q in queries
        if q["Id"].startswith("canary_")
    } == {(("FunctionName", "fn"), ("Resource", "fn:prod-canary"))}
    assert len(queries) == evidence_cost.READ_METRICS


def test_ten_second_periods_carry_the_failures_only_lambda_saw_on_the_minutes_last() -> None:
    cloudwatch, sent = answered(function_results())

    window = finest(cloudwatch)

    assert (window.source, window.period_seconds, window.fallback) == ("function", 10, None)
    assert [minute.at for minute in window.minutes] == TEN_SECONDS
    assert all(minute.usable for minute in window.minutes)
    canary = [(p.canary_requests, p.canary_errors) for p in window.usable_periods]
    # The timeout Lambda counted in the first minute: a request and an error at 12:00:50.
    assert canary == [(2, 0)] * 5 + [(3, 1)] + [(2, 0)] * 6
    assert {(p.live_requests, p.live_errors, p.live_slow) for p in window.usable_periods} == {
        (10, 0, 1)
    }
    assert (window.canary.requests, window.canary.errors, window.live.throttles) == (25, 1, 3)
    assert (window.live.p50_ms, window.canary.p99_ms) == (40.0, 300.0)
    assert len(sent) == 1


def test_an_incomplete_function_query_makes_every_period_unusable_not_zero() -> None:
    failed = {"canary_errors": {"StatusCode": "InternalError", "Timestamps": [], "Values": []}}
    cloudwatch, _ = answered(function_results(failed))

    window = finest(cloudwatch)

    assert window.source == "function"
    assert window.usable_periods == []
    assert window.unusable[0].missing == ("canary_errors: InternalError",)
    assert window.incomplete == {"canary_errors": "InternalError"}
    assert window.canary.requests == 0


def test_a_minute_lambda_has_not_answered_leaves_out_its_last_period_only() -> None:
    late = {"canary_lambda_errors": {"Timestamps": [T0], "Values": [1.0]}}
    cloudwatch, _ = answered(function_results(late))

    window = finest(cloudwatch)

    assert window.source == "function"
    assert [minute.usable for minute in window.minutes] == [True] * 11 + [False]
    assert window.minutes[-1].missing == ("canary_lambda_errors: no point",)
    assert window.canary.requests == 23  # the unusable period is not counted


def test_lambdas_invocations_not_answered_in_full_cannot_check_the_function() -> None:
    partial = {"live_lambda_requests": {"StatusCode": "PartialData"}}
    cloudwatch, sent = answered(function_results(partial), results(2))

    window = finest(cloudwatch)

    assert (window.source, len(sent)) == ("lambda", 2)
    assert window.fallback == (
        "no whole minute of Lambda's invocations to check the function's against"
    )


def test_a_minute_lambda_saw_and_the_function_did_not_publish_is_unusable_throughout() -> None:
    first_minute_only = {
        f"canary_{suffix}": {"Timestamps": TEN_SECONDS[:6], "Values": [value] * 6}
        for suffix, value in (("requests", 2.0), ("errors", 0.0), ("fast", 100.0))
    }
    cloudwatch, _ = answered(function_results(first_minute_only))

    window = finest(cloudwatch)

    assert window.source == "function"
    assert [minute.usable for minute in window.minutes] == [True] * 6 + [False] * 6
    assert window.minutes[6].missing == (
        "canary_requests: none published for Lambda's 12 invocation(s)",
    )


def test_a_side_whose_version_publishes_nothing_falls_back_to_lambdas_minutes() -> None:
    # The first release with the function's metrics: live still runs a version without them.
    silent: dict[str, dict[str, Any]] = {
        f"live_{suffix}": {"Timestamps": [], "Values": []}
        for suffix in ("requests", "errors", "fast", "p50", "p99")
    }
    cloudwatch, sent = answered(function_results(silent), results(2))

    window = finest(cloudwatch)

    assert (window.source, window.period_seconds) == ("lambda", 60)
    assert window.fallback is not None
    assert "live side's version publishes no metrics" in window.fallback
    assert [p.canary_requests for p in window.usable_periods] == [10, 10]
    namespaces = [
        {q["MetricStat"]["Metric"]["Namespace"] for q in params["MetricDataQueries"]}
        for params in sent
    ]
    assert namespaces == [{aws.FUNCTION_NAMESPACE, "AWS/Lambda"}, {"AWS/Lambda"}]


def test_without_a_whole_minute_the_function_metrics_cannot_be_checked_yet() -> None:
    cloudwatch, sent = answered(function_results())

    window = finest(cloudwatch, seconds=50)

    # Lambda's read of less than a minute has no whole period: no second call, nothing usable.
    assert (window.source, window.minutes, len(sent)) == ("lambda", [], 1)
    assert window.fallback == (
        "no whole minute of Lambda's invocations to check the function's against"
    )


def test_read_trusted_metrics_reads_the_function_source_without_falling_back() -> None:
    silent: dict[str, dict[str, Any]] = {"live_requests": {"Timestamps": [], "Values": []}}
    cloudwatch, sent = answered(function_results(silent))

    window = aws.read_trusted_metrics(
        cloudwatch,
        dimensions=ALIASES,
        start=T0 + timedelta(seconds=25),  # rounded down to the whole minute
        end=T0 + timedelta(seconds=125),
        latency_threshold_ms=250,
        period_seconds=10,
        source="function",
    )

    assert (window.source, len(window.minutes), len(sent)) == ("function", 12, 1)
    assert sent[0]["StartTime"] == T0
    assert not any(minute.usable for minute in window.minutes)  # Lambda saw live's requests


@pytest.mark.parametrize("seconds", [0, 15, 45, 90])
def test_a_period_cloudwatch_cannot_answer_high_resolution_metrics_in_is_refused(
    seconds: int,
) -> None:
    with pytest.raises(ValueError, match="1, 5, 10, 20 or 30 seconds or whole minutes"):
        aws.read_finest_metrics(
            client("cloudwatch"),
            dimensions=ALIASES,
            start=T0,
            end=T0 + timedelta(minutes=2),
            latency_threshold_ms=250,
            period_seconds=seconds,
        )


def test_live_p99_from_the_function_reads_its_own_duration() -> None:
    cloudwatch, sent = answered([{"Id": "p99", "Timestamps": [T0], "Values": [210.0]}])

    p99 = aws.live_p99_ms(
        cloudwatch,
        dimensions=ALIASES["live"],
        start=T0,
        end=T0 + timedelta(hours=1),
        source="function",
    )

    assert p99 == 210.0
    (query,) = sent[0]["MetricDataQueries"]
    assert query["MetricStat"]["Metric"]["Namespace"] == aws.FUNCTION_NAMESPACE
