"""Recognising ticks delivered twice across a resubscription.

IB timestamps trades to the second and gives them no id, so a trade is identified by
(symbol, exchange second, price, size) -- ambiguous only for identical trades in the
same second, which are counted per second. After :meth:`Deduplicator.resubscribed`, a
tick older than the newest delivered one for its symbol, or in that same second with a
(price, size) already delivered in it, is a duplicate. The check ends at the first tick
of a later second. Outside that window every tick passes (equal trades in one second are
normal). Pure: no clock, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from slob.model import Tick

__all__ = ["Deduplicator"]


@dataclass
class _Seen:
    second: dt.datetime | None = None
    # (price, size) of each tick delivered in ``second``: a list, counted only when a
    # resubscription needs it, so the common path is one append.
    in_second: list[tuple[float, float]] = field(default_factory=list)
    replaying: Counter[tuple[float, float]] | None = None  # what may come again after a resubscribe


class Deduplicator:
    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self.duplicates = 0

    def resubscribed(self, symbol: str) -> None:
        seen = self._seen.get(symbol)
        if seen is not None and seen.second is not None:
            seen.replaying = Counter(seen.in_second)

    def accept(self, tick: Tick) -> bool:
        """True if ``tick`` is new (and record it), False for a duplicate."""
        seen = self._seen.get(tick.symbol)
        if seen is None:
            seen = self._seen[tick.symbol] = _Seen()
        at = tick.timestamp
        if seen.replaying is not None and seen.second is not None:
            key = (tick.price, tick.size)
            if at < seen.second:
                self.duplicates += 1
                return False
            if at == seen.second and seen.replaying[key] > 0:
                seen.replaying[key] -= 1
                self.duplicates += 1
                return False
            if at > seen.second:
                seen.replaying = None
        if at != seen.second:
            if seen.second is not None and at < seen.second:
                # out of order outside a replay window: deliver, but do not rewind the second
                return True
            seen.second = at
            seen.in_second = []
        seen.in_second.append((tick.price, tick.size))
        return True
