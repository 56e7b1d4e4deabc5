"""CME quarterly equity-index futures as the fake TWS lists them.

Expiries, local symbols, conIds and the trading-hours strings that IB's contract
details carry, generated for any simulated date. Facts (../shared/TWS-FACTS.md §3 and
the ES/MES captures): contracts expire on the third Friday of H/M/U/Z with the last
trade at 08:30 US/Central; IB sends ``lastTradeDateOrContractMonth`` as
``YYYYMMDD 08:30:00 US/Central``; hours are ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` sessions
joined by ``;`` in the contract's zone, a closed day as ``YYYYMMDD:CLOSED``.

CME Globex equity futures trade Sunday 17:00 to Friday 16:00 Chicago time with a daily
halt 16:00-17:00. Exchange holidays are not modelled (every weekday is a trading day).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping
from zoneinfo import ZoneInfo

__all__ = [
    "CHICAGO",
    "FUTURES",
    "FutureContract",
    "FutureSpec",
    "MONTH_CODES",
    "active_contracts",
    "contract_for",
    "is_cme_open",
    "liquid_hours",
    "MICRO_ORDER_TYPES",
    "next_cme_open",
    "resolve_contracts",
    "session_day",
    "third_friday",
    "trading_hours",
]

CHICAGO = ZoneInfo("America/Chicago")
#: The name IB puts in ``timeZoneId`` for Chicago.
IB_CHICAGO = "US/Central"
MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
_CODE_MONTH = {v: k for k, v in MONTH_CODES.items()}

# Order types as the 2026 captures list them: E-minis offer the protected MKT/STP
# variants, the micros do not.
ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DAY,DEACT,"
    "DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,LTH,MIT,MKT,MKTPROT,MTL,NGCOMB,"
    "NONALGO,OCA,PEGBENCH,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,STPPROT,TRAIL,"
    "TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)
MICRO_ORDER_TYPES = ORDER_TYPES.replace("MKTPROT,", "").replace("STPPROT,", "")


@dataclass(frozen=True, slots=True)
class FutureSpec:
    """What is common to every expiry of one futures root."""

    root: str
    long_name: str
    multiplier: str
    under_con_id: int
    family: str  # roots that share one price path (NQ and MNQ, ES and MES)
    listed: int  # how many quarterly expiries are live at once
    con_id_base: int
    exchange: str = "CME"
    currency: str = "USD"
    min_tick: float = 0.25
    valid_exchanges: str = "CME,QBALGO"
    market_rule_ids: str = "67,67"
    order_types: str = ORDER_TYPES


# Long names, multipliers, underlying conIds and listing depth as IB reports them
# (NQ/ES: TWS-FACTS §3; ES 21 and MES 5 listed expiries: the 2026 captures).
FUTURES: dict[str, FutureSpec] = {
    s.root: s
    for s in (
        FutureSpec("NQ", "E-mini NASDAQ 100 ", "20", 11004958, "NQ", 5, 560_000_000),
        FutureSpec("MNQ", "Micro E-Mini Nasdaq-100 Index", "2", 362687422, "NQ", 5, 690_000_000,
                   valid_exchanges="CME", market_rule_ids="67", order_types=MICRO_ORDER_TYPES),
        FutureSpec("ES", "E-mini S&P 500", "50", 11004968, "ES", 21, 495_000_000),
        FutureSpec("MES", "Micro E-Mini S&P 500 Stock Price Index", "5", 362673777, "ES", 5, 700_000_000,
                   valid_exchanges="CME", market_rule_ids="67", order_types=MICRO_ORDER_TYPES),
    )
}

# Real conIds where they are known, by (root, year, month): TWS-FACTS §3 and the
# ES/MES contract lists captured in 2026. Others are generated.
_KNOWN_CON_IDS = {
    ("NQ", 2024, 3): 603558814, ("NQ", 2024, 6): 620730920, ("NQ", 2024, 12): 563947733,
    ("NQ", 2020, 9): 371749745, ("MNQ", 2025, 6): 691171685, ("MES", 2025, 6): 691171673,
    ("ES", 2024, 6): 551318584, ("ES", 2024, 12): 495512557, ("ES", 2025, 6): 620731015,
    ("ES", 2025, 9): 637533641, ("ES", 2026, 9): 649180671, ("ES", 2026, 12): 515416632,
    ("ES", 2027, 3): 649180684, ("ES", 2027, 6): 649180661, ("ES", 2027, 9): 649180681,
    ("ES", 2027, 12): 586139767, ("ES", 2028, 3): 649180666, ("ES", 2028, 6): 649180690,
    ("ES", 2028, 9): 649180675, ("ES", 2028, 12): 654503299, ("ES", 2029, 3): 672387437,
    ("ES", 2029, 6): 691171642, ("ES", 2029, 9): 711280049, ("ES", 2029, 12): 730283071,
    ("ES", 2030, 3): 750150169, ("ES", 2030, 6): 770561177, ("ES", 2030, 9): 793356200,
    ("ES", 2030, 12): 815824241, ("ES", 2031, 3): 840227374, ("ES", 2031, 6): 866514761,
    ("ES", 2031, 9): 893091655, ("MES", 2026, 6): 770561194, ("MES", 2026, 9): 793356217,
    ("MES", 2026, 12): 815824257, ("MES", 2027, 3): 840227391, ("MES", 2027, 6): 866514776,
    ("MES", 2027, 9): 893091670,
}


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    day = (h + l_ - 7 * m + 33 * month + 19) % 32
    return dt.date(year, month, day)


def _exchange_holiday(day: dt.date) -> bool:
    """The holidays that can fall on a quarterly expiry Friday: Good Friday and, since
    2022, Juneteenth (June 19, observed on Friday the 18th when it is a Saturday)."""
    if day == _easter(day.year) - dt.timedelta(days=2):
        return True
    if day.year >= 2022 and day.month == 6:
        june19 = dt.date(day.year, 6, 19)
        observed = june19 - dt.timedelta(days=1) if june19.weekday() == 5 else (
            june19 + dt.timedelta(days=1) if june19.weekday() == 6 else june19)
        return day == observed
    return False


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (4 - first.weekday()) % 7  # Friday is weekday 4
    return first + dt.timedelta(days=offset + 14)


@dataclass(frozen=True, slots=True)
class FutureContract:
    """One expiry: the fields IB's contract details carry for it."""

    spec: FutureSpec
    year: int
    month: int

    @property
    def symbol(self) -> str:
        return self.spec.root

    @property
    def local_symbol(self) -> str:
        """IB's local symbol: root, month code, one-digit year (``NQZ4``)."""
        return f"{self.spec.root}{MONTH_CODES[self.month]}{self.year % 10}"

    @property
    def contract_month(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    @property
    def last_trade_date(self) -> dt.date:
        """The third Friday, or the business day before it when it is a holiday
        (ESM7 expires Thursday 2027-06-17: Juneteenth is observed on the 18th)."""
        day = third_friday(self.year, self.month)
        while _exchange_holiday(day):
            day -= dt.timedelta(days=1)
        return day

    @property
    def last_trade_moment(self) -> dt.datetime:
        """08:30 Chicago on the third Friday, when trading in the expiry stops."""
        d = self.last_trade_date
        return dt.datetime(d.year, d.month, d.day, 8, 30, tzinfo=CHICAGO)

    @property
    def con_id(self) -> int:
        known = _KNOWN_CON_IDS.get((self.spec.root, self.year, self.month))
        if known is not None:
            return known
        return self.spec.con_id_base + (self.year - 2000) * 12 + self.month

    @property
    def ib_last_trade_field(self) -> str:
        """The CONTRACT_DATA date field as TWS sends it: date, time and zone."""
        return f"{self.last_trade_date:%Y%m%d} 08:30:00 {IB_CHICAGO}"

    def quarters_after(self, other: "FutureContract") -> int:
        return (self.year * 12 + self.month - other.year * 12 - other.month) // 3


def _quarter_at_or_after(year: int, month: int) -> tuple[int, int]:
    q = ((month - 1) // 3 + 1) * 3
    return year, q


def _next_quarter(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 3) if month == 12 else (year, month + 3)


def active_contracts(root: str, now: dt.datetime, *, include_expired: int = 0) -> list[FutureContract]:
    """The expiries of ``root`` live at ``now`` (earliest first), optionally with the
    ``include_expired`` most recent expired ones before them."""
    spec = FUTURES[root]
    local = now.astimezone(CHICAGO)
    year, month = _quarter_at_or_after(local.year, local.month)
    first = FutureContract(spec, year, month)
    if first.last_trade_moment <= now:
        year, month = _next_quarter(year, month)
    out = []
    y, m = year, month
    for _ in range(spec.listed):
        out.append(FutureContract(spec, y, m))
        y, m = _next_quarter(y, m)
    expired = []
    y, m = year, month
    for _ in range(include_expired):
        y, m = (y - 1, 12) if m == 3 else (y, m - 3)
        expired.append(FutureContract(spec, y, m))
    return list(reversed(expired)) + out


def contract_for(root: str, month_code: str, year: int) -> FutureContract:
    """The expiry for a root, a month code (H/M/U/Z) and a four-digit year."""
    return FutureContract(FUTURES[root], year, _CODE_MONTH[month_code])


def resolve_contracts(fields: Mapping[str, str], now: dt.datetime, *,
                      with_expired: bool = False) -> list[FutureContract]:
    """The futures a request's contract fields (``symbol``, ``secType``, ``conId``,
    ``localSymbol``, ``lastTradeDateOrContractMonth``, ``tradingClass``, ``multiplier``,
    ``exchange``, ``currency``, as :mod:`slob.trace.tws_requests` names them) describe at
    ``now``; empty when none match. ``CONTFUT`` narrows to the front contract. Shared by
    FakeTWS and FakeEClient so both answer a request alike."""
    def get(key: str) -> str:
        return fields.get(key, "")

    sec_type = get("secType").upper()
    try:
        con_id = int(get("conId") or 0)
    except ValueError:
        raise ValueError(f"conId {get('conId')!r} is not an integer") from None
    exchange = get("exchange").upper()
    if exchange not in ("", "CME", "GLOBEX", "QBALGO") or get("currency") not in ("", "USD"):
        return []
    if sec_type not in ("FUT", "CONTFUT", "") or (sec_type == "" and not con_id):
        return []
    local = get("localSymbol").upper().replace(" ", "")
    root = get("symbol").upper() or (local[:-2] if len(local) > 2 else "")
    roots = [root] if root else list(FUTURES)
    expired = 8 if with_expired else 0
    pool = [c for r in roots if r in FUTURES for c in active_contracts(r, now, include_expired=expired)]
    if con_id:
        pool = [c for c in pool if c.con_id == con_id]
    if local:
        pool = [c for c in pool if c.local_symbol == local]
    month = get("lastTradeDateOrContractMonth")
    if month:
        pool = [c for c in pool if month in (c.contract_month, f"{c.last_trade_date:%Y%m%d}")]
    trading_class = get("tradingClass")
    if trading_class:
        pool = [c for c in pool if c.spec.root == trading_class]
    multiplier = get("multiplier")
    if multiplier:
        pool = [c for c in pool if _same_number(multiplier, c.spec.multiplier)]
    if sec_type == "CONTFUT":
        live = [c for c in pool if c.last_trade_moment > now]
        pool = live[:1]
    return pool


def _same_number(a: str, b: str) -> bool:
    try:
        return math.isclose(float(a), float(b))
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# CME Globex hours (Chicago time)

_OPEN = dt.time(17, 0)
_CLOSE = dt.time(16, 0)


def is_cme_open(t: dt.datetime) -> bool:
    """Whether CME Globex equity futures trade at ``t`` (tz-aware)."""
    c = t.astimezone(CHICAGO)
    wd, tod = c.weekday(), c.time()
    if wd == 5:  # Saturday
        return False
    if wd == 6:  # Sunday: opens 17:00
        return tod >= _OPEN
    if wd == 4:  # Friday: closes 16:00 for the weekend
        return tod < _CLOSE
    return tod < _CLOSE or tod >= _OPEN  # daily halt 16:00-17:00


def next_cme_open(t: dt.datetime) -> dt.datetime:
    """``t`` itself if the market is open, else the next session open (17:00 Chicago)."""
    if is_cme_open(t):
        return t
    c = t.astimezone(CHICAGO)
    day = c.date()
    if c.time() >= _OPEN:
        day += dt.timedelta(days=1)
    while True:
        candidate = dt.datetime(day.year, day.month, day.day, 17, 0, tzinfo=CHICAGO)
        if candidate >= c and is_cme_open(candidate):
            return candidate.astimezone(t.tzinfo)
        day += dt.timedelta(days=1)


def session_day(now: dt.datetime) -> dt.date:
    """The trading day whose Globex session is under way at ``now``, or the next one."""
    c = now.astimezone(CHICAGO)
    day = c.date() + (dt.timedelta(days=1) if c.time() >= _OPEN else dt.timedelta(0))
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _week_ahead(now: dt.datetime, sessions: int) -> list[dt.date]:
    """``sessions`` trading days from the current one, with the calendar days between."""
    first = session_day(now)
    days, day, count = [], first, 0
    while count < sessions:
        days.append(day)
        if day.weekday() < 5:
            count += 1
        day += dt.timedelta(days=1)
    return days


def trading_hours(now: dt.datetime, sessions: int = 5) -> str:
    """IB's ``tradingHours`` as the 2026 captures show it: five Globex sessions from the
    current one (17:00 the evening before to 16:00), each keyed by its start, and
    Saturday as ``CLOSED`` where the list crosses a weekend."""
    parts = []
    for d in _week_ahead(now, sessions):
        if d.weekday() == 5:
            parts.append(f"{d:%Y%m%d}:CLOSED")
        elif d.weekday() < 5:
            start = d - dt.timedelta(days=1)  # Monday's session opens on Sunday
            parts.append(f"{start:%Y%m%d}:1700-{d:%Y%m%d}:1600")
    return ";".join(parts)


def liquid_hours(now: dt.datetime, sessions: int = 5) -> str:
    """IB's ``liquidHours``: the regular session 08:30-16:00 Chicago on the same five
    trading days, Saturday and Sunday as ``CLOSED``."""
    parts = []
    for d in _week_ahead(now, sessions):
        if d.weekday() >= 5:
            parts.append(f"{d:%Y%m%d}:CLOSED")
        else:
            parts.append(f"{d:%Y%m%d}:0830-{d:%Y%m%d}:1600")
    return ";".join(parts)
