"""Warm-up: what the engine must know of today's market before it trades, and where it
comes from. Pure (no I/O, no clock): the engine passes the store's candles and the times in.

**Why.** The SLOB setup is defined on the LSE session's high and low (09:00-15:30 London).
An engine that starts at 15:00 has seen none of it; one restarted after a crash has the
morning in its store but not the minutes it was down. Trading on the candles it happened
to see means trading on a partial range, which is worse than not trading. So before the
strategy sees a live candle, the engine replays the trading day from the LSE open:

1. the **window** is ``[LSE open of today's London date, join)`` (:func:`warmup_start`),
   where the *join* is the first minute built from live ticks alone: the minute after the
   one in which the subscription became live (slob.live.gapfill decides it);
2. 1-minute candles the **store** holds for the window are used where they can be trusted
   (:func:`trusted`): those from IB's history (``slob history``, or an earlier warm-up),
   and live ones before the minute of the last data the store holds -- that minute may
   have been cut short by the previous run's stop or kill, so it is asked for again;
3. the minutes the store does not hold are **requested** from TWS as 1-minute TRADES bars,
   one request per contiguous stretch (:func:`missing_ranges`; IB's limit is a day of
   1-minute bars per request, which the fetcher pages);
4. everything is replayed, in time order, through the candle aggregator and the setup
   tracker with trading off; only a trigger whose entry candle is the current minute is
   still traded (:func:`fresh`) -- the moment an uninterrupted engine acted on it.

A stored flat (``filled``) candle is trusted as well: the engine only writes one for a
minute it watched go by without a trade.

**Levels.** If some of the LSE session's minutes could not be had (history unavailable
and not in the store), the day's levels are unknown (:func:`levels_known`): by default
the engine does not trade that day's setups (:attr:`MemoryConfig.trade_without_levels`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from slob.ib.errors import ConfigError
from slob.market.sessions import LONDON, lse_session
from slob.model import Candle

__all__ = [
    "MINUTE", "Levels", "MemoryConfig", "Range", "Stored", "floor_minute", "fresh", "levels_known", "minutes", "missing_ranges",
    "overlaps", "trading_minutes", "trusted", "warmup_start",
]

MINUTE = dt.timedelta(minutes=1)
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_TINY = dt.timedelta(microseconds=1)
#: [start, end): minute boundaries, UTC.
Range = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryConfig:
    """How the engine warms up and fills gaps (docs/history.md).

    ``enabled=False`` turns both off: candles are built from the live ticks seen, as
    before; the day's levels are then unknown when the engine starts after the LSE open.
    """

    enabled: bool = True
    #: How long after a minute ends its historical bar is asked for (IB publishes it
    #: once the minute is over; this margin keeps a late bar from looking like a quiet one).
    history_delay_seconds: float = 2.0
    #: A history request that fails (error, time-out, an answer contradicted by live
    #: trades) is tried this many times in all, ``retry_seconds`` apart, before its
    #: minutes are given up as missing.
    max_attempts: int = 3
    retry_seconds: float = 5.0
    #: An empty answer is "no data" (history unavailable), not a quiet market, when the
    #: stretch holds live trades or at least this many CME trading minutes: NQ trades
    #: every minute the exchange is open, give or take a quiet night minute.
    empty_answer_minutes: int = 5
    #: Trade setups of a day whose LSE session has minutes nobody could supply (the LSE
    #: high/low would be those of a partial session). Off by default.
    trade_without_levels: bool = False
    #: How often a holding engine asks TWS the time when no tick shows it (quiet market).
    clock_poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("history_delay_seconds", "retry_seconds"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"MemoryConfig.{name} must be a finite number >= 0, got {value!r}")
        if not (self.clock_poll_seconds > 0 and math.isfinite(self.clock_poll_seconds)):
            raise ConfigError(f"MemoryConfig.clock_poll_seconds must be > 0, got {self.clock_poll_seconds!r}")
        if self.max_attempts < 1:
            raise ConfigError(f"MemoryConfig.max_attempts must be >= 1, got {self.max_attempts}")
        if self.empty_answer_minutes < 1:
            raise ConfigError(f"MemoryConfig.empty_answer_minutes must be >= 1, got {self.empty_answer_minutes}")


def floor_minute(t: dt.datetime) -> dt.datetime:
    """The start of ``t``'s minute (UTC)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{t!r} is naive; market memory works in tz-aware UTC")
    return _EPOCH + (t - _EPOCH) // MINUTE * MINUTE


