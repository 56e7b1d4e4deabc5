"""Market time: what the exchange calendar and the contract months say, and minute candles.

``sessions`` (the LSE and NYSE windows, CME hours, the trading day), ``expiry_book``
(which NQ month is front), ``symbols`` (what a symbol names on IB) and
``candle_aggregator`` (ticks into minute candles: where a candle closes). Pure: no I/O,
no connection. May import :mod:`slob.model`, :mod:`slob.ib` (errors, zone names) and
:mod:`slob.config`; see docs/architecture.md.
"""
