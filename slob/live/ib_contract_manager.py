"""ContractManager: contract details by hand, and which contract a symbol means when.

It requests contract details for a futures root through a ``fetch`` coroutine (normally
IBWSFetcher's, i.e. ``reqContractDetails`` on IBClient), builds an
:class:`~slob.market.expiry_book.ExpiryBook` from them -- in whatever order and with
whatever duplicate rows TWS sends -- and answers ``resolve("NQ")`` (the front month at
the given moment, rolling) or ``resolve("NQZ4")`` (a pinned month).

Cache: a root's book is reused until it goes stale -- a roll moment has passed since it
was built, or a CME trading day has begun (17:00 Chicago), or :meth:`invalidate` was
called (after a reconnect) -- then requested again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Awaitable, Callable
from zoneinfo import ZoneInfo

from ibapi.contract import ContractDetails

from slob.ib.errors import ConfigError
from slob.market.expiry_book import CHICAGO, ExpiryBook, ListedContract, parse_sessions, roll_moment
from slob.market.symbols import SymbolSpec, expiry_moment, parse_symbol

__all__ = ["ContractManager", "Resolution", "listed_contract"]

Fetch = Callable[[str], Awaitable[list[ContractDetails]]]


def listed_contract(details: ContractDetails, roll_days: int) -> ListedContract:
    """A book entry from IB's contract details (expiry zone normalised, roll computed)."""
    last_trade = expiry_moment(details)
    zone = last_trade.tzinfo
    sessions = parse_sessions(details.tradingHours or "", zone) if isinstance(zone, ZoneInfo) else None
    c = details.contract
    month = details.contractMonth or c.lastTradeDateOrContractMonth[:6]
    return ListedContract(
        root=c.symbol.upper(),
        local_symbol=c.localSymbol,
        con_id=c.conId,
        last_trade=last_trade,
        roll=roll_moment(last_trade, roll_days, sessions),
        contract_month=month,
        exchange=c.exchange,
    )


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a symbol means at a moment: the contract, its IB details, and (for a rolling
    symbol) when it stops being the front month."""

    symbol: str
    contract: ListedContract
    details: ContractDetails
    rolling: bool
    until: dt.datetime | None  # roll moment for a rolling symbol, else None


@dataclass
class _Cached:
    book: ExpiryBook
    details: dict[int, ContractDetails]
    built_at: dt.datetime
    stale_at: dt.datetime


class ContractManager:
    def __init__(self, fetch: Fetch, *, roll_days: int = 8, clock: Callable[[], dt.datetime] | None = None) -> None:
        if not 0 <= roll_days <= 60:
            raise ConfigError(f"roll_days {roll_days} is outside 0..60")
        self._fetch = fetch
        self.roll_days = roll_days
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self._cache: dict[str, _Cached] = {}
        self.requests = 0

    def invalidate(self, root: str | None = None) -> None:
        """Forget cached details (all roots, or one): the next use requests them again."""
        if root is None:
            self._cache.clear()
        else:
            self._cache.pop(root.upper(), None)

    async def book(self, root: str, *, now: dt.datetime | None = None) -> ExpiryBook:
        return (await self._cached(root.upper(), now or self._clock())).book

    async def resolve(self, symbol: str | SymbolSpec, *, at: dt.datetime | None = None) -> Resolution:
        spec = parse_symbol(symbol) if isinstance(symbol, str) else symbol
        now = at or self._clock()
        cached = await self._cached(spec.root, now)
        if spec.rolling:
            contract = cached.book.front_at(now)
            until: dt.datetime | None = contract.roll
        else:
            assert spec.month is not None and spec.year is not None
            contract = cached.book.pinned(spec.month, spec.year, spec.year_digits, now)
            until = None
        return Resolution(spec.text, contract, cached.details[contract.con_id], spec.rolling, until)

    def details_for(self, contract: ListedContract) -> ContractDetails:
        cached = self._cache.get(contract.root)
        if cached is None or contract.con_id not in cached.details:
            raise ConfigError(f"no details cached for {contract.local_symbol}")
        return cached.details[contract.con_id]

    async def _cached(self, root: str, now: dt.datetime) -> _Cached:
        cached = self._cache.get(root)
        if cached is not None and cached.built_at <= now < cached.stale_at:
            return cached
        rows = await self._fetch(root)
        self.requests += 1
        book = ExpiryBook(root)
        details: dict[int, ContractDetails] = {}
        for d in rows:
            if d.contract.symbol.upper() != root and (d.contract.tradingClass or "").upper() != root:
                continue
            listed = listed_contract(d, self.roll_days)
            book.add(listed)
            # one row per exchange for a blank-exchange query: prefer the CME row
            if listed.con_id not in details or d.contract.exchange == "CME":
                details[listed.con_id] = d
        if not len(book):
            raise ConfigError(f"TWS returned no {root} futures contracts")
        cached = _Cached(book, details, now, _stale_at(book, now))
        self._cache[root] = cached
        return cached


def _stale_at(book: ExpiryBook, now: dt.datetime) -> dt.datetime:
    """The next roll moment or the next 17:00 Chicago (a new trading day), whichever first."""
    local = now.astimezone(CHICAGO)
    day_open = dt.datetime.combine(local.date(), dt.time(17, 0), tzinfo=CHICAGO)
    if day_open <= local:
        day_open += dt.timedelta(days=1)
    rolls = [c.roll for c in book if c.roll > now]
    return min([day_open] + rolls[:1])
