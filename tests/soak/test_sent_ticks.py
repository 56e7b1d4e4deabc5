"""FakeTWS.sent_ticks(): exactly what the fake wrote to each subscription, checked against
what IB's own client received over a real socket."""

from __future__ import annotations

import collections
import datetime as dt
from typing import Iterator

import pytest
from support.ib_app import RecordingApp, future

from slob.testing import FakeTWS
from slob.testing.fake_market import SentLog, SentTick
from slob.testing.scenario import ScriptedScenario

_START = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)  # a Monday, NQZ4 front month


def _script() -> ScriptedScenario:
    # two identical trades in one second (both must be recorded), then a steady drip
    points = [(1.0, 21000.0, 1), (1.2, 21000.0, 1), (2.0, 21000.25, 3)]
    points += [(3.0 + i, 21000.0 + 0.25 * (i % 5), 1 + i % 4) for i in range(40)]
    return ScriptedScenario.from_prices(_START, points)


@pytest.fixture
def tws() -> Iterator[FakeTWS]:
    with FakeTWS(start=_START, speed=0, scenarios={"NQ": _script()}) as server:
        yield server


@pytest.fixture
def app(tws: FakeTWS) -> Iterator[RecordingApp]:
    client = RecordingApp().start(tws.port, client_id=4)
    yield client
    client.stop()


def _front(app: RecordingApp) -> object:
    app.reqContractDetails(900, future("NQ"))
    app.wait_for("contractDetailsEnd")
    rows = [a[1] for a in app.named("contractDetails")]
    return min(rows, key=lambda d: d.contract.lastTradeDateOrContractMonth).contract


def _round_trip(app: RecordingApp) -> None:
    """Everything the fake sent before answering is in (one socket, in order)."""
    before = len(app.named("currentTime"))
    app.reqCurrentTime()
    app.wait_for("currentTime", before + 1)


def test_tick_by_tick_ticks_are_recorded_exactly_as_received(tws: FakeTWS, app: RecordingApp) -> None:
    contract = _front(app)
    app.reqTickByTickData(7, contract, "AllLast", 0, False)
    tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
    tws.advance(20)
    tws.settle()
    _round_trip(app)
    got = [(a[0], a[2], a[3], int(a[4])) for a in app.named("tickByTickAllLast")]
    sent = tws.sent_ticks(client_id=4)
    assert len(got) >= 20
    assert [(s.req_id, s.time, s.price, s.size) for s in sent] == got
    assert {s.contract for s in sent} == {"NQZ4"}
    assert {(s.client_id, s.kind, s.resend, s.session) for s in sent} == {(4, "AllLast", False, 1)}
    assert [s.trade for s in sent] == sorted({s.trade for s in sent})  # one number per trade
    assert [s.sent_ns for s in sent] == sorted(s.sent_ns for s in sent)
    first = sent[0]
    assert first.timestamp == dt.datetime.fromtimestamp(first.time, dt.timezone.utc)
    # the two identical trades in one second are two records with two numbers
    same = collections.Counter((s.time, s.price, s.size) for s in sent)
    assert same[(int(_START.timestamp()) + 1, 21000.0, 1)] == 2


def test_one_trade_on_two_subscriptions_shares_its_number(tws: FakeTWS, app: RecordingApp) -> None:
    contract = _front(app)
    app.reqTickByTickData(7, contract, "AllLast", 0, False)
    app.reqTickByTickData(8, contract, "Last", 0, False)
    tws.wait_for_request("REQ_TICK_BY_TICK_DATA", where=lambda r: r.get("reqId") == "8")
    tws.advance(10)
    tws.settle()
    _round_trip(app)
    sent = tws.sent_ticks()
    by_req = {req: [s.trade for s in sent if s.req_id == req] for req in (7, 8)}
    assert by_req[7] and by_req[7] == by_req[8]
    assert {s.kind for s in sent if s.req_id == 8} == {"Last"}


def test_market_data_last_and_its_snapshot_resend(tws: FakeTWS, app: RecordingApp) -> None:
    contract = _front(app)
    tws.advance(5)  # trades print before anyone listens
    tws.settle()
    app.reqMktData(3, contract, "", False, False, [])
    tws.wait_for_request("REQ_MKT_DATA")
    _round_trip(app)
    tws.advance(10)
    tws.settle()
    _round_trip(app)
    sent = tws.sent_ticks(client_id=4)
    assert sent[0].resend and sent[0].kind == "mkt"  # the snapshot repeats the last trade
    assert not any(s.resend for s in sent[1:])
    lasts = [(a[0], a[2]) for a in app.named("tickPrice") if a[1] == 4]
    assert [(s.req_id, s.price) for s in sent] == lasts
    sizes = [int(a[2]) for a in app.named("tickSize") if a[1] == 5]
    assert [s.size for s in sent] == sizes  # IB's client splits LAST's size off (tick type 5)


