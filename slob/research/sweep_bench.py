"""The sweep's benchmark (not a test): combinations per second at 1, 2 and N workers on
this machine, the parallel efficiency, and what a bigger sweep would cost.

    python -m slob.research.sweep_bench                      # 52 weeks, 8 combinations, 1/2/N workers
    python -m slob.research.sweep_bench --workers 1,2,4 --combinations 12
    python -m slob.research.sweep_bench --scheduler tcp://127.0.0.1:8786   # also a Dask cluster

Each combination is one backtest over the generated year of
:mod:`slob.research.bench` (every CME minute of 52 weeks). A run is timed end to end as
``slob sweep`` runs it -- the pool's processes started, the candles shipped, every
result back -- so the figure includes what parallelism costs. Efficiency at n workers
is rate(n) / (n x rate(1)). The machine's load average is printed before and after:
on a shared machine the other processes' share is not yours.

The estimate: a sweep of C combinations over Y years on W workers takes about
C x Y x (seconds per combination-year at 1 worker) / (W x efficiency), the efficiency
being the one measured at the largest local worker count that does not exceed the
cores (a cluster's, across machines, is usually no better).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence, TextIO

from slob.research.bench import generate_year
from slob.research.candle_block import pack
from slob.research.executors import DaskCluster, Executor, InProcess, LocalPool
from slob.research.grid import parse_grid
from slob.research.sweep import collect, make_plan, trading_days

__all__ = ["GRID", "main"]

#: 5 x 4 x 3 = 60 combinations; the benchmark takes the first ``--combinations``.
GRID = """
[grid]
no_wick_max_fraction = { from = 0.1, to = 0.5, step = 0.1 }
stop_buffer_points = [0.5, 1.0, 1.5, 2.0]
target_buffer_points = [0.0, 0.5, 1.0]
"""


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - not on this platform
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    p = argparse.ArgumentParser(prog="python -m slob.research.sweep_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--weeks", type=int, default=52, help="weeks of generated 1-minute bars (default 52)")
    p.add_argument("--combinations", type=int, default=8, help="combinations to sweep (default 8, at most 60)")
    cores = os.cpu_count() or 1
    p.add_argument("--workers", default=",".join(str(n) for n in sorted({1, 2, cores})),
                   help=f"local worker counts to time, comma-separated (default 1,2,N with N = {cores} cores)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="also time this Dask cluster")
    p.add_argument("--estimate", default="500,3,16", metavar="C,Y,W",
                   help="estimate C combinations over Y years on W workers (default 500,3,16)")
    args = p.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    combos, years, cluster_workers = (float(x) for x in args.estimate.split(","))

    print(f"machine: {cores} cores, load average {_load()}", file=out)
    t0 = time.perf_counter()
    candles = generate_year(args.weeks)
    block = pack(candles)
    plan = make_plan(parse_grid(GRID), trading_days(candles))
    tasks = plan.tasks(block)[:args.combinations]
    t1 = time.perf_counter()
    print(f"data: {len(candles):,} one-minute bars ({args.weeks} weeks), packed to {len(block.data) / 1e6:.1f} MB "
          f"in {t1 - t0:.2f} s; {len(tasks)} combinations, one backtest each", file=out)
    del candles

    def timed(executor: Executor) -> float:
        start = time.perf_counter()
        collect(tasks, lambda accept: executor.run(block, tasks, accept))
        return time.perf_counter() - start

    rates: dict[int, float] = {}
    for n in counts:
        seconds = timed(InProcess() if n == 1 else LocalPool(n))
        rates[n] = len(tasks) / seconds
        base = rates.get(1)
        share = f"{rates[n] / (n * base):.0%}" if base else "-"
        print(f"{n:>3} worker{'s' if n > 1 else ' '}: {seconds:7.2f} s, {rates[n]:.3f} combinations/s, "
              f"parallel efficiency {share}" + (" (more workers than cores)" if n > cores else ""), file=out)
    if args.scheduler:
        seconds = timed(DaskCluster(args.scheduler))
        print(f"Dask {args.scheduler}: {seconds:7.2f} s, {len(tasks) / seconds:.3f} combinations/s", file=out)
    print(f"load average after: {_load()}", file=out)
    if 1 in rates:
        per_combination = 1 / rates[1]
        per_year = per_combination * 52 / args.weeks
        widest = max((n for n in rates if n <= cores), default=max(rates))
        efficiency = rates[widest] / (widest * rates[1])
        hours = combos * years * per_year / (cluster_workers * efficiency) / 3600
        print(f"per backtest: {per_year:.2f} s per combination-year at 1 worker "
              f"({block.count / per_combination:,.0f} candles/s, in this process)", file=out)
        print(f"estimate: {combos:.0f} combinations x {years:g} years on {cluster_workers:.0f} workers at "
              f"{efficiency:.0%} efficiency (measured at {widest}) = {combos:.0f} x {years:g} x {per_year:.2f} s / "
              f"({cluster_workers:.0f} x {efficiency:.2f}) = {hours * 60:.0f} min", file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
