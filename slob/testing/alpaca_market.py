"""Stock trades for :class:`~slob.testing.fake_alpaca.FakeAlpaca`: seeded price paths,
scripted trades, and their Alpaca v2 wire form.

Every symbol's path is derived from the seed and the symbol alone, so the same seed gives
the same prices for a symbol whatever else is subscribed and however fast it is read.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence

__all__ = ["Market", "PricePaths", "SentTrade", "StockTrade", "rfc3339_ns", "trade_message"]

#: Rough starting prices (USD) so familiar tickers look familiar; others are seeded.
DEFAULT_PRICES: Mapping[str, float] = {
    "AAPL": 190.0, "MSFT": 410.0, "NVDA": 120.0, "AMZN": 180.0, "GOOGL": 165.0, "META": 500.0,
    "TSLA": 240.0, "SPY": 520.0, "QQQ": 450.0, "IWM": 205.0,
}


@dataclass(frozen=True, slots=True)
class StockTrade:
    """One trade to send; ``exchange`` is Alpaca's code ('V' = IEX), ``tape`` A/B/C."""

    symbol: str
    price: float
    size: int = 100
    exchange: str = "V"
    conditions: tuple[str, ...] = ("@",)
    tape: str = "C"


@dataclass(frozen=True, slots=True)
class SentTrade:
    """A trade message as the fake sent it: to which connection, and the exact exchange
    time in nanoseconds (``message["t"]`` is its RFC-3339 form)."""

    connection: int
    message: dict[str, Any] = field(hash=False)
    time_ns: int

    @property
    def symbol(self) -> str:
        return str(self.message["S"])


class PricePaths:
    """A seeded random walk per symbol on the cent grid (volatility per trade ~2 bp)."""

    def __init__(self, seed: int = 1, start_prices: Mapping[str, float] | None = None,
                 volatility: float = 0.0002) -> None:
        self.seed = seed
        self.start_prices = dict(DEFAULT_PRICES if start_prices is None else start_prices)
        self.volatility = volatility
        self._state: dict[str, tuple[random.Random, float]] = {}

    def next(self, symbol: str) -> StockTrade:
        rng, price = self._state.get(symbol) or self._start(symbol)
        price = max(0.01, price * math.exp(rng.gauss(0.0, self.volatility)))
        self._state[symbol] = (rng, price)
        size = rng.choice((1, 5, 10, 25, 50, 100, 100, 100, 200, 300, 500))
        return StockTrade(symbol, round(price, 2), size, tape=_tape(symbol))

    def _start(self, symbol: str) -> tuple[random.Random, float]:
        rng = random.Random(f"{self.seed}:{symbol}")
        price = self.start_prices.get(symbol) or round(rng.uniform(20.0, 400.0), 2)
        return rng, price


class Listener(Protocol):
    channels: dict[str, list[str]]

    def wants(self, symbol: str) -> bool: ...


class Market:
    """Chooses each step's trades: from the script (in order; it waits while nobody is
    subscribed to its next trade's symbol) or, without one, ``batch`` trades per
    subscribed symbol from the price paths."""

    def __init__(self, paths: PricePaths, script: Iterable[StockTrade] | None, batch: int) -> None:
        self.paths, self.batch = paths, batch
        self.script = list(script) if script is not None else None
        self.position = 0

    @property
    def script_done(self) -> bool:
        return self.script is not None and self.position >= len(self.script)

    def next_trades(self, listeners: Sequence[Listener]) -> list[StockTrade]:
        if self.script is None:
            symbols = dict.fromkeys(s for c in listeners for s in c.channels["trades"] if s != "*")
            return [self.paths.next(s) for _ in range(self.batch) for s in symbols]
        trades: list[StockTrade] = []
        while len(trades) < self.batch and self.position < len(self.script):
            nxt = self.script[self.position]
            if not any(c.wants(nxt.symbol) for c in listeners):
                break
            trades.append(nxt)
            self.position += 1
        return trades


def _tape(symbol: str) -> str:
    return "A" if len(symbol) <= 3 and symbol not in DEFAULT_PRICES else "C"


def rfc3339_ns(ns: int) -> str:
    """Nanoseconds since the epoch as Alpaca writes times: ``2021-02-22T15:51:44.208123456Z``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def trade_message(trade: StockTrade, trade_id: int, time_ns: int) -> dict[str, Any]:
    return {
        "T": "t", "S": trade.symbol, "i": trade_id, "x": trade.exchange, "p": trade.price, "s": trade.size,
        "t": rfc3339_ns(time_ns), "c": list(trade.conditions), "z": trade.tape,
    }
