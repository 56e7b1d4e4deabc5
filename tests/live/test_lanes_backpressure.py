"""Backpressure against FakeTWS over loopback: a consumer that falls behind pauses reading
(TCP pushes back on the fake), memory stays bounded by the bridge's high-water mark, and
nothing is lost or taken for a dead TWS.

The consumer here is listen() not running at all while the fake streams as fast as the
socket takes it: the bridge fills to its high-water mark and the reader stops reading. The
liveness check runs meanwhile with short limits; a paused reader is not silence, so no
probe times out and no session is replaced. Then the consumer catches up and every tick
the fake wrote arrives, once, in order.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from support.waiting import until

from slob.config.ib_config import IBConfig
from slob.live import IBWSFetcher
from slob.model import Gap, Tick
from slob.testing import FakeTWS

HIGH_WATER = 300
READ_BYTES = 1 << 16  # IBClient's recv size: one read can add at most this many small frames
WAIT = 30.0


@pytest.mark.asyncio
@pytest.mark.parametrize("lane", ["asyncio", "direct"])
async def test_a_consumer_that_falls_behind_pauses_reading_and_loses_nothing(lane: str) -> None:
    async with FakeTWS(speed=math.inf) as tws:
        cfg = IBConfig(port=tws.port, bridge_high_water=HIGH_WATER, liveness_idle_seconds=0.2,
                       liveness_timeout_seconds=0.2, frame_timeout_seconds=0.2, reconnect_delay_seconds=0.05)
        fetcher = IBWSFetcher(config=cfg, lane=lane)
        ticks: list[Tick] = []
        errors: list[BaseException] = []
        gate = threading.Event()
        blocked_at: list[float] = []
        if lane == "direct":
            # The zero-hop lane's reader is its own consumer: a callback that blocks holds
            # the reader itself (and TCP pushes back the same way), until the gate opens.
            def on_tick_direct(tick: Tick) -> None:
                ticks.append(tick)
                if len(ticks) == 50:
                    blocked_at.append(time.monotonic())
                    gate.wait(WAIT)

            fetcher.on_tick_direct = on_tick_direct
        else:
            fetcher.on_tick = ticks.append
        fetcher.on_error = errors.append
        try:
            await fetcher.connect()
            await fetcher.subscribe(["NQ"])
            # Longer than the liveness check allows a silent TWS (idle + probe), three times.
            limit = 3 * (cfg.liveness_idle_seconds + cfg.liveness_timeout_seconds)
            stats = fetcher.get_stats
            if lane == "asyncio":  # listen() is not running: the bridge fills, the reader pauses
                await until(lambda: stats()["read_pauses"] >= 1, "the reader to pause")
                await until(lambda: stats()["read_paused_seconds"] > limit, "a long pause")
                assert stats()["bridge_high_water"] <= HIGH_WATER + READ_BYTES // 20  # bounded
            else:
                await until(lambda: bool(blocked_at), "the callback to block")
                await until(lambda: time.monotonic() - blocked_at[0] > limit, "a long stall of the reader")
            s = stats()
            assert (s["liveness_timeouts"], s["liveness_probes"], s["frame_timeouts"], s["reconnects"]) == (0, 0, 0, 0)
            assert s["state"] == "streaming"
            listener = asyncio.create_task(fetcher.listen())
            gate.set()
            target = len(ticks) + 2 * HIGH_WATER
            await until(lambda: len(ticks) >= target, "the consumer to catch up")
        finally:
            gate.set()  # never leave the reader blocked in the callback
            await fetcher.disconnect()
        await asyncio.wait_for(listener, WAIT)
        s = stats()
        assert s["drops"] == 0 and s["reconnects"] == 0 and s["liveness_timeouts"] == 0
        sent = [(t.contract, t.time, t.price, t.size) for t in tws.sent_ticks() if not t.resend]
        got = [(t.contract, int(t.timestamp.timestamp()), t.price, t.size) for t in ticks]
        assert got == sent[:len(got)]  # every tick the fake wrote, once, in order (up to the stop)
        assert not [e for e in errors if "high-water" not in str(e)]


@pytest.mark.asyncio
async def test_tws_dropping_a_paused_reader_is_one_outage_once_the_consumer_catches_up() -> None:
    async with FakeTWS(speed=math.inf) as tws:
        cfg = IBConfig(port=tws.port, bridge_high_water=HIGH_WATER, reconnect_delay_seconds=0.05,
                       max_reconnect_delay_seconds=0.1)
        fetcher = IBWSFetcher(config=cfg)
        ticks: list[Tick] = []
        events: list[object] = []
        fetcher.on_tick, fetcher.on_event = ticks.append, events.append
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        try:
            await until(lambda: fetcher.get_stats()["read_pauses"] >= 1, "the reader to pause")
            assert tws.drop() == 1  # the socket dies while nothing reads it
            listener = asyncio.create_task(fetcher.listen())
            # The consumer drains the bridge, the reader reads on, meets the end of the
            # socket (a reset loses what was unread: that is the outage), and a new session
            # streams again after one Gap.
            await until(lambda: any(isinstance(e, Gap) for e in events), "the gap")
            gap = next(e for e in events if isinstance(e, Gap))
            count = len(ticks)
            await until(lambda: len(ticks) >= count + 5, "ticks of the new session")
        finally:
            await fetcher.disconnect()
        await asyncio.wait_for(listener, WAIT)
        s = fetcher.get_stats()
        assert s["reconnects"] == 1 and s["gaps"] == 1 and s["drops"] == 0
        # nothing delivered twice, nothing out of order; what the old session lost lies in the gap
        seconds = [t.timestamp for t in ticks]
        assert seconds == sorted(seconds)
        sent = {(t.time, t.price, t.size, t.trade) for t in tws.sent_ticks() if not t.resend}
        assert len(sent) >= len(ticks)
        assert all(not (gap.start < t.timestamp < gap.end) for t in ticks)


class _PausedPort:
    """A session port whose reader goes quiet, then pauses (backpressure) once the liveness
    probe is out -- or, with ``paused=False``, stays silent: a dead TWS."""

    def __init__(self, paused: bool) -> None:
        self.paused = paused
        self.generation = 1
        self.probing = False
        self.aborted: list[str] = []
        self.never = asyncio.Event()

    async def handshake(self) -> None: ...
    async def start_api(self) -> None: ...
    async def resubscribe(self, same_session: bool) -> None: ...
    async def reconcile(self) -> None: ...

    async def ping(self) -> None:
        self.probing = True
        await self.never.wait()  # the answer sits unread in the socket

    def close_session(self) -> None: ...

    def abort_session(self, cause: str, *, junk: bool = False) -> None:
        self.aborted.append(cause)

    def received_age(self) -> float | None:
        return 0.0 if self.probing and self.paused else 60.0

    def partial_frame_age(self) -> float | None:
        return None

    async def emit(self, event: object) -> None: ...
    async def report(self, exc: BaseException) -> None: ...
    async def give_up(self, exc: object) -> None: ...


@pytest.mark.asyncio
@pytest.mark.parametrize("paused", [True, False], ids=["paused-reader", "silent-tws"])
async def test_a_probe_answer_stuck_behind_a_paused_reader_is_late_not_lost(paused: bool) -> None:
    from slob.live.ib_supervisor import Supervisor, SupervisorSettings

    port = _PausedPort(paused)
    sup = Supervisor(port, SupervisorSettings(  # type: ignore[arg-type]
        max_attempts=3, max_junk_sessions=2, reconnect_delay=0.0, max_reconnect_delay=0.0, liveness_idle=0.05,
        liveness_timeout=0.1, frame_timeout=3600, healthy_after=3600, where="127.0.0.1:1"))
    await sup.connect()
    sup.start()
    try:
        await until(lambda: sup.stats["liveness_late"] + sup.stats["liveness_timeouts"] >= 1, "the probe's end")
    finally:
        await sup.stop()
    if paused:  # bytes were not silent: the answer is behind them, the session goes on
        assert (sup.stats["liveness_late"], sup.stats["liveness_timeouts"], port.aborted) == (1, 0, [])
    else:
        assert sup.stats["liveness_timeouts"] == 1 and port.aborted and "liveness probe" in port.aborted[0]
