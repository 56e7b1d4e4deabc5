"""LiveTradingEngine on FakeTWS: the original example, the end-to-end candle check,
clean stops by signal, and the construction errors."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import socket
from pathlib import Path

import pytest
from order_checks import bracket_problems, store_problems
from support.waiting import until

from slob.config.ib_config import IBConfig
from slob.ib.errors import ConfigError, ConnectionLost, LiveTradingRefused, SlobError
from slob.live import IBWSFetcher
from slob.market.candle_aggregator import CandleAggregator
from slob.live.live_trading_engine import RESTART_CAUSE, LiveTradingEngine
from slob.execution.order_executor import TradePlan
from slob.strategy.setup_tracker import Direction
from slob.store.store import Store
from slob.model import Candle, CandleClosed, ErrorReported, Gap, Tick
from slob.testing import FakeTWS, FaultProxy, RandomWalkScenario
from slob.testing.scenario import to_ns

UTC = dt.timezone.utc
MORNING = dt.datetime(2024, 12, 2, 14, 0, tzinfo=UTC)  # 08:00 Chicago, Monday


@pytest.mark.asyncio
async def test_the_original_example_runs_as_written(tmp_path: Path) -> None:
    async with FakeTWS(speed=120) as tws:
        ib_fetcher = IBWSFetcher(host="127.0.0.1", port=tws.port, client_id=1, account="DU1234567")
        engine = LiveTradingEngine(data_source="ib", ib_fetcher=ib_fetcher, symbols=["NQ"], paper_trading=True,
                                   store=tmp_path / "slob.sqlite3")
        candles: list[Candle] = []
        enough = asyncio.Event()

        def on_candle(candle: Candle) -> None:
            candles.append(candle)
            if len(candles) >= 3:
                enough.set()

        engine.on_candle = on_candle
        await engine.start()
        runner = asyncio.create_task(engine.run())
        await asyncio.wait_for(enough.wait(), 20)
        await engine.stop()
        await asyncio.wait_for(runner, 10)
        assert {c.symbol for c in candles} == {"NQ"} and {c.contract for c in candles} == {"NQZ4"}
        stats = engine.get_stats()
        assert stats["candles"] >= 3 and stats["feed"]["ticks"] > 0 and stats["paper_trading"]
        with Store(tmp_path / "slob.sqlite3") as store:
            assert len(store.candles("NQ", 60)) >= 2
            assert store.counts()["ticks"] == stats["feed"]["ticks"]  # nothing lost on a clean stop
        assert not ib_fetcher.is_connected()
        await asyncio.to_thread(tws.wait_for_request, "CANCEL_TICK_BY_TICK_DATA")


def expected_candles(seed: int, until: dt.datetime) -> list[Candle]:
    """Candles straight from the scenario's trades, as FakeTWS sends them (whole seconds)."""
    aggregator = CandleAggregator("NQ", (60, 300))
    out: list[Candle] = []
    for trade in RandomWalkScenario(seed=seed).events(to_ns(MORNING)):
        when = dt.datetime.fromtimestamp(trade.time_ns // 1_000_000_000, UTC)
        if when >= until:
            break
        out += aggregator.add(Tick("NQ", trade.price, float(trade.size), when, "CME", "NQZ4", 0))
    return out + aggregator.advance(until)


@pytest.mark.asyncio
async def test_a_simulated_morning_gives_the_candles_of_the_scenario(tmp_path: Path) -> None:
    until = MORNING + dt.timedelta(hours=2)
    async with FakeTWS(start=MORNING, speed=math.inf, seed=11) as tws:
        fetcher = IBWSFetcher(host="127.0.0.1", port=tws.port, client_id=2)
        engine = LiveTradingEngine(data_source="ib", ib_fetcher=fetcher, symbols=["NQ"],
                                   store=tmp_path / "m.sqlite3", store_ticks=False)
        done = asyncio.Event()
        engine.bus.subscribe(CandleClosed, lambda e: done.set() if e.candle.end >= until else None)
        await engine.start()
        runner = asyncio.create_task(engine.run())
        await asyncio.wait_for(done.wait(), 60)
        await engine.stop()
        await asyncio.wait_for(runner, 10)
    want = [c for c in expected_candles(11, until) if c.end <= until]
    assert len(want) == 120 + 24  # two hours of 1- and 5-minute candles
    with Store(tmp_path / "m.sqlite3") as store:
        got = [c for c in store.candles("NQ", 60) + store.candles("NQ", 300) if c.end <= until]
    key = lambda c: (c.interval_seconds, c.start)  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)


