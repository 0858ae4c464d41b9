"""A function that does what its event says, to test the harness itself through the runtime."""

import logging
import os
import time
from typing import Any

logger = logging.getLogger(__name__)

_ENVIRONMENT = (
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_REGION",
    "LAMBDA_TASK_ROOT",
    "TZ",
    "_X_AMZN_TRACE_ID",
)


def handler(event: dict[str, Any], context: Any) -> object:
    action = event["do"]
    if action == "echo":
        return event["value"]
    if action == "raise":
        raise ValueError(event["message"])
    if action == "exit":
        os._exit(int(event["code"]))
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return "woke"
    if action == "log":
        logger.info("probe log", extra={"detail": event["detail"]})
        return "logged"
    if action == "context":
        return {
            "requestId": context.aws_request_id,
            "invokedFunctionArn": context.invoked_function_arn,
            "functionVersion": context.function_version,
            "memoryLimitInMb": context.memory_limit_in_mb,
            "remainingMs": context.get_remaining_time_in_millis(),
            "pid": os.getpid(),
            "environment": {name: os.environ.get(name) for name in _ENVIRONMENT},
        }
    raise KeyError(action)
