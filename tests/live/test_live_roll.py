"""A live roll on FakeTWS: the simulated clock crosses NQZ4's roll moment mid-stream."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from slob.config.ib_config import IBConfig
from slob.live import IBWSFetcher, Tick
from slob.model import ContractRolled
from slob.testing import FakeTWS, ScriptedScenario

UTC = dt.timezone.utc
ROLL = dt.datetime(2024, 12, 11, 23, 0, tzinfo=UTC)  # NQZ4 (expires Fri 12-20): Thursday 12-12's session, 17:00 CT Wed


@pytest.mark.asyncio
@pytest.mark.parametrize("lead_seconds", [60, 0], ids=["requested-ahead", "requested-late"])
async def test_rolling_symbol_switches_contracts_without_a_gap(lead_seconds: int) -> None:
    start = ROLL - dt.timedelta(seconds=20)
    # a trade every half second from 10 s before the roll moment to 20 s after it
    script = ScriptedScenario.from_prices(start, [(10 + i / 2, 21000.0 + (i % 8) * 0.25, 1 + i % 3) for i in range(60)])
    async with FakeTWS(start=start, speed=10, scenarios={"NQ": script}) as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port, reconnect_delay_seconds=0.05))
        ticks: list[Tick] = []
        events: list[object] = []
        done = asyncio.Event()

        def on_tick(tick: Tick) -> None:
            ticks.append(tick)
            if tick.timestamp >= ROLL + dt.timedelta(seconds=19):
                done.set()

        fetcher.roll_lead = dt.timedelta(seconds=lead_seconds)
        fetcher.on_tick, fetcher.on_event = on_tick, events.append
        fetcher.on_error = lambda exc: events.append(exc)
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        assert fetcher.get_stats()["contracts"] == {"NQ": "NQZ4"}
        listener = asyncio.create_task(fetcher.listen())
        await asyncio.wait_for(done.wait(), 30)

        rolled = [e for e in events if isinstance(e, ContractRolled)]
        assert len(rolled) == 1 and not [e for e in events if isinstance(e, Exception)]
        roll = rolled[0]
        assert (roll.symbol, roll.old, roll.new) == ("NQ", "NQZ4", "NQH5") and roll.at >= ROLL
        if lead_seconds:
            assert roll.at == ROLL  # requested ahead: the switch lands on the roll moment
        assert {t.symbol for t in ticks} == {"NQ"}
        # nothing from the old contract at or after the switch second
        assert [t for t in ticks if t.contract == "NQZ4" and t.timestamp >= roll.at] == []
        assert all(t.contract == "NQH5" for t in ticks if t.timestamp >= roll.at)
        assert any(t.contract == "NQZ4" for t in ticks)
        # no gap: every scripted second from the first delivered one on was delivered
        seconds = {t.timestamp for t in ticks}
        first, last = min(seconds), max(seconds)
        expected = {start + dt.timedelta(seconds=10 + i // 2) for i in range(60)}
        assert {s for s in expected if first <= s <= last} <= seconds
        # the old subscription was cancelled
        cancels = await asyncio.to_thread(
            tws.wait_for_request, "CANCEL_TICK_BY_TICK_DATA", timeout=10)
        assert fetcher.get_stats()["contracts"] == {"NQ": "NQH5"} and fetcher.get_stats()["rolls"] == 1
        assert cancels is not None
        await fetcher.disconnect()
        await asyncio.wait_for(listener, 5)


@pytest.mark.asyncio
async def test_a_roll_moment_passed_during_an_outage_is_reported_at_the_new_contracts_first_tick() -> None:
    start = ROLL - dt.timedelta(seconds=20)
    script = ScriptedScenario.from_prices(start, [(i / 2, 21000.0 + (i % 8) * 0.25, 1) for i in range(200)])
    async with FakeTWS(start=start, speed=5, scenarios={"NQ": script}) as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port, reconnect_delay_seconds=0.05,
                                              max_reconnect_delay_seconds=0.2, max_reconnect_attempts=50))
        fetcher.roll_lead = dt.timedelta(0)  # no live roll: the moment passes while the feed is down
        fetcher.roll_check_seconds = 3600
        ticks: list[Tick] = []
        events: list[object] = []
        rolled = asyncio.Event()

        def on_event(event: object) -> None:
            events.append(event)
            if isinstance(event, ContractRolled):
                rolled.set()

        first = asyncio.Event()

        def on_tick(tick: Tick) -> None:
            ticks.append(tick)
            first.set()

        fetcher.on_tick, fetcher.on_event = on_tick, on_event
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        listener = asyncio.create_task(fetcher.listen())
        await asyncio.wait_for(first.wait(), 30)
        tws.restart(down_for=6)  # 30 simulated seconds down: the roll moment passes
        await asyncio.wait_for(rolled.wait(), 30)
        roll = next(e for e in events if isinstance(e, ContractRolled))
        first_new = next(t for t in ticks if t.contract == "NQH5")
        assert (roll.old, roll.new, roll.at) == ("NQZ4", "NQH5", first_new.timestamp)
        assert roll.at >= ROLL and all(t.contract == "NQZ4" for t in ticks[:ticks.index(first_new)])
        assert fetcher.get_stats()["rolls"] == 1
        await fetcher.disconnect()
        await asyncio.wait_for(listener, 5)
