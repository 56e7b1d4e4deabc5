"""The soak's calendar: IB's restarts and resets, CME's opens and closes (pure)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.soak.calendar import NEW_YORK, CalendarConfig, ib_calendar, market_transitions
from slob.testing.futures import is_cme_open

UTC = dt.timezone.utc
MONDAY = dt.datetime(2025, 3, 3, tzinfo=UTC)


def _ny(e_at: dt.datetime) -> dt.datetime:
    return e_at.astimezone(NEW_YORK)


def test_a_week_has_the_documented_events() -> None:
    events = ib_calendar(MONDAY, MONDAY + dt.timedelta(days=7), seed=1)
    kinds = [e.kind for e in events]
    restarts = [e for e in events if e.kind == "restart"]
    assert len(restarts) == 7 and all((_ny(e.at).hour, _ny(e.at).minute) == (23, 45) for e in restarts)
    resets = [e for e in events if e.kind == "reset"]
    assert {_ny(e.at).weekday() for e in resets} == {6, 0, 1, 2, 3, 4}  # Sunday to Friday
    for e in resets:
        local = _ny(e.at).time()
        assert dt.time(0, 15) <= local < dt.time(1, 45)
        assert 0.2 <= e.down_seconds <= 1.0
    (reauth,) = [e for e in events if e.kind == "reauth"]
    assert _ny(reauth.at).weekday() == 6 and _ny(reauth.at).time() == dt.time(1, 0)
    assert reauth.down_seconds > restarts[0].down_seconds
    (weekend,) = [e for e in events if e.kind == "weekend"]
    assert _ny(weekend.at).weekday() == 4 and _ny(weekend.at).time() == dt.time(23, 0)
    assert weekend.until is not None and _ny(weekend.until).time() == dt.time(3, 0)
    assert not weekend.data_maintained
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert "reset" in kinds and all(e.describe() for e in events)


def test_the_same_seed_gives_the_same_calendar_and_a_longer_range_extends_it() -> None:
    week = ib_calendar(MONDAY, MONDAY + dt.timedelta(days=7), seed=5)
    assert week == ib_calendar(MONDAY, MONDAY + dt.timedelta(days=7), seed=5)
    month = ib_calendar(MONDAY, MONDAY + dt.timedelta(days=30), seed=5)
    assert month[:len(week)] == week  # a day's draws do not depend on the range
    other = ib_calendar(MONDAY, MONDAY + dt.timedelta(days=7), seed=6)
    assert [e.at for e in other if e.kind == "reset"] != [e.at for e in week if e.kind == "reset"]


def test_resets_sometimes_lose_data_and_sometimes_repeat_1100() -> None:
    resets = [e for e in ib_calendar(MONDAY, MONDAY + dt.timedelta(days=60), seed=2) if e.kind == "reset"]
    assert {e.data_maintained for e in resets} == {True, False}
    assert {e.repeats for e in resets} >= {0, 1}


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        CalendarConfig(reset_seconds=(2.0, 1.0))
    with pytest.raises(ValueError):
        CalendarConfig(restart_down_seconds=0)
    with pytest.raises(ValueError):
        ib_calendar(dt.datetime(2025, 3, 3), MONDAY, seed=1)


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 1, 1)),
       st.integers(min_value=1, max_value=20 * 24))
def test_transitions_alternate_and_match_cme_hours(start: dt.datetime, hours: int) -> None:
    start = start.replace(tzinfo=UTC)
    end = start + dt.timedelta(hours=hours)
    moves = market_transitions(start, end)
    state = is_cme_open(start)
    for moment, opens in moves:
        assert start < moment <= end
        assert opens != state  # strictly alternating, starting from the state at start
        assert is_cme_open(moment) == opens
        assert is_cme_open(moment - dt.timedelta(seconds=1)) != opens
        state = opens
    assert state == is_cme_open(end)
