"""The fake TWS's memory of its trades, and bars built from them.

Historical answers must be consistent with what the fake streams: the bars are computed
from the very trades its market plays. A :class:`Timeline` holds a price family's
trades in time order (columnar, about 56 bytes a trade). Where it comes from:

* a :class:`~slob.testing.scenario.ScriptedScenario` is its own history: the whole script,
  before the fake's start too (a planted day started at 15:00 has its morning);
* any other scenario (the seeded random walk) is recorded by a :class:`Tap` on the
  market's stream: every trade the market plays passes through it, and a history request
  reaching up to the present pulls trades due by now that the market has not played yet
  (it gets them from the tape, unchanged). Trades played before the tap was attached
  (the first client connection) are not known: history starts there.

The tap also tells listeners (keepUpToDate requests) each trade the market plays.
:func:`build_bars` aggregates a span of a timeline into bars for one contract and one
what-to-show value. Runs on the fake's event loop thread only.
"""

from __future__ import annotations

import array
import bisect
import collections
import datetime as dt
from dataclasses import dataclass
from typing import Callable, Iterator

from slob.testing.futures import CHICAGO, FutureContract, active_contracts, session_day
from slob.testing.scenario import Trade, from_ns

__all__ = ["Bar", "PriceOf", "Shifter", "Tap", "Timeline", "build_bars", "in_rth", "standalone_price"]

_NS = 1_000_000_000
_DAY = 86_400
#: The contract's price for a front-price trade at a moment: FakeTWS's Market.contract_price.
PriceOf = Callable[[FutureContract, float, int], float]
_RTH = (dt.time(8, 30), dt.time(16, 0))  # the fake's liquid hours (futures.liquid_hours), Chicago


class Timeline:
    """A price family's trades in time order, kept as columns."""

    def __init__(self) -> None:
        self.times = array.array("q")
        self.prices = array.array("d")
        self.sizes = array.array("q")
        self.bids = array.array("d")
        self.asks = array.array("d")
        self.bid_sizes = array.array("q")
        self.ask_sizes = array.array("q")

    @classmethod
    def of(cls, trades: Iterator[Trade]) -> "Timeline":
        line = cls()
        for t in trades:
            line.append(t)
        return line

    def append(self, t: Trade) -> None:
        self.times.append(t.time_ns)
        self.prices.append(t.price)
        self.sizes.append(t.size)
        self.bids.append(t.bid)
        self.asks.append(t.ask)
        self.bid_sizes.append(t.bid_size)
        self.ask_sizes.append(t.ask_size)

    def __len__(self) -> int:
        return len(self.times)

    def trade(self, i: int) -> Trade:
        return Trade(self.times[i], self.prices[i], self.sizes[i], self.bids[i], self.asks[i], self.bid_sizes[i],
                     self.ask_sizes[i])

    def indices(self, start_ns: int, end_ns: int) -> range:
        """Positions of the trades with ``start_ns <= time < end_ns``."""
        return range(bisect.bisect_left(self.times, start_ns), bisect.bisect_left(self.times, end_ns))

    @property
    def first_ns(self) -> int | None:
        return self.times[0] if self.times else None

    @property
    def last_ns(self) -> int | None:
        return self.times[-1] if self.times else None


class Tap:
    """Stands in the market's stream of one family: hands the market the scenario's
    trades one by one, tells ``listeners`` each one the market plays and, when
    ``record``, keeps them all in :attr:`timeline` (pulling ahead on demand)."""

    def __init__(self, source: Iterator[Trade], head: Trade | None, *, record: bool) -> None:
        self._source = source
        self._head = head
        self._done = False
        self.record = record
        self.timeline = Timeline()
        if record and head is not None:
            self.timeline.append(head)
        #: Recorded ahead of the market (by a history request reaching the present), not
        #: yet handed to it.
        self._ahead: collections.deque[Trade] = collections.deque()
        self.listeners: list[Callable[[Trade], None]] = []

    def extend_to(self, ns: int) -> None:
        """Record the scenario's trades up to ``ns`` (inclusive) if not yet recorded."""
        line = self.timeline
        while not self._done and (not len(line) or line.times[-1] <= ns):
            trade = self._pull()
            if trade is None:
                break
            self._ahead.append(trade)

    def _pull(self) -> Trade | None:
        trade = next(self._source, None)
        if trade is None:
            self._done = True
        elif self.record:
            self.timeline.append(trade)
        return trade

    def _take(self) -> Trade | None:
        if self._ahead:
            return self._ahead.popleft()
        return self._pull()

    def stream(self) -> Iterator[Trade]:
        """What the market reads instead of the scenario. The market asks for the next
        trade as it takes one to play, so each call reports the one before as played."""
        playing = self._head
        while True:
            nxt = self._take()
            if playing is not None:
                for listener in list(self.listeners):
                    listener(playing)
            if nxt is None:
                return
            playing = nxt
            yield nxt


@dataclass(slots=True)
class Bar:
    """A bar being built: ``key`` is its start (epoch seconds) or, for daily bars, the
    trading day's ordinal; OHLC of the chosen prices, size-weighted sums for the WAP."""

    key: int
    open: float
    high: float
    low: float
    close: float
    volume: int = 0
    notional: float = 0.0
    count: int = 0
    bid_sum: float = 0.0
    ask_sum: float = 0.0

    @property
    def wap(self) -> float:
        return self.notional / self.volume if self.volume else self.close