@pytest.mark.asyncio
async def test_a_failing_strategy_hook_is_reported_and_the_engine_goes_on(tmp_path: Path) -> None:
    async with FakeTWS(speed=120) as tws:
        engine = LiveTradingEngine(ib_fetcher=IBWSFetcher(port=tws.port, client_id=3), store=tmp_path / "e.db")
        errors: list[ErrorReported] = []
        engine.bus.subscribe(ErrorReported, errors.append)
        count = itertools.count()

        def hook(candle: Candle) -> None:
            if next(count) == 0:
                raise RuntimeError("strategy bug")

        engine.on_candle = hook
        three = asyncio.Event()
        engine.bus.subscribe(CandleClosed, lambda e: three.set() if engine.candles_closed >= 3 else None)
        await engine.start()
        runner = asyncio.create_task(engine.run())
        await asyncio.wait_for(three.wait(), 20)
        await engine.stop()
        await asyncio.wait_for(runner, 10)
        assert [(e.where, str(e.error)) for e in errors] == [("on_candle", "strategy bug")]


def test_construction_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="'ib' for NQ futures"):
        LiveTradingEngine(data_source="bloomberg")
    with pytest.raises(LiveTradingRefused, match="allow_live=True"):
        LiveTradingEngine(data_source="ib", paper_trading=False)
    with pytest.raises(ConfigError, match="symbols is empty"):
        LiveTradingEngine(symbols=[])


