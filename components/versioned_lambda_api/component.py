"""The ``VersionedLambdaApi`` component: a published, aliased Lambda function behind a REST API
whose stages pick the alias they invoke, with canary releases.

The decisions (what a stage routes where, templates, the OpenAPI document, ARNs, names, what
its alarms watch) live in :mod:`versioned_lambda_api.args`, :mod:`versioned_lambda_api.api_spec`,
:mod:`versioned_lambda_api.openapi`, :mod:`versioned_lambda_api.names` and
:mod:`versioned_lambda_api.metrics`; this module only wires resources from them.
"""

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from versioned_lambda_api import api_spec, metrics, names, openapi
from versioned_lambda_api.args import (
    ApiPlan,
    PolicyStatementArgs,
    StagePlan,
    VersionedLambdaApiArgs,
    parse_args,
)
from versioned_lambda_api.validation import ConfigError

PACKAGE = "versioned-lambda-api"
TYPE_TOKEN = f"{PACKAGE}:index:VersionedLambdaApi"
# The token before the component became a package of its own: stacks that hold it keep their
# component, and with it every child's URN, instead of replacing them.
PREVIOUS_TYPE_TOKEN = "event-logger:index:VersionedLambdaApi"  # noqa: S105 - not a secret

_LAMBDA_ASSUME_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def function_policy(
    log_group_arn: pulumi.Input[str], extra_statements: list[PolicyStatementArgs]
) -> dict[str, Any]:
    """The function role's policy: its own log group, its traces, and what the caller adds."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": pulumi.Output.concat(log_group_arn, ":*"),
        },
        {
            # X-Ray's write actions support no resource-level scoping.
            "Sid": "WriteTraces",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",
        },
    ]
    statements.extend(
        {"Effect": "Allow", "Action": statement["actions"], "Resource": statement["resources"]}
        for statement in extra_statements
    )
    return {"Version": "2012-10-17", "Statement": statements}


class VersionedLambdaApi(pulumi.ComponentResource):
    """A Lambda function taken through its release life behind an API Gateway REST API.

    Every deploy publishes a version (only when the code or configuration changed). Each stage
    has a live alias (pinned to ``stable_version`` or following the newest version) and a
    canary alias (always the newest version). The REST API is one OpenAPI document whose every
    route invokes the alias named by the stage variable ``lambdaAlias``: the live alias, or, for
    a stage with ``canary_percent`` above 0, the canary alias for that share of requests; with
    ``canary_mode: "alias"`` the live alias itself sends that share to the newest version.
    API Gateway may invoke exactly the aliases a stage can reach, and only from that stage.

    Each stage has CloudWatch alarms on the error rate and p99 duration of its live and its
    canary traffic and on throttles, and a dashboard showing both side by side.

    Error contract: the function raises an exception whose message is ``[BadRequest] `` or
    ``[Unavailable] `` followed by a JSON body to answer 400 or 503 with that body; any other
    failure, an empty message or a timeout included, is answered 500 with a generic JSON body.
    """

    function_name: pulumi.Output[str]
    """Name of the Lambda function."""
    newest_version: pulumi.Output[str]
    """The most recently published version: what every canary alias serves."""
    rest_api_id: pulumi.Output[str]
    """ID of the REST API."""
    openapi: pulumi.Output[str]
    """The REST API's OpenAPI 3 document (JSON), as imported into API Gateway."""
    stage_urls: pulumi.Output[dict[str, str]]
    """Stage name to the stage's invoke URL."""
    live_aliases: pulumi.Output[dict[str, str]]
    """Stage name to the live alias it invokes."""
    live_versions: pulumi.Output[dict[str, str]]
    """Stage name to the version its live alias serves."""
    canary_aliases: pulumi.Output[dict[str, str]]
    """Stage name to its canary alias."""
    canary_versions: pulumi.Output[dict[str, str]]
    """Stage name to the version its canary alias serves."""
    api_keys: pulumi.Output[dict[str, str]]
    """Stage name to the API key its clients send as ``x-api-key`` (secret). Empty when
    ``api_key_required`` is false."""
    dashboard_names: pulumi.Output[dict[str, str]]
    """Stage name to the name of its CloudWatch dashboard."""

    def __init__(
        self,
        name: str,
        args: VersionedLambdaApiArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # Validate before registering anything, so a bad input leaves nothing half-created.
        plan = parse_args(args)
        names.check_names(name, [stage.name for stage in plan.stages])
        super().__init__(
            TYPE_TOKEN,
            name,
            None,
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=PREVIOUS_TYPE_TOKEN)])
            ),
        )
        self._component_name = name
        self._plan = plan

        function = self._create_function()
        newest_version = self._verified_newest_version(function)
        document = function.arn.apply(
            lambda arn: openapi.document_json(name, plan.routes, plan.api_key_required, arn)
        )
        rest_api = aws.apigateway.RestApi(
            names.child(name, "api"),
            description=f"{name}: routes to the Lambda alias named by each stage",
            body=document,
            # The document is the whole API: a route it no longer has is removed.
            put_rest_api_mode="overwrite",
            endpoint_configuration={"types": "REGIONAL"},
            # Importing a document ignores the endpoint configuration unless the import is told
            # it too (the workaround for CloudFormation's RestApi, which imports the same way).
            parameters={"endpointConfigurationTypes": "REGIONAL"},
            api_key_source="HEADER",
            opts=self._child_opts(),
        )
        deployment = aws.apigateway.Deployment(
            names.child(name, "deployment"),
            rest_api=rest_api.id,
            description="Replaced whenever the OpenAPI document changes",
            triggers={"redeployment": document.apply(openapi.fingerprint)},
            opts=self._child_opts(depends_on=[rest_api]),
        )

        stage_urls: dict[str, pulumi.Output[str]] = {}
        live_aliases: dict[str, pulumi.Output[str]] = {}
        live_versions: dict[str, pulumi.Output[str]] = {}
        canary_aliases: dict[str, pulumi.Output[str]] = {}
        canary_versions: dict[str, pulumi.Output[str]] = {}
        api_keys: dict[str, pulumi.Output[str]] = {}
        dashboard_names: dict[str, pulumi.Output[str]] = {}
        for stage_plan in plan.stages:
            if stage_plan.canary_is_inert:
                pulumi.log.warn(_inert_canary_warning(stage_plan), resource=self)
            live, canary = self._create_aliases(stage_plan, function, newest_version)
            permissions = self._create_permissions(
                stage_plan, function, rest_api, {"live": live, "canary": canary}
            )
            stage = self._create_stage(stage_plan, rest_api, deployment, permissions)
            api_keys[stage_plan.name] = self._create_api_key(stage_plan, rest_api, stage)
            dashboard_names[stage_plan.name] = self._create_monitoring(
                stage_plan, function, rest_api
            )
            stage_urls[stage_plan.name] = stage.invoke_url
            live_aliases[stage_plan.name] = live.name
            live_versions[stage_plan.name] = live.function_version
            canary_aliases[stage_plan.name] = canary.name
            canary_versions[stage_plan.name] = canary.function_version

        self.function_name = function.name
        self.newest_version = function.version
        self.rest_api_id = rest_api.id
        self.openapi = document
        self.stage_urls = pulumi.Output.all(**stage_urls)
        self.live_aliases = pulumi.Output.all(**live_aliases)
        self.live_versions = pulumi.Output.all(**live_versions)
        self.canary_aliases = pulumi.Output.all(**canary_aliases)
        self.canary_versions = pulumi.Output.all(**canary_versions)
        self.api_keys = pulumi.Output.secret(pulumi.Output.all(**api_keys))
        self.dashboard_names = pulumi.Output.all(**dashboard_names)
        self.register_outputs(
            {
                "functionName": self.function_name,
                "newestVersion": self.newest_version,
                "restApiId": self.rest_api_id,
                "openapi": self.openapi,
                "stageUrls": self.stage_urls,
                "liveAliases": self.live_aliases,
                "liveVersions": self.live_versions,
                "canaryAliases": self.canary_aliases,
                "canaryVersions": self.canary_versions,
                "apiKeys": self.api_keys,
                "dashboardNames": self.dashboard_names,
            }
        )

    @property
    def plan(self) -> ApiPlan:
        """The validated inputs this instance was built from."""
        return self._plan

    def _child_opts(
        self, depends_on: list[pulumi.Resource] | None = None
    ) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_function(self) -> aws.lambda_.Function:
        name, plan = self._component_name, self._plan
        log_group = aws.cloudwatch.LogGroup(
            names.child(name, "logs"),
            retention_in_days=plan.log_retention_days,
            opts=self._child_opts(),
        )
        role = aws.iam.Role(
            names.child(name, "role"),
            assume_role_policy=_LAMBDA_ASSUME_ROLE_POLICY,
            opts=self._child_opts(),
        )
        policy = aws.iam.RolePolicy(
            names.child(name, "policy"),
            role=role.id,
            policy=pulumi.Output.json_dumps(function_policy(log_group.arn, plan.policy_statements)),
            opts=self._child_opts(),
        )
        return aws.lambda_.Function(
            names.child(name, "function"),
            role=role.arn,
            runtime=plan.runtime,
            handler=plan.handler,
            code=plan.code,
            publish=True,
            memory_size=plan.memory_size,
            timeout=plan.timeout,
            architectures=["arm64"],
            environment={"variables": plan.environment} if plan.environment else None,
            logging_config={
                "log_format": "JSON",
                "log_group": log_group.name,
                "application_log_level": "INFO",
                "system_log_level": "WARN",
            },
            tracing_config={"mode": "Active"},
            # The first invocations must already be able to write logs.
            opts=self._child_opts(depends_on=[policy]),
        )

    def _verified_newest_version(self, function: aws.lambda_.Function) -> pulumi.Output[str]:
        """The function's newest version, once every pinned ``stable_version`` is known to be
        published. Every alias waits for it, so a version that does not exist fails the deploy
        with a clear message before any alias is changed (Lambda would refuse it only at
        UpdateAlias, after other changes were applied)."""
        pinned = {
            f"stages[{index}].stable_version": stage.stable_version
            for index, stage in enumerate(self._plan.stages)
            if stage.stable_version is not None
        }
        if not pinned:
            return function.version
        return pulumi.Output.all(function.name, function.version).apply(
            lambda values: _check_published(values[0], values[1], pinned)
        )

    def _create_aliases(
        self, stage: StagePlan, function: aws.lambda_.Function, newest_version: pulumi.Output[str]
    ) -> tuple[aws.lambda_.Alias, aws.lambda_.Alias]:
        name = self._component_name
        live = aws.lambda_.Alias(
            names.stage_child(name, "live-alias", stage.name),
            name=stage.live_alias,
            description=f"What stage {stage.name} serves outside its canary",
            function_name=function.name,
            function_version=(
                newest_version
                if stage.stable_version is None
                else newest_version.apply(lambda _: str(stage.stable_version))
            ),
            # Which version is newest is known only once it is published.
            routing_config=(
                newest_version.apply(lambda newest: _routing_config(stage.alias_weights(newest)))
                if stage.canary_mode == "alias"
                else None
            ),
            opts=self._child_opts(),
        )
        canary = aws.lambda_.Alias(
            names.stage_child(name, "canary-alias", stage.name),
            name=stage.canary_alias,
            description=f"The newest version, served to stage {stage.name}'s canary requests",
            function_name=function.name,
            function_version=newest_version,
            opts=self._child_opts(),
        )
        return live, canary

    def _create_permissions(
        self,
        stage: StagePlan,
        function: aws.lambda_.Function,
        rest_api: aws.apigateway.RestApi,
        aliases: dict[str, aws.lambda_.Alias],
    ) -> list[pulumi.Resource]:
        """One invoke permission per alias the stage can reach, for the whole stage: the
        alias' resource policy does not grow with the routes (Lambda caps it at 20 KB)."""
        return [
            aws.lambda_.Permission(
                names.stage_child(self._component_name, f"{role}-invoke", stage.name),
                statement_id=names.statement_id(stage.name, role),
                action="lambda:InvokeFunction",
                function=function.name,
                qualifier=aliases[role].name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(
                    rest_api.execution_arn, api_spec.stage_source_arn_suffix(stage.name)
                ),
                opts=self._child_opts(),
            )
            for role in stage.reachable_aliases()
        ]

    def _create_stage(
        self,
        stage: StagePlan,
        rest_api: aws.apigateway.RestApi,
        deployment: aws.apigateway.Deployment,
        permissions: list[pulumi.Resource],
    ) -> aws.apigateway.Stage:
        name = self._component_name
        api_stage = aws.apigateway.Stage(
            names.stage_child(name, "stage", stage.name),
            rest_api=rest_api.id,
            deployment=deployment.id,
            stage_name=stage.name,
            variables=stage.variables,
            canary_settings=(
                {
                    "deployment_id": deployment.id,
                    "percent_traffic": stage.canary_percent,
                    "stage_variable_overrides": stage.canary_variable_overrides,
                    "use_stage_cache": False,
                }
                if stage.stage_canary
                else None
            ),
            xray_tracing_enabled=True,
            # Traffic must not reach an alias before API Gateway may invoke it.
            opts=self._child_opts(depends_on=permissions),
        )
        aws.apigateway.MethodSettings(
            names.stage_child(name, "method-settings", stage.name),
            rest_api=rest_api.id,
            stage_name=api_stage.stage_name,
            method_path="*/*",
            settings={
                "metrics_enabled": True,
                "throttling_rate_limit": stage.throttle_rate_limit,
                "throttling_burst_limit": stage.throttle_burst_limit,
            },
            opts=self._child_opts(),
        )
        return api_stage

    def _create_api_key(
        self, stage: StagePlan, rest_api: aws.apigateway.RestApi, api_stage: aws.apigateway.Stage
    ) -> pulumi.Output[str]:
        """A key and usage plan of the stage's own, so a dev key cannot call prod."""
        if not self._plan.api_key_required:
            return pulumi.Output.from_input("")
        name = self._component_name
        key = aws.apigateway.ApiKey(
            names.stage_child(name, "api-key", stage.name),
            description=f"Clients of stage {stage.name}",
            enabled=True,
            opts=self._child_opts(),
        )
        usage_plan = aws.apigateway.UsagePlan(
            names.stage_child(name, "usage-plan", stage.name),
            description=f"Throttles the clients of stage {stage.name}",
            api_stages=[{"api_id": rest_api.id, "stage": api_stage.stage_name}],
            throttle_settings={
                "rate_limit": stage.throttle_rate_limit,
                "burst_limit": stage.throttle_burst_limit,
            },
            opts=self._child_opts(),
        )
        aws.apigateway.UsagePlanKey(
            names.stage_child(name, "usage-plan-key", stage.name),
            key_id=key.id,
            key_type="API_KEY",
            usage_plan_id=usage_plan.id,
            opts=self._child_opts(),
        )
        return key.value

    def _create_monitoring(
        self,
        stage: StagePlan,
        function: aws.lambda_.Function,
        rest_api: aws.apigateway.RestApi,
    ) -> pulumi.Output[str]:
        """The stage's alarms and dashboard; returns the dashboard's name."""
        name = self._component_name
        traffic = stage.traffic()
        for definition in metrics.alarm_definitions(traffic, stage.alarm_thresholds):
            # Alarm names are left to Pulumi's autonaming: unique per stack, so two stacks in
            # one account never overwrite (or, destroyed, delete) each other's alarms.
            aws.cloudwatch.MetricAlarm(
                names.stage_child(name, names.alarm_role(definition), stage.name),
                alarm_description=definition.description,
                comparison_operator=definition.comparison,
                threshold=definition.threshold,
                evaluation_periods=definition.evaluation_periods,
                datapoints_to_alarm=definition.datapoints_to_alarm,
                treat_missing_data=definition.treat_missing_data,
                alarm_actions=self._plan.alarm_actions or None,
                **_alarm_metric_args(definition, _alarm_dimensions(definition, function)),
                opts=self._child_opts(),
            )
        dashboard = aws.cloudwatch.Dashboard(
            names.stage_child(name, "dashboard", stage.name),
            dashboard_name=rest_api.id.apply(
                lambda api_id: names.dashboard_name(name, stage.name, api_id)
            ),
            dashboard_body=pulumi.Output.all(
                function.arn, rest_api.name, function.name, function.version
            ).apply(
                lambda values: json.dumps(
                    metrics.dashboard_body(
                        region=api_spec.arn_region(values[0]),
                        api_name=values[1],
                        stage=stage.name,
                        function_name=values[2],
                        newest_version=values[3],
                        traffic=traffic,
                    )
                )
            ),
            opts=self._child_opts(),
        )
        return dashboard.dashboard_name


