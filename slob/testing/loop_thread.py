"""Moved to :mod:`slob.aio.loop_thread`; this path still imports (a re-export, nothing else)."""

from slob.aio.loop_thread import (  # noqa: F401
    LoopThread as LoopThread,
)

__all__ = [
    "LoopThread",
]
