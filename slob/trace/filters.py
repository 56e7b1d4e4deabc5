"""Which trace lines to show: by direction, message name and request id.

Filters apply to frame lines (``>`` and ``<``). Connection lines (open, close) and broken
streams (``!``) are always shown: they are rare and they explain everything around them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from slob.trace.describe import Line
from slob.trace.events import CLIENT, SERVER, Kind

__all__ = ["TraceFilter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceFilter:
    """``direction``: ``>`` (client -> TWS), ``<`` (TWS -> client) or None for both;
    ``names``: IB message names or shell patterns (``TICK_*``), any case, any of them
    matches, empty = all; ``req_ids``: request / ticker / order ids, any matches, empty =
    all (a line without an id does not match a non-empty set)."""

    direction: str | None = None
    names: tuple[str, ...] = ()
    req_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.direction not in (None, CLIENT, SERVER):
            raise ValueError(f"direction must be '>' or '<', not {self.direction!r}")

    def accepts(self, line: Line) -> bool:
        event = line.event
        if event.kind not in Kind.FRAMES and event.kind != Kind.RAW:
            return True
        if self.direction is not None and event.direction != self.direction:
            return False
        if self.names and not any(fnmatch.fnmatchcase(line.name, p.upper()) for p in self.names):
            return False
        if self.req_ids and line.req_id not in self.req_ids:
            return False
        return True
