"""The fake TWS's order book: orders, their matching against the simulated market,
executions and positions.

It belongs to the :class:`~slob.testing.fake_tws.FakeTWS`, not to a connection, so orders
outlive a client's socket and a TWS restart, as TWS keeps them; a client that comes back
with the same client id has its open orders replayed before MANAGED_ACCTS (the
api_reconnect_active_order capture). Everything here runs on the fake TWS's loop thread;
tests read :meth:`OrderBook.snapshot`, published under a lock after each change.

Behaviour (../shared/TWS-FACTS.md §8 and the captures in tests/data/captures):

* transmit=0 holds an order without a message; a bracket is transmitted by its last
  child's transmit=1: parent, then the children in id order, each OPEN_ORDER +
  ORDER_STATUS. Children wait with whyHeld ``child`` (``child,trigger`` for stops) in an
  OCA group named after the parent's permId (type 3) unless the client named one; they
  become Submitted when the parent fills.
* A market order is PreSubmitted, limit and stop orders Submitted. Each trade of the
  contract's family is checked against the working orders: BUY LMT fills at its limit
  when a trade prints at or below it, SELL LMT at or above; BUY STP triggers when a trade
  prints at or above the stop and fills at that trade's price, SELL STP at or below; a
  STP LMT becomes a limit order once triggered. A market order fills at the last trade
  while CME is open (else at the next trade); an order that is marketable when placed
  fills at the last trade's price.
* A fill sends EXECUTION_DATA (reqId -1), OPEN_ORDER + ORDER_STATUS Filled, the same pair
  again with the commission in the order state, then COMMISSION_REPORT -- the order of the
  MES and sv200 AAPL captures -- and POSITION_DATA to clients subscribed to positions.
  Then OCA siblings are cancelled (ORDER_STATUS Cancelled + error 202).
* Cancel: ORDER_STATUS Cancelled + 202; an unknown id gets 10147, a finished order 161;
  a parent's cancel takes its unfilled children along.
* Ids: the same id again modifies a working order; an id of a finished order, or below
  the highest the client has used, gets 103 "Duplicate order id".
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import threading
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable, Protocol, Sequence
from zoneinfo import ZoneInfo

from slob.testing import tws_messages as msg
from slob.testing import tws_order_messages as omsg
from slob.testing.fake_market import Market
from slob.testing.futures import FutureContract, is_cme_open
from slob.testing.order_records import (
    COMMISSION_PER_CONTRACT,
    SIMULATED_ORDER_TYPES,
    TERMINAL,
    UNTRANSMITTED,
    ExecutionRecord,
    OrderInfo,
    OrderRecord,
    PositionRecord,
)
from slob.testing.scenario import SimClock, Trade, from_ns
from slob.trace.tws_requests import Request

__all__ = ["EXEC_BASE", "IB_ORDER_TYPES", "OrderBook", "PERM_BASE", "activation_status", "exec_id", "order_from_request"]

#: Order types TWS accepts (the contract's ``orderTypes`` plus IB's spelled-out names);
#: anything else is rejected with 321 'bF' "Invalid order type was entered".
IB_ORDER_TYPES = frozenset({
    "MKT", "LMT", "STP", "STP LMT", "STPLMT", "MIT", "LIT", "TRAIL", "TRAIL LIMIT", "TRAILLMT",
    "TRAIL LIT", "TRAIL MIT", "MTL", "MOC", "LOC", "MKT PRT", "STP PRT", "REL", "PEG MKT",
    "PEG MID", "PEG BENCH", "SNAP MKT", "SNAP MID", "SNAP PRI", "BOX TOP", "VOL", "PASSV REL",
    "REL + LMT", "REL + MKT", "LMT + MKT", "MIDPRICE", "MKTPROT", "STPPROT",
})
_BAD_TYPE = "Error validating request.-'bF' : cause - Invalid order type was entered"
#: A real paper permId (TWS-FACTS §8); the fakes count on from it.
PERM_BASE = 1_351_823_369
#: The first execution sequence number (see :func:`exec_id`).
EXEC_BASE = 0xE1A7


def exec_id(seq: int, when: dt.datetime) -> str:
    """An execution id shaped like a paper account's (``0000e1a7.674dcbd4.01.01``)."""
    return f"{seq:08x}.{int(when.timestamp()):08x}.01.01"


