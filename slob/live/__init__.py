"""The asyncio side of slob: the fetchers and the trading engine.

Public imports the original design promises:
``from slob.live import IBWSFetcher, LiveTradingEngine, Tick``.
``ConnectionLost`` here is the exception :meth:`IBWSFetcher.listen` raises; the event of
the same name (delivered to ``on_event``) lives in :mod:`slob.model`.

Everything here runs on IB's ``ibapi``: without it, importing this package raises
:class:`~slob.ib.version.IbapiMissing` (an ImportError) saying, in one line, what to
install (:func:`slob.require_ibapi`).
"""

from slob import require_ibapi

require_ibapi()

from slob.ib.errors import ConnectionLost, ContractNotFound, MarketDataNotSubscribed, SlobError  # noqa: E402
from slob.live.ib_ws_fetcher import IBWSFetcher  # noqa: E402
from slob.live.live_trading_engine import LiveTradingEngine  # noqa: E402
from slob.model import Candle, Gap, Quote, Tick  # noqa: E402

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
