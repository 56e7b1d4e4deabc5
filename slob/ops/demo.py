"""`slob demo`: the whole engine trading two planted SLOB setups on an embedded fake TWS.

:class:`~slob.testing.FakeTWS` serves the TWS wire protocol on a free loopback port and
replays :func:`demo_market`: two trading days from
:func:`~slob.strategy.setup_planting.plant_setup` (a short that reaches its target, a long
that is stopped out) joined by a seeded random walk, every candle played as noisy trades.
:class:`~slob.live.LiveTradingEngine` connects through :class:`~slob.live.IBWSFetcher`
(IB's client), builds candles, finds the setups, places the brackets, receives the fills
and records it all in SQLite. Only the market is simulated.

Pacing: FakeTWS's clock is paused and the demo steps it (:func:`schedule`), each step
ending a second after a candle's open. After a step the demo waits until the engine has
every trade due and has turned a triggered setup into its bracket, and while orders work
until FakeTWS has processed them and sent the fills: every order meets exactly the trades
a market would have shown it, however fast the run. The steps share a real-time budget by
weight (quiet 1, a forming setup 8, an open trade 3) so that the run takes about
``seconds``; one-minute steps are split into ~quarter-second sub-steps that keep the
prices moving (no candle closes within them). ``seconds=0``: as fast as possible.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from slob.ib.errors import SlobError
from slob.live import IBWSFetcher
from slob.live.live_trading_engine import LiveTradingEngine
from slob.execution.order_executor import BracketPlaced, SetupSkipped
from slob.strategy.setup_planting import PlantedSetup, plant_setup
from slob.market.sessions import nyse_session, trading_day
from slob.strategy.setup_tracker import Direction, SetupChanged, SetupTracker, State
from slob.store.store import Store
from slob.model import Candle, CandleClosed, ErrorReported, Tick
from slob.orders import CommissionReported, Execution, OrderError
from slob.testing import FakeTWS, ScriptedScenario
from slob.testing.futures import is_cme_open
from slob.testing.scenario import Trade, to_ns

__all__ = ["DemoMarket", "DemoStats", "Step", "TradeRow", "demo_days", "demo_market", "run_demo", "schedule"]

_MINUTE = dt.timedelta(minutes=1)
_SECOND = dt.timedelta(seconds=1)
QUIET, FORMING, TRADING = 1.0, 8.0, 3.0  # real-time weights of a step
SUB_STEP_SECONDS = 0.25
TIMEOUT = 20.0  # real seconds any single wait may take before the demo calls itself stalled


def demo_days() -> tuple[PlantedSetup, PlantedSetup]:
    """A short that reaches its target on Wed 2025-03-05, a long stopped out the next day."""
    return (
        plant_setup(dt.date(2025, 3, 5), Direction.SHORT, lse_high=20100, lse_low=19950, outcome="target"),
        plant_setup(dt.date(2025, 3, 6), Direction.LONG, lse_high=20050, lse_low=19900, outcome="stop"),
    )


@dataclass(frozen=True)
class DemoMarket:
    """The planted days, every minute the market trades (planted or filler), as trades."""

    days: tuple[PlantedSetup, PlantedSetup]
    candles: tuple[Candle, ...]
    script: ScriptedScenario
    trade_ns: list[int]  # every trade's time, in order


def demo_market(seed: int = 7, tick: float = 0.25) -> DemoMarket:
    """Day 1, its evening (a drift back above the LSE low, then a walk inside the day's
    LSE range: no new sweep), the overnight session (thin, drifting to day 2's open), day 2.
    Each candle becomes trades: the open at :00, noisy trades between :02 and :58 through
    both extremes (the far one first), the close at :59 -- nothing trades in a candle's
    first two seconds, so a market order sent at its open fills at that open. ValueError if
    a tracker would trigger anything but the planted setups (a bug, the market is seeded)."""
    short, long = days = demo_days()
    rng = random.Random(seed)
    close_1 = nyse_session(short.candles[0].start.date())[1]
    evening = _filler(short.candles[-1].end, close_1, short.candles[-1].close, 20010.0,
                      (short.lse_low + tick, short.lse_high - tick), rng, tick)
    night = _filler(close_1, long.candles[0].start, evening[-1].close, long.candles[0].open,
                    (19800.0, 20200.0), rng, tick)
    candles = (*short.candles, *evening, *night, *long.candles)
    tracker = SetupTracker()
    triggered = [e.setup_id for c in candles for e in tracker.on_candle(c)
                 if isinstance(e, SetupChanged) and e.state is State.TRIGGERED]
    if triggered != [d.setup_id for d in days]:
        raise ValueError(f"the demo market triggers {triggered}, not just the planted setups")
    busy = [(d.liq1_at - 3 * _MINUTE, d.candles[-1].end) for d in days]
    trades = [t for c in candles for t in _candle_trades(c, rng, tick, (
        (20, 40) if any(a <= c.start < b for a, b in busy) else (4, 12) if trading_day(c.start) else (2, 4)))]
    return DemoMarket(days, candles, ScriptedScenario(trades), [t.time_ns for t in trades])


def _filler(start: dt.datetime, end: dt.datetime, price: float, goal: float, band: tuple[float, float],
            rng: random.Random, tick: float) -> list[Candle]:
    """Random-walk candles for the CME minutes in [start, end), from ``price`` to ``goal``."""
    minutes = [t for i in range((end - start) // _MINUTE) if is_cme_open(t := start + i * _MINUTE)]
    candles = []
    for k, t in enumerate(minutes):
        close = price + (goal - price) / (len(minutes) - k) + rng.gauss(0.0, 1.5)
        close = min(max(round(close / tick) * tick, band[0]), band[1])
        high = max(price, min(max(price, close) + rng.randint(0, 4) * tick, band[1]))
        low = min(price, max(min(price, close) - rng.randint(0, 4) * tick, band[0]))
        candles.append(Candle("NQ", "", 60, t, price, high, low, close, volume=0.0, trades=0))
        price = close
    return candles


def _candle_trades(c: Candle, rng: random.Random, tick: float, count: tuple[int, int]) -> list[Trade]:
    first, second = (c.low, c.high) if c.close >= c.open else (c.high, c.low)
    n = rng.randint(*count)
    secs = sorted(rng.uniform(2.0, 58.0) for _ in range(n))
    i, j = sorted(rng.sample(range(n), 2))
    anchors = [(0.0, c.open), (secs[i], first), (secs[j], second), (59.0, c.close)]
    points = [anchors[0]]
    for k, s in enumerate(secs):
        if k in (i, j):
            points.append((s, first if k == i else second))
            continue
        seg = min(bisect.bisect_right([a[0] for a in anchors], s), 3)
        (s0, p0), (s1, p1) = anchors[seg - 1], anchors[seg]
        price = p0 + (p1 - p0) * (s - s0) / (s1 - s0) + rng.choice((-2, -1, 0, 0, 1, 2)) * tick
        points.append((s, min(max(round(price / tick) * tick, c.low), c.high)))
    points.append(anchors[-1])
    base, trades, prev = to_ns(c.start), [], c.open
    for s, price in points:
        bid, ask = (price - tick, price) if price >= prev else (price, price + tick)
        trades.append(Trade(base + int(s * 1e9), price, min(20, int(rng.paretovariate(1.5))), bid, ask,
                            rng.randint(5, 25), rng.randint(5, 25)))
        prev = price
    return trades


@dataclass(frozen=True, slots=True)
class Step:
    """Advance the paused clock to ``at`` (a second after a candle's open) using
    ``weight`` shares of the real-time budget."""

    at: dt.datetime
    weight: float


def schedule(market: DemoMarket) -> list[Step]:
    """One-minute steps from three minutes before each LIQ #1 to the planted day's end;
    elsewhere ten-minute steps in the LSE/NYSE sessions and hourly ones outside them."""
    windows = [(d.liq1_at - 3 * _MINUTE, d.ready_at, d.candles[-1].end) for d in market.days]
    steps: list[Step] = []
    for c in market.candles:
        w = next((w for w in windows if w[0] <= c.end <= w[2]), None)
        if w is not None:
            steps.append(Step(c.end + _SECOND, FORMING if c.end <= w[1] else TRADING))
        elif c.end.minute % (10 if trading_day(c.start) else 60) == 0 or c is market.candles[-1]:
            steps.append(Step(c.end + _SECOND, QUIET))
    return steps


@dataclass
class TradeRow:
    """One bracket and what became of it."""

    setup_id: str
    direction: str
    ids: tuple[int, int, int]  # parent (entry), take profit, stop
    stop: float
    target: float
    entry: float | None = None
    exit: float | None = None
    exit_by: str = ""  # "target" | "stop"
    pnl: float | None = None  # realized, net of both commissions


@dataclass
class DemoStats:
    """What the run has seen so far; the display reads it while the run updates it."""

    db: Path
    port: int = 0
    contract: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    sim_start: dt.datetime | None = None
    sim_time: dt.datetime | None = None
    ticks: int = 0
    last_price: float = math.nan
    candles: dict[int, int] = field(default_factory=dict)  # interval seconds -> closed candles
    setups: dict[str, State] = field(default_factory=dict)
    triggered: int = 0
    trades: list[TradeRow] = field(default_factory=list)
    fills: int = 0
    position: float = 0.0
    realized_pnl: float = 0.0
    open_pnl: float = 0.0  # the open position marked at the last trade
    commissions: float = 0.0
    max_drawdown: float = 0.0
    problems: list[str] = field(default_factory=list)
    feed: dict[str, object] = field(default_factory=dict)
    db_counts: dict[str, int] = field(default_factory=dict)
    planted: tuple[PlantedSetup, ...] = ()

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class _Observer:
    """Follows the engine's bus: updates :class:`DemoStats`, reports notable events."""

    def __init__(self, stats: DemoStats, say: Callable[[str], None], multiplier: float) -> None:
        self.stats, self.say, self.multiplier = stats, say, multiplier
        self.pending: set[str] = set()  # triggered setups whose bracket is not placed yet
        self.changed = asyncio.Event()  # set after every event: the fence re-checks
        self._by_order: dict[int, TradeRow] = {}
        self._by_exec: dict[str, TradeRow] = {}
        self._avg = self._peak = 0.0
        self.runner: asyncio.Task[None] | None = None  # the engine's run(): watched while waiting

    def attach(self, engine: LiveTradingEngine) -> None:
        for kind, handler in ((Tick, self.tick), (CandleClosed, self.candle), (SetupChanged, self.setup),
                              (BracketPlaced, self.bracket), (SetupSkipped, self.skipped),
                              (Execution, self.execution), (CommissionReported, self.commission),
                              (OrderError, self.order_error), (ErrorReported, self.error)):
            engine.bus.subscribe(kind, self._then_changed(handler))

    def _then_changed(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        def call(event: Any) -> None:
            handler(event)
            self.changed.set()
        return call

    def _event(self, text: str, problem: bool = False) -> None:
        t = self.stats.sim_time
        self.say(f"{t:%Y-%m-%d %H:%M} UTC  {text}" if t else text)
        if problem:
            self.stats.problems.append(text)

    def tick(self, tick: Tick) -> None:
        s = self.stats
        s.ticks += 1
        s.last_price, s.sim_time, s.contract = tick.price, tick.timestamp, tick.contract
        s.open_pnl = s.position * (tick.price - self._avg) * self.multiplier
        if s.position:
            self._mark(s.open_pnl)

    def _mark(self, unrealized: float) -> None:
        equity = self.stats.realized_pnl + unrealized
        self._peak = max(self._peak, equity)
        self.stats.max_drawdown = max(self.stats.max_drawdown, self._peak - equity)

    def candle(self, event: CandleClosed) -> None:
        n = event.candle.interval_seconds
        self.stats.candles[n] = self.stats.candles.get(n, 0) + 1

    def setup(self, e: SetupChanged) -> None:
        self.stats.setups[e.setup_id] = e.state
        if e.state is State.TRIGGERED:
            self.stats.triggered += 1
            self.pending.add(e.setup_id)
        self.say(f"{e.at:%Y-%m-%d %H:%M} UTC  setup {e.setup_id}: {e.state.value} ({e.reason})")

    def bracket(self, b: BracketPlaced) -> None:
        row = TradeRow(b.setup_id, b.direction, (b.parent_id, b.take_profit_id, b.stop_id),
                       b.stop, b.target)
        self.stats.trades.append(row)
        self._by_order.update(dict.fromkeys(row.ids, row))
        self.pending.discard(b.setup_id)
        self._event(f"bracket {b.setup_id}: {b.direction} {b.quantity} {b.contract} at market, stop "
                    f"{b.stop:.2f}, target {b.target:.2f} (orders {b.parent_id}/{b.take_profit_id}/{b.stop_id})")

    def skipped(self, e: SetupSkipped) -> None:
        self.pending.discard(e.setup_id)
        self._event(f"setup {e.setup_id} not placed: {e.reason}", problem=True)

    def order_error(self, e: OrderError) -> None:
        row = self._by_order.get(e.order_id)
        if e.code == 202 and row is not None and row.exit is not None:  # OCA: the sibling filled
            self._event(f"order {e.order_id} cancelled: the other exit of {row.setup_id} filled")
        else:
            self._event(f"order {e.order_id}: error {e.code} {e.text}", problem=True)

    def error(self, e: ErrorReported) -> None:
        self.pending = {p for p in self.pending if e.where != f"orders for {p}"}
        self._event(f"error in {e.where}: {e.error}", problem=True)

    def execution(self, e: Execution) -> None:
        s = self.stats
        s.fills += 1
        signed = e.shares if e.side == "BOT" else -e.shares
        if s.position == 0 or (s.position > 0) == (signed > 0):
            self._avg = (self._avg * abs(s.position) + e.price * abs(signed)) / (abs(s.position) + abs(signed))
        s.position += signed
        s.open_pnl = s.position * (e.price - self._avg) * self.multiplier
        row, what = self._by_order.get(e.order_id), "fill"
        if row is not None:
            self._by_exec[e.exec_id] = row
            if e.order_id == row.ids[0]:
                row.entry, what = e.price, "entry"
            else:
                row.exit, row.exit_by = e.price, "target" if e.order_id == row.ids[1] else "stop"
                what = row.exit_by
        self.say(f"{e.time:%Y-%m-%d %H:%M:%S} UTC  fill {e.side} {e.shares:g} {e.contract} @ {e.price:.2f} "
                 f"({what}, order {e.order_id})")

    def commission(self, c: CommissionReported) -> None:
        s = self.stats
        s.commissions += c.commission
        row = self._by_exec.get(c.exec_id)
        if c.realized_pnl is not None:
            s.realized_pnl += c.realized_pnl
            self._mark(0.0)
            if row is not None:
                row.pnl = (row.pnl or 0.0) + c.realized_pnl
                self._event(f"trade {row.setup_id} closed at its {row.exit_by}: {c.realized_pnl:+,.2f} USD")

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        """Wait until ``predicate()`` holds; if the engine stops first, re-raise its failure
        or (stopped by SIGINT/SIGTERM) _Stopped."""
        async def wait() -> None:
            while not predicate():
                if self.runner is not None and self.runner.done():
                    self.runner.result()
                    raise _Stopped
                self.changed.clear()
                await self.changed.wait()
        try:
            await asyncio.wait_for(wait(), TIMEOUT)
        except asyncio.TimeoutError:
            raise SlobError(f"the demo stalled waiting for {what}; rerun with --log-level DEBUG") from None


def run_demo(
    *, seconds: float = 60.0, db: Path | None = None, say: Callable[[str], None] = lambda _: None,
    on_stats: Callable[[DemoStats], None] | None = None,
) -> DemoStats:
    """Run the demo in about ``seconds`` of real time (0: as fast as possible), writing the
    SQLite database ``db`` (which must not exist; default: in a new temporary directory).
    ``say`` receives one line per notable event; ``on_stats`` (if given) is called with
    the live statistics once they exist, before the first tick."""
    if db is None:
        db = Path(tempfile.mkdtemp(prefix="slob-demo-")) / "demo.sqlite3"
    elif db.exists():
        raise SlobError(f"{db} already exists; the demo writes a new database (remove it or choose another --db)")
    stats = DemoStats(db=db)
    try:
        asyncio.run(_demo(stats, seconds, say, on_stats))
    except _Stopped:
        raise KeyboardInterrupt from None
    return stats


class _Stopped(Exception):
    """The engine stopped on SIGINT/SIGTERM before the demo was done."""


async def _demo(stats: DemoStats, seconds: float, say: Callable[[str], None],
                on_stats: Callable[[DemoStats], None] | None) -> None:
    market = demo_market()
    stats.planted = market.days
    start = market.candles[0].start - _MINUTE
    stats.sim_start = start
    async with FakeTWS(start=start, speed=0, scenarios={"NQ": market.script}) as tws:
        stats.port = tws.port
        say(f"fake TWS on 127.0.0.1:{tws.port}: {len(market.trade_ns):,} NQ trades over 2 days with 2 planted setups; "
            f"its clock starts paused at {start:%Y-%m-%d %H:%M} UTC, stepped by the demo")
        fetcher = IBWSFetcher(host="127.0.0.1", port=tws.port, client_id=1, account="DU1234567")
        engine = LiveTradingEngine(data_source="ib", ib_fetcher=fetcher, symbols=["NQ"], store=stats.db)
        await engine.start()
        details = fetcher.details_for("NQ")
        multiplier = float(details.contract.multiplier or 20) if details is not None else 20.0
        stats.contract = details.contract.localSymbol if details is not None else "NQ"
        observer = _Observer(stats, say, multiplier)
        observer.attach(engine)
        feed = fetcher.get_stats()
        say(f"engine connected through IB's client (ibapi {feed['ibapi_version']}, server version "
            f"{feed['server_version']}), trading {stats.contract} on paper account DU1234567; "
            f"database {stats.db}")
        if on_stats is not None:
            on_stats(stats)
        runner = observer.runner = asyncio.create_task(engine.run(), name="slob-demo-engine")
        runner.add_done_callback(lambda _: observer.changed.set())
        try:
            await _step_through(tws, fetcher, engine, observer, schedule(market), market.trade_ns, seconds, start)
        finally:
            await engine.stop()
            await asyncio.wait_for(runner, TIMEOUT)
    stats.finished = time.monotonic()
    stats.feed = engine.get_stats()["feed"]
    with Store(stats.db) as store:
        stats.db_counts = store.counts()


async def _step_through(tws: FakeTWS, fetcher: IBWSFetcher, engine: LiveTradingEngine, observer: _Observer,
                        steps: list[Step], trade_ns: list[int], seconds: float, start: dt.datetime) -> None:
    loop, stats = asyncio.get_running_loop(), observer.stats
    unit = seconds / sum(s.weight for s in steps) if seconds > 0 else 0.0
    deadline = loop.time()
    previous = start
    for step in steps:
        budget = step.weight * unit
        parts = min(30, max(1, round(budget / SUB_STEP_SECONDS))) if step.at - previous == _MINUTE else 1
        for i in range(1, parts):  # only to keep the prices moving: no candle closes in between
            tws.clock.set(previous + (step.at - previous) * i / parts)
            deadline += budget / parts
            await asyncio.sleep(max(0.0, deadline - loop.time()))
        tws.clock.set(step.at)
        # the fence: the engine has every trade due and has acted on it, and while orders
        # work FakeTWS has processed what the engine sent and its answers (fills) are in
        await asyncio.to_thread(tws.settle)
        due = bisect.bisect_right(trade_ns, to_ns(step.at))
        await observer.until(lambda: stats.ticks >= due, f"the trades up to {step.at:%H:%M:%S}")
        await observer.until(lambda: not observer.pending, "a bracket order to be placed")
        if any(t.exit is None for t in stats.trades) or (engine.executor and engine.executor.position):
            await fetcher.server_time()  # FakeTWS has processed what the engine sent
            await asyncio.to_thread(tws.settle)  # and matched it against the trades so far
            await fetcher.server_time()  # its answers (fills, commissions) are in
        deadline += budget / parts
        await asyncio.sleep(max(0.0, deadline - loop.time()))  # pacing, not synchronisation
        previous = step.at
