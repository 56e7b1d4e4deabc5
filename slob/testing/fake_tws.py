"""FakeTWS: a TWS / IB Gateway you can run anywhere, speaking the real wire protocol.

A TCP server bound to loopback, running on its own thread and event loop, so it serves
synchronous tests, asyncio tests and other processes alike::

    with FakeTWS(speed=math.inf) as tws:          # port=0: a free port is picked
        app.connect("127.0.0.1", tws.port, clientId=1)
        tws.wait_for_request("REQ_TICK_BY_TICK_DATA")
        tws.drop()                                # fault injection

It negotiates server versions as TWS does, up to a configurable maximum (by default 226,
the highest IB's client 10.50 offers): classic text up to 200, binary message ids from
201 and protobuf, family by family, from the version at which IB moved each message
(:mod:`slob.testing.tws_versions`); a client offering less (ib_async at 178) gets text.
It answers the
start-up requests every client sends, lists NQ/MNQ/ES/MES quarterly futures for its
simulated date, streams market data and tick-by-tick trades from seeded price paths on a
simulated clock, takes orders and fills them against those trades (market, limit, stop,
stop-limit, brackets and OCA groups; see :mod:`slob.testing.fake_orders`), and injects
faults on command. Orders, executions and positions belong to the FakeTWS, so they
survive a client's reconnect and :meth:`FakeTWS.restart`. Every method may be called
from any thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Iterable, Mapping, NoReturn
from zoneinfo import ZoneInfo

from slob.ib import wire
from slob.testing import tws_messages as msg
from slob.testing.fake_market import Market, SentLog, SentTick, default_scenarios
from slob.testing.fake_orders import OrderBook
from slob.testing.fake_session import Session
from slob.aio.loop_thread import LoopThread
from slob.testing.order_records import ExecutionRecord, OrderInfo, PositionRecord
from slob.testing.request_faults import FiredFault, RequestFault
from slob.testing.scenario import Scenario, SimClock
from slob.trace.tws_requests import Request
from slob.testing.tws_versions import check_server_version, default_server_version

__all__ = ["ClientInfo", "Connection", "DEFAULT_START", "FakeTWS", "FiredFault", "RequestFault", "SentTick"]

log = logging.getLogger("slob.testing.fake_tws")

#: A Monday morning in Chicago with NQZ4 the front month: a reproducible default.
DEFAULT_START = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One open API socket as the fake TWS sees it."""

    peer: str
    state: str  # "hello", "start" (greeted, no START_API yet), "ready"
    server_version: int
    client_id: int | None


@dataclass(frozen=True, slots=True)
class Connection:
    """One accepted API socket over its life: ``session`` numbers them from 1 (as
    :class:`SentTick` does); ``*_ns`` are ``time.monotonic_ns()`` when it was accepted,
    when START_API made it ready (None: never) and when it closed (None: still open);
    ``ready_at`` is the simulated time it became ready."""

    session: int
    peer: str
    client_id: int | None
    opened_ns: int
    ready_ns: int | None = None
    ready_at: dt.datetime | None = None
    closed_ns: int | None = None


