"""Realized P&L per CME trading day: the 17:00 Chicago turn, each fill booked once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from slob.execution.daily_pnl import DailyPnl, trading_day

CHICAGO = ZoneInfo("America/Chicago")


def test_the_trading_day_turns_at_17_chicago() -> None:
    assert trading_day(dt.datetime(2025, 3, 5, 16, 59, tzinfo=CHICAGO)) == dt.date(2025, 3, 5)
    assert trading_day(dt.datetime(2025, 3, 5, 17, 0, tzinfo=CHICAGO)) == dt.date(2025, 3, 6)


def test_a_loss_counts_on_its_own_day_only_and_once() -> None:
    pnl = DailyPnl()
    monday = dt.datetime(2025, 3, 3, 15, 0, tzinfo=dt.timezone.utc)
    assert pnl.book("e1", monday, -600.0) and not pnl.book("e1", monday, -600.0)
    pnl.book("e2", monday + dt.timedelta(hours=1), -500.0)
    assert pnl.day(monday) == -1100.0
    assert pnl.day(monday + dt.timedelta(days=1)) == 0.0  # the limit does not carry over


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 72 * 60), st.integers(-500, 500)), max_size=30))
def test_days_add_up_to_the_distinct_fills(fills: list[tuple[int, int, int]]) -> None:
    pnl = DailyPnl()
    base = dt.datetime(2025, 3, 3, tzinfo=dt.timezone.utc)
    first: dict[int, tuple[dt.datetime, int]] = {}
    for n, minute, amount in fills:
        when = base + dt.timedelta(minutes=minute)
        pnl.book(f"e{n}", when, float(amount))
        first.setdefault(n, (when, amount))
    days = {trading_day(w) for w, _ in first.values()}
    total = sum(pnl.day(dt.datetime.combine(d, dt.time(12), tzinfo=CHICAGO)) for d in days)
    assert total == sum(a for _, a in first.values())
