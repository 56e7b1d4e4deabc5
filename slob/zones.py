"""Moved to :mod:`slob.ib.zones`; this path still imports (a re-export, nothing else)."""

from slob.ib.zones import (  # noqa: F401
    ib_zone as ib_zone,
)

__all__ = [
    "ib_zone",
]
