"""Opening an API session: TCP connect and IB's version handshake, blocking or async.

Both forms send what IB's ``EClient.connect()`` sends (``API\\0`` + ``v{min}..{max}``) and
read the greeting (server version, connection time). Unlike IB's ``connect()``, which
keeps only the first frame of its first ``recv``, anything that arrived together with
the greeting is kept in :attr:`Session.early` for the reader thread. The async form does
the whole exchange on the event loop (non-blocking socket), so no executor thread is
needed; either way the socket is handed over in blocking mode for the reader thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import Iterator

from ibapi.server_versions import MAX_CLIENT_VER, MIN_CLIENT_VER

from slob.ib import wire
from slob.ib.errors import HandshakeFailed, TWSNotRunning

__all__ = ["Session", "open_session", "open_session_async"]


@dataclass
class Session:
    sock: socket.socket
    host: str
    port: int
    server_version: int
    connection_time: str
    decoder: wire.FrameDecoder
    early: list[bytes] = field(default_factory=list)


def _hello(max_version: int, options: str) -> bytes:
    return wire.ClientHello(MIN_CLIENT_VER, max_version, options).encode()


def _greeting(decoder: wire.FrameDecoder, data: bytes, host: str, port: int) -> list[bytes]:
    if not data:
        raise HandshakeFailed(
            f"{host}:{port} closed the connection before greeting: it accepts TCP but not this API "
            "client (check 'Trusted IPs' / 'Allow connections from localhost only' in TWS's API settings)"
        )
    try:
        return decoder.feed(data)
    except wire.WireError as exc:
        raise HandshakeFailed(f"{host}:{port} does not speak the TWS API: {exc}") from exc


def _finish(sock: socket.socket, host: str, port: int, decoder: wire.FrameDecoder, frames: list[bytes]) -> Session:
    try:
        hello = wire.ServerHello.parse(frames[0])
    except wire.WireError as exc:
        raise HandshakeFailed(f"{host}:{port} sent an unexpected greeting: {exc}") from exc
    if hello.server_version < MIN_CLIENT_VER:
        raise HandshakeFailed(
            f"{host}:{port} offers server version {hello.server_version}; IB's client needs >= {MIN_CLIENT_VER}: update TWS"
        )
    sock.setblocking(True)
    sock.settimeout(None)
    return Session(sock, host, port, hello.server_version, hello.connection_time, decoder, frames[1:])


def _refused(host: str, port: int, exc: BaseException) -> TWSNotRunning:
    detail = getattr(exc, "strerror", None) or type(exc).__name__
    return TWSNotRunning(host, port, str(detail))


def _timeout(host: str, port: int, timeout: float) -> HandshakeFailed:
    return HandshakeFailed(
        f"no greeting from {host}:{port} within {timeout:g} s: is this a TWS/Gateway API port, with the "
        "API enabled (Configure > API > Settings)? A TWS showing a dialog can also stall connections."
    )


@contextlib.contextmanager
def _closed_on_failure(sock: socket.socket, host: str, port: int) -> Iterator[None]:
    """Close the socket if the handshake fails; a socket error becomes HandshakeFailed."""
    try:
        yield
    except OSError as exc:
        sock.close()
        raise HandshakeFailed(f"{host}:{port} dropped the connection during the handshake ({exc})") from exc
    except BaseException:
        sock.close()
        raise


def open_session(
    host: str, port: int, *, timeout: float = 10.0, max_version: int = MAX_CLIENT_VER, options: str = ""
) -> Session:
    """Connect and handshake, blocking the calling thread for at most about ``timeout``."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise _refused(host, port, exc) from exc
    with _closed_on_failure(sock, host, port):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(_hello(max_version, options))
        decoder = wire.FrameDecoder()
        frames: list[bytes] = []
        deadline = time.monotonic() + timeout
        while not frames:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timeout(host, port, timeout)
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            frames = _greeting(decoder, data, host, port)
        return _finish(sock, host, port, decoder, frames)


async def open_session_async(
    host: str, port: int, *, timeout: float = 10.0, max_version: int = MAX_CLIENT_VER, options: str = ""
) -> Session:
    """Connect and handshake on the running event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    with _closed_on_failure(sock, host, port):
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise _refused(host, port, exc) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_sendall(sock, _hello(max_version, options))
        decoder = wire.FrameDecoder()
        frames: list[bytes] = []
        deadline = loop.time() + timeout
        while not frames:
            left = deadline - loop.time()
            if left <= 0:
                raise _timeout(host, port, timeout)
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
            except asyncio.TimeoutError:
                raise _timeout(host, port, timeout) from None
            frames = _greeting(decoder, data, host, port)
        return _finish(sock, host, port, decoder, frames)
