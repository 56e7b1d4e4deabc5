"""What the fake TWS sends for historical data: TWS -> client text messages.

Field orders are the ones IB's client decodes (ibapi 10.50 ``decoder.py``; TWS-FACTS
§10) at server versions 100-200: HISTORICAL_DATA carries a version field below 124 and its
own start/end (with the end marker implied) below 196; from 196 the end is a separate
HISTORICAL_DATA_END. HISTORICAL_DATA_UPDATE sends close before high and low. From 208
(MIN_SERVER_VER_PROTOBUF_HISTORICAL_DATA) each function returns the protobuf frame of
:mod:`slob.testing.tws_proto_history` instead (:mod:`slob.testing.tws_versions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ibapi.message import IN

from slob.ib import wire
from slob.testing import tws_proto_history as pb
from slob.testing.tws_messages import price_text
from slob.testing.tws_versions import sends_protobuf

__all__ = [
    "BarRow",
    "SV_HISTORICAL_DATA_END",
    "SV_SYNT_REALTIME_BARS",
    "TickRow",
    "head_timestamp",
    "historical_data",
    "historical_data_end",
    "historical_data_update",
    "historical_ticks_bid_ask",
    "historical_ticks_last",
    "historical_ticks_midpoint",
]

#: HISTORICAL_DATA drops its version field (and hasGaps per bar); keepUpToDate exists.
SV_SYNT_REALTIME_BARS = 124
#: HISTORICAL_DATA loses its start/end fields; HISTORICAL_DATA_END (108) ends the answer.
SV_HISTORICAL_DATA_END = 196


@dataclass(frozen=True, slots=True)
class BarRow:
    """One bar as it goes on the wire (``date`` already formatted for the request)."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: int  # -1 where IB has none (MIDPOINT, BID_ASK...)
    wap: float
    count: int


@dataclass(frozen=True, slots=True)
class TickRow:
    """One historical tick: Unix second, price (or bid), size (or bid size) and, for
    BID_ASK, the ask side."""

    time: int
    price: float
    size: int
    ask: float = 0.0
    ask_size: int = 0


def _msg(msg_id: int, fields: list[object], sv: int) -> bytes:
    return wire.encode_message(msg_id, fields, sv)


def _decimal(value: float) -> str:
    """A volume/WAP as TWS prints decimals (``12``, ``21000.25``, ``-1``)."""
    if value == int(value):
        return str(int(value))
    return repr(round(float(value), 8))


def historical_data(req_id: int, bars: Sequence[BarRow], start: str, end: str, sv: int) -> bytes:
    """HISTORICAL_DATA (17); below 196 it also carries the answer's start and end."""
    if sends_protobuf(IN.HISTORICAL_DATA, sv):
        return pb.historical_data(req_id, bars)
    f: list[object] = []
    if sv < SV_SYNT_REALTIME_BARS:
        f.append(3)
    f.append(req_id)
    if sv < SV_HISTORICAL_DATA_END:
        f += [start, end]
    f.append(len(bars))
    for b in bars:
        f += [b.date, price_text(b.open), price_text(b.high), price_text(b.low), price_text(b.close),
              _decimal(b.volume), _decimal(b.wap)]
        if sv < SV_SYNT_REALTIME_BARS:
            f.append("false")  # hasGaps
        f.append(b.count)
    return _msg(IN.HISTORICAL_DATA, f, sv)


def historical_data_end(req_id: int, start: str, end: str, sv: int) -> bytes:
    """HISTORICAL_DATA_END (108): ``reqId|start|end``, from server version 196."""
    if sends_protobuf(IN.HISTORICAL_DATA_END, sv):
        return pb.historical_data_end(req_id, start, end)
    if sv < SV_HISTORICAL_DATA_END:
        raise ValueError(f"HISTORICAL_DATA_END does not exist at server version {sv} (from {SV_HISTORICAL_DATA_END})")
    return _msg(IN.HISTORICAL_DATA_END, [req_id, start, end], sv)


def historical_data_update(req_id: int, bar: BarRow, sv: int) -> bytes:
    """HISTORICAL_DATA_UPDATE (90): ``reqId|barCount|date|open|close|high|low|wap|volume``."""
    if sends_protobuf(IN.HISTORICAL_DATA_UPDATE, sv):
        return pb.historical_data_update(req_id, bar)
    return _msg(IN.HISTORICAL_DATA_UPDATE,
                [req_id, bar.count, bar.date, price_text(bar.open), price_text(bar.close), price_text(bar.high),
                 price_text(bar.low), _decimal(bar.wap), _decimal(bar.volume)], sv)


def historical_ticks_last(req_id: int, ticks: Sequence[TickRow], done: bool, sv: int, *,
                          exchange: str = "CME") -> bytes:
    """HISTORICAL_TICKS_LAST (98): per tick ``time|mask|price|size|exchange|conditions``."""
    if sends_protobuf(IN.HISTORICAL_TICKS_LAST, sv):
        return pb.historical_ticks_last(req_id, ticks, done, exchange=exchange)
    f: list[object] = [req_id, len(ticks)]
    for t in ticks:
        f += [t.time, 0, price_text(t.price), t.size, exchange, ""]
    f.append(done)
    return _msg(IN.HISTORICAL_TICKS_LAST, f, sv)


def historical_ticks_midpoint(req_id: int, ticks: Sequence[TickRow], done: bool, sv: int) -> bytes:
    """HISTORICAL_TICKS (96): per tick ``time|(unused)|price|size``."""
    if sends_protobuf(IN.HISTORICAL_TICKS, sv):
        return pb.historical_ticks_midpoint(req_id, ticks, done)
    f: list[object] = [req_id, len(ticks)]
    for t in ticks:
        f += [t.time, "", price_text(t.price), 0]
    f.append(done)
    return _msg(IN.HISTORICAL_TICKS, f, sv)


def historical_ticks_bid_ask(req_id: int, ticks: Sequence[TickRow], done: bool, sv: int) -> bytes:
    """HISTORICAL_TICKS_BID_ASK (97): per tick ``time|mask|bid|ask|bidSize|askSize``."""
    if sends_protobuf(IN.HISTORICAL_TICKS_BID_ASK, sv):
        return pb.historical_ticks_bid_ask(req_id, ticks, done)
    f: list[object] = [req_id, len(ticks)]
    for t in ticks:
        f += [t.time, 0, price_text(t.price), price_text(t.ask), t.size, t.ask_size]
    f.append(done)
    return _msg(IN.HISTORICAL_TICKS_BID_ASK, f, sv)


def head_timestamp(req_id: int, text: str, sv: int) -> bytes:
    """HEAD_TIMESTAMP (88): ``reqId|timestamp``."""
    if sends_protobuf(IN.HEAD_TIMESTAMP, sv):
        return pb.head_timestamp(req_id, text)
    return _msg(IN.HEAD_TIMESTAMP, [req_id, text], sv)
