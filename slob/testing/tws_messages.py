"""What the fake TWS sends: TWS -> client messages, encoded for a server version.

Each function returns one complete frame. Up to server version 200, and from 201 for the
messages TWS still sends as text, field orders follow what IB's own client decodes at
that server version (ibapi 10.50 ``decoder.py``) and what live captures show
(../shared/TWS-FACTS.md §2): the version-dependent fields appear exactly where the
decoder expects them. From the version at which TWS moved a message to protobuf
(:mod:`slob.testing.tws_versions`) the function returns the protobuf frame of
:mod:`slob.testing.tws_proto_messages` instead.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from ibapi.message import IN

from slob.ib import wire
from slob.testing import tws_proto_messages as pb
from slob.testing.futures import IB_CHICAGO, FutureContract, liquid_hours, trading_hours
from slob.testing.tws_versions import MAX_SERVER_VERSION as MAX_SERVER_VERSION
from slob.testing.tws_versions import MAX_TEXT_SERVER_VERSION as MAX_TEXT_SERVER_VERSION
from slob.testing.tws_versions import sends_protobuf

# Server versions at which fields appear or move (ibapi server_versions.py).
SV_PAST_LIMIT = 109
SV_MD_SIZE_MULTIPLIER = 110
SV_AGG_GROUP = 121
SV_UNDERLYING_INFO = 122
SV_MARKET_RULES = 126
SV_REAL_EXPIRATION_DATE = 134
SV_TICK_BY_TICK = 137
SV_STOCK_TYPE = 152
SV_FRACTIONAL_SIZE = 163
SV_SIZE_RULES = 164
SV_ADVANCED_ORDER_REJECT = 166
SV_LAST_TRADE_DATE = 182
SV_INELIGIBILITY_REASONS = 186
SV_ERROR_TIME = 194
SV_CURRENT_TIME_IN_MILLIS = 197

UNSET_INT = 2147483647


def price_text(value: float) -> str:
    """A double as TWS's Java prints it for prices that fit (``21012.25``, ``21012.0``)."""
    return repr(float(value))


def _msg(msg_id: int, fields: list[object], sv: int) -> bytes:
    return wire.encode_message(msg_id, fields, sv)


# ---------------------------------------------------------------------------
# Session start


def server_hello(server_version: int, when: dt.datetime) -> bytes:
    """The handshake answer; the time as ``yyyyMMdd HH:mm:ss <zone>``."""
    stamp = f"{when:%Y%m%d %H:%M:%S} {when.tzname() or 'UTC'}"
    return wire.ServerHello(server_version, stamp).encode()


def managed_accounts(accounts: list[str], sv: int) -> bytes:
    if sends_protobuf(IN.MANAGED_ACCTS, sv):
        return pb.managed_accounts(accounts)
    return _msg(IN.MANAGED_ACCTS, [1, ",".join(accounts)], sv)


def next_valid_id(order_id: int, sv: int) -> bytes:
    if sends_protobuf(IN.NEXT_VALID_ID, sv):
        return pb.next_valid_id(order_id)
    return _msg(IN.NEXT_VALID_ID, [1, order_id], sv)


def error(req_id: int, code: int, text: str, sv: int, *, time_ms: int = 0, json: str = "") -> bytes:
    """ERR_MSG: ``2|id|code|text[|json]`` before 194, ``id|code|text|json|timeMs`` from 194."""
    if sends_protobuf(IN.ERR_MSG, sv):
        return pb.error(req_id, code, text, time_ms=time_ms, json=json)
    fields: list[object]
    if sv >= SV_ERROR_TIME:
        fields = [req_id, code, text, json, time_ms]
    else:
        fields = [2, req_id, code, text]
        if sv >= SV_ADVANCED_ORDER_REJECT:
            fields.append(json)
    return _msg(IN.ERR_MSG, fields, sv)


def current_time(unix_seconds: int, sv: int) -> bytes:
    if sends_protobuf(IN.CURRENT_TIME, sv):
        return pb.current_time(unix_seconds)
    return _msg(IN.CURRENT_TIME, [1, unix_seconds], sv)


def current_time_millis(unix_ms: int, sv: int) -> bytes:
    if sends_protobuf(IN.CURRENT_TIME_IN_MILLIS, sv):
        return pb.current_time_millis(unix_ms)
    return _msg(IN.CURRENT_TIME_IN_MILLIS, [unix_ms], sv)


# ---------------------------------------------------------------------------
# Contract details


