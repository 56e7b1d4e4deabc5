"""The clients measured, each run in a process of its own (:func:`run_client`).

Every client ends in the same user callback work, :meth:`Recorder.hit`: stamp
``time.monotonic_ns()`` for the tick's sequence number (its SIZE), count it, and signal the
end at the N-th tick -- plus, when a scenario asks for it (:class:`Work`), a fixed amount of
Python work per tick and a stall of the event loop once a second.

* ``slob``: ``slob.live.IBWSFetcher`` as users run it -- ``connect()``, ``listen()`` (as a
  task, so the subscription's confirmation window runs while ticks flow), ``subscribe(["NQ"])``
  (contract details + current time + reqTickByTickData AllLast) -- with ``on_tick`` set. Inside:
  IBClient's reader thread (recv -> slob.ib.wire -> HotDecoder / IB's Decoder -> EWrapper
  overrides -> slob.ib.ticks) -> TickBridge -> the asyncio loop -> on_tick (called from the
  bridge's wake-up itself).
* ``slob-direct``: the same, in the zero-hop lane: ``IBWSFetcher(lane="direct")`` with
  ``on_tick_direct``, called on the reader thread (no bridge, no wake-up for ticks).
* ``ibapi``: IB's stock model: an ``EClient``+``EWrapper`` app, ``connect()`` (EReader
  thread), ``run()`` on a thread of its own, ``tickByTickAllLast`` callback.
* ``ib_async``: ``IB().connectAsync()``, ``reqTickByTickData(contract, "AllLast")``, each
  tick of ``ticker.tickByTicks`` handled in a ``ticker.updateEvent`` handler.

CPU time is ``time.process_time_ns()`` (all threads of the client process, user + system)
from just before the subscription request to the N-th callback (or the timeout); the time
from the first callback on is kept too (``cpu_streaming_us_per_tick``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
import traceback
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable

from slob.bench import options

CLIENTS = ("slob", "slob-direct", "ibapi", "ib_async")
assert CLIENTS == options.CLIENTS
SLOB_DIRECT = "slob-direct"
#: Not a TWS client: slob's threading architecture with the decoding left out -- a reader
#: thread that frames and reads each tick's sequence number, the TickBridge, a callback on
#: the asyncio loop. The floor any client built this way can reach (``--clients`` adds it).
HOP_FLOOR = "hop_floor"
assert HOP_FLOOR in options.EXTRA_CLIENTS
#: Not a client: a raw socket that only counts the feed's frames (is the feed fast enough?).
FEED_ONLY = "feed_only"
FEED_ONLY_LABEL = "feed only -> raw socket sink"
FEED_ONLY_PATH = "socket.recv -> count length-prefixed frames (no decoding, no callbacks)"
LABELS = {
    "slob": "slob (IBWSFetcher)",
    SLOB_DIRECT: "slob zero-hop lane (lane='direct')",
    "ibapi": "ibapi stock (EReader+run)",
    "ib_async": "ib_async 2.1.0",
    HOP_FLOOR: "thread-hop floor (no decoding)",
}
PATHS = {
    "slob": "IBWSFetcher.connect/listen/subscribe(['NQ']) -> on_tick "
            "(IBClient reader thread -> TickBridge -> asyncio loop, delivered in the wake-up)",
    SLOB_DIRECT: "IBWSFetcher(lane='direct').connect/listen/subscribe(['NQ']) -> on_tick_direct "
                 "(IBClient reader thread: recv -> decode -> Delivery -> callback)",
    "ibapi": "EClient.connect (EReader thread) + EClient.run() thread -> EWrapper.tickByTickAllLast",
    "ib_async": "IB.connectAsync + reqTickByTickData -> ticker.updateEvent -> ticker.tickByTicks",
    HOP_FLOOR: "reader thread: recv -> FrameDecoder -> sequence field -> TickBridge.put_batch -> asyncio "
               "loop -> callback in the bridge's wake-up (slob's asyncio lane without IB's or slob's decoding)",
}
ASYNCIO_CLIENTS = ("slob", SLOB_DIRECT, "ib_async", HOP_FLOOR)  # those a loop stall applies to
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Work:
    """What a scenario adds to the user's callback: ``tick_us`` of Python work per tick
    (a spin on the clock), and a ``stall_ms`` stall of the event loop (CPU, holding the GIL,
    as a strategy computing) every ``stall_every_s`` seconds."""

    tick_us: float = 0.0
    stall_ms: float = 0.0
    stall_every_s: float = 1.0


async def stall_loop(work: Work) -> None:
    """Stall the running event loop as ``work`` says, until cancelled."""
    if work.stall_ms <= 0:
        return
    clock = time.perf_counter
    while True:
        await asyncio.sleep(work.stall_every_s)
        end = clock() + work.stall_ms / 1000
        while clock() < end:
            pass


class Recorder:
    """The user's callback work, identical for every client."""

    __slots__ = ("cb", "n", "count", "on_done", "cpu0", "cpu_first", "cpu_end", "extra", "work_ns")

    def __init__(self, n: int) -> None:
        self.cb = array("q", bytes(8 * (n + 1)))
        self.n = n
        self.count = 0
        self.on_done: Callable[[], None] = lambda: None
        self.cpu0 = 0
        self.cpu_first = 0
        self.cpu_end = 0
        self.extra: "array[int] | None" = None
        self.work_ns = 0  # Python work per tick (Work.tick_us), after the stamp

    def start(self) -> None:
        self.cpu0 = time.process_time_ns()

    def hit(self, seq: int) -> None:
        self.cb[seq] = now = time.monotonic_ns()
        self.count += 1
        if self.count == 1:
            self.cpu_first = time.process_time_ns()
        if self.count >= self.n:
            self.cpu_end = time.process_time_ns()
            self.on_done()
        if self.work_ns:
            end = now + self.work_ns
            clock = time.monotonic_ns
            while clock() < end:
                pass

    def finish(self) -> None:
        if not self.cpu_end:
            self.cpu_end = time.process_time_ns()


