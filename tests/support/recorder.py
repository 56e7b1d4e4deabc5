"""Recorder: collects what a live fetcher hands out (ticks, errors, events) and lets an
asyncio test await conditions on it.

Shared because IBWSFetcher and AlpacaWSFetcher have the same callbacks, so their tests
record them the same way. Each suite keeps its own default wait (``timeout``).
"""

from __future__ import annotations

import asyncio
from typing import Callable

from slob.model import Tick


class Recorder:
    """Collects what the fetcher hands out and lets a test await conditions on it."""

    def __init__(self, *, timeout: float) -> None:
        self.ticks: list[Tick] = []
        self.errors: list[BaseException] = []
        self.events: list[object] = []
        self.timeout = timeout
        self._changed = asyncio.Event()

    def tick(self, tick: Tick) -> None:
        self.ticks.append(tick)
        self._changed.set()

    def error(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self._changed.set()

    def event(self, event: object) -> None:
        self.events.append(event)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds (re-checked on every callback); TimeoutError
        after ``timeout`` seconds (default: the one given at construction)."""
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), self.timeout if timeout is None else timeout)
