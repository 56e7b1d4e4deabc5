"""Outages as gaps in one clock: exchange time.

A :class:`~slob.model.Gap` says "no data could arrive from ``start`` to ``end``" and is
compared with tick timestamps, which are exchange time (TWS's clock, or FakeTWS's
simulated one). Both ends are therefore exchange time:

* ``start``: the moment the stream was last known complete -- the last frame received,
  mapped from the local clock to exchange time by :class:`ExchangeClock` (the newest
  tick's timestamp plus the local time elapsed since it arrived; before any tick, TWS's
  clock) and floored to the second. Against a clock that runs faster than real time
  (FakeTWS at speed > 1) the mapping falls short, never beyond the true moment, so the
  gap still covers everything that could have been lost.
* ``end``: the timestamp of the first tick of new data -- the first moment data is known
  to flow again. Until then the outage is open; a market closed for the
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
    clock before the first one).

    Thread-safe for one writer of :meth:`tick` (the thread that delivers ticks: the event
    loop, or the reader thread in the zero-hop lane) and readers on any thread: the anchor
    is one tuple, replaced whole, so :meth:`now` never pairs one tick's timestamp with
    another's arrival time."""

    _anchor: tuple[dt.datetime, float] | None = None  # (newest tick's timestamp, its monotonic arrival)
    _server_offset: dt.timedelta = dt.timedelta(0)

    def tick(self, timestamp: dt.datetime, mono: float) -> None:
        anchor = self._anchor
        if anchor is None or timestamp >= anchor[0]:
            self._anchor = (timestamp, mono)

    def server_offset(self, offset: dt.timedelta) -> None:
        """TWS's clock minus the local one (measured when a session opens)."""
        self._server_offset = offset

    def now(self, mono: float, wall: dt.datetime) -> dt.datetime:
        """Exchange time at local monotonic ``mono`` (``wall``: the local UTC clock then)."""
        anchor = self._anchor
        if anchor is not None:
            return anchor[0] + dt.timedelta(seconds=max(0.0, mono - anchor[1]))
        return wall + self._server_offset


@dataclass
class OutageTracker:
    """Opens an outage at its first symptom and closes it, as one Gap, at the first tick
    of new data.

    The start is the moment the stream was last known complete: TWS sends in order, so
    the last frame received (of any kind) proves every earlier tick arrived; mapped to
    exchange time and floored to the second (trade times are whole seconds). Ticks still
    delivered afterwards that were already on their way -- queued behind the outage's
    notice, or sent on the requests that died -- move it forward. Data on a request made
    during the outage (a :class:`~slob.ib.client.SubscriptionLive` on the bridge), or after
    1102 (the same requests, flowing again), is new: the first such tick ends the gap.
    Both signals come through the bridge, in order with the ticks, so no tick of either
    kind is taken for the other.
    """

    start: dt.datetime | None = None
    cause: str = ""
    new_data: bool = False
    outages: int = 0

    @property
    def open(self) -> bool:
        return self.start is not None

    def begin(self, complete_until: dt.datetime, cause: str) -> bool:
        """The outage starts (True), or was already open (False: same outage, which a new
        failure keeps open even if new data had begun)."""
        if self.start is not None:
            return False
        self.start, self.cause, self.new_data = complete_until.replace(microsecond=0), cause, False
        self.outages += 1
        return True

    def delivered(self, timestamp: dt.datetime) -> None:
        """A tick of old data was delivered: data flowed up to it."""
        start = self.start
        if start is not None and timestamp > start:
            self.start = timestamp

    def data_resumed(self) -> None:
        """New data begins on the bridge (a request made during the outage is live, or 1102)."""
        if self.start is not None:
            self.new_data = True

    def tick(self, timestamp: dt.datetime) -> Gap | None:
        """A tick is about to be delivered while the outage is open: the Gap when it is the
        first of new data (emit it before the tick), else it is old data."""
        start = self.start
        if start is None:
            return None
        if not self.new_data:
            self.delivered(timestamp)
            return None
        self.start, self.new_data = None, False
        return Gap(min(start, timestamp), timestamp, self.cause)
