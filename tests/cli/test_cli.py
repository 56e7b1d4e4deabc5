"""The `slob` command through main(argv), and `slob sim` as a real process."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys

import pytest
from support.ib_app import RecordingApp, future

from slob.cli import main


def test_version_names_slob_and_the_ibapi_release() -> None:
    out = io.StringIO()
    assert main(["version"], out=out) == 0
    text = out.getvalue()
    assert text.startswith("slob 0.")
    assert re.search(r"ibapi 10\.\d+\.\d+ \(ibapi-stable, client max v\d+\)", text)


def test_demo_streams_real_ticks_through_ibs_client() -> None:
    out = io.StringIO()
    assert main(["demo", "--seconds", "1.5", "--speed", "max"], out=out) == 0
    text = out.getvalue()
    assert "connected: server version 200" in text
    assert "NQ front month NQZ4" in text
    assert re.search(r"feed: \d+ messages in, 0 rejected, 0 dropped, latency", text)
    done = re.search(r"done: (\d+) trades, volume (\d+), NQZ4", text)
    assert done and int(done.group(1)) > 0 and int(done.group(2)) >= int(done.group(1))


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--speed", "-3"])
    assert exc.value.code == 2


def test_sim_serves_any_client_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "slob.cli", "sim", "--port", "0", "--speed", "max"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        app = RecordingApp().start(int(match.group(1)))
        try:
            app.reqContractDetails(1, future("ES"))
            app.wait_for("contractDetailsEnd")
            assert len(app.named("contractDetails")) == 21  # ES lists 21 quarterly expiries
        finally:
            app.stop()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "fake TWS stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_contracts_lists_expiries_rolls_and_marks_the_front_month() -> None:
    out = io.StringIO()
    assert main(["contracts", "NQ", "--at", "2025-06-02T15:00Z"], out=out) == 0
    lines = out.getvalue().splitlines()
    front = [line for line in lines if line.startswith("*")]
    assert len(front) == 1 and front[0].split()[1] == "NQM5"
    # M5 expires 2025-06-20 08:30 CT; with 8 days it is front month until Wed 2025-06-11 17:00 CT
    assert "2025-06-20 08:30" in front[0] and front[0].rstrip().endswith("2025-06-11 17:00")
    assert lines[-1] == "front month: NQM5 until 2025-06-11 17:00 CDT"
    out = io.StringIO()
    assert main(["contracts", "NQ", "--at", "2025-06-12T15:00Z", "--roll-days", "0"], out=out) == 0
    assert out.getvalue().splitlines()[-1] == "front month: NQM5 until 2025-06-19 17:00 CDT"


def test_contracts_for_an_unknown_root_fails_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "ZZ"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("slob: no contract found") and "'NQZ4'" in err
