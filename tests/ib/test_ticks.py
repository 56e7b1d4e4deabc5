"""Tick conversion (``slob.ib.ticks``): pure properties, then the same properties end to
end -- frames encoded on the wire, read by IBClient's reader thread through IB's own
Decoder, converted, handed to the sink.

The end-to-end tests use a ``socket.socketpair()`` and a handshaken
:class:`~slob.ib.handshake.Session` built by hand (no FakeTWS): the test writes frames
from :mod:`slob.testing.tws_messages` (text, server versions 150/178/200) or protobuf
bodies built with IB's generated classes (server version 208) on the server end.
"""

from __future__ import annotations

import datetime as dt
import math
import socket
import sys
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibapi.const import UNSET_DECIMAL
from ibapi.message import IN
from ibapi.protobuf.HistoricalTickLast_pb2 import HistoricalTickLast
from ibapi.protobuf.TickAttribLast_pb2 import TickAttribLast
from ibapi.protobuf.TickByTickData_pb2 import TickByTickData

from slob.ib import ticks, wire
from slob.ib.client import ConnectionClosed, IBClient, Subscription
from slob.ib.handshake import Session
from slob.ib.ticks import ContractRef, LastTradeMerger, Rejection
from slob.model import Quote, Tick
from slob.testing import tws_messages as tm

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
WIRE = settings(
    max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
UTC = dt.timezone.utc
UNSET_DOUBLE = sys.float_info.max  # ibapi.const.UNSET_DOUBLE
NQ = ContractRef("NQ", "NQZ4", 0.25)

# ---------------------------------------------------------------------------
# Strategies

MIN_TICKS = st.sampled_from([0.25, 0.01, 0.5, 0.1, 1.0, 0.005])
UNIX = st.integers(min_value=0, max_value=4_102_444_800)  # 1970 .. 2100
STEPS = st.integers(min_value=1, max_value=10**8)
EXCHANGES = st.sampled_from(["CME", "GLOBEX", "QBALGO", "", "ISLAND"])
NS = st.integers(min_value=1, max_value=2**62)

INT_SIZES = st.integers(min_value=0, max_value=10**9)
FLOAT_SIZES = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
# Decimal sizes below 2**31-1: IB's decoder reads that one value (and 2**63-1) as "unset".
DECIMAL_SIZES = st.one_of(
    st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False, places=0),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, allow_infinity=False, places=4),
    st.sampled_from([Decimal("0.5"), Decimal("0.0001"), Decimal("0"), Decimal("1E+2")]),
)
VALID_SIZES = st.one_of(INT_SIZES, FLOAT_SIZES, DECIMAL_SIZES)


@st.composite
def on_grid(draw: st.DrawFn, min_tick: float | None = None) -> tuple[float, float]:
    """(min_tick, a positive price that is a whole number of ticks)."""
    tick = draw(MIN_TICKS) if min_tick is None else min_tick
    return tick, draw(STEPS) * tick


@st.composite
def off_grid(draw: st.DrawFn) -> tuple[float, float]:
    tick = draw(MIN_TICKS)
    steps = draw(st.integers(min_value=0, max_value=10**6))
    frac = draw(st.floats(min_value=0.001, max_value=0.999))
    return tick, (steps + frac) * tick


# Invalid prices, with the reason each must give.
BAD_PRICES = st.one_of(
    st.sampled_from([0.0, -0.0, -1.0]).map(lambda p: (p, "price_not_positive")),
    st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False).map(lambda p: (p, "price_not_positive")),
    st.sampled_from([math.nan, math.inf, -math.inf]).map(lambda p: (p, "price_not_finite")),
    st.just((UNSET_DOUBLE, "price_unset")),  # ibapi's "no value" double
)
# Invalid sizes, with the reason each must give.
BAD_SIZES = st.one_of(
    st.integers(max_value=-1).map(lambda s: (s, "size_negative")),
    st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False).map(lambda s: (s, "size_negative")),
    st.decimals(max_value=Decimal("-0.0001"), allow_nan=False, allow_infinity=False).map(
        lambda s: (s, "size_negative")),
    st.sampled_from([
        (math.nan, "size_not_finite"),
        (math.inf, "size_not_finite"),
        (-math.inf, "size_not_finite"),
        (Decimal("Infinity"), "size_not_finite"),
        (Decimal("NaN"), "size_unset"),
        (UNSET_DECIMAL, "size_unset"),
        (Decimal(2**63 - 1), "size_unset"),
        (Decimal(2**31 - 1), "size_unset"),
    ]),
)


