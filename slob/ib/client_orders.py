"""IBClient's order surface: the requests for open orders, positions and executions, and
the EWrapper callbacks that turn TWS's order messages into :mod:`slob.orders` records.

A mixin of :class:`slob.ib.client.IBClient` (split from it; everything runs on IBClient's
reader thread, with its request bookkeeping: ``expect``, ``_pending``, ``_send``).
"""

from __future__ import annotations

import concurrent.futures
from decimal import Decimal
from typing import Any, Callable

from ibapi.client import EClient
from ibapi.execution import ExecutionFilter
from ibapi.wrapper import EWrapper

from slob.ib import order_conversion as orders
from slob.ib.client_types import Pending
from slob.orders import UNSET_PNL, Execution, OpenOrder, PositionReported

__all__ = ["OrderCallbacks"]

# Keys for the list requests that have no request id of their own.
_OPEN_ORDERS, _POSITIONS = -5, -61


class OrderCallbacks(EWrapper, EClient):  # type: ignore[misc]
    """Orders, executions and positions (a part of IBClient, not used alone)."""

    _pending: dict[int, Pending]
    _order_ids: set[int]
    _pnl_unset: bool
    # IBClient's request bookkeeping (declared here for the type checker only)
    expect: Callable[[int, str], concurrent.futures.Future[Any]]

    def track_order(self, order_id: int) -> None:
        """Errors carrying this id are order errors (reported as OrderError records)."""
        self._order_ids.add(order_id)

    def request_open_orders(self) -> concurrent.futures.Future[list[OpenOrder]]:
        future = self.expect(_OPEN_ORDERS, "open orders")
        self.reqOpenOrders()
        return future

    def request_positions(self) -> concurrent.futures.Future[list[PositionReported]]:
        future = self.expect(_POSITIONS, "positions")
        self.reqPositions()
        return future

    def request_executions(self, req_id: int) -> concurrent.futures.Future[list[Execution]]:
        future = self.expect(req_id, "executions")
        self.reqExecutions(req_id, ExecutionFilter())
        return future

    def openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:  # noqa: N802,N803
        record = orders.open_order(orderId, contract, order, orderState)
        self._order_ids.add(orderId)
        pending = self._pending.get(_OPEN_ORDERS)
        if pending is not None:
            pending.rows.append(record)
        self._send(record)

    def openOrderEnd(self) -> None:  # noqa: N802
        self._finish_rows(_OPEN_ORDERS)

    def orderStatus(self, orderId: int, status: str, filled: Decimal, remaining: Decimal,  # noqa: N802,N803
                    avgFillPrice: float, permId: int, parentId: int, lastFillPrice: float, clientId: int,
                    whyHeld: str, mktCapPrice: float) -> None:
        self._send(orders.order_update(orderId, status, filled, remaining, avgFillPrice, permId, parentId,
                                      lastFillPrice, whyHeld))

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:  # noqa: N802,N803
        record = orders.execution(reqId, contract, execution)
        pending = self._pending.get(reqId) if reqId >= 0 else None
        if pending is not None:
            pending.rows.append(record)  # an answer to request_executions, not a new fill
        else:
            self._send(record)

    def execDetailsEnd(self, reqId: int) -> None:  # noqa: N802,N803
        self._finish_rows(reqId)

    def commissionAndFeesReportProtoBuf(self, commissionAndFeesReportProto: Any) -> None:  # noqa: N802,N803
        # From 201 an opening fill's report leaves realizedPNL out, and IB's decoder then says
        # 0.0 -- a realized P&L of zero, which it is not. Remember it for the call that follows
        # (IB's decoder makes both, in order, on this thread).
        self._pnl_unset = not commissionAndFeesReportProto.HasField("realizedPNL")

    def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:  # noqa: N802,N803
        if self._pnl_unset:
            self._pnl_unset = False
            commissionAndFeesReport.realizedPNL = UNSET_PNL  # "none", as the text protocol says
        self._send(orders.commission(commissionAndFeesReport))

    def position(self, account: str, contract: Any, position: Decimal, avgCost: float) -> None:  # noqa: N803
        pending = self._pending.get(_POSITIONS)
        if pending is not None:
            pending.rows.append(orders.position(account, contract, position, avgCost))

    def positionEnd(self) -> None:  # noqa: N802
        self._finish_rows(_POSITIONS)
        if not self._stopping():  # a closing session's subscriptions end with it
            self.cancelPositions()

    def completedOrdersEnd(self) -> None:  # noqa: N802
        pass