def rss_kib() -> tuple[int, str]:
    """This process's resident set size now (KiB), and where it came from."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024, "/proc/self/statm"
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "getrusage ru_maxrss (peak)"


class MemoryRecorder(Recorder):
    """:class:`Recorder` that also samples the process's RSS before the subscription and
    at ``points`` evenly spaced tick counts (in the callback, so the client still counts
    every delivered tick; a sample costs one small file read, ``points`` times a run)."""

    __slots__ = ("marks", "next_mark", "samples", "source", "pauses")

    def __init__(self, n: int, points: int = 10) -> None:
        super().__init__(n)
        self.marks = sorted({max(1, n * k // points) for k in range(1, points + 1)}, reverse=True)
        self.next_mark = self.marks.pop()
        # (ticks delivered, RSS KiB, monotonic_ns, times reading was paused so far)
        self.samples: list[tuple[int, int, int, int]] = []
        self.source = ""
        #: How often the client paused reading so far (slob's backpressure), if it can say.
        self.pauses: Callable[[], int] = lambda: 0

    def sample(self, count: int) -> None:
        kib, self.source = rss_kib()
        self.samples.append((count, kib, time.monotonic_ns(), self.pauses()))

    def start(self) -> None:
        self.sample(0)
        super().start()

    def hit(self, seq: int) -> None:
        if self.count + 1 == self.next_mark:
            self.sample(self.next_mark)
            self.next_mark = self.marks.pop() if self.marks else -1
        Recorder.hit(self, seq)


def thread_cpu_ns() -> dict[str, int]:
    """CPU time (ns) of each live thread of this process, by name (Linux; empty elsewhere)."""
    out: dict[str, int] = {}
    for thread in threading.enumerate():
        try:
            clock = time.pthread_getcpuclockid(thread.ident)  # type: ignore[arg-type]
            out[thread.name] = out.get(thread.name, 0) + time.clock_gettime_ns(clock)
        except (AttributeError, OSError, TypeError):
            pass
    return out


def _cpu_split(before: dict[str, int], after: dict[str, int], ticks: int) -> dict[str, float]:
    """µs of CPU per delivered tick by thread, between two :func:`thread_cpu_ns` readings."""
    return {name: round((ns - before.get(name, 0)) / 1000 / ticks, 3) for name, ns in after.items()
            if ticks and ns > before.get(name, 0)}


def front_contract() -> Any:
    from slob.testing.futures import active_contracts
    return active_contracts("NQ", dt.datetime.now(dt.timezone.utc))[0]


# -- slob ----------------------------------------------------------------------------


async def _slob(port: int, rec: Recorder, timeout: float, info: dict[str, Any], work: Work,
                direct: bool = False) -> None:
    from slob.config.ib_config import IBConfig
    from slob.live.ib_ws_fetcher import IBWSFetcher

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    # The zero-hop lane calls back on the reader thread: reach the loop thread-safely.
    def finish_threadsafe() -> None:
        loop.call_soon_threadsafe(finish)

    rec.on_done = finish_threadsafe if direct else finish
    errors: list[str] = []
    fetcher = IBWSFetcher(config=IBConfig(port=port, client_id=11), lane="direct" if direct else "asyncio")
    hit = rec.hit
    arrivals = rec.extra
    if arrivals is None:
        def on_tick(tick: Any) -> None:
            hit(int(tick.size))
    else:
        def on_tick(tick: Any) -> None:
            seq = int(tick.size)
            arrivals[seq] = tick.received_ns
            hit(seq)
    if direct:
        fetcher.on_tick_direct = on_tick
    else:
        fetcher.on_tick = on_tick
    if isinstance(rec, MemoryRecorder):
        rec.pauses = lambda: fetcher.get_stats()["read_pauses"]
    fetcher.on_error = lambda exc: errors.append(repr(exc))
    await fetcher.connect()
    listener = asyncio.create_task(fetcher.listen())
    staller = asyncio.create_task(stall_loop(work))
    rec.start()
    threads0 = thread_cpu_ns()
    await fetcher.subscribe(["NQ"])
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        info["timed_out"] = True
    rec.finish()
    info["cpu_us_per_tick_by_thread"] = _cpu_split(threads0, thread_cpu_ns(), rec.count)
    staller.cancel()
    stats = fetcher.get_stats()
    info["server_version"] = stats["server_version"]
    info["client_stats"] = {k: stats[k] for k in ("ticks", "rejected", "decode_errors", "duplicates", "lane",
                                                  "bridge_high_water", "callback_errors", "drops",
                                                  "bridge_wakeups", "bridge_fast_wakeups", "read_paused_seconds",
                                                  "read_pauses")}
    info["client_stats"]["high_water_reports"] = fetcher.high_water_reports
    info["errors"] = errors[:20]
    await fetcher.disconnect()
    await asyncio.gather(listener, staller, return_exceptions=True)


# -- IB's stock threading model --------------------------------------------------------


def _ibapi(port: int, rec: Recorder, timeout: float, info: dict[str, Any]) -> None:
    from ibapi.client import EClient
    from ibapi.contract import Contract
    from ibapi.wrapper import EWrapper

    done = threading.Event()
    rec.on_done = done.set
    hit = rec.hit

    class App(EWrapper, EClient):  # type: ignore[misc]
        def __init__(self) -> None:
            EWrapper.__init__(self)
            EClient.__init__(self, self)
            self.ready = threading.Event()
            self.errors: list[str] = []

        def nextValidId(self, orderId: int) -> None:  # noqa: N802,N803
            self.ready.set()

        def managedAccounts(self, accountsList: str) -> None:  # noqa: N802,N803
            pass

        def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str,  # noqa: N802,N803
                  advancedOrderRejectJson: str = "") -> None:
            self.errors.append(f"{errorCode} {errorString}")

        def tickByTickAllLast(self, reqId: int, tickType: int, time: int, price: float, size: Any,  # noqa: N802,N803
                              tickAttribLast: Any, exchange: str, specialConditions: str) -> None:
            hit(int(size))

    app = App()
    app.connect(HOST, port, 12)
    if not app.isConnected():
        raise ConnectionError(f"ibapi could not connect to {HOST}:{port}: {app.errors}")

    def run() -> None:
        try:
            app.run()
        except TypeError:  # IB's own race when disconnect() runs while run() drains the queue
            pass

    runner = threading.Thread(target=run, name="ibapi-run", daemon=True)
    runner.start()
    if not app.ready.wait(15):
        raise TimeoutError("ibapi: no nextValidId within 15 s")
    c = front_contract()
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "NQ", "FUT", "CME", "USD"
    contract.lastTradeDateOrContractMonth, contract.localSymbol = c.contract_month, c.local_symbol
    rec.start()
    app.reqTickByTickData(1, contract, "AllLast", 0, False)
    if not done.wait(timeout):
        info["timed_out"] = True
    rec.finish()
    info["server_version"] = app.serverVersion()
    info["client_stats"] = {"queue_depth_at_end": app.msg_queue.qsize()}
    info["errors"] = app.errors[:20]
    app.disconnect()
    runner.join(2)


# -- ib_async -----------------------------------------------------------------------------


async def _ib_async(port: int, rec: Recorder, timeout: float, info: dict[str, Any], work: Work) -> None:
    import ib_async

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    rec.on_done = lambda: None if done.done() else done.set_result(None)
    hit = rec.hit
    ib = ib_async.IB()
    errors: list[str] = []
    ib.errorEvent += lambda *args: errors.append(" ".join(map(str, args[:3])))
    await ib.connectAsync(HOST, port, clientId=13, timeout=15)
    c = front_contract()
    contract = ib_async.Future(symbol="NQ", lastTradeDateOrContractMonth=c.contract_month, exchange="CME",
                               currency="USD", localSymbol=c.local_symbol, conId=c.con_id)

    def on_update(ticker: Any) -> None:
        for tick in ticker.tickByTicks:
            hit(int(tick.size))

    staller = asyncio.create_task(stall_loop(work))
    rec.start()
    ticker = ib.reqTickByTickData(contract, "AllLast")
    ticker.updateEvent += on_update
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        info["timed_out"] = True
    rec.finish()
    staller.cancel()
    info["server_version"] = ib.client.serverVersion()
    info["client_stats"] = {}
    info["errors"] = errors[:20]
    ib.disconnect()


# -- feed only: a raw socket sink -------------------------------------------------------


def _raw_session(port: int, rec: Recorder) -> tuple[Any, int]:
    """The least a TWS client does before ticks flow: the handshake, START_API, one
    REQ_TICK_BY_TICK_DATA (``rec.start()`` just before it). The socket and server version."""
    import socket

    from ibapi.message import IN, OUT

    from slob.ib import wire

    sock = socket.create_connection((HOST, port), timeout=15)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(wire.ClientHello(100, 200).encode())
    decoder = wire.FrameDecoder()
    frames: list[bytes] = []
    while not frames:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("feed closed the connection during the handshake")
        frames = decoder.feed(data)
    sv = wire.ServerHello.parse(frames[0]).server_version
    sock.sendall(wire.encode_message(OUT.START_API, (2, 14, ""), sv))
    next_valid_id = b"%d\x00" % IN.NEXT_VALID_ID
    while not any(f.startswith(next_valid_id) for f in frames[1:]):
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("feed closed the connection before nextValidId")
        frames += decoder.feed(data)
    c = front_contract()
    rec.start()
    sock.sendall(wire.encode_message(OUT.REQ_TICK_BY_TICK_DATA,
                                     (1, c.con_id, "NQ", "FUT", c.contract_month, 0, "", "", "CME", "", "USD",
                                      c.local_symbol, "", "AllLast", 0, 0), sv))
    return sock, sv


def _feed_only(port: int, rec: Recorder, timeout: float, info: dict[str, Any]) -> None:
    """The least a TWS client can do: the handshake, START_API, one REQ_TICK_BY_TICK_DATA,
    then ``recv`` and walk the 4-byte length prefixes, counting frames. Every frame of a
    ``recv`` is stamped with the time of that ``recv``."""
    import socket
    import struct

    from slob.ib import wire

    sock, sv = _raw_session(port, rec)
    sock.settimeout(timeout)
    unpack = struct.Struct(">I").unpack_from
    cb, n, monotonic_ns = rec.cb, rec.n, time.monotonic_ns
    count = recvs = nbytes = 0
    tail = b""
    last = b""
    try:
        while count < n:
            chunk = sock.recv(262144)
            if not chunk:
                break
            now = monotonic_ns()
            recvs += 1
            nbytes += len(chunk)
            data = tail + chunk if tail else chunk
            pos, end = 0, len(data)
            while end - pos >= 4:
                size = unpack(data, pos)[0]
                if end - pos - 4 < size:
                    break
                pos += 4 + size
                count += 1
                if count <= n:
                    cb[count] = now
                    if count == 1:
                        rec.cpu_first = time.process_time_ns()
                    elif count == n:
                        last = data[pos - size:pos]
            tail = data[pos:]
    except socket.timeout:
        info["timed_out"] = True
    rec.count = min(count, n)
    rec.finish()
    fields = wire.split_fields(last) if last else ()
    info["server_version"] = sv
    info["client_stats"] = {"recv_calls": recvs, "bytes": nbytes, "frames": count,
                            "last_frame_size_field": fields[5].decode() if len(fields) > 5 else None}
    info["errors"] = [] if not last or (len(fields) > 5 and fields[5] == str(n).encode()) else [
        f"the last frame is not tick {n}: {last[:80]!r}"]
    sock.close()


async def _hop_floor(port: int, rec: Recorder, timeout: float, info: dict[str, Any], work: Work) -> None:
    """slob's asyncio lane minus the decoding: see :data:`HOP_FLOOR`. The reader thread
    reads each tick's sequence number (its size field) and hands the numbers over in
    batches, as IBClient hands over Ticks; the bridge's wake-up calls the same recorder,
    as IBWSFetcher's does."""
    import socket
    import threading

    from slob.ib import wire
    from slob.ib.bridge import BridgeClosed, TickBridge

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    rec.on_done = lambda: None if done.done() else done.set_result(None)
    sock, sv = await asyncio.to_thread(_raw_session, port, rec)
    sock.settimeout(None)
    bridge: TickBridge[int] = TickBridge()
    failure: list[BaseException] = []
    hit = rec.hit

    def deliver(batch: list[int]) -> bool:
        for seq in batch:
            hit(seq)
        return False  # never wakes the consumer task

    bridge.fast_path = deliver

    def reader() -> None:
        decoder = wire.FrameDecoder()
        tick_by_tick = b"%d\x00" % 99  # IN.TICK_BY_TICK, text ids (server version <= 200)
        try:
            while True:
                data = sock.recv(1 << 16)
                if not data:
                    break
                seqs = [int(p.split(b"\x00", 6)[5]) for p in decoder.feed(data) if p.startswith(tick_by_tick)]
                for i in range(0, len(seqs), 64):  # IBClient's hand-off size
                    bridge.put_batch(seqs[i:i + 64])
                if bridge.full:
                    bridge.wait_for_room()
        except (OSError, BridgeClosed):
            pass
        except BaseException as exc:  # reported, not hidden
            failure.append(exc)
        finally:
            bridge.close("socket closed")

    async def consume() -> None:
        while True:
            for seq in await bridge.get():
                hit(seq)

    thread = threading.Thread(target=reader, name="bench-hop-reader", daemon=True)
    thread.start()
    consumer = asyncio.create_task(consume())
    staller = asyncio.create_task(stall_loop(work))
    threads0 = thread_cpu_ns()
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        info["timed_out"] = True
    finally:
        rec.finish()
        info["cpu_us_per_tick_by_thread"] = _cpu_split(threads0, thread_cpu_ns(), rec.count)
        staller.cancel()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        bridge.close("done")  # releases a reader waiting for room
        await asyncio.to_thread(thread.join, 5)
        consumer.cancel()
        await asyncio.gather(consumer, staller, return_exceptions=True)
    info["server_version"] = sv
    info["client_stats"] = {"bridge_high_water": bridge.max_depth, "bridge_wakeups": bridge.wakeups,
                            "bridge_fast_wakeups": bridge.fast_wakeups}
    info["errors"] = [repr(e) for e in failure]


