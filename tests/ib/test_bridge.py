"""TickBridge (``slob.ib.bridge``) with a real producer thread and an asyncio consumer.

No sockets: a plain thread plays the reader. Tests never sleep to synchronise; they
join threads, wait on ``threading.Event`` / futures with timeouts, and let the event
loop run with ``asyncio.sleep(0)`` (one deterministic FIFO step).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

from slob.ib.bridge import BridgeClosed, TickBridge

JOIN = 30.0  # generous: a join that times out is asserted on, never waited out silently


def run_thread(target: Callable[[], None], name: str = "test-producer") -> list[BaseException]:
    """Run ``target`` on a thread of its own, join it, return what it raised (if anything)."""
    errors: list[BaseException] = []

    def wrapped() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    thread = threading.Thread(target=wrapped, name=name, daemon=True)
    thread.start()
    thread.join(JOIN)
    assert not thread.is_alive(), f"{name} did not finish"
    return errors


def put_all(bridge: TickBridge[int], items: range) -> Callable[[], None]:
    def produce() -> None:
        for i in items:
            bridge.put(i)
    return produce


# ---------------------------------------------------------------------------
# Throughput shape: complete, ordered, batched


@pytest.mark.asyncio
async def test_a_million_items_arrive_complete_in_order_and_in_batches() -> None:
    n = 1_000_000
    bridge: TickBridge[int] = TickBridge(high_water=2 * n)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            put = bridge.put
            for i in range(n):
                put(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    async def consume() -> tuple[list[int], int]:
        received: list[int] = []
        gets = 0
        while len(received) < n:
            batch = await bridge.get()
            gets += 1
            assert batch, "get() returned an empty batch"
            received.extend(batch)
        return received, gets

    producer = threading.Thread(target=produce, name="test-producer", daemon=True)
    producer.start()
    try:
        received, gets = await asyncio.wait_for(consume(), 120)
    finally:
        producer.join(JOIN)
    assert not producer.is_alive()
    assert errors == []
    assert len(received) == n
    assert received == list(range(n))
    assert bridge.put_count == n
    assert len(bridge) == 0
    assert bridge.drain() == []
    # Batching: the consumer wakes per batch, not per item.
    assert gets < 100_000
    assert bridge.wakeups < 100_000
    assert 1 <= bridge.max_depth <= n


# ---------------------------------------------------------------------------
# Wake the loop only when the consumer waits


@pytest.mark.asyncio
async def test_puts_without_a_waiting_consumer_schedule_nothing_on_the_loop() -> None:
    bridge: TickBridge[int] = TickBridge(high_water=1_000_000)

    # Nobody is awaiting get(): 50,000 puts from another thread touch only the deque.
    assert run_thread(put_all(bridge, range(50_000))) == []
    assert bridge.wake_requests == 0
    assert bridge.wakeups == 0
    assert len(bridge) == 50_000

    # Items already queued: get() returns them at once, without waiting or waking.
    batch = await asyncio.wait_for(bridge.get(), 5)
    assert batch == list(range(50_000))
    assert bridge.wake_requests == 0
    assert bridge.wakeups == 0

    # Now the consumer waits (one loop step runs the task up to its await)...
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert bridge.wake_requests == 0
    # ...and a put from the producer thread schedules exactly one wake-up.
    assert run_thread(put_all(bridge, range(50_000, 50_001))) == []
    assert bridge.wake_requests == 1
    assert await asyncio.wait_for(waiting, 5) == [50_000]
    assert bridge.wakeups == 1


@pytest.mark.asyncio
async def test_one_wake_up_per_wait_however_many_items_arrive_meanwhile() -> None:
    bridge: TickBridge[int] = TickBridge()

    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    # The loop does not run while the producer thread puts 1,000 items: the first put
    # schedules the wake-up, the other 999 see it scheduled and add nothing.
    assert run_thread(put_all(bridge, range(1000))) == []
    assert bridge.wake_requests == 1
    assert await asyncio.wait_for(waiting, 5) == list(range(1000))
    assert bridge.wakeups == 1


# ---------------------------------------------------------------------------
# High-water mark


@pytest.mark.asyncio
async def test_high_water_is_reported_once_per_excursion_and_nothing_is_dropped() -> None:
    reports: list[tuple[int, str]] = []

    def on_high_water(depth: int) -> None:
        reports.append((depth, threading.current_thread().name))

    bridge: TickBridge[int] = TickBridge(high_water=10, low_water=5, on_high_water=on_high_water)
    received: list[int] = []

    # Up to the mark: no report.
    assert run_thread(put_all(bridge, range(0, 10))) == []
    assert reports == []
    # One past it: reported once, on the producer thread, with the depth.
    assert run_thread(put_all(bridge, range(10, 11))) == []
    assert reports == [(11, "test-producer")]
    # Still above (nothing drained): no second report however deep it gets.
    assert run_thread(put_all(bridge, range(11, 30))) == []
    assert reports == [(11, "test-producer")]
    assert bridge.max_depth == 30

    received += await asyncio.wait_for(bridge.get(), 5)  # drains to 0 < low_water
    assert received == list(range(30))

    # A second excursion is reported again, as soon as it passes the mark, even though
    # it never gets as deep as the first one.
    assert run_thread(put_all(bridge, range(30, 41))) == []
    assert reports == [(11, "test-producer"), (11, "test-producer")]
    assert bridge.max_depth == 30

    received += await asyncio.wait_for(bridge.get(), 5)
    # A third, deeper one: reported once, max_depth follows.
    assert run_thread(put_all(bridge, range(41, 91))) == []
    assert [depth for depth, _ in reports] == [11, 11, 11]
    assert bridge.max_depth == 50
    received += await asyncio.wait_for(bridge.get(), 5)

    assert received == list(range(91))  # nothing dropped
    assert bridge.put_count == 91
    assert len(bridge) == 0


@pytest.mark.asyncio
async def test_default_low_water_rearms_even_for_the_smallest_high_water() -> None:
    reports: list[int] = []
    bridge: TickBridge[int] = TickBridge(high_water=1, on_high_water=reports.append)
    for excursion in range(3):
        assert run_thread(put_all(bridge, range(2))) == []
        assert await asyncio.wait_for(bridge.get(), 5) == [0, 1]
    assert reports == [2, 2, 2]


@pytest.mark.asyncio
async def test_high_water_while_a_consumer_streams_reports_only_real_excursions() -> None:
    """A fast producer against a live consumer: every report carries a depth above the
    mark, reports never outnumber the drains that could have re-armed them, and all
    items arrive in order."""
    n = 200_000
    reports: list[int] = []
    bridge: TickBridge[int] = TickBridge(high_water=1000, low_water=500, on_high_water=reports.append)
    producer = threading.Thread(target=put_all(bridge, range(n)), name="test-producer", daemon=True)

    async def consume() -> tuple[list[int], int]:
        received: list[int] = []
        gets = 0
        while len(received) < n:
            received.extend(await bridge.get())
            gets += 1
        return received, gets

    producer.start()
    try:
        received, gets = await asyncio.wait_for(consume(), 60)
    finally:
        producer.join(JOIN)
    assert received == list(range(n))
    assert all(depth > 1000 for depth in reports)
    assert len(reports) <= gets
    assert (bridge.max_depth > 1000) == bool(reports)


# ---------------------------------------------------------------------------
# The consumer's loop closes under a running producer


def test_producer_gets_bridge_closed_when_the_loop_closes_under_a_waiting_consumer() -> None:
    """The event loop lives on a thread of its own; the consumer loops on ``get()``; the
    loop is stopped and closed while the producer keeps putting. The producer must get
    :class:`BridgeClosed` -- and nothing else -- and every thread must end."""
    loop = asyncio.new_event_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    bridge: TickBridge[int] = TickBridge(loop=loop, high_water=10**9)
    received: list[int] = []
    got_some = threading.Event()
    loop_closed = threading.Event()
    loop_thread_errors: list[BaseException] = []
    producer_outcome: list[BaseException] = []
    puts_after_close = [0]

    async def consume() -> None:
        while True:
            received.extend(await bridge.get())
            if len(received) >= 10_000:
                got_some.set()

    def run_loop() -> None:
        try:
            asyncio.set_event_loop(loop)
            with pytest.raises(RuntimeError, match="stopped before Future completed"):
                loop.run_until_complete(consume())
        except BaseException as exc:  # noqa: BLE001
            loop_thread_errors.append(exc)
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            loop_closed.set()

    def produce() -> None:
        i = 0
        try:
            while True:
                bridge.put(i)
                i += 1
                if loop_closed.is_set():
                    puts_after_close[0] += 1
                    if puts_after_close[0] > 100_000:
                        return  # never told: the assertion below reports it
        except BaseException as exc:  # noqa: BLE001
            producer_outcome.append(exc)

    loop_thread = threading.Thread(target=run_loop, name="test-loop", daemon=True)
    producer = threading.Thread(target=produce, name="test-producer", daemon=True)
    loop_thread.start()
    producer.start()
    try:
        assert got_some.wait(JOIN), "the consumer received nothing"
        loop.call_soon_threadsafe(loop.stop)
    finally:
        loop_thread.join(JOIN)
        producer.join(JOIN)
    assert not loop_thread.is_alive() and not producer.is_alive()
    assert loop_thread_errors == []
    assert loop_errors == []
    assert loop.is_closed()
    assert len(producer_outcome) == 1, f"producer was never told (puts after close: {puts_after_close[0]})"
    assert type(producer_outcome[0]) is BridgeClosed
    assert "loop closed" in str(producer_outcome[0])
    assert bridge.closed
    # What the consumer got is the start of the sequence, in order, without gaps.
    assert received == list(range(len(received)))
    # Once failed, every later put fails the same way.
    with pytest.raises(BridgeClosed):
        bridge.put(-1)


def test_put_after_close_of_a_loop_with_a_pending_wake_up_raises_bridge_closed() -> None:
    """The deterministic core of the test above: the consumer waits, a put schedules its
    wake-up, the loop stops and closes before running it. The next put must not be
    swallowed into a queue nobody will ever drain."""
    loop = asyncio.new_event_loop()
    bridge: TickBridge[int] = TickBridge(loop=loop)
    loop.call_soon(loop.stop)  # the loop runs one step: the consumer reaches its await
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(bridge.get())
    assert run_thread(lambda: bridge.put(1)) == []  # wake-up scheduled on the open loop
    loop.close()
    errors = run_thread(lambda: bridge.put(2))
    assert len(errors) == 1 and type(errors[0]) is BridgeClosed
    assert bridge.closed


def test_put_to_a_closed_loop_while_the_consumer_waits_raises_bridge_closed() -> None:
    loop = asyncio.new_event_loop()
    bridge: TickBridge[int] = TickBridge(loop=loop)
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(bridge.get())
    loop.close()
    errors = run_thread(lambda: bridge.put(1))
    assert len(errors) == 1 and type(errors[0]) is BridgeClosed
    assert "loop closed" in str(errors[0])
    errors = run_thread(lambda: bridge.put(2))
    assert len(errors) == 1 and type(errors[0]) is BridgeClosed


def test_a_closed_loop_with_no_consumer_left_refuses_the_next_put() -> None:
    """asyncio.run() cancels the consumer before closing its loop, so no get() is waiting
    any more; the producer must still learn that the loop is gone instead of queueing
    for nobody."""
    reports: list[int] = []
    loop = asyncio.new_event_loop()
    bridge: TickBridge[int] = TickBridge(loop=loop, high_water=100, on_high_water=reports.append)

    async def consumer_cancelled() -> None:
        task = asyncio.ensure_future(bridge.get())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(consumer_cancelled())
    assert run_thread(put_all(bridge, range(3))) == []  # the loop is still open
    loop.close()
    accepted: list[int] = []

    def produce() -> None:
        for i in range(3, 1000):
            bridge.put(i)
            accepted.append(i)

    errors = run_thread(produce)
    assert len(errors) == 1 and type(errors[0]) is BridgeClosed
    assert accepted == []
    assert reports == []
    assert bridge.closed


# ---------------------------------------------------------------------------
# close()


@pytest.mark.asyncio
async def test_close_lets_a_waiting_get_return_what_is_left_then_raise() -> None:
    bridge: TickBridge[int] = TickBridge()
    received: list[int] = []

    async def consume() -> BaseException:
        try:
            while True:
                received.extend(await bridge.get())
        except BaseException as exc:  # noqa: BLE001
            return exc

    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0)  # the consumer is now waiting
    assert not consumer.done()
    # Items put from the producer thread, then close(), all before the loop runs again.
    assert run_thread(put_all(bridge, range(3))) == []
    bridge.close("feed stopped")
    assert bridge.closed
    outcome = await asyncio.wait_for(consumer, 5)
    assert received == [0, 1, 2]
    assert type(outcome) is BridgeClosed
    assert "feed stopped" in str(outcome)
    # The producer is refused from now on.
    errors = run_thread(lambda: bridge.put(3))
    assert len(errors) == 1 and type(errors[0]) is BridgeClosed
    assert received == [0, 1, 2]


@pytest.mark.asyncio
async def test_close_wakes_a_consumer_waiting_on_an_empty_queue() -> None:
    bridge: TickBridge[int] = TickBridge()
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    bridge.close()
    with pytest.raises(BridgeClosed, match="bridge closed"):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(BridgeClosed):
        await asyncio.wait_for(bridge.get(), 5)


@pytest.mark.asyncio
async def test_close_from_the_producer_thread_wakes_the_consumer() -> None:
    bridge: TickBridge[int] = TickBridge()
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)

    def produce_then_close() -> None:
        bridge.put(7)
        bridge.put(8)
        bridge.close("reader finished")

    assert run_thread(produce_then_close) == []
    assert await asyncio.wait_for(waiting, 5) == [7, 8]
    with pytest.raises(BridgeClosed, match="reader finished"):
        await asyncio.wait_for(bridge.get(), 5)


@pytest.mark.asyncio
async def test_a_cancelled_get_loses_nothing() -> None:
    bridge: TickBridge[int] = TickBridge()
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert run_thread(put_all(bridge, range(5))) == []  # wake-up scheduled...
    waiting.cancel()  # ...but the get() is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.wait_for(bridge.get(), 5) == [0, 1, 2, 3, 4]
    # The bridge still wakes the next waiter.
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert run_thread(put_all(bridge, range(5, 6))) == []
    assert await asyncio.wait_for(waiting, 5) == [5]


# ---------------------------------------------------------------------------
# Delivering inside the wake-up (fast path)


@pytest.mark.asyncio
async def test_the_fast_path_delivers_in_the_wake_up_without_waking_the_consumer() -> None:
    bridge: TickBridge[int] = TickBridge()
    seen: list[int] = []
    got_all = asyncio.Event()

    def fast(batch: list[int]) -> bool:
        seen.extend(batch)
        if len(seen) >= 3000:
            got_all.set()
        return False  # handled: the coroutine stays asleep

    bridge.fast_path = fast
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    for start in (0, 1000, 2000):  # three separate excursions of the producer
        assert run_thread(put_all(bridge, range(start, start + 1000))) == []
        await asyncio.wait_for(got_all.wait() if start == 2000 else _until(lambda: len(seen) >= start + 1000), 5)
    assert seen == list(range(3000))
    assert not waiting.done() and bridge.wakeups == 0 and bridge.fast_wakeups >= 3
    assert bridge.wake_requests == 3  # one thread-safe wake-up per excursion, not per item
    bridge.close()
    with pytest.raises(BridgeClosed):
        await asyncio.wait_for(waiting, 5)


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_the_fast_path_hands_the_rest_to_the_consumer_when_it_asks() -> None:
    bridge: TickBridge[int] = TickBridge()
    kept: list[int] = []

    def fast(batch: list[int]) -> bool:
        kept.extend(batch)
        return True  # something in it must be awaited: wake the coroutine

    bridge.fast_path = fast
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert run_thread(put_all(bridge, range(5))) == []
    assert await asyncio.wait_for(waiting, 5) == []  # the fast path kept the batch
    assert kept == [0, 1, 2, 3, 4] and bridge.wakeups == 1
    # Items queued while the consumer runs are simply returned by the next get().
    assert run_thread(put_all(bridge, range(5, 8))) == []
    assert await asyncio.wait_for(bridge.get(), 5) == [5, 6, 7]


@pytest.mark.asyncio
async def test_a_fast_path_that_raises_fails_the_waiting_get_not_the_loop() -> None:
    bridge: TickBridge[int] = TickBridge()

    def fast(batch: list[int]) -> bool:
        raise ValueError(f"bug with {batch}")

    bridge.fast_path = fast
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert run_thread(put_all(bridge, range(2))) == []
    with pytest.raises(ValueError, match=r"bug with \[0, 1\]"):
        await asyncio.wait_for(waiting, 5)


# ---------------------------------------------------------------------------
# Backpressure: the producer waits for room, nothing is dropped


@pytest.mark.asyncio
async def test_a_full_bridge_holds_the_producer_until_the_consumer_drains_below_low_water() -> None:
    bridge: TickBridge[int] = TickBridge(high_water=100, low_water=10)
    produced = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:  # as IBClient's reader: a read's worth at a time, then wait if full
        try:
            for start in range(0, 1000, 30):
                bridge.put_batch(list(range(start, min(1000, start + 30))))
                if bridge.full:
                    bridge.wait_for_room()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            produced.set()

    thread = threading.Thread(target=produce, name="test-producer", daemon=True)
    thread.start()
    await _until(lambda: bridge.paused)  # 120 queued: the producer waits
    assert bridge.full and len(bridge) == 120 and bridge.pauses == 1
    received: list[int] = []
    while len(received) < 1000:
        received += await asyncio.wait_for(bridge.get(), 5)
    thread.join(JOIN)
    assert not thread.is_alive() and errors == []
    assert received == list(range(1000))  # complete and in order
    assert bridge.max_depth <= 100 + 30  # the bound: high water plus one hand-off
    assert bridge.pauses >= 1 and bridge.paused_seconds() > 0 and not bridge.paused


def wait_until(predicate: Callable[[], bool]) -> None:
    """Yield this thread until ``predicate()`` holds (an AssertionError after JOIN seconds)."""
    deadline = time.monotonic() + JOIN
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0)  # yields the GIL to the other thread; not a timed wait


def test_a_producer_waiting_for_room_is_released_by_close_and_by_stop() -> None:
    loop = asyncio.new_event_loop()
    try:
        bridge: TickBridge[int] = TickBridge(loop=loop, high_water=1)
        bridge.put_batch([1, 2])
        assert bridge.full
        stop = threading.Event()
        waited = threading.Event()

        def wait() -> None:
            bridge.wait_for_room(stop.is_set)
            waited.set()

        thread = threading.Thread(target=wait, name="test-producer", daemon=True)
        thread.start()
        wait_until(lambda: bridge.paused)  # still full: the producer waits
        assert not waited.is_set()
        stop.set()
        bridge.wake_producer()  # whoever sets the stop condition tells the producer
        thread.join(JOIN)
        assert waited.is_set() and not thread.is_alive()

        thread = threading.Thread(target=bridge.wait_for_room, name="test-producer", daemon=True)
        thread.start()
        bridge.close("gone")
        thread.join(JOIN)
        assert not thread.is_alive()
    finally:
        loop.close()


def test_low_water_above_high_water_is_refused() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match="must not exceed high_water"):
            TickBridge(loop=loop, high_water=10, low_water=11)
    finally:
        loop.close()


# ---------------------------------------------------------------------------
# The wake-up pipe


def _open_fds() -> int:
    import os
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def test_the_wake_pipe_is_released_with_the_bridge() -> None:
    import gc

    gc.collect()  # earlier tests' bridges go first: only this test's count
    before = _open_fds()

    async def use() -> None:
        for _ in range(3):  # a fetcher replaces its bridge on every connect() after a close
            bridge: TickBridge[int] = TickBridge()
            waiting = asyncio.ensure_future(bridge.get())
            await asyncio.sleep(0)
            assert run_thread(put_all(bridge, range(3))) == []
            assert await asyncio.wait_for(waiting, 5) == [0, 1, 2]
            bridge.close("done")
            with pytest.raises(BridgeClosed):
                await bridge.get()

    asyncio.run(use())
    gc.collect()
    if before >= 0:
        assert _open_fds() == before


@pytest.mark.asyncio
async def test_a_loop_without_add_reader_is_woken_with_call_soon_threadsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    def no_readers(*args: Any) -> None:
        raise NotImplementedError("a proactor loop")

    monkeypatch.setattr(loop, "add_reader", no_readers)
    bridge: TickBridge[int] = TickBridge()
    waiting = asyncio.ensure_future(bridge.get())
    await asyncio.sleep(0)
    assert run_thread(put_all(bridge, range(4))) == []
    assert await asyncio.wait_for(waiting, 5) == [0, 1, 2, 3]
    assert bridge.wake_requests == 1
