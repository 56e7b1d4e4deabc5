"""kill -9 at each step of placing a bracket: a real child process runs the executor with
a store file against FakeTWS in this process and dies by SIGKILL at the step
(``order_child.py``); a second child on the same store reconciles. Whatever the step: the
setup is at TWS at most once, no bracket is left half placed (nothing held, no position
without its stop), and the store equals FakeTWS's record (orders, fills with commissions,
position)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from order_checks import bracket_problems, by_ref, store_problems

from slob.store.store import Store
from slob.testing import FakeTWS, ScriptedScenario

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

UTC = dt.timezone.utc
START = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
SCRIPT = ScriptedScenario.from_prices(START, [(s, 21000.0, 1) for s in range(1, 600)])
REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("order_child.py")
SETUP = "NQ-20241202-short-1532-1"


def child(tws: FakeTWS, db: Path, step: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(CHILD), str(tws.port), str(db), step], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # no-op once it has exited
    return proc.returncode, out, err


@pytest.mark.parametrize("step", ["intent", "leg1", "leg2", "leg3", "fill"])
def test_a_kill_at_any_step_of_placing_is_settled_by_the_next_run(tmp_path: Path, step: str) -> None:
    db = tmp_path / "orders.sqlite3"
    with FakeTWS(start=START, speed=0, scenarios={"NQ": SCRIPT}) as tws:
        first = child(tws, db, step)
        if step == "fill":
            assert first.stdout is not None
            line = first.stdout.readline()
            assert line.strip() == "placed BracketPlaced", (line, finish(first))
            tws.advance(2)  # the market entry fills: execution, statuses, commission report
            tws.settle()
        code, out, err = finish(first)
        assert code == -signal.SIGKILL, (out, err)
        tws.wait_for_clients(0, ready=False)
        if step == "fill":
            with Store(db) as seen:  # the kill landed between the fill and its commission
                fills = seen.fills()
                assert len(fills) == 1 and fills[0].commission is None

        code, out, err = finish(child(tws, db, "none"))
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "placed SetupSkipped"  # the setup is never placed again
        report = json.loads(lines[1])
        assert report["differences"] == []
        orders = by_ref(tws).get(SETUP, [])
        assert sum(o.order_type == "MKT" for o in orders) == (0 if step == "intent" else 1)
        if step in ("intent", "leg1", "leg2"):
            assert report["verdict"] == "cancelled" and all(o.status == "Cancelled" for o in orders)
        elif step == "leg3":
            assert report["verdict"] == "placed" and report["position"] == 0
        else:
            assert report["verdict"] == "open" and report["position"] == -1
        assert bracket_problems(tws) == []
        with Store(db) as store:
            assert store_problems(store, tws) == []
            assert {o.setup_id for o in store.orders()} == {SETUP} and len(store.orders()) == 3
            if step == "fill":
                assert [f.commission for f in store.fills()] == [2.25]