def utc(unix_s: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_s, UTC)


def assert_tick(tick: object, ref: ContractRef, price: float, size: Any, unix_s: int, exchange: str,
                received_ns: int | None = None) -> None:
    assert type(tick) is Tick, tick
    assert tick.symbol == ref.symbol
    assert tick.contract == ref.contract
    assert tick.price == float(price) and type(tick.price) is float
    assert tick.size == float(size) and type(tick.size) is float
    assert tick.timestamp == utc(unix_s)
    assert tick.timestamp.tzinfo is not None and tick.timestamp.utcoffset() == dt.timedelta(0)
    assert tick.timestamp.timestamp() == unix_s
    assert tick.exchange == exchange
    assert tick.delayed == ref.delayed
    if received_ns is not None:
        assert tick.received_ns == received_ns


# ---------------------------------------------------------------------------
# trade()


@PROPERTY
@given(on_grid(), VALID_SIZES, UNIX, EXCHANGES, NS, st.booleans())
def test_trade_of_valid_fields_is_a_tick_with_equal_fields(
    grid: tuple[float, float], size: Any, unix_s: int, exchange: str, ns: int, delayed: bool,
) -> None:
    tick_size, price = grid
    ref = ContractRef("NQ", "NQZ4", tick_size, delayed)
    assert_tick(ticks.trade(ref, unix_s, price, size, exchange, ns), ref, price, size, unix_s, exchange, ns)


@PROPERTY
@given(BAD_PRICES, VALID_SIZES, UNIX)
def test_trade_with_a_price_that_is_not_positive_and_finite_is_rejected(
    bad: tuple[float, str], size: Any, unix_s: int,
) -> None:
    price, reason = bad
    result = ticks.trade(NQ, unix_s, price, size, "CME", 1)
    assert type(result) is Rejection
    assert result.reason == reason
    assert result.detail


@PROPERTY
@given(off_grid(), VALID_SIZES, UNIX)
def test_trade_off_the_min_tick_grid_is_rejected(grid: tuple[float, float], size: Any, unix_s: int) -> None:
    tick_size, price = grid
    result = ticks.trade(ContractRef("NQ", "NQZ4", tick_size), unix_s, price, size, "CME", 1)
    assert type(result) is Rejection
    assert result.reason == "price_off_grid"
    assert str(tick_size) in result.detail


@PROPERTY
@given(on_grid(0.25), BAD_SIZES, UNIX)
def test_trade_with_a_negative_unset_or_nan_size_is_rejected(
    grid: tuple[float, float], bad: tuple[Any, str], unix_s: int,
) -> None:
    _, price = grid
    size, reason = bad
    result = ticks.trade(NQ, unix_s, price, size, "CME", 1)
    assert type(result) is Rejection
    assert result.reason == reason


def price_is_valid(price: Any, min_tick: float) -> bool:
    if not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0 or price == UNSET_DOUBLE:
        return False
    steps = price / min_tick
    return math.isfinite(steps) and abs(steps - round(steps)) <= 1e-6


def size_is_valid(size: Any) -> bool:
    if isinstance(size, Decimal) and (size.is_nan() or size in (UNSET_DECIMAL, Decimal(2**63 - 1),
                                                                Decimal(2**31 - 1))):
        return False
    return math.isfinite(float(size)) and float(size) >= 0


REASONS = {"price_not_finite", "price_not_positive", "price_unset", "price_off_grid",
           "size_unset", "size_not_finite", "size_negative"}


@PROPERTY
@given(
    st.one_of(st.floats(), st.floats(min_value=1e300), st.integers(min_value=-(10**12), max_value=10**12)),
    st.one_of(st.floats(), st.integers(min_value=-(10**12), max_value=10**12), st.decimals()),
    MIN_TICKS,
)
def test_trade_never_raises_and_only_accepts_what_it_should(price: Any, size: Any, min_tick: float) -> None:
    ref = ContractRef("NQ", "NQZ4", min_tick)
    result = ticks.trade(ref, 1_733_140_800, price, size, "CME", 1)
    assert type(result) in (Tick, Rejection)
    assert (type(result) is Tick) == (price_is_valid(price, min_tick) and size_is_valid(size))
    if type(result) is Rejection:
        assert result.reason in REASONS