class FakeTWS(LoopThread):
    """A protocol-level TWS on 127.0.0.1; see the module docstring.

    Parameters: ``port=0`` picks a free port; ``server_version`` is the highest version
    offered (100..226; default 226, or ``$SLOB_FAKE_TWS_SERVER_VERSION``): each client
    gets min(its maximum, this), so ``server_version=200`` pins the text generation for
    every client; ``start`` and ``speed`` set the simulated clock (speed: simulated
    seconds per real second, ``math.inf`` as fast as clients read, 0 paused until
    :meth:`advance`); ``scenarios`` maps a price family (``"NQ"``, ``"ES"``) to a
    :class:`~slob.testing.scenario.Scenario`; ``no_permission`` lists roots without a
    market-data subscription (354, or 10167 and delayed data); ``pacing`` is
    ``"reject"`` (error 100, disconnect after three violations) or ``"count"``;
    ``record_sent`` keeps the log behind :meth:`sent_ticks` (on by default; about 60 bytes
    a trade tick).
    """

    _label = "FakeTWS"
    _thread_name = "slob-fake-tws"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_version: int | None = None,
        accounts: Iterable[str] = ("DU1234567",),
        next_order_id: int = 1,
        start: dt.datetime | None = None,
        speed: float = 1.0,
        seed: int = 1,
        scenarios: Mapping[str, Scenario] | None = None,
        market_data_interval: float = 0.25,
        no_permission: Iterable[str] = (),
        tick_by_tick_limit: int = 5,
        max_messages_per_second: int = 50,
        pacing: str = "reject",
        farm_notices: bool = True,
        time_zone: str = "America/New_York",
        record_sent: bool = True,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"FakeTWS binds loopback addresses only, not {host!r}")
        server_version = check_server_version(
            default_server_version() if server_version is None else server_version)
        if pacing not in ("reject", "count"):
            raise ValueError(f"pacing must be 'reject' or 'count', not {pacing!r}")
        super().__init__()
        self.host = host
        self.port = port
        self.server_version = server_version
        self.accounts = tuple(accounts)
        if not self.accounts:
            raise ValueError("FakeTWS needs at least one account")
        self.next_order_id = next_order_id
        self.seed = seed
        self.clock = SimClock(start or DEFAULT_START, speed)
        self.scenarios = dict(scenarios) if scenarios is not None else default_scenarios(seed)
        self.market_data_interval = market_data_interval
        self.no_permission = frozenset(r.upper() for r in no_permission)
        self.tick_by_tick_limit = tick_by_tick_limit
        self.max_messages_per_second = max_messages_per_second
        self.pacing = pacing
        self.farm_notices = farm_notices
        self.time_zone = ZoneInfo(time_zone)
        self.competing_session = False
        self.market: Market
        self._sessions: list[Session] = []
        self._requests: list[Request] = []
        self._protocol_errors: list[str] = []
        self._pacing_violations = 0
        self._changed = threading.Condition()
        self._server: asyncio.Server | None = None
        self._sessions_opened = 0
        self._connections: dict[int, Connection] = {}
        self._armed: list[tuple[RequestFault, list[int]]] = []  # (fault, [requests left to skip])
        self._fired: list[FiredFault] = []
        self._sent = SentLog(record_sent)
        self.book = OrderBook(self)

    # -- lifecycle (start, stop, with: see LoopThread) ----------------------------

    def _start_failed(self, started: bool) -> NoReturn:
        if not started:
            raise RuntimeError("FakeTWS did not start within 10 s")
        self._abandon()
        raise RuntimeError(f"FakeTWS could not start on {self.host}:{self.port}: {self._failure}") from self._failure

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def _main(self, ready: threading.Event) -> None:
        self.market = Market(self.clock, self.scenarios, md_interval=self.market_data_interval, sent=self._sent)
        self.market.on_trade = self.book.on_trade
        self.market.wants_trades = self.book.wants_trades
        await self._listen()
        market_task = asyncio.create_task(self.market.run(), name="fake-tws-market")
        market_task.add_done_callback(self._market_done)
        ready.set()
        try:
            await self._stop_requested()
        finally:
            await self._unlisten()
            for session in list(self._sessions):
                session.abort()
            market_task.cancel()
            await asyncio.gather(market_task, return_exceptions=True)
            self.market.close()
            await asyncio.sleep(0)  # let transports finish closing

    def _market_done(self, task: "asyncio.Task[None]") -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fake TWS market stopped: %r", task.exception())
            self._protocol_errors.append(f"market task failed: {task.exception()!r}")

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Session(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("= fake TWS listening on %s:%d (server version <= %d)", self.host, self.port,
                 self.server_version)

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    # -- calling into the loop (_call: see LoopThread) ----------------------------

    def _spawn(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``coro_fn()`` on the loop in the background, logging its failure."""
        self._submit(lambda: _wrap(coro_fn))

    # -- bookkeeping (loop thread) ----------------------------------------------

    def _session_opened(self, session: Session) -> None:
        self._sessions_opened += 1
        session.number = self._sessions_opened
        with self._changed:
            self._connections[session.number] = Connection(session.number, session.peer, None, time.monotonic_ns())
        self._sessions.append(session)
        self._notify()

    def _session_closed(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
        self.market.remove_session(session)
        with self._changed:
            c = self._connections.get(session.number)
            if c is not None and c.closed_ns is None:
                self._connections[session.number] = replace(c, closed_ns=time.monotonic_ns())
        self._notify()

    def _session_ready(self, session: Session) -> None:
        """Record the session's client id and ready time. Called before the session says it
        is ready, so a reader never sees a ready client without its record; the caller
        notifies waiters once it is."""
        with self._changed:
            c = self._connections.get(session.number)
            if c is not None:
                self._connections[session.number] = replace(c, client_id=session.client_id,
                                                            ready_ns=time.monotonic_ns(), ready_at=self.clock.now())

    def _client_id_taken(self, client_id: int, asking: Session) -> bool:
        return any(s is not asking and s.state == "ready" and s.client_id == client_id
                   for s in self._sessions)

    def _request_fault(self, session: Session, request: Request) -> RequestFault | None:
        """The armed fault that takes ``request`` (loop thread), if any."""
        client_id = session.client_id
        if client_id is None and request.name == "START_API":
            try:
                client_id = int(request.get("clientId"))
            except ValueError:
                client_id = None
        with self._changed:
            for i, (fault, skip) in enumerate(self._armed):
                if fault.name != request.name or (fault.client_id is not None and fault.client_id != client_id):
                    continue
                if skip[0] > 0:
                    skip[0] -= 1
                    return None
                del self._armed[i]
                self._fired.append(FiredFault(fault, client_id, session.number, self.clock.now(),
                                              time.monotonic_ns()))
                self._changed.notify_all()
                return fault
        return None

    def _record(self, request: Request) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _protocol_error(self, session: Session, exc: wire.WireError) -> None:
        with self._changed:
            self._protocol_errors.append(f"{session.peer}: {exc}")
            self._changed.notify_all()

    def _pacing_violation(self, session: Session) -> None:
        with self._changed:
            self._pacing_violations += 1
            self._changed.notify_all()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- observation -------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, decoded (a copy)."""
        with self._changed:
            return list(self._requests)

    @property
    def clients(self) -> list[ClientInfo]:
        """The open API sockets, greeted or not."""
        return self._call(lambda: [
            ClientInfo(s.peer, s.state, s.server_version, s.client_id)
            for s in self._sessions if s.state != "closed"
        ])

    @property
    def connections(self) -> list[Connection]:
        """Every API socket accepted so far, open or closed, in order (see
        :class:`Connection`): how often a client reconnected, and when."""
        with self._changed:
            return list(self._connections.values())

    @property
    def orders(self) -> list[OrderInfo]:
        """Every order placed (held, working or finished), by client id and order id."""
        return list(self.book.snapshot()[0])

    @property
    def executions(self) -> list[ExecutionRecord]:
        """Every fill so far, in time order."""
        return list(self.book.snapshot()[1])

    @property
    def positions(self) -> list[PositionRecord]:
        """Each account's position per contract traded (0 once flat, as TWS lists it)."""
        return list(self.book.snapshot()[2])

    def sent_ticks(self, client_id: int | None = None, *, since: int = 0) -> list[SentTick]:
        """Every trade tick written to a client's socket, in the order written: for each
        tick-by-tick Last/AllLast and market-data subscription, the client id, session,
        request id, local symbol, exchange second, price, size, whether it repeats an
        earlier trade (``resend``: a market-data subscription's initial snapshot) and the
        market's trade number (:class:`~slob.testing.fake_market.SentTick`). Recorded at
        the moment the frame is handed to the transport: a frame held by :meth:`stall` is
        recorded when it is released, one held when its socket dies is never recorded.
        ``client_id`` filters; ``since`` skips the first ``since`` records (see
        :attr:`sent_tick_count`), so a test can look at what one step sent::

            mark = tws.sent_tick_count
            ...                                   # the step
            step_ticks = tws.sent_ticks(client_id=1, since=mark)

        A tick "sent" may still be lost to its client: bytes in the socket's buffers die
        with a dropped connection. Compare what the client delivered against this list
        with that in mind (slob soak does: losses must fall inside recorded gaps)."""
        return self._sent.ticks(client_id, since)

    @property
    def sent_tick_count(self) -> int:
        """How many trade ticks have been recorded (a mark for ``sent_ticks(since=)``)."""
        return len(self._sent)

    def clear_sent_ticks(self) -> None:
        """Forget the recorded ticks (positions for ``since`` start again at 0)."""
        self._sent.clear()

    @property
    def protocol_errors(self) -> list[str]:
        with self._changed:
            return list(self._protocol_errors)

    @property
    def pacing_violations(self) -> int:
        with self._changed:
            return self._pacing_violations

    def wait_until(self, predicate: Callable[["FakeTWS"], bool], timeout: float = 10.0) -> None:
        """Block until ``predicate(self)`` holds (re-checked on every request and
        connection change); TimeoutError after ``timeout`` seconds."""
        deadline = _deadline(timeout)
        with self._changed:
            while not predicate(self):
                left = deadline - _now()
                if left <= 0:
                    raise TimeoutError(f"FakeTWS: condition not met within {timeout} s")
                self._changed.wait(min(left, 0.25))

    def wait_for_request(
        self, name: str, *, timeout: float = 10.0, where: Callable[[Request], bool] | None = None,
        after: int = 0,
    ) -> Request:
        """The first request called ``name`` (IB's name, e.g. ``REQ_MKT_DATA``) from
        position ``after`` on in :attr:`requests` that satisfies ``where``."""
        found: list[Request] = []

        def seen(_: "FakeTWS") -> bool:
            for r in self._requests[after:]:
                if r.name == name and (where is None or where(r)):
                    found.append(r)
                    return True
            return False

        try:
            self.wait_until(seen, timeout)
        except TimeoutError:
            names = [r.name for r in self.requests[after:]]
            raise TimeoutError(f"FakeTWS saw no {name} within {timeout} s; it saw {names}") from None
        return found[0]

    def wait_for_clients(self, count: int, *, ready: bool = True, timeout: float = 10.0) -> None:
        """Wait until exactly ``count`` sockets are open (``ready``: and have sent START_API)."""
        def enough(_: "FakeTWS") -> bool:
            live = [s for s in self._sessions if s.state != "closed"]
            if ready:
                return len(live) == count and all(s.state == "ready" for s in live)
            return len(live) == count

        self.wait_until(enough, timeout)

    # -- simulated time ----------------------------------------------------------

    def advance(self, seconds: float) -> dt.datetime:
        """Move simulated time forward; trades up to the new time go out at once."""
        return self.clock.advance(seconds)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the market has played every trade due by the simulated clock and
        matched the working orders against them: after ``advance(s)`` and ``settle()``,
        whatever those trades caused has been sent (a client-side round trip such as
        reqCurrentTime then brings it in). For paused or real-time clocks, not speed inf."""
        async def go() -> None:
            await self.market.settle(timeout)
        self._call_async(go, timeout + 1.0)

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)

    # -- faults ------------------------------------------------------------------

    def _targets(self, client_id: int | None) -> list[Session]:
        return [s for s in self._sessions if s.state != "closed"
                and (client_id is None or s.client_id == client_id)]

    def drop(self, client_id: int | None = None) -> int:
        """Close client sockets abruptly (all, or one client id); returns how many."""
        def go() -> int:
            targets = self._targets(client_id)
            for s in targets:
                s.abort()
            return len(targets)
        return self._call(go)

    def send_error(self, code: int, req_id: int = -1, text: str | None = None,
                   client_id: int | None = None, **values: object) -> None:
        """Send ERR_MSG ``code`` (real text unless ``text`` is given) to clients."""
        def go() -> None:
            for s in self._targets(client_id):
                if s.state == "ready":
                    s.error(req_id, code, text=text or "", port=self.port, **values)
        self._call(go)

    def reject_next_order(self, code: int = 201, text: str = "Order rejected - reason:") -> None:
        """Answer the next PLACE_ORDER (any client) with ERR_MSG ``code`` and ``text``
        instead of taking the order (its id counts as used)."""
        self.book.reject_next(code, text)

    def _arm(self, fault: RequestFault) -> RequestFault:
        if fault.skip < 0:
            raise ValueError(f"skip must be >= 0, not {fault.skip}")
        with self._changed:
            self._armed.append((fault, [fault.skip]))
        return fault

    def reject_next_request(self, name: str, code: int = 100, *, skip: int = 0,
                            client_id: int | None = None) -> RequestFault:
        """Answer the next request called ``name`` (IB's name: ``REQ_CONTRACT_DATA``,
        ``REQ_TICK_BY_TICK_DATA``, ``REQ_CURRENT_TIME``...) with ERR_MSG ``code`` -- by
        default 100, TWS's pacing rejection (TWS-FACTS §6) -- instead of serving it. The
        error carries the request's id (reqId or orderId) where it has one, else -1.
        ``skip`` lets that many such requests through first; ``client_id`` limits it to
        one client. Armed faults meet requests in the order armed."""
        return self._arm(RequestFault("reject", name, code=code, skip=skip, client_id=client_id))

    def ignore_next_request(self, name: str, *, skip: int = 0, client_id: int | None = None) -> RequestFault:
        """Leave the next request called ``name`` unanswered, as TWS sometimes does under
        pacing (the client's time-out is all it gets)."""
        return self._arm(RequestFault("ignore", name, skip=skip, client_id=client_id))

    def drop_on_next_request(self, name: str, *, answered: bool = True, skip: int = 0,
                             client_id: int | None = None) -> RequestFault:
        """Close the client's socket abruptly when the next request called ``name``
        arrives: after serving it (``answered``; e.g. ``PLACE_ORDER``: the order is taken,
        then the connection dies before the next leg) or before (e.g. ``START_API``
        unanswered: a drop after the greeting, before nextValidId)."""
        return self._arm(RequestFault("drop", name, answered=answered, skip=skip, client_id=client_id))

    @property
    def armed_faults(self) -> list[RequestFault]:
        """Request faults still waiting for their request."""
        with self._changed:
            return [fault for fault, _ in self._armed]

    @property
    def fired_faults(self) -> list[FiredFault]:
        """Request faults that met their request, in order."""
        with self._changed:
            return list(self._fired)

    def disarm(self) -> list[RequestFault]:
        """Forget the armed request faults; returns them."""
        with self._changed:
            armed, self._armed = [fault for fault, _ in self._armed], []
        return armed

    def send_garbage(self, kind: str = "bad_id", client_id: int | None = None) -> None:
        """Send a frame no client can read. ``bad_id``: a message whose id cannot be read
        (text: an id that is not a number; from server version 201: a payload shorter than
        the 4-byte binary id); ``truncated``: a text payload without its final NUL (from
        201 behind a binary TICK_PRICE id); ``oversize``: a length prefix above the protocol
        maximum (the stream cannot be re-synchronised)."""
        text = {
            "bad_id": wire.frame(b"garbage\x00\xff\xfe\x00"),
            "truncated": wire.frame(b"1\x006\x001"),
            "oversize": (wire.MAX_MSG_LEN + 1).to_bytes(4, "big") + b"junk",
        }
        binary = {**text, "bad_id": wire.frame(b"\xff\xfe"),
                  "truncated": wire.frame((1).to_bytes(4, "big") + b"6\x001")}
        if kind not in text:
            raise ValueError(f"garbage kind must be one of {sorted(text)}, not {kind!r}")

        def go() -> None:
            for s in self._targets(client_id):
                frames = binary if s.server_version >= wire.MIN_PROTOBUF_SERVER_VERSION else text
                s.send(frames[kind])

        self._call(go)

    def stall(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (real time), then deliver what queued up."""
        def go() -> None:
            for s in self._targets(None):
                s.hold()
            self.market.stalled = True

        async def later() -> None:
            await asyncio.sleep(seconds)
            self.market.stalled = False
            for s in self._targets(None):
                s.release()
            self.market.wake()

        self._call(go)
        self._spawn(later)

    def restart(self, down_for: float) -> None:
        """Behave like TWS restarting: every socket closed, the port refusing
        connections for ``down_for`` seconds, then listening again."""
        def go() -> None:
            for s in self._targets(None):
                s.abort()

        done = threading.Event()

        async def run() -> None:
            try:
                await self._unlisten()
                go()
            finally:
                done.set()
            await asyncio.sleep(down_for)
            if self._stopping is not None and not self._stopping.is_set():
                await self._listen()
            self._notify()

        self._spawn(run)
        done.wait(10)

    @property
    def listening(self) -> bool:
        return self._server is not None

    def connectivity_lost(self, *, all_farms: bool = False) -> None:
        """IB's servers unreachable from TWS: farms broken, then 1100; the socket stays up
        and no market data flows. ``all_farms``: the nightly reset's notices (TWS-FACTS
        §7: 2103 market data, 2157 sec-def, 2105 HMDS), else 2103 alone. Called again
        while lost, it repeats 1100 only, as TWS does every ~30 s during a long reset."""
        def go() -> None:
            repeat = not self.market.flowing
            self.market.flowing = False
            for s in self._targets(None):
                if s.state == "ready":
                    if not repeat:
                        s.error(-1, 2103, farm="usfarm")
                        if all_farms:
                            s.error(-1, 2157, farm="secdefnj")
                            s.error(-1, 2105, farm="ushmds")
                    s.error(-1, 1100)
        self._call(go)

    @property
    def connectivity(self) -> bool:
        """False between :meth:`connectivity_lost` and :meth:`connectivity_restored`."""
        return self.market.flowing

    def connectivity_restored(self, data_maintained: bool = True, *, all_farms: bool = False) -> None:
        """Farms back (2104; ``all_farms``: also 2158 sec-def and 2106 HMDS, as after the
        nightly reset), then 1102 (subscriptions kept) or 1101 (subscriptions lost: the
        client must request them again)."""
        def go() -> None:
            for s in self._targets(None):
                if s.state != "ready":
                    continue
                if all_farms:
                    s.error(-1, 2158, farm="secdefnj")
                    s.error(-1, 2106, farm="ushmds")
                s.error(-1, 2104, farm="usfarm")
                if data_maintained:
                    s.error(-1, 1102)
                else:
                    self.market.remove_session(s)
                    s.error(-1, 1101)
            self.market.flowing = True
            self.market.wake()
        self._call(go)


async def _wrap(coro_fn: Callable[[], Awaitable[Any]]) -> None:
    try:
        await coro_fn()
    except Exception:
        log.exception("fake TWS background task failed")


def _now() -> float:
    return time.monotonic()


def _deadline(timeout: float) -> float:
    return _now() + timeout
