"""The store's side of gap fill (schema 5): a Gap is one row, and storing it again filled
only sets its flag; an older file migrates (duplicate gap rows folded into one)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

from slob.store.store import Store
from slob.store.schema import MIGRATIONS, SCHEMA_VERSION
from slob.model import ConnectionLost, Gap

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 5, 15, 35, tzinfo=UTC)


def test_a_gap_stored_again_filled_keeps_one_row_and_gains_the_flag(tmp_path: Path) -> None:
    gap = Gap(T0, T0 + dt.timedelta(seconds=75), "IB 1101: data lost")
    with Store(tmp_path / "s.db") as store:
        store.add(ConnectionLost(T0, "IB 1101: data lost"))
        store.add(gap)
        store.flush()
        assert [g.filled for g in store.connection_events() if isinstance(g, Gap)] == [False]
        store.add(dataclasses.replace(gap, filled=True))
        store.add(gap)  # stored once more unfilled: a fill is never undone
        store.flush()
        gaps = [g for g in store.connection_events() if isinstance(g, Gap)]
    assert gaps == [gap] and gaps[0].filled
    assert store.counts()["connection_events"] == 2


def test_a_version_4_store_migrates_and_duplicate_gaps_fold(tmp_path: Path) -> None:
    db = tmp_path / "v4.db"
    with sqlite3.connect(db) as conn:
        for step in MIGRATIONS[:4]:
            for statement in step:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
        start, end = int(T0.timestamp()) * 10**9, int(T0.timestamp() + 60) * 10**9
        for _ in range(2):
            conn.execute("INSERT INTO connection_events (ts_ns, kind, cause, start_ns, end_ns) VALUES (?, 'gap', "
                         "'socket closed', ?, ?)", (end, start, end))
        conn.commit()
    with Store(db) as store:
        gaps = [g for g in store.connection_events() if isinstance(g, Gap)]
    assert gaps == [Gap(T0, T0 + dt.timedelta(seconds=60), "socket closed")] and not gaps[0].filled
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