def activation_status(o: OrderRecord, parent: OrderRecord | None) -> tuple[str, str]:
    """(status, whyHeld) of an order as it is transmitted: a child waits for its parent's
    fill (``child``; ``child,trigger`` for stops), a market order is PreSubmitted, the
    others Submitted."""
    if parent is not None and parent.status != "Filled":
        return "PreSubmitted", "child,trigger" if o.order_type in ("STP", "STP LMT") else "child"
    return ("PreSubmitted" if o.order_type == "MKT" else "Submitted"), ""


def order_from_request(req: Request, *, client_id: int, perm_id: int, account: str,
                       contract: FutureContract, order_type: str,
                       parent: OrderRecord | None) -> OrderRecord:
    """A new, untransmitted order from a PLACE_ORDER request: a child without an OCA group
    of its own joins one named after its parent's permId (type 3), as TWS does."""
    oca_group, oca_type = req.get("ocaGroup"), req.int("ocaType", 0)
    if parent is not None and not oca_group:
        oca_group, oca_type = str(parent.perm_id), 3
    return OrderRecord(
        order_id=req.int("orderId"), client_id=client_id, perm_id=perm_id,
        account=req.get("account") or account, contract=contract,
        action=req.get("action").upper(), quantity=_decimal(req.get("totalQuantity")),
        order_type=order_type, lmt_price=_price(req.get("lmtPrice")),
        aux_price=_price(req.get("auxPrice")), tif=req.get("tif") or "DAY",
        oca_group=oca_group, oca_type=oca_type or 3, order_ref=req.get("orderRef"),
        parent_id=req.int("parentId", 0), outside_rth=req.get("outsideRth") == "1",
        transmit=req.get("transmit", "1") != "0",
        parent_perm_id=parent.perm_id if parent is not None else 0,
    )


class OrderClient(Protocol):
    """What the book needs of a client connection (the FakeTWS session,
    :class:`slob.testing.fake_session.Session`, is one): given, not imported."""

    @property
    def server_version(self) -> int: ...

    @property
    def client_id(self) -> int | None: ...

    @property
    def state(self) -> str: ...

    @property
    def positions_subscribed(self) -> bool: ...

    def send(self, frame: bytes) -> None: ...

    def error(self, req_id: int, code: int, **values: object) -> None: ...

    def error_frame(self, req_id: int, code: int, **values: object) -> bytes: ...

    def resolve(self, req: Request, *, with_expired: bool = False) -> list[FutureContract]: ...


class BookHost(Protocol):
    """What the book needs of the server that owns it (:class:`slob.testing.fake_tws.FakeTWS`):
    its sessions, the market, the clock, the accounts and the next order id."""

    next_order_id: int

    @property
    def accounts(self) -> tuple[str, ...]: ...

    @property
    def time_zone(self) -> ZoneInfo: ...

    @property
    def clock(self) -> SimClock: ...

    @property
    def market(self) -> Market: ...

    def _notify(self) -> None: ...

    def _targets(self, client_id: int | None) -> Sequence[OrderClient]: ...


