"""LiveTradingEngine: ticks -> candles -> strategy hook, recorded in SQLite.

The original design's engine, with either data source::

    ib_fetcher = IBWSFetcher(host="127.0.0.1", port=7497, client_id=1, account="DU1234567")
    engine = LiveTradingEngine(data_source="ib", ib_fetcher=ib_fetcher, symbols=["NQ"], paper_trading=True)
    await engine.start()
    await engine.run()          # until engine.stop(), SIGINT or SIGTERM

Per tick (on the event loop, in the fetcher's ``listen`` task): publish on the
:class:`EventBus`, queue it for the store, feed the symbol's :class:`CandleAggregator`;
every closed candle is stored, published as :class:`CandleClosed` and handed to
``on_candle`` (the strategy hook; the SLOB tracker plugs in there). Connection events
(lost, restored, gaps, rolls) are published and stored too. A timer closes candles when
the market goes quiet. ``stop()`` (or a signal) closes open candles, cancels the
subscriptions, disconnects and flushes the store: nothing is lost on a clean stop.

Orders: the OrderExecutor reconciles with TWS before any signal (at start, so after a
restart too), and again after every reconnect or 1101: through the fetcher's
``on_reconcile`` hook and on ``ConnectionRestored`` (reconciliation is idempotent).

A restart is an outage too. Each run is recorded in the store's ``runs`` table and marked
stopped by a clean :meth:`LiveTradingEngine.stop`; a run that started on a store whose
previous run was never marked stopped (kill -9, OOM, power loss) records one
:class:`~slob.model.Gap` in exchange time, from the last stored tick to the first tick of
the new run, caused "engine restarted after an unclean stop".

Market memory (``memory=MemoryConfig()``, on by default; docs/history.md). Before the
strategy sees a live candle the engine warms up: today's 1-minute candles from the LSE
open come from the store where it holds them and from TWS's historical bars where it
does not (slob.live.warmup), replayed through the aggregator and the tracker with trading
off, and the live ticks take over from the first minute they saw whole. After every
outage the missing minutes are filled the same way before the tracker sees the next live
candle (slob.live.gapfill, one :class:`~slob.live.gapfill.GapFiller` per symbol). A
trigger found in replayed minutes is traded only if its entry candle is the current
minute; a setup already placed (an intent in the store, an order at TWS) is never sent
again. Minutes history could not supply are reported (WARNING, a
:class:`~slob.model.HistoryUnavailable` on the bus, ``get_stats()["memory"]``); when some
of a day's LSE session is missing its setups are not traded unless
``MemoryConfig.trade_without_levels``.

Paper is the default: ``paper_trading=False`` needs ``allow_live=True`` as well, and the
fetcher's own configuration must agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from slob.config.ib_config import IBConfig
from slob.ib.errors import ConfigError, LiveTradingRefused, SlobError
from slob.live.callbacks import invoke
from slob.market.candle_aggregator import CandleAggregator
from slob.live.event_bus import EventBus
from slob.live.gapfill import GapFiller, History, Origin, memory_stats
from slob.live.ib_ws_fetcher import IBWSFetcher
from slob.execution.order_executor import OrderExecutor, RiskConfig, SetupSkipped, TradePlan
from slob.market.sessions import CmeHours, us_equity_open
from slob.strategy.setup_tracker import SetupChanged, SetupConfig, SetupReady, SetupTracker, State
from slob.store.store import CandleRecord, RunStarted, RunStopped, Store, default_db_path
from slob.live.warmup import MINUTE, Levels, MemoryConfig, floor_minute, fresh, trusted, warmup_start
from slob.model import (Candle, CandleClosed, ConnectionLost, ConnectionRestored, ErrorReported, Gap, HistoryFilled,
                        HistoryUnavailable, Tick)

__all__ = ["DATA_SOURCES", "Fetcher", "LiveTradingEngine"]

log = logging.getLogger("slob.live.engine")
DATA_SOURCES = ("ib", "alpaca")
_UTC = dt.timezone.utc
#: The cause of the Gap a restart after an unclean stop records.
RESTART_CAUSE = "engine restarted after an unclean stop (killed or crashed)"


class Fetcher(Protocol):
    """What the engine needs from IBWSFetcher and AlpacaWSFetcher alike."""

    on_tick: Callable[[Any], Any] | None
    on_error: Callable[[Any], Any] | None

    async def connect(self) -> None: ...
    async def subscribe(self, symbols: Sequence[str]) -> None: ...
    async def listen(self) -> None: ...
    async def disconnect(self) -> None: ...
    def is_connected(self) -> bool: ...
    def get_stats(self) -> dict[str, Any]: ...


class LiveTradingEngine:
    def __init__(
        self,
        data_source: str = "ib",
        symbols: Sequence[str] = ("NQ",),
        paper_trading: bool = True,
        *,
        ib_fetcher: IBWSFetcher | None = None,
        ib_config: IBConfig | None = None,
        alpaca_fetcher: Fetcher | None = None,
        alpaca_key_id: str | None = None,
        alpaca_secret_key: str | None = None,
        allow_live: bool = False,
        store: Store | str | Path | None = None,
        data_dir: Path | None = None,
        candle_intervals: Sequence[int] = (60, 300),
        store_ticks: bool = True,
        on_candle: Callable[[Candle], Any] | None = None,
        quiet_check_seconds: float = 1.0,
        setup_config: SetupConfig | None = None,
        trade: bool = True,
        risk: RiskConfig | None = None,
        memory: MemoryConfig | None = None,
    ) -> None:
        if data_source not in DATA_SOURCES:
            raise ConfigError(f"data_source {data_source!r} is not one of {DATA_SOURCES} ('ib' for NQ futures "
                              "through TWS/IB Gateway, 'alpaca' for US stocks)")
        if not symbols:
            raise ConfigError("symbols is empty; give at least one, e.g. ['NQ']")
        if not paper_trading and not allow_live:
            raise LiveTradingRefused("paper_trading=False needs allow_live=True as well (CLI: --live); "
                                     "slob trades paper by default")
        self.data_source = data_source
        self.symbols = list(symbols)
        self.paper_trading = paper_trading
        self.fetcher: Fetcher = self._make_fetcher(
            data_source, ib_fetcher, ib_config, alpaca_fetcher, alpaca_key_id, alpaca_secret_key, allow_live)
        self.store: Store | None = store if isinstance(store, Store) else None
        #: Where the store is (or will be): the file is created only once the feed is connected.
        self.store_path: Path = (store.path if isinstance(store, Store) else Path(store) if store is not None
                                 else default_db_path(data_dir))
        self.candle_intervals = tuple(candle_intervals)
        self.store_ticks = store_ticks
        self.on_candle = on_candle
        self.quiet_check_seconds = quiet_check_seconds
        self.bus = EventBus()
        self.setup_config = setup_config or SetupConfig()
        self.trackers: dict[str, SetupTracker] = {}
        # Orders go through IB only; with Alpaca (stock data) the tracker still reports setups.
        self.executor: OrderExecutor | None = None
        if trade and data_source == "ib":
            assert isinstance(self.fetcher, IBWSFetcher)
            self.executor = OrderExecutor(self.fetcher, risk=risk, publish=self.bus.publish,
                                          allow_live=allow_live, clock=self.exchange_now)
        self.aggregators: dict[str, CandleAggregator] = {}
        self.memory = memory or MemoryConfig()
        if self.memory.enabled and any(i % 60 for i in self.candle_intervals):
            raise ConfigError(f"candle_intervals {list(self.candle_intervals)}: with market memory on, every "
                              "interval must be whole minutes (history comes as 1-minute bars); use e.g. [60, 300] "
                              "or MemoryConfig(enabled=False)")
        #: One GapFiller per symbol (market memory on): warm-up and gap fill.
        self.fillers: dict[str, GapFiller] = {}
        self._filler_tasks: list[asyncio.Task[None]] = []
        self._levels = Levels()
        #: Trading days whose LSE session has minutes nobody could supply.
        self.levels_unknown: set[dt.date] = self._levels.unknown
        #: End of the last 1-minute candle each symbol's tracker (and orders) handled.
        self.processed_until: dict[str, dt.datetime] = {}
        self._progress = asyncio.Condition()
        self._last_tick: dict[str, tuple[dt.datetime, float]] = {}
        #: How long after a candle's end the quiet-market timer waits for in-flight ticks.
        self.close_grace = dt.timedelta(seconds=2)
        self.candles_closed = 0
        self.setups_seen: set[str] = set()
        self._listener: asyncio.Task[None] | None = None
        self._quiet_timer: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._started = False
        self._failure: BaseException | None = None
        self._signals: list[signal.Signals] = []
        self._run_id = ""
        # Ticks that arrive while start() reconciles: delivered, in order, once it returns.
        self._early: list[Tick] | None = []
        self._drain: asyncio.Task[None] | None = None
        self._restart_from: dt.datetime | None = None  # last data of a run that did not stop cleanly
        self._last_data: dt.datetime | None = None  # the store's, when this run began
        #: The Gap recorded because the previous run did not stop cleanly (None: it did).
        self.restart_gap: Gap | None = None

    def _make_fetcher(self, source: str, ib_fetcher: IBWSFetcher | None, ib_config: IBConfig | None,
                      alpaca_fetcher: Fetcher | None, key_id: str | None, secret: str | None,
                      allow_live: bool) -> Fetcher:
        if source == "ib":
            fetcher = ib_fetcher or IBWSFetcher(config=ib_config or IBConfig())
            if self.paper_trading and not fetcher.config.paper_trading:
                raise LiveTradingRefused("the engine is paper_trading=True but its IB fetcher is configured for "
                                         "live trading; make them agree")
            return fetcher
        if alpaca_fetcher is not None:
            return alpaca_fetcher
        from slob.live.alpaca_ws_fetcher import AlpacaWSFetcher

        made: Fetcher = AlpacaWSFetcher(key_id=key_id, secret_key=secret)  # ConfigError without credentials
        return made

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, open the store, subscribe, and start consuming ticks. The store file is
        created only once the connection is up: a start that cannot connect leaves none."""
        if self._started:
            return
        log.info("= engine starting: %s %s, store %s", self.data_source, self.symbols, self.store_path)
        fetcher = self.fetcher
        fetcher.on_tick = self._on_tick
        fetcher.on_error = self._on_error
        if hasattr(fetcher, "on_event"):
            setattr(fetcher, "on_event", self._on_event)
        if self.executor is not None:
            setattr(fetcher, "on_order", self.executor.on_order)
            # awaited by the session supervisor after every (re)connect and 1101
            setattr(fetcher, "on_reconcile", self.executor.reconcile)
        try:
            await fetcher.connect()
            # No await between the connect and the executor having its store: a reconnect's
            # reconciliation must see the store's intents (a setup is never placed twice).
            store = self._open_store()
            if self.executor is not None:
                self.executor.store = store
            await self._begin_run(store)
            if self.executor is not None:
                self.executor.check_paper()
            await fetcher.subscribe(self.symbols)
            for symbol in self.symbols:
                self.trackers[symbol.upper()] = SetupTracker(self.setup_config, symbol=symbol.upper())
            for symbol in self.symbols:
                self.aggregators[symbol.upper()] = CandleAggregator(
                    symbol.upper(), self.candle_intervals, is_trading=self._trading_hours(symbol))
            await self._prepare_memory(store)
            self._listener = asyncio.create_task(self._listen(), name="slob-engine-listen")
            if self.executor is not None:
                # Reconciled before any order: place() refuses until a reconciliation has
                # completed. It runs while listening, because the commission reports of the
                # executions it reads come as order records.
                await self.executor.start()
        except BaseException:
            await self._abort_start()
            raise
        self._filler_tasks = [asyncio.create_task(self._run_filler(f), name=f"slob-engine-memory-{s}")
                              for s, f in self.fillers.items()]
        self._drain = asyncio.create_task(self._deliver_early_ticks(), name="slob-engine-early-ticks")
        self._install_signal_handlers()
        self._quiet_timer = asyncio.create_task(self._close_quiet_candles(), name="slob-engine-candles")
        self._started = True
        log.info("= engine started: %s %s, paper=%s, store %s", self.data_source, self.symbols,
                 self.paper_trading, self.store_path)

    def _open_store(self) -> Store:
        if self.store is None:
            created = not self.store_path.exists()
            self.store = Store(self.store_path)
            log.info("= store %s (%s)", self.store_path, "created" if created else "opened")
        return self.store

    async def _begin_run(self, store: Store) -> None:
        """Record this run; if the previous one never stopped cleanly, remember where its
        data ends: the first tick of this run closes the Gap."""
        runs = await asyncio.to_thread(store.runs)
        self._last_data = await asyncio.to_thread(store.last_data_time)
        if runs and runs[-1].stopped is None:
            self._restart_from = self._last_data
            log.warning("! the previous run (pid %d, started %s) did not stop cleanly; data until %s",
                        runs[-1].pid, runs[-1].started.isoformat(timespec="seconds"),
                        self._restart_from.isoformat() if self._restart_from else "none stored")
        self._run_id = uuid.uuid4().hex
        await store.acommit(RunStarted(self._run_id, dt.datetime.now(_UTC), os.getpid()))

    async def _end_run(self, store: Store) -> None:
        """Mark this run stopped cleanly -- unless an unclean stop before it still owes its
        Gap (no tick came in this run to end it): then the run is left unmarked, so the
        next start sees the unclean stop and records the Gap from the same data."""
        if self._run_id and self._restart_from is None:
            await store.acommit(RunStopped(self._run_id, dt.datetime.now(_UTC)))

    async def _abort_start(self) -> None:
        """A start that failed is a clean stop too: nothing was left half-done (see _end_run)."""
        with contextlib.suppress(Exception):
            await self.fetcher.disconnect()
        if self._listener is not None:
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self._end_run(self.store)

    async def run(self) -> None:
        """Run until :meth:`stop`, SIGINT or SIGTERM; then stop cleanly. Re-raises a fatal
        feed error (e.g. ConnectionLost after the reconnect attempts)."""
        if not self._started:
            await self.start()
        try:
            await self._stopped.wait()
        finally:
            await self.stop()
        if self._failure is not None:
            raise self._failure

    def _install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop the engine cleanly (main thread only; elsewhere, e.g. in a
        test thread or on Windows, the caller stops it)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._signal_stop, sig)
                self._signals.append(sig)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()

    def _signal_stop(self, sig: signal.Signals) -> None:
        log.warning("= %s: stopping", sig.name)
        self._stopped.set()

    async def stop(self) -> None:
        """Close open candles, cancel subscriptions, disconnect, flush the store. Idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            if self._quiet_timer is not None:
                self._quiet_timer.cancel()
                await asyncio.gather(self._quiet_timer, return_exceptions=True)
            for task in self._filler_tasks:
                task.cancel()
            await asyncio.gather(*self._filler_tasks, return_exceptions=True)
            await self.fetcher.disconnect()
            if self._listener is not None:
                await asyncio.gather(self._listener, return_exceptions=True)
            if self._drain is not None:
                await asyncio.gather(self._drain, return_exceptions=True)
            if self._early:  # stopped before they could be delivered
                await self._deliver_early_ticks()
            for filler in self.fillers.values():
                await filler.close()  # what was held from the join on becomes candles, as live
            for aggregator in self.aggregators.values():
                for candle in aggregator.flush():
                    await self._candle(candle)
        finally:
            self._remove_signal_handlers()
            if self.store is not None:
                await self.store.aflush()
                await self._end_run(self.store)
                self.store.close()
            self._stopped.set()
            log.info("= engine stopped")

    async def _listen(self) -> None:
        try:
            await self.fetcher.listen()
        except Exception as exc:  # ConnectionLost after all attempts: the engine cannot go on
            self._failure = exc
            log.error("! feed ended: %s", exc)
        finally:
            self._stopped.set()

    # -- data flow ---------------------------------------------------------------------

    async def _deliver_early_ticks(self) -> None:
        """Ticks that came while start() ran, then the normal path. Ticks arriving during
        this join the list, so the order is kept."""
        early = self._early
        while early:
            await self._tick(early.pop(0))
        self._early = None

    async def _on_tick(self, tick: Tick) -> None:
        early = self._early
        if early is not None:
            early.append(tick)
            return
        await self._tick(tick)

    async def _tick(self, tick: Tick) -> None:
        if self._restart_from is not None:
            await self._restart_gap(tick)
        self._last_tick[tick.symbol] = (tick.timestamp, time.monotonic())
        await self.bus.publish(tick)
        store = self.store
        if store is not None and self.store_ticks:
            store.add(tick)
        aggregator = self.aggregators.get(tick.symbol)
        if aggregator is None:
            return
        filler = self.fillers.get(tick.symbol)
        if filler is not None:
            if filler.holding:
                filler.tick(tick)
                return
            filler.saw(tick.timestamp)
        elif not self.memory.enabled:
            self._say_levels(self._levels.first_tick(tick.timestamp), tick.timestamp, tick.timestamp)
        for candle in aggregator.add(tick):
            await self._candle(candle)

    async def _restart_gap(self, tick: Tick) -> None:
        start, self._restart_from = self._restart_from, None
        if start is not None and tick.timestamp > start:
            self.restart_gap = Gap(start, tick.timestamp, RESTART_CAUSE)
            log.warning("! %s: gap %s -> %s", RESTART_CAUSE, start.isoformat(), tick.timestamp.isoformat())
            await self._on_event(self.restart_gap)

    async def _candle(self, candle: Candle, origin: Origin = "live") -> None:
        """A closed candle: stored (unless it came from the store), published, and -- for
        1-minute candles -- handed to the tracker. ``origin`` "live": built from live ticks
        as they came; otherwise replayed from memory or from ticks held meanwhile (a trigger
        is traded only while fresh, see :meth:`_refusal`)."""
        self.candles_closed += 1
        if self.store is not None and origin != "store":
            self.store.add(CandleRecord(candle, "history") if origin == "history" else candle)
        await self.bus.publish(CandleClosed(candle))
        tracker = self.trackers.get(candle.symbol)
        if tracker is not None and candle.interval_seconds == 60:
            for event in tracker.on_candle(candle):
                await self._setup_event(event, replayed=origin != "live")
        hook = self.on_candle
        if hook is not None:
            try:
                await invoke(hook, candle)
            except Exception as exc:
                await self._on_error(exc, where="on_candle")
        if candle.interval_seconds == 60:
            async with self._progress:
                self.processed_until[candle.symbol] = candle.end
                self._progress.notify_all()

    async def _setup_event(self, event: SetupChanged | SetupReady, *, replayed: bool = False) -> None:
        await self.bus.publish(event)
        if not isinstance(event, SetupChanged):
            return
        self.setups_seen.add(event.setup_id)
        executor = self.executor
        placed = executor is not None and event.setup_id in executor.placed
        if self.store is not None and not placed:
            self.store.add_setup(id=event.setup_id, symbol=event.symbol, direction=event.direction.value,
                                 state=event.state.value, created=event.at, updated=event.at,
                                 details={"reason": event.reason, "entry": event.entry, "stop": event.stop,
                                          "target": event.target})
        if executor is None or event.state is not State.TRIGGERED:
            return
        if replayed and placed:
            return  # traded before (by an earlier run, or before the outage): reconciled, never again
        refusal = self._refusal(event, replayed)
        if refusal:
            log.warning("! setup %s not traded: %s", event.setup_id, refusal)
            await self.bus.publish(SetupSkipped(event.setup_id, refusal))
            return
        try:
            await executor.place(TradePlan.of(event))
        except Exception as exc:  # an order that cannot be sent is reported, the engine goes on
            await self._on_error(exc, where=f"orders for {event.setup_id}")

    def _refusal(self, event: SetupChanged, replayed: bool) -> str:
        """Why a TRIGGERED setup must not be traded; empty if it may."""
        if self._stopping:
            return "the engine is stopping"
        if replayed:
            filler = self.fillers.get(event.symbol)
            now = filler.now if filler is not None else None
            if now is None or not fresh(event.at, now):
                return (f"it triggered at {event.at:%H:%M} UTC in minutes the engine only saw late (replayed "
                        "from memory, or held during a warm-up or gap fill): the moment to enter has passed")
        if event.day in self.levels_unknown and not self.memory.trade_without_levels:
            return (f"the LSE session of {event.day} is incomplete (history unavailable for some of its minutes), "
                    "so its high/low are not known; MemoryConfig(trade_without_levels=True) trades anyway")
        return ""

    async def _on_event(self, event: object) -> None:
        if self.store is not None:
            self.store.add(event)
        if isinstance(event, ConnectionLost):
            for symbol, filler in self.fillers.items():
                for candle in filler.hold(event.at, event.cause):
                    await self._candle(candle)
        elif isinstance(event, Gap):
            for filler in self.fillers.values():
                filler.gap(event, join=event is not self.restart_gap)
        await self.bus.publish(event)
        if self.executor is not None and isinstance(event, ConnectionRestored):
            try:
                await self.executor.reconcile()  # order ids and state after a reconnect
            except Exception as exc:
                await self._on_error(exc, where="reconciliation")

    async def _on_error(self, exc: BaseException, where: str = "feed") -> None:
        event = ErrorReported(where, exc)
        if self.store is not None and not self._stopping:
            self.store.add(event)
        await self.bus.publish(event)

    def _trading_hours(self, symbol: str) -> Callable[[dt.datetime], bool] | None:
        """CME hours from the contract's details (holidays and early closes included);
        None (the Globex default) for stocks or unknown details."""
        if self.data_source == "alpaca":
            return us_equity_open
        details_for = getattr(self.fetcher, "details_for", None)
        details = details_for(symbol) if callable(details_for) else None
        if details is None or not getattr(details, "tradingHours", ""):
            return None
        return CmeHours(details.tradingHours, details.timeZoneId or "US/Central").is_open

    async def _close_quiet_candles(self) -> None:
        """Close candles whose time is up even when no tick arrives to show it. Feed time
        is the last tick's exchange time plus the real time since it arrived, minus a grace
        for ticks still in flight: right for live, delayed and replayed data alike. A
        fetcher that knows how far its stream is complete (``complete_until()``: the last
        frame received, in exchange time) bounds it: a stall not yet noticed as an outage
        must not close candles that could still be missing trades -- once noticed, their
        minutes are filled from history."""
        while True:
            await asyncio.sleep(self.quiet_check_seconds)
            bound = getattr(self.fetcher, "complete_until", None)
            complete: dt.datetime | None = bound() if callable(bound) else None
            for symbol, aggregator in self.aggregators.items():
                seen = self._last_tick.get(symbol)
                if seen is None or self._holding(symbol):
                    continue
                stamp, arrived = seen
                now = stamp + dt.timedelta(seconds=time.monotonic() - arrived) - self.close_grace
                if complete is not None:
                    now = min(now, complete)
                for candle in aggregator.advance(now):
                    await self._candle(candle)

    # -- market memory (slob.live.warmup, slob.live.gapfill) ---------------------------------

    def _holding(self, symbol: str) -> bool:
        filler = self.fillers.get(symbol)
        return filler is not None and filler.holding

    async def _prepare_memory(self, store: Store) -> None:
        """Make the fillers and start the warm-up: hold every symbol's candles from the
        LSE open (of TWS's today) until history and the store have supplied them; live
        ticks take over at the minute after TWS's clock now (the subscription is live)."""
        if not self.memory.enabled:
            return
        now = await self._exchange_now()
        window = warmup_start(now) if now is not None else None
        history = self._history()
        clock = getattr(self.fetcher, "server_time", None)
        for symbol, aggregator in self.aggregators.items():
            stored: dict[dt.datetime, Candle] = {}
            if window is not None and now is not None:
                rows = await asyncio.to_thread(store.candle_records, symbol, 60, window, now)
                stored = trusted(rows, self._last_data)
            filler = GapFiller(symbol, aggregator, config=self.memory, history=history,
                               deliver=self._candle, publish=self._memory_event, record=self._record,
                               clock=clock if callable(clock) else None)
            filler.use_stored(stored)
            filler.start(window)
            if now is not None:
                filler.saw(now, tick=False)
                # a trade at TWS's "now" may still have gone before the subscription: the
                # minute after the next whole second is the first one seen whole
                filler.join_at(floor_minute(now + dt.timedelta(seconds=1)) + MINUTE)
            else:
                filler.join_on_first_tick()
            self.fillers[symbol] = filler
        log.info("= warm-up: %s from %s (TWS time %s), %d stored candles trusted", ", ".join(self.fillers),
                 window.isoformat() if window else "the join (nothing of today's LSE session to replay)",
                 now.isoformat() if now else "unknown", sum(len(f.stored) for f in self.fillers.values()))

    def _history(self) -> History | None:
        method = getattr(self.fetcher, "history", None)
        if not callable(method):
            return None

        def request(symbol: str, start: dt.datetime, end: dt.datetime) -> Any:
            return method(symbol, start, end)
        return request

    async def _exchange_now(self) -> dt.datetime | None:
        clock = getattr(self.fetcher, "server_time", None)
        if not callable(clock):
            return None
        try:
            now: dt.datetime = await clock()
        except SlobError as exc:
            log.warning("! TWS's clock could not be read (%s): the warm-up joins at the first tick", exc)
            return None
        return now

    async def _run_filler(self, filler: GapFiller) -> None:
        try:
            await filler.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not pass silently: the symbol's candles stop
            log.exception("! market memory of %s failed", filler.symbol)
            await self._on_error(exc, where=f"market memory of {filler.symbol}")

    async def _memory_event(self, event: object) -> None:
        if isinstance(event, HistoryUnavailable):
            # in the store's connection events (slob report lists it); on the bus as itself
            self._record(ErrorReported("history", SlobError(
                f"unavailable for {event.symbol} {event.start.isoformat()} .. {event.end.isoformat()}: "
                f"{event.reason}")))
            self._say_levels(self._levels.missed(event.start, event.end), event.start, event.end)
        elif isinstance(event, HistoryFilled):
            for start, end in event.missing:
                self._say_levels(self._levels.missed(start, end), start, end)
        await self.bus.publish(event)

    def _record(self, record: object) -> None:
        if self.store is not None and not self._stopping:
            self.store.add(record)

    def _say_levels(self, days: list[dt.date], start: dt.datetime, end: dt.datetime) -> None:
        for day in days:
            log.warning("! the LSE session of %s is incomplete (no data %s .. %s): its setups will not be traded%s",
                        day, start.isoformat(), end.isoformat(),
                        "" if not self.memory.trade_without_levels else " -- trade_without_levels is on")

    async def caught_up(self, until: dt.datetime, symbols: Sequence[str] | None = None,
                        timeout: float | None = None) -> None:
        """Wait until every (or each given) symbol's tracker has handled the 1-minute
        candles ending by ``until`` (orders placed included). For tests and tools that step
        a simulated clock; TimeoutError after ``timeout`` seconds."""
        wanted = [s.upper() for s in (symbols or self.symbols)]

        def done() -> bool:
            return all((t := self.processed_until.get(s)) is not None and t >= until for s in wanted)

        async def wait() -> None:
            async with self._progress:
                await self._progress.wait_for(done)
        await asyncio.wait_for(wait(), timeout)

    # -- observation ---------------------------------------------------------------------

    def get_stats(self) -> dict[str, Any]:
        return {
            "data_source": self.data_source,
            "symbols": self.symbols,
            "paper_trading": self.paper_trading,
            "candles": self.candles_closed,
            "events": dict(self.bus.published),
            "handler_errors": self.bus.handler_errors,
            "late_ticks": sum(a.late_ticks for a in self.aggregators.values()),
            "setups": len(self.setups_seen),
            "orders": None if self.executor is None else {
                "placed_setups": len(self.executor.placed), "position": self.executor.position,
                "realized_pnl": self.executor.realized_pnl, "commissions": self.executor.commissions,
                "intents": len(self.executor.intents), "reconciliations": self.executor.reconciliations,
                "store_differences": len(self.executor.store_differences),
                "cancels_sent": self.executor.cancels_sent, "repairs_placed": self.executor.repairs_placed},
            "restart_gap": None if self.restart_gap is None else self.restart_gap.seconds,
            "memory": memory_stats(self.fillers, self.memory, self.levels_unknown),
            "feed": self.fetcher.get_stats(),
            "store": str(self.store_path),
            "store_open": self.store is not None,
        }

    def exchange_now(self) -> dt.datetime:
        """The exchange clock: the latest tick's exchange time plus the real time since it
        arrived (so replayed and simulated feeds keep their own timeline); the wall clock
        (UTC) before the first tick."""
        seen = list(self._last_tick.values())
        if not seen:
            return dt.datetime.now(_UTC)
        stamp, arrived = max(seen, key=lambda s: s[1])
        return stamp + dt.timedelta(seconds=time.monotonic() - arrived)
