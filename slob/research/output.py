"""A backtest's results as files and figures: the trades CSV, the equity curve, the
per-day figures (``slob report``'s, from :func:`slob.ops.report.trade_days`) and JSON.

The equity curve is the cumulative realized P&L (USD, net of commissions), starting at 0
at the first candle and stepping at each trade's exit -- the curve whose largest fall is
the report's max drawdown.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from typing import Any, TextIO

from slob.execution.daily_pnl import trading_day
from slob.ops.report import DayReport, trade_days
from slob.research.backtest import BacktestResult, Trade

__all__ = ["TRADE_COLUMNS", "day_figures", "equity_curve", "result_json", "write_equity_csv", "write_trades_csv"]

UTC = dt.timezone.utc
TRADE_COLUMNS = ("setup_id", "symbol", "contract", "direction", "quantity", "signal_at", "entry_time",
                 "entry_price", "stop", "target", "exit_time", "exit_price", "exit_by", "exact", "commission", "pnl")


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(x: float) -> float:
    return round(x, 2) + 0.0


def _trade_values(t: Trade) -> dict[str, Any]:
    return {"setup_id": t.setup_id, "symbol": t.symbol, "contract": t.contract, "direction": t.direction,
            "quantity": t.quantity, "signal_at": _iso(t.signal_at), "entry_time": _iso(t.entry_time),
            "entry_price": t.entry_price, "stop": t.stop, "target": t.target, "exit_time": _iso(t.exit_time),
            "exit_price": t.exit_price, "exit_by": t.exit_by, "exact": t.exact,
            "commission": _money(t.commission), "pnl": _money(t.pnl)}


def write_trades_csv(result: BacktestResult, out: TextIO) -> None:
    """One row per closed trade, in exit order (times ISO 8601 UTC, money in USD)."""
    writer = csv.DictWriter(out, fieldnames=TRADE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for t in result.trades:
        row = _trade_values(t)
        row["exact"] = int(bool(row["exact"]))
        writer.writerow(row)


def equity_curve(result: BacktestResult) -> list[tuple[dt.datetime, float]]:
    """(time, cumulative realized P&L): 0 at the first candle, a point per trade exit."""
    points: list[tuple[dt.datetime, float]] = []
    if result.first is not None:
        points.append((result.first, 0.0))
    total = 0.0
    for t in result.trades:
        total += t.pnl
        points.append((t.exit_time, round(total, 6)))
    return points


def write_equity_csv(result: BacktestResult, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("time", "equity", "setup_id"))
    ids = [""] + [t.setup_id for t in result.trades] if result.first is not None else [t.setup_id for t in result.trades]
    for (t, equity), setup_id in zip(equity_curve(result), ids):
        writer.writerow((_iso(t), f"{equity:.2f}", setup_id))


def day_figures(result: BacktestResult, days: list[dt.date] | None = None) -> tuple[tuple[DayReport, ...], DayReport]:
    """Per CME trading day and in total: ``slob report``'s trade figures. ``days``: the
    days to list (default: those with candles, trades or setups)."""
    states: dict[dt.date, Counter[str]] = {}
    for s in result.setups.values():
        states.setdefault(trading_day(s.at), Counter())[s.state.value] += 1
    opened: Counter[dt.date] = Counter()
    for p in result.carry:
        opened[trading_day(p.entry_time or p.signal_at)] += 1
    wanted = set(days or ())
    if days is None:
        wanted = set(states) | {t.day for t in result.trades} | set(opened)
        if result.first is not None and result.last is not None:
            day, end = trading_day(result.first), trading_day(result.last - dt.timedelta(microseconds=1))
            while day <= end:
                if day.weekday() < 5:
                    wanted.add(day)
                day += dt.timedelta(days=1)
    return trade_days(wanted, [t.row() for t in result.trades], states, opened)


def _day_json(d: DayReport) -> dict[str, Any]:
    return {"day": d.day.isoformat() if d.day else "total", "setups": d.setups, "invalidated": d.invalidated,
            "setup_states": dict(sorted(d.setup_states.items())), "trades": len(d.trades), "open": d.open_trades,
            "wins": d.wins, "losses": d.losses,
            "win_rate": None if d.win_rate is None else round(d.win_rate, 6), "pnl": _money(d.pnl),
            "commissions": _money(d.commissions), "max_drawdown": _money(d.max_drawdown)}


def result_json(result: BacktestResult, days: list[dt.date] | None = None) -> dict[str, Any]:
    per_day, total = day_figures(result, days)
    return {
        "candles": result.candles,
        "first": _iso(result.first) if result.first else None,
        "last": _iso(result.last) if result.last else None,
        "days": [_day_json(d) for d in per_day],
        "total": _day_json(total),
        "trades": [_trade_values(t) for t in result.trades],
        "skipped": [{"setup_id": s.setup_id, "at": _iso(s.at), "reason": s.reason} for s in result.skipped],
        "open": [{"setup_id": p.setup_id, "direction": p.direction, "entry_time": _iso(p.entry_time)
                  if p.entry_time else None, "entry_price": p.entry_price, "stop": p.stop, "target": p.target}
                 for p in result.carry],
        "equity": [{"time": _iso(t), "equity": _money(e)} for t, e in equity_curve(result)],
    }
