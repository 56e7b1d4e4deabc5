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
batches on the event loop. The session's states and every transition between them live
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
import concurrent.futures
import datetime as dt
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from ibapi.contract import Contract, ContractDetails
from ibapi.order import Order

from slob.config.ib_config import IBConfig
from slob.ib import ticks
from slob.ib.bridge import BridgeClosed, TickBridge
from slob.ib.client import ConnectionClosed, IBClient, Subscription, TwsMessage
from slob.ib.errors import (
    Action,
    ClientIdInUse,
    ConnectionLost,
    MarketDataNotSubscribed,
    RequestFailed,
    RequestTimedOut,
    Severity,
    SlobError,
    classify,
)
from slob.ib.version import ibapi_info
from slob.live.backoff import backoff_delay
from slob.live.callbacks import Callback, UserCallbacks
from slob.live.feed_switch import FeedSwitch, Route
from slob.live.ib_contract_manager import ContractManager, Resolution
from slob.live.ib_session import ClientFactory, IBSession
from slob.live.ib_supervisor import Closed, Notice, Supervisor, SupervisorSettings
from slob.live.session_machine import Event, State
from slob.live.stats import percentile
from slob.live.symbols import SymbolSpec, parse_symbol
from slob.orders import CommissionReported, Execution, OpenOrder, OrderError, OrderUpdate, PositionReported
from slob.model import ContractRolled, Gap, Quote, Tick

__all__ = ["IBWSFetcher"]

log = logging.getLogger("slob.live.ib_ws_fetcher")
T = TypeVar("T")
_ORDER_RECORDS = (OpenOrder, OrderUpdate, Execution, CommissionReported, OrderError)
_UTC = dt.timezone.utc
_DELIVER, _SWITCHED = 1, 2  # IBWSFetcher._admit's answer


