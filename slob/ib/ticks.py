"""Pure conversion of IB tick fields into slob records.

No I/O, no threads: the reader thread calls these with the arguments IB's decoder
passed to the EWrapper callbacks. Anything that cannot be a real trade or quote -- a
price that is not positive and finite, is IB's "unset" double or is off the contract's
minimum-tick grid, a negative or unset size -- becomes a :class:`Rejection` (counted by
the caller), never a record.

Market data (``reqMktData``) carries a trade in pieces: TICK_PRICE for LAST (4, delayed
68) arrives with its size (IB's decoder calls ``tickPrice`` then ``tickSize`` 5/71 for the
same frame), a lone TICK_SIZE 5/71 when a trade printed at the unchanged price, and a
TICK_STRING 45/88 with the trade's Unix time. :class:`LastTradeMerger` joins the price
and size with the timestamp, whichever comes first.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

from slob.model import Quote, Tick, new_tick

__all__ = [
    "ContractRef",
    "LastTradeMerger",
    "REPLAYED",
    "Rejection",
    "ReplayGuard",
    "check_price",
    "check_size",
    "quote",
    "to_utc",
    "trade",
    "LAST",
    "LAST_SIZE",
    "LAST_TIMESTAMP",
    "DELAYED_LAST",
    "DELAYED_LAST_SIZE",
    "DELAYED_LAST_TIMESTAMP",
]

# IB tick types (ibapi ticktype.py).
LAST, LAST_SIZE, LAST_TIMESTAMP = 4, 5, 45
DELAYED_LAST, DELAYED_LAST_SIZE, DELAYED_LAST_TIMESTAMP = 68, 71, 88

_UNSET_SIZES = (Decimal(2**127 - 1), Decimal(2**63 - 1), Decimal(2**31 - 1))
_UNSET_DOUBLE = sys.float_info.max
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)


@dataclass(frozen=True, slots=True)
class ContractRef:
    """What a subscription's records are labelled with."""

    symbol: str  # as subscribed: "NQ"
    contract: str  # local symbol: "NQZ4"
    min_tick: float = 0.25
    delayed: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input produced no record (``reason`` is a short stable key)."""

    reason: str
    detail: str


Converted = Union[Tick, Rejection]

#: The rejection reason of a trade a new market-data request sent again (see ReplayGuard).
REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class ReplayGuard:
    """What had been delivered for a symbol when a new market-data request was sent: the
    newest exchange second and the (price, size) of each trade delivered in it.

    TWS answers ``reqMktData`` with the current LAST price, size and time -- the last trade,
    sent again. That first trade is a replay when it is older than the newest second
    delivered, or in that second with a (price, size) delivered in it (one delivered trade
    excuses one replay). Otherwise it is a trade that happened during the outage and is
    delivered. Only a request's *first* trade is ever judged: everything after it is new.
    Pure.
    """

    second: dt.datetime
    seen: tuple[tuple[float, float], ...]

    def is_replay(self, tick: Tick) -> bool:
        if tick.timestamp != self.second:
            return tick.timestamp < self.second
        return (tick.price, tick.size) in self.seen


# The latest conversion, (seconds, datetime): ticks come many to a second, so most
# conversions are a lookup. Replaced whole (one atomic store), so threads may share it.
_last_second: tuple[int, dt.datetime] = (0, _EPOCH)
# Sizes below this are real; IB's "unset" sizes (2**31 - 1 and up) are not.
_SMALLEST_UNSET_SIZE = 2147483647.0


def to_utc(unix_seconds: int) -> dt.datetime:
    """IB's Unix seconds as a tz-aware UTC datetime."""
    global _last_second
    seconds, moment = _last_second
    if unix_seconds == seconds and type(unix_seconds) is int:
        return moment
    moment = _EPOCH + dt.timedelta(seconds=int(unix_seconds))
    _last_second = (int(unix_seconds), moment)
    return moment


def check_price(price: float, min_tick: float) -> Rejection | None:
    if not isinstance(price, (int, float)) or math.isnan(price) or math.isinf(price):
        return Rejection("price_not_finite", f"price {price!r}")
    if price <= 0:
        # -1 and 0 are IB's "no data for this field"
        return Rejection("price_not_positive", f"price {price!r}")
    if price == _UNSET_DOUBLE:
        # IB's other "no value" (ibapi UNSET_DOUBLE, sent as 1.7976931348623157E308)
        return Rejection("price_unset", f"price {price!r}")
    if min_tick > 0:
        steps = price / min_tick
        # A finite price can overflow to inf ticks (round(inf) raises OverflowError).
        if math.isinf(steps) or abs(steps - round(steps)) > 1e-6:
            return Rejection("price_off_grid", f"price {price!r} is not a multiple of {min_tick}")
    return None


def check_size(size: Decimal | float | int) -> float | Rejection:
    if isinstance(size, Decimal):
        if size.is_nan() or size in _UNSET_SIZES:
            return Rejection("size_unset", f"size {size}")
        value = float(size)
    else:
        value = float(size)
    if math.isnan(value) or math.isinf(value):
        return Rejection("size_not_finite", f"size {size!r}")
    if value < 0:
        return Rejection("size_negative", f"size {size!r}")
    return value


