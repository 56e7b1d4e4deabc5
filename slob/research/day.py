"""One trading day's chart from its data: the candles, the tracker's events over them (a
backtest of the day), and the trades -- the paper trades the store recorded, or the
backtest's. Setup ids are deterministic, so the tracker's replay names the setups as the
engine did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from slob.ib.errors import ConfigError
from slob.model import Candle, ContractRolled, Gap
from slob.ops.report import TradeRow
from slob.research.backtest import BacktestConfig, BacktestResult, Ticks, run_backtest
from slob.research.charts import Chart, day_chart, day_window

__all__ = ["PaperTrade", "chart_of_day", "paper_trades"]

UTC = dt.timezone.utc
TRADE_SOURCES = ("auto", "paper", "backtest")


@dataclass(frozen=True, slots=True)
class PaperTrade:
    """A trade the store recorded (``slob report``'s), with its bracket's stop and target."""

    setup_id: str
    direction: str
    entry_time: dt.datetime
    entry_price: float
    exit_time: dt.datetime
    exit_price: float
    stop: float | None
    target: float | None
    exit_by: str
    pnl: float | None
    commission: float


def paper_trades(db: Path, first: dt.date, last: dt.date) -> list[PaperTrade]:
    """The closed paper trades of CME trading days ``first`` .. ``last`` in the store,
    as ``slob report`` computes them, with each bracket's stop, target and exit leg."""
    from slob.ops.report_collect import collect
    from slob.store.store import Store
    from slob.ops.report import build_report

    with Store(db) as store:
        data = collect(store, first, last, dt.datetime.now(UTC))
    report = build_report(data)
    orders = {o.order_id: o for o in data.orders}
    fills_by_time = {(f.time, f.price): f for f in data.fills}
    out = []
    for t in report.total.trades:
        legs = [o for o in orders.values() if o.setup_id == t.setup_id]
        stop = next((o.stop_price for o in legs if o.stop_price is not None), None)
        target = next((o.limit_price for o in legs if o.order_type == "LMT" and o.limit_price is not None), None)
        fill = fills_by_time.get((t.exit_time, t.exit_price))
        leg = orders.get(fill.order_id) if fill is not None else None
        by = "stop" if leg is not None and leg.order_type.startswith("STP") else "target" if leg is not None else ""
        out.append(_paper(t, stop, target, by))
    return out


def _paper(t: TradeRow, stop: float | None, target: float | None, by: str) -> PaperTrade:
    return PaperTrade(t.setup_id, t.direction, t.entry_time, t.entry_price, t.exit_time, t.exit_price, stop, target,
                      by, t.pnl, t.commission)


def chart_of_day(day: dt.date, candles: Sequence[Candle], *, config: BacktestConfig | None = None,
                 ticks: Ticks | None = None, db: Path | None = None, trades: str = "auto",
                 title: str = "") -> tuple[Chart, BacktestResult, str]:
    """The chart of London weekday ``day``, the backtest behind it, and whose trades it
    shows ("paper" or "backtest"). ``trades``: "paper" (the store's), "backtest", or
    "auto" (paper when the store recorded trades that day, else the backtest's)."""
    if trades not in TRADE_SOURCES:
        raise ConfigError(f"trades must be one of {TRADE_SOURCES}, not {trades!r}")
    if day.weekday() >= 5:
        raise ConfigError(f"{day} is a {day:%A}: no LSE or NYSE session to chart; pick a weekday")
    start, end = day_window(day)
    result = run_backtest((c for c in candles if c.start >= start - dt.timedelta(hours=1)), config,
                          ticks=ticks, keep_events=True)
    gaps: list[Gap] = []
    rolls: list[ContractRolled] = []
    paper: list[PaperTrade] = []
    if db is not None:
        from slob.store.store import Store

        with Store(db) as store:
            for e in store.connection_events(start - dt.timedelta(days=1), end + dt.timedelta(days=1)):
                if isinstance(e, Gap):
                    gaps.append(e)
                elif isinstance(e, ContractRolled):
                    rolls.append(e)
        if trades != "backtest":
            paper = [t for t in paper_trades(db, day, day + dt.timedelta(days=1)) if start <= t.entry_time < end]
    if trades == "paper" and db is None:
        raise ConfigError("paper trades come from the store: chart a day of --source store")
    used = "paper" if trades == "paper" or (trades == "auto" and paper) else "backtest"
    shown: Sequence[object] = paper if used == "paper" else result.trades
    chart = day_chart(day, candles, result.events, shown, gaps=gaps, rolls=rolls,  # type: ignore[arg-type]
                      title=title or f"{candles[0].symbol if candles else ''} {day:%Y-%m-%d}: {used} trades (UTC)")
    return chart, result, used
