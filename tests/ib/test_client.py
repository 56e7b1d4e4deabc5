"""IBClient: its one reader thread, its handshake, failures, and real captures."""

from __future__ import annotations

import datetime
import math
import queue
import select
import socket
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest
from ibapi.message import OUT

from slob.ib import ticks, wire
from slob.ib.client import ConnectionClosed, IBClient, Subscription, TwsMessage
from slob.ib.errors import ConnectionLost, HandshakeFailed, TWSNotRunning
from slob.ib.handshake import Session
from slob.model import Tick
from slob.testing import FakeTWS
from slob.testing import tws_messages as msg
from slob.trace.captures import load_capture

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


class Sink:
    def __init__(self) -> None:
        self.items: list[object] = []
        self.cond = threading.Condition()

    def __call__(self, item: object) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[object]], bool], timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.items), timeout):
                raise TimeoutError(f"sink has {len(self.items)} items: {self.items[-3:]}")

    def of(self, kind: type) -> list[object]:
        with self.cond:
            return [i for i in self.items if isinstance(i, kind)]


class Peer:
    """The server end of a socketpair, for feeding the reader exact bytes."""

    def __init__(self, server_version: int) -> None:
        self.server, client_sock = socket.socketpair()
        self.sink = Sink()
        self.client = IBClient(self.sink)
        self.client.start(Session(client_sock, "127.0.0.1", 0, server_version, "20260824 22:27:45 CET",
                                  wire.FrameDecoder()), client_id=1)

    def close(self) -> None:
        self.client.disconnect()
        self.server.close()


@pytest.fixture
def tws() -> Iterator[FakeTWS]:
    with FakeTWS(speed=math.inf) as server:
        yield server


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "slob-ib-reader"]


def test_one_reader_thread_no_queue_and_clean_stop(tws: FakeTWS) -> None:
    sink = Sink()
    client = IBClient(sink)
    client.connect("127.0.0.1", tws.port, 2)
    assert client.ready.result(5) == 1 and client.accounts == ["DU1234567"]
    assert len(reader_threads()) == 1
    client.reqCurrentTime()
    sink.wait(lambda items: any(isinstance(i, TwsMessage) and i.code == 2158 for i in items))
    assert isinstance(client.msg_queue, queue.Queue) and client.msg_queue.qsize() == 0  # IB's queue unused
    assert not any(type(t).__name__ == "EReader" for t in threading.enumerate())
    client.disconnect()
    assert reader_threads() == [] and not client.reader_alive  # joined within join_timeout (1 s)
    closed = client.closed.result(0)
    assert closed == ConnectionClosed("disconnected by this client", None, True)
    tws.wait_for_clients(0, ready=False)
    assert sink.items[-1] == closed


