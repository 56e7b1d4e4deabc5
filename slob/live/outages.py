"""Outages as gaps in one clock: exchange time.

A :class:`~slob.model.Gap` says "no data could arrive from ``start`` to ``end``" and is
compared with tick timestamps, which are exchange time (TWS's clock, or FakeTWS's
simulated one). Both ends are therefore exchange time:

* ``start``: the moment the outage was noticed (a drop, a silent socket, 1100, 1101),
  mapped from the local clock to exchange time by :class:`ExchangeClock` -- the newest
  tick's timestamp plus the local time elapsed since it arrived. Against a clock that runs
  faster than real time (FakeTWS at speed > 1) the mapping falls short, never beyond the
  true moment, so the gap still covers everything that could have been lost. Before any
  tick, TWS's clock (local time plus the offset measured with REQ_CURRENT_TIME) is used.
  Ticks still delivered before recovery (in flight when the outage was noticed) move the
  start to the newest of them: no delivered tick lies inside a gap.
* ``end``: the timestamp of the first tick delivered after recovery -- the first moment
  data is known to flow again. Until then the outage is open; a market closed for the
  weekend keeps it open until Sunday's first trade, which is the truth: no one knows what
  was missed before data flows.

One outage is one gap however many reconnect attempts, 1100 repeats or 1101s it holds.
Pure: the caller passes monotonic readings in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from slob.model import Gap

__all__ = ["ExchangeClock", "OutageTracker"]


@dataclass
class ExchangeClock:
    """Local monotonic seconds -> exchange time, anchored on the newest tick (or on TWS's
    clock before the first one)."""

    _tick_at: dt.datetime | None = None
    _tick_mono: float = 0.0
    _server_offset: dt.timedelta = dt.timedelta(0)

    def tick(self, timestamp: dt.datetime, mono: float) -> None:
        if self._tick_at is None or timestamp >= self._tick_at:
            self._tick_at, self._tick_mono = timestamp, mono

    def server_offset(self, offset: dt.timedelta) -> None:
        """TWS's clock minus the local one (measured when a session opens)."""
        self._server_offset = offset

    def now(self, mono: float, wall: dt.datetime) -> dt.datetime:
        """Exchange time at local monotonic ``mono`` (``wall``: the local UTC clock then)."""
        if self._tick_at is not None:
            return self._tick_at + dt.timedelta(seconds=max(0.0, mono - self._tick_mono))
        return wall + self._server_offset


@dataclass
class OutageTracker:
    """Opens an outage at its first symptom and closes it, as one Gap, at the first tick
    delivered after recovery."""

    start: dt.datetime | None = None
    cause: str = ""
    recovered: bool = False
    outages: int = 0

    @property
    def open(self) -> bool:
        return self.start is not None

    def begin(self, at: dt.datetime, cause: str) -> bool:
        """The outage starts (True), or was already open (False: same outage)."""
        if self.start is not None:
            self.recovered = False  # e.g. a drop while waiting for the first tick after a 1102
            return False
        self.start, self.cause, self.recovered = at, cause, False
        self.outages += 1
        return True

    def delivered(self, newest: dt.datetime) -> None:
        """Ticks were delivered while the outage is open and not yet recovered (in flight
        from the old session, or the new requests' first ones): data flowed up to
        ``newest``, so the gap starts no earlier."""
        start = self.start
        if start is not None and not self.recovered and newest > start:
            self.start = newest

    def recover(self) -> None:
        """The session streams again; the gap closes at the next tick."""
        if self.start is not None:
            self.recovered = True

    def first_tick(self, timestamp: dt.datetime) -> Gap | None:
        """A tick was delivered: the Gap, if this tick ends a recovered outage."""
        start = self.start
        if start is None or not self.recovered:
            return None
        self.start, self.recovered = None, False
        return Gap(min(start, timestamp), timestamp, self.cause)
