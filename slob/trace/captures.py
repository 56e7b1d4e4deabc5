"""Real TWS / IB Gateway wire captures, loaded from their ``.jsonl`` files.

Line 1 is a JSON header (``server_version``, ``connection_time``, provenance and, for files
of several connections, ``handshakes``: ``{"after_frame", "value": {"server_version",
"connection_time"}}`` per leg); every further line one frame in wire order, ``{"dir",
"msg_id", "encoding", "frame_b64"[, "leg"]}``, ``frame_b64`` being the bytes as they crossed
the socket (4-byte big-endian length, payload). :func:`load_capture` checks each frame
(base64, length, message id) and raises ValueError naming the file and line of a bad one.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Capture", "CapturedFrame", "Handshake", "load_capture"]

Direction = Literal["server", "client"]
Encoding = Literal["text", "protobuf"]
_PROTOBUF_OFFSET = 200  # binary ids above this carry a protobuf body (ibapi PROTOBUF_MSG_ID)


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One captured frame; ``payload`` excludes the 4-byte length prefix."""

    direction: Direction
    msg_id: int  # the real message id (a protobuf frame's binary id minus 200)
    encoding: Encoding
    payload: bytes
    leg: int = 1  # which connection of a multi-leg capture, from 1

    @property
    def binary_id(self) -> bool:  # 4 binary id bytes (server version >= 201), not ASCII
        return self.payload[:1] == b"\x00"

    @property
    def body(self) -> bytes:
        """The payload after the message id: a protobuf message or NUL-terminated fields."""
        return self.payload[4:] if self.binary_id else self.payload[self.payload.index(b"\x00") + 1:]

    @property
    def fields(self) -> tuple[bytes, ...]:
        """A text frame's fields after the id, as ibapi's ``comm.read_fields`` gives them."""
        if self.encoding != "text":
            raise ValueError(f"message {self.msg_id} is protobuf, it has no text fields")
        return tuple(self.body.split(b"\x00")[:-1])


@dataclass(frozen=True, slots=True)
class Handshake:
    """The server's greeting that opens one leg (connection) of a capture."""

    after_frame: int  # how many frames of the file precede it
    server_version: int
    connection_time: str


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture file: its header, one handshake per leg, and its frames in order."""

    path: Path
    header: dict[str, Any]
    handshakes: tuple[Handshake, ...]  # one per leg, in order
    frames: list[CapturedFrame]

    @property
    def server_version(self) -> int:  # the first leg's; see server_version_of
        return self.handshakes[0].server_version

    def server_version_of(self, frame: CapturedFrame) -> int:
        """The server version in force on the connection that carried ``frame``."""
        return self.handshakes[frame.leg - 1].server_version


def load_capture(path: str | Path) -> Capture:
    """Read and check one ``.jsonl`` capture file."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines() or [""]
    header = _json(path, 1, lines[0])
    legs = header.get("handshakes") or [{"after_frame": 0, "value": header}]
    try:
        handshakes = tuple(Handshake(int(h["after_frame"]), int(h["value"]["server_version"]),
                                     str(h["value"]["connection_time"])) for h in legs)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}:1: header lacks server_version/connection_time: {exc!r}") from None
    frames = [_frame(path, n, line, len(handshakes))
              for n, line in enumerate(lines[1:], start=2) if line.strip()]
    return Capture(path, header, handshakes, frames)


def _json(path: Path, line_no: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{line_no}: not JSON: {exc}") from None
    if isinstance(value, dict):
        return value
    raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(value).__name__}")


def _frame(path: Path, line_no: int, line: str, legs: int) -> CapturedFrame:
    where = f"{path}:{line_no}"
    d = _json(path, line_no, line)
    try:
        direction, encoding, msg_id = d["dir"], d["encoding"], int(d["msg_id"])
        raw = base64.b64decode(d["frame_b64"], validate=True)
        leg = int(d.get("leg", 1))
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise ValueError(f"{where}: bad frame line: {exc!r}") from None
    if direction not in ("server", "client") or encoding not in ("text", "protobuf"):
        raise ValueError(f"{where}: bad dir {direction!r} or encoding {encoding!r}")
    if not 1 <= leg <= legs:
        raise ValueError(f"{where}: leg {leg} outside the header's {legs} handshake(s)")
    payload = raw[4:]
    announced = int.from_bytes(raw[:4], "big")
    if len(raw) < 5 or announced != len(payload):
        raise ValueError(f"{where}: length prefix says {announced} bytes, payload has {len(payload)}")
    frame = CapturedFrame(direction, msg_id, encoding, payload, leg)
    if frame.binary_id:  # id > 200 means protobuf for message id - 200
        wire_id = int.from_bytes(payload[:4], "big") - (_PROTOBUF_OFFSET if encoding == "protobuf" else 0)
    else:  # ASCII id field, classic text only
        head = payload.split(b"\x00", 1)[0]
        wire_id = int(head) if encoding == "text" and head.isdigit() and b"\x00" in payload else -1
    if wire_id != msg_id:
        raise ValueError(f"{where}: payload does not carry message id {msg_id} as {encoding}")
    return frame
