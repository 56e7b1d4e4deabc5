"""Which protocol generation a server version speaks, message by message.

Up to server version 200 every message is classic text (ASCII id, NUL-terminated
fields). From 201 (``MIN_SERVER_VER_PROTOBUF``) every message carries a 4-byte binary id,
and IB moved the message bodies to protobuf family by family:

* **client -> TWS** the version is IB's own: ``ibapi.common.getServerVersionForMessage``
  (what :func:`client_sends_protobuf` asks), e.g. REQ_EXECUTIONS 201, PLACE_ORDER 203,
  REQ_CONTRACT_DATA 205, REQ_MKT_DATA 206, REQ_POSITIONS 207, REQ_TICK_BY_TICK_DATA 208,
  START_API / REQ_IDS / REQ_CURRENT_TIME 213.
* **TWS -> client** the server chooses and IB's client decodes whatever arrives, so
  :data:`PROTOBUF_FROM` writes down what a real Gateway does. Read from the live captures
  in tests/data/captures: EXECUTION_DATA_END protobuf at 201, EXECUTION_DATA at 202;
  OPEN_ORDER, ORDER_STATUS and ERR_MSG at 203 (NEXT_VALID_ID, MANAGED_ACCTS, CURRENT_TIME
  still text); COMPLETED_ORDER(S_END) at 204; CONTRACT_DATA(_END) at 205; the market-data
  messages at 206; MANAGED_ACCTS at 207 (NEXT_VALID_ID still text); NEXT_VALID_ID,
  CURRENT_TIME and CURRENT_TIME_IN_MILLIS text up to 212 and protobuf from 213 (the
  sv208..225 matrix). Where no capture shows the switch, an answer moves with the request
  family that asks for it (COMMISSION_AND_FEES_REPORT with the executions at 201,
  OPEN_ORDER_END with the open-order requests at 204, positions and account values with
  the accounts family at 207, tick-by-tick and history at 208); ERR_MSG is first seen as
  protobuf at 203 and is taken to move there.

Both tables stop at :data:`MAX_SERVER_VERSION`, the highest version slob's fakes speak
(ibapi 10.50's ``MAX_CLIENT_VER``); nothing changes shape between 213 and 226 for the
messages the fakes send.
"""

from __future__ import annotations

import os

from ibapi.common import getServerVersionForMessage
from ibapi.message import IN

__all__ = [
    "SERVER_VERSION_ENV",
    "check_server_version",
    "default_server_version",
    "MAX_SERVER_VERSION",
    "MAX_TEXT_SERVER_VERSION",
    "MIN_PROTOBUF_SERVER_VERSION",
    "PROTOBUF_FROM",
    "client_sends_protobuf",
    "generation",
    "sends_protobuf",
]

#: The last server version whose messages are all classic text.
MAX_TEXT_SERVER_VERSION = 200
#: From here on message ids are 4 binary bytes (ibapi MIN_SERVER_VER_PROTOBUF).
MIN_PROTOBUF_SERVER_VERSION = 201
#: The highest server version FakeTWS and FakeEClient speak (ibapi 10.50's MAX_CLIENT_VER:
#: UNIFIED_VERSION_COND_ORDER_WITH_OVERNIGHT_PARAM).
MAX_SERVER_VERSION = 226

