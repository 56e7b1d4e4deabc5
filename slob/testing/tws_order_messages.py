"""What the fake TWS sends about orders: OPEN_ORDER, ORDER_STATUS, EXECUTION_DATA,
COMMISSION_REPORT and POSITION_DATA, encoded for a server version (100-226): text as
below, protobuf (:mod:`slob.testing.tws_proto_orders`) from the version at which TWS moved
each message (:mod:`slob.testing.tws_versions`).

Each function returns one complete frame, every field where IB's own client (ibapi 10.50
``decoder.py`` + ``orderdecoder.py``) reads it at that server version. The values of the
fields the fake does not model are the ones a real paper IB Gateway sends at server
version 200 (tests/data/captures/api_order_fill_aapl_sv200.jsonl): ``?`` for the right,
``None`` for the delta-neutral and adjusted order types (so the eight delta-neutral fields
follow), clearing intent ``IB``, unset doubles as ``1.7976931348623157E308``, empty
commission fields until the order has filled. Below server version 145 OPEN_ORDER carries
a message version (34, the last one), below 136 EXECUTION_DATA does (10), below 131
ORDER_STATUS does (6).
"""

from __future__ import annotations

import math
from decimal import Decimal

from ibapi.message import IN

from slob.ib import wire
from slob.testing import tws_proto_orders as pb
from slob.testing.order_records import ExecutionRecord, OrderRecord, PositionRecord, exchange_time
from slob.testing.tws_messages import UNSET_INT, price_text
from slob.testing.tws_versions import sends_protobuf

__all__ = [
    "SUBMITTER",
    "UNSET_DOUBLE",
    "commission_report",
    "execution_data",
    "java_double",
    "open_order",
    "order_status",
    "position_data",
    "quantity_text",
]

# Server versions at which fields appear (ibapi server_versions.py; a test pins them).
SV_PEGGED_TO_BENCHMARK = 102
SV_MODELS_SUPPORT = 103
SV_SOFT_DOLLAR_TIER = 106
SV_CASH_QTY = 111
SV_MARKET_CAP_PRICE = 131
SV_LAST_LIQUIDITY = 136
SV_AUTO_PRICE_FOR_HEDGE = 141
SV_WHAT_IF_EXT_FIELDS = 142
SV_ORDER_CONTAINER = 145
SV_D_PEG_ORDERS = 148
SV_PRICE_MGMT_ALGO = 151
SV_DURATION = 158
SV_POST_TO_ATS = 160
SV_AUTO_CANCEL_PARENT = 162
SV_PEGBEST_PEGMID_OFFSETS = 170
SV_FA_PROFILE_DESUPPORT = 177
SV_PENDING_PRICE_REVISION = 178
SV_CUSTOMER_ACCOUNT = 183
SV_PROFESSIONAL_CUSTOMER = 184
SV_BOND_ACCRUED_INTEREST = 185
SV_INCLUDE_OVERNIGHT = 189
SV_CME_TAGGING_FIELDS_IN_OPEN_ORDER = 193
SV_FULL_ORDER_PREVIEW_FIELDS = 195
SV_SUBMITTER = 198
SV_IMBALANCE_ONLY = 199

#: Java's Double.MAX_VALUE as TWS prints it: IB's "unset" double.
UNSET_DOUBLE = "1.7976931348623157E308"
_UNSET_LONG = "-9223372036854775808"  # suggestedSize unset (Long.MIN_VALUE)
#: The login name a paper gateway puts in ``submitter`` (server 198+).
SUBMITTER = "fakepaper01"
_OPEN_ORDER_VERSION = 34
_EXECUTION_VERSION = 10
_ORDER_STATUS_VERSION = 6


def quantity_text(q: Decimal) -> str:
    """A quantity as TWS prints it: ``100``, not ``100.0``."""
    return str(int(q)) if q == q.to_integral_value() else format(q.normalize(), "f")


def _price_or_zero(value: float | None) -> str:
    return price_text(value) if value is not None else "0.0"


def java_double(value: float) -> str:
    """A double as Java's ``Double.toString`` prints it, as TWS does for commissions and
    P&L: ``2.25``, ``-2.47``, ``1.4975749999999999``, ``1.8E-4``, ``1.7976931348623157E308``
    (scientific below 10^-3 and from 10^7)."""
    shortest = repr(float(value))
    if value == 0 or 1e-3 <= abs(value) < 1e7 or not math.isfinite(value):
        return shortest
    if "e" in shortest:  # 1.7976931348623157e+308, 5e-324
        mantissa, exponent = shortest.split("e")
    else:  # 0.00018, 12345678.5: Python prints these plainly
        d = Decimal(shortest).normalize()
        mantissa, exponent = repr(float(d.scaleb(-d.adjusted()))), str(d.adjusted())
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}E{int(exponent)}"


