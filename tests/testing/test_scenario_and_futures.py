"""The fake TWS's pure parts: CME calendar, contract list, price paths, simulated clock."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from slob.testing.futures import (
    CHICAGO,
    FUTURES,
    active_contracts,
    is_cme_open,
    liquid_hours,
    next_cme_open,
    third_friday,
    trading_hours,
)
from slob.testing.scenario import RandomWalkScenario, ScriptedScenario, SimClock, from_ns, to_ns

UTC = dt.timezone.utc
moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 6, 30), timezones=st.just(UTC)
)


@given(st.integers(2000, 2099), st.sampled_from([3, 6, 9, 12]))
def test_third_friday_is_a_friday_between_the_15th_and_21st(year: int, month: int) -> None:
    day = third_friday(year, month)
    assert day.weekday() == 4 and 15 <= day.day <= 21 and day.month == month


@given(moments, st.sampled_from(sorted(FUTURES)))
def test_active_contracts_are_the_next_quarterlies_in_order(now: dt.datetime, root: str) -> None:
    listed = active_contracts(root, now)
    assert len(listed) == FUTURES[root].listed
    assert all(c.month in (3, 6, 9, 12) for c in listed)
    moments_ = [c.last_trade_moment for c in listed]
    assert moments_ == sorted(moments_) and moments_[0] > now
    for a, b in itertools.pairwise(listed):
        assert b.quarters_after(a) == 1
    # the quarter before the first has expired
    before = active_contracts(root, now, include_expired=1)[0]
    assert before.last_trade_moment <= now and listed[0].quarters_after(before) == 1
    assert len({c.con_id for c in listed}) == len(listed)
    assert all(re.fullmatch(rf"{root}[HMUZ]\d", c.local_symbol) for c in listed)


@given(moments)
def test_next_cme_open_is_open_and_nothing_earlier_is(t: dt.datetime) -> None:
    opened = next_cme_open(t)
    assert opened >= t and is_cme_open(opened)
    if opened > t:
        assert not is_cme_open(opened - dt.timedelta(seconds=1))
        assert opened.astimezone(CHICAGO).time() == dt.time(17, 0)


def test_cme_hours_daily_halt_and_weekend() -> None:
    def chi(*args: int) -> dt.datetime:
        return dt.datetime(*args, tzinfo=CHICAGO)

    assert is_cme_open(chi(2024, 12, 2, 15, 59))  # Monday afternoon
    assert not is_cme_open(chi(2024, 12, 2, 16, 30))  # daily halt
    assert is_cme_open(chi(2024, 12, 2, 17, 0))
    assert not is_cme_open(chi(2024, 12, 6, 16, 0))  # Friday close
    assert not is_cme_open(chi(2024, 12, 7, 12, 0))  # Saturday
    assert not is_cme_open(chi(2024, 12, 8, 16, 59))
    assert is_cme_open(chi(2024, 12, 8, 17, 0))  # Sunday open


def test_trading_hours_strings_match_ibs_format() -> None:
    monday = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)  # 09:00 Chicago
    week = trading_hours(monday).split(";")
    assert week[0] == "20241201:1700-20241202:1600" and week[-1] == "20241205:1700-20241206:1600"
    assert len(week) == 5 and "CLOSED" not in trading_hours(monday)
    friday = dt.datetime(2024, 12, 6, 18, 0, tzinfo=UTC)  # 12:00 Chicago
    assert trading_hours(friday).split(";")[:3] == [
        "20241205:1700-20241206:1600", "20241207:CLOSED", "20241208:1700-20241209:1600"]
    assert liquid_hours(friday).split(";")[:4] == [
        "20241206:0830-20241206:1600", "20241207:CLOSED", "20241208:CLOSED", "20241209:0830-20241209:1600"]
    evening = dt.datetime(2024, 12, 2, 23, 30, tzinfo=UTC)  # 17:30 Chicago: Tuesday's session
    assert trading_hours(evening).startswith("20241202:1700-20241203:1600;")


def test_expiry_moves_to_thursday_on_a_holiday_friday() -> None:
    from slob.testing.futures import contract_for

    assert contract_for("ES", "M", 2027).last_trade_date == dt.date(2027, 6, 17)  # Juneteenth observed
    assert contract_for("MES", "M", 2026).last_trade_date == dt.date(2026, 6, 18)  # Juneteenth
    assert contract_for("NQ", "H", 2008).last_trade_date == dt.date(2008, 3, 20)  # Good Friday
    assert contract_for("NQ", "Z", 2024).last_trade_date == dt.date(2024, 12, 20)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), moments)
def test_random_walk_is_reproducible_on_grid_and_only_in_trading_hours(seed: int, start: dt.datetime) -> None:
    scenario = RandomWalkScenario(seed=seed)
    first = list(itertools.islice(scenario.events(to_ns(start)), 300))
    again = list(itertools.islice(scenario.events(to_ns(start)), 300))
    assert first == again
    times = [t.time_ns for t in first]
    assert times == sorted(times) and times[0] >= to_ns(start)
    for trade in first:
        assert is_cme_open(from_ns(trade.time_ns))
        assert (trade.price / 0.25).is_integer() and trade.price > 0
        assert 1 <= trade.size <= scenario.max_size
        assert trade.bid < trade.ask and trade.bid <= trade.price <= trade.ask


def test_scripted_scenario_replays_in_time_order() -> None:
    start = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
    script = ScriptedScenario.from_prices(start, [(2.0, 100.25, 3), (1.0, 100.0, 1)])
    assert [(t.price, t.size) for t in script.events(to_ns(start))] == [(100.0, 1), (100.25, 3)]


def test_paused_clock_moves_only_when_told() -> None:
    start = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
    clock = SimClock(start, speed=0.0)
    assert clock.now() == start and clock.real_seconds_until(to_ns(start) + 1) is None
    assert clock.advance(90) == start + dt.timedelta(seconds=90)
    clock.set(start)  # never backwards
    assert clock.now() == start + dt.timedelta(seconds=90)
    calls: list[int] = []
    clock.subscribe(lambda: calls.append(1))
    clock.set_speed(math.inf)
    assert calls == [1] and clock.now() == start + dt.timedelta(seconds=90)


def test_running_clock_runs_at_its_speed() -> None:
    start = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
    clock = SimClock(start, speed=3600.0)
    wait = clock.real_seconds_until(to_ns(start + dt.timedelta(hours=1)))
    assert wait is not None and 0.0 < wait <= 1.0
    assert clock.now() >= start
