"""Store (``slob.store.store``): the engine's SQLite store.

Every record kind must read back equal (tz-aware UTC times); batches close by size, by
interval or at a flush, observed through the store's own counters (never a timing
threshold); a flush makes everything added before it visible; schema versions migrate
forward and a too-new file is refused; and a process killed with SIGKILL mid-write leaves a
consistent database holding a prefix of what it wrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from slob.store.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ErrorEvent,
    FillRecord,
    OrderRecord,
    OrderStatusRecord,
    RunRecord,
    RunStarted,
    RunStopped,
    SetupRecord,
    Store,
    StoreClosed,
    StoreError,
    StoreStats,
    StoreVersionError,
    default_db_path,
)
from slob.model import Candle, ConnectionLost, ConnectionRestored, ContractRolled, ErrorReported, Gap, Tick

UTC = dt.timezone.utc
BASE = dt.datetime(2024, 12, 2, 14, 30, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def tick(i: int, symbol: str = "NQ", **changes: object) -> Tick:
    fields: dict[str, object] = dict(
        symbol=symbol, price=21000.0 + (i % 400) * 0.25, size=float(1 + i % 5),
        timestamp=BASE + dt.timedelta(seconds=i, microseconds=i % 7), exchange="CME",
        contract="NQZ4", received_ns=1_000_000 + i,
    )
    fields.update(changes)
    return Tick(**fields)  # type: ignore[arg-type]


def candle(minute: int, close: float = 21001.0, interval: int = 60) -> Candle:
    return Candle("NQ", "NQZ4", interval, BASE + dt.timedelta(minutes=minute), 21000.0, 21002.5,
                  20999.75, close, 12.0, 7, filled=False)


def db_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll until ``condition()`` holds; the deadline only bounds a failing test."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.005)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "slob.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store(db, batch_size=64, batch_interval_ms=20) as s:
        yield s


# -- paths and schema -------------------------------------------------------------------
def test_default_db_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_db_path(tmp_path) == tmp_path / "slob.sqlite3"
    monkeypatch.setenv("SLOB_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_db_path() == tmp_path / "env" / "slob.sqlite3"
    monkeypatch.delenv("SLOB_DATA_DIR")
    assert default_db_path() == tmp_path / "xdg" / "slob" / "slob.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "slob" / "slob.sqlite3"


def test_new_database_is_wal_at_the_current_version(store: Store, db: Path) -> None:
    assert db.exists()  # the data directory was created
    assert db_rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert db_rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert store.counts() == dict.fromkeys(
        ["ticks", "candles", "setups", "orders", "fills", "connection_events", "runs"], 0)


# -- round trips ------------------------------------------------------------------------
def test_ticks_round_trip(store: Store) -> None:
    new_york = dt.timezone(dt.timedelta(hours=-5))
    ticks = [tick(i) for i in range(100)] + [
        tick(100, delayed=True, exchange="GLOBEX"),
        tick(101, symbol="ES", contract="ESZ4", timestamp=dt.datetime(2024, 12, 2, 9, 31, 0, 123456,
                                                                       tzinfo=new_york)),
    ]
    for t in ticks:
        store.add(t)
    store.flush()
    back = store.ticks("NQ") + store.ticks("ES")
    assert back == ticks  # aware datetimes compare as instants: the -05:00 one too
    assert all(t.timestamp.tzinfo is UTC for t in back)
    assert back[-1].timestamp == dt.datetime(2024, 12, 2, 14, 31, 0, 123456, tzinfo=UTC)
    assert back[100].delayed and not back[0].delayed


def test_candles_round_trip_and_range(store: Store) -> None:
    candles = [candle(m, close=21000.0 + m) for m in range(10)]
    flat = Candle("NQ", "NQZ4", 60, BASE + dt.timedelta(minutes=10), 21009.0, 21009.0, 21009.0,
                  21009.0, 0.0, 0, filled=True)
    five = candle(0, interval=300)
    for c in [*candles, flat, five]:
        store.add(c)
    store.flush()
    assert store.candles("NQ", 60) == [*candles, flat]
    assert store.candles("NQ", dt.timedelta(minutes=5)) == [five]
    assert store.candles("NQ", 60, BASE + dt.timedelta(minutes=3), BASE + dt.timedelta(minutes=5)) \
        == candles[3:5]
    assert store.candles("MNQ", 60) == []
    assert all(c.start.tzinfo is UTC for c in store.candles("NQ", 60))


def test_candle_upsert_is_idempotent(store: Store) -> None:
    first, revised = candle(0, close=21001.0), candle(0, close=21002.0)
    for c in (first, first, first):
        store.add(c)
    store.flush()
    assert store.candles("NQ", 60) == [first]
    store.add(revised)
    store.flush()
    assert store.candles("NQ", 60) == [revised]
    assert store.counts()["candles"] == 1


def test_connection_events_round_trip(store: Store) -> None:
    lost = ConnectionLost(BASE, "socket closed (EOF)")
    restored = ConnectionRestored(BASE + dt.timedelta(seconds=7), "reconnected", data_lost=True)
    gap = Gap(BASE, BASE + dt.timedelta(seconds=7, microseconds=5), "socket closed (EOF)")
    roll = ContractRolled("NQ", "NQZ4", "NQH5", BASE + dt.timedelta(days=10))
    for event in (lost, restored, gap, roll):
        store.add(event)
    before = dt.datetime.now(UTC)
    store.add(ErrorReported("on_tick", ValueError("bad handler")))
    store.flush()
    events = store.connection_events()
    assert events[:4] == [lost, restored, gap, roll]
    error = events[4]
    assert isinstance(error, ErrorEvent)
    assert error.cause == "on_tick: ValueError: bad handler" and error.at >= before
    assert store.connection_events(BASE + dt.timedelta(seconds=1), BASE + dt.timedelta(days=1)) \
        == [restored, gap]
    assert all(e.at.tzinfo is UTC for e in (lost, restored, roll, error))


def test_setups_orders_fills_round_trip_and_upsert(store: Store) -> None:
    t0, t1 = BASE, BASE + dt.timedelta(minutes=3)
    store.add_setup(id="NQ-20241202-short-1", symbol="NQ", direction="short", state="armed",
                    created=t0, updated=t0, details={"lse_high": 21050.25, "liq2": [1, 2]})
    store.add_order(order_id=101, setup_id="NQ-20241202-short-1", action="SELL", order_type="LMT",
                    quantity=1.0, status="Submitted", created=t0, updated=t0, perm_id=555,
                    limit_price=21040.0, details={"oca": "g1"})
    store.add_order(order_id=102, setup_id="NQ-20241202-short-1", action="BUY", order_type="STP",
                    quantity=1.0, status="PreSubmitted", created=t0, updated=t0, parent_id=101,
                    stop_price=21060.0)
    store.add_fill(exec_id="0001.01", order_id=101, time=t1, price=21040.0, quantity=1.0)
    store.flush()
    setup = SetupRecord("NQ-20241202-short-1", "NQ", "short", "armed", t0, t0,
                        {"lse_high": 21050.25, "liq2": [1, 2]})
    assert store.setups() == [setup] and store.setups("ES") == []
    parent = OrderRecord(101, "NQ-20241202-short-1", "SELL", "LMT", 1.0, "Submitted", t0, t0,
                         perm_id=555, limit_price=21040.0, details={"oca": "g1"})
    child = OrderRecord(102, "NQ-20241202-short-1", "BUY", "STP", 1.0, "PreSubmitted", t0, t0,
                        parent_id=101, stop_price=21060.0)
    assert store.orders() == [parent, child]
    assert store.fills() == [FillRecord("0001.01", 101, t1, 21040.0, 1.0)]

    # Later states: created and a known perm_id are kept; the commission report completes the fill.
    store.add(SetupRecord(setup.id, "NQ", "short", "entered", t1, t1, {}))
    store.add(OrderRecord(101, setup.id, "SELL", "LMT", 1.0, "Filled", t1, t1, limit_price=21040.0))
    store.add_fill(exec_id="0001.01", order_id=101, time=t1, price=21040.0, quantity=1.0,
                   commission=2.25, realized_pnl=0.0)
    store.flush()
    assert store.setups()[0] == SetupRecord(setup.id, "NQ", "short", "entered", t0, t1, {})
    assert store.orders(setup.id)[0] == OrderRecord(101, setup.id, "SELL", "LMT", 1.0, "Filled", t0,
                                                    t1, perm_id=555, limit_price=21040.0)
    assert store.fills(101) == [FillRecord("0001.01", 101, t1, 21040.0, 1.0, 2.25, 0.0)]
    assert store.fills(999) == []


def test_registered_record_type_is_adapted(store: Store) -> None:
    @dataclass(frozen=True)
    class Placed:  # what a later issue's order model might look like
        order_id: int
        ref: str
        at: dt.datetime

    store.register(Placed, lambda p: OrderRecord(p.order_id, p.ref, "BUY", "MKT", 2.0, "Sent",
                                                 p.at, p.at))
    store.add(Placed(7, "setup-7", BASE))
    store.flush()
    assert store.orders("setup-7") == [OrderRecord(7, "setup-7", "BUY", "MKT", 2.0, "Sent", BASE,
                                                   BASE)]


def test_tick_queries_filter_by_time_and_limit(store: Store) -> None:
    for i in range(20):
        store.add(tick(i))
    store.flush()
    middle = store.ticks("NQ", BASE + dt.timedelta(seconds=5), BASE + dt.timedelta(seconds=8))
    assert [t.received_ns for t in middle] == [1_000_005, 1_000_006, 1_000_007]
    assert len(store.ticks(limit=4)) == 4 and store.ticks("ES") == []


# -- trading records: prompt and durable ------------------------------------------------
def test_trading_records_commit_at_once_and_take_the_ticks_before_them(db: Path) -> None:
    """Batches wait a minute here: only the trading record can close this one."""
    with Store(db, batch_size=10_000, batch_interval_ms=60_000) as store:
        for i in range(5):
            store.add(tick(i))
        store.add(OrderStatusRecord(7, "Submitted", BASE, setup_id="s-7", action="BUY", order_type="MKT",
                                    quantity=1.0))
        wait_for(lambda: db_rows(db, "SELECT count(*) FROM orders") == [(1,)])
        assert db_rows(db, "SELECT count(*) FROM ticks") == [(5,)]  # in order: what came before is in
        stats = store.stats()
        assert (stats.batches_urgent, stats.written, stats.pending) == (1, 6, 0)
        store.add_fill(exec_id="e1", order_id=7, time=BASE, price=21000.0, quantity=1.0)
        wait_for(lambda: db_rows(db, "SELECT count(*) FROM fills") == [(1,)])
        assert store.stats().batches_urgent == 2


def test_commit_resolves_once_the_records_are_durable(db: Path) -> None:
    with Store(db, batch_size=10_000, batch_interval_ms=60_000) as store:
        intent = OrderRecord(1, "s-1", "SELL", "MKT", 1.0, "Intent", BASE, BASE, con_id=495512563,
                             contract="NQZ4", role="entry", tif="DAY", oca_group="", transmit=False)
        store.commit(SetupRecord("s-1", "NQ", "short", "intent", BASE, BASE, {"stop": 1.0}), intent).result(10)
        # another connection (another process after a kill would open the file the same way)
        assert db_rows(db, "SELECT order_id, status, role, transmit FROM orders") == [(1, "Intent", "entry", 0)]
        assert store.orders() == [intent]
        future = store.commit(OrderRecord(2, None, "BUY", "MKT", 1.0, "Intent", BASE,
                                          dt.datetime(2024, 1, 1)))  # naive: rejected
        with pytest.raises(StoreError, match="not stored"):
            future.result(10)
        with pytest.raises(TypeError):
            store.commit(object())


@pytest.mark.asyncio
async def test_acommit_awaits_durability_on_the_loop(db: Path) -> None:
    with Store(db, batch_size=10_000, batch_interval_ms=60_000) as store:
        await store.acommit(FillRecord("e1", 1, BASE, 21000.0, -1.0, 2.25, None))
        assert db_rows(db, "SELECT exec_id, quantity FROM fills") == [("e1", -1.0)]
    with pytest.raises(StoreClosed):
        await store.acommit(FillRecord("e2", 1, BASE, 21000.0, -1.0))


def test_order_status_never_moves_backwards_and_keeps_what_was_sent(store: Store) -> None:
    t = [BASE + dt.timedelta(seconds=i) for i in range(8)]
    store.add(OrderRecord(5, "s-5", "BUY", "STP", 1.0, "Intent", t[0], t[0], stop_price=21010.0, parent_id=4,
                          con_id=495512563, contract="NQZ4", role="stop", tif="GTC", oca_group="g", transmit=True))
    for i, status in enumerate(["Sent", "PreSubmitted", "Sent", "Submitted", "Filled", "Submitted", "Cancelled"], 1):
        store.add(OrderStatusRecord(5, status, t[i], perm_id=99 if i == 2 else None, filled=1.0 if i == 5 else None,
                                    action="SELL", order_type="LMT", quantity=7.0))
    store.flush()
    [row] = store.orders()
    assert (row.status, row.perm_id, row.filled, row.updated) == ("Filled", 99, 1.0, t[7])
    assert (row.action, row.order_type, row.quantity, row.stop_price, row.role, row.oca_group) == (
        "BUY", "STP", 1.0, 21010.0, "stop", "g")  # a status report never rewrites the leg
    # an order the store did not hold: a row from what the report knows
    store.add(OrderStatusRecord(9, "Filled", t[1], setup_id="s-9", action="SELL", order_type="", quantity=1.0,
                                con_id=495512563, contract="NQZ4", filled=1.0, avg_fill_price=21000.5))
    store.add(OrderStatusRecord(10, "Cancelled", t[1]))
    store.add(OrderStatusRecord(10, "Submitted", t[2]))  # late: a final status stays
    store.flush()
    rows = {r.order_id: r for r in store.orders()}
    assert (rows[9].setup_id, rows[9].action, rows[9].status, rows[9].con_id, rows[9].avg_fill_price) == (
        "s-9", "SELL", "Filled", 495512563, 21000.5)
    assert rows[10].status == "Cancelled"


def test_runs_and_the_last_data_time(store: Store) -> None:
    assert store.runs() == [] and store.last_data_time() is None
    store.add(candle(3))
    store.add(Candle("NQ", "NQZ4", 60, BASE + dt.timedelta(minutes=9), 1, 1, 1, 1, 0, 0, filled=True))
    store.add(RunStarted("a", BASE, 41))
    store.add(RunStopped("a", BASE + dt.timedelta(hours=1)))
    store.add(RunStarted("b", BASE + dt.timedelta(hours=2), 42))
    store.flush()
    assert store.runs() == [RunRecord("a", BASE, BASE + dt.timedelta(hours=1), 41),
                            RunRecord("b", BASE + dt.timedelta(hours=2), None, 42)]
    assert store.last_data_time() == BASE + dt.timedelta(minutes=4)  # a flat candle is not data
    store.add(tick(30))
    store.flush()
    assert store.last_data_time() == tick(30).timestamp


# -- batching and flushing --------------------------------------------------------------
def test_a_batch_commits_when_full(db: Path) -> None:
    with Store(db, batch_size=10, batch_interval_ms=3_600_000) as store:  # interval: never
        for i in range(25):
            store.add(tick(i))
        wait_for(lambda: store.stats().batches_by_size == 2)
        stats = store.stats()
        assert (stats.written, stats.pending, stats.batches_by_interval) == (20, 5, 0)
        assert store.counts()["ticks"] == 20  # committed: visible to another connection
        store.flush()
        assert store.stats() == StoreStats(enqueued=25, written=25, rejected=0, pending=0,
                                           batches=3, batches_by_size=2, batches_by_interval=0,
                                           batches_by_flush=1, largest_batch=10)


def test_a_batch_commits_when_its_interval_ends(db: Path) -> None:
    with Store(db, batch_size=1_000_000, batch_interval_ms=20) as store:
        for i in range(3):
            store.add(tick(i))
        wait_for(lambda: store.stats().written == 3)  # no flush: only the interval closes it
        stats = store.stats()
        assert stats.batches_by_interval >= 1
        assert stats.batches_by_size == stats.batches_by_flush == 0
        assert store.counts()["ticks"] == 3


def test_flush_commits_everything_added_before_it(db: Path) -> None:
    with Store(db, batch_size=1_000_000, batch_interval_ms=3_600_000) as store:
        store.flush()  # nothing queued: returns at once
        for i in range(1000):
            store.add(tick(i))
        store.flush()
        assert store.counts()["ticks"] == 1000 and store.stats().pending == 0
        assert store.stats().batches_by_flush == 1


@pytest.mark.asyncio
async def test_aflush_awaits_without_blocking_the_loop(db: Path) -> None:
    with Store(db, batch_size=1_000_000, batch_interval_ms=3_600_000) as store:
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                beats += 1
                await asyncio.sleep(0)

        beating = asyncio.create_task(heartbeat())
        for i in range(20_000):
            store.add(tick(i))
        await store.aflush()
        beating.cancel()
        assert store.counts()["ticks"] == 20_000
        assert beats > 1  # the loop ran while the writer committed


def test_close_writes_everything_and_refuses_more(db: Path) -> None:
    store = Store(db, batch_size=1_000_000, batch_interval_ms=3_600_000)
    for i in range(500):
        store.add(tick(i))
    store.close()
    store.close()  # idempotent
    store.flush()  # nothing can be pending after close
    assert store.counts()["ticks"] == 500  # queries still work after close
    with pytest.raises(StoreClosed):
        store.add(tick(0))


def test_a_bad_record_is_rejected_without_losing_its_batch(store: Store) -> None:
    store.add(tick(0))
    store.add(tick(1, timestamp=dt.datetime(2024, 12, 2, 14, 30)))  # naive: refused
    store.add_order(order_id=1, setup_id=None, action="BUY", order_type="MKT", quantity=1.0,
                    status=None, created=BASE, updated=BASE)  # NOT NULL violation in SQLite
    store.add(tick(2))
    with pytest.raises(StoreError, match=r"2 record\(s\) not stored: .*naive datetime"):
        store.flush()
    assert [t.received_ns for t in store.ticks()] == [1_000_000, 1_000_002]
    assert store.stats().rejected == 2 and store.orders() == []
    store.flush()  # errors are reported once


def test_unknown_record_type_is_refused_at_once(store: Store) -> None:
    with pytest.raises(TypeError, match="cannot write str"):
        store.add("tick")


# -- migrations -------------------------------------------------------------------------
V1_SCHEMA = """
CREATE TABLE ticks (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, contract TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, price REAL NOT NULL, size REAL NOT NULL, exchange TEXT NOT NULL,
    delayed INTEGER NOT NULL CHECK (delayed IN (0, 1)));
