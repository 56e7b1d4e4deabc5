"""CandleAggregator: exchange-time buckets, the fill policy, late ticks, rolls, and the
properties that make replayed feeds give the live candles."""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.market.candle_aggregator import CandleAggregator
from slob.market.sessions import CHICAGO
from slob.model import Candle, Tick
from slob.testing.futures import is_cme_open, next_cme_open

UTC = dt.timezone.utc
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None)


def tick(t: dt.datetime, price: float, size: float = 1.0, contract: str = "NQM5", symbol: str = "NQ") -> Tick:
    return Tick(symbol, price, size, t, "CME", contract, 0)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ct(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CHICAGO)  # type: ignore[misc]


def run(ticks: Sequence[Tick], *, until: dt.datetime | None = None, **kw: Any) -> list[Candle]:
    agg = CandleAggregator("NQ", **kw)
    out: list[Candle] = []
    for t in ticks:
        out += agg.add(t)
    if until is not None:
        out += agg.advance(until)
    return out + agg.flush()


def of(candles: Sequence[Candle], interval: int) -> list[Candle]:
    return [c for c in candles if c.interval_seconds == interval]


def ohlc(c: Candle) -> tuple[float, float, float, float, float, int, bool]:
    return c.open, c.high, c.low, c.close, c.volume, c.trades, c.filled


# -- tick streams for the properties ---------------------------------------------------

BASES = [
    ct(2025, 3, 7, 15, 40),  # Friday before the close: the weekend, then the DST change on Sunday
    ct(2025, 6, 11, 15, 40),  # Wednesday before the daily halt
    ct(2025, 10, 31, 15, 10),  # Friday, UK already on winter time
    ct(2025, 11, 2, 17, 0),  # Sunday open after the US change
    ct(2025, 3, 12, 9, 0),  # a plain Wednesday morning
]
GAPS_US = st.one_of(st.integers(0, 3_000_000), st.integers(0, 90_000_000), st.integers(0, 1_500_000_000),
                    st.integers(0, 3_600_000_000))


