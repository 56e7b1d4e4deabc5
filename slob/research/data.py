"""Where a backtest's candles and trades come from: the store, or a CSV file.

* **The store** (:func:`store_candles`): the 1-minute candles the engine recorded -- the
  very candles its tracker saw, flat ``filled`` minutes included -- read in one pass
  through a read-only connection, so a year of minutes loads in about a second.
  :class:`StoreTicks` answers "the trades of this minute" for the fill model, which uses
  them only when they are complete (as many as the candle counted).
* **A CSV file** (:func:`csv_candles`): one row per minute with a start time (``start``,
  ``time``, ``timestamp``, ``datetime`` or ``date``: ISO 8601, naive meaning UTC, or Unix
  seconds) and ``open,high,low,close``; optional ``volume``, ``trades``, ``contract``,
  ``symbol``, ``interval_seconds``, ``filled``. ``slob export candles --format csv`` writes
  exactly this shape. Without a ``contract`` column each row gets the front month of the
  live roll rule (:func:`front_month`).

Time ranges are ``[start, end)`` in UTC; the CLI turns ``--from/--to`` CME trading days
into them with :func:`slob.ops.report.day_bounds`.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Iterator, Sequence

from slob.ib.errors import ConfigError, SlobError
from slob.market.expiry_book import roll_moment
from slob.store.schema import from_ns, to_ns
from slob.model import Candle, fast_constructor
from slob.research.fills import TickPrice

__all__ = ["StoreTicks", "csv_candles", "fill_quiet_minutes", "front_month", "read_only", "store_candles",
           "store_symbols"]

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
_TIME_COLUMNS = ("start", "time", "timestamp", "datetime", "date")
_make_candle = fast_constructor(Candle)


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store at ``path`` (SlobError if there is none)."""
    if not path.is_file():
        raise SlobError(f"no slob database at {path}; record with `slob run` (or `slob demo --db {path}`) first, "
                        "or point --db at the store it wrote")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA query_only = ON")
    return conn


def store_symbols(path: Path) -> list[str]:
    """The symbols with 1-minute candles in the store."""
    with closing(read_only(path)) as conn:
        return [r[0] for r in conn.execute(
            "SELECT DISTINCT symbol FROM candles WHERE interval_seconds = 60 ORDER BY symbol")]


def store_candles(path: Path, symbol: str, start: dt.datetime | None = None,
                  end: dt.datetime | None = None) -> Iterator[Candle]:
    """The stored 1-minute candles of ``symbol`` starting in ``[start, end)``, in order."""
    lo = to_ns(start) if start is not None else -(2**62)
    hi = to_ns(end) if end is not None else 2**62
    with closing(read_only(path)) as conn:
        rows = conn.execute(
            "SELECT symbol, contract, start_ns, open, high, low, close, volume, trades, filled FROM candles "
            "WHERE symbol = ? AND interval_seconds = 60 AND start_ns >= ? AND start_ns < ? ORDER BY start_ns",
            (symbol, lo, hi))
        for sym, contract, start_ns, o, h, low, c, volume, trades, filled in rows:
            yield _make_candle(sym, contract, 60, from_ns(start_ns), o, h, low, c, volume, trades, bool(filled))