def _money(value: float) -> str:
    """Commission and P&L as TWS prints them (``2.25``, ``-2.47``)."""
    return java_double(value)


def _msg(msg_id: int, fields: list[object], sv: int) -> bytes:
    return wire.encode_message(msg_id, fields, sv)


def _contract_fields(o: OrderRecord) -> list[object]:
    c = o.contract
    spec = c.spec
    return [c.con_id, spec.root, "FUT", f"{c.last_trade_date:%Y%m%d}", "0", "?", spec.multiplier,
            spec.exchange, spec.currency, c.local_symbol, spec.root]


def open_order(o: OrderRecord, sv: int) -> bytes:
    """OPEN_ORDER for ``o`` in its current status (with its commission once filled)."""
    if sends_protobuf(IN.OPEN_ORDER, sv):
        return pb.open_order(o, SUBMITTER)
    f: list[object] = []
    if sv < SV_ORDER_CONTAINER:
        f.append(_OPEN_ORDER_VERSION)
    qty = quantity_text(o.quantity)
    f += [o.order_id] + _contract_fields(o)
    f += [
        o.action, qty, o.order_type, _price_or_zero(o.lmt_price), _price_or_zero(o.aux_price),
        o.tif, o.oca_group, o.account,
        "",  # openClose
        0,  # origin: customer
        o.order_ref, o.client_id, o.perm_id, o.outside_rth,
        0,  # hidden
        0,  # discretionaryAmt
        "",  # goodAfterTime
        f"{o.perm_id}.{o.revision}/{o.account}/{qty}",  # sharesAllocation (deprecated), as captured
        "", "", "",  # faGroup, faMethod, faPercentage
    ]
    if sv < SV_FA_PROFILE_DESUPPORT:
        f.append("")  # faProfile
    if sv >= SV_MODELS_SUPPORT:
        f.append("")  # modelCode
    f += [
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
        0,  # auctionStrategy
        "", "", "",  # startingPrice, stockRefPrice, delta
        "", "",  # stockRangeLower, stockRangeUpper
        UNSET_INT,  # displaySize
        0, 0, 0,  # blockOrder, sweepToFill, allOrNone
        "",  # minQty
        o.oca_type,
        0, 0, "",  # eTradeOnly, firmQuoteOnly, nbboPriceCap (deprecated)
        o.parent_id,
        0,  # triggerMethod
        "", 0,  # volatility, volatilityType
        "None", "",  # deltaNeutralOrderType (TWS sends "None"), deltaNeutralAuxPrice
        0, "", "", "",  # deltaNeutralConId, settlingFirm, clearingAccount, clearingIntent
        "?", 0, 0, "",  # deltaNeutralOpenClose, shortSale, shortSaleSlot, designatedLocation
        0, 0,  # continuousUpdate, referencePriceType
        "", "",  # trailStopPrice, trailingPercent
        "", "",  # basisPoints, basisPointsType
        "", 0, 0,  # comboLegsDescrip, comboLegs, orderComboLegs
        0,  # smartComboRoutingParams
        UNSET_INT, UNSET_INT, "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        0,  # optOutSmartRouting
        "", "IB",  # clearingAccount, clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContract present
        "",  # algoStrategy
        0,  # solicited
        0,  # whatIf
        o.status,
    ]
    if sv >= SV_WHAT_IF_EXT_FIELDS:
        f += [UNSET_DOUBLE] * 6  # margin before / change
    f += [UNSET_DOUBLE] * 3  # margin after
    if o.commission is None:
        f += ["", "", "", ""]
    else:
        f += [_money(o.commission), "", "", "USD"]
    if sv >= SV_FULL_ORDER_PREVIEW_FIELDS:
        f += [""] + [UNSET_DOUBLE] * 9 + [_UNSET_LONG, "", 0]  # ... rejectReason, allocations
    f += ["", 0, 0]  # warningText, randomizeSize, randomizePrice
    if sv >= SV_PEGGED_TO_BENCHMARK:
        f += [0, "None"] + [UNSET_DOUBLE] * 6 + [0]  # conditions, adjusted order params
    if sv >= SV_SOFT_DOLLAR_TIER:
        f += ["", "", ""]
    if sv >= SV_CASH_QTY:
        f.append(0)
    if sv >= SV_AUTO_PRICE_FOR_HEDGE:
        f.append(1)  # dontUseAutoPriceForHedge
    if sv >= SV_ORDER_CONTAINER:
        f.append(0)  # isOmsContainer
    if sv >= SV_D_PEG_ORDERS:
        f.append(0)  # discretionaryUpToLimitPrice
    if sv >= SV_PRICE_MGMT_ALGO:
        f.append(0)  # usePriceMgmtAlgo
    if sv >= SV_DURATION:
        f.append("")
    if sv >= SV_POST_TO_ATS:
        f.append("")
    if sv >= SV_AUTO_CANCEL_PARENT:
        f.append(0)
    if sv >= SV_PEGBEST_PEGMID_OFFSETS:
        f += ["", 100, 0.02, "", ""]  # minTradeQty, minCompeteSize, competeAgainstBestOffset, mid offsets
    if sv >= SV_CUSTOMER_ACCOUNT:
        f.append("")
    if sv >= SV_PROFESSIONAL_CUSTOMER:
        f.append(0)
    if sv >= SV_BOND_ACCRUED_INTEREST:
        f.append("")
    if sv >= SV_INCLUDE_OVERNIGHT:
        f.append(0)
    if sv >= SV_CME_TAGGING_FIELDS_IN_OPEN_ORDER:
        f += ["", 0]  # extOperator, manualOrderIndicator
    if sv >= SV_SUBMITTER:
        f.append(SUBMITTER)
    if sv >= SV_IMBALANCE_ONLY:
        f.append(0)
    return _msg(IN.OPEN_ORDER, f, sv)


