"""The store's schema and row mapping: migrations, SQL, records <-> rows. Pure SQL text
and conversions; the writer thread in :mod:`slob.store.store` runs them.

Times are integer nanoseconds since the Unix epoch (UTC), read back as tz-aware UTC
datetimes; a naive datetime is rejected.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from slob.store.records import (CandleRecord, ConnectionEvent, ErrorEvent, FillRecord, HistorySpan, OrderRecord,
                                     OrderStatusRecord, RunStarted, RunStopped, SetupRecord, StoreVersionError)
from slob.model import (Candle, ConnectionLost, ConnectionRestored, ContractRolled, ErrorReported,
                        Gap, Tick)

__all__ = ["MIGRATIONS", "ROWS", "Row", "SCHEMA_VERSION", "SQL", "TABLES", "event_from_row", "from_ns", "migrate", "to_ns"]

log = logging.getLogger("slob.live.store")
UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_US = dt.timedelta(microseconds=1)


# -- schema ---------------------------------------------------------------------------------
MIGRATIONS: Sequence[Sequence[str]] = (
    (  # 1: market data
        """CREATE TABLE ticks (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, contract TEXT NOT NULL,
            ts_ns INTEGER NOT NULL, price REAL NOT NULL, size REAL NOT NULL,
            exchange TEXT NOT NULL, delayed INTEGER NOT NULL CHECK (delayed IN (0, 1)))""",
        "CREATE INDEX ticks_symbol_ts ON ticks (symbol, ts_ns)",
        """CREATE TABLE candles (symbol TEXT NOT NULL, contract TEXT NOT NULL,
            interval_seconds INTEGER NOT NULL, start_ns INTEGER NOT NULL, open REAL NOT NULL,
            high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
            trades INTEGER NOT NULL, filled INTEGER NOT NULL CHECK (filled IN (0, 1)),
            PRIMARY KEY (symbol, interval_seconds, start_ns))""",
        """CREATE TABLE connection_events (id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('lost', 'restored', 'gap', 'roll', 'error')),
            cause TEXT NOT NULL, start_ns INTEGER, end_ns INTEGER, data_lost INTEGER,
            symbol TEXT, old_contract TEXT, new_contract TEXT)""",
        "CREATE INDEX connection_events_ts ON connection_events (ts_ns)",
    ),
    (  # 2: trading records, and the local receive time of ticks (latency reports)
        "ALTER TABLE ticks ADD COLUMN received_ns INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE setups (id TEXT PRIMARY KEY, symbol TEXT NOT NULL, direction TEXT NOT NULL,
            state TEXT NOT NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
            details TEXT NOT NULL)""",
        """CREATE TABLE orders (order_id INTEGER PRIMARY KEY, perm_id INTEGER, setup_id TEXT,
            parent_id INTEGER, action TEXT NOT NULL, order_type TEXT NOT NULL,
            quantity REAL NOT NULL, limit_price REAL, stop_price REAL, status TEXT NOT NULL,
            created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, details TEXT NOT NULL)""",
        """CREATE TABLE fills (exec_id TEXT PRIMARY KEY, order_id INTEGER NOT NULL,
            time_ns INTEGER NOT NULL, price REAL NOT NULL, quantity REAL NOT NULL,
            commission REAL, realized_pnl REAL)""",
        "CREATE INDEX setups_symbol_created ON setups (symbol, created_ns)",
        "CREATE INDEX orders_setup ON orders (setup_id)",
        "CREATE INDEX orders_created ON orders (created_ns)",
        "CREATE INDEX fills_order ON fills (order_id)",
        "CREATE INDEX fills_time ON fills (time_ns)",
    ),
    (  # 3: orders as intents (each leg as sent), fill progress, and the engine's runs
        "ALTER TABLE orders ADD COLUMN con_id INTEGER",
        "ALTER TABLE orders ADD COLUMN contract TEXT",
        "ALTER TABLE orders ADD COLUMN role TEXT",
        "ALTER TABLE orders ADD COLUMN tif TEXT",
        "ALTER TABLE orders ADD COLUMN oca_group TEXT",
        "ALTER TABLE orders ADD COLUMN transmit INTEGER",
        "ALTER TABLE orders ADD COLUMN filled REAL",
        "ALTER TABLE orders ADD COLUMN avg_fill_price REAL",
        "CREATE INDEX orders_status ON orders (status)",
        """CREATE TABLE runs (id TEXT PRIMARY KEY, started_ns INTEGER NOT NULL, stopped_ns INTEGER,
            pid INTEGER NOT NULL)""",
        "CREATE INDEX runs_started ON runs (started_ns)",
    ),
    (  # 4: market memory -- where each candle came from, and what IB's history covered
        "ALTER TABLE candles ADD COLUMN source TEXT NOT NULL DEFAULT 'live' CHECK (source IN ('live', 'history'))",
        """CREATE TABLE history_spans (symbol TEXT NOT NULL, interval_seconds INTEGER NOT NULL,
            start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, fetched_ns INTEGER NOT NULL,
            PRIMARY KEY (symbol, interval_seconds, start_ns))""",
    ),
    (  # 5: market memory -- whether a gap's minutes were filled from history; one row per gap
        "ALTER TABLE connection_events ADD COLUMN filled INTEGER NOT NULL DEFAULT 0 CHECK (filled IN (0, 1))",
        """DELETE FROM connection_events WHERE kind = 'gap' AND id NOT IN (
            SELECT min(id) FROM connection_events WHERE kind = 'gap' GROUP BY start_ns, end_ns)""",
        "CREATE UNIQUE INDEX connection_events_gap ON connection_events (start_ns, end_ns) WHERE kind = 'gap'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("ticks", "candles", "setups", "orders", "fills", "connection_events", "runs")


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring ``conn`` to :data:`SCHEMA_VERSION`, one transaction per step."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{path} has store schema version {version}, but this slob knows versions up to "
            f"{SCHEMA_VERSION}. Upgrade slob (pip install -U slob), or point SLOB_DATA_DIR / "
            "data_dir at another directory."
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store %s migrated to schema version %d", path, number)


# -- rows -----------------------------------------------------------------------------------
def to_ns(t: dt.datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t!r}: slob stores tz-aware UTC times only")
    return (t - _EPOCH) // _US * 1000


def from_ns(ns: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def _json(details: Mapping[str, Any]) -> str:
    return json.dumps(dict(details), sort_keys=True, separators=(",", ":"))


def _insert(table: str, columns: str, key: str = "", keep: str = "", coalesce: str = "") -> str:
    """INSERT for ``columns``; with ``key``, an upsert that updates every other column
    except ``keep``, and ``coalesce`` columns only when the new value is not NULL."""
    cols = columns.split()
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    if not key:
        return sql
    sets = [f"{c} = coalesce(excluded.{c}, {c})" if c in coalesce.split() else f"{c} = excluded.{c}"
            for c in cols if c not in key.split() + keep.split()]
    return f"{sql} ON CONFLICT ({', '.join(key.split())}) DO UPDATE SET {', '.join(sets)}"


_TERMINAL_SQL = "('Filled', 'Cancelled', 'ApiCancelled', 'Inactive')"
#: The status guard of OrderRecord: final stays final (Filled may replace another final
#: status), slob's own Intent/Sent never replace what TWS said.
_STATUS_GUARD = f"""status = CASE
    WHEN excluded.status = '' OR orders.status = 'Filled' THEN orders.status
    WHEN orders.status IN {_TERMINAL_SQL} AND excluded.status != 'Filled' THEN orders.status
    WHEN excluded.status IN ('Intent', 'Sent') AND orders.status NOT IN ('Intent', 'Sent', '')
        THEN orders.status
    ELSE excluded.status END"""
_ORDER_COLUMNS = ("order_id perm_id setup_id parent_id action order_type quantity limit_price stop_price"
                  " status created_ns updated_ns details con_id contract role tif oca_group transmit filled"
                  " avg_fill_price")


def _order_upsert() -> str:
    cols = _ORDER_COLUMNS.split()
    coalesce = "perm_id setup_id parent_id limit_price stop_price con_id contract role tif oca_group transmit".split()
    sets = [_STATUS_GUARD]
    for c in cols:
        if c in ("order_id", "created_ns", "status"):
            continue
        if c in coalesce:
            sets.append(f"{c} = coalesce(excluded.{c}, orders.{c})")
        elif c in ("filled", "avg_fill_price"):
            sets.append(f"{c} = coalesce(excluded.{c}, orders.{c})")
        else:
            sets.append(f"{c} = excluded.{c}")
    return (f"INSERT INTO orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT (order_id) DO UPDATE SET {', '.join(sets)}")


def _order_status_upsert() -> str:
    cols = ("order_id perm_id setup_id parent_id action order_type quantity status created_ns updated_ns"
            " details con_id contract filled avg_fill_price").split()
    sets = [
        _STATUS_GUARD,
        "updated_ns = max(excluded.updated_ns, orders.updated_ns)",
        "perm_id = coalesce(excluded.perm_id, orders.perm_id)",
        "setup_id = coalesce(orders.setup_id, excluded.setup_id)",
        "parent_id = coalesce(orders.parent_id, excluded.parent_id)",
        "con_id = coalesce(orders.con_id, excluded.con_id)",
        "contract = coalesce(orders.contract, excluded.contract)",
        "action = CASE WHEN orders.action = '' THEN excluded.action ELSE orders.action END",
        "order_type = CASE WHEN orders.order_type = '' THEN excluded.order_type ELSE orders.order_type END",
        "quantity = CASE WHEN orders.quantity = 0 THEN excluded.quantity ELSE orders.quantity END",
        """filled = CASE WHEN excluded.filled IS NULL THEN orders.filled WHEN orders.filled IS NULL
            THEN excluded.filled ELSE max(orders.filled, excluded.filled) END""",
        "avg_fill_price = coalesce(excluded.avg_fill_price, orders.avg_fill_price)",
    ]
    return (f"INSERT INTO orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT (order_id) DO UPDATE SET {', '.join(sets)}")


def _opt_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


SQL = {
    "tick": _insert("ticks", "symbol contract ts_ns price size exchange delayed received_ns"),
    "candle": _insert("candles", "symbol contract interval_seconds start_ns open high low close"
                      " volume trades filled source", key="symbol interval_seconds start_ns"),
    # a history candle that leaves a live candle with trades alone (CandleRecord.keep_live)
    "candle_keep_live": _insert("candles", "symbol contract interval_seconds start_ns open high low close"
                                " volume trades filled source", key="symbol interval_seconds start_ns")
    + " WHERE candles.source != 'live' OR candles.filled = 1",
    "history_span": _insert("history_spans", "symbol interval_seconds start_ns end_ns fetched_ns",
                            key="symbol interval_seconds start_ns")
    + " WHERE excluded.end_ns >= history_spans.end_ns",
    "event": _insert("connection_events", "ts_ns kind cause start_ns end_ns data_lost symbol"
                     " old_contract new_contract"),
    # a gap is one row: stored again (filled, after the engine filled it) it only gains the flag
    "gap": "INSERT INTO connection_events (ts_ns, kind, cause, start_ns, end_ns, filled) VALUES (?, 'gap', ?, ?, ?, ?)"
           " ON CONFLICT (start_ns, end_ns) WHERE kind = 'gap'"
           " DO UPDATE SET filled = max(connection_events.filled, excluded.filled)",
    "setup": _insert("setups", "id symbol direction state created_ns updated_ns details",
                     key="id", keep="created_ns"),
    "order": _order_upsert(),
    "order_status": _order_status_upsert(),
    "run_started": "INSERT OR IGNORE INTO runs (id, started_ns, pid) VALUES (?, ?, ?)",
    "run_stopped": "UPDATE runs SET stopped_ns = ? WHERE id = ?",
    "fill": _insert("fills", "exec_id order_id time_ns price quantity commission realized_pnl",
                    key="exec_id", coalesce="commission realized_pnl"),
}
Row = tuple[Any, ...]


def _candle_row(c: Candle, source: str) -> Row:
    return (c.symbol, c.contract, c.interval_seconds, to_ns(c.start), c.open, c.high, c.low, c.close, c.volume,
            c.trades, int(c.filled), source)


ROWS: dict[type, Callable[[Any], tuple[str, Row]]] = {
    Tick: lambda t: ("tick", (t.symbol, t.contract, to_ns(t.timestamp), t.price, t.size,
                              t.exchange, int(t.delayed), t.received_ns)),
    Candle: lambda c: ("candle", _candle_row(c, "live")),
    CandleRecord: lambda r: ("candle_keep_live" if r.keep_live else "candle", _candle_row(r.candle, r.source)),
    HistorySpan: lambda h: ("history_span", (h.symbol, h.interval_seconds, to_ns(h.start), to_ns(h.end),
                                             to_ns(h.fetched))),
    ConnectionLost: lambda e: ("event", (to_ns(e.at), "lost", e.cause) + (None,) * 6),
    ConnectionRestored: lambda e: ("event", (to_ns(e.at), "restored", e.cause, None, None,
                                             int(e.data_lost), None, None, None)),
    Gap: lambda g: ("gap", (to_ns(g.end), g.cause, to_ns(g.start), to_ns(g.end), int(g.filled))),
    ContractRolled: lambda r: ("event", (to_ns(r.at), "roll", "", None, None, None, r.symbol,
                                         r.old, r.new)),
    ErrorReported: lambda e: ("event", (to_ns(dt.datetime.now(UTC)), "error",
                                        f"{e.where}: {type(e.error).__name__}: {e.error}")
                              + (None,) * 6),
    SetupRecord: lambda s: ("setup", (s.id, s.symbol, s.direction, s.state, to_ns(s.created),
                                      to_ns(s.updated), _json(s.details))),
    OrderRecord: lambda o: ("order", (o.order_id, o.perm_id, o.setup_id, o.parent_id, o.action,
                                      o.order_type, o.quantity, o.limit_price, o.stop_price,
                                      o.status, to_ns(o.created), to_ns(o.updated),
                                      _json(o.details), o.con_id, o.contract, o.role, o.tif,
                                      o.oca_group, _opt_bool(o.transmit), o.filled,
                                      o.avg_fill_price)),
    OrderStatusRecord: lambda o: ("order_status", (o.order_id, o.perm_id, o.setup_id, o.parent_id,
                                                   o.action, o.order_type, o.quantity, o.status,
                                                   to_ns(o.updated), to_ns(o.updated), "{}", o.con_id,
                                                   o.contract, o.filled, o.avg_fill_price)),
    RunStarted: lambda r: ("run_started", (r.run_id, to_ns(r.at), r.pid)),
    RunStopped: lambda r: ("run_stopped", (to_ns(r.at), r.run_id)),
    FillRecord: lambda f: ("fill", (f.exec_id, f.order_id, to_ns(f.time), f.price, f.quantity,
                                    f.commission, f.realized_pnl)),
}


def event_from_row(row: sqlite3.Row) -> ConnectionEvent:
    at, kind, cause = from_ns(row["ts_ns"]), row["kind"], row["cause"]
    if kind == "lost":
        return ConnectionLost(at, cause)
    if kind == "restored":
        return ConnectionRestored(at, cause, bool(row["data_lost"]))
    if kind == "gap":
        return Gap(from_ns(row["start_ns"]), from_ns(row["end_ns"]), cause, filled=bool(row["filled"]))
    if kind == "roll":
        return ContractRolled(row["symbol"], row["old_contract"], row["new_contract"], at)
    return ErrorEvent(at, cause)
