"""The command line's rough edges (issue 16), each through `slob.cli.main(argv)` or, where
a pipe or a busy port is involved, a real process."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from slob.cli import main
from slob.commands import checkpoint, sim
from slob.commands.common import EXIT_PIPE, for_command_line
from slob.commands.run import OPTIONS as RUN_OPTIONS
from slob.config.ib_config import IBConfig
from slob.ib.errors import LiveTradingRefused, MarketDataNotSubscribed
from slob.store.store import Store

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "data" / "captures" / "api_future_campaign_mes.jsonl"
SECONDS = 60  # upper bound for a child process; never reached when things work
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("SLOB_")}


def slob(*argv: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "slob.cli", *argv], stdout=stdout, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, timeout=SECONDS, env=CLEAN_ENV)


# -- pipes closed early (| head) ----------------------------------------------------------


def into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    """``slob ARGV`` writing into a pipe whose reader is already gone, as ``| head`` leaves
    it once it has its lines: the first write fails (EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return slob(*argv, stdout=write)
    finally:
        os.close(write)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "slob.sqlite3"
    Store(db).close()
    return db


@pytest.mark.parametrize("argv", [
    pytest.param(["report", "--json", "--from", "2025-03-05"], id="report --json"),
    pytest.param(["report", "--from", "2025-03-05"], id="report"),
    pytest.param(["contracts", "NQ"], id="contracts"),
    pytest.param(["decode", str(CAPTURE)], id="decode"),
])
def test_a_reader_that_goes_away_ends_the_command_quietly(argv: list[str], store: Path) -> None:
    if argv[0] == "report":
        argv = [*argv, "--db", str(store)]
    done = into_closed_pipe(*argv)
    assert done.returncode == EXIT_PIPE and done.stderr == "", done.stderr  # no traceback, no blame


def test_decode_still_blames_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(tmp_path / "missing.jsonl")], out=io.StringIO()) == 1
    assert capsys.readouterr().err.startswith(f"slob: cannot read {tmp_path / 'missing.jsonl'}")


# -- slob sim ---------------------------------------------------------------------------------


def test_sim_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = slob("sim", "--port", str(port))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"slob: port {port} on 127.0.0.1 is already in use (another slob sim, or TWS / IB Gateway itself?): "
        "stop that, or choose another port with --port (0 = any free port)"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.invalid"])
