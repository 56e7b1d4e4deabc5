"""The TWS API wire codec: pure bytes in, frames and fields out.

Shared by slob's client reader thread, the fake TWS and the trace tool. It does
no I/O and holds no socket, thread or event loop.

The protocol, as IB's own client speaks it (ibapi 10.50, ``comm.py``/``client.py``):

* Handshake, client -> server: the raw bytes ``API\\0`` (no length prefix), then one
  length-prefixed payload ``v{min}..{max}`` with optional connect options after a
  space (``v100..226 +PACEAPI``); that payload is not NUL-terminated.
* Handshake, server -> client: one frame of two NUL-terminated text fields, the
  negotiated server version and the connection time (``200\\0 20260405 23:49:26 CET\\0``).
* Every later message: a 4-byte big-endian length, then the payload (at most
  ``MAX_MSG_LEN`` = 0xFFFFFF bytes).
* Server version < 201: the payload is NUL-terminated text fields, the first one the
  message id in ASCII (``9\\0 1\\0 117\\0``).
* Server version >= 201 (``MIN_SERVER_VER_PROTOBUF``): the payload starts with the
  message id as 4 big-endian bytes. An id above 200 means a protobuf body follows and
  the message is id - 200; otherwise NUL-terminated text fields follow.

Errors: every violation raises a :class:`WireError` subclass -- :class:`FrameTooLong`,
:class:`BadHandshake` or :class:`MalformedMessage` -- and nothing else.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

__all__ = [
    "API_PREFIX",
    "MAX_MSG_LEN",
    "MIN_PROTOBUF_SERVER_VERSION",
    "PROTOBUF_ID_OFFSET",
    "BadHandshake",
    "ClientHello",
    "FrameDecoder",
    "FrameTooLong",
    "MalformedMessage",
    "Message",
    "ServerHello",
    "WireError",
    "decode_message",
    "encode_fields",
    "encode_message",
    "encode_protobuf_message",
    "frame",
    "split_fields",
]

API_PREFIX = b"API\x00"
#: Largest payload either side accepts (ibapi const.MAX_MSG_LEN, TWS the same).
MAX_MSG_LEN = 0xFFFFFF
#: From this server version on, message ids travel as 4 binary bytes (ibapi MIN_SERVER_VER_PROTOBUF).
MIN_PROTOBUF_SERVER_VERSION = 201
#: Binary ids above this carry a protobuf body for message (id - 200) (ibapi PROTOBUF_MSG_ID).
PROTOBUF_ID_OFFSET = 200

_HEADER = 4
_LENGTH = struct.Struct(">I")  # a frame's length prefix


class WireError(ValueError):
    """The byte stream breaks the TWS wire protocol.

    ``frames`` holds the complete frames that preceded the violation in the same
    :meth:`FrameDecoder.feed` call, so a caller can still process them; ``offset`` is
    the position of the violation in the whole stream fed so far (or -1).
    """

    def __init__(self, message: str, *, offset: int = -1, frames: Iterable[bytes] = ()) -> None:
        super().__init__(message)
        self.offset = offset
        self.frames: list[bytes] = list(frames)


class FrameTooLong(WireError):
    """A length prefix announces more than the protocol maximum: the stream cannot be
    re-synchronised, so the decoder refuses everything after it."""


class BadHandshake(WireError):
    """The connection did not open with ``API\\0`` and a ``v{min}..{max}`` version range,
    or the server's greeting is not ``version, time``."""


class MalformedMessage(WireError):
    """A frame's payload is not a valid message: empty, no message id, a text payload
    that is not NUL-terminated, or a binary id that is too short."""


# ---------------------------------------------------------------------------
# Handshake


