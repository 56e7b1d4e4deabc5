"""FakeTWS faults on command, and how it treats bad input from clients."""

from __future__ import annotations

import math
import socket
from typing import Iterator

import pytest
from support.ib_app import RecordingApp, future
from support.raw_client import RawClient

from slob.ib import wire
from slob.testing import FakeTWS


@pytest.fixture
def raw(tws: FakeTWS) -> Iterator[RawClient]:
    """A bare socket connected to ``tws`` (nothing sent yet), closed after the test."""
    client = RawClient(tws.port)
    yield client
    client.close()


def front(app: RecordingApp) -> object:
    app.reqContractDetails(900, future("NQ"))
    app.wait_for("contractDetailsEnd")
    rows = [a[1] for a in app.named("contractDetails")]
    return min(rows, key=lambda d: d.contract.lastTradeDateOrContractMonth).contract


def stream_trades(app: RecordingApp) -> None:
    """Subscribe to the front month's trades and wait for the first five."""
    app.reqTickByTickData(1, front(app), "Last", 0, False)
    app.wait_for("tickByTickAllLast", 5)


def trades_then_advance(tws: FakeTWS, app: RecordingApp, seconds: float) -> int:
    """The trades ``app`` has (after a currentTime round trip, so none are in flight);
    then ``seconds`` of simulated time pass and a second round trip brings in whatever
    they sent."""
    app.reqCurrentTime()
    app.wait_for("currentTime")
    count = len(app.named("tickByTickAllLast"))
    tws.advance(seconds)
    app.reqCurrentTime()
    app.wait_for("currentTime", 2)
    return count


# -- handshake -----------------------------------------------------------------


def test_server_version_is_min_of_client_max_and_server_max() -> None:
    with FakeTWS(server_version=176) as tws:
        raw = RawClient(tws.port)
        try:
            assert raw.hello(100, 226).server_version == 176
        finally:
            raw.close()
        raw = RawClient(tws.port)
        try:
            assert raw.hello(100, 150).server_version == 150
        finally:
            raw.close()


def test_greeting_travels_alone_until_start_api(raw: RawClient) -> None:
    greeting = raw.hello()
    assert greeting.server_version == 200
    assert greeting.connection_time.startswith("20241202 10:00:00 ")  # New York time
    raw.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        raw.sock.recv(1)  # nothing else may ride with the greeting (ibapi reads one frame)
    raw.start_api(3)
    first = [m.msg_id for m in raw.read_until(9)]
    assert first == [15, 9]


def test_client_asking_only_for_newer_versions_is_closed(tws: FakeTWS, raw: RawClient) -> None:
    raw.send_raw(wire.ClientHello(tws.server_version + 1, 300).encode())
    assert raw.closed_by_peer()


def test_non_api_bytes_close_the_connection_and_are_reported(tws: FakeTWS, raw: RawClient) -> None:
    raw.send_raw(b"GET / HTTP/1.1\r\n\r\n")
    assert raw.closed_by_peer()
    tws.wait_until(lambda t: bool(t.protocol_errors))
    assert "API\\0" in tws.protocol_errors[0]


# -- bad requests ----------------------------------------------------------------


def test_unknown_message_id_is_answered_320_and_the_session_survives(raw: RawClient) -> None:
    raw.ready(1)
    raw.send(250, ["1", "x"])
    errors = [m for m in raw.read_until(4) if m.msg_id == 4]
    while errors[-1].text(1) != "320":
        errors = [m for m in raw.read_until(4) if m.msg_id == 4]
    assert errors[-1].text(0) == "-1"
    assert "Unknown message id 250" in errors[-1].text(2)
    raw.send(49, [1])  # still served
    assert [m for m in raw.read_until(49)][-1].msg_id == 49


def test_malformed_field_is_answered_320_with_the_request_id(raw: RawClient) -> None:
    raw.ready(1)
    raw.send(59, [1, "not-a-number"])  # REQ_MARKET_DATA_TYPE
    err = next(m for m in iter(lambda: raw.next_message(), None) if m.msg_id == 4 and m.text(1) == "320")
    assert "marketDataType" in err.text(2)
    raw.send(49, [1])
    assert raw.read_until(49)[-1].msg_id == 49


