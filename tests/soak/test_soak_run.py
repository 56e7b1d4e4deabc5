"""`slob soak` end to end: two simulated days on a fixed seed, the engine in a child
process through IB's client, faults and the calendar applied; the verdict must be PASS.

Until the session supervisor (gaps in exchange time, liveness, duplicate filtering armed
in time) and orders-as-intents land, this fails on the invariants they fix -- on purpose:
the failure message lists the failing checks with examples."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from slob.cli import main
from slob.soak.faults import FAULT_KINDS

SEED = 1  # two days with 5 faults of several kinds, 2 planted setups, 2 restarts and 2 resets


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_two_days_of_soak_pass(tmp_path: Path) -> None:
    out = io.StringIO()
    report_file = tmp_path / "soak.json"
    code = main(["soak", "--days", "2", "--seed", str(SEED), "--json", str(report_file),
                 "--work-dir", str(tmp_path / "work")], out=out)
    report = json.loads(report_file.read_text())

    # the report's shape: every check, the calendar, the faults, ticks, orders, the engine
    names = [c["name"] for c in report["checks"]]
    assert {"ticks lost outside recorded gaps", "duplicate ticks delivered", "gaps not explained by an outage",
            "outages without a recorded gap", "setups placed twice", "brackets left half-placed",
            "positions without a stop", "differences between the store and TWS",
            "faults and calendar events not survived"} <= set(names)
    by_kind = report["faults"]["by_kind"]
    assert by_kind["restart"]["count"] == 2 and by_kind["reset"]["count"] == 2
    assert report["faults"]["applied"] == report["faults"]["scheduled"] >= 4
    assert set(by_kind) <= {"restart", "reset", "reauth", "weekend", "unplanned_exit"} | set(FAULT_KINDS)
    assert report["ticks"]["expected"] > 10_000
    assert report["orders"]["planted"], "a two-day soak plants at least one setup"
    assert report["engine"]["rss_start_kb"] is None or report["engine"]["rss_start_kb"] > 0
    assert len(report["schedule"]) == sum(row["count"] for row in by_kind.values())
    assert f"slob soak: {report['verdict']}" in out.getvalue()

    failing = [f"{c['name']}: {c['value']} {c['examples'][:3]}" for c in report["checks"] if not c["ok"]]
    assert report["verdict"] == "PASS", "\n".join(failing)
    assert code == 0
