"""Pure conversion of IB's order callbacks (ibapi Contract/Order/OrderState/Execution
objects) into slob's order records (:mod:`slob.orders`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from slob.ib.errors import ConfigError
from slob.orders import UNSET_PNL, CommissionReported, Execution, OpenOrder, OrderUpdate, PositionReported

from slob.ib.zones import ib_zone

__all__ = ["commission", "execution", "open_order", "order_update", "parse_ib_time", "position"]

_UNSET_DOUBLE = 1.7976931348623157e308
_UTC = dt.timezone.utc


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, ArithmeticError):
        return 0.0


def _price(value: Any) -> float | None:
    number = _num(value)
    return None if number == _UNSET_DOUBLE or number == 0.0 and value in ("", None) else number


def parse_ib_time(text: str) -> dt.datetime:
    """IB's execution time ``yyyyMMdd HH:mm:ss <zone>`` (or ``yyyyMMdd-HH:mm:ss`` UTC)."""
    parts = (text or "").replace("-", " ").split()
    try:
        stamp = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        return dt.datetime.now(_UTC)
    zone: dt.tzinfo = _UTC
    if len(parts) > 2:
        try:
            zone = ib_zone(parts[2])
        except ConfigError:
            zone = _UTC
    return stamp.replace(tzinfo=zone).astimezone(_UTC)


def open_order(order_id: int, contract: Any, order: Any, state: Any) -> OpenOrder:
    return OpenOrder(
        order_id=order_id,
        perm_id=int(getattr(order, "permId", 0) or 0),
        client_id=int(getattr(order, "clientId", 0) or 0),
        parent_id=int(getattr(order, "parentId", 0) or 0),
        order_ref=str(getattr(order, "orderRef", "") or ""),
        contract=str(getattr(contract, "localSymbol", "") or ""),
        con_id=int(getattr(contract, "conId", 0) or 0),
        action=str(order.action),
        quantity=_num(order.totalQuantity),
        order_type=str(order.orderType),
        limit_price=_price(order.lmtPrice),
        stop_price=_price(order.auxPrice),
        oca_group=str(getattr(order, "ocaGroup", "") or ""),
        account=str(getattr(order, "account", "") or ""),
        status=str(getattr(state, "status", "") or ""),
        transmit=bool(getattr(order, "transmit", True)),
    )


def order_update(order_id: int, status: str, filled: Decimal, remaining: Decimal, avg_fill_price: float,
                 perm_id: int, parent_id: int, last_fill_price: float, why_held: str) -> OrderUpdate:
    return OrderUpdate(order_id, status, _num(filled), _num(remaining), _num(avg_fill_price), int(perm_id),
                       int(parent_id), _num(last_fill_price), why_held or "", dt.datetime.now(_UTC))


def execution(req_id: int, contract: Any, ex: Any) -> Execution:
    return Execution(
        req_id=req_id,
        exec_id=str(ex.execId),
        order_id=int(ex.orderId),
        perm_id=int(ex.permId or 0),
        order_ref=str(getattr(ex, "orderRef", "") or ""),
        contract=str(getattr(contract, "localSymbol", "") or ""),
        con_id=int(getattr(contract, "conId", 0) or 0),
        side=str(ex.side),
        shares=_num(ex.shares),
        price=_num(ex.price),
        time=parse_ib_time(str(ex.time)),
        account=str(getattr(ex, "acctNumber", "") or ""),
        cum_qty=_num(ex.cumQty),
        avg_price=_num(ex.avgPrice),
    )


def commission(report: Any) -> CommissionReported:
    pnl = _num(getattr(report, "realizedPNL", UNSET_PNL))
    return CommissionReported(
        exec_id=str(report.execId),
        commission=_num(getattr(report, "commissionAndFees", getattr(report, "commission", 0.0))),
        currency=str(getattr(report, "currency", "") or ""),
        realized_pnl=None if pnl >= UNSET_PNL else pnl,
    )


def position(account: str, contract: Any, qty: Decimal, avg_cost: float) -> PositionReported:
    return PositionReported(account, str(getattr(contract, "localSymbol", "") or ""),
                            int(getattr(contract, "conId", 0) or 0), _num(qty), _num(avg_cost))
