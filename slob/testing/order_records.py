"""The fake TWS's order records: orders, executions and positions, plus what they cost.

Kept apart from the matching (:mod:`slob.testing.fake_orders`) and the wire encoders
(:mod:`slob.testing.tws_order_messages`) so both can use them. Facts from
../shared/TWS-FACTS.md §8 and the captures in tests/data/captures: statuses are IB's
strings, executions are ``BOT``/``SLD``, IB's position ``avgCost`` is the price times the
multiplier plus the opening commission per contract (a live ES row: 6302.25 x 50 + 2.25 =
315114.75), and a closing fill's realized P&L is net of both legs' commissions (MES
capture: (7670.50 - 7670.75) x 5 - 2 x 0.61 = -2.47).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from slob.testing.futures import CHICAGO, IB_CHICAGO, FutureContract

__all__ = [
    "COMMISSION_PER_CONTRACT",
    "ExecutionRecord",
    "OrderInfo",
    "OrderRecord",
    "PositionRecord",
    "SIMULATED_ORDER_TYPES",
    "TERMINAL",
    "UNTRANSMITTED",
    "WORKING",
    "exchange_time",
]

#: IBKR fixed-rate futures commission with exchange and regulatory fees, USD per contract:
#: 2.25 for E-minis (TWS-FACTS §8, an ES fill), 0.62 for micros (a live MES fill; 0.61
#: in the 2026-08 capture).
COMMISSION_PER_CONTRACT = {"NQ": 2.25, "ES": 2.25, "MNQ": 0.62, "MES": 0.62}

#: Held by the fake TWS with transmit=0: no messages go out for it (TWS-FACTS §8). IB has
#: no status for this; "ApiPending" is the closest of its documented strings.
UNTRANSMITTED = "ApiPending"
WORKING = frozenset({UNTRANSMITTED, "PreSubmitted", "Submitted"})
TERMINAL = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
SIMULATED_ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT"})


def exchange_time(when: dt.datetime) -> str:
    """An execution time as TWS sends it for a CME contract: ``yyyyMMdd HH:mm:ss US/Central``
    (the exchange's zone, as in the MES capture and reqExecutions at server 200)."""
    return f"{when.astimezone(CHICAGO):%Y%m%d %H:%M:%S} {IB_CHICAGO}"


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One fill, as EXECUTION_DATA and COMMISSION_REPORT describe it."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    contract: FutureContract
    side: str  # "BOT" or "SLD"
    shares: Decimal
    price: float
    time: dt.datetime
    cum_qty: Decimal
    avg_price: float
    order_ref: str
    commission: float
    realized_pnl: float | None  # None on a fill that only opens (IB sends it unset)
    last_liquidity: int  # 1 added liquidity, 2 removed


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One account's position in one contract; kept at 0 once flat, as TWS reports it."""

    account: str
    contract: FutureContract
    quantity: Decimal
    avg_cost: float  # per contract, in money: price x multiplier + commission

    @property
    def multiplier(self) -> float:
        return float(self.contract.spec.multiplier)


@dataclass(eq=False, slots=True)
class OrderRecord:
    """An order the fake TWS holds: what the client asked for and where it stands."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    contract: FutureContract
    action: str  # "BUY" or "SELL"
    quantity: Decimal
    order_type: str  # one of SIMULATED_ORDER_TYPES
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    oca_type: int
    order_ref: str
    parent_id: int
    outside_rth: bool
    transmit: bool
    parent_perm_id: int = 0  # a bracket child's parent's permId (OPEN_ORDER shows it from 203)
    status: str = UNTRANSMITTED
    why_held: str = ""
    triggered: bool = False  # a STP LMT whose stop has been touched
    revision: int = 0  # modifications so far (TWS shows it in sharesAllocation: 123.1/...)
    filled: Decimal = Decimal(0)
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission: float | None = None  # total so far; None until the first fill
    fills: list[ExecutionRecord] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def live(self) -> bool:
        """Transmitted and not finished: what reqOpenOrders lists."""
        return self.status in ("PreSubmitted", "Submitted")

    @property
    def waiting_for_parent(self) -> bool:
        return self.why_held.startswith("child")

    def snapshot(self) -> "OrderInfo":
        return OrderInfo(
            order_id=self.order_id, client_id=self.client_id, perm_id=self.perm_id,
            account=self.account, local_symbol=self.contract.local_symbol,
            con_id=self.contract.con_id, action=self.action, quantity=self.quantity,
            order_type=self.order_type, lmt_price=self.lmt_price, aux_price=self.aux_price,
            tif=self.tif, oca_group=self.oca_group, oca_type=self.oca_type,
            order_ref=self.order_ref, parent_id=self.parent_id, transmit=self.transmit,
            status=self.status, why_held=self.why_held, filled=self.filled,
            avg_fill_price=self.avg_fill_price, commission=self.commission,
            fills=tuple(self.fills),
        )


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """A snapshot of one order, for tests (``FakeTWS.orders``)."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    local_symbol: str
    con_id: int
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    oca_type: int
    order_ref: str
    parent_id: int
    transmit: bool
    status: str
    why_held: str
    filled: Decimal
    avg_fill_price: float
    commission: float | None
    fills: tuple[ExecutionRecord, ...]
