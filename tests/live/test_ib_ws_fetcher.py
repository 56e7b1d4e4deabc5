"""IBWSFetcher against FakeTWS over loopback, with IB's real client underneath."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio
from support.recorder import Recorder

from slob.config.ib_config import IBConfig
from slob.ib.errors import ClientIdInUse, ConnectionLost, ContractNotFound, MarketDataNotSubscribed, TWSNotRunning
from slob.live import IBWSFetcher, Tick
from slob.model import ConnectionRestored, Gap
from slob.testing import FakeTWS

FAST = dict(reconnect_delay_seconds=0.05, max_reconnect_delay_seconds=0.2, connect_timeout_seconds=5.0)


def attach(fetcher: IBWSFetcher) -> Recorder:
    rec = Recorder(timeout=10.0)
    fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
    return rec


@pytest_asyncio.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    async with FakeTWS(speed=60) as server:
        yield server


async def running(tws: FakeTWS, **config: Any) -> tuple[IBWSFetcher, Recorder, asyncio.Task[None]]:
    fetcher = IBWSFetcher(config=IBConfig(port=tws.port, client_id=config.pop("client_id", 1), **{**FAST, **config}))
    rec = attach(fetcher)
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])
    return fetcher, rec, asyncio.create_task(fetcher.listen())


async def stop(fetcher: IBWSFetcher, task: asyncio.Task[None]) -> None:
    await fetcher.disconnect()
    await asyncio.wait_for(task, 5)


def reader_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "slob-ib-reader"]


@pytest.mark.asyncio
async def test_streams_front_month_ticks_and_leaves_nothing_behind(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 50)
    assert reader_threads() == ["slob-ib-reader"]
    assert all(t.symbol == "NQ" and t.contract == "NQZ4" for t in rec.ticks)
    assert all(t.timestamp.tzinfo is not None and t.timestamp.utcoffset().total_seconds() == 0 for t in rec.ticks)
    stats = fetcher.get_stats()
    assert stats["connected"] and stats["server_version"] == tws.server_version and stats["client_id"] == 1
    assert stats["ticks"] >= 50 and stats["drops"] == 0 and stats["rejected"] == 0
    assert stats["latency_p50_us"] is not None and stats["latency_p99_us"] >= stats["latency_p50_us"]
    assert stats["ibapi_version"].startswith("10.")
    assert stats["contracts"] == {"NQ": "NQZ4"}
    assert fetcher.is_connected()
    await stop(fetcher, task)
    assert not fetcher.is_connected()
    assert reader_threads() == []
    tws.wait_for_clients(0, ready=False, timeout=5)
    assert rec.errors == []


@pytest.mark.asyncio
async def test_callback_errors_reach_on_error_and_the_stream_goes_on(tws: FakeTWS) -> None:
    fetcher = IBWSFetcher(config=IBConfig(port=tws.port, **FAST))
    rec = attach(fetcher)
    seen: list[Tick] = []

    async def flaky(tick: Tick) -> None:  # async callbacks are awaited
        seen.append(tick)
        if len(seen) % 10 == 0:
            raise RuntimeError(f"strategy bug at tick {len(seen)}")
        rec.tick(tick)

    fetcher.on_tick = flaky
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])
    task = asyncio.create_task(fetcher.listen())
    await rec.until(lambda: len(seen) >= 35)
    assert [str(e) for e in rec.errors[:3]] == [f"strategy bug at tick {n}" for n in (10, 20, 30)]
    assert fetcher.get_stats()["callback_errors"] >= 3
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_pinned_contract_symbols() -> None:
    async with FakeTWS(speed=60) as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port, **FAST))
        rec = attach(fetcher)
        await fetcher.connect()
        await fetcher.subscribe(["NQH5", "MNQ 202506"])
        task = asyncio.create_task(fetcher.listen())
        await rec.until(lambda: {t.contract for t in rec.ticks} >= {"NQH5", "MNQM5"})
        assert {(t.symbol, t.contract) for t in rec.ticks} == {("NQH5", "NQH5"), ("MNQ 202506", "MNQM5")}
        await stop(fetcher, task)


# -- the errors users meet first ----------------------------------------------------


@pytest.mark.asyncio
async def test_refused_port_names_host_port_and_the_fix() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = IBWSFetcher(config=IBConfig(port=port, **FAST))
    with pytest.raises(TWSNotRunning) as exc:
        await fetcher.connect()
    assert f"127.0.0.1:{port}" in str(exc.value) and "Enable ActiveX and Socket Clients" in str(exc.value)


@pytest.mark.asyncio
async def test_unknown_symbol_is_contract_not_found(tws: FakeTWS) -> None:
    fetcher = IBWSFetcher(config=IBConfig(port=tws.port, **FAST))
    rec = attach(fetcher)
    await fetcher.connect()
    try:
        with pytest.raises(ContractNotFound) as exc:
            await fetcher.subscribe(["ZZ"])
        assert exc.value.code == 200 and "'NQZ4'" in str(exc.value)
        await fetcher.subscribe(["NQ"])  # the session is still usable
        task = asyncio.create_task(fetcher.listen())
        await rec.until(lambda: len(rec.ticks) >= 3)
        assert rec.errors == []  # raised once, not reported again through on_error
    finally:
        await fetcher.disconnect()
    await asyncio.wait_for(task, 5)


@pytest.mark.asyncio
async def test_missing_market_data_permission_is_354_with_the_fix() -> None:
    async with FakeTWS(speed=60, no_permission=["NQ"]) as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port, tick_source="market_data", **FAST))
        await fetcher.connect()
        try:
            with pytest.raises(MarketDataNotSubscribed) as exc:
                await fetcher.subscribe(["NQ"])
            assert exc.value.code == 354 and "data_type='delayed'" in str(exc.value)
        finally:
            await fetcher.disconnect()


@pytest.mark.asyncio
async def test_delayed_data_arrives_marked_delayed() -> None:
    async with FakeTWS(speed=60, no_permission=["NQ"]) as tws:
        fetcher, rec, task = await running(tws, data_type="delayed", tick_source="market_data")
        await rec.until(lambda: len(rec.ticks) >= 5)
        assert all(t.delayed and t.contract == "NQZ4" for t in rec.ticks)
        assert any(r.name == "REQ_MARKET_DATA_TYPE" and r["marketDataType"] == "3" for r in tws.requests)
        await stop(fetcher, task)


@pytest.mark.asyncio
async def test_client_id_in_use_backs_off_then_says_so(tws: FakeTWS) -> None:
    first, _, task = await running(tws, client_id=7)
    second = IBWSFetcher(config=IBConfig(port=tws.port, client_id=7, client_id_retries=2, **FAST))
    with pytest.raises(ClientIdInUse) as exc:
        await second.connect()
    assert "unique client id" in str(exc.value) and "2 attempts" in str(exc.value)
    starts = [r for r in tws.requests if r.name == "START_API" and r["clientId"] == "7"]
    assert len(starts) == 3  # the first fetcher, then two attempts of the second
    await second.disconnect()
    await stop(first, task)


# -- reconnects --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_dropped_socket_reconnects_resubscribes_and_records_a_gap(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 10)
    subs_before = sum(r.name == "REQ_TICK_BY_TICK_DATA" for r in tws.requests)
    tws.drop()
    await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
    count = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= count + 10)
    assert sum(r.name == "REQ_TICK_BY_TICK_DATA" for r in tws.requests) == subs_before + 1
    stats = fetcher.get_stats()
    assert stats["reconnects"] == 1 and stats["gaps"] == 1 and stats["connected"]
    gap = fetcher.gaps[0]
    assert isinstance(gap, Gap) and gap.cause == "TWS closed the connection" and gap.end >= gap.start
    assert reader_threads() == ["slob-ib-reader"]  # the old reader is gone
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_short_restart_is_survived(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 5)
    tws.restart(down_for=0.3)
    await rec.until(lambda: fetcher.get_stats()["reconnects"] == 1, timeout=15)
    count = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) > count)
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_listener_gone_too_long_ends_in_connection_lost(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws, max_reconnect_attempts=3)
    await rec.until(lambda: len(rec.ticks) >= 5)
    tws.restart(down_for=30)
    with pytest.raises(ConnectionLost) as exc:
        await asyncio.wait_for(task, 15)
    assert "3 reconnect attempts failed" in str(exc.value)
    assert any(isinstance(e, ConnectionLost) for e in rec.errors)
    await fetcher.disconnect()
    assert reader_threads() == []


@pytest.mark.asyncio
async def test_1100_marks_stale_and_1102_keeps_the_subscription(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 5)
    subs = sum(r.name == "REQ_TICK_BY_TICK_DATA" for r in tws.requests)
    tws.connectivity_lost()
    await rec.until(lambda: fetcher.get_stats()["stale"])
    tws.connectivity_restored(data_maintained=True)
    await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
    assert not fetcher.get_stats()["stale"]
    restored = next(e for e in rec.events if isinstance(e, ConnectionRestored))
    assert restored.data_lost is False
    count = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= count + 5)
    assert sum(r.name == "REQ_TICK_BY_TICK_DATA" for r in tws.requests) == subs  # kept, not redone
    assert len(fetcher.gaps) == 1 and fetcher.gaps[0].cause.startswith("IB 1100")
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_1101_resubscribes(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 5)
    subs = sum(r.name == "REQ_TICK_BY_TICK_DATA" for r in tws.requests)
    tws.connectivity_lost()
    await rec.until(lambda: fetcher.get_stats()["stale"])
    tws.connectivity_restored(data_maintained=False)
    await rec.until(lambda: sum(r.name == "REQ_TICK_BY_TICK_DATA" for r in tws.requests) == subs + 1)
    count = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= count + 5)
    assert fetcher.get_stats()["reconnects"] == 0  # the socket never closed
    assert any(isinstance(e, ConnectionRestored) and e.data_lost for e in rec.events)
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_farm_notices_change_nothing(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 5)
    requests = len(tws.requests)
    for code in (2103, 2104, 2105, 2106, 2157, 2158, 2119):
        tws.send_error(code, farm="usfarm")
    count = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= count + 20)
    assert rec.errors == [] and rec.events == []
    assert len(tws.requests) == requests and not fetcher.get_stats()["stale"]
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_unreadable_frame_is_reported_and_skipped(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 5)
    tws.send_garbage("bad_id")
    await rec.until(lambda: any("malformed message" in str(e) for e in rec.errors))
    count = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= count + 5)  # same session, still streaming
    assert fetcher.get_stats()["reconnects"] == 0 and fetcher.get_stats()["decode_errors"] == 1
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_corrupt_stream_ends_the_session_and_reconnects(tws: FakeTWS) -> None:
    fetcher, rec, task = await running(tws)
    await rec.until(lambda: len(rec.ticks) >= 5)
    tws.send_garbage("oversize")
    await rec.until(lambda: fetcher.get_stats()["reconnects"] == 1)
    lost = [e for e in rec.events if type(e).__name__ == "ConnectionLost"]
    assert lost and "protocol maximum" in lost[0].cause  # type: ignore[attr-defined]
    await stop(fetcher, task)


# -- pacing ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_burst_of_200_requests_stays_under_twss_rate(tws: FakeTWS) -> None:
    fetcher = IBWSFetcher(config=IBConfig(port=tws.port, **FAST))
    await fetcher.connect()
    try:
        times = await asyncio.gather(*(fetcher.server_time() for _ in range(200)))
        assert len(times) == 200
        assert sum(r.name == "REQ_CURRENT_TIME" for r in tws.requests) == 201  # + one at connect
        assert tws.pacing_violations == 0
    finally:
        await fetcher.disconnect()


def test_blocking_sends_are_paced_too() -> None:
    from slob.ib.client import IBClient

    with FakeTWS(max_messages_per_second=50) as tws:
        client = IBClient(lambda item: None, max_messages_per_second=45)
        client.connect("127.0.0.1", tws.port, 3)
        try:
            client.ready.result(5)
            for _ in range(200):
                client.reqCurrentTime()
            tws.wait_until(lambda t: sum(r.name == "REQ_CURRENT_TIME" for r in t.requests) == 200)
            assert tws.pacing_violations == 0
        finally:
            client.disconnect()


@pytest.mark.asyncio
async def test_unpaced_burst_would_be_caught() -> None:
    """The pacing test can fail: the same burst without pacing trips FakeTWS's counter."""
    async with FakeTWS(pacing="count") as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port, max_messages_per_second=50, **FAST))
        await fetcher.connect()
        try:
            client = fetcher._client
            assert client is not None
            client.pacer.capacity = client.pacer._tokens = math.inf  # disable pacing
            for _ in range(120):
                client.reqCurrentTime()
            await asyncio.to_thread(tws.wait_until, lambda t: t.pacing_violations > 0, 5)
        finally:
            await fetcher.disconnect()
