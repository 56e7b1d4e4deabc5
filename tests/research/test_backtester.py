"""The backtester on planted days: the engine's risk rules, rolls, determinism, and
(hypothesis) splitting the range into parts gives the same trades."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slob.strategy.setup_planting import plant_setup
from slob.strategy.setup_tracker import Direction
from slob.model import Candle
from slob.research.backtest import BacktestConfig, BacktestResult, run_backtest
from slob.research.settings import apply_settings

#: What a generated day holds: a planted setup (direction, outcome) or nothing to trade.
KINDS = (("short", "target"), ("short", "stop"), ("long", "target"), ("long", "stop"), ("short", "none"),
         ("long", "none"), ("quiet", ""))
FIRST = dt.date(2025, 3, 3)  # a Monday; NQH5 the front month until the roll on 2025-03-13


def weekday(n: int) -> dt.date:
    return FIRST + dt.timedelta(days=n // 5 * 7 + n % 5)


@functools.lru_cache(maxsize=None)
def planted(n: int, kind: int, level: int) -> tuple[Candle, ...]:
    """Day ``n``'s candles: ``KINDS[kind]`` around a price that ``level`` moves."""
    direction, outcome = KINDS[kind]
    base = 20000.0 + 40.0 * level
    if direction == "quiet":
        day = plant_setup(weekday(n), Direction.SHORT, lse_high=base + 100, lse_low=base - 50, outcome="none")
        return tuple(c for c in day.candles if c.start < day.liq1_at)  # the LSE session and the NYSE open: no sweep
    return plant_setup(weekday(n), Direction(direction), lse_high=base + 100, lse_low=base - 50, outcome=outcome,
                       contract="NQH5").candles


def market(days: list[tuple[int, int]]) -> list[Candle]:
    return [c for n, (kind, level) in enumerate(days) for c in planted(n, kind, level)]


def same(a: BacktestResult, b: BacktestResult) -> None:
    assert a.trades == b.trades
    assert a.skipped == b.skipped
    assert a.carry == b.carry


def test_each_planted_outcome_becomes_its_trade() -> None:
    result = run_backtest(market([(0, 0), (1, 0), (2, 0), (3, 0)]))
    assert [(t.direction, t.exit_by) for t in result.trades] == [
        ("short", "target"), ("short", "stop"), ("long", "target"), ("long", "stop")]
    for t in result.trades:
        won = t.exit_by == "target"
        assert (t.pnl > 0) is won and t.commission == 4.5 and not t.exact
        assert t.entry_time == t.signal_at  # the entry candle opens when the trigger candle closes


def test_the_same_candles_give_the_same_trades() -> None:
    candles = market([(0, 0), (4, 1), (3, 2), (1, 0)])
    same(run_backtest(candles), run_backtest(list(candles)))


def test_one_position_at_a_time_as_the_engine_allows() -> None:
    """Day 0's short never exits (a wide stop, and day 1 stays above its target): day 1's
    trigger is refused for max_position, and taken when two contracts may be open."""
    candles = market([(4, 0), (2, 2)])
    wide = apply_settings(BacktestConfig(), ["stop_buffer_points=300", "min_risk_reward=0"])
    one = run_backtest(candles, wide)
    assert [s.reason for s in one.skipped] == ["position 1 + 1 would exceed max_position 1"]
    assert [p.direction for p in one.carry] == ["short"] and not one.trades
    two = run_backtest(candles, apply_settings(wide, ["max_position=2"]))
    assert not two.skipped and [t.direction for t in two.trades] == ["long"]
    assert [p.direction for p in two.carry] == ["short"]


def test_no_new_entry_after_the_daily_loss_limit() -> None:
    """A short stopped out, then the same day a long on the same levels: with a loss limit
    below the first loss the long is not placed."""
    short = plant_setup(weekday(0), Direction.SHORT, lse_high=20100, lse_low=19950, outcome="stop").candles
    long = plant_setup(weekday(0), Direction.LONG, lse_high=20100, lse_low=19950, outcome="target")
    rest = long.candles[[c.start for c in long.candles].index(long.liq1_at):]
    shift = short[-1].end - rest[0].start
    both = list(short) + [dataclasses.replace(c, start=c.start + shift) for c in rest]
    limited = run_backtest(both, apply_settings(BacktestConfig(), ["max_daily_loss=1"]))
    free = run_backtest(both)
    assert len(free.trades) == 2
    assert len(limited.trades) == 1 and limited.skipped[0].reason.startswith("daily loss limit reached")


