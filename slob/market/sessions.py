"""Trading sessions: the LSE and NYSE sessions the SLOB setup is defined on, and CME hours.

Pure (no I/O, no clock): every answer is computed from the tz-aware datetime passed in,
with zoneinfo, and returned as UTC. Naive datetimes are refused (ValueError): a naive
time cannot be placed in a session.

**LSE / NYSE** (../shared/DESIGN.md §5 "Sessions"). The LSE session is 09:00-15:30
Europe/London; the NYSE session runs from 15:30 London until 16:00 America/New_York, on
weekdays. The two are therefore back to back: the LSE session ends exactly where the NYSE
session begins. London and New York are usually 5 hours apart (15:30 London = 10:30 New
York), but 4 hours for a few weeks each year -- from the 2nd Sunday of March (US clocks
change) to the last Sunday of March (UK), and from the last Sunday of October (UK) to the
1st Sunday of November (US) -- when 15:30 London is 11:30 New York. That is why every
bound is built from local wall-clock times through zoneinfo and never from a fixed
offset. Exchange holidays are not modelled: the sessions are time windows for the
strategy, and NQ trades on most of those days anyway.

**CME hours** (:class:`CmeHours`) come from the contract details' ``tradingHours`` and
``timeZoneId``. IB lists only about five sessions ahead, so outside the listed range the
CME Globex default applies: Sunday 17:00 to Friday 16:00 Chicago with a daily halt
16:00-17:00 (holidays unknown there). The listed range is made of whole CME trading
days -- trading day D runs from 17:00 Chicago on D-1 to 17:00 on D -- from the earliest to
the latest day IB names (a session belongs to the day it ends on; ``YYYYMMDD:CLOSED``
names a closed day). Inside that range only IB's sessions are open (so holidays and early
closes it lists are honoured); outside it the default rule decides.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_right
from zoneinfo import ZoneInfo

from slob.ib.errors import ConfigError
from slob.market.expiry_book import CHICAGO
from slob.ib.zones import ib_zone

__all__ = [
    "us_equity_open",
    "CHICAGO",
    "LONDON",
    "LSE",
    "NEW_YORK",
    "NYSE",
    "CmeHours",
    "ib_zone",
    "lse_session",
    "nyse_session",
    "session_at",
    "trading_day",
]

UTC = dt.timezone.utc
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
LSE = "LSE"
NYSE = "NYSE"
_LSE_OPEN, _LSE_CLOSE, _NYSE_CLOSE = dt.time(9, 0), dt.time(15, 30), dt.time(16, 0)
_GLOBEX_OPEN, _GLOBEX_CLOSE = dt.time(17, 0), dt.time(16, 0)
_DAY = dt.timedelta(days=1)

Bounds = tuple[dt.datetime, dt.datetime]


def _utc(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t!r} is naive; sessions need tz-aware datetimes")
    return t.astimezone(UTC)


def _at(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """Wall-clock ``time`` on ``day`` in ``zone``, as UTC."""
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(UTC)


def _weekday(day: dt.date) -> dt.date:
    if day.weekday() >= 5:
        raise ValueError(f"{day} is a {day:%A}: no LSE or NYSE session")
    return day


# -- LSE / NYSE ------------------------------------------------------------------------


def lse_session(day: dt.date) -> Bounds:
    """The LSE session of weekday ``day``: [09:00, 15:30) Europe/London, in UTC.
    ValueError on a Saturday or Sunday."""
    _weekday(day)
    return _at(day, _LSE_OPEN, LONDON), _at(day, _LSE_CLOSE, LONDON)


def nyse_session(day: dt.date) -> Bounds:
    """The NYSE session of weekday ``day``: [15:30 Europe/London, 16:00 America/New_York),
    in UTC -- it starts exactly where :func:`lse_session` ends. ValueError on weekends."""
    _weekday(day)
    return _at(day, _LSE_CLOSE, LONDON), _at(day, _NYSE_CLOSE, NEW_YORK)


def trading_day(t: dt.datetime) -> dt.date | None:
    """The weekday whose LSE or NYSE session contains ``t``; None between sessions
    (after 16:00 New York, before 09:00 London) and on weekends. Both sessions of a day
    lie within that day's London date (the NYSE close is 20:00 or 21:00 London)."""
    u = _utc(t)
    day = u.astimezone(LONDON).date()
    if day.weekday() >= 5:
        return None
    start, _ = lse_session(day)
    _, end = nyse_session(day)
    return day if start <= u < end else None


