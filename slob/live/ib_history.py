"""IBHistory: historical bars, ticks and head timestamps through the fetcher's session.

    history = fetcher.history_service            # or IBHistory(session, config)
    candles = await history.bars("NQ", start, end)            # 1-minute TRADES
    candles = await history.bars("NQH5", start, end, bar="5 mins", what="MIDPOINT")

``"NQ"`` means the front month at each moment: the range is cut at each roll moment and
every contract's own bars are requested (the candle of a minute carries the contract it
was traded in); ``"NQH5"`` pins one contract; an ibapi ``Contract`` is asked as given.
Contract details are looked up *with* expired months, so a range in the past finds the
contract that was the front then (``includeExpired`` is set on its requests).

Every request goes through the session (:class:`~slob.live.ib_session.IBSession`: the
50-messages-per-second pacer, the current client) and through :class:`HistoryPacer`, IB's
historical pacing, which is a budget of its own. Answers are awaited with
``HistorySettings.timeout_seconds``. What can go wrong, and what leaves here (only
SlobErrors):

* 162 pacing violation: waited out (``pacing_backoff_seconds``, doubled per retry) and
  retried ``pacing_retries`` times, then :class:`~slob.ib.history.HistoryPacingViolation`;
* 162 "HMDS query returned no data": an empty page, not an error;
* 162 without permission: :class:`~slob.ib.history.HistoryNotPermitted`;
* 200: :class:`~slob.ib.errors.ContractNotFound`; any other error: ``RequestFailed``;
* no answer: :class:`~slob.ib.errors.RequestTimedOut` (the request is cancelled at TWS);
* the session lost: :class:`~slob.ib.errors.ConnectionLost` -- pages already delivered to
  ``on_page`` stay delivered, so a caller that stores them resumes where it stopped.

A bar that has not ended by TWS's clock (TWS includes the forming bar when a request
reaches the present) is not a finished bar and is left out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import datetime as dt
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from ibapi.contract import Contract, ContractDetails

from slob.config.ib_config import IBConfig
from slob.ib.client import IBClient
from slob.ib.errors import ConfigError, RequestTimedOut
from slob.ib.history import (
    MAX_TICKS_PER_REQUEST,
    BarSize,
    HistoryPacingViolation,
    Page,
    bar_size,
    candle_from_bar,
    format_ib_time,
    merge_candles,
    page_ranges,
    parse_bar_time,
    what_to_show,
)
from slob.ib.history_pacing import HistoryKey, HistoryPacer, PacingRules
from slob.live.ib_contract_manager import ContractManager
from slob.live.ib_session import IBSession
from slob.market.symbols import parse_symbol
from slob.model import Candle, Tick

__all__ = ["HistoryPage", "HistorySettings", "IBHistory", "PlannedPage"]

log = logging.getLogger("slob.live.ib_history")
T = TypeVar("T")
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """How history requests are paced and awaited. ``clock`` and ``sleep`` are what the
    pacer measures and waits with (inject both to test the rules without sleeping)."""

    pacing: PacingRules = field(default_factory=PacingRules)
    timeout_seconds: float = 60.0
    pacing_retries: int = 3
    pacing_backoff_seconds: float = 15.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = _sleep

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ConfigError(f"history timeout_seconds {self.timeout_seconds} must be positive")
        if self.pacing_retries < 0 or self.pacing_backoff_seconds < 0:
            raise ConfigError("history pacing_retries and pacing_backoff_seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class PlannedPage:
    """One request of a plan: ``symbol`` as asked, the contract (IB's, ready to send)
    and its local symbol, and the page's span."""

    symbol: str
    contract: Contract
    local_symbol: str
    page: Page


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One answered page, as ``on_page`` gets it: ``number`` from 1 of ``total``."""

    planned: PlannedPage
    candles: tuple[Candle, ...]
    number: int
    total: int


OnPage = Callable[[HistoryPage], "Awaitable[None] | None"]


class IBHistory:
    """See the module docstring."""

    def __init__(self, session: IBSession, config: IBConfig, settings: HistorySettings | None = None) -> None:
        self._session = session
        self.settings = settings or HistorySettings()
        self.pacer = HistoryPacer(self.settings.pacing, clock=self.settings.clock)
        #: Contract details *with* expired months (a separate cache from the live feed's).
        self.contracts = ContractManager(self._fetch_details, roll_days=config.roll_days_before_expiry,
                                         clock=session.server_clock)
        self._freed: asyncio.Event | None = None
        #: Requests sent (bars, ticks, head timestamps), 162 pacing answers met, and the
        #: seconds spent waiting for the pacer.
        self.requests = 0
        self.pacing_violations = 0
        self.waited_seconds = 0.0

    # -- public ------------------------------------------------------------------------

    async def plan(self, symbol: str | Contract, start: dt.datetime, end: dt.datetime,
                   bar: str = "1 min") -> list[PlannedPage]:
        """The requests :meth:`bars` would send for ``[start, end)``, oldest first."""
        size = bar_size(bar)
        now = await self._session.server_now()
        out: list[PlannedPage] = []
        for label, contract, local, seg_start, seg_end in await self._segments(symbol, start, end, now):
            for page in page_ranges(seg_start, seg_end, size):
                out.append(PlannedPage(label, contract, local, page))
        return out

    async def bars(self, symbol: str | Contract, start: dt.datetime, end: dt.datetime, *, bar: str = "1 min",
                   what: str = "TRADES", use_rth: bool = False, on_page: OnPage | None = None) -> list[Candle]:
        """Finished bars of ``[start, end)`` as Candles, in time order (see the module
        docstring). ``on_page`` is called (or awaited) with each page as it arrives."""
        size, shown = bar_size(bar), what_to_show(what)
        planned = await self.plan(symbol, start, end, size.name)
        now = self._session.server_clock()  # just measured by plan(): TWS's clock, not ours
        pages: list[list[Candle]] = []
        for number, p in enumerate(planned, 1):
            candles = await self.fetch_page(p, size.name, shown, use_rth, now=now)
            pages.append(candles)
            if on_page is not None:
                result = on_page(HistoryPage(p, tuple(candles), number, len(planned)))
                if inspect.isawaitable(result):
                    await result
        return merge_candles(pages, start, end, now)

    async def fetch_page(self, planned: PlannedPage, bar: str = "1 min", what: str = "TRADES",
                         use_rth: bool = False, *, now: dt.datetime | None = None) -> list[Candle]:
        """One page's finished bars inside the page, in time order: those ended by ``now``
        (default: TWS's clock, read now)."""
        size, page = bar_size(bar), planned.page
        if now is None:
            now = await self._session.server_now()
        key = HistoryKey(_contract_key(planned.contract), what,
                         (page.end_text, page.duration, size.name, what, str(int(use_rth))))
        rows: list[Any] = await self._paced_request(
            key, f"{planned.local_symbol} {size.name} {what} bars to {page.end_text}", "bars",
            lambda client, req_id: client.request_history(req_id, planned.contract, page.end_text, page.duration,
                                                          size.name, what, use_rth))
        candles = [self._candle(planned, size, row) for row in rows]
        return merge_candles([candles], page.start, page.end, now)

    async def ticks(self, symbol: str | Contract, start: dt.datetime, end: dt.datetime, *,
                    per_request: int = MAX_TICKS_PER_REQUEST) -> list[Tick]:
        """The trades of ``[start, end)`` from IB's historical ticks (TRADES, at most
        ``per_request`` per request, paged forward from ``start``)."""
        if not 0 < per_request <= MAX_TICKS_PER_REQUEST:
            raise ConfigError(f"per_request {per_request} is not 1..{MAX_TICKS_PER_REQUEST} (IB's limit)")
        out: list[Tick] = []
        now = await self._session.server_now()
        for label, contract, local, seg_start, seg_end in await self._segments(symbol, start, end, now):
            cursor = seg_start
            while cursor < seg_end:
                start_text = format_ib_time(cursor)
                key = HistoryKey(_contract_key(contract), "TRADES", ("ticks", start_text, str(per_request)))
                rows: list[Any] = await self._paced_request(
                    key, f"{local} ticks from {start_text}", "ticks",
                    lambda client, req_id: client.request_historical_ticks(
                        req_id, contract, start_text, "", per_request, "TRADES"))
                if not rows:
                    break
                last = max(int(r.time) for r in rows)
                for r in rows:
                    moment = _EPOCH + dt.timedelta(seconds=int(r.time))
                    if cursor <= moment < seg_end:
                        out.append(Tick(label, float(r.price), float(r.size), moment, str(r.exchange or ""), local,
                                        time.monotonic_ns()))
                nxt = _EPOCH + dt.timedelta(seconds=last + 1)  # IB completes the last second
                if nxt <= cursor:
                    break
                cursor = nxt
        return out

    async def head_timestamp(self, symbol: str | Contract, *, what: str = "TRADES") -> dt.datetime:
        """The earliest moment TWS has data of ``what`` for the contract ``symbol`` means now."""
        shown = what_to_show(what)
        now = await self._session.server_now()
        segments = await self._segments(symbol, now, now + dt.timedelta(seconds=1), now)
        _, contract, local, _, _ = segments[0]
        key = HistoryKey(_contract_key(contract), "HEAD", (shown,))
        text: str = await self._paced_request(
            key, f"the head timestamp of {local}", "head",
            lambda client, req_id: client.request_head_timestamp(req_id, contract, shown))
        return parse_bar_time(text)

    # -- contracts ---------------------------------------------------------------------

    async def _fetch_details(self, root: str) -> list[ContractDetails]:
        client = self._session.require()
        query = Contract()
        query.symbol, query.secType, query.exchange, query.currency = root, "FUT", "CME", "USD"
        query.includeExpired = True
        req_id = next(self._session.req_ids)
        future = client.expect_quietly(req_id, root)
        await self._session.paced(client)
        client.reqContractDetails(req_id, query)
        rows: list[ContractDetails] = await self._session.answer(
            future, f"the contract details of {root} (expired months included)")
        return rows

    async def _segments(self, symbol: str | Contract, start: dt.datetime, end: dt.datetime,
                        now: dt.datetime) -> list[tuple[str, Contract, str, dt.datetime, dt.datetime]]:
        """(label, contract, local symbol, from, to) per contract over ``[start, end)``;
        ``now`` is TWS's clock (contracts expired by then are asked with includeExpired)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ConfigError("history ranges take tz-aware times (UTC)")
        if not isinstance(symbol, str):
            local = symbol.localSymbol or symbol.symbol
            return [(local, symbol, local, start, end)]
        spec = parse_symbol(symbol)
        book = await self.contracts.book(spec.root, now=now)
        label = spec.text.upper()
        out = []
        if not spec.rolling:
            assert spec.month is not None and spec.year is not None
            listed = book.pinned(spec.month, spec.year, spec.year_digits, min(start, now))
            return [(label, self._contract(listed, now), listed.local_symbol, start, end)]
        cursor = start
        while cursor < end:
            listed = book.front_at(cursor)
            until = min(end, listed.roll)
            out.append((label, self._contract(listed, now), listed.local_symbol, cursor, until))
            cursor = until
        return out

    def _contract(self, listed: Any, now: dt.datetime) -> Contract:
        contract = copy.copy(self.contracts.details_for(listed).contract)
        contract.includeExpired = listed.last_trade <= now
        return contract

    # -- requests ----------------------------------------------------------------------

    async def _paced_request(self, key: HistoryKey, what: str, kind: str,
                             send: Callable[[IBClient, int], "concurrent.futures.Future[T]"]) -> T:
        """Send through both pacers, await the answer; retry a 162 pacing violation."""
        s = self.settings
        attempt = 0
        while True:
            client = await self._turn(key)
            req_id = next(self._session.req_ids)
            self.requests += 1
            future = send(client, req_id)
            try:
                return await self._answer(client, req_id, future, kind, what)
            except HistoryPacingViolation as exc:
                self.pacing_violations += 1
                if attempt >= s.pacing_retries:
                    raise HistoryPacingViolation(exc.code, exc.req_id, exc.text, what, attempt) from None
                wait = s.pacing_backoff_seconds * 2 ** attempt
                attempt += 1
                log.warning("! 162 pacing violation on %s; retrying in %.0f s (%d/%d)", what, wait, attempt,
                            s.pacing_retries)
                await s.sleep(wait)
                self.waited_seconds += wait
            finally:
                self.pacer.finished()
                if self._freed is not None:
                    self._freed.set()

    async def _turn(self, key: HistoryKey) -> IBClient:
        """Wait until ``key`` may go by both pacers; record it as sent; the client to send on.
        Nothing is awaited between the last check and the record, so concurrent callers
        cannot both take the same slot."""
        while True:
            delay = self.pacer.delay(key)
            if delay == float("inf"):
                if self._freed is None:
                    self._freed = asyncio.Event()
                self._freed.clear()
                await self._freed.wait()
                continue
            if delay > 0:
                await self.settings.sleep(delay)
                self.waited_seconds += delay
                continue
            client = self._session.require()
            await self._session.paced(client)
            if self.pacer.delay(key) == 0 and self._session.client is client:
                self.pacer.sent(key)
                return client

    async def _answer(self, client: IBClient, req_id: int, future: "concurrent.futures.Future[T]", kind: str,
                      what: str) -> T:
        seconds = self.settings.timeout_seconds
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), seconds)
        except asyncio.TimeoutError:
            client.cancel_history(req_id, kind)
            raise RequestTimedOut(what, seconds) from None
        except asyncio.CancelledError:
            client.cancel_history(req_id, kind)
            raise

    @staticmethod
    def _candle(planned: PlannedPage, size: BarSize, row: Any) -> Candle:
        return candle_from_bar(planned.symbol, planned.local_symbol, size, parse_bar_time(str(row.date)), row.open,
                               row.high, row.low, row.close, row.volume, row.barCount)


def _contract_key(contract: Contract) -> str:
    """What IB's pacing calls "the same contract": its conId, else its local symbol."""
    return str(contract.conId or contract.localSymbol or contract.symbol)