# -- process entry point ------------------------------------------------------------------


def run_client(kind: str, conn: Connection, n: int, timeout: float, cb_path: str, record_arrivals: bool,
               memory_points: int = 0, work: Work = Work()) -> None:
    """Import everything, receive the feed's port, measure, write the callback stamps (int64
    per seq 0..N, 0 = never delivered) to ``cb_path``, send the result dict, exit.
    ``memory_points`` > 0: also sample the process's RSS that many times along the run
    (``info["memory_samples"]``: [ticks delivered, RSS KiB, monotonic_ns, read pauses so far]).
    ``work``: the scenario's extra callback work and loop stalls."""
    info: dict[str, Any] = {"client": kind, "timed_out": False}
    try:
        # Import before the port arrives, so start-up cost stays out of the measurement.
        if kind in ("slob", SLOB_DIRECT):
            import slob.live.ib_ws_fetcher  # noqa: F401
        elif kind == "ibapi":
            import ibapi.client  # noqa: F401
        elif kind == "ib_async":
            import ib_async  # noqa: F401
        elif kind in (FEED_ONLY, HOP_FLOOR):
            import ibapi.message  # noqa: F401

            import slob.ib.bridge  # noqa: F401
            import slob.ib.wire  # noqa: F401
        else:
            raise ValueError(f"unknown client {kind!r}; choose from {CLIENTS}")
        conn.send("ready")
        port = conn.recv()
        cpu_window0 = time.process_time_ns()
        rec = MemoryRecorder(n, memory_points) if memory_points > 0 else Recorder(n)
        rec.work_ns = int(work.tick_us * 1000)
        if record_arrivals and kind in ("slob", SLOB_DIRECT):
            rec.extra = array("q", bytes(8 * (n + 1)))
        if kind in ("slob", SLOB_DIRECT):
            asyncio.run(_slob(port, rec, timeout, info, work, direct=kind == SLOB_DIRECT))
        elif kind == "ibapi":
            _ibapi(port, rec, timeout, info)
        elif kind == FEED_ONLY:
            _feed_only(port, rec, timeout, info)
        elif kind == HOP_FLOOR:
            asyncio.run(_hop_floor(port, rec, timeout, info, work))
        else:
            asyncio.run(_ib_async(port, rec, timeout, info, work))
        with open(cb_path, "wb") as out:
            rec.cb.tofile(out)
        if rec.extra is not None:
            with open(cb_path + ".arrival", "wb") as out:
                rec.extra.tofile(out)
        info.update(callbacks=rec.count, cpu_ns=rec.cpu_end - rec.cpu0,
                    cpu_window_ns=time.process_time_ns() - cpu_window0,
                    cpu_streaming_ns=rec.cpu_end - rec.cpu_first if rec.cpu_first else 0)
        if isinstance(rec, MemoryRecorder):
            kib, source = rss_kib()
            info.update(memory_samples=rec.samples, memory_source=rec.source or source, rss_after_kib=kib)
        conn.send(info)
    except BaseException:
        info["error"] = traceback.format_exc(limit=6)
        conn.send(info)
    finally:
        conn.close()
        os._exit(0)  # do not wait for client library threads that may still linger