@pytest.mark.parametrize("min_tick", [0.25, 0.01, 0.5, 1.0, 0.005])
@pytest.mark.parametrize("price", [UNSET_DOUBLE, 1e308, 1.5e308, -UNSET_DOUBLE])
def test_huge_prices_are_rejections_not_exceptions(price: float, min_tick: float) -> None:
    """IB sends 1.7976931348623157E308 for "no value"; near it, price / min_tick
    overflows to inf, which round() cannot take."""
    ref = ContractRef("NQ", "NQZ4", min_tick)
    result = ticks.trade(ref, 1_733_140_800, price, 1, "CME", 1)
    q = ticks.quote(ref, 1_733_140_800, price, price, 1, 1, 1)
    if price == UNSET_DOUBLE:
        assert type(result) is Rejection and result.reason == "price_unset"
        assert type(q) is Rejection and q.reason == "price_unset"
    elif price < 0:
        assert type(result) is Rejection and result.reason == "price_not_positive"
    elif min_tick < 1:  # overflows to inf ticks: cannot be shown to be on the grid
        assert type(result) is Rejection and result.reason == "price_off_grid"
        assert type(q) is Rejection and q.reason == "price_off_grid"
    else:  # a float this large is a whole number: on a 1.0 grid
        assert type(result) is Tick and type(q) is Quote


def test_fractional_decimal_sizes_are_kept() -> None:
    tick = ticks.trade(NQ, 1_733_140_800, 21012.25, Decimal("0.5"), "CME", 7)
    assert type(tick) is Tick and tick.size == 0.5
    tick = ticks.trade(NQ, 1_733_140_800, 21012.25, Decimal("2.25"), "CME", 7)
    assert type(tick) is Tick and tick.size == 2.25


def test_the_timestamp_is_the_unix_second_in_utc() -> None:
    tick = ticks.trade(NQ, 1_733_140_800, 21012.25, 1, "CME", 7)
    assert type(tick) is Tick
    assert tick.timestamp == dt.datetime(2024, 12, 2, 12, 0, 0, tzinfo=UTC)
    assert ticks.to_utc(0) == dt.datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------
# quote()


@PROPERTY
@given(MIN_TICKS, STEPS, STEPS, VALID_SIZES, VALID_SIZES, UNIX, NS)
def test_quote_of_valid_fields_is_a_quote_with_equal_fields(
    min_tick: float, bid_steps: int, ask_steps: int, bid_size: Any, ask_size: Any, unix_s: int, ns: int,
) -> None:
    ref = ContractRef("NQ", "NQZ4", min_tick)
    bid, ask = bid_steps * min_tick, ask_steps * min_tick
    q = ticks.quote(ref, unix_s, bid, ask, bid_size, ask_size, ns)
    assert type(q) is Quote
    assert (q.symbol, q.contract) == ("NQ", "NQZ4")
    assert (q.bid, q.ask) == (float(bid), float(ask))
    assert (q.bid_size, q.ask_size) == (float(bid_size), float(ask_size))
    assert type(q.bid_size) is float and type(q.ask_size) is float
    assert q.timestamp == utc(unix_s) and q.timestamp.utcoffset() == dt.timedelta(0)
    assert q.received_ns == ns


@PROPERTY
@given(on_grid(0.25), BAD_PRICES, st.booleans(), VALID_SIZES, UNIX)
def test_quote_with_a_bad_price_on_either_side_is_rejected(
    grid: tuple[float, float], bad: tuple[float, str], bad_is_bid: bool, size: Any, unix_s: int,
) -> None:
    _, good = grid
    price, reason = bad
    bid, ask = (price, good) if bad_is_bid else (good, price)
    result = ticks.quote(NQ, unix_s, bid, ask, size, size, 1)
    assert type(result) is Rejection and result.reason == reason


@PROPERTY
@given(on_grid(0.25), off_grid(), st.booleans(), UNIX)
def test_quote_off_the_grid_is_rejected(
    grid: tuple[float, float], bad: tuple[float, float], bad_is_bid: bool, unix_s: int,
) -> None:
    _, good = grid
    tick_size, price = bad
    ref = ContractRef("NQ", "NQZ4", tick_size)
    good = round(good / 0.25) * tick_size  # on this ref's grid
    bid, ask = (price, good) if bad_is_bid else (good, price)
    result = ticks.quote(ref, unix_s, bid, ask, 1, 1, 1)
    assert type(result) is Rejection and result.reason == "price_off_grid"


