"""Reconciliation, the pure part: what to do with each intent given what TWS reports, and
where the store and TWS disagree.

TWS's side (:class:`TwsState`) is what three requests return: ``reqOpenOrders`` (working
orders of this client; held and finished ones are not listed), ``reqExecutions`` (today's
fills, with their commission reports) and ``reqPositions``. Orders are matched to intents
by order id; every leg carries the setup id as ``orderRef``.

The decision table (:func:`decide`), per intent, with ``F`` the entry's filled quantity
and ``open = F - exits filled``:

=====================  ================================  =====================================
case                   TWS shows                         verdict
=====================  ================================  =====================================
not entered, working   entry working, a stop working     ``placed``: leave it
not entered, unsafe    entry working, no stop working    ``cancelled``: cancel every leg
never transmitted      entry not working, ``F == 0``     ``cancelled``: cancel every leg that
                                                         is not known finished (held or lost)
position open          ``open > 0``                      ``open``: a working stop and target
                                                         are kept; a missing one is placed
                                                         (:class:`Protect`), in the OCA group
                                                         of the exit still working
closed                 ``F > 0`` or an exit filled,      ``closed``: cancel what still works
                       ``open <= 0``                     (more exits than entries: reported)
=====================  ================================  =====================================

Why cancel rather than complete a cut bracket: the strategy's entry is the open of the
candle after the trigger; once a reconnect or a restart has passed, a market entry would
be a different trade at a different price, with the stop and target of the old one. A
position, on the other hand, is never left without its stop. The entry is never sent
again: a setup with an intent is placed once, whatever happens.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from slob.execution.intents import ENTRY, EXIT_ROLES, STOP, TAKE_PROFIT, Intent, Leg
from slob.orders import CommissionReported, Execution, OpenOrder, PositionReported

__all__ = ["CANCELLED", "CLOSED", "Difference", "KnownFill", "KnownOrder", "OPEN", "PLACED", "Protect",
           "TERMINAL", "TwsState", "UNCONFIRMED", "Verdict", "decide", "differences", "next_status"]

#: IB's final statuses (TWS-FACTS §8).
TERMINAL = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
#: slob's own statuses before TWS has said anything: written, handed to the socket.
UNCONFIRMED = frozenset({"Intent", "Sent"})
PLACED, OPEN, CLOSED, CANCELLED = "placed", "open", "closed", "cancelled"
_EPS = 1e-9


def next_status(old: str, new: str) -> str:
    """An order's status after ``new`` is reported over ``old``: a final status stays
    (only Filled may replace another final one), and slob's own Intent/Sent never replace
    a status TWS gave. Late or duplicate reports cannot move an order backwards. The store
    applies the same rule in SQL."""
    if old == "Filled" or (old in TERMINAL and new != "Filled"):
        return old
    if new in UNCONFIRMED and old and old not in UNCONFIRMED:
        return old
    return new or old


@dataclass(frozen=True, slots=True)
class TwsState:
    """What TWS reported at one reconciliation."""

    open_orders: tuple[OpenOrder, ...] = ()
    executions: tuple[Execution, ...] = ()
    commissions: Mapping[str, CommissionReported] = field(default_factory=dict)  # by exec id
    positions: tuple[PositionReported, ...] = ()

    def open_by_id(self) -> dict[int, OpenOrder]:
        return {o.order_id: o for o in self.open_orders if o.status not in TERMINAL}

    def unique_executions(self) -> list[Execution]:
        seen: dict[str, Execution] = {}
        for e in self.executions:
            seen.setdefault(e.exec_id, e)
        return list(seen.values())

    def filled_by_order(self) -> dict[int, float]:
        filled: dict[int, float] = defaultdict(float)
        for e in self.unique_executions():
            filled[e.order_id] += e.shares
        return dict(filled)


@dataclass(frozen=True, slots=True)
class Protect:
    """Place exits for ``quantity`` contracts: a stop and/or a target, in ``oca_group``
    (``""``: a new group)."""

    quantity: float
    stop: bool
    target: bool
    oca_group: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What reconciliation does with one intent.

    ``cancel``: order ids to cancel (working legs, and legs that may be held at TWS or never
    arrived -- a cancel is harmless for those: 161 or 10147). ``statuses``: each leg's status
    once the cancels and the repair are through, for the store."""

    setup_id: str
    state: str  # PLACED | OPEN | CLOSED | CANCELLED
    cancel: tuple[int, ...]
    protect: Protect | None
    statuses: Mapping[int, str]
    reason: str

    @property
    def acts(self) -> bool:
        return bool(self.cancel) or self.protect is not None


