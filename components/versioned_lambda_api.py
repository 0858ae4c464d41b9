"""The ``VersionedLambdaApi`` component: a published, aliased Lambda function behind a REST API
whose stages pick the alias they invoke, with canary releases.

The decisions (what a stage routes where, templates, ARNs, what its alarms watch) live in
:mod:`components.args`, :mod:`components.api_spec` and :mod:`components.metrics`; this module
only wires resources from them.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components import api_spec, metrics
from components.args import (
    ApiPlan,
    PolicyStatementArgs,
    StagePlan,
    VersionedLambdaApiArgs,
    component_name,
    parse_args,
)

TYPE_TOKEN = "event-logger:index:VersionedLambdaApi"  # noqa: S105 - not a secret

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
    canary alias (always the newest version). The stage variable ``lambdaAlias`` makes every
    route invoke the live alias; a stage with ``canary_percent`` above 0 overrides it with the
    canary alias for that share of requests, or, with ``canary_mode: "alias"``, the live alias
    itself sends that share to the newest version. API Gateway may invoke exactly the aliases a
    stage can reach, from that stage, for the methods and paths it serves.

    Each stage has CloudWatch alarms on the error rate and p99 duration of its live and its
    canary traffic and on throttles, and a dashboard showing both side by side.

    Error contract: the function raises an exception whose message is ``[BadRequest] `` or
    ``[Unavailable] `` followed by a JSON body to answer 400 or 503 with that body; any other
    failure is answered 500 with a generic JSON body.
    """

    function_name: pulumi.Output[str]
    """Name of the Lambda function."""
    newest_version: pulumi.Output[str]
    """The most recently published version: what every canary alias serves."""
    rest_api_id: pulumi.Output[str]
    """ID of the REST API."""
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
        component_name(name)
        plan = parse_args(args)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._component_name = name
        self._plan = plan

        function = self._create_function(args)
        rest_api = aws.apigateway.RestApi(
            f"{name}-api",
            description=f"{name}: routes to the Lambda alias named by each stage",
            endpoint_configuration={"types": "REGIONAL"},
            opts=self._child_opts(),
        )
        deployment = self._create_deployment(rest_api, function)

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
            live, canary = self._create_aliases(stage_plan, function)
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

    def _create_function(self, args: VersionedLambdaApiArgs) -> aws.lambda_.Function:
        name, plan = self._component_name, self._plan
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=plan.log_retention_days, opts=self._child_opts()
        )
        role = aws.iam.Role(
            f"{name}-role", assume_role_policy=_LAMBDA_ASSUME_ROLE_POLICY, opts=self._child_opts()
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(function_policy(log_group.arn, plan.policy_statements)),
            opts=self._child_opts(),
        )
        environment = args.get("environment")
        return aws.lambda_.Function(
            f"{name}-function",
            role=role.arn,
            runtime=plan.runtime,
            handler=args["handler"],
            code=args["code"],
            publish=True,
            memory_size=plan.memory_size,
            timeout=plan.timeout,
            architectures=["arm64"],
            environment={"variables": environment} if environment else None,
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

    def _create_deployment(
        self, rest_api: aws.apigateway.RestApi, function: aws.lambda_.Function
    ) -> aws.apigateway.Deployment:
        """The routes' resources, methods, integrations and responses, and their deployment."""
        name, plan = self._component_name, self._plan
        integration_uri = function.arn.apply(api_spec.lambda_integration_uri)
        resources: dict[str, aws.apigateway.Resource] = {}
        for path in api_spec.resource_paths(plan.routes):
            parent = api_spec.parent_path(path)
            resources[path] = aws.apigateway.Resource(
                f"{name}-resource-{path}",
                rest_api=rest_api.id,
                parent_id=rest_api.root_resource_id if parent is None else resources[parent].id,
                path_part=path.rpartition("/")[2],
                opts=self._child_opts(),
            )

        snapshot: list[pulumi.Resource] = []
        for route in plan.routes:
            route_name = f"{name}-{route.method}-{route.path}"
            resource = resources[route.path]
            method = aws.apigateway.Method(
                route_name,
                rest_api=rest_api.id,
                resource_id=resource.id,
                http_method=route.method,
                authorization="NONE",
                api_key_required=plan.api_key_required,
                opts=self._child_opts(),
            )
            integration = aws.apigateway.Integration(
                f"{route_name}-integration",
                rest_api=rest_api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                type="AWS",
                integration_http_method="POST",
                uri=integration_uri,
                request_templates={api_spec.JSON_CONTENT_TYPE: route.request_template},
                # Without a matching template the raw body would reach the function unmapped.
                passthrough_behavior="NEVER",
                opts=self._child_opts(),
            )
            snapshot += [method, integration]
            for response in api_spec.INTEGRATION_RESPONSES:
                method_response = aws.apigateway.MethodResponse(
                    f"{route_name}-{response.status_code}",
                    rest_api=rest_api.id,
                    resource_id=resource.id,
                    http_method=method.http_method,
                    status_code=response.status_code,
                    response_models={api_spec.JSON_CONTENT_TYPE: "Empty"},
                    opts=self._child_opts(),
                )
                integration_response = aws.apigateway.IntegrationResponse(
                    f"{route_name}-{response.status_code}-integration",
                    rest_api=rest_api.id,
                    resource_id=resource.id,
                    http_method=method.http_method,
                    status_code=method_response.status_code,
                    selection_pattern=response.selection_pattern,
                    response_templates=(
                        {api_spec.JSON_CONTENT_TYPE: response.template}
                        if response.template is not None
                        else None
                    ),
                    opts=self._child_opts(depends_on=[integration]),
                )
                snapshot += [method_response, integration_response]

        return aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=rest_api.id,
            description="Replaced whenever a route, template or response changes",
            triggers={
                "redeployment": integration_uri.apply(
                    lambda uri: api_spec.deployment_fingerprint(
                        plan.routes, plan.api_key_required, uri
                    )
                )
            },
            opts=self._child_opts(depends_on=snapshot),
        )

    def _create_aliases(
        self, stage: StagePlan, function: aws.lambda_.Function
    ) -> tuple[aws.lambda_.Alias, aws.lambda_.Alias]:
        live = aws.lambda_.Alias(
            f"{self._component_name}-{stage.name}-live-alias",
            name=stage.live_alias,
            description=f"What stage {stage.name} serves outside its canary",
            function_name=function.name,
            function_version=(
                function.version if stage.stable_version is None else str(stage.stable_version)
            ),
            # Which version is newest is known only once it is published.
            routing_config=(
                function.version.apply(lambda newest: _routing_config(stage.alias_weights(newest)))
                if stage.canary_mode == "alias"
                else None
            ),
            opts=self._child_opts(),
        )
        canary = aws.lambda_.Alias(
            f"{self._component_name}-{stage.name}-canary-alias",
            name=stage.canary_alias,
            description=f"The newest version, served to stage {stage.name}'s canary requests",
            function_name=function.name,
            function_version=function.version,
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
        """One invoke permission per alias the stage can reach and route it serves."""
        permissions: list[pulumi.Resource] = []
        for role in stage.reachable_aliases():
            for route in self._plan.routes:
                permissions.append(
                    aws.lambda_.Permission(
                        f"{self._component_name}-{stage.name}-{role}-{route.method}-{route.path}-invoke",
                        action="lambda:InvokeFunction",
                        function=function.name,
                        qualifier=aliases[role].name,
                        principal="apigateway.amazonaws.com",
                        source_arn=pulumi.Output.concat(
                            rest_api.execution_arn,
                            api_spec.source_arn_suffix(stage.name, route.method, route.path),
                        ),
                        opts=self._child_opts(),
                    )
                )
        return permissions

    def _create_stage(
        self,
        stage: StagePlan,
        rest_api: aws.apigateway.RestApi,
        deployment: aws.apigateway.Deployment,
        permissions: list[pulumi.Resource],
    ) -> aws.apigateway.Stage:
        api_stage = aws.apigateway.Stage(
            f"{self._component_name}-{stage.name}-stage",
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
            f"{self._component_name}-{stage.name}-method-settings",
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
        key = aws.apigateway.ApiKey(
            f"{self._component_name}-{stage.name}-api-key",
            description=f"Clients of stage {stage.name}",
            enabled=True,
            opts=self._child_opts(),
        )
        usage_plan = aws.apigateway.UsagePlan(
            f"{self._component_name}-{stage.name}-usage-plan",
            description=f"Throttles the clients of stage {stage.name}",
            api_stages=[{"api_id": rest_api.id, "stage": api_stage.stage_name}],
            throttle_settings={
                "rate_limit": stage.throttle_rate_limit,
                "burst_limit": stage.throttle_burst_limit,
            },
            opts=self._child_opts(),
        )
        aws.apigateway.UsagePlanKey(
            f"{self._component_name}-{stage.name}-usage-plan-key",
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
            aws.cloudwatch.MetricAlarm(
                f"{name}-{stage.name}-{definition.suffix}-alarm",
                name=metrics.alarm_name(name, stage.name, definition),
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
            f"{name}-{stage.name}-dashboard",
            dashboard_name=metrics.dashboard_name(name, stage.name),
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
