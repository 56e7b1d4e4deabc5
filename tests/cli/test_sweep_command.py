"""`slob sweep` on the command line: over the demo's store and a generated CSV, walk-forward,
CSV and Parquet tables, progress, and the errors it explains."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from slob.cli import main
from slob.commands.sweep import Progress
from slob.ops.demo import run_demo
from slob.research.bench import _write_csv, generate_year


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    assert not run_demo(seconds=0.0, db=db).problems
    return db


@pytest.fixture(scope="module")
def weeks_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weeks") / "weeks.csv"
    _write_csv(generate_year(6, seed=2), path)
    return path


def _grid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def _run(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def test_a_sweep_of_the_demo_store_is_its_candles_only_backtest(demo_db: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    grid = _grid(tmp_path, "[grid]\nmin_risk_reward = [1.0, 20.0]\n")
    table = tmp_path / "table.csv"
    text = _run("sweep", "--grid", str(grid), "--db", str(demo_db), "--workers", "1", "--out", str(table))
    assert text.startswith("slob sweep: 2 combination(s) x 1 window(s) = 2 backtest(s) of NQ from the store")
    assert "this process" in text and f"wrote {table} (2 rows" in text
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    # the two planted days: the short's target and the long's stop, on candles alone (docs/backtesting.md)
    assert [(r["combination"], r["min_risk_reward"], r["trades"], r["wins"], r["pnl"]) for r in rows] == [
        ("1", "1.0", "2", "1", "2501.0"), ("2", "20.0", "0", "0", "0.0")]
    assert rows[1]["win_rate"] == ""  # no trades: no win rate
    assert "| 1 | min_risk_reward=1.0  |      2 |    50.0% | +2,501.00 | +1,250.50 | 294.50 |" in text
    progress = capsys.readouterr().err.splitlines()
    assert progress[-1].startswith("sweep: 2/2 combinations done, 0:00:")


def test_walk_forward_on_a_local_pool_writes_the_same_table_as_parquet(weeks_csv: Path, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow.parquet")
    grid = _grid(tmp_path, """
        [base]
        slippage_ticks = 1
        [grid]
        no_wick_max_fraction = [0.2, 0.4]
        target_buffer_points = { from = 0.0, to = 1.0, step = 0.5 }
        [walk_forward]
        in_sample_days = 10
        out_of_sample_days = 5
    """)
    one = _run("sweep", "--grid", str(grid), "--source", str(weeks_csv), "--workers", "1", "--out",
               str(tmp_path / "one.csv"), "--no-progress")
    two = _run("sweep", "--grid", str(grid), "--source", str(weeks_csv), "--workers", "2", "--out",
               str(tmp_path / "two.parquet"), "--no-progress", "--top", "3")
    assert "6 combination(s) x 8 window(s) = 48 backtest(s)" in one and "2 local worker processes" in two
    assert "walk-forward: 4 fold(s), 10 in-sample + 5 out-of-sample trading days, stepping 5" in one
    assert "the best in-sample combination of each fold, out of sample" in one
    rows = list(csv.DictReader(io.StringIO((tmp_path / "one.csv").read_text())))
    frame = pa.read_table(tmp_path / "two.parquet").to_pylist()
    assert len(rows) == len(frame) == 6
    for r, f in zip(rows, frame):
        assert set(r) == set(f)
        for key, value in r.items():
            expected = f[key]
            if isinstance(expected, bool):
                assert value == ("true" if expected else "false")
            elif expected is None:
                assert value == ""
            else:
                assert type(expected)(value) == expected, key
    assert [f["target_buffer_points"] for f in frame] == [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]


def test_the_progress_lines_estimate_what_is_left() -> None:
    now = [100.0]
    out = io.StringIO()
    progress = Progress(4, out, clock=lambda: now[0])
    for done, at in ((1, 110.0), (2, 120.0), (4, 140.0)):
        now[0] = at
        progress.update(None, done, 4)  # type: ignore[arg-type]
    assert out.getvalue().splitlines() == [
        "sweep: 1/4 combinations done, 0:00:10 elapsed, about 0:00:30 left",
        "sweep: 2/4 combinations done, 0:00:20 elapsed, about 0:00:20 left",
        "sweep: 4/4 combinations done, 0:00:40 elapsed",
    ]
    quiet = io.StringIO()
    Progress(4, quiet, enabled=False).update(None, 1, 4)  # type: ignore[arg-type]
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("grid, args, words", [
    (None, [], "slob: no grid file at"),
    ("[grid]\nmin_risk_rewrd = [1]", [], "min_risk_rewrd: no such setting"),
    ("[grid]\nmin_risk_reward = [1]\n[walk_forward]\nin_sample_days = 100\nout_of_sample_days = 50", [],
     "the data holds 30"),
    ("[grid]\nmin_risk_reward = [1]", ["--set", "min_risk_reward=2"], "also a [grid] key"),
    ("[grid]\nmin_risk_reward = [1]", ["--from", "2030-01-02"], "no NQ 1-minute candles"),
])
def test_what_it_cannot_do_is_one_line_on_stderr(grid: str | None, args: list[str], words: str, weeks_csv: Path,
                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _grid(tmp_path, grid) if grid is not None else tmp_path / "missing.toml"
    code = main(["sweep", "--grid", str(path), "--source", str(weeks_csv), "--workers", "1", "--out",
                 str(tmp_path / "t.csv"), *args], out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("slob: ") and words in err, err
    assert not (tmp_path / "t.csv").exists()


def test_workers_and_scheduler_are_one_or_the_other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--grid", "g.toml", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
