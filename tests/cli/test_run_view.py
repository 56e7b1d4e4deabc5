"""`slob run`'s live view: a real `slob run` against the planted day of `slob sim` shows
fills, closed trades and P&L as they happen, and status lines with the figures; the
engine behind it creates its store only once connected and stores orders on the exchange
clock its fills carry."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from slob.commands import sim
from slob.commands.live_view import LinesView, Rate, status_line
from slob.ib.errors import SlobError
from slob.live import IBWSFetcher
from slob.live.live_trading_engine import LiveTradingEngine
from slob.store.store import Store
from slob.testing import FakeTWS

SECONDS = 120  # upper bound for any one wait on the child; never reached when things work
SHORT, LONG = "NQ-20250305-short-1532-1", "NQ-20250305-long-1607-1"
PLANTED_DAY = dt.date(2025, 3, 5)
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("SLOB_")}


def planted_sim(speed: str) -> FakeTWS:
    p = argparse.ArgumentParser()
    sim.add_arguments(p)
    tws, _ = sim.build(p.parse_args(["--port", "0", "--scenario", "planted", "--speed", speed]))
    return tws


@pytest.mark.timeout(300)
def test_run_against_the_planted_day_shows_fills_closes_and_pnl_as_they_happen(tmp_path: Path) -> None:
    db = tmp_path / "slob.sqlite3"
    with planted_sim("900") as tws:
        proc = subprocess.Popen(
            [sys.executable, "-m", "slob.cli", "run", "--port", str(tws.port), "--account", "DU123456",
             "--db", str(db), "--status-every", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**CLEAN_ENV, "PYTHONUNBUFFERED": "1"})
        seen: list[str] = []
        try:
            assert proc.stdout is not None
            while not any(line.startswith(f"trade {LONG} closed") for line in seen):
                line = proc.stdout.readline()  # bounded by the test's timeout
                assert line, f"slob run ended early: {seen[-5:]} {proc.stderr.read() if proc.stderr else ''}"
                seen.append(line.rstrip("\n"))
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=SECONDS)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    lines = seen + out.splitlines()
    assert proc.returncode == 0, err

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix))

    # the events, in the order they happen
    order = [first(f"orders for {SHORT}: short 1 NQH5"),
             first("fill SLD 1 NQH5 @ "),
             first("fill BOT 1 NQH5 @ 19949.50"),
             first(f"trade {SHORT} closed at its target: +"),
             first(f"orders for {LONG}: long 1 NQH5"),
             first(f"trade {LONG} closed at its stop: -")]
    assert order == sorted(order)
    assert f"(entry of {SHORT}, order 1); position -1" in lines[order[1]]
    assert f"(target of {SHORT}, order 2); position +0" in lines[order[2]]
    assert f"order 3 (stop of {SHORT}) cancelled: its target filled (one cancels the other)" in lines
    short_pnl = float(lines[order[3]].split(": ")[1].split(" USD")[0].replace(",", ""))
    long_pnl = float(lines[order[5]].split(": ")[1].split(" USD")[0].replace(",", ""))
    assert short_pnl > 0 > long_pnl
    assert lines[order[5]].endswith(f"realized {short_pnl + long_pnl:+,.2f} USD")
    # status lines come while it runs (the day lasts minutes of real time at 900x)
    status = [line for line in seen if line.startswith("connection streaming, server v")]
    assert status and all("ticks " in s and "realized P&L" in s and "open P&L" in s for s in status)
    in_trade = [s for s in status if "position -1 NQH5" in s]
    if in_trade:  # a status line fell inside the short trade: it marks the position
        assert f"{SHORT} ready, in trade" in in_trade[0] and "open P&L +0.00 USD" not in in_trade[0]
    final = next(line for line in lines if line.startswith("final: "))
    assert f"realized P&L {short_pnl + long_pnl:+,.2f} USD" in final and "orders 2 brackets, 4 fills, 2 closed" in final
    assert "position +0" in final and "gaps 0" in final and "connection stopped" in final
    # the cancels of the other exit legs are not warnings: stderr has the signal's line only
    assert all(line.endswith("slob.live.engine = SIGTERM: stopping") for line in err.splitlines()), err
    # one clock: orders are stored on the exchange's timeline, as their fills are
    with Store(db) as store:
        orders, fills = store.orders(), store.fills()
    assert len(orders) == 6 and len(fills) == 4
    assert {o.created.date() for o in orders} == {f.time.date() for f in fills} == {PLANTED_DAY}
    for o in orders:
        assert o.updated.date() == PLANTED_DAY


def test_a_status_line_joins_the_fields_and_lines_view_prints_them_on_demand() -> None:
    out = io.StringIO()
    fields = [("connection", "streaming, server v200"), ("ticks", "5 (1/s)")]
    view = LinesView(out, lambda: "t", lambda: fields, every=0)
    with view:
        view.say("an event")
        view.status()
    assert out.getvalue() == "an event\nconnection streaming, server v200  ticks 5 (1/s)\n"
    assert status_line(fields) == "connection streaming, server v200  ticks 5 (1/s)"


def test_rate_counts_per_second_of_its_clock() -> None:
    now = [0.0]
    rate = Rate(clock=lambda: now[0])
    assert rate(0) == 0.0
    now[0] = 0.5
    assert rate(50) == 100.0
    now[0] = 2.0
    assert rate(80) == pytest.approx(20.0)


@pytest.mark.asyncio
async def test_the_engine_names_its_store_before_start_and_creates_it_only_once_connected(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "data" / "slob.sqlite3"
    engine = LiveTradingEngine(ib_fetcher=IBWSFetcher(port=port, client_id=5), store=db)
    stats = engine.get_stats()
    assert stats["store"] == str(db) and stats["store_open"] is False
    with pytest.raises(SlobError):
        await engine.start()
    await engine.stop()
    assert not db.parent.exists()
    defaulted = LiveTradingEngine(data_dir=tmp_path / "elsewhere")
    assert defaulted.get_stats()["store"] == str(tmp_path / "elsewhere" / "slob.sqlite3")
