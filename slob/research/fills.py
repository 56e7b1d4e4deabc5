"""The bracket fill model: how a triggered setup's bracket fills against 1-minute candles,
or against the trades of a minute when they are known.

Pure (no I/O, no clock). It mirrors what the paper engine does with a setup
(:mod:`slob.execution.order_executor`) and how FakeTWS matches its orders
(:mod:`slob.testing.fake_orders`), so that a backtest of stored data reproduces paper:

* **Entry.** The bracket is placed when the trigger candle closes (state TRIGGERED): a
  market order that fills at the first trade of the next candle, i.e. its *open*, plus
  ``slippage_ticks`` against the trade.
* **Exits.** From that open on, the take-profit (a limit at the target) and the stop (a
  stop at the stop price) work as one OCA pair, good till cancelled:

  - a trade at or beyond the stop fills the stop *at that trade's price* (plus
    slippage); with candles only, at the stop price, or at the open when the candle opens
    beyond it (a gap);
  - a trade at or beyond the target fills the resting limit *at the target* (no
    slippage: a limit never fills worse); when the entry candle already opens beyond the
    target, the marketable limit fills at that open;
  - when one candle reaches both, its candle alone cannot say which came first: the
    **stop is assumed first** (the pessimistic choice), unless the minute's trades are
    known -- then they are walked in order and the answer is exact.

* **Money.** P&L = direction x (exit - entry) x multiplier x contracts, minus the
  commission of both legs (``commission`` per contract per side, by default IB's rate
  that FakeTWS charges). That is IB's realized P&L of the closing fill, which IB reports
  net of both commissions.

Biases this model has (docs/backtesting.md says more): the stop-first rule understates
candles-only results when both levels lie in one candle; a stop filled at its price on
candles overstates a fast market's result by the ticks it slipped through (slippage_ticks
is the knob); the entry is the next candle's open even when the paper order reached TWS a
moment later; queue position at the target is ignored (a touch fills the limit, as the
fake does).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from slob.ib.errors import ConfigError
from slob.store.schema import from_ns
from slob.model import Candle
from slob.ops.report import MULTIPLIERS
from slob.testing.order_records import COMMISSION_PER_CONTRACT

__all__ = [
    "COMMISSIONS", "MULTIPLIERS", "Exit", "FillConfig", "Position", "TickPrice", "candle_exit", "pnl", "tick_exit",
]

#: IB's commission per contract per side (USD): the table FakeTWS charges from, so a
#: backtest and the fake cannot drift apart; other roots: 2.25.
COMMISSIONS: Mapping[str, float] = COMMISSION_PER_CONTRACT
_EPS = 1e-9

#: One trade of a minute: (exchange time in ns since the epoch, price).
TickPrice = tuple[int, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class FillConfig:
    """How orders fill. ``commission`` None: the symbol's IB rate (:data:`COMMISSIONS`);
    ``multiplier`` None: the symbol's (:data:`MULTIPLIERS`). ``slippage_ticks`` applies to
    the market orders (entry and stop), against the trader."""

    commission: float | None = None
    slippage_ticks: float = 0.0
    tick_size: float = 0.25
    multiplier: float | None = None

    def __post_init__(self) -> None:
        if self.commission is not None and not (self.commission >= 0 and math.isfinite(self.commission)):
            raise ConfigError(f"commission must be a number >= 0 (USD per contract per side), got {self.commission}")
        if not (self.slippage_ticks >= 0 and math.isfinite(self.slippage_ticks)):
            raise ConfigError(f"slippage_ticks must be a number >= 0, got {self.slippage_ticks}")
        if not (self.tick_size > 0 and math.isfinite(self.tick_size)):
            raise ConfigError(f"tick_size must be positive, got {self.tick_size}")
        if self.multiplier is not None and not (self.multiplier > 0 and math.isfinite(self.multiplier)):
            raise ConfigError(f"multiplier must be positive, got {self.multiplier}")

    def commission_for(self, symbol: str) -> float:
        return self.commission if self.commission is not None else COMMISSIONS.get(symbol.upper(), 2.25)

    def multiplier_for(self, symbol: str) -> float:
        if self.multiplier is not None:
            return self.multiplier
        value = MULTIPLIERS.get(symbol.upper())
        if value is None:
            raise ConfigError(f"no contract multiplier known for {symbol!r} (known: {', '.join(MULTIPLIERS)}); "
                              "set it with --set multiplier=USD_PER_POINT")
        return value

    def slipped(self, price: float, buy: bool) -> float:
        """A market order's fill ``slippage_ticks`` worse than ``price``."""
        if not self.slippage_ticks:
            return price
        move = self.slippage_ticks * self.tick_size
        return round(price + move if buy else price - move, 10)


