"""The trace proxy on real loopback sockets: bytes pass unchanged both ways (however they
are chunked, even when the stream is malformed), either side may close, new clients are
still served, and listen/upstream failures name their cause and fix."""

from __future__ import annotations

import asyncio
import socket
from typing import Awaitable, Callable

import pytest

from slob.ib import wire
from slob.testing import tws_messages as msg
from slob.trace.events import CLIENT, SERVER, Kind, TraceEvent
from slob.trace.proxy import BackgroundProxy, ProxyError, TraceProxy

TIMEOUT = 10.0
HELLO = wire.ClientHello(100, 226).encode()
CLIENT_FRAMES = HELLO + wire.encode_message(71, [2, 1, ""], 200) + wire.encode_message(49, [1], 200)
SERVER_FRAMES = (wire.ServerHello(200, "20241202 10:00:00 EST").encode() + msg.next_valid_id(1, 200)
                 + msg.current_time(1733151600, 200))


class Upstream:
    """A fake TWS that records what it receives and, once it has ``expect`` bytes, sends
    ``reply`` in ``chunks`` pieces and closes (or stays open with ``close=False``)."""

    def __init__(self, expect: int, reply: bytes, chunks: int = 1, close: bool = True) -> None:
        self.expect, self.reply, self.chunks, self.close = expect, reply, chunks, close
        self.received = bytearray()
        self.connected = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "Upstream":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.connected.set()
        while len(self.received) < self.expect:
            data = await reader.read(65536)
            if not data:
                break
            self.received += data
        step = max(1, len(self.reply) // self.chunks)
        for i in range(0, len(self.reply), step):
            writer.write(self.reply[i:i + step])
            await writer.drain()
        if self.close:
            writer.close()


async def client_session(port: int, data: bytes, pieces: list[int]) -> bytes:
    """Send ``data`` cut at ``pieces`` sizes (the rest in one go), then read until EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    pos = 0
    for size in pieces:
        writer.write(data[pos:pos + size])
        await writer.drain()
        pos += size
    writer.write(data[pos:])
    await writer.drain()
    got = await asyncio.wait_for(reader.read(), TIMEOUT)  # until EOF
    writer.close()
    await writer.wait_closed()
    return got


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)
    try:
        await asyncio.wait_for(poll(), TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.mark.asyncio
@pytest.mark.parametrize("pieces,chunks", [([], 1), ([1] * 40, 1), ([3, 5, 7, 2], 37), ([1] * len(CLIENT_FRAMES), 1000)],
                         ids=["whole", "byte-at-a-time-head", "odd-chunks", "all-single-bytes"])
async def test_bytes_pass_unchanged_both_ways_however_chunked(pieces: list[int], chunks: int) -> None:
    events: list[TraceEvent] = []
    async with Upstream(len(CLIENT_FRAMES), SERVER_FRAMES, chunks) as tws, \
            TraceProxy(listen=("127.0.0.1", 0), upstream=("127.0.0.1", tws.port), on_event=events.append) as proxy:
        got = await client_session(proxy.port, CLIENT_FRAMES, pieces)
        await wait_for(lambda: any(e.kind == Kind.CLOSE for e in events), "the close event")
    assert bytes(tws.received) == CLIENT_FRAMES
    assert got == SERVER_FRAMES
    kinds = [(e.direction, e.kind) for e in events]
    assert kinds[0] == ("=", Kind.OPEN) and kinds[1] == (CLIENT, Kind.HELLO)
    assert kinds.count((SERVER, Kind.GREETING)) == 1
    assert [e.payload for e in events if e.kind == Kind.MESSAGE and e.direction == CLIENT] == [
        wire.encode_message(71, [2, 1, ""], 200)[4:], wire.encode_message(49, [1], 200)[4:]]
    assert len([e for e in events if e.kind == Kind.MESSAGE and e.direction == SERVER]) == 2
    assert kinds[-1] == ("=", Kind.CLOSE)


@pytest.mark.asyncio
async def test_a_malformed_stream_is_forwarded_unchanged_and_reported() -> None:
    bad_server = SERVER_FRAMES + (wire.MAX_MSG_LEN + 1).to_bytes(4, "big") + b"junk after the bad length"
    bad_client = CLIENT_FRAMES + b"\xff\xff\xff\xffnot a frame"
    events: list[TraceEvent] = []
    async with Upstream(len(bad_client), bad_server, chunks=5) as tws, \
            TraceProxy(listen=("127.0.0.1", 0), upstream=("127.0.0.1", tws.port), on_event=events.append) as proxy:
        got = await client_session(proxy.port, bad_client, [len(CLIENT_FRAMES), 2])
        await wait_for(lambda: any(e.kind == Kind.CLOSE for e in events), "the close event")
    assert bytes(tws.received) == bad_client and got == bad_server
    malformed = [e for e in events if e.kind == Kind.MALFORMED]
    assert {e.direction for e in malformed} == {CLIENT, SERVER}
    assert all("maximum" in e.note for e in malformed)
    raw_client = b"".join(e.payload for e in events if e.kind == Kind.RAW and e.direction == CLIENT)
    assert bad_client.endswith(raw_client)


@pytest.mark.asyncio
async def test_a_client_that_does_not_say_API_is_still_relayed() -> None:
    events: list[TraceEvent] = []
    junk = b"GET / HTTP/1.0\r\n\r\n"
    async with Upstream(len(junk), b"no", chunks=1) as tws, \
            TraceProxy(listen=("127.0.0.1", 0), upstream=("127.0.0.1", tws.port), on_event=events.append) as proxy:
        assert await client_session(proxy.port, junk, []) == b"no"
        await wait_for(lambda: any(e.kind == Kind.CLOSE for e in events), "the close event")
    assert bytes(tws.received) == junk
    assert any(e.kind == Kind.MALFORMED and "API" in e.note for e in events)


async def _open_pair(proxy: TraceProxy, tws: Upstream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(CLIENT_FRAMES)
    await writer.drain()
    return reader, writer


@pytest.mark.asyncio
@pytest.mark.parametrize("who", ["client", "upstream"])
async def test_survives_either_side_closing_and_serves_the_next_client(who: str) -> None:
    events: list[TraceEvent] = []
    async with Upstream(len(CLIENT_FRAMES), SERVER_FRAMES, close=False) as tws, \
            TraceProxy(listen=("127.0.0.1", 0), upstream=("127.0.0.1", tws.port), on_event=events.append) as proxy:
        reader, writer = await _open_pair(proxy, tws)
        assert await asyncio.wait_for(reader.readexactly(len(SERVER_FRAMES)), TIMEOUT) == SERVER_FRAMES
        if who == "client":
            writer.close()
        else:
            tws.writers[0].close()
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # the client sees EOF
            writer.close()
        await wait_for(lambda: proxy.connections == 0, "the pair to be gone")
        closes = [e.note for e in events if e.kind == Kind.CLOSE]
        assert closes == [f"closed by {'client' if who == 'client' else 'TWS'}"]
        # a second client is served as before
        tws.received.clear()
        reader2, writer2 = await _open_pair(proxy, tws)
        assert await asyncio.wait_for(reader2.readexactly(len(SERVER_FRAMES)), TIMEOUT) == SERVER_FRAMES
        assert bytes(tws.received) == CLIENT_FRAMES
        writer2.close()
        await writer.wait_closed()
        await writer2.wait_closed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.asyncio
async def test_an_unreachable_upstream_closes_the_client_and_says_why() -> None:
    events: list[TraceEvent] = []
    dead = _free_port()
    async with TraceProxy(listen=("127.0.0.1", 0), upstream=("127.0.0.1", dead), on_event=events.append) as proxy:
        try:
            got = await client_session(proxy.port, HELLO, [])
        except ConnectionResetError:  # closed with our hello unread: the kernel resets
            got = b""
        await wait_for(lambda: any(e.kind == Kind.CLOSE for e in events), "the close event")
    assert got == b""
    note = [e.note for e in events if e.kind == Kind.CLOSE][0]
    assert f"upstream 127.0.0.1:{dead} refused the connection" in note and "TWS / IB Gateway running" in note


@pytest.mark.asyncio
async def test_a_busy_listen_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ProxyError, match=rf"cannot listen on 127.0.0.1:{port}: .*--listen"):
            await TraceProxy(listen=("127.0.0.1", port), upstream=("127.0.0.1", 1)).start()


def test_the_background_proxy_listens_on_loopback_only() -> None:
    with pytest.raises(ProxyError, match="loopback only"):
        BackgroundProxy(upstream=("127.0.0.1", 7497), host="0.0.0.0")


def test_a_display_that_raises_does_not_stop_the_relay() -> None:
    async def run() -> bytes:
        def boom(event: TraceEvent) -> None:
            raise RuntimeError("display bug")
        async with Upstream(len(CLIENT_FRAMES), SERVER_FRAMES) as tws, \
                TraceProxy(listen=("127.0.0.1", 0), upstream=("127.0.0.1", tws.port), on_event=boom) as proxy:
            return await client_session(proxy.port, CLIENT_FRAMES, [])
    assert asyncio.run(run()) == SERVER_FRAMES
