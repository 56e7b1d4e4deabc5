"""Reconciliation against FakeTWS with IB's real client, in one process: a connection cut
(by a FaultProxy between the client and FakeTWS) after each leg of a bracket, fills that
happen while the connection is cut or slob is away, a position that lost its stop, the
paper check on every place(), reconcile() twice and alongside place(), and a TWS that does
not answer. After every reconciliation the store must equal FakeTWS's
own record (orders, fills, position), and no setup is ever placed twice or left half placed.
The clock is paused: nothing fills unless a test advances it."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio
from order_checks import bracket_problems, plan, by_ref, report_pnl, store_problems

from slob.config.ib_config import IBConfig
from slob.ib.errors import ConnectionLost, LiveTradingRefused, RequestTimedOut, SlobError
from slob.live import IBWSFetcher
from slob.execution.order_executor import BracketPlaced, OrderExecutor, SetupSkipped
from slob.store.store import Store
from slob.model import ConnectionRestored
from slob.testing import FakeTWS, FaultProxy, ScriptedScenario

UTC = dt.timezone.utc
START = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
# flat at 21000 for a minute, then down through the short's target (20990) and on
PRICES = [(s, 21000.0, 1) for s in range(1, 60)] + [(60 + s, 20995.0 - s, 1) for s in range(0, 40)]
SCRIPT = ScriptedScenario.from_prices(START, PRICES)


@pytest_asyncio.fixture
async def tws() -> AsyncIterator[FakeTWS]:
    async with FakeTWS(start=START, speed=0, scenarios={"NQ": SCRIPT}) as server:
        yield server


class Session:
    """A fetcher + executor on a store, listening (order records flow), reconnecting."""

    def __init__(self, tws: FakeTWS, db: Path, *, port: int = 0, **config: Any) -> None:
        cfg = IBConfig(port=port or tws.port, client_id=1, reconnect_delay_seconds=0.05, **config)
        self.fetcher = IBWSFetcher(config=cfg)
        self.store = Store(db)
        self.executor = OrderExecutor(self.fetcher, store=self.store)
        self.restored = asyncio.Event()
        self.fetcher.on_order = self.executor.on_order
        self.fetcher.on_event = self._event
        self.listener: asyncio.Task[None] | None = None

    async def _event(self, event: object) -> None:
        if isinstance(event, ConnectionRestored):
            self.restored.set()

    async def open(self) -> "Session":
        await self.fetcher.connect()
        await self.fetcher.subscribe(["NQ"])
        self.listener = asyncio.create_task(self.fetcher.listen())
        await self.executor.start()
        return self

    async def settled(self, tws: FakeTWS) -> None:
        """FakeTWS matched everything due, and its answers are in the store."""
        await asyncio.to_thread(tws.settle)
        await self.fetcher.server_time()
        await self.fetcher.server_time()
        await self.store.aflush()

    async def close(self) -> None:
        await self.fetcher.disconnect()
        if self.listener is not None:
            await asyncio.gather(self.listener, return_exceptions=True)
        self.store.close()


def placing(tws: FakeTWS) -> int:
    return sum(r.name == "PLACE_ORDER" for r in tws.requests)


@pytest.mark.asyncio
@pytest.mark.parametrize("legs", [1, 2, 3])
async def test_a_drop_after_each_leg_leaves_the_bracket_complete_or_cancelled(
        tws: FakeTWS, tmp_path: Path, legs: int) -> None:
    async with FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        await drop_after_leg(tws, proxy, tmp_path, legs)


async def drop_after_leg(tws: FakeTWS, proxy: FaultProxy, tmp_path: Path, legs: int) -> None:
    s = await Session(tws, tmp_path / "s.db", port=proxy.port).open()
    try:
        cut = proxy.cut_after("PLACE_ORDER", legs)
        try:
            await s.executor.place(plan())
        except ConnectionLost:
            pass  # the legs after the drop could not be sent: the intent covers them
        await asyncio.to_thread(cut.wait)
        await asyncio.to_thread(tws.wait_until, lambda t: placing(t) >= legs)
        await asyncio.wait_for(s.restored.wait(), 10)
        assert placing(tws) == legs  # exactly: the proxy cut right after the n-th leg
        await asyncio.wait_for(s.restored.wait(), 10)
        await s.executor.reconcile()
        await s.settled(tws)
        orders = by_ref(tws).get(plan().setup_id, [])
        if legs == 3:  # transmitted whole before the drop: complete, left working
            assert sorted(o.status for o in orders) == ["PreSubmitted"] * 3
            assert s.executor.verdicts[plan().setup_id].state == "placed"
        else:  # held at TWS: cancelled leg by leg, never transmitted
            assert [o.status for o in orders] == ["Cancelled"] * legs
            assert s.executor.verdicts[plan().setup_id].state == "cancelled"
            assert {r.status for r in s.store.orders(plan().setup_id)} == {"Cancelled"}
        assert bracket_problems(tws) == [] and store_problems(s.store, tws) == []
        assert s.executor.store_differences == ()
        again = await s.executor.place(plan())  # never placed twice
        assert isinstance(again, SetupSkipped) and "already placed" in again.reason
        placed_before = placing(tws)
        await s.executor.reconcile()  # twice: nothing more is sent
        await s.settled(tws)
        assert placing(tws) == placed_before and store_problems(s.store, tws) == []
        fresh = await s.executor.place(plan(2))  # the next setup gets fresh ids
        assert isinstance(fresh, BracketPlaced)
        assert fresh.parent_id > max(o.order_id for o in tws.orders if o.order_ref == plan().setup_id)
    finally:
        await s.close()


@pytest.mark.asyncio
async def test_fills_during_a_cut_reach_the_store_after_the_reconnect(tws: FakeTWS, tmp_path: Path) -> None:
    async with FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        s = await Session(tws, tmp_path / "s.db", port=proxy.port).open()
        try:
            placed = await s.executor.place(plan())
            assert isinstance(placed, BracketPlaced)
            await s.settled(tws)
            proxy.hold()  # nothing reaches the client any more, not even a new session's greeting
            proxy.cut_now()
            s.restored.clear()
            tws.advance(120)  # entry and target fill, the stop is cancelled: no session hears it
            await asyncio.to_thread(tws.settle)
            assert sorted(o.status for o in by_ref(tws)[plan().setup_id]) == ["Cancelled", "Filled", "Filled"]
            await s.store.aflush()
            assert s.store.fills() == [] and s.executor.position == 0  # slob has not heard of them
            proxy.release()
            await asyncio.wait_for(s.restored.wait(), 10)
            await s.executor.reconcile()  # what the engine does on ConnectionRestored
            await s.settled(tws)
            assert store_problems(s.store, tws) == [] and s.executor.store_differences == ()
            assert s.executor.verdicts[plan().setup_id].state == "closed" and s.executor.position == 0
            assert all(f.commission == 2.25 for f in s.store.fills())
            assert {r.status for r in s.store.orders(plan().setup_id)} == {"Filled", "Cancelled"}
            reported, at_tws = report_pnl(s.store, tws)
            assert reported == pytest.approx(at_tws) == pytest.approx((21000.0 - 20990.0) * 20 - 4.5)
        finally:
            await s.close()


@pytest.mark.asyncio
async def test_fills_while_away_reach_the_store_with_commissions_and_final_statuses(
        tws: FakeTWS, tmp_path: Path) -> None:
    s = await Session(tws, tmp_path / "s.db").open()
    placed = await s.executor.place(plan())
    assert isinstance(placed, BracketPlaced)
    await s.settled(tws)
    await s.close()  # slob is away
    tws.advance(120)  # the entry fills at 21000, the target at 20990, the stop is cancelled (OCA)
    await asyncio.to_thread(tws.settle)
    assert sorted(o.status for o in by_ref(tws)[plan().setup_id]) == ["Cancelled", "Filled", "Filled"]
    with Store(tmp_path / "s.db") as before:
        assert before.fills() == [] and {o.status for o in before.orders()} == {"PreSubmitted"}
    back = await Session(tws, tmp_path / "s.db").open()  # start() reconciles
    try:
        await back.settled(tws)
        assert store_problems(back.store, tws) == [] and back.executor.store_differences == ()
        assert back.executor.verdicts[plan().setup_id].state == "closed"
        fills = back.store.fills()
        assert len(fills) == 2 and all(f.commission == 2.25 for f in fills)
        reported, at_tws = report_pnl(back.store, tws)  # `slob report` agrees with TWS
        assert reported == pytest.approx(at_tws) == pytest.approx((21000.0 - 20990.0) * 20 - 4.5)
    finally:
        await back.close()


@pytest.mark.asyncio
async def test_a_position_that_lost_its_stop_gets_one_and_only_one(tws: FakeTWS, tmp_path: Path) -> None:
    s = await Session(tws, tmp_path / "s.db").open()
    try:
        placed = await s.executor.place(plan())
        assert isinstance(placed, BracketPlaced)
        tws.advance(2)  # the market entry fills: short 1
        await s.settled(tws)
        for order_id in (placed.stop_id, placed.take_profit_id):  # someone cancels both exits
            await s.fetcher.cancel_order(order_id)
        await s.settled(tws)
        assert bracket_problems(tws) == [f"{plan().setup_id}: position -1 without a working stop"]
        await s.executor.reconcile()
        await s.settled(tws)
        assert bracket_problems(tws) == [] and store_problems(s.store, tws) == []
        repairs = [o for o in by_ref(tws)[plan().setup_id] if o.order_id > placed.stop_id]
        assert sorted((o.order_type, o.action, o.status, o.aux_price or o.lmt_price) for o in repairs) == [
            ("LMT", "BUY", "Submitted", 20990.0), ("STP", "BUY", "Submitted", 21010.0)]
        assert repairs[0].oca_group == repairs[1].oca_group
        assert s.executor.verdicts[plan().setup_id].state == "open" and s.executor.repairs_placed == 2
        count = len(tws.orders)
        await s.executor.reconcile()  # protected now: nothing more
        assert len(tws.orders) == count
        tws.advance(120)  # the repaired target fills; its OCA stop is cancelled
        await s.settled(tws)
        await s.executor.reconcile()
        await s.settled(tws)
        assert tws.positions[0].quantity == 0 and store_problems(s.store, tws) == []
        assert s.executor.verdicts[plan().setup_id].state == "closed"
    finally:
        await s.close()


@pytest.mark.asyncio
async def test_reconcile_waits_for_a_bracket_being_placed_and_runs_twice_safely(tws: FakeTWS, tmp_path: Path) -> None:
    s = await Session(tws, tmp_path / "s.db").open()
    try:
        results = await asyncio.gather(s.executor.place(plan()), s.executor.reconcile(), s.executor.reconcile(),
                                       s.executor.place(plan()))
        assert [type(r).__name__ for r in results] == ["BracketPlaced", "NoneType", "NoneType", "SetupSkipped"]
        await s.settled(tws)
        assert len(by_ref(tws)[plan().setup_id]) == 3 and bracket_problems(tws) == []
        assert s.executor.verdicts[plan().setup_id].state == "placed"  # complete, not cancelled
        assert store_problems(s.store, tws) == [] and s.executor.store_differences == ()
    finally:
        await s.close()


@pytest.mark.asyncio
async def test_place_checks_the_account_on_every_call() -> None:
    async with FakeTWS(start=START, speed=0, accounts=("U7654321",)) as tws:
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port))
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        try:
            with pytest.raises(LiveTradingRefused, match="U7654321"):
                await OrderExecutor(fetcher).place(plan())  # without start(): still refused
            allowed = OrderExecutor(fetcher, allow_live=True)
            await allowed.start()
            allowed.allow_live = False  # the opt-in withdrawn: the next place() sees it
            with pytest.raises(LiveTradingRefused):
                await allowed.place(plan())
            assert not [r for r in tws.requests if r.name == "PLACE_ORDER"]
        finally:
            await fetcher.disconnect()


@pytest.mark.asyncio
async def test_a_tws_that_does_not_answer_gives_a_slob_error(tws: FakeTWS, tmp_path: Path) -> None:
    s = await Session(tws, tmp_path / "s.db", request_timeout_seconds=0.2).open()
    try:
        tws.stall(30)  # nothing answers: the open-orders request times out
        with pytest.raises(SlobError, match="did not answer") as caught:
            await s.executor.reconcile()
        assert isinstance(caught.value, RequestTimedOut)
    finally:
        await s.close()
