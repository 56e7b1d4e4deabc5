"""One trace event -> one display line. Pure; never raises for any event.

A line reads ``<time UTC> <conn> <dir> <NAME> [id=<req id>] <field>=<value> ...``:

* ``dir`` is ``>`` client -> TWS, ``<`` TWS -> client, ``=`` connection state, ``!`` a
  broken stream;
* ``NAME`` is IB's own name from ``ibapi.message.OUT`` (client -> TWS) or ``IN``
  (TWS -> client), ``HELLO``/``GREETING`` for the handshake, ``UNKNOWN_<id>`` otherwise;
* ``id`` is the request, ticker or order id the message belongs to, when it has one;
* the fields are named for the common messages (handshake, START_API, contract data,
  market data, tick-by-tick, orders, executions, positions, errors: see
  :mod:`slob.trace.layouts` and :func:`slob.trace.tws_requests.layout`), empty ones
  left out; other text messages show ``fields=a|b|c`` (every field, ``|`` between);
  protobuf messages (server version >= 201) are parsed with IB's generated classes
  (:mod:`slob.trace.protobuf_table`) and show their set fields, nested ones dotted;
* ERR_MSG lines add ``meaning=`` from slob's error table (:mod:`slob.ib.errors`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from ibapi.message import IN, OUT

from slob.ib import wire
from slob.ib.errors import classify
from slob.trace.tws_requests import layout as request_layout
from slob.trace import protobuf_table
from slob.trace.events import CLIENT, Kind, TraceEvent
from slob.trace.layouts import REQ_ID_NAMES, incoming_layout

__all__ = ["Line", "describe", "message_name"]

_IN_NAMES = {int(m): str(m.name) for m in IN}
_OUT_NAMES = {int(m): str(m.name) for m in OUT}
_MAX_VALUE = 200  # characters of one value shown before "..."
_MAX_RAW = 64  # bytes of an undecodable payload shown in hex


@dataclass(frozen=True, slots=True)
class Line:
    """A described event: its message name and request id (for filters) and the text."""

    event: TraceEvent
    name: str
    req_id: int | None
    text: str


def message_name(direction: str, msg_id: int) -> str:
    """IB's name for ``msg_id`` travelling in ``direction`` (``>`` or ``<``)."""
    names = _OUT_NAMES if direction == CLIENT else _IN_NAMES
    return names.get(msg_id, f"UNKNOWN_{msg_id}")


def clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%H:%M:%S.%f")


def describe(event: TraceEvent) -> Line:
    """The display line for ``event``; any payload gives one line, never an exception."""
    try:
        name, req_id, body = _body(event)
    except Exception as exc:  # a bug here must not stop the trace: show the bytes
        name, req_id = "UNDECODED", None
        body = f"{name} ({type(exc).__name__}: {exc}) bytes={_hex(event.payload)}"
    direction = "!" if event.kind == Kind.MALFORMED else event.direction
    text = f"{clock(event.t)} {event.conn} {direction} {body}"
    return Line(event, name, req_id, text.replace("\n", "\\n").replace("\r", "\\r"))


def _body(event: TraceEvent) -> tuple[str, int | None, str]:
    kind = event.kind
    if kind == Kind.OPEN:
        return "OPEN", None, f"OPEN {event.note}"
    if kind == Kind.CLOSE:
        return "CLOSE", None, f"CLOSE {event.note}"
    if kind == Kind.MALFORMED:
        return "MALFORMED", None, f"MALFORMED {'client' if event.direction == CLIENT else 'TWS'} stream: {event.note}"
    if kind == Kind.RAW:
        return "RAW", None, f"RAW {len(event.payload)} bytes forwarded undecoded: {_hex(event.payload)}"
    if kind == Kind.HELLO:
        return "HELLO", None, _hello(event.payload)
    if kind == Kind.GREETING:
        return "GREETING", None, _greeting(event.payload)
    return _message(event)


def _hello(payload: bytes) -> str:
    try:
        hello = wire.ClientHello.parse(payload)
    except wire.WireError as exc:
        return f"HELLO (bad: {exc})"
    text = f"HELLO minVersion={hello.min_version} maxVersion={hello.max_version}"
    return text + (f" options={_quote(hello.options)}" if hello.options else "")


def _greeting(payload: bytes) -> str:
    try:
        hello = wire.ServerHello.parse(payload)
    except wire.WireError as exc:
        return f"GREETING (bad: {exc})"
    return f"GREETING serverVersion={hello.server_version} connectionTime={_quote(hello.connection_time)}"


