"""Historical data requests, the pure parts: bar sizes, durations, paging, dates, answers.

Nothing here does I/O or reads a clock. :mod:`slob.live.ib_history` sends the requests
(through IB's client, paced by :mod:`slob.ib.history_pacing`); the fake TWS parses the
same strings on its side.

How slob asks (../shared/TWS-FACTS.md §10):

* **Exact spans.** A page is ``[start, end)``: ``endDateTime`` is ``end`` in UTC
  (``20250305-15:00:00``) and the duration the span in seconds (``"86400 S"``) while it
  fits IB's seconds form (at most one day); longer spans (bars of 2 minutes and more)
  go in days, rounded up, and the answer is trimmed to the page. IB's ``"1 D"`` means a
  *trading session*, not 24 hours, so the seconds form is what keeps pages exact.
* **Pages by IB's limits** (``MAX_SPAN_SECONDS``): 1-minute bars one day per request
  (the documented step; larger minute requests time out on a real TWS), second bars
  IB's "duration / smallest bar" table (1 sec: 30 minutes ... 30 secs: 8 hours).
* ``formatDate=2`` (bar dates as UTC epoch seconds), ``useRTH=0`` (the LSE session is
  outside US regular hours), ``includeExpired`` for contracts that have expired.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from slob.ib.errors import ConfigError, RequestFailed
from slob.model import Candle
from slob.ib.zones import ib_zone

__all__ = [
    "BAR_SIZES",
    "BarSize",
    "HistoryNotPermitted",
    "HistoryPacingViolation",
    "MAX_SPAN_SECONDS",
    "MAX_TICKS_PER_REQUEST",
    "Page",
    "WHAT_TO_SHOW",
    "bar_size",
    "candle_from_bar",
    "duration_seconds",
    "duration_string",
    "format_ib_time",
    "hmds_kind",
    "merge_candles",
    "page_ranges",
    "parse_bar_time",
    "parse_ib_time",
    "uncovered",
    "what_to_show",
]

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_DAY = 86_400

#: IB's bar size settings and their length in seconds.
BAR_SIZES: dict[str, int] = {
    "1 sec": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800,
    "1 hour": 3600, "2 hours": 7200, "3 hours": 10_800, "4 hours": 14_400, "8 hours": 28_800,
    "1 day": _DAY,
}

#: The longest span one request may cover, per bar length (IB's "valid duration and bar
#: size" table read the other way round; for 1-minute bars, one day).
MAX_SPAN_SECONDS: dict[int, int] = {
    1: 1800, 5: 3600, 10: 14_400, 15: 14_400, 30: 28_800,
    60: _DAY, 120: 2 * _DAY, 180: 7 * _DAY, 300: 7 * _DAY, 600: 7 * _DAY, 900: 7 * _DAY, 1200: 7 * _DAY,
    1800: 30 * _DAY, 3600: 30 * _DAY, 7200: 30 * _DAY, 10_800: 30 * _DAY, 14_400: 30 * _DAY, 28_800: 30 * _DAY,
    _DAY: 365 * _DAY,
}

#: What-to-show values slob requests bars of (IB has more: volatility, schedule...).
WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")

#: IB returns at most this many historical ticks per request (a few more to finish a second).
MAX_TICKS_PER_REQUEST = 1000

_UNITS = {"S": 1, "D": _DAY, "W": 7 * _DAY, "M": 30 * _DAY, "Y": 365 * _DAY}
_ALIAS = re.compile(r"(\d+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days)")
_ALIAS_UNIT = {"s": "sec", "sec": "sec", "secs": "sec", "second": "sec", "seconds": "sec",
               "m": "min", "min": "min", "mins": "min", "minute": "min", "minutes": "min",
               "h": "hour", "hour": "hour", "hours": "hour", "d": "day", "day": "day", "days": "day"}


@dataclass(frozen=True, slots=True)
class BarSize:
    """One of IB's bar size settings: ``name`` as IB spells it, ``seconds`` its length."""

    name: str
    seconds: int

    @property
    def max_span(self) -> int:
        """Seconds one request may cover for this bar size."""
        return MAX_SPAN_SECONDS[self.seconds]


def bar_size(text: str) -> BarSize:
    """``"1 min"`` as IB spells it, or a short form (``1min``, ``5m``, ``30s``, ``1h``,
    ``1d``); ConfigError naming the valid sizes otherwise."""
    cleaned = " ".join(text.strip().lower().split())
    if cleaned in BAR_SIZES:
        return BarSize(cleaned, BAR_SIZES[cleaned])
    m = _ALIAS.fullmatch(cleaned)
    if m is not None:
        n, unit = int(m[1]), _ALIAS_UNIT[m[2]]
        name = f"{n} {unit}" + ("s" if n > 1 and unit in ("sec", "min", "hour") else "")
        if name in BAR_SIZES:
            return BarSize(name, BAR_SIZES[name])
    raise ConfigError(f"{text!r} is not a bar size IB serves; use one of {', '.join(BAR_SIZES)} "
                      "(or a short form such as 1min, 5m, 30s, 1h, 1d)")


