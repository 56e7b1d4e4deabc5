"""A bracket's intent: what slob means to place, written down before any leg is sent.

Why an intent: placing a bracket takes three ``placeOrder`` calls, and the connection or
the process can die between any two of them. TWS holds a leg sent with transmit=0 without
a word and ``reqOpenOrders`` does not list it (../shared/TWS-FACTS.md §8), so TWS alone
cannot tell a restarted slob what was half-sent. The intent -- the setup, its order ids and
every leg as it will be sent -- is committed to the store first; reconciliation
(:mod:`slob.execution.reconcile`) compares it with TWS by ``orderRef`` (the setup id).

Legs added later by reconciliation to protect a position (a stop, a target) are legs of the
same intent, with ``repair=True``: one setup, one ``orderRef``, however many orders it took.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from slob.ib.errors import SlobError

__all__ = ["ENTRY", "EXIT_ROLES", "OrderContract", "Intent", "Leg", "STOP", "TAKE_PROFIT", "bracket",
           "repair_legs", "role_of"]

ENTRY, TAKE_PROFIT, STOP = "entry", "take_profit", "stop"
EXIT_ROLES = (TAKE_PROFIT, STOP)
_ROLE_OF_TYPE = {"MKT": ENTRY, "LMT": TAKE_PROFIT, "STP": STOP}


def role_of(order_type: str, parent_id: int | None, stored: str = "") -> str:
    """A leg's role: as stored, else from its type (slob's brackets use MKT entries, LMT
    targets and STP stops), else ``""`` for an order slob did not shape."""
    if stored in (ENTRY, TAKE_PROFIT, STOP):
        return stored
    return _ROLE_OF_TYPE.get(order_type.upper(), "")


@dataclass(frozen=True, slots=True)
class OrderContract:
    """The contract every leg is sent for: enough for TWS to resolve it again after a
    restart (``conId`` alone identifies it; the rest makes the order readable)."""

    con_id: int
    local_symbol: str
    symbol: str
    exchange: str = "CME"
    currency: str = "USD"
    sec_type: str = "FUT"


@dataclass(frozen=True, slots=True)
class Leg:
    """One order of an intent, exactly as it is sent."""

    order_id: int
    role: str  # ENTRY | TAKE_PROFIT | STOP
    action: str  # BUY | SELL
    order_type: str  # MKT | LMT | STP
    quantity: float
    limit_price: float | None = None
    stop_price: float | None = None
    parent_id: int | None = None
    oca_group: str = ""
    tif: str = "DAY"
    transmit: bool = True
    repair: bool = False  # added by reconciliation to protect a position


@dataclass(frozen=True, slots=True)
class Intent:
    """A setup's orders: the bracket, and any repair legs reconciliation added."""

    setup_id: str
    symbol: str
    direction: str  # "long" | "short"
    contract: OrderContract
    quantity: float
    stop: float
    target: float
    legs: tuple[Leg, ...]

    @property
    def entry_action(self) -> str:
        return "SELL" if self.direction == "short" else "BUY"

    @property
    def exit_action(self) -> str:
        return "BUY" if self.direction == "short" else "SELL"

    @property
    def order_ids(self) -> tuple[int, ...]:
        return tuple(leg.order_id for leg in self.legs)

    def legs_of(self, *roles: str) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.role in roles)

    def leg(self, order_id: int) -> Leg | None:
        return next((leg for leg in self.legs if leg.order_id == order_id), None)

    def with_legs(self, legs: Iterable[Leg]) -> "Intent":
        """This intent with ``legs`` added (ids already present are not added twice)."""
        known = set(self.order_ids)
        return replace(self, legs=self.legs + tuple(leg for leg in legs if leg.order_id not in known))


def bracket(*, setup_id: str, symbol: str, direction: str, contract: OrderContract, quantity: float,
            stop: float, target: float, ids: tuple[int, int, int]) -> Intent:
    """The bracket slob places for a triggered setup: a market entry held (transmit=0), a
    take-profit limit held, and the stop, whose transmit=1 sends all three (TWS-FACTS §8).
    Both children share the OCA group ``slob-<setup id>`` and live until cancelled (GTC)."""
    if direction not in ("long", "short"):
        raise SlobError(f"setup {setup_id}: direction must be 'long' or 'short', not {direction!r}")
    if quantity <= 0:
        raise SlobError(f"setup {setup_id}: quantity must be positive, not {quantity!r}")
    if len(set(ids)) != 3:
        raise SlobError(f"setup {setup_id}: a bracket needs three distinct order ids, not {ids!r}")
    entry_id, tp_id, sl_id = ids
    short = direction == "short"
    entry, exit_ = ("SELL", "BUY") if short else ("BUY", "SELL")
    oca = f"slob-{setup_id}"
    legs = (
        Leg(entry_id, ENTRY, entry, "MKT", quantity, tif="DAY", transmit=False),
        Leg(tp_id, TAKE_PROFIT, exit_, "LMT", quantity, limit_price=target, parent_id=entry_id,
            oca_group=oca, tif="GTC", transmit=False),
        Leg(sl_id, STOP, exit_, "STP", quantity, stop_price=stop, parent_id=entry_id, oca_group=oca,
            tif="GTC", transmit=True),
    )
    return Intent(setup_id, symbol, direction, contract, quantity, stop, target, legs)


def repair_legs(intent: Intent, *, quantity: float, stop_id: int | None, target_id: int | None,
                oca_group: str) -> tuple[Leg, ...]:
    """Stand-alone exits for an open position of ``intent``: a stop (``stop_id``) and/or a
    target (``target_id``) at the intent's prices, in ``oca_group`` so one cancels the other
    (and any exit of that group already working), each transmitted on its own."""
    legs: list[Leg] = []
    if stop_id is not None:  # the stop first: if the connection dies now, the position has it
        legs.append(Leg(stop_id, STOP, intent.exit_action, "STP", quantity, stop_price=intent.stop,
                        oca_group=oca_group, tif="GTC", transmit=True, repair=True))
    if target_id is not None:
        legs.append(Leg(target_id, TAKE_PROFIT, intent.exit_action, "LMT", quantity, limit_price=intent.target,
                        oca_group=oca_group, tif="GTC", transmit=True, repair=True))
    return tuple(legs)
