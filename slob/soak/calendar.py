"""The calendar a soak replays: what IB and CME do to a session at fixed hours.

Pure: every answer is computed from the arguments (times in simulated UTC, a seed).
Facts from ../shared/TWS-FACTS.md §7 and CME's hours (slob.testing.futures):

* **Gateway auto-restart**, daily at a time the user picks in IB Gateway/TWS (no
  re-authentication). The soak uses 23:45 New York, the time IB's own documentation
  suggests and the last quarter hour before the nightly reset window. TWS closes the
  API socket, the port is gone for a moment, then it listens again.
* **Nightly server reset**, Sunday to Friday between 00:15 and 01:45 New York: farm
  notices (2103 market data, 2157 sec-def, 2105 HMDS broken), 1100, sometimes 1100 again,
  farms OK, then 1102 (data maintained) or 1101 (data lost: resubscribe). The socket
  stays up.
* **Weekly re-authentication**: tokens are invalidated Sunday 01:00 New York; TWS restarts
  with a fresh login: a restart with a longer down time.
* **Weekend maintenance**, Friday 23:00 to Saturday 03:00 New York: services unavailable
  (1100 at the start, 1101 at the end: nothing subscribed survives it).
* **CME**: NQ trades Sunday 17:00 to Friday 16:00 Chicago with a daily halt 16:00-17:00;
  the fake's market is quiet then. :func:`market_transitions` lists the moments it opens
  and closes (the soak runs the clock faster while it is closed).

When something happens is simulated time; how long an outage lasts (the port down, 1100
until 1101/1102) is real seconds, so recovery is measured against the engine's real
time-outs whatever the simulation speed. A weekend maintenance window is the exception:
it ends at a simulated moment (the market is closed throughout).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from slob.testing.futures import CHICAGO, is_cme_open

__all__ = [
    "CALENDAR_KINDS",
    "CalendarConfig",
    "CalendarEvent",
    "NEW_YORK",
    "ib_calendar",
    "market_transitions",
]

NEW_YORK = ZoneInfo("America/New_York")
_UTC = dt.timezone.utc
_DAY = dt.timedelta(days=1)

#: Event kinds and what each does to the session.
CALENDAR_KINDS = {
    "restart": "Gateway auto-restart: API socket closed, port down, listening again",
    "reset": "nightly server reset: farm notices, 1100 (maybe repeated), farms OK, 1102 or 1101",
    "reauth": "weekly re-authentication: a restart with a longer down time",
    "weekend": "weekend maintenance: 1100 at the start, 1101 at the end (simulated time)",
}


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One calendar moment. ``at`` is simulated UTC. ``down_seconds`` (real): how long the
    port is down (restart, reauth) or connectivity is lost (reset). ``until``: the
    simulated end of a weekend maintenance. ``data_maintained``: 1102 (True) or 1101 at
    the end of a reset. ``repeats``: extra 1100 notices during a reset."""

    kind: str
    at: dt.datetime
    down_seconds: float = 0.0
    until: dt.datetime | None = None
    data_maintained: bool = True
    repeats: int = 0

    def describe(self) -> str:
        local = f"{self.at.astimezone(NEW_YORK):%a %Y-%m-%d %H:%M} New York"
        if self.kind == "restart":
            return f"{local}: Gateway auto-restart, port down {self.down_seconds:g} s"
        if self.kind == "reauth":
            return f"{local}: weekly re-authentication, port down {self.down_seconds:g} s"
        if self.kind == "reset":
            end = "1102 data maintained" if self.data_maintained else "1101 data lost"
            again = f", 1100 repeated {self.repeats}x" if self.repeats else ""
            return f"{local}: nightly server reset, 1100 for {self.down_seconds:g} s{again}, then {end}"
        until = f"{self.until.astimezone(NEW_YORK):%a %H:%M}" if self.until else "?"
        return f"{local}: weekend maintenance until {until} New York (1100, then 1101)"


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarConfig:
    """Times are New York wall-clock times; durations real seconds."""

    restart_time: dt.time = dt.time(23, 45)
    restart_down_seconds: float = 0.5
    reauth_time: dt.time = dt.time(1, 0)  # on Sundays
    reauth_down_seconds: float = 2.0
    reset_window: tuple[dt.time, dt.time] = (dt.time(0, 15), dt.time(1, 45))
    reset_seconds: tuple[float, float] = (0.2, 1.0)
    reset_data_lost_probability: float = 0.3
    reset_repeat_probability: float = 0.3
    weekend_maintenance: bool = True

    def __post_init__(self) -> None:
        lo, hi = self.reset_seconds
        if not 0 < lo <= hi:
            raise ValueError(f"reset_seconds must be 0 < low <= high, not {self.reset_seconds}")
        if self.restart_down_seconds <= 0 or self.reauth_down_seconds <= 0:
            raise ValueError("restart and re-authentication down times must be positive")
        if not self.reset_window[0] < self.reset_window[1]:
            raise ValueError("the reset window must start before it ends")
        for p in (self.reset_data_lost_probability, self.reset_repeat_probability):
            if not 0 <= p <= 1:
                raise ValueError(f"probability {p} is outside 0..1")


