"""ReplayTWS: a TWS that answers from a recorded session instead of a simulation.

Give it a ``slob trace --record`` file or a real capture (tests/data/captures)::

    with ReplayTWS("session.jsonl") as tws:          # port=0: a free port is picked
        app.connect("127.0.0.1", tws.port, clientId=1)

Each accepted connection replays the next leg (recorded connection) of the file, wrapping
around, so a single-leg recording serves any number of runs of the same script. A leg is
replayed like this:

1. **Handshake.** The client's version offer must include the recorded server version;
   the greeting is the recorded one (version and connection time), including protobuf
   versions 201-225. A client that cannot speak that version is told so in the log and
   the socket is closed.
2. **Blocks.** The leg's frames after the handshake are cut into blocks: each recorded
   client request owns the server frames that followed it up to the next request. Server
   frames before the first request (the start-up burst: managed accounts, next valid id,
   farm notices) are sent when the client's START_API arrives.
3. **Matching a request** (the rule): a live request matches an unused recorded request
   with the same message id whose *key* is equal -- its fields (text) or body (protobuf)
   with the request, order and client ids blanked -- and, failing that, the earliest
   unused recorded request with the same message id. Raw bytes are never compared: ids
   and encodings differ between clients. The matched request's block is sent.
4. **Ids.** When the live request's id differs from the recorded one, the server frames
   of later blocks get it rewritten: request ids in the reqId/tickerId slot of every
   message naming one, order ids (PLACE_ORDER, CANCEL_ORDER) in the orderId slot, and
   ERR_MSG ids either way.
5. **Timing.** ``speed=math.inf`` (default) sends each block at once; ``speed=1`` keeps
   the recorded gaps between the request and its frames (real captures carry no times and
   always go at once); ``speed=10`` ten times faster.

A request with no unused recorded request of its message id gets ERR_MSG 322 ``slob
replay: no recorded answer left for <NAME>`` (with its request id) and is listed in
:attr:`ReplayTWS.unmatched`; nothing else happens and the session goes on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ibapi.message import IN, OUT

from slob.ib import wire
from slob.testing import tws_messages as msg
from slob.aio.loop_thread import LoopThread
from slob.trace.tws_requests import layout as request_layout
from slob.trace.tws_requests import request_name
from slob.trace.describe import parse_protobuf
from slob.trace.events import CLIENT, SERVER
from slob.trace.layouts import incoming_layout
from slob.trace.recording import Leg, RecordedFrame, Recording, load_recording

__all__ = ["ReplayTWS"]

log = logging.getLogger("slob.testing.replay")

_ID_FIELDS = ("reqId", "tickerId", "orderId", "clientId", "id")
_ORDER_REQUESTS = (OUT.PLACE_ORDER, OUT.CANCEL_ORDER)
_NO_MATCH_CODE = 322


@dataclass(slots=True)
class _Block:
    msg_id: int  # -1: the start-up burst
    key: bytes
    ident: int | None  # the recorded request's id
    t: float
    frames: list[RecordedFrame] = field(default_factory=list)
    used: bool = False


def _request_key(message: wire.Message, sv: int) -> tuple[bytes, int | None]:
    """A request's matching key (ids blanked) and its own id (request or order id)."""
    if message.protobuf is not None:
        proto = parse_protobuf(CLIENT, message.msg_id, message.protobuf)
        if proto is None:
            return message.protobuf, None
        ident = None
        for name in _ID_FIELDS:
            if name in proto.DESCRIPTOR.fields_by_name and proto.HasField(name):
                if ident is None and name != "clientId":
                    ident = int(getattr(proto, name))
                proto.ClearField(name)
        return proto.SerializeToString(deterministic=True), ident
    names = request_layout(message.msg_id, min(sv, 200))
    fields = list(message.fields)
    ident = None
    for i, name in enumerate(names[: len(fields)]):
        if name in _ID_FIELDS:
            if ident is None and name != "clientId":
                try:
                    ident = int(fields[i])
                except ValueError:
                    pass
            fields[i] = b""
    return b"\x00".join(fields), ident


def _blocks(leg: Leg) -> list[_Block]:
    blocks = [_Block(-1, b"", None, leg.frames[0].t if leg.frames else 0.0)]
    for frame in leg.frames:
        if frame.direction == CLIENT:
            try:
                message = wire.decode_message(frame.payload, leg.server_version)
            except wire.WireError:
                continue
            key, ident = _request_key(message, leg.server_version)
            blocks.append(_Block(message.msg_id, key, ident, frame.t))
        else:
            blocks[-1].frames.append(frame)
    return blocks