CREATE INDEX ticks_symbol_ts ON ticks (symbol, ts_ns);
CREATE TABLE candles (symbol TEXT NOT NULL, contract TEXT NOT NULL,
    interval_seconds INTEGER NOT NULL, start_ns INTEGER NOT NULL, open REAL NOT NULL,
    high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    trades INTEGER NOT NULL, filled INTEGER NOT NULL CHECK (filled IN (0, 1)),
    PRIMARY KEY (symbol, interval_seconds, start_ns));
CREATE TABLE connection_events (id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('lost', 'restored', 'gap', 'roll', 'error')),
    cause TEXT NOT NULL, start_ns INTEGER, end_ns INTEGER, data_lost INTEGER,
    symbol TEXT, old_contract TEXT, new_contract TEXT);
CREATE INDEX connection_events_ts ON connection_events (ts_ns);
INSERT INTO ticks VALUES (1, 'NQ', 'NQZ4', 1733149800000000000, 21000.25, 2.0, 'CME', 0);
INSERT INTO candles VALUES ('NQ', 'NQZ4', 60, 1733149800000000000, 21000.0, 21002.5, 20999.75,
    21001.0, 12.0, 7, 0);
PRAGMA user_version = 1;
"""


def test_a_version_1_database_is_migrated(db: Path) -> None:
    db.parent.mkdir()
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(V1_SCHEMA)
    with Store(db) as store:
        assert db_rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert store.ticks() == [Tick("NQ", 21000.25, 2.0, BASE, "CME", "NQZ4", 0)]
        assert store.candles("NQ", 60) == [candle(0)]
        store.add(tick(1))
        store.add_fill(exec_id="e1", order_id=1, time=BASE, price=21000.0, quantity=1.0)
        store.flush()
        assert store.counts() == {"ticks": 2, "candles": 1, "setups": 0, "orders": 0, "fills": 1,
                                  "connection_events": 0, "runs": 0}
    with Store(db) as again:  # already current: opens without migrating again
        assert again.counts()["ticks"] == 2


def test_a_version_2_database_is_migrated_and_keeps_its_orders(db: Path) -> None:
    db.parent.mkdir()
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(V1_SCHEMA)
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("INSERT INTO orders (order_id, perm_id, setup_id, parent_id, action, order_type, quantity, "
                     "limit_price, stop_price, status, created_ns, updated_ns, details) VALUES "
                     "(3, NULL, 's-3', NULL, 'SELL', 'MKT', 1.0, NULL, NULL, 'Sent', 1, 1, '{}')")
        conn.commit()
    with Store(db) as store:
        assert db_rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)] and SCHEMA_VERSION == 5
        [old] = store.orders()
        assert (old.order_id, old.status, old.con_id, old.role, old.transmit, old.filled) == (
            3, "Sent", None, None, None, None)
        store.add(OrderStatusRecord(3, "Filled", BASE, filled=1.0))
        store.add(RunStarted("r", BASE, 1))
        store.flush()
        assert store.orders()[0].status == "Filled" and store.runs()[0].run_id == "r"


def test_a_newer_database_is_refused(db: Path) -> None:
    db.parent.mkdir()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match=rf"version {SCHEMA_VERSION + 1}.*Upgrade slob"):
        Store(db)
    assert db_rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]  # left untouched


def test_a_file_that_is_not_a_database_is_refused(db: Path) -> None:
    db.parent.mkdir()
    db.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(StoreError, match="not a usable slob database"):
        Store(db)


# -- a hard kill ------------------------------------------------------------------------
WRITER = """
import datetime as dt, sys, time
from slob.store.store import Store
from slob.model import Tick
base = dt.datetime(2024, 12, 2, 14, 30, tzinfo=dt.timezone.utc)
store = Store(sys.argv[1], batch_size=200, batch_interval_ms=10)
i = 0
while True:
    store.add(Tick("NQ", 21000.0 + (i % 400) * 0.25, float(1 + i % 5),
                   base + dt.timedelta(milliseconds=i), "CME", "NQZ4", i))
    i += 1
    if i % 100 == 0:
        time.sleep(0.0005)  # a feed, not a flood: the writer keeps up
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_writer_leaves_a_consistent_database(db: Path) -> None:
    db.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def committed() -> int:
            try:
                count = db_rows(db, "SELECT count(*) FROM ticks")[0][0]
            except sqlite3.OperationalError:  # not created yet, or mid-migration
                return 0
            assert isinstance(count, int)
            return count

        deadline = time.monotonic() + 15.0
        while (seen := committed()) < 5_000:
            assert proc.poll() is None, f"the writer died: {proc.communicate()[1].decode()}"
            assert time.monotonic() < deadline, "the writer committed too little in time"
            time.sleep(0.01)
        assert proc.poll() is None  # still writing: the kill lands mid-run
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()  # no-op if already dead
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()
    assert Path(f"{db}-wal").exists()  # it never closed: recovery reads the WAL

    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    rows = db_rows(db, "SELECT id, symbol, contract, ts_ns, price, size, exchange, delayed, "
                       "received_ns FROM ticks ORDER BY id")
    assert len(rows) >= seen
    # Batches commit in order, whole or not at all: what survived is exactly a prefix.
    assert [r[8] for r in rows] == list(range(len(rows)))
    base_ns = (BASE - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1) * 1000
    for (_, symbol, contract, ts_ns, price, size, exchange, delayed, i) in rows:
        assert isinstance(i, int)
        assert (symbol, contract, exchange, delayed) == ("NQ", "NQZ4", "CME", 0)
        assert (ts_ns, price, size) == (base_ns + i * 1_000_000, 21000.0 + (i % 400) * 0.25,
                                        float(1 + i % 5))

    with Store(db) as store:  # and it takes writes again
        store.add(tick(0, received_ns=len(rows)))
        store.flush()
        assert store.counts()["ticks"] == len(rows) + 1
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