def _check_published(function_name: str, newest: str, pinned: dict[str, int]) -> str:
    """``newest`` if every pinned version is published: versions are numbered 1, 2, ... in
    order and never reused, so one above the newest was never published."""
    for key, version in pinned.items():
        if version > int(newest):
            raise ConfigError(
                f"{key} is {version}, but function {function_name} has published versions 1 to "
                f"{newest} only: pin one of those (the live alias must serve code that exists), "
                "or deploy without a stable version first. No alias was changed."
            )
    return newest


def _inert_canary_warning(stage: StagePlan) -> str:
    share = (
        f"{stage.canary_percent}% of {stage.live_alias}'s invocations go to the newest version"
        if stage.canary_mode == "alias"
        else f"{stage.canary_percent}% of requests go to {stage.canary_alias}"
    )
    return (
        f"stage {stage.name}: {share}, but with no stable version pinned the live alias "
        "serves the newest version too; pin the live version to release a canary"
    )


def _routing_config(weights: dict[str, float]) -> aws.lambda_.AliasRoutingConfigArgs | None:
    return (
        aws.lambda_.AliasRoutingConfigArgs(additional_version_weights=weights) if weights else None
    )


def _alarm_dimensions(
    definition: metrics.AlarmDefinition, function: aws.lambda_.Function
) -> pulumi.Output[dict[str, str]]:
    return pulumi.Output.all(function.name, function.version).apply(
        lambda values: definition.dimensions(values[0], values[1])
    )