class OrderBook:
    """See the module docstring. ``tws`` supplies the sessions, the market and the clock."""

    def __init__(self, tws: BookHost) -> None:
        self.tws = tws
        self._orders: dict[tuple[int, int], OrderRecord] = {}
        self._max_id: dict[int, int] = {}
        self._executions: list[ExecutionRecord] = []
        self._positions: dict[tuple[str, int], PositionRecord] = {}
        self._perm_ids = itertools.count(PERM_BASE)
        self._exec_seq = itertools.count(EXEC_BASE)
        self._rejections: list[tuple[int, str]] = []
        self._outbox: list[tuple[OrderClient, bytes]] = []  # sent by _commit
        self._lock = threading.Lock()
        self._published: tuple[tuple[OrderInfo, ...], tuple[ExecutionRecord, ...],
                               tuple[PositionRecord, ...]] = ((), (), ())

    # -- observation (any thread) ---------------------------------------------------

    def snapshot(self) -> tuple[tuple[OrderInfo, ...], tuple[ExecutionRecord, ...],
                                tuple[PositionRecord, ...]]:
        with self._lock:
            return self._published

    def reject_next(self, code: int, text: str) -> None:
        with self._lock:
            self._rejections.append((code, text))

    def _commit(self) -> None:
        """End of an operation: publish the new state, then send what it caused -- so a
        test that has seen a message also sees the state behind it."""
        orders = tuple(o.snapshot() for o in sorted(self._orders.values(),
                                                    key=lambda o: (o.client_id, o.order_id)))
        with self._lock:
            self._published = (orders, tuple(self._executions), tuple(self._positions.values()))
        outbox, self._outbox = self._outbox, []
        for session, frame in outbox:
            session.send(frame)
        self.tws._notify()

    def wants_trades(self) -> bool:
        """Whether a working order waits for the market (keeps time running at speed inf)."""
        return any(o.live and not o.waiting_for_parent for o in self._orders.values())

    # -- sending --------------------------------------------------------------------

    def _sessions(self, client_id: int | None) -> list[OrderClient]:
        return [s for s in self.tws._targets(client_id) if s.state == "ready"]

    def _send(self, client_id: int, build: Callable[[int], bytes]) -> None:
        """Queue a message for the client's session (encoded now, for its server version)."""
        for s in self._sessions(client_id):
            self._outbox.append((s, build(s.server_version)))

    def _error(self, client_id: int, order_id: int, code: int, **values: object) -> None:
        for s in self._sessions(client_id):
            self._outbox.append((s, s.error_frame(order_id, code, **dict(values))))

    def _echo(self, o: OrderRecord) -> None:
        """OPEN_ORDER + ORDER_STATUS, as TWS sends on every change of a live order."""
        self._send(o.client_id, lambda sv: omsg.open_order(o, sv))
        self._send(o.client_id, lambda sv: omsg.order_status(o, sv))

    # -- requests (loop thread) -----------------------------------------------------

    def place(self, session: OrderClient, req: Request) -> None:
        try:
            self._place(session, req)
        finally:
            self._commit()

    def _place(self, session: OrderClient, req: Request) -> None:
        cid = session.client_id or 0
        oid = req.int("orderId")
        self.tws.next_order_id = max(self.tws.next_order_id, oid + 1)
        existing = self._orders.get((cid, oid))
        if (existing is not None and existing.status in TERMINAL) or (
                existing is None and oid <= self._max_id.get(cid, 0)):
            session.error(oid, 103)
            return
        self._max_id[cid] = max(self._max_id.get(cid, 0), oid)
        with self._lock:
            rejection = self._rejections.pop(0) if self._rejections else None
        if rejection is not None:
            session.error(oid, rejection[0], text=rejection[1])
            return
        contracts = [] if req.get("secType").upper() == "CONTFUT" else session.resolve(req)
        if len(contracts) != 1:
            session.error(oid, 200)
            return
        order_type = " ".join(req.get("orderType").upper().split())
        if order_type not in IB_ORDER_TYPES:
            session.error(oid, 321, text=_BAD_TYPE)
            return
        problem = _invalid(req, order_type)
        if problem:
            session.error(oid, 321, text=f"Error validating request.-'FK' : cause - {problem}")
            return
        if existing is not None:
            self._modify(session, existing, req, contracts[0], order_type)
            return
        order = self._new_order(session, req, oid, contracts[0], order_type)
        if order is None:
            return
        self._orders[(cid, oid)] = order
        if order.transmit:
            self._transmit_with_family(order)

    def _new_order(self, session: OrderClient, req: Request, oid: int, contract: FutureContract,
                   order_type: str) -> OrderRecord | None:
        cid = session.client_id or 0
        parent_id = req.int("parentId", 0)
        parent = self._orders.get((cid, parent_id)) if parent_id else None
        if parent_id and (parent is None or parent.status in ("Cancelled", "ApiCancelled", "Inactive")):
            session.error(oid, 10006, text="Missing parent order.")
            return None
        return order_from_request(req, client_id=cid, perm_id=next(self._perm_ids),
                                  account=self.tws.accounts[0], contract=contract,
                                  order_type=order_type, parent=parent)

    def _modify(self, session: OrderClient, o: OrderRecord, req: Request, contract: FutureContract,
                order_type: str) -> None:
        if contract.con_id != o.contract.con_id:
            session.error(o.order_id, 103)
            return
        if o.status != UNTRANSMITTED:
            o.revision += 1
        o.action = req.get("action").upper()
        o.quantity = _decimal(req.get("totalQuantity"))
        o.order_type = order_type
        o.lmt_price, o.aux_price = _price(req.get("lmtPrice")), _price(req.get("auxPrice"))
        o.tif = req.get("tif") or o.tif
        o.order_ref = req.get("orderRef")
        o.outside_rth = req.get("outsideRth") == "1"
        if req.get("ocaGroup"):
            o.oca_group, o.oca_type = req.get("ocaGroup"), req.int("ocaType", 0) or 3
        if o.status == UNTRANSMITTED:
            o.transmit = req.get("transmit", "1") != "0"
            if o.transmit:
                self._transmit_with_family(o)
            return
        self._echo(o)
        self._try_now(o)

    def _transmit_with_family(self, order: OrderRecord) -> None:
        """Transmit ``order``; a child transmits its held parent and held siblings too."""
        group = [order]
        parent = self._orders.get((order.client_id, order.parent_id)) if order.parent_id else None
        if parent is not None and parent.status == UNTRANSMITTED:
            siblings = [o for o in self._orders.values() if o.client_id == order.client_id
                        and o.parent_id == parent.order_id and o.status == UNTRANSMITTED]
            group = [parent] + sorted(siblings, key=lambda o: o.order_id)
        for o in group:
            o.transmit = True
            self._activate(o)
        for o in group:
            self._try_now(o)

    def _activate(self, o: OrderRecord) -> None:
        """Make a transmitted order live (a child waits for its parent's fill) and say so."""
        parent = self._orders.get((o.client_id, o.parent_id)) if o.parent_id else None
        o.status, o.why_held = activation_status(o, parent)
        self._echo(o)

    def cancel(self, session: OrderClient, order_id: int) -> None:
        cid = session.client_id or 0
        o = self._orders.get((cid, order_id))
        if o is None:
            session.error(order_id, 10147, text=f"OrderId {order_id} that needs to be cancelled is not found.")
        elif o.status in TERMINAL:
            session.error(order_id, 161, text=_not_cancellable(o))
        else:
            self._cancel(o)
        self._commit()

    def global_cancel(self, session: OrderClient) -> None:
        """Cancel every working order of every client; the asking client's filled orders
        of the day get 161, as the sv200 capture shows."""
        cid = session.client_id or 0
        for o in sorted(self._orders.values(), key=lambda o: (o.client_id, o.order_id)):
            if o.working:
                self._cancel(o)
            elif o.client_id == cid and o.status == "Filled":
                self._outbox.append((session, session.error_frame(o.order_id, 161, text=_not_cancellable(o))))
        self._commit()

    def _cancel(self, o: OrderRecord) -> None:
        """ORDER_STATUS Cancelled, then 202 (blank reason, as for a user's cancel); the
        order's unfilled children go with it."""
        if not o.working:
            return
        o.status, o.why_held = "Cancelled", ""
        self._send(o.client_id, lambda sv: omsg.order_status(o, sv))
        self._error(o.client_id, o.order_id, 202)
        for child in self._children(o):
            self._cancel(child)

    def _children(self, parent: OrderRecord) -> list[OrderRecord]:
        return sorted((o for o in self._orders.values() if o.client_id == parent.client_id
                       and o.parent_id == parent.order_id and o.working), key=lambda o: o.order_id)

    # -- open orders, executions, positions -----------------------------------------

    def live_orders(self, client_id: int | None) -> list[OrderRecord]:
        return sorted((o for o in self._orders.values() if o.live
                       and (client_id is None or o.client_id == client_id)),
                      key=lambda o: (o.client_id, o.order_id))

    def send_open_orders(self, session: OrderClient, *, everyone: bool = False) -> None:
        """OPEN_ORDER + ORDER_STATUS per live order of the client (``everyone``: of every
        client, for REQ_ALL_OPEN_ORDERS), then OPEN_ORDER_END; held and finished orders
        are not listed."""
        sv = session.server_version
        for o in self.live_orders(None if everyone else session.client_id):
            session.send(omsg.open_order(o, sv))
            session.send(omsg.order_status(o, sv))
        session.send(msg.open_order_end(sv))

    def replay_on_connect(self, session: OrderClient) -> None:
        """What TWS sends a (re)connecting client before MANAGED_ACCTS: its live orders
        and OPEN_ORDER_END -- nothing when it has none."""
        if self.live_orders(session.client_id):
            self.send_open_orders(session)

    def send_executions(self, session: OrderClient, req: Request) -> None:
        """The day's executions matching the request's filter: every EXECUTION_DATA, then
        every COMMISSION_REPORT, then EXECUTION_DATA_END (the order of the captures)."""
        sv, req_id = session.server_version, req.int("reqId")
        tz = self.tws.time_zone
        today = self.tws.clock.now().astimezone(tz).date()
        rows = [e for e in self._executions
                if e.time.astimezone(tz).date() == today and _matches(e, req)]
        for e in rows:
            session.send(omsg.execution_data(req_id, e, sv))
        for e in rows:
            session.send(omsg.commission_report(e, sv))
        session.send(msg.execution_data_end(req_id, sv))

    def send_positions(self, session: OrderClient) -> None:
        sv = session.server_version
        for p in self._positions.values():
            session.send(omsg.position_data(p, sv))
        session.send(msg.position_end(sv))

    # -- the market (loop thread) ---------------------------------------------------

    def _last_price(self, contract: FutureContract) -> float | None:
        """The contract's price at the last trade, None before the first trade or while
        CME is closed (a market order then waits for the next trade)."""
        market = self.tws.market
        trade = market.last.get(contract.spec.family)
        if trade is None or not is_cme_open(self.tws.clock.now()):
            return None
        return market.contract_price(contract, trade.price, trade.time_ns)

    def _try_now(self, o: OrderRecord) -> None:
        """Execute ``o`` at once if it is marketable against the last trade."""
        if not o.live or o.waiting_for_parent:
            return
        price = self._last_price(o.contract)
        if price is None:
            return
        fill = _match(o, price, resting=False)
        if fill is not None:
            self._fill(o, fill, self.tws.clock.now(), liquidity=2)

    def on_trade(self, family: str, trade: Trade) -> None:
        """Check every working order of ``family`` against one trade."""
        market = self.tws.market
        candidates = [o for o in self._orders.values()
                      if o.live and not o.waiting_for_parent and o.contract.spec.family == family]
        if not candidates:
            return
        when = from_ns(trade.time_ns)
        for o in sorted(candidates, key=lambda o: o.perm_id):
            if not o.live or o.waiting_for_parent:
                continue  # cancelled by an earlier fill's OCA group
            price = market.contract_price(o.contract, trade.price, trade.time_ns)
            resting = o.order_type == "LMT" or (o.order_type == "STP LMT" and o.triggered)
            fill = _match(o, price, resting=True)
            if fill is not None:
                self._fill(o, fill, when, liquidity=1 if resting else 2)
        self._commit()

    def _fill(self, o: OrderRecord, price: float, when: dt.datetime, *, liquidity: int) -> None:
        """Fill what remains of ``o`` at ``price``, in the captured message order; then
        cancel its OCA siblings and activate its children."""
        qty = o.remaining
        rate = COMMISSION_PER_CONTRACT.get(o.contract.spec.root, 2.25)
        commission = round(rate * float(qty), 6)
        realized = self._book_position(o, qty, price, commission)
        cum = o.filled + qty
        avg = (o.avg_fill_price * float(o.filled) + price * float(qty)) / float(cum)
        o.filled, o.avg_fill_price, o.last_fill_price = cum, avg, price
        o.status, o.why_held = "Filled", ""
        execution = ExecutionRecord(
            exec_id=exec_id(next(self._exec_seq), when),
            order_id=o.order_id, client_id=o.client_id, perm_id=o.perm_id, account=o.account,
            contract=o.contract, side="BOT" if o.action == "BUY" else "SLD", shares=qty,
            price=price, time=when, cum_qty=cum, avg_price=avg, order_ref=o.order_ref,
            commission=commission, realized_pnl=realized, last_liquidity=liquidity,
        )
        o.fills.append(execution)
        self._executions.append(execution)
        self._send(o.client_id, lambda sv: omsg.execution_data(-1, execution, sv))
        self._echo(o)  # Filled, commission not yet known
        o.commission = (o.commission or 0.0) + commission
        self._echo(o)  # Filled, with the commission
        self._send(o.client_id, lambda sv: omsg.commission_report(execution, sv))
        position = self._positions[(o.account, o.contract.con_id)]
        for s in self._sessions(None):
            if s.positions_subscribed:
                self._outbox.append((s, omsg.position_data(position, s.server_version)))
        if o.oca_group:
            for other in sorted(self._orders.values(), key=lambda x: x.order_id):
                if other is not o and other.oca_group == o.oca_group and other.account == o.account:
                    self._cancel(other)
        for child in self._children(o):
            self._activate(child)
        for child in self._children(o):
            self._try_now(child)

    def _book_position(self, o: OrderRecord, qty: Decimal, price: float, commission: float) -> float | None:
        """Apply a fill to the account's position and return the realized P&L of its
        closing part, None if it only opens. IB keeps the opening commission in the cost
        basis (a long's avgCost is price x multiplier + commission per contract, a short's
        minus it), so a round trip realizes the price difference less both commissions."""
        key = (o.account, o.contract.con_id)
        p = self._positions.get(key) or PositionRecord(o.account, o.contract, Decimal(0), 0.0)
        signed = qty if o.action == "BUY" else -qty
        fee = commission / float(qty)
        value = price * p.multiplier  # per contract
        held = abs(p.quantity)
        closing = min(held, qty) if p.quantity and (p.quantity > 0) != (signed > 0) else Decimal(0)
        opening = qty - closing
        realized: float | None = None
        if closing:
            direction = 1.0 if p.quantity > 0 else -1.0
            realized = round((direction * (value - p.avg_cost) - fee) * float(closing), 6)
        new_qty = p.quantity + signed
        if new_qty == 0:
            avg_cost = 0.0
        elif opening:  # adds to the position or reverses it
            unit = value + fee if signed > 0 else value - fee
            kept = held - closing
            avg_cost = (p.avg_cost * float(kept) + unit * float(opening)) / float(kept + opening)
        else:
            avg_cost = p.avg_cost
        self._positions[key] = replace(p, quantity=new_qty, avg_cost=avg_cost)
        return realized