def minutes(start: dt.datetime, end: dt.datetime) -> Iterable[dt.datetime]:
    t = start
    while t < end:
        yield t
        t += MINUTE


def warmup_start(now: dt.datetime) -> dt.datetime | None:
    """Where the warm-up window begins: the LSE open of ``now``'s London date, if that is
    a weekday and the open has passed; None otherwise (the live feed will see the whole
    session, or there is none today)."""
    day = now.astimezone(LONDON).date()
    if day.weekday() >= 5:
        return None
    start = lse_session(day)[0]
    return start if start < now else None


class Stored(Protocol):
    """A stored candle with its source (slob.store.store.CandleRecord)."""

    @property
    def candle(self) -> Candle: ...
    @property
    def source(self) -> str: ...


def trusted(stored: Sequence[Stored], last_data: dt.datetime | None) -> dict[dt.datetime, Candle]:
    """The stored 1-minute candles the warm-up may use, by start: every one from IB's
    history (a finished minute), and live ones before the minute of ``last_data`` (the
    exchange time of the last data stored; its minute may have been cut short by the
    previous run's end)."""
    tail = floor_minute(last_data - _TINY) if last_data is not None else None
    return {r.candle.start: r.candle for r in stored if r.candle.interval_seconds == 60
            and (r.source == "history" or (tail is not None and r.candle.start < tail))}


def missing_ranges(start: dt.datetime, end: dt.datetime, covered: Iterable[dt.datetime]) -> list[Range]:
    """The stretches of whole minutes in ``[start, end)`` without a minute in ``covered``."""
    have = set(covered)
    out: list[Range] = []
    run: dt.datetime | None = None
    for m in minutes(start, end):
        if m in have:
            if run is not None:
                out.append((run, m))
                run = None
        elif run is None:
            run = m
    if run is not None:
        out.append((run, end))
    return out


def overlaps(a: Range, b: Range) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def trading_minutes(span: Range, is_trading: Callable[[dt.datetime], bool]) -> int:
    return sum(1 for m in minutes(*span) if is_trading(m))


def levels_known(day: dt.date, missing: Iterable[Range]) -> bool:
    """True when no minute of ``day``'s LSE session is among the ``missing`` stretches."""
    if day.weekday() >= 5:
        return True
    session = lse_session(day)
    return not any(overlaps(session, m) for m in missing)


class Levels:
    """The trading days whose LSE session has minutes nobody could supply: their high and
    low are unknown (``unknown``). ``missed`` adds what a missing stretch touches and
    returns the days newly unknown (to say so once)."""

    def __init__(self) -> None:
        self.unknown: set[dt.date] = set()
        self._first_seen = False

    def missed(self, start: dt.datetime, end: dt.datetime) -> list[dt.date]:
        new = []
        day, last = start.astimezone(LONDON).date(), end.astimezone(LONDON).date()
        while day <= last:
            if day.weekday() < 5 and day not in self.unknown and not levels_known(day, [(start, end)]):
                self.unknown.add(day)
                new.append(day)
            day += dt.timedelta(days=1)
        return new

    def first_tick(self, t: dt.datetime) -> list[dt.date]:
        """Without market memory: the first tick after a day's LSE open leaves that day's
        levels unknown (the session before it was not seen)."""
        if self._first_seen:
            return []
        self._first_seen = True
        start = warmup_start(t)
        return self.missed(start, floor_minute(t) + MINUTE) if start is not None else []


def fresh(trigger_at: dt.datetime, now: dt.datetime) -> bool:
    """A trigger replayed from memory is still traded when its entry candle -- the one
    starting at ``trigger_at`` (the trigger candle's end) -- is the minute of ``now``
    (or later): then the entry is the open the uninterrupted engine would have taken.
    An older trigger's moment has passed."""
    return trigger_at >= floor_minute(now)

