"""Wait for something that happens through Kafka, without sleeping a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool] = bool,
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
) -> T:
    """Call ``probe`` until ``done(result)`` holds and return that result; fail after
    ``timeout`` seconds with the last result in the message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout}s; last result: {result!r}")
        await asyncio.sleep(interval)
