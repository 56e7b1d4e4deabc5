"""FaultProxy between IB's own client and FakeTWS over loopback: bytes pass unchanged,
each fault happens at the exact frame it names, the proxy outlives either side closing.

Waits are events with timeouts. "Nothing arrived" is checked where nothing *can* have
arrived (the proxy never wrote it: it counts what it received and what it delivered), or
after a reqCurrentTime round trip (TWS answers a socket's requests in order).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import socket
import threading
from decimal import Decimal
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibapi.order import Order
from support.ib_app import RecordingApp, future
from support.raw_client import RawClient
from support.recorder import Recorder

from slob.config.ib_config import IBConfig
from slob.ib import wire
from slob.live import IBWSFetcher
from slob.model import ConnectionRestored
from slob.testing import FakeTWS, FaultProxy
from slob.testing.fault_frames import CLIENT, SERVER, FrameNamer, Unit
from slob.testing.futures import active_contracts

START = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def tws() -> Iterator[FakeTWS]:
    with FakeTWS(speed=math.inf) as server:
        yield server


@pytest.fixture
def proxy(tws: FakeTWS) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=("127.0.0.1", tws.port)) as p:
        yield p


class App(RecordingApp):
    """IB's client that may be cut before it is ready: ``open`` does not wait for
    nextValidId, and ``stop`` works whatever state the connection is in."""

    def open(self, port: int, client_id: int = 1) -> "App":
        self.connect("127.0.0.1", port, client_id)
        if self.isConnected():
            self._runner = threading.Thread(target=self._run, name=f"ibapi-run-{client_id}", daemon=True)
            self._runner.start()
        return self

    def closed(self, timeout: float = 10.0) -> None:
        """Wait until IB's client has seen the socket close."""
        self.wait_for("connectionClosed", timeout=timeout)


@pytest.fixture
def apps() -> Iterator[list[App]]:
    """Clients a test opens; all stopped afterwards."""
    opened: list[App] = []
    yield opened
    for app in opened:
        app.stop()


def open_app(apps: list[App], port: int, *, ready: bool = True, client_id: int = 1) -> App:
    app = App()
    apps.append(app)
    app.open(port, client_id)
    if ready:
        app.wait_for("nextValidId")
    return app


def fence(app: RecordingApp) -> None:
    """A reqCurrentTime round trip: whatever TWS sent before its answer has arrived."""
    count = len(app.named("currentTime"))
    app.reqCurrentTime()
    app.wait_for("currentTime", count + 1)


def front(app: RecordingApp, req_id: int = 900) -> Any:
    app.reqContractDetails(req_id, future("NQ"))
    app.wait_for("contractDetailsEnd", where=lambda a: a[0] == req_id)
    rows = [a[1] for a in app.named("contractDetails") if a[0] == req_id]
    return min(rows, key=lambda d: d.contract.lastTradeDateOrContractMonth).contract


def order(action: str, order_type: str = "MKT", **fields: Any) -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType = action, Decimal(1), order_type
    for key, value in fields.items():
        setattr(o, key, value)
    return o


def place_bracket(app: RecordingApp, first_id: int = 1) -> None:
    """Parent (held), take profit (held), stop (transmits all three): three PLACE_ORDERs."""
    nq = future("NQ", lastTradeDateOrContractMonth=active_contracts("NQ", START)[0].contract_month)
    app.placeOrder(first_id, nq, order("BUY", transmit=False, orderRef="p"))
    app.placeOrder(first_id + 1, nq, order("SELL", "LMT", lmtPrice=30000.0, parentId=first_id,
                                           transmit=False, orderRef="tp"))
    app.placeOrder(first_id + 2, nq, order("SELL", "STP", auxPrice=10000.0, parentId=first_id,
                                           transmit=True, orderRef="sl"))


def names(tws: FakeTWS, name: str) -> int:
    return [r.name for r in tws.requests].count(name)


def gone(tws: FakeTWS, proxy: FaultProxy) -> None:
    """Both sockets of every relayed connection are closed (and the fake has processed
    whatever arrived before its socket closed)."""
    proxy.wait_connections(0)
    tws.wait_for_clients(0, ready=False)


# -- bytes pass unchanged ----------------------------------------------------------


