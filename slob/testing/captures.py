"""Moved to :mod:`slob.trace.captures`; this path still imports (a re-export, nothing else)."""

from slob.trace.captures import (  # noqa: F401
    Capture as Capture,
    CapturedFrame as CapturedFrame,
    Handshake as Handshake,
    load_capture as load_capture,
)

__all__ = [
    "Capture",
    "CapturedFrame",
    "Handshake",
    "load_capture",
]
