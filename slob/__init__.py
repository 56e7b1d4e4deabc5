"""slob: real-time NQ futures from Interactive Brokers through IB's own ibapi
client, for the 5/1 SLOB liquidity-sweep strategy, paper trading first."""

__version__ = "0.1.0"
