"""`slob run`: the configuration loader (pure), the live opt-in, and the command itself as a
real process against FakeTWS (so SIGTERM reaches the engine's own handlers)."""

from __future__ import annotations

import dataclasses
import io
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from support.ib_app import RecordingApp

from slob.cli import main
from slob.commands.run import confirm_live
from slob.config.ib_config import IBConfig
from slob.config.loader import FLAGS, KEYS, RunConfig, load_config, merge, parse_toml
from slob.ib.errors import ConfigError, LiveTradingRefused
from slob.execution.order_executor import RiskConfig
from slob.strategy.setup_tracker import SetupConfig
from slob.store.store import Store
from slob.testing import FakeTWS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("SLOB_")}
SECONDS = 30  # upper bound for any one wait on the child; never reached when things work
STATUS = "connection "  # how `slob run`'s status lines begin


@pytest.fixture(autouse=True)
def no_slob_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLOB_"):
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str, name: str = "slob.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the loader: precedence ---------------------------------------------------------------


def test_defaults_are_the_records_defaults() -> None:
    config = merge()
    assert config.ib == IBConfig() and config.risk == RiskConfig() and config.setup == SetupConfig()
    assert config.engine.symbols == ("NQ",) and config.engine.trade and config.engine.candle_intervals == (60, 300)
    assert config.engine.db is None and config.engine.data_dir is None and not config.live
    assert set(config.sources.values()) == {"default"}


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    path = toml(tmp_path, """
        [ib]
        host = "10.0.0.5"
        port = 4002
        client_id = 11
        account = "DU1111111"
        [engine]
        symbols = ["NQ", "ES"]
        [risk]
        max_position = 4
    """)
    env = {"SLOB_IB_PORT": "7497", "SLOB_IB_CLIENT_ID": "12", "SLOB_RISK_CONTRACTS": "2"}
    config = load_config(config_file=path, env=env, flags={"ib.client_id": 13})
    assert config.ib.host == "10.0.0.5"  # file over default
    assert config.ib.port == 7497  # environment over file
    assert config.ib.client_id == 13  # flag over environment and file
    assert config.ib.account == "DU1111111" and config.engine.symbols == ("NQ", "ES")
    assert config.risk == RiskConfig(contracts=2, max_position=4, max_daily_loss=1000.0)
    assert config.config_file == path
    assert config.sources["ib.host"] == f"config file {path}"
    assert config.sources["ib.port"] == "environment SLOB_IB_PORT"
    assert config.sources["ib.client_id"] == "--client-id"
    assert config.sources["ib.data_type"] == "default"


def test_slob_config_names_the_file_and_config_flag_wins(tmp_path: Path) -> None:
    by_env = toml(tmp_path, "[ib]\nclient_id = 21\n", "env.toml")
    by_flag = toml(tmp_path, "[ib]\nclient_id = 22\n", "flag.toml")
    assert load_config(env={"SLOB_CONFIG": str(by_env)}).ib.client_id == 21
    assert load_config(config_file=by_flag, env={"SLOB_CONFIG": str(by_env)}).ib.client_id == 22
    assert load_config(env={}).config_file is None


def test_environment_strings_are_coerced_to_each_keys_type() -> None:
    env = {
        "SLOB_IB_HOST": " 192.168.1.20 ", "SLOB_IB_PORT": "4002", "SLOB_IB_ACCOUNT": "DU7654321",
        "SLOB_IB_RECONNECT_DELAY_SECONDS": "2.5", "SLOB_IB_DATA_TYPE": "delayed",
        "SLOB_ENGINE_SYMBOLS": "nq, mnq", "SLOB_ENGINE_CANDLE_INTERVALS": "60,300,900",
        "SLOB_ENGINE_TRADE": "no", "SLOB_ENGINE_STORE_TICKS": "FALSE", "SLOB_DATA_DIR": "/var/lib/slob",
        "SLOB_RISK_MAX_DAILY_LOSS": "250", "SLOB_SETUP_MIN_RISK_REWARD": "1.5",
        "SLOB_SETUP_MAX_MISSING_CANDLES": "2", "SLOB_VENV": "/not/ours", "SLOB_IB_CLIENT_ID": "",
    }
    config = merge(env=env)
    assert (config.ib.host, config.ib.port, config.ib.account) == ("192.168.1.20", 4002, "DU7654321")
    assert config.ib.reconnect_delay_seconds == 2.5 and config.ib.client_id == 1  # empty = unset
    # delayed data has no tick-by-tick form, so the tick source follows unless it is set
    assert (config.ib.data_type, config.ib.tick_source) == ("delayed", "market_data")
    assert config.engine.symbols == ("NQ", "MNQ") and config.engine.candle_intervals == (60, 300, 900)
    assert config.engine.trade is False and config.engine.store_ticks is False
    assert config.engine.data_dir == Path("/var/lib/slob")
    assert config.risk.max_daily_loss == 250.0 and isinstance(config.risk.max_daily_loss, float)
    assert config.setup.min_risk_reward == 1.5 and config.setup.max_missing_candles == 2
    assert merge(env={"SLOB_ENGINE_DATA_DIR": "/a"}).engine.data_dir == Path("/a")


