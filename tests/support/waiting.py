"""Waiting on the event loop for a condition, with a time-out instead of a sleep."""

from __future__ import annotations

import asyncio
from typing import Callable

#: Seconds a test waits for what it expects before it fails (generous: slow CI machines).
WAIT = 30.0


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Let the loop run until ``predicate()`` holds; AssertionError naming ``what`` after ``timeout``."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0)
    try:
        await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
