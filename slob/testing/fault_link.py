"""One relayed connection of the fault proxy: a client socket, its upstream socket, and the
frames between them.

Each direction's bytes are cut into named frames (:mod:`slob.testing.fault_frames`); the
proxy's rules (:class:`Rules`) decide each frame's fate as it completes, and what is to be
forwarded goes through an :class:`Outbox` towards the other socket. The outbox is where
time-shaped faults live: while the proxy holds TWS -> client traffic, frames wait there;
while it trickles, they leave one byte at a time; and a cut queued behind a frame happens
only once that frame has been written -- so "cut right after the 2nd PLACE_ORDER" means
TWS got exactly two, and nothing after them.

A frame is forwarded once it is complete: bytes are never changed, only re-chunked at
frame boundaries (the rest of a partial frame waits in the namer; a socket that closes
with a partial frame pending has those bytes forwarded before the close). Everything here
runs on the proxy's event-loop thread.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from dataclasses import dataclass
from typing import Protocol, Union

from slob.testing.fault_frames import CLIENT, RAW, SERVER, FrameNamer, Unit

__all__ = ["Close", "Cut", "Link", "Outbox", "Rules", "Side"]

#: Bytes an outbox may hold (held or trickled traffic) before its source stops being read.
HIGH_WATER = 1 << 20
LOW_WATER = HIGH_WATER // 4


class Rules(Protocol):
    """What a link asks its proxy (implemented by FaultProxy)."""

    def route(self, link: "Link", unit: Unit) -> None:
        """Decide ``unit``'s fate: put it (or not) into ``link.out[unit.direction]``,
        maybe followed by a :class:`Cut`; seal the direction when it ends there."""

    def held(self, direction: str) -> bool:
        """Whether traffic in ``direction`` is held back now."""

    def trickle_interval(self, direction: str) -> float | None:
        """Seconds between single bytes in ``direction``, or None to write at once."""

    def delivered(self, link: "Link", unit: Unit) -> None:
        """``unit`` has been written to its destination socket."""

    def dropped(self, link: "Link", unit: Unit) -> None:
        """``unit`` was queued but will never be written (the connection was cut)."""

    def cut_done(self, link: "Link", cut: "Cut") -> None:
        """A queued :class:`Cut` has just closed ``link``."""

    def link_closed(self, link: "Link") -> None:
        """Both sockets of ``link`` are closed."""


@dataclass(eq=False)
class Cut:
    """Close both sockets when the outbox reaches this point; ``tag`` is the proxy's."""

    reset: bool
    tag: object = None


@dataclass(eq=False)
class Close:
    """The source closed: close the destination after what was queued before this."""


Item = Union[Unit, Cut, Close]


class Side(asyncio.Protocol):
    """One socket of a link; ``direction`` is the direction of the bytes it receives."""

    def __init__(self, link: "Link", direction: str) -> None:
        self.link = link
        self.direction = direction
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.direction == CLIENT:
            transport.pause_reading()  # until the upstream connection is up
            self.link.accepted()

    def data_received(self, data: bytes) -> None:
        self.link.received(self.direction, data)

    def eof_received(self) -> bool | None:
        return None  # close this socket; connection_lost tells the link

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.link.side_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.link.update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.link.update_reading()

    def writable(self) -> bool:
        return self.transport is not None and not self.closed and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.writable():
            assert self.transport is not None
            self.transport.write(data)

    def close(self, *, reset: bool = False) -> None:
        """Close after the transport's buffer is written; ``reset``: end with RST, not FIN."""
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()


class Outbox:
    """Frames on their way out in one direction, and the marks queued between them."""

    def __init__(self, link: "Link", direction: str, dest: Side) -> None:
        self.link = link
        self.direction = direction
        self.dest = dest
        self.items: collections.deque[Item] = collections.deque()
        self.size = 0  # bytes of the queued units not yet written
        self.offset = 0  # bytes of items[0] already written (trickle)
        self.sealed = False  # nothing more goes in (a cut or close is queued)
        self._timer: asyncio.TimerHandle | None = None

    def put(self, item: Item) -> None:
        if self.sealed:
            if isinstance(item, Unit):
                self.link.rules.dropped(self.link, item)
            return
        if isinstance(item, Unit):
            self.size += len(item.data)
        else:
            self.sealed = True
        self.items.append(item)

    def flush(self) -> None:
        """Write what may be written now (none while held; one byte per tick when trickling)."""
        link, rules = self.link, self.link.rules
        while self.items and not link.dead:
            if self._timer is not None or rules.held(self.direction):
                return
            item = self.items[0]
            if isinstance(item, Unit):
                interval = rules.trickle_interval(self.direction)
                end = len(item.data) if interval is None else self.offset + 1
                if not self.dest.writable():
                    self.discard()  # the destination is closing: nothing more arrives there
                    return
                if end == len(item.data):
                    # Counted before the write, so whoever has seen the bytes sees the count.
                    rules.delivered(link, item)
                self.dest.write(item.data[self.offset:end])
                self.size -= end - self.offset
                self.offset = end
                if end == len(item.data):
                    self.items.popleft()
                    self.offset = 0
                if interval is not None:
                    self._timer = asyncio.get_running_loop().call_later(interval, self._tick)
                    return
            elif isinstance(item, Cut):
                self.items.popleft()
                link.cut(item.reset)
                rules.cut_done(link, item)
            else:
                self.items.popleft()
                self.dest.close()
        link.update_reading()

    def _tick(self) -> None:
        self._timer = None
        self.flush()

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def discard(self) -> None:
        """The connection is gone: what waits here is lost, like bytes in a cut cable."""
        self.stop_timer()
        self.sealed = True
        items, self.items = self.items, collections.deque()
        self.size = self.offset = 0
        for item in items:
            if isinstance(item, Unit):
                self.link.rules.dropped(self.link, item)


