"""Moved to :mod:`slob.ops.demo`; this path still imports (a re-export, nothing else)."""

from slob.ops.demo import (  # noqa: F401
    DemoMarket as DemoMarket,
    DemoStats as DemoStats,
    Step as Step,
    TradeRow as TradeRow,
    demo_days as demo_days,
    demo_market as demo_market,
    run_demo as run_demo,
    schedule as schedule,
)

__all__ = [
    "DemoMarket",
    "DemoStats",
    "Step",
    "TradeRow",
    "demo_days",
    "demo_market",
    "run_demo",
    "schedule",
]