class _Session(asyncio.Protocol):
    """One client connection replaying one leg."""

    def __init__(self, server: "ReplayTWS", leg: Leg) -> None:
        self.server = server
        self.leg = leg
        self.sv = leg.server_version
        self.decoder = wire.FrameDecoder(expect_api_prefix=True)
        self.transport: asyncio.Transport | None = None
        self.greeted = False
        self.started = False
        self.blocks = _blocks(leg)
        self.req_ids: dict[int, int] = {}
        self.order_ids: dict[int, int] = {}
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.pending = 0  # frames queued or being timed by the sender
        self.sender: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())
        self.server._sessions.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sender is not None:
            self.sender.cancel()
        self.server._sessions.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self.decoder.feed(data)
        except wire.WireError as exc:
            log.warning("! replay: client stream broken: %s; closing", exc)
            self.abort()
            return
        for payload in payloads:
            if not self.greeted:
                self._hello(payload)
            else:
                self._request(payload)

    def _hello(self, payload: bytes) -> None:
        try:
            hello = wire.ClientHello.parse(payload)
        except wire.WireError as exc:
            log.warning("! replay: %s; closing", exc)
            self.abort()
            return
        if not hello.min_version <= self.sv <= hello.max_version:
            log.warning("! replay: the recording is at server version %d, the client offers v%d..%d; closing",
                        self.sv, hello.min_version, hello.max_version)
            self.server._note_unmatched(f"HELLO v{hello.min_version}..{hello.max_version} (recorded {self.sv})")
            self.abort()
            return
        self.greeted = True
        assert self.transport is not None
        self.transport.write(wire.ServerHello(self.sv, self.leg.connection_time).encode())

    def _request(self, payload: bytes) -> None:
        try:
            message = wire.decode_message(payload, self.sv)
        except wire.WireError as exc:
            log.warning("! replay: unreadable request: %s", exc)
            return
        key, ident = _request_key(message, self.sv)
        if not self.started and message.msg_id == OUT.START_API:
            self.started = True
            self._send_block(self.blocks[0], self.blocks[0].t)
            recorded = [b for b in self.blocks[1:] if b.msg_id == OUT.START_API and not b.used]
            if recorded:
                recorded[0].used = True
                self._send_block(recorded[0], recorded[0].t)
            return
        block = self._match(message.msg_id, key)
        if block is None:
            name = request_name(message.msg_id)
            log.warning("! replay: no recorded answer left for %s", name)
            self.server._note_unmatched(name)
            text = f"slob replay: no recorded answer left for {name} in {self.server.recording.path.name}"
            self._enqueue(0.0, msg.error(-1 if ident is None else ident, _NO_MATCH_CODE, text, self.sv))
            return
        if ident is not None and block.ident is not None and ident != block.ident:
            ids = self.order_ids if message.msg_id in _ORDER_REQUESTS else self.req_ids
            ids[block.ident] = ident
        self._send_block(block, block.t)

    def _match(self, msg_id: int, key: bytes) -> _Block | None:
        same_id = [b for b in self.blocks[1:] if b.msg_id == msg_id and not b.used]
        exact = [b for b in same_id if b.key == key]
        candidates = exact or same_id
        if not candidates:
            return None
        candidates[0].used = True
        return candidates[0]

    def _send_block(self, block: _Block, anchor: float) -> None:
        speed = self.server.speed
        previous = anchor
        for frame in block.frames:
            delay = 0.0
            if math.isfinite(speed) and speed > 0 and frame.t and previous:
                delay = max(0.0, frame.t - previous) / speed
            previous = frame.t
            self._enqueue(delay, wire.frame(self._rewrite(frame.payload)))

    def _enqueue(self, delay: float, data: bytes) -> None:
        if delay == 0.0 and self.pending == 0 and self.transport is not None:
            self.transport.write(data)  # nothing waiting ahead of it: send now
            self.server._count_sent()
            return
        self.pending += 1
        self.queue.put_nowait((delay, data))

    async def _send_loop(self) -> None:
        while True:
            delay, data = await self.queue.get()
            if delay:
                await asyncio.sleep(delay)
            self.pending -= 1
            if self.transport is None or self.transport.is_closing():
                return
            self.transport.write(data)
            self.server._count_sent()

    # -- id rewriting ---------------------------------------------------------------------

    def _rewrite(self, payload: bytes) -> bytes:
        if not self.req_ids and not self.order_ids:
            return payload
        try:
            message = wire.decode_message(payload, self.sv)
        except wire.WireError:
            return payload
        if message.protobuf is not None:
            return self._rewrite_proto(message, payload)
        names = incoming_layout(message.msg_id, self.sv, tuple(f.decode("latin-1") for f in message.fields)) or ()
        fields = list(message.fields)
        changed = False
        for i, name in enumerate(names[: len(fields)]):
            new = self._new_id(name, message.msg_id, fields[i])
            if new is not None:
                fields[i], changed = new, True
        if not changed:
            return payload
        body = b"".join(f + b"\x00" for f in fields)
        if self.sv >= wire.MIN_PROTOBUF_SERVER_VERSION:
            return message.msg_id.to_bytes(4, "big") + body
        return str(message.msg_id).encode() + b"\x00" + body

    def _new_id(self, name: str, msg_id: int, value: bytes) -> bytes | None:
        try:
            old = int(value)
        except ValueError:
            return None
        if name in ("reqId", "tickerId"):
            new = self.req_ids.get(old)
        elif name == "orderId":
            new = self.order_ids.get(old)
        elif name == "id" and msg_id == IN.ERR_MSG:
            new = self.order_ids.get(old, self.req_ids.get(old))
        else:
            return None
        return None if new is None else str(new).encode()

    def _rewrite_proto(self, message: wire.Message, payload: bytes) -> bytes:
        assert message.protobuf is not None
        proto = parse_protobuf(SERVER, message.msg_id, message.protobuf)
        if proto is None:
            return payload
        changed = False
        for name in ("reqId", "orderId", "id"):
            if name in proto.DESCRIPTOR.fields_by_name and proto.HasField(name):
                new = self._new_id(name, message.msg_id, str(getattr(proto, name)).encode())
                if new is not None:
                    setattr(proto, name, int(new))
                    changed = True
        if not changed:
            return payload
        body: bytes = proto.SerializeToString()
        return (message.msg_id + wire.PROTOBUF_ID_OFFSET).to_bytes(4, "big") + body


