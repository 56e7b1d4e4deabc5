"""How long a fetcher waits before its next reconnect (or client-id retry) attempt.

Why it exists: both live fetchers reconnect the same way; one formula keeps their
timing alike and in one place.
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, times 0.5-1.0.

    ``attempt`` counts from 1; the jitter keeps many clients from retrying in step.
    """
    delay: float = min(cap, base * 2.0 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)