def test_frames_arriving_with_the_greeting_are_kept() -> None:
    """IB's connect() keeps only the first frame of its first recv; slob keeps them all."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            dec = wire.FrameDecoder(expect_api_prefix=True)
            while not dec.feed(conn.recv(1024)):
                pass
            conn.sendall(msg.server_hello(200, datetime.datetime(2024, 12, 2))
                         + msg.managed_accounts(["DU7654321"], 200) + msg.next_valid_id(42, 200))
            conn.recv(1024)  # START_API, then hold the line until the client goes
            conn.recv(1024)

    server = threading.Thread(target=serve)
    server.start()
    client = IBClient(Sink())
    try:
        client.connect("127.0.0.1", port, 1)
        assert client.ready.result(5) == 42 and client.accounts == ["DU7654321"]
    finally:
        client.disconnect()
        server.join(5)
        listener.close()


def test_refused_and_non_tws_peers_get_clear_errors() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(TWSNotRunning, match=f"127.0.0.1:{port}"):
        IBClient(Sink()).connect("127.0.0.1", port, 1, timeout=2)

    def one_shot(reply: bytes | None) -> tuple[int, threading.Thread, socket.socket]:
        srv = socket.create_server(("127.0.0.1", 0))

        def run() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(1024)
                if reply:
                    conn.sendall(reply)
                    conn.recv(1024)

        t = threading.Thread(target=run)
        t.start()
        return srv.getsockname()[1], t, srv

    for reply, words in ((b"", "closed the connection before greeting"),
                         (b"HTTP/1.1 400 Bad Request\r\n\r\n", "does not speak the TWS API")):
        port, t, srv = one_shot(reply)
        with pytest.raises(HandshakeFailed, match=words):
            IBClient(Sink()).connect("127.0.0.1", port, 1, timeout=2)
        t.join(5)
        srv.close()


def test_a_corrupt_stream_stops_the_reader_and_chains_the_cause(tws: FakeTWS) -> None:
    sink = Sink()
    client = IBClient(sink)
    client.connect("127.0.0.1", tws.port, 2)
    client.ready.result(5)
    pending = client.expect(77, "something")
    tws.send_garbage("oversize")
    closed = client.closed.result(5)
    assert isinstance(closed.error, wire.FrameTooLong) and "protocol maximum" in closed.cause
    assert not closed.by_client
    with pytest.raises(ConnectionLost) as exc:
        pending.result(5)
    assert exc.value.__cause__ is closed.error
    client.disconnect()
    assert reader_threads() == []


def test_tws_closing_is_reported_as_such(tws: FakeTWS) -> None:
    client = IBClient(Sink())
    client.connect("127.0.0.1", tws.port, 2)
    client.ready.result(5)
    tws.drop()
    closed = client.closed.result(5)
    assert closed.cause == "TWS closed the connection" and closed.error is None
    client.disconnect()


def test_garbage_inside_a_frame_is_skipped_not_fatal() -> None:
    peer = Peer(200)
    try:
        ref = ticks.ContractRef("NQ", "NQZ4")
        peer.client.subscribe(Subscription(5, ref, "tick_by_tick"))
        peer.server.sendall(
            wire.frame(b"garbage\x00\xff\x00")  # not a message
            + msg.tbt_last(5, True, 1733151600, 21000.25, 3, 0, "CME", "", 200)
            + wire.frame(b"99\x005\x00")  # a tick-by-tick message cut short
            + msg.tbt_last(5, True, 1733151601, 21000.5, 1, 0, "CME", "", 200)
        )
        peer.sink.wait(lambda items: sum(isinstance(i, Tick) for i in items) == 2)
        got = [(t.price, t.size) for t in peer.sink.of(Tick)]  # type: ignore[attr-defined]
        assert got == [(21000.25, 3.0), (21000.5, 1.0)]
        assert peer.client.decode_errors == 2 and peer.client.reader_alive
        warnings = [i.text for i in peer.sink.of(TwsMessage) if i.code == 0]  # type: ignore[attr-defined]
        assert len(warnings) == 2 and "skipped" in warnings[0]
    finally:
        peer.close()


# -- real captures ------------------------------------------------------------------------


def replay(name: str, prepare: Callable[[IBClient], None] | None = None) -> Peer:
    capture = load_capture(CAPTURES / f"{name}.jsonl")
    peer = Peer(capture.server_version)
    if prepare is not None:
        prepare(peer.client)
    stream = b"".join(wire.frame(f.payload) for f in capture.frames if f.direction == "server" and f.leg == 1)
    peer.server.sendall(stream)
    return peer


def test_es_contract_details_capture_decodes_through_the_reader() -> None:
    futures = {}
    peer = replay("contract_details_es_fut", lambda c: futures.setdefault("rows", c.expect(1, "ES")))
    try:
        rows = futures["rows"].result(5)
        assert len(rows) == 21
        assert {d.contract.localSymbol[:2] for d in rows} == {"ES"}
        assert all(d.timeZoneId == "US/Central" and d.contract.multiplier for d in rows)
        assert peer.client.decode_errors == 0 and peer.client.ready.result(5) == 1
    finally:
        peer.close()


def test_delayed_quote_capture_yields_a_delayed_trade_tick() -> None:
    def prepare(client: IBClient) -> None:
        ref = ticks.ContractRef("AAPL", "AAPL", 0.01)
        sub = Subscription(1, ref, "market_data", merger=ticks.LastTradeMerger(ref, "SMART"))
        client.subscribe(sub)

    peer = replay("quote_snapshot_sv225", prepare)
    try:
        peer.sink.wait(lambda items: any(isinstance(i, Tick) for i in items))
        (tick,) = peer.sink.of(Tick)
        assert tick.delayed and tick.symbol == "AAPL" and tick.price > 0 and tick.size > 0  # type: ignore[attr-defined]
        assert tick.timestamp.tzinfo is not None  # type: ignore[attr-defined]
        assert peer.client.decode_errors == 0
    finally:
        peer.close()


@pytest.mark.parametrize("name", sorted(p.stem for p in CAPTURES.glob("*.jsonl")))
def test_every_capture_decodes_without_errors(name: str) -> None:
    capture = load_capture(CAPTURES / f"{name}.jsonl")
    legs = sorted({f.leg for f in capture.frames})
    for leg in legs:
        frames = [f for f in capture.frames if f.direction == "server" and f.leg == leg]
        if not frames:
            continue
        peer = Peer(capture.server_version_of(frames[0]))
        try:
            peer.server.sendall(b"".join(wire.frame(f.payload) for f in frames))
            peer.server.sendall(msg.error(-1, 2104, "fence", peer.client.serverVersion()))
            peer.sink.wait(lambda items: any(isinstance(i, TwsMessage) and i.text == "fence" for i in items)
                           or bool(peer.client.decode_errors))
            assert peer.client.decode_errors == 0, [i for i in peer.sink.items if isinstance(i, TwsMessage)][-3:]
            assert peer.client.reader_alive
        finally:
            peer.close()


def test_disconnect_closes_gracefully_so_tws_reads_the_last_requests() -> None:
    """TWS keeps streaming while the client stops. Closing a socket with unread data in it
    sends a reset, and TWS may drop requests it had not read yet (a clean stop's cancels):
    disconnect() half-closes first and reads until TWS closes too."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []
    ending: list[str] = []
    flood_broke: list[OSError] = []

    def serve() -> None:
        conn, _ = listener.accept()
        stop = threading.Event()
        tick = msg.current_time(1733151600, 200)

        def flood() -> None:
            # One continuous stream of whole frames, written as fast as the client reads; never
            # blocked in a send, so it sees `stop` however the machine schedules the threads.
            stream, at = tick * 200, 0
            try:
                while not stop.is_set():
                    if select.select([], [conn], [], 0.05)[1]:
                        at = (at + conn.send(stream[at:])) % len(stream)
            except OSError as exc:  # the client reset the connection under our feet
                flood_broke.append(exc)

        with conn:
            dec = wire.FrameDecoder(expect_api_prefix=True)
            while not dec.feed(conn.recv(1024)):
                pass
            conn.sendall(msg.server_hello(200, datetime.datetime(2024, 12, 2))
                         + msg.managed_accounts(["DU7654321"], 200) + msg.next_valid_id(1, 200))
            flooder = threading.Thread(target=flood)
            flooder.start()
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        ending.append("eof")
                        break
                    seen.extend(dec.feed(data))
            except ConnectionResetError:
                ending.append("reset")
            stop.set()
            flooder.join(5)

    server = threading.Thread(target=serve)
    server.start()
    client = IBClient(Sink(), join_timeout=20.0)
    client.close_grace = 10.0  # wait for TWS's close however slow the machine (it closes at once)
    try:
        client.connect("127.0.0.1", port, 1)
        assert client.ready.result(5) == 1
        client.reqCurrentTime()  # the last request before the stop
        client.disconnect()
    finally:
        server.join(10)
        listener.close()
    assert ending == ["eof"] and flood_broke == []  # the client read on until we closed
    names = [wire.decode_message(p, 200).msg_id for p in seen]
    assert names[-1] == OUT.REQ_CURRENT_TIME
    assert reader_threads() == []


def test_an_answer_read_while_closing_sends_nothing_and_reports_no_error() -> None:
    """disconnect() shuts the write half and reads on until TWS closes: an answer that comes
    in that window (the positions' end, whose handler cancels the subscription) must not
    send on the shut socket, and no "Sending Error" of IB's client reaches the consumer."""
    peer = Peer(200)
    closing = threading.Thread(target=peer.client.disconnect)
    try:
        closing.start()
        peer.server.settimeout(10)
        while peer.server.recv(65536):  # the client's requests, then its FIN
            pass
        peer.server.sendall(msg.position_end(200) + msg.current_time(1733151600, 200))
        peer.server.shutdown(socket.SHUT_WR)
        closing.join(20)
        assert not closing.is_alive()
        assert [i for i in peer.sink.of(TwsMessage) if 500 <= i.code < 600] == []  # type: ignore[attr-defined]
        assert peer.client.closed.result(5).by_client
    finally:
        peer.close()
        closing.join(5)


# -- backpressure: the reader stops reading while its consumer's queue is full --------------


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Yield to the reader thread until ``predicate()`` holds; TimeoutError after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0)  # gives up the GIL; not a timed wait


