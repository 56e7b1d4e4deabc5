"""A minimal, fast TWS for the benchmark: one client, one tick-by-tick stream.

Built on slob's real pieces: :mod:`slob.ib.wire` for framing and the handshake,
:mod:`slob.trace.tws_requests` to read requests and :mod:`slob.testing.tws_messages`
for every answer. It answers what the three clients send at start-up (IB's client: START_API;
ib_async: positions, open/completed orders, account updates (+multi), executions; slob's
IBWSFetcher: current time and NQ contract details) and, on REQ_TICK_BY_TICK_DATA, streams
``messages`` TICK_BY_TICK AllLast frames whose SIZE is the sequence number 1..N:

* ``rate=None``: as fast as the socket takes them, ``batch_bytes`` per ``sendall``;
* ``rate=R``: on schedule, tick k due at ``start + (k-1)/R`` s; every tick already due is
  sent in one ``sendall`` (the loop sleeps until the next one is due; it never spins, so it
  leaves the CPU to the client being measured).

The time just before each ``sendall`` (``time.monotonic_ns()``) is recorded for every tick
in it. Text streams (server version <= 207, where TICK_BY_TICK is still text) are built with
a fast formatter and checked byte for byte against ``tws_messages.tbt_last`` (first, last
and every 997th frame); protobuf streams (>= 208) are built by ``tws_messages.tbt_last``
itself -- all before anything is sent.

The feed negotiates as FakeTWS does, up to ``max_server_version`` (default 226, the
protobuf generation for IB's client and slob; ib_async stays at its 178).

Entry point :func:`serve` runs in a process of its own (multiprocessing, spawn).
"""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import threading
import time
import traceback
from array import array
from multiprocessing.connection import Connection
from typing import Any, Callable

from ibapi.message import IN, OUT

from slob.ib import wire
from slob.testing import tws_messages as msg
from slob.testing.futures import active_contracts
from slob.trace.tws_requests import Request, decode_request
from slob.testing.tws_versions import MAX_SERVER_VERSION as MAX_SERVER_VERSION
from slob.testing.tws_versions import sends_protobuf
ACCOUNT = "DU1234567"
ACCOUNT_VALUES = (("NetLiquidation", "1000000.00"), ("TotalCashValue", "1000000.00"),
                  ("BuyingPower", "4000000.00"), ("AvailableFunds", "1000000.00"))
BASE_PRICE = 21000.0
PRICE_STEPS = 40
TICKS_PER_SECOND_OF_EXCHANGE_TIME = 1000


def price_of(seq: int) -> float:
    return BASE_PRICE + (seq % PRICE_STEPS) * 0.25


def unix_of(seq: int, t0: int) -> int:
    return t0 + (seq - 1) // TICKS_PER_SECOND_OF_EXCHANGE_TIME


def build_stream(req_id: int, n: int, sv: int, t0: int) -> tuple[bytes, "array[int]"]:
    """All N frames back to back, and the offset of each (N+1 offsets)."""
    if sends_protobuf(IN.TICK_BY_TICK, sv):
        frames = [msg.tbt_last(req_id, True, unix_of(seq, t0), price_of(seq), seq, 0, "CME", "", sv)
                  for seq in range(1, n + 1)]
        offsets = array("q", [0])
        offsets.extend(itertools.accumulate(len(f) for f in frames))
        return b"".join(frames), offsets
    binary_id = sv >= wire.MIN_PROTOBUF_SERVER_VERSION
    head = (IN.TICK_BY_TICK.to_bytes(4, "big") + b"%d\x002\x00" % req_id if binary_id
            else b"%d\x00%d\x002\x00" % (IN.TICK_BY_TICK, req_id))
    prices = [msg.price_text(price_of(i)).encode("ascii") for i in range(PRICE_STEPS)]
    frames = []
    for seq in range(1, n + 1):
        payload = head + b"%d\x00%s\x00%d\x000\x00CME\x00\x00" % (
            unix_of(seq, t0), prices[seq % PRICE_STEPS], seq)
        frames.append(len(payload).to_bytes(4, "big") + payload)
    for seq in itertools.chain((1, n), range(1, n + 1, 997)):
        exact = msg.tbt_last(req_id, True, unix_of(seq, t0), price_of(seq), seq, 0, "CME", "", sv)
        if frames[seq - 1] != exact:
            raise AssertionError(f"fast frame {seq} {frames[seq - 1]!r} != tws_messages {exact!r}")
    offsets = array("q", [0])
    offsets.extend(itertools.accumulate(len(f) for f in frames))
    return b"".join(frames), offsets


