"""Client -> TWS protobuf requests (server version >= 201) read into the named text
fields the fake TWS's handlers use.

IB's client sends a request family as protobuf from the version IB moved it
(``ibapi.common.getServerVersionForMessage``). The body is parsed with IB's generated class
for the message (:mod:`slob.trace.protobuf_table`), then flattened: a top-level field keeps
its name, the fields of the nested ``contract``, ``order``, ``orderCancel`` and
``executionFilter`` messages are named as in the text layouts of
:mod:`slob.trace.tws_requests` (``primaryExch`` -> ``primaryExchange``, ``acctCode`` ->
``account``; REQ_HISTORICAL_DATA's ``duration`` -> ``durationStr``). Values are written as the text protocol would carry them: booleans ``1``/``0``,
integral doubles without a fraction (``20``), others as Python prints them. A field the
client left unset is absent, as an empty text field reads -- except booleans: IB's client
leaves a false one out (PLACE_ORDER's ``transmit``, REQ_HISTORICAL_DATA's ``useRTH``), and
they read ``0`` as the text protocol sends them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ibapi.message import OUT

from slob.trace import protobuf_table

__all__ = ["ProtobufRequestError", "parse_request"]

#: protobuf field name -> the text layout's name for it
_ALIASES = {"primaryExch": "primaryExchange", "acctCode": "account", "marketDataOptions": "mktDataOptions"}
#: per request: protobuf field name -> the text layout's name
_REQUEST_ALIASES = {OUT.REQ_HISTORICAL_DATA: {"duration": "durationStr"}}
#: nested messages whose fields are lifted to the top level
_LIFTED = frozenset({"contract", "order", "orderCancel", "executionFilter"})


class ProtobufRequestError(ValueError):
    """A protobuf request body that IB's class for its id cannot parse (or no class)."""


def _class(msg_id: int) -> Any:
    where = protobuf_table.OUTGOING.get(msg_id)
    if where is None:
        raise ProtobufRequestError(f"no protobuf class for request id {msg_id} in this ibapi")
    module_name, class_name = where.split(".")
    return getattr(importlib.import_module(f"ibapi.protobuf.{module_name}"), class_name)


def _text(value: Any) -> str:
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _false_booleans(descriptor: Any, out: dict[str, str], lift: bool) -> None:
    """Booleans IB's client left out read ``0``, as the text protocol sends them."""
    for fd in descriptor.fields:
        if fd.message_type is not None:
            if lift and fd.name in _LIFTED and fd.label != fd.LABEL_REPEATED:
                _false_booleans(fd.message_type, out, False)
        elif fd.type == fd.TYPE_BOOL and fd.label != fd.LABEL_REPEATED:
            out.setdefault(_ALIASES.get(fd.name, fd.name), "0")


def _flatten(message: Any, out: dict[str, str], lift: bool) -> None:
    for fd, value in message.ListFields():
        name = _ALIASES.get(fd.name, fd.name)
        if fd.label == fd.LABEL_REPEATED:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                out[name] = ";".join(f"{k}={v}" for k, v in value.items())
            elif fd.message_type is None:
                out[name] = ",".join(_text(v) for v in value)
                if fd.name == "specificDates":
                    out["specificDatesCount"] = str(len(value))
            else:
                out[name + "Count"] = str(len(value))
        elif fd.message_type is not None:
            if lift and fd.name in _LIFTED:
                _flatten(value, out, False)
        else:
            out.setdefault(name, _text(value))


def parse_request(msg_id: int, body: bytes) -> tuple[dict[str, str], Any]:
    """The named fields of protobuf request ``msg_id`` and the parsed message itself."""
    cls = _class(msg_id)
    message = cls()
    try:
        message.ParseFromString(body)
    except Exception as exc:  # google.protobuf.message.DecodeError
        raise ProtobufRequestError(f"request {msg_id}: protobuf body does not parse: {exc}") from None
    fields: dict[str, str] = {}
    _flatten(message, fields, True)
    _false_booleans(message.DESCRIPTOR, fields, True)
    for proto_name, text_name in _REQUEST_ALIASES.get(msg_id, {}).items():
        if proto_name in fields:
            fields[text_name] = fields.pop(proto_name)
    return fields, message
