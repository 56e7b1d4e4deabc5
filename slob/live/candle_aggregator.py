"""Moved to :mod:`slob.market.candle_aggregator`; this path still imports (a re-export, nothing else)."""

from slob.market.candle_aggregator import (  # noqa: F401
    CandleAggregator as CandleAggregator,
)

__all__ = [
    "CandleAggregator",
]
