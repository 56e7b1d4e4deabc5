"""The `slob` command through main(argv) (`slob sim` has tests/cli/test_sim.py)."""

from __future__ import annotations

import io
import re

import pytest

from slob.cli import main


def test_version_names_slob_and_the_ibapi_release() -> None:
    out = io.StringIO()
    assert main(["version"], out=out) == 0
    text = out.getvalue()
    assert text.startswith("slob 0.")
    assert re.search(r"ibapi 10\.\d+\.\d+ \(ibapi-stable, client max v\d+\)", text)


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--speed", "-3"])
    assert exc.value.code == 2


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
