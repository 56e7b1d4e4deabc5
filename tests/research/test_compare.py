"""Paper against backtest (slob report --compare-backtest) on the demo's store, as
recorded and with paper made to differ."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from slob.cli import main
from slob.ops.demo import demo_days
from slob.research.backtest import BacktestConfig
from slob.research.compare import compare_store
from slob.research.settings import apply_settings

FIRST, LAST = dt.date(2025, 3, 5), dt.date(2025, 3, 6)
SHORT, LONG = (d.setup_id for d in demo_days())


def _compare_json(db: Path) -> list[dict]:  # type: ignore[type-arg]
    out = io.StringIO()
    assert main(["report", "--db", str(db), "--from", str(FIRST), "--to", str(LAST), "--json",
                 "--compare-backtest"], out=out) == 0
    result: list[dict] = json.loads(out.getvalue())["compare_backtest"]  # type: ignore[type-arg]
    return result


def test_the_demos_paper_trades_match_the_backtest_exactly(demo_db: Path) -> None:
    days = _compare_json(demo_db)
    assert [d["day"] for d in days] == ["2025-03-05", "2025-03-06"]
    rows = [s for d in days for s in d["setups"]]
    assert [(r["setup_id"], r["status"]) for r in rows] == [(SHORT, "matched"), (LONG, "matched")]
    assert all(r["entry_slippage"] == 0 and r["exit_slippage"] == 0 and r["pnl_difference"] == 0 for r in rows)
    text = io.StringIO()
    assert main(["report", "--db", str(demo_db), "--from", str(FIRST), "--to", str(LAST), "--compare-backtest"],
                out=text) == 0
    assert "paper against backtest" in text.getvalue() and "2025-03-06: 1 matched" in text.getvalue()


def test_slippage_and_a_missing_paper_trade_are_shown_with_the_reason(demo_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "paper.sqlite3"
    shutil.copy(demo_db, db)
    with closing(sqlite3.connect(db)) as conn, conn:
        short_orders = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE setup_id = ? ORDER BY order_id",
                                                   (SHORT,))]
        long_orders = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE setup_id = ?", (LONG,))]
        # paper sold its short entry a tick lower than the candle's open, and made 5 USD less for it
        conn.execute("UPDATE fills SET price = price - 0.25 WHERE order_id = ?", (short_orders[0],))
        conn.execute("UPDATE fills SET realized_pnl = realized_pnl - 5 WHERE realized_pnl IS NOT NULL "
                     "AND order_id IN (?, ?, ?)", short_orders)
        # and the long's fills never reached the store
        conn.execute(f"DELETE FROM fills WHERE order_id IN ({','.join('?' * len(long_orders))})", long_orders)
    days = _compare_json(db)
    rows = {s["setup_id"]: s for d in days for s in d["setups"]}
    short = rows[SHORT]
    assert short["status"] == "matched" and short["entry_slippage"] == 0.25 and short["exit_slippage"] == 0
    assert short["pnl_difference"] == -5.0
    long = rows[LONG]
    assert long["status"] == "backtest only" and long["paper_pnl"] is None and long["backtest_pnl"] == -299.5
    assert long["why"] == "paper: bracket placed but not closed in the store"
    assert days[0]["pnl_difference"] == -5.0 and days[1]["backtest_only"] == 1


def test_a_trade_the_backtest_would_not_take_says_why(demo_db: Path) -> None:
    picky = apply_settings(BacktestConfig(), ["min_risk_reward=20"])
    rows = [r for d in compare_store(demo_db, FIRST, LAST, config=picky) for r in d.rows]
    assert [(r.setup_id, r.status) for r in rows] == [(SHORT, "paper only"), (LONG, "paper only")]
    assert all(r.why.startswith("backtest: invalidated (trigger rejected: reward/risk") for r in rows)
    assert all(r.entry_slippage is None and r.pnl_difference is None for r in rows)
