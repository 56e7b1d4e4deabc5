"""What the fake TWS receives: client -> TWS requests decoded into named fields.

Text requests: the layouts are the bytes IB's client sends at server versions 100-200
(../shared/TWS-FACTS.md §2.2, checked against ibapi 10.50 at 200 and 178), and at 201+
for the requests IB's client still sends as text. Trailing fields a version adds or
drops are tolerated: names are given to the fields present, extra ones land in
``extra``. Protobuf requests (server version >= 201, by family) are parsed with IB's
generated classes and given the same names (:mod:`slob.trace.tws_proto_requests`), so
a handler reads ``req.get("symbol")`` alike at both generations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ibapi.message import OUT

from slob.ib import wire
from slob.trace.tws_proto_requests import ProtobufRequestError, parse_request

__all__ = ["Request", "RequestError", "decode_request", "layout", "request_name"]

_CONTRACT = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass",
)

# msg id -> field names after the id (a leading "version" where the message has one).
LAYOUTS: dict[int, tuple[str, ...]] = {
    OUT.START_API: ("version", "clientId", "optionalCapabilities"),
    OUT.REQ_IDS: ("version", "numIds"),
    OUT.REQ_CURRENT_TIME: ("version",),
    OUT.REQ_CURRENT_TIME_IN_MILLIS: (),
    OUT.REQ_CONTRACT_DATA: ("version", "reqId") + _CONTRACT
    + ("includeExpired", "secIdType", "secId", "issuerId"),
    OUT.REQ_MKT_DATA: ("version", "reqId") + _CONTRACT
    + ("deltaNeutral", "genericTickList", "snapshot", "regulatorySnapshot", "mktDataOptions"),
    OUT.CANCEL_MKT_DATA: ("version", "reqId"),
    OUT.REQ_MARKET_DATA_TYPE: ("version", "marketDataType"),
    OUT.REQ_TICK_BY_TICK_DATA: ("reqId",) + _CONTRACT + ("tickType", "numberOfTicks", "ignoreSize"),
    OUT.CANCEL_TICK_BY_TICK_DATA: ("reqId",),
    OUT.REQ_POSITIONS: ("version",),
    OUT.CANCEL_POSITIONS: ("version",),
    OUT.REQ_OPEN_ORDERS: ("version",),
    OUT.REQ_ALL_OPEN_ORDERS: ("version",),
    OUT.REQ_AUTO_OPEN_ORDERS: ("version", "autoBind"),
    OUT.REQ_COMPLETED_ORDERS: ("apiOnly",),
    OUT.REQ_ACCT_DATA: ("version", "subscribe", "account"),
    OUT.REQ_EXECUTIONS: ("version", "reqId", "clientId", "account", "time", "symbol", "secType",
                         "exchange", "side", "lastNDays", "specificDatesCount"),
    OUT.REQ_MANAGED_ACCTS: ("version",),
    OUT.REQ_ACCOUNT_UPDATES_MULTI: ("version", "reqId", "account", "modelCode", "ledgerAndNLV"),
    OUT.CANCEL_ACCOUNT_UPDATES_MULTI: ("version", "reqId"),
    OUT.CANCEL_CONTRACT_DATA: ("reqId",),
    OUT.CANCEL_ORDER: ("orderId", "manualOrderCancelTime", "extOperator", "manualOrderIndicator"),
    OUT.REQ_GLOBAL_CANCEL: ("extOperator", "manualOrderIndicator"),
    # historical data (slob.testing.fake_history serves them)
    OUT.CANCEL_HISTORICAL_DATA: ("version", "reqId"),
    OUT.REQ_HEAD_TIMESTAMP: ("reqId",) + _CONTRACT + ("includeExpired", "useRTH", "whatToShow", "formatDate"),
    OUT.CANCEL_HEAD_TIMESTAMP: ("reqId",),
    OUT.REQ_HISTORICAL_TICKS: ("reqId",) + _CONTRACT + (
        "includeExpired", "startDateTime", "endDateTime", "numberOfTicks", "whatToShow", "useRTH", "ignoreSize",
        "miscOptions"),
}

# Server versions at which the order requests change shape (ibapi server_versions.py).
SV_MODELS_SUPPORT = 103
SV_ORDER_CONTAINER = 145  # PLACE_ORDER drops its version field
SV_MANUAL_ORDER_TIME = 169
SV_FA_PROFILE_DESUPPORT = 177  # PLACE_ORDER drops faProfile
SV_CME_TAGGING_FIELDS = 192  # CANCEL_ORDER / REQ_GLOBAL_CANCEL drop their version field
SV_SYNT_REALTIME_BARS = 124  # REQ_HISTORICAL_DATA drops its version field, adds keepUpToDate

#: PLACE_ORDER up to ocaType, as ibapi 10.50's ``EClient.placeOrder`` sends a non-combo
#: order (checked by encoding orders at server versions 111-200); what follows is kept
#: unnamed in ``extra``.
_PLACE_ORDER_HEAD = ("orderId",) + _CONTRACT + (
    "secIdType", "secId", "action", "totalQuantity", "orderType",
    "lmtPrice", "auxPrice", "tif", "ocaGroup", "account", "openClose", "origin", "orderRef",
    "transmit", "parentId", "blockOrder", "sweepToFill", "displaySize", "triggerMethod",
    "outsideRth", "hidden", "sharesAllocation", "discretionaryAmt", "goodAfterTime",
    "goodTillDate", "faGroup", "faMethod", "faPercentage",
)


def _place_order_layout(sv: int) -> tuple[str, ...]:
    names: tuple[str, ...] = ("version",) if sv < SV_ORDER_CONTAINER else ()
    names += _PLACE_ORDER_HEAD
    if sv < SV_FA_PROFILE_DESUPPORT:
        names += ("faProfile",)
    if sv >= SV_MODELS_SUPPORT:
        names += ("modelCode",)
    return names + ("shortSaleSlot", "designatedLocation", "exemptCode", "ocaType")


LAYOUTS[OUT.PLACE_ORDER] = _place_order_layout(200)


def _historical_data_layout(sv: int) -> tuple[str, ...]:
    """REQ_HISTORICAL_DATA as ibapi 10.50 sends it for a non-combo contract (sv >= 100)."""
    head: tuple[str, ...] = ("version",) if sv < SV_SYNT_REALTIME_BARS else ()
    tail: tuple[str, ...] = ("keepUpToDate",) if sv >= SV_SYNT_REALTIME_BARS else ()
    return head + ("reqId",) + _CONTRACT + (
        "includeExpired", "endDateTime", "barSizeSetting", "durationStr", "useRTH", "whatToShow", "formatDate",
    ) + tail + ("chartOptions",)


def layout(msg_id: int, sv: int = 200) -> tuple[str, ...]:
    """The field names of request ``msg_id`` as a client sends it at server version ``sv``."""
    if msg_id == OUT.PLACE_ORDER:
        return _place_order_layout(sv)
    if msg_id == OUT.REQ_HISTORICAL_DATA:
        return _historical_data_layout(sv)
    if msg_id == OUT.CANCEL_ORDER and sv < SV_CME_TAGGING_FIELDS:
        return ("version", "orderId") + (("manualOrderCancelTime",) if sv >= SV_MANUAL_ORDER_TIME else ())
    if msg_id == OUT.REQ_GLOBAL_CANCEL and sv < SV_CME_TAGGING_FIELDS:
        return ("version",)
    return LAYOUTS.get(msg_id, ())


_NAMES: dict[int, str] = {int(m): str(m.name) for m in OUT}


def request_name(msg_id: int) -> str:
    """IB's own name for an outgoing message id (``REQ_MKT_DATA``), or ``UNKNOWN_<id>``."""
    return _NAMES.get(msg_id, f"UNKNOWN_{msg_id}")


