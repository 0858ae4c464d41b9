"""The stage variable through which an API Gateway stage picks the Lambda alias it invokes.

Plain data, importing nothing, because the component writes it and the release tool reads it back
from a deployed stage: the release tool starts without the Pulumi SDK.
"""

ALIAS_STAGE_VARIABLE = "lambdaAlias"
"""The stage variable whose value is the Lambda alias a stage (or its canary) invokes."""
