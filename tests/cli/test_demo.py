"""`slob demo`: planted setups traded through the full engine on FakeTWS, end to end."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from slob.cli import main
from slob.ops.demo import QUIET, demo_market, schedule
from slob.store.store import Store


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _row(text: str, name: str) -> str:
    match = re.search(rf"^\s*{re.escape(name)}\s+(.+?)\s*$", text, re.MULTILINE)
    assert match, f"no {name!r} row in:\n{text}"
    return match.group(1)


def test_fast_demo_trades_both_planted_setups_and_records_them(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    out = io.StringIO()
    assert main(["demo", "--fast", "--db", str(db)], out=out) == 0
    text = out.getvalue()
    assert "\x1b[" not in text  # not a terminal: plain lines, no cursor control
    short, long = demo_market().days
    assert f"bracket {short.setup_id}: short 1 NQH5 at market" in text
    assert f"bracket {long.setup_id}: long 1 NQH5 at market" in text
    assert _row(text, "brackets") == "2" and _row(text, "fills") == "4"
    assert _row(text, "setups").endswith("2 triggered")
    assert "2025-03-05 08:59 -> 2025-03-06 15:42 UTC" in _row(text, "simulated")
    win = re.search(rf"{short.setup_id}\s+short\s+([\d.]+)\s+([\d.]+)\s+target\s+\+([\d,.]+)", text)
    loss = re.search(rf"{long.setup_id}\s+long\s+([\d.]+)\s+([\d.]+)\s+stop\s+-([\d,.]+)", text)
    assert win and loss, text
    assert (float(win.group(1)), float(win.group(2))) == (short.entry, short.target)
    assert float(loss.group(1)) == long.entry and float(loss.group(2)) <= long.stop
    expected = (short.entry - short.target) * 20 - 4.5  # 2 x 2.25 commission
    assert float(win.group(3).replace(",", "")) == pytest.approx(expected)
    total = float(_row(text, "realized P&L").split()[0].replace(",", ""))
    assert total == pytest.approx(expected - float(loss.group(3).replace(",", "")))
    assert text.rstrip().endswith(f"database: {db}")

    with Store(db) as store:
        setups = {s.id: s for s in store.setups()}
        assert setups[short.setup_id].state == setups[long.setup_id].state == "placed"
        fills = store.fills()
        assert len(fills) == 4 and all(f.commission is not None for f in fills)
        pnl = sorted(f.realized_pnl for f in fills if f.realized_pnl is not None)
        assert len(pnl) == 2 and pnl[0] < 0 < pnl[1] and sum(pnl) == pytest.approx(total)
        counts = store.counts()
    assert counts["ticks"] == len(demo_market().trade_ns) and counts["orders"] == 6


def test_paced_demo_on_a_terminal_takes_about_its_seconds_and_ends_the_same(tmp_path: Path) -> None:
    out = _Terminal()
    assert main(["demo", "--seconds", "6", "--db", str(tmp_path / "paced.sqlite3")], out=out) == 0
    text = out.getvalue()
    assert "\x1b[" in text  # rich drew the live status in place
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "slob demo: FakeTWS 127.0.0.1:" in plain  # the live panel's title
    assert _row(plain, "brackets") == "2" and _row(plain, "fills") == "4"
    assert re.search(r"\btarget\s+\+2,795\.50", plain) and re.search(r"\bstop\s+-\d", plain)
    assert 6.0 <= float(_row(plain, "real time").split()[0]) < 30.0


def test_an_existing_database_is_not_touched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "mine.sqlite3"
    db.write_bytes(b"precious")
    assert main(["demo", "--fast", "--db", str(db)], out=io.StringIO()) == 1
    assert "already exists" in capsys.readouterr().err and db.read_bytes() == b"precious"


def test_the_market_triggers_only_the_planted_setups_and_the_schedule_slows_down_for_them() -> None:
    market = demo_market()  # raises if the walk between the days made a setup of its own
    steps = schedule(market)
    assert steps[-1].at > market.candles[-1].end and all(a.at < b.at for a, b in zip(steps, steps[1:]))
    for day in market.days:
        around = [s for s in steps if day.liq1_at <= s.at <= day.candles[-1].end]
        assert around and all(s.weight > QUIET for s in around)
        assert len(around) == (day.candles[-1].end - day.liq1_at).total_seconds() // 60
    quiet = sum(s.weight for s in steps if s.weight == QUIET)
    assert quiet < sum(s.weight for s in steps) / 3  # most of the real time goes to the setups


def test_help_describes_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for option in ("--seconds", "--fast", "--db PATH", "planted SLOB setups", "loopback"):
        assert option in help_text