def _alarm_metric_args(
    definition: metrics.AlarmDefinition, dimensions: pulumi.Output[dict[str, str]]
) -> dict[str, Any]:
    """What the alarm watches: one metric with its statistic, or metric math over several."""
    first = definition.queries[0]
    if len(definition.queries) == 1 and isinstance(first, metrics.MetricStat):
        # Percentiles are extended statistics, which alone can ignore too few samples.
        percentile = first.stat.startswith("p")
        return {
            "namespace": metrics.LAMBDA_NAMESPACE,
            "metric_name": first.metric_name,
            "dimensions": dimensions,
            "period": definition.period,
            "statistic": None if percentile else first.stat,
            "extended_statistic": first.stat if percentile else None,
            "evaluate_low_sample_count_percentiles": definition.low_sample_percentiles,
        }
    last = definition.queries[-1].id
    return {
        "metric_queries": [
            {
                "id": query.id,
                "expression": query.expression,
                "label": query.label,
                "return_data": query.id == last,
            }
            if isinstance(query, metrics.Expression)
            else {
                "id": query.id,
                "metric": {
                    "namespace": metrics.LAMBDA_NAMESPACE,
                    "metric_name": query.metric_name,
                    "dimensions": dimensions,
                    "period": definition.period,
                    "stat": query.stat,
                },
                "return_data": query.id == last,
            }
            for query in definition.queries
        ]
    }
