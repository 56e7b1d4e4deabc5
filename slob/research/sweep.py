"""The sweep's plan and its unit of work: every combination of a grid, each backtested
over the same windows of the same candles.

Pure. :func:`make_plan` turns a :class:`~slob.research.grid.Grid` and the data's CME
trading days into :class:`Task`\\ s -- one per combination, each holding the combination's
:class:`BacktestConfig` and the windows to run it over (the whole range, or the
walk-forward folds' in-sample and out-of-sample windows). :func:`run_task` runs one task
on a worker: for each window, the candles starting in it (from a
:class:`~slob.research.candle_block.CandleBlock` unpacked once per process) through
:func:`~slob.research.backtest.run_backtest` -- the very code of ``slob backtest``, so a
window's figures are those of ``slob backtest --from FIRST --to LAST --candles-only
--set ...`` over the same candles.

The result of a task depends on nothing but the task and the candles: no clock, no
randomness, no worker state but the unpacked candles. So a sweep gives the same table on
one process, a local pool or a cluster, whatever order the tasks finish in, and a task
run twice (a worker lost after finishing it, a retry) gives the same result twice;
:func:`collect` keeps one.

A sweep runs on candles alone (exits by the candle rule, never from stored ticks): ticks
live in one machine's store, and a tuning sweep over months of IB history has none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from slob.execution.daily_pnl import trading_day
from slob.ib.errors import ConfigError, SlobError
from slob.store.schema import to_ns
from slob.model import Candle
from slob.ops.report import day_bounds
from slob.research.backtest import BacktestConfig, BacktestResult, run_backtest
from slob.research.candle_block import CandleBlock, candles_of
from slob.research.grid import Grid
from slob.research.settings import KEYS, apply_settings, parse_setting

__all__ = ["Combination", "Plan", "Task", "TaskResult", "Window", "WindowFigures", "collect", "make_plan",
           "run_task", "setting_value", "trading_days"]


@dataclass(frozen=True, slots=True)
class Window:
    """CME trading days ``first`` .. ``last`` of the data (``days`` of them), as the
    candle start times ``[start_ns, end_ns)``. ``sample``: "all" (no walk-forward), "in"
    or "out"; ``fold``: 1-based, 0 for "all"."""

    fold: int
    sample: str
    first: dt.date
    last: dt.date
    days: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Combination:
    """One point of the grid: ``values`` as (key, text) in the grid's key order, numbered
    from 1 in the order the grid lists them."""

    index: int
    values: tuple[tuple[str, str], ...]
    config: BacktestConfig


@dataclass(frozen=True, slots=True)
class Task:
    """What a worker needs besides the candles: the configuration and the windows."""

    combination: int
    config: BacktestConfig
    windows: tuple[Window, ...]
    digest: str  # the CandleBlock's: a worker holding other candles refuses the task


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """One window's backtest, reduced to what the table needs. ``pnls``: the net P&L of
    each closed trade in exit order (the equity curve, for drawdowns across windows)."""

    candles: int
    setups: int
    invalidated: int
    pnls: tuple[float, ...]
    commissions: float
    not_placed: int
    open: int

    @classmethod
    def of(cls, result: BacktestResult) -> "WindowFigures":
        states = result.setup_states()
        return cls(result.candles, sum(states.values()), states.get("invalidated", 0),
                   tuple(t.pnl for t in result.trades), round(sum(t.commission for t in result.trades), 6),
                   len(result.skipped), len(result.carry))


@dataclass(frozen=True, slots=True)
class TaskResult:
    combination: int
    windows: tuple[WindowFigures, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The combinations (``refused``: those a config refuses, with why), the windows
    and the trading days they cover (``unused``: days after the last whole fold)."""

    symbol: str
    grid: Grid
    combinations: tuple[Combination, ...]
    refused: tuple[tuple[tuple[tuple[str, str], ...], str], ...]
    windows: tuple[Window, ...]
    days: tuple[dt.date, ...]
    unused: tuple[dt.date, ...] = ()

    def tasks(self, block: CandleBlock) -> list[Task]:
        return [Task(c.index, c.config, self.windows, block.digest) for c in self.combinations]

    @property
    def backtests(self) -> int:
        return len(self.combinations) * len(self.windows)


def trading_days(candles: Iterable[Candle]) -> tuple[dt.date, ...]:
    """The CME trading days the candles start in, in order."""
    return tuple(sorted({trading_day(c.start) for c in candles}))


def _window(fold: int, sample: str, days: Sequence[dt.date]) -> Window:
    return Window(fold, sample, days[0], days[-1], len(days), to_ns(day_bounds(days[0])[0]),
                  to_ns(day_bounds(days[-1])[1]))


