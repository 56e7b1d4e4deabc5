"""Outgoing message pacing: stay under TWS's limit of 50 messages per second.

TWS counts every client message (TWS-FACTS §6); with its "reject" setting the 51st
message within a second earns error 100 and the third violation ends the session. A
token bucket of capacity ``B`` refilled at ``r`` per second lets through at most
``B + r`` messages in any closed one-second window [t, t+1] (fewer than ``B + r`` in a
half-open one [t, t+1)), so slob splits its budget ``N`` as ``B = N/5`` (bursts) and
``r = 4N/5`` (sustained), with ``B`` at least 1. For ``N = 1`` that would leave no refill
at all, so there ``B = 1`` and ``r = 0.999``: one message every 1.001 s, which keeps any
window [t, t+1] to one message with a margin for floating-point rounding. Pure: the
clock is injected.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["TokenBucket"]

_ONE_PER_SECOND = 0.999  # refill rate for per_second=1: a send every 1.001 s


class TokenBucket:
    def __init__(self, per_second: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second < 1:
            raise ValueError("per_second must be >= 1")
        self.capacity = max(1.0, per_second / 5)
        # per_second=1 would leave rate 0: no refill and a division by zero in reserve().
        self.rate = per_second - self.capacity if per_second > 1 else _ONE_PER_SECOND
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def reserve(self) -> float:
        """Take one token; return how many seconds the caller must wait before sending."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate
