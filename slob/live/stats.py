"""Small summaries for the fetchers' ``get_stats()``.

Why it exists: both live fetchers report latency percentiles the same way; one helper
keeps the numbers comparable.
"""

from __future__ import annotations

__all__ = ["percentile"]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1, nearest rank) of ascending ``sorted_values``, rounded to
    0.1; None when there are no values."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return round(sorted_values[index], 1)