def _message(event: TraceEvent) -> tuple[str, int | None, str]:
    try:
        msg = wire.decode_message(event.payload, event.server_version)
    except wire.WireError as exc:
        return "UNDECODABLE", None, f"UNDECODABLE ({exc}) bytes={_hex(event.payload)}"
    name = message_name(event.direction, msg.msg_id)
    if msg.protobuf is not None:
        pairs = _protobuf_pairs(event.direction, msg.msg_id, msg.protobuf)
        if pairs is None:
            return name, None, f"{name} protobuf({len(msg.protobuf)} bytes)={_hex(msg.protobuf)}"
        return _render(name, msg.msg_id, event.direction, pairs, protobuf=True)
    texts = tuple(f.decode("ascii", "backslashreplace") for f in msg.fields)
    names = _text_layout(event.direction, msg.msg_id, event.server_version, texts)
    if names is None:
        return name, None, f"{name} fields={'|'.join(texts)}"
    pairs = list(zip(names, texts))
    rest = texts[len(names):]
    if rest:
        pairs.append(("more", "|".join(rest)))
    return _render(name, msg.msg_id, event.direction, pairs, protobuf=False)


def _text_layout(direction: str, msg_id: int, sv: int, texts: tuple[str, ...]) -> tuple[str, ...] | None:
    if direction == CLIENT:
        names = request_layout(msg_id, min(sv, 200) if sv else 200)
        return names or (() if not texts and msg_id in _OUT_NAMES else None)
    return incoming_layout(msg_id, sv, texts)


def _render(name: str, msg_id: int, direction: str, pairs: list[tuple[str, str]],
            *, protobuf: bool) -> tuple[str, int | None, str]:
    req_id: int | None = None
    for key in REQ_ID_NAMES:
        for i, (k, v) in enumerate(pairs):
            if k == key:
                try:
                    req_id = int(v)
                except ValueError:
                    continue
                del pairs[i]
                break
        if req_id is not None:
            break
    parts = [name] + ([f"id={req_id}"] if req_id is not None else [])
    parts += [f"{k}={_quote(v)}" for k, v in pairs if v != "" and k != "version"]
    if direction != CLIENT and msg_id == IN.ERR_MSG:
        code = dict(pairs).get("code" if not protobuf else "errorCode", "")
        if code.lstrip("-").isdigit():
            info = classify(int(code))
            parts.append(f"meaning={_quote(f'{info.category}, {info.severity.value}: {info.hint}')}")
    return name, req_id, " ".join(parts)


# -- protobuf ------------------------------------------------------------------------------


def parse_protobuf(direction: str, msg_id: int, body: bytes) -> Any | None:
    """The body as IB's generated class for ``msg_id`` in that direction (``CLIENT`` for
    client-to-TWS), or None: no class for the id in this ibapi, or the bytes do not parse."""
    table = protobuf_table.OUTGOING if direction == CLIENT else protobuf_table.INCOMING
    where = table.get(msg_id)
    if where is None:
        return None
    module_name, class_name = where.split(".")
    try:
        cls = getattr(importlib.import_module(f"ibapi.protobuf.{module_name}"), class_name)
        message = cls()
        message.ParseFromString(body)
    except Exception:  # DecodeError, or a class missing from this ibapi
        return None
    return message


def _protobuf_pairs(direction: str, msg_id: int, body: bytes) -> list[tuple[str, str]] | None:
    message = parse_protobuf(direction, msg_id, body)
    return None if message is None else list(_flatten(message, ""))


def _flatten(message: Any, prefix: str) -> Iterable[tuple[str, str]]:
    for fd, value in message.ListFields():
        key = prefix + fd.name
        if fd.message_type is not None and fd.label != fd.LABEL_REPEATED:
            yield from _flatten(value, key + ".")
        elif fd.label == fd.LABEL_REPEATED:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                yield key, json.dumps({str(k): _scalar(v) for k, v in value.items()})
            elif fd.message_type is not None:
                for i, item in enumerate(value):
                    yield from _flatten(item, f"{key}[{i}].")
            else:
                yield key, "[" + ",".join(_scalar(v) for v in value) + "]"
        else:
            yield key, _scalar(value)


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "ListFields"):
        return "{" + " ".join(f"{k}={v}" for k, v in _flatten(value, "")) + "}"
    return str(value)


# -- text helpers ----------------------------------------------------------------------------


def _quote(value: str) -> str:
    if len(value) > _MAX_VALUE:
        value = value[:_MAX_VALUE] + "..."
    if value == "" or any(c in value for c in " =\"|") or not value.isprintable():
        return json.dumps(value)
    return value


def _hex(data: bytes) -> str:
    shown = data[:_MAX_RAW].hex()
    return shown + ("..." if len(data) > _MAX_RAW else "")
