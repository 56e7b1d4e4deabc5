"""CandleAggregator's market-memory operations: cut, add_bar, skip.

The property that gap fill rests on: cut the live stream at the first minute an outage may
have touched, merge the reference's own 1-minute candles of the missing minutes as bars,
continue with the live ticks from the first whole live minute -- and every candle, of every
interval, is the one an uninterrupted aggregator made.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_candle_aggregator import PROPERTY, of, run, streams, tick, utc

from slob.market.candle_aggregator import CandleAggregator
from slob.model import Candle, Tick

MINUTE = dt.timedelta(minutes=1)


def floor_minute(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


def refill(ticks: list[Tick], k: int, j: int, end: dt.datetime) -> list[Candle] | None:
    """Live ticks [0, k), an outage, bars for the owed minutes, live ticks from the first
    whole minute after tick ``j``; None when there is nothing to cut."""
    reference = run(ticks, until=end)
    agg = CandleAggregator("NQ")
    out: list[Candle] = []
    for t in ticks[:k]:
        out += agg.add(t)
    at = agg.pending_from
    if at is None:
        if k >= len(ticks):
            return None
        at = floor_minute(ticks[k].timestamp)
    live_from = floor_minute(ticks[j].timestamp) + MINUTE if j < len(ticks) else floor_minute(end) + MINUTE
    out += agg.cut(at)
    for bar in of(reference, 60):
        if at <= bar.start < live_from and not bar.filled:
            out += agg.add_bar(bar)
    for t in ticks:
        if t.timestamp >= live_from:
            out += agg.add(t)
    return out + agg.advance(end) + agg.flush()


@PROPERTY
@given(streams(), st.data())
def test_cut_then_bars_then_live_ticks_gives_the_uninterrupted_candles(ticks: list[Tick], data: st.DataObject) -> None:
    end = (ticks[-1].timestamp if ticks else utc(2025, 3, 7)) + dt.timedelta(minutes=data.draw(st.integers(0, 30)))
    k = data.draw(st.integers(0, len(ticks)))
    j = data.draw(st.integers(k, len(ticks)))
    got = refill(ticks, k, j, end)
    if got is None:
        return
    key = lambda c: (c.interval_seconds, c.start)  # noqa: E731
    assert sorted(got, key=key) == sorted(run(ticks, until=end), key=key)


def test_a_cut_drops_the_open_minute_and_the_coarser_candles_go_back_to_before_it() -> None:
    agg = CandleAggregator("NQ")
    base = utc(2025, 3, 12, 15, 0)
    assert agg.add(tick(base + dt.timedelta(seconds=10), 100.0)) == []
    closed = agg.add(tick(base + dt.timedelta(minutes=1, seconds=5), 90.0))  # minute 15:01 opens
    assert [c.start for c in closed] == [base]
    agg.add(tick(base + dt.timedelta(minutes=1, seconds=30), 130.0))
    assert agg.pending_from == base + MINUTE
    assert agg.cut(base + MINUTE) == []
    assert agg.last_price == 100.0  # back to before the minute that was cut
    bar = Candle("NQ", "NQM5", 60, base + MINUTE, 101.0, 102.0, 99.0, 101.5, 7.0, 4)
    out = agg.add_bar(bar)
    assert out == [bar]  # closed at once, exactly as given
    out = agg.advance(base + dt.timedelta(minutes=5))
    five = of(out, 300)
    assert [(c.open, c.high, c.low, c.close, c.volume, c.trades) for c in five] == [(100.0, 102.0, 99.0, 101.5, 8.0, 5)]
    assert [c.filled for c in of(out, 60)] == [True, True, True]  # 15:02-15:04 quiet at 101.5


def test_ticks_before_a_cut_are_late_and_bars_must_come_in_order() -> None:
    agg = CandleAggregator("NQ")
    base = utc(2025, 3, 12, 15, 0)
    agg.add(tick(base, 100.0))
    agg.cut(base)
    assert agg.add(tick(base - dt.timedelta(seconds=1), 1.0)) == [] and agg.late_ticks == 1
    bar = Candle("NQ", "NQM5", 60, base, 100.0, 100.0, 100.0, 100.0, 1.0, 1)
    agg.add_bar(bar)
    with pytest.raises(ValueError, match="older"):
        agg.add_bar(bar)
    with pytest.raises(ValueError, match="closed already"):
        agg.cut(base)
    with pytest.raises(ValueError, match="finest interval"):
        agg.add_bar(Candle("NQ", "NQM5", 300, base + dt.timedelta(minutes=5), 1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="multiples"):
        CandleAggregator("NQ", (60, 90)).cut(base)


def test_skip_leaves_the_missing_minutes_without_candles() -> None:
    agg = CandleAggregator("NQ")
    base = utc(2025, 3, 12, 15, 0)
    out = agg.add(tick(base + dt.timedelta(seconds=1), 100.0))
    out += agg.add(tick(base + dt.timedelta(minutes=1, seconds=1), 101.0))
    out += agg.cut(base + MINUTE)
    out += agg.skip(base + dt.timedelta(minutes=7))
    out += agg.add(tick(base + dt.timedelta(minutes=7, seconds=3), 105.0))
    out += agg.flush()
    ones = of(out, 60)
    assert [c.start for c in ones] == [base, base + dt.timedelta(minutes=7)]
    # the 15:00 five-minute candle holds what was known; 15:05 has no candle at all
    assert [(c.start, c.close) for c in of(out, 300)] == [(base, 100.0), (base + dt.timedelta(minutes=5), 105.0)]
