"""The pure parts of historical requests (``slob.ib.history``): bar sizes, durations,
paging of a range by IB's limits, IB's date forms, merging pages of candles."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib.errors import ConfigError
from slob.ib.history import (
    BAR_SIZES,
    MAX_SPAN_SECONDS,
    BarSize,
    bar_size,
    candle_from_bar,
    duration_seconds,
    duration_string,
    format_ib_time,
    hmds_kind,
    merge_candles,
    page_ranges,
    parse_bar_time,
    parse_ib_time,
    what_to_show,
)
from slob.model import Candle

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
MOMENTS = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1),
                       timezones=st.just(UTC))
BARS = st.sampled_from([BarSize(n, s) for n, s in BAR_SIZES.items()])


@PROPERTY
@given(MOMENTS, st.integers(min_value=1, max_value=40 * 86_400), BARS)
def test_pages_cover_the_range_in_whole_bars_without_overlap(start: dt.datetime, seconds: int, bar: BarSize) -> None:
    end = start + dt.timedelta(seconds=seconds)
    pages = page_ranges(start, end, bar)
    assert pages[0].start <= start and pages[-1].end >= end
    assert pages[0].start > start - dt.timedelta(seconds=bar.seconds)  # widened by less than one bar
    assert pages[-1].end < end + dt.timedelta(seconds=bar.seconds)
    for a, b in zip(pages, pages[1:]):
        assert a.end == b.start  # contiguous: no gap, no overlap
    for p in pages:
        assert 0 < p.seconds <= MAX_SPAN_SECONDS[bar.seconds]
        assert p.seconds % bar.seconds == 0
        assert int(p.start.timestamp()) % bar.seconds == 0
        assert duration_seconds(p.duration) >= p.seconds  # the duration asked covers the page
        assert p.end_text == format_ib_time(p.end)


@PROPERTY
@given(MOMENTS, st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=86_399))
def test_one_minute_pages_follow_utc_days(day0: dt.datetime, days: int, offset: int) -> None:
    """Two runs over overlapping ranges ask for the same day pages (resumable downloads)."""
    midnight = day0.replace(hour=0, minute=0, second=0, microsecond=0)
    minute = bar_size("1 min")
    pages = page_ranges(midnight + dt.timedelta(seconds=offset), midnight + dt.timedelta(days=days), minute)
    for p in pages[1:]:
        assert p.start.time() == dt.time(0, 0)
    whole = page_ranges(midnight, midnight + dt.timedelta(days=days), minute)
    assert len(whole) == days and all(p.seconds == 86_400 and p.duration == "86400 S" for p in whole)
    assert pages[1:] == whole[1:]


def test_empty_and_naive_ranges() -> None:
    assert page_ranges(T0, T0, bar_size("1 min")) == []
    assert page_ranges(T0, T0 - dt.timedelta(minutes=1), bar_size("1 min")) == []
    with pytest.raises(ValueError):
        page_ranges(T0.replace(tzinfo=None), T0, bar_size("1 min"))


@pytest.mark.parametrize("text, name", [
    ("1 min", "1 min"), ("1min", "1 min"), ("1m", "1 min"), ("5m", "5 mins"), ("5 MINS", "5 mins"),
    ("30s", "30 secs"), ("1s", "1 sec"), ("1h", "1 hour"), ("2 hours", "2 hours"), ("1d", "1 day"),
])
def test_bar_sizes_in_ib_and_short_forms(text: str, name: str) -> None:
    assert bar_size(text).name == name


@pytest.mark.parametrize("text", ["7 mins", "1 week", "fast", "0m", ""])
def test_unknown_bar_sizes_name_the_valid_ones(text: str) -> None:
    with pytest.raises(ConfigError, match="1 min"):
        bar_size(text)


def test_what_to_show() -> None:
    assert what_to_show("trades") == "TRADES"
    with pytest.raises(ConfigError, match="MIDPOINT"):
        what_to_show("OPTION_IMPLIED_VOLATILITY")


@pytest.mark.parametrize("seconds, text", [(60, "60 S"), (86_400, "86400 S"), (86_401, "2 D"),
                                           (7 * 86_400, "7 D"), (365 * 86_400, "1 Y")])
def test_duration_strings(seconds: int, text: str) -> None:
    assert duration_string(seconds) == text
    assert duration_seconds(text) >= seconds


@pytest.mark.parametrize("text", ["", "1", "1 X", "-5 S", "0 D", "1D", "one D"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


def test_ib_times() -> None:
    assert format_ib_time(T0) == "20250305-15:00:00"
    est = dt.timezone(dt.timedelta(hours=-5))
    assert format_ib_time(T0.astimezone(est)) == "20250305-15:00:00"
    assert parse_ib_time("20250305-15:00:00") == T0
    assert parse_ib_time("20250305 10:00:00 US/Eastern") == T0
    assert parse_ib_time("20250305 15:00:00 UTC") == T0
    assert parse_ib_time("20250305  15:00:00") == T0  # no zone: the default (UTC here)
    assert parse_ib_time("20250305") == T0.replace(hour=0)
    for bad in ("2025-03-05", "20250305 25:00:00", "20250305 10:00:00 Mars/Base"):
        with pytest.raises(ValueError):
            parse_ib_time(bad)


def test_bar_dates_in_every_form() -> None:
    assert parse_bar_time(str(int(T0.timestamp()))) == T0
    assert parse_bar_time("20250305") == dt.datetime(2025, 3, 5, tzinfo=UTC)
    assert parse_bar_time("20250305 10:00:00 US/Eastern") == T0
    chicago = parse_bar_time("20250305  09:00:00", dt.timezone(dt.timedelta(hours=-6)))
    assert chicago == T0


def test_hmds_texts() -> None:
    assert hmds_kind("Historical Market Data Service error message:Historical data request pacing violation") \
        == "pacing"
    assert hmds_kind("Historical Market Data Service error message:HMDS query returned no data: NQH5@CME Trades") \
        == "no_data"
    assert hmds_kind("Historical Market Data Service error message:No market data permissions for CME FUT") \
        == "permission"
    assert hmds_kind("Historical Market Data Service error message:API historical data query cancelled: 2523") \
        == "cancelled"
    assert hmds_kind("Historical Market Data Service error message:Time length exceed max.") == "other"


def _c(minute: int, close: float = 1.0) -> Candle:
    return Candle("NQ", "NQH5", 60, T0 + dt.timedelta(minutes=minute), 1.0, 1.0, 1.0, close, 1.0, 1)


def test_merge_keeps_one_candle_per_minute_inside_the_range_and_finished() -> None:
    pages = [[_c(-1), _c(0), _c(1)], [_c(1, 2.0), _c(2), _c(3)]]
    merged = merge_candles(pages, T0, T0 + dt.timedelta(minutes=3))
    assert [c.start.minute for c in merged] == [0, 1, 2]
    assert merged[1].close == 2.0  # the later page wins
    # the minute 15:02 has not ended at 15:02:30: not a finished bar
    now = T0 + dt.timedelta(minutes=2, seconds=30)
    assert [c.start.minute for c in merge_candles(pages, T0, T0 + dt.timedelta(hours=1), now)] == [0, 1]


def test_candles_from_bars_without_volume() -> None:
    c = candle_from_bar("NQ", "NQH5", bar_size("1 min"), T0, 1, 2, 0.5, 1.5, -1, -1)
    assert (c.volume, c.trades, c.interval_seconds, c.end) == (0.0, 0, 60, T0 + dt.timedelta(minutes=1))
