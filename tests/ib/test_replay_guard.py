"""ReplayGuard: a new market-data request's first trade, TWS's last trade sent again.

Model: the market's trades T in time order (identical trades in one second allowed). The
client delivered T[:k]; T[k:m] happened while it was away (the gap); the new request
sends T[m-1] again (the last trade when it arrived), then T[m:]. A guard armed from what
was delivered must drop the replay when nothing was missed (m == k) -- else a duplicate --
and must deliver it when it is newer than every delivered second (else a trade lost
outside the gap). In between, it is a trade inside the gap: either answer is allowed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib import ticks
from slob.model import Tick

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
BASE = dt.datetime(2024, 12, 2, 14, 30, tzinfo=dt.timezone.utc)
REF = ticks.ContractRef("NQ", "NQZ4", 0.25, False)


def guard_from(delivered: list[Tick]) -> ticks.ReplayGuard | None:
    if not delivered:
        return None
    last = max(t.timestamp for t in delivered)
    return ticks.ReplayGuard(last, tuple((t.price, t.size) for t in delivered if t.timestamp == last))


@st.composite
def histories(draw: Any) -> tuple[list[Tick], int, int]:
    raw = draw(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([21000.0, 21000.25]),
                                  st.sampled_from([1.0, 2.0])), min_size=1, max_size=30))
    trades = [Tick("NQ", p, s, BASE + dt.timedelta(seconds=sec), "CME", "NQZ4", 0)
              for sec, p, s in sorted(raw, key=lambda t: t[0])]
    k = draw(st.integers(0, len(trades)))
    m = draw(st.integers(max(k, 1), len(trades)))
    return trades, k, m


@PROPERTY
@given(histories())
def test_the_replay_is_dropped_and_a_missed_trade_is_kept(case: tuple[list[Tick], int, int]) -> None:
    trades, k, m = case
    guard = guard_from(trades[:k])
    replay = trades[m - 1]
    dropped = guard is not None and guard.is_replay(replay)
    if m == k:
        assert dropped  # it was delivered: sending it on would be a duplicate
    if k == 0 or replay.timestamp > trades[k - 1].timestamp:
        assert not dropped  # newer than anything delivered: it is a missed trade


def test_the_merger_judges_only_its_first_trade() -> None:
    delivered = Tick("NQ", 21000.0, 1.0, BASE, "CME", "NQZ4", 0)
    merger = ticks.LastTradeMerger(REF, "CME", guard=guard_from([delivered]))
    unix = int(BASE.timestamp())
    merger.on_price(ticks.LAST, 21000.0, 1)
    merger.on_size(ticks.LAST_SIZE, Decimal(1), 1)
    replay = merger.on_string(ticks.LAST_TIMESTAMP, str(unix), 1)
    assert isinstance(replay, ticks.Rejection) and replay.reason == ticks.REPLAYED
    # the same trade again, live: a new trade now, delivered
    merger.on_size(ticks.LAST_SIZE, Decimal(1), 2)
    again = merger.on_string(ticks.LAST_TIMESTAMP, str(unix), 2)
    assert isinstance(again, Tick) and (again.price, again.size) == (21000.0, 1.0)
