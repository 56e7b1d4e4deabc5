"""Moved to :mod:`slob.execution.order_executor`; this path still imports (a re-export, nothing else)."""

from slob.execution.order_executor import (  # noqa: F401
    BracketPlaced as BracketPlaced,
    OrderExecutor as OrderExecutor,
    RiskConfig as RiskConfig,
    SetupSkipped as SetupSkipped,
    TradePlan as TradePlan,
)

__all__ = [
    "BracketPlaced",
    "OrderExecutor",
    "RiskConfig",
    "SetupSkipped",
    "TradePlan",
]