@PROPERTY
@given(on_grid(0.25), on_grid(0.25), BAD_SIZES, st.booleans(), VALID_SIZES, UNIX)
def test_quote_with_a_bad_size_on_either_side_is_rejected(
    bid: tuple[float, float], ask: tuple[float, float], bad: tuple[Any, str], bad_is_bid: bool, good: Any,
    unix_s: int,
) -> None:
    size, reason = bad
    bid_size, ask_size = (size, good) if bad_is_bid else (good, size)
    result = ticks.quote(NQ, unix_s, bid[1], ask[1], bid_size, ask_size, 1)
    assert type(result) is Rejection and result.reason == reason


# ---------------------------------------------------------------------------
# LastTradeMerger

PRICE_FIRST, TIME_FIRST, TIME_BETWEEN = "price_size_time", "time_price_size", "price_time_size"
ORDERS = st.sampled_from([PRICE_FIRST, TIME_FIRST, TIME_BETWEEN])
LIVE_TYPES = (ticks.LAST, ticks.LAST_SIZE, ticks.LAST_TIMESTAMP)
DELAYED_TYPES = (ticks.DELAYED_LAST, ticks.DELAYED_LAST_SIZE, ticks.DELAYED_LAST_TIMESTAMP)
TYPES = st.sampled_from([LIVE_TYPES, DELAYED_TYPES])


def feed_trade(
    merger: LastTradeMerger, types: tuple[int, int, int], price: float | None, size: Any, unix_s: int,
    order: str, ns: int,
) -> list[object]:
    """Feed one trade's pieces (``price=None``: a lone LAST_SIZE) and return every non-None
    result. ``ns`` is the receive time of the first piece; later pieces get later times."""
    price_type, size_type, time_type = types
    pieces: dict[str, Callable[[int], object]] = {
        "price": lambda t: merger.on_price(price_type, price, t) if price is not None else None,
        "size": lambda t: merger.on_size(size_type, size, t),
        "time": lambda t: merger.on_string(time_type, str(unix_s), t),
    }
    order_of = {
        PRICE_FIRST: ("price", "size", "time"),
        TIME_FIRST: ("time", "price", "size"),
        TIME_BETWEEN: ("price", "time", "size"),
    }[order]
    out = []
    for i, name in enumerate(order_of):
        result = pieces[name](ns + i)
        if result is not None:
            out.append(result)
    return out


def first_piece_ns(price: float | None, order: str, ns: int) -> int:
    """The receive time of the first piece actually fed: a lone size has no price piece,
    so unless the time came first, the trade starts one step later."""
    return ns + 1 if price is None and order != TIME_FIRST else ns


@st.composite
def trade_stream(draw: st.DrawFn) -> list[tuple[float | None, Any, int, str]]:
    """Trades as (price or None for 'same price, lone size', size, unix, order)."""
    n = draw(st.integers(min_value=1, max_value=12))
    out: list[tuple[float | None, Any, int, str]] = []
    for i in range(n):
        lone = i > 0 and draw(st.booleans())
        price = None if lone else draw(STEPS) * 0.25
        out.append((price, draw(st.one_of(INT_SIZES, DECIMAL_SIZES)), draw(UNIX), draw(ORDERS)))
    return out


@PROPERTY
@given(on_grid(0.25), st.one_of(INT_SIZES, DECIMAL_SIZES), UNIX, ORDERS, TYPES, NS, st.booleans())
def test_merger_joins_the_two_halves_of_a_trade_in_either_order(
    grid: tuple[float, float], size: Any, unix_s: int, order: str, types: tuple[int, int, int], ns: int,
    delayed: bool,
) -> None:
    _, price = grid
    ref = ContractRef("NQ", "NQZ4", 0.25, delayed)
    merger = LastTradeMerger(ref, "CME")
    out = feed_trade(merger, types, price, size, unix_s, order, ns)
    assert len(out) == 1
    assert_tick(out[0], ref, price, size, unix_s, "CME", ns)


@PROPERTY
@given(trade_stream(), TYPES)
def test_merger_turns_a_stream_of_trades_into_the_same_ticks_in_order(
    stream: list[tuple[float | None, Any, int, str]], types: tuple[int, int, int],
) -> None:
    merger = LastTradeMerger(NQ, "CME")
    last_price = 0.0
    ns = 1000
    for price, size, unix_s, order in stream:
        out = feed_trade(merger, types, price, size, unix_s, order, ns)
        last_price = price if price is not None else last_price
        assert len(out) == 1, (price, size, unix_s, order, out)
        assert_tick(out[0], NQ, last_price, size, unix_s, "CME", first_piece_ns(price, order, ns))
        ns += 10


