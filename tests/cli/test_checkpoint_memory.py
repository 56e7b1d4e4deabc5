"""The checkpoint's market-memory section: the run's trading minutes live, from IB's
history, or missing (slob.ops.checkpoint, pure; hand-made inputs as in test_checkpoint.py)."""

from __future__ import annotations

import datetime as dt

from test_checkpoint import HOURS, MON, at, finish, recorder, stream

from slob.ops.checkpoint import render_text
from slob.model import Candle, ConnectionLost, ConnectionRestored, Gap

MINUTE = dt.timedelta(minutes=1)


def bars(start: dt.datetime, n: int) -> list[Candle]:
    return [Candle("NQ", "NQZ4", 60, start + i * MINUTE, 1, 1, 1, 1, 1, 1) for i in range(n)]


def test_gap_minutes_are_told_apart_by_what_history_answered() -> None:
    rec = recorder()
    stream(rec, MON, range(0, 600, 5))  # ten minutes of ticks
    # two outages: 15:02:10-15:03:40 (history answers) and 15:06:30-15:07:05 (it cannot)
    for start, end, cause in ((at(MON, 130), at(MON, 220), "drop"), (at(MON, 390), at(MON, 425), "IB 1101")):
        rec.event(ConnectionLost(start, cause), start)
        rec.event(ConnectionRestored(end, cause, True), end)
        rec.event(Gap(start, end, cause), end)
    spans = rec.gap_spans()
    assert spans == [(at(MON, 120), at(MON, 240)), (at(MON, 360), at(MON, 480))]
    rec.filled(spans[0], bars(spans[0][0], 2))
    rec.filled(spans[1], None, "RequestFailed: no permission")
    report = finish(rec, at(MON, 600))
    memory = report["memory"]
    assert (memory["live_minutes"], memory["history_minutes"], memory["missing_minutes"]) == (6, 2, 2)
    assert [s["filled"] for s in memory["spans"]] == [True, False]
    assert memory["spans"][1]["why_not"] == "RequestFailed: no permission"
    text = render_text(report)
    assert "6 trading minutes live, 2 from IB's history, 2 missing" in text and "NOT FILLED: RequestFailed" in text


def test_a_gap_history_was_not_asked_for_is_missing_and_the_halt_counts_for_nothing() -> None:
    start = dt.datetime(2024, 12, 2, 21, 55, tzinfo=dt.timezone.utc)  # 15:55 Chicago: the halt at 16:00
    rec = recorder(start)
    stream(rec, start, range(0, 300, 10))
    rec.event(Gap(at(start, 240), at(start, 290), "drop"), at(start, 290))
    memory = finish(rec, at(start, 600))["memory"]
    assert HOURS.is_open(at(start, 240)) and not HOURS.is_open(at(start, 300))
    assert (memory["live_minutes"], memory["history_minutes"], memory["missing_minutes"]) == (4, 0, 1)
    assert memory["spans"][0]["why_not"] == "not asked"
