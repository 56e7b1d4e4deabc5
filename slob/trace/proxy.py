"""The trace proxy: a transparent TCP relay between TWS clients and TWS / IB Gateway.

Every accepted client gets its own upstream connection. Bytes are relayed unchanged and
first: each chunk is written to the other side inside the same ``data_received`` call,
before the trace looks at it. The trace then feeds a *copy* to one
:class:`~slob.ib.wire.FrameDecoder` per direction and hands :class:`TraceEvent` records to
``on_event``. A stream that breaks framing (a bad length prefix, a client that does not
start with ``API\\0``) is reported once as ``malformed`` and the rest of that direction is
relayed and reported as ``raw`` bytes; nothing stops the relay but a closed socket. When
either side closes, the other is closed after its pending bytes are written; the proxy
keeps serving new clients. Flow control: a side whose peer cannot keep up stops being read
(``pause_reading``) until the peer drains.

:class:`TraceProxy` runs on the caller's event loop; :class:`BackgroundProxy` runs one on
a thread of its own for synchronous code and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from typing import Callable, NoReturn

from slob.ib import wire
from slob.ib.errors import SlobError
from slob.aio.loop_thread import LoopThread
from slob.trace.events import CLIENT, SERVER, TraceEvent, Tracer

__all__ = ["BackgroundProxy", "ProxyError", "TraceProxy"]

log = logging.getLogger("slob.trace")

EventSink = Callable[[TraceEvent], None]


class ProxyError(SlobError):
    """The proxy cannot listen or reach its upstream; the message names the fix."""


class _Side(asyncio.Protocol):
    """One socket of a pair: bytes in here go out of the other side."""

    def __init__(self, pair: "_Pair", direction: str) -> None:
        self.pair = pair
        self.direction = direction  # the direction of the bytes this side receives
        self.transport: asyncio.Transport | None = None
        self.peer: "_Side | None" = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.direction == CLIENT:
            transport.pause_reading()  # until the upstream connection is up
            self.pair.proxy._client_connected(self.pair)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            peer.transport.write(data)  # forward first, untouched
        self.pair.observe(self.direction, data)

    def eof_received(self) -> bool | None:
        return None  # close this side; connection_lost closes the other

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pair.side_closed(self, exc)

    # The peer's write buffer is full: stop reading here until it drains.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.closed:
            self.peer.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class _Pair:
    """A client connection and its upstream connection, with the trace state of both."""

    def __init__(self, proxy: "TraceProxy", conn: int) -> None:
        self.proxy = proxy
        self.conn = conn
        self.client = _Side(self, CLIENT)
        self.upstream = _Side(self, SERVER)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.decoders = {
            CLIENT: wire.FrameDecoder(expect_api_prefix=True),
            SERVER: wire.FrameDecoder(),
        }
        self.finished = False

    def observe(self, direction: str, data: bytes) -> None:
        t = time.time()
        decoder = self.decoders[direction]
        tracer, emit = self.proxy.tracer, self.proxy.emit
        if decoder.failed is not None:
            emit(tracer.raw(self.conn, direction, data, t))
            return
        try:
            payloads = decoder.feed(data)
        except wire.WireError as exc:
            for payload in exc.frames:
                emit(tracer.frame(self.conn, direction, payload, t))
            emit(tracer.malformed(self.conn, direction, t, str(exc)))
            return
        for payload in payloads:
            emit(tracer.frame(self.conn, direction, payload, t))

    def side_closed(self, side: _Side, exc: Exception | None) -> None:
        other = side.peer
        if other is not None:
            other.close()
        if self.finished:
            return
        self.finished = True
        who = "client" if side is self.client else "TWS"
        why = f" ({exc})" if exc is not None else ""
        self.proxy.pair_closed(self, f"closed by {who}{why}")


class TraceProxy:
    """Listen on ``listen`` (loopback by default) and relay each client to ``upstream``.

    ``on_event`` gets every :class:`TraceEvent` on the event loop's thread; it must be quick
    (it runs after the bytes were forwarded, but before the next chunk is read). An
    exception from it is logged and the relay goes on. Use ``async with`` or
    :meth:`start`/:meth:`close`.
    """

    def __init__(self, *, listen: tuple[str, int] = ("127.0.0.1", 7400),
                 upstream: tuple[str, int] = ("127.0.0.1", 7497),
                 on_event: EventSink | None = None,
                 connect_timeout: float = 5.0) -> None:
        self.listen = listen
        self.upstream = upstream
        self.on_event = on_event
        self.connect_timeout = connect_timeout
        self.tracer = Tracer()
        self.port = listen[1]
        self._server: asyncio.AbstractServer | None = None
        self._pairs: dict[int, _Pair] = {}
        self._next_conn = 1
        self._connecting: set[asyncio.Task[None]] = set()

    async def start(self) -> "TraceProxy":
        loop = asyncio.get_running_loop()
        host, port = self.listen
        try:
            self._server = await loop.create_server(self._accept, host, port, reuse_address=True)
        except OSError as exc:
            raise ProxyError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick a free port with "
                f"--listen {host}:<port> (is another slob trace or TWS using {port}?)") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("= trace proxy on %s:%d -> %s:%d", host, self.port, *self.upstream)
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        for pair in list(self._pairs.values()):
            pair.client.close()
            pair.upstream.close()
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)  # let the transports finish closing

    async def __aenter__(self) -> "TraceProxy":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connections(self) -> int:
        """Client connections currently relayed."""
        return len(self._pairs)

    def emit(self, event: TraceEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("! trace display failed; relaying goes on")

    # -- connections ---------------------------------------------------------------------

    def _accept(self) -> _Side:
        pair = _Pair(self, self._next_conn)
        self._next_conn += 1
        return pair.client

    def _client_connected(self, pair: _Pair) -> None:
        task = asyncio.get_running_loop().create_task(self._open(pair))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _open(self, pair: _Pair) -> None:
        client = pair.client.transport
        assert client is not None
        peer = client.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if peer else "?"
        host, port = self.upstream
        self._pairs[pair.conn] = pair
        self.emit(self.tracer.opened(pair.conn, time.time(), f"client {peer_text} -> TWS {host}:{port}"))
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: pair.upstream, host, port), self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = upstream_failure(host, port, exc)
            log.warning("! %s", reason)
            pair.finished = True
            self.pair_closed(pair, reason)
            client.close()
            return
        if pair.client.closed:  # the client left while we connected
            pair.upstream.close()
            return
        client.resume_reading()

    def pair_closed(self, pair: _Pair, note: str) -> None:
        self._pairs.pop(pair.conn, None)
        self.emit(self.tracer.closed(pair.conn, time.time(), note))


def upstream_failure(host: str, port: int, exc: BaseException) -> str:
    """Why the upstream could not be reached, and what to do."""
    if isinstance(exc, ConnectionRefusedError):
        return (f"upstream {host}:{port} refused the connection: is TWS / IB Gateway running with "
                f"the API enabled on port {port}? (TWS paper 7497, Gateway paper 4002; set --upstream)")
    if isinstance(exc, asyncio.TimeoutError):
        return f"upstream {host}:{port} did not answer within the timeout; check --upstream"
    return f"cannot reach upstream {host}:{port}: {exc}; check --upstream"


def check_listen_host(host: str) -> None:
    """The proxy listens on loopback only: a TWS API socket carries orders, unencrypted."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ProxyError(f"slob trace listens on loopback only, not {host!r}: the API socket is unencrypted")


class BackgroundProxy(LoopThread):
    """A :class:`TraceProxy` on a thread of its own (``with BackgroundProxy(...) as p``).

    ``on_event`` is called on the proxy's thread. ``port=0`` picks a free port.
    """

    _label = "trace proxy"
    _thread_name = "slob-trace-proxy"

    def __init__(self, *, upstream: tuple[str, int], port: int = 0, host: str = "127.0.0.1",
                 on_event: EventSink | None = None) -> None:
        super().__init__()
        check_listen_host(host)
        self.proxy = TraceProxy(listen=(host, port), upstream=upstream, on_event=on_event)

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def connections(self) -> int:
        return self._call(lambda: self.proxy.connections)

    async def _main(self, ready: threading.Event) -> None:
        await self.proxy.start()
        ready.set()
        try:
            await self._stop_requested()
        finally:
            await self.proxy.close()

    def _start_failed(self, started: bool) -> NoReturn:
        if not started:
            raise ProxyError("trace proxy did not start within 10 s")
        failure = self._failure
        self._abandon()
        if isinstance(failure, ProxyError):
            raise failure
        raise ProxyError(f"trace proxy could not start: {failure}") from failure
