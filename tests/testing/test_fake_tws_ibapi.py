"""FakeTWS against IB's own client, used the plain documented way (no slob code on the
client side): handshake, start-up, contract details, market data, tick-by-tick."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Iterator

import pytest
from support.ib_app import RecordingApp, future

from slob.testing import FakeTWS
from slob.testing.futures import third_friday


def details_for(app: RecordingApp, req_id: int, contract: object) -> list[object]:
    app.reqContractDetails(req_id, contract)
    app.wait_for("contractDetailsEnd", where=lambda a: a[0] == req_id)
    return [a[1] for a in app.named("contractDetails") if a[0] == req_id]


def front(app: RecordingApp, symbol: str = "NQ") -> object:
    rows = details_for(app, 900, future(symbol))
    return min(rows, key=lambda d: d.contract.lastTradeDateOrContractMonth).contract


def test_startup_sequence_is_accounts_then_order_id_then_farm_notices(tws: FakeTWS, app: RecordingApp) -> None:
    names = [n for n, _ in app.events if not n.endswith("ProtoBuf")]  # ibapi reports protobuf messages twice
    assert names[:2] == ["connectAck", "managedAccounts"]
    assert names[2] == "nextValidId"
    assert app.named("managedAccounts") == [("DU1234567",)]
    assert app.named("nextValidId") == [(1,)]
    farm = app.wait_for("error", 3, where=lambda a: a[2] in (2104, 2106, 2158))
    assert [(a[0], a[2], a[3]) for a in farm] == [
        (-1, 2104, "Market data farm connection is OK:usfarm"),
        (-1, 2106, "HMDS data farm connection is OK:ushmds"),
        (-1, 2158, "Sec-def data farm connection is OK:secdefnj"),
    ]
    assert app.serverVersion() == tws.server_version  # ibapi 10.50 offers 226: the fake's maximum wins
    assert [c.client_id for c in tws.clients] == [1]


def test_current_time_and_ids_follow_the_simulated_clock(tws: FakeTWS, app: RecordingApp) -> None:
    app.reqCurrentTime()
    (stamp,) = app.wait_for("currentTime")[0]
    assert stamp == int(tws.clock.now().timestamp())
    app.reqIds(-1)
    assert app.wait_for("nextValidId", 2)[-1] == (1,)
    app.reqCurrentTimeInMillis()
    (ms,) = app.wait_for("currentTimeInMillis")[0]
    assert abs(ms - stamp * 1000) < 5_000


def test_nq_details_list_live_quarterlies_unsorted_with_real_formats(app: RecordingApp) -> None:
    rows = details_for(app, 11, future("NQ"))
    locals_ = [d.contract.localSymbol for d in rows]
    # clock 2024-12-02: Z4 is the front, five quarterly expiries listed, not in order
    assert sorted(locals_) == sorted(["NQZ4", "NQH5", "NQM5", "NQU5", "NQZ5"])
    assert locals_ != sorted(locals_, key=lambda s: (s[-1], "HMUZ".index(s[-2])))
    for d in rows:
        c = d.contract
        assert re.fullmatch(r"\d{8}", c.lastTradeDateOrContractMonth)
        day = dt.date(int(c.lastTradeDateOrContractMonth[:4]), int(c.lastTradeDateOrContractMonth[4:6]),
                      int(c.lastTradeDateOrContractMonth[6:]))
        assert day == third_friday(day.year, day.month) and day.month in (3, 6, 9, 12)
        assert d.lastTradeTime == "08:30:00" and d.timeZoneId == "US/Central"
        assert d.realExpirationDate == c.lastTradeDateOrContractMonth
        assert (c.multiplier, d.minTick, c.tradingClass, c.exchange) == ("20", 0.25, "NQ", "CME")
        assert d.contractMonth == c.lastTradeDateOrContractMonth[:6]
        assert re.fullmatch(r"(\d{8}:(\d{4}-\d{8}:\d{4}|CLOSED);?)+", d.tradingHours)
        assert d.underSymbol == "NQ" and d.underSecType == "IND" and d.underConId == 11004958
    assert next(d for d in rows if d.contract.localSymbol == "NQZ4").contract.conId == 563947733


def test_detail_filters_month_local_symbol_and_contfut(app: RecordingApp) -> None:
    by_month = details_for(app, 1, future("NQ", lastTradeDateOrContractMonth="202503"))
    assert [d.contract.localSymbol for d in by_month] == ["NQH5"]
    by_local = details_for(app, 2, future("", localSymbol="MNQM5"))
    assert [(d.contract.localSymbol, d.contract.multiplier) for d in by_local] == [("MNQM5", "2")]
    cont = future("ES")
    cont.secType = "CONTFUT"
    rows = details_for(app, 3, cont)
    assert [(d.contract.secType, d.contract.localSymbol) for d in rows] == [("CONTFUT", "ESZ4")]


def test_blank_exchange_lists_each_contract_once_per_valid_exchange(app: RecordingApp) -> None:
    rows = details_for(app, 4, future("ES", exchange=""))
    pairs = {(d.contract.localSymbol, d.contract.exchange) for d in rows}
    assert len(rows) == len(pairs) == 2 * 21
    assert {ex for _, ex in pairs} == {"CME", "QBALGO"}
    micro = details_for(app, 5, future("MES", exchange=""))
    assert {d.contract.exchange for d in micro} == {"CME"} and len(micro) == 5  # micros: CME only


def test_expired_contracts_disappear_as_the_clock_moves(tws: FakeTWS, app: RecordingApp) -> None:
    tws.clock.set(dt.datetime(2024, 12, 20, 14, 31, tzinfo=dt.timezone.utc))  # 08:31 Chicago, Z4 expired
    rows = details_for(app, 5, future("NQ"))
    assert "NQZ4" not in {d.contract.localSymbol for d in rows}
    assert "NQH6" in {d.contract.localSymbol for d in rows}


def test_unknown_symbol_gets_error_200_and_no_end(app: RecordingApp) -> None:
    app.reqContractDetails(7, future("ZZZZ"))
    req_id, _, code, text, *_ = app.wait_error(200)
    assert (req_id, text) == (7, "No security definition has been found for the request")
    app.reqCurrentTime()  # a fence: everything sent before it has been processed
    app.wait_for("currentTime")
    assert app.named("contractDetailsEnd") == []


def test_tick_by_tick_all_last_streams_trades_on_the_grid(tws: FakeTWS, app: RecordingApp) -> None:
    contract = front(app)
    app.reqTickByTickData(20, contract, "AllLast", 0, False)
    ticks = app.wait_for("tickByTickAllLast", 200)
    start = int(tws.clock.now().timestamp())
    for req_id, tick_type, unix_s, price, size, attrib, exchange, conditions in ticks:
        assert (req_id, tick_type, exchange) == (20, 2, "CME")
        assert price > 0 and (price / 0.25).is_integer()
        assert size >= 1
        assert abs(unix_s - start) < 86_400
    times = [t[2] for t in ticks]
    assert times == sorted(times)


def test_tick_by_tick_bid_ask_and_midpoint(app: RecordingApp) -> None:
    contract = front(app)
    app.reqTickByTickData(21, contract, "BidAsk", 0, False)
    app.reqTickByTickData(22, contract, "MidPoint", 0, False)
    for req_id, unix_s, bid, ask, bid_size, ask_size, attrib in app.wait_for("tickByTickBidAsk", 50):
        assert req_id == 21 and bid < ask and bid_size > 0 and ask_size > 0
    mids = app.wait_for("tickByTickMidPoint", 20)
    assert all(m[0] == 22 and (m[2] * 8).is_integer() for m in mids)


def test_cancel_stops_tick_by_tick(tws: FakeTWS, app: RecordingApp) -> None:
    app.reqTickByTickData(23, front(app), "Last", 0, False)
    app.wait_for("tickByTickAllLast", 10)
    app.cancelTickByTickData(23)
    app.reqCurrentTime()
    app.wait_for("currentTime")  # the cancel has been processed
    seen = len(app.named("tickByTickAllLast"))
    tws.advance(60)
    app.reqCurrentTime()
    app.wait_for("currentTime", 2)
    assert len(app.named("tickByTickAllLast")) == seen


def test_tick_by_tick_limit_gives_10190(tws: FakeTWS, app: RecordingApp) -> None:
    contract = front(app)
    for req_id in range(30, 30 + 5):
        app.reqTickByTickData(req_id, contract, "Last", 0, False)
    app.reqTickByTickData(35, contract, "Last", 0, False)
    req_id, _, code, text, *_ = app.wait_error(10190)
    assert (req_id, text) == (35, "Max number of tick-by-tick requests has been reached.")


def test_market_data_sends_params_type_then_aggregated_ticks(tws: FakeTWS, app: RecordingApp) -> None:
    contract = front(app)
    app.reqMktData(40, contract, "", False, False, [])
    app.wait_for("tickString", 5, where=lambda a: a[1] == 45)
    names = [n for n, a in app.events if a and a[0] == 40]
    assert names[:2] == ["tickReqParams", "marketDataType"]
    assert app.named("tickReqParams")[0] == (40, 0.25, "a60001", 3)
    assert app.named("marketDataType")[0] == (40, 1)
    prices = {a[1] for a in app.named("tickPrice") if a[0] == 40}
    assert prices >= {1, 2, 4}  # bid, ask, last
    sizes = {a[1] for a in app.named("tickSize") if a[0] == 40}
    assert {0, 3, 5, 8} <= sizes  # bid/ask/last sizes (from TICK_PRICE) and volume
    stamps = [int(a[2]) for a in app.named("tickString") if a[0] == 40 and a[1] == 45]
    assert stamps == sorted(stamps)
    # 250 ms aggregation: at most four last-price updates within one exchange second
    per_second: dict[int, int] = {}
    pending = 0
    for name, args in app.events:
        if name == "tickPrice" and args[:2] == (40, 4):
            pending += 1
        elif name == "tickString" and args[:2] == (40, 45):
            per_second[int(args[2])] = per_second.get(int(args[2]), 0) + pending
            pending = 0
    assert per_second and max(per_second.values()) <= 4


@pytest.fixture
def restricted() -> Iterator[FakeTWS]:
    with FakeTWS(speed=math.inf, no_permission=["MES"]) as server:
        yield server


def test_354_names_the_contract_and_delayed_data_uses_delayed_ticks(restricted: FakeTWS) -> None:
    app = RecordingApp().start(restricted.port)
    try:
        contract = front(app, "MES")
        app.reqMktData(50, contract, "", False, False, [])
        req_id, _, code, text, *_ = app.wait_error(354)
        assert req_id == 50
        assert text.endswith("Delayed market data is available.MES DEC'24 (MESZ4) /TOP/ALL")
        app.reqMarketDataType(3)
        app.reqMktData(51, contract, "", False, False, [])
        req_id, _, code, text, *_ = app.wait_error(10167)
        assert (req_id, text) == (51, "Requested market data is not subscribed. Displaying delayed market data.")
        assert app.wait_for("marketDataType", where=lambda a: a[0] == 51)[0] == (51, 3)
        app.wait_for("tickPrice", 3, where=lambda a: a[0] == 51)
        types = {a[1] for a in app.named("tickPrice") if a[0] == 51}
        assert types <= {66, 67, 68, 72, 73, 75, 76} and 68 in types  # delayed bid/ask/last/high/low/close/open
        app.reqTickByTickData(52, contract, "Last", 0, False)
        assert app.wait_error(10189)[0] == 52  # no delayed tick-by-tick; as captured: Last 10189,
        app.reqTickByTickData(53, contract, "AllLast", 0, False)
        assert app.wait_error(10089)[0] == 53  # the other types 10089
    finally:
        app.stop()


def test_snapshot_ends_with_tick_snapshot_end(app: RecordingApp, tws: FakeTWS) -> None:
    contract = front(app)
    app.reqTickByTickData(60, contract, "Last", 0, False)
    app.wait_for("tickByTickAllLast")  # the market has traded at least once
    app.reqMktData(61, contract, "", True, False, [])
    app.wait_for("tickSnapshotEnd", where=lambda a: a[0] == 61)
    assert any(a[0] == 61 and a[1] == 4 for a in app.named("tickPrice"))


def test_cancel_of_unknown_market_data_id_is_error_300(app: RecordingApp) -> None:
    app.cancelMktData(999)
    req_id, _, code, text, *_ = app.wait_error(300)
    assert (req_id, text) == (999, "Can't find EId with tickerId:999")


def test_paused_clock_and_scripted_prices_deliver_exactly_the_script() -> None:
    from slob.testing import ScriptedScenario

    start = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)
    script = ScriptedScenario.from_prices(start, [(1.0, 21000.0, 2), (2.5, 21000.25, 1), (9.0, 20999.5, 4)])
    with FakeTWS(start=start, speed=0, scenarios={"NQ": script}) as tws:
        app = RecordingApp().start(tws.port)
        try:
            app.reqTickByTickData(1, front(app), "Last", 0, False)
            tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
            app.reqCurrentTime()
            app.wait_for("currentTime")
            assert app.named("tickByTickAllLast") == []  # time stands still
            tws.advance(3)
            got = app.wait_for("tickByTickAllLast", 2)
            assert [(t[2] - int(start.timestamp()), t[3], int(t[4])) for t in got] == [(1, 21000.0, 2), (2, 21000.25, 1)]
            tws.advance(10)
            assert app.wait_for("tickByTickAllLast", 3)[-1][3] == 20999.5
        finally:
            app.stop()


def test_same_seed_same_trades() -> None:
    def trades(seed: int) -> list[tuple[int, float, int]]:
        with FakeTWS(speed=0, seed=seed) as tws:
            app = RecordingApp().start(tws.port)
            try:
                app.reqTickByTickData(1, front(app), "Last", 0, False)
                tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
                tws.advance(20)
                got = app.wait_for("tickByTickAllLast", 40)
                return [(t[2], t[3], int(t[4])) for t in got[:40]]
            finally:
                app.stop()

    first = trades(7)
    assert first == trades(7)
    assert first != trades(8)
