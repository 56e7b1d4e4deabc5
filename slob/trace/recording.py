"""Session recordings: the JSONL that ``slob trace --record`` writes, and reading it back.

The format extends the real captures' (tests/data/captures/INDEX.md, read by
:func:`slob.trace.captures.load_capture`): line 1 is a JSON header, every further line one
frame ``{"dir", "msg_id", "encoding", "frame_b64", "leg"}`` -- ``frame_b64`` the bytes as
they crossed the socket (4-byte length + payload) -- plus:

* ``"t"``: the wall-clock time the frame arrived at the proxy (Unix seconds);
* ``"leg"``: the proxy's connection number (1, 2, ... in order of arrival; connections may
  overlap);
* the handshake frames, with ``"encoding": "handshake"`` (the client's ``v100..226`` offer,
  sent after the raw ``API\\0``, and the server's version/time greeting), so each leg
  carries its own server version;
* connection events, ``{"t", "leg", "event": "open"|"close"|"malformed"|"raw", "dir",
  "note"[, "data_b64"]}``.

The header is ``{"format": "slob-trace", "format_version": 1, "upstream": "host:port",
"server_version": null, ...}`` (the version is per leg, from its greeting).

:func:`read_events` turns a recording *or* a real capture back into the
:class:`~slob.trace.events.TraceEvent` stream, through the same
:class:`~slob.trace.events.Tracer` as the live proxy, so ``slob decode`` prints the lines
the live trace printed. A real capture has no handshake frames or timestamps: each leg
opens with a greeting made from its header and every time is 0.
:func:`load_recording` gives the per-leg view replay needs.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from slob.ib import wire
from slob.trace.captures import load_capture
from slob.trace.events import CLIENT, SERVER, Kind, TraceEvent, Tracer

__all__ = ["FORMAT", "Leg", "RecordedFrame", "Recorder", "Recording", "load_recording", "read_events"]

FORMAT = "slob-trace"
_DIRS = {CLIENT: "client", SERVER: "server"}
_MARKS = {"client": CLIENT, "server": SERVER}


class Recorder:
    """Writes :class:`TraceEvent` records to a JSONL file as they happen (line-buffered,
    so a killed proxy leaves every line written so far). Use as the proxy's event sink."""

    def __init__(self, path: str | Path, *, upstream: str = "", comments: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("w", encoding="utf-8", buffering=1)
        header = {"format": FORMAT, "format_version": 1, "upstream": upstream,
                  "server_version": None, "comments": list(comments)}
        self._file.write(json.dumps(header) + "\n")

    def __call__(self, event: TraceEvent) -> None:
        self.write(event)

    def write(self, event: TraceEvent) -> None:
        self._file.write(json.dumps(_line(event)) + "\n")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line(event: TraceEvent) -> dict[str, Any]:
    base: dict[str, Any] = {"t": event.t, "leg": event.conn}
    if event.kind in Kind.FRAMES:
        msg_id, encoding = -1, "handshake"
        if event.kind == Kind.MESSAGE:
            msg_id, encoding = _identify(event.payload, event.server_version)
        base.update({"dir": _DIRS[event.direction], "msg_id": msg_id, "encoding": encoding,
                     "frame_b64": base64.b64encode(len(event.payload).to_bytes(4, "big") + event.payload).decode()})
        return base
    base.update({"event": event.kind, "dir": _DIRS.get(event.direction, event.direction), "note": event.note})
    if event.payload:
        base["data_b64"] = base64.b64encode(event.payload).decode()
    return base


def _identify(payload: bytes, sv: int) -> tuple[int, str]:
    try:
        msg = wire.decode_message(payload, sv)
    except wire.WireError:
        return -1, "text"
    return msg.msg_id, "protobuf" if msg.is_protobuf else "text"


# -- reading ------------------------------------------------------------------------------------


def _header(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    try:
        value = json.loads(first)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:1: not a recording or capture header: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}:1: not a recording or capture header")
    return value


def read_events(path: str | Path) -> Iterator[TraceEvent]:
    """The trace events of a ``slob trace --record`` file or a real capture, in order.
    Raises ValueError naming the file and line of a bad line."""
    path = Path(path)
    if _header(path).get("format") == FORMAT:
        yield from _recording_events(path)
    else:
        yield from _capture_events(path)


def _recording_events(path: Path) -> Iterator[TraceEvent]:
    tracer = Tracer()
    with path.open(encoding="utf-8") as f:
        next(f)
        for n, text in enumerate(f, start=2):
            if not text.strip():
                continue
            try:
                d = json.loads(text)
                t, leg, direction = float(d["t"]), int(d["leg"]), d["dir"]
                if "event" in d:
                    kind, note = d["event"], str(d.get("note", ""))
                    if kind == Kind.OPEN:
                        yield tracer.opened(leg, t, note)
                    elif kind == Kind.CLOSE:
                        yield tracer.closed(leg, t, note)
                    elif kind == Kind.MALFORMED:
                        yield tracer.malformed(leg, _MARKS[direction], t, note)
                    elif kind == Kind.RAW:
                        yield tracer.raw(leg, _MARKS[direction], base64.b64decode(d["data_b64"]), t)
                    else:
                        raise ValueError(f"unknown event {kind!r}")
                    continue
                raw = base64.b64decode(d["frame_b64"], validate=True)
                if int.from_bytes(raw[:4], "big") != len(raw) - 4:
                    raise ValueError("length prefix does not match the payload")
                yield tracer.frame(leg, _MARKS[direction], raw[4:], t)
            except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError, binascii.Error too
                raise ValueError(f"{path}:{n}: bad recording line: {exc!r}") from None


def _capture_events(path: Path) -> Iterator[TraceEvent]:
    capture = load_capture(path)
    tracer = Tracer()
    leg_open = 0
    for frame in capture.frames:
        while leg_open < frame.leg:
            leg_open += 1
            hs = capture.handshakes[leg_open - 1]
            tracer.frame(leg_open, CLIENT, b"", 0.0)  # the capture has no hello: mark it seen
            greeting = wire.ServerHello(hs.server_version, hs.connection_time).encode()[4:]
            yield tracer.frame(leg_open, SERVER, greeting, 0.0)
        yield tracer.frame(frame.leg, _MARKS[frame.direction], frame.payload, 0.0)


# -- the replay view ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One frame after the handshake: ``direction`` ``>`` or ``<``, arrival time ``t``
    (0 when the source has none), ``payload`` without the length prefix."""

    t: float
    direction: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Leg:
    """One recorded connection: the greeting's version and time, then its frames."""

    number: int
    server_version: int
    connection_time: str
    frames: tuple[RecordedFrame, ...]


@dataclass(frozen=True, slots=True)
class Recording:
    path: Path
    legs: tuple[Leg, ...]


def load_recording(path: str | Path) -> Recording:
    """The legs of a recording or real capture that have a greeting, in order."""
    path = Path(path)
    greetings: dict[int, wire.ServerHello] = {}
    frames: dict[int, list[RecordedFrame]] = {}
    for event in read_events(path):
        if event.kind == Kind.GREETING:
            try:
                greetings[event.conn] = wire.ServerHello.parse(event.payload)
            except wire.WireError:
                continue
            frames.setdefault(event.conn, [])
        elif event.kind == Kind.MESSAGE and event.conn in greetings:
            frames[event.conn].append(RecordedFrame(event.t, event.direction, event.payload))
    legs = tuple(Leg(n, greetings[n].server_version, greetings[n].connection_time, tuple(frames[n]))
                 for n in sorted(greetings))
    if not legs:
        raise ValueError(f"{path}: no connection with a server greeting to replay")
    return Recording(path, legs)
