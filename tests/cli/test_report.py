"""`slob report`: the computations (slob.ops.report) on hand-built records written through the
Store, and the command through slob.cli.main.

The store holds two CME trading days (CST: a trading day runs 23:00 UTC the evening
before to 23:00 UTC, the market trades until 22:00 UTC):

* 2025-03-05: a tick every minute, except 14:00-14:05 (a socket reconnect, recorded as a
  gap; the engine filled those minutes with flat candles) and 20:00-22:00 (the engine
  was not running); 02:00-02:59 is a quiet hour, flat candles only. Setups: a short that
  wins 2795.50 and a long that loses 294.50 (IB's realized P&L), one invalidated setup.
* 2025-03-06: a tick every minute, a 30-second IB 1100 -> 1102 outage at 10:00, and at
  21:00 a lost connection that never came back (flat candles after it). A short whose exit
  has no commission report (P&L from prices: -202.25), a long still open, and a fill of an
  order without a setup id.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import io
import json
import pkgutil
import re
from pathlib import Path

import pytest

import slob
from slob import cli
from slob.cli import main
from slob.commands import common
from slob.commands.report import collect
from slob.ib.errors import IB_ERRORS, SlobError
from slob.store.store import Store
from slob.model import Candle, ConnectionLost, ConnectionRestored, ContractRolled, Gap, Tick
from slob.ops.report import (NO_DATA, Report, ReportInput, build_report, day_bounds, max_drawdown, report_json,
                         trading_day)

UTC = dt.timezone.utc
DAY1, DAY2 = dt.date(2025, 3, 5), dt.date(2025, 3, 6)
NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
SHORT, LONG, DEAD = "NQ-20250305-short-1532-1", "NQ-20250305-long-1607-1", "NQ-20250305-short-1700-2"
SHORT2, OPEN = "NQ-20250306-short-1545-1", "NQ-20250306-long-1810-1"
SOCKET = "socket closed: connection reset by peer"
IB_1100 = "IB 1100..1102: Connectivity between IBKR and Trader Workstation has been restored - data maintained."


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


def minutes(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    count = int((end - start).total_seconds()) // 60
    return [start + dt.timedelta(minutes=i) for i in range(count)]


def tick(t: dt.datetime) -> Tick:
    return Tick("NQ", 20_000.0, 1.0, t, "CME", "NQH5", 0)


def flat(t: dt.datetime) -> Candle:
    return Candle("NQ", "NQH5", 60, t, 20_000.0, 20_000.0, 20_000.0, 20_000.0, 0.0, 0, filled=True)


def setup(store: Store, setup_id: str, state: str, created: dt.datetime) -> None:
    direction = "long" if "-long-" in setup_id else "short"
    store.add_setup(id=setup_id, symbol="NQ", direction=direction, state=state, created=created, updated=created)


def order(store: Store, order_id: int, setup_id: str | None, action: str) -> None:
    t = at(5, 0)
    store.add_order(order_id=order_id, setup_id=setup_id, action=action, order_type="MKT", quantity=1,
                    status="Filled", created=t, updated=t)


def fill(store: Store, exec_id: str, order_id: int, t: dt.datetime, price: float, qty: float,
         commission: float | None = 2.25, pnl: float | None = None) -> None:
    store.add_fill(exec_id=exec_id, order_id=order_id, time=t, price=price, quantity=qty,
                   commission=commission, realized_pnl=pnl)


def record_two_days(store: Store) -> None:
    # -- 2025-03-05 ------------------------------------------------------------------
    for t in minutes(at(4, 23), at(5, 20)):
        if at(5, 14) <= t < at(5, 14, 5) or at(5, 2) <= t < at(5, 3):
            store.add(flat(t))  # filled across the outage, and a quiet hour
        else:
            store.add(tick(t + dt.timedelta(seconds=5)))
    store.add(ConnectionLost(at(5, 14), SOCKET))
    store.add(Gap(at(5, 14), at(5, 14, 5), SOCKET))
    store.add(ConnectionRestored(at(5, 14, 5), SOCKET, data_lost=True))
    setup(store, SHORT, "placed", at(5, 15, 33))
    setup(store, LONG, "placed", at(5, 16, 8))
    setup(store, DEAD, "invalidated", at(5, 17, 1))
    for order_id, setup_id, action in ((1, SHORT, "SELL"), (2, SHORT, "BUY"), (4, LONG, "BUY"), (6, LONG, "SELL")):
        order(store, order_id, setup_id, action)
    fill(store, "e1", 1, at(5, 15, 40), 20_089.5, -1)
    fill(store, "e2", 2, at(5, 16, 7), 19_949.5, 1, pnl=(20_089.5 - 19_949.5) * 20 - 4.5)
    fill(store, "e4", 4, at(5, 16, 15), 19_960.5, 1)
    fill(store, "e6", 6, at(5, 16, 20), 19_946.0, -1, pnl=(19_946.0 - 19_960.5) * 20 - 4.5)
    # -- 2025-03-06 ------------------------------------------------------------------
    for t in minutes(at(5, 23), at(6, 22)):
        if t < at(6, 21):
            store.add(tick(t + dt.timedelta(seconds=40)))
        elif t < at(6, 21, 10):
            store.add(flat(t))  # the quiet-market timer, until the engine gave up
    store.add(ConnectionLost(at(6, 10), "IB 1100: Connectivity between IBKR and Trader Workstation has been lost."))
    store.add(Gap(at(6, 10), at(6, 10, 0, 30), IB_1100))
    store.add(ConnectionRestored(at(6, 10, 0, 30), "IB 1102", data_lost=False))
    store.add(ContractRolled("NQ", "NQH5", "NQM5", at(6, 12)))
    store.add(ConnectionLost(at(6, 21), SOCKET))
    setup(store, SHORT2, "placed", at(6, 15, 46))
    setup(store, OPEN, "placed", at(6, 18, 11))
    order(store, 10, SHORT2, "SELL")
    order(store, 11, SHORT2, "BUY")
    order(store, 20, OPEN, "BUY")
    order(store, 99, None, "BUY")
    fill(store, "e10", 10, at(6, 15, 47), 20_000.0, -1)
    fill(store, "e11", 11, at(6, 16, 30), 20_010.0, 1, commission=None)  # no commission report yet
    fill(store, "e20", 20, at(6, 18, 12), 20_050.0, 1)
    fill(store, "e99", 99, at(6, 19), 20_060.0, 1)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "slob.sqlite3"
    with Store(path) as store:
        record_two_days(store)
    return path


def report_of(db: Path, first: dt.date = DAY1, last: dt.date = DAY2, now: dt.datetime = NOW) -> Report:
    with Store(db) as store:
        return build_report(collect(store, first, last, now))


# -- days and drawdown ----------------------------------------------------------------------


def test_trading_days_turn_at_17_chicago_across_dst() -> None:
    assert trading_day(at(5, 22, 59, 59)) == DAY1  # 16:59:59 CST
    assert trading_day(at(5, 23)) == DAY2  # 17:00 CST
    assert day_bounds(DAY1) == (at(4, 23), at(5, 23))
    # US clocks change on Sunday 2025-03-09: Monday's trading day starts 17:00 CDT = 22:00 UTC
    assert day_bounds(dt.date(2025, 3, 10)) == (at(9, 22), at(10, 22))
    assert trading_day(at(9, 22)) == dt.date(2025, 3, 10)


def test_max_drawdown_is_the_largest_fall_from_the_running_peak() -> None:
    assert max_drawdown([]) == 0.0
    assert max_drawdown([100.0, 50.0]) == 0.0
    assert max_drawdown([-5.0]) == 5.0  # the curve starts at 0
    assert max_drawdown([100.0, -50.0, -80.0, 200.0, -10.0]) == 130.0


# -- uptime, gaps, events --------------------------------------------------------------------


def test_uptime_counts_minutes_with_data_minus_recorded_outages(db: Path) -> None:
    report = report_of(db)
    day1, day2 = report.days
    assert (day1.day, day2.day) == (DAY1, DAY2)
    assert day1.trading_seconds == day2.trading_seconds == 23 * 3600  # 17:00-16:00 Chicago
    # the quiet hour of flat candles counts; the flat candles inside the gap do not
    assert day1.covered_seconds == 23 * 3600 - 5 * 60 - 2 * 3600
    assert [(g.start, g.end, g.cause) for g in day1.gaps] == [
        (at(5, 14), at(5, 14, 5), SOCKET), (at(5, 20), at(5, 22), NO_DATA)]
    # a 30 s gap inside a minute that has ticks; a loss nobody restored, up to the close
    assert day2.covered_seconds == 23 * 3600 - 30 - 3600
    assert [(g.start, g.end, g.cause) for g in day2.gaps] == [
        (at(6, 10), at(6, 10, 0, 30), IB_1100), (at(6, 21), at(6, 22), f"{SOCKET} (no reconnect recorded)")]
    assert day1.uptime == pytest.approx(75_300 / 82_800)
    assert report.total.uptime == pytest.approx((75_300 + 79_170) / (2 * 82_800))
    assert (day1.outages, day1.reconnects_socket, day1.reconnects_ib, day1.reconnects) == (1, 1, 0, 1)
    assert (day2.outages, day2.reconnects_socket, day2.reconnects_ib, day2.rolls) == (2, 0, 1, 1)
    assert day1.ticks == 23 * 60 - 2 * 60 - 5 - 60
    assert day2.ticks == 22 * 60
    assert report.total.ticks == day1.ticks + day2.ticks


def test_trading_hours_stop_at_now_and_weekends_have_none(db: Path) -> None:
    report = report_of(db, DAY2, dt.date(2025, 3, 9), now=at(6, 11))
    (only,) = report.days  # Fri 03-07 and the weekend are in the future or closed
    assert only.trading_seconds == 12 * 3600  # 23:00 UTC .. 11:00 UTC
    assert only.covered_seconds == 12 * 3600 - 30
    weekend = build_report(ReportInput(first=dt.date(2025, 3, 8), last=dt.date(2025, 3, 9), now=NOW))
    assert weekend.days == () and weekend.empty
    monday = build_report(ReportInput(first=dt.date(2025, 3, 10), last=dt.date(2025, 3, 10),
                                      now=dt.datetime(2025, 3, 11, tzinfo=UTC)))
    assert monday.days[0].trading_seconds == 23 * 3600 and monday.empty  # hours, but nothing recorded
    assert monday.days[0].gaps[0].cause == NO_DATA and monday.total.uptime == 0.0


# -- setups and trades -------------------------------------------------------------------------


def test_setups_trades_win_rate_pnl_and_drawdown(db: Path) -> None:
    report = report_of(db)
    day1, day2 = report.days
    assert (day1.setups, day1.invalidated, dict(day1.setup_states)) == (3, 1, {"placed": 2, "invalidated": 1})
    assert (day2.setups, day2.invalidated) == (2, 0)
    short, long = day1.trades
    assert (short.setup_id, short.direction, short.entry_price, short.exit_price) == (SHORT, "short", 20_089.5, 19_949.5)
    assert (short.pnl, short.pnl_source, short.commission) == (2_795.5, "ib", 4.5)
    assert (long.setup_id, long.direction, long.pnl) == (LONG, "long", -294.5)
    assert (day1.wins, day1.losses, day1.win_rate) == (1, 1, 0.5)
    assert day1.pnl == pytest.approx(2_501.0) and day1.max_drawdown == pytest.approx(294.5)
    (priced,) = day2.trades
    assert (priced.setup_id, priced.pnl_source) == (SHORT2, "prices")
    assert priced.pnl == pytest.approx(-(20_010.0 - 20_000.0) * 20 - 2.25)
    assert day2.open_trades == 1 and report.unattributed_fills == 1
    total = report.total
    assert len(total.trades) == 3 and total.win_rate == pytest.approx(1 / 3)
    assert total.pnl == pytest.approx(2_795.5 - 294.5 - 202.25)
    assert total.max_drawdown == pytest.approx(294.5 + 202.25)  # from the 2795.50 peak
    assert total.commissions == pytest.approx(4.5 + 4.5 + 2.25)


def test_trades_belong_to_the_day_of_their_exit(db: Path) -> None:
    report = report_of(db, DAY2, DAY2)
    assert [t.setup_id for t in report.total.trades] == [SHORT2]
    assert report.total.setups == 2


# -- the command -------------------------------------------------------------------------------


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["report", *argv], out=out)
    return code, out.getvalue()


def test_report_prints_plain_tables_when_not_a_terminal(db: Path) -> None:
    code, text = run("--from", "2025-03-05", "--to", "2025-03-06", "--db", str(db))
    assert code == 0
    assert text.isascii() and "\x1b" not in text
    assert text.startswith(f"slob report: trading days 2025-03-05 .. 2025-03-06 (CME, 17:00-17:00 Chicago) from {db}")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| 2025-") or line.startswith("| total")}
    assert rows["2025-03-05"] == ["90.9%", "2", "2h 05m", "1", "1,195", "3", "1", "2", "50.0%", "+2,501.00", "294.50"]
    assert rows["2025-03-06"] == ["95.6%", "2", "1h 00m", "1", "1,320", "2", "0", "1 (+1 open)", "0.0%", "-202.25",
                                  "202.25"]
    assert rows["total"][:3] == ["93.3%", "4", "3h 05m"] and rows["total"][-3:] == ["33.3%", "+2,298.75", "496.75"]
    assert SOCKET in text and "(no reconnect recorded)" in text and NO_DATA in text
    assert SHORT in text and "-202.25*" in text  # priced from fills, marked
    assert "1 fill(s) belong to orders without a setup id" in text and "1 trade(s) still open" in text


def test_report_json_has_days_totals_gaps_and_trades(db: Path) -> None:
    code, text = run("--from", "2025-03-05", "--to", "2025-03-06", "--db", str(db), "--json")
    assert code == 0
    data = json.loads(text)
    assert (data["from"], data["to"], data["db"], data["empty"]) == ("2025-03-05", "2025-03-06", str(db), False)
    assert [d["day"] for d in data["days"]] == ["2025-03-05", "2025-03-06"]
    total = data["total"]
    assert total["uptime"] == pytest.approx(154_470 / 165_600, abs=1e-6)
    assert (total["gaps"], total["gap_seconds"], total["reconnects"], total["ticks"]) == (4, 11_130.0, 2, 2_515)
    assert (total["setups_found"], total["setups_invalidated"], total["trades"], total["wins"]) == (5, 1, 3, 1)
    assert (total["pnl"], total["commissions"], total["max_drawdown"]) == (2_298.75, 11.25, 496.75)
    assert data["gap_causes"][SOCKET] == {"count": 1, "seconds": 300.0}
    assert [t["setup_id"] for t in data["trades"]] == [SHORT, LONG, SHORT2]
    assert data["trades"][0]["exit_time"] == "2025-03-05T16:07:00Z" and data["unattributed_fills"] == 1
    assert report_json(report_of(db))["total"] == total


def test_a_range_without_records_says_so_and_succeeds(db: Path) -> None:
    code, text = run("--from", "2025-04-01", "--to", "2025-04-02", "--db", str(db))
    assert code == 0
    assert text.startswith(f"no records for trading days 2025-04-01 .. 2025-04-02 in {db}")
    assert "2,515 ticks" in text and "slob run" in text
    code, text = run("--from", "2025-04-01", "--db", str(db), "--json")
    data = json.loads(text)
    assert code == 0 and data["empty"] and data["message"].startswith("no records for trading day 2025-04-01")


def test_data_dir_finds_the_store(db: Path) -> None:
    code, text = run("--from", "2025-03-06", "--data-dir", str(db.parent), "--json")
    assert code == 0 and json.loads(text)["total"]["trades"] == 1


def test_a_missing_database_is_an_explained_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SLOB_DATA_DIR", str(tmp_path / "nowhere"))
    assert run("--from", "2025-03-05")[0] == 1
    err = capsys.readouterr().err
    assert err.startswith(f"slob: no slob database at {tmp_path / 'nowhere' / 'slob.sqlite3'} (the default")
    assert "SLOB_DATA_DIR" in err and "slob run" in err
    assert not (tmp_path / "nowhere").exists()  # a report creates nothing
    assert run("--db", str(tmp_path))[0] == 1
    assert "is a directory" in capsys.readouterr().err


def test_bad_ranges_and_dates_are_usage_errors(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--from", "2025-03-06", "--to", "2025-03-05", "--db", str(db))[0] == 2
    assert "--from 2025-03-06 is after --to 2025-03-05" in capsys.readouterr().err
    for argv in (["--from", "05/03/2025"], ["--db", "a", "--data-dir", "b"]):
        with pytest.raises(SystemExit) as exc:
            main(["report", *argv])
        assert exc.value.code == 2


# -- the reference docs stay true to the code ------------------------------------------------
# (here because these are the test files this change owns; they cover docs/reference/)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def doc_sections(text: str) -> dict[str, str]:
    """``## `slob NAME` `` sections of cli.md by NAME (and the headings' own names)."""
    parts = re.split(r"^## ", text, flags=re.M)
    out: dict[str, str] = {}
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        m = re.fullmatch(r"`slob (\w+)`", title.strip())
        out[m.group(1) if m else title.strip()] = body
    return out


