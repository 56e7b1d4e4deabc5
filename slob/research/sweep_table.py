"""The sweep's results table, its summary and the overfitting warning.

One row per combination, in the grid's order (never the order the tasks finished in):
the combination's number, its grid values, then its figures.

* Without walk-forward, the figures of the one window, the whole range -- those
  ``slob backtest`` prints in its total row: ``trades, wins, win_rate, pnl, pnl_per_day,
  max_drawdown, commissions, setups, invalidated, not_placed, open``.
* With walk-forward, the same figures prefixed ``is_`` (in-sample) and ``oos_``
  (out-of-sample), then ``oos_vs_is`` and ``overfit``:

  - trades, wins, P&L and commissions are summed over the folds' windows; the win rate
    is wins / trades of those windows; P&L per day divides by their trading days;
  - ``oos_max_drawdown`` is the drawdown of the out-of-sample windows' trades one after
    the other (the folds' out-of-sample windows follow each other: this is the equity
    curve a walk-forward trader would have had); ``is_max_drawdown`` is the worst of
    the in-sample windows' own (they overlap, so chaining them means nothing);
  - ``oos_vs_is`` = out-of-sample P&L per day / in-sample P&L per day, when the
    in-sample one is positive (empty otherwise); ``overfit`` is true when it is below
    ``overfit_ratio`` (default 0.5): the combination earned in-sample what it could not
    keep out of it.

Money is rounded to the cent, rates to 6 digits, so the table is the same text whatever
the platform. The summary ranks combinations by P&L (out-of-sample P&L with
walk-forward), then smaller drawdown, then grid order; with walk-forward it also picks, in
each fold, the best in-sample combination and shows what it made out of sample -- the
honest figure of tuning on the past -- and warns when that falls far below in-sample.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, TextIO

from slob.ib.errors import SlobError
from slob.ops.report import max_drawdown
from slob.research.sweep import Plan, TaskResult, WindowFigures, setting_value

__all__ = ["Figures", "FoldPick", "Row", "Summary", "build_rows", "records", "summarize", "table_columns",
           "write_csv", "write_parquet"]

_FIGURES = ("trades", "wins", "win_rate", "pnl", "pnl_per_day", "max_drawdown", "commissions", "setups",
            "invalidated", "not_placed", "open")


@dataclass(frozen=True, slots=True)
class Figures:
    """One combination's figures over some windows (see the module docstring)."""

    trades: int
    wins: int
    pnl: float
    max_drawdown: float
    commissions: float
    days: int
    setups: int
    invalidated: int
    not_placed: int
    open: int

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None

    @property
    def pnl_per_day(self) -> float:
        return self.pnl / self.days if self.days else 0.0

    @classmethod
    def of(cls, windows: Sequence[WindowFigures], days: Sequence[int], *, chained: bool) -> "Figures":
        pnls = [p for w in windows for p in w.pnls]
        drawdown = max_drawdown(pnls) if chained else max((max_drawdown(w.pnls) for w in windows), default=0.0)
        return cls(len(pnls), sum(1 for p in pnls if p > 0), sum(pnls), drawdown,
                   sum(w.commissions for w in windows), sum(days), sum(w.setups for w in windows),
                   sum(w.invalidated for w in windows), sum(w.not_placed for w in windows),
                   sum(w.open for w in windows))


@dataclass(frozen=True, slots=True)
class Row:
    combination: int
    values: tuple[tuple[str, Any], ...]  # grid key -> typed value
    all: Figures | None
    in_sample: Figures | None
    out_of_sample: Figures | None
    oos_vs_is: float | None
    overfit: bool

    @property
    def score(self) -> Figures:
        """The figures the ranking reads: out-of-sample with walk-forward."""
        found = self.out_of_sample if self.out_of_sample is not None else self.all
        assert found is not None
        return found

    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.values)


def build_rows(plan: Plan, results: Mapping[int, TaskResult]) -> list[Row]:
    """The table's rows, in the grid's order."""
    wf = plan.grid.walk_forward
    samples = [w.sample for w in plan.windows]
    days = [w.days for w in plan.windows]
    rows = []
    for c in plan.combinations:
        result = results.get(c.index)
        if result is None:
            raise SlobError(f"no result for combination {c.index}")
        values = tuple((k, setting_value(c.config, k)) for k, _ in c.values)

        def pick(sample: str, *, chained: bool) -> Figures:
            chosen = [i for i, s in enumerate(samples) if s == sample]
            return Figures.of([result.windows[i] for i in chosen], [days[i] for i in chosen], chained=chained)

        if wf is None:
            rows.append(Row(c.index, values, pick("all", chained=True), None, None, None, False))
            continue
        ins, oos = pick("in", chained=False), pick("out", chained=True)
        ratio = oos.pnl_per_day / ins.pnl_per_day if ins.pnl_per_day > 0 else None
        rows.append(Row(c.index, values, None, ins, oos, ratio, ratio is not None and ratio < wf.overfit_ratio))
    return rows


def table_columns(plan: Plan) -> list[str]:
    keys = list(plan.grid.keys)
    if plan.grid.walk_forward is None:
        return ["combination", *keys, *_FIGURES]
    return ["combination", *keys, *(f"is_{f}" for f in _FIGURES), *(f"oos_{f}" for f in _FIGURES), "oos_vs_is",
            "overfit"]