SCRIPT = textwrap.dedent("""
    import asyncio, json, math, sys
    from slob.live import IBWSFetcher
    from slob.live.live_trading_engine import LiveTradingEngine
    from slob.store.store import Store
    from slob.model import Tick
    from slob.testing import FakeTWS

    async def main():
        async with FakeTWS(speed=60) as tws:
            engine = LiveTradingEngine(ib_fetcher=IBWSFetcher(port=tws.port, client_id=4), store=sys.argv[1])
            first_tick = asyncio.Event()
            engine.bus.subscribe(Tick, lambda tick: first_tick.set())
            await engine.start()
            runner = asyncio.create_task(engine.run())
            await asyncio.wait_for(first_tick.wait(), 20)  # a signal before any tick proves little
            print("running", flush=True)
            await runner
            # The fake records requests on its own thread: once the client's socket is closed
            # on its side, everything the client sent before closing has been recorded.
            tws.wait_for_clients(0, ready=False, timeout=5)
            report = {"cancelled": any(r.name == "CANCEL_TICK_BY_TICK_DATA" for r in tws.requests),
                      "ticks": engine.get_stats()["feed"]["ticks"]}
        with Store(sys.argv[1]) as store:
            report["stored_ticks"] = store.counts()["ticks"]
        print(json.dumps(report), flush=True)

    asyncio.run(main())
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_engine_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "s.db")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        assert report["cancelled"] and report["ticks"] > 0
        assert report["stored_ticks"] == report["ticks"]  # flushed before exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.asyncio
async def test_alpaca_data_source_runs_the_same_engine(tmp_path: Path) -> None:
    from slob.live.alpaca_ws_fetcher import AlpacaWSFetcher
    from slob.testing import FakeAlpaca

    async with FakeAlpaca(rate=200) as alpaca:
        fetcher = AlpacaWSFetcher("test-key", "test-secret", url=alpaca.url)
        engine = LiveTradingEngine(data_source="alpaca", alpaca_fetcher=fetcher, symbols=["AAPL"],
                                   store=tmp_path / "a.db", candle_intervals=(60,))
        ticks: list[Tick] = []
        some = asyncio.Event()
        engine.bus.subscribe(Tick, lambda t: (ticks.append(t), some.set() if len(ticks) >= 20 else None))
        await engine.start()
        runner = asyncio.create_task(engine.run())
        await asyncio.wait_for(some.wait(), 10)
        await engine.stop()
        await asyncio.wait_for(runner, 10)
        assert {t.symbol for t in ticks} == {"AAPL"}
        with Store(tmp_path / "a.db") as store:
            assert store.counts()["ticks"] == engine.get_stats()["feed"]["ticks"] >= 20


def test_alpaca_without_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID"):
        LiveTradingEngine(data_source="alpaca", symbols=["AAPL"])


KILLED_ENGINE = textwrap.dedent("""
    import asyncio, sys
    from slob.live import IBWSFetcher
    from slob.live.live_trading_engine import LiveTradingEngine
    from slob.model import Tick

    async def main():
        engine = LiveTradingEngine(ib_fetcher=IBWSFetcher(port=int(sys.argv[1]), client_id=5), store=sys.argv[2])
        first = asyncio.Event()
        engine.bus.subscribe(Tick, lambda tick: first.set())
        await engine.start()
        await asyncio.wait_for(first.wait(), 20)
        await engine.store.aflush()
        print("stored", flush=True)
        await asyncio.Event().wait()  # until the test kills it

    asyncio.run(main())
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_engine_until_a_tick(tws: FakeTWS, db: Path) -> tuple[list[Gap], list[Tick]]:
    engine = LiveTradingEngine(ib_fetcher=IBWSFetcher(port=tws.port, client_id=5), store=db)
    gaps: list[Gap] = []
    ticks: list[Tick] = []
    ticked = asyncio.Event()
    engine.bus.subscribe(Gap, gaps.append)
    engine.bus.subscribe(Tick, lambda t: (ticks.append(t), ticked.set()))
    await engine.start()
    runner = asyncio.create_task(engine.run())
    tws.advance(10)
    await asyncio.wait_for(ticked.wait(), 20)
    await engine.stop()
    await asyncio.wait_for(runner, 10)
    return gaps, ticks


@pytest.mark.asyncio
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_a_restart_after_a_kill_records_one_gap_and_a_clean_stop_none(tmp_path: Path) -> None:
    db = tmp_path / "restart.sqlite3"
    async with FakeTWS(start=MORNING, speed=0) as tws:
        proc = subprocess.Popen([sys.executable, "-c", KILLED_ENGINE, str(tws.port), str(db)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            await asyncio.to_thread(tws.wait_for_request, "REQ_TICK_BY_TICK_DATA")
            tws.advance(30)
            assert proc.stdout is not None
            assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "stored"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            await asyncio.to_thread(proc.communicate, None, 10)
        assert proc.returncode == -signal.SIGKILL
        await asyncio.to_thread(tws.wait_for_clients, 0, ready=False)
        with Store(db) as before:
            last = before.last_data_time()
            assert last is not None and [r.stopped for r in before.runs()] == [None]
        tws.advance(120)  # the market goes on while no engine runs

        # the first restart attempt fails (nothing listens there): it must not hide the kill
        refused = LiveTradingEngine(ib_fetcher=IBWSFetcher(port=free_port(), client_id=5), store=db)
        with pytest.raises(SlobError):
            await refused.start()
        await refused.stop()

        gaps, ticks = await run_engine_until_a_tick(tws, db)
        assert gaps == [Gap(last, ticks[0].timestamp, RESTART_CAUSE)]
        assert gaps[0].seconds >= 120
        with Store(db) as after:
            assert [e for e in after.connection_events() if isinstance(e, Gap)] == gaps
            runs = after.runs()
            # the refused start never opened the store (it is created once connected): two runs
            assert len(runs) == 2 and runs[0].stopped is None and runs[1].stopped is not None

        gaps, _ = await run_engine_until_a_tick(tws, db)  # after a clean stop: no gap
        assert gaps == []


@pytest.mark.asyncio
async def test_the_engine_reconciles_a_bracket_cut_by_a_drop_on_its_own(tmp_path: Path) -> None:
    db = tmp_path / "cut.sqlite3"
    async with FakeTWS(start=MORNING, speed=0) as tws, FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        fetcher = IBWSFetcher(config=IBConfig(port=proxy.port, client_id=6, reconnect_delay_seconds=0.05))
        engine = LiveTradingEngine(ib_fetcher=fetcher, store=db)
        await engine.start()
        runner = asyncio.create_task(engine.run())
        assert engine.executor is not None
        setup = TradePlan("NQ-20241202-short-0900-1", "NQ", Direction.SHORT, 21100.0, 20900.0, None)
        cut = proxy.cut_after("PLACE_ORDER", 2)
        with contextlib.suppress(ConnectionLost):
            await engine.executor.place(setup)
        await asyncio.to_thread(cut.wait)

        def cancelled(t: FakeTWS) -> bool:
            # The two legs reached TWS untransmitted (the bracket's last leg sends them) and
            # are cancelled -- or the session ended before TWS took them in, and TWS never had
            # them (as a real TWS drops an API client's untransmitted orders with its session).
            legs = [o for o in t.orders if o.order_ref == setup.setup_id]
            return len(legs) in (0, 2) and all(o.status == "Cancelled" for o in legs)

        # nobody calls reconcile() here: the engine does after the reconnect
        await until(lambda: engine.get_stats()["orders"]["cancels_sent"] >= 3, "the engine to cancel the cut bracket")
        await asyncio.to_thread(tws.wait_until, cancelled)
        await engine.executor.reconcile()  # queued behind the engine's: its writes are in
        orders = engine.get_stats()["orders"]
        assert orders["store_differences"] == 0 and orders["cancels_sent"] >= 3
        await engine.stop()
        await asyncio.wait_for(runner, 10)
        with Store(db) as store:
            assert store_problems(store, tws) == [] and bracket_problems(tws) == []
            assert {s.id: s.state for s in store.setups()}[setup.setup_id] == "cancelled"