def in_rth(t_ns: int) -> bool:
    """Inside the fake's regular trading hours: weekdays 08:30-16:00 Chicago."""
    local = from_ns(t_ns).astimezone(CHICAGO)
    return local.weekday() < 5 and _RTH[0] <= local.time() < _RTH[1]


def standalone_price() -> PriceOf:
    """The fake market's pricing of later expiries without a market (FakeEClient): the
    front price plus a fixed basis per quarter, ~0.4 % of the first price seen."""
    basis: dict[str, float] = {}

    def price(contract: FutureContract, front_price: float, now_ns: int) -> float:
        listed = active_contracts(contract.spec.root, from_ns(now_ns))
        quarters = contract.quarters_after(listed[0]) if listed else 0
        if quarters <= 0:
            return front_price
        tick = contract.spec.min_tick
        b = basis.setdefault(contract.spec.family, round(front_price * 0.004 / tick) * tick)
        return front_price + quarters * b

    return price


class Shifter:
    """A contract's price offset from the family's front price, per moment: constant
    between the front month's expiries, so it is worked out once per stretch. ``None``
    when the contract does not trade then (expired, or not listed yet)."""

    def __init__(self, contract: FutureContract, price_of: PriceOf) -> None:
        self.contract = contract
        self._price_of = price_of
        self._until = -1
        self._from = 0
        self._shift: float | None = None

    def shift(self, t_ns: int, price: float) -> float | None:
        if not self._from <= t_ns < self._until:
            listed = active_contracts(self.contract.spec.root, from_ns(t_ns))
            front = listed[0]
            self._until = int(front.last_trade_moment.timestamp()) * _NS
            self._from = t_ns
            self._shift = (self._price_of(self.contract, price, t_ns) - price) if self.contract in listed else None
        return self._shift


def bucket_of(t_ns: int, bar_seconds: int) -> int:
    """A trade's bar: its start in epoch seconds, or for daily bars the CME trading day's
    ordinal (a session runs 17:00-16:00 Chicago and is named by the day it ends)."""
    if bar_seconds >= _DAY:
        return session_day(from_ns(t_ns)).toordinal()
    s = t_ns // _NS
    return s - s % bar_seconds


def bucket_end_ns(key: int, bar_seconds: int) -> int:
    """When bar ``key`` is finished (the session's 16:00 Chicago close for daily bars)."""
    if bar_seconds >= _DAY:
        day = dt.date.fromordinal(key)
        close = dt.datetime(day.year, day.month, day.day, 16, 0, tzinfo=CHICAGO)
        return int(close.timestamp()) * _NS
    return (key + bar_seconds) * _NS


def bucket_start_ns(key: int, bar_seconds: int) -> int:
    if bar_seconds >= _DAY:
        day = dt.date.fromordinal(key) - dt.timedelta(days=1)
        opened = dt.datetime(day.year, day.month, day.day, 17, 0, tzinfo=CHICAGO)
        return int(opened.timestamp()) * _NS
    return key * _NS


def add_trade(bars: list[Bar], key: int, what: str, price: float, size: int, bid: float, ask: float) -> Bar:
    """Merge one trade (prices already the contract's) into the last bar of ``bars`` or
    a new one for ``key``; returns that bar."""
    if what == "TRADES":
        p = price
    elif what == "MIDPOINT":
        p = (bid + ask) / 2
    elif what == "BID":
        p = bid
    elif what == "ASK":
        p = ask
    else:  # BID_ASK: open = mean bid, high = max ask, low = min bid, close = mean ask
        p = 0.0
    bar = bars[-1] if bars and bars[-1].key == key else None
    if bar is None:
        if what == "BID_ASK":
            bar = Bar(key, bid, ask, bid, ask)
        else:
            bar = Bar(key, p, p, p, p)
        bars.append(bar)
    bar.count += 1
    if what == "BID_ASK":
        bar.bid_sum += bid
        bar.ask_sum += ask
        bar.high = max(bar.high, ask)
        bar.low = min(bar.low, bid)
        bar.open, bar.close = bar.bid_sum / bar.count, bar.ask_sum / bar.count
        return bar
    if p > bar.high:
        bar.high = p
    if p < bar.low:
        bar.low = p
    bar.close = p
    if what == "TRADES":
        bar.volume += size
        bar.notional += p * size
    return bar


def build_bars(line: Timeline, shifter: Shifter, start_ns: int, end_ns: int, bar_seconds: int, what: str,
               use_rth: bool) -> list[Bar]:
    """The bars of ``shifter.contract`` made of the trades in ``[start_ns, end_ns)``, in
    time order; empty buckets make no bar (as IB's TRADES bars)."""
    bars: list[Bar] = []
    times, prices, sizes, bids, asks = line.times, line.prices, line.sizes, line.bids, line.asks
    for i in line.indices(start_ns, end_ns):
        t = times[i]
        if use_rth and not in_rth(t):
            continue
        price = prices[i]
        shift = shifter.shift(t, price)
        if shift is None:
            continue
        add_trade(bars, bucket_of(t, bar_seconds), what, price + shift, sizes[i], bids[i] + shift,
                  asks[i] + shift)
    return bars
