"""Simulated time and seeded price paths for the fake TWS.

A scenario is an endless, time-ordered iterator of :class:`Trade` events for one price
family (NQ and MNQ share one path, ES and MES another). Everything is derived from a
seed, so the same seed and start give the same trades however the consumer paces them.
:class:`ScriptedScenario` replays a given list instead (later issues plant SLOB setups
with it).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol

from slob.model import Candle
from slob.testing.futures import is_cme_open, next_cme_open

__all__ = [
    "RandomWalkScenario",
    "Scenario",
    "ScriptedScenario",
    "SimClock",
    "Trade",
    "to_ns",
    "from_ns",
]

_NS = 1_000_000_000


def to_ns(t: dt.datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"{t!r} has no time zone; simulated times are tz-aware (use UTC)")
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000


def from_ns(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1_000)


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade on the family's front contract and the quote right after it.

    Prices are in index points on the 0.25 grid; contracts further out add their basis.
    """

    time_ns: int
    price: float
    size: int
    bid: float
    ask: float
    bid_size: int
    ask_size: int


class Scenario(Protocol):
    def events(self, start_ns: int) -> Iterator[Trade]:
        """Trades at or after ``start_ns``, in time order, forever (or until the script ends)."""
        ...


# ---------------------------------------------------------------------------
# Clock


class SimClock:
    """Simulated wall-clock time, anchored to real monotonic time.

    ``speed`` is simulated seconds per real second: 1.0 is real time, 60.0 runs a minute
    a second, ``math.inf`` lets the fake TWS jump straight to each next event (as fast as
    clients read), and 0.0 stops time until :meth:`advance` or :meth:`set` moves it.
    Thread-safe: the fake TWS thread reads it while tests steer it.
    """

    def __init__(self, start: dt.datetime, speed: float = 1.0) -> None:
        if speed < 0 or math.isnan(speed):
            raise ValueError(f"speed must be >= 0 (0 = paused, inf = as fast as possible), not {speed}")
        self._lock = threading.Lock()
        self._sim_ns = to_ns(start)
        self._real_ns = time.monotonic_ns()
        self._speed = speed
        self._listeners: list[Callable[[], None]] = []

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def realtime(self) -> bool:
        """True when time moves by itself (0 < speed < inf)."""
        return 0.0 < self._speed < math.inf

    def now_ns(self) -> int:
        with self._lock:
            return self._now_locked()

    def now(self) -> dt.datetime:
        return from_ns(self.now_ns())

    def _now_locked(self) -> int:
        if 0.0 < self._speed < math.inf:
            return self._sim_ns + int((time.monotonic_ns() - self._real_ns) * self._speed)
        return self._sim_ns

    def set_speed(self, speed: float) -> None:
        if speed < 0 or math.isnan(speed):
            raise ValueError(f"speed must be >= 0, not {speed}")
        with self._lock:
            self._sim_ns = self._now_locked()
            self._real_ns = time.monotonic_ns()
            self._speed = speed
        self._notify()

    def set_ns(self, ns: int) -> None:
        """Move to ``ns``; time never runs backwards, so an earlier value is ignored."""
        with self._lock:
            now = self._now_locked()
            if ns > now:
                self._sim_ns = ns
                self._real_ns = time.monotonic_ns()
        self._notify()

    def set(self, when: dt.datetime) -> None:
        self.set_ns(to_ns(when))

    def advance(self, seconds: float) -> dt.datetime:
        """Move simulated time forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("the simulated clock does not run backwards")
        with self._lock:
            self._sim_ns = self._now_locked() + int(seconds * _NS)
            self._real_ns = time.monotonic_ns()
            ns = self._sim_ns
        self._notify()
        return from_ns(ns)

    def real_seconds_until(self, ns: int) -> float | None:
        """Real seconds until simulated ``ns`` arrives by itself (None: it never will)."""
        with self._lock:
            gap = ns - self._now_locked()
            if gap <= 0:
                return 0.0
            if 0.0 < self._speed < math.inf:
                return gap / self._speed / _NS
            return None

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the steering thread) whenever the clock is moved or
        re-paced by hand, so a waiting consumer can re-plan."""
        with self._lock:
            self._listeners.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()