class Link:
    """A client connection and its own upstream connection."""

    def __init__(self, rules: Rules, conn: int, on_accept: "AcceptHook") -> None:
        self.rules = rules
        self.conn = conn
        self.client = Side(self, CLIENT)
        self.upstream = Side(self, SERVER)
        self.namer = FrameNamer()
        self.out = {CLIENT: Outbox(self, CLIENT, self.upstream), SERVER: Outbox(self, SERVER, self.client)}
        self.dead = False  # cut: both sockets closing, nothing more is relayed
        self.finished = False  # both sockets closed, reported to the proxy
        self.connected = False  # upstream connection up
        self._on_accept = on_accept
        self._reading_paused = {CLIENT: False, SERVER: False}

    def source(self, direction: str) -> Side:
        return self.client if direction == CLIENT else self.upstream

    # -- events from the sockets -------------------------------------------------------

    def accepted(self) -> None:
        self._on_accept(self)

    def upstream_up(self) -> None:
        self.connected = True
        if self.dead or self.client.closed:
            self.upstream.close()
            return
        self.update_reading()
        if self.client.transport is not None and not self._reading_paused[CLIENT]:
            self.client.transport.resume_reading()

    def received(self, direction: str, data: bytes) -> None:
        if self.dead:
            return
        box = self.out[direction]
        for unit in self.namer.feed(direction, data):
            if box.sealed:
                break
            self.rules.route(self, unit)
        box.flush()
        self.update_reading()

    def side_lost(self, side: Side) -> None:
        if not self.dead:
            direction = side.direction
            rest = self.namer.buffered(direction)
            box = self.out[direction]
            if rest and not box.sealed:
                box.put(Unit(direction, RAW, rest))
            box.put(Close())
            box.flush()
            other = SERVER if direction == CLIENT else CLIENT
            self.out[other].discard()  # its destination is this closed socket
        self._check_finished()

    def upstream_failed(self) -> None:
        """The upstream connection could not be made: close the client."""
        self.dead = True
        for box in self.out.values():
            box.discard()
        self.client.close()
        self._check_finished()

    def _check_finished(self) -> None:
        if self.finished:
            return
        upstream_gone = self.upstream.closed or (self.upstream.transport is None and self.dead)
        if self.client.closed and upstream_gone:
            self.finished = True
            self.rules.link_closed(self)

    # -- actions -----------------------------------------------------------------------

    def cut(self, reset: bool) -> None:
        """Close both sockets now; whatever waits in the outboxes is lost."""
        if self.dead:
            return
        self.dead = True
        for box in self.out.values():
            box.discard()
        self.client.close(reset=reset)
        self.upstream.close(reset=reset)
        self._check_finished()

    def abort(self) -> None:
        """Proxy shutdown: drop both sockets at once."""
        self.dead = True
        for box in self.out.values():
            box.discard()
        self.client.abort()
        self.upstream.abort()

    def update_reading(self) -> None:
        """Flow control: stop reading a source whose outbox is full or whose destination's
        socket buffer is; read it again once both have drained."""
        if self.dead:
            return
        for direction, box in self.out.items():
            src = self.source(direction)
            if src.transport is None or src.closed or (direction == CLIENT and not self.connected):
                continue
            paused = self._reading_paused[direction]
            if not paused and (box.size > HIGH_WATER or box.dest.write_paused):
                src.transport.pause_reading()
                self._reading_paused[direction] = True
            elif paused and box.size <= LOW_WATER and not box.dest.write_paused:
                src.transport.resume_reading()
                self._reading_paused[direction] = False


class AcceptHook(Protocol):
    def __call__(self, link: Link) -> None: ...