def test_a_lone_last_size_reuses_the_last_price() -> None:
    merger = LastTradeMerger(NQ, "CME")
    assert merger.on_price(ticks.LAST, 21012.25, 1) is None
    assert merger.on_size(ticks.LAST_SIZE, Decimal(3), 1) is None
    first = merger.on_string(ticks.LAST_TIMESTAMP, "1733140800", 2)
    assert_tick(first, NQ, 21012.25, 3, 1_733_140_800, "CME", 1)
    # Another trade at the same price: only LAST_SIZE and the time arrive.
    assert merger.on_size(ticks.LAST_SIZE, Decimal(5), 10) is None
    second = merger.on_string(ticks.LAST_TIMESTAMP, "1733140801", 11)
    assert_tick(second, NQ, 21012.25, 5, 1_733_140_801, "CME", 10)


def test_a_size_before_any_price_is_held_back() -> None:
    merger = LastTradeMerger(NQ, "CME")
    assert merger.on_size(ticks.LAST_SIZE, Decimal(5), 1) is None
    assert merger.on_string(ticks.LAST_TIMESTAMP, "1733140800", 2) is None


@pytest.mark.parametrize("types", [LIVE_TYPES, DELAYED_TYPES])
@pytest.mark.parametrize("value", ["", "abc", "1733140800.5", "17331408OO", "None"])
def test_an_unreadable_timestamp_is_a_rejection(types: tuple[int, int, int], value: str) -> None:
    price_type, size_type, time_type = types
    merger = LastTradeMerger(NQ, "CME")
    assert merger.on_price(price_type, 21012.25, 1) is None
    assert merger.on_size(size_type, Decimal(1), 1) is None
    result = merger.on_string(time_type, value, 2)
    assert type(result) is Rejection and result.reason == "timestamp_unreadable"
    assert repr(value) in result.detail
    # The rejected trade is gone: the next trade -- its time first this time -- comes out
    # with its own price, not paired with the rejected trade's price and size.
    assert merger.on_string(time_type, "1733140805", 10) is None
    assert merger.on_price(price_type, 21013.0, 11) is None
    nxt = merger.on_size(size_type, Decimal(4), 11)
    assert_tick(nxt, NQ, 21013.0, 4, 1_733_140_805, "CME", 10)


@PROPERTY
@given(
    st.lists(st.tuples(st.sampled_from(["price", "size", "string"]),
                       st.integers(min_value=0, max_value=100).filter(
                           lambda t: t not in LIVE_TYPES + DELAYED_TYPES)),
             max_size=20),
    on_grid(0.25), st.one_of(INT_SIZES, DECIMAL_SIZES), UNIX, ORDERS,
)
def test_other_tick_types_are_ignored(
    noise: list[tuple[str, int]], grid: tuple[float, float], size: Any, unix_s: int, order: str,
) -> None:
    _, price = grid
    merger = LastTradeMerger(NQ, "CME")
    for kind, tick_type in noise:  # bid, ask, high, low, volume, ... before the trade
        if kind == "price":
            assert merger.on_price(tick_type, 99.5, 1) is None
        elif kind == "size":
            assert merger.on_size(tick_type, Decimal(7), 1) is None
        else:
            assert merger.on_string(tick_type, "1700000000", 1) is None
    out = feed_trade(merger, LIVE_TYPES, price, size, unix_s, order, 50)
    assert len(out) == 1
    assert_tick(out[0], NQ, price, size, unix_s, "CME", 50)


@PROPERTY
@given(BAD_PRICES, UNIX, TYPES)
def test_merged_trades_with_bad_prices_are_rejections(
    bad: tuple[float, str], unix_s: int, types: tuple[int, int, int],
) -> None:
    price, reason = bad
    merger = LastTradeMerger(NQ, "CME")
    out = feed_trade(merger, types, price, Decimal(1), unix_s, PRICE_FIRST, 1)
    assert len(out) == 1 and type(out[0]) is Rejection and out[0].reason == reason


# ---------------------------------------------------------------------------
# End to end: wire -> IBClient reader thread -> IB's Decoder -> ticks -> sink

