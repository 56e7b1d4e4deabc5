"""`slob backtest`: the SLOB strategy over history, through the engine's own tracker and a
bracket fill model (:mod:`slob.research`), with `slob report`'s per-day figures.

The work is in :mod:`slob.research.backtest` (pure); this module picks the candles
(store, IB's history through the store, or a CSV file), applies ``--set``, and renders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from slob.commands.common import EXIT_OK, EXIT_USAGE
from slob.commands.common import add_store_location, day

if TYPE_CHECKING:
    from slob.research.backtest import BacktestResult
    from slob.research.compare import DayComparison
    from slob.research.sources import Loaded

NAME = "backtest"
HELP = ("replay 1-minute candles (store, IB history or CSV) through the SLOB tracker and a bracket fill model: "
        "per-day trades, win rate, P&L, max drawdown, a trades CSV and an equity curve")
UTC = dt.timezone.utc


def add_source_arguments(p: argparse.ArgumentParser, *, sources: bool = True) -> None:
    """--from/--to/--symbol/--db/--data-dir (and --source): shared with `slob chart` and `slob export`."""
    p.add_argument("--from", dest="first", type=day, default=None, metavar="DATE",
                   help="first CME trading day, YYYY-MM-DD (default: the first day of the data)")
    p.add_argument("--to", dest="last", type=day, default=None, metavar="DATE",
                   help="last CME trading day, inclusive (default: the --from day, else the last day of the data). "
                        "Trading day D runs from 17:00 Chicago on D-1 to 17:00 Chicago on D")
    p.add_argument("--symbol", default="NQ", help="the symbol (default NQ)")
    if sources:
        p.add_argument("--source", default="store", metavar="store|ib|FILE.csv",
                       help="where the candles come from: the store (default), IB's historical bars through TWS "
                            "(cached in the store), or a CSV file of 1-minute candles")
    add_store_location(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override any SetupConfig, RiskConfig or fill-model field, e.g. --set min_risk_reward=2 "
                        "--set contracts=2 --set commission=2.5 (repeatable; --set help lists them)")
    p.add_argument("--commission", type=float, default=None, metavar="USD",
                   help="commission per contract per side (default: IB's rate for the symbol, 2.25 for NQ)")
    p.add_argument("--slippage-ticks", type=float, default=None, metavar="N",
                   help="ticks of slippage on the market orders: entry and stop (default 0)")
    p.add_argument("--candles-only", action="store_true",
                   help="ignore stored ticks: exits from the candles alone (stop first when both lie in one candle)")
    p.add_argument("--trades", type=Path, default=None, metavar="FILE.csv", help="write the trades as CSV")
    p.add_argument("--equity", type=Path, default=None, metavar="FILE.csv|.html|.png",
                   help="write the equity curve: CSV, or a chart (.html interactive, .png; the charts extra)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.add_argument("--host", default="127.0.0.1", help="TWS/IB Gateway host for --source ib (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="TWS/IB Gateway port for --source ib (default 7497)")
    p.add_argument("--client-id", type=int, default=71, help="client id for --source ib (default 71)")


def load_from_args(args: argparse.Namespace, *, need_ticks: bool = True) -> Loaded:
    """The candles the shared arguments choose."""
    from slob.research.sources import IbSource, load

    return load(getattr(args, "source", "store"), symbol=args.symbol, first=args.first, last=args.last, db=args.db,
                data_dir=args.data_dir, need_ticks=need_ticks,
                ib=IbSource(getattr(args, "host", "127.0.0.1"), getattr(args, "port", 7497),
                            getattr(args, "client_id", 71)))


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.research.backtest import BacktestConfig, run_backtest
    from slob.research.settings import KEYS, apply_settings

    if any(s.strip() in ("help", "?") for s in args.settings):
        print("settable keys: " + ", ".join(sorted(KEYS)), file=out)
        return EXIT_OK
    if args.first and args.last and args.first > args.last:
        print(f"slob backtest: --from {args.first} is after --to {args.last}", file=sys.stderr)
        return EXIT_USAGE
    settings = list(args.settings)
    if args.commission is not None:
        settings.append(f"commission={args.commission}")
    if args.slippage_ticks is not None:
        settings.append(f"slippage_ticks={args.slippage_ticks}")
    if args.candles_only:
        settings.append("exact_ticks=false")
    config = apply_settings(BacktestConfig(), settings)
    loaded = load_from_args(args, need_ticks=config.exact_ticks)
    try:
        result = run_backtest(loaded.candles, config, symbol=args.symbol.upper(), ticks=loaded.ticks)
    finally:
        loaded.close()
    days = loaded.days()
    if args.trades is not None:
        from slob.research.output import write_trades_csv

        with args.trades.open("w", newline="", encoding="utf-8") as f:
            write_trades_csv(result, f)
    if args.equity is not None:
        _write_equity(result, args.equity, loaded)
    if args.json:
        from slob.research.output import result_json

        json.dump({"source": loaded.description, "config": _config_json(config), **result_json(result, days)},
                  out, indent=2)
        out.write("\n")
    else:
        render(result, loaded, days, out)
    return EXIT_OK


def _write_equity(result: BacktestResult, path: Path, loaded: Loaded) -> None:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm", ".png"):
        from slob.research.charts import equity_chart
        from slob.research.render import write_chart

        write_chart(equity_chart(result, title=f"equity: {loaded.description}"), path)
        return
    from slob.research.output import write_equity_csv

    with path.open("w", newline="", encoding="utf-8") as f:
        write_equity_csv(result, f)


def _config_json(config: object) -> dict[str, object]:
    import dataclasses

    out: dict[str, object] = {}
    for group in ("setup", "risk", "fills"):
        out.update(dataclasses.asdict(getattr(config, group)))
    out["exact_ticks"] = getattr(config, "exact_ticks")
    return out


def render(result: BacktestResult, loaded: Loaded, days: list[dt.date] | None, out: TextIO) -> None:
    from slob.commands.common import money as _money
    from slob.commands.common import percent as _percent
    from slob.research.output import day_figures

    from rich import box
    from rich.console import Console
    from rich.table import Table

    terminal = bool(getattr(out, "isatty", lambda: False)())
    console = Console(file=out, width=140, force_terminal=terminal, no_color=not terminal, highlight=False,
                      markup=False, emoji=False)
    style = box.SIMPLE_HEAVY if terminal else box.ASCII2
    dash = "—" if terminal else "-"
    span = (f"{result.first:%Y-%m-%d %H:%M} -> {result.last:%Y-%m-%d %H:%M} UTC"
            if result.first and result.last else "no candles")
    console.print(f"slob backtest: {loaded.description}, {result.candles:,} one-minute candles, {span}",
                  soft_wrap=True)
    per_day, total = day_figures(result, days)
    table = Table(box=style, header_style="bold" if terminal else "")
    for name in ("day", "setups", "invalidated", "trades", "wins", "win rate", "P&L (USD)", "commissions", "max DD"):
        table.add_column(name, justify="left" if name == "day" else "right", no_wrap=True)
    for i, d in enumerate((*per_day, total)):
        table.add_row(d.day.isoformat() if d.day else "total", str(d.setups), str(d.invalidated),
                      str(len(d.trades)) + (f" (+{d.open_trades} open)" if d.open_trades else ""), str(d.wins),
                      _percent(d.win_rate, dash), _money(d.pnl), f"{d.commissions:,.2f}", f"{d.max_drawdown:,.2f}",
                      end_section=i == len(per_day) - 1, style="bold" if terminal and d.day is None else None)
    console.print(table)
    if result.trades:
        listing = Table(box=style, header_style="bold" if terminal else "")
        for name in ("setup", "side", "entry (UTC)", "entry", "stop", "target", "exit (UTC)", "exit", "by", "P&L (USD)"):
            listing.add_column(name, no_wrap=True, justify="left" if name in ("setup", "side", "by") else "right")
        for t in result.trades:
            listing.add_row(t.setup_id, t.direction, f"{t.entry_time:%m-%d %H:%M:%S}", f"{t.entry_price:,.2f}",
                            f"{t.stop:,.2f}", f"{t.target:,.2f}", f"{t.exit_time:%m-%d %H:%M:%S}",
                            f"{t.exit_price:,.2f}", t.exit_by + ("" if t.exact else "*"), _money(t.pnl))
        console.print(listing)
    notes = []
    inexact = sum(1 for t in result.trades if not t.exact)
    if inexact:
        notes.append(f"* {inexact} exit(s) from candles alone: stop or target price, the stop assumed first when "
                     "both lie in one candle (docs/backtesting.md)")
    for s in result.skipped:
        notes.append(f"not placed: {s.setup_id}: {s.reason}")
    for p in result.carry:
        notes.append(f"still open at the end of the data: {p.setup_id} ({p.direction}, stop {p.stop:,.2f}, "
                     f"target {p.target:,.2f})")
    for note in notes:
        console.print(note, soft_wrap=True)


# -- paper against backtest (slob report --compare-backtest) ---------------------------------


def comparison_json(days: list[DayComparison]) -> list[dict[str, object]]:
    def money(x: float | None) -> float | None:
        return None if x is None else round(x, 2) + 0.0

    return [{
        "day": d.day.isoformat(), "matched": d.count("matched"), "paper_only": d.count("paper only"),
        "backtest_only": d.count("backtest only"), "paper_pnl": money(d.paper_pnl),
        "backtest_pnl": money(d.backtest_pnl), "pnl_difference": money(d.pnl_difference),
        "setups": [{
            "setup_id": r.setup_id, "direction": r.direction, "status": r.status, "why": r.why,
            "paper_entry": r.paper.entry_price if r.paper else None,
            "backtest_entry": r.backtest.entry_price if r.backtest else None,
            "paper_exit": r.paper.exit_price if r.paper else None,
            "backtest_exit": r.backtest.exit_price if r.backtest else None,
            "entry_slippage": r.entry_slippage, "exit_slippage": r.exit_slippage,
            "paper_pnl": money(r.paper.pnl) if r.paper else None,
            "backtest_pnl": money(r.backtest.pnl) if r.backtest else None,
            "pnl_difference": money(r.pnl_difference),
        } for r in d.rows],
    } for d in days]


def render_comparison(days: list[DayComparison], out: TextIO) -> None:
    """The paper-against-backtest table, per day and setup."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from slob.commands.common import money as _money

    terminal = bool(getattr(out, "isatty", lambda: False)())
    console = Console(file=out, width=160, force_terminal=terminal, no_color=not terminal, highlight=False,
                      markup=False, emoji=False)
    dash = "—" if terminal else "-"
    console.print("paper against backtest (the same stored candles through the tracker and the fill model; "
                  "slippage in points, positive = paper did worse):", soft_wrap=True)
    if not days:
        console.print("no trades on either side in these days", soft_wrap=True)
        return
    table = Table(box=box.SIMPLE_HEAVY if terminal else box.ASCII2, header_style="bold" if terminal else "")
    for name in ("setup", "status", "entry paper", "entry bt", "slip", "exit paper", "exit bt", "slip ",
                 "P&L paper", "P&L bt", "P&L diff"):
        table.add_column(name, no_wrap=True, justify="left" if name in ("setup", "status") else "right")

    def price(x: float | None) -> str:
        return dash if x is None else f"{x:,.2f}"

    def num(x: float | None) -> str:
        return dash if x is None else (f"{x:+.2f}" if round(x, 2) else "0.00")

    notes = []
    for d in days:
        for r in d.rows:
            table.add_row(r.setup_id, r.status, price(r.paper.entry_price if r.paper else None),
                          price(r.backtest.entry_price if r.backtest else None), num(r.entry_slippage),
                          price(r.paper.exit_price if r.paper else None),
                          price(r.backtest.exit_price if r.backtest else None), num(r.exit_slippage),
                          _money(r.paper.pnl) if r.paper and r.paper.pnl is not None else dash,
                          _money(r.backtest.pnl) if r.backtest else dash,
                          _money(r.pnl_difference) if r.pnl_difference is not None else dash)
            if r.why:
                notes.append(f"{r.setup_id} ({r.status}): {r.why}")
        table.add_row(f"{d.day.isoformat()}: {d.count('matched')} matched", f"{d.count('paper only')} paper only, "
                      f"{d.count('backtest only')} bt only", "", "", "", "", "", "", _money(d.paper_pnl),
                      _money(d.backtest_pnl), _money(d.pnl_difference), end_section=True,
                      style="bold" if terminal else None)
    console.print(table)
    for note in notes:
        console.print(note, soft_wrap=True)
