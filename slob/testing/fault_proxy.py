"""FaultProxy: faults between a TWS client and a TWS, at exact protocol moments.

A TCP relay on loopback, on a thread and event loop of its own (like FakeTWS), so
synchronous tests, asyncio tests and other processes can use it::

    with FakeTWS(speed=math.inf) as tws, FaultProxy(upstream=("127.0.0.1", tws.port)) as proxy:
        cut = proxy.cut_after("PLACE_ORDER", 2)     # a drop in the middle of a bracket
        app.connect("127.0.0.1", proxy.port, clientId=1)
        ...
        cut.wait()                                  # it happened (TimeoutError otherwise)
        assert [r.name for r in tws.requests].count("PLACE_ORDER") == 2

Every client connection gets its own upstream connection; the proxy survives either side
closing and serves the next client. It names every frame in both directions
(:mod:`slob.testing.fault_frames`: IB's names from ``ibapi.message.OUT`` for client ->
TWS, ``IN`` for TWS -> client, ``HELLO``/``GREETING`` for the handshake) and forwards the
bytes unchanged -- re-chunked at frame boundaries, since a frame is forwarded once it is
complete (:mod:`slob.testing.fault_link`) -- unless a fault says otherwise:

* :meth:`~FaultProxy.cut_now` -- close both sockets of every connection (a network drop);
* :meth:`~FaultProxy.cut_after` -- cut when the n-th frame with a name passes, right after
  forwarding it or (``before=True``) instead of forwarding it;
* :meth:`~FaultProxy.swallow` -- the next n frames with a name are not forwarded;
* :meth:`~FaultProxy.hold` / :meth:`~FaultProxy.release` / :meth:`~FaultProxy.stall` --
  TWS -> client traffic waits in the proxy (the socket open but silent), then flows;
* :meth:`~FaultProxy.inject` -- raw bytes into a stream (junk, a half frame);
* :meth:`~FaultProxy.trickle` -- TWS -> client bytes one at a time, ``interval`` apart;
* :meth:`~FaultProxy.chaos` -- seeded cuts at random moments (exponential intervals).

Each fault that happened is in :attr:`~FaultProxy.faults_done`; the frames delivered are
counted (:meth:`~FaultProxy.count`, :meth:`~FaultProxy.wait_for`) and the latest are
listed (:meth:`~FaultProxy.frames`). Every method may be called from any thread; rules
may be armed before :meth:`start`.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, NoReturn, TypeVar

from slob.testing.fault_frames import CLIENT, RAW, SERVER, Unit, names
from slob.testing.fault_link import Cut, Link
from slob.aio.loop_thread import LoopThread

__all__ = ["CLIENT", "SERVER", "FaultHandle", "FaultProxy", "FaultRecord", "FrameRecord"]

log = logging.getLogger("slob.testing.fault_proxy")

T = TypeVar("T")
_DIRECTIONS = (CLIENT, SERVER)
_FATES = ("received", "delivered", "swallowed", "lost")


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One fault that happened. ``kind``: ``cut`` (cut_now), ``cut_after``, ``cut_before``,
    ``chaos_cut``, ``swallow``, ``inject``, ``hold``, ``release``, ``trickle``. ``conn``
    is the connection (1, 2, ... in accept order) or None for proxy-wide faults; ``name``
    and ``direction`` the frame that triggered it; ``at`` is ``time.monotonic()``."""

    kind: str
    conn: int | None
    name: str = ""
    direction: str = ""
    detail: str = ""
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame the proxy handled. ``fate``: ``delivered`` (written to the other socket),
    ``swallowed``, or ``lost`` (not forwarded: cut before it, or waiting when a cut came)."""

    conn: int
    direction: str
    name: str
    size: int
    fate: str


class FaultHandle:
    """An armed fault; :meth:`wait` returns its records once it has happened."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._event = threading.Event()
        self._records: list[FaultRecord] = []

    @property
    def done(self) -> bool:
        return self._event.is_set()

    @property
    def records(self) -> list[FaultRecord]:
        return list(self._records)

    def wait(self, timeout: float = 10.0) -> list[FaultRecord]:
        if not self._event.wait(timeout):
            raise TimeoutError(f"FaultProxy: {self.what} did not happen within {timeout} s")
        return self.records

    def _add(self, record: FaultRecord, finished: bool = True) -> None:
        self._records.append(record)
        if finished:
            self._event.set()

    def __repr__(self) -> str:
        return f"<FaultHandle {self.what} {'done' if self.done else 'armed'}>"