# ---------------------------------------------------------------------------
# Scenarios


@dataclass(frozen=True)
class RandomWalkScenario:
    """A seeded random walk on the tick grid, trading only in CME hours.

    ``trades_per_second`` is the mean rate (exponential gaps); with probability
    ``burst_probability`` a trade arrives with a burst of 2-``max_burst`` more in the same
    instant (sweeps and stops). Sizes are small and right-skewed (mostly 1-3 lots, with a
    rare large print). ``volatility`` is the probability that a trade moves the price one
    tick (a two-tick jump is a tenth as likely).
    """

    seed: int = 1
    start_price: float = 21_000.0
    tick: float = 0.25
    trades_per_second: float = 5.0
    volatility: float = 0.35
    burst_probability: float = 0.03
    max_burst: int = 12
    max_size: int = 150

    def events(self, start_ns: int) -> Iterator[Trade]:
        rng = random.Random(self.seed)
        ticks = round(self.start_price / self.tick)
        t = start_ns
        bid_size, ask_size = 10, 10
        burst_left = 0
        while True:
            if burst_left > 0:
                burst_left -= 1
                t += 1_000  # same instant, microsecond apart
            else:
                t += max(1, int(rng.expovariate(self.trades_per_second) * _NS))
                if rng.random() < self.burst_probability:
                    burst_left = rng.randint(2, self.max_burst)
            when = from_ns(t)
            if not is_cme_open(when):
                t = to_ns(next_cme_open(when))
            r = rng.random()
            if r < self.volatility:
                step = 2 if r < self.volatility * 0.1 else 1
                ticks += step if rng.random() < 0.5 else -step
            ticks = max(ticks, 4)
            size = min(self.max_size, int(rng.paretovariate(1.4)))
            buyer = rng.random() < 0.5
            price = ticks * self.tick
            if buyer:
                bid, ask = price - self.tick, price
            else:
                bid, ask = price, price + self.tick
            bid_size = max(1, bid_size + rng.randint(-3, 3))
            ask_size = max(1, ask_size + rng.randint(-3, 3))
            yield Trade(t, price, size, bid, ask, bid_size, ask_size)


class ScriptedScenario:
    """Replays given trades (sorted by time); the iterator ends with the script."""

    def __init__(self, trades: Iterable[Trade]) -> None:
        self._trades = sorted(trades, key=lambda tr: tr.time_ns)

    def events(self, start_ns: int) -> Iterator[Trade]:
        return (tr for tr in self._trades if tr.time_ns >= start_ns)

    @classmethod
    def from_candles(cls, candles: Iterable[Candle], tick: float = 0.25) -> "ScriptedScenario":
        """Trades that rebuild each 1-minute candle exactly: the open at :00, then the low
        and high (the far side first, so the path is plausible), the close at :59; volume
        is split over the four prints. Used to plant SLOB setups in FakeTWS."""
        trades: list[Trade] = []
        for c in candles:
            base = to_ns(c.start)
            first, second = (c.low, c.high) if c.close >= c.open else (c.high, c.low)
            size = max(1, int(c.volume) // 4) if c.volume else 1
            for sec, price in ((0, c.open), (15, first), (30, second), (59, c.close)):
                trades.append(Trade(base + sec * _NS, price, size, price - tick, price, 10, 10))
        return cls(trades)

    @classmethod
    def from_prices(
        cls, start: dt.datetime, points: Iterable[tuple[float, float, int]], tick: float = 0.25
    ) -> "ScriptedScenario":
        """Trades from ``(seconds after start, price, size)`` points; quotes straddle each price."""
        base = to_ns(start)
        trades = [
            Trade(base + int(sec * _NS), price, size, price - tick, price, 10, 10)
            for sec, price, size in points
        ]
        return cls(trades)