@pytest.mark.parametrize("field", dataclasses.fields(SetupConfig), ids=lambda f: f.name)
def test_every_setup_field_is_a_key_of_the_setup_section(tmp_path: Path, field: dataclasses.Field[object]) -> None:
    value = field.default
    path = toml(tmp_path, f"[setup]\n{field.name} = {value!r}\n")
    assert getattr(load_config(config_file=path).setup, field.name) == value
    assert getattr(merge(env={f"SLOB_SETUP_{field.name.upper()}": str(value)}).setup, field.name) == value


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = toml(tmp_path / "etc", '[engine]\ndb = "data/slob.db"\ndata_dir = "/abs"\n')
    engine = load_config(config_file=path).engine
    assert engine.db == tmp_path / "etc" / "data" / "slob.db" and engine.data_dir == Path("/abs")
    assert merge(flags={"engine.db": "rel.db"}).engine.db == Path("rel.db")


def test_live_is_a_flag_not_a_setting(tmp_path: Path) -> None:
    with pytest.raises(LiveTradingRefused, match=r"--port: \[ib\] port = 7496: .*--live"):
        merge(flags={"ib.port": 7496})
    with pytest.raises(LiveTradingRefused, match=r"environment SLOB_IB_ACCOUNT: .*U1234567 is not a paper account"):
        merge(env={"SLOB_IB_ACCOUNT": "U1234567"})
    config = merge(flags={"ib.port": 7496}, live=True)
    assert config.live and config.ib.paper_trading is False and config.ib.allow_live is True
    path = toml(tmp_path, "[ib]\npaper_trading = false\n")
    with pytest.raises(ConfigError, match=r"slob\.toml: \[ib\] paper_trading cannot be set .* --live"):
        load_config(config_file=path)
    with pytest.raises(ConfigError, match="SLOB_IB_ALLOW_LIVE: live trading is enabled only .* --live"):
        merge(env={"SLOB_IB_ALLOW_LIVE": "1"})


# -- the loader: errors name the source, section, key and what is accepted ----------------


@pytest.mark.parametrize(("text", "expected"), [
    ("[ib]\nhots = 'x'\n", r"slob\.toml: \[ib\] unknown key 'hots'; accepted keys: account, .*host, .*tick_source$"),
    ("[engine]\nsymbol = 'NQ'\n",
     r"\[engine\] unknown key 'symbol'; accepted keys: candle_intervals, .*symbols, trade$"),
    ("[trading]\nx = 1\n", r"unknown section \[trading\]; accepted sections: \[ib\], \[engine\], \[risk\], \[setup\]"),
    ("port = 4002\n", r"port = 4002 is outside any section; settings go under \[ib\]"),
    ("[ib]\nport = '7497'\n", r'\[ib\] port = "7497": expected an integer'),
    ("[ib]\nport = true\n", r"\[ib\] port = true: expected an integer"),
    ("[ib]\ndata_type = 'live'\n", r'\[ib\] data_type = "live": expected one of realtime, delayed'),
    ("[ib]\ntick_source = 'ticks'\n", r"expected one of tick_by_tick, market_data"),
    ("[engine]\ntrade = 'yes'\n", r'\[engine\] trade = "yes": expected true or false'),
    ("[engine]\nsymbols = []\n", r"\[engine\] symbols = \[\]: expected at least one non-empty symbol"),
    ("[engine]\ncandle_intervals = [300]\n",
     r"\[engine\] candle_intervals = \[300\]: candle_intervals must include 60"),
    ("[ib]\nport = 70000\n", r"\[ib\] port = 70000: port 70000 is not a TCP port"),
    ("[risk]\ncontracts = 0\n", r"\[risk\] contracts = 0: contracts must be >= 1"),
    ("[risk]\nmax_daily_loss = nan\n", r"\[risk\] max_daily_loss = nan: expected a finite number"),
    ("[setup]\ntick_size = -1\n", r"\[setup\] tick_size = -1\.0: tick_size must be positive"),
    ("[ib]\nport = \n", r"slob\.toml is not valid TOML: .*line 2"),
])
def test_bad_files_name_the_file_section_key_and_what_is_accepted(tmp_path: Path, text: str, expected: str) -> None:
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as exc:
        load_config(config_file=path)
    assert f"config file {path}" in str(exc.value)


