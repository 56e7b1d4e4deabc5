"""The asyncio side of slob: fetchers, and (in later issues) the trading engine.

Public imports the original design promises: ``from slob.live import IBWSFetcher, Tick``.
``ConnectionLost`` here is the exception :meth:`IBWSFetcher.listen` raises; the event of
the same name (delivered to ``on_event``) lives in :mod:`slob.model`.
"""

from slob.ib.errors import ConnectionLost, ContractNotFound, MarketDataNotSubscribed, SlobError
from slob.live.ib_ws_fetcher import IBWSFetcher
from slob.model import Gap, Quote, Tick

__all__ = [
    "ConnectionLost",
    "ContractNotFound",
    "Gap",
    "IBWSFetcher",
    "MarketDataNotSubscribed",
    "Quote",
    "SlobError",
    "Tick",
]
