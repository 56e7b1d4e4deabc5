"""Moved to :mod:`slob.ops.contracts`; this path still imports (a re-export, nothing else)."""

from slob.ops.contracts import (  # noqa: F401
    UnknownRoot as UnknownRoot,
    run_contracts as run_contracts,
)

__all__ = [
    "UnknownRoot",
    "run_contracts",
]
