"""Order records: what TWS reports about orders, executions and positions.

Frozen, slotted, named as facts; produced by IBClient's reader thread from IB's
``openOrder``/``orderStatus``/``execDetails``/``commissionAndFeesReport``/``position``
callbacks, consumed by the OrderExecutor, the event bus and the store. Times are
tz-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["CommissionReported", "Execution", "OpenOrder", "OrderError", "OrderUpdate", "PositionReported"]

UNSET_PNL = 1.7976931348623157e308  # IB's "no value" double (e.g. realized P&L of an opening fill)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order TWS knows (OPEN_ORDER): its definition and current status."""

    order_id: int
    perm_id: int
    client_id: int
    parent_id: int
    order_ref: str  # slob puts the setup id here
    contract: str  # local symbol
    con_id: int
    action: str  # BUY / SELL
    quantity: float
    order_type: str  # MKT / LMT / STP ...
    limit_price: float | None
    stop_price: float | None
    oca_group: str
    account: str
    status: str
    transmit: bool = True


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """ORDER_STATUS: an order's status changed (duplicates are normal)."""

    order_id: int
    status: str  # PendingSubmit, PreSubmitted, Submitted, Filled, Cancelled, ApiCancelled, Inactive...
    filled: float
    remaining: float
    avg_fill_price: float
    perm_id: int
    parent_id: int
    last_fill_price: float
    why_held: str
    at: dt.datetime

    @property
    def done(self) -> bool:
        return self.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass(frozen=True, slots=True)
class Execution:
    """EXECUTION_DATA: one fill (``req_id`` -1 for live fills, else the request's id)."""

    req_id: int
    exec_id: str
    order_id: int
    perm_id: int
    order_ref: str
    contract: str
    con_id: int
    side: str  # BOT / SLD
    shares: float
    price: float
    time: dt.datetime
    account: str
    cum_qty: float
    avg_price: float


@dataclass(frozen=True, slots=True)
class CommissionReported:
    """COMMISSION_REPORT for one execution; ``realized_pnl`` None on opening fills."""

    exec_id: str
    commission: float
    currency: str
    realized_pnl: float | None


@dataclass(frozen=True, slots=True)
class PositionReported:
    account: str
    contract: str
    con_id: int
    position: float
    avg_cost: float


@dataclass(frozen=True, slots=True)
class OrderError:
    """TWS answered an order with an error: 201 rejected, 202 cancelled, 103 duplicate id..."""

    order_id: int
    code: int
    text: str
    at: dt.datetime
