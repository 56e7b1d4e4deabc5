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

**Market memory** (slob.live.gapfill): the engine may replace minutes with IB's historical
bars. :meth:`~CandleAggregator.cut` forgets every trade from a boundary of the finest
interval on -- the open finest candle, and the part of every coarser open candle that came
after the boundary (a snapshot of the coarser candles is kept at the start of each finest
bucket for this) -- so those minutes can be supplied again whole with
:meth:`~CandleAggregator.add_bar`, which merges a finished candle of the finest interval
as if its trades had come (the same OHLCV, volume and trade count), fills the quiet
buckets before it and closes it at once. Minutes that history could not supply are
stepped over with :meth:`~CandleAggregator.skip`: no flat candles there, since nobody
knows they were quiet. The three need every interval to be a multiple of the finest
(ValueError otherwise), which the 60/300 default is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Sequence

from slob.market.sessions import CmeHours
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


    def copy(self) -> _Bar:
        return _Bar(self.start, self.open, self.high, self.low, self.close, self.volume, self.trades,
                    self.contract)

    def merge(self, c: Candle) -> None:
        """Add a finished candle's trades (it comes after everything merged so far)."""
        if c.high > self.high:
            self.high = c.high
        if c.low < self.low:
            self.low = c.low
        self.close = c.close
        self.volume += c.volume
        self.trades += c.trades
        self.contract = c.contract


@dataclass(slots=True)
class _Snapshot:
    """The coarser series, the last price and contract as they were when the finest
    bucket ``start`` began: what :meth:`CandleAggregator.cut` restores."""

    start: int
    bars: list[_Bar | None]
    cursors: list[int | None]
    last_price: float | None
    last_contract: str


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
        :meth:`slob.market.sessions.CmeHours.default`)."""
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
        self._snapshot: _Snapshot | None = None

    @property
    def watermark(self) -> dt.datetime | None:
        """Ticks older than this are late: everything before it is closed (for the finest
        interval). None before the first tick."""
        return None if self._watermark is None else _moment(self._watermark)

    @property
    def pending_from(self) -> dt.datetime | None:
        """The start of the earliest bucket of the finest interval not closed yet (the open
        candle's, or the next one's when none is open); None before any data. Everything
        before it has been returned as closed candles."""
        finest = self._series[0]
        if finest.bar is not None:
            return _moment(finest.bar.start)
        return None if finest.cursor is None else _moment(finest.cursor)

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
        finest = self._series[0]
        first = second - second % finest.interval
        if finest.bar is None or finest.bar.start != first:
            # A new bucket of the finest interval: close what ends by its start (as
            # advance() would), then remember the coarser candles as they are, for cut().
            self._close(first, out)
            self._mark(first)
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
        out: list[Candle] = []
        self._close(_seconds(now), out)
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

    # -- market memory (see the module docstring) ----------------------------------------

    def add_bar(self, candle: Candle) -> list[Candle]:
        """Merge ``candle``, a *finished* candle of the finest interval (a history bar), as
        if its trades had come; return the candles closed by it, itself included (it
        closes at once, and so does every coarser candle ending with it). It must not be
        older than :attr:`pending_from` (ValueError: the caller owes the minutes in order)."""
        self._check_nested()
        finest = self._series[0]
        if candle.interval_seconds != finest.interval:
            raise ValueError(f"a {candle.interval_seconds}s bar sent to candles whose finest interval is "
                             f"{finest.interval}s")
        start = _seconds(candle.start)
        if start % finest.interval:
            raise ValueError(f"bar at {candle.start} is not on a {finest.interval}s boundary")
        if self._watermark is not None and start < self._watermark:
            raise ValueError(f"bar at {candle.start} is older than the candles already closed "
                             f"(up to {_moment(self._watermark)})")
        out: list[Candle] = []
        self._close(start, out)
        self._mark(start)
        for series in self._series:
            bucket = start - start % series.interval
            bar = series.bar
            if bar is not None and bar.start == bucket:
                bar.merge(candle)
            else:
                series.bar = _Bar(bucket, candle.open, candle.high, candle.low, candle.close, candle.volume,
                                  candle.trades, candle.contract)
                series.cursor = bucket
        self._last_price, self._last_contract = candle.close, candle.contract
        self._close(start + finest.interval, out)
        self._update_watermark()
        return self._ordered(out)

    def cut(self, at: dt.datetime) -> list[Candle]:
        """Forget every trade at or after ``at``, a boundary of the finest interval not
        before :attr:`pending_from`: the candles that end by ``at`` are closed (and the
        quiet buckets before it filled) and returned; the open finest candle (which starts
        at ``at``) is dropped and the coarser open candles go back to what they held
        before ``at``. The buckets from ``at`` on must then come from :meth:`add_bar`
        (or be stepped over with :meth:`skip`); ticks older than ``at`` are late."""
        self._check_nested()
        finest = self._series[0]
        s = _seconds(at)
        if s % finest.interval:
            raise ValueError(f"cut at {at}: not on a {finest.interval}s boundary")
        pending = self.pending_from
        if pending is not None and at < pending:
            raise ValueError(f"cut at {at}: the candles up to {pending} are closed already")
        out: list[Candle] = []
        self._close(s, out)
        bar = finest.bar
        if bar is not None:  # it starts at ``at``: _close left nothing else open
            snap = self._snapshot
            assert snap is not None and snap.start == bar.start == s
            for series, kept, cursor in zip(self._series[1:], snap.bars, snap.cursors):
                series.bar = None if kept is None else kept.copy()
                series.cursor = cursor
            self._last_price, self._last_contract = snap.last_price, snap.last_contract
            finest.bar = None
        if finest.cursor is not None:
            finest.cursor = s
        self._watermark = s
        return self._ordered(out)

    def skip(self, until: dt.datetime) -> list[Candle]:
        """The buckets before ``until`` (a boundary of the finest interval) are missing --
        an outage that history could not fill: close the candles that end by then (a
        coarser one may lack the missing trades) and move on without flat candles for the
        missing buckets. Returns the candles closed."""
        self._check_nested()
        s = _seconds(until)
        if s % self._series[0].interval:
            raise ValueError(f"skip to {until}: not on a {self._series[0].interval}s boundary")
        out: list[Candle] = []
        for series in self._series:
            bar = series.bar
            if bar is not None and bar.start + series.interval <= s:
                out.append(self._candle(series.interval, bar))
                series.bar = None
                series.cursor = bar.start + series.interval
            if series.bar is None and series.cursor is not None and series.cursor < s:
                series.cursor = s - s % series.interval
        self._update_watermark()
        self._watermark = s if self._watermark is None else max(self._watermark, s)
        return self._ordered(out)

    # -- internals ---------------------------------------------------------------------

    def _close(self, second: int, out: list[Candle]) -> None:
        """Close every candle that ends by ``second`` and fill the quiet buckets before
        it (series that have seen no data yet are left alone)."""
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

    def _mark(self, start: int) -> None:
        coarse = self._series[1:]
        self._snapshot = _Snapshot(start, [None if s.bar is None else s.bar.copy() for s in coarse],
                                   [s.cursor for s in coarse], self._last_price, self._last_contract)

    def _check_nested(self) -> None:
        finest = self.intervals[0]
        if any(i % finest for i in self.intervals):
            raise ValueError(f"candle intervals {list(self.intervals)} are not all multiples of {finest}s: "
                             "whole bars cannot be merged into them")


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