def test_oversize_frame_closes_only_that_client(tws: FakeTWS, app: RecordingApp, raw: RawClient) -> None:
    raw.ready(2)
    raw.send_raw((wire.MAX_MSG_LEN + 1).to_bytes(4, "big") + b"xx")
    assert raw.closed_by_peer()
    tws.wait_until(lambda t: any("protocol maximum" in e for e in t.protocol_errors))
    app.reqCurrentTime()
    app.wait_for("currentTime")
    assert [c.client_id for c in tws.clients] == [1]


# -- faults ------------------------------------------------------------------------


def test_duplicate_client_id_gets_326_and_is_closed(tws: FakeTWS) -> None:
    first = RecordingApp().start(tws.port, client_id=7)
    raw = RawClient(tws.port)
    try:
        raw.hello()
        raw.start_api(7)
        err = raw.next_message()
        assert (err.msg_id, err.text(0), err.text(1)) == (4, "-1", "326")
        assert err.text(2) == "Unable to connect as the client id is already in use. Retry with a unique client id."
        assert raw.closed_by_peer()
        first.reqCurrentTime()
        first.wait_for("currentTime")  # the first client is untouched
    finally:
        raw.close()
        first.stop()


def test_drop_closes_the_socket_and_the_client_sees_it(tws: FakeTWS, app: RecordingApp) -> None:
    assert tws.drop() == 1
    app.wait_for("connectionClosed")
    tws.wait_for_clients(0, ready=False)


def test_restart_refuses_connections_then_listens_again() -> None:
    with FakeTWS(speed=math.inf) as tws:
        app = RecordingApp().start(tws.port)
        try:
            tws.restart(down_for=1.0)
            app.wait_for("connectionClosed")
            assert not tws.listening
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", tws.port), timeout=1).close()
            tws.wait_until(lambda t: t.listening, timeout=10)
            again = RecordingApp().start(tws.port)
            again.stop()
        finally:
            app.stop()


def test_stall_holds_everything_then_delivers_it(tws: FakeTWS, app: RecordingApp) -> None:
    stream_trades(app)
    tws.stall(1.0)
    app.reqCurrentTime()
    with pytest.raises(TimeoutError):
        app.wait_for("currentTime", timeout=0.5)
    app.wait_for("currentTime", timeout=10)  # answered once the stall ends
    before = len(app.named("tickByTickAllLast"))
    app.wait_for("tickByTickAllLast", before + 5)


def test_send_error_uses_the_real_text(tws: FakeTWS, app: RecordingApp) -> None:
    tws.send_error(10197, req_id=5)
    assert app.wait_error(10197)[3] == "No market data during competing live session"
    tws.send_error(1300)
    assert app.wait_error(1300)[3].endswith(f"new port - {tws.port}")


def test_connectivity_lost_then_restored_with_data_maintained(tws: FakeTWS, app: RecordingApp) -> None:
    stream_trades(app)
    tws.connectivity_lost()
    app.wait_error(1100)
    quiet = trades_then_advance(tws, app, 30)
    assert len(app.named("tickByTickAllLast")) == quiet  # nothing flows while lost
    tws.connectivity_restored(data_maintained=True)
    assert "data maintained" in app.wait_error(1102)[3]
    app.wait_for("tickByTickAllLast", quiet + 5)  # the subscription carried on


def test_connectivity_restored_with_data_lost_drops_subscriptions(tws: FakeTWS, app: RecordingApp) -> None:
    stream_trades(app)
    tws.connectivity_lost()
    app.wait_error(1100)
    tws.connectivity_restored(data_maintained=False)
    assert app.wait_error(1101)[3].endswith("restored - data lost.")
    count = trades_then_advance(tws, app, 30)
    assert len(app.named("tickByTickAllLast")) == count


@pytest.mark.parametrize("kind", ["bad_id", "truncated", "oversize"])
def test_garbage_frames_reach_the_client(tws: FakeTWS, raw: RawClient, kind: str) -> None:
    raw.ready(1)
    tws.send_garbage(kind)
    if kind == "oversize":
        with pytest.raises(wire.FrameTooLong):
            while True:
                raw.next_frame()
    else:
        with pytest.raises(wire.MalformedMessage):
            while True:
                raw.next_message()


