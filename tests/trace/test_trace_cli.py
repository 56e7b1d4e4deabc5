"""`slob trace` and `slob decode` through slob.cli.main: a traced session of IB's client
against the fake TWS, recorded, decodes to exactly the lines the live trace printed."""

from __future__ import annotations

import io
import math
import socket
import sys
import threading
from pathlib import Path

import pytest
from support.ib_app import RecordingApp

from slob.cli import main
from slob.testing import FakeTWS

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "captures" / "current_time_live_sv225.jsonl"


class Banner(io.StringIO):
    """stderr stand-in that signals once slob trace says it is listening."""

    def __init__(self) -> None:
        super().__init__()
        self.listening = threading.Event()

    def write(self, text: str) -> int:
        if "listening on" in text:
            self.listening.set()
        return super().write(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_trace_once_with_record_then_decode_prints_the_same_lines(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "session.jsonl"
    banner = Banner()
    monkeypatch.setattr(sys, "stderr", banner)
    live = io.StringIO()
    port = _free_port()
    codes: list[int] = []
    with FakeTWS(speed=math.inf) as tws:
        argv = ["trace", "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{tws.port}",
                "--record", str(record), "--once"]
        runner = threading.Thread(target=lambda: codes.append(main(argv, out=live)), name="slob-trace-cli")
        runner.start()
        assert banner.listening.wait(10), banner.getvalue()
        app = RecordingApp().start(port)
        app.reqCurrentTime()
        app.wait_for("currentTime")
        app.stop()
        runner.join(10)
        assert not runner.is_alive() and codes == [0]
    lines = live.getvalue().splitlines()
    assert [line.split(" ")[2:4] for line in lines[:3]] == [["=", "OPEN"], [">", "HELLO"], ["<", "GREETING"]]
    assert any(" > REQ_CURRENT_TIME" in line for line in lines)
    assert lines[-1].split(" ", 3)[3].startswith("CLOSE closed by client")
    decoded = io.StringIO()
    assert main(["decode", str(record)], out=decoded) == 0
    assert decoded.getvalue() == live.getvalue()
    only = io.StringIO()
    assert main(["decode", str(record), "--direction", "<", "--name", "current_*"], out=only) == 0
    frames = [line for line in only.getvalue().splitlines() if line.split(" ")[2] in "<>"]
    # text (sv200): the layout's name; protobuf (sv213+): the protobuf field's
    assert len(frames) == 1 and (" < CURRENT_TIME time=" in frames[0] or " < CURRENT_TIME currentTime=" in frames[0])


def test_decode_reads_a_real_capture_and_filters_by_request_id() -> None:
    out = io.StringIO()
    assert main(["decode", str(CAPTURE)], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].endswith('< GREETING serverVersion=225 connectionTime="20260824 22:27:46 CET"')
    assert lines[1].endswith("< MANAGED_ACCTS accountsList=DU9000001")
    out = io.StringIO()
    assert main(["decode", str(CAPTURE), "--req-id", "1"], out=out) == 0
    assert [line.split(" ", 3)[3] for line in out.getvalue().splitlines()] == ["NEXT_VALID_ID id=1"]


def test_decode_of_a_missing_or_bad_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(tmp_path / "nope.jsonl")], out=io.StringIO()) == 1
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "slob-trace"}\n{"t": 1, "leg": 1, "dir": "client", "frame_b64": "!!"}\n')
    assert main(["decode", str(bad)], out=io.StringIO()) == 1
    assert f"{bad}:2: bad recording line" in capsys.readouterr().err


def test_trace_refuses_a_non_loopback_listen_address_and_bad_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "--listen", "0.0.0.0:7400"], out=io.StringIO()) == 1
    assert "loopback only" in capsys.readouterr().err
    for argv in (["trace", "--upstream", "7497"], ["trace", "--direction", "sideways"], ["decode", "x", "--req-id", "a"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_trace_on_a_busy_port_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["trace", "--listen", f"127.0.0.1:{port}", "--once"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--listen" in err
