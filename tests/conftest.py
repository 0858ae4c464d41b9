"""Fixtures shared by the tests. The recording mock itself is ``versioned_lambda_api.testing``'s,
the same one the test kit gives programs that import the component."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from versioned_lambda_api.testing import ProgramRun, run_program

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "event-logger"


@pytest.fixture(autouse=True)
def fresh_event_loop() -> Iterator[None]:
    """Each test gets its own event loop, so no Pulumi state leaks between tests."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    loop.close()
    asyncio.set_event_loop(None)


def run_stack(
    stack: str, overrides: dict[str, str] | None = None, published_version: int = 1
) -> ProgramRun:
    """Run this project's ``__main__.py`` with ``Pulumi.<stack>.yaml`` and ``overrides``."""
    return run_program(ROOT, stack, overrides, published_version)