def _tick_frames(first: int, count: int) -> bytes:
    return b"".join(msg.tbt_last(5, True, 1733151600 + i, 21000.25, i, 0, "CME", "", 200)
                    for i in range(first, first + count))


def test_a_full_bridge_pauses_the_reader_until_drained_and_a_paused_reader_is_not_silent() -> None:
    import asyncio
    import time

    from slob.ib.bridge import TickBridge

    loop = asyncio.new_event_loop()  # the consumer's loop; this test drains by hand
    bridge: TickBridge[object] = TickBridge(loop=loop, high_water=10, low_water=5)
    server, client_sock = socket.socketpair()
    client = IBClient(bridge.put, batch_sink=bridge.put_batch)
    client.flow = bridge
    client.start(Session(client_sock, "127.0.0.1", 0, 200, "20260824 22:27:45 CET", wire.FrameDecoder()),
                 client_id=1)
    try:
        client.subscribe(Subscription(5, ticks.ContractRef("NQ", "NQZ4"), "tick_by_tick"))
        server.sendall(_tick_frames(1, 12))  # one read's worth, past the high-water mark
        _wait_until(lambda: bridge.paused, "the reader to pause")
        frame_ns = client._frame_ns  # noqa: SLF001 - the last read's time, for comparison
        half = _tick_frames(33, 1)
        server.sendall(_tick_frames(13, 20) + half[:10])  # more, and half a frame
        # Paused, the reader reads nothing, and the session does not look silent.
        assert client.last_received_ns > frame_ns and client.partial_since_ns == 0
        received: list[object] = bridge.drain()  # below low water: the reader reads again
        server.sendall(half[10:])
        deadline = time.monotonic() + 10
        while sum(type(i) is Tick for i in received) < 33:
            assert time.monotonic() < deadline, "ticks missing"
            received += bridge.drain()
        sizes = [int(i.size) for i in received if type(i) is Tick]  # type: ignore[attr-defined]
        assert sizes == list(range(1, 34)) and bridge.pauses >= 1 and bridge.paused_ns > 0
        # Paused again? A disconnect releases the reader: it stops within join_timeout.
        server.sendall(_tick_frames(34, 30))
        _wait_until(lambda: bridge.paused, "the reader to pause again")
    finally:
        client.disconnect()
        server.close()
        loop.close()
    assert reader_threads() == [] and client.closed.result(0).cause == "disconnected by this client"
