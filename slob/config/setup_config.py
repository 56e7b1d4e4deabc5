"""SetupConfig: every threshold of the 5/1 SLOB setup.

The record lives in ``slob.config`` with the other configs (the loader builds it from
``[setup]``); the SetupTracker (:mod:`slob.strategy.setup_tracker`) reads it and re-exports
it under its old name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slob.ib.errors import ConfigError

__all__ = ["SetupConfig"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupConfig:
    """Every threshold of the setup (points are index points: NQ 1 point = 4 ticks)."""

    consolidation_min_candles: int = 3
    consolidation_max_candles: int = 25
    #: Consolidation range (high - low) as a percentage of the LIQ #1 candle's close.
    consolidation_min_range_pct: float = 0.1
    consolidation_max_range_pct: float = 0.3
    #: Candles whose high (long: low) is within ``touch_tolerance_points`` of the extreme.
    consolidation_min_touches: int = 2
    touch_tolerance_points: float = 1.0
    #: LIQ #2 wick limit: wick <= fraction x candle range, or wick <= points.
    no_wick_max_fraction: float = 0.2
    no_wick_max_points: float = 0.0
    #: The trigger must close within this many candles after the LIQ #2 candle.
    entry_wait_max_candles: int = 5
    stop_buffer_points: float = 1.0
    #: Beyond the LSE level (short: below the LSE low); negative puts it in front.
    target_buffer_points: float = 0.5
    tick_size: float = 0.25
    #: reward / risk at the (estimated, then real) entry must be at least this.
    min_risk_reward: float = 1.0
    #: More missing minutes than this between two candles invalidates live setups.
    max_missing_candles: int = 0

    def __post_init__(self) -> None:
        for name in ("consolidation_min_candles", "consolidation_min_touches", "entry_wait_max_candles"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.consolidation_max_candles < self.consolidation_min_candles:
            raise ConfigError("consolidation_max_candles must be >= consolidation_min_candles")
        if self.consolidation_min_touches > self.consolidation_max_candles:
            raise ConfigError("consolidation_min_touches cannot exceed consolidation_max_candles")
        if not 0 <= self.consolidation_min_range_pct <= self.consolidation_max_range_pct:
            raise ConfigError("need 0 <= consolidation_min_range_pct <= consolidation_max_range_pct")
        if not 0 <= self.no_wick_max_fraction <= 1:
            raise ConfigError("no_wick_max_fraction must be within 0..1")
        for name in ("touch_tolerance_points", "no_wick_max_points", "stop_buffer_points", "min_risk_reward"):
            if not getattr(self, name) >= 0:  # also refuses NaN
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not math.isfinite(self.target_buffer_points):
            raise ConfigError("target_buffer_points must be a finite number")
        if not (self.tick_size > 0 and math.isfinite(self.tick_size)):
            raise ConfigError(f"tick_size must be positive, got {self.tick_size}")
        if self.max_missing_candles < 0:
            raise ConfigError("max_missing_candles must be >= 0 (0: any missing minute invalidates)")

    def ceil_tick(self, price: float) -> float:
        return round(math.ceil(price / self.tick_size - _EPS) * self.tick_size, 10)

    def round_tick(self, price: float) -> float:
        return round(round(price / self.tick_size) * self.tick_size, 10)
