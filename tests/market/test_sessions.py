"""LSE/NYSE sessions across the 4- and 5-hour London-New York offsets, and CME hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib.errors import ConfigError
from slob.market.sessions import (
    CHICAGO,
    LONDON,
    NEW_YORK,
    CmeHours,
    ib_zone,
    lse_session,
    nyse_session,
    session_at,
    trading_day,
)
from slob.testing.futures import is_cme_open, next_cme_open, trading_hours

UTC = dt.timezone.utc
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
ZONES = st.sampled_from([UTC, LONDON, NEW_YORK, CHICAGO, ZoneInfo("Asia/Tokyo"), dt.timezone(dt.timedelta(hours=-3))])
moments = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=ZONES)
days = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def weekdays(first: dt.date, last: dt.date) -> list[dt.date]:
    out, d = [], first
    while d <= last:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def hours_apart(day: dt.date) -> float:
    """London minus New York at 15:30 London on ``day``, in hours."""
    at = dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
    gap = at.astimezone(LONDON).utcoffset() - at.astimezone(NEW_YORK).utcoffset()  # type: ignore[operator]
    return gap.total_seconds() / 3600


# -- LSE / NYSE: fixed examples ----------------------------------------------------------


@pytest.mark.parametrize("day", weekdays(dt.date(2025, 3, 3), dt.date(2025, 3, 7))
                         + weekdays(dt.date(2025, 11, 3), dt.date(2025, 11, 7))
                         + weekdays(dt.date(2025, 1, 6), dt.date(2025, 1, 10)))
def test_winter_weeks_are_five_hours_apart(day: dt.date) -> None:
    assert lse_session(day) == (utc(day.year, day.month, day.day, 9), utc(day.year, day.month, day.day, 15, 30))
    start, end = nyse_session(day)
    assert start == utc(day.year, day.month, day.day, 15, 30)
    assert end == utc(day.year, day.month, day.day, 21)
    assert start.astimezone(NEW_YORK).time() == dt.time(10, 30)


@pytest.mark.parametrize("day", weekdays(dt.date(2025, 3, 10), dt.date(2025, 3, 28))
                         + weekdays(dt.date(2025, 10, 27), dt.date(2025, 10, 31)))
def test_four_hour_weeks(day: dt.date) -> None:
    """US on summer time, UK not (yet / any more): 15:30 London is 11:30 New York."""
    y, m, d = day.year, day.month, day.day
    assert lse_session(day) == (utc(y, m, d, 9), utc(y, m, d, 15, 30))
    start, end = nyse_session(day)
    assert start == utc(y, m, d, 15, 30) == dt.datetime(y, m, d, 15, 30, tzinfo=LONDON)
    assert end == utc(y, m, d, 20) == dt.datetime(y, m, d, 16, tzinfo=NEW_YORK)
    assert start.astimezone(NEW_YORK).time() == dt.time(11, 30)
    assert session_at(utc(y, m, d, 15, 29, 59)) == "LSE"
    assert session_at(utc(y, m, d, 15, 30)) == "NYSE"
    assert session_at(utc(y, m, d, 19, 59, 59)) == "NYSE"
    assert session_at(utc(y, m, d, 20)) is None  # 16:00 New York: closed, though 21:00 UTC is not yet


@pytest.mark.parametrize("day", weekdays(dt.date(2025, 3, 31), dt.date(2025, 4, 4))
                         + weekdays(dt.date(2025, 7, 7), dt.date(2025, 7, 11))
                         + weekdays(dt.date(2025, 10, 20), dt.date(2025, 10, 24)))
def test_summer_weeks_are_five_hours_apart(day: dt.date) -> None:
    y, m, d = day.year, day.month, day.day
    assert lse_session(day) == (utc(y, m, d, 8), utc(y, m, d, 14, 30))
    assert nyse_session(day) == (utc(y, m, d, 14, 30), utc(y, m, d, 20))
    assert nyse_session(day)[0].astimezone(NEW_YORK).time() == dt.time(10, 30)


def test_before_2007_a_six_hour_week() -> None:
    """US summer time began on the first Sunday of April until 2006: UK clocks went
    forward a week earlier, and 15:30 London was 09:30 New York."""
    start, end = nyse_session(dt.date(2005, 3, 28))
    assert start == utc(2005, 3, 28, 14, 30) and start.astimezone(NEW_YORK).time() == dt.time(9, 30)
    assert end == utc(2005, 3, 28, 21)


def test_session_boundaries_and_trading_day() -> None:
    day = dt.date(2025, 3, 5)
    assert session_at(utc(2025, 3, 5, 8, 59, 59)) is None
    assert session_at(utc(2025, 3, 5, 9)) == "LSE"
    assert session_at(utc(2025, 3, 5, 15, 29, 59, 999999)) == "LSE"
    assert session_at(utc(2025, 3, 5, 15, 30)) == "NYSE"
    assert session_at(utc(2025, 3, 5, 20, 59, 59)) == "NYSE"
    assert session_at(utc(2025, 3, 5, 21)) is None
    assert session_at(dt.datetime(2025, 3, 5, 10, 29, tzinfo=NEW_YORK)) == "LSE"  # any input zone
    assert session_at(dt.datetime(2025, 3, 5, 10, 30, tzinfo=NEW_YORK)) == "NYSE"
    assert trading_day(utc(2025, 3, 5, 9)) == day
    assert trading_day(utc(2025, 3, 5, 20, 30)) == day
    assert trading_day(utc(2025, 3, 5, 22)) is None
    assert trading_day(utc(2025, 3, 6, 3)) is None


@pytest.mark.parametrize("day", [dt.date(2025, 3, 8), dt.date(2025, 3, 9), dt.date(2025, 10, 26), dt.date(2025, 11, 1)])
def test_weekends_have_no_sessions(day: dt.date) -> None:
    with pytest.raises(ValueError, match="no LSE or NYSE session"):
        lse_session(day)
    with pytest.raises(ValueError, match="no LSE or NYSE session"):
        nyse_session(day)
    t = dt.datetime.combine(day, dt.time(0), tzinfo=UTC)
    for _ in range(48):
        assert session_at(t) is None and trading_day(t) is None
        t += dt.timedelta(minutes=30)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        session_at(dt.datetime(2025, 3, 5, 12))
    with pytest.raises(ValueError, match="naive"):
        CmeHours.default().is_open(dt.datetime(2025, 3, 5, 12))


# -- LSE / NYSE: properties --------------------------------------------------------------


@PROPERTY
@given(moments)
def test_session_at_agrees_with_the_bounds(t: dt.datetime) -> None:
    u = t.astimezone(UTC)
    expected, expected_day = None, None
    london = u.astimezone(LONDON).date()
    for day in (london - dt.timedelta(days=1), london, london + dt.timedelta(days=1)):
        if day.weekday() >= 5:
            continue
        for name, (start, end) in (("LSE", lse_session(day)), ("NYSE", nyse_session(day))):
            if start <= u < end:
                assert expected is None, "sessions overlap"
                expected, expected_day = name, day
    assert session_at(t) == expected
    assert trading_day(t) == expected_day


@PROPERTY
@given(days)
def test_lse_ends_where_nyse_begins(day: dt.date) -> None:
    if day.weekday() >= 5:
        with pytest.raises(ValueError):
            lse_session(day)
        return
    lse_start, lse_end = lse_session(day)
    nyse_start, nyse_end = nyse_session(day)
    assert lse_end == nyse_start
    assert all(t.tzinfo is UTC for t in (lse_start, lse_end, nyse_start, nyse_end))
    assert lse_start.astimezone(LONDON).time() == dt.time(9) and lse_start.astimezone(LONDON).date() == day
    assert lse_end.astimezone(LONDON).time() == dt.time(15, 30)
    assert nyse_end.astimezone(NEW_YORK).time() == dt.time(16) and nyse_end.astimezone(NEW_YORK).date() == day
    assert lse_end - lse_start == dt.timedelta(hours=6, minutes=30)
    gap = hours_apart(day)
    assert gap in (4, 5, 6)  # 6: before 2007, US summer time began in April
    assert nyse_end - nyse_start == dt.timedelta(hours=gap + 0.5)
    assert nyse_start.astimezone(NEW_YORK).time() == dt.time(int(15 - gap), 30)
    if day.year >= 2007:  # current rules: US 2nd Sun Mar - 1st Sun Nov, UK last Sun Mar - last Sun Oct
        def nth_sunday(month: int, n: int) -> dt.date:
            first = dt.date(day.year, month, 1)
            return first + dt.timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))

        def last_sunday(month: int) -> dt.date:
            last = dt.date(day.year, month + 1, 1) - dt.timedelta(days=1)
            return last - dt.timedelta(days=(last.weekday() - 6) % 7)

        four = nth_sunday(3, 2) <= day < last_sunday(3) or last_sunday(10) <= day < nth_sunday(11, 1)
        assert gap == (4 if four else 5)


# -- CME hours ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(moments, st.lists(st.integers(0, 14 * 24 * 60), min_size=1, max_size=40))
def test_cme_hours_from_ib_agree_with_globex(now: dt.datetime, minutes: list[int]) -> None:
    hours = CmeHours(trading_hours(now), "US/Central")
    assert hours.listed is not None
    start = hours.listed[0] - dt.timedelta(days=3)
    for m in minutes + [0, 1, 14 * 24 * 60]:
        for t in (start + dt.timedelta(minutes=m), start + dt.timedelta(minutes=m, seconds=-1)):
            assert hours.is_open(t) == is_cme_open(t)
            assert hours.next_open(t) == next_cme_open(t)
            bounds = hours.session_bounds(t)
            if is_cme_open(t):
                assert bounds is not None
                lo, hi = bounds
                assert lo <= t < hi and hours.is_open(lo) and not hours.is_open(hi)
                assert lo.astimezone(CHICAGO).time() == dt.time(17) and hi.astimezone(CHICAGO).time() == dt.time(16)
                assert hi - lo <= dt.timedelta(hours=24)
            else:
                assert bounds is None


def test_listed_sessions_win_inside_their_range() -> None:
    """A holiday and an early close in the list; the Globex default after it."""
    text = ("20250630:1700-20250701:1600;20250701:1700-20250702:1600;20250702:1700-20250703:1215;"
            "20250704:CLOSED;20250705:CLOSED;20250706:1700-20250707:1600")
    hours = CmeHours(text, "US/Central")
    ct = lambda *a: dt.datetime(*a, tzinfo=CHICAGO)  # noqa: E731
    assert hours.listed == (ct(2025, 6, 30, 17).astimezone(UTC), ct(2025, 7, 7, 17).astimezone(UTC))
    assert hours.is_open(ct(2025, 7, 3, 12)) and not hours.is_open(ct(2025, 7, 3, 12, 15))
    assert not hours.is_open(ct(2025, 7, 3, 18))  # Globex would be open: the holiday session is closed
    assert not hours.is_open(ct(2025, 7, 4, 10))
    assert hours.session_bounds(ct(2025, 7, 3, 9)) == (ct(2025, 7, 2, 17).astimezone(UTC), ct(2025, 7, 3, 12, 15).astimezone(UTC))
    assert hours.next_open(ct(2025, 7, 3, 13)) == ct(2025, 7, 6, 17)
    # after the listed range: the default (Monday 17:00 opens Tuesday's session)
    assert not hours.is_open(ct(2025, 7, 7, 16, 30))
    assert hours.next_open(ct(2025, 7, 7, 16, 30)) == ct(2025, 7, 7, 17)
    assert hours.session_bounds(ct(2025, 7, 8, 3)) == (ct(2025, 7, 7, 17).astimezone(UTC), ct(2025, 7, 8, 16).astimezone(UTC))
    # before it: the default too, clipped where it meets the list
    assert hours.is_open(ct(2025, 6, 30, 10))
    assert hours.session_bounds(ct(2025, 6, 30, 10)) == (ct(2025, 6, 29, 17).astimezone(UTC), ct(2025, 6, 30, 16).astimezone(UTC))
    assert hours.next_open(ct(2025, 6, 30, 16, 30)) == ct(2025, 6, 30, 17)


def test_default_globex_hours() -> None:
    hours = CmeHours.default()
    assert hours.listed is None and hours.sessions == ()
    ct = lambda *a: dt.datetime(*a, tzinfo=CHICAGO)  # noqa: E731
    assert not hours.is_open(ct(2025, 3, 9, 16, 59))  # Sunday before the open (DST began at 02:00)
    assert hours.is_open(ct(2025, 3, 9, 17))
    assert hours.session_bounds(ct(2025, 3, 9, 20)) == (ct(2025, 3, 9, 17), ct(2025, 3, 10, 16))
    assert not hours.is_open(ct(2025, 3, 10, 16)) and hours.is_open(ct(2025, 3, 10, 15, 59, 59))
    assert hours.next_open(ct(2025, 3, 10, 16, 20)) == ct(2025, 3, 10, 17)
    assert not hours.is_open(ct(2025, 3, 14, 16)) and not hours.is_open(ct(2025, 3, 15, 12))
    assert hours.next_open(ct(2025, 3, 14, 16)) == ct(2025, 3, 16, 17)
    assert hours.next_open(ct(2025, 3, 14, 17)) == ct(2025, 3, 16, 17)
    assert hours.next_open(ct(2025, 3, 12, 3)) == ct(2025, 3, 12, 3)
    assert all(t.tzinfo is UTC for t in hours.session_bounds(ct(2025, 3, 12, 3)) or ())


def test_other_zones_and_the_old_format() -> None:
    eastern = CmeHours("20250305:1800-20250306:1700", "US/Eastern")
    central = CmeHours("20250305:1700-20250306:1600", "US/Central")
    assert eastern.sessions == central.sessions and eastern.listed == central.listed
    old = CmeHours("20090507:0700-1830,1830-2330;20090508:CLOSED", "EST")
    ny = lambda *a: dt.datetime(*a, tzinfo=ZoneInfo("America/New_York"))  # noqa: E731
    assert old.is_open(ny(2009, 5, 7, 7)) and old.is_open(ny(2009, 5, 7, 18, 30)) and not old.is_open(ny(2009, 5, 7, 23, 30))
    assert old.session_bounds(ny(2009, 5, 7, 19)) == (ny(2009, 5, 7, 18, 30), ny(2009, 5, 7, 23, 30))
    overnight = CmeHours("20250305:1700-1600", "US/Central")  # end before start, no date: next day
    assert overnight.sessions == central.sessions
    midnight = CmeHours("20250305:0000-2400", "US/Central")
    assert midnight.sessions[0][1] == dt.datetime(2025, 3, 6, tzinfo=CHICAGO)
    assert ib_zone("US/Central") == CHICAGO and ib_zone(" Europe/London ") == LONDON


@pytest.mark.parametrize("text", ["garbage", "20250305:1700", "2025030:1700-20250306:1600",
                                  "20250305:1700-20250305:1600", "20250305:2500-20250306:1600",
                                  "20251305:1700-20250306:1600", "20250305:17:00-1800"])
def test_bad_trading_hours_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="tradingHours"):
        CmeHours(text, "US/Central")


def test_unknown_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timeZoneId"):
        CmeHours("", "Mars/Olympus")
    with pytest.raises(ConfigError, match="timeZoneId"):
        ib_zone("America")
