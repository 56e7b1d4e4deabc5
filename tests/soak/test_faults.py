"""The fault schedule: seeded, deterministic, spaced, and only kinds that can be applied."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.soak.calendar import ib_calendar
from slob.soak.faults import ARMED_REQUESTS, FAULT_KINDS, PROXY_KINDS, FaultConfig, schedule_faults

UTC = dt.timezone.utc
MONDAY = dt.datetime(2025, 3, 3, tzinfo=UTC)
MONTH = MONDAY + dt.timedelta(days=30)


def _speed(t: dt.datetime) -> float:
    return 6000.0


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    a = schedule_faults(MONDAY, MONTH, 11, speed_at=_speed)
    assert a == schedule_faults(MONDAY, MONTH, 11, speed_at=_speed)
    assert a != schedule_faults(MONDAY, MONTH, 12, speed_at=_speed)
    assert [f.id for f in a] == list(range(1, len(a) + 1))
    assert [f.at for f in a] == sorted(f.at for f in a)


def test_a_month_draws_every_kind_without_the_proxy_kinds() -> None:
    faults = schedule_faults(MONDAY, MONTH, 3, speed_at=_speed)
    assert 120 < len(faults) <= 180  # as many of 6 a day as fit 3 real seconds apart
    assert {f.kind for f in faults} == set(FAULT_KINDS) - PROXY_KINDS
    with_proxy = schedule_faults(MONDAY, MONTH, 3, config=FaultConfig(proxy=True), speed_at=_speed)
    assert {f.kind for f in with_proxy} == set(FAULT_KINDS)
    no_kill = schedule_faults(MONDAY, MONTH, 3, config=FaultConfig(kill=False), speed_at=_speed)
    assert "kill" not in {f.kind for f in no_kill}
    assert all(f.describe() for f in with_proxy)


def test_armed_faults_name_their_request_and_trigger() -> None:
    for f in schedule_faults(MONDAY, MONTH, 8, speed_at=_speed):
        if f.kind in ("resubscribe_drop", "pacing", "unanswered"):
            assert f.request in ARMED_REQUESTS and f.trigger in ("drop", "1101") and f.armed
        elif f.kind == "handshake_drop":
            assert f.trigger == "drop"
        elif f.kind == "bracket_drop":
            assert f.request == "PLACE_ORDER" and f.skip in (0, 1) and not f.trigger
        elif f.kind in ("stall", "kill", "lost"):
            assert f.seconds > 0 and not f.armed


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10**6), days=st.integers(min_value=1, max_value=12),
       per_day=st.floats(min_value=0.0, max_value=12.0), speed=st.sampled_from([600.0, 6000.0, 30000.0]),
       spacing=st.floats(min_value=0.5, max_value=8.0))
def test_faults_keep_their_distance(seed: int, days: int, per_day: float, speed: float, spacing: float) -> None:
    end = MONDAY + dt.timedelta(days=days)
    calendar = ib_calendar(MONDAY, end, seed)
    config = FaultConfig(per_day=per_day, spacing_seconds=spacing)
    faults = schedule_faults(MONDAY, end, seed, config=config, calendar=calendar, speed_at=lambda _: speed)
    room = dt.timedelta(seconds=spacing * speed)
    assert len(faults) <= round(per_day * days)
    busy = [e.at for e in calendar] + [e.until for e in calendar if e.until is not None]
    for f in faults:
        assert MONDAY + room <= f.at <= end - room
        assert all(abs(f.at - b) >= room for b in busy)
    for a, b in zip(faults, faults[1:]):
        assert b.at - a.at >= room


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultConfig(kinds=("meteor",))
    with pytest.raises(ValueError):
        FaultConfig(stall_seconds=(3.0, 1.0))
    only = schedule_faults(MONDAY, MONTH, 1, config=FaultConfig(kinds=("kill",)), speed_at=_speed)
    assert {f.kind for f in only} == {"kill"}
    assert schedule_faults(MONDAY, MONTH, 1, config=FaultConfig(per_day=0), speed_at=_speed) == []
