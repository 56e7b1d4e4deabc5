"""The 5/1 SLOB state machine: every transition and invalidation in both directions
(hand-built candles), 4- and 5-hour London-New York days, planted setups, and no
look-ahead / replay properties over generated candle days."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from collections import Counter
from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib.errors import ConfigError, SlobError
from slob.strategy import setup_tracker as module
from slob.market.sessions import LSE, NEW_YORK, lse_session, nyse_session, session_at, trading_day
from slob.strategy.setup_planting import OUTCOMES, plant_setup
from slob.strategy.setup_tracker import (
    TRANSITIONS,
    CandleRejected,
    Direction,
    IllegalTransition,
    SetupChanged,
    SetupConfig,
    SetupEvent,
    SetupReady,
    SetupTracker,
    Signal,
    State,
    next_state,
)
from slob.model import Candle

UTC = dt.timezone.utc
MIN = dt.timedelta(minutes=1)
BASE = 20000.0
SHORT, LONG = Direction.SHORT, Direction.LONG
BOTH = pytest.mark.parametrize("direction", [SHORT, LONG], ids=["short", "long"])
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None)
NORMAL_DAY = dt.date(2025, 3, 5)  # London-New York 5 hours: NYSE 15:30-21:00 UTC
FOUR_HOUR_DAY = dt.date(2025, 3, 12)  # 4 hours: NYSE 15:30-20:00 UTC (11:30-16:00 New York)
SUMMER_DAY = dt.date(2025, 6, 11)  # 5 hours, both on summer time: NYSE 14:30-20:00 UTC

# -- compact candle specs ---------------------------------------------------------------
# "o h l c" in points from BASE, written for a short setup; mirror() makes the long one.

LSE_SPEC = ["-50 10 -100 0"]  # LSE high 20010, low 19900 (long: 20100 / 19990)
SETUP = [
    "0 5 -2 3",  # 0 NYSE open, under the LSE high
    "3 14 2 8",  # 1 LIQ #1: 14 > 10; ref price 20008
    "8 12 -10 -5",  # 2 consolidation 1
    "-5 0 -14 -2",  # 3 consolidation 2: range 26 = 0.13 %, one touch of 12
    "-2 12 -6 10",  # 4 consolidation 3: second touch -> formed
    "2 16 1 16",  # 5 LIQ #2: bullish, above 12, no wick -> stop 17, target -100.5
    "15 16.5 0 1",  # 6 trigger: close 1 < LIQ #2 open 2
    "1 2 -8 -6",  # 7 entry candle: entry 1
]
FLAT = "0 1 -1 0"


def mirror(spec: str) -> str:
    o, h, lo, c = (float(x) for x in spec.split())
    return f"{-o} {-lo} {-h} {-c}"


def bars(first: dt.datetime, specs: Sequence[str], direction: Direction = SHORT,
         contract: str = "NQH5", symbol: str = "NQ") -> list[Candle]:
    out: list[Candle] = []
    for spec in specs:
        o, h, lo, c = (BASE + float(x) for x in (spec if direction is SHORT else mirror(spec)).split())
        out.append(Candle(symbol, contract, 60, first + len(out) * MIN, o, h, lo, c, 10.0, 5))
    return out


def session_day(direction: Direction, nyse: Sequence[str], day: dt.date = NORMAL_DAY,
                lse: Sequence[str] = LSE_SPEC) -> list[Candle]:
    """LSE candles ending at the LSE close, then ``nyse`` from the NYSE open."""
    lse_end = lse_session(day)[1]
    return bars(lse_end - len(lse) * MIN, lse, direction) + bars(nyse_session(day)[0], nyse, direction)


def px(direction: Direction, offset: float) -> float:
    return BASE + direction.sign * offset


def feed(tracker: SetupTracker, candles: Sequence[Candle]) -> list[list[SetupEvent]]:
    return [tracker.on_candle(c) for c in candles]


def changes(per_candle: Sequence[Sequence[SetupEvent]]) -> list[tuple[int, str, Signal, State]]:
    """(candle index, setup id, signal, new state) of every state change."""
    return [(i, e.setup_id, e.signal, e.state) for i, evs in enumerate(per_candle)
            for e in evs if isinstance(e, SetupChanged)]


def sid(direction: Direction, hhmm: str, n: int = 1, day: dt.date = NORMAL_DAY) -> str:
    return f"NQ-{day:%Y%m%d}-{direction.value}-{hhmm}-{n}"


def last(per_candle: Sequence[Sequence[SetupEvent]], setup_id: str = "") -> SetupChanged:
    """The last state change (of ``setup_id`` if given)."""
    return [e for evs in per_candle for e in evs
            if isinstance(e, SetupChanged) and e.setup_id.startswith(setup_id)][-1]


# -- the happy path, both directions ------------------------------------------------------


@BOTH
def test_full_setup_goes_liq1_consolidation_liq2_triggered_ready(direction: Direction) -> None:
    candles = session_day(direction, SETUP)
    events = feed(SetupTracker(), candles)
    s = sid(direction, "1531")
    assert changes(events) == [
        (2, s, Signal.LIQ1_SWEEP, State.LIQ1),
        (5, s, Signal.CONSOLIDATION_FORMED, State.CONSOLIDATION),
        (6, s, Signal.LIQ2_SWEEP, State.LIQ2),
        (7, s, Signal.ENTRY_TRIGGER, State.TRIGGERED),
        (8, s, Signal.ENTRY_OPEN, State.READY),
    ]
    changed, ready = events[8]
    assert isinstance(changed, SetupChanged) and isinstance(ready, SetupReady)
    assert (ready.entry, ready.stop, ready.target) == (px(direction, 1), px(direction, 17), px(direction, -100.5))
    assert (changed.entry, changed.stop, changed.target) == (ready.entry, ready.stop, ready.target)
    assert ready.risk == 16 and ready.reward == 101.5 and ready.risk_reward == pytest.approx(101.5 / 16)
    assert ready.entry_at == candles[8].start and ready.at == candles[8].end == changed.at
    assert (ready.lse_high, ready.lse_low) == ((20010, 19900) if direction is SHORT else (20100, 19990))
    assert changed.liq1_at == candles[2].start and changed.liq2_at == candles[6].start
    assert changed.trigger_at == candles[7].start and changed.previous is State.TRIGGERED
    cons = changed.consolidation
    assert cons is not None and cons.candles == 3 and cons.touches == 2
    assert (cons.start, cons.end) == (candles[3].start, candles[5].end)
    assert sorted((cons.high, cons.low)) == sorted((px(direction, 12), px(direction, -14)))
    assert cons.range_pct == pytest.approx(26 / px(direction, 8) * 100)
    liq2 = [e for e in events[6] if isinstance(e, SetupChanged)][0]
    assert (liq2.stop, liq2.target, liq2.entry) == (px(direction, 17), px(direction, -100.5), None)


def test_the_state_is_a_snapshot_of_the_live_setups() -> None:
    tracker = SetupTracker()
    candles = session_day(SHORT, SETUP)
    feed(tracker, candles[:6])
    (live,) = tracker.live_setups
    assert live.state is State.CONSOLIDATION and tracker.lse_range == (20010.0, 19900.0)
    feed(tracker, candles[6:])
    assert tracker.live_setups == ()


# -- consolidation ----------------------------------------------------------------------


@BOTH
def test_a_push_without_liq2_unforms_the_consolidation_until_a_retest(direction: Direction) -> None:
    nyse = SETUP[:5] + ["10 20 8 12",  # bullish above 12, wick 8 of 12: no LIQ #2 -> extended
                        "12 19.5 5 8",  # touches 20 within 1 point -> formed again
                        "6 24 5 24"]  # LIQ #2 over the new high
    events = feed(SetupTracker(), session_day(direction, nyse))
    s = sid(direction, "1531")
    assert [(i, g) for i, _, g, _ in changes(events)] == [
        (2, Signal.LIQ1_SWEEP), (5, Signal.CONSOLIDATION_FORMED), (6, Signal.CONSOLIDATION_EXTENDED),
        (7, Signal.CONSOLIDATION_FORMED), (8, Signal.LIQ2_SWEEP)]
    assert last(events).setup_id == s and last(events).stop == px(direction, 25)
    extended = [e for e in events[6] if isinstance(e, SetupChanged)][0]
    assert extended.state is State.LIQ1 and extended.previous is State.CONSOLIDATION


@BOTH
def test_a_sweep_before_the_consolidation_is_formed_just_joins_it(direction: Direction) -> None:
    nyse = SETUP[:4] + ["2 16 1 16"]  # a no-wick sweep after 2 candles: only 3 candles, 1 touch
    events = feed(SetupTracker(), session_day(direction, nyse))
    assert [g for _, _, g, _ in changes(events)] == [Signal.LIQ1_SWEEP]


@BOTH
def test_a_too_wide_range_breaks_the_consolidation_and_a_new_sweep_starts_another(direction: Direction) -> None:
    nyse = SETUP[:3] + ["-5 0 -60 -50",  # range 72 points = 0.36 % > 0.3 %
                        "-50 15 -52 10"]  # above the LSE high again: setup number 2
    events = feed(SetupTracker(), session_day(direction, nyse))
    assert changes(events) == [
        (2, sid(direction, "1531"), Signal.LIQ1_SWEEP, State.LIQ1),
        (4, sid(direction, "1531"), Signal.CONSOLIDATION_BROKEN, State.INVALIDATED),
        (5, sid(direction, "1534", 2), Signal.LIQ1_SWEEP, State.LIQ1),
    ]
    assert "0.360% wider than 0.3%" in [e for e in events[4] if isinstance(e, SetupChanged)][0].reason


@BOTH
def test_the_breaking_candle_itself_can_be_the_next_liq1(direction: Direction) -> None:
    nyse = SETUP[:3] + ["8 80 7 75"]  # rips 68 points higher: breaks setup 1, sweeps for setup 2
    events = feed(SetupTracker(), session_day(direction, nyse))
    assert changes(events)[1:] == [
        (4, sid(direction, "1531"), Signal.CONSOLIDATION_BROKEN, State.INVALIDATED),
        (4, sid(direction, "1533", 2), Signal.LIQ1_SWEEP, State.LIQ1),
    ]


@BOTH
def test_no_liq2_within_the_maximum_consolidation_length(direction: Direction) -> None:
    nyse = SETUP[:2] + ["0 5 -20 0"] * 26  # formed after 3, never swept
    events = feed(SetupTracker(), session_day(direction, nyse))
    assert [(i, g) for i, _, g, _ in changes(events)] == [
        (2, Signal.LIQ1_SWEEP), (5, Signal.CONSOLIDATION_FORMED), (28, Signal.CONSOLIDATION_BROKEN)]
    assert "within 25 consolidation candles" in last(events).reason
    short = feed(SetupTracker(SetupConfig(consolidation_max_candles=4)), session_day(direction, nyse))
    assert [(i, g) for i, _, g, _ in changes(short)][-1] == (7, Signal.CONSOLIDATION_BROKEN)


def test_the_range_must_reach_the_minimum_percent() -> None:
    narrow = SETUP[:2] + ["8 12 -5 0", "0 12 -5 2", "2 12 -5 3"]  # range 17 points = 0.085 %
    assert [g for _, _, g, _ in changes(feed(SetupTracker(), session_day(SHORT, narrow)))] == [Signal.LIQ1_SWEEP]
    loose = SetupConfig(consolidation_min_range_pct=0.05)
    assert [g for _, _, g, _ in changes(feed(SetupTracker(loose), session_day(SHORT, narrow)))] == [
        Signal.LIQ1_SWEEP, Signal.CONSOLIDATION_FORMED]


def test_touch_tolerance_and_wick_limits_are_the_configs() -> None:
    near = SETUP[:4] + ["-2 10.5 -6 10"]  # second touch 1.5 points under 12
    assert len(changes(feed(SetupTracker(), session_day(SHORT, near)))) == 1
    assert len(changes(feed(SetupTracker(SetupConfig(touch_tolerance_points=1.5)), session_day(SHORT, near)))) == 2
    wicky = SETUP[:5] + ["2 16 1 13"]  # wick 3 of 15 = 0.2 -> passes; 0.19 does not
    assert changes(feed(SetupTracker(), session_day(SHORT, wicky)))[-1][2] is Signal.LIQ2_SWEEP
    strict = SetupConfig(no_wick_max_fraction=0.19)
    assert changes(feed(SetupTracker(strict), session_day(SHORT, wicky)))[-1][2] is Signal.CONSOLIDATION_EXTENDED
    points = SetupConfig(no_wick_max_fraction=0.0, no_wick_max_points=3.0)
    assert changes(feed(SetupTracker(points), session_day(SHORT, wicky)))[-1][2] is Signal.LIQ2_SWEEP
    bearish = SETUP[:5] + ["16 16 1 2"]  # sweeps, but closes down: not LIQ #2 for a short
    assert changes(feed(SetupTracker(), session_day(SHORT, bearish)))[-1][2] is Signal.CONSOLIDATION_EXTENDED


# -- after LIQ #2 -------------------------------------------------------------------------


@BOTH
def test_stop_reached_before_the_trigger_invalidates(direction: Direction) -> None:
    events = feed(SetupTracker(), session_day(direction, SETUP[:6] + ["15 17 10 12"]))
    assert changes(events)[-2:] == [
        (7, sid(direction, "1531"), Signal.STOP_BREACHED, State.INVALIDATED),
        (7, sid(direction, "1536", 2), Signal.LIQ1_SWEEP, State.LIQ1),  # 17 > LSE high: a new sweep
    ]


@BOTH
def test_a_trigger_candle_that_reaches_the_stop_is_a_breach(direction: Direction) -> None:
    events = feed(SetupTracker(), session_day(direction, SETUP[:6] + ["15 17 0 1"]))
    assert changes(events)[-2][2:] == (Signal.STOP_BREACHED, State.INVALIDATED)


@BOTH
def test_entry_candle_opening_beyond_the_stop_invalidates(direction: Direction) -> None:
    events = feed(SetupTracker(), session_day(direction, SETUP[:7] + ["17 18 10 12"]))
    assert changes(events)[-2][2:] == (Signal.STOP_BREACHED, State.INVALIDATED)
    assert last(events).previous is not State.TRIGGERED  # the last change is the new LIQ #1
    assert [e.previous for evs in events for e in evs if isinstance(e, SetupChanged)][-2] is State.TRIGGERED


@BOTH
@pytest.mark.parametrize("waited", [4, 5])
def test_the_trigger_must_come_within_the_wait(direction: Direction, waited: int) -> None:
    nyse = SETUP[:6] + ["10 12 5 8"] * (waited - 1) + ["8 9 0 1"]
    signal = changes(feed(SetupTracker(), session_day(direction, nyse)))[-1][2]
    assert signal is Signal.ENTRY_TRIGGER
    late = SETUP[:6] + ["10 12 5 8"] * waited + ["8 9 0 1"]
    events = feed(SetupTracker(), session_day(direction, late))
    first = last(events, sid(direction, "1531"))
    assert first.signal is (Signal.WAIT_EXCEEDED if waited == 5 else Signal.ENTRY_TRIGGER)
    if waited == 5:
        assert first.at == session_day(direction, late)[6 + 5].end and first.reason == \
            "no trigger within 5 candles of LIQ #2"


@BOTH
def test_risk_reward_is_checked_at_the_trigger_and_again_at_the_entry(direction: Direction) -> None:
    first = sid(direction, "1531")
    events = feed(SetupTracker(SetupConfig(min_risk_reward=10)), session_day(direction, SETUP))
    rejected = last(events, first)
    assert (rejected.signal, rejected.state, rejected.previous) == (Signal.RISK_REWARD, State.INVALIDATED, State.LIQ2)
    assert rejected.reason == "trigger rejected: reward/risk 6.34 below 10"
    gap_down = feed(SetupTracker(), session_day(direction, SETUP[:7] + ["-80 -79 -85 -84"]))  # risk 97, reward 20.5
    rejected = last(gap_down, first)
    assert (rejected.signal, rejected.previous) == (Signal.RISK_REWARD, State.TRIGGERED)
    assert rejected.reason == "entry rejected: reward/risk 0.21 below 1"
    assert not any(isinstance(e, SetupReady) for evs in gap_down for e in evs)
    beyond = feed(SetupTracker(), session_day(direction, SETUP[:7] + ["-101 -100 -110 -105"]))
    assert "at or beyond the target" in last(beyond, first).reason


@BOTH
def test_stop_rounds_away_from_the_entry_and_target_towards_it(direction: Direction) -> None:
    config = SetupConfig(stop_buffer_points=1.1, target_buffer_points=0.6)
    events = feed(SetupTracker(config), session_day(direction, SETUP))
    ready = events[8][1]
    assert isinstance(ready, SetupReady)
    assert (ready.stop, ready.target) == (px(direction, 17.25), px(direction, -100.5))


# -- invalidation by the calendar and the data ------------------------------------------


@BOTH
def test_session_end_on_a_four_hour_day_but_not_on_a_five_hour_day(direction: Direction) -> None:
    for day, closes in ((FOUR_HOUR_DAY, True), (NORMAL_DAY, False)):
        nyse_end = nyse_session(day)[1]
        lse = bars(lse_session(day)[1] - MIN, LSE_SPEC, direction)
        tail = bars(dt.datetime(day.year, day.month, day.day, 19, 55, tzinfo=UTC), SETUP[:5] + [FLAT], direction)
        events = feed(SetupTracker(), lse + tail)
        assert tail[-1].start == dt.datetime(day.year, day.month, day.day, 20, tzinfo=UTC)
        assert (nyse_end == tail[-1].start) is closes
        if closes:
            assert tail[-1].start.astimezone(NEW_YORK).time() == dt.time(16)
            assert changes(events)[-1] == (6, sid(direction, "1956", day=day), Signal.SESSION_END, State.INVALIDATED)
            assert "NYSE session of 2025-03-12 over at 20:00 UTC" == last(events).reason
        else:
            assert changes(events)[-1][2] is Signal.CONSOLIDATION_FORMED


@BOTH
def test_new_day_invalidates_and_restarts_the_lse_range(direction: Direction) -> None:
    friday, monday = dt.date(2025, 3, 7), dt.date(2025, 3, 10)
    tracker = SetupTracker()
    events = feed(tracker, session_day(direction, SETUP[:5], day=friday)
                  + bars(lse_session(monday)[0], ["0 3 -3 1"], direction))
    assert changes(events)[-1] == (6, sid(direction, "1531", day=friday), Signal.NEW_DAY, State.INVALIDATED)
    assert last(events).reason == "new trading day 2025-03-10"
    assert tracker.lse_range == (20003.0, 19997.0)


@BOTH
def test_contract_change_invalidates_and_stops_new_setups_that_day(direction: Direction) -> None:
    tracker = SetupTracker()
    candles = session_day(direction, SETUP[:5])
    rolled = bars(candles[-1].end, [FLAT, "0 30 -1 25"], direction, contract="NQM5")
    events = feed(tracker, candles + rolled)
    assert changes(events)[-1] == (6, sid(direction, "1531"), Signal.CONTRACT_CHANGED, State.INVALIDATED)
    assert events[7] == [] and tracker.lse_range is None


@BOTH
def test_a_missing_minute_invalidates_unless_allowed(direction: Direction) -> None:
    candles = session_day(direction, SETUP[:5])
    later = bars(candles[-1].end + MIN, [FLAT], direction)
    events = feed(SetupTracker(), candles + later)
    assert changes(events)[-1][2:] == (Signal.DATA_GAP, State.INVALIDATED)
    assert last(events).reason.startswith("1 candle(s) missing")
    tolerant = feed(SetupTracker(SetupConfig(max_missing_candles=1)), candles + later)
    assert changes(tolerant)[-1][2] is Signal.CONSOLIDATION_FORMED


LIVE_AFTER = {2: State.LIQ1, 5: State.CONSOLIDATION, 6: State.LIQ2, 7: State.TRIGGERED}


@BOTH
@pytest.mark.parametrize("prefix", list(LIVE_AFTER), ids=[s.value for s in LIVE_AFTER.values()])
@pytest.mark.parametrize("signal", [Signal.SESSION_END, Signal.NEW_DAY, Signal.CONTRACT_CHANGED, Signal.DATA_GAP],
                         ids=lambda g: g.value)
def test_calendar_and_data_invalidate_every_live_state(direction: Direction, prefix: int, signal: Signal) -> None:
    candles = session_day(direction, SETUP[:prefix])
    next_start, contract = {
        Signal.SESSION_END: (nyse_session(NORMAL_DAY)[1], "NQH5"),
        Signal.NEW_DAY: (lse_session(NORMAL_DAY + dt.timedelta(days=1))[0], "NQH5"),
        Signal.CONTRACT_CHANGED: (candles[-1].end, "NQM5"),
        Signal.DATA_GAP: (candles[-1].end + MIN, "NQH5"),
    }[signal]
    tracker = SetupTracker()
    feed(tracker, candles)
    assert [e.state for e in tracker.live_setups] == [LIVE_AFTER[prefix]]
    (changed,) = tracker.on_candle(bars(next_start, [FLAT], direction, contract=contract)[0])
    assert isinstance(changed, SetupChanged)
    assert (changed.setup_id, changed.previous, changed.signal, changed.state) == (
        sid(direction, "1531"), LIVE_AFTER[prefix], signal, State.INVALIDATED)
    assert changed.at == next_start + MIN and tracker.live_setups == ()


# -- births ------------------------------------------------------------------------------


def test_a_short_and_a_long_can_be_alive_together() -> None:
    candles = session_day(SHORT, ["0 15 -15 0", FLAT], lse=["0 10 -10 0"])
    tracker = SetupTracker()
    events = feed(tracker, candles)
    assert changes(events) == [(1, sid(SHORT, "1530"), Signal.LIQ1_SWEEP, State.LIQ1),
                               (1, sid(LONG, "1530"), Signal.LIQ1_SWEEP, State.LIQ1)]
    assert [e.direction for e in tracker.live_setups] == [SHORT, LONG]


def test_liq1_needs_the_nyse_session_and_a_strict_sweep() -> None:
    lse = ["-50 10 -100 0", "0 30 -5 5"]  # an LSE candle above the high only raises it
    tracker = SetupTracker()
    events = feed(tracker, session_day(SHORT, ["0 30 -2 3", "3 30.25 2 8"], lse=lse))
    assert tracker.lse_range == (20030.0, 19900.0)
    assert changes(events) == [(3, sid(SHORT, "1531"), Signal.LIQ1_SWEEP, State.LIQ1)]
    blind = SetupTracker()  # started in the NYSE session: no LSE levels, no setups
    assert feed(blind, bars(nyse_session(NORMAL_DAY)[0], SETUP)) == [[]] * len(SETUP)
    assert blind.lse_range is None


def test_replay_gives_the_same_ids_and_events() -> None:
    candles = session_day(SHORT, SETUP[:3] + ["8 80 7 75", "75 78 60 70"])
    assert feed(SetupTracker(), candles) == feed(SetupTracker(), candles)


# -- the table ---------------------------------------------------------------------------


def test_illegal_transitions_raise() -> None:
    with pytest.raises(IllegalTransition, match="from state 'ready' on 'entry_open'.*terminal") as info:
        next_state(State.READY, Signal.ENTRY_OPEN)
    assert isinstance(info.value, SlobError)
    with pytest.raises(IllegalTransition, match="'liq1' on 'liq2_sweep'; allowed from 'liq1': consolidation_broken"):
        next_state(State.LIQ1, Signal.LIQ2_SWEEP)
    assert next_state(State.LIQ2, Signal.ENTRY_TRIGGER) is State.TRIGGERED


def test_the_table_shape() -> None:
    terminal = {State.READY, State.INVALIDATED}
    assert not [k for k in TRANSITIONS if k[0] in terminal]
    for s in (State.LIQ1, State.CONSOLIDATION, State.LIQ2, State.TRIGGERED):
        assert s.live
        for g in (Signal.SESSION_END, Signal.NEW_DAY, Signal.CONTRACT_CHANGED, Signal.DATA_GAP):
            assert TRANSITIONS[s, g] is State.INVALIDATED
    reached, todo = {State.IDLE}, [State.IDLE]
    while todo:
        here = todo.pop()
        for (s, _), nxt in TRANSITIONS.items():
            if s is here and nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    assert reached == set(State)
    assert {g for _, g in TRANSITIONS} == set(Signal)


def test_the_tracker_changes_state_only_through_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {k: v for k, v in TRANSITIONS.items() if k != (State.LIQ2, Signal.ENTRY_TRIGGER)}
    monkeypatch.setattr(module, "TRANSITIONS", table)
    tracker = SetupTracker()
    candles = session_day(LONG, SETUP)
    feed(tracker, candles[:7])
    with pytest.raises(IllegalTransition, match=r"setup NQ-20250305-long-1531-1: .*'liq2' on 'entry_trigger'"):
        tracker.on_candle(candles[7])


# -- input checks and config --------------------------------------------------------------


def test_unusable_candles_are_refused() -> None:
    tracker = SetupTracker(symbol="NQ")
    first = bars(lse_session(NORMAL_DAY)[0], [FLAT])[0]
    with pytest.raises(CandleRejected, match="1-minute candles only"):
        tracker.on_candle(dataclasses.replace(first, interval_seconds=300))
    with pytest.raises(CandleRejected, match="naive"):
        tracker.on_candle(dataclasses.replace(first, start=first.start.replace(tzinfo=None)))
    with pytest.raises(CandleRejected, match="one SetupTracker per symbol"):
        tracker.on_candle(dataclasses.replace(first, symbol="ES"))
    tracker.on_candle(first)
    with pytest.raises(CandleRejected, match="in time order"):
        tracker.on_candle(first)
    assert isinstance(CandleRejected("x"), SlobError)


@pytest.mark.parametrize("bad", [
    {"consolidation_min_candles": 0}, {"consolidation_max_candles": 2}, {"consolidation_min_touches": 26},
    {"consolidation_min_range_pct": 0.4}, {"no_wick_max_fraction": 1.5}, {"touch_tolerance_points": -1},
    {"stop_buffer_points": math.nan}, {"tick_size": 0}, {"entry_wait_max_candles": 0},
    {"max_missing_candles": -1}, {"target_buffer_points": math.inf}, {"min_risk_reward": -0.5},
])
def test_bad_config_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SetupConfig(**bad)  # type: ignore[arg-type]


def test_config_defaults() -> None:
    c = SetupConfig()
    assert (c.consolidation_min_candles, c.consolidation_max_candles, c.consolidation_min_range_pct,
            c.consolidation_max_range_pct, c.consolidation_min_touches, c.touch_tolerance_points,
            c.no_wick_max_fraction, c.no_wick_max_points, c.entry_wait_max_candles, c.stop_buffer_points,
            c.target_buffer_points, c.tick_size, c.min_risk_reward, c.max_missing_candles) == (
        3, 25, 0.1, 0.3, 2, 1.0, 0.2, 0.0, 5, 1.0, 0.5, 0.25, 1.0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.tick_size = 1.0  # type: ignore[misc]


# -- planted setups ------------------------------------------------------------------------

PLANTED = {SHORT: (20089.5, 20104.0, 19949.5), LONG: (19960.5, 19946.0, 20100.5)}


@BOTH
@pytest.mark.parametrize("day", [NORMAL_DAY, FOUR_HOUR_DAY, SUMMER_DAY], ids=["5h", "4h", "summer"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_planted_setup_is_exactly_one_ready(direction: Direction, day: dt.date, outcome: str) -> None:
    planted = plant_setup(day, direction, lse_high=20100, lse_low=19950, outcome=outcome)
    events = [e for evs in feed(SetupTracker(), planted.candles) for e in evs]
    ready = [e for e in events if isinstance(e, SetupReady)]
    assert [(r.setup_id, r.entry, r.stop, r.target, r.at) for r in ready] == [
        (planted.setup_id, *PLANTED[direction], planted.ready_at)]
    assert (planted.entry, planted.stop, planted.target) == PLANTED[direction]
    nyse_open = nyse_session(day)[0]
    assert planted.liq1_at == nyse_open + 2 * MIN and planted.entry_at == planted.trigger_at + MIN
    assert planted.setup_id == f"NQ-{day:%Y%m%d}-{direction.value}-{planted.liq1_at:%H%M}-1"
    assert nyse_open.astimezone(NEW_YORK).hour == (11 if day == FOUR_HOUR_DAY else 10)
    last_candle = planted.candles[-1]
    if outcome == "target":
        assert (last_candle.low <= planted.target) if direction is SHORT else (last_candle.high >= planted.target)
    elif outcome == "stop":
        assert (last_candle.high > planted.stop) if direction is SHORT else (last_candle.low < planted.stop)


weekdays = st.dates(dt.date(2015, 1, 1), dt.date(2035, 12, 31)).filter(lambda d: d.weekday() < 5)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(day=weekdays, direction=st.sampled_from(Direction), low=st.integers(8000 * 4, 24000 * 4),
       lse_pct=st.floats(0.3, 1.2), lse_candles=st.integers(1, 390), liq1_minute=st.integers(0, 60),
       cons=st.integers(3, 25), cons_pct=st.floats(0.12, 0.28), liq1_sweep=st.integers(1, 40),
       liq2_sweep=st.integers(1, 40), trigger_after=st.integers(1, 5), step=st.integers(16, 80),
       outcome=st.sampled_from(OUTCOMES))
def test_planted_setups_hold_for_any_prices(day: dt.date, direction: Direction, low: int, lse_pct: float,
                                            lse_candles: int, liq1_minute: int, cons: int, cons_pct: float,
                                            liq1_sweep: int, liq2_sweep: int, trigger_after: int, step: int,
                                            outcome: str) -> None:
    lse_low = low / 4
    lse_high = SetupConfig().round_tick(lse_low * (1 + lse_pct / 100))
    planted = plant_setup(day, direction, lse_high=lse_high, lse_low=lse_low, lse_candles=lse_candles,
                          liq1_minute=liq1_minute, consolidation_candles=cons, consolidation_range_pct=cons_pct,
                          liq1_sweep=liq1_sweep / 4, liq2_sweep=liq2_sweep / 4, trigger_after=trigger_after,
                          step=step / 4, outcome=outcome)
    ready = [e for evs in feed(SetupTracker(), planted.candles) for e in evs if isinstance(e, SetupReady)]
    assert [(r.setup_id, r.entry, r.stop, r.target) for r in ready] == [
        (planted.setup_id, planted.entry, planted.stop, planted.target)]
    by_start = {c.start: c for c in planted.candles}
    lse = [c for c in planted.candles if session_at(c.start) == LSE]
    assert (max(c.high for c in lse), min(c.low for c in lse)) == (lse_high, lse_low)
    liq2, entry = by_start[planted.liq2_at], by_start[planted.entry_at]
    assert planted.entry == entry.open
    if direction is SHORT:
        assert planted.stop == math.ceil((liq2.high + 1.0) * 4) / 4 and planted.target == lse_low - 0.5
    else:
        assert planted.stop == math.floor((liq2.low - 1.0) * 4) / 4 and planted.target == lse_high + 0.5
    assert all(p * 4 == int(p * 4) for c in planted.candles for p in (c.open, c.high, c.low, c.close))


def test_impossible_plants_are_refused() -> None:
    with pytest.raises(ValueError, match="do not plant exactly one READY"):
        plant_setup(NORMAL_DAY, SHORT, lse_high=20020, lse_low=20000)  # reward < risk
    with pytest.raises(ValueError, match="trigger_after"):
        plant_setup(NORMAL_DAY, SHORT, lse_high=20100, lse_low=19950, trigger_after=6)
    with pytest.raises(ValueError, match="NYSE close"):
        plant_setup(FOUR_HOUR_DAY, SHORT, lse_high=24000, lse_low=19950, step=1)


# -- generated days: no look-ahead, replay ----------------------------------------------------


def random_day(seed: int, day: dt.date, plant: Direction | None = None, holes: bool = False) -> list[Candle]:
    """A realistic-looking NQ day of 1-minute candles: part of the LSE session (so the
    LSE range is sometimes narrow), the whole NYSE session and half an hour after it,
    a random walk whose volatility switches between quiet (consolidations) and busy
    regimes, with some no-wick candles. ``plant``: the day starts with a planted setup
    and the walk continues from it. ``holes``: a few minutes go missing."""
    rng = random.Random(seed)
    rt = SetupConfig().round_tick
    lse_end, (nyse_open, nyse_end) = lse_session(day)[1], nyse_session(day)
    out: list[Candle] = []
    if plant is not None:
        low = rt(rng.uniform(12000, 22000))
        out = list(plant_setup(day, plant, lse_high=rt(low * (1 + rng.uniform(0.4, 1.0) / 100)), lse_low=low,
                               lse_candles=rng.randint(30, 200), liq1_minute=rng.randint(0, 90),
                               consolidation_candles=rng.randint(3, 12), trigger_after=rng.randint(1, 5),
                               step=rt(rng.uniform(4, 12)), outcome=rng.choice(OUTCOMES)).candles)
        t, price = out[-1].end, out[-1].close
    else:
        t, price = lse_end - rng.randint(20, 200) * MIN, rt(rng.uniform(12000, 22000))
    sigma = price * 0.00015
    while t < nyse_end + 30 * MIN:
        if rng.random() < 0.04:
            sigma = price * rng.choice([0.00003, 0.00008, 0.00015, 0.0003, 0.0006])
        o = price
        c = rt(o + rng.gauss(0, sigma))
        up, down = abs(rng.gauss(0, sigma * 0.6)), abs(rng.gauss(0, sigma * 0.6))
        if rng.random() < 0.2:
            up, down = (0.0, down) if c > o else (up, 0.0)  # a no-wick candle
        if not (holes and rng.random() < 0.003):
            out.append(Candle("NQ", "NQM5", 60, t, o, rt(max(o, c) + up), rt(min(o, c) - down), c,
                              float(rng.randint(1, 400)), rng.randint(1, 200)))
        t, price = t + MIN, c
    return out


days = st.builds(random_day, seed=st.integers(0, 2**32 - 1), day=weekdays,
                 plant=st.sampled_from([None, None, SHORT, LONG]), holes=st.booleans())


def check_invariants(per_candle: Sequence[Sequence[SetupEvent]], candles: Sequence[Candle]) -> None:
    state: dict[str, State] = {}
    live: dict[Direction, str] = {}
    tick = SetupConfig().tick_size
    for evs, candle in zip(per_candle, candles):
        for i, e in enumerate(evs):
            assert e.at == candle.end  # decided at this candle's close, never later or earlier
            if isinstance(e, SetupReady):
                prev = evs[i - 1]
                assert isinstance(prev, SetupChanged) and prev.state is State.READY and prev.setup_id == e.setup_id
                assert (e.entry, e.stop, e.target) == (prev.entry, prev.stop, prev.target)
                assert all(p / tick == int(p / tick) for p in (e.entry, e.stop, e.target))
                assert e.direction.sign * (e.stop - e.entry) > 0 < e.direction.sign * (e.entry - e.target)
                assert e.reward >= e.risk
                continue
            assert e.previous is state.get(e.setup_id, State.IDLE)
            assert TRANSITIONS[e.previous, e.signal] is e.state
            state[e.setup_id] = e.state
            if e.previous is State.IDLE:
                assert e.direction not in live
                live[e.direction] = e.setup_id
            if not e.state.live:
                assert live.pop(e.direction) == e.setup_id


@PROPERTY
@given(day=days, cut=st.floats(0, 1), pick=st.integers(0, 10**6), other=st.integers(0, 2**32 - 1))
def test_no_look_ahead_and_replay(day: list[Candle], cut: float, pick: int, other: int) -> None:
    full = feed(SetupTracker(), day)
    assert feed(SetupTracker(), day) == full  # replay: a fresh tracker says exactly the same
    check_invariants(full, day)
    moments = [i for i, evs in enumerate(full) if evs]
    ks = {int(cut * len(day))}
    if moments:
        k = moments[pick % len(moments)]
        ks |= {k, k + 1}  # just before and just after an event's candle
    future = random_day(other, trading_or_first(day))
    for k in sorted(ks):
        assert feed(SetupTracker(), day[:k]) == full[:k]  # a prefix gives a prefix
        alt = [c for c in future if c.start >= (day[k - 1].end if k else day[0].start)]
        assert feed(SetupTracker(), day[:k] + alt)[:k] == full[:k]  # whatever comes next


def trading_or_first(candles: Sequence[Candle]) -> dt.date:
    for c in candles:
        d = trading_day(c.start)
        if d is not None:
            return d
    raise AssertionError("a generated day without a session candle")


def test_generated_days_exercise_the_machine() -> None:
    seen: Counter[Signal] = Counter()
    ready = 0
    for seed in range(40):
        day = dt.date(2025, 3, 3) + dt.timedelta(days=seed % 5 + 7 * (seed // 5))
        candles = random_day(seed, day, plant=[None, SHORT, LONG][seed % 3], holes=seed % 4 == 0)
        per_candle = feed(SetupTracker(), candles)
        check_invariants(per_candle, candles)
        seen.update(e.signal for evs in per_candle for e in evs if isinstance(e, SetupChanged))
        ready += sum(isinstance(e, SetupReady) for evs in per_candle for e in evs)
    assert ready >= 10
    rare = {Signal.NEW_DAY, Signal.CONTRACT_CHANGED, Signal.RISK_REWARD}
    assert set(Signal) - rare <= set(seen), seen


def test_sessions_agree_with_slob_live_sessions() -> None:
    tracker = SetupTracker()
    for c in random_day(7, FOUR_HOUR_DAY) + random_day(8, NORMAL_DAY):
        assert tracker._where(c.start) == (trading_day(c.start), session_at(c.start))