def contract_data(
    req_id: int,
    contract: FutureContract,
    now: dt.datetime,
    sv: int,
    *,
    exchange: str | None = None,
    sec_type: str = "FUT",
) -> bytes:
    """CONTRACT_DATA for a future, every field where ibapi's decoder reads it at ``sv``."""
    if sends_protobuf(IN.CONTRACT_DATA, sv):
        return pb.contract_data(req_id, contract, now, exchange=exchange, sec_type=sec_type)
    spec = contract.spec
    f: list[object] = []
    if sv < SV_SIZE_RULES:
        f.append(8)  # message version, dropped at 164
    f += [req_id, spec.root, sec_type, contract.ib_last_trade_field]
    if sv >= SV_LAST_TRADE_DATE:
        f.append(f"{contract.last_trade_date:%Y%m%d}")
    f += [
        0,  # strike, printed as int 0 by TWS for futures
        "",  # right
        exchange or spec.exchange,
        spec.currency,
        contract.local_symbol,
        spec.root,  # marketName
        spec.root,  # tradingClass
        contract.con_id,
        spec.min_tick,
    ]
    if SV_MD_SIZE_MULTIPLIER <= sv < SV_SIZE_RULES:
        f.append(1)  # mdSizeMultiplier
    f += [
        spec.multiplier,
        spec.order_types,
        spec.valid_exchanges,
        1,  # priceMagnifier
        spec.under_con_id,
        spec.long_name,
        "",  # primaryExchange
        contract.contract_month,
        "",  # industry
        "",  # category
        "",  # subcategory
        IB_CHICAGO,
        trading_hours(now),
        liquid_hours(now),
        "",  # evRule
        "",  # evMultiplier (TWS leaves it empty for futures)
        0,  # secIdList count
    ]
    if sv >= SV_AGG_GROUP:
        f.append(UNSET_INT)
    if sv >= SV_UNDERLYING_INFO:
        f += [spec.root, "IND"]
    if sv >= SV_MARKET_RULES:
        f.append(spec.market_rule_ids)
    if sv >= SV_REAL_EXPIRATION_DATE:
        f.append(f"{contract.last_trade_date:%Y%m%d}")
    if sv >= SV_STOCK_TYPE:
        f.append("")
    if SV_FRACTIONAL_SIZE <= sv < SV_SIZE_RULES:
        f.append(1)  # sizeMinTick
    if sv >= SV_SIZE_RULES:
        f += [1, 1, 1]  # minSize, sizeIncrement, suggestedSizeIncrement
    if sv >= SV_INELIGIBILITY_REASONS:
        f.append(0)
    return _msg(IN.CONTRACT_DATA, f, sv)


def contract_data_end(req_id: int, sv: int) -> bytes:
    if sends_protobuf(IN.CONTRACT_DATA_END, sv):
        return pb.contract_data_end(req_id)
    return _msg(IN.CONTRACT_DATA_END, [1, req_id], sv)


def contract_details_answer(
    req_id: int,
    contracts: list[FutureContract],
    now: dt.datetime,
    sv: int,
    *,
    exchange: str = "",
    sec_type: str = "FUT",
    seed: int = 1,
) -> list[bytes]:
    """The whole answer to REQ_CONTRACT_DATA: one CONTRACT_DATA per contract and exchange
    (a blank ``exchange`` lists each of the contract's valid exchanges, GLOBEX reads as
    CME), in no particular order as a real gateway lists them -- shuffled reproducibly from
    ``seed`` and the request id -- then CONTRACT_DATA_END."""
    rows = []
    for contract in contracts:
        for name in [exchange.upper()] if exchange else contract.spec.valid_exchanges.split(","):
            rows.append((contract, "CME" if name == "GLOBEX" else name))
    random.Random(seed * 7919 + req_id).shuffle(rows)
    frames = [contract_data(req_id, c, now, sv, exchange=name, sec_type=sec_type) for c, name in rows]
    frames.append(contract_data_end(req_id, sv))
    return frames


# ---------------------------------------------------------------------------
# Market data


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str, snapshot_permissions: int, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_REQ_PARAMS, sv):
        return pb.tick_req_params(req_id, min_tick, bbo_exchange, snapshot_permissions)
    return _msg(IN.TICK_REQ_PARAMS, [req_id, min_tick, bbo_exchange, snapshot_permissions], sv)


def market_data_type(req_id: int, md_type: int, sv: int) -> bytes:
    if sends_protobuf(IN.MARKET_DATA_TYPE, sv):
        return pb.market_data_type(req_id, md_type)
    return _msg(IN.MARKET_DATA_TYPE, [1, req_id, md_type], sv)


def tick_price(req_id: int, tick_type: int, price: float, size: int | Decimal, mask: int, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_PRICE, sv):
        return pb.tick_price(req_id, tick_type, price, size, mask)
    return _msg(IN.TICK_PRICE, [6, req_id, tick_type, price_text(price), size, mask], sv)


def tick_size(req_id: int, tick_type: int, size: int | Decimal, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_SIZE, sv):
        return pb.tick_size(req_id, tick_type, size)
    return _msg(IN.TICK_SIZE, [6, req_id, tick_type, size], sv)