def test_ticks_after_a_stall_are_recorded_when_sent(tws: FakeTWS, app: RecordingApp) -> None:
    contract = _front(app)
    app.reqTickByTickData(7, contract, "AllLast", 0, False)
    tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
    tws.advance(3)
    tws.settle()
    _round_trip(app)
    mark = tws.sent_tick_count
    assert mark > 0
    tws.stall(0.5)
    tws.advance(5)
    tws.settle()  # returns once the stall is over and the market has caught up
    _round_trip(app)
    sent = tws.sent_ticks(client_id=4, since=mark)
    assert sent
    got = [(a[2], a[3], int(a[4])) for a in app.named("tickByTickAllLast")][mark:]
    assert [(s.time, s.price, s.size) for s in sent] == got


def test_a_dropped_client_gets_nothing_more_recorded(tws: FakeTWS, app: RecordingApp) -> None:
    contract = _front(app)
    app.reqTickByTickData(7, contract, "AllLast", 0, False)
    tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
    tws.drop()
    app.wait_for("connectionClosed")
    tws.wait_for_clients(0, ready=False)
    tws.advance(10)
    tws.settle()
    assert tws.sent_ticks(client_id=4) == []


def test_reconnect_is_a_new_session_number(tws: FakeTWS) -> None:
    first = RecordingApp().start(tws.port, client_id=4)
    try:
        contract = _front(first)
        first.reqTickByTickData(7, contract, "AllLast", 0, False)
        tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
        tws.advance(3)
        tws.settle()
        _round_trip(first)
    finally:
        first.stop()
    tws.wait_for_clients(0, ready=False)
    second = RecordingApp().start(tws.port, client_id=4)
    try:
        second.reqTickByTickData(9, contract, "AllLast", 0, False)
        tws.wait_for_request("REQ_TICK_BY_TICK_DATA", where=lambda r: r.get("reqId") == "9")
        tws.advance(3)
        tws.settle()
        _round_trip(second)
    finally:
        second.stop()
    sessions = {s.req_id: s.session for s in tws.sent_ticks(4)}
    assert sessions[7] < sessions[9]
    mark = tws.sent_tick_count
    assert len(tws.sent_ticks(since=mark - 1)) == 1
    tws.clear_sent_ticks()
    assert tws.sent_tick_count == 0 and tws.sent_ticks() == []


def test_sent_log_round_trips_every_field_and_can_be_off() -> None:
    log = SentLog()
    log.record(3, 2, 1001, "NQH5", 1_700_000_000, 20000.25, 7, "mkt", True, 42, 123)
    log.record(4, 1, 1002, "ESZ4", 1_700_000_001, 6000.5, 1, "Last", False, 43, 124)
    assert log.ticks(3) == [SentTick(3, 2, 1001, "NQH5", 1_700_000_000, 20000.25, 7, "mkt", True, 42, 123)]
    assert [t.contract for t in log.ticks()] == ["NQH5", "ESZ4"]
    assert [t.trade for t in log.ticks(since=1)] == [43]
    off = SentLog(enabled=False)
    off.record(3, 2, 1001, "NQH5", 1, 1.0, 1, "AllLast", False, 1, 1)
    assert len(off) == 0


def test_connections_show_each_socket_and_when_it_was_ready_and_closed(tws: FakeTWS) -> None:
    first = RecordingApp().start(tws.port, client_id=4)
    first.stop()
    tws.wait_for_clients(0, ready=False)
    second = RecordingApp().start(tws.port, client_id=5)
    try:
        tws.wait_for_clients(1)  # the fake has read the second client's START_API
        conns = tws.connections
        assert [(c.session, c.client_id) for c in conns] == [(1, 4), (2, 5)]
        one, two = conns
        assert one.ready_ns is not None and one.closed_ns is not None
        assert one.opened_ns <= one.ready_ns <= one.closed_ns <= two.opened_ns
        assert two.closed_ns is None and two.ready_at == _START
    finally:
        second.stop()