def trade(
    ref: ContractRef, unix_s: int, price: float, size: Decimal | float | int, exchange: str, received_ns: int
) -> Converted:
    """A tick-by-tick Last/AllLast trade as a :class:`Tick`."""
    # Fast path for the common case -- a positive finite price clearly on the tick grid,
    # a non-negative size below IB's unset values; anything else (including prices within
    # a hair of the grid tolerance) gets the full checks and their reason. A property
    # test holds both paths to the same answers.
    try:  # float() of a signalling-NaN Decimal raises; the checks then say why
        qty = float(size)
    except (ValueError, OverflowError, TypeError):
        qty = -1.0
    min_tick = ref.min_tick
    off = (price / min_tick) % 1.0 if type(price) is float and 0.0 < price < _UNSET_DOUBLE and min_tick > 0 else 0.5
    if not (0.0 <= qty < _SMALLEST_UNSET_SIZE and (off <= 1e-7 or off >= 0.9999999)):
        return _checked_trade(ref, unix_s, price, size, exchange, received_ns)
    seconds, moment = _last_second  # to_utc's cache, looked up inline
    if unix_s != seconds or type(unix_s) is not int:
        moment = to_utc(unix_s)
    return new_tick(ref.symbol, price, qty, moment, exchange, ref.contract, received_ns, ref.delayed)


def _checked_trade(
    ref: ContractRef, unix_s: int, price: float, size: Decimal | float | int, exchange: str, received_ns: int
) -> Converted:
    bad = check_price(price, ref.min_tick)
    if bad is not None:
        return bad
    qty = check_size(size)
    if isinstance(qty, Rejection):
        return qty
    return Tick(ref.symbol, float(price), qty, to_utc(unix_s), exchange, ref.contract, received_ns, ref.delayed)


def quote(
    ref: ContractRef, unix_s: int, bid: float, ask: float,
    bid_size: Decimal | float | int, ask_size: Decimal | float | int, received_ns: int,
) -> Quote | Rejection:
    """A tick-by-tick BidAsk update as a :class:`Quote`."""
    for price in (bid, ask):
        bad = check_price(price, ref.min_tick)
        if bad is not None:
            return bad
    sizes = [check_size(s) for s in (bid_size, ask_size)]
    for s in sizes:
        if isinstance(s, Rejection):
            return s
    b, a = sizes
    assert isinstance(b, float) and isinstance(a, float)
    return Quote(ref.symbol, float(bid), float(ask), b, a, to_utc(unix_s), ref.contract, received_ns)


class LastTradeMerger:
    """Joins market-data LAST price/size with LAST_TIMESTAMP into one trade :class:`Tick`.

    Feed it every ``tickPrice``/``tickSize``/``tickString`` of one subscription; the
    ``on_*`` methods return a record or rejection when a trade completes, else ``None``.
    A trade completes when both halves have arrived since the last one: the price half
    (a LAST price with the size IB attaches to it, or a lone LAST_SIZE meaning "another
    trade at the same price") and the time half (LAST_TIMESTAMP), in either order.
    """

    __slots__ = ("ref", "exchange", "guard", "_price", "_half", "_time", "_first_ns")

    def __init__(self, ref: ContractRef, exchange: str = "", *, guard: ReplayGuard | None = None) -> None:
        self.ref = ref
        self.exchange = exchange
        #: Judges this request's first trade (then cleared): see ReplayGuard.
        self.guard = guard
        self._price: float | None = None  # last known LAST price
        self._half: tuple[float, Decimal | float | int] | None = None
        self._time: int | None = None
        self._first_ns = 0

    def on_price(self, tick_type: int, price: float, received_ns: int) -> Converted | None:
        if tick_type not in (LAST, DELAYED_LAST):
            return None
        self._price = price
        self._first_ns = self._first_ns or received_ns
        return None

    def on_size(self, tick_type: int, size: Decimal | float | int, received_ns: int) -> Converted | None:
        if tick_type not in (LAST_SIZE, DELAYED_LAST_SIZE):
            return None
        if self._price is None:
            return None  # a size before any price: nothing to attach it to
        self._half = (self._price, size)
        self._first_ns = self._first_ns or received_ns
        return self._complete()

    def on_string(self, tick_type: int, value: str, received_ns: int) -> Converted | None:
        if tick_type not in (LAST_TIMESTAMP, DELAYED_LAST_TIMESTAMP):
            return None
        try:
            self._time = int(value)
        except ValueError:
            # This trade is rejected whole: a price half already here belongs to it and
            # must not be paired with the next trade's timestamp.
            self._half = self._time = None
            self._first_ns = 0
            return Rejection("timestamp_unreadable", f"last timestamp {value!r}")
        self._first_ns = self._first_ns or received_ns
        return self._complete()

    def _complete(self) -> Converted | None:
        if self._half is None or self._time is None:
            return None
        (price, size), unix_s, received = self._half, self._time, self._first_ns
        self._half = self._time = None
        self._first_ns = 0
        record = trade(self.ref, unix_s, price, size, self.exchange, received)
        guard = self.guard
        if guard is not None and type(record) is Tick:
            self.guard = None
            if guard.is_replay(record):
                return Rejection(REPLAYED, f"first trade of a new request repeats one delivered: {record!r}")
        return record
