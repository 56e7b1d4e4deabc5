"""What IBWSFetcher has subscribed: each symbol's contract, its requests and its rolls.

A :class:`Feed` is one subscribed symbol (``NQ`` or a pinned ``NQZ4``): the contract it
resolves to now, the request(s) delivering it (a :class:`~slob.live.feed_switch.FeedSwitch`
routes their ticks across a roll) and a roll in progress. :class:`FeedBook` holds them and
makes their requests through the current :class:`~slob.live.ib_session.IBSession`: the
first subscription, the resubscription after a reconnect or 1101 (the supervisor's
``resubscribing`` state), and the live roll about ``roll_lead`` before each roll moment
(../shared/DESIGN.md §5; docs/rolling.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from ibapi.contract import Contract, ContractDetails

from slob.config.ib_config import IBConfig
from slob.ib import ticks
from slob.ib.client import Subscription, TwsMessage
from slob.ib.errors import (Action, ConnectionLost, MarketDataNotSubscribed, RequestFailed, RequestTimedOut,
                            SlobError, classify)
from slob.live.feed_switch import FeedSwitch, Route
from slob.live.ib_contract_manager import ContractManager, Resolution
from slob.live.ib_session import IBSession
from slob.market.symbols import SymbolSpec
from slob.model import ContractRolled, Tick

__all__ = ["DELIVER", "Feed", "FeedBook", "SWITCHED", "subscription_error"]

log = logging.getLogger("slob.live.ib_ws_fetcher")
_UTC = dt.timezone.utc
DELIVER, SWITCHED = 1, 2  # FeedBook.admit's answer


@dataclass(eq=False)
class Feed:
    """One subscribed symbol: what it resolves to, and which contract it delivers."""

    spec: SymbolSpec
    resolution: Resolution | None = None
    switch: FeedSwitch | None = None
    next_resolution: Resolution | None = None
    roll_task: asyncio.Task[None] | None = None
    failed: BaseException | None = None
    #: (resolution, roll_lead, moment to request the next contract), see FeedBook.roll_due
    roll_check: tuple[Resolution, dt.timedelta, dt.datetime] | None = None

    @property
    def symbol(self) -> str:
        return self.spec.text.upper()

    @property
    def requests(self) -> tuple[int, ...]:
        s = self.switch
        return tuple(r for r in (s.current_req, s.incoming_req, s.retiring_req) if r) if s is not None else ()

    def owns(self, req_id: int) -> bool:
        return req_id > 0 and req_id in self.requests


class FeedBook:
    def __init__(self, config: IBConfig, session: IBSession, *,
                 report: Callable[[BaseException], Awaitable[None]],
                 emit: Callable[[object], Awaitable[None]]) -> None:
        self.config = config
        self._session = session
        self._report = report
        self._emit = emit
        self.feeds: dict[str, Feed] = {}
        self.contracts = ContractManager(self.fetch_details, roll_days=config.roll_days_before_expiry,
                                         clock=session.server_clock)
        #: How long a subscription may take to show data or an error before it counts as accepted.
        self.subscribe_confirm_seconds = 1.0
        #: How long the old contract may still deliver in-flight ticks after a roll switch.
        self.roll_grace_seconds = 2.0
        #: How long before a roll moment (exchange time) the next contract is requested.
        self.roll_lead = dt.timedelta(seconds=60)
        #: How often to ask TWS's clock whether a roll moment passed on a quiet market.
        self.roll_check_seconds = 5.0
        self.rolls = 0
        #: Request ids whose error was raised to a caller (listen() need not report it again).
        self.raised: set[int] = set()
        self._guard_last: dict[str, tuple[dt.datetime, list[tuple[float, float]]]] = {}

    def owner(self, req_id: int) -> Feed | None:
        return next((f for f in self.feeds.values() if f.owns(req_id)), None)

    def cancel_all(self) -> list["asyncio.Task[None]"]:
        """Cancel every request (a clean stop); returns the roll tasks to await."""
        if self._session.is_connected():
            for feed in self.feeds.values():
                for req in feed.requests:
                    self.cancel_ticks(req)
        tasks = [f.roll_task for f in self.feeds.values() if f.roll_task is not None]
        for task in tasks:
            task.cancel()
        return tasks

    # -- requests --------------------------------------------------------------------

    async def fetch_details(self, root: str) -> list[ContractDetails]:
        """All live futures of ``root`` (reqContractDetails; the ContractManager's source)."""
        client = self._session.client
        if client is None:
            raise ConnectionLost("not connected; call connect() first")
        query = Contract()
        query.symbol, query.secType, query.exchange, query.currency = root, "FUT", "CME", "USD"
        req_id = next(self._session.req_ids)
        future = client.expect(req_id, root)
        await self._session.paced(client)
        client.reqContractDetails(req_id, query)
        try:
            rows: list[ContractDetails] = await self._session.answer(future, f"the contract details of {root}")
        except RequestFailed:
            self.raised.add(req_id)  # raised to the caller; listen() need not report it again
            raise
        return rows

    async def start_feed(self, feed: Feed) -> None:
        """Resolve the symbol now and subscribe to that contract (first time, or again
        after a reconnect or 1101)."""
        now = await self._session.server_now()
        res = await self.contracts.resolve(feed.spec, at=now)
        req_id = next(self._session.req_ids)
        previous = feed.resolution
        rolled = previous is not None and previous.contract.con_id != res.contract.con_id
        # Routed by the new switch before the request goes out: its first ticks may arrive
        # while request_ticks still waits for the subscription to show data.
        feed.resolution, feed.next_resolution = res, None
        feed.switch = FeedSwitch(feed.symbol, res.contract.local_symbol, req_id,
                                 resumed_from=previous.contract.local_symbol if rolled and previous else None)
        await self.request_ticks(feed, res, req_id)
        feed.failed = None

    async def request_ticks(self, feed: Feed, res: Resolution, req_id: int) -> None:
        """Register the subscription with the reader, send the request, and wait briefly for
        data or an error (raised here with its fix)."""
        client = self._session.client
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
                await self._session.paced(client)
                client.reqMarketDataType(3)
            await self._session.paced(client)
            client.reqMktData(req_id, contract, "", False, False, [])
        else:
            await self._session.paced(client)
            client.reqTickByTickData(req_id, contract, "AllLast", 0, False)
        log.info("= subscribed %s as %s (conId %d, request %d)", feed.spec.text, contract.localSymbol,
                 contract.conId, req_id)
        try:
            await asyncio.wait_for(asyncio.wrap_future(sub.status), self.subscribe_confirm_seconds)
        except asyncio.TimeoutError:
            pass  # neither data nor an error yet: accepted (a quiet market sends nothing)
        except RequestFailed as exc:
            client.unsubscribe(req_id)
            self.raised.add(req_id)  # raised here; listen() need not report it again
            if isinstance(exc, MarketDataNotSubscribed):
                raise MarketDataNotSubscribed(exc.code, req_id, exc.text,
                                              f"{feed.spec.text} ({contract.localSymbol})") from None
            raise

    def remember(self, tick: Tick) -> None:
        """market_data only: the newest delivered second and its trades, for ReplayGuards."""
        seen = self._guard_last.get(tick.symbol)
        if seen is None or tick.timestamp > seen[0]:
            self._guard_last[tick.symbol] = (tick.timestamp, [(tick.price, tick.size)])
        elif tick.timestamp == seen[0]:
            seen[1].append((tick.price, tick.size))

    def cancel_ticks(self, req_id: int, *, forget: bool = True) -> None:
        client = self._session.client
        if client is None or not req_id:
            return
        if forget and client.unsubscribe(req_id) is None:
            return
        if self.config.tick_source == "market_data":
            client.cancelMktData(req_id)
        else:
            client.cancelTickByTickData(req_id)

    async def resubscribe_all(self, same_session: bool) -> None:
        """Every feed again: after a reconnect (the old requests died with the old socket),
        or on the same session after 1101 -- then the old requests are cancelled first and
        a REQ_CURRENT_TIME round trip awaited, so whatever they still had in flight has
        arrived (TWS answers in order) before the new requests exist: the two never
        overlap, no trade comes twice. A request TWS refuses for good (200, 354...) marks
        its feed failed and is reported; anything else (a time-out, pacing, a drop) fails
        the attempt."""
        feeds = list(self.feeds.values())
        client = self._session.client
        if same_session and client is not None:
            old = [req for f in feeds for req in f.requests]
            for req in old:
                await self._session.paced(client)
                self.cancel_ticks(req, forget=False)
            await self._session.server_now()
            for req in old:
                client.unsubscribe(req)
        for feed in feeds:
            if feed.roll_task is not None:
                feed.roll_task.cancel()
                feed.roll_task = None
            feed.next_resolution = None
            try:
                await self.start_feed(feed)
            except RequestFailed as exc:
                if classify(exc.code).action is Action.BACK_OFF:
                    raise
                feed.failed = exc
                await self._report(exc)

    def roll_due(self, feed: Feed, now: dt.datetime) -> bool:
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

    def start_roll(self, feed: Feed) -> None:
        feed.roll_task = asyncio.create_task(self.roll(feed), name=f"slob-roll-{feed.symbol}")

    async def roll(self, feed: Feed) -> None:
        """Subscribe the next contract while the old one streams; the switch happens at its
        first tick (see FeedSwitch), then the old subscription is cancelled."""
        try:
            old, switch = feed.resolution, feed.switch
            assert old is not None and old.until is not None and switch is not None
            nxt = await self.contracts.resolve(feed.spec, at=old.until)
            if nxt.contract.con_id == old.contract.con_id:
                return
            req_id = next(self._session.req_ids)
            switch.begin(nxt.contract.local_symbol, req_id, old.until)
            feed.next_resolution = nxt
            try:
                await self.request_ticks(feed, nxt, req_id)
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

    async def switched(self, feed: Feed, tick: Tick) -> None:
        """The new contract's first tick arrived: it is the front month from now on."""
        switch = feed.switch
        assert switch is not None
        if switch.resumed_from is not None:  # the roll moment passed during an outage
            old_symbol, switch.resumed_from = switch.resumed_from, None
            self.rolls += 1
            log.info("= %s rolled %s -> %s across an outage, first tick %s", feed.symbol, old_symbol,
                     switch.current, tick.timestamp)
            await self._emit(ContractRolled(feed.symbol, old_symbol, switch.current, tick.timestamp))
            return
        old = feed.resolution
        feed.resolution, feed.next_resolution = feed.next_resolution, None
        assert switch is not None and old is not None
        self.rolls += 1
        at = switch.cut or tick.timestamp
        log.info("= %s rolled %s -> %s at %s", feed.symbol, old.contract.local_symbol, switch.current, at)
        await self._emit(ContractRolled(feed.symbol, old.contract.local_symbol, switch.current, at))
        asyncio.get_running_loop().call_later(self.roll_grace_seconds, self.retire, feed)

    def retire(self, feed: Feed) -> None:
        if feed.switch is not None:
            self.cancel_ticks(feed.switch.retired())

    async def roll_watch(self) -> None:
        """For quiet markets: notice a roll moment passing without ticks to show it."""
        while True:
            await asyncio.sleep(self.roll_check_seconds)
            due = [f for f in self.feeds.values() if f.resolution is not None and f.resolution.until is not None]
            if not due or self._session.client is None or not self._session.is_connected():
                continue
            try:
                now = await self._session.server_now()
            except (ConnectionLost, RequestTimedOut):
                continue  # the supervisor deals with a session that does not answer
            for feed in due:
                if self.roll_due(feed, now):
                    self.start_roll(feed)

    # -- delivery ------------------------------------------------------------------------

    def admit(self, tick: Tick) -> int:
        """Route one tick: ``DELIVER`` if it goes to ``on_tick``, plus ``SWITCHED`` if it
        made the next contract current (await :meth:`_switched` first)."""
        feed = self.feeds.get(tick.symbol)
        if feed is not None and feed.switch is not None:
            route = feed.switch.route(tick)
            if route is not Route.DELIVER:
                if route is Route.DROP:
                    return 0
                if route is Route.RETIRE:
                    self.retire(feed)
                    return 0
                return DELIVER | SWITCHED
            if self.roll_due(feed, tick.timestamp):
                self.start_roll(feed)  # this tick still belongs to the old contract
        return DELIVER


def subscription_error(msg: TwsMessage, feed: Feed) -> RequestFailed:
    what = f"{feed.spec.text} ({feed.switch.current})" if feed.switch else feed.spec.text
    if msg.code in (354, 10089, 10168, 10186, 10189):
        return MarketDataNotSubscribed(msg.code, msg.req_id, msg.text, what)
    return RequestFailed(msg.code, msg.req_id, msg.text)
