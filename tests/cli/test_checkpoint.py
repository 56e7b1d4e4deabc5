"""`slob checkpoint`: the verdict and report logic on hand-made inputs (slob.ops.checkpoint),
then whole runs against the embedded fake TWS through slob.cli.main, and
tools/ib_checkpoint_test.py as a process."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slob.ops.checkpoint import (
    CheckpointRecorder,
    ClockMap,
    Outage,
    OutageLog,
    QuietPeriod,
    evaluate,
    explain,
    open_segments,
    render_text,
)
from slob.cli import main
from slob.commands.checkpoint import sim_schedule
from slob.market.sessions import CmeHours
from slob.model import ConnectionLost, ConnectionRestored, ContractRolled, Tick

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parents[2]
#: Monday 2024-12-02 09:00 Chicago: Globex open; the daily halt is 22:00-23:00 UTC.
MON = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
HOURS = CmeHours.default()


def at(base: dt.datetime, seconds: float) -> dt.datetime:
    return base + dt.timedelta(seconds=seconds)


def tick(t: dt.datetime, *, symbol: str = "NQ", contract: str = "NQZ4", price: float = 21000.0) -> Tick:
    return Tick(symbol, price, 1.0, t, "CME", contract, 0)


def recorder(start: dt.datetime = MON, *, speed: float = 1.0, max_gap: float = 60.0,
             symbol: str = "NQ") -> CheckpointRecorder:
    """Real time == exchange time at ``start`` (the exchange clock runs ``speed`` x faster)."""
    return CheckpointRecorder(symbol, hours=HOURS, clock=ClockMap(start, start, speed), stream_start=start,
                              max_gap_seconds=max_gap)


def stream(rec: CheckpointRecorder, start: dt.datetime, seconds: range, **kw: Any) -> None:
    """One tick per listed second, arriving when it happened."""
    for s in seconds:
        rec.tick(tick(at(start, s), **kw), at(start, s))


def finish(rec: CheckpointRecorder, end: dt.datetime, *, stats: dict[str, Any] | None = None,
           feed_error: str | None = None) -> dict[str, Any]:
    report = rec.report(real_end=end, run={"mode": "test", "host": "h", "port": 1}, stats=stats or {},
                        feed_error=feed_error)
    json.dumps(report, allow_nan=False)  # always valid JSON
    render_text(report)  # and always renderable
    return report


def failed(report: dict[str, Any]) -> set[str]:
    return {c["name"] for c in report["criteria"] if not c["passed"]}


# -- the verdict on hand-made inputs ----------------------------------------------------------


def test_a_steady_stream_passes_with_candles_and_counts() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 300))
    report = finish(rec, at(MON, 300), stats={"reconnects": 0, "latency_p50_us": 50.0, "latency_p99_us": 90.0,
                                              "rejected": 0, "rejected_by_reason": {}})
    assert report["verdict"] == "PASS" and report["reasons"] == [] and not failed(report)
    assert report["ticks"]["count"] == 300 and report["ticks"]["per_second"] == 1.0
    assert report["contracts"] == ["NQZ4"] and report["ticks"]["by_contract"] == {"NQZ4": 300}
    assert report["candles"]["by_interval"] == {"60": 5, "300": 1} and report["candles"]["filled"] == 0
    assert report["gaps"]["longest_exchange"]["seconds"] == 1.0
    assert report["gaps"]["longest_real"]["seconds"] == 1.0
    assert report["gaps"]["listed"] == [] and report["outages"] == []
    assert report["latency_us"]["p50"] == 50.0 and report["market"]["closed_seconds"] == 0


def test_an_unexplained_gap_over_the_limit_fails_in_both_measures() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 100))
    stream(rec, MON, range(200, 300))
    report = finish(rec, at(MON, 300))
    assert report["verdict"] == "FAIL" and failed(report) == {"gaps"}
    listed = report["gaps"]["listed"]
    assert {(g["measure"], g["seconds"], g["explained"]) for g in listed} == {
        ("exchange", 101.0, False), ("real", 101.0, False)}
    assert report["gaps"]["unexplained_over_limit"] == 2
    assert "101.0 s from 2024-12-02 15:01:39 UTC" in report["reasons"][0]
    assert "UNEXPLAINED, over the limit" in render_text(report)


def test_a_gap_during_an_outage_is_explained_by_its_cause_and_passes() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 100))
    rec.event(ConnectionLost(at(MON, 100.5), "TWS closed the connection"), at(MON, 100.5))
    rec.event(ConnectionRestored(at(MON, 195), "TWS closed the connection", True), at(MON, 195))
    stream(rec, MON, range(200, 300))
    report = finish(rec, at(MON, 300), stats={"reconnects": 1})
    assert report["verdict"] == "PASS"
    assert {g["explained_by"] for g in report["gaps"]["listed"]} == {"TWS closed the connection"}
    [outage] = report["outages"]
    assert outage["recovered"] and outage["kind"] == "socket" and outage["real_seconds"] == 94.5
    assert report["reconnects"] == {"count": 1, "causes": {"TWS closed the connection": 1},
                                    "resubscribed_after_1101": 0, "unmatched_restores": 0}


def test_a_short_unexplained_gap_is_listed_but_passes() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 100))
    stream(rec, MON, range(150, 200))
    report = finish(rec, at(MON, 200))
    assert report["verdict"] == "PASS"
    assert report["gaps"]["longest_unexplained_seconds"] == 51.0 and len(report["gaps"]["listed"]) == 2
    assert "unexplained, within the limit" in render_text(report)


@pytest.mark.parametrize("last, resume, closed", [
    ("2024-12-02T21:59:59Z", "2024-12-02T23:00:01Z", 3600),   # the CME daily halt 16:00-17:00 Chicago
    ("2024-12-06T21:59:59Z", "2024-12-08T23:00:01Z", 176400),  # Friday close to Sunday open
])
def test_quiet_scheduled_halts_are_not_gaps(last: str, resume: str, closed: int) -> None:
    before, after = dt.datetime.fromisoformat(last), dt.datetime.fromisoformat(resume)
    start = at(before, -120)
    rec = recorder(start)
    stream(rec, start, range(0, 121))
    stream(rec, after, range(0, 60))
    report = finish(rec, at(after, 60))
    assert report["verdict"] == "PASS", report["reasons"]
    assert report["gaps"]["longest_exchange"]["seconds"] == 1.0  # 21:59:59 -> 22:00 and 23:00 -> 23:00:01
    assert report["market"]["closed_seconds"] == closed
    assert report["candles"]["filled"] == 0  # no flat candles inside the halt


def test_a_quiet_period_spanning_a_halt_counts_its_open_parts_separately() -> None:
    start = dt.datetime(2024, 12, 2, 21, 55, tzinfo=UTC)
    rec = recorder(start)
    stream(rec, start, range(0, 210))  # until 21:58:29, then quiet 90 s before the halt
    resume = dt.datetime(2024, 12, 2, 23, 0, 40, tzinfo=UTC)  # and 40 s after it
    stream(rec, resume, range(0, 30))
    report = finish(rec, at(resume, 30))
    assert report["verdict"] == "FAIL" and failed(report) == {"gaps"}
    exchange = sorted(g["seconds"] for g in report["gaps"]["listed"] if g["measure"] == "exchange")
    assert exchange == [40.0, 91.0]


def test_ticks_arriving_late_in_a_burst_make_a_real_time_gap() -> None:
    """A stall: exchange stamps stay 1 s apart, but ticks 100..199 all arrive at once."""
    rec = recorder()
    for s in range(0, 200):
        rec.tick(tick(at(MON, s)), at(MON, max(s, 199 if s >= 100 else s)))
    report = finish(rec, at(MON, 200))
    assert report["gaps"]["longest_exchange"]["seconds"] == 1.0
    real = report["gaps"]["longest_real"]
    assert real["seconds"] == 100.0 and not real["explained"]
    assert report["verdict"] == "FAIL" and failed(report) == {"gaps"}


def test_real_time_is_scaled_to_the_exchange_clock() -> None:
    """At 60x (the sim), 2 real seconds without ticks are 120 exchange seconds."""
    rec = recorder(speed=60.0)
    for i in range(0, 100):  # a tick every 1/60 real s = 1 exchange s
        rec.tick(tick(at(MON, i)), at(MON, i / 60))
    report = finish(rec, at(MON, 99 / 60 + 2))
    assert report["gaps"]["longest_real"]["seconds"] == pytest.approx(120.0, abs=0.01)
    assert report["gaps"]["longest_real"]["real_seconds"] == pytest.approx(2.0, abs=0.001)
    assert report["verdict"] == "FAIL"


def test_an_unrecovered_outage_fails_even_when_its_gap_is_explained() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 100))
    rec.event(ConnectionLost(at(MON, 100), "IB 1100: Connectivity between IBKR and TWS has been lost."),
              at(MON, 100))
    report = finish(rec, at(MON, 300))
    assert report["verdict"] == "FAIL" and failed(report) == {"outages"}
    [outage] = report["outages"]
    assert not outage["recovered"] and outage["kind"] == "connectivity" and outage["real_seconds"] == 200
    assert all(g["explained"] for g in report["gaps"]["listed"])
    assert "never restored" in report["reasons"][0] and "NOT RESTORED" in render_text(report)


def test_a_feed_that_gave_up_fails() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 100))
    report = finish(rec, at(MON, 100), feed_error="8 reconnect attempts failed")
    assert report["verdict"] == "FAIL" and failed(report) == {"outages"}
    assert "the feed gave up: 8 reconnect attempts failed" in report["reasons"][0]


def test_zero_ticks_fail() -> None:
    rec = recorder()
    report = finish(rec, at(MON, 30))
    assert report["verdict"] == "FAIL" and "ticks" in failed(report)
    assert report["ticks"]["count"] == 0 and report["ticks"]["per_second"] == 0
    assert report["reasons"][0] == "at least one tick arrived: no tick arrived"
    assert report["gaps"]["longest_real"]["seconds"] == 30.0  # the whole (open) run was quiet


def test_zero_ticks_while_the_market_is_closed_still_fail_but_show_the_halt() -> None:
    start = dt.datetime(2024, 12, 7, 12, 0, tzinfo=UTC)  # Saturday
    rec = recorder(start)
    report = finish(rec, at(start, 600))
    assert failed(report) == {"ticks"} and report["market"] == {"open_seconds": 0, "closed_seconds": 600}


def test_a_tick_for_another_symbol_fails() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 50))
    rec.tick(tick(at(MON, 50), symbol="ES", contract="ESZ4"), at(MON, 50))
    rec.tick(tick(at(MON, 51), contract="MNQZ4"), at(MON, 51))  # the right symbol, a foreign contract
    stream(rec, MON, range(52, 60))
    report = finish(rec, at(MON, 60))
    assert report["verdict"] == "FAIL" and failed(report) == {"symbol"}
    assert report["ticks"]["foreign"] == 2 and report["ticks"]["foreign_examples"] == ["ES/ESZ4", "NQ/MNQZ4"]
    assert report["ticks"]["by_contract"] == {"NQZ4": 58, "ESZ4": 1, "MNQZ4": 1}
    assert "2 of 60 ticks for something else" in report["reasons"][0]


def test_a_roll_is_reported_and_both_contracts_are_ours() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 30))
    rec.event(ContractRolled("NQ", "NQZ4", "NQH5", at(MON, 30)), at(MON, 30))
    stream(rec, MON, range(30, 60), contract="NQH5")
    report = finish(rec, at(MON, 60))
    assert report["verdict"] == "PASS"
    assert report["contracts"] == ["NQH5", "NQZ4"]
    assert report["rolls"] == [{"symbol": "NQ", "old": "NQZ4", "new": "NQH5", "at": "2024-12-02T15:00:30+00:00"}]


def test_outage_log_pairs_lost_and_restored() -> None:
    log = OutageLog()
    log.restored(at(MON, 1), "IB 1102", False)  # nothing open: counted, ignored
    log.lost(at(MON, 2), "IB 1100: lost")
    log.lost(at(MON, 3), "TWS closed the connection")  # during the same outage
    log.lost(at(MON, 3), "TWS closed the connection")
    log.restored(at(MON, 5), "TWS closed the connection", True)
    log.lost(at(MON, 8), "TWS closed the connection")
    first, second = log.outages()
    assert first == Outage(at(MON, 2), at(MON, 5), ("IB 1100: lost", "TWS closed the connection"),
                           "TWS closed the connection", True)
    assert first.kind == "connectivity" and first.recovered
    assert second.real_end is None and not second.recovered and second.kind == "socket"
    assert log.unmatched_restores == 1 and log.open


def test_explain_uses_real_overlap_only() -> None:
    outage = Outage(at(MON, 100), at(MON, 110), ("TWS closed the connection",))
    def period(a: float, b: float) -> QuietPeriod:
        return QuietPeriod("real", at(MON, a), at(MON, b), at(MON, a), at(MON, b))
    assert explain(period(90, 120), [outage], at(MON, 500)) == "TWS closed the connection"
    assert explain(period(105, 106), [outage], at(MON, 500)) == "TWS closed the connection"
    assert explain(period(111, 200), [outage], at(MON, 500)) is None
    unrecovered = Outage(at(MON, 300), None, ("IB 1100",))
    assert explain(period(400, 450), [outage, unrecovered], at(MON, 500)) == "IB 1100"


def test_open_segments_cut_out_the_daily_halt() -> None:
    a, b = dt.datetime(2024, 12, 2, 21, 0, tzinfo=UTC), dt.datetime(2024, 12, 2, 23, 30, tzinfo=UTC)
    assert open_segments(HOURS, a, b) == [(a, dt.datetime(2024, 12, 2, 22, 0, tzinfo=UTC)),
                                          (dt.datetime(2024, 12, 2, 23, 0, tzinfo=UTC), b)]


def test_evaluate_states_every_criterion() -> None:
    criteria = evaluate(symbol="NQ", ticks=10, foreign_ticks=0, gaps=[], max_gap_seconds=60, outages=[])
    assert [c.name for c in criteria] == ["ticks", "symbol", "gaps", "outages"]
    assert all(c.passed for c in criteria)
    assert criteria[2].description == "no unexplained gap longer than 60 s (scheduled CME halts excluded)"


def test_sim_schedule_scales_faults_and_leaves_the_end_quiet() -> None:
    faults = sim_schedule(12.0, 60.0, 60.0)
    assert len(faults) == 7 and max(f.at for f in faults) <= 0.75 * 12
    assert "0.40 s" in faults[3].name  # the stall stays under half the limit at 60x
    for fail in ("restart-forever", "lost-forever", "long-stall"):
        failing = sim_schedule(12.0, 60.0, 60.0, fail)
        assert failing[-1].at == 6.0 and all(f.at < 6.0 for f in failing[:-1])
    assert "1.50 s" in sim_schedule(12.0, 60.0, 60.0, "long-stall")[-1].name


# -- whole runs against the embedded fake TWS -------------------------------------------------


def only_report(directory: Path) -> tuple[dict[str, Any], str]:
    [json_path] = directory.glob("checkpoint-NQ-sim-*.json")
    [text_path] = directory.glob("checkpoint-NQ-sim-*.txt")
    assert json_path.stem == text_path.stem
    return json.loads(json_path.read_text()), text_path.read_text()


@pytest.mark.timeout(60)
def test_sim_checkpoint_recovers_from_every_fault_and_passes(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["checkpoint", "--sim", "--minutes", "0.2", "--report-dir", str(tmp_path)], out=out) == 0
    report, text = only_report(tmp_path)
    assert report["verdict"] == "PASS" and report["reasons"] == [], report["reasons"]
    assert text.startswith("slob checkpoint: PASS") and "slob checkpoint: PASS" in out.getvalue()
    run, ticks, stats = report["run"], report["ticks"], report["feed_stats"]
    assert run["mode"] == "sim" and run["symbol"] == "NQ" and run["minutes"] == 0.2
    assert 11.5 <= run["real_seconds"] <= 20 and run["clock_speed"] == 60
    assert ticks["count"] > 1000 and ticks["count"] == stats["ticks"] == sum(ticks["by_contract"].values())
    assert ticks["foreign"] == 0 and report["contracts"] == ["NQZ4"] and report["rolls"] == []
    assert ticks["per_second"] == pytest.approx(ticks["count"] / run["real_seconds"], rel=0.01)
    # every scheduled fault ran, and each outage it caused ended
    faults = [f["fault"] for f in run["sim"]["faults"]]
    assert len(faults) == 7 and any("socket drop" in f for f in faults) and any("stall" in f for f in faults)
    outages = report["outages"]
    assert len(outages) >= 3 and all(o["recovered"] for o in outages)
    assert {o["kind"] for o in outages} == {"socket", "connectivity"}
    assert any(o["restored_by"] == "IB 1102" for o in outages)
    assert report["reconnects"]["count"] == stats["reconnects"] >= 2
    assert report["reconnects"]["causes"].get("TWS closed the connection", 0) >= 2
    # outages leave gaps, explained by their causes; nothing unexplained over the limit
    assert report["gaps"]["unexplained_over_limit"] == 0
    assert any(g["explained"] for g in report["gaps"]["listed"])
    assert report["gaps"]["longest_unexplained_seconds"] <= 60
    assert report["latency_us"]["p50"] <= report["latency_us"]["p99"]
    # in-flight trades of a cancelled request (after 1101) may be rejected as unknown_request
    assert report["rejected"]["count"] == stats["rejected"] and report["rejected"]["by_reason"] == stats[
        "rejected_by_reason"]
    assert set(report["rejected"]["by_reason"]) <= {"unknown_request"}
    assert report["candles"]["by_interval"]["60"] >= 10 and report["candles"]["built"] >= 12
    assert [c["passed"] for c in report["criteria"]] == [True] * 4
    progress = out.getvalue()
    assert "sim fault: socket drop" in progress and "! connection lost: TWS closed the connection" in progress
    assert "report: " in progress


@pytest.mark.timeout(60)
def test_sim_tws_gone_for_good_fails_with_exit_3_and_says_why(tmp_path: Path) -> None:
    out = io.StringIO()
    args = ["checkpoint", "--sim", "--minutes", "0.1", "--sim-fault", "restart-forever",
            "--report-dir", str(tmp_path)]
    assert main(args, out=out) == 3
    report, text = only_report(tmp_path)
    assert report["verdict"] == "FAIL"
    assert [c["name"] for c in report["criteria"] if not c["passed"]] == ["outages"]
    assert "never restored" in report["reasons"][0] and "reconnect attempts failed" in report["reasons"][0]
    assert "reconnect attempts failed" in report["run"]["feed_error"]
    assert not report["outages"][-1]["recovered"] and report["outages"][-1]["kind"] == "socket"
    assert report["ticks"]["count"] > 0
    assert "FAIL because:" in text and "NOT RESTORED" in text


@pytest.mark.timeout(60)
def test_sim_long_stall_is_an_unexplained_gap(tmp_path: Path) -> None:
    out = io.StringIO()
    args = ["checkpoint", "--sim", "--minutes", "0.05", "--sim-fault", "long-stall", "--report-dir", str(tmp_path)]
    assert main(args, out=out) == 3
    report, _ = only_report(tmp_path)
    assert [c["name"] for c in report["criteria"] if not c["passed"]] == ["gaps"]
    assert report["gaps"]["longest_real"]["seconds"] > 60 and not report["gaps"]["longest_real"]["explained"]


@pytest.mark.timeout(60)
def test_sim_starting_in_the_daily_halt_does_not_count_the_quiet_start(tmp_path: Path) -> None:
    """22:57-23:00 UTC is the CME daily halt: three quiet simulated minutes, then trading."""
    args = ["checkpoint", "--sim", "--minutes", "0.1", "--sim-start", "2024-12-02T22:57Z",
            "--report-dir", str(tmp_path)]
    assert main(args, out=io.StringIO()) == 0
    report, _ = only_report(tmp_path)
    assert report["verdict"] == "PASS", report["reasons"]
    assert report["market"]["closed_seconds"] >= 170  # ~180 s of halt on the exchange clock
    assert report["ticks"]["first_at"] >= "2024-12-02T23:00:00+00:00"
    assert report["gaps"]["longest_unexplained_seconds"] < 60


def test_could_not_connect_exits_1_without_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["checkpoint", "--port", str(port), "--minutes", "0.01", "--report-dir", str(tmp_path)]
    assert main(args, out=io.StringIO()) == 1
    assert "not accepting API connections" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_live_port_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checkpoint", "--port", "7496", "--report-dir", str(tmp_path)], out=io.StringIO()) == 1
    assert "live-trading port" in capsys.readouterr().err


def test_bad_minutes_are_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["checkpoint", "--minutes", "0"])
    assert exc.value.code == 2


@pytest.mark.timeout(60)
def test_the_tool_script_runs_the_checkpoint(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "ib_checkpoint_test.py"), "0.05", "--sim", "--report-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=55,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report, _ = only_report(tmp_path)
    assert report["verdict"] == "PASS" and report["run"]["minutes"] == 0.05
    assert "slob checkpoint: PASS" in proc.stdout
