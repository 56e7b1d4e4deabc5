"""FakeTWS's historical data service, through IB's own client (EClient + EReader): bars
consistent with the scenario's trades at every server version, keepUpToDate, historical
ticks, head timestamps, IB's errors and pacing; and `slob sim --start` honouring the time."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
from typing import Any, Iterator

import pytest
from ibapi.contract import Contract
from support.ib_app import RecordingApp, future

from slob.commands import sim
from slob.ib.history_pacing import PacingRules
from slob.model import Candle
from slob.testing import FakeTWS, ScriptedScenario
from slob.testing.fake_history import history_of

UTC = dt.timezone.utc
START = dt.datetime(2025, 3, 5, 14, 0, tzinfo=UTC)  # a Wednesday; NQH5 the front month
IDS = itertools.count(100)


def script(minutes: int = 120, start: dt.datetime = START) -> list[Candle]:
    out, price = [], 20_000.0
    for i in range(minutes):
        o, c = price, price + (1.0 if i % 3 else -0.75)
        out.append(Candle("NQ", "NQH5", 60, start + dt.timedelta(minutes=i), o, max(o, c) + 0.5, min(o, c) - 0.25,
                          c, 8.0, 4))
        price = c
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def candles() -> list[Candle]:
    return script()


def started(candles: list[Candle], *, server_version: int = 200, at: dt.datetime | None = None,
            **options: Any) -> FakeTWS:
    tws = FakeTWS(speed=0, start=at or candles[-1].end, server_version=server_version,
                  scenarios={"NQ": ScriptedScenario.from_candles(candles)}, **options).start()
    history_of(tws).clock = Clock()  # pacing on a clock that stands still unless moved
    return tws


@pytest.fixture
def served(candles: list[Candle]) -> Iterator[tuple[FakeTWS, RecordingApp]]:
    tws = started(candles, max_messages_per_second=0)  # IB's client does not pace its requests
    app = RecordingApp().start(tws.port)
    yield tws, app
    app.stop()
    tws.stop()


def nqh5() -> Contract:
    return future("NQ", localSymbol="NQH5")


def bars(app: RecordingApp, req_id: int, *, timeout: float = 10.0) -> list[Any]:
    app.wait_for("historicalDataEnd", where=lambda a: a[0] == req_id, timeout=timeout)
    return [a[1] for a in app.named("historicalData") if a[0] == req_id]


def error_of(app: RecordingApp, req_id: int) -> tuple[int, str]:
    args = app.wait_for("error", where=lambda a: a[0] == req_id)[0]
    return args[2], args[3]


def as_tuple(bar: Any) -> tuple[Any, ...]:
    return (bar.date, bar.open, bar.high, bar.low, bar.close, float(bar.volume), bar.barCount)


def expected(candles: list[Candle]) -> list[tuple[Any, ...]]:
    return [(str(int(c.start.timestamp())), c.open, c.high, c.low, c.close, c.volume, c.trades) for c in candles]


@pytest.mark.parametrize("server_version", [110, 150, 195, 200])
def test_minute_bars_are_the_scenarios_trades_at_every_server_version(candles: list[Candle],
                                                                      server_version: int) -> None:
    tws = started(candles, server_version=server_version)
    app = RecordingApp().start(tws.port)
    try:
        req = next(IDS)
        app.reqHistoricalData(req, nqh5(), "20250305-15:00:00", "3600 S", "1 min", "TRADES", 0, 2, False, [])
        got = bars(app, req)
        assert [as_tuple(b) for b in got] == expected(candles[:60])
        assert app.errors() == []
        wire = tws.wait_for_request("REQ_HISTORICAL_DATA")
        assert wire["durationStr"] == "3600 S" and wire["barSizeSetting"] == "1 min"  # layouts per version
    finally:
        app.stop()
        tws.stop()


def test_login_time_zone_dates_and_regular_hours(served: tuple[FakeTWS, RecordingApp], candles: list[Candle]) -> None:
    tws, app = served
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "20250305 10:30:00 US/Eastern", "1800 S", "5 mins", "TRADES", 0, 1, False, [])
    got = bars(app, req)
    assert [b.date for b in got] == [f"20250305 10:{m:02d}:00 America/New_York" for m in range(0, 30, 5)]
    assert got[0].open == candles[60].open and got[0].close == candles[64].close  # 10:00 ET is 15:00 UTC
    assert float(got[0].volume) == sum(c.volume for c in candles[60:65]) and got[0].barCount == 20
    # useRTH: 08:30-16:00 Chicago is 14:30-22:00 UTC in March (CST); the first half hour is not RTH
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "20250305-16:00:00", "7200 S", "1 hour", "TRADES", 1, 2, False, [])
    first, second = bars(app, req)
    assert first.date == str(int(START.timestamp())) and first.barCount == 30 * 4  # 14:30-15:00 only
    assert second.barCount == 60 * 4


def test_midpoint_bid_ask_and_daily_bars(served: tuple[FakeTWS, RecordingApp], candles: list[Candle]) -> None:
    tws, app = served
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "", "1 D", "1 min", "MIDPOINT", 0, 2, False, [])
    got = bars(app, req)
    assert len(got) == len(candles)
    assert all(float(b.volume) == -1 and b.barCount == -1 for b in got)
    # from_candles quotes straddle each print by a tick below: the midpoint is 1/8 below the price
    assert got[0].open == candles[0].open - 0.125
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "", "1 D", "30 mins", "BID_ASK", 0, 2, False, [])
    got = bars(app, req)
    assert len(got) == 4 and all(b.low <= b.open <= b.high for b in got)
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "", "1 W", "1 day", "TRADES", 0, 2, False, [])
    assert error_of(app, req)[0] == 162  # the day's session ends at 16:00 Chicago: not a finished bar yet
    tws.advance(6 * 3600 + 1)
    history_of(tws).clock.now += 15.0  # type: ignore[attr-defined]  # the identical-request rule
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "", "1 W", "1 day", "TRADES", 0, 2, False, [])
    (day,) = bars(app, req)
    assert day.date == "20250305" and day.barCount == 4 * len(candles)
    assert (day.open, day.close) == (candles[0].open, candles[-1].close)


def test_keep_up_to_date_sends_the_forming_bar_after_every_trade(candles: list[Candle]) -> None:
    tws = started(candles, at=START + dt.timedelta(minutes=10, seconds=20))
    app = RecordingApp().start(tws.port)
    try:
        req = next(IDS)
        app.reqHistoricalData(req, nqh5(), "", "600 S", "1 min", "TRADES", 0, 2, True, [])
        got = bars(app, req)
        assert [as_tuple(b) for b in got] == expected(candles[1:10])  # finished bars starting in the span
        # the minute 14:10 so far (two prints, at :00 and :15) came as an update
        first = app.wait_for("historicalDataUpdate")[0][1]
        assert (first.date, first.open, first.barCount) == (str(int(candles[10].start.timestamp())),
                                                             candles[10].open, 2)
        tws.advance(100)  # to 14:12:00
        updates = app.wait_for("historicalDataUpdate", 1 + 2 + 4 + 1)
        last_of = {}
        for _, bar in updates:
            last_of[bar.date] = bar
        for c in candles[10:12]:
            bar = last_of[str(int(c.start.timestamp()))]
            assert (bar.open, bar.high, bar.low, bar.close, float(bar.volume), bar.barCount) == (
                c.open, c.high, c.low, c.close, c.volume, c.trades)
        app.cancelHistoricalData(req)
        tws.wait_for_request("CANCEL_HISTORICAL_DATA")
        tws.advance(120)
        probe = next(IDS)
        app.reqHistoricalData(probe, nqh5(), "", "60 S", "1 min", "TRADES", 0, 2, False, [])
        bars(app, probe)  # answered after anything the cancelled stream might still have sent
        assert len(app.named("historicalDataUpdate")) == len(updates)
    finally:
        app.stop()
        tws.stop()


@pytest.mark.parametrize("args, cause", [
    (("", "1 D", "7 mins", "TRADES", 0, 2, False), "bar size"),
    (("", "1 X", "1 min", "TRADES", 0, 2, False), "duration"),
    (("", "1 D", "1 min", "VOLUME", 0, 2, False), "what to show"),
    (("", "1 D", "1 min", "TRADES", 0, 3, False), "format date"),
    (("20250305-15:00:00", "1 D", "1 min", "TRADES", 0, 2, True), "End date not supported"),
    (("", "1800 S", "1 sec", "TRADES", 0, 2, True), "5 secs"),
    (("yesterday", "1 D", "1 min", "TRADES", 0, 2, False), "not a date"),
])
def test_bad_parameters_get_321(served: tuple[FakeTWS, RecordingApp], args: tuple[Any, ...], cause: str) -> None:
    tws, app = served
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), *args, [])
    code, text = error_of(app, req)
    assert code == 321 and cause in text and text.startswith("Error validating request.")


def test_unknown_contracts_no_data_and_no_permission(candles: list[Candle]) -> None:
    tws = started(candles, no_permission=["ES"])
    app = RecordingApp().start(tws.port)
    try:
        req = next(IDS)
        app.reqHistoricalData(req, future("NQ", localSymbol="NQX9"), "", "1 D", "1 min", "TRADES", 0, 2, False, [])
        assert error_of(app, req)[0] == 200
        req = next(IDS)
        app.reqHistoricalData(req, future("NQ"), "", "1 D", "1 min", "TRADES", 0, 2, False, [])  # ambiguous
        assert error_of(app, req)[0] == 200
        req = next(IDS)
        app.reqHistoricalData(req, nqh5(), "20250304-12:00:00", "3600 S", "1 min", "TRADES", 0, 2, False, [])
        assert error_of(app, req) == (162, "Historical Market Data Service error message:HMDS query returned "
                                           "no data: NQH5@CME Trades")
        req = next(IDS)
        app.reqHistoricalData(req, future("ES", localSymbol="ESH5"), "", "1 D", "1 min", "TRADES", 0, 2, False, [])
        code, text = error_of(app, req)
        assert code == 162 and "permission" in text
        req = next(IDS)
        app.reqHistoricalData(req, nqh5(), "", "7200 S", "1 sec", "TRADES", 0, 2, False, [])
        assert error_of(app, req) == (162, "Historical Market Data Service error message:Time length exceed max.")
        assert history_of(tws).refused == {"200": 2, "no_data": 1, "permission": 1, "too_long": 1}
    finally:
        app.stop()
        tws.stop()


def test_ibs_pacing_rules(served: tuple[FakeTWS, RecordingApp]) -> None:
    tws, app = served
    clock = history_of(tws).clock
    assert isinstance(clock, Clock)

    def ask(end: str, what: str = "TRADES") -> tuple[int, str] | None:
        req = next(IDS)
        app.reqHistoricalData(req, nqh5(), end, "60 S", "1 min", what, 0, 2, False, [])
        return answer(app, req)

    assert ask("20250305-14:30:00") is None
    assert ask("20250305-14:30:00") == (162, "Historical Market Data Service error message:Historical data "
                                              "request pacing violation")  # identical within 15 s
    clock.now += 15.0
    assert ask("20250305-14:30:00") is None
    # five requests for one contract and tick type within 2 s pass; the sixth does not
    clock.now += 15.0
    for minute in range(31, 36):
        assert ask(f"20250305-14:{minute}:00") is None
    assert ask("20250305-14:40:00") is not None
    assert ask("20250305-14:40:00", what="MIDPOINT") is None  # another tick type
    clock.now += 2.0
    assert ask("20250305-14:41:00") is None
    # 60 in ten minutes
    history_of(tws).pacing = PacingRules(identical_seconds=0, per_contract_limit=1000)
    clock.now += 601.0
    ends = [f"{START + dt.timedelta(minutes=i):%Y%m%d-%H:%M:%S}" for i in range(1, 62)]
    for end in ends[:60]:
        assert ask(end) is None, end
    assert ask(ends[60]) is not None
    clock.now += 600.0
    assert ask(ends[60]) is None
    assert history_of(tws).refused["pacing"] == 3


def answer(app: RecordingApp, req: int, timeout: float = 10.0) -> tuple[int, str] | None:
    """The request's error, or None once it was answered with data (HISTORICAL_DATA_END)."""
    def seen() -> bool:
        return any(n in ("historicalDataEnd", "error") and a[0] == req for n, a in app.events)

    with app._changed:  # noqa: SLF001 - RecordingApp's condition, notified on every callback
        if not app._changed.wait_for(seen, timeout):  # noqa: SLF001
            raise TimeoutError(f"request {req} was not answered within {timeout} s")
    return next(((a[2], a[3]) for a in app.named("error") if a[0] == req), None)