def make_plan(grid: Grid, days: Sequence[dt.date], *, symbol: str = "NQ",
              settings: Sequence[str] = ()) -> Plan:
    """The plan of a sweep of ``grid`` over trading days ``days`` (those with candles).
    ``settings``: ``--set key=value`` on top of the grid's [base], below its [grid]."""
    if not days:
        raise SlobError("no trading days with candles to sweep over; choose --from/--to where the source has candles")
    cli = [parse_setting(s) for s in settings]
    for key, _ in cli:
        if key == "exact_ticks":
            raise ConfigError("--set exact_ticks: a sweep runs on candles alone (ticks stay on the machine that "
                              "stored them); leave it out")
        if key in grid.keys:
            raise ConfigError(f"--set {key} is also a [grid] key; keep it in one place")
    shared = [*grid.base, *cli]
    base = apply_settings(BacktestConfig(), [*shared, ("exact_ticks", "false")])
    combinations: list[Combination] = []
    refused: list[tuple[tuple[tuple[str, str], ...], str]] = []
    for values in grid.combinations():
        try:
            config = apply_settings(base, values)
        except ConfigError as exc:
            refused.append((values, str(exc)))
            continue
        combinations.append(Combination(len(combinations) + 1, values, config))
    if not combinations:
        _, why = refused[0]
        raise ConfigError(f"every one of the grid's {len(refused)} combinations is refused, e.g.: {why}")
    wf = grid.walk_forward
    unused: tuple[dt.date, ...] = ()
    if wf is None:
        windows: tuple[Window, ...] = (_window(0, "all", days),)
    else:
        folds = wf.folds(len(days))
        if not folds:
            raise ConfigError(f"[walk_forward] needs in_sample_days + out_of_sample_days = "
                              f"{wf.in_sample_days + wf.out_of_sample_days} trading days; the data holds "
                              f"{len(days)} ({days[0]} .. {days[-1]}): widen --from/--to or shorten the windows")
        out: list[Window] = []
        for k, (ins, oos) in enumerate(folds, start=1):
            out.append(_window(k, "in", [days[i] for i in ins]))
            out.append(_window(k, "out", [days[i] for i in oos]))
        windows = tuple(out)
        unused = tuple(days[folds[-1][1].stop:])
    return Plan(symbol.upper(), grid, tuple(combinations), tuple(refused), windows, tuple(days), unused)


def setting_value(config: BacktestConfig, key: str) -> object:
    """The value ``key`` has in ``config`` (typed: int, float, bool or None)."""
    groups = KEYS[key]
    if not groups:
        return getattr(config, key)
    return getattr(getattr(config, groups[0]), key)


def run_task(block: CandleBlock, task: Task) -> TaskResult:
    """One combination over its windows (see the module docstring). Runs on a worker."""
    if block.digest != task.digest:
        raise SlobError(f"task for combination {task.combination} names candles {task.digest[:12]}, the worker holds "
                        f"{block.digest[:12]}: the sweep's executor mixed two sweeps' data")
    unpacked = candles_of(block)
    out = []
    for w in task.windows:
        result = run_backtest(unpacked.between(w.start_ns, w.end_ns), task.config, symbol=block.symbol)
        out.append(WindowFigures.of(result))
    return TaskResult(task.combination, tuple(out))


def collect(tasks: Sequence[Task], run: Callable[[Callable[[TaskResult], None]], None],
            on_result: Callable[[TaskResult, int, int], None] | None = None) -> dict[int, TaskResult]:
    """Run ``run(accept)`` (an executor's run, calling ``accept`` per result) and gather
    the results by combination: a result arriving twice (a task rerun after its worker was
    lost) is kept once -- it is the same result -- and a missing one is an error.
    ``on_result(result, done, total)`` reports progress."""
    wanted = {t.combination for t in tasks}
    results: dict[int, TaskResult] = {}

    def accept(result: TaskResult) -> None:
        if result.combination not in wanted:
            raise SlobError(f"a result for combination {result.combination}, which this sweep did not ask for")
        if result.combination in results:
            if results[result.combination] != result:  # pragma: no cover - run_task is deterministic
                raise SlobError(f"combination {result.combination} gave two different results; the backtest is "
                                "meant to be deterministic: please report this")
            return
        results[result.combination] = result
        if on_result is not None:
            on_result(result, len(results), len(wanted))

    run(accept)
    missing = sorted(wanted - set(results))
    if missing:
        raise SlobError(f"the executor finished without the results of {len(missing)} combination(s) "
                        f"({', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''})")
    return results