@pytest.mark.parametrize(("env", "expected"), [
    ({"SLOB_IB_PORT": "74 97"}, r"environment SLOB_IB_PORT='74 97': \[ib\] port: expected an integer"),
    ({"SLOB_IB_PORT": "7497.0"}, r"SLOB_IB_PORT='7497\.0': \[ib\] port: expected an integer"),
    ({"SLOB_RISK_MAX_DAILY_LOSS": "lots"}, r"\[risk\] max_daily_loss: expected a number"),
    ({"SLOB_ENGINE_TRADE": "maybe"}, r"\[engine\] trade: expected true or false \(also yes/no, on/off, 1/0\)"),
    ({"SLOB_IB_DATA_TYPE": "live"}, r"expected one of realtime, delayed"),
    ({"SLOB_ENGINE_CANDLE_INTERVALS": "60,5m"}, r"\[engine\] candle_intervals: expected a list of whole seconds"),
    ({"SLOB_IB_HOTS": "x"},
     r"environment SLOB_IB_HOTS: \[ib\] has no such key; accepted: SLOB_IB_ACCOUNT, .*SLOB_IB_HOST,"),
    ({"SLOB_RISK_CONTRACTS": "0"}, r"environment SLOB_RISK_CONTRACTS: \[risk\] contracts = 0: contracts must be >= 1"),
    ({"SLOB_DATA_DIR": "/a", "SLOB_ENGINE_DATA_DIR": "/b"}, r"disagree about \[engine\] data_dir"),
])
def test_bad_environment_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        merge(env=env)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml \(from SLOB_CONFIG\) does not exist"):
        load_config(env={"SLOB_CONFIG": str(tmp_path / "nope.toml")})


def test_parse_toml_is_pure_and_keeps_types(tmp_path: Path) -> None:
    layer = parse_toml("[ib]\nport = 4002\n[risk]\nmax_daily_loss = 500\n", tmp_path / "x.toml")
    assert layer["ib.port"][0] == 4002 and layer["risk.max_daily_loss"][0] == 500.0
    assert isinstance(merge(file=layer), RunConfig)


def test_the_reference_documents_every_setting() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for keys in KEYS.values():
        for key in keys:
            assert f"`{key.name}`" in text and f"`{key.env}`" in text, key.dotted
    for flag in FLAGS:
        assert f"`{flag.option}" in text, flag.option
    for extra in ("`--config", "`--live`", "`--confirm-live", "`--no-trade`", "`SLOB_CONFIG`", "`SLOB_DATA_DIR`"):
        assert extra in text
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    config = merge(file=parse_toml(example, Path("/home/me/.config/slob/paper.toml")))
    assert config.ib.port == 4002 and config.engine.data_dir == Path("/home/me/.config/slob/data")


# -- the command in-process: refusals before any connection -------------------------------


class TerminalInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["run", *args], out=sys.stdout)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_live_port_without_live_is_refused_naming_live(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "slob.sqlite3"
    code, out, err = run_in_process(["--port", "7496", "--db", str(db)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("slob: --port: [ib] port = 7496: port 7496 is a live-trading port") and "--live" in err
    assert len(err.splitlines()) == 1 and not db.exists()


def test_live_without_a_terminal_or_confirmation_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("U1234567\n"))  # piped: even the right answer is refused
    db = tmp_path / "slob.sqlite3"
    code, out, err = run_in_process(["--port", "7496", "--account", "U1234567", "--live", "--db", str(db)], capsys)
    assert code == 1 and "LIVE trading via 127.0.0.1:7496 (TWS live)" in out
    assert "stdin is not a terminal" in err and "--confirm-live U1234567" in err and not db.exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--live", "--confirm-live", "U7654321"], "--confirm-live U7654321 does not match the account U1234567"),
    (["--confirm-live", "U1234567"], "--confirm-live confirms live trading: add --live"),
])
def test_a_wrong_or_stray_confirmation_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  args: list[str], expected: str) -> None:
    code, _, err = run_in_process(["--account", "U1234567", "--db", str(tmp_path / "s.db"), *args], capsys)
    assert code == 1 and expected in err


def test_live_needs_the_account_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(["--port", "4001", "--live", "--db", str(tmp_path / "s.db")], capsys)
    assert code == 1 and "live trading needs the account named" in err and "--account" in err


def test_the_terminal_prompt_wants_the_account_id_typed() -> None:
    prompt = io.StringIO()
    confirm_live("U1234567", confirmation=None, stdin=TerminalInput("U1234567\n"), prompt=prompt)
    assert prompt.getvalue() == "Type the account id U1234567 to confirm live trading: "
    for answer in ("yes\n", "u1234567\n", ""):
        with pytest.raises(LiveTradingRefused, match="live trading not confirmed"):
            confirm_live("U1234567", confirmation=None, stdin=TerminalInput(answer), prompt=io.StringIO())
    confirm_live("U1234567", confirmation="U1234567", stdin=io.StringIO(), prompt=prompt)  # no terminal needed


def test_check_prints_the_plan_without_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = toml(tmp_path, '[ib]\nport = 4002\n[engine]\nsymbols = ["NQ", "ES"]\n')
    monkeypatch.setenv("SLOB_DATA_DIR", str(tmp_path / "data"))
    code, out, err = run_in_process(["--config", str(path), "--client-id", "9", "--no-trade", "--check"], capsys)
    assert code == 0 and err == ""
    assert out == (f"slob run: paper trading via 127.0.0.1:4002 (IB Gateway paper); client id 9, account of the "
                   f"login; symbols NQ, ES (realtime, tick_by_tick); no orders (data and setups only); "
                   f"store {tmp_path / 'data' / 'slob.sqlite3'}; config {path}\n")


def test_malformed_flags_are_usage_errors() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--port", "abc"])
    assert exc.value.code == 2


# -- the command as a process -------------------------------------------------------------


