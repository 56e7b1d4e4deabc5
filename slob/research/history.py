"""``--source ib``: 1-minute candles from TWS's historical data, cached in the store.

The days are downloaded with ``slob history``'s resumable :func:`~slob.ops.history.download`
(IB's historical pacing, every page written down with its bars, live candles never
replaced), then read back from the store like any stored candles: a second backtest of
the same days asks TWS for nothing. Historical requests place no orders, so any TWS port
may be asked. Progress lines go to standard error. IB leaves out the bars of minutes
without trades; they are filled flat, as the live engine does
(:func:`~slob.research.data.fill_quiet_minutes`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from slob.ib.errors import SlobError
from slob.model import Candle
from slob.ops.report import day_bounds
from slob.research.data import fill_quiet_minutes, store_candles

__all__ = ["IbSource", "ib_candles"]


@dataclass(frozen=True, slots=True)
class IbSource:
    """Where TWS is, for ``--source ib`` (:mod:`slob.research.sources` re-exports it)."""

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 71


def ib_candles(db: Path, symbol: str, first: dt.date, last: dt.date, ib: IbSource) -> list[Candle]:
    """The 1-minute candles of CME trading days ``first`` .. ``last`` from TWS at
    ``ib``, through the store ``db`` (created if missing)."""
    from slob.ops.history import download
    from slob.config.ib_config import IBConfig
    from slob.ib.history import bar_size
    from slob.store.store import Store

    start, end = day_bounds(first)[0], day_bounds(last)[1]
    config = IBConfig(host=ib.host, port=ib.port, client_id=ib.client_id, paper_trading=False, allow_live=True,
                      max_reconnect_attempts=0)
    with Store(db) as store:
        asyncio.run(download(symbol, start, end, bar=bar_size("1 min"), config=config, store=store, out=sys.stderr))
    candles = fill_quiet_minutes(list(store_candles(db, symbol, start, end)))
    if not candles:
        raise SlobError(f"TWS at {ib.host}:{ib.port} has no {symbol} 1-minute bars for trading days {first} .. {last}")
    return candles
