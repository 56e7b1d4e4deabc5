"""IB's pacing rules for historical data, kept apart from the 50-messages-per-second limit.

TWS answers a historical request with error 162 "pacing violation" when (TWS-FACTS §6,
IB's "historical data limitations"):

* an identical request was made within 15 seconds;
* six or more requests for the same contract, exchange and tick type were made within
  two seconds (so at most five);
* more than 60 requests were made within ten minutes (BID_ASK counts twice);
* more than 50 requests are open at once.

:class:`PacingLedger` remembers what was sent and answers both questions: how long a
request must wait (:meth:`~PacingLedger.wait`, with a safety margin) and whether sending
it now would break a rule (:meth:`~PacingLedger.violation`, exact, for the fake TWS).
:class:`HistoryPacer` adds the clock (injected, so the rules are tested without sleeping)
and the count of open requests. Pure: no I/O, no sleeping.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["HistoryKey", "HistoryPacer", "PacingLedger", "PacingRules", "pacing_floor_seconds"]


@dataclass(frozen=True, slots=True)
class PacingRules:
    """IB's limits; ``margin_seconds`` is added to every wait so a request never lands on
    a limit's edge (clocks and the socket differ by a little)."""

    identical_seconds: float = 15.0
    per_contract_limit: int = 5
    per_contract_seconds: float = 2.0
    window_limit: int = 60
    window_seconds: float = 600.0
    max_open: int = 50
    margin_seconds: float = 0.05

    def __post_init__(self) -> None:
        if min(self.per_contract_limit, self.window_limit, self.max_open) < 1:
            raise ValueError("pacing limits must allow at least one request")
        if min(self.identical_seconds, self.per_contract_seconds, self.window_seconds, self.margin_seconds) < 0:
            raise ValueError("pacing intervals must be >= 0")

    @classmethod
    def unlimited(cls) -> "PacingRules":
        """No pacing at all (a peer that does not enforce it; never a real TWS)."""
        return cls(identical_seconds=0.0, per_contract_limit=1 << 30, per_contract_seconds=0.0,
                   window_limit=1 << 30, window_seconds=0.0, max_open=1 << 30, margin_seconds=0.0)


@dataclass(frozen=True, slots=True)
class HistoryKey:
    """What the rules look at in a request: the contract (conId or local symbol), the
    tick type (what-to-show) and, for the identical-request rule, everything else."""

    contract: str
    what: str
    identity: tuple[str, ...] = ()

    @property
    def weight(self) -> int:
        """BID_ASK requests count twice against the ten-minute budget."""
        return 2 if self.what.upper() == "BID_ASK" else 1


