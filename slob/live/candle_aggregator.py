"""CandleAggregator: one symbol's trades (:class:`~slob.model.Tick`) as OHLCV candles.

Pure (no I/O, no clock of its own). A candle covers ``[start, start + interval)`` of
*exchange* time -- the tick's ``timestamp`` -- with ``start`` a multiple of the interval
since the Unix epoch (5-minute candles at :00, :05, ...). The wall clock is never read,
so a replayed or accelerated feed gives exactly the candles the live one gave, and any
split of the tick stream into batches (with :meth:`CandleAggregator.advance` calls at
times not earlier than the ticks already added) gives the same candles.

When a candle closes: when a tick of a later bucket arrives (:meth:`~CandleAggregator.add`),
when a timer says its end has passed on a quiet market (:meth:`~CandleAggregator.advance`),
or at a clean stop (:meth:`~CandleAggregator.flush`). Each call returns the candles it
closed, all intervals together, ordered by end time and, for equal ends, shorter interval
first (the 1-minute candle 10:04 before the 5-minute candle 10:00 that contains it).

**Fill policy.** The SLOB rules count candles (e.g. 3-25 one-minute candles of
consolidation), so a quiet minute must not vanish: a bucket with no trade whose start is
inside trading hours (``is_trading(start)``; CME Globex by default) becomes a flat candle at
the previous close -- open = high = low = close = last price, volume 0, trades 0,
``filled=True``, the contract of the last tick. Within a session candles are therefore
contiguous (each starts where the previous ended). Buckets outside trading hours (the CME
daily halt 16:00-17:00 Chicago, the weekend) produce no candle at all, and nothing is filled
before the first real trade. A trade outside trading hours still makes a candle (the data
wins over the calendar). Filling walks the gap bucket by bucket, so its cost grows with the
length of the gap (a weekend is ~3,500 calls of ``is_trading`` for 1- and 5-minute candles).
A flat candle is also what an outage looks like; the engine's Gap records tell them apart.

**Late ticks.** A tick older than the start of the open candle -- for all intervals
together: the latest open (or already closed) bucket boundary, see
:attr:`~CandleAggregator.watermark` -- belongs to a candle already closed (or to a part of
the finest candle already closed): it is counted in ``late_ticks`` and not merged, so
every interval sees the same trades. Ticks out of order *within* the open bucket are
merged normally (high, low, volume and trades do not depend on order; open and close are
the first and last tick *received*).

**Rolls.** A tick of another contract for the same symbol (after a roll) is merged like
any other: the open candle closes at its normal time and the aggregation continues. A
candle carries the ``contract`` of its last tick, so the candle of the roll minute may mix
both contracts' prices and is labelled with the new one; flat candles after it use the new
contract's last price. (slob.live.feed_switch makes the switch a single moment.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Sequence

from slob.live.sessions import CmeHours
from slob.model import Candle, Tick

__all__ = ["CandleAggregator"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SECOND = dt.timedelta(seconds=1)
_DEFAULT_HOURS = CmeHours.default()


def _seconds(t: dt.datetime) -> int:
    """Whole seconds since the epoch, floored (exact: timedelta arithmetic, no floats)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t!r} is naive; candles need tz-aware exchange times")
    return (t - _EPOCH) // _SECOND


def _moment(seconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds)