class BenchSession:
    """The server side of the one API connection of a measurement."""

    def __init__(self, sock: socket.socket, *, messages: int, rate: float | None,
                 start_delay: float, batch_bytes: int, max_server_version: int = MAX_SERVER_VERSION) -> None:
        self.sock = sock
        self.max_server_version = max_server_version
        self.messages = messages
        self.rate = rate
        self.start_delay = start_delay
        self.batch_bytes = batch_bytes
        self.sv = 0
        self.client_version = ""
        self.client_id: int | None = None
        self.lock = threading.Lock()
        self.decoder = wire.FrameDecoder(expect_api_prefix=True)
        self.stamps = array("q", bytes(8 * (messages + 1)))
        self.sent = 0
        self.stream_start_ns = 0
        self.stream_end_ns = 0
        self.build_seconds = 0.0
        self.requests: list[str] = []
        self.problems: list[str] = []
        self._streamer: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._closing = False
        self._handlers: dict[int, Callable[[Request], None]] = {
            OUT.START_API: self._start_api,
            OUT.REQ_IDS: lambda r: self.send(msg.next_valid_id(1, self.sv)),
            OUT.REQ_CURRENT_TIME: lambda r: self.send(msg.current_time(int(time.time()), self.sv)),
            OUT.REQ_CURRENT_TIME_IN_MILLIS: lambda r: self.send(
                msg.current_time_millis(time.time_ns() // 1_000_000, self.sv)),
            OUT.REQ_CONTRACT_DATA: self._contract_data,
            OUT.REQ_POSITIONS: lambda r: self.send(msg.position_end(self.sv)),
            OUT.REQ_OPEN_ORDERS: lambda r: self.send(msg.open_order_end(self.sv)),
            OUT.REQ_ALL_OPEN_ORDERS: lambda r: self.send(msg.open_order_end(self.sv)),
            OUT.REQ_COMPLETED_ORDERS: lambda r: self.send(msg.completed_orders_end(self.sv)),
            OUT.REQ_ACCT_DATA: self._account_updates,
            OUT.REQ_ACCOUNT_UPDATES_MULTI: self._account_updates_multi,
            OUT.REQ_EXECUTIONS: lambda r: self.send(msg.execution_data_end(r.int("reqId"), self.sv)),
            OUT.REQ_MANAGED_ACCTS: lambda r: self.send(msg.managed_accounts([ACCOUNT], self.sv)),
            OUT.REQ_TICK_BY_TICK_DATA: self._tick_by_tick,
        }

    # -- connection ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def handshake(self, timeout: float = 20.0) -> list[bytes]:
        """Read ``API\\0`` + the version offer; answer the negotiated version, alone."""
        self.sock.settimeout(timeout)
        frames: list[bytes] = []
        while not frames:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("client closed the connection during the handshake")
            frames = self.decoder.feed(data)
        self.sock.settimeout(None)
        hello = wire.ClientHello.parse(frames[0])
        if hello.min_version > self.max_server_version:
            raise ConnectionError(f"client wants server version >= {hello.min_version}")
        self.sv = min(hello.max_version, self.max_server_version)
        self.client_version = f"v{hello.min_version}..{hello.max_version}"
        now = dt.datetime.now(dt.timezone.utc)
        self.sock.sendall(msg.server_hello(self.sv, now))  # nothing else until START_API
        return frames[1:]

    def start_reader(self, early: list[bytes]) -> None:
        self._reader = threading.Thread(target=self._read_loop, args=(early,), name="bench-feed-reader",
                                        daemon=True)
        self._reader.start()

    def _read_loop(self, early: list[bytes]) -> None:
        try:
            for payload in early:
                self._handle(payload)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                for payload in self.decoder.feed(data):
                    self._handle(payload)
        except OSError as exc:
            if not self._closing:
                self.problems.append(f"reader: {exc}")
        except Exception:
            self.problems.append("reader failed: " + traceback.format_exc(limit=3))

    def _handle(self, payload: bytes) -> None:
        request = decode_request(wire.decode_message(payload, self.sv), self.client_id, self.sv)
        self.requests.append(request.name)
        handler = self._handlers.get(request.msg_id)
        if handler is not None:
            handler(request)

    def close(self) -> None:
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for thread in (self._streamer, self._reader):
            if thread is not None:
                thread.join(10)
        self.sock.close()

    # -- answers ---------------------------------------------------------------------

    def _start_api(self, req: Request) -> None:
        self.client_id = req.int("clientId")
        self.send(msg.managed_accounts([ACCOUNT], self.sv) + msg.next_valid_id(1, self.sv))

    def _contract_data(self, req: Request) -> None:
        req_id = req.int("reqId")
        if req.get("symbol").upper() not in ("NQ", "") or req.get("secType").upper() not in ("FUT", ""):
            self.send(msg.error(req_id, 200, "No security definition has been found for the request",
                                self.sv, time_ms=time.time_ns() // 1_000_000))
            return
        now = dt.datetime.now(dt.timezone.utc)
        rows = [msg.contract_data(req_id, c, now, self.sv, exchange="CME") for c in active_contracts("NQ", now)]
        self.send(b"".join(rows) + msg.contract_data_end(req_id, self.sv))

    def _account_updates(self, req: Request) -> None:
        if req.get("subscribe") != "1":
            return
        account = req.get("account") or ACCOUNT
        out = [msg.account_value(k, v, "USD", account, self.sv) for k, v in ACCOUNT_VALUES]
        out.append(msg.account_update_time(time.strftime("%H:%M"), self.sv))
        out.append(msg.account_download_end(account, self.sv))
        self.send(b"".join(out))

    def _account_updates_multi(self, req: Request) -> None:
        req_id = req.int("reqId")
        account = req.get("account") or ACCOUNT
        out = [msg.account_update_multi(req_id, account, req.get("modelCode"), k, v, "USD", self.sv)
               for k, v in ACCOUNT_VALUES]
        out.append(msg.account_update_multi_end(req_id, self.sv))
        self.send(b"".join(out))

    def _tick_by_tick(self, req: Request) -> None:
        if self._streamer is not None:
            self.problems.append("a second REQ_TICK_BY_TICK_DATA was ignored")
            return
        if req.get("tickType") not in ("AllLast", "Last"):
            self.problems.append(f"tick type {req.get('tickType')!r} requested; streaming AllLast anyway")
        self._streamer = threading.Thread(
            target=self._stream, args=(req.int("reqId"), time.monotonic()), name="bench-feed-stream",
            daemon=True)
        self._streamer.start()

    # -- the stream ----------------------------------------------------------------

    def _stream(self, req_id: int, requested_at: float) -> None:
        try:
            t = time.perf_counter()
            data, offsets = build_stream(req_id, self.messages, self.sv, int(time.time()))
            self.build_seconds = time.perf_counter() - t
            wait = requested_at + self.start_delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if self.rate is None:
                self._send_flat_out(memoryview(data), offsets)
            else:
                self._send_paced(memoryview(data), offsets, self.rate)
        except OSError as exc:
            if not self._closing:
                self.problems.append(f"stream stopped after {self.sent} ticks: {exc}")
        except Exception:
            self.problems.append("stream failed: " + traceback.format_exc(limit=3))
        finally:
            self.stream_end_ns = time.monotonic_ns()

    def _send_batch(self, view: memoryview, offsets: "array[int]", i: int, j: int) -> None:
        """Frames i+1..j (1-based) in one write, stamped with the time just before it."""
        chunk = view[offsets[i]:offsets[j]]
        with self.lock:
            now = time.monotonic_ns()
            self.sock.sendall(chunk)
        self.stamps[i + 1:j + 1] = array("q", [now]) * (j - i)
        self.sent = j

    def _send_flat_out(self, view: memoryview, offsets: "array[int]") -> None:
        n = self.messages
        per_batch = max(1, self.batch_bytes * n // max(1, offsets[n]))
        self.stream_start_ns = time.monotonic_ns()
        for i in range(0, n, per_batch):
            self._send_batch(view, offsets, i, min(n, i + per_batch))

    def _send_paced(self, view: memoryview, offsets: "array[int]", rate: float) -> None:
        n = self.messages
        period = 1e9 / rate
        monotonic_ns, sleep = time.monotonic_ns, time.sleep
        start = self.stream_start_ns = monotonic_ns()
        i = 0
        while i < n:
            now = monotonic_ns()
            due = min(n, int((now - start) / period) + 1)
            if due > i:
                self._send_batch(view, offsets, i, due)
                i = due
            else:
                wait = start + i * period - now
                if wait > 0:
                    sleep(wait / 1e9)

    def stats(self) -> dict[str, Any]:
        return {
            "server_version": self.sv,
            "client_version_offer": self.client_version,
            "client_id": self.client_id,
            "sent": self.sent,
            "stream_start_ns": self.stream_start_ns,
            "stream_end_ns": self.stream_end_ns,
            "build_seconds": round(self.build_seconds, 3),
            "requests": sorted(set(self.requests)),
            "problems": self.problems,
        }


def serve(config: dict[str, Any], conn: Connection) -> None:
    """Process entry point. Sends ``("port", n)``, serves one client, then waits for
    ``"stop"`` from the parent, writes the send stamps to ``config["stamps_path"]``
    (int64 per tick, seq 1..sent) and sends ``("done", stats)``."""
    session: BenchSession | None = None
    try:
        listener = socket.create_server(("127.0.0.1", 0))
        cpu0 = time.process_time_ns()
        conn.send(("port", listener.getsockname()[1]))
        listener.settimeout(config.get("accept_timeout", 60.0))
        sock, _ = listener.accept()
        listener.close()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = BenchSession(sock, messages=config["messages"], rate=config.get("rate"),
                               start_delay=config.get("start_delay", 0.5),
                               batch_bytes=config.get("batch_bytes", 16384),
                               max_server_version=config.get("server_version", MAX_SERVER_VERSION))
        session.start_reader(session.handshake())
        conn.recv()  # "stop"
        session.close()
        with open(config["stamps_path"], "wb") as out:
            session.stamps[1:session.sent + 1].tofile(out)
        conn.send(("done", {**session.stats(), "cpu_window_ns": time.process_time_ns() - cpu0}))
    except Exception:
        problem = traceback.format_exc(limit=5)
        stats = session.stats() if session is not None else {}
        conn.send(("error", {**stats, "error": problem}))
