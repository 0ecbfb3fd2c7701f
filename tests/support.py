"""Helpers for tests: waiting on conditions with deadlines, and failing loudly in CI."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import pytest

T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(part: str, why: str) -> NoReturn:
    """A real part could not start: fail in CI (never a silent skip), skip elsewhere."""
    message = f"{part} could not start: {why}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")
