"""What the fake TWS sends in the protobuf generation (server version >= 201): session,
contract-details, market-data and account messages, built with IB's own generated
classes (``ibapi.protobuf``) -- no protobuf is written by hand here.

Each function returns one complete frame (4-byte length, binary id ``200 + msg id``,
serialized body). Which fields are set, and how, follows the live captures in
tests/data/captures (sv205..225): TWS sets proto3-optional fields explicitly even when
they are zero (``strike: 0.0``, ``attrMask: 0``, ``size: "0"``), leaves empty strings
out, and sends sizes, quantities and minimum ticks as decimal strings. A test compares
these frames with the captured ones byte for byte (tests/testing/test_protobuf_fidelity.py).
Order messages live in :mod:`slob.testing.tws_proto_orders`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ibapi.message import IN
from ibapi.protobuf.AccountDataEnd_pb2 import AccountDataEnd
from ibapi.protobuf.AccountUpdateMulti_pb2 import AccountUpdateMulti
from ibapi.protobuf.AccountUpdateMultiEnd_pb2 import AccountUpdateMultiEnd
from ibapi.protobuf.AccountUpdateTime_pb2 import AccountUpdateTime
from ibapi.protobuf.AccountValue_pb2 import AccountValue
from ibapi.protobuf.CompletedOrdersEnd_pb2 import CompletedOrdersEnd
from ibapi.protobuf.Contract_pb2 import Contract
from ibapi.protobuf.ContractData_pb2 import ContractData
from ibapi.protobuf.ContractDataEnd_pb2 import ContractDataEnd
from ibapi.protobuf.CurrentTime_pb2 import CurrentTime
from ibapi.protobuf.CurrentTimeInMillis_pb2 import CurrentTimeInMillis
from ibapi.protobuf.ErrorMessage_pb2 import ErrorMessage
from ibapi.protobuf.ExecutionDetailsEnd_pb2 import ExecutionDetailsEnd
from ibapi.protobuf.ManagedAccounts_pb2 import ManagedAccounts
from ibapi.protobuf.MarketDataType_pb2 import MarketDataType
from ibapi.protobuf.NextValidId_pb2 import NextValidId
from ibapi.protobuf.OpenOrdersEnd_pb2 import OpenOrdersEnd
from ibapi.protobuf.PositionEnd_pb2 import PositionEnd
from ibapi.protobuf.TickByTickData_pb2 import TickByTickData
from ibapi.protobuf.TickGeneric_pb2 import TickGeneric
from ibapi.protobuf.TickPrice_pb2 import TickPrice
from ibapi.protobuf.TickReqParams_pb2 import TickReqParams
from ibapi.protobuf.TickSize_pb2 import TickSize
from ibapi.protobuf.TickSnapshotEnd_pb2 import TickSnapshotEnd
from ibapi.protobuf.TickString_pb2 import TickString

from slob.ib import wire
from slob.testing.futures import IB_CHICAGO, FutureContract, liquid_hours, trading_hours

__all__ = [
    "PRICE_PRECISION",
    "SIZE_PRECISION",
    "account_download_end",
    "account_update_multi",
    "account_update_multi_end",
    "account_update_time",
    "account_value",
    "completed_orders_end",
    "contract_data",
    "contract_data_end",
    "current_time",
    "current_time_millis",
    "decimal_text",
    "error",
    "execution_data_end",
    "frame",
    "future_contract",
    "managed_accounts",
    "market_data_type",
    "next_valid_id",
    "open_order_end",
    "position_end",
    "tbt_bid_ask",
    "tbt_last",
    "tbt_midpoint",
    "tick_generic",
    "tick_price",
    "tick_req_params",
    "tick_size",
    "tick_snapshot_end",
    "tick_string",
]

#: TICK_REQ_PARAMS precisions, as a live Gateway sends them (sv206 and sv225 captures).
PRICE_PRECISION = "0.000001"
SIZE_PRECISION = "0.000001"
#: What a live Gateway fills in for a future's contract details (ES/MES captures).
_MIN_ALGO_SIZE = "0"
_SETTLEMENT = "Cash"


def frame(msg_id: int, message: Any) -> bytes:
    """A complete frame carrying ``message`` as protobuf message ``msg_id``."""
    return wire.encode_protobuf_message(msg_id, message.SerializeToString())


def decimal_text(value: int | Decimal | str) -> str:
    """A size or quantity as TWS writes it in protobuf: ``1``, ``812670``, ``0.5``."""
    if isinstance(value, str):
        return value
    d = Decimal(value)
    return str(int(d)) if d == d.to_integral_value() else format(d.normalize(), "f")


def future_contract(contract: FutureContract, *, exchange: str | None = None,
                    details: bool = False, sec_type: str = "FUT") -> Contract:
    """The Contract TWS attaches to a future: in orders, executions and positions the
    expiry is the date; in contract details it carries time and zone, plus lastTradeDate."""
    spec = contract.spec
    c = Contract(conId=contract.con_id, symbol=spec.root, secType=sec_type,
                 lastTradeDateOrContractMonth=(contract.ib_last_trade_field if details
                                               else f"{contract.last_trade_date:%Y%m%d}"),
                 strike=0.0, multiplier=float(spec.multiplier), exchange=exchange or spec.exchange,
                 currency=spec.currency, localSymbol=contract.local_symbol, tradingClass=spec.root)
    if details:
        c.lastTradeDate = f"{contract.last_trade_date:%Y%m%d}"
    return c


# ---------------------------------------------------------------------------
# Session


def managed_accounts(accounts: list[str]) -> bytes:
    return frame(IN.MANAGED_ACCTS, ManagedAccounts(accountsList=",".join(accounts)))


def next_valid_id(order_id: int) -> bytes:
    return frame(IN.NEXT_VALID_ID, NextValidId(orderId=order_id))


def error(req_id: int, code: int, text: str, *, time_ms: int = 0, json: str = "") -> bytes:
    m = ErrorMessage(id=req_id, errorTime=time_ms, errorCode=code, errorMsg=text)
    if json:
        m.advancedOrderRejectJson = json
    return frame(IN.ERR_MSG, m)


def current_time(unix_seconds: int) -> bytes:
    return frame(IN.CURRENT_TIME, CurrentTime(currentTime=unix_seconds))


def current_time_millis(unix_ms: int) -> bytes:
    return frame(IN.CURRENT_TIME_IN_MILLIS, CurrentTimeInMillis(currentTimeInMillis=unix_ms))


# ---------------------------------------------------------------------------
# Contract details


def contract_data(req_id: int, contract: FutureContract, now: dt.datetime, *,
                  exchange: str | None = None, sec_type: str = "FUT") -> bytes:
    """CONTRACT_DATA for a future, the fields a live Gateway sets for ES/MES (sv225)."""
    spec = contract.spec
    m = ContractData(reqId=req_id, contract=future_contract(contract, exchange=exchange, details=True,
                                                            sec_type=sec_type))
    d = m.contractDetails
    d.marketName = spec.root
    d.minTick = repr(spec.min_tick)
    d.orderTypes = spec.order_types
    d.validExchanges = spec.valid_exchanges
    d.priceMagnifier = 1
    d.underConId = spec.under_con_id
    d.longName = spec.long_name
    d.contractMonth = contract.contract_month
    d.timeZoneId = IB_CHICAGO
    d.tradingHours = trading_hours(now)
    d.liquidHours = liquid_hours(now)
    d.underSymbol = spec.root
    d.underSecType = "IND"
    d.marketRuleIds = spec.market_rule_ids
    d.realExpirationDate = f"{contract.last_trade_date:%Y%m%d}"
    d.minSize = d.sizeIncrement = d.suggestedSizeIncrement = "1"
    d.minAlgoSize = _MIN_ALGO_SIZE
    d.settlementMethod = _SETTLEMENT
    return frame(IN.CONTRACT_DATA, m)


def contract_data_end(req_id: int) -> bytes:
    return frame(IN.CONTRACT_DATA_END, ContractDataEnd(reqId=req_id))


# ---------------------------------------------------------------------------
# Market data


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str, snapshot_permissions: int) -> bytes:
    return frame(IN.TICK_REQ_PARAMS, TickReqParams(
        reqId=req_id, minTick=repr(float(min_tick)), bboExchange=bbo_exchange,
        snapshotPermissions=snapshot_permissions, lastPricePrecision=PRICE_PRECISION,
        lastSizePrecision=SIZE_PRECISION))


def market_data_type(req_id: int, md_type: int) -> bytes:
    return frame(IN.MARKET_DATA_TYPE, MarketDataType(reqId=req_id, marketDataType=md_type))


def tick_price(req_id: int, tick_type: int, price: float, size: int | Decimal, mask: int) -> bytes:
    return frame(IN.TICK_PRICE, TickPrice(reqId=req_id, tickType=tick_type, price=price,
                                          size=decimal_text(size), attrMask=mask))


def tick_size(req_id: int, tick_type: int, size: int | Decimal) -> bytes:
    return frame(IN.TICK_SIZE, TickSize(reqId=req_id, tickType=tick_type, size=decimal_text(size)))


def tick_string(req_id: int, tick_type: int, value: str) -> bytes:
    return frame(IN.TICK_STRING, TickString(reqId=req_id, tickType=tick_type, value=value))


def tick_generic(req_id: int, tick_type: int, value: float) -> bytes:
    return frame(IN.TICK_GENERIC, TickGeneric(reqId=req_id, tickType=tick_type, value=value))


def tick_snapshot_end(req_id: int) -> bytes:
    return frame(IN.TICK_SNAPSHOT_END, TickSnapshotEnd(reqId=req_id))


def tbt_last(req_id: int, all_last: bool, unix_s: int, price: float, size: int, mask: int,
             exchange: str, conditions: str) -> bytes:
    """TICK_BY_TICK Last (1) / AllLast (2); mask bit 0 pastLimit, bit 1 unreported."""
    m = TickByTickData(reqId=req_id, tickType=2 if all_last else 1)
    t = m.historicalTickLast
    t.time = unix_s
    t.tickAttribLast.pastLimit = bool(mask & 1)
    t.tickAttribLast.unreported = bool(mask & 2)
    t.price = price
    t.size = decimal_text(size)
    t.exchange = exchange
    if conditions:
        t.specialConditions = conditions
    return frame(IN.TICK_BY_TICK, m)


def tbt_bid_ask(req_id: int, unix_s: int, bid: float, ask: float, bid_size: int, ask_size: int,
                mask: int) -> bytes:
    """TICK_BY_TICK BidAsk (3); mask bit 0 bidPastLow, bit 1 askPastHigh."""
    m = TickByTickData(reqId=req_id, tickType=3)
    t = m.historicalTickBidAsk
    t.time = unix_s
    t.tickAttribBidAsk.bidPastLow = bool(mask & 1)
    t.tickAttribBidAsk.askPastHigh = bool(mask & 2)
    t.priceBid, t.priceAsk = bid, ask
    t.sizeBid, t.sizeAsk = decimal_text(bid_size), decimal_text(ask_size)
    return frame(IN.TICK_BY_TICK, m)


def tbt_midpoint(req_id: int, unix_s: int, mid: float) -> bytes:
    m = TickByTickData(reqId=req_id, tickType=4)
    t = m.historicalTickMidPoint
    t.time, t.price, t.size = unix_s, mid, "0"
    return frame(IN.TICK_BY_TICK, m)


# ---------------------------------------------------------------------------
# Lists' ends and accounts


def position_end() -> bytes:
    return frame(IN.POSITION_END, PositionEnd())


def open_order_end() -> bytes:
    return frame(IN.OPEN_ORDER_END, OpenOrdersEnd())


def completed_orders_end() -> bytes:
    return frame(IN.COMPLETED_ORDERS_END, CompletedOrdersEnd())


def execution_data_end(req_id: int) -> bytes:
    return frame(IN.EXECUTION_DATA_END, ExecutionDetailsEnd(reqId=req_id))


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return frame(IN.ACCT_VALUE, AccountValue(key=key, value=value, currency=currency, accountName=account))


def account_update_time(hhmm: str) -> bytes:
    return frame(IN.ACCT_UPDATE_TIME, AccountUpdateTime(timeStamp=hhmm))


def account_download_end(account: str) -> bytes:
    return frame(IN.ACCT_DOWNLOAD_END, AccountDataEnd(accountName=account))


def account_update_multi(req_id: int, account: str, model: str, key: str, value: str, currency: str) -> bytes:
    m = AccountUpdateMulti(reqId=req_id, account=account, key=key, value=value, currency=currency)
    if model:
        m.modelCode = model
    return frame(IN.ACCOUNT_UPDATE_MULTI, m)


def account_update_multi_end(req_id: int) -> bytes:
    return frame(IN.ACCOUNT_UPDATE_MULTI_END, AccountUpdateMultiEnd(reqId=req_id))
