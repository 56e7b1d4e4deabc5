"""`slob report` with market memory: live coverage, history-filled minutes and minutes
still missing told apart (slob.ops.report, pure)."""

from __future__ import annotations

import datetime as dt

from slob.model import ConnectionLost, Gap
from slob.ops.report import ReportInput, build_report, report_json

UTC = dt.timezone.utc
DAY = dt.date(2025, 3, 5)  # CME trading day: 2025-03-04 23:00 UTC .. 2025-03-05 23:00 UTC, trades until 22:00
NOW = dt.datetime(2025, 3, 5, 16, 0, tzinfo=UTC)


def minute(hour: int, m: int = 0) -> int:
    return int(dt.datetime(2025, 3, 5, hour, m, tzinfo=UTC).timestamp()) // 60


def span(a: int, b: int) -> range:
    return range(a, b)


def test_live_history_and_missing_minutes_are_told_apart() -> None:
    # live from the open (2025-03-04 23:00 UTC) to 15:00, except an outage 14:00-14:10;
    # the engine filled 14:00-14:09 from history (its candles stored as history) and
    # nothing covers 15:00-16:00 (the engine stopped; history unavailable at the restart)
    start = int(dt.datetime(2025, 3, 4, 23, 0, tzinfo=UTC).timestamp()) // 60
    live = [m for m in span(start, minute(15)) if not minute(14) <= m < minute(14, 10)]
    history = {m: 4 for m in span(minute(14), minute(14, 10))}
    candles = {m: 4 for m in live} | history
    gap = Gap(dt.datetime(2025, 3, 5, 14, 0, 20, tzinfo=UTC), dt.datetime(2025, 3, 5, 14, 9, 40, tzinfo=UTC),
              "IB 1101: data lost", filled=True)
    report = build_report(ReportInput(
        first=DAY, last=DAY, now=NOW, tick_minutes={m: 4 for m in live}, candle_minutes=candles,
        history_minutes=history, events=[ConnectionLost(gap.start, gap.cause), gap]))
    (day,) = report.days
    assert day.trading_seconds == 17 * 3600
    assert day.covered_seconds == 16 * 3600 - 600  # live, less the outage
    assert day.history_seconds == 600  # the outage's minutes, from IB's history
    assert day.missing_seconds == 3600  # 15:00-16:00: nobody has it
    assert [(g.start.time(), g.end.time(), g.filled) for g in day.gaps] == [
        (dt.time(14, 0), dt.time(14, 10), True), (dt.time(15, 0), dt.time(16, 0), False)]
    data = report_json(report)
    assert (data["total"]["history_seconds"], data["total"]["missing_seconds"], data["total"]["gaps_filled"]) == \
        (600.0, 3600.0, 1)
    assert [g["filled"] for g in data["gaps"]] == [True, False]


def test_without_history_the_report_is_what_it_was() -> None:
    start = int(dt.datetime(2025, 3, 4, 23, 0, tzinfo=UTC).timestamp()) // 60
    live = {m: 1 for m in span(start, minute(16))}
    report = build_report(ReportInput(first=DAY, last=DAY, now=NOW, tick_minutes=live, candle_minutes=live))
    (day,) = report.days
    assert (day.covered_seconds, day.history_seconds, day.missing_seconds, day.gaps) == (17 * 3600, 0.0, 0.0, ())