def decide(intent: Intent, stored: Mapping[int, str], tws: TwsState) -> Verdict:
    """The decision table of the module docstring for one intent. ``stored`` maps the
    intent's order ids to the status the store holds (missing: unknown)."""
    open_orders = tws.open_by_id()
    filled = tws.filled_by_order()

    def working(leg: Leg) -> bool:
        return leg.order_id in open_orders

    def done(leg: Leg) -> bool:
        return filled.get(leg.order_id, 0.0) >= leg.quantity - _EPS

    def unresolved(leg: Leg) -> bool:
        """Not working, not filled, not known final: held at TWS, lost, or finished
        while slob was away. A cancel settles all three."""
        return not working(leg) and not done(leg) and stored.get(leg.order_id, "") not in TERMINAL

    entries = intent.legs_of(ENTRY)
    exits = intent.legs_of(*EXIT_ROLES)
    entered = sum(filled.get(leg.order_id, 0.0) for leg in entries)
    exited = sum(filled.get(leg.order_id, 0.0) for leg in exits)
    position = entered - exited
    stops = [leg for leg in intent.legs_of(STOP) if working(leg)]
    targets = [leg for leg in intent.legs_of(TAKE_PROFIT) if working(leg)]
    cancel: list[Leg] = [leg for leg in intent.legs if unresolved(leg)]
    protect: Protect | None = None

    if position > _EPS:
        state = OPEN
        if stops and targets:
            reason = "position open, stop and target working"
        else:
            group = next((open_orders[leg.order_id].oca_group for leg in stops + targets
                          if open_orders[leg.order_id].oca_group), "")
            protect = Protect(position, stop=not stops, target=not targets, oca_group=group)
            missing = " and ".join(n for n, gone in (("stop", not stops), ("target", not targets)) if gone)
            reason = f"position of {position:g} open without its {missing}: placing it"
    elif entered > _EPS or exited > _EPS:
        state = CLOSED
        cancel += [leg for leg in intent.legs if working(leg)]
        reason = "position closed" if position > -_EPS else f"exits filled {exited:g} > entry {entered:g}"
    elif any(working(leg) for leg in entries) and stops:
        state = PLACED
        reason = "bracket working, entry not filled yet"
    else:
        state = CANCELLED
        cancel += [leg for leg in intent.legs if working(leg)]
        reason = ("entry working without a working stop: cancelled" if any(working(leg) for leg in entries)
                  else "bracket never transmitted (cut before its last leg, or finished unfilled): cancelled")

    cancelled = {leg.order_id for leg in cancel}
    statuses: dict[int, str] = {}
    for leg in intent.legs:
        if done(leg):
            statuses[leg.order_id] = "Filled"
        elif leg.order_id in cancelled:
            statuses[leg.order_id] = "Cancelled"
        elif working(leg):
            statuses[leg.order_id] = open_orders[leg.order_id].status
        else:
            statuses[leg.order_id] = stored.get(leg.order_id, "Cancelled")
    return Verdict(intent.setup_id, state, tuple(sorted(cancelled)), protect, statuses, reason)


# -- store versus TWS ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KnownOrder:
    """An order as the store holds it."""

    order_id: int
    setup_id: str | None
    status: str
    quantity: float
    con_id: int | None


@dataclass(frozen=True, slots=True)
class KnownFill:
    """A fill as the store holds it (``quantity`` signed: bought > 0)."""

    exec_id: str
    order_id: int
    quantity: float
    price: float
    commission: float | None
    realized_pnl: float | None


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the store and TWS disagree."""

    kind: str  # order missing | order status | order not open at TWS | fill missing | fill differs
    #           | commission | position
    key: str  # the order id, exec id or conId concerned
    store: str
    tws: str

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: store {self.store}, TWS {self.tws}"


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def differences(orders: Sequence[KnownOrder], fills: Sequence[KnownFill], tws: TwsState) -> tuple[Difference, ...]:
    """Where the store (``orders``, ``fills``) and TWS disagree: working orders, today's
    executions and their commissions, positions. Orders the store holds as finished are not
    compared with TWS's open orders (TWS lists working orders only), and fills of earlier
    days are not compared with TWS's executions (it lists today's only); they do count in
    the position."""
    out: list[Difference] = []
    stored = {o.order_id: o for o in orders}
    open_orders = tws.open_by_id()
    for oid, o in sorted(open_orders.items()):
        row = stored.get(oid)
        if row is None:
            out.append(Difference("order missing", str(oid), "none", f"{o.status} ({o.order_ref or 'no ref'})"))
        elif row.status in TERMINAL or row.status in UNCONFIRMED or not row.status:
            out.append(Difference("order status", str(oid), row.status or "none", o.status))
    for oid, row in sorted(stored.items()):
        if oid not in open_orders and row.status not in TERMINAL:
            out.append(Difference("order not open at TWS", str(oid), row.status, "not working"))
    by_exec = {f.exec_id: f for f in fills}
    for e in tws.unique_executions():
        fill = by_exec.get(e.exec_id)
        if e.order_id not in stored:
            out.append(Difference("order missing", str(e.order_id), "none", f"filled ({e.exec_id})"))
        signed = e.shares if e.side == "BOT" else -e.shares
        if fill is None:
            out.append(Difference("fill missing", e.exec_id, "none", f"{signed:g} @ {e.price:g}"))
            continue
        if fill.order_id != e.order_id or not _same(fill.quantity, signed) or not _same(fill.price, e.price):
            out.append(Difference("fill differs", e.exec_id, f"{fill.quantity:g} @ {fill.price:g} order {fill.order_id}",
                                  f"{signed:g} @ {e.price:g} order {e.order_id}"))
        report = tws.commissions.get(e.exec_id)
        if report is not None and not (_same(fill.commission, report.commission)
                                       and _same(fill.realized_pnl, report.realized_pnl)):
            out.append(Difference("commission", e.exec_id, f"{fill.commission} / pnl {fill.realized_pnl}",
                                  f"{report.commission} / pnl {report.realized_pnl}"))
    out += _position_differences(orders, fills, tws.positions)
    return tuple(out)


def _position_differences(orders: Iterable[KnownOrder], fills: Iterable[KnownFill],
                          positions: Iterable[PositionReported]) -> list[Difference]:
    con_of = {o.order_id: o.con_id or 0 for o in orders}
    held: dict[int, float] = defaultdict(float)
    for f in fills:
        held[con_of.get(f.order_id, 0)] += f.quantity
    at_tws: dict[int, float] = defaultdict(float)
    for p in positions:
        at_tws[p.con_id] += p.position
    out = []
    for con_id in sorted(set(held) | set(at_tws)):
        mine, theirs = held.get(con_id, 0.0), at_tws.get(con_id, 0.0)
        if not _same(mine, theirs):
            key = str(con_id) if con_id else "fills of unknown orders"
            out.append(Difference("position", key, f"{mine:g}", f"{theirs:g}"))
    return out
