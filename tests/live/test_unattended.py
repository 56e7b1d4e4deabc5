"""Unattended operation (issue 13): faults at the moments the real world picks, end to end.

IBWSFetcher with IB's client over loopback, against FakeTWS (directly, or through
slob.testing.FaultProxy for faults at exact protocol moments) and against peers that are
not a TWS (tests/support/raw_peer.py). Whatever happens, listen() either goes on or ends
with one SlobError; it never hangs and never loops without end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from support.raw_peer import AFTER_READY, BEFORE_READY, RawPeer
from support.recorder import Recorder

from slob.config.ib_config import IBConfig
from slob.ib.errors import ConnectionLost, LiveTradingRefused, PeerNotTWS, SlobError
from slob.live import IBWSFetcher
from slob.model import Gap
from slob.testing import FakeTWS, ScriptedScenario

FAST = dict(reconnect_delay_seconds=0.05, max_reconnect_delay_seconds=0.2, connect_timeout_seconds=3.0,
            request_timeout_seconds=2.0, liveness_idle_seconds=0.3, liveness_timeout_seconds=0.5,
            frame_timeout_seconds=0.6)
HANG_GUARD = 60  # seconds: only against a hang; nothing here waits for a time to pass


def fetcher_for(port: int, **config: Any) -> tuple[IBWSFetcher, Recorder]:
    fetcher = IBWSFetcher(config=IBConfig(port=port, **{**FAST, **config}))
    rec = Recorder(timeout=30.0)
    fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
    return fetcher, rec


# -- peers that are not a TWS: a SlobError, never a hang, never an endless loop ----------------


@pytest.mark.asyncio
@pytest.mark.parametrize("behaviour", BEFORE_READY)
async def test_connect_to_a_peer_that_is_not_a_tws_raises_a_slob_error(behaviour: str) -> None:
    with RawPeer(behaviour) as peer:
        fetcher, _ = fetcher_for(peer.port, connect_timeout_seconds=1.0)
        with pytest.raises(SlobError):
            await asyncio.wait_for(fetcher.connect(), HANG_GUARD)
        await fetcher.disconnect()


@pytest.mark.asyncio
@pytest.mark.parametrize("behaviour", AFTER_READY)
async def test_a_peer_that_goes_wrong_after_the_handshake_ends_listen_with_a_slob_error(behaviour: str) -> None:
    with RawPeer(behaviour) as peer:
        fetcher, rec = fetcher_for(peer.port, max_reconnect_attempts=3, max_junk_sessions=1)
        await fetcher.connect()
        with pytest.raises(ConnectionLost) as caught:
            await asyncio.wait_for(fetcher.listen(), HANG_GUARD)
        stats = fetcher.get_stats()
        if behaviour != "silent":  # the circuit breaker: two sessions in a row broke the protocol
            assert isinstance(caught.value, PeerNotTWS) and peer.connections == 2
            assert "not the TWS API" in str(caught.value)
            if behaviour in ("partial", "trickle"):
                assert stats["frame_timeouts"] == 2 and "incomplete" in str(caught.value)
        else:  # silence may be a hung TWS: each session is a counted attempt, then ConnectionLost
            assert not isinstance(caught.value, PeerNotTWS) and peer.connections == 4
            assert stats["liveness_timeouts"] == 4 and "liveness probe" in str(caught.value)
        assert stats["state"] == "failed"
        assert any(isinstance(e, ConnectionLost) for e in rec.errors)  # on_error heard the end
        assert all(isinstance(e, SlobError) for e in rec.errors)
        await fetcher.disconnect()


# -- item 4: a silent socket is a drop -------------------------------------------------------


@pytest.mark.asyncio
async def test_a_stalled_tws_is_noticed_by_the_liveness_probe_and_the_feed_goes_on() -> None:
    async with FakeTWS(speed=60) as tws:
        fetcher, rec = fetcher_for(tws.port)
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        listener = asyncio.create_task(fetcher.listen())
        await rec.until(lambda: len(rec.ticks) >= 5)
        tws.stall(3)  # the open sockets stay open and silent (and the market quiet) for 3 s
        await rec.until(lambda: any(isinstance(e, Gap) for e in rec.events))
        stats = fetcher.get_stats()
        assert stats["liveness_timeouts"] >= 1 and stats["reconnects"] >= 1
        count = len(rec.ticks)
        await rec.until(lambda: len(rec.ticks) >= count + 5)
        assert not listener.done()
        await fetcher.disconnect()
        await asyncio.wait_for(listener, 5)


# -- item 6: gaps in one clock ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_gap_is_in_exchange_time_and_ends_at_the_first_tick_after_recovery() -> None:
    async with FakeTWS(speed=60) as tws:  # simulated 2024: the local clock is years away
        fetcher, rec = fetcher_for(tws.port)
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        listener = asyncio.create_task(fetcher.listen())
        await rec.until(lambda: len(rec.ticks) >= 5)
        before = rec.ticks[-1].timestamp
        tws.drop()
        await rec.until(lambda: any(isinstance(e, Gap) for e in rec.events))
        gap = next(e for e in rec.events if isinstance(e, Gap))
        assert before <= gap.start <= gap.end
        assert gap.seconds < 3600  # minutes of simulated time, not years of clock difference
        # data flowed up to the start and from the end on: no delivered tick lies inside
        assert not [t for t in rec.ticks if gap.start < t.timestamp < gap.end]
        assert rec.ticks[len(rec.ticks) - 1].timestamp >= gap.end
        assert any(t.timestamp == gap.end for t in rec.ticks)  # the end is the first tick after recovery
        await fetcher.disconnect()
        await asyncio.wait_for(listener, 5)


# -- item 5: identical trades around a resubscription -----------------------------------------


@pytest.mark.asyncio
async def test_identical_trades_after_a_1101_resubscription_are_all_delivered() -> None:
    start = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)
    # three identical trades in every second for ten minutes
    script = ScriptedScenario.from_prices(start, [(i / 3, 21000.0, 1) for i in range(1800)])
    async with FakeTWS(speed=5, start=start, scenarios={"NQ": script}) as tws:
        fetcher, rec = fetcher_for(tws.port)
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        listener = asyncio.create_task(fetcher.listen())
        await rec.until(lambda: len(rec.ticks) >= 6)
        tws.connectivity_lost()
        tws.connectivity_restored(data_maintained=False)  # 1101: subscribe again, same socket
        await rec.until(lambda: any(isinstance(e, Gap) for e in rec.events))
        gap = next(e for e in rec.events if isinstance(e, Gap))
        await rec.until(lambda: rec.ticks[-1].timestamp >= gap.end + dt.timedelta(seconds=4))
        per_second: dict[dt.datetime, int] = {}
        for t in rec.ticks:
            per_second[t.timestamp] = per_second.get(t.timestamp, 0) + 1
        assert max(per_second.values()) <= 3  # nothing twice
        after = sorted(s for s in per_second if s > gap.end)[:-1]  # whole seconds after the gap
        assert after and all(per_second[s] == 3 for s in after)  # nothing dropped
        assert fetcher.get_stats()["duplicates"] == 0
        await fetcher.disconnect()
        await asyncio.wait_for(listener, 5)


# -- item 10: the paper check in the placing path itself --------------------------------------


@pytest.mark.asyncio
async def test_place_order_refuses_a_live_account_even_without_the_engine() -> None:
    from ibapi.contract import Contract
    from ibapi.order import Order

    async with FakeTWS(speed=60, accounts=("U7654321",)) as tws:
        fetcher, _ = fetcher_for(tws.port)
        await fetcher.connect()
        order = Order()
        order.action, order.orderType, order.totalQuantity = "BUY", "MKT", 1
        with pytest.raises(LiveTradingRefused):
            await fetcher.place_order(fetcher.next_valid_id, Contract(), order)
        assert not [r for r in tws.requests if r.name == "PLACE_ORDER"]
        await fetcher.disconnect()


# -- items 1 and 2: faults inside a reconnect, at exact protocol moments -----------------------

# (what to arm on the proxy, then the drop that starts the reconnect it lands in)
RECONNECT_FAULTS = {
    # item 1: a drop after the TCP connect but before nextValidId
    "drop after START_API": lambda p: p.cut_after("START_API"),
    "drop before NEXT_VALID_ID": lambda p: p.cut_after("NEXT_VALID_ID", direction="server", before=True),
    # item 2: a request that goes unanswered while resubscribing, or a drop in the middle of it
    "contract details unanswered": lambda p: p.swallow("REQ_CONTRACT_DATA"),
    "current time unanswered": lambda p: p.swallow("REQ_CURRENT_TIME"),
    "drop after the tick request": lambda p: p.cut_after("REQ_TICK_BY_TICK_DATA"),
    "drop after contract details": lambda p: p.cut_after("CONTRACT_DATA_END", direction="server"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", sorted(RECONNECT_FAULTS))
async def test_a_fault_inside_a_reconnect_is_one_more_attempt_and_the_feed_goes_on(fault: str) -> None:
    from slob.testing import FaultProxy

    async with FakeTWS(speed=60) as tws:
        with FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
            fetcher, rec = fetcher_for(proxy.port)
            await fetcher.connect()
            await fetcher.subscribe(["NQ"])
            listener = asyncio.create_task(fetcher.listen())
            await rec.until(lambda: len(rec.ticks) >= 5)
            handle = RECONNECT_FAULTS[fault](proxy)
            proxy.cut_now()  # the reconnect this starts meets the fault
            await asyncio.to_thread(handle.wait, 30)
            await rec.until(lambda: any(isinstance(e, Gap) for e in rec.events))
            count = len(rec.ticks)
            await rec.until(lambda: len(rec.ticks) >= count + 5)
            stats = fetcher.get_stats()
            assert not listener.done() and stats["state"] == "streaming"
            assert stats["failures"] >= 2 and stats["outages"] == 1 and stats["gaps"] == 1  # one outage
            assert all(isinstance(e, SlobError) for e in rec.errors)
            await fetcher.disconnect()
            await asyncio.wait_for(listener, 5)


# -- independent faults at random moments: nothing lost outside gaps, nothing twice ------------


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", [3, 8])
async def test_random_cuts_between_ibs_client_and_the_fake_lose_nothing_outside_gaps(seed: int) -> None:
    from collections import Counter

    from slob.testing import FaultProxy

    async with FakeTWS(speed=30, seed=seed) as tws:
        with FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
            fetcher, rec = fetcher_for(proxy.port, max_reconnect_attempts=50)
            await fetcher.connect()
            await fetcher.subscribe(["NQ"])
            listener = asyncio.create_task(fetcher.listen())
            await rec.until(lambda: len(rec.ticks) >= 5)
            proxy.chaos(seed, mean_interval=0.4)  # cuts at seeded random moments, whatever is in flight
            await rec.until(lambda: sum(f.kind == "chaos_cut" for f in proxy.faults_done) >= 8)
            proxy.stop_chaos()
            await rec.until(lambda: fetcher.get_stats()["outages"] == len(fetcher.gaps)
                            and fetcher.get_stats()["state"] == "streaming")
            count = len(rec.ticks)
            await rec.until(lambda: len(rec.ticks) >= count + 5)
            assert not listener.done()
            await fetcher.disconnect()
            await asyncio.wait_for(listener, 5)
            last = rec.ticks[-1].timestamp
            sent_log = [s for s in tws.sent_ticks(client_id=1) if s.time < int(last.timestamp())]
            sent = Counter((s.contract, s.time, s.price, s.size) for s in sent_log)
    # the last second is left out: the fake may have sent more of it just before the disconnect
    delivered = Counter((t.contract, int(t.timestamp.timestamp()), t.price, int(t.size)) for t in rec.ticks
                        if t.timestamp < last)
    assert not delivered - sent  # nothing delivered twice, nothing that was never sent
    missing = sent - delivered
    gaps = fetcher.gaps
    outside = [k for k in missing if not any(int(g.start.timestamp()) <= k[1] <= int(g.end.timestamp())
                                             for g in gaps)]
    assert outside == [], (gaps, [(s.session, s.time, s.price, s.size, s.sent_ns) for s in sent_log
                                  if abs(s.time - outside[0][1]) <= 3],
                           [(int(t.timestamp.timestamp()), t.price, t.size, t.received_ns) for t in rec.ticks
                            if abs(t.timestamp.timestamp() - outside[0][1]) <= 3], proxy.faults_done)
    assert len(gaps) >= 1 and all(isinstance(e, SlobError) for e in rec.errors)


@pytest.mark.asyncio
async def test_a_reconciliation_that_fails_after_data_resumed_opens_a_new_outage() -> None:
    """Data flows on the new session (the first outage's gap closes), then the reconciliation
    times out and the session is replaced: that loses data again, so it is a second gap."""
    from collections import Counter

    from slob.testing import FaultProxy

    async with FakeTWS(speed=30) as tws:
        with FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
            fetcher, rec = fetcher_for(proxy.port, request_timeout_seconds=1.0)

            async def reconcile() -> None:
                await fetcher.executions()

            fetcher.on_reconcile = reconcile
            await fetcher.connect()
            await fetcher.subscribe(["NQ"])
            listener = asyncio.create_task(fetcher.listen())
            await rec.until(lambda: len(rec.ticks) >= 5)
            swallowed = proxy.swallow("REQ_EXECUTIONS")  # the reconnect's reconciliation goes unanswered
            proxy.cut_now()
            await asyncio.to_thread(swallowed.wait, 30)
            await rec.until(lambda: len([e for e in rec.events if isinstance(e, Gap)]) >= 2
                            and fetcher.get_stats()["state"] == "streaming")
            count = len(rec.ticks)
            await rec.until(lambda: len(rec.ticks) >= count + 5)
            stats = fetcher.get_stats()
            assert stats["outages"] == stats["gaps"] == 2 and stats["failures"] == 2 and stats["reconnects"] == 1
            await fetcher.disconnect()
            await asyncio.wait_for(listener, 5)
            last = rec.ticks[-1].timestamp
            sent = Counter((s.contract, s.time, s.price, s.size) for s in tws.sent_ticks(client_id=1)
                           if s.time < int(last.timestamp()))
    # the last second is left out: the fake may have sent more of it just before the disconnect
    delivered = Counter((t.contract, int(t.timestamp.timestamp()), t.price, int(t.size)) for t in rec.ticks
                        if t.timestamp < last)
    assert not delivered - sent
    outside = [k for k in sent - delivered if not any(int(g.start.timestamp()) <= k[1] <= int(g.end.timestamp())
                                                      for g in fetcher.gaps)]
    assert outside == []
