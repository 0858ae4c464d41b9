"""The Event Logger: records events in DynamoDB behind a versioned, canaried Lambda API.

Every response names the stage, alias and version that served it, so a canary can be seen
working. Run ``pulumi up`` per stack; ``Pulumi.<stack>.yaml`` sets the alias and canary share.
"""

from pathlib import Path

import pulumi
import pulumi_aws as aws

from stack_config import NAMESPACE, load_stack_settings
from versioned_lambda_api import VersionedLambdaApi, function_code_archive

# Read and validate every setting before any resource is registered.
settings = load_stack_settings(pulumi.Config(NAMESPACE), pulumi.get_stack())
stage_name = settings.stage["name"]

table = aws.dynamodb.Table(
    "events",
    billing_mode="PAY_PER_REQUEST",
    hash_key="pk",
    range_key="sk",
    attributes=[{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}],
    point_in_time_recovery={"enabled": True},
    server_side_encryption={"enabled": True},
    ttl={"attribute_name": "expiresAt", "enabled": True},
)

api = VersionedLambdaApi(
    "event-logger",
    {
        "code": function_code_archive(Path(__file__).parent / "function"),
        "handler": "handler.handler",
        "memory_size": settings.memory_mb,
        "timeout": settings.timeout_seconds,
        "log_retention_days": settings.log_retention_days,
        "environment": {
            "TABLE_NAME": table.name,
            "EVENT_SHARDS": str(settings.event_shards),
            "EVENT_RETENTION_DAYS": str(settings.event_retention_days),
        },
        "policy_statements": [
            {
                # TransactWriteItems is authorised per contained PutItem; an item a failed
                # condition returns (ReturnValuesOnConditionCheckFailure) needs no GetItem.
                "actions": ["dynamodb:PutItem", "dynamodb:Query"],
                "resources": [table.arn],
            }
        ],
        "routes": [
            {"path": "events", "method": "POST"},
            {"path": "events", "method": "GET"},
        ],
        "stages": [settings.stage],
        "api_key_required": settings.api_key_required,
    },
)


def _for_stage(per_stage: pulumi.Output[dict[str, str]]) -> pulumi.Output[str]:
    return per_stage.apply(lambda values: values[stage_name])


pulumi.export("url", pulumi.Output.concat(_for_stage(api.stage_urls), "/events"))
pulumi.export("stage", stage_name)
pulumi.export("functionName", api.function_name)
pulumi.export("restApiId", api.rest_api_id)
pulumi.export("liveAlias", _for_stage(api.live_aliases))
pulumi.export("canaryAlias", _for_stage(api.canary_aliases))
pulumi.export("liveVersion", _for_stage(api.live_versions))
pulumi.export("canaryVersion", _for_stage(api.canary_versions))
pulumi.export("canaryPercent", settings.stage.get("canary_percent", 0))
# The release tool compares the mode deployed with the stack file's and with what AWS serves.
pulumi.export("canaryMode", str(settings.stage["canary_mode"]))
pulumi.export("tableName", table.name)
pulumi.export("dashboard", _for_stage(api.dashboard_names))
pulumi.export("apiKey", pulumi.Output.secret(_for_stage(api.api_keys)))