def test_fifty_open_streams_at_most(candles: list[Candle]) -> None:
    tws = started(candles, max_messages_per_second=0)  # IB's client sends the 51 requests at once
    app = RecordingApp().start(tws.port)
    try:
        _fifty(tws, app)
    finally:
        app.stop()
        tws.stop()


def _fifty(tws: FakeTWS, app: RecordingApp) -> None:
    history_of(tws).pacing = PacingRules(identical_seconds=0, per_contract_limit=1000, window_limit=1000)
    first = next(IDS)
    for i in range(50):
        app.reqHistoricalData(first + 1000 + i, nqh5(), "", "60 S", "1 min", "TRADES", 0, 2, True, [])
    app.wait_for("historicalDataEnd", 50)
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "", "60 S", "1 min", "TRADES", 0, 2, True, [])
    assert error_of(app, req)[0] == 162
    app.cancelHistoricalData(first + 1000)
    req = next(IDS)
    app.reqHistoricalData(req, nqh5(), "", "60 S", "1 min", "TRADES", 0, 2, True, [])
    bars(app, req)


def test_historical_ticks_forward_backward_and_by_type(served: tuple[FakeTWS, RecordingApp],
                                                       candles: list[Candle]) -> None:
    tws, app = served
    req = next(IDS)
    app.reqHistoricalTicks(req, nqh5(), "20250305-14:00:00", "", 10, "TRADES", 0, True, [])
    (_, ticks, done), = app.wait_for("historicalTicksLast", where=lambda a: a[0] == req)
    assert done and len(ticks) == 10
    assert [(t.time, t.price) for t in ticks[:4]] == [(int(START.timestamp()) + s, p) for s, p in zip(
        (0, 15, 30, 59), (candles[0].open, candles[0].high if candles[0].close < candles[0].open else candles[0].low,
                          candles[0].low if candles[0].close < candles[0].open else candles[0].high,
                          candles[0].close))]
    req = next(IDS)
    app.reqHistoricalTicks(req, nqh5(), "", "20250305-15:59:59", 3, "TRADES", 0, True, [])
    (_, ticks, _), = app.wait_for("historicalTicksLast", where=lambda a: a[0] == req)
    last = candles[-1]
    far, near = (last.low, last.high) if last.close >= last.open else (last.high, last.low)
    assert [t.price for t in ticks] == [far, near, last.close]
    req = next(IDS)
    app.reqHistoricalTicks(req, nqh5(), "20250305-14:00:00", "", 2, "BID_ASK", 0, True, [])
    (_, quotes, _), = app.wait_for("historicalTicksBidAsk", where=lambda a: a[0] == req)
    assert quotes[0].priceBid == candles[0].open - 0.25 and quotes[0].priceAsk == candles[0].open
    req = next(IDS)
    app.reqHistoricalTicks(req, nqh5(), "20250305-14:00:00", "", 2, "MIDPOINT", 0, True, [])
    (_, mids, _), = app.wait_for("historicalTicks", where=lambda a: a[0] == req)
    assert mids[0].price == candles[0].open - 0.125
    for bad in (("20250305-14:00:00", "", 1001), ("20250305-14:00:00", "20250305-15:00:00", 10), ("", "", 10)):
        req = next(IDS)
        app.reqHistoricalTicks(req, nqh5(), *bad, "TRADES", 0, True, [])
        assert error_of(app, req)[0] == 321