class RequestError(wire.WireError):
    """A request whose fields cannot be read (e.g. text where a number belongs)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One client request as the fake TWS saw it."""

    client_id: int | None  # from START_API; None before it
    msg_id: int
    name: str
    fields: Mapping[str, str]
    extra: tuple[str, ...] = ()
    raw: tuple[bytes, ...] = field(default=(), repr=False)
    #: the parsed protobuf message (IB's generated class) of a protobuf request, else None
    protobuf: Any = field(default=None, repr=False, compare=False)

    @property
    def encoding(self) -> str:
        """``"protobuf"`` or ``"text"``: how the request crossed the wire."""
        return "text" if self.protobuf is None else "protobuf"

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    def int(self, key: str, default: int | None = None) -> int:
        text = self.fields.get(key, "")
        if text == "":
            if default is None:
                raise RequestError(f"{self.name}: field {key} is missing or empty")
            return default
        try:
            return int(text)
        except ValueError:
            raise RequestError(f"{self.name}: field {key}={text!r} is not an integer") from None


def decode_request(message: wire.Message, client_id: int | None, server_version: int = 200) -> Request:
    """Name the fields of a request sent at ``server_version``: a text request by its
    layout (unknown message ids keep raw fields in ``extra``), a protobuf request by its
    parsed message. A protobuf body that does not parse raises :class:`RequestError`."""
    if message.protobuf is not None:
        try:
            named, parsed = parse_request(message.msg_id, message.protobuf)
        except ProtobufRequestError as exc:
            raise RequestError(str(exc)) from None
        return Request(client_id, message.msg_id, request_name(message.msg_id), named, (), (), parsed)
    texts = tuple(f.decode("latin-1") for f in message.fields)
    names = layout(message.msg_id, server_version)
    named = dict(zip(names, texts))
    extra = texts[len(names):]
    return Request(client_id, message.msg_id, request_name(message.msg_id), named, extra, message.fields)
