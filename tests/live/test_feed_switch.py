"""FeedSwitch: the roll's cut between two contracts, as a property over interleavings.

For any old and new trade streams (each in time order, identical trades in one second
allowed), merged in any order, with any roll moment: the delivered ticks are exactly the
old contract's trades before the cut C and the new contract's trades from C on -- none
dropped, none twice -- and C is at or after the roll moment and later than
every old second delivered before the new stream's first tick.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from slob.live.feed_switch import FeedSwitch, Route
from slob.model import Tick

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
BASE = dt.datetime(2024, 12, 11, 23, 0, tzinfo=dt.timezone.utc)


def stream(contract: str) -> Any:
    trade = st.tuples(st.integers(0, 12), st.sampled_from([21000.0, 21000.25]), st.sampled_from([1.0, 2.0]))
    return st.lists(trade, max_size=25).map(
        lambda ts: [Tick("NQ", p, s, BASE + dt.timedelta(seconds=sec), "CME", contract, 0)
                    for sec, p, s in sorted(ts, key=lambda t: t[0])])


@st.composite
def interleavings(draw: Any) -> tuple[list[Tick], list[Tick], dt.datetime, list[Tick]]:
    old, new = draw(stream("NQZ4")), draw(stream("NQH5"))
    picks = draw(st.lists(st.booleans(), min_size=len(old) + len(new), max_size=len(old) + len(new)))
    merged: list[Tick] = []
    i = j = 0
    for take_old in picks:
        if (take_old and i < len(old)) or j >= len(new):
            merged.append(old[i])
            i += 1
        else:
            merged.append(new[j])
            j += 1
    roll_at = BASE + dt.timedelta(seconds=draw(st.integers(0, 10)))
    return old, new, roll_at, merged


@PROPERTY
@given(interleavings())
def test_the_cut_delivers_each_side_whole_and_nothing_twice(case: tuple[list[Tick], list[Tick], dt.datetime,
                                                                         list[Tick]]) -> None:
    old, new, roll_at, merged = case
    switch = FeedSwitch("NQ", "NQZ4", 1)
    switch.begin("NQH5", 2, roll_at)
    delivered: list[Tick] = []
    switched_at: dt.datetime | None = None
    for tick in merged:
        route = switch.route(tick)
        if route is Route.SWITCHED:
            assert switched_at is None and switch.cut is not None
            switched_at = switch.cut
            assert tick.timestamp >= switch.cut >= roll_at
            assert all(t.timestamp < switch.cut for t in delivered)  # no second holds both contracts
        if route is Route.RETIRE:
            switch.retired()  # the caller cancels the old request: nothing more from it
        if route in (Route.DELIVER, Route.SWITCHED):
            delivered.append(tick)
    ids = [id(t) for t in delivered]
    assert len(ids) == len(set(ids))  # nothing twice
    cut = switch.cut
    if cut is None:  # the new stream never showed a tick: the old contract, whole
        assert ids == [id(t) for t in old] and switched_at is None
    else:  # each side whole up to / from the cut (the new side's tail may still be to come)
        assert cut >= roll_at and (switched_at is None or switched_at == cut)
        expected = {id(t) for t in old if t.timestamp < cut} | {id(t) for t in new if t.timestamp >= cut}
        assert set(ids) == expected


def test_an_old_trade_in_flight_after_the_switch_is_delivered() -> None:
    switch = FeedSwitch("NQ", "NQZ4", 1)
    roll = BASE + dt.timedelta(seconds=5)
    switch.begin("NQH5", 2, roll)
    t = lambda c, s: Tick("NQ", 21000.0, 1.0, BASE + dt.timedelta(seconds=s), "CME", c, 0)  # noqa: E731
    assert switch.route(t("NQZ4", 3)) is Route.DELIVER
    assert switch.route(t("NQH5", 4)) is Route.DROP  # before the roll moment; the cut is 5 now
    assert switch.route(t("NQZ4", 5)) is Route.DROP  # the next contract covers 5 on
    assert switch.route(t("NQH5", 6)) is Route.SWITCHED
    assert switch.route(t("NQZ4", 4)) is Route.DELIVER  # in flight, before the cut
    assert switch.route(t("NQZ4", 6)) is Route.RETIRE  # past the cut: the old stream is done
