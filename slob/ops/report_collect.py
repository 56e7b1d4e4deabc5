"""What the report reads from the store: :func:`collect` gives
:func:`slob.ops.report.build_report` its :class:`~slob.ops.report.ReportInput`.

Ticks and candles are counted per minute in SQLite on a read-only connection (a day of NQ
is too many ticks to load as records); connection events, setups, orders and fills come
from the :class:`~slob.store.store.Store`. Used by ``slob report`` and by the research
comparisons (:mod:`slob.research.compare`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path

from slob.ops.report import ReportInput, day_bounds
from slob.store.store import Store

__all__ = ["collect"]

UTC = dt.timezone.utc
_NS_PER_MINUTE = 60_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
#: How far before the range connection events are read (an outage may start earlier).
_EVENT_LOOKBACK = dt.timedelta(days=7)


def collect(store: Store, first: dt.date, last: dt.date, now: dt.datetime) -> ReportInput:
    """What :func:`slob.ops.report.build_report` needs for trading days ``first`` .. ``last``,
    read from ``store``. Call ``store.flush()`` first to include records still queued."""
    start, end = day_bounds(first)[0], day_bounds(last)[1]
    return ReportInput(
        first=first, last=last, now=now,
        tick_minutes=_tick_minutes(store.path, start, end),
        candle_minutes=_candle_minutes(store.path, start, end),
        events=store.connection_events(start - _EVENT_LOOKBACK),
        setups=store.setups(), orders=store.orders(), fills=store.fills(),
    )


def _ns(t: dt.datetime) -> int:
    return (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _tick_minutes(path: Path, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Ticks per minute (minutes since the epoch) with exchange time in [start, end).
    Aggregated in SQLite, per symbol so that the (symbol, ts_ns) index serves the range:
    a day of NQ is hundreds of thousands of ticks, too many to load as records."""
    counts: dict[int, int] = {}
    with closing(_read_only(path)) as conn:
        symbols = [row[0] for row in conn.execute(
            "WITH RECURSIVE s(symbol) AS (SELECT min(symbol) FROM ticks UNION ALL "
            "SELECT (SELECT min(symbol) FROM ticks WHERE symbol > s.symbol) FROM s WHERE s.symbol IS NOT NULL) "
            "SELECT symbol FROM s WHERE symbol IS NOT NULL")]
        for symbol in symbols:
            for minute, n in conn.execute(
                    "SELECT ts_ns / ?, count(*) FROM ticks WHERE symbol = ? AND ts_ns >= ? AND ts_ns < ? "
                    "GROUP BY 1", (_NS_PER_MINUTE, symbol, _ns(start), _ns(end))):
                counts[int(minute)] = counts.get(int(minute), 0) + int(n)
    return counts


def _candle_minutes(path: Path, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Trades per minute of the stored 1-minute candles starting in [start, end) (0 for a
    flat candle the engine filled in), all symbols together."""
    with closing(_read_only(path)) as conn:
        rows = conn.execute("SELECT start_ns / ?, sum(trades) FROM candles WHERE interval_seconds = 60 "
                            "AND start_ns >= ? AND start_ns < ? GROUP BY 1",
                            (_NS_PER_MINUTE, _ns(start), _ns(end))).fetchall()
    return {int(minute): int(n) for minute, n in rows}
