"""IB's clients of several releases against ``slob sim``: each negotiates its own maximum
server version (9.81: 157, text; 10.37: 203; 10.45: 223; 10.50: 226) and gets contract
details, tick-by-tick trades, market data, a bracket whose entry fills, the executions,
the positions and historical bars -- through the release's own EClient/EWrapper, in a process of its own
(tests/testing/ib_release_client.py), over loopback TCP.

The older releases are fetched once with pip, hash-checked (tests/testing/ib_releases.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from ib_releases import RELEASES, installed

from slob.testing.tws_versions import MAX_SERVER_VERSION

#: One ``slob sim`` at the fake's highest version serves every release; the releases are
#: the generations here (tests/conftest.py: tws_generation).
TWS_SERVER_VERSIONS = (MAX_SERVER_VERSION,)
HERE = Path(__file__).resolve().parent


@pytest.fixture
def sim() -> Iterator[int]:
    """``slob sim`` on a free port at 600x (CME open: the default start is a Monday 15:00 UTC)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from slob.cli import main; sys.exit(main())",
                             "sim", "--port", "0", "--speed", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "SLOB_FAKE_TWS_SERVER_VERSION": ""})
    try:
        assert proc.stdout is not None
        seen = []
        for _ in range(50):  # the banner, after any log lines
            seen.append(proc.stdout.readline())
            m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(server version <= (\d+)", seen[-1])
            if m or not seen[-1]:
                break
        assert m, seen
        assert int(m[2]) == MAX_SERVER_VERSION
        yield int(m[1])
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()


def run_release(port: int, path: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, str(HERE / "ib_release_client.py"), str(port), "--history"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=HERE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.timeout(300)
@pytest.mark.parametrize("release", ["9.81", "10.37", "10.45", "10.50"])
def test_each_release_negotiates_its_maximum_and_trades(sim: int, release: str) -> None:
    if release == "10.50":
        path, expected = None, MAX_SERVER_VERSION  # the venv's own ibapi
    else:
        path, expected = installed(RELEASES[release]), RELEASES[release].max_client_version
    got = run_release(sim, path)
    assert got["max_client_version"] == expected
    assert got["server_version"] == min(expected, MAX_SERVER_VERSION)
    assert got["contracts"][0].startswith("NQ") and len(got["contracts"]) >= 4
    assert len(got["ticks"]) == 3 and all(t[2] > 0 and t[3] > 0 for t in got["ticks"])
    assert got["last_price"][2] > 0
    kinds = {(o[1], o[2] > 0) for o in got["orders"]}
    assert kinds == {("MKT", False), ("LMT", True), ("STP", True)}
    assert [e[2:4] for e in got["executions"]] == [["BOT", 1.0]]
    assert any(p[1] == got["contracts"][0] and p[2] == 1.0 for p in got["positions"])
    assert len(got["bars"]) >= 3  # the finished 5-second bars of the last 2 minutes (CME open)
    assert all(b[2] >= max(b[1], b[4]) and b[3] <= min(b[1], b[4]) for b in got["bars"])
    # the global cancel at the end: the children cancelled (202), the filled parent not (161)
    unexpected = [e for e in got["errors"] if not ({"202", "161"} & set(e))]
    assert unexpected == []