def tick_string(req_id: int, tick_type: int, value: str, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_STRING, sv):
        return pb.tick_string(req_id, tick_type, value)
    return _msg(IN.TICK_STRING, [6, req_id, tick_type, value], sv)


def tick_generic(req_id: int, tick_type: int, value: float, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_GENERIC, sv):
        return pb.tick_generic(req_id, tick_type, value)
    return _msg(IN.TICK_GENERIC, [6, req_id, tick_type, value], sv)


def tick_snapshot_end(req_id: int, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_SNAPSHOT_END, sv):
        return pb.tick_snapshot_end(req_id)
    return _msg(IN.TICK_SNAPSHOT_END, [1, req_id], sv)


def tbt_last(
    req_id: int, all_last: bool, unix_s: int, price: float, size: int, mask: int,
    exchange: str, conditions: str, sv: int,
) -> bytes:
    """TICK_BY_TICK Last (1) / AllLast (2): ``reqId|type|time|price|size|mask|exch|cond``."""
    if sends_protobuf(IN.TICK_BY_TICK, sv):
        return pb.tbt_last(req_id, all_last, unix_s, price, size, mask, exchange, conditions)
    return _msg(
        IN.TICK_BY_TICK,
        [req_id, 2 if all_last else 1, unix_s, price_text(price), size, mask, exchange, conditions],
        sv,
    )


def tbt_bid_ask(
    req_id: int, unix_s: int, bid: float, ask: float, bid_size: int, ask_size: int, mask: int, sv: int
) -> bytes:
    if sends_protobuf(IN.TICK_BY_TICK, sv):
        return pb.tbt_bid_ask(req_id, unix_s, bid, ask, bid_size, ask_size, mask)
    return _msg(
        IN.TICK_BY_TICK,
        [req_id, 3, unix_s, price_text(bid), price_text(ask), bid_size, ask_size, mask],
        sv,
    )


def tbt_midpoint(req_id: int, unix_s: int, mid: float, sv: int) -> bytes:
    if sends_protobuf(IN.TICK_BY_TICK, sv):
        return pb.tbt_midpoint(req_id, unix_s, mid)
    return _msg(IN.TICK_BY_TICK, [req_id, 4, unix_s, price_text(mid)], sv)


# ---------------------------------------------------------------------------
# Account and order start-up answers


def position_end(sv: int) -> bytes:
    if sends_protobuf(IN.POSITION_END, sv):
        return pb.position_end()
    return _msg(IN.POSITION_END, [1], sv)


def open_order_end(sv: int) -> bytes:
    if sends_protobuf(IN.OPEN_ORDER_END, sv):
        return pb.open_order_end()
    return _msg(IN.OPEN_ORDER_END, [1], sv)


def completed_orders_end(sv: int) -> bytes:
    if sends_protobuf(IN.COMPLETED_ORDERS_END, sv):
        return pb.completed_orders_end()
    return _msg(IN.COMPLETED_ORDERS_END, [], sv)


def execution_data_end(req_id: int, sv: int) -> bytes:
    if sends_protobuf(IN.EXECUTION_DATA_END, sv):
        return pb.execution_data_end(req_id)
    return _msg(IN.EXECUTION_DATA_END, [1, req_id], sv)


def account_value(key: str, value: str, currency: str, account: str, sv: int) -> bytes:
    if sends_protobuf(IN.ACCT_VALUE, sv):
        return pb.account_value(key, value, currency, account)
    return _msg(IN.ACCT_VALUE, [2, key, value, currency, account], sv)


def account_update_time(hhmm: str, sv: int) -> bytes:
    if sends_protobuf(IN.ACCT_UPDATE_TIME, sv):
        return pb.account_update_time(hhmm)
    return _msg(IN.ACCT_UPDATE_TIME, [1, hhmm], sv)


def account_download_end(account: str, sv: int) -> bytes:
    if sends_protobuf(IN.ACCT_DOWNLOAD_END, sv):
        return pb.account_download_end(account)
    return _msg(IN.ACCT_DOWNLOAD_END, [1, account], sv)


def account_update_multi(req_id: int, account: str, model: str, key: str, value: str,
                         currency: str, sv: int) -> bytes:
    if sends_protobuf(IN.ACCOUNT_UPDATE_MULTI, sv):
        return pb.account_update_multi(req_id, account, model, key, value, currency)
    return _msg(IN.ACCOUNT_UPDATE_MULTI, [1, req_id, account, model, key, value, currency], sv)


def account_update_multi_end(req_id: int, sv: int) -> bytes:
    if sends_protobuf(IN.ACCOUNT_UPDATE_MULTI_END, sv):
        return pb.account_update_multi_end(req_id)
    return _msg(IN.ACCOUNT_UPDATE_MULTI_END, [1, req_id], sv)
