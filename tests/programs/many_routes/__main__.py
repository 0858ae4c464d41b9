"""One function behind 100 routes: nested and parameterised paths, a greedy path, every method,
and two stages, one of them with a canary on a pinned stable version.

The route tree is one API Gateway accepts: siblings never use two different variable names,
nothing sits under the greedy ``{proxy+}``, and no greedy and plain variable are siblings.
"""

from pathlib import Path

import pulumi

from versioned_lambda_api import RouteArgs, VersionedLambdaApi, function_code_archive

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")

# Every method on each of these 12 paths (96 routes), and 4 more on health.
PATHS = (
    "orders",
    "orders/{id}",
    "orders/{id}/items",
    "orders/{id}/items/{itemId}",
    "customers",
    "customers/{customerId}",
    "customers/{customerId}/addresses",
    "customers/{customerId}/addresses/{addressId}",
    "products",
    "products/{sku}",
    "products/{sku}/reviews",
    "files/{proxy+}",
)
HEALTH_METHODS = ("GET", "HEAD", "OPTIONS", "POST")

routes: list[RouteArgs] = [{"path": path, "method": method} for path in PATHS for method in METHODS]
routes += [{"path": "v1/health", "method": method} for method in HEALTH_METHODS]

config = pulumi.Config()
VersionedLambdaApi(
    "shop",
    {
        "code": function_code_archive(Path(__file__).parent / "function"),
        "handler": "handler.handler",
        "routes": routes,
        "stages": [
            {"name": "staging", "alias": "staging"},
            {
                "name": "prod",
                "alias": "prod",
                "stable_version": config.require_int("stableVersion"),
                "canary_percent": float(config.require("canaryPercent")),
            },
        ],
    },
)
