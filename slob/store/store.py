"""The engine's SQLite store: ticks, candles, setups, orders, fills, connection events.

Why this shape:

* **Off the hot path.** The asyncio loop must never wait on disk. :meth:`Store.add` only
  appends the record to a ``queue.SimpleQueue`` (no conversion, no I/O); a writer thread
  ("slob-store-writer") owns the one write connection, converts records to rows and commits
  them in batches: a batch closes after ``batch_size`` records or ``batch_interval_ms``
  after its first record, whichever comes first, or at a flush/close.
* **Loss bound.** A clean :meth:`Store.close` (or ``with Store(...)``) writes everything.
  On a hard kill (SIGKILL, OOM) only what was not yet committed is lost: the open batch --
  at most ``batch_size`` records, none older than ``batch_interval_ms`` when the writer keeps
  up (defaults: 500 records, 100 ms) -- plus any backlog still queued. Committed batches
  survive a process crash (WAL); with ``synchronous=NORMAL`` an OS crash or power cut may
  also undo the commits since the last WAL checkpoint, never corrupt the file. The queue is
  unbounded: the store never drops a record to keep up (DESIGN §2); :meth:`Store.stats`
  shows the backlog.
* **Trading records go at once.** Setups, orders, order statuses, fills, runs and gaps are
  rare and must not wait for a tick batch: such a record closes its batch on arrival
  ("urgent"), and that batch commits with ``synchronous=FULL`` (fsync), so it also
  survives an OS crash. :meth:`Store.commit` / :meth:`Store.acommit` additionally let the
  caller wait until given records are durable -- the OrderExecutor writes a bracket's
  intent that way before sending its first leg. Ticks and candles stay batched.
* **Readers never block the writer.** WAL lets each query open its own short-lived
  connection; it sees what has been committed (call :meth:`Store.flush` first to include
  everything added so far). Queries also work after :meth:`Store.close`.
* **Versioned schema.** ``PRAGMA user_version`` is the number of :data:`MIGRATIONS` applied;
  opening an older file applies the missing steps in one transaction each, a newer file is
  refused (:class:`StoreVersionError`) rather than half-understood.

Times are stored as integer nanoseconds since the Unix epoch (UTC; exact for datetime's
microseconds, sortable, cheap to index) and read back as tz-aware UTC datetimes. A naive
datetime is rejected. The default file is :func:`default_db_path`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from slob.store.records import (URGENT, CandleRecord, ConnectionEvent, ErrorEvent, FillRecord, HistorySpan,
                                     OrderRecord, OrderStatusRecord, RunRecord, RunStarted, RunStopped,
                                     SetupRecord, StoreClosed, StoreError, StoreRecord, StoreStats,
                                     StoreVersionError)
from slob.store.schema import (MIGRATIONS, ROWS, SCHEMA_VERSION, SQL, TABLES, Row, event_from_row,
                                    from_ns, migrate, to_ns)
from slob.model import Candle, Tick

__all__ = [
    "MIGRATIONS", "SCHEMA_VERSION", "CandleRecord", "ConnectionEvent", "HistorySpan", "ErrorEvent", "FillRecord", "OrderRecord",
    "OrderStatusRecord", "RunRecord", "RunStarted", "RunStopped", "SetupRecord", "Store", "StoreClosed",
    "StoreError", "StoreStats", "StoreVersionError", "default_db_path",
]

log = logging.getLogger("slob.live.store")  # the name it has always logged under
UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_US = dt.timedelta(microseconds=1)
DB_FILENAME = "slob.sqlite3"


def default_db_path(data_dir: Path | None = None) -> Path:
    """Where the store lives: ``data_dir/slob.sqlite3``; without ``data_dir``,
    ``$SLOB_DATA_DIR``, else ``$XDG_DATA_HOME/slob``, else ``~/.local/share/slob`` (XDG's
    default). The directory is created by :class:`Store`, not here."""
    if data_dir is None:
        env = os.environ.get("SLOB_DATA_DIR")
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "share"
        data_dir = Path(env) if env else base / "slob"
    return Path(data_dir).expanduser() / DB_FILENAME


@dataclass(eq=False)
class _Marker:
    """A flush or stop request; resolved once everything queued before it is committed."""

    stop: bool
    future: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)


@dataclass(eq=False)
class _Durable:
    """Records the caller waits for: committed (with fsync) in the batch they close;
    the future fails with StoreError if any of them is rejected."""

    records: tuple[object, ...]
    future: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)


class Store:
    """The SQLite store (see the module docstring for batching, loss bound and threads).

    ``add``/``add_*`` are safe from any thread and never block on I/O. Queries read committed
    data through their own connection. A later issue's record type is stored by registering
    an adapter to one of the record types here: ``store.register(Placed, lambda p:
    OrderRecord(...))`` (adapters run on the writer thread, so they must be pure).
    """

    def __init__(self, path: Path | str | None = None, *, batch_size: int = 500,
                 batch_interval_ms: float = 100.0) -> None:
        if batch_size < 1 or batch_interval_ms <= 0:
            raise ValueError("batch_size must be >= 1 and batch_interval_ms > 0")
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size, self.batch_interval = batch_size, batch_interval_ms / 1000.0
        self._adapters: dict[type, Callable[[Any], Any]] = {t: lambda r: r for t in ROWS}
        self._urgent: set[type] = set(URGENT)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._enqueued = self._written = self._rejected = self._largest = 0
        self._batches = {"size": 0, "interval": 0, "flush": 0, "urgent": 0}
        self._errors: list[str] = []  # not yet reported by a flush/close
        # Opened here (not in the thread) so a bad path or a too-new file raises to the caller.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, self.path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.path} is not a usable slob database ({exc}): move it "
                             "aside or choose another data_dir") from exc
        except BaseException:
            conn.close()
            raise
        self._thread = threading.Thread(target=self._run, args=(conn,), name="slob-store-writer",
                                        daemon=True)  # daemon: a forgotten close cannot hang exit
        self._thread.start()

    # -- writing (any thread) --------------------------------------------------------------
    def register(self, record_type: type, adapter: Callable[[Any], StoreRecord], *, urgent: bool = False) -> None:
        """Accept ``record_type`` in :meth:`add`, stored as whatever ``adapter`` returns;
        ``urgent``: it closes its batch at once and commits with fsync, as trading records do."""
        self._adapters[record_type] = adapter
        if urgent:
            self._urgent.add(record_type)

    def add(self, record: object) -> None:
        """Queue one record for writing: a slob.model record (Tick, Candle -- stored as a
        ``live`` candle --, Gap, ConnectionLost, ConnectionRestored, ContractRolled,
        ErrorReported), a Setup/Order/FillRecord, a CandleRecord (a candle with its source),
        a HistorySpan or a registered type. O(1), no I/O. Raises TypeError, StoreClosed."""
        if type(record) not in self._adapters:
            raise TypeError(f"the store cannot write {type(record).__name__} records")
        with self._lock:
            if self._closed:
                raise StoreClosed(f"store {self.path} is closed")
            self._queue.put(record)
            self._enqueued += 1

    def add_setup(self, **fields: Any) -> None:
        """Keyword form of ``add(SetupRecord(...))``."""
        self.add(SetupRecord(**fields))

    def add_order(self, **fields: Any) -> None:
        """Keyword form of ``add(OrderRecord(...))``."""
        self.add(OrderRecord(**fields))

    def add_fill(self, **fields: Any) -> None:
        """Keyword form of ``add(FillRecord(...))``."""
        self.add(FillRecord(**fields))

    def commit(self, *records: object) -> concurrent.futures.Future[None]:
        """Queue ``records`` to be committed together, at once and with fsync; the future
        resolves when they are durable (StoreError if one was rejected). Never blocks."""
        for record in records:
            if type(record) not in self._adapters:
                raise TypeError(f"the store cannot write {type(record).__name__} records")
        item = _Durable(tuple(records))
        with self._lock:
            if self._closed:
                raise StoreClosed(f"store {self.path} is closed")
            self._queue.put(item)
            self._enqueued += len(records)
        return item.future

    async def acommit(self, *records: object) -> None:
        """:meth:`commit` for the asyncio loop: awaits durability without blocking it."""
        await asyncio.wrap_future(self.commit(*records))

    def _request(self, stop: bool) -> concurrent.futures.Future[None]:
        marker = _Marker(stop)
        with self._lock:
            if self._closed:
                marker.future.set_result(None)  # everything was written by close()
                return marker.future
            self._closed = self._closed or stop
            self._queue.put(marker)
        return marker.future

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record added before this call is committed. Raises StoreError
        naming records rejected since the last flush (they are logged too)."""
        self._request(stop=False).result(timeout)

    async def aflush(self) -> None:
        """:meth:`flush` for the asyncio loop: awaits the writer without blocking the loop."""
        await asyncio.wrap_future(self._request(stop=False))

    def close(self, timeout: float | None = None) -> None:
        """Write everything, stop the writer thread, close its connection. Idempotent."""
        future = self._request(stop=True)
        try:
            future.result(timeout)
        finally:
            self._thread.join(timeout)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def stats(self) -> StoreStats:
        with self._lock:
            b = self._batches
            return StoreStats(self._enqueued, self._written, self._rejected,
                              self._enqueued - self._written - self._rejected, sum(b.values()),
                              b["size"], b["interval"], b["flush"], self._largest, b["urgent"])

    # -- the writer thread -----------------------------------------------------------------
    def _run(self, conn: sqlite3.Connection) -> None:
        stopping = False
        try:
            while not stopping:
                item = self._queue.get()
                batch: list[object] = []
                reason, marker, durable = "flush", None, None
                deadline = time.monotonic() + self.batch_interval
                urgent = self._urgent
                while True:
                    if isinstance(item, _Marker):
                        marker, stopping = item, item.stop
                        break
                    if isinstance(item, _Durable):
                        durable, reason = item, "urgent"
                        batch.extend(item.records)
                        break
                    batch.append(item)
                    if type(item) in urgent:
                        reason = "urgent"
                        break
                    if len(batch) >= self.batch_size:
                        reason = "size"
                        break
                    try:
                        item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        reason = "interval"
                        break
                rejected: set[int] = set()
                if batch:
                    own = {id(r) for r in durable.records} if durable is not None else set()
                    rejected = self._write(conn, batch, reason, own)
                if durable is not None:
                    self._resolve_durable(durable, rejected)
                if marker is not None:
                    self._resolve(marker)
        finally:
            conn.close()
            with self._lock:  # a writer that died must not leave flushers waiting forever
                self._closed = True
            while not self._queue.empty():
                left = self._queue.get_nowait()
                if isinstance(left, (_Marker, _Durable)) and not left.future.done():
                    left.future.set_exception(StoreClosed(f"store {self.path} writer stopped"))

    def _write(self, conn: sqlite3.Connection, batch: list[object], reason: str,
               own: Collection[int] = ()) -> set[int]:
        """Commit ``batch``; returns the ``id()`` of the records that were rejected. Errors
        of ``own`` records are the caller's to report (a commit's future), not a flush's."""
        rows: list[tuple[str, Row, int]] = []
        errors: list[tuple[int, str]] = []
        rejected: set[int] = set()
        for record in batch:
            try:
                stored = self._adapters[type(record)](record)
                kind, row = ROWS[type(stored)](stored)
                rows.append((kind, row, id(record)))
            except Exception as exc:  # a bad record must not take its batch down
                errors.append((id(record), f"{record!r}: {exc}"))
                rejected.add(id(record))
        durable = reason == "urgent"
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            # Grouped by kind for executemany, in the order each kind first appears: an
            # order row is written before a status update of the same order.
            grouped: dict[str, list[Row]] = {}
            for kind, row, _ in rows:
                grouped.setdefault(kind, []).append(row)
            try:
                conn.execute("BEGIN")
                for kind, group in grouped.items():
                    conn.executemany(SQL[kind], group)
                conn.execute("COMMIT")
                written = len(rows)
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                written = 0
                for kind, row, key in rows:  # find the culprits: one transaction per row
                    try:
                        conn.execute(SQL[kind], row)  # autocommit: its own transaction
                        written += 1
                    except sqlite3.Error as exc:
                        errors.append((key, f"{kind} {row!r}: {exc}"))
                        rejected.add(key)
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")
        for _, message in errors:
            log.error("store %s rejected %s", self.path, message)
        with self._lock:
            self._written += written
            self._rejected += len(errors)
            self._batches[reason] += 1
            self._largest = max(self._largest, len(batch))
            self._errors.extend(message for key, message in errors if key not in own)
        return rejected

    def _resolve_durable(self, item: _Durable, rejected: set[int]) -> None:
        bad = [r for r in item.records if id(r) in rejected]
        if bad:
            item.future.set_exception(StoreError(f"{len(bad)} record(s) not stored (see the log): {bad[0]!r}"))
        else:
            item.future.set_result(None)

    def _resolve(self, marker: _Marker) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
            marker.future.set_exception(StoreError(f"{len(errors)} record(s) not stored: {shown}"))
        else:
            marker.future.set_result(None)

    # -- reading (any thread, own short-lived connection) ----------------------------------
    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10.0)) as conn:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only = ON")
            yield conn

    def _select(self, table: str, order: str, time_column: str = "",
                start: dt.datetime | None = None, end: dt.datetime | None = None,
                limit: int | None = None, **equal: Any) -> list[sqlite3.Row]:
        """Rows of ``table`` with ``column = value`` for each non-None ``equal`` item and
        ``start <= time_column < end``, ordered by ``order``."""
        where = [f"{column} = ?" for column, value in equal.items() if value is not None]
        params: list[Any] = [value for value in equal.values() if value is not None]
        for op, bound in ((">=", start), ("<", end)):
            if bound is not None:
                where.append(f"{time_column} {op} ?")
                params.append(to_ns(bound))
        sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY {order}" + (" LIMIT ?" if limit is not None else "")
        with self._read() as conn:
            return conn.execute(sql, params + ([limit] if limit is not None else [])).fetchall()

    def candles(self, symbol: str, interval: int | dt.timedelta, start: dt.datetime | None = None,
                end: dt.datetime | None = None, *, source: str | None = None) -> list[Candle]:
        """Candles of ``symbol`` and ``interval`` (seconds) starting in ``[start, end)``
        (of one ``source``, ``live`` or ``history``, if given)."""
        return [r.candle for r in self.candle_records(symbol, interval, start, end, source=source)]

    def candle_records(self, symbol: str, interval: int | dt.timedelta, start: dt.datetime | None = None,
                       end: dt.datetime | None = None, *, source: str | None = None) -> list[CandleRecord]:
        """:meth:`candles` with where each came from (``CandleRecord.source``)."""
        seconds = int(interval.total_seconds()) if isinstance(interval, dt.timedelta) else interval
        rows = self._select("candles", "start_ns", "start_ns", start, end, symbol=symbol,
                            interval_seconds=seconds, source=source)
        return [CandleRecord(Candle(r["symbol"], r["contract"], r["interval_seconds"], from_ns(r["start_ns"]),
                                    r["open"], r["high"], r["low"], r["close"], r["volume"], r["trades"],
                                    bool(r["filled"])), r["source"]) for r in rows]

    def history_spans(self, symbol: str, interval: int | dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
        """What IB's history covered of ``symbol``'s ``interval`` candles: the downloaded
        spans (:class:`HistorySpan`) merged where they overlap or touch, in time order."""
        seconds = int(interval.total_seconds()) if isinstance(interval, dt.timedelta) else interval
        rows = self._select("history_spans", "start_ns", symbol=symbol, interval_seconds=seconds)
        merged: list[list[int]] = []
        for r in rows:
            if merged and r["start_ns"] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], r["end_ns"])
            else:
                merged.append([r["start_ns"], r["end_ns"]])
        return [(from_ns(a), from_ns(b)) for a, b in merged]

    def ticks(self, symbol: str | None = None, start: dt.datetime | None = None,
              end: dt.datetime | None = None, limit: int | None = None) -> list[Tick]:
        """Ticks (of ``symbol``, if given) with exchange time in ``[start, end)``, in order."""
        rows = self._select("ticks", "ts_ns, id", "ts_ns", start, end, limit, symbol=symbol)
        return [Tick(r["symbol"], r["price"], r["size"], from_ns(r["ts_ns"]), r["exchange"],
                     r["contract"], r["received_ns"], bool(r["delayed"])) for r in rows]

    def connection_events(self, start: dt.datetime | None = None,
                          end: dt.datetime | None = None) -> list[ConnectionEvent]:
        """Losses, restorations, gaps (at their end), rolls and errors, oldest first."""
        rows = self._select("connection_events", "ts_ns, id", "ts_ns", start, end)
        return [event_from_row(r) for r in rows]

    def setups(self, symbol: str | None = None) -> list[SetupRecord]:
        return [SetupRecord(r["id"], r["symbol"], r["direction"], r["state"],
                            from_ns(r["created_ns"]), from_ns(r["updated_ns"]), json.loads(r["details"]))
                for r in self._select("setups", "created_ns, id", symbol=symbol)]

    def orders(self, setup_id: str | None = None) -> list[OrderRecord]:
        return [OrderRecord(r["order_id"], r["setup_id"], r["action"], r["order_type"],
                            r["quantity"], r["status"], from_ns(r["created_ns"]),
                            from_ns(r["updated_ns"]), r["perm_id"], r["parent_id"], r["limit_price"],
                            r["stop_price"], json.loads(r["details"]), r["con_id"], r["contract"],
                            r["role"], r["tif"], r["oca_group"],
                            None if r["transmit"] is None else bool(r["transmit"]), r["filled"],
                            r["avg_fill_price"])
                for r in self._select("orders", "order_id", setup_id=setup_id)]

    def runs(self) -> list[RunRecord]:
        """The engine's runs on this store, oldest first."""
        return [RunRecord(r["id"], from_ns(r["started_ns"]),
                          None if r["stopped_ns"] is None else from_ns(r["stopped_ns"]), r["pid"])
                for r in self._select("runs", "started_ns, id")]

    def last_data_time(self) -> dt.datetime | None:
        """Exchange time of the last market data stored: the last tick, else (ticks not
        stored) the end of the last 1-minute candle with trades; None if there is none."""
        with self._read() as conn:
            ts = conn.execute("SELECT max(ts_ns) FROM ticks").fetchone()[0]
            if ts is None:
                ts = conn.execute("SELECT max(start_ns) + 60000000000 FROM candles "
                                  "WHERE filled = 0 AND interval_seconds = 60").fetchone()[0]
        return None if ts is None else from_ns(int(ts))

    def fills(self, order_id: int | None = None) -> list[FillRecord]:
        return [FillRecord(r["exec_id"], r["order_id"], from_ns(r["time_ns"]), r["price"],
                           r["quantity"], r["commission"], r["realized_pnl"])
                for r in self._select("fills", "time_ns, exec_id", order_id=order_id)]

    def counts(self) -> dict[str, int]:
        """Committed rows per table."""
        with self._read() as conn:
            return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}