def session_at(t: dt.datetime) -> str | None:
    """``"LSE"``, ``"NYSE"`` or None: the session ``t`` falls in (start inclusive, end
    exclusive)."""
    day = trading_day(t)
    if day is None:
        return None
    return LSE if _utc(t) < lse_session(day)[1] else NYSE


# -- CME hours -------------------------------------------------------------------------


def us_equity_open(t: dt.datetime) -> bool:
    """US stock exchanges' regular hours, 09:30-16:00 New York on weekdays (holidays not
    modelled): the trading hours of the Alpaca feed's candles."""
    local = _utc(t).astimezone(NEW_YORK)
    return local.weekday() < 5 and dt.time(9, 30) <= local.time() < dt.time(16, 0)


def _globex_open(u: dt.datetime) -> bool:
    c = u.astimezone(CHICAGO)
    wd, tod = c.weekday(), c.time()
    if wd == 5:
        return False
    if wd == 6:
        return tod >= _GLOBEX_OPEN
    if wd == 4:
        return tod < _GLOBEX_CLOSE
    return tod < _GLOBEX_CLOSE or tod >= _GLOBEX_OPEN


def _globex_session(u: dt.datetime) -> Bounds | None:
    if not _globex_open(u):
        return None
    c = u.astimezone(CHICAGO)
    end_day = c.date() + (_DAY if c.time() >= _GLOBEX_OPEN else dt.timedelta(0))
    return _at(end_day - _DAY, _GLOBEX_OPEN, CHICAGO), _at(end_day, _GLOBEX_CLOSE, CHICAGO)


def _globex_next_open(u: dt.datetime) -> dt.datetime:
    """The next default session open at or after ``u`` (``u`` is closed)."""
    c = u.astimezone(CHICAGO)
    day = c.date() + (_DAY if c.time() > _GLOBEX_OPEN else dt.timedelta(0))
    while day.weekday() in (4, 5):  # Friday and Saturday evenings do not open
        day += _DAY
    return _at(day, _GLOBEX_OPEN, CHICAGO)


_ENTRY = re.compile(r"(\d{8}):(.+)")
_MOMENT = re.compile(r"(?:(\d{8}):)?(\d{4})")


