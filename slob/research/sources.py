"""Choosing a backtest's candles: ``store``, ``ib`` or a CSV file, over CME trading days.

``--from/--to`` are CME trading days (17:00 Chicago to 17:00 Chicago, as ``slob report``
counts them); either may be left out: the data's first or last day is used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from slob.ib.errors import ConfigError, SlobError
from slob.store.store import default_db_path
from slob.model import Candle
from slob.ops.report import day_bounds
from slob.research.backtest import Ticks
from slob.research.data import StoreTicks, csv_candles, store_candles
from slob.research.history import IbSource, ib_candles

__all__ = ["IbSource", "Loaded", "load", "store_path"]


@dataclass
class Loaded:
    """The candles chosen, the trades look-up (store only) and where they came from."""

    candles: list[Candle]
    description: str
    first: dt.date | None
    last: dt.date | None
    ticks: Ticks | None = None
    db: Path | None = None
    _close: Callable[[], None] = field(default=lambda: None)

    def close(self) -> None:
        self._close()

    def days(self) -> list[dt.date] | None:
        """The weekdays of --from..--to when both were given; None: the data's days."""
        if self.first is None or self.last is None:
            return None
        out, day = [], self.first
        while day <= self.last:
            if day.weekday() < 5:
                out.append(day)
            day += dt.timedelta(days=1)
        return out


def store_path(db: Path | None, data_dir: Path | None) -> Path:
    path = Path(db) if db is not None else default_db_path(data_dir)
    if path.is_dir():
        raise SlobError(f"{path} is a directory, not a slob database: pass it as --data-dir {path}, "
                        f"or --db {path / 'slob.sqlite3'}")
    return path


def _range(first: dt.date | None, last: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    if first is not None and last is None:
        last = first
    return (day_bounds(first)[0] if first else None, day_bounds(last)[1] if last else None)


def load(source: str, *, symbol: str = "NQ", first: dt.date | None = None, last: dt.date | None = None,
         db: Path | None = None, data_dir: Path | None = None, need_ticks: bool = True,
         ib: IbSource | None = None) -> Loaded:
    """The candles of ``source`` for trading days ``first`` .. ``last``."""
    symbol = symbol.upper()
    if first is not None and last is None:
        last = first
    start, end = _range(first, last)
    if source == "store":
        path = store_path(db, data_dir)
        candles = list(store_candles(path, symbol, start, end))
        if not candles:
            raise SlobError(_no_candles(symbol, path, first, last))
        ticks = StoreTicks(path) if need_ticks else None
        return Loaded(candles, f"{symbol} from the store {path}", first, last, ticks, path,
                      ticks.close if ticks is not None else (lambda: None))
    if source == "ib":
        path = store_path(db, data_dir)
        if first is None or last is None:
            raise ConfigError("--source ib needs --from (and --to): the days to request from TWS")
        candles = ib_candles(path, symbol, first, last, ib or IbSource())
        ticks = StoreTicks(path) if need_ticks else None
        return Loaded(candles, f"{symbol} from IB's history (cached in {path})", first, last, ticks, path,
                      ticks.close if ticks is not None else (lambda: None))
    path = Path(source)
    if path.suffix.lower() != ".csv" and not path.is_file():
        raise ConfigError(f"--source {source!r}: use store, ib, or the path of a CSV file of 1-minute candles")
    candles = csv_candles(path, symbol, start, end)
    if not candles:
        raise SlobError(f"no {symbol} 1-minute candles in {path}"
                        + (f" for trading days {first} .. {last}" if first else ""))
    return Loaded(candles, f"{symbol} from {path}", first, last)


def _no_candles(symbol: str, path: Path, first: dt.date | None, last: dt.date | None) -> str:
    from slob.research.data import store_symbols

    if not path.is_file():
        return (f"no slob database at {path}; record with `slob run` (or `slob demo --db {path}`) first, or point "
                "--db at the store it wrote")
    held = store_symbols(path)
    span = f" for trading days {first} .. {last}" if first else ""
    return (f"no {symbol} 1-minute candles in {path}{span} (it holds candles of "
            f"{', '.join(held) or 'no symbol'}); choose --from/--to/--symbol, or --source ib / a CSV file")


def days_of(candles: Sequence[Candle]) -> list[dt.date]:
    """The CME trading days the candles touch."""
    from slob.execution.daily_pnl import trading_day

    return sorted({trading_day(c.start) for c in candles})
