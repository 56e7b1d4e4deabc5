"""Which contract's ticks a subscribed symbol delivers, across a live roll.

A roll overlaps two subscriptions: the next contract is requested shortly before the
roll moment while the old one still streams. The two are cut at one moment, the cut
``C``: the old contract's trades before ``C`` and the new contract's trades from ``C`` on
are delivered, each exactly once, and nothing else.

``C`` is fixed when the new stream shows its first tick: the roll moment, or -- when the
next contract was requested late and the old one already delivered seconds at or after
the roll moment -- the second after the last one the old contract delivered, so no second
holds both contracts. Before that first tick ``C`` is unknown and the old contract simply
goes on (a late or failed request leaves no hole). From then on each tick is routed by
its own timestamp: new-contract ticks before ``C`` are dropped (held back), the first one
at or after ``C`` switches; old-contract ticks before ``C`` are delivered whenever they
arrive, even after the switch (they were in flight), and the first old tick at or after
``C`` after the switch proves the old stream complete (each stream is in time order): the
old subscription can then be cancelled (the caller also cancels it after a grace
period). When the roll moment passed while the feed was down, the new contract is simply
requested instead of the old one (``resumed_from``): its first tick is reported as the
switch. tests/live/test_feed_switch.py states this as a property over every interleaving
of the two streams. Pure: the caller performs the requests and emits the events this
object asks for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from slob.model import Tick

__all__ = ["FeedSwitch", "Route"]


class Route(Enum):
    DELIVER = "deliver"
    SWITCHED = "switched"  # deliver; this tick made the new contract current (emit ContractRolled)
    RETIRE = "retire"  # drop; the old subscription can be cancelled now
    DROP = "drop"  # a tick of a contract this symbol does not (yet, or any more) deliver


@dataclass
class FeedSwitch:
    symbol: str
    current: str  # local symbol delivered now
    current_req: int
    incoming: str | None = None
    incoming_req: int = 0
    retiring: str | None = None
    retiring_req: int = 0
    switch_at: dt.datetime | None = None  # the first new-contract tick delivered
    roll_at: dt.datetime | None = None  # the incoming contract may not deliver before this
    cut: dt.datetime | None = None  # C: fixed at the incoming stream's first tick
    last_delivered: dt.datetime | None = None  # newest second delivered from ``current``
    #: The contract delivered before an outage during which the roll moment passed: the first
    #: tick of ``current`` is then a switch too (no overlap to cut; see Route.SWITCHED).
    resumed_from: str | None = None
    stale_dropped: int = 0
    overlap_dropped: int = 0

    @property
    def rolling_now(self) -> bool:
        return self.incoming is not None

    def begin(self, contract: str, req_id: int, roll_at: dt.datetime) -> None:
        """The next contract is being requested; it takes over at or after ``roll_at``."""
        self.incoming, self.incoming_req, self.roll_at = contract, req_id, roll_at
        self.cut = None

    def abandon(self) -> int:
        """The new subscription failed: keep the current one; returns the request to drop."""
        req, self.incoming, self.incoming_req = self.incoming_req, None, 0
        self.cut = None
        return req

    def route(self, tick: Tick) -> Route:
        contract, at = tick.contract, tick.timestamp
        if contract == self.current:
            if self.resumed_from is not None:  # the first tick after a roll across an outage
                self.last_delivered = at
                return Route.SWITCHED
            cut = self.cut
            if cut is not None and self.incoming is not None and at >= cut:
                self.overlap_dropped += 1  # the next contract covers this moment
                return Route.DROP
            if self.last_delivered is None or at > self.last_delivered:
                self.last_delivered = at
            return Route.DELIVER
        if self.incoming is not None and contract == self.incoming:
            cut = self.cut
            if cut is None:
                cut = self.roll_at if self.roll_at is not None else at
                last = self.last_delivered
                if last is not None and last >= cut:
                    cut = last + _SECOND
                self.cut = cut
            if at < cut:
                self.overlap_dropped += 1
                return Route.DROP
            self.retiring, self.retiring_req = self.current, self.current_req
            self.current, self.current_req = self.incoming, self.incoming_req
            self.incoming, self.incoming_req = None, 0
            self.switch_at = self.last_delivered = at
            return Route.SWITCHED
        if self.retiring is not None and contract == self.retiring:
            assert self.cut is not None
            if at < self.cut:
                return Route.DELIVER
            self.stale_dropped += 1
            return Route.RETIRE
        self.stale_dropped += 1
        return Route.DROP

    def retired(self) -> int:
        """The old subscription is being cancelled; returns its request id (0 if none)."""
        req, self.retiring, self.retiring_req = self.retiring_req, None, 0
        return req


_SECOND = dt.timedelta(seconds=1)