_HELLO = re.compile(rb"v(\d{1,9})\.\.(\d{1,9})(?: (.*))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The client's offer: the range of server versions it speaks, plus options."""

    min_version: int
    max_version: int
    options: str = ""

    def payload(self) -> bytes:
        text = f"v{self.min_version}..{self.max_version}"
        if self.options:
            text += " " + self.options
        if not text.isascii():
            raise BadHandshake(f"connect options {self.options!r} are not ASCII")
        return text.encode("ascii")

    def encode(self) -> bytes:
        """The exact bytes a client sends first: ``API\\0`` + one length-prefixed payload."""
        return API_PREFIX + frame(self.payload())

    @classmethod
    def parse(cls, payload: bytes) -> "ClientHello":
        m = _HELLO.fullmatch(payload)
        if m is None:
            raise BadHandshake(
                f"client version offer {payload[:40]!r} is not 'v<min>..<max>[ <options>]'; "
                "only clients of API version 100 or later (length-prefixed handshake) are supported"
            )
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise BadHandshake(f"client version offer v{lo}..{hi} has min above max")
        try:
            options = (m.group(3) or b"").decode("ascii")
        except UnicodeDecodeError as exc:
            raise BadHandshake(f"connect options {m.group(3)!r} are not ASCII") from exc
        return cls(lo, hi, options)


@dataclass(frozen=True, slots=True)
class ServerHello:
    """The server's answer: the negotiated version and its connection time text."""

    server_version: int
    connection_time: str

    def encode(self) -> bytes:
        return frame(encode_fields((self.server_version, self.connection_time)))

    @classmethod
    def parse(cls, payload: bytes) -> "ServerHello":
        try:
            fields = split_fields(payload)
        except MalformedMessage as exc:
            raise BadHandshake(f"server greeting {payload[:60]!r} is not NUL-terminated text") from exc
        if len(fields) != 2 or not fields[0].isdigit() or len(fields[0]) > 9:
            raise BadHandshake(
                f"server greeting {payload[:60]!r} is not two fields '<version>\\0<time>\\0'"
            )
        return cls(int(fields[0]), fields[1].decode("ascii", "replace"))


# ---------------------------------------------------------------------------
# Frames and fields


def frame(payload: bytes, max_len: int = MAX_MSG_LEN) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    n = len(payload)
    if n > max_len:
        raise FrameTooLong(f"payload of {n} bytes exceeds the protocol maximum of {max_len}")
    return n.to_bytes(4, "big") + payload


def _field_text(value: object) -> str:
    if value is None:
        raise MalformedMessage("None cannot be sent as a field; send '' for an unset value")
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, (bytes, bytearray)):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedMessage(f"bytes field {bytes(value)[:20]!r} is not ASCII; pass str") from None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode_fields(fields: Iterable[object]) -> bytes:
    """Join values as NUL-terminated ASCII text fields (bool -> 0/1).

    Text that is not ASCII is escaped the way TWS does since server version 153
    (``ENCODE_MSG_ASCII7``): backslash escapes, which IB's client reads back with the
    ``unicode-escape`` codec.
    """
    parts = []
    for value in fields:
        text = _field_text(value)
        if "\x00" in text:
            raise MalformedMessage(f"field {text!r} contains NUL, the field terminator")
        if not text.isascii():
            text = text.encode("unicode-escape").decode("ascii")
        parts.append(text)
        parts.append("\x00")
    return "".join(parts).encode("ascii")


def split_fields(payload: bytes) -> tuple[bytes, ...]:
    """Split a NUL-terminated text payload into its fields (the last NUL ends the last field)."""
    if not payload:
        raise MalformedMessage("empty text payload: a message needs at least its id field")
    if payload[-1] != 0:
        raise MalformedMessage(
            f"text payload does not end with NUL (last bytes {payload[-12:]!r}); truncated frame?"
        )
    return tuple(payload[:-1].split(b"\x00"))


# ---------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message: its id and either text fields or a protobuf body.

    ``fields`` excludes the message id. For protobuf messages ``msg_id`` is already the
    real id (binary id - 200) and ``fields`` is empty.
    """

    msg_id: int
    fields: tuple[bytes, ...] = ()
    protobuf: bytes | None = None

    @property
    def is_protobuf(self) -> bool:
        return self.protobuf is not None

    def text(self, index: int) -> str:
        return self.fields[index].decode("ascii", "replace")


def encode_message(msg_id: int, fields: Iterable[object], server_version: int) -> bytes:
    """A complete frame for a text message at ``server_version``."""
    body = encode_fields(fields)
    if server_version >= MIN_PROTOBUF_SERVER_VERSION:
        if not 0 <= msg_id <= PROTOBUF_ID_OFFSET:
            # A larger binary id would be read back as a protobuf message (id - 200).
            raise MalformedMessage(
                f"text message id {msg_id} is outside 0..{PROTOBUF_ID_OFFSET}, "
                f"the range of binary text ids from server version {MIN_PROTOBUF_SERVER_VERSION}"
            )
        return frame(msg_id.to_bytes(4, "big") + body)
    return frame(encode_fields((msg_id,)) + body)


def encode_protobuf_message(msg_id: int, body: bytes) -> bytes:
    """A complete frame for a protobuf message (server version >= 201)."""
    if not 0 < msg_id <= 0xFFFFFFFF - PROTOBUF_ID_OFFSET:
        # Id 0 would travel as 200, which reads back as a text message.
        raise MalformedMessage(f"protobuf message id {msg_id} does not fit the binary id field")
    return frame((msg_id + PROTOBUF_ID_OFFSET).to_bytes(4, "big") + body)


def decode_message(payload: bytes, server_version: int) -> Message:
    """Decode one frame's payload as sent at ``server_version`` (either direction)."""
    if server_version >= MIN_PROTOBUF_SERVER_VERSION:
        if len(payload) < 4:
            raise MalformedMessage(
                f"payload of {len(payload)} bytes is shorter than the 4-byte binary message id "
                f"used from server version {MIN_PROTOBUF_SERVER_VERSION}"
            )
        raw_id = int.from_bytes(payload[:4], "big")
        if raw_id > PROTOBUF_ID_OFFSET:
            return Message(raw_id - PROTOBUF_ID_OFFSET, (), bytes(payload[4:]))
        return Message(raw_id, split_fields(payload[4:]) if len(payload) > 4 else ())
    fields = split_fields(payload)
    head = fields[0]
    if not head.isdigit() or len(head) > 9:
        raise MalformedMessage(f"message id field {head[:20]!r} is not a number")
    return Message(int(head), fields[1:])


