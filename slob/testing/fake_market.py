"""The fake TWS's market: simulated time, price paths and the subscriptions they feed.

Runs as one task on the fake TWS's event loop. Each price family (NQ/MNQ, ES/MES) has a
scenario; every trade goes to the tick-by-tick subscriptions of that family at once,
and into the market-data subscriptions, which TWS aggregates and sends on a fixed
cadence (250 ms for US futures, TWS-FACTS §4). Contracts further out trade at the
front price plus a basis per quarter.

Every trade tick handed to a client's socket is written down in a :class:`SentLog`
(``FakeTWS.sent_ticks()``): what a test compares with what its client delivered. The
log is columnar (about 60 bytes a tick), so hours of simulated market stay cheap.
"""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

from slob.testing import tws_messages as msg
from slob.testing.futures import FutureContract, active_contracts, session_day
from slob.testing.scenario import RandomWalkScenario, Scenario, SimClock, Trade, from_ns

_NS = 1_000_000_000
log = logging.getLogger("slob.testing.fake_tws")

# Live tick type -> delayed tick type (TWS-FACTS §4: 66-76 and 88).
DELAYED = {0: 69, 1: 66, 2: 67, 3: 70, 4: 68, 5: 71, 6: 72, 7: 73, 8: 74, 9: 75, 14: 76, 45: 88}
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, VOLUME, LAST_TIMESTAMP = 0, 1, 2, 3, 4, 5, 8, 45
HIGH, LOW, CLOSE, OPEN = 6, 7, 9, 14
_PRICE_SIZE = ((BID, BID_SIZE), (ASK, ASK_SIZE), (LAST, LAST_SIZE))
TICK_BY_TICK_TYPES = ("Last", "AllLast", "BidAsk", "MidPoint")
#: ``SentTick.kind`` values: the tick-by-tick types that carry trades, and market data.
TRADE_KINDS = ("Last", "AllLast", "mkt")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class SentTick:
    """One trade tick the fake TWS handed to a client's socket.

    ``session`` numbers the fake's accepted connections from 1 (a reconnect is a new
    session); ``req_id`` is the subscription's request id; ``contract`` the local symbol;
    ``time`` the exchange time in Unix seconds, as on the wire; ``kind`` ``"Last"``,
    ``"AllLast"`` (tick-by-tick) or ``"mkt"`` (a market-data LAST). ``trade`` numbers the
    market's trades: one trade sent to two subscriptions (an old and a new one around a
    resubscription) shows the same number twice. ``resend`` marks a tick repeating a trade
    already printed before the subscription began (a market-data subscription's initial
    snapshot carries the last trade). ``sent_ns`` is ``time.monotonic_ns()`` at the moment
    the frame went to the transport (after a stall: when the held frames were released).
    """

    client_id: int
    session: int
    req_id: int
    contract: str
    time: int
    price: float
    size: int
    kind: str
    resend: bool
    trade: int
    sent_ns: int

    @property
    def timestamp(self) -> dt.datetime:
        """The exchange time as a tz-aware UTC datetime (what ``Tick.timestamp`` holds)."""
        return _EPOCH + dt.timedelta(seconds=self.time)


