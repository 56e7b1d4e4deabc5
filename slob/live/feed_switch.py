"""Which contract's ticks a subscribed symbol delivers, across a live roll.

A roll overlaps two subscriptions: the next contract is requested shortly before the
roll moment while the old one still streams. New-contract ticks are held back (dropped)
until they are at or after the roll moment *and* later than the last second delivered
from the old contract; the first such tick is the switch, at its second ``S``. Once the
new stream is live (it has sent any tick), old-contract ticks at or after the roll moment
are no longer delivered, so the switch lands on the roll moment itself. From then
on old-contract ticks are delivered only if older than ``S`` (they were in flight), and
the old subscription is cancelled as soon as one of its ticks reaches ``S`` (everything
older has then arrived, each stream being in time order) or a grace period ends. Every
second is covered by one contract or the other -- no gap -- and nothing from the old
contract at or after the switch is delivered. If the next contract was requested late,
the old one simply keeps delivering until the new one's first tick. Pure: the caller
performs the requests and emits the events this object asks for.
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
    incoming_live: bool = False  # the incoming stream has produced a tick
    stale_dropped: int = 0
    overlap_dropped: int = 0

    @property
    def rolling_now(self) -> bool:
        return self.incoming is not None

    def begin(self, contract: str, req_id: int, roll_at: dt.datetime) -> None:
        """The next contract is being requested; it takes over at or after ``roll_at``."""
        self.incoming, self.incoming_req, self.roll_at = contract, req_id, roll_at
        self.incoming_live = False

    def abandon(self) -> int:
        """The new subscription failed: keep the current one; returns the request to drop."""
        req, self.incoming, self.incoming_req = self.incoming_req, None, 0
        self.incoming_live = False
        return req

    def route(self, tick: Tick) -> Route:
        contract = tick.contract
        if contract == self.current:
            if self.incoming_live and self.roll_at is not None and tick.timestamp >= self.roll_at:
                self.overlap_dropped += 1  # the next contract covers this second
                return Route.DROP
            if self.last_delivered is None or tick.timestamp > self.last_delivered:
                self.last_delivered = tick.timestamp
            return Route.DELIVER
        if self.incoming is not None and contract == self.incoming:
            self.incoming_live = True
            early = self.roll_at is not None and tick.timestamp < self.roll_at
            covered = self.last_delivered is not None and tick.timestamp <= self.last_delivered
            if early or covered:
                self.overlap_dropped += 1
                return Route.DROP
            self.retiring, self.retiring_req = self.current, self.current_req
            self.current, self.current_req = self.incoming, self.incoming_req
            self.incoming, self.incoming_req, self.incoming_live = None, 0, False
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