def _moment(text: str, day: dt.date, zone: ZoneInfo, entry: str) -> tuple[dt.datetime, bool]:
    """``[YYYYMMDD:]HHMM`` (date defaulting to ``day``; 2400 = next midnight) in ``zone``,
    and whether the date was written."""
    m = _MOMENT.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"tradingHours entry {entry!r} is not YYYYMMDD:HHMM-YYYYMMDD:HHMM")
    if m[1]:
        day = dt.datetime.strptime(m[1], "%Y%m%d").date()
    hours, minutes = int(m[2][:2]), int(m[2][2:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ConfigError(f"tradingHours entry {entry!r} has an invalid time {m[2]!r}")
    if hours == 24:
        return dt.datetime.combine(day + _DAY, dt.time(0), tzinfo=zone), bool(m[1])
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=zone), bool(m[1])


def _parse(trading_hours: str, zone: ZoneInfo) -> tuple[list[Bounds], set[dt.date]]:
    """Sessions (UTC, sorted, overlaps merged) and the trading days the string names.
    Accepts the current ``YYYYMMDD:HHMM-YYYYMMDD:HHMM`` form and the older
    ``YYYYMMDD:HHMM-HHMM[,HHMM-HHMM]`` one."""
    sessions: list[Bounds] = []
    days: set[dt.date] = set()
    for part in filter(None, (p.strip() for p in trading_hours.split(";"))):
        m = _ENTRY.fullmatch(part)
        try:
            day = dt.datetime.strptime(m[1], "%Y%m%d").date() if m else None
        except ValueError:
            day = None
        if m is None or day is None:
            raise ConfigError(f"tradingHours entry {part!r} is not YYYYMMDD:HHMM-YYYYMMDD:HHMM or YYYYMMDD:CLOSED")
        if m[2].strip().upper() == "CLOSED":
            days.add(day)
            continue
        for span in m[2].split(","):
            start_text, dash, end_text = span.partition("-")
            if not dash:
                raise ConfigError(f"tradingHours entry {part!r} has a range without '-'")
            start, _ = _moment(start_text, day, zone, part)
            end, dated = _moment(end_text, start.date(), zone, part)
            if end <= start and not dated:
                end = dt.datetime.combine(end.date() + _DAY, end.time(), tzinfo=zone)
            if end <= start:
                raise ConfigError(f"tradingHours entry {part!r} ends before it starts")
            days.add((end - dt.timedelta(microseconds=1)).date())
            sessions.append((start.astimezone(UTC), end.astimezone(UTC)))
    sessions.sort()
    merged: list[Bounds] = []
    for s, e in sessions:
        if merged and s < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged, days


class CmeHours:
    """When a CME futures contract trades: IB's listed sessions, the Globex default
    around them (see the module docstring). All results are UTC datetimes."""

    def __init__(self, trading_hours: str = "", time_zone_id: str = "US/Central") -> None:
        """``trading_hours`` and ``time_zone_id`` as IB's ContractDetails carry them
        (``tradingHours``, ``timeZoneId``); ConfigError if they cannot be read."""
        sessions, days = _parse(trading_hours, ib_zone(time_zone_id))
        #: IB's sessions as [open, close) in UTC, sorted (overlapping entries merged).
        self.sessions: tuple[Bounds, ...] = tuple(sessions)
        self._starts = [s for s, _ in sessions]
        #: [start, end) in UTC of the range where IB's list decides; None: Globex default only.
        self.listed: Bounds | None = None
        if days:
            start = _at(min(days) - _DAY, _GLOBEX_OPEN, CHICAGO)
            end = _at(max(days), _GLOBEX_OPEN, CHICAGO)
            if self.sessions:
                start, end = min(start, self.sessions[0][0]), max(end, max(e for _, e in self.sessions))
            self.listed = (start, end)

    @classmethod
    def default(cls) -> CmeHours:
        """No listed sessions: the Globex default everywhere."""
        return cls()

    def _in_listed(self, u: dt.datetime) -> bool:
        return self.listed is not None and self.listed[0] <= u < self.listed[1]

    def _listed_session(self, u: dt.datetime) -> Bounds | None:
        i = bisect_right(self._starts, u) - 1
        if i >= 0 and u < self.sessions[i][1]:
            return self.sessions[i]
        return None

    def is_open(self, t: dt.datetime) -> bool:
        """Whether the contract trades at ``t``."""
        u = _utc(t)
        if self._in_listed(u):
            return self._listed_session(u) is not None
        return _globex_open(u)

    def session_bounds(self, t: dt.datetime) -> Bounds | None:
        """[open, close) of the session containing ``t``, or None when closed. A default
        session is clipped where it meets the listed range."""
        u = _utc(t)
        if self._in_listed(u):
            return self._listed_session(u)
        bounds = _globex_session(u)
        if bounds is None or self.listed is None:
            return bounds
        start, end = bounds
        if u >= self.listed[1]:
            start = max(start, self.listed[1])
        else:
            end = min(end, self.listed[0])
        return start, end

    def next_open(self, t: dt.datetime) -> dt.datetime:
        """The earliest moment at or after ``t`` when the contract trades: ``t`` itself
        when open, else the next session open."""
        u = _utc(t)
        for _ in range(16):  # each step enters or leaves the listed range, or opens
            if self.is_open(u):
                return u
            if self.listed is not None and self._in_listed(u):
                i = bisect_right(self._starts, u)
                u = self._starts[i] if i < len(self._starts) and self._starts[i] < self.listed[1] else self.listed[1]
                continue
            nxt = _globex_next_open(u)
            if self.listed is not None and u < self.listed[0] < nxt:
                nxt = self.listed[0]
            u = nxt
        raise AssertionError(f"no open found after {t}")  # pragma: no cover - unreachable