def what_to_show(text: str) -> str:
    """A what-to-show value, upper-cased; ConfigError for one slob does not request."""
    value = text.strip().upper()
    if value not in WHAT_TO_SHOW:
        raise ConfigError(f"what-to-show {text!r} is not one of {', '.join(WHAT_TO_SHOW)}")
    return value


def duration_string(seconds: int) -> str:
    """IB's duration for a span: ``"N S"`` up to one day, whole days (rounded up) beyond
    it, whole years from 365 days on."""
    if seconds <= 0:
        raise ValueError(f"a duration is positive, not {seconds} s")
    if seconds <= _DAY:
        return f"{seconds} S"
    days = math.ceil(seconds / _DAY)
    if days < 365:
        return f"{days} D"
    return f"{math.ceil(days / 365)} Y"


def duration_seconds(text: str) -> int:
    """The span of IB's duration string (``"3600 S"``, ``"2 D"``, ``"1 W"``, ``"1 M"``,
    ``"1 Y"``) in seconds; a day is 86,400 s, a month 30 days, a year 365 days. ValueError
    for anything else (IB answers it with error 321)."""
    m = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", text)
    if m is None or int(m[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration (an integer, a space, and S, D, W, M or Y)")
    return int(m[1]) * _UNITS[m[2]]


def format_ib_time(t: dt.datetime) -> str:
    """A moment in the form IB reads as UTC: ``20250305-15:00:00`` (whole seconds)."""
    if t.tzinfo is None:
        raise ValueError(f"{t!r} is naive; history requests take tz-aware times")
    return f"{t.astimezone(_UTC):%Y%m%d-%H:%M:%S}"


def parse_ib_time(text: str, default_zone: dt.tzinfo = _UTC) -> dt.datetime:
    """An ``endDateTime``/``startDateTime`` as IB accepts it: ``yyyyMMdd-HH:mm:ss``
    (UTC), ``yyyyMMdd HH:mm:ss[ zone]`` (the zone, e.g. ``US/Eastern`` or ``UTC``; none:
    ``default_zone``, the login's), or ``yyyyMMdd`` (midnight). ValueError otherwise."""
    s = " ".join(text.strip().split())
    try:
        if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", s):
            return dt.datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=_UTC)
        if re.fullmatch(r"\d{8}", s):
            return dt.datetime.strptime(s, "%Y%m%d").replace(tzinfo=default_zone)
        m = re.fullmatch(r"(\d{8} \d{2}:\d{2}:\d{2})(?: (\S+))?", s)
        if m is not None:
            zone: dt.tzinfo = default_zone
            if m[2] is not None:
                zone = _UTC if m[2].upper() in ("UTC", "GMT") else ib_zone(m[2])
            return dt.datetime.strptime(m[1], "%Y%m%d %H:%M:%S").replace(tzinfo=zone)
    except (ValueError, ConfigError) as exc:
        raise ValueError(f"{text!r} is not a date/time IB reads ({exc})") from None
    raise ValueError(f"{text!r} is not a date/time IB reads (yyyyMMdd-HH:mm:ss, or yyyyMMdd HH:mm:ss zone)")


def parse_bar_time(text: str, zone: dt.tzinfo = _UTC) -> dt.datetime:
    """A bar's ``date`` as TWS sends it, as a UTC datetime: epoch seconds (formatDate 2),
    ``yyyyMMdd`` (daily bars: midnight UTC of that trading day), ``yyyyMMdd  HH:mm:ss``
    (formatDate 1, older TWS: the login's ``zone``) or ``yyyyMMdd HH:mm:ss zone``."""
    s = text.strip()
    if s.isdigit() and len(s) != 8:
        return _EPOCH + dt.timedelta(seconds=int(s))
    if s.isdigit():
        return dt.datetime.strptime(s, "%Y%m%d").replace(tzinfo=_UTC)
    return parse_ib_time(s, zone).astimezone(_UTC)


@dataclass(frozen=True, slots=True)
class Page:
    """One request's span ``[start, end)``."""

    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def duration(self) -> str:
        return duration_string(self.seconds)

    @property
    def end_text(self) -> str:
        return format_ib_time(self.end)


def _floor(t: dt.datetime, step: int) -> dt.datetime:
    s = (t.astimezone(_UTC) - _EPOCH) // dt.timedelta(seconds=1)
    return _EPOCH + dt.timedelta(seconds=s - s % step)


def _ceil(t: dt.datetime, step: int) -> dt.datetime:
    floor = _floor(t, step)
    return floor if floor == t else floor + dt.timedelta(seconds=step)


def page_ranges(start: dt.datetime, end: dt.datetime, bar: BarSize) -> list[Page]:
    """Requests covering ``[start, end)`` for ``bar``, oldest first: the range widened to
    whole bars, cut into contiguous pages of at most ``bar.max_span`` seconds, each
    boundary on a bar boundary (pages of 1-minute bars follow UTC days, so two runs over
    overlapping ranges ask for the same pages). Empty when ``end <= start``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("history ranges take tz-aware times")
    if end <= start:
        return []
    step = bar.seconds
    span = bar.max_span
    lo, hi = _floor(start, step), _ceil(end, step)
    pages: list[Page] = []
    cursor = lo
    while cursor < hi:
        # Each span is a whole number of bars, so the span grid is on the bar grid.
        nxt = min(hi, _floor(cursor, span) + dt.timedelta(seconds=span))
        pages.append(Page(cursor, nxt))
        cursor = nxt
    return pages


def uncovered(start: dt.datetime, end: dt.datetime,
              covered: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    """The parts of ``[start, end)`` outside every ``[a, b)`` of ``covered`` (any order,
    overlaps allowed), in time order."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    cursor = start
    for a, b in sorted(covered):
        if b <= cursor:
            continue
        if a >= end:
            break
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def candle_from_bar(symbol: str, contract: str, bar: BarSize, start: dt.datetime, open_: float, high: float,
                    low: float, close: float, volume: Decimal | float | int, count: int) -> Candle:
    """A slob Candle from one of IB's bars (volume and count of -1, as MIDPOINT and
    BID_ASK bars carry them, become 0)."""
    vol = float(volume)
    if not math.isfinite(vol) or vol < 0:
        vol = 0.0
    return Candle(symbol, contract, bar.seconds, start, float(open_), float(high), float(low), float(close), vol,
                  max(0, int(count)))


def merge_candles(pages: Iterable[Sequence[Candle]], start: dt.datetime, end: dt.datetime,
                  now: dt.datetime | None = None) -> list[Candle]:
    """The candles of several pages in time order, one per start (a later page wins a
    repeated start), inside ``[start, end)`` -- a candle counts as inside when it starts
    there -- and finished by ``now`` when given (TWS includes the bar still forming when
    a request ends at the present: it is not a finished bar)."""
    by_start: dict[dt.datetime, Candle] = {}
    for page in pages:
        for c in page:
            if not start <= c.start < end:
                continue
            if now is not None and c.end > now:
                continue
            by_start[c.start] = c
    return [by_start[k] for k in sorted(by_start)]


def hmds_kind(text: str) -> str:
    """What a 162 ("Historical Market Data Service error message:...") means:
    ``"pacing"`` (a pacing violation: back off and retry), ``"no_data"`` (HMDS had
    nothing for the span: an empty answer), ``"permission"`` (no market-data permission
    for the contract), ``"cancelled"`` (the query was cancelled) or ``"other"``."""
    t = text.lower()
    if "pacing violation" in t:
        return "pacing"
    if "returned no data" in t or ("no data" in t and "hmds" in t):
        return "no_data"
    if "permission" in t:
        return "permission"
    if "cancelled" in t or "canceled" in t:
        return "cancelled"
    return "other"


class HistoryPacingViolation(RequestFailed):
    """162 "pacing violation": TWS refused a historical request under IB's pacing rules."""

    def __init__(self, code: int, req_id: int, text: str, what: str = "", retries: int = 0) -> None:
        super().__init__(
            code, req_id, text,
            f"TWS refused the historical request for {what or 'the contract'} for pacing (IB error {code}: {text})"
            + (f" after {retries} retries" if retries else "")
            + ". IB allows no identical request within 15 s, fewer than 6 per contract within 2 s and 60 in 10 "
            "minutes; another program on this login may be using the budget. Wait a few minutes and run again: "
            "what was stored is kept.",
        )


class HistoryNotPermitted(RequestFailed):
    """162 with no market-data permission: this login cannot have the contract's history."""

    def __init__(self, code: int, req_id: int, text: str, what: str = "") -> None:
        super().__init__(
            code, req_id, text,
            f"no historical-data permission for {what or 'the contract'} (IB error {code}: {text}). Historical "
            "bars need the same CME market-data subscription as live data: subscribe in IB Account Management "
            "and enable it for the API.",
        )
