"""`slob sim`: scenarios, scheduled faults (seen by IB's own client), and the real process."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from support.ib_app import RecordingApp, future

from slob.cli import main
from slob.commands import sim
from slob.strategy.setup_tracker import SetupReady, SetupTracker

UTC = dt.timezone.utc


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    sim.add_arguments(p)
    return p.parse_args(["--port", "0", *argv])


class Running:
    """``slob sim``'s core (build + serve) on a thread, stopped by an event."""

    def __init__(self, *argv: str) -> None:
        self.args = parse(*argv)
        self.tws, self.described = sim.build(self.args)
        self.out = io.StringIO()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=sim.serve, args=(self.tws, self.args.fault, self.stop, self.out))

    def __enter__(self) -> "Running":
        self.tws.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.tws.stop()


@pytest.fixture
def app_for() -> Iterator[Any]:
    apps: list[RecordingApp] = []

    def connect(port: int) -> RecordingApp:
        apps.append(RecordingApp().start(port))
        return apps[-1]

    yield connect
    for app in apps:
        app.stop()


def front_trades(app: RecordingApp, count: int) -> list[tuple[Any, ...]]:
    """Subscribe to the NQ front month's trades; the first ``count`` of them."""
    app.reqContractDetails(900, future("NQ"))
    app.wait_for("contractDetailsEnd")
    rows = [a[1] for a in app.named("contractDetails")]
    contract = min(rows, key=lambda d: d.contract.lastTradeDateOrContractMonth).contract
    app.reqTickByTickData(1, contract, "AllLast", 0, False)
    trades: list[tuple[Any, ...]] = app.wait_for("tickByTickAllLast", count)[:count]
    return trades


# -- fault syntax ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, kind, at, extra", [
    ("drop@30", "drop", 30.0, {}),
    ("stall:5@60", "stall", 60.0, {"seconds": 5.0}),
    ("restart:10@90", "restart", 90.0, {"seconds": 10.0}),
    ("1100@1.5", "lost", 1.5, {"code": 1100}),
    ("1101@120", "restored", 120.0, {"code": 1101}),
    ("1102@2m", "restored", 120.0, {"code": 1102}),
    ("error:10197@45", "error", 45.0, {"code": 10197}),
    ("error:1101@0", "error", 0.0, {"code": 1101}),  # the bare message, without acting it out
    ("10197@45s", "error", 45.0, {"code": 10197}),
    ("garbage@1", "garbage", 1.0, {"garbage": "bad_id"}),
    ("garbage:oversize@1", "garbage", 1.0, {"garbage": "oversize"}),
])
def test_fault_specs_parse(spec: str, kind: str, at: float, extra: dict[str, Any]) -> None:
    f = sim.fault(spec)
    assert (f.spec, f.kind, f.at) == (spec, kind, at)
    for name, value in extra.items():
        assert getattr(f, name) == value