class StoreTicks:
    """The stored trades of one minute (see the module docstring). Opens its connection
    on first use; :meth:`close` (or ``with``) releases it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def __call__(self, symbol: str, contract: str, start: dt.datetime, end: dt.datetime) -> Sequence[TickPrice]:
        if self._conn is None:
            self._conn = read_only(self.path)
        return [(int(ns), float(price)) for ns, price in self._conn.execute(
            "SELECT ts_ns, price FROM ticks WHERE symbol = ? AND ts_ns >= ? AND ts_ns < ? AND contract = ? "
            "ORDER BY ts_ns, id", (symbol, to_ns(start), to_ns(end), contract))]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "StoreTicks":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the roll rule -------------------------------------------------------------------------


class _Rolls:
    """Quarterly front months of one root by the live roll rule, cached."""

    def __init__(self, root: str, roll_days: int) -> None:
        self.root, self.roll_days = root, roll_days
        self._moments: list[dt.datetime] = []
        self._symbols: list[str] = []
        self._span: tuple[int, int] | None = None

    def at(self, t: dt.datetime) -> str:
        year = t.year
        if self._span is None or not self._span[0] < year < self._span[1]:
            self._build(year - 2, year + 2)
        i = bisect.bisect_right(self._moments, t)
        return self._symbols[i]

    def _build(self, first: int, last: int) -> None:
        from slob.testing.futures import FUTURES, FutureContract

        spec = FUTURES.get(self.root)
        if spec is None:
            raise ConfigError(f"no roll rule for {self.root!r} (known roots: {', '.join(sorted(FUTURES))}); "
                              "give the CSV a contract column")
        moments, symbols = [], []
        for year in range(first, last + 1):
            for month in (3, 6, 9, 12):
                c = FutureContract(spec, year, month)
                moments.append(roll_moment(c.last_trade_moment, self.roll_days).astimezone(UTC))
                symbols.append(c.local_symbol)
        self._moments, self._symbols, self._span = moments, symbols, (first, last)


_ROLLS: dict[tuple[str, int], _Rolls] = {}


def front_month(root: str, t: dt.datetime, roll_days: int = 8) -> str:
    """The local symbol (``NQH5``) of ``root``'s front month at ``t`` by the live roll
    rule: quarterly expiries on the third Friday, rolled ``roll_days`` calendar days
    before, at the open of that CME trading day (DESIGN §5)."""
    rolls = _ROLLS.get((root.upper(), roll_days))
    if rolls is None:
        rolls = _ROLLS[(root.upper(), roll_days)] = _Rolls(root.upper(), roll_days)
    return rolls.at(t)


# -- CSV -----------------------------------------------------------------------------------


def _parse_time(text: str, where: str) -> dt.datetime:
    text = text.strip()
    try:
        return _EPOCH + dt.timedelta(seconds=float(text))
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is neither an ISO 8601 time (2025-03-05T14:30:00Z) nor Unix "
                          "seconds") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def csv_candles(path: Path, symbol: str = "NQ", start: dt.datetime | None = None,
                end: dt.datetime | None = None, *, roll_days: int = 8) -> list[Candle]:
    """The 1-minute candles of ``symbol`` in the CSV file ``path`` (see the module
    docstring) starting in ``[start, end)``, sorted by time. Rows of another symbol (when
    the file has a ``symbol`` column) or another interval are skipped."""
    if not path.is_file():
        raise ConfigError(f"no CSV file at {path}")
    out: list[Candle] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [name.strip().lower() for name in reader.fieldnames or ()]
        reader.fieldnames = fields
        time_column = next((c for c in _TIME_COLUMNS if c in fields), None)
        missing = [c for c in ("open", "high", "low", "close") if c not in fields]
        if time_column is None or missing:
            raise ConfigError(
                f"{path}: a candle CSV needs a time column ({', '.join(_TIME_COLUMNS)}) and open,high,low,close; "
                f"its header is {','.join(fields) or '(empty)'}")
        want = symbol.upper()
        for n, row in enumerate(reader, start=2):
            where = f"{path}:{n}"
            if row.get("symbol") and row["symbol"].strip().upper() != want:
                continue
            if row.get("interval_seconds") and int(float(row["interval_seconds"])) != 60:
                continue
            t = _parse_time(row[time_column] or "", where)
            if (start is not None and t < start) or (end is not None and t >= end):
                continue
            try:
                o, h, low, c = (float(row[k]) for k in ("open", "high", "low", "close"))
                volume = float(row.get("volume") or 0.0)
                trades = int(float(row.get("trades") or 0))
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if not low <= min(o, c) <= max(o, c) <= h:
                raise ConfigError(f"{where}: not a candle (need low <= open, close <= high): "
                                  f"open {o} high {h} low {low} close {c}")
            contract = (row.get("contract") or "").strip() or front_month(want, t, roll_days)
            filled = (row.get("filled") or "").strip().lower() in ("1", "true", "yes")
            out.append(_make_candle(want, contract, 60, t, o, h, low, c, volume, trades, filled))
    out.sort(key=lambda c: c.start)
    for a, b in zip(out, out[1:]):
        if a.start == b.start:
            raise ConfigError(f"{path}: two candles start at {a.start.isoformat()}; one row per minute")
    return out


def fill_quiet_minutes(candles: Sequence[Candle]) -> list[Candle]:
    """``candles`` with the engine's fill policy applied (slob.market.candle_aggregator): a
    minute inside CME Globex hours without a candle becomes a flat ``filled`` candle at the
    previous close, of the previous candle's contract. IB's historical bars leave out
    minutes without trades, where the live engine writes flat candles; without them the
    tracker would see missing minutes (DATA_GAP) that live did not."""
    from slob.market.sessions import CmeHours

    is_open = CmeHours.default().is_open
    minute = dt.timedelta(minutes=1)
    out: list[Candle] = []
    for c in candles:
        if out:
            last = out[-1]
            t = last.end
            while t < c.start:
                if is_open(t):
                    out.append(_make_candle(last.symbol, last.contract, 60, t, last.close, last.close, last.close,
                                            last.close, 0.0, 0, True))
                t += minute
        out.append(c)
    return out
