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
import csv
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from slob.commands.common import EXIT_OK, when
from slob.ib.errors import ConfigError
from slob.ib.history import BarSize, bar_size, uncovered

if TYPE_CHECKING:  # imported when the command runs: `slob --help` stays light
    from slob.config.ib_config import IBConfig
    from slob.live.ib_history import HistorySettings, PlannedPage
    from slob.store.store import Store

__all__ = ["Downloaded", "download", "write_csv"]

NAME = "history"
HELP = ("download IB's historical bars into the store: resumable (stored spans are not asked again), "
        "paced by IB's historical rules, with a progress line; optional CSV export")

_UTC = dt.timezone.utc
_BAR_WIDTH = 30


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


@dataclass(frozen=True, slots=True)
class Downloaded:
    """What a run did: pages requested and skipped (already stored), bars stored, seconds
    waited for IB's pacing, and the range asked for (``end`` resolved to TWS's clock)."""

    pages: int
    skipped_spans: int
    bars: int
    waited_seconds: float
    start: dt.datetime
    end: dt.datetime


class _Progress:
    """One line per page, or one line redrawn in place on a terminal."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out, self.total = out, total
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.bars = 0
        self.began = time.monotonic()

    def page(self, number: int, planned: "PlannedPage", bars: int, waited: float) -> None:
        self.bars += bars
        p = planned.page
        what = (f"{planned.local_symbol} {p.start:%Y-%m-%d %H:%M}..{p.end:%Y-%m-%d %H:%M} UTC: {bars:,} bars "
                f"({self.bars:,} in all, {waited:.1f} s waited for pacing)")
        if self.tty:
            done = int(_BAR_WIDTH * number / max(1, self.total))
            print(f"\r[{'#' * done}{'.' * (_BAR_WIDTH - done)}] {number}/{self.total} {what}\x1b[K", end="",
                  file=self.out, flush=True)
        else:
            print(f"page {number}/{self.total}: {what}", file=self.out, flush=True)

    def done(self) -> None:
        if self.tty and self.total:
            print(file=self.out)


async def download(symbol: str, start: dt.datetime, end: dt.datetime | None, *, bar: BarSize, config: "IBConfig",
                   store: "Store", out: TextIO, settings: "HistorySettings | None" = None) -> Downloaded:
    """Download ``[start, end)`` (``end`` None: now) of ``symbol``'s TRADES bars into
    ``store``, skipping what it already covers. Raises only SlobErrors."""
    from slob.ib.history_pacing import pacing_floor_seconds
    from slob.live.ib_ws_fetcher import IBWSFetcher
    from slob.store.store import CandleRecord, HistorySpan
    from slob.market.symbols import parse_symbol

    label = parse_symbol(symbol).text.upper()
    fetcher = IBWSFetcher(config=config)
    service = fetcher.configure_history(settings) if settings is not None else fetcher.history_service
    await fetcher.connect()
    try:
        now = await fetcher.server_time()
        stop = min(end or now, now)
        if stop <= start:
            raise ConfigError(f"--from {start:%Y-%m-%d %H:%M} UTC is not before --to {stop:%Y-%m-%d %H:%M} UTC "
                              "(the end is at most TWS's clock)")
        covered = store.history_spans(label, bar.seconds)
        missing = uncovered(start, stop, covered)
        planned: list[PlannedPage] = []
        for a, b in missing:
            planned += await service.plan(symbol, a, b, bar.name)
        floor = pacing_floor_seconds(len(planned), service.settings.pacing)
        print(f"slob history: {label} {bar.name} bars {start:%Y-%m-%d %H:%M}..{stop:%Y-%m-%d %H:%M} UTC; "
              f"{len(planned)} request(s) to make"
              + (f", {len(covered)} stored span(s) skipped" if covered else "")
              + (f"; IB's pacing makes that at least {floor:.0f} s" if floor >= 1 else ""), file=out, flush=True)
        progress = _Progress(out, len(planned))
        stored = 0
        for number, p in enumerate(planned, 1):
            at = await fetcher.server_time()
            candles = await service.fetch_page(p, bar.name, "TRADES", now=at)
            for c in candles:
                store.add(CandleRecord(c, "history", keep_live=True))
            finished = min(p.page.end, _floor(at, bar.seconds))
            if finished > p.page.start:  # written after its candles: a span stored means its bars are
                store.add(HistorySpan(label, bar.seconds, p.page.start, finished, at))
            stored += len(candles)
            progress.page(number, p, len(candles), service.waited_seconds)
        progress.done()
        await store.aflush()
        return Downloaded(len(planned), len(covered), stored, service.waited_seconds, start, stop)
    finally:
        await fetcher.disconnect()


def _floor(t: dt.datetime, seconds: int) -> dt.datetime:
    epoch = dt.datetime(1970, 1, 1, tzinfo=_UTC)
    s = int((t - epoch).total_seconds())
    return epoch + dt.timedelta(seconds=s - s % seconds)


def write_csv(store: "Store", path: Path, symbol: str, bar: BarSize, start: dt.datetime, end: dt.datetime) -> int:
    """The stored candles of ``[start, end)`` as CSV; returns how many rows were written."""
    records = store.candle_records(symbol, bar.seconds, start, end)
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["start", "symbol", "contract", "interval_seconds", "open", "high", "low", "close",
                             "volume", "trades", "filled", "source"])
            for r in records:
                c = r.candle
                writer.writerow([c.start.isoformat(), c.symbol, c.contract, c.interval_seconds, c.open, c.high,
                                 c.low, c.close, c.volume, c.trades, int(c.filled), r.source])
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from None
    return len(records)


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