@dataclass(slots=True)
class _Bar:
    """The open candle of one interval, being built."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    contract: str


@dataclass(slots=True)
class _Series:
    interval: int
    bar: _Bar | None = None
    cursor: int | None = None  # start of the first bucket not yet closed (seconds)


class CandleAggregator:
    """Candles of one symbol for several intervals at once (see the module docstring)."""

    def __init__(
        self,
        symbol: str,
        intervals: Sequence[int] = (60, 300),
        is_trading: Callable[[dt.datetime], bool] | None = None,
    ) -> None:
        """``intervals`` in seconds (positive, distinct); ``is_trading(bucket_start)``
        decides which quiet buckets get a flat candle (default: CME Globex hours,
        :meth:`slob.live.sessions.CmeHours.default`)."""
        chosen = sorted(intervals)
        if not chosen or any(not isinstance(i, int) or isinstance(i, bool) or i <= 0 for i in chosen):
            raise ValueError(f"candle intervals must be positive whole seconds, not {list(intervals)!r}")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"candle intervals repeat: {list(intervals)!r}")
        self.symbol = symbol
        self.intervals = tuple(chosen)
        self.is_trading = is_trading if is_trading is not None else _DEFAULT_HOURS.is_open
        #: Ticks older than the open candle, counted and not merged.
        self.late_ticks = 0
        self._series = [_Series(i) for i in chosen]
        self._watermark: int | None = None
        self._last_price: float | None = None
        self._last_contract = ""

    @property
    def watermark(self) -> dt.datetime | None:
        """Ticks older than this are late: everything before it is closed (for the finest
        interval). None before the first tick."""
        return None if self._watermark is None else _moment(self._watermark)

    @property
    def last_price(self) -> float | None:
        """The price of the last merged tick: the level of the next flat candle."""
        return self._last_price

    def add(self, tick: Tick) -> list[Candle]:
        """Merge ``tick``; return the candles it closed (a tick of a later bucket closes
        the open one and fills the quiet buckets in between). A late tick returns []."""
        if tick.symbol != self.symbol:
            raise ValueError(f"a {tick.symbol!r} tick sent to the {self.symbol!r} candle aggregator")
        second = _seconds(tick.timestamp)
        if self._watermark is not None and second < self._watermark:
            self.late_ticks += 1
            return []
        price, size = tick.price, tick.size
        out: list[Candle] = []
        for series in self._series:
            bucket = second - second % series.interval
            bar = series.bar
            if bar is not None and bar.start == bucket:
                if price > bar.high:
                    bar.high = price
                elif price < bar.low:
                    bar.low = price
                bar.close = price
                bar.volume += size
                bar.trades += 1
                bar.contract = tick.contract
                continue
            if bar is not None:
                out.append(self._candle(series.interval, bar))
                series.cursor = bar.start + series.interval
            self._fill(series, bucket, out)
            series.bar = _Bar(bucket, price, price, price, price, size, 1, tick.contract)
            series.cursor = bucket
        self._last_price, self._last_contract = price, tick.contract
        self._watermark = max(s.cursor for s in self._series if s.cursor is not None)
        return self._ordered(out)

    def advance(self, now: dt.datetime) -> list[Candle]:
        """Close the candles whose end is at or before ``now`` (exchange time) and fill
        the quiet buckets that ended by then; for a timer on a quiet market. Ticks older
        than ``now``'s bucket become late. Does nothing before the first tick."""
        second = _seconds(now)
        out: list[Candle] = []
        for series in self._series:
            if series.cursor is None:
                continue
            bar = series.bar
            if bar is not None:
                if bar.start + series.interval > second:
                    continue
                out.append(self._candle(series.interval, bar))
                series.bar = None
                series.cursor = bar.start + series.interval
            self._fill(series, second - second % series.interval, out)
        self._update_watermark()
        return self._ordered(out)

    def flush(self) -> list[Candle]:
        """Close every open candle (a clean stop). Later ticks in their buckets are late."""
        out: list[Candle] = []
        for series in self._series:
            bar = series.bar
            if bar is not None:
                out.append(self._candle(series.interval, bar))
                series.bar = None
                series.cursor = bar.start + series.interval
        self._update_watermark()
        return self._ordered(out)

    # -- internals ---------------------------------------------------------------------

    def _update_watermark(self) -> None:
        cursors = [s.cursor for s in self._series if s.cursor is not None]
        if cursors:
            self._watermark = max(cursors)

    def _fill(self, series: _Series, until: int, out: list[Candle]) -> None:
        """Flat candles for the quiet trading buckets in ``[cursor, until)``; the cursor
        moves to ``until``."""
        start = series.cursor
        if start is None or until <= start:
            return
        price = self._last_price
        if price is not None:
            interval, symbol, contract = series.interval, self.symbol, self._last_contract
            for s in range(start, until, interval):
                moment = _moment(s)
                if self.is_trading(moment):
                    out.append(Candle(symbol, contract, interval, moment, price, price, price, price,
                                      0.0, 0, filled=True))
        series.cursor = until

    def _candle(self, interval: int, bar: _Bar) -> Candle:
        return Candle(self.symbol, bar.contract, interval, _moment(bar.start), bar.open, bar.high,
                      bar.low, bar.close, bar.volume, bar.trades)

    @staticmethod
    def _ordered(candles: list[Candle]) -> list[Candle]:
        if len(candles) > 1:
            candles.sort(key=lambda c: (c.start + dt.timedelta(seconds=c.interval_seconds), c.interval_seconds))
        return candles
