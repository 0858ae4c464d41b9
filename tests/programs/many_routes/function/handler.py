"""Answers every route with what API Gateway handed over, so a deployed route can be seen."""

from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"stage": event.get("stage"), "method": event.get("method")}
