"""Paper against backtest, trade by trade: the table a go-live decision rests on.

The paper trades are what the engine did on the paper account (the store's fills, as
``slob report`` counts them); the backtest replays the same stored candles through the
same tracker and the fill model. Setup ids are deterministic (symbol, day, direction,
LIQ #1 minute, count), so a setup is matched by its id. For each setup that traded on
either side:

* **matched**: both traded it. *Entry slippage* and *exit slippage* are in points,
  positive when paper did worse than the model (a long bought higher, a short sold
  lower; an exit the other way round); the *P&L difference* is paper minus backtest.
* **paper only** / **backtest only**: one side did not trade it, and why -- the store's
  record of the setup (invalidated and the reason, not placed and the reason, never seen
  because the engine was not running or saw other candles), or the backtest's (its risk
  rules refused it, the tracker invalidated it).

A trade belongs to the CME trading day of its exit (as in the report); a setup traded on
one side only to the day of its signal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from slob.execution.daily_pnl import trading_day
from slob.store.store import ErrorEvent, SetupRecord
from slob.ops.report import TradeRow
from slob.research.backtest import BacktestResult, Trade

if TYPE_CHECKING:
    from slob.research.backtest import BacktestConfig

__all__ = ["DayComparison", "Row", "compare", "compare_store"]


@dataclass(frozen=True, slots=True)
class Row:
    """One setup traded by paper, the backtest, or both."""

    day: dt.date
    setup_id: str
    direction: str
    status: str  # "matched" | "paper only" | "backtest only"
    why: str
    paper: TradeRow | None
    backtest: Trade | None

    @property
    def entry_slippage(self) -> float | None:
        """Points paper's entry was worse than the model's (negative: better)."""
        if self.paper is None or self.backtest is None:
            return None
        diff = self.paper.entry_price - self.backtest.entry_price
        return round(diff if self.direction == "long" else -diff, 10)

    @property
    def exit_slippage(self) -> float | None:
        """Points paper's exit was worse than the model's (negative: better)."""
        if self.paper is None or self.backtest is None:
            return None
        diff = self.backtest.exit_price - self.paper.exit_price
        return round(diff if self.direction == "long" else -diff, 10)

    @property
    def pnl_difference(self) -> float | None:
        """Paper's P&L minus the backtest's (USD)."""
        if self.paper is None or self.backtest is None or self.paper.pnl is None:
            return None
        return round(self.paper.pnl - self.backtest.pnl, 6)


@dataclass(frozen=True, slots=True)
class DayComparison:
    day: dt.date
    rows: tuple[Row, ...]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def paper_pnl(self) -> float:
        return sum(r.paper.pnl or 0.0 for r in self.rows if r.paper is not None)

    @property
    def backtest_pnl(self) -> float:
        return sum(r.backtest.pnl for r in self.rows if r.backtest is not None)

    @property
    def pnl_difference(self) -> float:
        return round(self.paper_pnl - self.backtest_pnl, 6)


def _paper_why(setup_id: str, setups: Mapping[str, SetupRecord], errors: Sequence[ErrorEvent],
               open_ids: set[str]) -> str:
    if setup_id in open_ids:
        return "paper: still open"
    record = setups.get(setup_id)
    failed = [e.cause for e in errors if setup_id in e.cause]
    if failed:
        return f"paper: the bracket failed ({failed[-1]})"
    if record is None:
        return "paper: the engine recorded no such setup (not running then, or it saw other candles)"
    reason = str(record.details.get("reason") or "")
    if record.state in ("placed", "open", "intent"):
        return f"paper: bracket {record.state} but not closed in the store"
    return f"paper: {record.state}" + (f" ({reason})" if reason else "")


def _backtest_why(setup_id: str, result: BacktestResult) -> str:
    skipped = next((s for s in result.skipped if s.setup_id == setup_id), None)
    if skipped is not None:
        return f"backtest: not placed ({skipped.reason})"
    if any(p.setup_id == setup_id for p in result.carry):
        return "backtest: still open at the end of the data"
    state = result.setups.get(setup_id)
    if state is None:
        return "backtest: the tracker found no such setup in these candles"
    return f"backtest: {state.state.value} ({state.reason})"


def compare(paper: Iterable[TradeRow], result: BacktestResult, *, setups: Iterable[SetupRecord] = (),
            errors: Iterable[ErrorEvent] = (), open_paper: Iterable[str] = (),
            days: Iterable[dt.date] | None = None) -> list[DayComparison]:
    """Paper trades against the backtest's, per CME trading day (of ``days``, default:
    every day with a trade on either side)."""
    by_setup = {s.id: s for s in setups}
    error_list = list(errors)
    open_ids = set(open_paper)
    paper_trades = {t.setup_id: t for t in paper}
    backtest_trades = {t.setup_id: t for t in result.trades}
    rows: list[Row] = []
    for setup_id in sorted(set(paper_trades) | set(backtest_trades)):
        p, b = paper_trades.get(setup_id), backtest_trades.get(setup_id)
        if p is not None and b is not None:
            rows.append(Row(trading_day(p.exit_time), setup_id, p.direction, "matched", "", p, b))
        elif b is not None:
            rows.append(Row(trading_day(b.signal_at), setup_id, b.direction, "backtest only",
                            _paper_why(setup_id, by_setup, error_list, open_ids), None, b))
        elif p is not None:
            rows.append(Row(trading_day(p.entry_time), setup_id, p.direction, "paper only",
                            _backtest_why(setup_id, result), p, None))
    wanted = sorted(set(days) if days is not None else {r.day for r in rows})
    return [DayComparison(day, tuple(sorted((r for r in rows if r.day == day),
                                            key=lambda r: (r.paper or r.backtest).entry_time)))  # type: ignore[union-attr]
            for day in wanted]


def compare_store(db: Path, first: dt.date, last: dt.date, *, symbols: Sequence[str] | None = None,
                  config: "BacktestConfig | None" = None) -> list[DayComparison]:
    """Paper against a backtest of the same days, both from the store ``db``: the
    backtest replays the stored 1-minute candles, exits exact where the ticks are stored."""
    from slob.ops.report_collect import collect
    from slob.store.store import Store
    from slob.ops.report import build_report, day_bounds
    from slob.research.backtest import run_backtest
    from slob.research.data import StoreTicks, store_candles, store_symbols

    start, end = day_bounds(first)[0], day_bounds(last)[1]
    with Store(db) as store:
        data = collect(store, first, last, dt.datetime.now(dt.timezone.utc))
        events = store.connection_events(start, end)
    report = build_report(data)
    out: list[DayComparison] = []
    merged: dict[dt.date, list[Row]] = {}
    with StoreTicks(db) as ticks:
        for symbol in symbols or store_symbols(db):
            result = run_backtest(store_candles(db, symbol, start, end), config, symbol=symbol, ticks=ticks)
            paper = [t for t in report.total.trades if t.symbol.upper() == symbol.upper()]
            for d in compare(paper, result, setups=data.setups, errors=[e for e in events if isinstance(e, ErrorEvent)]):
                merged.setdefault(d.day, []).extend(d.rows)
    for day in sorted(merged):
        if first <= day <= last:
            out.append(DayComparison(day, tuple(merged[day])))
    return out
