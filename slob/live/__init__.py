"""The asyncio side of slob: the fetchers and the trading engine.

Public imports the original design promises:
``from slob.live import IBWSFetcher, LiveTradingEngine, Tick``.
``ConnectionLost`` here is the exception :meth:`IBWSFetcher.listen` raises; the event of
the same name (delivered to ``on_event``) lives in :mod:`slob.model`.
"""

from slob.ib.errors import ConnectionLost, ContractNotFound, MarketDataNotSubscribed, SlobError
from slob.live.ib_ws_fetcher import IBWSFetcher
from slob.live.live_trading_engine import LiveTradingEngine
from slob.model import Candle, Gap, Quote, Tick

__all__ = [
    "Candle",
    "ConnectionLost",
    "ContractNotFound",
    "Gap",
    "IBWSFetcher",
    "LiveTradingEngine",
    "MarketDataNotSubscribed",
    "Quote",
    "SlobError",
    "Tick",
]
