"""Moved to :mod:`slob.trace.tws_proto_requests`; this path still imports (a re-export, nothing else)."""

from slob.trace.tws_proto_requests import (  # noqa: F401
    ProtobufRequestError as ProtobufRequestError,
    parse_request as parse_request,
)

__all__ = [
    "ProtobufRequestError",
    "parse_request",
]
