"""`slob demo`: the full engine trading planted SLOB setups on an embedded fake TWS.

The run itself is :mod:`slob.ops.demo`; this module is its command line and its display: on a
terminal a live status (rich) that updates in place with the events scrolling above it,
otherwise plain lines -- the events and a status line every few seconds. Both end with
the same summary tables, rendered by rich.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from slob.commands.common import EXIT_FAIL, EXIT_OK
from slob.commands.live_view import Fields, Rate, open_view

if TYPE_CHECKING:
    from rich.console import RenderableType

    from slob.ops.demo import DemoStats

NAME = "demo"
HELP = ("trade two planted SLOB setups through the full engine on an embedded fake TWS, "
        "about a minute (what tools/demo runs)")
PLAIN_EVERY = 3.0  # real seconds between status lines when the output is not a terminal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("FakeTWS replays two NQ trading days on a free loopback port (no network, no IB account): "
                "a short setup that reaches its target and a long one that is stopped out. The engine "
                "connects through IB's client, builds candles, finds the setups, places bracket orders "
                "on the paper account and records ticks, candles, setups, orders and fills in SQLite.")
    p.add_argument("--seconds", type=_seconds, default=60.0,
                   help="about how long the run takes, in real seconds (default 60; 0 = as fast as possible)")
    p.add_argument("--fast", action="store_true", help="as fast as possible (the same as --seconds 0)")
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help="SQLite database to write; must not exist (default: demo.sqlite3 in a new "
                        "temporary directory)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError("seconds is a finite number >= 0 (0 = as fast as possible)")
    return value


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.ops.demo import run_demo

    display = _Display(out)
    quiet, loggers = _ExpectedCancels(), [logging.getLogger(n) for n in ("slob.ib.client", "slob.live.orders")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        with display:
            stats = run_demo(seconds=0.0 if args.fast else args.seconds, db=args.db, say=display.say,
                             on_stats=display.attach)
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
    display.console.print(_summary(stats))
    display.console.print(_trades(stats))
    display.console.print(f"database: {stats.db}", soft_wrap=True, highlight=False)
    problems = stats.problems + _unexpected(stats)
    for problem in problems:
        print(f"slob demo: {problem}", file=sys.stderr)
    return EXIT_FAIL if problems else EXIT_OK


def _unexpected(stats: DemoStats) -> list[str]:
    """Where the run differs from the planted outcomes."""
    rows, found = {t.setup_id: t for t in stats.trades}, []
    for day in stats.planted:
        row = rows.get(day.setup_id)
        if row is None:
            found.append(f"the planted setup {day.setup_id} was not traded")
        elif row.exit_by != day.outcome or row.pnl is None:
            found.append(f"{day.setup_id} should have closed at its {day.outcome}, not {row.exit_by or 'open'}")
    if stats.fills != 2 * len(stats.planted):
        found.append(f"{stats.fills} fills, expected {2 * len(stats.planted)}")
    return found


class _ExpectedCancels(logging.Filter):
    """Drops the warnings about an order cancelled by TWS (202): after every exit fill its
    OCA sibling is cancelled; the demo reports those itself (and any other 202 as a problem)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        at = {"! %d %s (req %d)": 0, "! order %d: %d %s": 1}.get(str(record.msg))
        return at is None or len(args) <= at or args[at] != 202


# -- the display ---------------------------------------------------------------------------


class _Display:
    """The shared live view (:mod:`slob.commands.live_view`) over the demo's statistics."""

    def __init__(self, out: TextIO) -> None:
        self.stats: DemoStats | None = None
        self.rate = Rate()
        self.view = open_view(out, title=self._title, fields=self._fields, every=PLAIN_EVERY,
                              waiting="starting the fake TWS and connecting the engine...")
        self.console = self.view.console
        self.say = self.view.say

    def attach(self, stats: DemoStats) -> None:
        self.rate(stats.ticks)
        self.stats = stats

    def _title(self) -> str:
        port = self.stats.port if self.stats is not None else 0
        return f"slob demo: FakeTWS 127.0.0.1:{port} -> IB client -> engine -> SQLite"

    def _fields(self) -> Fields | None:
        s = self.stats
        return None if s is None else _fields(s, self.rate(s.ticks))

    def __enter__(self) -> "_Display":
        self.view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.view.__exit__(*exc)


def _fields(s: DemoStats, rate: float) -> Fields:
    when = f"{s.sim_time:%Y-%m-%d %H:%M} UTC" if s.sim_time else "-"
    price = f"{s.contract} {s.last_price:.2f}" if not math.isnan(s.last_price) else "-"
    return [
        ("elapsed", f"{s.elapsed:.1f} s"), ("simulated", when),
        ("ticks", f"{s.ticks:,} ({rate:,.0f}/s)"), ("last", price),
        ("candles", f"{s.candles.get(60, 0):,}"), ("setups", f"{len(s.setups)} ({s.triggered} triggered)"),
        ("orders", f"{len(s.trades)} brackets, {s.fills} fills"), ("P&L", f"{s.realized_pnl:+,.2f} USD"),
        ("position", f"{s.position:+g} {s.contract}"), ("open P&L", f"{s.open_pnl + 0.0:+,.2f} USD"),
    ]


# -- the summary ---------------------------------------------------------------------------


def _summary(s: DemoStats) -> RenderableType:
    from rich import box
    from rich.table import Table

    t = Table(title="slob demo: summary", box=box.SIMPLE_HEAD, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    end = s.sim_time or s.sim_start
    span = f"{s.sim_start:%Y-%m-%d %H:%M} -> {end:%Y-%m-%d %H:%M} UTC" if s.sim_start and end else "-"
    feed = s.feed
    invalidated = sum(1 for state in s.setups.values() if state.value == "invalidated")
    rows = [
        ("simulated", f"{span}, {len(s.planted)} trading days"),
        ("real time", f"{s.elapsed:.1f} s"),
        ("ticks", f"{s.ticks:,}"),
        ("ticks/s", f"{s.ticks / s.elapsed:,.0f}" if s.elapsed > 0 else "-"),
        ("candles", f"{s.candles.get(60, 0):,} x 1 min, {s.candles.get(300, 0):,} x 5 min"),
        ("setups", f"{len(s.setups)} found, {invalidated} invalidated, {s.triggered} triggered"),
        ("brackets", f"{len(s.trades)}"),
        ("fills", f"{s.fills}"),
        ("realized P&L", f"{s.realized_pnl:+,.2f} USD (net of commissions)"),
        ("commissions", f"{s.commissions:,.2f} USD"),
        ("max drawdown", f"{s.max_drawdown:,.2f} USD (marked to market)"),
        ("feed", f"{feed.get('messages_in', 0):,} messages in, {feed.get('rejected', 0)} rejected"),
        ("database rows", ", ".join(f"{n:,} {table}" for table, n in s.db_counts.items() if n) or "-"),
    ]
    for name, value in rows:
        t.add_row(name, value)
    return t


def _trades(s: DemoStats) -> RenderableType:
    from rich import box
    from rich.table import Table

    t = Table(title="trades", box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("setup", "side", "entry", "exit", "by", "P&L USD"):
        t.add_column(name, no_wrap=True, justify="left" if name in ("setup", "side", "by") else "right")
    for r in s.trades:
        t.add_row(r.setup_id, r.direction, _price(r.entry), _price(r.exit), r.exit_by or "open",
                  f"{r.pnl:+,.2f}" if r.pnl is not None else "-")
    return t


def _price(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"