def test_a_setup_is_never_carried_across_a_roll_and_an_open_trade_leaves_at_its_contracts_last_close() -> None:
    day = list(plant_setup(weekday(0), Direction.SHORT, lse_high=20100, lse_low=19950, outcome="none",
                           contract="NQH5").candles)
    entered = run_backtest(day)
    assert entered.carry and entered.carry[0].entry_time is not None
    rolled = [dataclasses.replace(c, contract="NQM5", start=c.start + dt.timedelta(days=1)) for c in day]
    result = run_backtest(day + rolled)
    roll = [t for t in result.trades if t.exit_by == "roll"]
    assert len(roll) == 1 and roll[0].exit_price == day[-1].close and roll[0].exit_time == day[-1].end
    # the trigger candle's setup of the NQM5 day is a new one; none crosses the roll
    assert all(s.contract in ("NQH5", "NQM5") for s in result.setups.values())
    # a trigger in one contract whose entry candle is another's is not entered
    trigger = next(i for i, c in enumerate(day) if c.start == entered.carry[0].signal_at) - 1
    cut = day[:trigger + 1] + [dataclasses.replace(c, contract="NQM5") for c in day[trigger + 1:]]
    skipped = run_backtest(cut)
    assert not skipped.trades and skipped.setups and not skipped.carry


days_strategy = st.lists(st.tuples(st.integers(0, len(KINDS) - 1), st.integers(-2, 2)), min_size=2, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=days_strategy, data=st.data())
def test_running_the_days_in_parts_with_their_carry_gives_the_same_trades(
        days: list[tuple[int, int]], data: st.DataObject) -> None:
    whole = run_backtest(market(days))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(days) - 1), max_size=len(days) - 1)))
    bounds = [0, *cuts, len(days)]
    carry: tuple = ()
    trades, skipped = [], []
    for a, b in zip(bounds, bounds[1:]):
        part = run_backtest([c for n in range(a, b) for c in planted(n, *days[n])], carry=carry)
        trades += part.trades
        skipped += part.skipped
        carry = part.carry
    assert tuple(sorted(trades, key=lambda t: (t.exit_time, t.setup_id))) == whole.trades
    assert tuple(skipped) == whole.skipped and carry == whole.carry


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days=days_strategy, data=st.data())
def test_parts_run_alone_agree_where_no_bracket_is_open_across_the_cut(
        days: list[tuple[int, int]], data: st.DataObject) -> None:
    whole = run_backtest(market(days))
    cut = data.draw(st.integers(1, len(days) - 1))
    first = run_backtest([c for n in range(cut) for c in planted(n, *days[n])])
    second = run_backtest([c for n in range(cut, len(days)) for c in planted(n, *days[n])])
    if first.carry:  # a bracket open across the cut couples the parts: that is what carry is for
        return
    assert first.trades + second.trades == whole.trades
    assert first.skipped + second.skipped == whole.skipped and second.carry == whole.carry


def test_quiet_minutes_are_filled_as_the_engine_fills_them() -> None:
    from slob.research.data import fill_quiet_minutes

    day = list(planted(0, 0, 0))
    sparse = day[:100] + day[103:]  # three minutes without a bar, as IB's history leaves them out
    filled = fill_quiet_minutes(sparse)
    assert len(filled) == len(day) and [c.start for c in filled] == [c.start for c in day]
    flat = filled[100:103]
    assert all(c.filled and c.trades == 0 and c.open == c.high == c.low == c.close == day[99].close for c in flat)
    # outside CME hours (the daily halt, 16:00-17:00 Chicago) nothing is filled
    halt = dataclasses.replace(day[-1], start=dt.datetime(2025, 3, 3, 23, 30, tzinfo=dt.timezone.utc))
    assert len(fill_quiet_minutes([day[-1], halt])) == 2 + (halt.start - day[-1].end) // dt.timedelta(minutes=1) - 60