# ---------------------------------------------------------------------------
# Pure helpers


def _match(o: OrderRecord, price: float, *, resting: bool) -> float | None:
    """The fill price of ``o`` against a trade at ``price``, or None. A resting limit
    fills at its limit; anything marketable when checked at placement, at the price."""
    buy = o.action == "BUY"
    if o.order_type in ("STP", "STP LMT") and not o.triggered:
        stop = o.aux_price if o.aux_price is not None else math.nan
        if not (price >= stop if buy else price <= stop):
            return None
        if o.order_type == "STP":
            return price
        o.triggered, resting = True, False
    if o.order_type == "MKT":
        return price
    limit = o.lmt_price if o.lmt_price is not None else math.nan
    if buy and price <= limit or not buy and price >= limit:
        return limit if resting else price
    return None


def _invalid(req: Request, order_type: str) -> str:
    """Why an order cannot be simulated ("" when it can)."""
    if order_type not in SIMULATED_ORDER_TYPES:
        return f"this FakeTWS does not simulate {order_type} orders"
    if req.get("action").upper() not in ("BUY", "SELL"):
        return f"Invalid action {req.get('action')!r}"
    try:
        qty = _decimal(req.get("totalQuantity"))
    except ValueError:
        return f"Invalid total quantity {req.get('totalQuantity')!r}"
    if qty <= 0:
        return "The order size must be positive"
    if order_type in ("LMT", "STP LMT") and _price(req.get("lmtPrice")) is None:
        return "The limit price is missing"
    if order_type in ("STP", "STP LMT") and _price(req.get("auxPrice")) is None:
        return "The stop price is missing"
    return ""


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def _price(text: str) -> float | None:
    """A price field: empty or IB's unset double mean none."""
    if not text:
        return None
    value = float(text)
    return None if value >= 1e308 or math.isnan(value) else value


def _not_cancellable(o: OrderRecord) -> str:
    return f"Cancel attempted when order is not in a cancellable state.  Order permId ={o.perm_id}"


def _matches(e: ExecutionRecord, req: Request) -> bool:
    """The REQ_EXECUTIONS filter: clientId (0 = any), account, symbol, secType, exchange, side."""
    client_id = req.int("clientId", 0)
    side = {"BUY": "BOT", "SELL": "SLD"}.get(req.get("side").upper(), req.get("side").upper())
    checks: Iterable[tuple[str, str]] = (
        (req.get("account"), e.account),
        (req.get("symbol").upper(), e.contract.spec.root),
        (req.get("secType").upper(), "FUT"),
        (req.get("exchange").upper(), e.contract.spec.exchange),
        (side, e.side),
    )
    return (client_id in (0, e.client_id)) and all(not want or want == have for want, have in checks)