def _ny(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=NEW_YORK).astimezone(_UTC)


def ib_calendar(start: dt.datetime, end: dt.datetime, seed: int,
                config: CalendarConfig | None = None) -> list[CalendarEvent]:
    """The calendar events in ``[start, end)``, in time order. Reset moments, durations,
    outcomes and repeats are drawn from ``seed``: the same arguments give the same list."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be tz-aware")
    cfg = config or CalendarConfig()
    rng = random.Random(f"slob-soak-calendar-{seed}")
    events: list[CalendarEvent] = []
    day = start.astimezone(NEW_YORK).date() - _DAY
    last = end.astimezone(NEW_YORK).date() + _DAY
    while day <= last:
        weekday = day.weekday()  # Monday 0 .. Sunday 6
        # Drawn for every day, used or not, so a day's draw does not depend on the range.
        lo, hi = cfg.reset_window
        span = (dt.datetime.combine(day, hi) - dt.datetime.combine(day, lo)).total_seconds()
        offset = dt.timedelta(seconds=int(rng.random() * span))
        seconds = round(rng.uniform(*cfg.reset_seconds), 2)
        lost = rng.random() < cfg.reset_data_lost_probability
        repeats = rng.choice((1, 2)) if rng.random() < cfg.reset_repeat_probability else 0
        if weekday != 5:  # Sunday to Friday
            at = (dt.datetime.combine(day, lo, tzinfo=NEW_YORK) + offset).astimezone(_UTC)
            events.append(CalendarEvent("reset", at, seconds, data_maintained=not lost, repeats=repeats))
        if weekday == 6:
            events.append(CalendarEvent("reauth", _ny(day, cfg.reauth_time), cfg.reauth_down_seconds))
        if weekday == 4 and cfg.weekend_maintenance:
            events.append(CalendarEvent("weekend", _ny(day, dt.time(23, 0)),
                                        until=_ny(day + _DAY, dt.time(3, 0)), data_maintained=False))
        events.append(CalendarEvent("restart", _ny(day, cfg.restart_time), cfg.restart_down_seconds))
        day += _DAY
    return sorted((e for e in events if start <= e.at < end), key=lambda e: (e.at, e.kind))


def market_transitions(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, bool]]:
    """The moments in ``(start, end]`` when CME opens (True) or closes (False), in order:
    17:00 Chicago opens (Sunday to Thursday), 16:00 Chicago closes (Monday to Friday)."""
    out: list[tuple[dt.datetime, bool]] = []
    day = start.astimezone(CHICAGO).date() - _DAY
    while True:
        for time, opens in ((dt.time(16, 0), False), (dt.time(17, 0), True)):
            moment = dt.datetime.combine(day, time, tzinfo=CHICAGO).astimezone(_UTC)
            before = moment - dt.timedelta(microseconds=1)
            if start < moment <= end and is_cme_open(moment) == opens and is_cme_open(before) != opens:
                out.append((moment, opens))
        if dt.datetime.combine(day, dt.time(0, 0), tzinfo=CHICAGO) > end:
            return out
        day += _DAY