#: TWS -> client: the server version from which the message travels as protobuf.
PROTOBUF_FROM: dict[int, int] = {
    # executions (MIN_SERVER_VER_PROTOBUF)
    IN.EXECUTION_DATA: 201,
    IN.EXECUTION_DATA_END: 201,
    IN.COMMISSION_AND_FEES_REPORT: 201,
    # orders (MIN_SERVER_VER_PROTOBUF_PLACE_ORDER)
    IN.OPEN_ORDER: 203,
    IN.ORDER_STATUS: 203,
    IN.ORDER_BOUND: 203,
    IN.ERR_MSG: 203,
    # open and completed order lists (MIN_SERVER_VER_PROTOBUF_COMPLETED_ORDER)
    IN.OPEN_ORDER_END: 204,
    IN.COMPLETED_ORDER: 204,
    IN.COMPLETED_ORDERS_END: 204,
    # contract data (MIN_SERVER_VER_PROTOBUF_CONTRACT_DATA)
    IN.CONTRACT_DATA: 205,
    IN.BOND_CONTRACT_DATA: 205,
    IN.CONTRACT_DATA_END: 205,
    # market data (MIN_SERVER_VER_PROTOBUF_MARKET_DATA)
    IN.TICK_PRICE: 206,
    IN.TICK_SIZE: 206,
    IN.TICK_STRING: 206,
    IN.TICK_GENERIC: 206,
    IN.TICK_OPTION_COMPUTATION: 206,
    IN.TICK_SNAPSHOT_END: 206,
    IN.TICK_REQ_PARAMS: 206,
    IN.MARKET_DATA_TYPE: 206,
    IN.MARKET_DEPTH: 206,
    IN.MARKET_DEPTH_L2: 206,
    IN.REROUTE_MKT_DATA_REQ: 206,
    # accounts and positions (MIN_SERVER_VER_PROTOBUF_ACCOUNTS_POSITIONS)
    IN.MANAGED_ACCTS: 207,
    IN.ACCT_VALUE: 207,
    IN.PORTFOLIO_VALUE: 207,
    IN.ACCT_UPDATE_TIME: 207,
    IN.ACCT_DOWNLOAD_END: 207,
    IN.POSITION_DATA: 207,
    IN.POSITION_END: 207,
    IN.ACCOUNT_SUMMARY: 207,
    IN.ACCOUNT_SUMMARY_END: 207,
    IN.POSITION_MULTI: 207,
    IN.POSITION_MULTI_END: 207,
    IN.ACCOUNT_UPDATE_MULTI: 207,
    IN.ACCOUNT_UPDATE_MULTI_END: 207,
    # historical data and tick-by-tick (MIN_SERVER_VER_PROTOBUF_HISTORICAL_DATA)
    IN.HISTORICAL_DATA: 208,
    IN.HISTORICAL_DATA_UPDATE: 208,
    IN.HISTORICAL_DATA_END: 208,
    IN.HISTORICAL_SCHEDULE: 208,
    IN.HEAD_TIMESTAMP: 208,
    IN.HISTOGRAM_DATA: 208,
    IN.REAL_TIME_BARS: 208,
    IN.HISTORICAL_TICKS: 208,
    IN.HISTORICAL_TICKS_BID_ASK: 208,
    IN.HISTORICAL_TICKS_LAST: 208,
    IN.TICK_BY_TICK: 208,
    # the rest (MIN_SERVER_VER_PROTOBUF_REST_MESSAGES_3)
    IN.NEXT_VALID_ID: 213,
    IN.CURRENT_TIME: 213,
    IN.CURRENT_TIME_IN_MILLIS: 213,
}


def sends_protobuf(msg_id: int, server_version: int) -> bool:
    """Whether TWS sends message ``msg_id`` (``ibapi.message.IN``) as protobuf at
    ``server_version``; messages missing from :data:`PROTOBUF_FROM` stay text."""
    return server_version >= PROTOBUF_FROM.get(msg_id, 1 << 30)


def client_sends_protobuf(msg_id: int, server_version: int) -> bool:
    """Whether IB's client sends request ``msg_id`` (``ibapi.message.OUT``) as protobuf
    at ``server_version`` (IB's own table)."""
    return server_version >= MIN_PROTOBUF_SERVER_VERSION and server_version >= getServerVersionForMessage(msg_id)


def generation(server_version: int) -> str:
    """``"text"`` up to 200, ``"protobuf"`` from 201: the name tests and docs use."""
    return "text" if server_version <= MAX_TEXT_SERVER_VERSION else "protobuf"


#: Environment variable naming the server version FakeTWS and FakeEClient offer when a
#: test does not pass one (slob's own test suite sets it to run every FakeTWS test at
#: both generations; ``slob sim --server-version`` and ``slob demo``/``soak``/``bench``
#: take an option instead).
SERVER_VERSION_ENV = "SLOB_FAKE_TWS_SERVER_VERSION"


def check_server_version(server_version: int, who: str = "FakeTWS") -> int:
    """``server_version`` if the fakes speak it (100..:data:`MAX_SERVER_VERSION`), else
    ValueError naming the range."""
    if not isinstance(server_version, int) or not 100 <= server_version <= MAX_SERVER_VERSION:
        raise ValueError(
            f"server_version {server_version!r} is outside 100..{MAX_SERVER_VERSION}: {who} speaks the "
            f"classic text protocol up to {MAX_TEXT_SERVER_VERSION} and the protobuf generation from "
            f"{MIN_PROTOBUF_SERVER_VERSION} to {MAX_SERVER_VERSION}"
        )
    return server_version


def default_server_version() -> int:
    """The highest version the fakes offer by default: :data:`MAX_SERVER_VERSION`, or the
    value of :data:`SERVER_VERSION_ENV` when set."""
    text = os.environ.get(SERVER_VERSION_ENV, "").strip()
    if not text:
        return MAX_SERVER_VERSION
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{SERVER_VERSION_ENV}={text!r} is not a server version (an integer "
                         f"100..{MAX_SERVER_VERSION})") from None
    return check_server_version(value, f"{SERVER_VERSION_ENV}: the fake TWS")
