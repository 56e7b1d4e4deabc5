"""Moved to :mod:`slob.market.expiry_book`; this path still imports (a re-export, nothing else)."""

from slob.market.expiry_book import (  # noqa: F401
    CHICAGO as CHICAGO,
    ExpiryBook as ExpiryBook,
    ListedContract as ListedContract,
    parse_sessions as parse_sessions,
    roll_moment as roll_moment,
)

__all__ = [
    "CHICAGO",
    "ExpiryBook",
    "ListedContract",
    "parse_sessions",
    "roll_moment",
]
