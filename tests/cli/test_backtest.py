"""`slob backtest` and `slob export` on the command line, over the demo's store and CSV files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from slob.cli import main
from slob.ops.demo import run_demo
from slob.research import frame


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    assert not run_demo(seconds=0.0, db=db).problems
    return db


def _run(*argv: str) -> str:
    out = io.StringIO()
    assert main(list(argv), out=out) == 0
    return out.getvalue()


def test_tables_trades_csv_and_equity_curve(demo_db: Path, tmp_path: Path) -> None:
    trades, equity = tmp_path / "trades.csv", tmp_path / "equity.csv"
    text = _run("backtest", "--db", str(demo_db), "--trades", str(trades), "--equity", str(equity))
    assert "2025-03-05" in text and "2025-03-06" in text and "+2,496.00" in text and "50.0%" in text
    rows = list(csv.DictReader(io.StringIO(trades.read_text())))
    assert [(r["direction"], r["exit_by"], r["pnl"], r["exact"]) for r in rows] == [
        ("short", "target", "2795.5", "1"), ("long", "stop", "-299.5", "1")]
    curve = list(csv.DictReader(io.StringIO(equity.read_text())))
    assert [r["equity"] for r in curve] == ["0.00", "2795.50", "2496.00"]
    assert curve[1]["setup_id"] == rows[0]["setup_id"]


def test_the_equity_curve_as_charts(demo_db: Path, tmp_path: Path) -> None:
    for name in ("equity.png", "equity.html"):
        _run("backtest", "--db", str(demo_db), "--equity", str(tmp_path / name))
    assert (tmp_path / "equity.png").read_bytes()[:4] == b"\x89PNG"
    assert "Plotly.newPlot" in (tmp_path / "equity.html").read_text()


def test_settings_change_the_strategy_and_the_money(demo_db: Path) -> None:
    base = json.loads(_run("backtest", "--db", str(demo_db), "--json"))
    costly = json.loads(_run("backtest", "--db", str(demo_db), "--json", "--commission", "5", "--slippage-ticks", "1",
                             "--set", "contracts=2", "--set", "max_position=2"))
    assert base["total"]["commissions"] == 9.0 and costly["total"]["commissions"] == 40.0
    # two contracts; a tick (5 USD a contract) of slippage on three market orders: both entries and the
    # stop (the short's exit is its target: a limit does not slip)
    assert costly["total"]["pnl"] == pytest.approx(2 * (base["total"]["pnl"] + 9.0) - 40.0 - 3 * 5.0 * 2)
    picky = json.loads(_run("backtest", "--db", str(demo_db), "--json", "--set", "min_risk_reward=20"))
    assert picky["total"]["trades"] == 0 and picky["config"]["min_risk_reward"] == 20.0
    assert "consolidation_min_candles" in _run("backtest", "--set", "help")


def test_an_unknown_setting_and_an_empty_range_explain_themselves(demo_db: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--db", str(demo_db), "--set", "stopp=3"], out=io.StringIO()) == 1
    assert "no such setting; known:" in capsys.readouterr().err
    assert main(["backtest", "--db", str(demo_db), "--from", "2024-01-02"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "no NQ 1-minute candles" in err and "it holds candles of NQ" in err
    assert main(["backtest", "--db", str(demo_db), "--set", "contracts=0"], out=io.StringIO()) == 1
    assert "contracts must be >= 1" in capsys.readouterr().err


def test_exported_candles_backtest_like_the_store_on_candles_alone(demo_db: Path, tmp_path: Path) -> None:
    candles = tmp_path / "candles.csv"
    _run("export", "candles", "--db", str(demo_db), "--out", str(candles))
    from_csv = json.loads(_run("backtest", "--source", str(candles), "--json"))
    from_store = json.loads(_run("backtest", "--db", str(demo_db), "--json", "--candles-only"))
    assert from_csv["trades"] == from_store["trades"] and from_csv["total"] == from_store["total"]
    assert from_csv["total"]["pnl"] == 2501.0  # the stop at its price: 5 USD better than paper (docs/backtesting.md)


def test_a_csv_without_contracts_gets_the_live_roll_rules_front_month(demo_db: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    with plain.open("w") as f:
        f.write("time,open,high,low,close\n")
        for r in csv.DictReader(io.StringIO(_run("export", "candles", "--db", str(demo_db)))):
            f.write(f"{r['start'][:-1]},{r['open']},{r['high']},{r['low']},{r['close']}\n")  # naive = UTC
    result = json.loads(_run("backtest", "--source", str(plain), "--json"))
    assert [t["contract"] for t in result["trades"]] == ["NQH5", "NQH5"] and result["total"]["trades"] == 2


def test_export_each_table_as_csv_and_parquet_and_as_frames(demo_db: Path, tmp_path: Path) -> None:
    import pyarrow.parquet

    expected = {"ticks": 15_000, "candles": 1_700, "trades": 2, "setups": 4}
    for what, at_least in expected.items():
        text = _run("export", what, "--db", str(demo_db), "--from", "2025-03-05", "--to", "2025-03-06")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) >= at_least, what
        target = tmp_path / f"{what}.parquet"
        _run("export", what, "--db", str(demo_db), "--format", "parquet", "--out", str(target))
        table = pyarrow.parquet.read_table(target)
        assert table.num_rows == len(rows), what
        df = frame(what, db=demo_db, first="2025-03-05", last="2025-03-06")
        assert len(df) == len(rows) and list(df.columns) == list(rows[0]), what
    ticks = frame("ticks", db=demo_db, first="2025-03-06")
    assert str(ticks["time"].dt.tz) == "UTC" and ticks["price"].dtype == "float64"
    trades = frame("trades", db=demo_db)
    assert list(trades["pnl"]) == [2795.5, -299.5]


def test_a_polars_frame_when_polars_is_installed(demo_db: Path) -> None:
    pytest.importorskip("polars", reason="polars is optional (pip install polars); pandas frames are tested above")
    df = frame("candles", db=demo_db, library="polars")
    assert df.height > 1000 and "close" in df.columns
