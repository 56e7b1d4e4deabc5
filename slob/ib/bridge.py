"""TickBridge: hands records from the reader thread to an asyncio consumer.

Single producer (the reader thread), single consumer (one coroutine on the event loop),
no lock on the path of a record: ``collections.deque`` appends and pops are atomic under
the GIL. The producer wakes the loop (``call_soon_threadsafe``) only when the consumer is
actually waiting, so a busy stream costs one deque extend per hand-off; the consumer
drains everything queued in one batch.

**The wake-up** itself is one byte written to a pipe whose read end the loop watches
(``add_reader``): one system call on each side, where ``call_soon_threadsafe`` costs a
socket write, a read loop that ends in an exception and a handle (measured: ~7 µs less CPU
per wake-up at 10,000/s, ~15 µs at 1,000/s). A loop without ``add_reader`` (Windows'
proactor) gets ``call_soon_threadsafe``. The pipe's ends stay open for the bridge's
lifetime (a producer may still write to them) and are closed when it is collected.

**Delivering inside the wake-up** (:attr:`TickBridge.fast_path`). Waking a coroutine costs
a Future resolved in one loop iteration and the task resumed in the next. A consumer that
can handle a batch synchronously registers a ``fast_path``: the wake-up callback the
producer scheduled drains the queue and calls it right there, and the waiting coroutine
is not woken at all -- unless ``fast_path`` returns True (it met something it must
``await``), and then :meth:`TickBridge.get` returns (possibly with an empty batch: the
fast path kept what it took). Items that arrive while the fast path runs are taken by one
more wake-up scheduled with the cheap ``call_soon``, not by the producer's
``call_soon_threadsafe``; a consumer already running is never woken.

**Backpressure, never a drop.** Above ``high_water`` queued items the bridge is
:attr:`~TickBridge.full`: the producer is expected to stop producing --
:class:`~slob.ib.client.IBClient`'s reader stops reading its socket, so TCP flow control
pushes back on TWS -- and to wait in :meth:`TickBridge.wait_for_room` until the consumer
has drained the queue below ``low_water`` (default: half the high-water mark, at least
1). Memory is bounded by the high-water mark whatever the consumer's speed; the time
spent waiting is counted (:attr:`~TickBridge.paused_ns`, :attr:`~TickBridge.pauses`). Each
excursion is also reported once (``on_high_water``, with the depth); the maximum depth
seen is kept for statistics. Nothing is ever dropped: a producer that does not wait only
loses the bound.

Caller obligations: create the bridge on the consumer's event loop (or pass ``loop``);
call :meth:`put` / :meth:`put_batch` / :meth:`wait_for_room` only from the one producer
thread; call :meth:`get` from one coroutine at a time, and set :attr:`fast_path` only on
the loop's thread. After the loop closes, :meth:`put` raises :class:`BridgeClosed` -- the
producer should stop.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
import weakref
from typing import Callable, Generic, NoReturn, TypeVar

__all__ = ["BridgeClosed", "TickBridge"]

T = TypeVar("T")
_HANDED_OVER = True  # the waiter's result when the fast path asks the coroutine to run


class BridgeClosed(RuntimeError):
    """The consumer side is gone (bridge closed or its event loop closed)."""


class TickBridge(Generic[T]):
    __slots__ = (
        "_queue", "_loop", "_waiter", "_wake_scheduled", "_closed", "_close_reason",
        "high_water", "low_water", "_above", "max_depth", "put_count", "wakeups", "fast_wakeups",
        "on_high_water", "fast_path", "_room", "paused_ns", "pauses", "_paused_since", "_wake_r", "_wake_w",
        "wake_requests",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        high_water: int = 10_000,
        low_water: int | None = None,
        on_high_water: Callable[[int], None] | None = None,
    ) -> None:
        self._queue: collections.deque[T] = collections.deque()
        self._loop = loop or asyncio.get_running_loop()
        self._waiter: asyncio.Future[bool] | None = None
        self._wake_scheduled = False
        self._closed = False
        self._close_reason = ""
        self.high_water = high_water
        # At least 1: the queue can never fall below 0, so low_water=0 would never re-arm.
        self.low_water = max(1, high_water // 2) if low_water is None else low_water
        if self.low_water < 1:
            raise ValueError(f"low_water must be >= 1 (got {self.low_water})")
        if self.low_water > self.high_water:
            raise ValueError(f"low_water ({self.low_water}) must not exceed high_water ({self.high_water})")
        self._above = False
        self.max_depth = 0
        self.put_count = 0
        #: Times the waiting coroutine was woken (get() returned after waiting).
        self.wakeups = 0
        #: Wake-ups whose batch the fast path handled without waking the coroutine.
        self.fast_wakeups = 0
        #: Wake-ups scheduled from another thread (a pipe write, or call_soon_threadsafe).
        self.wake_requests = 0
        #: Called on the producer thread when the depth crosses ``high_water``.
        self.on_high_water = on_high_water
        #: See the module docstring: ``fast_path(batch) -> True`` to wake the coroutine.
        self.fast_path: Callable[[list[T]], bool] | None = None
        self._room = threading.Condition(threading.Lock())
        #: Nanoseconds the producer spent in wait_for_room (backpressure), and how often.
        self.paused_ns = 0
        self.pauses = 0
        self._paused_since = 0
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._install_wake_pipe()

    def _install_wake_pipe(self) -> None:
        try:
            r, w = os.pipe()
        except OSError:
            return
        try:
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._loop.add_reader(r, self._on_wake_fd)
        except (NotImplementedError, RuntimeError, OSError, AttributeError):
            os.close(r)
            os.close(w)
            return
        self._wake_r, self._wake_w = r, w
        weakref.finalize(self, _close_fds, r, w)

    def _retire_pipe(self) -> None:
        """Stop watching the pipe (event loop thread; the ends stay open until collected)."""
        r = self._wake_r
        if r is not None and not self._loop.is_closed():
            self._loop.remove_reader(r)
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

    @property
    def full(self) -> bool:
        """Above the high-water mark and not yet drained below the low-water mark: the
        producer should stop producing (:meth:`wait_for_room`)."""
        return self._above

    @property
    def paused(self) -> bool:
        """The producer is waiting in :meth:`wait_for_room` right now."""
        return self._paused_since != 0

    def paused_seconds(self) -> float:
        """Seconds the producer has waited for room, the current wait included."""
        since = self._paused_since
        return (self.paused_ns + (time.monotonic_ns() - since if since else 0)) / 1e9

    def wait_for_room(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Producer: block while the bridge is :attr:`full` -- until the consumer drained
        it below ``low_water``, the bridge closed, or ``stop()`` is true (re-checked at
        every :meth:`wake_producer`, which whoever makes it true must call)."""
        room = self._room
        with room:
            if not (self._above and not self._closed and not stop()):
                return
            self.pauses += 1
            self._paused_since = time.monotonic_ns()
            try:
                while self._above and not self._closed and not stop():
                    room.wait()
            finally:
                self.paused_ns += time.monotonic_ns() - self._paused_since
                self._paused_since = 0

    def wake_producer(self) -> None:
        """Make a producer waiting in :meth:`wait_for_room` re-check its conditions."""
        with self._room:
            self._room.notify_all()

    def _schedule_wake(self) -> None:
        self._wake_scheduled = True
        self.wake_requests += 1
        w = self._wake_w
        if w is None:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError as exc:  # "Event loop is closed"
                self._loop_closed(exc)
            return
        if self._loop.is_closed():
            self._loop_closed(None)
        try:
            os.write(w, b"\x00")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups the loop has not read yet: it will run

    def _on_wake_fd(self) -> None:
        r = self._wake_r
        if r is not None:
            try:
                os.read(r, 4096)
            except BlockingIOError:
                pass
        self._wake()

    def _loop_closed(self, exc: RuntimeError | None) -> NoReturn:
        self._closed = True
        self._close_reason = f"the consumer's event loop closed ({exc or 'Event loop is closed'})"
        raise BridgeClosed(self._close_reason) from exc

    # -- consumer side (event loop) --------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self._wake_scheduled = False
            return
        fast = self.fast_path
        if fast is not None and not self._closed:
            batch = self.drain()
            try:
                wanted = bool(batch) and fast(batch)
            except BaseException as exc:  # never into the loop's handler: get() raises it
                self._wake_scheduled = False
                waiter.set_exception(exc)
                return
            if not wanted:
                self.fast_wakeups += 1
                # Cleared before looking at the queue again: an item the producer adds
                # after that look sees no wake-up pending and schedules its own.
                self._wake_scheduled = False
                if self._queue and self._waiter is waiter and not waiter.done():
                    self._wake_scheduled = True
                    self._loop.call_soon(self._wake)  # after whatever else is ready
                return
        self._wake_scheduled = False
        self.wakeups += 1
        waiter.set_result(_HANDED_OVER)

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
            self.wake_producer()
        return batch

    async def get(self) -> list[T]:
        """Wait for at least one item; return every item queued (oldest first). With a
        :attr:`fast_path`, the batch may be empty when the fast path asked for the
        coroutine (it kept what it took)."""
        while True:
            batch = self.drain()
            if batch:
                return batch
            if self._closed:
                self._retire_pipe()
                raise BridgeClosed(self._close_reason or "bridge closed")
            waiter: asyncio.Future[bool] = self._loop.create_future()
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
            if self.fast_path is not None:
                batch = self.drain()  # what arrived since the fast path ran, if anything
                if batch or not self._closed:
                    return batch

    def close(self, reason: str = "") -> None:
        """Stop accepting items; a waiting :meth:`get` returns what is left, then raises.
        A producer waiting for room is released."""
        self._closed = True
        self._close_reason = reason or "bridge closed"
        self.wake_producer()
        if self._waiter is not None:  # its get() raises, and stops watching the pipe
            if not self._wake_scheduled:
                try:
                    self._schedule_wake()
                except BridgeClosed:
                    pass
        elif self._wake_r is not None and not self._loop.is_closed():
            try:
                on_loop = asyncio.get_running_loop() is self._loop
            except RuntimeError:
                on_loop = not self._loop.is_running()
            if on_loop:
                self._retire_pipe()
            else:
                try:
                    self._loop.call_soon_threadsafe(self._retire_pipe)
                except RuntimeError:
                    pass

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)


def _close_fds(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
