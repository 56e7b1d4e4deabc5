"""Field names of the common TWS -> client text messages, per server version.

Taken from the order in which IB's own decoder reads them (ibapi 10.50.2 ``decoder.py``,
``orderdecoder.py``); a leading ``version`` field is named where the message still carries
one at that server version. Only the head of the long messages (CONTRACT_DATA, OPEN_ORDER,
EXECUTION_DATA) is named; the trace prints the rest as raw fields. Client -> TWS layouts
come from :func:`slob.trace.tws_requests.layout`.
"""

from __future__ import annotations

from ibapi.message import IN

__all__ = ["incoming_layout", "REQ_ID_NAMES"]

#: Field names that carry the id a message belongs to (first found wins).
REQ_ID_NAMES = ("reqId", "tickerId", "orderId", "id")

# Server versions at which these layouts change (ibapi server_versions.py).
_SV_MARKET_CAP_PRICE = 131  # ORDER_STATUS drops its version field
_SV_LAST_LIQUIDITY = 136  # EXECUTION_DATA drops its version field
_SV_ORDER_CONTAINER = 145  # OPEN_ORDER drops its version field
_SV_SIZE_RULES = 164  # CONTRACT_DATA drops its version field and mdSizeMultiplier
_SV_ADVANCED_ORDER_REJECT = 166
_SV_LAST_TRADE_DATE = 182
_SV_ERROR_TIME = 194  # ERR_MSG: id, code, msg, json, time (no version)
_SV_MD_SIZE_MULTIPLIER = 110

_CONTRACT = ("conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
             "multiplier", "exchange", "currency", "localSymbol", "tradingClass")

_FIXED: dict[int, tuple[str, ...]] = {
    IN.TICK_PRICE: ("version", "reqId", "tickType", "price", "size", "attrMask"),
    IN.TICK_SIZE: ("version", "reqId", "tickType", "size"),
    IN.TICK_STRING: ("version", "reqId", "tickType", "value"),
    IN.TICK_GENERIC: ("version", "reqId", "tickType", "value"),
    IN.MARKET_DATA_TYPE: ("version", "reqId", "marketDataType"),
    IN.TICK_REQ_PARAMS: ("reqId", "minTick", "bboExchange", "snapshotPermissions"),
    IN.TICK_SNAPSHOT_END: ("version", "reqId"),
    IN.NEXT_VALID_ID: ("version", "orderId"),
    IN.MANAGED_ACCTS: ("version", "accounts"),
    IN.CURRENT_TIME: ("version", "time"),
    IN.CURRENT_TIME_IN_MILLIS: ("timeInMillis",),
    IN.CONTRACT_DATA_END: ("version", "reqId"),
    IN.OPEN_ORDER_END: ("version",),
    IN.EXECUTION_DATA_END: ("version", "reqId"),
    IN.COMMISSION_AND_FEES_REPORT: ("version", "execId", "commission", "currency", "realizedPNL",
                                    "yield", "yieldRedemptionDate"),
    IN.POSITION_DATA: ("version", "account") + _CONTRACT + ("position", "avgCost"),
    IN.POSITION_END: ("version",),
    IN.COMPLETED_ORDERS_END: (),
    IN.ACCT_VALUE: ("version", "key", "value", "currency", "account"),
    IN.ACCT_UPDATE_TIME: ("version", "time"),
    IN.ACCT_DOWNLOAD_END: ("version", "account"),
    IN.ACCOUNT_UPDATE_MULTI: ("version", "reqId", "account", "modelCode", "key", "value", "currency"),
    IN.ACCOUNT_UPDATE_MULTI_END: ("version", "reqId"),
    IN.REROUTE_MKT_DATA_REQ: ("reqId", "conId", "exchange"),
}

_TICK_BY_TICK = {
    "1": ("price", "size", "attrMask", "exchange", "specialConditions"),  # Last
    "2": ("price", "size", "attrMask", "exchange", "specialConditions"),  # AllLast
    "3": ("bidPrice", "askPrice", "bidSize", "askSize", "attrMask"),  # BidAsk
    "4": ("midPoint",),  # MidPoint
}


def _error(sv: int) -> tuple[str, ...]:
    if sv >= _SV_ERROR_TIME:
        return ("id", "code", "msg", "advancedOrderRejectJson", "errorTime")
    names: tuple[str, ...] = ("version", "id", "code", "msg")
    return names + (("advancedOrderRejectJson",) if sv >= _SV_ADVANCED_ORDER_REJECT else ())


def _contract_data(sv: int) -> tuple[str, ...]:
    names: tuple[str, ...] = () if sv >= _SV_SIZE_RULES else ("version",)
    names += ("reqId", "symbol", "secType", "lastTradeDateOrContractMonth")
    if sv >= _SV_LAST_TRADE_DATE:
        names += ("lastTradeDate",)
    names += ("strike", "right", "exchange", "currency", "localSymbol", "marketName",
              "tradingClass", "conId", "minTick")
    if _SV_MD_SIZE_MULTIPLIER <= sv < _SV_SIZE_RULES:
        names += ("mdSizeMultiplier",)
    return names + ("multiplier", "orderTypes", "validExchanges", "priceMagnifier", "underConId",
                    "longName", "primaryExchange", "contractMonth", "industry", "category",
                    "subcategory", "timeZoneId", "tradingHours", "liquidHours")


def _order_status(sv: int) -> tuple[str, ...]:
    names: tuple[str, ...] = () if sv >= _SV_MARKET_CAP_PRICE else ("version",)
    names += ("orderId", "status", "filled", "remaining", "avgFillPrice", "permId", "parentId",
              "lastFillPrice", "clientId", "whyHeld")
    return names + (("mktCapPrice",) if sv >= _SV_MARKET_CAP_PRICE else ())


def _open_order(sv: int) -> tuple[str, ...]:
    names: tuple[str, ...] = () if sv >= _SV_ORDER_CONTAINER else ("version",)
    return names + ("orderId",) + _CONTRACT + (
        "action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup",
        "account", "openClose", "origin", "orderRef", "clientId", "permId")


def _execution(sv: int) -> tuple[str, ...]:
    names: tuple[str, ...] = () if sv >= _SV_LAST_LIQUIDITY else ("version",)
    return names + ("reqId", "orderId") + _CONTRACT + (
        "execId", "time", "acctNumber", "execExchange", "side", "shares", "price", "permId",
        "clientId", "liquidation", "cumQty", "avgPrice", "orderRef")


def incoming_layout(msg_id: int, sv: int, fields: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Names of the leading fields of TWS -> client message ``msg_id`` at ``sv``, or None
    when the trace does not name that message. ``fields`` (the message's text fields after
    its id) is needed where the layout depends on a value (TICK_BY_TICK's tick type)."""
    if msg_id == IN.ERR_MSG:
        return _error(sv)
    if msg_id == IN.CONTRACT_DATA:
        return _contract_data(sv)
    if msg_id == IN.ORDER_STATUS:
        return _order_status(sv)
    if msg_id == IN.OPEN_ORDER:
        return _open_order(sv)
    if msg_id == IN.EXECUTION_DATA:
        return _execution(sv)
    if msg_id == IN.TICK_BY_TICK:
        tick_type = fields[1] if len(fields) > 1 else ""
        return ("reqId", "tickType", "time") + _TICK_BY_TICK.get(tick_type, ())
    return _FIXED.get(msg_id)
