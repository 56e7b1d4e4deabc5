"""slob.live.warmup's pure parts: the window, what the store may supply, what is missing,
when a replayed trigger is still fresh, and when a day's levels are known."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib.errors import ConfigError
from slob.store.store import CandleRecord
from slob.live.warmup import (MINUTE, MemoryConfig, floor_minute, fresh, levels_known, minutes, missing_ranges,
                              trusted, warmup_start)
from slob.model import Candle

UTC = dt.timezone.utc
T = dt.datetime(2025, 3, 5, 14, 0, tzinfo=UTC)  # a Wednesday; London is on GMT


def candle(start: dt.datetime, *, interval: int = 60) -> Candle:
    return Candle("NQ", "NQH5", interval, start, 1, 1, 1, 1, 1, 1)


def test_the_window_starts_at_the_lse_open_once_it_has_passed() -> None:
    assert warmup_start(T) == dt.datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
    assert warmup_start(dt.datetime(2025, 3, 5, 8, 59, tzinfo=UTC)) is None  # the live feed will see it all
    assert warmup_start(dt.datetime(2025, 3, 8, 12, 0, tzinfo=UTC)) is None  # Saturday
    summer = dt.datetime(2025, 6, 4, 10, 0, tzinfo=UTC)  # BST: 09:00 London is 08:00 UTC
    assert warmup_start(summer) == dt.datetime(2025, 6, 4, 8, 0, tzinfo=UTC)


def test_the_store_supplies_history_candles_and_live_ones_before_the_last_data_minute() -> None:
    rows = [CandleRecord(candle(T + i * MINUTE), "live") for i in range(5)]
    rows += [CandleRecord(candle(T + 9 * MINUTE), "history"), CandleRecord(candle(T, interval=300), "live")]
    # the last tick at 14:03:20: its minute may have been cut short, so 14:03 and later are not trusted
    assert sorted(trusted(rows, T + dt.timedelta(minutes=3, seconds=20))) == [T, T + MINUTE, T + 2 * MINUTE,
                                                                              T + 9 * MINUTE]
    # a last data time at a minute's end (a candle's end, ticks not stored) distrusts that candle
    assert sorted(trusted(rows, T + 3 * MINUTE)) == [T, T + MINUTE, T + 9 * MINUTE]
    assert sorted(trusted(rows, None)) == [T + 9 * MINUTE]  # nothing live is known to be whole


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 30), st.sets(st.integers(0, 40)))
def test_missing_ranges_are_exactly_the_uncovered_minutes(n: int, covered: set[int]) -> None:
    end = T + n * MINUTE
    have = {T + m * MINUTE for m in covered}
    spans = missing_ranges(T, end, have)
    listed = [m for a, b in spans for m in minutes(a, b)]
    assert listed == [m for m in minutes(T, end) if m not in have]
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))  # in order, never touching twice
    assert all(a < b for a, b in spans)


def test_a_replayed_trigger_is_fresh_only_in_its_entry_minute() -> None:
    assert fresh(T, T + dt.timedelta(seconds=59))
    assert fresh(T + MINUTE, T + dt.timedelta(seconds=59))
    assert not fresh(T, T + MINUTE)


def test_levels_are_unknown_when_a_missing_stretch_touches_the_lse_session() -> None:
    day = T.date()
    assert levels_known(day, [(dt.datetime(2025, 3, 5, 15, 30, tzinfo=UTC), dt.datetime(2025, 3, 5, 16, 0, tzinfo=UTC))])
    assert not levels_known(day, [(dt.datetime(2025, 3, 5, 15, 29, tzinfo=UTC),
                                   dt.datetime(2025, 3, 5, 15, 30, tzinfo=UTC))])
    assert levels_known(dt.date(2025, 3, 8), [(T, T + MINUTE)])  # a Saturday has no session to miss


def test_the_config_refuses_what_cannot_work() -> None:
    for bad in (dict(history_delay_seconds=-1), dict(retry_seconds=float("nan")), dict(max_attempts=0),
                dict(empty_answer_minutes=0), dict(clock_poll_seconds=0)):
        with pytest.raises(ConfigError, match="MemoryConfig"):
            MemoryConfig(**bad)  # type: ignore[arg-type]
    assert floor_minute(T + dt.timedelta(seconds=59, microseconds=999)) == T
    with pytest.raises(ValueError, match="naive"):
        floor_minute(dt.datetime(2025, 3, 5, 14, 0))
