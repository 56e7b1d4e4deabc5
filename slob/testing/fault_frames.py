"""Name the frames of one TWS API connection, both directions, as the bytes arrive.

Pure: no socket, thread or clock. :class:`FrameNamer` follows one connection's handshake
(the client's ``API\\0`` + version offer, the server's greeting with the negotiated
version) and cuts each direction's bytes into :class:`Unit` s -- the exact bytes of one
frame on the wire, with the message's name -- so a relay can decide frame by frame what to
forward (:class:`~slob.testing.fault_proxy.FaultProxy` does).

Names are IB's own: client -> TWS from ``ibapi.message.OUT``, TWS -> client from
``ibapi.message.IN``; ``HELLO`` and ``GREETING`` for the handshake (as ``slob trace``
shows them), ``UNKNOWN_<id>`` for an id IB does not list, ``UNDECODABLE`` for a frame whose
payload is not a message, and ``RAW`` for bytes after the stream lost its framing (an
oversize length prefix, a client that does not start with ``API\\0``): from then on that
direction can only be relayed as it comes, and each later chunk is one ``RAW`` unit.

The namer never raises for any input, and it never changes a byte: for every way the
bytes are chunked, the units' ``data`` joined, followed by :meth:`FrameNamer.buffered`,
is exactly what was fed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ibapi.message import IN, OUT

from slob.ib import wire

__all__ = [
    "CLIENT",
    "GREETING",
    "HELLO",
    "RAW",
    "SERVER",
    "UNDECODABLE",
    "FrameNamer",
    "Unit",
    "message_name",
    "names",
]

#: Bytes the client sends to TWS.
CLIENT = "client"
#: Bytes TWS sends to the client.
SERVER = "server"
HELLO = "HELLO"
GREETING = "GREETING"
RAW = "RAW"
UNDECODABLE = "UNDECODABLE"

_OUT_NAMES = {int(m): str(m.name) for m in OUT}
_IN_NAMES = {int(m): str(m.name) for m in IN}


def message_name(direction: str, msg_id: int) -> str:
    """IB's name for ``msg_id`` sent in ``direction`` (``CLIENT``: OUT, ``SERVER``: IN)."""
    names = _OUT_NAMES if direction == CLIENT else _IN_NAMES
    return names.get(msg_id, f"UNKNOWN_{msg_id}")


def names(direction: str) -> frozenset[str]:
    """Every name a frame in ``direction`` can get, except ``UNKNOWN_<id>``."""
    table = _OUT_NAMES if direction == CLIENT else _IN_NAMES
    first = HELLO if direction == CLIENT else GREETING
    return frozenset(table.values()) | {first, RAW, UNDECODABLE}


@dataclass(frozen=True, slots=True)
class Unit:
    """One frame as it travels (length prefix included; the client's ``HELLO`` also
    carries the ``API\\0`` before it), or a chunk of ``RAW`` bytes."""

    direction: str
    name: str
    data: bytes
    msg_id: int | None = None


class _Stream:
    """One direction: a frame decoder and the bytes it holds that no unit carried yet."""

    __slots__ = ("decoder", "pending", "prefix", "frames", "failed")

    def __init__(self, expect_api_prefix: bool) -> None:
        self.decoder = wire.FrameDecoder(expect_api_prefix=expect_api_prefix)
        self.pending = bytearray()  # fed, not yet handed out in a unit
        self.prefix = len(wire.API_PREFIX) if expect_api_prefix else 0  # owed to the first unit
        self.frames = 0  # frames handed out so far
        self.failed = False


class FrameNamer:
    """Cuts one connection's two byte streams into named frames; see the module docstring.

    ``server_version`` is 0 until the greeting has been seen. A frame sent before it (a
    client that does not wait for the greeting) is named by sniffing: a text id starts
    with an ASCII digit, a binary id (server version >= 201) with a zero byte.
    """

    def __init__(self) -> None:
        self.server_version = 0
        self._streams = {CLIENT: _Stream(True), SERVER: _Stream(False)}

    def buffered(self, direction: str) -> bytes:
        """Bytes of ``direction`` fed but not yet part of a complete unit."""
        return bytes(self._streams[direction].pending)

    def broken(self, direction: str) -> bool:
        """Whether ``direction`` lost its framing (everything after is ``RAW``)."""
        return self._streams[direction].failed

    def feed(self, direction: str, data: bytes) -> list[Unit]:
        """The units ``data`` completes in ``direction`` (possibly none)."""
        stream = self._streams[direction]
        if stream.failed:
            return [Unit(direction, RAW, bytes(data))] if data else []
        stream.pending += data
        try:
            payloads = stream.decoder.feed(bytes(data))
        except wire.WireError as exc:
            units = [self._unit(direction, stream, p) for p in exc.frames]
            stream.failed = True
            if stream.pending:
                units.append(Unit(direction, RAW, bytes(stream.pending)))
                stream.pending.clear()
            return units
        return [self._unit(direction, stream, p) for p in payloads]

    def _unit(self, direction: str, stream: _Stream, payload: bytes) -> Unit:
        size = stream.prefix + 4 + len(payload)
        stream.prefix = 0
        data = bytes(stream.pending[:size])
        del stream.pending[:size]
        first = stream.frames == 0
        stream.frames += 1
        if first and direction == CLIENT:
            return Unit(direction, HELLO, data)
        if first and direction == SERVER:
            try:
                self.server_version = wire.ServerHello.parse(payload).server_version
            except wire.WireError:
                return Unit(direction, UNDECODABLE, data)
            return Unit(direction, GREETING, data)
        msg_id = _msg_id(payload, self.server_version)
        if msg_id is None:
            return Unit(direction, UNDECODABLE, data)
        return Unit(direction, message_name(direction, msg_id), data, msg_id)


def _msg_id(payload: bytes, server_version: int) -> int | None:
    """The message id of a payload (protobuf ids mapped back to the message's id)."""
    sv = server_version
    if not sv and payload:
        sv = wire.MIN_PROTOBUF_SERVER_VERSION if payload[0] == 0 else 200
    try:
        if sv >= wire.MIN_PROTOBUF_SERVER_VERSION:
            # Only the id is needed: the text body need not be checked here.
            if len(payload) < 4:
                return None
            raw_id = int.from_bytes(payload[:4], "big")
            return raw_id - wire.PROTOBUF_ID_OFFSET if raw_id > wire.PROTOBUF_ID_OFFSET else raw_id
        return wire.decode_message(payload, sv).msg_id
    except wire.WireError:
        return None
