"""End to end: planted SLOB setups on FakeTWS -> engine -> brackets -> fills -> SQLite.

Two days, one planted setup each: a short that reaches its target and a long that is
stopped out. The simulated clock is paused and stepped a minute at a time; after each
step the test waits until the engine has seen the last trade due and until FakeTWS has
processed everything the engine sent (a current-time round trip), so every order meets
exactly the trades a real market would have shown it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from slob.live import IBWSFetcher
from slob.live.live_trading_engine import LiveTradingEngine
from slob.execution.order_executor import BracketPlaced
from slob.strategy.setup_planting import plant_setup
from slob.strategy.setup_tracker import Direction
from slob.store.store import Store
from slob.model import Tick
from slob.testing import FakeTWS, ScriptedScenario

UTC = dt.timezone.utc


@pytest.mark.asyncio
async def test_planted_setups_are_traded_and_recorded(tmp_path: Path) -> None:
    short = plant_setup(dt.date(2025, 3, 5), Direction.SHORT, lse_high=20100, lse_low=19950, outcome="target")
    long = plant_setup(dt.date(2025, 3, 6), Direction.LONG, lse_high=20300, lse_low=20150, outcome="stop")
    candles = short.candles + long.candles
    script = ScriptedScenario.from_candles(candles)
    trade_times = sorted(t.time_ns for t in script.events(0))
    start = candles[0].start - dt.timedelta(minutes=1)
    db = tmp_path / "trades.sqlite3"
    async with FakeTWS(start=start, speed=0, scenarios={"NQ": script}) as tws:
        fetcher = IBWSFetcher(host="127.0.0.1", port=tws.port, client_id=1, account="DU1234567")
        engine = LiveTradingEngine(data_source="ib", ib_fetcher=fetcher, symbols=["NQ"], store=db)
        seen: list[Tick] = []
        ticked = asyncio.Event()

        def on_tick(tick: Tick) -> None:
            seen.append(tick)
            ticked.set()

        placed: list[BracketPlaced] = []
        engine.bus.subscribe(Tick, on_tick)
        engine.bus.subscribe(BracketPlaced, placed.append)
        await engine.start()
        runner = asyncio.create_task(engine.run())

        async def step_to(when: dt.datetime) -> None:
            tws.advance((when - tws.clock.now()).total_seconds())
            await asyncio.to_thread(tws.settle)
            due = [t for t in trade_times if t <= int(when.timestamp()) * 1_000_000_000]
            if due:
                last = dt.datetime.fromtimestamp(due[-1] // 1_000_000_000, UTC)
                while not seen or seen[-1].timestamp < last:
                    ticked.clear()
                    await asyncio.wait_for(ticked.wait(), 10)
            await fetcher.server_time()  # a fence: FakeTWS has processed what the engine sent
            if engine.executor is not None and engine.executor.placed:
                await asyncio.to_thread(tws.settle)  # and matched it against the trades so far
                await fetcher.server_time()  # its answers (fills) are in

        for day in (short, long):
            for candle in day.candles:
                if candle.end < day.liq1_at and candle.end.minute % 30:
                    continue  # nothing to trade before LIQ #1: half-hour steps
                await step_to(candle.end + dt.timedelta(seconds=1))
        await engine.stop()
        await asyncio.wait_for(runner, 10)
        fills = tws.executions
        positions = tws.positions

    assert [p.setup_id for p in placed] == [short.setup_id, long.setup_id]
    assert [p.direction for p in placed] == ["short", "long"]
    assert (placed[0].stop, placed[0].target) == (short.stop, short.target)
    assert (placed[1].stop, placed[1].target) == (long.stop, long.target)
    assert all(p.quantity == 1 for p in placed)
    assert len(fills) == 4 and all(p.quantity == 0 for p in positions)  # both trades closed

    with Store(db) as store:
        setups = {s.id: s for s in store.setups()}
        assert {short.setup_id, long.setup_id} <= set(setups)
        assert setups[short.setup_id].state == "placed" and setups[long.setup_id].state == "placed"
        by_setup = {sid: {o.order_id: o for o in store.orders(sid)} for sid in (short.setup_id, long.setup_id)}
        win, loss = placed
        # status updates keep what was sent
        tp_row = by_setup[short.setup_id][win.take_profit_id]
        sl_row = by_setup[short.setup_id][win.stop_id]
        assert (tp_row.action, tp_row.order_type, tp_row.limit_price) == ("BUY", "LMT", short.target)
        assert (sl_row.action, sl_row.order_type, sl_row.stop_price) == ("BUY", "STP", short.stop)
        # the short: entry filled, target filled, stop cancelled through OCA
        assert by_setup[short.setup_id][win.parent_id].status == "Filled"
        assert by_setup[short.setup_id][win.take_profit_id].status == "Filled"
        assert by_setup[short.setup_id][win.stop_id].status == "Cancelled"
        # the long: entry filled, stop filled, target cancelled
        assert by_setup[long.setup_id][loss.parent_id].status == "Filled"
        assert by_setup[long.setup_id][loss.stop_id].status == "Filled"
        assert by_setup[long.setup_id][loss.take_profit_id].status == "Cancelled"
        stored_fills = store.fills()
        assert len(stored_fills) == 4 and all(f.commission is not None for f in stored_fills)
        pnl = {f.order_id: f.realized_pnl for f in stored_fills if f.realized_pnl is not None}
        assert pnl[win.take_profit_id] > 0 > pnl[loss.stop_id]
        # realized P&L = price move x multiplier 20 - both commissions (2.25 each side)
        entry_fill = next(f for f in stored_fills if f.order_id == win.parent_id)
        exit_fill = next(f for f in stored_fills if f.order_id == win.take_profit_id)
        assert pnl[win.take_profit_id] == pytest.approx((entry_fill.price - exit_fill.price) * 20 - 4.5)
    stats = engine.get_stats()["orders"]
    assert stats["position"] == 0 and stats["realized_pnl"] == pytest.approx(sum(pnl.values()))