# ---------------------------------------------------------------------------
# Incremental framing


class FrameDecoder:
    """Cuts a byte stream into frame payloads, however the bytes arrive.

    ``feed(data)`` returns the payloads completed by ``data`` (possibly none). With
    ``expect_api_prefix=True`` (the server side) the stream must begin with ``API\\0``.
    After a :class:`WireError` the decoder is failed: the stream has lost its framing,
    so every later ``feed`` raises again rather than guess where frames restart.
    """

    __slots__ = ("_parts", "_pending", "_need", "_consumed", "_need_prefix", "_max_len", "_error")

    def __init__(self, *, max_len: int = MAX_MSG_LEN, expect_api_prefix: bool = False) -> None:
        # Bytes of an incomplete frame, kept as the pieces that arrived: joined once when
        # enough are here (``_need``), so a large frame in many reads costs one copy.
        self._parts: list[bytes] = []
        self._pending = 0  # total length of _parts
        self._need = 0  # bytes needed before parsing can progress
        self._consumed = 0  # stream offset of the first byte in _parts
        self._need_prefix = expect_api_prefix
        self._max_len = max_len
        self._error: WireError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return self._pending

    @property
    def failed(self) -> WireError | None:
        return self._error

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise type(self._error)(
                f"stream already failed: {self._error}", offset=self._error.offset
            )
        if type(data) is not bytes:
            data = bytes(data)
        if self._parts:
            self._parts.append(data)
            self._pending += len(data)
            if self._pending < self._need:
                return []
            buf = b"".join(self._parts)
            self._parts = []
        else:
            buf = data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        if self._need_prefix:
            have = buf[:4]
            if not API_PREFIX.startswith(have):
                self._fail(
                    BadHandshake(
                        f"connection does not start with API\\0 (got {have!r}); "
                        "is this a TWS API client?",
                        offset=self._consumed,
                    ),
                    out,
                )
            if len(have) < 4:
                self._keep(buf, 0, 0)  # need 0: check each byte of the prefix as it comes
                return out
            pos = 4
            self._need_prefix = False
        max_len = self._max_len
        unpack = _LENGTH.unpack_from
        need = _HEADER
        while end - pos >= _HEADER:
            (size,) = unpack(buf, pos)
            if size > max_len:
                self._consumed += pos
                self._fail(
                    FrameTooLong(
                        f"frame at stream offset {self._consumed} announces {size} bytes, "
                        f"more than the protocol maximum of {max_len}; the stream is corrupt "
                        "and cannot be re-synchronised",
                        offset=self._consumed,
                    ),
                    out,
                )
            stop = pos + _HEADER + size
            if stop > end:
                need = _HEADER + size
                break
            out.append(buf[pos + _HEADER : stop])
            pos = stop
        self._keep(buf, pos, need)
        return out

    def _keep(self, buf: bytes, pos: int, need: int) -> None:
        """Keep ``buf[pos:]`` (an incomplete frame) until ``need`` bytes of it are here."""
        self._consumed += pos
        if pos < len(buf):
            rest = buf[pos:] if pos else buf
            self._parts = [rest]
            self._pending = len(rest)
            self._need = need
        else:
            self._pending = self._need = 0

    def _fail(self, error: WireError, frames: list[bytes]) -> None:
        error.frames = frames
        self._error = error
        self._parts = []
        self._pending = self._need = 0
        raise error
