"""OrderExecutor: a triggered setup becomes one bracket order on the paper account.

The engine places the bracket when the setup's trigger candle closes (state TRIGGERED):
the next candle opens at that moment, so the market entry fills at the strategy's "entry
at the next candle's open"; stop and target are already fixed. The tracker's later READY
(or a risk-reward invalidation at the real entry) does not change a bracket in place:
its stop and target manage the trade at TWS.

Bracket (../shared/DESIGN.md §5, TWS-FACTS §8): the parent entry (market, transmit=False),
a take-profit limit and a stop child, both with ``parentId`` and one OCA group; the last
child is sent with transmit=True, which transmits all three. ``orderRef`` carries the
setup id on every leg, so after a reconnect or a process restart reconciliation (open
orders, today's executions, positions -- and the store, if one is given) knows which
setups already have orders: a setup is never placed twice.

Order ids come from TWS's ``nextValidId`` and are never reused; after a reconnect the next
id is the larger of the new ``nextValidId`` and the next one this executor would use.
Risk: ``contracts`` per trade, ``max_position`` contracts open at most, and no new entry
once today's realized P&L (from commission reports) is below ``-max_daily_loss``.

Paper only unless explicitly allowed: the fetcher's config already refuses live ports and
non-paper accounts; the executor also refuses to start when the login manages an account
that is not a paper account (``D…``) unless ``allow_live=True``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ibapi.contract import Contract
from ibapi.order import Order

from slob.ib.errors import ConfigError, LiveTradingRefused, SlobError
from slob.live.ib_ws_fetcher import IBWSFetcher
from slob.live.setup_tracker import Direction, SetupChanged, SetupReady
from slob.live.store import Store
from slob.orders import CommissionReported, Execution, OpenOrder, OrderError, OrderUpdate

__all__ = ["BracketPlaced", "OrderExecutor", "RiskConfig", "SetupSkipped", "TradePlan"]

log = logging.getLogger("slob.live.orders")
_UTC = dt.timezone.utc
Publish = Callable[[object], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    contracts: int = 1  # per bracket
    max_position: int = 1  # contracts open at most (absolute, per symbol)
    max_daily_loss: float = 1_000.0  # USD of realized loss today that stops new entries

    def __post_init__(self) -> None:
        if self.contracts < 1:
            raise ConfigError("contracts must be >= 1")
        if self.max_position < self.contracts:
            raise ConfigError("max_position must be >= contracts")
        if self.max_daily_loss <= 0:
            raise ConfigError("max_daily_loss must be positive (USD)")


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

    @classmethod
    def of(cls, setup: SetupChanged | SetupReady) -> "TradePlan":
        if setup.stop is None or setup.target is None:
            raise SlobError(f"setup {setup.setup_id} has no stop/target yet ({setup!r})")
        return cls(setup.setup_id, setup.symbol, setup.direction, setup.stop, setup.target, setup.entry)


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
    def __init__(
        self,
        fetcher: IBWSFetcher,
        *,
        risk: RiskConfig | None = None,
        publish: Publish | None = None,
        store: Store | None = None,
        allow_live: bool = False,
    ) -> None:
        self.fetcher = fetcher
        self.risk = risk or RiskConfig()
        self._publish = publish
        self.store = store
        self.allow_live = allow_live
        self.placed: set[str] = set()  # setup ids with orders at TWS or in the store
        self.position: float = 0.0  # contracts, signed
        self.realized_pnl: float = 0.0  # today, from commission reports
        self.commissions: float = 0.0
        self._next_id = 0
        self._orders: dict[int, str] = {}  # order id -> setup id
        self._legs: dict[int, Order] = {}  # order id -> what was sent (kept in the store's rows)
        self._fills: dict[str, Execution] = {}  # exec id -> execution (commission comes apart)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Check the account is paper, then reconcile with TWS (and the store)."""
        live = [a for a in self.fetcher.accounts if not a.upper().startswith("D")]
        if live and not self.allow_live:
            raise LiveTradingRefused(
                f"this login manages non-paper account(s) {', '.join(live)}; slob places orders on paper "
                "accounts only unless live trading is explicitly enabled (allow_live=True / --live)"
            )
        await self.reconcile()

    async def reconcile(self) -> None:
        """Rebuild state from TWS: open orders and today's executions (their orderRef is the
        setup id), positions; plus setups the store recorded; refresh the order id."""
        open_orders = await self.fetcher.open_orders()
        executions = await self.fetcher.executions()
        positions = await self.fetcher.positions()
        for o in open_orders:
            self._remember(o.order_id, o.order_ref)
        for e in executions:
            self._remember(e.order_id, e.order_ref)
            self._fills.setdefault(e.exec_id, e)
        if self.store is not None:
            self.store.flush()
            self.placed.update(s.id for s in self.store.setups() if s.state in ("placed", "filled", "closed"))
        self.position = sum(p.position for p in positions)
        self._next_id = max(self._next_id, self.fetcher.next_valid_id)
        log.info("= reconciled: %d open orders, %d executions, position %g, %d setups placed",
                 len(open_orders), len(executions), self.position, len(self.placed))

    def _remember(self, order_id: int, order_ref: str) -> None:
        if order_ref:
            self.placed.add(order_ref)
            self._orders[order_id] = order_ref
        self._next_id = max(self._next_id, order_id + 1)

    def _take_ids(self, n: int) -> list[int]:
        first = max(self._next_id, self.fetcher.next_valid_id)
        self._next_id = first + n
        return list(range(first, first + n))

    # -- placing -----------------------------------------------------------------------

    async def place(self, setup: TradePlan) -> BracketPlaced | SetupSkipped:
        reason = self._refusal(setup)
        if reason:
            skipped = SetupSkipped(setup.setup_id, reason)
            log.info("= setup %s not placed: %s", setup.setup_id, reason)
            await self._emit(skipped)
            return skipped
        details = self.fetcher.details_for(setup.symbol)
        if details is None:
            raise SlobError(f"no contract for {setup.symbol}: subscribe to it before trading it")
        contract: Contract = details.contract
        qty = self.risk.contracts
        parent_id, tp_id, sl_id = self._take_ids(3)
        entry_side, exit_side = ("SELL", "BUY") if setup.direction is Direction.SHORT else ("BUY", "SELL")
        oca = f"slob-{setup.setup_id}"
        legs = [
            (parent_id, _order(entry_side, qty, "MKT", ref=setup.setup_id, transmit=False)),
            (tp_id, _order(exit_side, qty, "LMT", ref=setup.setup_id, limit=setup.target, parent=parent_id,
                           oca=oca, transmit=False)),
            (sl_id, _order(exit_side, qty, "STP", ref=setup.setup_id, stop=setup.stop, parent=parent_id,
                           oca=oca, transmit=True)),
        ]
        self.placed.add(setup.setup_id)
        now = dt.datetime.now(_UTC)
        for order_id, order in legs:
            self._orders[order_id] = setup.setup_id
            self._legs[order_id] = order
            await self.fetcher.place_order(order_id, contract, order)
            if self.store is not None:
                self.store.add_order(order_id=order_id, setup_id=setup.setup_id, action=order.action,
                                     order_type=order.orderType, quantity=qty, status="Sent", created=now,
                                     updated=now, parent_id=order.parentId or None,
                                     limit_price=setup.target if order.orderType == "LMT" else None,
                                     stop_price=setup.stop if order.orderType == "STP" else None)
        placed = BracketPlaced(setup.setup_id, contract.localSymbol, setup.direction.value, qty, parent_id, tp_id,
                               sl_id, setup.entry, setup.stop, setup.target, now)
        if self.store is not None:
            self.store.add_setup(id=setup.setup_id, symbol=setup.symbol, direction=setup.direction.value,
                                 state="placed", created=now, updated=now,
                                 details={**_jsonable(setup), "bracket": [parent_id, tp_id, sl_id]})
        log.info("= placed bracket for %s: %s %d %s at market, stop %.2f target %.2f (ids %d/%d/%d)",
                 setup.setup_id, entry_side, qty, contract.localSymbol, setup.stop, setup.target,
                 parent_id, tp_id, sl_id)
        await self._emit(placed)
        return placed

    def _refusal(self, setup: TradePlan) -> str:
        if setup.setup_id in self.placed:
            return "already placed (reconciled from TWS or the store)"
        if self.realized_pnl <= -self.risk.max_daily_loss:
            return f"daily loss limit reached (realized {self.realized_pnl:.2f} USD)"
        if abs(self.position) + self.risk.contracts > self.risk.max_position:
            return f"position {self.position:g} + {self.risk.contracts} would exceed max_position {self.risk.max_position}"
        return ""

    # -- what TWS reports --------------------------------------------------------------------

    async def on_order(self, record: object) -> None:
        """Order records from the fetcher (``IBWSFetcher.on_order``)."""
        if isinstance(record, OrderUpdate):
            self._store_status(record)
        elif isinstance(record, Execution):
            if record.exec_id not in self._fills:
                self._fills[record.exec_id] = record
                self.position += record.shares if record.side == "BOT" else -record.shares
                self._store_fill(record, None)
        elif isinstance(record, CommissionReported):
            self.commissions += record.commission
            if record.realized_pnl is not None:
                self.realized_pnl += record.realized_pnl
            fill = self._fills.get(record.exec_id)
            if fill is not None:
                self._store_fill(fill, record)
        elif isinstance(record, OpenOrder):
            self._remember(record.order_id, record.order_ref)
        elif isinstance(record, OrderError):
            log.warning("! order %d: %d %s", record.order_id, record.code, record.text)
        await self._emit(record)

    def _store_status(self, update: OrderUpdate) -> None:
        if self.store is None:
            return
        setup_id = self._orders.get(update.order_id)
        leg = self._legs.get(update.order_id)
        now = update.at
        self.store.add_order(order_id=update.order_id, setup_id=setup_id, action=leg.action if leg else "",
                             order_type=leg.orderType if leg else "",
                             quantity=update.filled + update.remaining, status=update.status, created=now,
                             updated=now, perm_id=update.perm_id or None, parent_id=update.parent_id or None)

    def _store_fill(self, fill: Execution, commission: CommissionReported | None) -> None:
        if self.store is None:
            return
        self.store.add_fill(exec_id=fill.exec_id, order_id=fill.order_id, time=fill.time, price=fill.price,
                            quantity=fill.shares if fill.side == "BOT" else -fill.shares,
                            commission=commission.commission if commission else None,
                            realized_pnl=commission.realized_pnl if commission else None)

    async def _emit(self, event: object) -> None:
        if self._publish is not None:
            await self._publish(event)


def _order(action: str, qty: int, kind: str, *, ref: str, transmit: bool, limit: float | None = None,
           stop: float | None = None, parent: int = 0, oca: str = "") -> Order:
    order = Order()
    order.action, order.totalQuantity, order.orderType = action, qty, kind
    order.orderRef, order.transmit, order.parentId = ref, transmit, parent
    order.tif = "GTC" if parent else "DAY"
    if limit is not None:
        order.lmtPrice = limit
    if stop is not None:
        order.auxPrice = stop
    if oca:
        order.ocaGroup, order.ocaType = oca, 1
    return order


def _jsonable(setup: TradePlan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(setup):
        value = getattr(setup, f.name)
        out[f.name] = value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else (
            value.value if isinstance(value, Direction) else value)
    return out