@pytest.mark.parametrize("spec, message", [
    ("drop", "has no time: write WHAT@SECONDS"),
    ("drop@", "must be a number of seconds >= 0"),
    ("drop@-1", "must be a number of seconds >= 0"),
    ("drop:3@1", "drop takes no argument"),
    ("stall@60", "stall needs a duration: stall:SECONDS@WHEN"),
    ("restart:0@5", "the restart duration must be more than 0 seconds"),
    ("error@5", "error needs a code"),
    ("error:abc@5", "the error code must be a number"),
    ("boom@5", "unknown fault 'boom'"),
    ("garbage:noise@5", "garbage is one of bad_id, truncated, oversize"),
])
def test_bad_fault_specs_are_usage_errors(spec: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        sim.fault(spec)
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--fault", spec])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# -- faults on a schedule, seen by IB's client ---------------------------------------------


def test_error_codes_fire_on_schedule(app_for: Any) -> None:
    with Running("--speed", "max", "--fault", "1101@0.2", "--fault", "error:10197@0") as running:
        app = app_for(running.tws.port)
        assert app.wait_error(10197)[3] == "No market data during competing live session"
        assert app.wait_error(1101)[3].endswith("restored - data lost.")
    lines = running.out.getvalue().splitlines()
    assert [line.split(" at ")[0] for line in lines] == ["fault error:10197@0", "fault 1101@0.2"]
    assert lines[0].endswith(": sent error 10197 to every client")
    assert "1101: connectivity restored, data lost" in lines[1]


def test_drop_closes_the_clients_connection(app_for: Any) -> None:
    with Running("--fault", "drop@0") as running:
        app = app_for(running.tws.port)
        app.wait_for("connectionClosed")
    assert "closed 1 client socket(s)" in running.out.getvalue()


def test_restart_closes_the_connection_and_refuses_new_ones(app_for: Any) -> None:
    with Running("--fault", "restart:60@0") as running:
        app = app_for(running.tws.port)
        app.wait_for("connectionClosed")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", running.tws.port), timeout=5).close()


# -- scenarios -------------------------------------------------------------------------------


def test_planted_day_holds_a_short_then_a_long_setup() -> None:
    candles = sim.planted_day()
    tracker = SetupTracker()
    ready = [e for c in candles for e in tracker.on_candle(c) if isinstance(e, SetupReady)]
    assert [(r.setup_id, r.direction.value) for r in ready] == [
        ("NQ-20250305-short-1532-1", "short"), ("NQ-20250305-long-1607-1", "long")]
    assert all(b.start == a.end for a, b in zip(candles, candles[1:]))  # one contiguous day


def test_planted_scenario_streams_the_planted_candles(app_for: Any) -> None:
    candles = sim.planted_day()
    with Running("--speed", "max", "--scenario", "planted") as running:
        assert running.described.startswith("planted SLOB day 2025-03-05: 438 one-minute candles")
        app = app_for(running.tws.port)
        trades = front_trades(app, 4)
    first = candles[0]
    assert [t[2] for t in trades] == [int(first.start.timestamp()) + s for s in (0, 15, 30, 59)]
    assert trades[0][3] == first.open and trades[-1][3] == first.close
    assert {trades[1][3], trades[2][3]} == {first.high, first.low}


def test_planted_scenario_needs_a_weekday(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--port", "0", "--scenario", "planted", "--start", "2025-03-08"], out=io.StringIO()) == 1
    assert "cannot plant setups on 2025-03-08 (Saturday)" in capsys.readouterr().err


TRADES = [("2025-03-05T14:30:00Z", 20000.25, 2), ("2025-03-05T14:30:01+00:00", 20000.5, 1),
          ("1741185005", 19999.75, 7)]  # 2025-03-05 14:30:05 UTC as Unix seconds


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_a_trades_file_is_replayed(suffix: str, tmp_path: Path, app_for: Any) -> None:
    path = tmp_path / f"trades.{suffix}"
    if suffix == "csv":
        path.write_text("# my trades\ntime,price,size,venue\n\n"
                        + "".join(f"{t},{p},{s},CME\n" for t, p, s in TRADES))
    else:
        path.write_text(json.dumps([{"time": t, "price": p, "size": s} for t, p, s in TRADES]))
    with Running("--speed", "max", "--scenario", str(path)) as running:
        assert running.tws.clock.now() <= dt.datetime(2025, 3, 5, 14, 30, tzinfo=UTC)
        app = app_for(running.tws.port)
        trades = front_trades(app, 3)
    start = int(dt.datetime(2025, 3, 5, 14, 30, tzinfo=UTC).timestamp())
    assert [(t[2] - start, t[3], int(t[4])) for t in trades] == [(0, 20000.25, 2), (1, 20000.5, 1), (5, 19999.75, 7)]


@pytest.mark.parametrize("content, message", [
    ("time,price\n2025-03-05T14:30:00Z,20000\n", "the first line must be a header naming time, price and size"),
    ("time,price,size\n2025-03-05T14:30:00Z,20000.1,1\n", "line 2: price 20000.1 is not a positive multiple"),
    ("time,price,size\n\n2025-03-05T14:30:00Z,20000,1\nyesterday,20000,1\n", "line 4: time 'yesterday' is neither"),
    ("time,price,size\n2025-03-05T14:30:00Z,20000,0.5\n", "line 2: size 0.5 is not a whole number"),
    ("time,price,size\n", "holds no trades"),
])
def test_a_bad_trades_file_is_an_explained_error(content: str, message: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["sim", "--port", "0", "--scenario", str(path)], out=io.StringIO()) == 1
    assert message in capsys.readouterr().err


def test_unknown_scenarios_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for value, message in (("walk", "is not a scenario"), (str(tmp_path / "none.csv"), "no trades file at")):
        with pytest.raises(SystemExit) as exc:
            main(["sim", "--scenario", value])
        assert exc.value.code == 2 and message in capsys.readouterr().err


# -- the real process ------------------------------------------------------------------------


def test_sim_serves_any_client_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "slob.cli", "sim", "--port", "0", "--speed", "max", "--fault", "error:10197@0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        assert proc.stdout.readline().startswith("scenario: random walk, seed 1")
        assert proc.stdout.readline() == "faults (seconds after the first client connects): error:10197@0\n"
        app = RecordingApp().start(int(match.group(1)))
        try:
            app.wait_error(10197)
            app.reqContractDetails(1, future("ES"))
            app.wait_for("contractDetailsEnd")
            assert len(app.named("contractDetails")) == 21  # ES lists 21 quarterly expiries
        finally:
            app.stop()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        rest = proc.stdout.read()
        assert "fault error:10197@0 at +0.0 s: sent error 10197 to every client" in rest
        assert rest.endswith("fake TWS stopped\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