@dataclass(eq=False)
class _CutRule:
    name: str
    n: int
    direction: str
    before: bool
    reset: bool
    handle: FaultHandle
    seen: int = 0


@dataclass(eq=False)
class _SwallowRule:
    name: str
    left: int
    direction: str
    handle: FaultHandle


@dataclass(eq=False)
class _Fired:
    """What a queued Cut carries: the rules that fired and the frame that fired them."""

    rules: list[_CutRule]
    unit: Unit
    records: list[FaultRecord] = field(default_factory=list)


class FaultProxy(LoopThread):
    """See the module docstring. ``upstream`` is the TWS (loopback only); ``port=0`` picks
    a free port, read back from :attr:`port`; ``frame_log`` bounds :meth:`frames`."""

    _label = "FaultProxy"
    _thread_name = "slob-fault-proxy"

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0,
                 connect_timeout: float = 5.0, frame_log: int = 100_000) -> None:
        for what, address in (("listens", host), ("connects", upstream[0])):
            if not _loopback(address):
                raise ValueError(f"FaultProxy {what} on loopback addresses only, not {address!r}")
        super().__init__()
        self.host = host
        self.port = port
        self.upstream = (upstream[0], int(upstream[1]))
        self.connect_timeout = connect_timeout
        # Loop-thread state (or any thread before start).
        self._server: asyncio.Server | None = None
        self._links: dict[int, Link] = {}
        self._next_conn = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._cut_rules: list[_CutRule] = []
        self._swallow_rules: list[_SwallowRule] = []
        self._held = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._trickle: float | None = None
        self._chaos: tuple[int, float, bool] | None = None
        self._chaos_task: asyncio.Task[None] | None = None
        # Shared with other threads: under _cond.
        self._cond = threading.Condition()
        self._faults: list[FaultRecord] = []
        self._counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._frames: collections.deque[FrameRecord] = collections.deque(maxlen=frame_log)
        self._open = 0
        self._accepted = 0

    # -- lifecycle ---------------------------------------------------------------------

    def _start_failed(self, started: bool) -> NoReturn:
        if not started:
            raise RuntimeError("FaultProxy did not start within 10 s")
        self._abandon()
        raise RuntimeError(f"FaultProxy could not listen on {self.host}:{self.port}: {self._failure}") \
            from self._failure

    async def _main(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_link, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("= fault proxy on %s:%d -> %s:%d", self.host, self.port, *self.upstream)
        if self._chaos is not None:
            self._start_chaos()
        ready.set()
        try:
            await self._stop_requested()
        finally:
            self._server.close()
            self._server = None
            tasks = [*self._tasks, *([self._chaos_task] if self._chaos_task is not None else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._stall_timer is not None:
                self._stall_timer.cancel()
            for link in list(self._links.values()):
                link.abort()
            await asyncio.sleep(0)  # let the transports finish closing

    def _do(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the loop thread, or right here before the proxy runs."""
        if self._thread is None:
            return fn()
        return self._call(fn)

    # -- faults ------------------------------------------------------------------------

    def cut_now(self, *, reset: bool = False) -> int:
        """Close both sockets of every open connection now (FIN; ``reset``: RST); what the
        proxy still held for them is lost. Returns how many connections were cut."""
        def go() -> int:
            links = [link for link in self._links.values() if not link.dead]
            for link in links:
                link.cut(reset)
                self._fault(FaultRecord("cut", link.conn, detail="reset" if reset else "", at=_now()))
            return len(links)
        return self._do(go)

    def cut_after(self, name: str, n: int = 1, *, direction: str = CLIENT, before: bool = False,
                  reset: bool = False) -> FaultHandle:
        """Cut the connection when the ``n``-th frame named ``name`` (counted from now,
        over all connections) passes in ``direction`` (``"client"``: client -> TWS,
        ``"server"``: TWS -> client): right after forwarding it, or with ``before=True``
        instead of forwarding it. One-shot."""
        _check(name, direction)
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        what = f"cut {'before' if before else 'after'} {direction} {name} #{n}"
        rule = _CutRule(name, n, direction, before, reset, FaultHandle(what))
        self._do(lambda: self._cut_rules.append(rule))
        return rule.handle

    def swallow(self, name: str, n: int = 1, *, direction: str = CLIENT) -> FaultHandle:
        """Do not forward the next ``n`` frames named ``name`` in ``direction`` (an
        unanswered request). The handle is done once all ``n`` were swallowed."""
        _check(name, direction)
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        rule = _SwallowRule(name, n, direction, FaultHandle(f"swallow {n} x {direction} {name}"))
        self._do(lambda: self._swallow_rules.append(rule))
        return rule.handle

    def hold(self) -> None:
        """Stop forwarding TWS -> client bytes (every connection, new ones too): the socket
        stays open and silent. They wait in the proxy (beyond 1 MiB per connection it stops
        reading TWS) until :meth:`release`."""
        def go() -> None:
            if not self._held:
                self._held = True
                self._fault(FaultRecord("hold", None, direction=SERVER, at=_now()))
        self._do(go)

    def release(self) -> None:
        """Deliver what :meth:`hold` kept back, and forward again."""
        def go() -> None:
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
            if self._held:
                self._held = False
                self._fault(FaultRecord("release", None, direction=SERVER, at=_now()))
                self._flush_all()
        self._do(go)

    def stall(self, seconds: float) -> None:
        """:meth:`hold` now and :meth:`release` after ``seconds`` of real time."""
        def go() -> None:
            self.hold()
            if self._stall_timer is not None:
                self._stall_timer.cancel()
            self._stall_timer = asyncio.get_running_loop().call_later(seconds, self.release)
        self._call(go)

    def inject(self, data: bytes, *, to: str = "client") -> int:
        """Write ``data`` into the stream towards ``to`` (``"client"`` or ``"server"``) of
        every open connection, after what is queued there. Returns how many."""
        if to not in ("client", "server"):
            raise ValueError(f"inject to 'client' or 'server', not {to!r}")
        direction = SERVER if to == "client" else CLIENT  # the direction of the bytes
        def go() -> int:
            count = 0
            for link in self._links.values():
                box = link.out[direction]
                if link.dead or box.sealed:
                    continue
                box.put(Unit(direction, RAW, bytes(data)))
                self._fault(FaultRecord("inject", link.conn, direction=direction,
                                        detail=f"{len(data)} bytes to {to}", at=_now()))
                box.flush()
                count += 1
            return count
        return self._call(go)

    def trickle(self, interval: float | None) -> None:
        """From now on forward TWS -> client bytes one at a time, ``interval`` seconds
        apart (every connection); ``None`` forwards normally again."""
        if interval is not None and interval < 0:
            raise ValueError(f"trickle interval must be >= 0, not {interval}")
        def go() -> None:
            self._trickle = interval
            self._fault(FaultRecord("trickle", None, direction=SERVER,
                                    detail="off" if interval is None else f"{interval} s", at=_now()))
            if interval is None:
                for link in self._links.values():
                    link.out[SERVER].stop_timer()
                self._flush_all()
        self._do(go)

    def chaos(self, seed: int, mean_interval: float, *, reset: bool = False) -> None:
        """Cut every open connection at random moments: waits drawn from an exponential
        distribution of mean ``mean_interval`` seconds by ``random.Random(seed)``. Each
        cut is a ``chaos_cut`` record. Replaces running chaos; :meth:`stop_chaos` ends it."""
        if mean_interval <= 0:
            raise ValueError(f"mean_interval must be positive, not {mean_interval}")
        def go() -> None:
            self._chaos = (seed, mean_interval, reset)
            if self._thread is not None:
                self._start_chaos()
        self._do(go)

    def stop_chaos(self) -> None:
        def go() -> None:
            self._chaos = None
            if self._chaos_task is not None:
                self._chaos_task.cancel()
                self._chaos_task = None
        self._do(go)

    def disarm(self) -> None:
        """Forget armed cuts and swallows, stop chaos, trickle and holds (releasing)."""
        def go() -> None:
            self._cut_rules.clear()
            self._swallow_rules.clear()
        self._do(go)
        self.stop_chaos()
        if self._trickle is not None:
            self.trickle(None)
        self.release()

    # -- inspection --------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Client connections open now (a cut one counts until both sockets closed)."""
        with self._cond:
            return self._open

    @property
    def accepted(self) -> int:
        """Client connections accepted so far."""
        with self._cond:
            return self._accepted

    @property
    def faults_done(self) -> list[FaultRecord]:
        """Every fault that happened, in order (a copy)."""
        with self._cond:
            return list(self._faults)

    def count(self, name: str, direction: str = CLIENT, *, fate: str = "delivered") -> int:
        """Frames named ``name`` in ``direction`` so far (all connections) that met ``fate``:
        ``received`` (complete in the proxy), ``delivered``, ``swallowed`` or ``lost``."""
        _check_fate(fate)
        with self._cond:
            return self._counts[(direction, name, fate)]

    def frames(self, direction: str | None = None, *, conn: int | None = None) -> list[FrameRecord]:
        """The latest frames handled (``frame_log`` of them, received ones not listed),
        oldest first."""
        with self._cond:
            return [f for f in self._frames
                    if (direction is None or f.direction == direction) and (conn is None or f.conn == conn)]

    def wait_for(self, name: str, n: int = 1, *, direction: str = CLIENT, fate: str = "delivered",
                 timeout: float = 10.0) -> None:
        """Block until :meth:`count` of ``name`` reaches ``n``."""
        _check_fate(fate)
        key = (direction, name, fate)
        self._wait(lambda: self._counts[key] >= n, timeout,
                   lambda: f"{n} x {direction} {name} {fate} (so far {self._counts[key]})")

    def wait_connections(self, n: int, *, timeout: float = 10.0) -> None:
        """Block until exactly ``n`` client connections are open."""
        self._wait(lambda: self._open == n, timeout, lambda: f"{n} open connections (open: {self._open})")

    def _wait(self, ok: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
        deadline = _now() + timeout
        with self._cond:
            while not ok():
                left = deadline - _now()
                if left <= 0:
                    raise TimeoutError(f"FaultProxy: no {what()} within {timeout} s")
                self._cond.wait(min(left, 0.25))

    # -- connections (loop thread) -----------------------------------------------------

    def _new_link(self) -> asyncio.Protocol:
        link = Link(self, self._next_conn, self._accept)
        self._next_conn += 1
        return link.client

    def _accept(self, link: Link) -> None:
        self._links[link.conn] = link
        with self._cond:
            self._open += 1
            self._accepted += 1
            self._cond.notify_all()
        task = asyncio.get_running_loop().create_task(self._connect_upstream(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_upstream(self, link: Link) -> None:
        host, port = self.upstream
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: link.upstream, host, port),
                                   self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("! fault proxy: connection %d: upstream %s:%d unreachable (%s); closing the client",
                        link.conn, host, port, exc or type(exc).__name__)
            link.upstream_failed()
            return
        link.upstream_up()

    # -- the Rules protocol of fault_link (loop thread) --------------------------------

    def route(self, link: Link, unit: Unit) -> None:
        box = link.out[unit.direction]
        with self._cond:
            self._counts[(unit.direction, unit.name, "received")] += 1
            self._cond.notify_all()
        for gulp in self._swallow_rules:
            if gulp.name == unit.name and gulp.direction == unit.direction:
                gulp.left -= 1
                if gulp.left == 0:
                    self._swallow_rules.remove(gulp)
                record = FaultRecord("swallow", link.conn, unit.name, unit.direction, at=_now())
                self._fault(record)
                gulp.handle._add(record, finished=gulp.left == 0)
                self._frame(link, unit, "swallowed")
                return
        fired = []
        for rule in self._cut_rules:
            if rule.name == unit.name and rule.direction == unit.direction:
                rule.seen += 1
                if rule.seen == rule.n:
                    fired.append(rule)
        if not fired:
            box.put(unit)
            return
        for rule in fired:
            self._cut_rules.remove(rule)
        if any(rule.before for rule in fired):
            self._frame(link, unit, "lost")
        else:
            box.put(unit)
        box.put(Cut(any(rule.reset for rule in fired), _Fired(fired, unit)))

    def held(self, direction: str) -> bool:
        return self._held and direction == SERVER

    def trickle_interval(self, direction: str) -> float | None:
        return self._trickle if direction == SERVER else None

    def delivered(self, link: Link, unit: Unit) -> None:
        self._frame(link, unit, "delivered")

    def dropped(self, link: Link, unit: Unit) -> None:
        self._frame(link, unit, "lost")

    def cut_done(self, link: Link, cut: Cut) -> None:
        fired = cut.tag
        assert isinstance(fired, _Fired)
        unit = fired.unit
        for rule in fired.rules:
            kind = "cut_before" if rule.before else "cut_after"
            record = FaultRecord(kind, link.conn, unit.name, unit.direction, f"#{rule.n}", _now())
            self._fault(record)
            rule.handle._add(record)
        log.info("! fault proxy: connection %d cut %s %s %s", link.conn,
                 "before" if any(r.before for r in fired.rules) else "after", unit.direction, unit.name)

    def link_closed(self, link: Link) -> None:
        self._links.pop(link.conn, None)
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    # -- internals (loop thread) -------------------------------------------------------

    def _flush_all(self) -> None:
        for link in list(self._links.values()):
            link.out[SERVER].flush()

    def _fault(self, record: FaultRecord) -> None:
        with self._cond:
            self._faults.append(record)
            self._cond.notify_all()

    def _frame(self, link: Link, unit: Unit, fate: str) -> None:
        with self._cond:
            self._counts[(unit.direction, unit.name, fate)] += 1
            self._frames.append(FrameRecord(link.conn, unit.direction, unit.name, len(unit.data), fate))
            self._cond.notify_all()

    def _start_chaos(self) -> None:
        if self._chaos_task is not None:
            self._chaos_task.cancel()
        assert self._chaos is not None
        seed, mean, reset = self._chaos
        self._chaos_task = asyncio.get_running_loop().create_task(self._run_chaos(seed, mean, reset))

    async def _run_chaos(self, seed: int, mean: float, reset: bool) -> None:
        rng = random.Random(seed)
        draw = 0
        while True:
            wait = rng.expovariate(1.0 / mean)
            draw += 1
            await asyncio.sleep(wait)
            for link in [link for link in self._links.values() if not link.dead]:
                link.cut(reset)
                self._fault(FaultRecord("chaos_cut", link.conn, detail=f"seed={seed} draw={draw} "
                                        f"after {wait:.3f} s", at=_now()))


def _check(name: str, direction: str) -> None:
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'client' (client -> TWS) or 'server' (TWS -> client), "
                         f"not {direction!r}")
    if name in names(direction) or (name.startswith("UNKNOWN_") and name[8:].isdigit()):
        return
    other = CLIENT if direction == SERVER else SERVER
    hint = f"; it is sent in direction {other!r}" if name in names(other) else ""
    raise ValueError(f"{name!r} is not a message IB sends in direction {direction!r}{hint}")


def _check_fate(fate: str) -> None:
    if fate not in _FATES:
        raise ValueError(f"fate must be one of {_FATES}, not {fate!r}")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _now() -> float:
    return time.monotonic()
