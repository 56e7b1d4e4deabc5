"""Moved to :mod:`slob.market.symbols`; this path still imports (a re-export, nothing else)."""

from slob.market.symbols import (  # noqa: F401
    FORMS as FORMS,
    SymbolSpec as SymbolSpec,
    expiry_moment as expiry_moment,
    parse_symbol as parse_symbol,
)

__all__ = [
    "FORMS",
    "SymbolSpec",
    "expiry_moment",
    "parse_symbol",
]
