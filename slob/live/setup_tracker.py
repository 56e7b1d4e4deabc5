"""Moved to :mod:`slob.strategy.setup_tracker`; this path still imports (a re-export, nothing else)."""

from slob.strategy.setup_tracker import (  # noqa: F401
    CandleRejected as CandleRejected,
    Consolidation as Consolidation,
    Direction as Direction,
    IllegalTransition as IllegalTransition,
    SetupChanged as SetupChanged,
    SetupConfig as SetupConfig,
    SetupEvent as SetupEvent,
    SetupReady as SetupReady,
    SetupTracker as SetupTracker,
    Signal as Signal,
    State as State,
    TRANSITIONS as TRANSITIONS,
    next_state as next_state,
)

__all__ = [
    "CandleRejected",
    "Consolidation",
    "Direction",
    "IllegalTransition",
    "SetupChanged",
    "SetupConfig",
    "SetupEvent",
    "SetupReady",
    "SetupTracker",
    "Signal",
    "State",
    "TRANSITIONS",
    "next_state",
]
