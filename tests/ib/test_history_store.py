"""The store keeps history (schema 4): candles with their source, upserted idempotently,
the spans IB's history covered, and an old store file migrated."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.store.store import MIGRATIONS, SCHEMA_VERSION, CandleRecord, HistorySpan, Store
from slob.model import Candle

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 5, 14, 0, tzinfo=UTC)


def candle(minute: int, close: float = 20_000.0, *, filled: bool = False) -> Candle:
    return Candle("NQ", "NQH5", 60, T0 + dt.timedelta(minutes=minute), 20_000.0, max(close, 20_000.0),
                  min(close, 20_000.0), close, 0.0 if filled else 5.0, 0 if filled else 3, filled)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "slob.sqlite3")
    yield s  # type: ignore[misc]
    s.close()


def test_a_version_3_store_migrates_and_its_candles_are_live(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(db)) as conn:
        for step in MIGRATIONS[:3]:
            for statement in step:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("INSERT INTO candles VALUES ('NQ', 'NQH5', 60, ?, 1.0, 2.0, 0.5, 1.5, 4.0, 2, 0)",
                     (int(T0.timestamp()) * 10**9,))
        conn.commit()
    with Store(db) as s:
        assert SCHEMA_VERSION == 5
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        [old] = s.candle_records("NQ", 60)
        assert old.source == "live" and old.candle.close == 1.5
        s.add(CandleRecord(candle(1), "history"))
        s.add(HistorySpan("NQ", 60, T0, T0 + dt.timedelta(hours=1), T0))
        s.flush()
        assert [r.source for r in s.candle_records("NQ", 60)] == ["live", "history"]
        assert s.history_spans("NQ", 60) == [(T0, T0 + dt.timedelta(hours=1))]


def test_candles_are_upserted_idempotently_with_their_source(store: Store) -> None:
    store.add(CandleRecord(candle(0), "history"))
    store.add(CandleRecord(candle(0), "history"))  # the same record again: one row
    store.add(candle(1))  # a plain Candle is live
    store.flush()
    assert [(r.candle, r.source) for r in store.candle_records("NQ", 60)] == [(candle(0), "history"),
                                                                              (candle(1), "live")]
    assert store.candles("NQ", 60, source="live") == [candle(1)]
    assert store.candles("NQ", 60, source="history") == [candle(0)]


def test_keep_live_leaves_a_live_candle_with_trades_alone(store: Store) -> None:
    store.add(candle(0, 20_001.0))  # live, with trades
    store.add(candle(1, filled=True))  # live, flat: nothing was seen (an outage looks like this)
    store.add(CandleRecord(candle(2, 20_002.0), "history"))
    store.flush()
    for minute in range(3):
        store.add(CandleRecord(candle(minute, 20_009.0), "history", keep_live=True))
    store.flush()
    got = {r.candle.start.minute: (r.candle.close, r.source) for r in store.candle_records("NQ", 60)}
    assert got == {0: (20_001.0, "live"), 1: (20_009.0, "history"), 2: (20_009.0, "history")}
    # without keep_live the last write wins, and live always replaces history
    store.add(CandleRecord(candle(0, 20_005.0), "history"))
    store.add(candle(2, 20_003.0))
    store.flush()
    got = {r.candle.start.minute: (r.candle.close, r.source) for r in store.candle_records("NQ", 60)}
    assert got[0] == (20_005.0, "history") and got[2] == (20_003.0, "live")


def test_sources_are_checked() -> None:
    with pytest.raises(ValueError, match="source"):
        CandleRecord(candle(0), "guess")


SPANS = st.lists(st.tuples(st.integers(0, 100), st.integers(1, 30)), max_size=20)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(SPANS)
def test_history_spans_merge_to_exactly_what_was_covered(tmp_path_factory: pytest.TempPathFactory,
                                                         spans: list[tuple[int, int]]) -> None:
    with Store(tmp_path_factory.mktemp("spans") / "s.sqlite3") as s:
        covered: set[int] = set()
        for start, length in spans:
            s.add(HistorySpan("NQ", 60, T0 + dt.timedelta(minutes=start), T0 + dt.timedelta(minutes=start + length),
                              T0))
            covered |= set(range(start, start + length))
        s.flush()
        merged = s.history_spans("NQ", 60)
        minutes = set()
        for a, b in merged:
            minutes |= set(range(int((a - T0).total_seconds()) // 60, int((b - T0).total_seconds()) // 60))
        assert minutes == covered
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(merged, merged[1:]))  # disjoint, not touching
        assert s.history_spans("ES", 60) == [] and s.history_spans("NQ", 300) == []


def test_a_shorter_span_never_shrinks_a_longer_one(store: Store) -> None:
    store.add(HistorySpan("NQ", 60, T0, T0 + dt.timedelta(hours=2), T0))
    store.add(HistorySpan("NQ", 60, T0, T0 + dt.timedelta(hours=1), T0))
    store.flush()
    assert store.history_spans("NQ", 60) == [(T0, T0 + dt.timedelta(hours=2))]
