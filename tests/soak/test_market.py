"""The soak's market: seeded, planted days exact, quiet while CME is closed (pure)."""

from __future__ import annotations

import collections
import datetime as dt
import itertools

import pytest

from slob.strategy.setup_tracker import SetupChanged, SetupTracker, State
from slob.soak.market import SoakMarket, plant_days
from slob.testing.futures import is_cme_open
from slob.testing.scenario import from_ns, to_ns

UTC = dt.timezone.utc
MONDAY = dt.datetime(2025, 3, 3, tzinfo=UTC)


def _trades(market: SoakMarket, start: dt.datetime, end: dt.datetime) -> list:  # type: ignore[type-arg]
    end_ns = to_ns(end)
    return list(itertools.takewhile(lambda t: t.time_ns < end_ns, market.events(to_ns(start))))


def test_plant_days_is_seeded_and_plants_the_first_weekday() -> None:
    planted = plant_days(3, MONDAY, MONDAY + dt.timedelta(days=14))
    assert planted == plant_days(3, MONDAY, MONDAY + dt.timedelta(days=14))
    assert planted[0].candles[0].start.date() == MONDAY.date()
    assert all(p.candles[0].start.weekday() < 5 for p in planted)
    assert len({p.setup_id for p in planted}) == len(planted)
    assert plant_days(3, MONDAY, MONDAY + dt.timedelta(days=14), probability=0.0)[0:1] == planted[0:1]
    with pytest.raises(ValueError):
        plant_days(3, MONDAY, MONDAY, probability=2.0)


def test_the_market_is_deterministic_time_ordered_and_on_the_grid() -> None:
    planted = plant_days(4, MONDAY, MONDAY + dt.timedelta(days=2))
    market = SoakMarket(4, planted)
    a = _trades(market, MONDAY, MONDAY + dt.timedelta(days=2))
    b = _trades(SoakMarket(4, planted), MONDAY, MONDAY + dt.timedelta(days=2))
    assert a == b
    assert [t.time_ns for t in a] == sorted(t.time_ns for t in a)
    assert all((t.price / 0.25).is_integer() and t.size >= 1 for t in a)
    assert all(is_cme_open(from_ns(t.time_ns)) for t in a)
    # about trades_per_minute while open, bursts included
    open_minutes = sum(1 for m in range(2 * 24 * 60) if is_cme_open(MONDAY + dt.timedelta(minutes=m)))
    assert 10 * open_minutes < len(a) < 40 * open_minutes


def test_bursts_repeat_price_and_size_within_one_second() -> None:
    trades = _trades(SoakMarket(9), MONDAY, MONDAY + dt.timedelta(hours=12))
    same = collections.Counter((t.time_ns // 1_000_000_000, t.price, t.size) for t in trades)
    assert max(same.values()) >= 2  # identical trades in one second: real, not duplicates


def test_planted_days_trade_their_candles_and_the_tracker_triggers_them() -> None:
    planted = plant_days(5, MONDAY, MONDAY + dt.timedelta(days=1))
    (day,) = planted
    trades = _trades(SoakMarket(5, planted), day.candles[0].start - dt.timedelta(hours=1), day.candles[-1].end)
    for candle in day.candles[:50] + day.candles[-50:]:
        inside = [t.price for t in trades if candle.start <= from_ns(t.time_ns) < candle.end]
        assert (inside[0], max(inside), min(inside), inside[-1]) == (candle.open, candle.high, candle.low, candle.close)
    tracker = SetupTracker()
    triggered = [e.setup_id for c in day.candles for e in tracker.on_candle(c)
                 if isinstance(e, SetupChanged) and e.state is State.TRIGGERED]
    assert triggered == [day.setup_id]


def test_overlapping_planted_days_are_refused() -> None:
    (day,) = plant_days(5, MONDAY, MONDAY + dt.timedelta(days=1))
    with pytest.raises(ValueError, match="overlap"):
        SoakMarket(5, (day, day))
