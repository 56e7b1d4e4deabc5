"""The resumable download of IB's historical bars into the store (``slob history``'s core).

Resumable: every page downloaded is written down in the store (``history_spans``) with
its bars, a day with no trades included, so a second run over the same range requests
only what is not there yet -- nothing, if the first run finished. Pacing-aware: requests
go through IB's historical pacing (:mod:`slob.ib.history_pacing`). History never replaces
a live candle that saw trades (``CandleRecord(keep_live=True)``). Used by the command
(:mod:`slob.commands.history`) and by ``--source ib`` backtests (:mod:`slob.research.history`).
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from slob.ib.errors import ConfigError
from slob.ib.history import BarSize, uncovered

if TYPE_CHECKING:  # imported when a download runs: `slob --help` stays light
    from slob.config.ib_config import IBConfig
    from slob.live.ib_history import HistorySettings, PlannedPage
    from slob.store.store import Store

__all__ = ["Downloaded", "download", "write_csv"]

_UTC = dt.timezone.utc
_BAR_WIDTH = 30


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
