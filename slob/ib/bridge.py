"""TickBridge: hands records from the reader thread to an asyncio consumer.

Single producer (the reader thread), single consumer (one coroutine on the event loop),
no lock: ``collections.deque`` appends and pops are atomic under the GIL. The producer
wakes the loop (``call_soon_threadsafe``) only when the consumer is actually waiting, so
a busy stream costs one deque append per record; the consumer drains everything queued
in one batch.

Nothing is ever dropped. When the queue grows past ``high_water`` the bridge reports it
once (``on_high_water``, with the depth) and again only after it has fallen below
``low_water`` (at least 1; default half the high-water mark); the maximum depth seen is
kept for statistics.

Caller obligations: create the bridge on the consumer's event loop (or pass ``loop``);
call :meth:`put` only from the one producer thread; call :meth:`get` from one coroutine
at a time. After the loop closes, :meth:`put` raises :class:`BridgeClosed` -- the
producer should stop.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Callable, Generic, NoReturn, TypeVar

__all__ = ["BridgeClosed", "TickBridge"]

T = TypeVar("T")


class BridgeClosed(RuntimeError):
    """The consumer side is gone (bridge closed or its event loop closed)."""


class TickBridge(Generic[T]):
    __slots__ = (
        "_queue", "_loop", "_waiter", "_wake_scheduled", "_closed", "_close_reason",
        "high_water", "low_water", "_above", "max_depth", "put_count", "wakeups",
        "on_high_water",
    )

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        high_water: int = 100_000,
        low_water: int | None = None,
        on_high_water: Callable[[int], None] | None = None,
    ) -> None:
        self._queue: collections.deque[T] = collections.deque()
        self._loop = loop or asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_scheduled = False
        self._closed = False
        self._close_reason = ""
        self.high_water = high_water
        # At least 1: the queue can never fall below 0, so low_water=0 would never re-arm.
        self.low_water = max(1, high_water // 2) if low_water is None else low_water
        if self.low_water < 1:
            raise ValueError(f"low_water must be >= 1 (got {self.low_water})")
        self._above = False
        self.max_depth = 0
        self.put_count = 0
        self.wakeups = 0
        #: Called on the producer thread when the depth crosses ``high_water``.
        self.on_high_water = on_high_water

    # -- producer side (reader thread) -------------------------------------------

    def put(self, item: T) -> None:
        if self._closed:
            raise BridgeClosed(self._close_reason or "bridge closed")
        queue = self._queue
        queue.append(item)
        self.put_count += 1
        self._arrived(len(queue))

    def put_batch(self, items: list[T]) -> None:
        """Several items at once, in order: one wake-up check for the lot."""
        if self._closed:
            raise BridgeClosed(self._close_reason or "bridge closed")
        queue = self._queue
        queue.extend(items)
        self.put_count += len(items)
        self._arrived(len(queue))

    def _arrived(self, depth: int) -> None:
        if depth > self.max_depth:
            self.max_depth = depth
        # Not nested in the max_depth test: a later excursion that stays shallower than
        # an earlier one must be reported too.
        if depth > self.high_water and not self._above:
            self._above = True
            if self.on_high_water is not None:
                self.on_high_water(depth)
        if self._waiter is not None and not self._wake_scheduled:
            self._schedule_wake()
        elif self._loop.is_closed():
            # No wake-up to schedule (the consumer is busy, or its wake-up is already
            # scheduled), but the loop is gone -- closed before it ran that wake-up, or
            # after cancelling the consumer (asyncio.run): nobody will drain this queue.
            self._loop_closed(None)

    def _schedule_wake(self) -> None:
        self._wake_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError as exc:  # "Event loop is closed"
            self._loop_closed(exc)

    def _loop_closed(self, exc: RuntimeError | None) -> NoReturn:
        self._closed = True
        self._close_reason = f"the consumer's event loop closed ({exc or 'Event loop is closed'})"
        raise BridgeClosed(self._close_reason) from exc

    # -- consumer side (event loop) --------------------------------------------

    def _wake(self) -> None:
        self._wake_scheduled = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.wakeups += 1
            waiter.set_result(None)

    def drain(self) -> list[T]:
        """Everything queued now, oldest first (possibly empty); never waits."""
        queue = self._queue
        n = len(queue)
        if n == 0:
            return []
        popleft = queue.popleft
        batch = [popleft() for _ in range(n)]
        if self._above and len(queue) < self.low_water:
            self._above = False
        return batch

    async def get(self) -> list[T]:
        """Wait for at least one item; return every item queued (oldest first)."""
        while True:
            batch = self.drain()
            if batch:
                return batch
            if self._closed:
                raise BridgeClosed(self._close_reason or "bridge closed")
            waiter = self._loop.create_future()
            self._waiter = waiter
            # Re-check after publishing the waiter: an item appended just before the
            # producer could see it would otherwise wait for the next one.
            if self._queue or self._closed:
                self._waiter = None
                continue
            try:
                await waiter
            finally:
                self._waiter = None

    def close(self, reason: str = "") -> None:
        """Stop accepting items; a waiting :meth:`get` returns what is left, then raises."""
        self._closed = True
        self._close_reason = reason or "bridge closed"
        if self._waiter is not None and not self._wake_scheduled:
            try:
                self._schedule_wake()
            except BridgeClosed:
                pass

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)
