"""`slob sweep`: the SLOB strategy over a grid of settings -- every combination one backtest
(`slob backtest`'s code), optionally walk-forward -- on local processes or a Dask cluster;
a results table (CSV or Parquet) and a summary of the best combinations.

The work is in :mod:`slob.research.sweep` (the plan, the task), :mod:`.sweep_table` (the
table, the summary) and :mod:`.executors`; this module picks the candles as `slob
backtest` does, shows progress, and renders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

from slob.commands.backtest import add_source_arguments, load_from_args
from slob.commands.common import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from slob.research.sweep import Plan, TaskResult
    from slob.research.sweep_table import Row, Summary

NAME = "sweep"
HELP = ("backtest every combination of a grid of strategy settings (GRID.toml), optionally walk-forward, on local "
        "processes or a Dask cluster: a results table (CSV/Parquet) and the best combinations")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", type=Path, required=True, metavar="GRID.toml",
                   help="the grid: [grid] key = [values] or {from, to, step}; optional [base] and [walk_forward] "
                        "(docs/tuning.md)")
    add_source_arguments(p)
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting every combination shares, as slob backtest's --set (repeatable)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local worker processes (default: one per core; 1: run in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on this Dask cluster's workers, e.g. tcp://10.0.0.5:8786 (the cluster extra: "
                            "pip install 'slob[cluster]')")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="times a failed task (or a broken local pool) is retried before the sweep stops (default 2)")
    p.add_argument("--out", type=Path, default=Path("slob-sweep.csv"), metavar="FILE.csv|.parquet",
                   help="the results table, one row per combination (default slob-sweep.csv; .parquet needs the "
                        "parquet extra)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="combinations the summary lists (default 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines on stderr")
    p.add_argument("--host", default="127.0.0.1", help="TWS/IB Gateway host for --source ib (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="TWS/IB Gateway port for --source ib (default 7497)")
    p.add_argument("--client-id", type=int, default=71, help="client id for --source ib (default 71)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.research.candle_block import pack
    from slob.research.executors import executor_for
    from slob.research.grid import load_grid
    from slob.research.sweep import collect, make_plan, trading_days
    from slob.research.sweep_table import build_rows, summarize, write_csv, write_parquet

    if args.first and args.last and args.first > args.last:
        print(f"slob sweep: --from {args.first} is after --to {args.last}", file=sys.stderr)
        return EXIT_USAGE
    if args.retries < 0 or args.top < 1:
        print("slob sweep: --retries must be >= 0 and --top >= 1", file=sys.stderr)
        return EXIT_USAGE
    grid = load_grid(args.grid)
    executor = executor_for(args.workers, args.scheduler, retries=args.retries)
    parquet = args.out.suffix.lower() == ".parquet"
    if parquet:
        from slob.research.export import _pyarrow

        _pyarrow()  # before the work: say now that the extra is missing
    loaded = load_from_args(args, need_ticks=False)
    try:
        candles = loaded.candles
    finally:
        loaded.close()
    plan = make_plan(grid, trading_days(candles), symbol=args.symbol, settings=args.settings)
    block = pack(candles)
    del candles
    tasks = plan.tasks(block)
    print(f"slob sweep: {len(plan.combinations)} combination(s) x {len(plan.windows)} window(s) = "
          f"{plan.backtests} backtest(s) of {loaded.description}, {len(plan.days)} trading days "
          f"{plan.days[0]} .. {plan.days[-1]}, on {executor.description}", file=out)
    out.flush()
    progress = Progress(len(tasks), sys.stderr, enabled=not args.no_progress)
    try:
        results = collect(tasks, lambda accept: executor.run(block, tasks, accept), progress.update)
    finally:
        progress.close()
    rows = build_rows(plan, results)
    if parquet:
        write_parquet(plan, rows, args.out)
    else:
        with args.out.open("w", newline="", encoding="utf-8") as f:
            write_csv(plan, rows, f)
    render(plan, rows, summarize(plan, rows, results, top=args.top), out)
    print(f"wrote {args.out} ({len(rows)} rows, one per combination; columns: docs/tuning.md)", file=out)
    return EXIT_OK


class Progress:
    """Done/total and an estimate of the time left, on stderr: a bar on a terminal, else a
    line per result (at most about 50 lines). ``clock``: injected by tests."""

    def __init__(self, total: int, stream: TextIO, *, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.stream, self.clock = total, stream, clock
        self.enabled = enabled and total > 0
        self.started = clock()
        self._every = max(1, total // 50)
        self._bar: object | None = None
        if self.enabled and bool(getattr(stream, "isatty", lambda: False)()):
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TimeElapsedColumn, \
                TimeRemainingColumn

            bar = Bar("sweep", BarColumn(), MofNCompleteColumn(), "combinations", TimeElapsedColumn(), "elapsed,",
                      TimeRemainingColumn(), "left", console=Console(file=stream), auto_refresh=False, transient=True)
            bar.start()
            self._task = bar.add_task("sweep", total=total)
            self._bar = bar

    def estimate(self, done: int) -> float | None:
        """Seconds left at ``done`` results: the mean time per result so far x those left."""
        if done <= 0:
            return None
        return (self.clock() - self.started) / done * (self.total - done)

    def update(self, _result: TaskResult, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            from rich.progress import Progress as Bar

            bar = self._bar
            assert isinstance(bar, Bar)
            bar.update(self._task, completed=done)
            bar.refresh()
            return
        if done % self._every and done != total:
            return
        left = self.estimate(done)
        elapsed = self.clock() - self.started
        print(f"sweep: {done}/{total} combinations done, {_duration(elapsed)} elapsed"
              + (f", about {_duration(left)} left" if left is not None and done < total else ""),
              file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            from rich.progress import Progress as Bar

            bar = self._bar
            assert isinstance(bar, Bar)
            bar.stop()
            self._bar = None


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def render(plan: Plan, rows: list[Row], summary: Summary, out: TextIO) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from slob.commands.common import money as _money
    from slob.commands.common import percent as _percent

    terminal = bool(getattr(out, "isatty", lambda: False)())
    console = Console(file=out, width=160, force_terminal=terminal, no_color=not terminal, highlight=False,
                      markup=False, emoji=False)
    style = box.SIMPLE_HEAVY if terminal else box.ASCII2
    dash = "—" if terminal else "-"
    wf = plan.grid.walk_forward
    if wf is not None:
        folds = len(plan.windows) // 2
        console.print(f"walk-forward: {folds} fold(s), {wf.in_sample_days} in-sample + {wf.out_of_sample_days} "
                      f"out-of-sample trading days, stepping {wf.step_days}"
                      + (", anchored" if wf.anchored else "")
                      + (f"; {len(plan.unused)} trading day(s) after the last fold not used" if plan.unused else ""),
                      soft_wrap=True)
    title = "best combinations" + (" (by out-of-sample P&L)" if wf is not None else " (by P&L)")
    table = Table(title=title, box=style, header_style="bold" if terminal else "", title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("settings", no_wrap=False)
    prefixes = [("", "")] if wf is None else [("IS ", "in_sample"), ("OOS ", "out_of_sample")]
    for prefix, _ in prefixes:
        for name in ("trades", "win rate", "P&L (USD)", "USD/day", "max DD"):
            table.add_column(prefix + name, justify="right", no_wrap=True)
    if wf is not None:
        table.add_column("OOS/IS", justify="right", no_wrap=True)
    for r in summary.best:
        cells = [str(r.combination), r.label()]
        for _, attr in prefixes:
            f = r.all if not attr else getattr(r, attr)
            assert f is not None
            cells += [str(f.trades), _percent(f.win_rate, dash), _money(f.pnl), _money(f.pnl_per_day),
                      f"{f.max_drawdown:,.2f}"]
        if wf is not None:
            cells.append(dash if r.oos_vs_is is None else f"{r.oos_vs_is:.2f}" + (" !" if r.overfit else ""))
        table.add_row(*cells)
    console.print(table)
    if summary.picks:
        picks = Table(title="walk-forward: the best in-sample combination of each fold, out of sample", box=style,
                      header_style="bold" if terminal else "", title_justify="left")
        for name in ("fold", "in sample", "out of sample", "#", "IS USD/day", "OOS USD/day", "OOS P&L"):
            picks.add_column(name, justify="left" if name in ("in sample", "out of sample") else "right",
                             no_wrap=True)
        for p in summary.picks:
            picks.add_row(str(p.fold), _span(p.in_first, p.in_last), _span(p.out_first, p.out_last),
                          str(p.combination), _money(p.in_pnl_per_day), _money(p.out_pnl_per_day), _money(p.out_pnl),
                          end_section=p is summary.picks[-1])
        picks.add_row("total", "", "", "", "", "", _money(summary.walk_forward_pnl), style="bold" if terminal else None)
        console.print(picks)
    for warning in summary.warnings:
        console.print(f"warning: {warning}", soft_wrap=True)


def _span(first: dt.date, last: dt.date) -> str:
    return f"{first} .. {last}"