WAIT = 10.0
TEXT_VERSIONS = [150, 178, 200]
PROTOBUF_VERSION = 208


class WireRig:
    """An IBClient reading a socketpair whose other end the test writes to."""

    def __init__(self, server_version: int) -> None:
        self.server_version = server_version
        self.server, client_sock = socket.socketpair()
        self.items: list[object] = []
        self._changed = threading.Condition()
        session = Session(
            sock=client_sock, host="127.0.0.1", port=0, server_version=server_version,
            connection_time="20241202 10:00:00 EST", decoder=wire.FrameDecoder(), early=[],
        )
        self.client = IBClient(sink=self._sink)
        self.client.start(session, client_id=1)

    def _sink(self, item: object) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def ticks(self) -> list[Tick]:
        with self._changed:
            return [i for i in self.items if type(i) is Tick]

    def send(self, frames: list[bytes]) -> None:
        self.server.sendall(b"".join(frames))

    def wait_ticks(self, count: int) -> list[Tick]:
        with self._changed:
            ok = self._changed.wait_for(lambda: sum(type(i) is Tick for i in self.items) >= count, WAIT)
            got = [i for i in self.items if type(i) is Tick]
        assert ok, f"only {len(got)} of {count} ticks arrived; items: {self.items[-5:]!r}"
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.server.close()
        assert not self.client.reader_alive


@pytest.fixture
def rig_factory() -> Iterator[Callable[[int], WireRig]]:
    rigs: list[WireRig] = []

    def make(server_version: int) -> WireRig:
        rig = WireRig(server_version)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
        closed = [i for i in rig.items if type(i) is ConnectionClosed]
        assert len(closed) == 1 and closed[0].by_client and closed[0].error is None, rig.items[-3:]
        assert rig.client.decode_errors == 0


def valid_wire_trades() -> st.SearchStrategy[list[tuple[float, Any, int, str, bool]]]:
    sizes = st.one_of(st.integers(min_value=0, max_value=10**6),
                      st.decimals(min_value=0, max_value=10**4, places=2, allow_nan=False, allow_infinity=False))
    exchange = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=8)
    return st.lists(
        st.tuples(STEPS.map(lambda k: k * 0.25), sizes, UNIX, exchange, st.booleans()),
        min_size=1, max_size=20,
    )


# Invalid trades for the wire, with the reason they are counted under. Sizes travel as
# text: 9223372036854775807 and "" are what IB's decoder reads as UNSET_DECIMAL.
WIRE_BAD = st.sampled_from([
    (0.0, 1, "price_not_positive"),
    (-1.0, 1, "price_not_positive"),
    (21012.1, 1, "price_off_grid"),
    (21012.3, 2, "price_off_grid"),
    (math.nan, 1, "price_not_finite"),
    (math.inf, 1, "price_not_finite"),
    (-math.inf, 1, "price_not_finite"),
    (UNSET_DOUBLE, 1, "price_unset"),
    (21012.25, -1, "size_negative"),
    (21012.25, Decimal("-0.5"), "size_negative"),
    (21012.25, 2**63 - 1, "size_unset"),
    (21012.25, "", "size_unset"),
])


@pytest.mark.parametrize("sv", TEXT_VERSIONS)
def test_tick_by_tick_trades_survive_the_wire(sv: int, rig_factory: Callable[[int], WireRig]) -> None:
    rig = rig_factory(sv)
    req_id = 4001
    ref = ContractRef("NQ", "NQZ4", 0.25)
    rig.client.subscribe(Subscription(req_id, ref, "tick_by_tick"))

    @WIRE
    @given(valid_wire_trades())
    def check(trades: list[tuple[float, Any, int, str, bool]]) -> None:
        before = len(rig.ticks())
        sent_ns = time.monotonic_ns()
        rig.send([tm.tbt_last(req_id, all_last, unix_s, price, size, 0, exchange, "", sv)
                  for price, size, unix_s, exchange, all_last in trades])
        got = rig.wait_ticks(before + len(trades))[before:]
        assert len(got) == len(trades)
        for tick, (price, size, unix_s, exchange, _) in zip(got, trades):
            assert_tick(tick, ref, price, size, unix_s, exchange)
            assert tick.received_ns >= sent_ns

    check()
    assert sum(rig.client.rejected.values()) == 0


