"""`slob backtest --source ib`: the demo's two days as IB's historical bars from a FakeTWS
that traded them, cached in the store; a second run asks TWS for nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from slob.cli import main
from slob.ops.demo import demo_market
from slob.testing import FakeTWS
from slob.testing.fake_history import record_from_now


def test_the_demo_days_from_ibs_history_trade_like_the_stored_candles_alone(demo_db: Path, tmp_path: Path) -> None:
    market = demo_market()
    start = market.candles[0].start - dt.timedelta(minutes=1)
    db = tmp_path / "history.sqlite3"
    with FakeTWS(start=start, speed=0, scenarios={"NQ": market.script}) as tws:
        record_from_now(tws)
        tws.advance((market.candles[-1].end - start).total_seconds() + 3600)
        argv = ["backtest", "--source", "ib", "--from", "2025-03-05", "--to", "2025-03-06", "--port", str(tws.port),
                "--db", str(db), "--json"]
        out = io.StringIO()
        assert main(argv, out=out) == 0
        asked = sum(1 for r in tws.requests if r.name == "REQ_HISTORICAL_DATA")
        again = io.StringIO()
        assert main(argv, out=again) == 0
        assert sum(1 for r in tws.requests if r.name == "REQ_HISTORICAL_DATA") == asked > 0  # cached
    from_ib = json.loads(out.getvalue())
    assert json.loads(again.getvalue())["trades"] == from_ib["trades"]
    stored = io.StringIO()
    assert main(["backtest", "--db", str(demo_db), "--candles-only", "--json"], out=stored) == 0
    from_store = json.loads(stored.getvalue())
    # IB's bars hold no ticks: exits from the candles, as the demo store's candles alone give them
    assert [(t["setup_id"], t["entry_price"], t["exit_price"], t["pnl"]) for t in from_ib["trades"]] == [
        (t["setup_id"], t["entry_price"], t["exit_price"], t["pnl"]) for t in from_store["trades"]]
    assert from_ib["total"]["pnl"] == 2501.0 and "IB's history" in from_ib["source"]
