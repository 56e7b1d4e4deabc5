"""Filters by direction, message name (patterns) and request id."""

from __future__ import annotations

from ibapi.message import OUT

from slob.ib import wire
from slob.testing import tws_messages as msg
from slob.trace.describe import Line, describe
from slob.trace.events import CLIENT, SERVER, Kind, TraceEvent
from slob.trace.filters import TraceFilter


def line(direction: str, frame: bytes) -> Line:
    return describe(TraceEvent(1.0, 1, direction, Kind.MESSAGE, frame[4:], 200))


REQ = line(CLIENT, wire.encode_message(OUT.CANCEL_MKT_DATA, [2, 5], 200))
PRICE = line(SERVER, msg.tick_price(5, 4, 1.0, 1, 0, 200))
SIZE = line(SERVER, msg.tick_size(6, 5, 2, 200))
TIME = line(SERVER, msg.current_time(1, 200))
OPEN = describe(TraceEvent(1.0, 1, "=", Kind.OPEN, note="x"))
ALL = [REQ, PRICE, SIZE, TIME, OPEN]


def kept(f: TraceFilter) -> list[Line]:
    return [x for x in ALL if f.accepts(x)]


def test_no_filter_keeps_everything() -> None:
    assert kept(TraceFilter()) == ALL


def test_direction() -> None:
    assert kept(TraceFilter(direction=CLIENT)) == [REQ, OPEN]
    assert kept(TraceFilter(direction=SERVER)) == [PRICE, SIZE, TIME, OPEN]


def test_names_and_patterns_any_case() -> None:
    assert kept(TraceFilter(names=("tick_*",))) == [PRICE, SIZE, OPEN]
    assert kept(TraceFilter(names=("CURRENT_TIME", "CANCEL_MKT_DATA"))) == [REQ, TIME, OPEN]


def test_request_ids() -> None:
    assert kept(TraceFilter(req_ids=frozenset({5}))) == [REQ, PRICE, OPEN]
    assert kept(TraceFilter(req_ids=frozenset({5}), direction=SERVER, names=("TICK_PRICE",))) == [PRICE, OPEN]
