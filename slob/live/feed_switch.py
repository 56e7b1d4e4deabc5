"""Which contract's ticks a subscribed symbol delivers, across a live roll.

A roll overlaps two subscriptions: the next contract is requested shortly before the
roll moment while the old one still streams. The two are cut at one exchange second,
the switch second ``S``: the old contract's trades before ``S`` and the new contract's
trades from ``S`` on are delivered, each exactly once; nothing else is.

``S`` is the second of the first new-contract tick that is at or after the roll moment
*and* later than every second already delivered from the old contract (so no second
holds both contracts). New-contract ticks before that are dropped (held back); old-
contract ticks before ``S`` are delivered whenever they arrive, even after the switch
(they were in flight), and the first old tick at or after ``S`` proves the old stream
has delivered everything before ``S`` (each stream is in time order): the old
subscription can then be cancelled (the caller also cancels it after a grace period).
If the next contract was requested late, the old one simply keeps delivering until the
new one's first tick. tests/live/test_feed_switch.py states this as a property over every
interleaving of the two streams. Pure: the caller performs the requests and emits the
events this object asks for.
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
    switch_at: dt.datetime | None = None
    roll_at: dt.datetime | None = None  # the incoming contract may not deliver before this
    last_delivered: dt.datetime | None = None  # newest second delivered from ``current``
    stale_dropped: int = 0
    overlap_dropped: int = 0

    @property
    def rolling_now(self) -> bool:
        return self.incoming is not None

    def begin(self, contract: str, req_id: int, roll_at: dt.datetime) -> None:
        """The next contract is being requested; it takes over at or after ``roll_at``."""
        self.incoming, self.incoming_req, self.roll_at = contract, req_id, roll_at

    def abandon(self) -> int:
        """The new subscription failed: keep the current one; returns the request to drop."""
        req, self.incoming, self.incoming_req = self.incoming_req, None, 0
        return req

    def route(self, tick: Tick) -> Route:
        contract = tick.contract
        if contract == self.current:
            if self.last_delivered is None or tick.timestamp > self.last_delivered:
                self.last_delivered = tick.timestamp
            return Route.DELIVER
        if self.incoming is not None and contract == self.incoming:
            early = self.roll_at is not None and tick.timestamp < self.roll_at
            covered = self.last_delivered is not None and tick.timestamp <= self.last_delivered
            if early or covered:
                self.overlap_dropped += 1
                return Route.DROP
            self.retiring, self.retiring_req = self.current, self.current_req
            self.current, self.current_req = self.incoming, self.incoming_req
            self.incoming, self.incoming_req = None, 0
            self.switch_at = self.last_delivered = tick.timestamp
            return Route.SWITCHED
        if self.retiring is not None and contract == self.retiring:
            assert self.switch_at is not None
            if tick.timestamp < self.switch_at:
                return Route.DELIVER
            self.stale_dropped += 1
            return Route.RETIRE
        self.stale_dropped += 1
        return Route.DROP

    def retired(self) -> int:
        """The old subscription is being cancelled; returns its request id (0 if none)."""
        req, self.retiring, self.retiring_req = self.retiring_req, None, 0
        return req