def test_cli_reference_documents_every_command_and_option_and_no_other() -> None:
    sections = doc_sections((DOCS / "reference" / "cli.md").read_text(encoding="utf-8"))
    modules = cli._modules()
    assert [m.NAME for m in modules] == list(cli.COMMANDS)
    for module in modules:
        assert module.NAME in sections, f"cli.md has no section for `slob {module.NAME}`"
        body = sections[module.NAME]
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        names = {name for a in parser._actions if not isinstance(a, argparse._HelpAction)
                 for name in (a.option_strings or [a.dest])}
        for name in names:
            assert re.search(rf"`{re.escape(name)}[` ]", body), f"cli.md: `slob {module.NAME}` lacks {name}"
        documented = set(re.findall(r"^\| `(--?[\w-]+)[` ]", body, flags=re.M))
        assert documented <= names, f"cli.md: `slob {module.NAME}` documents {documented - names}, not in --help"
    assert "| `--log-level LEVEL` |" in (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    codes = sections["Exit codes"]
    for code in (common.EXIT_OK, common.EXIT_FAIL, common.EXIT_USAGE, common.EXIT_VERDICT_FAIL, 130):
        assert f"\n| {code} |" in codes


def test_errors_reference_matches_ib_errors_and_the_slob_error_tree() -> None:
    text = (DOCS / "reference" / "errors.md").read_text(encoding="utf-8")
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^\| (\d+) \|.*$", text, flags=re.M)}
    assert set(rows) == set(IB_ERRORS)
    for code, e in IB_ERRORS.items():
        assert rows[code].startswith(f"| {code} | {e.category} | {e.severity.value} | {e.action.value} | {e.hint} | ")
    for info in pkgutil.walk_packages(slob.__path__, "slob."):
        if not info.name.startswith("slob.testing"):
            importlib.import_module(info.name)
    tree: set[type] = set()
    todo = [SlobError]
    while todo:
        cls = todo.pop()
        tree.add(cls)
        todo.extend(cls.__subclasses__())
    missing = sorted(c.__name__ for c in tree if f"`{c.__name__}`" not in text)
    assert not missing, f"errors.md does not explain {missing}"
