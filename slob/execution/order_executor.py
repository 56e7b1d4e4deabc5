"""OrderExecutor: a triggered setup becomes one bracket order on the paper account, written
down as an intent before its first leg is sent, and reconciled with TWS after every
reconnect and restart.

The engine places the bracket when the setup's trigger candle closes (state TRIGGERED):
the next candle opens at that moment, so the market entry fills at the strategy's "entry
at the next candle's open"; stop and target are already fixed. The tracker's later READY
(or a risk-reward invalidation at the real entry) does not change a bracket in place:
its stop and target manage the trade at TWS.

Bracket (../shared/DESIGN.md §5, TWS-FACTS §8): the parent entry (market, transmit=False),
a take-profit limit and a stop child, both with ``parentId`` and one OCA group; the last
child is sent with transmit=True, which transmits all three. ``orderRef`` carries the
setup id on every leg.

**Intent first.** Before the first ``placeOrder`` the setup, its three order ids and the
legs exactly as they will be sent are committed to the store and fsynced
(:meth:`Store.acommit`): a kill at any moment after that leaves a record of what may be at
TWS. A connection that dies between two legs, or a session that changed under them, stops
the bracket there (ConnectionLost); reconciliation decides what to do with it.

**Reconciliation** (:meth:`OrderExecutor.reconcile`; at start, after every reconnect and
1101, and so after a restart, since the intents come from the store) compares the intents
with TWS's open orders, today's executions with their commission reports, and positions,
using the decision table of :mod:`slob.execution.reconcile`: a cut bracket is cancelled,
a position without its stop gets one, fills and commissions that happened while slob was
away are written, orders no longer working get their final status, and the differences
left between the store and TWS are computed (:attr:`OrderExecutor.store_differences`).
A setup with an intent, an order at TWS or an execution is never placed again; order ids
are never reused (the next id is above TWS's ``nextValidId`` and every id in the store).
``reconcile()`` and ``place()`` share one asyncio lock, so a reconnect landing between two
legs waits for the bracket to finish or stop.

Risk: ``contracts`` per trade, ``max_position`` contracts open at most, and no new entry
once the realized P&L (from commission reports) of the setup's CME trading day is below
``-max_daily_loss`` (:class:`~slob.execution.daily_pnl.DailyPnl`).

Paper only unless explicitly allowed: the fetcher's config already refuses live ports and
non-paper accounts; the executor checks again on every :meth:`OrderExecutor.place` (and in
:meth:`OrderExecutor.start`) that the login manages paper accounts (``D…``) only, unless
``allow_live=True``.

**One clock.** Every time the executor writes (an intent's ``created``, a status, a
reconciliation's records) comes from ``clock``: the engine passes its exchange clock, the
one fills carry (TWS's execution time), so a replayed or simulated day stores orders and
fills on the same timeline. Without one it is the wall clock (UTC), which is exchange time
within a second or so for a live feed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Awaitable, Callable, Iterable

from ibapi.contract import Contract
from ibapi.order import Order

from slob.config.risk_config import RiskConfig
from slob.execution.daily_pnl import DailyPnl
from slob.execution.gateway import OrderGateway
from slob.execution.intents import ENTRY, Intent, Leg, OrderContract, bracket, repair_legs, role_of
from slob.execution.reconcile import (CANCELLED, CLOSED, TERMINAL, Difference, KnownFill, KnownOrder, TwsState,
                                      Verdict, decide, differences, next_status)
from slob.ib.errors import ConnectionLost, LiveTradingRefused, SlobError
from slob.strategy.setup_tracker import Direction, SetupChanged, SetupReady
from slob.store.store import FillRecord, OrderRecord, OrderStatusRecord, SetupRecord, Store, StoreError
from slob.orders import CommissionReported, Execution, OpenOrder, OrderError, OrderUpdate

__all__ = ["BracketPlaced", "OrderExecutor", "RiskConfig", "SetupSkipped", "TradePlan"]

log = logging.getLogger("slob.live.orders")
_UTC = dt.timezone.utc
Publish = Callable[[object], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TradePlan:
    """What to place: from a TRIGGERED setup (the next candle opens now, so a market entry
    is the strategy's "entry at the next open") or a READY one."""

    setup_id: str
    symbol: str
    direction: Direction
    stop: float
    target: float
    entry: float | None  # the expected entry, when known
    at: dt.datetime | None = None  # exchange time of the signal: its trading day's loss limit applies

    @classmethod
    def of(cls, setup: SetupChanged | SetupReady) -> "TradePlan":
        if setup.stop is None or setup.target is None:
            raise SlobError(f"setup {setup.setup_id} has no stop/target yet ({setup!r})")
        return cls(setup.setup_id, setup.symbol, setup.direction, setup.stop, setup.target, setup.entry, setup.at)


@dataclass(frozen=True, slots=True)
class BracketPlaced:
    setup_id: str
    contract: str
    direction: str
    quantity: int
    parent_id: int
    take_profit_id: int
    stop_id: int
    entry: float | None
    stop: float
    target: float
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class SetupSkipped:
    setup_id: str
    reason: str


class OrderExecutor:
    """See the module docstring. ``commission_wait_seconds`` bounds how long a
    reconciliation waits for the commission reports of the executions it read (they come
    through ``on_order``) before it computes the store-vs-TWS differences."""

    def __init__(
        self,
        fetcher: OrderGateway,
        *,
        risk: RiskConfig | None = None,
        publish: Publish | None = None,
        store: Store | None = None,
        allow_live: bool = False,
        commission_wait_seconds: float = 2.0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.clock: Callable[[], dt.datetime] = clock or _wall_clock
        self.risk = risk or RiskConfig()
        self._publish = publish
        self.store = store
        self.allow_live = allow_live
        self.commission_wait_seconds = commission_wait_seconds
        self.placed: set[str] = set()  # setup ids with an intent, orders at TWS or executions
        self.intents: dict[str, Intent] = {}
        self.verdicts: dict[str, Verdict] = {}  # the last reconciliation's, per setup
        #: Where the store and TWS disagreed after the last reconciliation (empty: they agree).
        self.store_differences: tuple[Difference, ...] = ()
        self.position: float = 0.0  # contracts, signed
        self.realized_pnl: float = 0.0  # from commission reports (each counted once), all days
        self.commissions: float = 0.0
        #: Realized P&L per CME trading day: the daily loss limit's input.
        self.daily = DailyPnl()
        self.reconciliations = 0
        self.cancels_sent = 0
        self.repairs_placed = 0
        self._lock = asyncio.Lock()
        self._commission_seen = asyncio.Event()
        self._loaded = False
        self._next_id = 0
        self._setup_of: dict[int, str] = {}  # order id -> setup id
        self._status: dict[int, str] = {}  # order id -> latest status known
        self._fills: dict[str, Execution] = {}  # exec id -> execution
        self._reports: dict[str, CommissionReported] = {}  # exec id -> commission report
        self._settled: set[str] = set()  # setups whose every leg is final

    # -- lifecycle ---------------------------------------------------------------------

    def check_paper(self) -> None:
        """Raise LiveTradingRefused if the login manages a non-paper account and live
        trading was not explicitly allowed."""
        live = [a for a in self.fetcher.accounts if not a.upper().startswith("D")]
        if live and not self.allow_live:
            raise LiveTradingRefused(
                f"this login manages non-paper account(s) {', '.join(live)}; slob places orders on paper "
                "accounts only unless live trading is explicitly enabled (allow_live=True / --live)"
            )

    async def start(self) -> None:
        """Check the account is paper, then reconcile with TWS (and the store)."""
        self.check_paper()
        await self.reconcile()

    async def reconcile(self) -> None:
        """Bring the store and this executor in line with TWS (see the module docstring).
        Idempotent, safe to call concurrently with :meth:`place`; raises SlobErrors only:
        ConnectionLost when TWS does not answer or goes away (it runs again after the
        reconnect), StoreError when the store refuses a write."""
        try:
            snapshot, ours, boundary = await self._reconcile_locked()
            await self._await_commissions(ours)
            await self._compute_differences(snapshot, ours, boundary)
        except SlobError:
            raise
        except Exception as exc:  # a time-out, a socket error, a store failure
            raise ConnectionLost(
                f"reconciliation with TWS failed ({type(exc).__name__}: {exc or 'no answer'}); "
                "it runs again after the next reconnect, and nothing was placed twice") from exc

    async def _reconcile_locked(self) -> tuple[TwsState, set[str], int]:
        async with self._lock:
            await self._load()
            open_orders = await self.fetcher.open_orders()
            executions = await self.fetcher.executions()
            positions = await self.fetcher.positions()
            boundary = self._reserve_boundary()
            now = self.clock()
            snapshot = TwsState(tuple(open_orders), tuple(executions), dict(self._reports), tuple(positions))
            records: list[object] = []
            for o in open_orders:
                self._remember(o.order_id, o.order_ref)
                if self._status.get(o.order_id) != o.status:
                    records.append(_status_from_open_order(o, now))
                    self._status[o.order_id] = next_status(self._status.get(o.order_id, ""), o.status)
            ours: set[str] = set()
            for e in executions:
                if not (e.order_ref in self.placed or e.order_id in self._setup_of):
                    continue  # not slob's: shown as a difference, never written as ours
                self._remember(e.order_id, e.order_ref)
                ours.add(e.exec_id)
                if e.exec_id not in self._fills:
                    self._fills[e.exec_id] = e
                    self._book(e.exec_id)
                records.append(_fill_record(e, self._reports.get(e.exec_id)))
                if e.order_id not in self._status:
                    records.append(_status_from_execution(e))
                    self._status[e.order_id] = "Filled"
            self.position = sum(p.position for p in positions)
            self._next_id = max(self._next_id, self.fetcher.next_valid_id)
            acted = 0
            try:
                for intent in list(self.intents.values()):
                    if intent.setup_id in self._settled:
                        continue
                    verdict = decide(intent, {i: self._status.get(i, "") for i in intent.order_ids}, snapshot)
                    acted += await self._apply(intent, verdict, records, now)
            finally:  # what was established so far is written even if TWS goes away mid-way
                if self.store is not None and records:
                    await self.store.acommit(*records)
            self.reconciliations += 1
            log.info("= reconciled: %d open orders, %d executions (%d slob's), position %g, %d intents, %d acted on",
                     len(open_orders), len(executions), len(ours), self.position, len(self.intents), acted)
            return snapshot, ours, boundary

    async def _apply(self, intent: Intent, verdict: Verdict, records: list[object], now: dt.datetime) -> int:
        """Carry out one verdict: cancels, a repair, then (once TWS has processed them: a
        current-time round trip is the fence) the statuses and the setup's state."""
        previous = self.verdicts.get(intent.setup_id)
        self.verdicts[intent.setup_id] = verdict
        if verdict.acts or previous is None or previous.state != verdict.state:
            log.info("= setup %s: %s (%s)%s%s", intent.setup_id, verdict.state, verdict.reason,
                     f", cancelling {list(verdict.cancel)}" if verdict.cancel else "",
                     ", protecting the position" if verdict.protect else "")
        for order_id in verdict.cancel:
            await self.fetcher.cancel_order(order_id)
            self.cancels_sent += 1
        if verdict.protect is not None:
            intent = await self._protect(intent, verdict, now)
        if verdict.acts:
            await self.fetcher.server_time()  # a fence: TWS has processed what was sent
        for order_id, status in verdict.statuses.items():
            if status and self._status.get(order_id) != status:
                self._status[order_id] = next_status(self._status.get(order_id, ""), status)
                records.append(OrderStatusRecord(order_id, status, now, filled=_filled(order_id, self._fills)))
        if verdict.acts or previous is None or previous.state != verdict.state:
            records.append(_setup_record(intent, verdict.state, now))
        if verdict.state in (CLOSED, CANCELLED) and not verdict.acts and all(
                self._status.get(i, "") in TERMINAL for i in intent.order_ids):
            self._settled.add(intent.setup_id)
        return int(verdict.acts)

    async def _protect(self, intent: Intent, verdict: Verdict, now: dt.datetime) -> Intent:
        """Place the exits a position of ``intent`` lacks (new ids, the same orderRef), each
        written as an intent before it is sent."""
        p = verdict.protect
        assert p is not None
        ids = self._take_ids(int(p.stop) + int(p.target))
        stop_id = ids[0] if p.stop else None
        target_id = ids[-1] if p.target else None
        group = p.oca_group or f"slob-{intent.setup_id}-r{ids[0]}"
        legs = repair_legs(intent, quantity=p.quantity, stop_id=stop_id, target_id=target_id, oca_group=group)
        intent = intent.with_legs(legs)
        self.intents[intent.setup_id] = intent
        await self._write_intent(intent, legs, state="open", now=now)
        contract = _ib_contract(intent.contract)
        for leg in legs:
            await self.fetcher.place_order(leg.order_id, contract, _ib_order(leg, intent.setup_id))
            self._mark_sent(leg.order_id, now)
            self.repairs_placed += 1
        log.warning("= setup %s: placed %s for a position of %g without them (ids %s)", intent.setup_id,
                    " and ".join(leg.role for leg in legs), p.quantity, [leg.order_id for leg in legs])
        return intent

    async def _await_commissions(self, exec_ids: set[str]) -> None:
        """Wait (bounded) until every execution read has its commission report: TWS sends
        them with the executions, but they arrive through ``on_order``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.commission_wait_seconds
        while any(e not in self._reports for e in exec_ids):
            left = deadline - loop.time()
            if left <= 0:
                missing = sorted(e for e in exec_ids if e not in self._reports)
                log.warning("! no commission report yet for %d execution(s): %s", len(missing), missing[:5])
                return
            self._commission_seen.clear()
            try:
                await asyncio.wait_for(self._commission_seen.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def _compute_differences(self, snapshot: TwsState, ours: set[str], boundary: int) -> None:
        if self.store is None:
            return
        store = self.store
        try:
            await store.aflush()
        except StoreError as exc:  # records rejected earlier (logged by the writer): not ours to fail on
            log.warning("! store: %s", exc)
        rows, fills = await asyncio.to_thread(lambda: (store.orders(), store.fills()))
        known = [KnownOrder(r.order_id, r.setup_id, r.status, r.quantity, r.con_id) for r in rows
                 if r.order_id < boundary]
        known_fills = [KnownFill(f.exec_id, f.order_id, f.quantity, f.price, f.commission, f.realized_pnl)
                       for f in fills]
        tws = dataclasses.replace(snapshot, commissions={e: self._reports[e] for e in ours if e in self._reports})
        self.store_differences = differences(known, known_fills, tws)
        for d in self.store_differences:
            log.warning("! store and TWS differ: %s", d)

    # -- ids and memory ----------------------------------------------------------------

    async def _load(self) -> None:
        """Once: the intents, statuses and order ids the store holds (a restart's memory)."""
        if self._loaded or self.store is None:
            self._loaded = True
            return
        store = self.store
        await store.aflush()
        rows, setups = await asyncio.to_thread(lambda: (store.orders(), store.setups()))
        self.intents.update(_intents_from_rows(rows, {s.id: s for s in setups}))
        for r in rows:
            self._status[r.order_id] = r.status
            self._next_id = max(self._next_id, r.order_id + 1)
            if r.setup_id:
                self._setup_of[r.order_id] = r.setup_id
                self.placed.add(r.setup_id)
        self.placed.update(s.id for s in setups if s.state in ("intent", "placed", "open", "closed", "cancelled",
                                                              "filled"))
        self._loaded = True
        if self.intents:
            log.info("= %d intent(s) from the store, next order id >= %d", len(self.intents), self._next_id)

    def _book(self, exec_id: str) -> None:
        """Realized P&L on its fill's trading day, once both the fill and its report are in."""
        fill, report = self._fills.get(exec_id), self._reports.get(exec_id)
        if fill is not None and report is not None and report.realized_pnl is not None:
            self.daily.book(exec_id, fill.time, report.realized_pnl)

    def _remember(self, order_id: int, order_ref: str) -> None:
        if order_ref:
            self.placed.add(order_ref)
            self._setup_of[order_id] = order_ref
        self._next_id = max(self._next_id, order_id + 1)

    def _reserve_boundary(self) -> int:
        """Ids from here on are placed after this reconciliation's snapshot."""
        self._next_id = max(self._next_id, self.fetcher.next_valid_id)
        return self._next_id

    def _take_ids(self, n: int) -> list[int]:
        first = max(self._next_id, self.fetcher.next_valid_id)
        self._next_id = first + n
        return list(range(first, first + n))

    def _session_key(self) -> int:
        """Changes when the fetcher's session does (a reconnect between two legs)."""
        return self.fetcher.session_number

    # -- placing -----------------------------------------------------------------------

    async def place(self, setup: TradePlan) -> BracketPlaced | SetupSkipped:
        """Place ``setup``'s bracket once: intent first, then the three legs. Raises
        LiveTradingRefused on a non-paper login, ConnectionLost if the connection goes
        between two legs (reconciliation then settles the bracket)."""
        placed: BracketPlaced | None = None
        async with self._lock:
            self.check_paper()
            await self._load()
            reason = self._refusal(setup)
            if not reason:
                placed = await self._place_bracket(setup)
        if placed is None:
            skipped = SetupSkipped(setup.setup_id, reason)
            log.info("= setup %s not placed: %s", setup.setup_id, reason)
            await self._emit(skipped)
            return skipped
        await self._emit(placed)
        return placed

    async def _place_bracket(self, setup: TradePlan) -> BracketPlaced:
        """Under the lock: the intent, then the legs in order."""
        details = self.fetcher.details_for(setup.symbol)
        if details is None:
            raise SlobError(f"no contract for {setup.symbol}: subscribe to it before trading it")
        contract: Contract = details.contract
        ref = OrderContract(int(contract.conId), str(contract.localSymbol), str(contract.symbol),
                            str(contract.exchange or "CME"), str(contract.currency or "USD"),
                            str(contract.secType or "FUT"))
        qty = self.risk.contracts
        parent_id, tp_id, sl_id = self._take_ids(3)
        intent = bracket(setup_id=setup.setup_id, symbol=setup.symbol, direction=setup.direction.value,
                         contract=ref, quantity=float(qty), stop=setup.stop, target=setup.target,
                         ids=(parent_id, tp_id, sl_id))
        now = self.clock()
        self.placed.add(setup.setup_id)
        self.intents[setup.setup_id] = intent
        await self._write_intent(intent, intent.legs, state="intent", now=now, entry=setup.entry)
        session = self._session_key()
        for n, leg in enumerate(intent.legs, 1):
            if self._session_key() != session:
                raise ConnectionLost(
                    f"bracket for {setup.setup_id}: the session changed after leg {n - 1} of 3; "
                    "its intent is stored and reconciliation cancels or protects it")
            try:
                await self.fetcher.place_order(leg.order_id, contract, _ib_order(leg, setup.setup_id))
            except SlobError as exc:
                raise ConnectionLost(
                    f"bracket for {setup.setup_id} cut before leg {n} of 3 ({exc}); its intent is stored "
                    "and reconciliation after the reconnect cancels or protects it") from exc
            self._mark_sent(leg.order_id, now)
        if self.store is not None:
            self.store.add(_setup_record(intent, "placed", now, entry=setup.entry))
        placed = BracketPlaced(setup.setup_id, contract.localSymbol, setup.direction.value, qty, parent_id, tp_id,
                               sl_id, setup.entry, setup.stop, setup.target, now)
        log.info("= placed bracket for %s: %s %d %s at market, stop %.2f target %.2f (ids %d/%d/%d)",
                 setup.setup_id, intent.entry_action, qty, contract.localSymbol, setup.stop, setup.target,
                 parent_id, tp_id, sl_id)
        return placed

    async def _write_intent(self, intent: Intent, legs: Iterable[Leg], *, state: str, now: dt.datetime,
                            entry: float | None = None) -> None:
        """Commit the setup and ``legs`` durably (fsync) before anything is sent."""
        legs = list(legs)
        for leg in legs:
            self._setup_of[leg.order_id] = intent.setup_id
            self._status[leg.order_id] = "Intent"
        if self.store is not None:
            await self.store.acommit(_setup_record(intent, state, now, entry=entry),
                                     *(_order_record(intent, leg, now) for leg in legs))

    def _mark_sent(self, order_id: int, now: dt.datetime) -> None:
        if self._status.get(order_id) == "Intent":
            self._status[order_id] = "Sent"
            if self.store is not None:
                self.store.add(OrderStatusRecord(order_id, "Sent", now))

    def _refusal(self, setup: TradePlan) -> str:
        if not self.reconciliations:
            return "not reconciled with TWS yet (start() or reconcile() first): what is at TWS is unknown"
        if setup.setup_id in self.placed:
            return "already placed (reconciled from TWS or the store)"
        today = self.daily.day(setup.at or self.clock())
        if today <= -self.risk.max_daily_loss:
            return f"daily loss limit reached (realized {today:.2f} USD on this trading day)"
        if abs(self.position) + self.risk.contracts > self.risk.max_position:
            return f"position {self.position:g} + {self.risk.contracts} would exceed max_position {self.risk.max_position}"
        return ""

    # -- what TWS reports --------------------------------------------------------------------

    async def on_order(self, record: object) -> None:
        """Order records from the fetcher (``IBWSFetcher.on_order``). Never takes the lock:
        a reconciliation waits for commission reports that come this way."""
        store = self.store
        if isinstance(record, OrderUpdate):
            self._status[record.order_id] = next_status(self._status.get(record.order_id, ""), record.status)
            if store is not None:
                store.add(OrderStatusRecord(record.order_id, record.status, self.clock(), perm_id=record.perm_id or None,
                                            filled=record.filled, avg_fill_price=record.avg_fill_price or None,
                                            parent_id=record.parent_id or None))
        elif isinstance(record, Execution):
            if record.exec_id not in self._fills:
                self._fills[record.exec_id] = record
                self.position += record.shares if record.side == "BOT" else -record.shares
                self._remember(record.order_id, record.order_ref)
                self._book(record.exec_id)
                if store is not None:
                    store.add(_fill_record(record, self._reports.get(record.exec_id)))
        elif isinstance(record, CommissionReported):
            if record.exec_id not in self._reports:
                self._reports[record.exec_id] = record
                self.commissions += record.commission
                if record.realized_pnl is not None:
                    self.realized_pnl += record.realized_pnl
                self._book(record.exec_id)
                fill = self._fills.get(record.exec_id)
                if fill is not None and store is not None:
                    store.add(_fill_record(fill, record))
                self._commission_seen.set()
        elif isinstance(record, OpenOrder):
            self._remember(record.order_id, record.order_ref)
            self._status[record.order_id] = next_status(self._status.get(record.order_id, ""), record.status)
            if store is not None and record.status:
                store.add(_status_from_open_order(record, self.clock()))
        elif isinstance(record, OrderError):
            if record.code == 202:  # cancelled: our own cancel, or OCA after the bracket's other exit filled
                log.info("= order %d%s cancelled by TWS (202 %s)", record.order_id,
                         f" of {self._setup_of[record.order_id]}" if record.order_id in self._setup_of else "",
                         record.text.strip())
            else:
                log.warning("! order %d: %d %s", record.order_id, record.code, record.text)
        await self._emit(record)

    async def _emit(self, event: object) -> None:
        if self._publish is not None:
            await self._publish(event)


# -- records and IB objects -------------------------------------------------------------------


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(_UTC)



def _ib_contract(c: OrderContract) -> Contract:
    contract = Contract()
    contract.conId, contract.symbol, contract.secType = c.con_id, c.symbol, c.sec_type
    contract.exchange, contract.currency, contract.localSymbol = c.exchange, c.currency, c.local_symbol
    return contract


def _ib_order(leg: Leg, ref: str) -> Order:
    order = Order()
    order.action, order.orderType = leg.action, leg.order_type
    order.totalQuantity = Decimal(int(leg.quantity)) if float(leg.quantity).is_integer() else Decimal(str(leg.quantity))
    order.orderRef, order.transmit, order.parentId, order.tif = ref, leg.transmit, leg.parent_id or 0, leg.tif
    if leg.limit_price is not None:
        order.lmtPrice = leg.limit_price
    if leg.stop_price is not None:
        order.auxPrice = leg.stop_price
    if leg.oca_group:
        order.ocaGroup, order.ocaType = leg.oca_group, 1
    return order


def _setup_record(intent: Intent, state: str, now: dt.datetime, *, entry: float | None = None) -> SetupRecord:
    c = intent.contract
    details: dict[str, Any] = {
        "stop": intent.stop, "target": intent.target, "quantity": intent.quantity,
        "bracket": [leg.order_id for leg in intent.legs if not leg.repair],
        "repairs": [leg.order_id for leg in intent.legs if leg.repair],
        "contract": {"con_id": c.con_id, "local_symbol": c.local_symbol, "symbol": c.symbol,
                     "exchange": c.exchange, "currency": c.currency, "sec_type": c.sec_type},
    }
    if entry is not None:
        details["entry"] = entry
    return SetupRecord(intent.setup_id, intent.symbol, intent.direction, state, now, now, details)


def _order_record(intent: Intent, leg: Leg, now: dt.datetime) -> OrderRecord:
    c = intent.contract
    return OrderRecord(
        leg.order_id, intent.setup_id, leg.action, leg.order_type, leg.quantity, "Intent", now, now,
        parent_id=leg.parent_id, limit_price=leg.limit_price, stop_price=leg.stop_price,
        details={"symbol": c.symbol, "exchange": c.exchange, "currency": c.currency, "sec_type": c.sec_type,
                 "repair": leg.repair},
        con_id=c.con_id, contract=c.local_symbol, role=leg.role, tif=leg.tif, oca_group=leg.oca_group,
        transmit=leg.transmit)


def _fill_record(e: Execution, report: CommissionReported | None) -> FillRecord:
    return FillRecord(e.exec_id, e.order_id, e.time, e.price, e.shares if e.side == "BOT" else -e.shares,
                      report.commission if report else None, report.realized_pnl if report else None)


def _status_from_open_order(o: OpenOrder, now: dt.datetime) -> OrderStatusRecord:
    return OrderStatusRecord(o.order_id, o.status, now, perm_id=o.perm_id or None, setup_id=o.order_ref or None,
                             action=o.action, order_type=o.order_type, quantity=o.quantity,
                             con_id=o.con_id or None, contract=o.contract or None, parent_id=o.parent_id or None)


def _status_from_execution(e: Execution) -> OrderStatusRecord:
    """An order the store does not hold, known from its execution only."""
    return OrderStatusRecord(e.order_id, "Filled", e.time, perm_id=e.perm_id or None, filled=e.cum_qty,
                             avg_fill_price=e.avg_price, setup_id=e.order_ref or None,
                             action="BUY" if e.side == "BOT" else "SELL", quantity=e.cum_qty,
                             con_id=e.con_id or None, contract=e.contract or None)


def _filled(order_id: int, fills: dict[str, Execution]) -> float | None:
    total = sum(e.shares for e in fills.values() if e.order_id == order_id)
    return total or None


def _intents_from_rows(rows: Iterable[OrderRecord], setups: dict[str, SetupRecord]) -> dict[str, Intent]:
    """Intents as the store holds them: a setup's order rows are its legs."""
    by_setup: dict[str, list[OrderRecord]] = defaultdict(list)
    for r in rows:
        if r.setup_id:
            by_setup[r.setup_id].append(r)
    out: dict[str, Intent] = {}
    for setup_id, legs_rows in by_setup.items():
        setup = setups.get(setup_id)
        legs = tuple(Leg(r.order_id, role_of(r.order_type, r.parent_id, r.role or ""), r.action, r.order_type,
                         r.quantity, r.limit_price, r.stop_price, r.parent_id, r.oca_group or "", r.tif or "DAY",
                         bool(r.transmit) if r.transmit is not None else True, bool(r.details.get("repair", False)))
                     for r in sorted(legs_rows, key=lambda r: r.order_id))
        legs = tuple(leg for leg in legs if leg.role)
        entry = next((leg for leg in legs if leg.role == ENTRY), None)
        if entry is None:
            continue  # not a bracket slob shaped
        first = legs_rows[0]
        info = dict(setup.details.get("contract", {})) if setup is not None else {}
        contract = OrderContract(int(info.get("con_id") or first.con_id or 0),
                                 str(info.get("local_symbol") or first.contract or ""),
                                 str(info.get("symbol") or first.details.get("symbol", "")),
                                 str(info.get("exchange") or first.details.get("exchange", "CME")),
                                 str(info.get("currency") or first.details.get("currency", "USD")),
                                 str(info.get("sec_type") or first.details.get("sec_type", "FUT")))
        stop = next((leg.stop_price for leg in legs if leg.stop_price is not None), None)
        target = next((leg.limit_price for leg in legs if leg.role != ENTRY and leg.limit_price is not None), None)
        direction = setup.direction if setup is not None else ("short" if entry.action == "SELL" else "long")
        symbol = setup.symbol if setup is not None else contract.symbol
        out[setup_id] = Intent(setup_id, symbol, direction, contract, entry.quantity,
                               float(stop if stop is not None else setup.details.get("stop", 0.0) if setup else 0.0),
                               float(target if target is not None else setup.details.get("target", 0.0) if setup else 0.0),
                               legs)
    return out