@pytest.mark.parametrize("sv", TEXT_VERSIONS)
def test_invalid_trades_on_the_wire_are_counted_never_delivered(
    sv: int, rig_factory: Callable[[int], WireRig],
) -> None:
    rig = rig_factory(sv)
    req_id = 4002
    rig.client.subscribe(Subscription(req_id, NQ, "tick_by_tick"))
    expected_rejections: dict[str, int] = {}

    @WIRE
    @given(st.lists(st.one_of(
        WIRE_BAD.map(lambda b: ("bad", b)),
        st.tuples(STEPS.map(lambda k: k * 0.25), st.integers(0, 1000), UNIX).map(lambda g: ("good", g)),
    ), max_size=15))
    def check(messages: list[tuple[str, Any]]) -> None:
        before = len(rig.ticks())
        frames, good = [], []
        for kind, value in messages:
            if kind == "bad":
                price, size, reason = value
                frames.append(tm.tbt_last(req_id, True, 1_733_140_800, price, size, 0, "CME", "", sv))
                expected_rejections[reason] = expected_rejections.get(reason, 0) + 1
            else:
                price, size, unix_s = value
                frames.append(tm.tbt_last(req_id, True, unix_s, price, size, 0, "CME", "", sv))
                good.append(value)
        # A valid sentinel last: once it is out, everything before it was processed.
        frames.append(tm.tbt_last(req_id, True, 1_733_140_999, 1.0, 1, 0, "CME", "", sv))
        good.append((1.0, 1, 1_733_140_999))
        rig.send(frames)
        got = rig.wait_ticks(before + len(good))[before:]
        assert len(got) == len(good)
        for tick, (price, size, unix_s) in zip(got, good):
            assert_tick(tick, NQ, price, size, unix_s, "CME")
        assert dict(rig.client.rejected) == expected_rejections

    check()


def test_a_trade_for_an_unknown_request_is_counted(rig_factory: Callable[[int], WireRig]) -> None:
    rig = rig_factory(200)
    rig.client.subscribe(Subscription(1, NQ, "tick_by_tick"))
    rig.send([tm.tbt_last(999, True, 1_733_140_800, 21012.25, 1, 0, "CME", "", 200),
              tm.tbt_last(1, True, 1_733_140_801, 21012.5, 2, 0, "CME", "", 200)])
    got = rig.wait_ticks(1)
    assert len(got) == 1
    assert_tick(got[0], NQ, 21012.5, 2, 1_733_140_801, "CME")
    assert rig.client.rejected["unknown_request"] == 1


@pytest.mark.parametrize("sv", TEXT_VERSIONS)
def test_market_data_last_trades_survive_the_wire(sv: int, rig_factory: Callable[[int], WireRig]) -> None:
    rig = rig_factory(sv)
    req_id = 4003
    ref = ContractRef("NQ", "NQZ4", 0.25)
    rig.client.subscribe(Subscription(req_id, ref, "market_data", merger=LastTradeMerger(ref, "CME")))

    @WIRE
    @given(st.lists(st.tuples(STEPS.map(lambda k: k * 0.25), st.integers(0, 10**6), UNIX, st.booleans()),
                    min_size=1, max_size=15))
    def check(trades: list[tuple[float, int, int, bool]]) -> None:
        before = len(rig.ticks())
        frames = []
        for price, size, unix_s, time_first in trades:
            price_frame = tm.tick_price(req_id, ticks.LAST, price, size, 0, sv)
            time_frame = tm.tick_string(req_id, ticks.LAST_TIMESTAMP, str(unix_s), sv)
            # Quotes in between are other tick types and must not disturb the merge.
            noise = tm.tick_price(req_id, 1, price - 0.25, 3, 0, sv)
            frames += [time_frame, noise, price_frame] if time_first else [price_frame, noise, time_frame]
        rig.send(frames)
        got = rig.wait_ticks(before + len(trades))[before:]
        assert len(got) == len(trades)
        for tick, (price, size, unix_s, _) in zip(got, trades):
            assert_tick(tick, ref, price, size, unix_s, "CME")

    check()
    assert sum(rig.client.rejected.values()) == 0


