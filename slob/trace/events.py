"""What the trace sees on one API connection, as small records, and the state that reads them.

A :class:`TraceEvent` is one fact about one connection: it opened, a frame crossed it in one
direction, its byte stream broke, or it closed. :class:`Tracer` turns the frames of each
connection into events, remembering per connection whether the handshake is done and which
server version was negotiated (that decides text vs binary-id/protobuf decoding, ibapi
``MIN_SERVER_VER_PROTOBUF`` = 201).

The live proxy (:mod:`slob.trace.proxy`) and ``slob decode`` (:mod:`slob.trace.recording`)
both feed the same :class:`Tracer`, so a recording decodes to exactly the lines the live
trace printed. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slob.ib import wire

__all__ = ["CLIENT", "SERVER", "Kind", "TraceEvent", "Tracer"]

#: Direction marks: client -> TWS and TWS -> client (state lines use "=", problems "!").
CLIENT = ">"
SERVER = "<"


class Kind:
    """The kinds of :class:`TraceEvent` (plain strings, so they serialise as themselves)."""

    OPEN = "open"  # a client connected; ``note``: "peer -> upstream"
    HELLO = "hello"  # the client's version offer (payload after API\0, length-framed)
    GREETING = "greeting"  # the server's first frame: version and connection time
    MESSAGE = "message"  # any later frame
    MALFORMED = "malformed"  # the byte stream broke framing; ``note`` says how
    RAW = "raw"  # bytes forwarded after the stream broke (``payload``: the bytes)
    CLOSE = "close"  # the connection ended; ``note`` says who closed it

    FRAMES = (HELLO, GREETING, MESSAGE)
    ALL = (OPEN, HELLO, GREETING, MESSAGE, MALFORMED, RAW, CLOSE)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One fact about connection ``conn`` at wall-clock time ``t`` (Unix seconds).

    ``direction`` is :data:`CLIENT` or :data:`SERVER` for frames and stream problems, ``=``
    for open/close. ``payload`` is a frame's payload (without its 4-byte length) or, for
    :attr:`Kind.RAW`, the undecoded bytes. ``server_version`` is the version negotiated on
    the connection when the event happened (0 before the greeting).
    """

    t: float
    conn: int
    direction: str
    kind: str
    payload: bytes = b""
    server_version: int = 0
    note: str = ""


@dataclass(slots=True)
class _Conn:
    hello_seen: bool = False
    server_version: int = 0
    greeted: bool = False


@dataclass(slots=True)
class Tracer:
    """Per-connection handshake state; turns frames into :class:`TraceEvent` records."""

    _conns: dict[int, _Conn] = field(default_factory=dict)

    def server_version(self, conn: int) -> int:
        state = self._conns.get(conn)
        return state.server_version if state else 0

    def opened(self, conn: int, t: float, note: str) -> TraceEvent:
        self._conns[conn] = _Conn()
        return TraceEvent(t, conn, "=", Kind.OPEN, note=note)

    def frame(self, conn: int, direction: str, payload: bytes, t: float) -> TraceEvent:
        """The event for one frame payload crossing ``conn`` in ``direction``.

        The client's first frame is its hello; the server's first frame is its greeting,
        whose version (when it parses) governs the frames after it.
        """
        state = self._conns.setdefault(conn, _Conn())
        if direction == CLIENT and not state.hello_seen:
            state.hello_seen = True
            return TraceEvent(t, conn, direction, Kind.HELLO, payload, state.server_version)
        if direction == SERVER and not state.greeted:
            state.greeted = True
            try:
                state.server_version = wire.ServerHello.parse(payload).server_version
            except wire.WireError:
                pass  # described as a bad greeting; later frames decode as text
            return TraceEvent(t, conn, direction, Kind.GREETING, payload, state.server_version)
        return TraceEvent(t, conn, direction, Kind.MESSAGE, payload, state.server_version)

    def malformed(self, conn: int, direction: str, t: float, error: str) -> TraceEvent:
        return TraceEvent(t, conn, direction, Kind.MALFORMED, b"", self.server_version(conn), error)

    def raw(self, conn: int, direction: str, data: bytes, t: float) -> TraceEvent:
        return TraceEvent(t, conn, direction, Kind.RAW, data, self.server_version(conn))

    def closed(self, conn: int, t: float, note: str) -> TraceEvent:
        sv = self.server_version(conn)
        self._conns.pop(conn, None)
        return TraceEvent(t, conn, "=", Kind.CLOSE, b"", sv, note)
