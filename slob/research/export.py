"""The store's tables as rows, CSV, Parquet, or a pandas / polars data frame -- without
writing SQL.

``ticks``, ``candles``, ``trades`` (closed paper trades, as ``slob report`` computes them)
and ``setups``, each over ``[start, end)`` (UTC; the CLI turns CME trading days into it).
Times are tz-aware UTC datetimes in frames and Parquet (``timestamp[us, UTC]``) and ISO 8601
(``...Z``) in CSV; money in USD; prices as stored.

Frames::

    from slob.research import frame
    candles = frame("candles", db="slob.sqlite3", first="2025-03-05", last="2025-03-06")  # pandas
    ticks = frame("ticks", db="slob.sqlite3", library="polars")

Parquet is written with pyarrow (the ``parquet`` extra), frames need pandas or polars
(the ``frames`` extra installs pandas); both are imported only when used. The candle CSV is
what ``slob backtest --source FILE.csv`` reads back.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import json
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from slob.ib.errors import ConfigError, SlobError
from slob.store.schema import from_ns, to_ns
from slob.research.data import read_only

__all__ = ["COLUMNS", "TABLES", "frame", "rows", "write_csv", "write_parquet"]

TABLES = ("ticks", "candles", "trades", "setups")
COLUMNS: dict[str, tuple[str, ...]] = {
    "ticks": ("symbol", "contract", "time", "price", "size", "exchange", "delayed"),
    "candles": ("symbol", "contract", "interval_seconds", "start", "open", "high", "low", "close", "volume", "trades",
                "filled"),
    "trades": ("setup_id", "symbol", "direction", "quantity", "entry_time", "entry_price", "exit_time", "exit_price",
               "commission", "pnl", "pnl_source"),
    "setups": ("id", "symbol", "direction", "state", "created", "updated", "details"),
}
_TIME_COLUMNS = {"time", "start", "entry_time", "exit_time", "created", "updated"}
_BATCH = 100_000
UTC = dt.timezone.utc


def _bounds(start: dt.datetime | None, end: dt.datetime | None) -> tuple[int, int]:
    return (to_ns(start) if start is not None else -(2**62), to_ns(end) if end is not None else 2**62)


def rows(db: Path, table: str, start: dt.datetime | None = None, end: dt.datetime | None = None, *,
         symbol: str | None = None, interval: int | None = 60) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` (see :data:`COLUMNS`) in ``[start, end)``, oldest first.
    ``interval``: candles of that many seconds (None: all intervals)."""
    if table not in TABLES:
        raise ConfigError(f"no table {table!r} to export; choose one of {', '.join(TABLES)}")
    lo, hi = _bounds(start, end)
    if table == "trades":
        yield from _trades(db, start, end, symbol)
        return
    with closing(read_only(db)) as conn:
        if table == "ticks":
            sql = ("SELECT symbol, contract, ts_ns, price, size, exchange, delayed FROM ticks WHERE ts_ns >= ? "
                   "AND ts_ns < ?" + (" AND symbol = ?" if symbol else "") + " ORDER BY ts_ns, id")
            for sym, contract, ns, price, size, exchange, delayed in conn.execute(
                    sql, (lo, hi, symbol) if symbol else (lo, hi)):
                yield sym, contract, from_ns(ns), price, size, exchange, bool(delayed)
        elif table == "candles":
            where = ["start_ns >= ?", "start_ns < ?"]
            params: list[Any] = [lo, hi]
            if symbol:
                where.append("symbol = ?")
                params.append(symbol)
            if interval is not None:
                where.append("interval_seconds = ?")
                params.append(interval)
            for r in conn.execute(
                    "SELECT symbol, contract, interval_seconds, start_ns, open, high, low, close, volume, trades, "
                    f"filled FROM candles WHERE {' AND '.join(where)} ORDER BY start_ns, symbol, interval_seconds",
                    params):
                yield r[0], r[1], r[2], from_ns(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], bool(r[10])
        else:
            sql = ("SELECT id, symbol, direction, state, created_ns, updated_ns, details FROM setups "
                   "WHERE created_ns >= ? AND created_ns < ?" + (" AND symbol = ?" if symbol else "")
                   + " ORDER BY created_ns, id")
            for sid, sym, direction, state, created, updated, details in conn.execute(
                    sql, (lo, hi, symbol) if symbol else (lo, hi)):
                yield sid, sym, direction, state, from_ns(created), from_ns(updated), details


