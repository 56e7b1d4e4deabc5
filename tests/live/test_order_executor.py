"""OrderExecutor against FakeTWS: bracket shape, paper-only, never twice, ids, risk,
rejections. The clock is paused, so no order fills unless a test advances it."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_asyncio
from order_checks import plan

from slob.config.ib_config import IBConfig
from slob.ib.errors import LiveTradingRefused
from slob.live import IBWSFetcher
from slob.execution.order_executor import BracketPlaced, OrderExecutor, RiskConfig, SetupSkipped
from slob.strategy.setup_tracker import Direction
from slob.store.store import Store
from slob.orders import OrderError
from slob.testing import FakeTWS, ScriptedScenario

UTC = dt.timezone.utc
START = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
FLAT = ScriptedScenario.from_prices(START, [(s, 21000.0, 1) for s in range(1, 600)])


@pytest_asyncio.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    async with FakeTWS(start=START, speed=0, scenarios={"NQ": FLAT}) as server:
        yield server


async def session(tws: FakeTWS, client_id: int = 1, **risk: int) -> tuple[IBWSFetcher, OrderExecutor, list[object]]:
    fetcher = IBWSFetcher(config=IBConfig(port=tws.port, client_id=client_id, reconnect_delay_seconds=0.05))
    events: list[object] = []

    async def publish(event: object) -> None:
        events.append(event)

    executor = OrderExecutor(fetcher, risk=RiskConfig(**risk) if risk else None, publish=publish)
    fetcher.on_order = executor.on_order
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])
    await executor.start()
    return fetcher, executor, events


async def listen_until(fetcher: IBWSFetcher, predicate: object, timeout: float = 10.0) -> None:
    """Run listen() (which routes order records) until ``predicate()`` holds."""
    task = asyncio.create_task(fetcher.listen())
    try:
        async def wait() -> None:
            while not predicate():  # type: ignore[operator]
                await fetcher.server_time()  # a round trip: everything before it has arrived
        await asyncio.wait_for(wait(), timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_bracket_is_entry_plus_oca_children_with_the_setup_as_order_ref(tws: FakeTWS) -> None:
    fetcher, executor, events = await session(tws)
    try:
        placed = await executor.place(plan())
        assert isinstance(placed, BracketPlaced)
        await asyncio.to_thread(tws.wait_until, lambda t: len(t.orders) == 3)
        orders = {o.order_id: o for o in tws.orders}
        parent, tp, sl = orders[placed.parent_id], orders[placed.take_profit_id], orders[placed.stop_id]
        assert (parent.action, parent.order_type, parent.parent_id) == ("SELL", "MKT", 0)
        assert (tp.action, tp.order_type, tp.lmt_price, tp.parent_id) == ("BUY", "LMT", 20990.0, placed.parent_id)
        assert (sl.action, sl.order_type, sl.aux_price, sl.parent_id) == ("BUY", "STP", 21010.0, placed.parent_id)
        assert {o.order_ref for o in (parent, tp, sl)} == {plan().setup_id}
        assert tp.oca_group == sl.oca_group != ""
        assert placed.parent_id >= 1 and placed.stop_id == placed.parent_id + 2
        placing = [r for r in tws.requests if r.name == "PLACE_ORDER"]
        assert [r["transmit"] for r in placing] == ["0", "0", "1"]  # the last child transmits all
    finally:
        await fetcher.disconnect()


@pytest.mark.asyncio
async def test_non_paper_accounts_are_refused_unless_allowed() -> None:
    async with FakeTWS(start=START, speed=0, accounts=("U7654321",)) as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port))
        await fetcher.connect()
        try:
            with pytest.raises(LiveTradingRefused, match="U7654321"):
                await OrderExecutor(fetcher).start()
            assert not [r for r in tws.requests if r.name == "PLACE_ORDER"]
            await OrderExecutor(fetcher, allow_live=True).start()  # explicit opt-in
        finally:
            await fetcher.disconnect()
    with pytest.raises(LiveTradingRefused, match="7496"):
        IBConfig(port=7496)


@pytest.mark.asyncio
@pytest.mark.parametrize("with_store", [False, True], ids=["from TWS", "from TWS and the store"])
async def test_a_setup_is_never_placed_twice_across_a_restart(tws: FakeTWS, tmp_path: Path, with_store: bool) -> None:
    store = Store(tmp_path / "s.db") if with_store else None
    fetcher, executor, _ = await session(tws)
    executor.store = store
    placed = await executor.place(plan())
    assert isinstance(placed, BracketPlaced)
    await asyncio.to_thread(tws.wait_until, lambda t: len(t.orders) == 3)
    # the process dies between placement and fill: no clean stop, the socket just goes
    tws.drop(client_id=1)
    await fetcher.disconnect()
    if store is not None:
        store.close()
        store = Store(tmp_path / "s.db")
    again, executor2, events = await session(tws)  # a new engine, same client id
    executor2.store = store
    try:
        await executor2.reconcile()
        result = await executor2.place(plan())
        assert isinstance(result, SetupSkipped) and "already placed" in result.reason
        assert len(tws.orders) == 3 and plan().setup_id in executor2.placed
        fresh = await executor2.place(plan(2))  # a different setup still goes through
        assert isinstance(fresh, BracketPlaced) and fresh.parent_id > placed.stop_id  # ids never reused
    finally:
        await again.disconnect()
        if store is not None:
            store.close()


@pytest.mark.asyncio
async def test_order_ids_continue_after_a_reconnect(tws: FakeTWS) -> None:
    fetcher, executor, _ = await session(tws)
    try:
        first = await executor.place(plan(1))
        assert isinstance(first, BracketPlaced)
        await asyncio.to_thread(tws.wait_until, lambda t: len(t.orders) == 3)
        listener = asyncio.create_task(fetcher.listen())
        restored = asyncio.Event()
        fetcher.on_event = lambda e: restored.set() if type(e).__name__ == "ConnectionRestored" else None
        tws.drop()
        await asyncio.wait_for(restored.wait(), 10)
        await executor.reconcile()
        second = await executor.place(plan(2, Direction.LONG))
        assert isinstance(second, BracketPlaced) and second.parent_id > first.stop_id
        await asyncio.to_thread(tws.wait_until, lambda t: len(t.orders) == 6)
        assert len({o.order_id for o in tws.orders}) == 6  # FakeTWS rejects reused ids with 103
        await fetcher.disconnect()
        await asyncio.wait_for(listener, 5)
    finally:
        await fetcher.disconnect()


@pytest.mark.asyncio
async def test_risk_limits_stop_new_entries(tws: FakeTWS) -> None:
    fetcher, executor, events = await session(tws)
    try:
        assert isinstance(await executor.place(plan(1)), BracketPlaced)
        tws.advance(2)  # the market entry fills
        await asyncio.to_thread(tws.settle)
        await listen_until(fetcher, lambda: executor.position == -1)
        skipped = await executor.place(plan(2, Direction.LONG))
        assert isinstance(skipped, SetupSkipped) and "max_position" in skipped.reason
        today = dt.datetime.now(UTC)
        executor.daily.book("earlier-loss", today, -1000.0)  # as if today's losses reached the limit
        executor.position = 0
        skipped = await executor.place(plan(3))
        assert isinstance(skipped, SetupSkipped) and "daily loss" in skipped.reason
        tomorrow = dataclasses.replace(plan(4), at=today + dt.timedelta(days=1))  # a new trading day
        assert isinstance(await executor.place(tomorrow), BracketPlaced)
        assert [type(e).__name__ for e in events if isinstance(e, SetupSkipped)] == ["SetupSkipped"] * 2
    finally:
        await fetcher.disconnect()


@pytest.mark.asyncio
async def test_rejections_and_cancels_reach_the_engine_with_the_reason(tws: FakeTWS) -> None:
    fetcher, executor, events = await session(tws)
    try:
        tws.reject_next_order(201, "Order rejected - reason:Margin requirement not met")
        await executor.place(plan(1))
        await listen_until(fetcher, lambda: any(isinstance(e, OrderError) for e in events))
        rejected = [e for e in events if isinstance(e, OrderError)][0]  # the parent; its children follow
        assert rejected.code == 201 and rejected.text.endswith("Margin requirement not met")
        placed = await executor.place(plan(2))
        assert isinstance(placed, BracketPlaced)
        ref = plan(2).setup_id
        await asyncio.to_thread(tws.wait_until, lambda t: sum(o.order_ref == ref for o in t.orders) == 3)
        await fetcher.cancel_order(placed.parent_id)
        await listen_until(fetcher, lambda: any(isinstance(e, OrderError) and e.code == 202 for e in events))
    finally:
        await fetcher.disconnect()