@dataclass(eq=False)
class _Feed:
    """One subscribed symbol: what it resolves to, and which contract it delivers."""

    spec: SymbolSpec
    resolution: Resolution | None = None
    switch: FeedSwitch | None = None
    next_resolution: Resolution | None = None
    roll_task: asyncio.Task[None] | None = None
    failed: BaseException | None = None
    #: (resolution, roll_lead, moment to request the next contract), see _roll_due
    roll_check: tuple[Resolution, dt.timedelta, dt.datetime] | None = None

    @property
    def symbol(self) -> str:
        return self.spec.text.upper()

    def owns(self, req_id: int) -> bool:
        s = self.switch
        return s is not None and req_id > 0 and req_id in (s.current_req, s.incoming_req, s.retiring_req)


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
    ) -> None:
        """``client_factory`` replaces the socket for tests: called once per connection
        attempt with the sink (the tick bridge's ``put``) and the config, it returns an
        IBClient whose session is already open -- e.g. a
        :class:`slob.testing.fake_eclient.FakeConnector`. None (the default) connects to
        TWS at ``config.host:port``."""
        self.config = config or IBConfig(host=host, port=port, client_id=client_id, account=account)
        self.on_tick: Callback | None = None
        self.on_error: Callback | None = None
        self.on_quote: Callback | None = None
        #: Receives OpenOrder / OrderUpdate / Execution / CommissionReported / OrderError.
        self.on_order: Callback | None = None
        #: Receives ConnectionLost / ConnectionRestored / Gap events (sync or async).
        self.on_event: Callback | None = None
        #: Awaited after every (re)connect and 1101 resubscription, before streaming resumes
        #: (the engine reconciles its orders here). Raising counts as a failed attempt.
        self.on_reconcile: Callable[[], Awaitable[None]] | None = None
        self.subscribe_confirm_seconds = subscribe_confirm_seconds
        #: How long the old contract may still deliver in-flight ticks after a roll switch.
        self.roll_grace_seconds = 2.0
        #: How long before a roll moment (exchange time) the next contract is requested.
        self.roll_lead = dt.timedelta(seconds=60)
        #: How often to ask TWS's clock whether a roll moment passed on a quiet market.
        self.roll_check_seconds = 5.0
        self.rolls = 0
        self._contracts = ContractManager(self._fetch_details, roll_days=self.config.roll_days_before_expiry,
                                          clock=lambda: self._session.server_clock())
        self._roll_watcher: asyncio.Task[None] | None = None
        self._session = IBSession(self.config, client_factory, on_start=self._session_started,
                                  on_clock=lambda offset: self._supervisor.clock.server_offset(offset))
        self._req_ids = self._session.req_ids
        self._bridge: TickBridge[object] | None = None
        self._feeds: dict[str, _Feed] = {}
        self._supervisor = self._new_supervisor()
        self._final_error: SlobError | None = None
        self._stopping = False
        self._guard_last: dict[str, tuple[dt.datetime, list[tuple[float, float]]]] = {}
        self._latency_us: collections.deque[float] = collections.deque(maxlen=20_000)
        self._last_tick_mono: float | None = None
        self._raised: set[int] = set()
        self.ticks = 0
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
        return Supervisor(_Port(self), settings)

    # -- public interface ----------------------------------------------------------

    @property
    def gaps(self) -> list[Gap]:
        """Every outage so far, in exchange time (one Gap each)."""
        return self._supervisor.gaps

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
        if self._supervisor.machine.final:
            self._supervisor = self._new_supervisor()
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
            self._roll_watcher = asyncio.create_task(self._roll_watch(), name="slob-roll-watch")

    def details_for(self, symbol: str) -> ContractDetails | None:
        """IB's contract details of the contract ``symbol`` currently delivers."""
        feed = self._feeds.get(symbol.upper())
        return feed.resolution.details if feed is not None and feed.resolution is not None else None

    @property
    def contracts(self) -> ContractManager:
        """The contract-details cache and roll calendar this fetcher resolves symbols with."""
        return self._contracts

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

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Resolve each symbol through contract details and request its ticks. Raises
        ContractNotFound (200) or MarketDataNotSubscribed (354, ...) with the fix."""
        specs = [parse_symbol(s) for s in symbols]
        for spec in specs:
            feed = self._feeds.get(spec.text.upper()) or _Feed(spec)
            self._feeds[spec.text.upper()] = feed
            try:
                await self._start_feed(feed)
            except BaseException:
                self._feeds.pop(spec.text.upper(), None)
                raise

    async def listen(self) -> None:
        """Deliver ticks to ``on_tick`` until :meth:`disconnect`; raise ConnectionLost if
        the session cannot be re-established. Nothing else leaves it."""
        bridge = self._require_bridge()
        supervisor = self._supervisor
        guarded = self.config.tick_source == "market_data"
        while True:
            try:
                batch = await bridge.get()
            except BridgeClosed:
                if self._final_error is not None:
                    raise self._final_error
                return
            first_tick: Tick | None = None
            for item in batch:
                kind = type(item)
                if kind is Tick:
                    # delivery inlined: a coroutine per tick would be a good part of the cost
                    admit = self._admit(item)  # type: ignore[arg-type]
                    if admit & _SWITCHED:
                        feed = self._feeds[item.symbol]  # type: ignore[attr-defined]
                        await self._switched(feed, item)  # type: ignore[arg-type]
                    if not admit & _DELIVER:
                        continue
                    self.ticks += 1
                    if first_tick is None:
                        first_tick = item  # type: ignore[assignment]
                        gap = supervisor.on_ticks(item.timestamp, time.monotonic())  # type: ignore[attr-defined]
                        if gap is not None:
                            await self._emit(gap)
                    if guarded:
                        self._remember(item)  # type: ignore[arg-type]
                    on_tick = self.on_tick
                    if on_tick is not None:
                        try:
                            result = on_tick(item)
                            if result is not None and inspect.isawaitable(result):
                                await result
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
            if first_tick is not None:
                # Once per batch, not per tick: the latency figures are per batch, of its
                # oldest tick (the one that waited longest) up to the end of the batch.
                now = time.monotonic_ns()
                self._last_tick_mono = now / 1e9
                self._latency_us.append((now - first_tick.received_ns) / 1000)

    async def disconnect(self) -> None:
        """Cancel the subscriptions, close the session, end :meth:`listen`."""
        self._stopping = True
        if self.is_connected():
            for feed in self._feeds.values():
                if feed.switch is not None:
                    for req in (feed.switch.current_req, feed.switch.incoming_req, feed.switch.retiring_req):
                        self._cancel_ticks(req)
        await self._supervisor.stop()
        tasks = [t for t in (self._roll_watcher,) if t is not None]
        tasks += [f.roll_task for f in self._feeds.values() if f.roll_task is not None]
        self._roll_watcher = None
        for task in tasks:
            task.cancel()
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
            "frame_timeouts": sup.stats["frame_timeouts"],
            "recovery_p50_seconds": percentile(recovery, 0.50),
            "recovery_max_seconds": recovery[-1] if recovery else None,
            "last_tick_age_seconds": None if self._last_tick_mono is None else time.monotonic() - self._last_tick_mono,
            "bridge_high_water": bridge.max_depth if bridge is not None else 0,
            "bridge_depth": len(bridge) if bridge is not None else 0,
            "drops": 0,  # the bridge never drops
            "callback_errors": self.callback_errors,
            "latency_p50_us": percentile(lat, 0.50),
            "latency_p99_us": percentile(lat, 0.99),
            "contracts": {k: f.switch.current for k, f in self._feeds.items() if f.switch},
            "rolls": self.rolls,
        }

    # -- session (driven by the supervisor through _Port) ------------------------------

    def _require_bridge(self) -> TickBridge[object]:
        if self._bridge is None:
            raise SlobError("call connect() before subscribe() or listen()")
        return self._bridge

    def _session_started(self, generation: int, client: IBClient) -> None:
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

    # -- subscriptions -------------------------------------------------------------

    async def _fetch_details(self, root: str) -> list[ContractDetails]:
        """All live futures of ``root`` (reqContractDetails; the ContractManager's source)."""
        client = self._client
        if client is None:
            raise ConnectionLost("not connected; call connect() first")
        query = Contract()
        query.symbol, query.secType, query.exchange, query.currency = root, "FUT", "CME", "USD"
        req_id = next(self._req_ids)
        future = client.expect(req_id, root)
        await self._paced(client)
        client.reqContractDetails(req_id, query)
        try:
            rows: list[ContractDetails] = await self._session.answer(future, f"the contract details of {root}")
        except RequestFailed:
            self._raised.add(req_id)  # raised to the caller; listen() need not report it again
            raise
        return rows

    async def _start_feed(self, feed: _Feed) -> None:
        """Resolve the symbol now and subscribe to that contract (first time, or again
        after a reconnect or 1101)."""
        now = await self._server_now()
        res = await self._contracts.resolve(feed.spec, at=now)
        req_id = next(self._req_ids)
        await self._request_ticks(feed, res, req_id)
        feed.resolution = res
        feed.switch = FeedSwitch(feed.symbol, res.contract.local_symbol, req_id)
        feed.failed = None

    async def _request_ticks(self, feed: _Feed, res: Resolution, req_id: int) -> None:
        """Register the subscription with the reader, send the request, and wait briefly for
        data or an error (raised here with its fix)."""
        client = self._client
        if client is None:
            raise ConnectionLost("not connected; call connect() first")
        details, contract = res.details, res.details.contract
        delayed = self.config.data_type == "delayed"
        ref = ticks.ContractRef(feed.symbol, contract.localSymbol, details.minTick or 0.25, delayed)
        source = self.config.tick_source
        sub = Subscription(req_id, ref, source, delayed=delayed)
        if source == "market_data":
            # Armed before the request goes out: the request's first trade is TWS's last
            # trade, a replay when it is one already delivered.
            seen = self._guard_last.get(feed.symbol)
            guard = ticks.ReplayGuard(seen[0], tuple(seen[1])) if seen is not None else None
            sub.merger = ticks.LastTradeMerger(ref, contract.exchange, guard=guard)
        client.subscribe(sub)
        if source == "market_data":
            if delayed:
                await self._paced(client)
                client.reqMarketDataType(3)
            await self._paced(client)
            client.reqMktData(req_id, contract, "", False, False, [])
        else:
            await self._paced(client)
            client.reqTickByTickData(req_id, contract, "AllLast", 0, False)
        log.info("= subscribed %s as %s (conId %d, request %d)", feed.spec.text, contract.localSymbol,
                 contract.conId, req_id)
        try:
            await asyncio.wait_for(asyncio.wrap_future(sub.status), self.subscribe_confirm_seconds)
        except asyncio.TimeoutError:
            pass  # neither data nor an error yet: accepted (a quiet market sends nothing)
        except RequestFailed as exc:
            client.unsubscribe(req_id)
            self._raised.add(req_id)  # raised here; listen() need not report it again
            if isinstance(exc, MarketDataNotSubscribed):
                raise MarketDataNotSubscribed(exc.code, req_id, exc.text,
                                              f"{feed.spec.text} ({contract.localSymbol})") from None
            raise

    def _remember(self, tick: Tick) -> None:
        """market_data only: the newest delivered second and its trades, for ReplayGuards."""
        seen = self._guard_last.get(tick.symbol)
        if seen is None or tick.timestamp > seen[0]:
            self._guard_last[tick.symbol] = (tick.timestamp, [(tick.price, tick.size)])
        elif tick.timestamp == seen[0]:
            seen[1].append((tick.price, tick.size))

    def _cancel_ticks(self, req_id: int, *, forget: bool = True) -> None:
        client = self._client
        if client is None or not req_id:
            return
        if forget and client.unsubscribe(req_id) is None:
            return
        if self.config.tick_source == "market_data":
            client.cancelMktData(req_id)
        else:
            client.cancelTickByTickData(req_id)

    async def _resubscribe_all(self, same_session: bool) -> None:
        """Every feed again: after a reconnect (the old requests died with the old socket),
        or on the same session after 1101 -- then the old requests are cancelled first and
        a REQ_CURRENT_TIME round trip awaited, so whatever they still had in flight has
        arrived (TWS answers in order) before the new requests exist: the two never
        overlap, no trade comes twice. A request TWS refuses for good (200, 354...) marks
        its feed failed and is reported; anything else (a time-out, pacing, a drop) fails
        the attempt."""
        feeds = list(self._feeds.values())
        client = self._client
        if same_session and client is not None:
            old = [req for f in feeds if f.switch is not None
                   for req in (f.switch.current_req, f.switch.incoming_req, f.switch.retiring_req) if req]
            for req in old:
                await self._paced(client)
                self._cancel_ticks(req, forget=False)
            await self._server_now()
            for req in old:
                client.unsubscribe(req)
        for feed in feeds:
            if feed.roll_task is not None:
                feed.roll_task.cancel()
                feed.roll_task = None
            feed.next_resolution = None
            try:
                await self._start_feed(feed)
            except RequestFailed as exc:
                if classify(exc.code).action is Action.BACK_OFF:
                    raise
                feed.failed = exc
                await self._report(exc)

    # -- rolling -----------------------------------------------------------------------

    def _roll_due(self, feed: _Feed, now: dt.datetime) -> bool:
        """Time to request the next contract: within ``roll_lead`` of the roll moment.
        Asked for every tick, so the moment is computed once per resolution."""
        res = feed.resolution
        if res is None or not res.rolling or res.until is None:
            return False
        memo = feed.roll_check
        if memo is None or memo[0] is not res or memo[1] != self.roll_lead:
            # In UTC's own tzinfo, as tick timestamps are: comparing datetimes whose
            # tzinfo objects differ asks each for its utcoffset, a cost per tick.
            memo = feed.roll_check = (res, self.roll_lead, (res.until - self.roll_lead).astimezone(_UTC))
        if now < memo[2]:
            return False
        switch = feed.switch
        return switch is not None and not switch.rolling_now and feed.roll_task is None

    def _start_roll(self, feed: _Feed) -> None:
        feed.roll_task = asyncio.create_task(self._roll(feed), name=f"slob-roll-{feed.symbol}")

    async def _roll(self, feed: _Feed) -> None:
        """Subscribe the next contract while the old one streams; the switch happens at its
        first tick (see FeedSwitch), then the old subscription is cancelled."""
        try:
            old, switch = feed.resolution, feed.switch
            assert old is not None and old.until is not None and switch is not None
            nxt = await self._contracts.resolve(feed.spec, at=old.until)
            if nxt.contract.con_id == old.contract.con_id:
                return
            req_id = next(self._req_ids)
            switch.begin(nxt.contract.local_symbol, req_id, old.until)
            feed.next_resolution = nxt
            try:
                await self._request_ticks(feed, nxt, req_id)
            except (RequestFailed, ConnectionLost, RequestTimedOut) as exc:
                switch.abandon()
                feed.next_resolution = None
                await self._report(SlobError(f"could not roll {feed.symbol} to {nxt.contract.local_symbol}: {exc}"))
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                await self._report(exc)
            raise
        finally:
            feed.roll_task = None

    async def _switched(self, feed: _Feed, tick: Tick) -> None:
        """The new contract's first tick arrived: it is the front month from now on."""
        switch = feed.switch
        old = feed.resolution
        feed.resolution, feed.next_resolution = feed.next_resolution, None
        assert switch is not None and old is not None
        self.rolls += 1
        log.info("= %s rolled %s -> %s at %s", feed.symbol, old.contract.local_symbol, switch.current, tick.timestamp)
        await self._emit(ContractRolled(feed.symbol, old.contract.local_symbol, switch.current, tick.timestamp))
        asyncio.get_running_loop().call_later(self.roll_grace_seconds, self._retire, feed)

    def _retire(self, feed: _Feed) -> None:
        if feed.switch is not None:
            self._cancel_ticks(feed.switch.retired())

    async def _roll_watch(self) -> None:
        """For quiet markets: notice a roll moment passing without ticks to show it."""
        while not self._stopping:
            await asyncio.sleep(self.roll_check_seconds)
            due = [f for f in self._feeds.values() if f.resolution is not None and f.resolution.until is not None]
            if not due or self._client is None or not self.is_connected():
                continue
            try:
                now = await self._server_now()
            except (ConnectionLost, RequestTimedOut):
                continue  # the supervisor deals with a session that does not answer
            for feed in due:
                if self._roll_due(feed, now):
                    self._start_roll(feed)

    # -- TWS messages ---------------------------------------------------------------

    async def _on_tws_message(self, msg: TwsMessage) -> None:
        code, action = msg.code, msg.action
        if code == 0:  # slob's own reports from the reader: unreadable frames, backpressure
            await self._report(SlobError(msg.text))
            return
        if msg.req_id in self._raised:
            return  # subscribe() already raised this one
        feed = next((f for f in self._feeds.values() if f.owns(msg.req_id)), None)
        if feed is not None and msg.severity in (Severity.ERROR, Severity.FATAL):
            exc = _subscription_error(msg, feed)
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
            self._supervisor.notice(Notice(Event.IB_RESTORED, code, text))
        elif msg.severity in (Severity.ERROR, Severity.FATAL) and code not in (326,):
            await self._report(RequestFailed(code, msg.req_id, msg.text))

    # -- delivery -------------------------------------------------------------------

    def _admit(self, tick: Tick) -> int:
        """Route one tick: ``_DELIVER`` if it goes to ``on_tick``, plus ``_SWITCHED`` if it
        made the next contract current (await :meth:`_switched` first)."""
        feed = self._feeds.get(tick.symbol)
        if feed is not None and feed.switch is not None:
            route = feed.switch.route(tick)
            if route is not Route.DELIVER:
                if route is Route.DROP:
                    return 0
                if route is Route.RETIRE:
                    self._retire(feed)
                    return 0
                return _DELIVER | _SWITCHED
            if self._roll_due(feed, tick.timestamp):
                self._start_roll(feed)  # this tick still belongs to the old contract
        return _DELIVER

    def _high_water(self, depth: int) -> None:
        """Reader thread: the consumer is falling behind. Reported, nothing dropped."""
        self.high_water_reports += 1
        log.warning("! tick bridge holds %d items (high-water mark %d): on_tick is slower than the feed",
                    depth, self.config.bridge_high_water)
        bridge = self._bridge
        if bridge is not None:
            bridge.put(TwsMessage(-1, 0, f"bridge above high-water mark: {depth} queued",
                                  dt.datetime.now(_UTC), Severity.WARNING, Action.NONE))


class _Port:
    """The session as the supervisor drives it (:class:`~slob.live.ib_supervisor.SessionPort`)."""

    def __init__(self, fetcher: IBWSFetcher) -> None:
        self._f = fetcher

    @property
    def generation(self) -> int:
        return self._f._session.generation

    async def handshake(self) -> None:
        await self._f._session.handshake()

    async def start_api(self) -> None:
        bridge = self._f._require_bridge()
        await self._f._session.start_api(bridge.put, bridge.put_batch)

    async def resubscribe(self, same_session: bool) -> None:
        f = self._f
        f._contracts.invalidate()  # details may have changed while away
        await f._resubscribe_all(same_session)

    async def reconcile(self) -> None:
        hook = self._f.on_reconcile
        if hook is not None:
            await hook()

    async def ping(self) -> None:
        await self._f._server_now()

    def close_session(self) -> None:
        self._f._close_client()

    def abort_session(self, cause: str) -> None:
        client = self._f._client
        if client is not None:
            client.abort(cause)

    def received_age(self) -> float | None:
        client = self._f._client
        if client is None or not client.isConnected():
            return None
        return (time.monotonic_ns() - client.last_received_ns) / 1e9

    def partial_frame_age(self) -> float | None:
        client = self._f._client
        since = client.partial_since_ns if client is not None else 0
        return (time.monotonic_ns() - since) / 1e9 if since else None

    async def emit(self, event: object) -> None:
        await self._f._emit(event)

    async def report(self, exc: BaseException) -> None:
        await self._f._report(exc)

    async def give_up(self, exc: SlobError) -> None:
        await self._f._give_up(exc)


def _subscription_error(msg: TwsMessage, feed: _Feed) -> RequestFailed:
    what = f"{feed.spec.text} ({feed.switch.current})" if feed.switch else feed.spec.text
    if msg.code in (354, 10089, 10168, 10186, 10189):
        return MarketDataNotSubscribed(msg.code, msg.req_id, msg.text, what)
    return RequestFailed(msg.code, msg.req_id, msg.text)
