"""Moved to :mod:`slob.market.sessions`; this path still imports (a re-export, nothing else)."""

from slob.market.sessions import (  # noqa: F401
    CHICAGO as CHICAGO,
    CmeHours as CmeHours,
    LONDON as LONDON,
    LSE as LSE,
    NEW_YORK as NEW_YORK,
    NYSE as NYSE,
    ib_zone as ib_zone,
    lse_session as lse_session,
    nyse_session as nyse_session,
    session_at as session_at,
    trading_day as trading_day,
    us_equity_open as us_equity_open,
)

__all__ = [
    "CHICAGO",
    "CmeHours",
    "LONDON",
    "LSE",
    "NEW_YORK",
    "NYSE",
    "ib_zone",
    "lse_session",
    "nyse_session",
    "session_at",
    "trading_day",
    "us_equity_open",
]
