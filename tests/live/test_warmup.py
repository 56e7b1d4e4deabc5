"""Warm-up and gap fill end to end, on FakeTWS with IB's client: a kill -9 in the NYSE
session, history that cannot be had, a trigger whose moment passed while the engine was
down, a 1101 in the middle of a consolidation, and the store doing its share.

The planted day, the stepped clock and the uninterrupted reference come from
test_restart_property.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_restart_property import (CANDLES, FENCE, OPEN, SCRIPT, STEPS, TRIGGER_STEPS, WINDOW, Disruption,
                                   Driver, Plan, check, reference, run_plan)

from slob.live.live_trading_engine import LiveTradingEngine
from slob.execution.order_executor import SetupSkipped
from slob.strategy.setup_tracker import Signal, State
from slob.store.store import Store
from slob.live.warmup import MemoryConfig
from slob.model import Gap, HistoryFilled, HistoryUnavailable
from slob.testing import FakeTWS

UTC = dt.timezone.utc
SECOND = dt.timedelta(seconds=1)
FIRST, SECOND_TRIGGER = sorted(TRIGGER_STEPS)
AT_1500 = STEPS.index(dt.datetime(2025, 3, 5, 15, 0, 1, tzinfo=UTC))

CHILD = textwrap.dedent("""
    import asyncio, datetime as dt, sys
    from slob.config.ib_config import IBConfig
    from slob.live import IBWSFetcher
    from slob.live.live_trading_engine import LiveTradingEngine
    from slob.live.warmup import MemoryConfig

    async def main():
        fetcher = IBWSFetcher(config=IBConfig(port=int(sys.argv[1]), client_id=1, account="DU1234567",
                                              reconnect_delay_seconds=0.05, request_timeout_seconds=10.0))
        engine = LiveTradingEngine(ib_fetcher=fetcher, store=sys.argv[2], quiet_check_seconds=3600,
                                   memory=MemoryConfig(history_delay_seconds=0, retry_seconds=0.2))
        await engine.start()
        runner = asyncio.create_task(engine.run())
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        print("started", flush=True)
        while line := (await reader.readline()).decode().strip():
            verb, _, arg = line.partition(" ")
            if verb == "wait":  # the tracker has handled the candles ending by arg
                await engine.caught_up(dt.datetime.fromisoformat(arg), timeout=60)
            await fetcher.server_time()
            print("ok", flush=True)
        await runner

    asyncio.run(main())