def order_status(o: OrderRecord, sv: int) -> bytes:
    """ORDER_STATUS: ``orderId|status|filled|remaining|avgFillPrice|permId|parentId|
    lastFillPrice|clientId|whyHeld|mktCapPrice`` (prices ``0`` before a fill, as captured)."""
    if sends_protobuf(IN.ORDER_STATUS, sv):
        return pb.order_status(o)
    f: list[object] = [] if sv >= SV_MARKET_CAP_PRICE else [_ORDER_STATUS_VERSION]
    f += [
        o.order_id, o.status, quantity_text(o.filled), quantity_text(o.remaining),
        price_text(o.avg_fill_price) if o.filled else 0, o.perm_id, o.parent_id,
        price_text(o.last_fill_price) if o.filled else 0, o.client_id, o.why_held,
    ]
    if sv >= SV_MARKET_CAP_PRICE:
        f.append(0)
    return _msg(IN.ORDER_STATUS, f, sv)


def execution_data(req_id: int, e: ExecutionRecord, sv: int) -> bytes:
    """EXECUTION_DATA (``reqId`` -1 for a live fill)."""
    if sends_protobuf(IN.EXECUTION_DATA, sv):
        return pb.execution_data(req_id, e)
    c = e.contract
    spec = c.spec
    f: list[object] = [] if sv >= SV_LAST_LIQUIDITY else [_EXECUTION_VERSION]
    f += [
        req_id, e.order_id, c.con_id, spec.root, "FUT", f"{c.last_trade_date:%Y%m%d}", "0.0", "",
        spec.multiplier, spec.exchange, spec.currency, c.local_symbol, spec.root,
        e.exec_id, exchange_time(e.time), e.account, spec.exchange, e.side,
        quantity_text(e.shares), price_text(e.price), e.perm_id, e.client_id,
        0,  # liquidation
        quantity_text(e.cum_qty), price_text(e.avg_price), e.order_ref,
        "", "",  # evRule, evMultiplier
    ]
    if sv >= SV_MODELS_SUPPORT:
        f.append("")  # modelCode
    if sv >= SV_LAST_LIQUIDITY:
        f.append(e.last_liquidity)
    if sv >= SV_PENDING_PRICE_REVISION:
        f.append(0)
    if sv >= SV_SUBMITTER:
        f.append("")
    return _msg(IN.EXECUTION_DATA, f, sv)


def commission_report(e: ExecutionRecord, sv: int) -> bytes:
    """COMMISSION_REPORT: ``1|execId|commission|currency|realizedPNL|yield|yieldRedemptionDate``,
    realizedPNL unset on a fill that only opens a position."""
    if sends_protobuf(IN.COMMISSION_AND_FEES_REPORT, sv):
        return pb.commission_report(e)
    pnl = UNSET_DOUBLE if e.realized_pnl is None else _money(e.realized_pnl)
    return _msg(IN.COMMISSION_AND_FEES_REPORT, [1, e.exec_id, _money(e.commission), "USD", pnl, UNSET_DOUBLE, ""], sv)


def position_data(p: PositionRecord, sv: int) -> bytes:
    """POSITION_DATA version 3; the exchange is empty, as in the live ES row."""
    if sends_protobuf(IN.POSITION_DATA, sv):
        return pb.position_data(p)
    c = p.contract
    spec = c.spec
    return _msg(IN.POSITION_DATA, [
        3, p.account, c.con_id, spec.root, "FUT", f"{c.last_trade_date:%Y%m%d}", "0.0", "",
        spec.multiplier, "", spec.currency, c.local_symbol, spec.root,
        quantity_text(p.quantity), java_double(round(p.avg_cost, 6)),
    ], sv)
