"""What the fake TWS sends about orders in the protobuf generation (OPEN_ORDER and
ORDER_STATUS from server version 203, EXECUTION_DATA and COMMISSION_AND_FEES_REPORT from
201, POSITION_DATA from 207), built with IB's generated classes.

The fields set are the ones a live paper Gateway sets at sv225 for the same kind of order
(tests/data/captures: the MES campaign, the AAPL bracket and fills): every order carries
``clearingIntent "IB"``, ``ocaType``, the zero-valued trigger/volatility/reference fields,
``deltaNeutralOrderType`` and ``adjustedOrderType`` ``"None"``, ``exemptCode -1``,
``dontUseAutoPriceForHedge``, ``filledQuantity``, the shareholder text and the
submitter; a bracket child names its parent's permId and the OCA group TWS made from it;
a filled order's state carries its completion time and status (and its commission once
known). What the fake does not model is left out: ``trailStopPrice`` (TWS fills in a
price it derives from the market) and ``autoCancelDate`` of GTC orders.
"""

from __future__ import annotations

from ibapi.message import IN
from ibapi.protobuf.CommissionAndFeesReport_pb2 import CommissionAndFeesReport
from ibapi.protobuf.ExecutionDetails_pb2 import ExecutionDetails
from ibapi.protobuf.OpenOrder_pb2 import OpenOrder
from ibapi.protobuf.OrderStatus_pb2 import OrderStatus
from ibapi.protobuf.Position_pb2 import Position

from slob.testing.order_records import ExecutionRecord, OrderRecord, PositionRecord, exchange_time
from slob.testing.tws_proto_messages import decimal_text, frame, future_contract

__all__ = ["SHAREHOLDER", "commission_report", "execution_data", "open_order", "order_status", "position_data"]

#: The text a live paper Gateway puts in every order's ``shareholder`` field.
SHAREHOLDER = "Not an insider or substantial shareholder"


def open_order(o: OrderRecord, submitter: str) -> bytes:
    """OPEN_ORDER for ``o`` in its current status (with its commission once filled)."""
    m = OpenOrder(orderId=o.order_id, contract=future_contract(o.contract))
    r = m.order
    r.clientId, r.orderId, r.permId, r.parentId = o.client_id, o.order_id, o.perm_id, o.parent_id
    r.action = o.action
    r.totalQuantity = decimal_text(o.quantity)
    r.orderType = o.order_type
    r.lmtPrice = o.lmt_price if o.lmt_price is not None else 0.0
    r.auxPrice = o.aux_price if o.aux_price is not None else 0.0
    r.tif = o.tif
    r.account = o.account
    r.clearingIntent = "IB"
    if o.outside_rth:
        r.outsideRth = True
    if o.oca_group:
        r.ocaGroup = o.oca_group
    if o.order_ref:
        r.orderRef = o.order_ref
    r.ocaType = o.oca_type
    r.triggerMethod = r.volatilityType = r.referencePriceType = 0
    r.deltaNeutralOrderType = "None"
    r.deltaNeutralShortSaleSlot = r.origin = r.shortSaleSlot = 0
    r.exemptCode = -1
    r.adjustedOrderType = "None"
    r.adjustableTrailingUnit = 0
    r.dontUseAutoPriceForHedge = True
    r.filledQuantity = decimal_text(o.filled)
    r.shareholder = SHAREHOLDER
    r.routeMarketableToBbo = 0
    if o.parent_perm_id:
        r.parentPermId = o.parent_perm_id
    r.usePriceMgmtAlgo = 0
    r.submitter = submitter
    r.seekPriceImprovement = 0
    s = m.orderState
    s.status = o.status
    if o.commission is not None:
        s.commissionAndFees = o.commission
        s.commissionAndFeesCurrency = o.contract.spec.currency
    if o.status == "Filled" and o.fills:
        s.completedTime = exchange_time(o.fills[-1].time)
        s.completedStatus = f"Filled Size: {decimal_text(o.filled)}"
    return frame(IN.OPEN_ORDER, m)


def order_status(o: OrderRecord) -> bytes:
    """ORDER_STATUS: every field set, prices 0 before a fill, whyHeld only when held."""
    m = OrderStatus(orderId=o.order_id, status=o.status, filled=decimal_text(o.filled),
                    remaining=decimal_text(o.remaining),
                    avgFillPrice=o.avg_fill_price if o.filled else 0.0, permId=o.perm_id,
                    parentId=o.parent_id, lastFillPrice=o.last_fill_price if o.filled else 0.0,
                    clientId=o.client_id)
    if o.why_held:
        m.whyHeld = o.why_held
    m.mktCapPrice = 0.0
    return frame(IN.ORDER_STATUS, m)


def execution_data(req_id: int, e: ExecutionRecord) -> bytes:
    """EXECUTION_DATA (``reqId`` -1 for a live fill), as the MES capture shows it."""
    m = ExecutionDetails(reqId=req_id, contract=future_contract(e.contract))
    x = m.execution
    x.orderId, x.execId, x.time, x.acctNumber = e.order_id, e.exec_id, exchange_time(e.time), e.account
    x.exchange, x.side, x.shares, x.price = e.contract.spec.exchange, e.side, decimal_text(e.shares), e.price
    x.permId, x.clientId, x.cumQty, x.avgPrice = e.perm_id, e.client_id, decimal_text(e.cum_qty), e.avg_price
    if e.order_ref:
        x.orderRef = e.order_ref
    x.lastLiquidity = e.last_liquidity
    x.optExerciseOrLapseType = -1
    return frame(IN.EXECUTION_DATA, m)


def commission_report(e: ExecutionRecord) -> bytes:
    """COMMISSION_AND_FEES_REPORT; realizedPNL only on a fill that closes."""
    m = CommissionAndFeesReport(execId=e.exec_id, commissionAndFees=e.commission,
                                currency=e.contract.spec.currency)
    if e.realized_pnl is not None:
        m.realizedPNL = e.realized_pnl
    return frame(IN.COMMISSION_AND_FEES_REPORT, m)


def position_data(p: PositionRecord) -> bytes:
    """POSITION_DATA: the contract with its exchange (unlike the text form), the position
    as a decimal string, avgCost as a double."""
    return frame(IN.POSITION_DATA, Position(account=p.account, contract=future_contract(p.contract),
                                            position=decimal_text(p.quantity),
                                            avgCost=round(p.avg_cost, 6)))