def test_delayed_market_data_trades_survive_the_wire(rig_factory: Callable[[int], WireRig]) -> None:
    rig = rig_factory(200)
    ref = ContractRef("NQ", "NQZ4", 0.25, delayed=True)
    rig.client.subscribe(Subscription(7, ref, "market_data", merger=LastTradeMerger(ref, "CME"), delayed=True))
    rig.send([
        tm.tick_price(7, ticks.DELAYED_LAST, 21012.25, 3, 0, 200),
        tm.tick_string(7, ticks.DELAYED_LAST_TIMESTAMP, "1733140800", 200),
        tm.tick_size(7, ticks.DELAYED_LAST_SIZE, 2, 200),  # same price again
        tm.tick_string(7, ticks.DELAYED_LAST_TIMESTAMP, "1733140801", 200),
    ])
    got = rig.wait_ticks(2)
    assert_tick(got[0], ref, 21012.25, 3, 1_733_140_800, "CME")
    assert_tick(got[1], ref, 21012.25, 2, 1_733_140_801, "CME")
    assert all(t.delayed for t in got)


def tbt_protobuf(req_id: int, all_last: bool, unix_s: int, price: float, size: Any, exchange: str) -> bytes:
    body = TickByTickData(
        reqId=req_id,
        tickType=2 if all_last else 1,
        historicalTickLast=HistoricalTickLast(
            time=unix_s, price=price, size=str(size), exchange=exchange, specialConditions="",
            tickAttribLast=TickAttribLast(pastLimit=False, unreported=False),
        ),
    ).SerializeToString()
    return wire.encode_protobuf_message(IN.TICK_BY_TICK, body)


def test_protobuf_tick_by_tick_trades_survive_the_wire(rig_factory: Callable[[int], WireRig]) -> None:
    rig = rig_factory(PROTOBUF_VERSION)
    req_id = 4004
    ref = ContractRef("NQ", "NQZ4", 0.25)
    rig.client.subscribe(Subscription(req_id, ref, "tick_by_tick"))

    @WIRE
    @given(valid_wire_trades())
    def check(trades: list[tuple[float, Any, int, str, bool]]) -> None:
        before = len(rig.ticks())
        rig.send([tbt_protobuf(req_id, all_last, unix_s, price, size, exchange)
                  for price, size, unix_s, exchange, all_last in trades])
        got = rig.wait_ticks(before + len(trades))[before:]
        assert len(got) == len(trades)
        for tick, (price, size, unix_s, exchange, _) in zip(got, trades):
            assert_tick(tick, ref, price, size, unix_s, exchange)

    check()
    # Text frames still travel at a protobuf server version (binary message id).
    before = len(rig.ticks())
    rig.send([tm.tbt_last(req_id, True, 1_733_140_800, 21012.25, 4, 0, "CME", "", PROTOBUF_VERSION)])
    assert_tick(rig.wait_ticks(before + 1)[-1], ref, 21012.25, 4, 1_733_140_800, "CME")
    # And a bad protobuf trade is a counted rejection, not a Tick.
    rig.send([tbt_protobuf(req_id, True, 1_733_140_801, 21012.3, 1, "CME"),
              tbt_protobuf(req_id, True, 1_733_140_802, 21012.5, 1, "CME")])
    assert_tick(rig.wait_ticks(before + 2)[-1], ref, 21012.5, 1, 1_733_140_802, "CME")
    assert dict(rig.client.rejected) == {"price_off_grid": 1}


@PROPERTY
@given(
    st.one_of(st.floats(), st.floats(min_value=1e300), st.integers(min_value=-(10**12), max_value=10**12),
              st.decimals(min_value=1, max_value=10**6, places=2).map(float)),
    st.one_of(st.floats(), st.integers(min_value=-(10**12), max_value=10**12), st.decimals(), st.booleans(),
              st.sampled_from([Decimal("sNaN"), Decimal("-0"), Decimal(2**31 - 1), Decimal("2147483646.5")])),
    st.one_of(MIN_TICKS, st.sampled_from([0.0, -0.25, 1e-300])),
    UNIX,
)
def test_trade_fast_path_answers_exactly_as_the_full_checks(price: Any, size: Any, min_tick: float,
                                                            unix_s: int) -> None:
    ref = ContractRef("NQ", "NQZ4", min_tick)
    assert ticks.trade(ref, unix_s, price, size, "CME", 1) == ticks._checked_trade(ref, unix_s, price, size, "CME", 1)


@PROPERTY
@given(UNIX, UNIX)
def test_to_utc_gives_the_same_moment_whether_or_not_it_was_just_asked(first: int, second: int) -> None:
    expected = dt.datetime.fromtimestamp(second, dt.timezone.utc)
    ticks.to_utc(first)
    assert ticks.to_utc(second) == expected and ticks.to_utc(second) == expected