class SentLog:
    """Append-only, thread-safe record of the trade ticks written to sockets. Columnar
    (arrays of numbers, contract names interned) to stay small over long runs."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._ints = array.array("q")  # per tick: client, session, req, contract, time, size, flags, trade, ns
        self._prices = array.array("d")
        self._names: list[str] = []
        self._index: dict[str, int] = {}

    _WIDTH = 9

    def record(self, client_id: int, session: int, req_id: int, contract: str, unix_s: int, price: float,
               size: int, kind: str, resend: bool, trade: int, sent_ns: int) -> None:
        if not self.enabled:
            return
        name = self._index.get(contract)
        if name is None:
            name = self._index[contract] = len(self._names)
            self._names.append(contract)
        flags = TRADE_KINDS.index(kind) | (4 if resend else 0)
        with self._lock:
            self._ints.extend((client_id, session, req_id, name, unix_s, size, flags, trade, sent_ns))
            self._prices.append(price)

    def __len__(self) -> int:
        with self._lock:
            return len(self._prices)

    def ticks(self, client_id: int | None = None, since: int = 0) -> list[SentTick]:
        """The ticks recorded from position ``since`` on (of ``client_id``, if given)."""
        with self._lock:
            w = self._WIDTH
            ints, prices, names = self._ints[since * w:], self._prices[since:], list(self._names)
        out: list[SentTick] = []
        for i, price in enumerate(prices):
            c, sess, req, name, t, size, flags, trade, ns = ints[i * w:(i + 1) * w]
            if client_id is None or c == client_id:
                out.append(SentTick(c, sess, req, names[name], t, price, size, TRADE_KINDS[flags & 3],
                                    bool(flags & 4), trade, ns))
        return out

    def clear(self) -> None:
        with self._lock:
            del self._ints[:]
            del self._prices[:]


def default_scenarios(seed: int) -> dict[str, Scenario]:
    return {
        "NQ": RandomWalkScenario(seed=seed, start_price=21_000.0),
        "ES": RandomWalkScenario(seed=seed + 1, start_price=6_000.0, trades_per_second=8.0),
    }


@dataclass
class DayStats:
    """The family's session open/high/low and the previous session's close."""

    day: object = None
    open: float = math.nan
    high: float = math.nan
    low: float = math.nan
    close: float = math.nan
    last: float = math.nan

    def update(self, trade: Trade) -> None:
        day = session_day(from_ns(trade.time_ns))
        if day != self.day:
            self.close = self.last if not math.isnan(self.last) else trade.price
            self.day, self.open, self.high, self.low = day, trade.price, trade.price, trade.price
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.last = trade.price


class MarketClient(Protocol):
    """What the market needs of a client connection it streams to (the FakeTWS session,
    :class:`slob.testing.fake_session.Session`, is one): the market is given its clients,
    it does not import the session that made them."""

    @property
    def server_version(self) -> int: ...

    def send(self, frame: bytes) -> None: ...

    def send_trade(self, frame: bytes, trade: tuple[int, str, int, float, int, str, bool, int]) -> None: ...

    async def drained(self) -> None: ...


@dataclass(eq=False)
class Subscription:
    session: MarketClient
    req_id: int
    contract: FutureContract
    kind: str  # "mkt" or one of TICK_BY_TICK_TYPES
    delayed: bool = False
    # market data: what the client has been told, and what changed since
    sent: dict[int, float] = field(default_factory=dict)
    pending: dict[int, float] = field(default_factory=dict)
    volume: int = 0
    last_quote: tuple[float, float, int, int] | None = None
    #: market data: the trade behind the pending LAST (sequence, Unix second, price, size, resend)
    pending_trade: tuple[int, int, float, int, bool] | None = None

    def wire_type(self, tick_type: int) -> int:
        return DELAYED.get(tick_type, tick_type) if self.delayed else tick_type


class Market:
    """Owns time and the subscriptions; one per fake TWS."""

    def __init__(
        self,
        clock: SimClock,
        scenarios: dict[str, Scenario],
        *,
        md_interval: float = 0.25,
        batch: int = 256,
        sent: SentLog | None = None,
    ) -> None:
        self.clock = clock
        #: Every trade tick written to a socket (see :class:`SentTick`).
        self.sent = sent if sent is not None else SentLog()
        self.trades_played = 0  # sequence numbers of the trades, from 1
        self.md_interval_ns = max(1, int(md_interval * _NS))
        self._batch = batch
        self._streams: dict[str, Iterator[Trade]] = {}
        self._next: dict[str, Trade | None] = {}
        start = clock.now_ns()
        for family, scenario in scenarios.items():
            it = scenario.events(start)
            self._streams[family] = it
            self._next[family] = next(it, None)
        self.last: dict[str, Trade] = {}
        self.last_seq: dict[str, int] = {}
        self._basis: dict[str, float] = {}
        self.stats: dict[str, DayStats] = {family: DayStats() for family in scenarios}
        self.subs: dict[tuple[int, int], Subscription] = {}  # (id(session), req_id)
        self.flowing = True  # False while IB<->TWS connectivity is "lost" (1100)
        self.stalled = False
        self._flush_due: int | None = None
        #: Called with (family, trade) after each trade's market data went out: the order
        #: book matches working orders there.
        self.on_trade: Callable[[str, Trade], None] | None = None
        #: Whether something besides subscriptions waits for trades (working orders): at
        #: speed inf time then runs without subscribers too.
        self.wants_trades: Callable[[], bool] | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set after every step of run()
        self._loop = asyncio.get_running_loop()
        clock.subscribe(self.wake_threadsafe)

    # -- control ---------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def wake_threadsafe(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # loop closed: nothing to wake
            pass

    def close(self) -> None:
        self.clock.unsubscribe(self.wake_threadsafe)

    def add(self, sub: Subscription) -> None:
        self.subs[(id(sub.session), sub.req_id)] = sub
        self.wake()

    def remove(self, session: MarketClient, req_id: int) -> Subscription | None:
        return self.subs.pop((id(session), req_id), None)

    def remove_session(self, session: MarketClient) -> None:
        for key in [k for k, s in self.subs.items() if s.session is session]:
            del self.subs[key]

    def count(self, session: MarketClient, kinds: tuple[str, ...]) -> int:
        return sum(1 for s in self.subs.values() if s.session is session and s.kind in kinds)

    # -- prices ----------------------------------------------------------------

    def contract_price(self, contract: FutureContract, front_price: float, now_ns: int) -> float:
        """Front price plus a carry basis of ~0.4 % a quarter, on the tick grid. The basis
        is fixed per family (from the price it first sees), so a later contract's prices
        are the front's shifted by a constant: the same candles, setups included."""
        listed = active_contracts(contract.spec.root, from_ns(now_ns))
        quarters = contract.quarters_after(listed[0]) if listed else 0
        if quarters <= 0:
            return front_price
        tick = contract.spec.min_tick
        family = contract.spec.family
        basis = self._basis.get(family)
        if basis is None:
            basis = self._basis[family] = round(front_price * 0.004 / tick) * tick
        return front_price + quarters * basis

    def snapshot(self, sub: Subscription) -> None:
        """Send the current quote and last trade to a new market-data subscription."""
        family = sub.contract.spec.family
        trade = self.last.get(family)
        if trade is None:
            return
        self._mark(sub, trade, self.clock.now_ns(), initial=True, seq=self.last_seq.get(family, 0))
        self._flush_sub(sub)

    # -- the loop --------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._step()
            self._progress.set()

    def caught_up(self) -> bool:
        """Every trade due by the clock has been played (and matched against orders)."""
        head = self._peek()
        return head is None or head[1].time_ns > self.clock.now_ns()

    async def settle(self, timeout: float) -> None:
        """Return once :meth:`caught_up`; TimeoutError after ``timeout`` seconds (a stalled
        market, or speed inf, where the next trade is always due, never settles)."""
        async def wait() -> None:
            while not self.caught_up():
                self._progress.clear()
                await self._progress.wait()
        await asyncio.wait_for(wait(), timeout)

    def _peek(self) -> tuple[str, Trade] | None:
        best: tuple[str, Trade] | None = None
        for family, trade in self._next.items():
            if trade is not None and (best is None or trade.time_ns < best[1].time_ns):
                best = (family, trade)
        return best

    async def _step(self) -> None:
        if self.stalled:
            await self._sleep(None)
            return
        head = self._peek()
        target = head[1].time_ns if head else None
        if self._flush_due is not None and (target is None or self._flush_due <= target):
            target = self._flush_due
        if target is None:
            await self._sleep(None)
            return
        clock = self.clock
        if clock.speed == math.inf:
            if not self.subs and not (self.wants_trades is not None and self.wants_trades()):
                await self._sleep(None)  # time only runs while someone listens
                return
            clock.set_ns(target)
        else:
            delay = clock.real_seconds_until(target)
            if delay is None or delay > 0:
                await self._sleep(delay)
                return
        sent = 0
        now = clock.now_ns()
        while sent < self._batch:
            if self._flush_due is not None and self._flush_due <= now:
                head = self._peek()
                if head is None or self._flush_due <= head[1].time_ns:
                    self._flush_all()
                    continue
            head = self._peek()
            if head is None or head[1].time_ns > now:
                break
            family, trade = head
            self._next[family] = next(self._streams[family], None)
            self.trades_played += 1
            self.last[family] = trade
            self.last_seq[family] = self.trades_played
            self.stats[family].update(trade)
            if self.flowing:
                sent += self._dispatch(family, trade, self.trades_played)
                self._match(family, trade)
        await self._backpressure()

    def _match(self, family: str, trade: Trade) -> None:
        if self.on_trade is None:
            return
        try:
            self.on_trade(family, trade)
        except Exception:  # a fake-TWS bug must not stop the market
            log.exception("fake TWS order matching failed on %s %r", family, trade)

    async def _sleep(self, seconds: float | None) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _backpressure(self) -> None:
        """Let clients drain: wait for any session whose socket buffer is full."""
        for session in {id(s.session): s.session for s in self.subs.values()}.values():
            await session.drained()
        await asyncio.sleep(0)

    # -- dispatch --------------------------------------------------------------

    def _dispatch(self, family: str, trade: Trade, seq: int) -> int:
        unix_s = trade.time_ns // _NS
        n = 0
        for sub in list(self.subs.values()):
            contract = sub.contract
            if contract.spec.family != family:
                continue
            session = sub.session
            sv = session.server_version
            if sub.kind == "mkt":
                self._mark(sub, trade, trade.time_ns, seq=seq)
                continue
            price = self.contract_price(contract, trade.price, trade.time_ns)
            shift = price - trade.price
            if sub.kind in ("Last", "AllLast"):
                session.send_trade(
                    msg.tbt_last(sub.req_id, sub.kind == "AllLast", unix_s, price, trade.size,
                                 0, contract.spec.exchange, "", sv),
                    (sub.req_id, contract.local_symbol, unix_s, price, trade.size, sub.kind, False, seq),
                )
                n += 1
            else:
                quote = (trade.bid + shift, trade.ask + shift, trade.bid_size, trade.ask_size)
                if quote == sub.last_quote:
                    continue
                previous, sub.last_quote = sub.last_quote, quote
                if sub.kind == "BidAsk":
                    session.send(msg.tbt_bid_ask(sub.req_id, unix_s, *quote, 0, sv))
                    n += 1
                elif previous is None or previous[:2] != quote[:2]:
                    session.send(msg.tbt_midpoint(sub.req_id, unix_s, (quote[0] + quote[1]) / 2, sv))
                    n += 1
        return n

    def _mark(self, sub: Subscription, trade: Trade, now_ns: int, initial: bool = False, seq: int = 0) -> None:
        shift = self.contract_price(sub.contract, trade.price, trade.time_ns) - trade.price
        sub.pending_trade = (seq, trade.time_ns // _NS, trade.price + shift, trade.size, initial)
        p = sub.pending
        p[BID], p[BID_SIZE] = trade.bid + shift, trade.bid_size
        p[ASK], p[ASK_SIZE] = trade.ask + shift, trade.ask_size
        p[LAST] = trade.price + shift
        if not initial:
            p[LAST_SIZE] = trade.size
            sub.volume += trade.size
        else:
            p[LAST_SIZE] = trade.size
        p[VOLUME] = sub.volume
        p[LAST_TIMESTAMP] = trade.time_ns // _NS
        stats = self.stats.get(sub.contract.spec.family)
        if stats is not None and not math.isnan(stats.high):
            p[HIGH], p[LOW] = stats.high + shift, stats.low + shift
            p[CLOSE], p[OPEN] = stats.close + shift, stats.open + shift  # sent when they change
        if self._flush_due is None and not initial:
            self._flush_due = (now_ns // self.md_interval_ns + 1) * self.md_interval_ns

    def _flush_all(self) -> None:
        assert self._flush_due is not None
        if self.clock.speed == math.inf:
            self.clock.set_ns(self._flush_due)
        self._flush_due = None
        for sub in list(self.subs.values()):
            if sub.kind == "mkt" and sub.pending:
                self._flush_sub(sub)

    def _flush_sub(self, sub: Subscription) -> None:
        """Send what changed since the last flush, the way TWS does: a TICK_PRICE (which
        carries its size) when a price moved, a lone TICK_SIZE when only a size did."""
        session, sv, rid = sub.session, sub.session.server_version, sub.req_id
        p, sent = sub.pending, sub.sent
        for price_type, size_type in _PRICE_SIZE:
            price, size = p.get(price_type), p.get(size_type)
            moved = LAST_SIZE in p if price_type == LAST else price != sent.get(price_type)
            if price is not None and moved:
                frame = msg.tick_price(rid, sub.wire_type(price_type), price, int(size if size is not None else 0), 0, sv)
                trade = sub.pending_trade if price_type == LAST else None
                if trade is not None:
                    seq, unix_s, _, trade_size, resend = trade
                    session.send_trade(frame, (rid, sub.contract.local_symbol, unix_s, price, trade_size, "mkt",
                                               resend, seq))
                else:
                    session.send(frame)
                sent[price_type] = price
                if size is not None:
                    sent[size_type] = size
            elif size is not None and size != sent.get(size_type):
                session.send(msg.tick_size(rid, sub.wire_type(size_type), int(size), sv))
                sent[size_type] = size
        for price_type in (HIGH, LOW, CLOSE, OPEN):
            value = p.get(price_type)
            if value is not None and value != sent.get(price_type):
                session.send(msg.tick_price(rid, sub.wire_type(price_type), value, 0, 0, sv))
                sent[price_type] = value
        if VOLUME in p and p[VOLUME] != sent.get(VOLUME):
            session.send(msg.tick_size(rid, sub.wire_type(VOLUME), int(p[VOLUME]), sv))
            sent[VOLUME] = p[VOLUME]
        if LAST_TIMESTAMP in p and p[LAST_TIMESTAMP] != sent.get(LAST_TIMESTAMP):
            session.send(msg.tick_string(rid, sub.wire_type(LAST_TIMESTAMP), str(int(p[LAST_TIMESTAMP])), sv))
            sent[LAST_TIMESTAMP] = p[LAST_TIMESTAMP]
        p.clear()
        sub.pending_trade = None

