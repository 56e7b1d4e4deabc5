"""Deduplicator (``slob.live.dedupe``): ticks delivered twice across a resubscription.

A trade is (symbol, exchange second, price, size). Without a resubscription nothing is
ever a duplicate; after one, the re-delivered tail of the last second and anything
older are duplicates until a tick of a later second arrives.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from slob.live.dedupe import Deduplicator
from slob.model import Tick

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)
BASE = dt.datetime(2024, 12, 2, 14, 30, tzinfo=dt.timezone.utc)


def tick(symbol: str, second: int, price: float, size: float) -> Tick:
    return Tick(symbol, price, size, BASE + dt.timedelta(seconds=second), "CME", symbol + "Z4", 0)


PRICES = st.sampled_from([21000.0, 21000.25, 21000.5])  # few values: equal trades are common
SIZES = st.sampled_from([1.0, 2.0, 5.0])


@st.composite
def history(draw: st.DrawFn, symbol: str = "NQ", min_size: int = 1) -> list[Tick]:
    """A stream in exchange-time order, several trades per second, equal trades allowed."""
    n = draw(st.integers(min_value=min_size, max_value=25))
    second = draw(st.integers(min_value=0, max_value=5))
    out = []
    for _ in range(n):
        second += draw(st.sampled_from([0, 0, 0, 1, 2]))
        out.append(tick(symbol, second, draw(PRICES), draw(SIZES)))
    return out


ANY_TICKS = st.lists(
    st.builds(tick, st.sampled_from(["NQ", "ES"]), st.integers(0, 10), PRICES, SIZES), max_size=40)


@PROPERTY
@given(ANY_TICKS)
def test_without_a_resubscription_every_tick_is_accepted(ticks: list[Tick]) -> None:
    """Even identical trades in one second, and ticks out of order."""
    dedupe = Deduplicator()
    assert [dedupe.accept(t) for t in ticks] == [True] * len(ticks)
    assert dedupe.duplicates == 0


def test_identical_trades_in_one_second_are_all_accepted() -> None:
    dedupe = Deduplicator()
    same = tick("NQ", 0, 21000.0, 1.0)
    assert [dedupe.accept(same) for _ in range(5)] == [True] * 5
    assert dedupe.duplicates == 0


def last_second(ticks: list[Tick]) -> list[Tick]:
    newest = ticks[-1].timestamp
    return [t for t in ticks if t.timestamp == newest]


@PROPERTY
@given(history(), st.data())
def test_a_replayed_tail_and_older_ticks_after_a_resubscription_are_duplicates(
    ticks: list[Tick], data: st.DataObject,
) -> None:
    dedupe = Deduplicator()
    assert all(dedupe.accept(t) for t in ticks)
    dedupe.resubscribed("NQ")
    tail_of_last = last_second(ticks)
    cut = data.draw(st.integers(min_value=0, max_value=len(tail_of_last)), label="cut")
    replay = tail_of_last[cut:]  # any suffix of the last second's ticks
    newest = ticks[-1].timestamp
    earlier = [t for t in ticks if t.timestamp < newest]
    older = data.draw(st.lists(st.sampled_from(earlier), max_size=10), label="older") if earlier else []
    older += [tick("NQ", -s, 20000.0, 3.0) for s in data.draw(st.lists(st.integers(1, 100), max_size=3))]
    mixed = data.draw(st.permutations(replay + older), label="order")
    assert [dedupe.accept(t) for t in mixed] == [False] * len(mixed)
    assert dedupe.duplicates == len(mixed)

    # The first tick of a later second ends the replay window...
    later = tick("NQ", int((newest - BASE).total_seconds()) + 1, 21000.0, 1.0)
    assert dedupe.accept(later)
    # ...after which nothing is a duplicate any more (late ticks are delivered as they are).
    again = replay + older
    assert [dedupe.accept(t) for t in again] == [True] * len(again)
    assert dedupe.duplicates == len(mixed)


@PROPERTY
@given(history(), st.lists(st.tuples(PRICES, SIZES), max_size=10), st.data())
def test_new_trades_in_the_replayed_second_are_accepted_beyond_what_was_seen(
    ticks: list[Tick], extra: list[tuple[float, float]], data: st.DataObject,
) -> None:
    """In the last second, a (price, size) is a duplicate only as many times as it was
    delivered there before; further equal trades are new ones."""
    dedupe = Deduplicator()
    assert all(dedupe.accept(t) for t in ticks)
    dedupe.resubscribed("NQ")
    newest = ticks[-1].timestamp
    seen = Counter((t.price, t.size) for t in last_second(ticks))
    second = int((newest - BASE).total_seconds())
    arriving = last_second(ticks) + [tick("NQ", second, p, s) for p, s in extra]
    arriving = data.draw(st.permutations(arriving))
    accepted = Counter((t.price, t.size) for t in arriving if dedupe.accept(t))
    delivered = Counter((t.price, t.size) for t in arriving)
    assert accepted == delivered - seen
    assert dedupe.duplicates == sum(seen.values())


@PROPERTY
@given(history("NQ"), history("ES"), st.data())
def test_symbols_are_independent(nq: list[Tick], es: list[Tick], data: st.DataObject) -> None:
    dedupe = Deduplicator()
    stream = data.draw(st.permutations(nq + es))
    # Interleave, but keep each symbol's own order.
    by_symbol = {"NQ": iter(nq), "ES": iter(es)}
    stream = [next(by_symbol[t.symbol]) for t in stream]
    assert all(dedupe.accept(t) for t in stream)
    dedupe.resubscribed("NQ")
    # ES was not resubscribed: its whole history passes again, even ES ticks of later
    # seconds do not end NQ's window...
    es_later = tick("ES", 10_000, 5000.0, 1.0)
    assert [dedupe.accept(t) for t in es + [es_later]] == [True] * (len(es) + 1)
    # ...while NQ's replayed last second is still recognised.
    replay = last_second(nq)
    assert [dedupe.accept(t) for t in replay] == [False] * len(replay)
    assert dedupe.duplicates == len(replay)


def test_resubscribing_a_symbol_never_seen_changes_nothing() -> None:
    dedupe = Deduplicator()
    dedupe.resubscribed("NQ")
    t = tick("NQ", 0, 21000.0, 1.0)
    assert dedupe.accept(t) and dedupe.accept(t)
    assert dedupe.duplicates == 0


def test_a_second_resubscription_recognises_the_same_second_again() -> None:
    dedupe = Deduplicator()
    a, b = tick("NQ", 5, 21000.0, 1.0), tick("NQ", 5, 21000.25, 2.0)
    assert dedupe.accept(a) and dedupe.accept(b)
    dedupe.resubscribed("NQ")
    assert not dedupe.accept(b)
    dedupe.resubscribed("NQ")  # before any later second: b and a are replayable again
    assert not dedupe.accept(a) and not dedupe.accept(b)
    assert dedupe.duplicates == 3
    assert dedupe.accept(tick("NQ", 6, 21000.0, 1.0))