@st.composite
def streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks in exchange-time order while CME trades (a gap that ends in the halt or the
    weekend continues at the next open), prices on the 0.25 grid, whole sizes, maybe a
    roll to the next contract."""
    t = draw(st.sampled_from(BASES)).astimezone(UTC)
    n = draw(st.integers(0, 60))
    roll_at = draw(st.integers(0, n + 1))
    ticks = []
    for i in range(n):
        t += dt.timedelta(microseconds=draw(GAPS_US))
        if not is_cme_open(t):
            t = next_cme_open(t) + dt.timedelta(microseconds=draw(GAPS_US))
            if not is_cme_open(t):
                continue
        price = 20_000 + 0.25 * draw(st.integers(-80, 80))
        contract = "NQM5" if i < roll_at else "NQU5"
        ticks.append(tick(t, price, float(draw(st.integers(1, 9))), contract))
    return ticks


def assert_contiguous(candles: list[Candle]) -> None:
    """Each candle starts where the previous ended, unless every bucket between is
    outside CME hours."""
    for a, b in zip(candles, candles[1:]):
        assert b.start >= a.end
        s = a.end
        while s < b.start:
            assert not is_cme_open(s), f"missing {a.interval_seconds}s candle at {s}"
            s += dt.timedelta(seconds=a.interval_seconds)


# -- properties ----------------------------------------------------------------------


@PROPERTY
@given(streams(), st.data())
def test_batches_and_advance_calls_do_not_change_the_candles(ticks: list[Tick], data: st.DataObject) -> None:
    end = (ticks[-1].timestamp if ticks else utc(2025, 3, 7)) + dt.timedelta(minutes=data.draw(st.integers(0, 30)))
    reference = run(ticks, until=end)
    agg = CandleAggregator("NQ")
    out: list[Candle] = []
    previous = ticks[0].timestamp if ticks else end
    for i, t in enumerate(ticks + [None]):
        following = t.timestamp if t is not None else end
        for _ in range(data.draw(st.integers(0, 2))):  # a timer between two batches
            fraction = data.draw(st.floats(0, 1))
            now = previous + (following - previous) * fraction if following >= previous else following
            batch = agg.advance(now)
            assert batch == sorted(batch, key=lambda c: (c.end, c.interval_seconds))
            out += batch
        if t is not None:
            out += agg.add(t)
            previous = t.timestamp
    out += agg.advance(end) + agg.flush()
    assert out == reference
    assert out == sorted(out, key=lambda c: (c.end, c.interval_seconds))
    assert agg.late_ticks == 0


@PROPERTY
@given(streams())
def test_candle_invariants(ticks: list[Tick]) -> None:
    candles = run(ticks)
    for interval in (60, 300):
        series = of(candles, interval)
        assert sum(c.volume for c in series if not c.filled) == sum(t.size for t in ticks)
        assert sum(c.trades for c in series) == len(ticks)
        assert_contiguous(series)
        for prev, c in zip([None, *series], series):
            assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
            assert c.start.tzinfo is UTC and c.start.timestamp() % interval == 0
            assert is_cme_open(c.start), f"candle inside the halt or the weekend: {c}"
            if c.filled:
                assert prev is not None, "filled before the first trade"
                assert (c.open, c.high, c.low, c.close) == (prev.close,) * 4
                assert (c.volume, c.trades, c.contract) == (0.0, 0, prev.contract)
            else:
                inside = [t for t in ticks if c.start <= t.timestamp < c.end]
                assert c.trades == len(inside) and c.volume == sum(t.size for t in inside)
                assert (c.open, c.close, c.contract) == (inside[0].price, inside[-1].price, inside[-1].contract)
                assert (c.high, c.low) == (max(t.price for t in inside), min(t.price for t in inside))


@PROPERTY
@given(streams())
def test_five_minute_candles_aggregate_the_one_minute_candles(ticks: list[Tick]) -> None:
    candles = run(ticks)
    ones = of(candles, 60)
    for five in of(candles, 300):
        inside = [c for c in ones if five.start <= c.start < five.end]
        traded = [c for c in inside if not c.filled]
        if not traded:
            assert five.filled and all(c.filled and c.close == five.close for c in inside)
            continue
        assert not five.filled
        assert five.open == traded[0].open and five.close == traded[-1].close
        assert five.high == max(c.high for c in traded) and five.low == min(c.low for c in traded)
        assert five.volume == sum(c.volume for c in traded) and five.trades == sum(c.trades for c in traded)
        assert five.contract == traded[-1].contract


@PROPERTY
@given(streams(), st.data())
def test_late_ticks_are_counted_and_change_nothing(ticks: list[Tick], data: st.DataObject) -> None:
    reference = run(ticks)
    agg = CandleAggregator("NQ")
    out: list[Candle] = []
    late = 0
    for t in ticks:
        out += agg.add(t)
        watermark = agg.watermark
        assert watermark is not None and watermark <= t.timestamp
        for _ in range(data.draw(st.integers(0, 2))):
            back = dt.timedelta(microseconds=data.draw(st.integers(1, 10**10)))
            assert agg.add(tick(watermark - back, data.draw(st.sampled_from([1.0, 99_999.0])), 7.0)) == []
            late += 1
    out += agg.flush()
    assert out == reference and agg.late_ticks == late


@PROPERTY
@given(streams(), st.randoms(use_true_random=False))
def test_order_within_a_bucket_only_moves_open_and_close(ticks: list[Tick], rnd: Any) -> None:
    groups: list[list[Tick]] = []
    for t in ticks:  # runs of ticks that share a 1-minute bucket, each shuffled
        if groups and groups[-1][0].timestamp.replace(second=0, microsecond=0) == t.timestamp.replace(second=0, microsecond=0):
            groups[-1].append(t)
        else:
            groups.append([t])
    shuffled: list[Tick] = []
    for g in groups:
        rnd.shuffle(g)
        shuffled += g
    a, b = run(ticks, intervals=(60,)), run(shuffled, intervals=(60,))
    assert [c.start for c in a] == [c.start for c in b]
    assert [(c.high, c.low, c.volume, c.trades) for c in a if not c.filled] == [
        (c.high, c.low, c.volume, c.trades) for c in b if not c.filled]  # flat candles follow the last close


# -- examples ------------------------------------------------------------------------


def test_quiet_minutes_become_flat_candles_at_the_previous_close() -> None:
    agg = CandleAggregator("NQ", intervals=(60,))
    assert agg.advance(utc(2025, 3, 12, 14, 59)) == []  # nothing before the first trade
    assert agg.add(tick(utc(2025, 3, 12, 15, 0, 5), 100.0, 2)) == []
    assert agg.add(tick(utc(2025, 3, 12, 15, 0, 40), 100.5, 1)) == []
    closed = agg.add(tick(utc(2025, 3, 12, 15, 3, 10), 101.0))
    assert [(c.start.minute, *ohlc(c)) for c in closed] == [
        (0, 100.0, 100.5, 100.0, 100.5, 3.0, 2, False),
        (1, 100.5, 100.5, 100.5, 100.5, 0.0, 0, True),
        (2, 100.5, 100.5, 100.5, 100.5, 0.0, 0, True),
    ]
    assert agg.advance(utc(2025, 3, 12, 15, 3, 59)) == []  # the 15:03 candle is still open
    closed = agg.advance(utc(2025, 3, 12, 15, 5, 30))  # the timer on a quiet market
    assert [(c.start.minute, c.close, c.filled) for c in closed] == [(3, 101.0, False), (4, 101.0, True)]
    assert agg.watermark == utc(2025, 3, 12, 15, 5)
    assert agg.flush() == []


def test_no_candles_in_the_daily_halt() -> None:
    candles = run([tick(ct(2025, 6, 11, 15, 58, 30), 50.0), tick(ct(2025, 6, 11, 17, 1, 5), 51.0)])
    ones = [(c.start.astimezone(CHICAGO).strftime("%H:%M"), c.filled) for c in of(candles, 60)]
    assert ones == [("15:58", False), ("15:59", True), ("17:00", True), ("17:01", False)]
    fives = [(c.start.astimezone(CHICAGO).strftime("%H:%M"), c.filled) for c in of(candles, 300)]
    assert fives == [("15:55", False), ("17:00", False)]


def test_no_candles_over_the_weekend() -> None:
    friday, sunday = ct(2025, 3, 7, 15, 59, 59), ct(2025, 3, 9, 17, 0, 0)
    candles = run([tick(friday, 10.0), tick(sunday, 11.0)], until=sunday + dt.timedelta(minutes=2))
    starts = [c.start.astimezone(CHICAGO).strftime("%a %H:%M") for c in of(candles, 60)]
    assert starts == ["Fri 15:59", "Sun 17:00", "Sun 17:01"]
    assert of(candles, 60)[-1].filled and of(candles, 60)[-1].close == 11.0


def test_late_and_out_of_order_ticks() -> None:
    agg = CandleAggregator("NQ", intervals=(60, 300))
    agg.add(tick(utc(2025, 3, 12, 15, 1, 30), 10.0))
    agg.add(tick(utc(2025, 3, 12, 15, 1, 10), 9.0))  # same minute, out of order: merged
    agg.add(tick(utc(2025, 3, 12, 15, 2, 5), 12.0))
    assert agg.add(tick(utc(2025, 3, 12, 15, 1, 59), 50.0)) == []  # the 15:01 candle closed: late
    assert agg.late_ticks == 1
    candles = agg.flush()
    assert [(c.interval_seconds, c.start.minute, c.open, c.high, c.low, c.close, c.trades) for c in candles] == [
        (60, 2, 12.0, 12.0, 12.0, 12.0, 1), (300, 0, 10.0, 12.0, 9.0, 12.0, 3)]
    assert agg.add(tick(utc(2025, 3, 12, 15, 4, 0), 1.0)) == [] and agg.late_ticks == 2  # flushed buckets stay closed


def test_a_roll_changes_the_contract_and_nothing_else() -> None:
    ticks = [tick(utc(2025, 6, 12, 22, 0, 10), 100.0, contract="NQM5"),
             tick(utc(2025, 6, 12, 22, 0, 40), 150.0, contract="NQU5"),  # mid-minute: the candle mixes both
             tick(utc(2025, 6, 12, 22, 1, 5), 151.0, contract="NQU5"),
             tick(utc(2025, 6, 12, 22, 4, 0), 152.0, contract="NQU5")]
    ones = of(run(ticks), 60)
    assert [(c.start.minute, c.contract, c.open, c.close, c.filled) for c in ones] == [
        (0, "NQU5", 100.0, 150.0, False), (1, "NQU5", 151.0, 151.0, False),
        (2, "NQU5", 151.0, 151.0, True), (3, "NQU5", 151.0, 151.0, True), (4, "NQU5", 152.0, 152.0, False)]
    on_the_minute = [tick(utc(2025, 6, 12, 22, 0, 10), 100.0, contract="NQM5"),
                     tick(utc(2025, 6, 12, 22, 2, 0), 150.0, contract="NQU5")]
    ones = of(run(on_the_minute), 60)
    assert [(c.contract, c.close, c.filled) for c in ones] == [("NQM5", 100.0, False), ("NQM5", 100.0, True),
                                                               ("NQU5", 150.0, False)]


def test_buckets_are_epoch_aligned_exchange_time() -> None:
    t = dt.datetime(2025, 3, 12, 10, 7, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    candles = run([tick(t, 1.0)], intervals=(60, 300, 3600))
    assert [(c.interval_seconds, c.start) for c in candles] == [
        (60, utc(2025, 3, 12, 15, 7)), (300, utc(2025, 3, 12, 15, 5)), (3600, utc(2025, 3, 12, 15))]
    assert all(c.start.tzinfo is UTC for c in candles)


def test_custom_trading_hours() -> None:
    ticks = [tick(utc(2025, 3, 8, 12, 0), 1.0), tick(utc(2025, 3, 8, 12, 3), 2.0)]  # a Saturday
    assert len(run(ticks, intervals=(60,), is_trading=lambda t: True)) == 4
    assert len(run(ticks, intervals=(60,))) == 2  # the default: CME is closed, no fill
    assert len(run(ticks, intervals=(60,), is_trading=lambda t: t.minute != 1)) == 3


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        CandleAggregator("NQ", intervals=())
    with pytest.raises(ValueError, match="positive"):
        CandleAggregator("NQ", intervals=(60, 0))
    with pytest.raises(ValueError, match="repeat"):
        CandleAggregator("NQ", intervals=(60, 60))
    agg = CandleAggregator("NQ")
    with pytest.raises(ValueError, match="'ES' tick"):
        agg.add(tick(utc(2025, 3, 12, 15), 1.0, symbol="ES"))
    with pytest.raises(ValueError, match="naive"):
        agg.add(tick(dt.datetime(2025, 3, 12, 15), 1.0))
    with pytest.raises(ValueError, match="naive"):
        agg.advance(dt.datetime(2025, 3, 12, 15))