def _trades(db: Path, start: dt.datetime | None, end: dt.datetime | None,
            symbol: str | None) -> Iterator[tuple[Any, ...]]:
    from slob.ops.report_collect import collect
    from slob.store.store import Store
    from slob.ops.report import build_report, trading_day

    with Store(db) as store:
        fills = store.fills()
        if not fills:
            return
        first = trading_day(start) if start is not None else trading_day(min(f.time for f in fills))
        last = trading_day(end - dt.timedelta(microseconds=1)) if end is not None else trading_day(
            max(f.time for f in fills))
        data = collect(store, first, last, dt.datetime.now(UTC))
    for t in build_report(data).total.trades:
        if symbol and t.symbol != symbol:
            continue
        yield (t.setup_id, t.symbol, t.direction, t.quantity, t.entry_time, t.entry_price, t.exit_time, t.exit_price,
               round(t.commission, 6), None if t.pnl is None else round(t.pnl, 6), t.pnl_source)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_csv(table: str, records: Iterator[tuple[Any, ...]], out: TextIO) -> int:
    """``records`` of ``table`` as CSV on ``out``; the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    columns = COLUMNS[table]
    writer.writerow(columns)
    times = [i for i, c in enumerate(columns) if c in _TIME_COLUMNS]
    flags = [i for i, c in enumerate(columns) if c in ("delayed", "filled")]
    n = 0
    for record in records:
        values = list(record)
        for i in times:
            values[i] = _iso(values[i])
        for i in flags:
            values[i] = int(values[i])
        writer.writerow(values)
        n += 1
    return n


def _pyarrow() -> Any:
    try:
        pyarrow = importlib.import_module("pyarrow")
        importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise SlobError("Parquet needs pyarrow, which is in slob's parquet extra: pip install 'slob[parquet]'") from None
    return pyarrow


def _schema(pa: Any, table: str) -> Any:
    types = {"time": pa.timestamp("us", tz="UTC"), "interval_seconds": pa.int64(), "trades": pa.int64(),
             "delayed": pa.bool_(), "filled": pa.bool_(), "quantity": pa.float64()}
    floats = {"price", "size", "open", "high", "low", "close", "volume", "entry_price", "exit_price", "commission",
              "pnl"}
    fields = []
    for c in COLUMNS[table]:
        if c in _TIME_COLUMNS:
            kind = pa.timestamp("us", tz="UTC")
        elif c in floats:
            kind = pa.float64()
        else:
            kind = types.get(c, pa.string())
        fields.append(pa.field(c, kind))
    return pa.schema(fields)


def write_parquet(table: str, records: Iterator[tuple[Any, ...]], path: Path) -> int:
    """``records`` of ``table`` as a Parquet file (pyarrow), written in batches."""
    pa = _pyarrow()
    schema = _schema(pa, table)
    n = 0
    with pa.parquet.ParquetWriter(str(path), schema) as writer:
        while True:
            batch = list(islice(records, _BATCH))
            if not batch and n:
                break
            columns = list(zip(*batch)) if batch else [()] * len(schema)
            writer.write_table(pa.Table.from_arrays(
                [pa.array(list(col), type=f.type) for col, f in zip(columns, schema)], schema=schema))
            n += len(batch)
            if not batch:
                break
    return n


def frame(table: str, db: str | Path | None = None, first: str | dt.date | None = None,
          last: str | dt.date | None = None, *, symbol: str | None = None, interval: int | None = 60,
          library: str = "pandas") -> Any:
    """A pandas (default) or polars data frame of ``table`` for CME trading days
    ``first`` .. ``last`` (``YYYY-MM-DD`` or dates; default: all). ``db``: the store
    (default: the same as ``slob report``'s)."""
    from slob.store.store import default_db_path
    from slob.ops.report import day_bounds

    path = Path(db) if db is not None else default_db_path()
    day1 = dt.date.fromisoformat(first) if isinstance(first, str) else first
    day2 = dt.date.fromisoformat(last) if isinstance(last, str) else last
    if day1 is not None and day2 is None:
        day2 = day1
    start = day_bounds(day1)[0] if day1 is not None else None
    end = day_bounds(day2)[1] if day2 is not None else None
    records: Sequence[tuple[Any, ...]] = list(rows(path, table, start, end, symbol=symbol, interval=interval))
    columns = list(COLUMNS[table])
    if library == "pandas":
        try:
            pandas: Any = importlib.import_module("pandas")
        except ImportError:
            raise SlobError("a pandas frame needs pandas: pip install 'slob[frames]' (or pandas)") from None
        return pandas.DataFrame.from_records(records, columns=columns)
    if library == "polars":
        try:
            polars: Any = importlib.import_module("polars")
        except ImportError:
            raise SlobError("a polars frame needs polars: pip install polars") from None
        data = {c: [r[i] for r in records] for i, c in enumerate(columns)}
        return polars.DataFrame(data)
    raise ConfigError(f"library must be 'pandas' or 'polars', not {library!r}")


def details(text: str) -> dict[str, Any]:
    """A setup row's ``details`` (JSON text) as a dict."""
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