def test_a_thousand_ticks_are_completed_to_the_second() -> None:
    trades = ScriptedScenario.from_prices(START, [(i // 600, 20_000.0 + (i % 4) * 0.25, 1) for i in range(1500)])
    tws = FakeTWS(speed=0, start=START + dt.timedelta(minutes=1), scenarios={"NQ": trades}).start()
    app = RecordingApp().start(tws.port)
    try:
        req = next(IDS)
        app.reqHistoricalTicks(req, nqh5(), "20250305-14:00:00", "", 1000, "TRADES", 0, True, [])
        (_, ticks, _), = app.wait_for("historicalTicksLast", where=lambda a: a[0] == req)
        assert len(ticks) == 1200  # 600 a second: the second of the 1000th tick completed
    finally:
        app.stop()
        tws.stop()


def test_head_timestamp(served: tuple[FakeTWS, RecordingApp]) -> None:
    tws, app = served
    req = next(IDS)
    app.reqHeadTimeStamp(req, nqh5(), "TRADES", 0, 2)
    assert app.wait_for("headTimestamp", where=lambda a: a[0] == req)[0][1] == str(int(START.timestamp()))
    req = next(IDS)
    app.reqHeadTimeStamp(req, nqh5(), "TRADES", 0, 1)
    assert app.wait_for("headTimestamp", where=lambda a: a[0] == req)[0][1] == "20250305-14:00:00"


def _sim_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    return parser.parse_args(["--port", "0", *argv])


def test_sim_planted_honours_the_start_time_and_serves_the_morning_as_history() -> None:
    tws, described = sim.build(_sim_args("--scenario", "planted", "--start", "2025-03-05T15:00Z", "--speed", "0"))
    assert tws.clock.now() == dt.datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
    assert "the clock starts at 15:00:00 UTC" in described
    day = sim.planted_day(dt.date(2025, 3, 5))
    morning = [c for c in day if c.end <= dt.datetime(2025, 3, 5, 15, 0, tzinfo=UTC)]
    with tws:
        app = RecordingApp().start(tws.port)
        try:
            req = next(IDS)
            app.reqHistoricalData(req, nqh5(), "20250305-15:00:00", "86400 S", "1 min", "TRADES", 0, 2, False, [])
            got = bars(app, req)
            assert [(b.date, b.open, b.high, b.low, b.close) for b in got] == [
                (str(int(c.start.timestamp())), c.open, c.high, c.low, c.close) for c in morning]
            assert max(b.high for b in got if b.date < str(int(dt.datetime(2025, 3, 5, 14, 30,
                                                                               tzinfo=UTC).timestamp()))) == 20_100.0
        finally:
            app.stop()
    # a bare date keeps starting just before the first candle
    tws, _ = sim.build(_sim_args("--scenario", "planted", "--start", "2025-03-05", "--speed", "0"))
    assert tws.clock.now() == day[0].start - dt.timedelta(minutes=1)


@pytest.mark.asyncio
async def test_fake_eclient_answers_history_in_process(candles: list[Candle]) -> None:
    from slob.config.ib_config import IBConfig
    from slob.live import IBWSFetcher
    from slob.testing import FakeConnector

    connector = FakeConnector(start=candles[-1].end, history_scenarios={"NQ": ScriptedScenario.from_candles(candles)})
    fetcher = IBWSFetcher(config=IBConfig(), client_factory=connector)
    await fetcher.connect()
    try:
        assert await fetcher.history("NQ", START, candles[-1].end) == candles
        assert await fetcher.history("NQ", START - dt.timedelta(hours=2), START) == []  # no data: empty
        assert await fetcher.head_timestamp("NQ") == START
        request = connector.client.last("REQ_HISTORICAL_DATA")
        assert request["formatDate"] == "2" and request["localSymbol"] == "NQH5"
    finally:
        await fetcher.disconnect()


def test_generated_trades_are_history_from_the_recording_on_and_it_can_be_switched_off() -> None:
    from slob.testing.fake_history import record_from_now

    for record in (True, False):
        with FakeTWS(speed=0, start=START) as tws:  # the seeded random walk
            history_of(tws).record_generated = record
            record_from_now(tws)
            tws.advance(600)
            app = RecordingApp().start(tws.port)
            try:
                req = next(IDS)
                app.reqHistoricalData(req, nqh5(), "", "600 S", "1 min", "TRADES", 0, 2, False, [])
                if record:
                    assert len(bars(app, req)) == 10
                else:
                    assert error_of(app, req)[0] == 162  # no data: nothing was kept
            finally:
                app.stop()
