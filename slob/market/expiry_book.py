"""The expiry book: a root's futures ordered by their last trade moment, and the rolls.

Pure (no I/O, no clock of its own). Roll rule (../shared/DESIGN.md §5): the roll day is
the last trade date minus ``roll_days`` calendar days (default 8: CME's convention, the
Thursday before a third-Friday expiry); the roll moment is the open of that CME trading
day -- the Globex session that starts at 17:00 Chicago the evening before, taken from the
contract's ``tradingHours`` when they list that day. A roll day on a weekend moves to the
next trading day. The front month at ``t`` is the earliest contract whose roll moment is
after ``t``; consecutive contracts therefore own back-to-back windows
``[previous roll, own roll)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from sortedcontainers import SortedDict, SortedKeyList

from slob.ib.errors import ConfigError

__all__ = ["CHICAGO", "ExpiryBook", "ListedContract", "parse_sessions", "roll_moment"]

CHICAGO = ZoneInfo("America/Chicago")
_SESSION_OPEN = dt.time(17, 0)


@dataclass(frozen=True, slots=True)
class ListedContract:
    """One expiry as the book keeps it."""

    root: str
    local_symbol: str
    con_id: int
    last_trade: dt.datetime  # tz-aware
    roll: dt.datetime  # tz-aware: the open of the roll day's session
    contract_month: str  # YYYYMM
    exchange: str = "CME"

    @property
    def month_code(self) -> str:
        return "FGHJKMNQUVXZ"[int(self.contract_month[4:6]) - 1]


def parse_sessions(trading_hours: str, zone: ZoneInfo) -> dict[dt.date, dt.datetime]:
    """IB's ``tradingHours`` (``YYYYMMDD:HHMM-YYYYMMDD:HHMM;...``, closed days
    ``YYYYMMDD:CLOSED``) as {trading day (the session's end date): session open}."""
    sessions: dict[dt.date, dt.datetime] = {}
    for part in filter(None, (p.strip() for p in trading_hours.split(";"))):
        if part.endswith(":CLOSED") or "-" not in part:
            continue
        start_text, end_text = part.split("-", 1)
        try:
            start = dt.datetime.strptime(start_text, "%Y%m%d:%H%M").replace(tzinfo=zone)
            end = dt.datetime.strptime(end_text, "%Y%m%d:%H%M").replace(tzinfo=zone)
        except ValueError:
            raise ConfigError(f"tradingHours entry {part!r} is not YYYYMMDD:HHMM-YYYYMMDD:HHMM") from None
        sessions[end.date()] = start
    return sessions


def roll_moment(
    last_trade: dt.datetime, roll_days: int, sessions: dict[dt.date, dt.datetime] | None = None
) -> dt.datetime:
    """When the front month passes to the next contract (see the module docstring)."""
    if last_trade.tzinfo is None:
        raise ConfigError("last trade moments must be tz-aware")
    if roll_days < 0:
        raise ConfigError(f"roll_days must be >= 0, not {roll_days}")
    day = last_trade.astimezone(CHICAGO).date() - dt.timedelta(days=roll_days)
    while day.weekday() >= 5:  # Saturday, Sunday: the next trading day is Monday
        day += dt.timedelta(days=1)
    if sessions and day in sessions:
        return sessions[day]
    evening = day - dt.timedelta(days=1)
    return dt.datetime.combine(evening, _SESSION_OPEN, tzinfo=CHICAGO)


class ExpiryBook:
    """A root's live expiries keyed by last trade moment (``SortedDict``), with the
    front month at any moment found by bisection on roll moments."""

    def __init__(self, root: str, contracts: Iterable[ListedContract] = ()) -> None:
        self.root = root
        self._by_expiry: SortedDict = SortedDict()
        self._by_roll: SortedKeyList = SortedKeyList(key=lambda c: c.roll)
        for c in contracts:
            self.add(c)

    def add(self, contract: ListedContract) -> None:
        """Add an expiry; the same contract again (e.g. one row per exchange) is ignored."""
        existing = self._by_expiry.get(contract.last_trade)
        if existing is not None:
            if existing.con_id != contract.con_id:
                raise ConfigError(
                    f"{existing.local_symbol} and {contract.local_symbol} share the last trade moment "
                    f"{contract.last_trade:%Y-%m-%d %H:%M %Z}; is the query mixing roots?"
                )
            return
        self._by_expiry[contract.last_trade] = contract
        self._by_roll.add(contract)

    def __len__(self) -> int:
        return len(self._by_expiry)

    def __iter__(self) -> Iterator[ListedContract]:
        return iter(self._by_expiry.values())

    def front_at(self, t: dt.datetime) -> ListedContract:
        """The earliest contract whose roll moment is after ``t``."""
        index = self._by_roll.bisect_key_right(t)
        if index >= len(self._by_roll):
            raise ConfigError(
                f"no {self.root} contract rolls after {t:%Y-%m-%d %H:%M %Z}: the book holds "
                + (", ".join(c.local_symbol for c in self) or "nothing")
            )
        front: ListedContract = self._by_roll[index]
        return front

    def next_after(self, contract: ListedContract) -> ListedContract | None:
        """The expiry that follows ``contract`` (its successor as front month)."""
        index = self._by_expiry.bisect_right(contract.last_trade)
        if index >= len(self._by_expiry):
            return None
        nxt: ListedContract = self._by_expiry.peekitem(index)[1]
        return nxt

    def previous_before(self, contract: ListedContract) -> ListedContract | None:
        index = self._by_expiry.bisect_left(contract.last_trade)
        if index == 0:
            return None
        prev: ListedContract = self._by_expiry.peekitem(index - 1)[1]
        return prev

    def window(self, contract: ListedContract) -> tuple[dt.datetime | None, dt.datetime]:
        """When ``contract`` is the front month: [previous roll, own roll)."""
        prev = self.previous_before(contract)
        return (prev.roll if prev else None, contract.roll)

    def pinned(self, month: int, year: int, year_digits: int, now: dt.datetime) -> ListedContract:
        """A pinned month: 4 or 2 year digits match exactly; 1 digit means the nearest
        such contract that has not expired at ``now``."""
        for c in self:
            if c.last_trade <= now:
                continue
            y, m = int(c.contract_month[:4]), int(c.contract_month[4:6])
            if m != month:
                continue
            if (year_digits == 4 and y == year) or (year_digits == 2 and y % 100 == year) or (
                    year_digits == 1 and y % 10 == year):
                return c
        listed = ", ".join(c.local_symbol for c in self if c.last_trade > now)
        raise ConfigError(f"no unexpired {self.root} contract for that month; TWS lists {listed or 'none'}")

