"""The reader thread's fast path for the messages that carry ticks.

IB's ``Decoder`` handles every message type through generic helpers that log each field
at debug level and build fresh attribute objects per tick; at tens of thousands of ticks
a second that is most of the client's CPU. :class:`HotDecoder` decodes only TICK_BY_TICK
(99), TICK_PRICE (1), TICK_SIZE (2) and TICK_STRING (46), in their text form (server
versions up to 200, and with a binary id from 201) and their protobuf form, and calls the
wrapper with **exactly the arguments IB's Decoder would pass** -- proven by a differential
hypothesis test (tests/ib/test_hot_decoder.py) over every server version slob supports.

Everything else, and any tick message it cannot decode cleanly (a missing field, a
number that does not parse), it declines *before calling the wrapper* (``decode`` returns
False), so the caller hands the frame to IB's Decoder, whose behaviour on bad input --
error callbacks, exceptions -- is then IB's own.

Two deliberate differences: the attribute objects (``TickAttrib``, ``TickAttribLast``,
``TickAttribBidAsk``) and the ``Decimal`` sizes are shared per distinct value instead of
built per tick -- equal to IB's, field for field; a wrapper must treat them as read-only
(Decimals are immutable anyway) --, and the protobuf message handed to
``tickByTickDataProtoBuf`` is reused by the next frames (a new one every 1,024 frames, which
bounds the memory upb keeps for it): a wrapper that keeps it must copy it.

A wrapper whose class sets ``ignores_proto_hooks = True`` (IBClient does: its hooks do
nothing) is not called with the ``tick*ProtoBuf`` hooks at all.

For protobuf, a field is read directly where its protobuf default equals what IB's
decoder substitutes for an unset field (0, 0.0, "", False), and ``HasField`` is asked only
where they differ (``reqId``'s NO_VALID_ID, ``size``'s UNSET_DECIMAL, a sub-message).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from ibapi.common import TickAttrib, TickAttribBidAsk, TickAttribLast
from ibapi.const import NO_VALID_ID, UNSET_DECIMAL, UNSET_DOUBLE, UNSET_INTEGER
from ibapi.message import IN
from ibapi.protobuf.TickByTickData_pb2 import TickByTickData as TickByTickDataProto
from ibapi.protobuf.TickPrice_pb2 import TickPrice as TickPriceProto
from ibapi.protobuf.TickSize_pb2 import TickSize as TickSizeProto
from ibapi.protobuf.TickString_pb2 import TickString as TickStringProto
from ibapi.server_versions import (
    MIN_SERVER_VER_ENCODE_MSG_ASCII7,
    MIN_SERVER_VER_PAST_LIMIT,
    MIN_SERVER_VER_PRE_OPEN_BID_ASK,
)
from ibapi.ticktype import TickTypeEnum

from slob.ib.wire import MIN_PROTOBUF_SERVER_VERSION, PROTOBUF_ID_OFFSET

__all__ = ["HOT_MESSAGE_IDS", "HotDecoder"]

HOT_MESSAGE_IDS = frozenset({IN.TICK_BY_TICK, IN.TICK_PRICE, IN.TICK_SIZE, IN.TICK_STRING})

# ibapi.utils.decode(Decimal, ...) maps these texts (and the empty field) to UNSET_DECIMAL.
_UNSET_SIZE_TEXTS = frozenset({b"", b"2147483647", b"9223372036854775807", b"1.7976931348623157E308",
                               b"-9223372036854775808"})
# A price tick's companion size tick (ibapi decoder.processTickPriceMsg).
_SIZE_TYPE_OF_PRICE_TYPE = {
    TickTypeEnum.BID: TickTypeEnum.BID_SIZE,
    TickTypeEnum.ASK: TickTypeEnum.ASK_SIZE,
    TickTypeEnum.LAST: TickTypeEnum.LAST_SIZE,
    TickTypeEnum.DELAYED_BID: TickTypeEnum.DELAYED_BID_SIZE,
    TickTypeEnum.DELAYED_ASK: TickTypeEnum.DELAYED_ASK_SIZE,
    TickTypeEnum.DELAYED_LAST: TickTypeEnum.DELAYED_LAST_SIZE,
}
_NOT_SET = TickTypeEnum.NOT_SET
# What a text field that fails to parse raises: int()/float() ValueError, Decimal()
# InvalidOperation (an ArithmeticError), bytes.decode() UnicodeDecodeError (a ValueError),
# a missing field IndexError.
_UNDECODABLE = (ValueError, ArithmeticError, IndexError)

Handler = Callable[[Any], bool]


def _size(text: bytes) -> Decimal:
    return UNSET_DECIMAL if text in _UNSET_SIZE_TEXTS else _decimal(text.decode())


#: Frames parsed into one reused TickByTickData before it is replaced (see _tick_by_tick_proto).
_RENEW_AFTER = 1024

# Sizes repeat (1, 2, 5 contracts...): one Decimal per distinct text, up to a bound.
_DECIMALS: dict[str, Decimal] = {}
_DECIMALS_MAX = 4096


def _decimal(text: str) -> Decimal:
    """``Decimal(text)``, shared per text (raises as Decimal does)."""
    value = _DECIMALS.get(text)
    if value is None:
        value = Decimal(text)
        if len(_DECIMALS) < _DECIMALS_MAX:
            _DECIMALS[text] = value
    return value


def _text(raw: bytes) -> str:
    return raw.decode("UTF-8", errors="backslashreplace")


def _last_attrib(past_limit: bool, unreported: bool) -> TickAttribLast:
    attrib = TickAttribLast()
    attrib.pastLimit, attrib.unreported = past_limit, unreported
    return attrib


def _bid_ask_attrib(bid_past_low: bool, ask_past_high: bool) -> TickAttribBidAsk:
    attrib = TickAttribBidAsk()
    attrib.bidPastLow, attrib.askPastHigh = bid_past_low, ask_past_high
    return attrib


_LAST_ATTRIBS = tuple(_last_attrib(m & 1 != 0, m & 2 != 0) for m in range(4))
_BID_ASK_ATTRIBS = tuple(_bid_ask_attrib(m & 1 != 0, m & 2 != 0) for m in range(4))


class HotDecoder:
    """Decodes tick frames for ``wrapper`` at ``server_version``; see the module docstring.

    Single-threaded: call :meth:`decode` from the one thread that reads the socket.
    """

    __slots__ = ("wrapper", "server_version", "_text_by_head", "_text_by_id", "_proto_by_id",
                 "_price_attribs", "_string_encoding", "_all_last", "_tbt_proto", "_tbt_parses", "_binary_by_head",
                 "_hooks")

    def __init__(self, wrapper: Any, server_version: int) -> None:
        self.wrapper = wrapper
        self.server_version = server_version
        self._all_last = wrapper.tickByTickAllLast  # the hottest call, bound once
        text: dict[int, Handler] = {
            IN.TICK_BY_TICK: self._tick_by_tick, IN.TICK_PRICE: self._tick_price,
            IN.TICK_SIZE: self._tick_size, IN.TICK_STRING: self._tick_string,
        }
        self._text_by_id = text
        self._text_by_head = {str(msg_id).encode(): handler for msg_id, handler in text.items()}
        self._proto_by_id: dict[int, Handler] = {
            IN.TICK_BY_TICK: self._tick_by_tick_proto, IN.TICK_PRICE: self._tick_price_proto,
            IN.TICK_SIZE: self._tick_size_proto, IN.TICK_STRING: self._tick_string_proto,
        }
        # From 201 a frame starts with a 4-byte id: the protobuf form's (id + offset), or
        # the text form's. Looked up by those 4 bytes, as the text ids are by their digits.
        self._binary_by_head: dict[bytes, tuple[bool, Handler]] = {
            **{msg_id.to_bytes(4, "big"): (False, handler) for msg_id, handler in text.items()},
            **{(msg_id + PROTOBUF_ID_OFFSET).to_bytes(4, "big"): (True, handler)
               for msg_id, handler in self._proto_by_id.items()},
        }
        #: Call the tick*ProtoBuf hooks (False when the wrapper says it ignores them).
        self._hooks = not getattr(type(wrapper), "ignores_proto_hooks", False)
        self._price_attribs: dict[int, TickAttrib] = {}
        # ibapi decoder.interpretWithSignature (how TICK_STRING's text fields are read)
        self._string_encoding = ("unicode-escape" if server_version >= MIN_SERVER_VER_ENCODE_MSG_ASCII7
                                 else "UTF-8")
        self._tbt_proto = TickByTickDataProto()  # parsed into for every frame (see the module docstring)
        self._tbt_parses = 0

    def decode(self, payload: bytes) -> bool:
        """Decode one frame payload and call the wrapper; False (nothing called) when it is
        not a tick message or cannot be decoded cleanly -- hand it to IB's Decoder then."""
        if self.server_version < MIN_PROTOBUF_SERVER_VERSION:
            # One split: [id, field, ..., b""]; popping the empty item the final NUL
            # leaves also checks that the payload ended with one.
            f = payload.split(b"\x00")
            handler = self._text_by_head.get(f[0])
            if handler is None or f.pop():
                return False
            return handler(f)
        found = self._binary_by_head.get(payload[:4])
        if found is None:
            return False
        proto, handler = found
        if proto:
            return handler(payload[4:])
        if len(payload) < 5 or payload[-1] != 0:
            return False
        return handler([b""] + payload[4:-1].split(b"\x00"))  # the same shape as above

    # -- text forms: f[0] is the message id, then the fields ----------------------------

    def _tick_by_tick(self, f: list[bytes]) -> bool:
        # ibapi decoder.processTickByTickMsg
        try:
            req_id, tick_type, time = int(f[1] or 0), int(f[2] or 0), int(f[3] or 0)
            if tick_type == 1 or tick_type == 2:
                price, size, mask = float(f[4] or 0), _size(f[5]), int(f[6] or 0)
                exchange, special = _text(f[7]), _text(f[8])
            elif tick_type == 3:
                bid, ask = float(f[4] or 0), float(f[5] or 0)
                bid_size, ask_size, mask = _size(f[6]), _size(f[7]), int(f[8] or 0)
            elif tick_type == 4:
                mid = float(f[4] or 0)
        except _UNDECODABLE:
            return False
        if tick_type == 1 or tick_type == 2:
            self._all_last(req_id, tick_type, time, price, size, _LAST_ATTRIBS[mask & 3], exchange, special)
        elif tick_type == 3:
            self.wrapper.tickByTickBidAsk(req_id, time, bid, ask, bid_size, ask_size, _BID_ASK_ATTRIBS[mask & 3])
        elif tick_type == 4:
            self.wrapper.tickByTickMidPoint(req_id, time, mid)
        return True

    def _price_attrib(self, mask: int) -> TickAttrib:
        attrib = self._price_attribs.get(mask)
        if attrib is None:
            # ibapi decoder.processTickPriceMsg
            attrib = TickAttrib()
            attrib.canAutoExecute = mask == 1
            if self.server_version >= MIN_SERVER_VER_PAST_LIMIT:
                attrib.canAutoExecute = mask & 1 != 0
                attrib.pastLimit = mask & 2 != 0
                if self.server_version >= MIN_SERVER_VER_PRE_OPEN_BID_ASK:
                    attrib.preOpen = mask & 4 != 0
            if len(self._price_attribs) < 64:  # masks are small flags; do not grow on junk
                self._price_attribs[mask] = attrib
        return attrib

    def _tick_price(self, f: list[bytes]) -> bool:
        try:  # f[1] is the message version: unused, but IB's decoder parses it (and fails on junk)
            int(f[1] or 0)
            req_id, tick_type, price = int(f[2] or 0), int(f[3] or 0), float(f[4] or 0)
            size, mask = _size(f[5]), int(f[6] or 0)
        except _UNDECODABLE:
            return False
        self._emit_price(req_id, tick_type, price, size, self._price_attrib(mask))
        return True

    def _emit_price(self, req_id: int, tick_type: int, price: float, size: Decimal, attrib: TickAttrib) -> None:
        wrapper = self.wrapper
        wrapper.tickPrice(req_id, tick_type, price, attrib)
        size_type = _SIZE_TYPE_OF_PRICE_TYPE.get(tick_type)
        if size_type is not None:
            wrapper.tickSize(req_id, size_type, size)

    def _tick_size(self, f: list[bytes]) -> bool:
        try:  # f[1] is the message version: unused, but parsed as IB's decoder does
            int(f[1] or 0)
            req_id, tick_type, size = int(f[2] or 0), int(f[3] or 0), _size(f[4])
        except _UNDECODABLE:
            return False
        if tick_type != _NOT_SET:
            self.wrapper.tickSize(req_id, tick_type, size)
        return True

    def _tick_string(self, f: list[bytes]) -> bool:
        # ibapi decoder.interpretWithSignature for EWrapper.tickString: exactly version,
        # reqId, tickType, value; another count is logged there and dropped.
        if len(f) != 5:  # id, version, reqId, tickType, value
            return False
        encoding = self._string_encoding
        try:
            req_id, tick_type, value = (_wide(f[2], encoding), _wide(f[3], encoding), _wide(f[4], encoding))
            req, kind = int(req_id), int(tick_type)
        except _UNDECODABLE:
            return False
        self.wrapper.tickString(req, kind, value)
        return True

    # -- protobuf forms ----------------------------------------------------------------

    def _tick_by_tick_proto(self, body: bytes) -> bool:
        # ibapi decoder.processTickByTickMsgProtoBuf + decoder_utils.decodeHistoricalTick*
        # upb (protobuf's C core) never frees what a parse allocates in the message's arena
        # until the message dies: parsing into one message for ever grows by ~120 bytes a
        # tick. A new message every _RENEW_AFTER frames bounds it at the reuse's speed.
        self._tbt_parses += 1
        if self._tbt_parses >= _RENEW_AFTER:
            self._tbt_parses = 0
            self._tbt_proto = TickByTickDataProto()
        proto = self._tbt_proto
        try:
            proto.ParseFromString(body)
            tick_type = proto.tickType  # unset reads 0, as IB's default
            if (tick_type == 1 or tick_type == 2) and proto.HasField("historicalTickLast"):
                # the hot case, inline: _tick_by_tick_call's first branch
                req_id = proto.reqId
                if not req_id and not proto.HasField("reqId"):
                    req_id = NO_VALID_ID
                t = proto.historicalTickLast
                a = t.tickAttribLast  # unset: a default one, both flags False (mask 0, as IB's)
                size = t.size
                last = (req_id, tick_type, t.time, t.price,
                        _decimal(size) if size or t.HasField("size") else UNSET_DECIMAL,
                        _LAST_ATTRIBS[a.pastLimit + 2 * a.unreported], t.exchange, t.specialConditions)
                call = None
            else:
                last = None
                call = self._tick_by_tick_call(proto)
        except Exception:  # DecodeError, or a size text Decimal cannot read: IB's path reports it
            return False
        if last is not None:  # the wrapper is called outside the try: its failures are its own
            if self._hooks:
                self.wrapper.tickByTickDataProtoBuf(proto)
            self._all_last(*last)
            return True
        if self._hooks:
            self.wrapper.tickByTickDataProtoBuf(proto)
        if call is not None:
            method, args = call
            method(*args)
        return True

    def _tick_by_tick_call(self, proto: Any) -> tuple[Callable[..., None], tuple[Any, ...]] | None:
        req_id = proto.reqId
        if not req_id and not proto.HasField("reqId"):
            req_id = NO_VALID_ID
        tick_type = proto.tickType  # unset reads 0, as IB's default
        wrapper = self.wrapper
        if (tick_type == 1 or tick_type == 2) and proto.HasField("historicalTickLast"):
            t = proto.historicalTickLast
            # An unset tickAttribLast reads as a default one, both flags False: mask 0, as IB's.
            a = t.tickAttribLast
            size = t.size
            return self._all_last, (
                req_id, tick_type, t.time, t.price,
                _decimal(size) if size or t.HasField("size") else UNSET_DECIMAL,
                _LAST_ATTRIBS[a.pastLimit + 2 * a.unreported], t.exchange, t.specialConditions)
        if tick_type == 3 and proto.HasField("historicalTickBidAsk"):
            q = proto.historicalTickBidAsk
            b = q.tickAttribBidAsk if q.HasField("tickAttribBidAsk") else None
            mask = 0 if b is None else ((b.HasField("bidPastLow") and b.bidPastLow)
                                        + 2 * (b.HasField("askPastHigh") and b.askPastHigh))
            return wrapper.tickByTickBidAsk, (
                req_id, q.time if q.HasField("time") else 0,
                q.priceBid if q.HasField("priceBid") else 0.0, q.priceAsk if q.HasField("priceAsk") else 0.0,
                Decimal(q.sizeBid) if q.HasField("sizeBid") else UNSET_DECIMAL,
                Decimal(q.sizeAsk) if q.HasField("sizeAsk") else UNSET_DECIMAL, _BID_ASK_ATTRIBS[mask])
        if tick_type == 4 and proto.HasField("historicalTickMidPoint"):
            m = proto.historicalTickMidPoint
            return wrapper.tickByTickMidPoint, (req_id, m.time if m.HasField("time") else 0,
                                                m.price if m.HasField("price") else 0.0)
        return None

    def _tick_price_proto(self, body: bytes) -> bool:
        # ibapi decoder.processTickPriceMsgProtoBuf: the attribute bits are read whatever
        # the server version (unlike the text form).
        proto = TickPriceProto()
        try:
            proto.ParseFromString(body)
            size = Decimal(proto.size) if proto.HasField("size") else UNSET_DECIMAL
        except Exception:  # DecodeError, or a size text Decimal cannot read
            return False
        if self._hooks:
            self.wrapper.tickPriceProtoBuf(proto)
        mask = proto.attrMask if proto.HasField("attrMask") else UNSET_INTEGER
        attrib = TickAttrib()
        attrib.canAutoExecute, attrib.pastLimit, attrib.preOpen = mask & 1 != 0, mask & 2 != 0, mask & 4 != 0
        self._emit_price(proto.reqId if proto.HasField("reqId") else NO_VALID_ID,
                         proto.tickType if proto.HasField("tickType") else UNSET_INTEGER,
                         proto.price if proto.HasField("price") else UNSET_DOUBLE, size, attrib)
        return True

    def _tick_size_proto(self, body: bytes) -> bool:
        # ibapi decoder.processTickSizeMsgProtoBuf
        proto = TickSizeProto()
        try:
            proto.ParseFromString(body)
            size = Decimal(proto.size) if proto.HasField("size") else UNSET_DECIMAL
        except Exception:
            return False
        if self._hooks:
            self.wrapper.tickSizeProtoBuf(proto)
        tick_type = proto.tickType if proto.HasField("tickType") else UNSET_INTEGER
        if tick_type != _NOT_SET:
            self.wrapper.tickSize(proto.reqId if proto.HasField("reqId") else NO_VALID_ID, tick_type, size)
        return True

    def _tick_string_proto(self, body: bytes) -> bool:
        # ibapi decoder.processTickStringMsgProtoBuf
        proto = TickStringProto()
        try:
            proto.ParseFromString(body)
        except Exception:
            return False
        if self._hooks:
            self.wrapper.tickStringProtoBuf(proto)
        tick_type = proto.tickType if proto.HasField("tickType") else UNSET_INTEGER
        if tick_type != _NOT_SET:
            self.wrapper.tickString(proto.reqId if proto.HasField("reqId") else NO_VALID_ID, tick_type,
                                    proto.value if proto.HasField("value") else "")
        return True


def _wide(raw: bytes, encoding: str) -> str:
    # ibapi decoder.interpretWithSignature: latin-1 when the declared encoding fails
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return raw.decode("latin-1")