@dataclass(frozen=True, slots=True)
class Position:
    """A bracket: pending (``entry_time`` None: placed, the entry fills at the next
    candle's open) or open. ``last_close``/``last_end``: the last candle of its contract
    seen while open (where a roll leaves it)."""

    setup_id: str
    symbol: str
    contract: str
    direction: str  # "long" | "short"
    quantity: int
    signal_at: dt.datetime  # the trigger candle's close: when the bracket was placed
    stop: float
    target: float
    entry_time: dt.datetime | None = None
    entry_price: float | None = None
    last_close: float | None = None
    last_end: dt.datetime | None = None

    @property
    def long(self) -> bool:
        return self.direction == "long"


@dataclass(frozen=True, slots=True)
class Exit:
    """How a position closed: ``by`` "target", "stop" or "roll"; ``exact`` when found
    from the minute's trades rather than the candle."""

    time: dt.datetime
    price: float
    by: str
    exact: bool = False


def candle_exit(p: Position, c: Candle, fills: FillConfig, *, entry_candle: bool) -> Exit | None:
    """The exit ``c`` causes by the candle rule (see the module docstring), or None.
    The exit time is the candle's start (its end would claim more than the candle says)."""
    stop, target, long = p.stop, p.target, p.long
    opening = c.open
    if long:
        stop_hit, target_hit = c.low <= stop + _EPS, c.high >= target - _EPS
        gapped_stop, gapped_target = opening <= stop + _EPS, opening >= target - _EPS
    else:
        stop_hit, target_hit = c.high >= stop - _EPS, c.low <= target + _EPS
        gapped_stop, gapped_target = opening >= stop - _EPS, opening <= target + _EPS
    if gapped_stop:
        return Exit(c.start, fills.slipped(opening, buy=not long), "stop")
    if gapped_target:
        return Exit(c.start, opening if entry_candle else target, "target")
    if stop_hit:  # alone, or both in one candle: the stop is assumed first
        return Exit(c.start, fills.slipped(stop, buy=not long), "stop")
    if target_hit:
        return Exit(c.start, target, "target")
    return None


def tick_exit(p: Position, ticks: Sequence[TickPrice], fills: FillConfig, *, entry_candle: bool) -> Exit | None:
    """The exit the trades of one minute cause, in order, or None. In the entry candle the
    first trade is the entry itself: a limit marketable there fills at its price."""
    stop, target, long = p.stop, p.target, p.long
    for i, (ns, price) in enumerate(ticks):
        if (price <= stop + _EPS) if long else (price >= stop - _EPS):
            return Exit(from_ns(ns), fills.slipped(price, buy=not long), "stop", exact=True)
        if (price >= target - _EPS) if long else (price <= target + _EPS):
            return Exit(from_ns(ns), price if entry_candle and i == 0 else target, "target", exact=True)
    return None


def pnl(p: Position, exit_price: float, fills: FillConfig) -> tuple[float, float]:
    """(net P&L, commission of both legs) in USD, as IB realizes them."""
    assert p.entry_price is not None
    sign = 1.0 if p.long else -1.0
    commission = fills.commission_for(p.symbol) * p.quantity * 2
    gross = sign * (exit_price - p.entry_price) * fills.multiplier_for(p.symbol) * p.quantity
    return round(gross - commission, 6), round(commission, 6)
