"""`slob report`: the paper-trading validation report, from the store.

Per CME trading day and in total: uptime, gaps and their causes, reconnects, ticks,
setups found and invalidated, trades, win rate, P&L and max drawdown. The numbers are
computed by :func:`slob.ops.report.build_report` (the method is documented there and in
docs/reference/cli.md); this module reads the store and renders them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from slob.commands.common import EXIT_OK, EXIT_USAGE, add_store_location, day
from slob.commands.common import money as _money
from slob.commands.common import percent as _percent
from slob.ib.errors import SlobError

if TYPE_CHECKING:  # imported when the command runs: `slob --help` and `slob version` stay light
    from slob.store.store import Store
    from slob.ops.report import DayReport, Report, ReportInput

__all__ = ["collect", "render"]

NAME = "report"
HELP = ("the paper-trading validation report from the store: uptime, gaps, reconnects, ticks, setups, "
        "trades, win rate, P&L, max drawdown per CME trading day")

UTC = dt.timezone.utc
#: Gaps listed in the readable report (--json lists them all).
_GAPS_SHOWN = 30
#: The readable report's minimum width (the day table needs about 140 columns).
_WIDTH = 160


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="first", type=day, default=None, metavar="DATE",
                   help="first CME trading day, YYYY-MM-DD, 'today' or 'yesterday' (default: the --to day, else today)")
    p.add_argument("--to", dest="last", type=day, default=None, metavar="DATE",
                   help="last CME trading day, inclusive (default: the --from day). Trading day D runs from "
                        "17:00 Chicago on D-1 to 17:00 Chicago on D")
    add_store_location(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    p.add_argument("--compare-backtest", action="store_true",
                   help="set the paper trades against a backtest of the same days from the same stored candles, "
                        "setup by setup: matched or missed (and why), entry and exit slippage, P&L differences")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.store.store import Store, default_db_path
    from slob.ops.report import build_report, report_json, trading_day

    now = dt.datetime.now(UTC)
    first: dt.date = args.first or args.last or trading_day(now)
    last: dt.date = args.last or first
    if first > last:
        print(f"slob report: --from {first} is after --to {last}", file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.db) if args.db is not None else default_db_path(args.data_dir)
    _check_exists(path, explicit=args.db is not None or args.data_dir is not None)
    with Store(path) as store:
        data = collect(store, first, last, now)
        counts = store.counts()
    report = build_report(data)
    message = _empty_message(report, path, counts) if report.empty else None
    compared = None
    if getattr(args, "compare_backtest", False) and not report.empty:
        from slob.research.compare import compare_store

        compared = compare_store(path, first, last)
    if args.json:
        payload: dict[str, Any] = {"db": str(path), **report_json(report)}
        if message:
            payload["message"] = message
        if compared is not None:
            from slob.commands.backtest import comparison_json

            payload["compare_backtest"] = comparison_json(compared)
        json.dump(payload, out, indent=2)
        out.write("\n")
    elif message:
        print(message, file=out)
    else:
        render(report, path, out)
        if compared is not None:
            from slob.commands.backtest import render_comparison

            render_comparison(compared, out)
    return EXIT_OK


def _check_exists(path: Path, *, explicit: bool) -> None:
    if path.is_file():
        return
    if path.is_dir():
        raise SlobError(f"{path} is a directory, not a slob database: pass it as --data-dir {path}, "
                        f"or --db {path / 'slob.sqlite3'}")
    where = "" if explicit else (" (the default location; set SLOB_DATA_DIR, or pass --db PATH / --data-dir DIR "
                                 "to read another store)")
    raise SlobError(f"no slob database at {path}{where}. The engine creates it when it runs: record paper "
                    "trading with `slob run` first, or point --db/--data-dir at the store it wrote")


def _empty_message(report: Report, path: Path, counts: dict[str, int]) -> str:
    held = ", ".join(f"{n:,} {table}" for table, n in counts.items() if n) or "nothing yet"
    span = (f"trading day {report.first}" if report.first == report.last
            else f"trading days {report.first} .. {report.last}")
    return (f"no records for {span} in {path} (it holds {held} in all). Choose the days with "
            "--from/--to (YYYY-MM-DD), or record paper trading with `slob run` first.")


def collect(store: Store, first: dt.date, last: dt.date, now: dt.datetime) -> ReportInput:
    """:func:`slob.ops.report_collect.collect` (its home; kept here for callers): what
    the report reads from the store. Imported when called, so `slob --help` stays light."""
    from slob.ops.report_collect import collect as read

    return read(store, first, last, now)


# -- rendering ---------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def render(report: Report, path: Path, out: TextIO) -> None:
    """Tables on ``out``: rich styling on a terminal, plain ASCII otherwise."""
    from rich import box
    from rich.table import Table

    from slob.commands.live_view import console as pipe_console

    terminal = _is_terminal(out)
    # Never narrower than the tables: a squeezed table cuts numbers to "1,2…"; a narrow
    # terminal wraps long lines instead, which keeps every digit.
    width = max(shutil.get_terminal_size((_WIDTH, 24)).columns, _WIDTH) if terminal else _WIDTH
    console = pipe_console(file=out, width=width, force_terminal=terminal, no_color=not terminal,
                           highlight=False, markup=False, emoji=False)
    style = box.SIMPLE_HEAVY if terminal else box.ASCII2
    dash = "—" if terminal else "-"
    span = (f"trading day {report.first}" if report.first == report.last
            else f"trading days {report.first} .. {report.last}")
    console.print(f"slob report: {span} (CME, 17:00-17:00 Chicago) from {path}", soft_wrap=True)

    table = Table(box=style, title=None, header_style="bold" if terminal else "")
    for name in ("day", "uptime", "gaps", "gap time", "reconnects", "ticks", "setups", "invalidated",
                 "trades", "win rate", "P&L (USD)", "max DD"):
        table.add_column(name, justify="left" if name == "day" else "right", no_wrap=True)

    def row(d: DayReport) -> list[str]:
        return [d.day.isoformat() if d.day else "total", _percent(d.uptime, dash), str(len(d.gaps)),
                _duration(d.gap_seconds) if d.gaps else dash, str(d.reconnects), f"{d.ticks:,}", str(d.setups),
                str(d.invalidated), str(len(d.trades)) + (f" (+{d.open_trades} open)" if d.open_trades else ""),
                _percent(d.win_rate, dash), _money(d.pnl), f"{d.max_drawdown:,.2f}"]

    for i, d in enumerate(report.days):
        table.add_row(*row(d), end_section=i == len(report.days) - 1)
    table.add_row(*row(report.total), style="bold" if terminal else None)
    console.print(table)

    gaps = report.total.gaps
    if gaps:
        listing = Table(box=style, title=None, header_style="bold" if terminal else "")
        for name in ("gap start (UTC)", "end (UTC)", "duration", "cause"):
            listing.add_column(name, no_wrap=name != "cause", justify="right" if name == "duration" else "left")
        for g in gaps[:_GAPS_SHOWN]:
            listing.add_row(f"{g.start:%Y-%m-%d %H:%M:%S}", f"{g.end:%Y-%m-%d %H:%M:%S}", _duration(g.seconds),
                            g.cause)
        console.print(listing)
        if len(gaps) > _GAPS_SHOWN:
            console.print(f"... and {len(gaps) - _GAPS_SHOWN} more gaps (--json lists them all)", soft_wrap=True)

    trades = report.total.trades
    if trades:
        listing = Table(box=style, title=None, header_style="bold" if terminal else "")
        for name in ("setup", "side", "qty", "entry (UTC)", "entry", "exit (UTC)", "exit", "commission", "P&L (USD)"):
            listing.add_column(name, no_wrap=True, justify="left" if name in ("setup", "side") else "right")
        for t in trades:
            pnl = dash if t.pnl is None else _money(t.pnl) + ("*" if t.pnl_source == "prices" else "")
            listing.add_row(t.setup_id, t.direction, f"{t.quantity:g}", f"{t.entry_time:%m-%d %H:%M:%S}",
                            f"{t.entry_price:,.2f}", f"{t.exit_time:%m-%d %H:%M:%S}", f"{t.exit_price:,.2f}",
                            f"{t.commission:,.2f}", pnl)
        console.print(listing)
        if any(t.pnl_source == "prices" for t in trades):
            console.print("* no commission report stored for the exit: P&L computed from the fill prices "
                          "x multiplier, minus the commissions stored", soft_wrap=True)

    notes = ["uptime = minutes with ticks or 1-minute candles, minus recorded outages, over CME Globex hours "
             "(holidays not modelled); P&L = IB's realized P&L, net of commissions; max DD on the cumulative "
             "realized P&L"]
    if report.unattributed_fills:
        notes.append(f"{report.unattributed_fills} fill(s) belong to orders without a setup id (orderRef) and are "
                     "not in any trade")
    if report.total.open_trades:
        notes.append(f"{report.total.open_trades} trade(s) still open (not in the win rate or P&L)")
    for note in notes:
        console.print(note, soft_wrap=True)
