"""FakeAlpaca: Alpaca's real-time stock stream (market data v2) on loopback.

A real WebSocket server (the ``websockets`` library) on its own thread and event loop, so
it serves asyncio tests, synchronous tests and other processes alike::

    with FakeAlpaca(rate=100) as alpaca:          # port=0: a free port is picked
        fetcher = AlpacaWSFetcher("test-key", "test-secret", url=alpaca.url)
        ...
        alpaca.drop()                             # fault injection

Protocol: on connect ``[{"T":"success","msg":"connected"}]``; ``{"action":"auth",...}``
answered by ``authenticated`` or 402 (then the connection is closed), 406 when
``connection_limit`` authenticated connections already exist (then closed), 403 when
repeated, 404 after ``auth_timeout`` seconds without auth (then closed); subscribe /
unsubscribe before auth: 401; a channel stocks do not have: 410; more than
``symbol_limit`` trade+quote symbols: 405; anything unreadable: 400. Acknowledgements are
``{"T":"subscription",...}`` with every channel listed. Trades (``T:"t"``) stream for
subscribed symbols, ``batch`` per symbol per frame at ``rate`` trades per second per
symbol, from seeded price paths or from a scripted list (played in order; it waits while
nobody is subscribed to its next trade's symbol). Quotes and bars are acknowledged but
not streamed. Every method may be called from any thread; waits evaluate their predicate
on the server's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping, NoReturn, TypeVar

import websockets

from slob.live.alpaca_connection import CredentialFilter
from slob.live.alpaca_protocol import Credentials
from slob.testing.alpaca_market import Market, PricePaths, SentTrade, StockTrade, trade_message
from slob.testing.alpaca_session import Session
from slob.aio.loop_thread import LoopThread

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection

__all__ = ["AlpacaClient", "FakeAlpaca", "SentTrade", "StockTrade"]

log = logging.getLogger("slob.testing.fake_alpaca")
T = TypeVar("T")
Predicate = Callable[["FakeAlpaca"], bool]

MALFORMED = {
    "truncated": '[{"T":"t","S":"AAPL","p":12',
    "not_json": "this is not JSON",
    "not_array": '"hello"',
    "bad_trade": '[{"T":"t","S":"AAPL","i":1,"x":"V","p":"abc","s":1,"t":"2024-01-02T15:30:00Z"}]',
    "bad_time": '[{"T":"t","S":"AAPL","i":1,"x":"V","p":1.5,"s":1,"t":"yesterday"}]',
}


@dataclass(frozen=True, slots=True)
class AlpacaClient:
    """One open connection as the fake sees it."""

    id: int
    peer: str
    path: str
    authenticated: bool
    trades: tuple[str, ...]


class FakeAlpaca(LoopThread):
    """See the module docstring. ``trades``: a script (None: seeded price paths)."""

    _label = "FakeAlpaca"
    _thread_name = "slob-fake-alpaca"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        feed: str = "iex",
        key_id: str = "test-key",
        secret_key: str = "test-secret",
        symbol_limit: int = 30,
        connection_limit: int = 1,
        auth_timeout: float = 10.0,
        rate: float = 20.0,
        batch: int = 1,
        seed: int = 1,
        trades: Iterable[StockTrade] | None = None,
        start_prices: Mapping[str, float] | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"FakeAlpaca binds loopback addresses only, not {host!r}")
        if not rate > 0 or batch < 1:
            raise ValueError("rate must be > 0 trades per second and batch >= 1")
        super().__init__()
        self.host, self.port, self.feed = host, port, feed
        self.key_id, self.secret_key = key_id, secret_key
        self.symbol_limit, self.connection_limit, self.auth_timeout = symbol_limit, connection_limit, auth_timeout
        self.rate, self.batch = rate, batch
        self.market = Market(PricePaths(seed, start_prices), trades, batch)
        #: False: new connections are cut right after the WebSocket handshake.
        self.accepting = True
        self.paused = False
        self._sessions: dict[int, Session] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._sent: list[SentTrade] = []
        self._requests: list[tuple[int, object]] = []
        self._errors_sent: list[tuple[int, int]] = []
        self._waiters: list[tuple[Predicate, concurrent.futures.Future[None], asyncio.TimerHandle]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle (start, stop, with: see LoopThread) ----------------------------

    def _start_failed(self, started: bool) -> NoReturn:
        self._abandon()
        raise RuntimeError(f"FakeAlpaca could not start on {self.host}:{self.port}: {self._failure}")

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v2/{self.feed}"

    async def _main(self, ready: threading.Event) -> None:
        # The auth frame it receives holds the test's key pair: keep it out of DEBUG logs too.
        logger = CredentialFilter(logging.getLogger("websockets.server"), Credentials(self.key_id, self.secret_key))
        server: Server = await websockets.serve(self._accept, self.host, self.port, compression=None,
                                                ping_interval=None, close_timeout=1, logger=logger)
        self.port = server.sockets[0].getsockname()[1]
        market = asyncio.create_task(self._market(), name="fake-alpaca-market")
        ready.set()
        try:
            await self._stop_requested()
        finally:
            for session in list(self._sessions.values()):
                session.abort()
            server.close()
            await server.wait_closed()
            for task in [market, *self._tasks]:
                task.cancel()
            await asyncio.gather(market, *self._tasks, return_exceptions=True)
            for _, fut, handle in self._waiters:
                handle.cancel()
                fut.cancel()

    # -- calling into the loop (_call, _call_async: see LoopThread) ---------------

    def _snapshot(self, fn: Callable[[], T]) -> T:
        """Read state on the loop thread (inline when already there, e.g. in a predicate,
        or when the server is not running)."""
        if self._thread is None:
            return fn()
        return self._call(fn)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _changed(self) -> None:
        for waiter in list(self._waiters):
            pred, fut, handle = waiter
            try:
                ok = fut.done() or pred(self)
            except Exception as exc:
                fut.set_exception(exc)
                ok = True
            if ok:
                handle.cancel()
                self._waiters.remove(waiter)
                if not fut.done():
                    fut.set_result(None)

    def _until(self, pred: Predicate, timeout: float) -> concurrent.futures.Future[None]:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = self._loop
        if loop is None:
            raise RuntimeError("FakeAlpaca is not running")

        def expire() -> None:
            self._waiters[:] = [w for w in self._waiters if w[1] is not fut]
            if not fut.done():
                fut.set_exception(TimeoutError(f"FakeAlpaca: condition not met within {timeout} s"))

        def register() -> None:
            self._waiters.append((pred, fut, loop.call_later(timeout, expire)))
            self._changed()

        loop.call_soon_threadsafe(register)
        return fut

    def wait_until(self, predicate: Predicate, timeout: float = 10.0) -> None:
        """Block until ``predicate(self)`` holds (checked on the server loop after every
        change); TimeoutError after ``timeout`` s. In async tests use :meth:`until`."""
        self._until(predicate, timeout).result(timeout + 5)

    async def until(self, predicate: Predicate, timeout: float = 10.0) -> None:
        """:meth:`wait_until` for asyncio tests (does not block the caller's loop)."""
        await asyncio.wrap_future(self._until(predicate, timeout))

    # -- observation -------------------------------------------------------------

    @property
    def clients(self) -> list[AlpacaClient]:
        return self._snapshot(lambda: [
            AlpacaClient(s.id, s.peer, s.path, s.authenticated, tuple(s.channels["trades"]))
            for s in self._sessions.values()])

    @property
    def client_count(self) -> int:
        return len(self._sessions)

    @property
    def sent_trades(self) -> list[SentTrade]:
        """Every trade message sent, in order (a copy)."""
        return list(self._sent)

    @property
    def requests(self) -> list[tuple[int, object]]:
        """(connection id, parsed JSON or the raw frame) for every message received."""
        return list(self._requests)

    @property
    def errors_sent(self) -> list[tuple[int, int]]:
        """(connection id, error code) for every error message sent."""
        return list(self._errors_sent)

    # -- faults ------------------------------------------------------------------

    def drop(self, *, clean: bool = False) -> int:
        """Cut every connection (``clean``: a close frame 1001 instead); returns how many."""
        async def go() -> int:
            sessions = list(self._sessions.values())
            for session in sessions:
                if clean:
                    self._spawn(session.ws.close(1001, "going away"))
                else:
                    session.abort()
            return len(sessions)
        return self._call_async(go)

    def send_error(self, code: int, text: str | None = None, *, close: bool = False) -> int:
        """Send ``{"T":"error","code":code}`` to every connection (then close them)."""
        async def go() -> int:
            sessions = list(self._sessions.values())
            for session in sessions:
                await session.error(code, text, close=close)
            return len(sessions)
        return self._call_async(go)

    def send_malformed(self, kind: str = "truncated") -> int:
        """Send a frame a client cannot use: one of :data:`MALFORMED`, or ``"binary"``."""
        if kind != "binary" and kind not in MALFORMED:
            raise ValueError(f"kind must be 'binary' or one of {sorted(MALFORMED)}, not {kind!r}")
        return self.send_raw(b"\xff\xfe\x00garbage" if kind == "binary" else MALFORMED[kind])

    def send_raw(self, frame: str | bytes) -> int:
        async def go() -> int:
            sessions = list(self._sessions.values())
            for session in sessions:
                await session.send(frame)
            return len(sessions)
        return self._call_async(go)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def _accept(self, ws: ServerConnection) -> None:
        await Session(self, next(self._ids), ws).serve()

    # -- market (loop thread) ----------------------------------------------------

    async def _market(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.batch / self.rate
        due = loop.time()
        while True:
            due, now = due + interval, loop.time()
            if due < now - interval:  # fell behind: carry on from now rather than burst
                due = now
            await asyncio.sleep(max(0.0, due - now))
            if not self.paused:
                await self._step()

    async def _step(self) -> None:
        listeners = [s for s in self._sessions.values() if s.authenticated and s.channels["trades"]]
        trades = self.market.next_trades(listeners) if listeners else []
        if not trades:
            return
        now = time.time_ns()
        stamped = [(t, now + n, trade_message(t, next(self._trade_ids), now + n)) for n, t in enumerate(trades)]
        for session in listeners:
            mine = [(msg, ns) for t, ns, msg in stamped if session.wants(t.symbol)]
            if mine:
                self._sent.extend(SentTrade(session.id, msg, ns) for msg, ns in mine)
                await session.send([msg for msg, _ in mine])
        self._changed()
