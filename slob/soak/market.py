"""The soak's market: a seeded random walk with planted SLOB days, as a FakeTWS scenario.

Pure and deterministic (a seed in, trades out; nothing reads a clock). Most of the time NQ
is a random walk on the tick grid at ``trades_per_minute``, with bursts: several trades in
the same instant, often at one price and size -- exactly what a duplicate filter must not
merge. On a planted day the walk gives way, from the LSE open to the end of the setup, to
the 1-minute candles of :func:`~slob.strategy.setup_planting.plant_setup` played as trades
(the open at :00, both extremes, noise inside the range, the close at :59), so the
engine's tracker sees the planted setup exactly; afterwards the walk carries on from the
last close. Nothing trades while CME is closed (the daily halt, weekends).

The planted days are chosen up front (:func:`plant_days`) so the report can name the
setups the engine should have traded; their prices sit near ``start_price``, and the walk
jumps to them at the LSE open.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from slob.strategy.setup_planting import PlantedSetup, plant_setup
from slob.strategy.setup_tracker import Direction
from slob.model import Candle
from slob.testing.futures import is_cme_open, next_cme_open
from slob.testing.scenario import Trade, from_ns, to_ns

__all__ = ["SoakMarket", "plant_days"]

_NS = 1_000_000_000
_DAY = dt.timedelta(days=1)


def plant_days(seed: int, start: dt.datetime, end: dt.datetime, *, probability: float = 0.6,
               start_price: float = 20_000.0, tick: float = 0.25) -> tuple[PlantedSetup, ...]:
    """One planted setup on each weekday in ``[start, end)`` picked with ``probability``
    (a seeded draw per calendar day): direction, outcome (target or stop) and LSE range
    drawn too. The first weekday that starts after ``start`` is always planted, so even a
    short soak trades."""
    if not 0 <= probability <= 1:
        raise ValueError(f"probability {probability} is outside 0..1")
    rng = random.Random(f"slob-soak-plant-{seed}")
    out: list[PlantedSetup] = []
    day = start.date()
    first = True
    while dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.timezone.utc) < end:
        draw = rng.random()
        direction = rng.choice((Direction.SHORT, Direction.LONG))
        outcome = rng.choice(("target", "stop"))
        low = round((start_price + rng.uniform(-150.0, 150.0)) / tick) * tick
        width = rng.choice((100.0, 125.0, 150.0))
        day_start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.timezone.utc)
        if day.weekday() < 5 and day_start >= start and (first or draw < probability):
            try:
                planted = plant_setup(day, direction, lse_high=low + width, lse_low=low, outcome=outcome)
            except ValueError:
                planted = None  # these draws cannot make exactly one setup that day: not planted
            if planted is not None and planted.candles[-1].end <= end:
                out.append(planted)
                first = False
        day += _DAY
    return tuple(out)


@dataclass(frozen=True)
class SoakMarket:
    """A :class:`~slob.testing.scenario.Scenario` (see the module docstring)."""

    seed: int
    planted: Sequence[PlantedSetup] = ()
    trades_per_minute: float = 20.0
    start_price: float = 20_000.0
    tick: float = 0.25
    burst_probability: float = 0.05
    max_burst: int = 6
    volatility: float = 0.35
    _windows: tuple[tuple[int, int, tuple[Candle, ...]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.trades_per_minute > 0:
            raise ValueError("trades_per_minute must be positive")
        windows = sorted((to_ns(p.candles[0].start), to_ns(p.candles[-1].end), p.candles) for p in self.planted)
        for (_, end, _), (start, _, _) in zip(windows, windows[1:]):
            if start < end:
                raise ValueError("planted days overlap")
        object.__setattr__(self, "_windows", tuple(windows))

    def events(self, start_ns: int) -> Iterator[Trade]:
        rng = random.Random(f"slob-soak-market-{self.seed}")
        price = round(self.start_price / self.tick)  # in ticks
        t = start_ns
        for w_start, w_end, candles in self._windows:
            if w_end <= start_ns:
                continue
            if t < w_start:
                walk = self._walk(rng, t, price)
                for trade in walk:
                    if trade.time_ns >= w_start:
                        break
                    price = round(trade.price / self.tick)
                    yield trade
            for candle in candles:
                for trade in self._candle(rng, candle):
                    if trade.time_ns >= start_ns:
                        yield trade
            price = round(candles[-1].close / self.tick)
            t = max(t, w_end)
        yield from self._walk(rng, t, price)

    def _walk(self, rng: random.Random, t: int, ticks: int) -> Iterator[Trade]:
        rate = self.trades_per_minute / 60.0
        burst = 0
        size = 1
        while True:
            if burst > 0:
                burst -= 1
                t += 1_000  # the same instant, a microsecond apart
            else:
                t += max(1, int(rng.expovariate(rate) * _NS))
                if rng.random() < self.burst_probability:
                    burst = rng.randint(1, self.max_burst)
                when = from_ns(t)
                if not is_cme_open(when):
                    t = to_ns(next_cme_open(when))
                r = rng.random()
                if r < self.volatility:
                    ticks += (2 if r < self.volatility / 10 else 1) * (1 if rng.random() < 0.5 else -1)
                ticks = max(ticks, 4)
                size = min(50, int(rng.paretovariate(1.4)))
            yield self._trade(rng, t, ticks * self.tick, size)

    def _candle(self, rng: random.Random, c: Candle) -> list[Trade]:
        """Trades that rebuild ``c`` exactly: open at :00, the far extreme first, noise on
        the tick grid inside [low, high], close at :59."""
        base = to_ns(c.start)
        first, second = (c.low, c.high) if c.close >= c.open else (c.high, c.low)
        n = max(2, int(rng.uniform(0.5, 1.5) * self.trades_per_minute) - 4)
        secs = sorted(rng.randint(2, 57) for _ in range(n))
        i, j = sorted(rng.sample(range(n), 2))
        points = [(0, c.open)]
        for k, s in enumerate(secs):
            if k == i:
                points.append((s, first))
            elif k == j:
                points.append((s, second))
            else:
                steps = int((c.high - c.low) / self.tick)
                points.append((s, c.low + rng.randint(0, steps) * self.tick))
        points.append((59, c.close))
        out = []
        for s, p in points:
            size = min(50, int(rng.paretovariate(1.4)))
            out.append(self._trade(rng, base + s * _NS + rng.randint(0, 999) * 1_000_000, p, size))
        return sorted(out, key=lambda tr: tr.time_ns)

    def _trade(self, rng: random.Random, t: int, price: float, size: int) -> Trade:
        if rng.random() < 0.5:
            bid, ask = price - self.tick, price
        else:
            bid, ask = price, price + self.tick
        return Trade(t, price + 0.0, size, bid, ask, rng.randint(1, 30), rng.randint(1, 30))

