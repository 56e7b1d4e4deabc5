"""IBWSFetcher: the asyncio face of slob's IB feed, with the Alpaca fetcher's interface.

    fetcher = IBWSFetcher(host="127.0.0.1", port=7497, client_id=1, account="DU1234567")
    fetcher.on_tick = handle_tick          # sync or async; gets slob.model.Tick
    fetcher.on_error = handle_error        # sync or async; gets an exception
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])        # front month; "NQZ4" etc. pin a contract
    await fetcher.listen()                 # returns after disconnect(); raises ConnectionLost
                                           # when reconnecting gives up

Behind it: an :class:`~slob.ib.client.IBClient` whose reader thread converts ticks and
puts them in a :class:`~slob.ib.bridge.TickBridge`; :meth:`listen` drains the bridge in
batches on the event loop -- or, when ``on_tick`` is a plain function, the bridge's wake-up
delivers them itself (no task switch per batch).

Two lanes, one pipeline (:mod:`slob.live.delivery`): the default ``lane="asyncio"`` calls
``on_tick`` on the event loop; ``lane="direct"`` -- the zero-hop lane for engines that need
the lowest latency -- calls ``on_tick_direct`` on the reader thread itself
(:mod:`slob.live.direct_lane` states the callback's obligations), while events, errors and
order records still reach ``on_event`` / ``on_error`` / ``on_order`` on the event loop::

    fetcher = IBWSFetcher(config=cfg, lane="direct")
    fetcher.on_tick_direct = engine.on_tick   # reader thread; keep it short
    await fetcher.connect(); await fetcher.subscribe(["NQ"]); await fetcher.listen()

Both lanes deliver the same ticks in the same order, with the same rolls, de-duplication
and gaps. The session's states and every transition between them live
in one table (:mod:`slob.live.session_machine`), driven by one task
(:class:`~slob.live.ib_supervisor.Supervisor`): any failure in any state -- a drop, junk,
a time-out, an unanswered liveness probe, an exception of any type while reconnecting,
resubscribing or reconciling -- is a counted attempt, followed by back-off and a new
session. Only :meth:`disconnect` and a final :class:`~slob.ib.errors.ConnectionLost`
(or :class:`~slob.ib.errors.PeerNotTWS`) end :meth:`listen`. Every outage is one
:class:`~slob.model.Gap` in exchange time (:mod:`slob.live.outages`).

Duplicates, by construction (docs/reconnects.md states it in full). IB sends no history on
a tick-by-tick request (``numberOfTicks=0``) and nothing twice on one request, so ticks can
repeat only where two requests overlap. slob never lets them overlap for one contract:
after a reconnect the old requests died with the old socket; after 1101 the old requests
are cancelled and a REQ_CURRENT_TIME round trip (TWS answers in order) is awaited before
the new ones are sent, so every trade reaches slob through exactly one request. A
market-data request (``tick_source='market_data'``) does resend one trade: its first LAST
is the current last trade. Its :class:`~slob.ib.ticks.ReplayGuard`, armed *before* the
request is sent, drops it when it equals one already delivered (counted in
``duplicates``). A roll overlaps two contracts by design; :class:`FeedSwitch` cuts them
at one second (see its docstring).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import inspect
import logging
import threading
import time
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from ibapi.contract import Contract, ContractDetails
from ibapi.order import Order

from slob.config.ib_config import IBConfig
from slob.ib import ticks
from slob.ib.bridge import BridgeClosed, TickBridge
from slob.ib.client import ConnectionClosed, IBClient, SubscriptionLive, TwsMessage
from slob.ib.errors import (
    Action,
    ClientIdInUse,
    ConfigError,
    ConnectionLost,
    RequestFailed,
    RequestTimedOut,
    Severity,
    SlobError,
)
from slob.ib.version import ibapi_info
from slob.live.backoff import backoff_delay
from slob.live.callbacks import Awaiting, Callback, UserCallbacks
from slob.live.ib_contract_manager import ContractManager
from slob.live.delivery import (CallbackFailed, CancelTicks, DataFlowing, Delivery, RetireLater, StartRoll)
from slob.live.direct_lane import DirectLane, TickCallback
from slob.live.ib_feeds import Feed, FeedBook, subscription_error
from slob.live.ib_history import HistorySettings, IBHistory
from slob.live.ib_session import ClientFactory, IBSession, SessionHooks
from slob.live.ib_supervisor import Closed, Notice, Supervisor, SupervisorSettings
from slob.live.session_machine import Event, State
from slob.live.stats import percentile
from slob.market.symbols import parse_symbol
from slob.orders import CommissionReported, Execution, OpenOrder, OrderError, OrderUpdate, PositionReported
from slob.model import Candle, ContractRolled, Gap, Quote, Tick

__all__ = ["IBWSFetcher", "LANES"]

log = logging.getLogger("slob.live.ib_ws_fetcher")
T = TypeVar("T")
_ORDER_RECORDS = (OpenOrder, OrderUpdate, Execution, CommissionReported, OrderError)
_UTC = dt.timezone.utc
#: ``asyncio``: on_tick on the event loop; ``direct``: on_tick_direct on the reader thread.
LANES = ("asyncio", "direct")


class IBWSFetcher(UserCallbacks):
    _log = log  # UserCallbacks reports under this module's logger

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        account: str = "",
        *,
        config: IBConfig | None = None,
        subscribe_confirm_seconds: float = 1.0,
        client_factory: ClientFactory | None = None,
        lane: str = "asyncio",
    ) -> None:
        """``client_factory`` replaces the socket for tests: called once per connection
        attempt with the sink (the tick bridge's ``put``) and the config, it returns an
        IBClient whose session is already open -- e.g. a
        :class:`slob.testing.fake_eclient.FakeConnector`. None (the default) connects to
        TWS at ``config.host:port``.

        ``lane``: ``"asyncio"`` (the default) delivers ticks to ``on_tick`` on the event
        loop; ``"direct"`` delivers them to ``on_tick_direct`` on the reader thread (see
        the module docstring and :mod:`slob.live.direct_lane`)."""
        if lane not in LANES:
            raise ConfigError(f"lane {lane!r} is not one of {LANES}: 'asyncio' calls on_tick on the event "
                              "loop, 'direct' calls on_tick_direct on the reader thread")
        self.lane = lane
        self.config = config or IBConfig(host=host, port=port, client_id=client_id, account=account)
        #: The asyncio lane's tick callback (sync or async), on the event loop.
        self.on_tick: Callback | None = None
        #: The zero-hop lane's tick callback: a plain function, called on the reader thread
        #: (lane="direct"; see slob.live.direct_lane for what it may do).
        self.on_tick_direct: TickCallback | None = None
        self.on_error: Callback | None = None
        self.on_quote: Callback | None = None
        #: Receives OpenOrder / OrderUpdate / Execution / CommissionReported / OrderError.
        self.on_order: Callback | None = None
        #: Receives ConnectionLost / ConnectionRestored / Gap events (sync or async).
        self.on_event: Callback | None = None
        #: Awaited after every (re)connect and 1101 resubscription, before streaming resumes
        #: (the engine reconciles its orders here). Raising counts as a failed attempt.
        self.on_reconcile: Callable[[], Awaitable[None]] | None = None
        self._roll_watcher: asyncio.Task[None] | None = None
        self._session = IBSession(self.config, client_factory, SessionHooks(
            sinks=self._sinks, started=self._session_started,
            clock=lambda offset: self._supervisor.clock.server_offset(offset),
            resubscribe=self._resubscribe, reconcile=self._reconcile, emit=self._emit, report=self._report,
            give_up=self._give_up))
        self._book = FeedBook(self.config, self._session, report=self._report, emit=self._emit)
        self._book.subscribe_confirm_seconds = subscribe_confirm_seconds
        self._bridge: TickBridge[object] | None = None
        #: Shared by the delivery pipeline and every supervisor (see slob.live.delivery).
        self._lock = threading.Lock()
        self._supervisor = self._new_supervisor()
        self._delivery = Delivery(self._book, self._supervisor, guarded=self.config.tick_source == "market_data")
        self._pending: list[object] = []  # what the bridge's fast path left for listen()
        self._final_error: SlobError | None = None
        self._stopping = False
        self._latency_us: collections.deque[float] = collections.deque(maxlen=20_000)
        self._last_tick_mono: float | None = None
        self.callback_errors = 0
        self.high_water_reports = 0
        self._ibapi_version = ""

    def _new_supervisor(self) -> Supervisor:
        cfg = self.config
        settings = SupervisorSettings(
            max_attempts=cfg.max_reconnect_attempts, max_junk_sessions=cfg.max_junk_sessions,
            reconnect_delay=cfg.reconnect_delay_seconds, max_reconnect_delay=cfg.max_reconnect_delay_seconds,
            liveness_idle=cfg.liveness_idle_seconds, liveness_timeout=cfg.liveness_timeout_seconds,
            frame_timeout=cfg.frame_timeout_seconds, healthy_after=cfg.healthy_after_seconds,
            where=f"{cfg.host}:{cfg.port}")
        return Supervisor(self._session, settings, lock=self._lock)

    # -- public interface ----------------------------------------------------------

    @property
    def subscribe_confirm_seconds(self) -> float:
        """How long subscribe() waits for data or an error before a request counts as accepted."""
        return self._book.subscribe_confirm_seconds

    @subscribe_confirm_seconds.setter
    def subscribe_confirm_seconds(self, value: float) -> None:
        self._book.subscribe_confirm_seconds = value

    @property
    def roll_lead(self) -> dt.timedelta:
        """How long before a roll moment (exchange time) the next contract is requested."""
        return self._book.roll_lead

    @roll_lead.setter
    def roll_lead(self, value: dt.timedelta) -> None:
        self._book.roll_lead = value

    @property
    def roll_grace_seconds(self) -> float:
        """How long the old contract may still deliver in-flight ticks after a roll switch."""
        return self._book.roll_grace_seconds

    @roll_grace_seconds.setter
    def roll_grace_seconds(self, value: float) -> None:
        self._book.roll_grace_seconds = value

    @property
    def roll_check_seconds(self) -> float:
        """How often TWS's clock is read to notice a roll moment on a quiet market."""
        return self._book.roll_check_seconds

    @roll_check_seconds.setter
    def roll_check_seconds(self, value: float) -> None:
        self._book.roll_check_seconds = value

    @property
    def rolls(self) -> int:
        return self._book.rolls

    @property
    def ticks(self) -> int:
        """Ticks delivered to the tick callback so far."""
        return self._delivery.ticks

    @property
    def gaps(self) -> list[Gap]:
        """Every outage so far, in exchange time (one Gap each)."""
        return self._supervisor.gaps

    @property
    def session_number(self) -> int:
        """Counts the API sessions opened (1 after connect(); +1 with every new session), so
        a caller can tell whether the session changed between two of its steps."""
        return self._session.generation

    @property
    def reconnects(self) -> int:
        return self._supervisor.reconnects

    @property
    def state(self) -> str:
        """The session's state: idle, connecting, handshake, ready, resubscribing,
        reconciling, streaming, stale, backoff, stopped or failed."""
        return self._supervisor.state.value

    def is_connected(self) -> bool:
        return self._session.is_connected()

    @property
    def _client(self) -> IBClient | None:
        return self._session.client

    async def connect(self) -> None:
        """Open the session; returns once TWS has sent nextValidId and managedAccounts."""
        if self._bridge is None or self._bridge.closed:
            self._bridge = TickBridge(high_water=self.config.bridge_high_water, on_high_water=self._high_water)
        self._stopping = False
        self._final_error = None
        self._ibapi_version = ibapi_info().version
        self._check_lane()
        if self._supervisor.machine.final:
            self._supervisor = self._new_supervisor()
            self._delivery.supervisor = self._supervisor
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._supervisor.connect()
                break
            except ClientIdInUse:
                # 326: TWS may hold the id for a while after an unclean exit; back off, retry.
                if attempt >= max(1, self.config.client_id_retries):
                    raise ClientIdInUse(self.config.client_id, attempt) from None
                await asyncio.sleep(self._backoff(attempt))
        self._supervisor.start()
        if self._roll_watcher is None or self._roll_watcher.done():
            self._roll_watcher = asyncio.create_task(self._book.roll_watch(), name="slob-roll-watch")

    def details_for(self, symbol: str) -> ContractDetails | None:
        """IB's contract details of the contract ``symbol`` currently delivers."""
        feed = self._book.feeds.get(symbol.upper())
        return feed.resolution.details if feed is not None and feed.resolution is not None else None

    @property
    def contracts(self) -> ContractManager:
        """The contract-details cache and roll calendar this fetcher resolves symbols with."""
        return self._book.contracts

    # -- orders (used by the OrderExecutor) --------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return self._session.accounts

    @property
    def next_valid_id(self) -> int:
        """TWS's next usable order id for this session (0 before connecting)."""
        return self._session.next_valid_id

    def check_paper(self) -> None:
        """Raise LiveTradingRefused if the login manages a non-paper account and live
        trading was not enabled (every order is checked)."""
        self._session.check_paper()

    async def place_order(self, order_id: int, contract: Contract, order: Order) -> None:
        await self._session.place_order(order_id, contract, order)

    async def cancel_order(self, order_id: int) -> None:
        await self._session.cancel_order(order_id)

    async def open_orders(self) -> list[OpenOrder]:
        return await self._session.open_orders()

    async def executions(self) -> list[Execution]:
        """Today's executions of this client (with their orderRef)."""
        return await self._session.executions()

    async def positions(self) -> list[PositionReported]:
        return await self._session.positions()

    async def server_time(self) -> dt.datetime:
        """TWS's clock (REQ_CURRENT_TIME), tz-aware UTC."""
        return await self._server_now()

    # -- history (issue 14; the requests live in slob.live.ib_history) -------------------

    @property
    def history_service(self) -> IBHistory:
        """The historical-data service on this fetcher's session (made on first use): its
        ``settings``, ``pacer`` and counters are there to read or replace."""
        service: IBHistory | None = getattr(self, "_history_service", None)
        if service is None:
            service = self._history_service = IBHistory(self._session, self.config)
        return service

    def configure_history(self, settings: HistorySettings) -> IBHistory:
        """Replace the history service with one using ``settings`` (timeouts, pacing rules,
        the pacer's clock); returns it."""
        service = self._history_service = IBHistory(self._session, self.config, settings)
        return service

    async def history(self, symbol_or_contract: str | Contract, start: dt.datetime, end: dt.datetime, *,
                      bar: str = "1 min", what: str = "TRADES") -> list[Candle]:
        """IB's historical bars of ``[start, end)`` as finished Candles (1-minute TRADES by
        default); ``"NQ"`` follows the front month across rolls, ``"NQH5"`` pins one.
        Paced by IB's historical rules; raises only SlobErrors (see slob.live.ib_history)."""
        return await self.history_service.bars(symbol_or_contract, start, end, bar=bar, what=what)

    async def historical_ticks(self, symbol_or_contract: str | Contract, start: dt.datetime,
                               end: dt.datetime) -> list[Tick]:
        """IB's historical trades of ``[start, end)`` (1,000 per request, paged)."""
        return await self.history_service.ticks(symbol_or_contract, start, end)

    async def head_timestamp(self, symbol_or_contract: str | Contract, what: str = "TRADES") -> dt.datetime:
        """The earliest moment TWS has historical data for the contract."""
        return await self.history_service.head_timestamp(symbol_or_contract, what=what)

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Resolve each symbol through contract details and request its ticks. Raises
        ContractNotFound (200) or MarketDataNotSubscribed (354, ...) with the fix.

        A session that fails meanwhile (a drop, a request TWS never answers) does not fail
        the call once connect() succeeded: the symbol stays subscribed, the session is
        ended as a failure, and the supervisor requests the symbol on the next one.
        """
        specs = [parse_symbol(s) for s in symbols]
        for spec in specs:
            feed = self._book.feeds.get(spec.text.upper()) or Feed(spec)
            self._book.feeds[spec.text.upper()] = feed
            try:
                await self._book.start_feed(feed)
            except (ConnectionLost, RequestTimedOut) as exc:
                if not self._supervisor.supervising:
                    self._book.feeds.pop(spec.text.upper(), None)
                    raise
                log.warning("! subscribing %s failed (%s); the next session will", spec.text, exc)
                client = self._client
                if client is not None:
                    client.abort(f"subscribing {spec.text} failed: {exc}")
            except BaseException:
                self._book.feeds.pop(spec.text.upper(), None)
                raise

    async def listen(self) -> None:
        """Deliver ticks until :meth:`disconnect`; raise ConnectionLost if the session
        cannot be re-established. Nothing else leaves it. In the zero-hop lane the ticks
        go to ``on_tick_direct`` on the reader thread whether or not listen() runs; it
        delivers the events, errors and order records, and does the loop's part of rolls."""
        bridge = self._require_bridge()
        self._check_lane()
        direct = self.lane == "direct"
        if not direct:
            bridge.fast_path = self._fast_path
        try:
            while True:
                try:
                    batch = await bridge.get()
                except BridgeClosed:
                    if self._pending:  # what the fast path left when the bridge closed
                        pending, self._pending = self._pending, []
                        await self._handle(pending)
                    if self._final_error is not None:
                        raise self._final_error
                    return
                if self._pending:
                    pending, self._pending = self._pending, []
                    await self._handle(pending)
                if batch:
                    await self._handle(batch if direct else self._delivery.process(batch))
        finally:
            bridge.fast_path = None

    def _fast_path(self, batch: list[object]) -> bool:
        """The bridge's wake-up, asyncio lane: deliver a batch right here while nothing in
        it needs awaiting; leave the rest (from the first event, record, or awaitable
        result on) to listen(), and ask for it (True)."""
        outputs = self._delivery.process(batch)
        on_tick = self.on_tick
        first = 0
        rest: list[object] = []
        for i, item in enumerate(outputs):
            if type(item) is not Tick:
                rest = outputs[i:]
                break
            if not first:
                first = item.received_ns
            if on_tick is None:
                continue
            try:
                result = on_tick(item)
            except Exception as exc:  # the UserCallbacks contract, reported by listen()
                rest = [CallbackFailed(exc)] + outputs[i + 1:]
                break
            if result is not None and inspect.isawaitable(result):
                rest = [Awaiting(result)] + outputs[i + 1:]
                break
        if first:
            self._note_batch(first)
        if rest:
            self._pending.extend(rest)
        return bool(self._pending)

    async def _handle(self, outputs: list[object]) -> None:
        """What Delivery.process returned (or the zero-hop lane sent), in order, on the loop."""
        first = 0
        for item in outputs:
            kind = type(item)
            if kind is Tick:
                if not first:
                    first = item.received_ns  # type: ignore[attr-defined]
                on_tick = self.on_tick
                if on_tick is not None:
                    try:
                        result = on_tick(item)
                        if result is not None and inspect.isawaitable(result):
                            await result
                    except Exception as exc:  # the UserCallbacks contract
                        self.callback_errors += 1
                        await self._report(exc)
            elif kind is Gap or kind is ContractRolled:
                await self._emit(item)
            elif kind is DataFlowing:
                self._supervisor.data_flowing()
            elif kind is StartRoll:
                self._start_roll(item.feed)  # type: ignore[attr-defined]
            elif kind is RetireLater:
                asyncio.get_running_loop().call_later(self._book.roll_grace_seconds, self._retire,
                                                      item.feed)  # type: ignore[attr-defined]
            elif kind is CancelTicks:
                self._book.cancel_ticks(item.req_id)  # type: ignore[attr-defined]
            elif kind is CallbackFailed or kind is Awaiting:
                try:
                    if kind is Awaiting:
                        await item.result  # type: ignore[attr-defined]
                    else:
                        raise item.error  # type: ignore[attr-defined]
                except Exception as exc:  # the UserCallbacks contract
                    self.callback_errors += 1
                    await self._report(exc)
            elif kind is Quote:
                if self.on_quote is not None:
                    await self._call(self.on_quote, item)
            elif kind is TwsMessage:
                await self._on_tws_message(item)  # type: ignore[arg-type]
            elif kind is ConnectionClosed:
                pass  # the supervisor hears of it through the client's future
            elif kind in _ORDER_RECORDS:
                if self.on_order is not None:
                    await self._call(self.on_order, item)
            else:
                await self._report(SlobError(f"unexpected item on the bridge: {item!r}"))
        if first:
            self._note_batch(first)

    def _note_batch(self, first_received_ns: int) -> None:
        """A batch was delivered: once per batch, not per tick, the latency of its oldest
        tick (the one that waited longest) up to the end of the batch. Any thread."""
        now = time.monotonic_ns()
        self._last_tick_mono = now / 1e9
        self._latency_us.append((now - first_received_ns) / 1000)

    def _start_roll(self, feed: Feed) -> None:
        """Delivery asked for the next contract of ``feed`` (a tick within roll_lead)."""
        switch = feed.switch
        if self._book.feeds.get(feed.symbol) is not feed or switch is None or switch.rolling_now \
                or feed.roll_task is not None:
            self._delivery.roll_done(feed.symbol)
            return
        self._book.start_roll(feed)
        self._when_rolled(feed)

    def _when_rolled(self, feed: Feed) -> None:
        """Let Delivery ask for ``feed``'s next contract again once its roll task ended."""
        task = feed.roll_task
        if task is None:
            self._delivery.roll_done(feed.symbol)
        else:
            task.add_done_callback(lambda _: self._delivery.roll_done(feed.symbol))

    def _retire(self, feed: Feed) -> None:
        """The grace period after a switch is over: cancel the old contract's request."""
        self._book.cancel_ticks(self._delivery.retire(feed))

    def _check_lane(self) -> None:
        if self.lane == "direct":
            if self.on_tick is not None:
                raise ConfigError("lane='direct' delivers ticks to on_tick_direct (on the reader thread); "
                                  "on_tick is set: use lane='asyncio' for on_tick on the event loop")
            if self.on_tick_direct is None:
                raise ConfigError("lane='direct' needs on_tick_direct: a plain function called with each "
                                  "Tick on the reader thread")
            if inspect.iscoroutinefunction(self.on_tick_direct):
                raise ConfigError("on_tick_direct must be a plain function: it runs on the reader thread, "
                                  "where nothing awaits it; use lane='asyncio' for an async on_tick")
        elif self.on_tick_direct is not None:
            raise ConfigError("on_tick_direct is set but lane is 'asyncio': pass lane='direct' to "
                              "IBWSFetcher to have ticks delivered on the reader thread")

    async def disconnect(self) -> None:
        """Cancel the subscriptions, close the session, end :meth:`listen`."""
        self._stopping = True
        tasks = self._book.cancel_all()
        await self._supervisor.stop()
        if self._roll_watcher is not None:
            tasks.append(self._roll_watcher)
            self._roll_watcher.cancel()
        self._roll_watcher = None
        await asyncio.gather(*tasks, return_exceptions=True)
        self._close_client()
        if self._bridge is not None:
            self._bridge.close("disconnected")

    def get_stats(self) -> dict[str, Any]:
        client = self._client
        lat = sorted(self._latency_us)
        session = self._session
        rejected = session.rejected + (client.rejected if client is not None else collections.Counter())
        duplicates = rejected.pop(ticks.REPLAYED, 0)
        bridge = self._bridge
        sup = self._supervisor
        recovery = sorted(sup.recovery_seconds)
        return {
            "connected": self.is_connected(),
            "state": sup.state.value,
            "server_version": client.serverVersion() if client is not None and client.isConnected() else None,
            "ibapi_version": self._ibapi_version,
            "client_id": self.config.client_id,
            "messages_in": session.totals["messages_in"] + (client.messages_in if client else 0),
            "messages_out": session.totals["messages_out"] + (client.messages_out if client else 0),
            "ticks": self.ticks,
            "rejected": sum(rejected.values()),
            "rejected_by_reason": dict(rejected),
            "decode_errors": session.totals["decode_errors"] + (client.decode_errors if client else 0),
            "duplicates": duplicates,
            "reconnects": sup.reconnects,
            "failures": sup.machine.failures,
            "attempts": sup.machine.attempts,
            "outages": sup.outage.outages,
            "gaps": len(sup.gaps),
            "stale": sup.state is State.STALE,
            "liveness_probes": sup.stats["liveness_probes"],
            "liveness_timeouts": sup.stats["liveness_timeouts"],
            "liveness_late": sup.stats["liveness_late"],  # answered late: reading was paused, not silent
            "frame_timeouts": sup.stats["frame_timeouts"],
            "recovery_p50_seconds": percentile(recovery, 0.50),
            "recovery_max_seconds": recovery[-1] if recovery else None,
            "last_tick_age_seconds": None if self._last_tick_mono is None else time.monotonic() - self._last_tick_mono,
            "lane": self.lane,
            "bridge_high_water": bridge.max_depth if bridge is not None else 0,
            "bridge_depth": len(bridge) if bridge is not None else 0,
            "bridge_wakeups": bridge.wakeups if bridge is not None else 0,
            "bridge_fast_wakeups": bridge.fast_wakeups if bridge is not None else 0,
            "read_paused_seconds": bridge.paused_seconds() if bridge is not None else 0.0,
            "read_pauses": bridge.pauses if bridge is not None else 0,
            "drops": 0,  # the bridge never drops; backpressure pauses reading instead
            "callback_errors": self.callback_errors,
            "latency_p50_us": percentile(lat, 0.50),
            "latency_p99_us": percentile(lat, 0.99),
            "contracts": {k: f.switch.current for k, f in self._book.feeds.items() if f.switch},
            "rolls": self.rolls,
        }

    # -- session (driven by the supervisor through _Port) ------------------------------

    def _require_bridge(self) -> TickBridge[object]:
        if self._bridge is None:
            raise SlobError("call connect() before subscribe() or listen()")
        return self._bridge

    def _sinks(self) -> tuple[Callable[[object], None], Callable[[list[object]], None]]:
        bridge = self._require_bridge()
        if self.lane == "direct":
            self._check_lane()
            assert self.on_tick_direct is not None
            lane = DirectLane(self._delivery, bridge, self.on_tick_direct, self._note_batch)
            return lane.put, lane.put_batch
        return bridge.put, bridge.put_batch

    async def _resubscribe(self, same_session: bool) -> None:
        self._book.contracts.invalidate()  # details may have changed while away
        await self._book.resubscribe_all(same_session)

    async def _reconcile(self) -> None:
        hook = self.on_reconcile
        if hook is not None:
            await hook()

    def _session_started(self, generation: int, client: IBClient) -> None:
        client.flow = self._bridge  # backpressure: the reader pauses while the bridge is full
        self._supervisor.watch(generation, client.closed,  # type: ignore[arg-type]
                               lambda c: Closed(generation, c.cause, c.junk, c.by_client))  # type: ignore[attr-defined]

    def _close_client(self) -> None:
        self._session.close()

    async def _give_up(self, exc: SlobError) -> None:
        """The supervisor's final word: report ``exc``, then end listen() with it."""
        self._final_error = exc
        self._session.close()
        await self._report(exc)
        if self._bridge is not None:
            self._bridge.close(str(exc))

    async def _server_now(self) -> dt.datetime:
        return await self._session.server_now()

    async def _paced(self, client: IBClient) -> None:
        await self._session.paced(client)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.config.reconnect_delay_seconds, self.config.max_reconnect_delay_seconds)

    # -- TWS messages ---------------------------------------------------------------

    async def _on_tws_message(self, msg: TwsMessage) -> None:
        code, action = msg.code, msg.action
        if code == 0:  # slob's own reports from the reader: unreadable frames, backpressure
            await self._report(SlobError(msg.text))
            return
        if msg.req_id in self._book.raised:
            return  # subscribe() already raised this one
        feed = next((f for f in self._book.feeds.values() if f.owns(msg.req_id)), None)
        if feed is not None and msg.severity in (Severity.ERROR, Severity.FATAL):
            exc = subscription_error(msg, feed)
            feed.failed = exc
            await self._report(exc)
            return
        text = f"IB {code}: {msg.text}"
        if action is Action.MARK_STALE:
            self._supervisor.notice(Notice(Event.IB_LOST, code, text))
        elif action is Action.RESUBSCRIBE:
            if code == 10182 and feed is None:
                return  # a request of a session already replaced
            self._supervisor.notice(Notice(Event.DATA_LOST, code, text))
        elif action is Action.KEEP:
            # 1102: Delivery marked new data already, in order with the ticks (resumes_data)
            self._supervisor.notice(Notice(Event.IB_RESTORED, code, text))
        elif msg.severity in (Severity.ERROR, Severity.FATAL) and code not in (326,):
            await self._report(RequestFailed(code, msg.req_id, msg.text))

    # -- delivery -------------------------------------------------------------------

    def _high_water(self, depth: int) -> None:
        """Reader thread: the consumer is falling behind. Reading from TWS pauses until it
        catches up (backpressure); reported, nothing dropped."""
        self.high_water_reports += 1
        log.warning("! tick bridge holds %d items (high-water mark %d): the consumer is slower than the feed; "
                    "reading from TWS pauses until it catches up", depth, self.config.bridge_high_water)
        bridge = self._bridge
        if bridge is not None:
            bridge.put(TwsMessage(-1, 0, f"bridge above high-water mark: {depth} queued; reading from TWS "
                                         "pauses until the consumer catches up (nothing is dropped)",
                                  dt.datetime.now(_UTC), Severity.WARNING, Action.NONE))
