"""`slob history SYMBOL --from --to`: IB's historical bars into the store.

Resumable: every page downloaded is written down in the store (``history_spans``) with
its bars, a day with no trades included, so a second run over the same range requests
only what is not there yet -- nothing, if the first run finished. Pacing-aware: requests
go through IB's historical pacing (:mod:`slob.ib.history_pacing`); the plan line says the
least time that takes. History never replaces a live candle that saw trades
(``CandleRecord(keep_live=True)``). A run that stops half-way (Ctrl-C, a lost connection,
a refusal) keeps what it stored; run it again to go on.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from slob.commands.common import EXIT_OK, when
from slob.ib.errors import ConfigError
from slob.ib.history import BarSize, bar_size
from slob.ops.history import Downloaded as Downloaded
from slob.ops.history import download as download
from slob.ops.history import write_csv as write_csv


__all__ = ["Downloaded", "download", "write_csv"]

NAME = "history"
HELP = ("download IB's historical bars into the store: resumable (stored spans are not asked again), "
        "paced by IB's historical rules, with a progress line; optional CSV export")



def _bar(text: str) -> BarSize:
    try:
        return bar_size(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("symbol", help="NQ (the front month at each moment, across rolls), or one contract: NQH5, NQM25")
    p.add_argument("--from", dest="start", type=when, required=True, metavar="WHEN",
                   help="start, ISO (2025-03-03 or 2025-03-03T14:30Z; no zone: UTC)")
    p.add_argument("--to", dest="end", type=when, default=None, metavar="WHEN",
                   help="end, exclusive (default: now, by TWS's clock)")
    p.add_argument("--bar", type=_bar, default=bar_size("1 min"), metavar="SIZE",
                   help="bar size: 1min (default), 5min, 30s, 1h, 1d or IB's own '1 min' ...")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE",
                   help="also write the range's stored candles to FILE (CSV: start, contract, OHLC, volume, "
                        "trades, source)")
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help="the store file (default: $SLOB_DATA_DIR/slob.sqlite3, else ~/.local/share/slob/)")
    p.add_argument("--host", default="127.0.0.1", help="TWS / IB Gateway host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="TWS / IB Gateway port (default 7497, TWS paper)")
    p.add_argument("--client-id", type=int, default=96, help="API client id (default 96)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for each historical answer (default 60)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.config.ib_config import IBConfig
    from slob.live.ib_history import HistorySettings
    from slob.store.store import Store, default_db_path

    if args.end is not None and args.end <= args.start:
        raise ConfigError("--from must be before --to")
    # Read-only: historical requests place no orders, so any port (paper or live) may be asked.
    config = IBConfig(host=args.host, port=args.port, client_id=args.client_id, paper_trading=False,
                      allow_live=True, max_reconnect_attempts=0)
    settings = HistorySettings(timeout_seconds=args.timeout)
    from slob.market.symbols import parse_symbol

    label = parse_symbol(args.symbol).text.upper()
    with Store(args.db or default_db_path()) as store:
        try:
            result = asyncio.run(download(args.symbol, args.start, args.end, bar=args.bar, config=config,
                                          store=store, out=out, settings=settings))
        except KeyboardInterrupt:
            print("\nslob history: interrupted; what was stored is kept -- run the same command to go on",
                  file=sys.stderr)
            raise
        print(f"stored {result.bars:,} bars from {result.pages} request(s) into {store.path}"
              + (f"; {result.waited_seconds:.0f} s waited for IB's pacing" if result.waited_seconds >= 1 else ""),
              file=out)
        if args.csv is not None:
            rows = write_csv(store, args.csv, label, args.bar, result.start, result.end)
            print(f"wrote {rows:,} candles to {args.csv}", file=out)
    return EXIT_OK
