"""Moved to :mod:`slob.trace.tws_requests`; this path still imports (a re-export, nothing else)."""

from slob.trace.tws_requests import (  # noqa: F401
    Request as Request,
    RequestError as RequestError,
    decode_request as decode_request,
    layout as layout,
    request_name as request_name,
)

__all__ = [
    "Request",
    "RequestError",
    "decode_request",
    "layout",
    "request_name",
]
