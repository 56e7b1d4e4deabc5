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
from dataclasses import dataclass
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
    "next_cme_open",
    "third_friday",
    "trading_hours",
]

CHICAGO = ZoneInfo("America/Chicago")
#: The name IB puts in ``timeZoneId`` for Chicago.
IB_CHICAGO = "US/Central"
MONTH_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
_CODE_MONTH = {v: k for k, v in MONTH_CODES.items()}

ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DAY,DEACT,"
    "DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,LTH,MIT,MKT,MKTPROT,MTL,NGCOMB,"
    "NONALGO,OCA,PEGBENCH,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,STPPROT,TRAIL,"
    "TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)


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


# Long names, multipliers, underlying conIds and listing depth as IB reports them
# (NQ/ES: TWS-FACTS §3; ES 21 and MES 5 listed expiries: the 2026 captures).
FUTURES: dict[str, FutureSpec] = {
    s.root: s
    for s in (
        FutureSpec("NQ", "E-mini NASDAQ 100 ", "20", 11004958, "NQ", 5, 560_000_000),
        FutureSpec("MNQ", "Micro E-Mini Nasdaq-100 Index", "2", 362687422, "NQ", 5, 690_000_000),
        FutureSpec("ES", "E-mini S&P 500", "50", 11004968, "ES", 21, 495_000_000),
        FutureSpec(
            "MES", "Micro E-Mini S&P 500 Stock Price Index", "5", 362673777, "ES", 5, 700_000_000
        ),
    )
}

# Real conIds where they are known (TWS-FACTS §3, captures); others are generated.
_KNOWN_CON_IDS = {
    "NQH4": 603558814,
    "NQM4": 620730920,
    "NQZ4": 563947733,
    "NQU0": 371749745,
    "ESM4": 551318584,
    "ESZ4": 495512557,
    "ESM5": 620731015,
    "ESU5": 637533641,
    "ESU6": 649180671,
    "ESZ6": 515416632,
    "MNQM5": 691171685,
    "MESM5": 691171673,
    "MESU6": 793356217,
    "MESZ6": 815824257,
}


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
        return third_friday(self.year, self.month)

    @property
    def last_trade_moment(self) -> dt.datetime:
        """08:30 Chicago on the third Friday, when trading in the expiry stops."""
        d = self.last_trade_date
        return dt.datetime(d.year, d.month, d.day, 8, 30, tzinfo=CHICAGO)

    @property
    def con_id(self) -> int:
        known = _KNOWN_CON_IDS.get(self.local_symbol)
        if known is not None and self.year >= 2020 and self.year < 2030:
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


def _trading_days(start: dt.date, days: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(days)]


def trading_hours(now: dt.datetime, days: int = 7) -> str:
    """IB's ``tradingHours`` for the week from ``now``: one Globex session per weekday
    (17:00 the evening before to 16:00), Saturday as CLOSED, Sunday not listed (its
    evening belongs to Monday's session)."""
    parts = []
    for d in _trading_days(now.astimezone(CHICAGO).date(), days):
        if d.weekday() == 5:
            parts.append(f"{d:%Y%m%d}:CLOSED")
        elif d.weekday() < 5:
            prev = d - dt.timedelta(days=1)
            parts.append(f"{prev:%Y%m%d}:1700-{d:%Y%m%d}:1600")
    return ";".join(parts)


def liquid_hours(now: dt.datetime, days: int = 7) -> str:
    """IB's ``liquidHours``: the regular session 08:30-16:00 Chicago on weekdays."""
    parts = []
    for d in _trading_days(now.astimezone(CHICAGO).date(), days):
        if d.weekday() == 5:
            parts.append(f"{d:%Y%m%d}:CLOSED")
        elif d.weekday() < 5:
            parts.append(f"{d:%Y%m%d}:0830-{d:%Y%m%d}:1600")
    return ";".join(parts)
