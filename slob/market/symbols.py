"""Futures symbols as users write them, and picking the contract they mean.

Accepted forms: ``NQ`` (the front month, rolled automatically), ``NQZ4``, ``NQZ24``,
``NQZ2024``, ``NQ 202412`` (also ``NQ202412``), for any root of letters (``MNQH5``,
``ESM25``). A one-digit year means the nearest such contract that has not expired at the
reference time (``NQZ4`` in 2033 is NQZ2034; in late December 2034, after Z2034 has
expired, it is NQZ2044).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


from ibapi.contract import ContractDetails

from slob.ib.errors import ConfigError
from slob.ib.zones import ib_zone

__all__ = ["FORMS", "SymbolSpec", "expiry_moment", "parse_symbol"]

MONTH_CODES = "FGHJKMNQUVXZ"
FORMS = "'NQ' (front month), 'NQZ4', 'NQZ24', 'NQZ2024' or 'NQ 202412'"

_PATTERNS = (
    re.compile(r"(?P<root>[A-Z]{1,5}?)(?P<code>[FGHJKMNQUVXZ])(?P<year>\d{1,4})"),
    re.compile(r"(?P<root>[A-Z]{1,5})\s*(?P<year>\d{4})(?P<month>\d{2})"),
    re.compile(r"(?P<root>[A-Z]{1,5})"),
)

@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A parsed symbol: the root, and the month it pins (None: front month, rolling)."""

    text: str
    root: str
    month: int | None = None
    year: int | None = None  # the digits as written (4, 24 or 2024)
    year_digits: int = 0

    @property
    def rolling(self) -> bool:
        return self.month is None


def parse_symbol(text: str) -> SymbolSpec:
    cleaned = " ".join(text.strip().upper().split())
    for pattern in _PATTERNS:
        m = pattern.fullmatch(cleaned)
        if m is None:
            continue
        groups = m.groupdict()
        if "code" in groups and groups.get("code"):
            digits = groups["year"]
            if len(digits) == 3:
                break
            return SymbolSpec(text, groups["root"], MONTH_CODES.index(groups["code"]) + 1, int(digits), len(digits))
        if groups.get("month"):
            month = int(groups["month"])
            if not 1 <= month <= 12:
                break
            return SymbolSpec(text, groups["root"], month, int(groups["year"]), 4)
        return SymbolSpec(text, groups["root"])
    raise ConfigError(f"{text!r} is not a futures symbol slob understands; use {FORMS}")


def expiry_moment(details: ContractDetails) -> dt.datetime:
    """When trading in this contract stops, tz-aware, from IB's contract details."""
    date_text = (details.contract.lastTradeDateOrContractMonth or "")[:8]
    if len(date_text) != 8 or not date_text.isdigit():
        date_text = (details.realExpirationDate or "")[:8]
    if len(date_text) != 8 or not date_text.isdigit():
        raise ConfigError(f"contract {details.contract.localSymbol!r} has no last trade date")
    time_text = details.lastTradeTime or "00:00:00"
    zone_name = (details.timeZoneId or "").strip()
    if not zone_name:
        raise ConfigError(f"contract {details.contract.localSymbol!r} has no timeZoneId; cannot place its expiry")
    try:
        zone = ib_zone(zone_name)
    except ConfigError:
        raise ConfigError(
            f"contract {details.contract.localSymbol!r} has an unknown timeZoneId {zone_name!r}"
        ) from None
    parts = [int(p) for p in time_text.replace(":", " ").split()[:3]] + [0, 0, 0]
    day = dt.date(int(date_text[:4]), int(date_text[4:6]), int(date_text[6:]))
    return dt.datetime(day.year, day.month, day.day, parts[0], parts[1], parts[2], tzinfo=zone)