class Child:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def line(self) -> str:
        """The next event line (status lines, which come every --status-every seconds, are skipped)."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"slob run ended (exit {self.proc.wait(SECONDS)}): {err}")
            if not line.startswith(STATUS):
                return line.rstrip("\n")

    def finish(self, sig: signal.Signals | None = None) -> tuple[int, str, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=SECONDS)
        return self.proc.returncode, out, err


@contextmanager
def slob_run(*args: str, stdin: int = subprocess.DEVNULL, env: dict[str, str] | None = None) -> Iterator[Child]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "slob.cli", "run", *args], stdin=stdin, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**CLEAN_ENV, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        yield Child(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def streams_until_sigterm(child: Child, tws: FakeTWS) -> tuple[str, str]:
    """The lines of a healthy run: plan, connected, first trade; then SIGTERM, exit 0.
    Returns the plan line and stderr."""
    plan = child.line()
    tws.wait_for_request("REQ_TICK_BY_TICK_DATA", timeout=SECONDS)
    assert child.line() == "connected; streaming NQ -> NQZ4. Ctrl-C or SIGTERM stops cleanly."
    assert child.line().startswith("NQ: first trade ")
    code, out, err = child.finish(signal.SIGTERM)
    assert code == 0, err
    assert out.splitlines()[-1].startswith("stopped: ")
    return plan, err


def assert_recorded(db: Path) -> None:
    with Store(db) as store:
        counts = store.counts()
        assert counts["ticks"] > 0 and counts["candles"] > 0, counts
        assert {c.contract for c in store.candles("NQ", 60)} == {"NQZ4"}


def test_run_streams_into_the_store_until_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "slob.sqlite3"
    with FakeTWS(speed=120) as tws, slob_run("--port", str(tws.port), "--client-id", "3", "--db", str(db)) as child:
        plan, err = streams_until_sigterm(child, tws)
        lines = err.splitlines()  # the engine logs the signal; nothing else goes to stderr
        assert lines and all(line.endswith("slob.live.engine = SIGTERM: stopping") for line in lines), err
        assert plan.startswith(f"slob run: paper trading via 127.0.0.1:{tws.port}; client id 3, account of the login")
        assert f"symbols NQ (realtime, tick_by_tick)" in plan and plan.endswith(f"store {db}")
        names = {r.name for r in tws.requests}
        assert "REQ_OPEN_ORDERS" in names or "REQ_ALL_OPEN_ORDERS" in names  # the executor reconciled
    assert_recorded(db)


def test_live_with_confirm_live_runs_on_a_live_account(tmp_path: Path) -> None:
    with FakeTWS(speed=120, accounts=("U1234567",)) as tws:
        path = toml(tmp_path, f'[ib]\nport = {tws.port}\naccount = "U1234567"\n[engine]\ndb = "store/slob.db"\n')
        with slob_run("--config", str(path), "--live", "--confirm-live", "U1234567") as child:
            plan, _ = streams_until_sigterm(child, tws)
    assert plan.startswith(f"slob run: LIVE trading via 127.0.0.1:{tws.port}; client id 1, account U1234567")
    assert_recorded(tmp_path / "store" / "slob.db")


def test_live_confirmed_by_typing_the_account_at_the_terminal(tmp_path: Path) -> None:
    db = tmp_path / "slob.sqlite3"
    terminal, child_side = pty.openpty()
    try:
        with FakeTWS(speed=120, accounts=("U1234567",)) as tws:
            args = ("--port", str(tws.port), "--account", "U1234567", "--live", "--no-trade", "--db", str(db))
            with slob_run(*args, stdin=child_side) as child:
                os.close(child_side)
                child_side = -1
                os.write(terminal, b"U1234567\n")  # the terminal holds the line until the prompt reads it
                plan, err = streams_until_sigterm(child, tws)
    finally:
        os.close(terminal)
        if child_side >= 0:
            os.close(child_side)
    assert "LIVE trading" in plan and err.startswith("Type the account id U1234567 to confirm live trading: ")
    assert_recorded(db)


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def one_error_line(child: Child) -> str:
    code, out, err = child.finish()
    assert code == 1 and out.startswith("slob run: paper trading"), (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slob: "), err
    return lines[0]


def test_tws_not_running_is_one_line(tmp_path: Path) -> None:
    port = refused_port()
    with slob_run("--port", str(port), "--db", str(tmp_path / "store" / "s.db")) as child:
        line = one_error_line(child)
    assert line.startswith(f"slob: TWS/IB Gateway is not accepting API connections at 127.0.0.1:{port}")
    assert "Enable ActiveX and Socket Clients" in line
    assert not (tmp_path / "store").exists()  # the store is created only once connected


def test_a_port_that_is_not_the_api_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(SECONDS)

        def hang_up() -> None:
            # Accept, say nothing, hang up (FIN, not RST: read until the client closes too).
            conn = server.accept()[0]
            with conn:
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(4096):
                    pass

        closer = threading.Thread(target=hang_up)
        closer.start()
        port = server.getsockname()[1]
        with slob_run("--port", str(port), "--db", str(tmp_path / "s.db")) as child:
            line = one_error_line(child)
        closer.join()
    assert line.startswith(f"slob: 127.0.0.1:{port} closed the connection before greeting")
    assert "Trusted IPs" in line


def test_client_id_in_use_is_one_line(tmp_path: Path) -> None:
    with FakeTWS(speed=0) as tws:
        other = RecordingApp().start(tws.port, client_id=7)
        try:
            env = {"SLOB_IB_CLIENT_ID_RETRIES": "1"}
            with slob_run("--port", str(tws.port), "--client-id", "7", "--db", str(tmp_path / "s.db"),
                          env=env) as child:
                line = one_error_line(child)
        finally:
            other.stop()
    assert line.startswith("slob: client id 7 is already in use by another API session (IB error 326)")
