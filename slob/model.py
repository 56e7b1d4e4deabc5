"""slob's shared vocabulary: market records and events, as frozen slotted dataclasses.

Imported by ``slob.ib`` and ``slob.live`` alike (``slob.live`` re-exports them). Times are
tz-aware UTC datetimes; ``received_ns`` is ``time.monotonic_ns()`` when the frame that
carried the record arrived, so latency can be measured end to end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = [
    "Candle",
    "CandleClosed",
    "ConnectionLost",
    "ConnectionRestored",
    "ContractRolled",
    "ErrorReported",
    "Gap",
    "Quote",
    "Tick",
]


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade.

    ``symbol`` is what was subscribed (``"NQ"``); ``contract`` the local symbol of the
    contract that traded (``"NQZ4"``). ``timestamp`` is the exchange time (1-second
    resolution from IB); ``delayed`` marks delayed market data (15-20 minutes late).
    """

    symbol: str
    price: float
    size: float
    timestamp: dt.datetime
    exchange: str
    contract: str
    received_ns: int
    delayed: bool = False


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and offer after a change (tick-by-tick BidAsk)."""

    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    timestamp: dt.datetime
    contract: str
    received_ns: int


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The feed stopped: the socket closed (``cause`` names why) or IB's servers are
    unreachable from TWS (1100)."""

    at: dt.datetime
    cause: str


@dataclass(frozen=True, slots=True)
class ConnectionRestored:
    at: dt.datetime
    cause: str
    data_lost: bool


@dataclass(frozen=True, slots=True)
class Gap:
    """An outage: no data could arrive from ``start`` to ``end``."""

    start: dt.datetime
    end: dt.datetime
    cause: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class ContractRolled:
    """A rolling symbol (``"NQ"``) now delivers ``new`` instead of ``old`` (local
    symbols); ``at`` is the exchange time of the new contract's first tick."""

    symbol: str
    old: str
    new: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV over ``[start, start + interval_seconds)`` in exchange time (UTC).

    ``filled`` marks a minute inside trading hours with no trade: a flat candle at the
    previous close with volume 0 (see slob.live.candle_aggregator).
    """

    symbol: str
    contract: str
    interval_seconds: int
    start: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    filled: bool = False

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.interval_seconds)


@dataclass(frozen=True, slots=True)
class CandleClosed:
    candle: Candle


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """An error that did not stop the engine (a failing handler, a rejected request)."""

    where: str
    error: BaseException