def session(port: int, tws: FakeTWS) -> list[tuple[str, tuple[str, ...]]]:
    """A fixed session on a paused clock: start-up, time, details, tick-by-tick trades,
    market data, a market order's fill. Every callback, arguments as text."""
    app = App().open(port)
    try:
        app.wait_for("nextValidId")
        fence(app)
        contract = front(app)
        app.reqTickByTickData(1, contract, "AllLast", 0, False)
        app.reqMktData(2, contract, "", False, False, [])
        fence(app)
        for _ in range(3):
            tws.advance(5)
            tws.settle()
            fence(app)
        app.placeOrder(1, contract, order("BUY"))
        fence(app)  # the order is working before the clock moves
        tws.advance(5)
        tws.settle()
        app.wait_for("commissionAndFeesReport")
        fence(app)
    finally:
        app.stop()
    return [(name, tuple(str(a) for a in args)) for name, args in app.events]


def test_a_session_through_the_proxy_gets_the_same_callbacks_as_a_direct_one() -> None:
    with FakeTWS(speed=0, seed=3) as tws:
        direct = session(tws.port, tws)
    with FakeTWS(speed=0, seed=3) as tws, FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        relayed = session(proxy.port, tws)
        gone(tws, proxy)
        assert proxy.faults_done == []
        assert proxy.count("PLACE_ORDER") == 1 and proxy.count("EXECUTION_DATA", SERVER) == 1
        assert proxy.count("TICK_BY_TICK", SERVER) > 10
    assert len(direct) > 50
    assert relayed == direct


def test_raw_bytes_are_identical_through_the_proxy() -> None:
    def transcript(port: int) -> list[bytes]:
        raw = RawClient(port)
        try:
            raw.hello()
            raw.start_api(1)
            raw.read_until(9)
            raw.send(49, [1])  # REQ_CURRENT_TIME
            raw.send(9, [8, 7] + [""] * 12 + ["0", "", "", ""])  # REQ_CONTRACT_DATA, nothing found
            frames = [m.fields for m in raw.read_until(49)]
            raw.send(9, [8, 8, 0, "NQ", "FUT", "", 0.0, "", "", "CME", "", "USD", "", "", "0", "", "", ""])
            while True:
                m = raw.next_message()
                frames.append(m.fields)
                if m.msg_id == 52:  # CONTRACT_DATA_END
                    return frames
        finally:
            raw.close()

    with FakeTWS(speed=0) as tws, FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        relayed = transcript(proxy.port)
        gone(tws, proxy)  # client id 1 is free again
        assert relayed == transcript(tws.port)
        assert proxy.count("CONTRACT_DATA", SERVER) == 5
        assert {f.fate for f in proxy.frames()} == {"delivered"}


# -- cuts at exact frames ------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_cut_after_the_nth_place_order_delivers_exactly_n(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App], n: int) -> None:
    app = open_app(apps, proxy.port)
    cut = proxy.cut_after("PLACE_ORDER", n)
    place_bracket(app)
    (record,) = cut.wait()
    assert (record.kind, record.name, record.direction, record.conn) == ("cut_after", "PLACE_ORDER", CLIENT, 1)
    app.closed()
    gone(tws, proxy)
    assert names(tws, "PLACE_ORDER") == n
    assert [o.order_id for o in tws.orders] == list(range(1, n + 1))
    assert proxy.count("PLACE_ORDER") == n


@pytest.mark.parametrize("n", [1, 2, 3])
def test_cut_before_the_nth_place_order_never_delivers_it(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App], n: int) -> None:
    app = open_app(apps, proxy.port)
    cut = proxy.cut_after("PLACE_ORDER", n, before=True)
    place_bracket(app)
    assert cut.wait()[0].kind == "cut_before"
    app.closed()
    gone(tws, proxy)
    assert names(tws, "PLACE_ORDER") == n - 1, \
        f"fake saw {[r.name for r in tws.requests]}, errors {tws.protocol_errors}; proxy {proxy.frames(CLIENT)}"
    assert proxy.count("PLACE_ORDER", fate="lost") >= 1


