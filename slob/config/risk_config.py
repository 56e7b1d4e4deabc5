"""RiskConfig: how much one bracket and one day may risk.

The record lives in ``slob.config`` with the other configs (the loader builds it from
``[risk]``); the OrderExecutor (:mod:`slob.execution.order_executor`) enforces it and
re-exports it under its old name.
"""

from __future__ import annotations

from dataclasses import dataclass

from slob.ib.errors import ConfigError

__all__ = ["RiskConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig:
    contracts: int = 1  # per bracket
    max_position: int = 1  # contracts open at most (absolute, per symbol)
    max_daily_loss: float = 1_000.0  # USD of realized loss today that stops new entries

    def __post_init__(self) -> None:
        if self.contracts < 1:
            raise ConfigError("contracts must be >= 1")
        if self.max_position < self.contracts:
            raise ConfigError("max_position must be >= contracts")
        if self.max_daily_loss <= 0:
            raise ConfigError("max_daily_loss must be positive (USD)")