class PacingLedger:
    """The requests sent lately, by time (any monotonic seconds)."""

    def __init__(self, rules: PacingRules | None = None) -> None:
        self.rules = rules or PacingRules()
        self._identical: dict[tuple[str, str, tuple[str, ...]], float] = {}
        self._per_contract: dict[tuple[str, str], collections.deque[float]] = {}
        self._window: collections.deque[tuple[float, int]] = collections.deque()

    def record(self, key: HistoryKey, now: float) -> None:
        """``key`` was sent at ``now`` (times never go backwards)."""
        self._prune(now)
        r = self.rules
        if r.identical_seconds > 0:
            self._identical[(key.contract, key.what, key.identity)] = now
        if r.per_contract_seconds > 0:
            times = self._per_contract.setdefault((key.contract, key.what), collections.deque())
            times.append(now)
            while len(times) > r.per_contract_limit:
                times.popleft()
        if r.window_seconds > 0:
            self._window.append((now, key.weight))

    def wait(self, key: HistoryKey, now: float) -> float:
        """Seconds from ``now`` until ``key`` may be sent without breaking a rule (open
        requests aside), margin included; 0.0 when it may go at once."""
        self._prune(now)
        r = self.rules
        ready = now
        last = self._identical.get((key.contract, key.what, key.identity))
        if last is not None:
            ready = max(ready, last + r.identical_seconds + r.margin_seconds)
        times = self._per_contract.get((key.contract, key.what))
        if times is not None and len(times) >= r.per_contract_limit:
            ready = max(ready, times[-r.per_contract_limit] + r.per_contract_seconds + r.margin_seconds)
        if r.window_seconds > 0:
            aged = r.window_seconds + r.margin_seconds
            active = [(t, w) for t, w in self._window if t + aged > now]
            excess = sum(w for _, w in active) + key.weight - r.window_limit
            for t, w in active:  # the oldest must age out until the request fits
                if excess <= 0:
                    break
                excess -= w
                ready = max(ready, t + aged)
            if excess > 0:  # heavier than the whole budget: never fits (not for IB's weights)
                return math.inf
        return max(0.0, ready - now)

    def violation(self, key: HistoryKey, now: float) -> str | None:
        """Which rule sending ``key`` at ``now`` breaks (exactly, no margin), or None."""
        self._prune(now)
        r = self.rules
        last = self._identical.get((key.contract, key.what, key.identity))
        if last is not None and now - last < r.identical_seconds:
            return f"an identical request was made {now - last:.1f} s ago (IB allows one per {r.identical_seconds:g} s)"
        times = self._per_contract.get((key.contract, key.what))
        if times is not None:
            recent = sum(1 for t in times if now - t < r.per_contract_seconds)
            if recent >= r.per_contract_limit:
                return (f"{recent + 1} requests for {key.contract} {key.what} within {r.per_contract_seconds:g} s "
                        f"(IB allows {r.per_contract_limit})")
        if r.window_seconds > 0:
            used = sum(w for t, w in self._window if now - t < r.window_seconds)
            if used + key.weight > r.window_limit:
                return (f"{used + key.weight} request units within {r.window_seconds:g} s "
                        f"(IB allows {r.window_limit})")
        return None

    def _prune(self, now: float) -> None:
        r = self.rules
        keep = max(r.identical_seconds, r.per_contract_seconds, r.window_seconds) + r.margin_seconds + 1.0
        if self._identical and len(self._identical) > 256:
            self._identical = {k: t for k, t in self._identical.items() if now - t < keep}
        window = self._window
        while window and now - window[0][0] >= r.window_seconds + r.margin_seconds + 1.0:
            window.popleft()


def pacing_floor_seconds(requests: int, rules: PacingRules | None = None) -> float:
    """The least time ``requests`` different requests for one contract and tick type take
    under the rules (the first goes at once): five per two seconds, and from the 61st on
    60 per ten minutes. What a download costs against a real TWS, at best."""
    r = rules or PacingRules()
    if requests <= 1:
        return 0.0
    burst = (requests - 1) // r.per_contract_limit * (r.per_contract_seconds + r.margin_seconds)
    window = (requests - 1) // r.window_limit * (r.window_seconds + r.margin_seconds)
    return float(max(burst, window))


class HistoryPacer:
    """The client's side of the rules: a ledger, a clock and the open requests.

    ``delay(key)`` says how long to wait (``math.inf`` while ``max_open`` requests are
    open: wait for one to end); ``sent(key)`` records a request at the clock's time;
    ``finished()`` ends an open one. The caller sleeps, the pacer never does."""

    def __init__(self, rules: PacingRules | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = PacingLedger(rules)
        self.clock = clock
        self.open = 0
        self.sent_count = 0

    @property
    def rules(self) -> PacingRules:
        return self.ledger.rules

    def delay(self, key: HistoryKey) -> float:
        if self.open >= self.rules.max_open:
            return math.inf
        return self.ledger.wait(key, self.clock())

    def sent(self, key: HistoryKey) -> None:
        self.ledger.record(key, self.clock())
        self.open += 1
        self.sent_count += 1

    def finished(self) -> None:
        self.open = max(0, self.open - 1)
