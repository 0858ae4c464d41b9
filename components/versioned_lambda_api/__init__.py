"""A reusable Pulumi component that takes a Lambda function through its release life behind an
API Gateway REST API: published versions, per-stage aliases, stage variables and canaries.

The names below load on first use, so that a tool that needs only the plain-data modules
(``versioned_lambda_api.metrics``, ``.api_spec``, ``.validation``) starts without the Pulumi SDK
and pulumi-aws.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from versioned_lambda_api.archive import function_code_archive
    from versioned_lambda_api.args import (
        CanaryMode,
        PolicyStatementArgs,
        RouteArgs,
        StageArgs,
        VersionedLambdaApiArgs,
    )
    from versioned_lambda_api.component import VersionedLambdaApi
    from versioned_lambda_api.validation import ConfigError

_EXPORTS = {
    "CanaryMode": "versioned_lambda_api.args",
    "ConfigError": "versioned_lambda_api.validation",
    "PolicyStatementArgs": "versioned_lambda_api.args",
    "RouteArgs": "versioned_lambda_api.args",
    "StageArgs": "versioned_lambda_api.args",
    "VersionedLambdaApi": "versioned_lambda_api.component",
    "VersionedLambdaApiArgs": "versioned_lambda_api.args",
    "function_code_archive": "versioned_lambda_api.archive",
}

__all__ = [
    "CanaryMode",
    "ConfigError",
    "PolicyStatementArgs",
    "RouteArgs",
    "StageArgs",
    "VersionedLambdaApi",
    "VersionedLambdaApiArgs",
    "__version__",
    "function_code_archive",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