def test_counting_starts_when_the_rule_is_armed_and_spans_connections(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    first = open_app(apps, proxy.port)
    fence(first)  # one REQ_CURRENT_TIME before the rule: not counted
    cut = proxy.cut_after("REQ_CURRENT_TIME", 2)
    fence(first)
    first.stop()
    proxy.wait_connections(0)
    second = open_app(apps, proxy.port)
    second.reqCurrentTime()
    assert cut.wait()[0].conn == 2
    second.closed()
    gone(tws, proxy)
    assert names(tws, "REQ_CURRENT_TIME") == 3


def test_cut_after_start_api_is_a_drop_before_next_valid_id(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    cut = proxy.cut_after("START_API")
    app = open_app(apps, proxy.port, ready=False)
    cut.wait()
    app.closed()
    gone(tws, proxy)
    assert names(tws, "START_API") == 1
    assert app.named("nextValidId") == []
    # one-shot: the next client gets through
    again = open_app(apps, proxy.port, client_id=1)
    assert again.named("nextValidId") == [(1,)]


def test_cut_before_next_valid_id_delivers_the_accounts_but_not_the_id(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    cut = proxy.cut_after("NEXT_VALID_ID", direction=SERVER, before=True)
    app = open_app(apps, proxy.port, ready=False)
    cut.wait()
    app.closed()
    assert app.wait_for("managedAccounts") == [("DU1234567",)]
    assert app.named("nextValidId") == []  # never written by the proxy:
    assert (proxy.count("NEXT_VALID_ID", SERVER), proxy.count("NEXT_VALID_ID", SERVER, fate="lost")) == (0, 1)
    gone(tws, proxy)


@pytest.mark.parametrize("rule", [("HELLO", CLIENT, False), ("GREETING", SERVER, True)])
def test_cut_during_the_handshake_leaves_ibapi_unconnected(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App], rule: tuple[str, str, bool]) -> None:
    name, direction, before = rule
    cut = proxy.cut_after(name, direction=direction, before=before)
    app = open_app(apps, proxy.port, ready=False)
    cut.wait()
    assert not app.isConnected()  # ibapi's connect() returned on EOF before the greeting
    assert app.named("connectAck") == []
    gone(tws, proxy)
    assert names(tws, "START_API") == 0
    assert proxy.count("GREETING", SERVER) == 0


def test_cut_inside_a_resubscription(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    contract = front(app)
    cut = proxy.cut_after("REQ_TICK_BY_TICK_DATA")
    app.reqTickByTickData(1, contract, "AllLast", 0, False)
    app.reqContractDetails(2, future("ES"))  # after the cut: never reaches TWS
    cut.wait()
    app.closed()
    gone(tws, proxy)
    assert names(tws, "REQ_TICK_BY_TICK_DATA") == 1
    assert [r.int("reqId") for r in tws.requests if r.name == "REQ_CONTRACT_DATA"] == [900]


def test_cut_now_closes_every_connection_and_the_proxy_serves_the_next(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    one = open_app(apps, proxy.port, client_id=1)
    two = open_app(apps, proxy.port, client_id=2)
    assert proxy.cut_now() == 2
    one.closed()
    two.closed()
    gone(tws, proxy)
    assert [(f.kind, f.conn) for f in proxy.faults_done] == [("cut", 1), ("cut", 2)]
    three = open_app(apps, proxy.port, client_id=1)
    fence(three)
    assert proxy.accepted == 3 and proxy.connections == 1


def test_a_reset_cut_is_seen_as_a_reset(tws: FakeTWS, proxy: FaultProxy) -> None:
    raw = RawClient(proxy.port).ready()
    try:
        proxy.cut_now(reset=True)
        raw.sock.settimeout(10)
        with pytest.raises(ConnectionResetError):
            while raw.sock.recv(65536):
                pass
    finally:
        raw.close()
    gone(tws, proxy)


# -- unanswered requests -------------------------------------------------------------


def test_swallowed_current_time_is_never_answered(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    gulp = proxy.swallow("REQ_CURRENT_TIME")
    app.reqCurrentTime()
    gulp.wait()
    fence(app)  # the next one is forwarded and answered; TWS answers in order
    assert len(app.named("currentTime")) == 1
    assert names(tws, "REQ_CURRENT_TIME") == 1
    assert proxy.count("REQ_CURRENT_TIME", fate="swallowed") == 1
    assert [f.kind for f in proxy.faults_done] == ["swallow"]


def test_swallow_n_contract_requests(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    gulp = proxy.swallow("REQ_CONTRACT_DATA", 2)
    app.reqContractDetails(1, future("NQ"))
    assert not gulp.done
    app.reqContractDetails(2, future("ES"))
    app.reqContractDetails(3, future("MNQ"))
    assert len(gulp.wait()) == 2
    app.wait_for("contractDetailsEnd", where=lambda a: a[0] == 3)
    fence(app)
    assert {a[0] for a in app.named("contractDetailsEnd")} == {3}
    assert [r.int("reqId") for r in tws.requests if r.name == "REQ_CONTRACT_DATA"] == [3]


# -- silence, junk, trickle ----------------------------------------------------------


def test_hold_keeps_answers_in_the_proxy_until_release(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    proxy.hold()
    app.reqCurrentTime()
    proxy.wait_for("CURRENT_TIME", direction=SERVER, fate="received")
    assert proxy.count("CURRENT_TIME", SERVER) == 0  # in the proxy, not written
    assert app.named("currentTime") == []
    proxy.release()
    app.wait_for("currentTime")
    assert [f.kind for f in proxy.faults_done] == ["hold", "release"]


def test_hold_covers_new_connections_too(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    proxy.hold()
    raw = RawClient(proxy.port)
    try:
        raw.send_raw(wire.ClientHello(100, 200).encode())
        proxy.wait_for("GREETING", direction=SERVER, fate="received")
        assert proxy.count("GREETING", SERVER) == 0
        proxy.release()
        assert wire.ServerHello.parse(raw.next_frame()).server_version == 200
    finally:
        raw.close()


def test_stall_releases_by_itself(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    proxy.stall(0.2)
    app.reqCurrentTime()
    app.wait_for("currentTime")
    assert [f.kind for f in proxy.faults_done] == ["hold", "release"]


def test_a_cut_behind_held_frames_happens_once_they_are_delivered(
        tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    proxy.hold()
    cut = proxy.cut_after("CURRENT_TIME", direction=SERVER)
    app.reqCurrentTime()
    proxy.wait_for("CURRENT_TIME", direction=SERVER, fate="received")
    assert not cut.done
    proxy.release()
    cut.wait()
    app.closed()
    app.wait_for("currentTime")  # IB's client queues it before it reads the EOF
    assert proxy.count("CURRENT_TIME", SERVER) == 1
    gone(tws, proxy)


def quiet_session(proxy: FaultProxy) -> RawClient:
    """A raw client through ``proxy``, ready, with nothing more on its way to it."""
    return RawClient(proxy.port).ready()


@pytest.fixture
def quiet() -> Iterator[FakeTWS]:
    with FakeTWS(speed=math.inf, farm_notices=False) as server:
        yield server


def test_inject_writes_exactly_its_bytes_in_stream_order(quiet: FakeTWS) -> None:
    with FaultProxy(upstream=("127.0.0.1", quiet.port)) as proxy:
        raw = quiet_session(proxy)
        try:
            half = wire.frame(b"49\x001\x00")[:5]  # a frame cut in the middle
            assert proxy.inject(half) == 1
            got = b""
            raw.sock.settimeout(10)
            while len(got) < len(half):
                got += raw.sock.recv(64)
            assert got == half
            assert [(f.kind, f.conn, f.detail) for f in proxy.faults_done] == [("inject", 1, "5 bytes to client")]
        finally:
            raw.close()


def test_an_oversize_length_prefix_breaks_the_clients_framing(quiet: FakeTWS) -> None:
    with FaultProxy(upstream=("127.0.0.1", quiet.port)) as proxy:
        raw = quiet_session(proxy)
        try:
            proxy.inject((wire.MAX_MSG_LEN + 1).to_bytes(4, "big") + b"junk")
            with pytest.raises(wire.FrameTooLong):
                raw.next_frame()
        finally:
            raw.close()


def test_junk_injected_towards_tws_closes_that_connection_at_tws(quiet: FakeTWS) -> None:
    with FaultProxy(upstream=("127.0.0.1", quiet.port)) as proxy:
        raw = quiet_session(proxy)
        try:
            proxy.inject(b"GET / HTTP/1.1\r\n\r\n", to="server")
            assert raw.closed_by_peer()
            quiet.wait_until(lambda t: any("protocol maximum" in e for e in t.protocol_errors))
            proxy.wait_connections(0)
        finally:
            raw.close()


def test_trickle_writes_one_byte_then_waits(quiet: FakeTWS) -> None:
    with FaultProxy(upstream=("127.0.0.1", quiet.port)) as proxy:
        raw = quiet_session(proxy)
        try:
            proxy.trickle(3600.0)  # one byte now, the next in an hour
            raw.send(49, [1])
            raw.sock.settimeout(10)
            assert raw.sock.recv(64) == b"\x00"  # the first byte of the length prefix, alone
            assert proxy.count("CURRENT_TIME", SERVER) == 0
            proxy.trickle(None)
            assert raw.decoder.feed(b"\x00") == []
            assert raw.next_message().msg_id == 49
            assert proxy.count("CURRENT_TIME", SERVER) == 1
        finally:
            raw.close()


def test_a_trickled_answer_arrives_whole_at_ibapi(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    app = open_app(apps, proxy.port)
    proxy.trickle(0.0005)
    app.reqCurrentTime()
    app.wait_for("currentTime")
    assert proxy.count("CURRENT_TIME", SERVER) == 1
    proxy.disarm()
    fence(app)
    assert [f.kind for f in proxy.faults_done] == ["trickle", "trickle"]


# -- chaos -----------------------------------------------------------------------------


def test_chaos_cuts_at_seeded_intervals(tws: FakeTWS, proxy: FaultProxy) -> None:
    proxy.chaos(seed=11, mean_interval=0.02)
    records = []
    for cuts in range(1, 4):
        raw = RawClient(proxy.port)
        try:
            assert raw.closed_by_peer(timeout=10)
        finally:
            raw.close()
        records = [f for f in proxy.faults_done if f.kind == "chaos_cut"]
        assert len(records) >= cuts
    proxy.stop_chaos()
    rng = random.Random(11)
    waits = [rng.expovariate(1 / 0.02) for _ in range(1000)]
    for record in records:
        fields = dict(part.split("=") for part in record.detail.split()[:2])
        assert fields["seed"] == "11"
        assert record.detail.endswith(f"after {waits[int(fields['draw']) - 1]:.3f} s")


# -- slob's own client ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_slobs_fetcher_streams_through_the_proxy_and_survives_a_cut() -> None:
    async with FakeTWS(speed=60) as tws, FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        fetcher = IBWSFetcher(config=IBConfig(port=proxy.port, reconnect_delay_seconds=0.05,
                                              max_reconnect_delay_seconds=0.2, connect_timeout_seconds=5.0))
        rec = Recorder(timeout=10.0)
        fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
        await fetcher.connect()
        await fetcher.subscribe(["NQ"])
        task = asyncio.create_task(fetcher.listen())
        try:
            await rec.until(lambda: len(rec.ticks) >= 10)
            assert proxy.cut_now() == 1
            await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
            count = len(rec.ticks)
            await rec.until(lambda: len(rec.ticks) >= count + 10)
        finally:
            await fetcher.disconnect()
            await asyncio.wait_for(task, 5)
        proxy.wait_connections(0)
        assert proxy.accepted == 2
        assert proxy.count("REQ_TICK_BY_TICK_DATA") == 2


# -- the proxy itself ----------------------------------------------------------------


def test_survives_the_client_leaving_and_tws_dropping(tws: FakeTWS, proxy: FaultProxy, apps: list[App]) -> None:
    first = open_app(apps, proxy.port)
    first.stop()
    gone(tws, proxy)
    second = open_app(apps, proxy.port)
    assert tws.drop() == 1
    second.closed()
    gone(tws, proxy)
    third = open_app(apps, proxy.port)
    fence(third)
    assert proxy.accepted == 3 and proxy.faults_done == []


def test_unreachable_upstream_closes_the_client() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]  # bound, not listening: connections are refused
        with FaultProxy(upstream=("127.0.0.1", port)) as proxy:
            raw = RawClient(proxy.port)
            try:
                assert raw.closed_by_peer()
            finally:
                raw.close()
            proxy.wait_connections(0)


def test_binds_loopback_only_and_leaves_no_thread(tws: FakeTWS) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(upstream=("127.0.0.1", tws.port), host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(upstream=("192.0.2.1", tws.port))
    proxy = FaultProxy(upstream=("127.0.0.1", tws.port)).start()
    try:
        assert proxy._server is not None
        assert {s.getsockname()[0] for s in proxy._server.sockets} == {"127.0.0.1"}
    finally:
        proxy.stop()
    assert "slob-fault-proxy" not in {t.name for t in threading.enumerate()}


def test_rules_may_be_armed_before_start_and_names_are_checked(tws: FakeTWS, apps: list[App]) -> None:
    proxy = FaultProxy(upstream=("127.0.0.1", tws.port))
    with pytest.raises(ValueError, match="direction 'client'"):
        proxy.cut_after("PLACE_ORDER", direction=SERVER)
    with pytest.raises(ValueError, match="not a message"):
        proxy.swallow("REQ_CURENT_TIME")
    cut = proxy.cut_after("START_API")
    with proxy:
        open_app(apps, proxy.port, ready=False).closed()
        assert cut.wait()[0].name == "START_API"


# -- the frame namer (pure) ------------------------------------------------------------


def handshake_and_messages(sv: int) -> tuple[bytes, bytes]:
    """A client stream and a server stream of one session at server version ``sv``."""
    client = wire.ClientHello(100, sv).encode() + b"".join(
        wire.encode_message(i, [1, 2, "x"], sv) for i in (71, 49, 3, 9))
    greeting = wire.ServerHello(sv, "20241202 10:00:00 EST").encode()
    server = greeting + wire.encode_message(15, [1, "DU1"], sv) + wire.encode_message(9, [1, 1], sv)
    if sv >= wire.MIN_PROTOBUF_SERVER_VERSION:
        server += wire.encode_protobuf_message(4, b"\x08\x01")  # ERR_MSG as protobuf
    return client, server


@pytest.mark.parametrize("sv", [176, 200, 213])
def test_namer_names_both_directions_at_each_generation(sv: int) -> None:
    client, server = handshake_and_messages(sv)
    namer = FrameNamer()
    got_server = [u.name for u in namer.feed(SERVER, server)]
    got_client = [u.name for u in namer.feed(CLIENT, client)]
    assert got_client == ["HELLO", "START_API", "REQ_CURRENT_TIME", "PLACE_ORDER", "REQ_CONTRACT_DATA"]
    expected = ["GREETING", "MANAGED_ACCTS", "NEXT_VALID_ID"]
    assert got_server == expected + (["ERR_MSG"] if sv >= 201 else [])
    assert namer.server_version == sv


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([176, 200, 213]), st.lists(st.integers(1, 40), min_size=1, max_size=30),
       st.booleans())
def test_namer_gives_the_same_units_however_the_bytes_are_chunked(sv: int, cuts: list[int], server_first: bool) -> None:
    client, server = handshake_and_messages(sv)
    whole = FrameNamer()
    expected = (whole.feed(SERVER, server), whole.feed(CLIENT, client))
    namer = FrameNamer()
    if server_first:
        got_server = feed_in_pieces(namer, SERVER, server, cuts)
        got_client = feed_in_pieces(namer, CLIENT, client, cuts)
    else:  # the client's frames are named before the greeting: by sniffing their ids
        got_client = feed_in_pieces(namer, CLIENT, client, cuts)
        got_server = feed_in_pieces(namer, SERVER, server, cuts)
    assert (got_server, got_client) == expected
    assert b"".join(u.data for u in got_client) == client


def feed_in_pieces(namer: FrameNamer, direction: str, data: bytes, cuts: list[int]) -> list[Unit]:
    units: list[Unit] = []
    pos = 0
    for size in cuts * (len(data) // max(1, sum(cuts)) + 1):
        units += namer.feed(direction, data[pos:pos + size])
        pos += size
        if pos >= len(data):
            break
    return units


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([CLIENT, SERVER]), st.lists(st.binary(max_size=40), max_size=12), st.booleans())
def test_namer_never_raises_and_never_changes_a_byte(direction: str, chunks: list[bytes], framed: bool) -> None:
    namer = FrameNamer()
    fed = b""
    if framed and direction == CLIENT:
        fed = wire.ClientHello(100, 200).encode()
        namer.feed(CLIENT, fed)
    out = b""
    for chunk in chunks:
        units = namer.feed(direction, chunk)
        fed += chunk
        out += b"".join(u.data for u in units)
    prefix = wire.ClientHello(100, 200).encode() if framed and direction == CLIENT else b""
    assert prefix + out + namer.buffered(direction) == fed