""")


class Child:
    """An engine in a process of its own, stepped through stdin, killed with SIGKILL."""

    def __init__(self, port: int, db: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(port), str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def line(self) -> str:
        assert self.proc.stdout is not None
        return (await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), FENCE)).strip()

    async def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        assert await self.line() == "ok"

    async def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(self.proc.communicate, None, FENCE)
        assert self.proc.returncode == -signal.SIGKILL


@pytest.mark.asyncio
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_killed_and_restarted_in_the_nyse_session_it_trades_the_uninterrupted_setups(tmp_path: Path) -> None:
    want = await asyncio.to_thread(reference, tmp_path)
    db = tmp_path / "killed.sqlite3"
    kill_after, lost = FIRST - 4, 2  # mid-consolidation: LIQ #1 seen, the trigger still to come
    async with FakeTWS(start=OPEN, speed=0, scenarios={"NQ": SCRIPT}) as tws:
        child = Child(tws.port, db)
        try:
            assert await child.line() == "started"
            for at in STEPS[:kill_after + 1]:
                tws.clock.set(at)
                await asyncio.to_thread(tws.settle)
                await child.say(f"wait {(at - SECOND).isoformat()}")
                await asyncio.to_thread(tws.settle)
                await child.say("sync")
            await child.kill()
        finally:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.communicate()
        await asyncio.to_thread(tws.wait_for_clients, 0, ready=False)
        driver = Driver(tws, db)
        for at in STEPS[kill_after + 1:kill_after + 1 + lost]:
            await driver.play(at)  # the market goes on while no engine runs
        await driver.start()
        for at in STEPS[kill_after + 1 + lost:]:
            await driver.step(at)
        await driver.stop()
        orders = sorted((o.order_ref, o.parent_id != 0, o.action, o.order_type, o.lmt_price, o.aux_price, o.quantity,
                         o.status, o.filled, o.avg_fill_price) for o in tws.orders)
        fills = sorted((e.order_ref, e.side, e.shares, e.price, e.time) for e in tws.executions)
    assert orders == want.orders and fills == want.fills  # the same entries, stops, targets, fills
    assert driver.events[-1] == want.events[0] and driver.skipped == []
    with Store(db) as store:
        candles = [c for c in store.candles("NQ", 60) if WINDOW <= c.start and c.end <= CANDLES[-1].end]
        gaps = [g for g in store.connection_events() if isinstance(g, Gap)]
        runs = store.runs()
    assert candles == want.candles
    assert len(gaps) == 1 and gaps[0].cause.startswith("engine restarted") and gaps[0].filled
    assert [r.stopped is None for r in runs] == [True, False]


@pytest.mark.asyncio
async def test_without_history_the_day_s_setups_are_not_traded_and_it_says_so(tmp_path: Path,
                                                                               caplog: pytest.LogCaptureFixture) -> None:
    async with FakeTWS(start=OPEN, speed=0, scenarios={"NQ": SCRIPT}) as tws:
        driver = Driver(tws, tmp_path / "blind.sqlite3")
        for at in STEPS[:AT_1500]:
            await driver.play(at)
        tws.reject_next_request("REQ_HISTORICAL_DATA", 162)  # the LSE session's bars: refused
        caplog.set_level(logging.WARNING, "slob")
        unavailable: list[HistoryUnavailable] = []
        await driver.start()
        engine = driver.engine
        assert engine is not None
        engine.bus.subscribe(HistoryUnavailable, unavailable.append)
        for at in STEPS[AT_1500:]:
            await driver.step(at)
        stats = engine.get_stats()["memory"]
        await driver.stop()
        assert [o for o in tws.orders] == []
    assert [(u.start, u.end) for u in unavailable] == [(WINDOW, STEPS[AT_1500 - 1] - SECOND)]
    assert stats["levels_unknown"] == ["2025-03-05"] and stats["missing_minutes"] == 330
    triggered = {e.setup_id for e in driver.events[0] if getattr(e, "state", None) is State.TRIGGERED}
    assert triggered and set(driver.skipped) == triggered
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("history unavailable" in w for w in warnings)
    assert any("LSE session of 2025-03-05 is incomplete" in w for w in warnings)


@pytest.mark.asyncio
async def test_a_trigger_missed_while_down_is_not_chased_and_nothing_is_sent_twice(tmp_path: Path) -> None:
    want = await asyncio.to_thread(reference, tmp_path)
    # down across the short's trigger; restarted after the long's: both replayed, neither sent again
    plan = Plan(start=0, disruptions=(Disruption("restart", FIRST - 1, 3), Disruption("restart", SECOND_TRIGGER, 1)))
    got = await run_plan(plan, tmp_path / "late.sqlite3")
    short = next(o[0] for o in want.orders if "short" in o[0])
    assert set(got.skipped) == {short}  # its moment passed while the engine was down (each run says so)
    assert [o for o in got.orders if o[0] == short] == []
    assert [o for o in got.orders if o[0] != short] == [o for o in want.orders if o[0] != short]
    assert got.candles == want.candles and got.events[-1] == want.events[0]


@pytest.mark.asyncio
async def test_a_1101_in_a_consolidation_is_filled_and_the_setup_lives(tmp_path: Path) -> None:
    want = await asyncio.to_thread(reference, tmp_path)
    db = tmp_path / "1101.sqlite3"
    got = await run_plan(Plan(start=0, disruptions=(Disruption("1101", FIRST - 5, 3),)), db)
    check(got, want)
    assert not [e for e in got.events[-1] if getattr(e, "signal", None) is Signal.DATA_GAP]
    with Store(db) as store:
        gaps = [g for g in store.connection_events() if isinstance(g, Gap)]
        history = [c for c in store.candle_records("NQ", 60) if c.source == "history"]
    assert len(gaps) == 1 and gaps[0].filled and "1100" in gaps[0].cause
    # the minutes the outage touched came from IB's history -- from the one open at the
    # 1100 to the one forming at the first tick after the 1101 -- and nothing else did
    assert {c.candle.start for c in history} == {STEPS[k] - SECOND for k in range(FIRST - 5, FIRST - 1)}


@pytest.mark.asyncio
async def test_a_drop_during_the_warm_up_only_moves_the_join(tmp_path: Path) -> None:
    want = await asyncio.to_thread(reference, tmp_path)

    async def start_into_a_drop(driver: Driver) -> None:
        driver.tws.drop_on_next_request("REQ_HISTORICAL_DATA", answered=False)  # the morning's bars
        await driver.start()
        # the warm-up's request cut the session; stepping on waits for the new one
        seen = [await asyncio.wait_for(driver.connection.get(), FENCE) for _ in range(2)]
        assert [type(e).__name__ for e in seen] == ["ConnectionLost", "ConnectionRestored"]

    got = await run_plan(Plan(start=AT_1500), tmp_path / "drop.sqlite3", first_start=start_into_a_drop)
    check(got, want)


@pytest.mark.asyncio
async def test_a_stop_during_the_warm_up_then_a_new_start(tmp_path: Path) -> None:
    want = await asyncio.to_thread(reference, tmp_path)

    async def stopped_while_waiting(driver: Driver) -> None:
        driver.tws.ignore_next_request("REQ_HISTORICAL_DATA")  # the morning's bars never come
        await driver.start()
        assert driver.engine is not None and driver.engine.fillers["NQ"].holding
        await asyncio.to_thread(driver.tws.wait_for_request, "REQ_HISTORICAL_DATA")
        await driver.stop()  # a clean stop mid-warm-up: nothing half-replayed is left
        await driver.start()

    got = await run_plan(Plan(start=AT_1500), tmp_path / "stop.sqlite3", first_start=stopped_while_waiting)
    check(got, want)


@pytest.mark.asyncio
async def test_a_restart_asks_history_only_for_what_the_store_lacks(tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite3"
    async with FakeTWS(start=OPEN, speed=0, scenarios={"NQ": SCRIPT}) as tws:
        driver = Driver(tws, db)
        await driver.start()
        for at in STEPS[:AT_1500 + 1]:
            await driver.step(at)
        await driver.stop()  # a clean stop at 15:00:01; back at once
        filled: list[HistoryFilled] = []
        await driver.start()
        assert driver.engine is not None
        driver.engine.bus.subscribe(HistoryFilled, filled.append)
        await driver.step(STEPS[AT_1500 + 1])
        await driver.stop()
    (warm,) = filled
    # 09:00-14:58 from the store; from TWS the minute before the last stored trade's
    # (whose minute may have been cut short), that minute, and the one forming at the start
    assert (warm.start, warm.end) == (WINDOW, STEPS[AT_1500] - SECOND + dt.timedelta(minutes=1))
    assert (warm.stored, warm.bars, warm.requests, warm.missing) == (359, 2, 2, ())


def test_memory_off_and_a_late_start_leaves_the_day_untraded(tmp_path: Path) -> None:
    async def go() -> tuple[set[dt.date], list[str]]:
        async with FakeTWS(start=OPEN, speed=0, scenarios={"NQ": SCRIPT}) as tws:
            from slob.config.ib_config import IBConfig
            from slob.live import IBWSFetcher
            for at in STEPS[:AT_1500]:
                tws.clock.set(at)
            fetcher = IBWSFetcher(config=IBConfig(port=tws.port, client_id=1, account="DU1234567"))
            engine = LiveTradingEngine(ib_fetcher=fetcher, store=tmp_path / "off.db", quiet_check_seconds=3600,
                                       memory=MemoryConfig(enabled=False))
            skipped: list[str] = []
            engine.bus.subscribe(SetupSkipped, lambda e: skipped.append(e.reason))
            await engine.start()
            runner = asyncio.create_task(engine.run())
            for at in STEPS[AT_1500:]:
                tws.clock.set(at)
                await asyncio.to_thread(tws.settle)
                await engine.caught_up(at - SECOND, timeout=FENCE)
            await engine.stop()
            await asyncio.wait_for(runner, FENCE)
            assert tws.orders == [] and engine.fillers == {}
            return engine.levels_unknown, skipped
    unknown, skipped = asyncio.run(go())
    assert unknown == {dt.date(2025, 3, 5)} and all("incomplete" in s for s in skipped)