def test_sim_binds_loopback_only_and_says_so_as_a_usage_error(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--host", host, "--port", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --host: " in err and "loopback" in err and "Traceback" not in err


def test_sim_accepts_localhost_and_ipv6_loopback() -> None:
    assert sim.loopback("localhost") == "127.0.0.1" and sim.loopback("::1") == "::1"


def test_sim_help_says_speed_zero_is_paused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "0 = paused" in help_text and "DU123456" in help_text


def test_sims_default_account_is_the_design_examples() -> None:
    p = argparse.ArgumentParser()
    sim.add_arguments(p)
    tws, _ = sim.build(p.parse_args(["--port", "0"]))
    assert sim.DEFAULT_ACCOUNT == "DU123456" and tws.accounts == ("DU123456",)


@pytest.mark.asyncio
async def test_the_design_example_runs_against_slob_sim_as_written(tmp_path: Path) -> None:
    from slob.live import IBWSFetcher, LiveTradingEngine, Tick

    p = argparse.ArgumentParser()
    sim.add_arguments(p)
    tws, _ = sim.build(p.parse_args(["--port", "0", "--speed", "60"]))
    with tws:
        ib_fetcher = IBWSFetcher(host="127.0.0.1", port=tws.port, client_id=1, account="DU123456")
        engine = LiveTradingEngine(data_source="ib", ib_fetcher=ib_fetcher, symbols=["NQ"], paper_trading=True,
                                   store=tmp_path / "slob.sqlite3")
        got = asyncio.Event()
        await engine.start()
        engine.bus.subscribe(Tick, lambda _: got.set())
        try:
            await asyncio.wait_for(got.wait(), SECONDS)
        finally:
            await engine.stop()
    assert engine.executor is not None and engine.executor.reconciliations >= 1


# -- fix texts worded for the command line --------------------------------------------------


def test_a_live_port_from_a_config_file_names_live_not_allow_live(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "slob.toml"
    config.write_text("[ib]\nport = 7496\n", encoding="utf-8")
    assert main(["run", "--config", str(config), "--check"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"slob: config file {config}: [ib] port = 7496: port 7496 is a live-trading port")
    assert "add --live" in err and "allow_live" not in err and "paper_trading" not in err


def test_checkpoint_on_a_live_port_names_its_own_live_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checkpoint", "--port", "7496", "--report-dir", str(tmp_path)], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "add --live" in err and "allow_live" not in err
    # --live is accepted, and confirmed as `slob run` confirms it
    assert main(["checkpoint", "--port", "7496", "--live", "--report-dir", str(tmp_path)], out=io.StringIO()) == 1
    assert capsys.readouterr().err.strip() == "slob: live trading needs the account named, to confirm it: give --account"
    argv = ["checkpoint", "--port", "7496", "--live", "--account", "U1234567", "--report-dir", str(tmp_path)]
    assert main(argv, out=io.StringIO()) == 1  # stdin is not a terminal here
    assert "--confirm-live U1234567" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_takes_the_data_type() -> None:
    p = argparse.ArgumentParser()
    checkpoint.add_arguments(p)
    config = checkpoint.ib_config(p.parse_args(["--data-type", "delayed"]))
    assert (config.data_type, config.tick_source, config.paper_trading) == ("delayed", "market_data", True)
    config = checkpoint.ib_config(p.parse_args(["--data-type", "delayed", "--tick-source", "market_data",
                                                "--port", "4002"]))
    assert config.port == 4002


def test_market_data_fixes_name_the_flags_where_the_command_has_them() -> None:
    text = str(MarketDataNotSubscribed(10189, 4, "no permission", "NQ"))
    assert "data_type='delayed'" in text  # the library's wording, for library users
    run = for_command_line(text, "run", RUN_OPTIONS)
    assert "add --data-type delayed for 15-minute delayed data with --tick-source market_data" in run
    assert "data_type" not in run and "tick_source" not in run
    assert for_command_line(text, "contracts", {"--host", "--port"}) == text  # no such flags: kept


def test_a_setting_without_a_flag_is_named_as_the_config_files_key() -> None:
    text = "data_type='delayed' needs tick_source='market_data': IB has no delayed tick-by-tick data"
    assert for_command_line(text, "x", {"--config"}) == (
        "data_type = 'delayed' in the config file's [ib] section needs tick_source = 'market_data' in the config "
        "file's [ib] section: IB has no delayed tick-by-tick data")


def test_the_live_opt_in_is_named_as_the_flag() -> None:
    with pytest.raises(LiveTradingRefused) as exc:
        IBConfig(port=4001)
    assert for_command_line(str(exc.value), "run", RUN_OPTIONS).endswith("to trade live, add --live deliberately.")


# -- contracts ------------------------------------------------------------------------------------


def test_contracts_for_an_unknown_root_is_one_line_naming_the_fakes_roots(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "XYZ"], out=io.StringIO()) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slob: no contract found for XYZ"), captured.err
    assert "The embedded fake TWS knows the roots ES, MES, MNQ, NQ" in lines[0]


# -- checkpoint --sim's report -----------------------------------------------------------------


def test_the_sim_faults_line_counts_the_faults_it_lists() -> None:
    from slob.ops.checkpoint import render_text

    faults = [{"at_seconds": 1.0 + i, "fault": f"fault {i}"} for i in range(7)]
    text = _render_with_sim(render_text, {"speed": 60, "fault": "none", "faults": faults})
    assert "sim faults  7 injected: the recoverable schedule, no failing fault added\n" in text
    assert "(none)" not in text
    text = _render_with_sim(render_text, {"speed": 60, "fault": "long-stall", "faults": faults[:3]})
    assert "sim faults  3 injected: the recoverable schedule, --sim-fault long-stall added (the run should FAIL)" in text


def _render_with_sim(render: Callable[[dict[str, Any]], str], sim_info: dict[str, object]) -> str:
    """The text of a checkpoint report (a quiet minute) whose run had ``sim_info``."""
    from slob.ops.checkpoint import CheckpointRecorder, ClockMap
    from slob.market.sessions import CmeHours

    start = dt.datetime(2024, 12, 2, 15, tzinfo=dt.timezone.utc)
    rec = CheckpointRecorder("NQ", hours=CmeHours.default(), clock=ClockMap(start, start, 1.0),
                             stream_start=start, max_gap_seconds=60)
    report = rec.report(real_end=start + dt.timedelta(seconds=60), run={"mode": "sim", "sim": sim_info},
                        stats={}, feed_error=None)
    return render(report)