class ReplayTWS(LoopThread):
    """Serves a recorded session on loopback; see the module docstring.

    ``recording``: a path or a loaded :class:`~slob.trace.recording.Recording`; ``speed``:
    ``math.inf`` (default) as fast as possible, else a multiple of the recorded timing.
    """

    _label = "ReplayTWS"
    _thread_name = "slob-replay-tws"

    def __init__(self, recording: str | Path | Recording, *, host: str = "127.0.0.1", port: int = 0,
                 speed: float = math.inf) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"ReplayTWS binds loopback addresses only, not {host!r}")
        if not speed > 0:
            raise ValueError("speed must be > 0 (math.inf: as fast as possible)")
        super().__init__()
        self.recording = recording if isinstance(recording, Recording) else load_recording(recording)
        self.host = host
        self.port = port
        self.speed = speed
        self._next_leg = 0
        self._sessions: set[_Session] = set()
        self._lock = threading.Condition()
        self._unmatched: list[str] = []
        self._sent = 0
        self._server: asyncio.AbstractServer | None = None

    @property
    def unmatched(self) -> list[str]:
        """Names of the requests that found no recorded answer (a copy)."""
        with self._lock:
            return list(self._unmatched)

    @property
    def frames_sent(self) -> int:
        """Server frames sent so far, over all connections (greetings not counted)."""
        with self._lock:
            return self._sent

    def _note_unmatched(self, name: str) -> None:
        with self._lock:
            self._unmatched.append(name)
            self._lock.notify_all()

    def _count_sent(self) -> None:
        with self._lock:
            self._sent += 1
            self._lock.notify_all()

    def wait_sent(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` server frames have been sent; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._sent < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"ReplayTWS sent {self._sent} of {count} frames within {timeout} s")
                self._lock.wait(left)

    def _factory(self) -> _Session:
        legs = self.recording.legs
        leg = legs[self._next_leg % len(legs)]
        self._next_leg += 1
        return _Session(self, leg)

    async def _main(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stop_requested()
        finally:
            self._server.close()
            for session in list(self._sessions):
                session.abort()
            await self._server.wait_closed()
            await asyncio.sleep(0)

    def _start_failed(self, started: bool) -> NoReturn:
        if not started:
            raise RuntimeError("ReplayTWS did not start within 10 s")
        failure = self._failure
        self._abandon()
        raise RuntimeError(f"ReplayTWS could not start on {self.host}:{self.port}: {failure}") from failure
