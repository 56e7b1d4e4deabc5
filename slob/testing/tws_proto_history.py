"""What the fake TWS sends for historical data in the protobuf generation (server
version >= 208, MIN_SERVER_VER_PROTOBUF_HISTORICAL_DATA), built with IB's generated
classes: the same rows as the text forms of :mod:`slob.testing.tws_history_messages`,
volumes and WAPs as the decimal strings TWS writes there, every bar field set.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from ibapi.message import IN
from ibapi.protobuf.HeadTimestamp_pb2 import HeadTimestamp
from ibapi.protobuf.HistoricalData_pb2 import HistoricalData
from ibapi.protobuf.HistoricalDataEnd_pb2 import HistoricalDataEnd
from ibapi.protobuf.HistoricalDataUpdate_pb2 import HistoricalDataUpdate
from ibapi.protobuf.HistoricalTicks_pb2 import HistoricalTicks
from ibapi.protobuf.HistoricalTicksBidAsk_pb2 import HistoricalTicksBidAsk
from ibapi.protobuf.HistoricalTicksLast_pb2 import HistoricalTicksLast

from slob.testing.tws_proto_messages import decimal_text, frame

__all__ = ["head_timestamp", "historical_data", "historical_data_end", "historical_data_update",
           "historical_ticks_bid_ask", "historical_ticks_last", "historical_ticks_midpoint"]


class Bar(Protocol):
    """A bar row (:class:`slob.testing.tws_history_messages.BarRow`)."""

    @property
    def date(self) -> str: ...

    @property
    def open(self) -> float: ...

    @property
    def high(self) -> float: ...

    @property
    def low(self) -> float: ...

    @property
    def close(self) -> float: ...

    @property
    def volume(self) -> int: ...

    @property
    def wap(self) -> float: ...

    @property
    def count(self) -> int: ...


class Tick(Protocol):
    """A tick row (:class:`slob.testing.tws_history_messages.TickRow`)."""

    @property
    def time(self) -> int: ...

    @property
    def price(self) -> float: ...

    @property
    def size(self) -> int: ...

    @property
    def ask(self) -> float: ...

    @property
    def ask_size(self) -> int: ...


def _decimal(value: float) -> str:
    """A volume/WAP as TWS prints decimals (``12``, ``21000.25``, ``-1``)."""
    return str(int(value)) if value == int(value) else repr(round(float(value), 8))


def _fill_bar(out: Any, b: Bar) -> None:
    out.date, out.open, out.high, out.low, out.close = b.date, b.open, b.high, b.low, b.close
    out.volume, out.WAP, out.barCount = _decimal(b.volume), _decimal(b.wap), b.count


def historical_data(req_id: int, bars: Sequence[Bar]) -> bytes:
    m = HistoricalData(reqId=req_id)
    for b in bars:
        _fill_bar(m.historicalDataBars.add(), b)
    return frame(IN.HISTORICAL_DATA, m)


def historical_data_end(req_id: int, start: str, end: str) -> bytes:
    return frame(IN.HISTORICAL_DATA_END, HistoricalDataEnd(reqId=req_id, startDateStr=start, endDateStr=end))


def historical_data_update(req_id: int, bar: Bar) -> bytes:
    m = HistoricalDataUpdate(reqId=req_id)
    _fill_bar(m.historicalDataBar, bar)
    return frame(IN.HISTORICAL_DATA_UPDATE, m)


def historical_ticks_last(req_id: int, ticks: Sequence[Tick], done: bool, *, exchange: str = "CME") -> bytes:
    m = HistoricalTicksLast(reqId=req_id, isDone=done)
    for t in ticks:
        row = m.historicalTicksLast.add()
        row.time = t.time
        row.tickAttribLast.pastLimit = row.tickAttribLast.unreported = False
        row.price, row.size, row.exchange = t.price, decimal_text(t.size), exchange
    return frame(IN.HISTORICAL_TICKS_LAST, m)


def historical_ticks_midpoint(req_id: int, ticks: Sequence[Tick], done: bool) -> bytes:
    m = HistoricalTicks(reqId=req_id, isDone=done)
    for t in ticks:
        row = m.historicalTicks.add()
        row.time, row.price, row.size = t.time, t.price, "0"
    return frame(IN.HISTORICAL_TICKS, m)


def historical_ticks_bid_ask(req_id: int, ticks: Sequence[Tick], done: bool) -> bytes:
    m = HistoricalTicksBidAsk(reqId=req_id, isDone=done)
    for t in ticks:
        row = m.historicalTicksBidAsk.add()
        row.time = t.time
        row.tickAttribBidAsk.bidPastLow = row.tickAttribBidAsk.askPastHigh = False
        row.priceBid, row.priceAsk = t.price, t.ask
        row.sizeBid, row.sizeAsk = decimal_text(t.size), decimal_text(t.ask_size)
    return frame(IN.HISTORICAL_TICKS_BID_ASK, m)


def head_timestamp(req_id: int, text: str) -> bytes:
    return frame(IN.HEAD_TIMESTAMP, HeadTimestamp(reqId=req_id, headTimestamp=text))