def test_pacing_violations_are_counted_and_rejected() -> None:
    with FakeTWS(max_messages_per_second=20) as tws:
        raw = RawClient(tws.port)
        try:
            raw.ready(1)
            raw.send_raw(wire.encode_message(49, [1], 200) * 30)  # one burst
            tws.wait_until(lambda t: t.pacing_violations >= 3)
            assert raw.closed_by_peer()  # three strikes, as TWS in "reject" mode
        finally:
            raw.close()


def test_fake_tws_refuses_non_loopback_and_versions_it_does_not_speak() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeTWS(host="0.0.0.0")
    for version in (99, 227):
        with pytest.raises(ValueError, match="100..226"):
            FakeTWS(server_version=version)


# -- request faults (pacing rejections, unanswered requests, drops at a request) ------


def test_reject_next_request_answers_its_error_once(tws: FakeTWS, app: RecordingApp) -> None:
    armed = tws.reject_next_request("REQ_CONTRACT_DATA")
    assert tws.armed_faults == [armed]
    app.reqContractDetails(900, future("NQ"))
    assert app.wait_error(100)[0] == 900
    assert "Max rate of messages per second" in app.wait_error(100)[3]
    assert not app.named("contractDetailsEnd")
    assert tws.armed_faults == []
    fired = tws.fired_faults
    assert [(f.fault, f.client_id, f.session) for f in fired] == [(armed, 1, 1)]
    app.reqContractDetails(901, future("NQ"))  # the next one is served
    app.wait_for("contractDetailsEnd")


def test_ignore_next_request_leaves_it_unanswered(tws: FakeTWS, app: RecordingApp) -> None:
    tws.ignore_next_request("REQ_CURRENT_TIME")
    app.reqCurrentTime()
    app.reqContractDetails(900, future("NQ"))
    app.wait_for("contractDetailsEnd")  # served after the ignored request, on the same socket
    assert app.named("currentTime") == []
    app.reqCurrentTime()
    app.wait_for("currentTime")
    assert len(tws.fired_faults) == 1


def test_skip_lets_requests_through_first_and_client_id_limits(tws: FakeTWS, app: RecordingApp) -> None:
    tws.reject_next_request("REQ_CURRENT_TIME", code=100, client_id=9)
    tws.reject_next_request("REQ_CURRENT_TIME", code=100, skip=1)
    app.reqCurrentTime()
    app.wait_for("currentTime")  # skipped by the second, not this client's for the first
    app.reqCurrentTime()
    assert app.wait_error(100)[0] == -1  # REQ_CURRENT_TIME carries no id
    assert [f.fault.client_id for f in tws.fired_faults] == [None]
    assert [f.client_id for f in tws.armed_faults] == [9]
    assert len(tws.disarm()) == 1 and tws.armed_faults == []


def test_drop_on_place_order_takes_the_order_then_closes(tws: FakeTWS, app: RecordingApp) -> None:
    from ibapi.order import Order

    tws.drop_on_next_request("PLACE_ORDER")
    contract = front(app)
    parent = Order()
    parent.action, parent.orderType, parent.totalQuantity, parent.transmit = "BUY", "MKT", 1, False
    parent.orderRef = "setup-1"
    app.placeOrder(5, contract, parent)
    app.wait_for("connectionClosed")
    assert [(o.order_id, o.order_ref, o.status) for o in tws.orders] == [(5, "setup-1", "ApiPending")]


def test_drop_on_start_api_unanswered_closes_before_next_valid_id(tws: FakeTWS, raw: RawClient) -> None:
    tws.drop_on_next_request("START_API", answered=False, client_id=3)
    raw.hello()
    raw.start_api(3)
    with pytest.raises(ConnectionError):
        raw.next_frame()
    assert tws.fired_faults[0].client_id == 3


def test_nightly_reset_notices_in_order_with_a_repeated_1100(tws: FakeTWS, app: RecordingApp) -> None:
    tws.connectivity_lost(all_farms=True)
    app.wait_error(1100)
    assert not tws.connectivity
    tws.connectivity_lost(all_farms=True)  # still lost: TWS repeats 1100 only
    app.wait_for("error", 2, where=lambda a: a[2] == 1100)
    tws.connectivity_restored(data_maintained=True, all_farms=True)
    app.wait_error(1102)
    assert tws.connectivity
    codes = [a[2] for a in app.named("error")]
    reset = codes[codes.index(2103):]
    assert reset == [2103, 2157, 2105, 1100, 1100, 2158, 2106, 2104, 1102]
