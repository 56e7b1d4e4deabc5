"""The sweep's pure parts: the grid file, walk-forward folds, the plan, packed candles,
the table's figures against `slob backtest`'s own, collecting results, the summary and its
overfitting warning."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.cli import main
from slob.ib.errors import ConfigError, SlobError
from slob.model import Candle
from slob.research.bench import generate_year
from slob.research.candle_block import candles_of, pack
from slob.research.grid import WalkForward, parse_grid
from slob.research.sweep import Plan, Task, TaskResult, WindowFigures, collect, make_plan, run_task, trading_days
from slob.research.sweep_table import build_rows, records, summarize, write_csv

UTC = dt.timezone.utc


@functools.lru_cache(maxsize=None)
def weeks(n: int, seed: int = 1) -> tuple[Candle, ...]:
    return tuple(generate_year(n, seed))


# -- the grid file ---------------------------------------------------------------------------


def test_lists_ranges_and_single_values_make_the_cartesian_product_in_file_order() -> None:
    grid = parse_grid("""
        [base]
        slippage_ticks = 1
        [grid]
        min_risk_reward = [1.0, 2]
        no_wick_max_fraction = { from = 0.1, to = 0.3, step = 0.05 }
        entry_wait_max_candles = { from = 3, to = 4 }
        stop_buffer_points = 1.5
    """)
    assert grid.axes == (
        ("min_risk_reward", ("1.0", "2")),
        ("no_wick_max_fraction", ("0.1", "0.15", "0.2", "0.25", "0.3")),  # decimal steps: no 0.15000000000000002
        ("entry_wait_max_candles", ("3", "4")),
        ("stop_buffer_points", ("1.5",)),
    )
    assert grid.base == (("slippage_ticks", "1"),)
    assert grid.size == 20
    combos = list(grid.combinations())
    assert combos[0] == (("min_risk_reward", "1.0"), ("no_wick_max_fraction", "0.1"), ("entry_wait_max_candles", "3"),
                         ("stop_buffer_points", "1.5"))
    assert combos[1][2] == ("entry_wait_max_candles", "4")  # the last key varies fastest


@pytest.mark.parametrize("text, words", [
    ("[grid]\nmin_risk_rewrd = [1, 2]", "no such setting"),
    ("", "no [grid] table"),
    ("[grid]\nmin_risk_reward = []", "at least one value"),
    ("[grid]\nmin_risk_reward = [1, 1]", "more than once"),
    ("[grid]\nmin_risk_reward = { from = 2, to = 1 }", "above to"),
    ("[grid]\nmin_risk_reward = { from = 0.5, to = 1.5 }", "needs a step"),
    ("[grid]\nmin_risk_reward = { from = 1, to = 2, step = 0 }", "positive"),
    ("[grid]\nmin_risk_reward = { from = 1, to = 2, by = 1 }", "a range is"),
    ("[grid]\nmin_risk_reward = 'two'", "expected a number"),
    ("[grid]\nexact_ticks = [true, false]", "candles alone"),
    ("[grid]\nmin_risk_reward = [1]\n[base]\nmin_risk_reward = 2", "both [grid] and [base]"),
    ("[grid]\nmin_risk_reward = [1]\n[walk_forward]\nin_sample_days = 10", "out_of_sample_days"),
    ("[grid]\nmin_risk_reward = [1]\n[walk_forward]\nin_sample_days = 0\nout_of_sample_days = 5", ">= 1"),
    ("[grid]\nmin_risk_reward = [1]\n[walk_forward]\nin_sample_days = 5\nout_of_sample_days = 5\nfold = 2",
     "unknown"),
    ("[grids]\nmin_risk_reward = [1]", "unknown table"),
    ("[grid\n", "not valid TOML"),
    ("[grid]\nmin_risk_reward = { from = 0.0, to = 100.0, step = 0.001 }", "bigger step"),
])
def test_a_grid_it_cannot_use_is_refused_saying_why(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_grid(text)


@settings(max_examples=200, deadline=None)
@given(days=st.integers(0, 400), ins=st.integers(1, 60), oos=st.integers(1, 30), step=st.integers(1, 40),
       anchored=st.booleans())
def test_walk_forward_folds_put_each_out_of_sample_window_right_after_its_in_sample_one(
        days: int, ins: int, oos: int, step: int, anchored: bool) -> None:
    folds = WalkForward(ins, oos, step, anchored).folds(days)
    assert len(folds) == (0 if days < ins + oos else (days - ins - oos) // step + 1)
    for k, (a, b) in enumerate(folds):
        assert a.stop == b.start and len(b) == oos and b.stop <= days  # whole folds, inside the data
        assert a.start == (0 if anchored else k * step) and len(a) == (k * step + ins if anchored else ins)
    if step == oos:  # the default: out-of-sample windows follow one another
        assert all(x[1].stop == y[1].start for x, y in zip(folds, folds[1:]))


# -- the plan --------------------------------------------------------------------------------


def test_combinations_a_config_refuses_are_left_out_and_said() -> None:
    grid = parse_grid("[grid]\nconsolidation_min_candles = [3, 30]\nconsolidation_max_candles = [10, 25]")
    plan = make_plan(grid, [dt.date(2024, 1, 8)])
    assert [c.values for c in plan.combinations] == [
        (("consolidation_min_candles", "3"), ("consolidation_max_candles", "10")),
        (("consolidation_min_candles", "3"), ("consolidation_max_candles", "25"))]
    assert [c.index for c in plan.combinations] == [1, 2]
    assert len(plan.refused) == 2 and "consolidation_max_candles must be >=" in plan.refused[0][1]
    assert all(not c.config.exact_ticks for c in plan.combinations)  # candles alone
    with pytest.raises(ConfigError, match="every one of the grid's 1 combinations is refused"):
        make_plan(parse_grid("[grid]\ncontracts = [0]"), [dt.date(2024, 1, 8)])


def test_set_on_the_command_line_applies_below_the_grid_and_may_not_repeat_a_grid_key() -> None:
    grid = parse_grid("[base]\nslippage_ticks = 1\n[grid]\nmin_risk_reward = [1.5]")
    plan = make_plan(grid, [dt.date(2024, 1, 8)], settings=["commission=2.5", "slippage_ticks=2"])
    config = plan.combinations[0].config
    assert (config.fills.commission, config.fills.slippage_ticks, config.setup.min_risk_reward) == (2.5, 2.0, 1.5)
    with pytest.raises(ConfigError, match="also a \\[grid\\] key"):
        make_plan(grid, [dt.date(2024, 1, 8)], settings=["min_risk_reward=2"])
    with pytest.raises(ConfigError, match="candles alone"):
        make_plan(grid, [dt.date(2024, 1, 8)], settings=["exact_ticks=true"])


def test_walk_forward_windows_are_trading_days_of_the_data() -> None:
    days = trading_days(weeks(6))
    assert len(days) == 30 and days[0] == dt.date(2024, 1, 8)
    plan = make_plan(parse_grid("[grid]\nmin_risk_reward=[1]\n[walk_forward]\nin_sample_days=10\n"
                                "out_of_sample_days=5\nstep_days=5"), days)
    assert [(w.fold, w.sample, w.first, w.last, w.days) for w in plan.windows[:4]] == [
        (1, "in", days[0], days[9], 10), (1, "out", days[10], days[14], 5),
        (2, "in", days[5], days[14], 10), (2, "out", days[15], days[19], 5)]
    assert len(plan.windows) == 2 * 4 and plan.unused == ()
    with pytest.raises(ConfigError, match="needs in_sample_days \\+ out_of_sample_days = 40 trading days; the data "
                                          "holds 30"):
        make_plan(parse_grid("[grid]\nmin_risk_reward=[1]\n[walk_forward]\nin_sample_days=30\n"
                             "out_of_sample_days=10"), days)


# -- packed candles --------------------------------------------------------------------------


def test_a_packed_year_unpacks_to_the_same_candles_and_windows_pick_by_start_time() -> None:
    candles = list(weeks(52))
    block = pack(candles)
    assert len(block.data) < 20_000_000 and block.contracts[0] == (0, "NQH4") and len(block.contracts) == 5
    unpacked = candles_of(block)
    assert unpacked.candles == candles
    assert candles_of(block) is unpacked  # once per process
    lo, hi = candles[1000].start, candles[2000].start
    assert unpacked.between(int(lo.timestamp()) * 10**9, int(hi.timestamp()) * 10**9) == candles[1000:2000]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["NQH5", "NQM5"]), st.floats(1, 1e5),
                          st.floats(0, 50), st.integers(0, 10**6), st.booleans()), min_size=1, max_size=40))
def test_packing_keeps_every_field(rows: list[tuple[int, str, float, float, int, bool]]) -> None:
    t = dt.datetime(2025, 3, 3, 14, 30, 0, 123456, tzinfo=UTC)
    candles = []
    for gap, contract, price, spread, trades, filled in rows:
        t += dt.timedelta(minutes=1 + gap)
        candles.append(Candle("NQ", contract, 60, t, price, price + spread, price - spread, price, spread * 3, trades,
                              filled))
    assert candles_of(pack(candles)).candles == candles


def test_packing_refuses_two_symbols_and_disorder() -> None:
    a = Candle("NQ", "NQH5", 60, dt.datetime(2025, 3, 3, tzinfo=UTC), 1, 1, 1, 1, 0, 0)
    with pytest.raises(SlobError, match="one symbol"):
        pack([a, Candle("ES", "ESH5", 60, a.end, 1, 1, 1, 1, 0, 0)])
    with pytest.raises(SlobError, match="time order"):
        pack([a, a])
    with pytest.raises(SlobError, match="no candles"):
        pack([])


# -- figures: the backtest's own -------------------------------------------------------------


def test_a_rows_figures_are_slob_backtests_totals_over_the_same_days(tmp_path: Path) -> None:
    candles = list(weeks(4, seed=3))
    csv_path = tmp_path / "weeks.csv"
    from slob.research.bench import _write_csv

    _write_csv(candles, csv_path)
    grid = parse_grid("[grid]\nno_wick_max_fraction = [0.2, 0.4]\nstop_buffer_points = [0.5]")
    days = trading_days(candles)
    plan = make_plan(grid, days)
    block = pack(candles)
    results = {t.combination: run_task(block, t) for t in plan.tasks(block)}
    rows = records(build_rows(plan, results))
    assert [r["trades"] for r in rows] != [0, 0], "the data must trade for this test to mean something"
    for row in rows:
        out = io.StringIO()
        code = main(["backtest", "--source", str(csv_path), "--from", str(days[0]), "--to", str(days[-1]),
                     "--candles-only", "--json", "--set", f"no_wick_max_fraction={row['no_wick_max_fraction']}",
                     "--set", "stop_buffer_points=0.5"], out=out)
        assert code == 0
        total = json.loads(out.getvalue())["total"]
        assert (row["trades"], row["wins"], row["pnl"], row["max_drawdown"], row["commissions"], row["setups"],
                row["invalidated"]) == (total["trades"], total["wins"], total["pnl"], total["max_drawdown"],
                                        total["commissions"], total["setups"], total["invalidated"])
        assert row["win_rate"] == total["win_rate"]


def test_a_worker_holding_other_candles_refuses_the_task() -> None:
    plan = make_plan(parse_grid("[grid]\nmin_risk_reward=[1]"), trading_days(weeks(1)))
    one, two = pack(list(weeks(1))), pack(list(weeks(1, seed=2)))
    with pytest.raises(SlobError, match="mixed two sweeps' data"):
        run_task(two, plan.tasks(one)[0])


# -- collecting results ----------------------------------------------------------------------


def _task(i: int) -> Task:
    plan = make_plan(parse_grid("[grid]\nmin_risk_reward=[1]"), [dt.date(2024, 1, 8)])
    return Task(i, plan.combinations[0].config, plan.windows, "d")


def _result(i: int, *pnls: float) -> TaskResult:
    return TaskResult(i, (WindowFigures(10, 1, 0, pnls, 4.5 * len(pnls), 0, 0),))


def test_collect_keeps_a_result_that_arrives_twice_once_and_notices_a_missing_one() -> None:
    tasks = [_task(1), _task(2)]
    seen: list[tuple[int, int, int]] = []

    def run(accept: object) -> None:
        assert callable(accept)
        for r in (_result(2, 5.0), _result(1, -3.0), _result(2, 5.0)):  # 2 finished twice: a rerun
            accept(r)

    results = collect(tasks, run, lambda r, done, total: seen.append((r.combination, done, total)))
    assert results == {1: _result(1, -3.0), 2: _result(2, 5.0)}
    assert seen == [(2, 1, 2), (1, 2, 2)]
    with pytest.raises(SlobError, match="without the results of 1 combination\\(s\\) \\(2\\)"):
        collect(tasks, lambda accept: accept(_result(1, 1.0)))
    with pytest.raises(SlobError, match="did not ask for"):
        collect(tasks, lambda accept: accept(_result(7, 1.0)))


# -- the table and the summary ---------------------------------------------------------------


def _wf_plan() -> Plan:
    days = [dt.date(2024, 1, 8) + dt.timedelta(days=d) for d in (0, 1, 2, 3, 4, 7, 8, 9)]
    grid = parse_grid("[grid]\nmin_risk_reward=[1, 2, 3]\n[walk_forward]\nin_sample_days=2\nout_of_sample_days=2")
    return make_plan(grid, days)


def _wf_result(i: int, windows: list[tuple[float, ...]]) -> TaskResult:
    return TaskResult(i, tuple(WindowFigures(100, 2, 1, p, 4.5 * len(p), 0, 0) for p in windows))


def test_walk_forward_figures_and_the_overfitting_warning() -> None:
    plan = _wf_plan()
    assert [(w.fold, w.sample) for w in plan.windows] == [(1, "in"), (1, "out"), (2, "in"), (2, "out"),
                                                          (3, "in"), (3, "out")]
    results = {
        # great in sample, loses out of sample: the tuner's trap
        1: _wf_result(1, [(500.0, 300.0), (-100.0,), (400.0,), (-50.0, -60.0), (600.0,), (10.0,)]),
        # modest but steady
        2: _wf_result(2, [(100.0,), (90.0,), (80.0,), (70.0, 20.0), (100.0,), (60.0,)]),
        # nothing
        3: _wf_result(3, [(), (), (), (), (), ()]),
    }
    rows = build_rows(plan, results)
    one, two, three = records(rows)
    assert (one["is_trades"], one["is_pnl"], one["is_pnl_per_day"]) == (4, 1800.0, 300.0)
    assert (one["oos_trades"], one["oos_pnl"], one["oos_pnl_per_day"]) == (4, -200.0, -33.33)
    assert one["oos_max_drawdown"] == 210.0  # -100, -50, -60 chained; +10 after
    assert one["is_max_drawdown"] == 0.0  # each in-sample window alone never falls
    assert one["oos_vs_is"] == round(-200 / 6 / 300, 6) and one["overfit"] is True
    assert two["oos_vs_is"] == round((240 / 6) / (280 / 6), 6) and two["overfit"] is False
    assert three["oos_vs_is"] is None and three["overfit"] is False and three["oos_win_rate"] is None
    summary = summarize(plan, rows, results, top=2)
    assert [r.combination for r in summary.best] == [2, 3]  # by out-of-sample P&L
    assert [p.combination for p in summary.picks] == [1, 1, 1]  # the best in sample, every fold
    assert summary.walk_forward_pnl == -200.0
    assert any("the best in-sample combination of each fold made 300.00 USD/day in sample but -33.33" in w
               for w in summary.warnings)
    assert any("1 of the 2 best in-sample combinations" in w and "combination 1;" in w for w in summary.warnings)


def test_no_warning_when_out_of_sample_keeps_up() -> None:
    plan = _wf_plan()
    steady = [(100.0,), (100.0,), (100.0,), (100.0,), (100.0,), (100.0,)]
    results = {i: _wf_result(i, steady) for i in (1, 2, 3)}
    summary = summarize(plan, build_rows(plan, results), results)
    assert summary.warnings == ()
    assert [r.combination for r in summary.best] == [1, 2, 3]  # ties: grid order


def test_the_csv_is_one_line_per_combination_in_grid_order_whatever_order_results_came_in() -> None:
    plan = _wf_plan()
    results = {i: _wf_result(i, [(float(i),)] * 6) for i in (3, 1, 2)}
    out = io.StringIO()
    write_csv(plan, build_rows(plan, results), out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("combination,min_risk_reward,is_trades,is_wins,is_win_rate,is_pnl,")
    assert lines[0].endswith(",oos_vs_is,overfit")
    assert [line.split(",")[:2] for line in lines[1:]] == [["1", "1.0"], ["2", "2.0"], ["3", "3.0"]]
