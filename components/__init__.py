"""A reusable Pulumi component that takes a Lambda function through its release life behind an
API Gateway REST API: published versions, per-stage aliases, stage variables and canaries."""

from components.archive import function_code_archive
from components.args import (
    CanaryMode,
    PolicyStatementArgs,
    RouteArgs,
    StageArgs,
    VersionedLambdaApiArgs,
)
from components.validation import ConfigError
from components.versioned_lambda_api import VersionedLambdaApi

__all__ = [
    "CanaryMode",
    "ConfigError",
    "PolicyStatementArgs",
    "RouteArgs",
    "StageArgs",
    "VersionedLambdaApi",
    "VersionedLambdaApiArgs",
    "function_code_archive",
]