def _money(x: float) -> float:
    return round(x, 2) + 0.0


def _rate(x: float | None) -> float | None:
    return None if x is None else round(x, 6) + 0.0


def _figures(f: Figures, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}trades": f.trades, f"{prefix}wins": f.wins, f"{prefix}win_rate": _rate(f.win_rate),
            f"{prefix}pnl": _money(f.pnl), f"{prefix}pnl_per_day": _money(f.pnl_per_day),
            f"{prefix}max_drawdown": _money(f.max_drawdown), f"{prefix}commissions": _money(f.commissions),
            f"{prefix}setups": f.setups, f"{prefix}invalidated": f.invalidated, f"{prefix}not_placed": f.not_placed,
            f"{prefix}open": f.open}


def records(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The rows as column -> value (typed; money in USD rounded to the cent)."""
    out = []
    for r in rows:
        record: dict[str, Any] = {"combination": r.combination, **dict(r.values)}
        if r.all is not None:
            record.update(_figures(r.all))
        else:
            assert r.in_sample is not None and r.out_of_sample is not None
            record.update(_figures(r.in_sample, "is_"))
            record.update(_figures(r.out_of_sample, "oos_"))
            record["oos_vs_is"] = _rate(r.oos_vs_is)
            record["overfit"] = r.overfit
        out.append(record)
    return out


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def write_csv(plan: Plan, rows: Sequence[Row], out: TextIO) -> None:
    """The table as CSV: a header, one line per combination (booleans true/false, an
    unknown value -- a win rate without trades -- empty)."""
    columns = table_columns(plan)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records(rows):
        writer.writerow([_text(record[c]) for c in columns])


def write_parquet(plan: Plan, rows: Sequence[Row], path: Any) -> None:
    """The table as a Parquet file (pyarrow, the ``parquet`` extra)."""
    from slob.research.export import _pyarrow

    pa = _pyarrow()
    columns = table_columns(plan)
    data = records(rows)
    pa.parquet.write_table(pa.table({c: [r[c] for r in data] for c in columns}), str(path))


# -- the summary ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoldPick:
    """Walk-forward fold ``fold``: the best in-sample combination and what it made."""

    fold: int
    in_first: dt.date
    in_last: dt.date
    out_first: dt.date
    out_last: dt.date
    combination: int
    in_pnl_per_day: float
    out_pnl_per_day: float
    out_pnl: float


@dataclass(frozen=True, slots=True)
class Summary:
    best: tuple[Row, ...]
    picks: tuple[FoldPick, ...]
    warnings: tuple[str, ...]

    @property
    def walk_forward_pnl(self) -> float:
        return sum(p.out_pnl for p in self.picks)


def ranked(rows: Sequence[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-round(r.score.pnl, 6), round(r.score.max_drawdown, 6), r.combination))


def summarize(plan: Plan, rows: Sequence[Row], results: Mapping[int, TaskResult], top: int = 5) -> Summary:
    best = tuple(ranked(rows)[:top])
    wf = plan.grid.walk_forward
    warnings: list[str] = []
    picks: list[FoldPick] = []
    if wf is not None:
        folds = sorted({w.fold for w in plan.windows})
        by_fold = {(w.fold, w.sample): (i, w) for i, w in enumerate(plan.windows)}
        for k in folds:
            (i_in, w_in), (i_out, w_out) = by_fold[(k, "in")], by_fold[(k, "out")]
            chosen = min(plan.combinations, key=lambda c: (-round(sum(results[c.index].windows[i_in].pnls), 6),
                                                           c.index))
            figures = results[chosen.index].windows
            in_pnl, out_pnl = sum(figures[i_in].pnls), sum(figures[i_out].pnls)
            picks.append(FoldPick(k, w_in.first, w_in.last, w_out.first, w_out.last, chosen.index,
                                  in_pnl / w_in.days, out_pnl / w_out.days, out_pnl))
        in_per_day = sum(p.in_pnl_per_day for p in picks) / len(picks)
        out_per_day = sum(p.out_pnl_per_day for p in picks) / len(picks)
        if in_per_day > 0 and out_per_day < wf.overfit_ratio * in_per_day:
            warnings.append(
                f"overfitting: the best in-sample combination of each fold made {in_per_day:,.2f} USD/day in sample "
                f"but {out_per_day:,.2f} USD/day out of sample ({_share(out_per_day, in_per_day)} of it, below "
                f"overfit_ratio {wf.overfit_ratio:g}): the grid's best in-sample settings do not carry forward")
        by_in = sorted(rows, key=lambda r: (-round(r.in_sample.pnl if r.in_sample else 0.0, 6), r.combination))
        leaders = by_in[:top]
        flagged = [r for r in leaders if r.overfit]
        if flagged:
            warnings.append(f"overfitting: {len(flagged)} of the {len(leaders)} best in-sample combinations keep less "
                            f"than {wf.overfit_ratio:g} of their in-sample P&L per day out of sample "
                            f"(combination{'s' if len(flagged) > 1 else ''} "
                            f"{', '.join(str(r.combination) for r in flagged)}; column overfit)")
    if plan.refused:
        _, why = plan.refused[0]
        warnings.append(f"{len(plan.refused)} of the grid's {plan.grid.size} combinations were not run: their settings "
                        f"are refused (e.g. {why})")
    return Summary(best, tuple(picks), tuple(warnings))


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.2f}"
