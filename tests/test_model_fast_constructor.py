"""fast_constructor / new_tick: indistinguishable from the dataclass's own constructor."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.model import Candle, Tick, fast_constructor, new_tick

MOMENTS = st.datetimes(timezones=st.just(dt.timezone.utc))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=4), st.floats(), st.floats(), MOMENTS, st.text(max_size=4), st.text(max_size=6),
       st.integers(0, 2**63), st.booleans())
def test_new_tick_equals_tick(symbol: str, price: float, size: float, at: dt.datetime, exchange: str,
                              contract: str, received: int, delayed: bool) -> None:
    args = (symbol, price, size, at, exchange, contract, received, delayed)
    fast, slow = new_tick(*args), Tick(*args)
    assert type(fast) is Tick
    assert dataclasses.astuple(fast) == dataclasses.astuple(slow)
    if price == price and size == size:  # NaN is never equal to itself
        assert fast == slow and hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)


def test_the_result_stays_frozen_and_pickles() -> None:
    tick = new_tick("NQ", 1.0, 2.0, dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc), "CME", "NQH6", 1, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tick.price = 3.0  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(tick)) == tick
    assert dataclasses.replace(tick, price=3.0).price == 3.0


def test_only_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclass(slots=True)
    class Open:
        a: int

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    for cls in (Open, NoSlots):
        with pytest.raises(TypeError, match="not a frozen, slotted dataclass"):
            fast_constructor(cls)
    assert fast_constructor(Candle).__name__ == "new_candle"
