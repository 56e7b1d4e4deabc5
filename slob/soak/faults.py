"""The soak's random faults: which, when, how long -- drawn from a seed.

Pure: :func:`schedule_faults` turns a seed and a time range into a list of
:class:`Fault` (the same arguments give the same list; the report prints it). The runner
(:mod:`slob.soak.runner`) applies them. Moments are simulated time; durations (a stall,
the engine's down time after a kill, an 1100) are real seconds.

Faults that must meet a particular moment -- the handshake, the resubscription, a
bracket's placement -- are *armed* on FakeTWS (``drop_on_next_request``,
``reject_next_request``, ``ignore_next_request``) and then *triggered*: a drop makes the
engine reconnect into the armed handshake or resubscription; an 1100/1101 makes it
resubscribe without reconnecting. A bracket fault has no trigger: it waits for the next
bracket, which may come days later (the report shows when it fired, if it did).

Kinds that need :class:`slob.testing.FaultProxy` between the engine and FakeTWS (cuts
inside a frame, trickled bytes, junk mid-stream) are only scheduled when the proxy is
there (``FaultConfig.proxy``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from slob.soak.calendar import CalendarEvent

__all__ = [
    "ARMED_REQUESTS",
    "FAULT_KINDS",
    "Fault",
    "FaultConfig",
    "PROXY_KINDS",
    "schedule_faults",
]

#: Every kind, and what it does. The runner implements each.
FAULT_KINDS: Mapping[str, str] = {
    "drop": "TWS closes the API socket abruptly",
    "handshake_drop": "the reconnect's handshake is cut at START_API (before or just after nextValidId)",
    "resubscribe_drop": "the connection dies at a request of the resubscription (after a drop or a 1101)",
    "pacing": "a request of the resubscription answered with error 100 (pacing) instead",
    "unanswered": "a request of the resubscription never answered",
    "bracket_drop": "the connection dies after the next bracket's first (or second) leg",
    "stall": "TWS sends nothing for some seconds, then everything at once",
    "junk": "an unreadable frame from TWS (bad id, truncated, or a length past the maximum)",
    "lost": "IB connectivity lost (1100) for some seconds, then 1101 (resubscribe) or 1102",
    "kill": "kill -9 of the engine's process, restarted after some seconds",
    "proxy_cut": "FaultProxy cuts the connection after a named frame, at a random frame",
    "proxy_stall": "FaultProxy holds both directions for some seconds",
    "proxy_junk": "FaultProxy injects random bytes into the stream to the client",
    "trickle": "FaultProxy delivers bytes one at a time for some seconds",
}
PROXY_KINDS = frozenset({"proxy_cut", "proxy_stall", "proxy_junk", "trickle"})
#: Requests an armed fault may meet during a resubscription or reconciliation.
ARMED_REQUESTS = ("REQ_CONTRACT_DATA", "REQ_TICK_BY_TICK_DATA", "REQ_CURRENT_TIME", "REQ_OPEN_ORDERS",
                  "REQ_EXECUTIONS", "REQ_POSITIONS")
_ARMED = frozenset({"handshake_drop", "resubscribe_drop", "pacing", "unanswered"})
_GARBAGE = ("bad_id", "truncated", "oversize")
#: Frames a proxy cut may wait for: TWS -> client (IN names) and client -> TWS (OUT names).
_PROXY_CUTS = ("TICK_BY_TICK", "CURRENT_TIME", "NEXT_VALID_ID", "CONTRACT_DATA", "ORDER_STATUS", "REQ_CURRENT_TIME",
               "REQ_TICK_BY_TICK_DATA", "PLACE_ORDER", "START_API")
_DEFAULT_WEIGHTS: Mapping[str, float] = {
    "drop": 2, "handshake_drop": 2, "resubscribe_drop": 2, "pacing": 2, "unanswered": 2, "bracket_drop": 2,
    "stall": 2, "junk": 1.5, "lost": 1.5, "kill": 2,
    "proxy_cut": 2, "proxy_stall": 1, "proxy_junk": 1, "trickle": 1,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: ``kind`` (see :data:`FAULT_KINDS`) at simulated ``at``.

    ``seconds``: real seconds (stall, kill down time, 1100 length, trickle). Armed kinds
    name the ``request`` they meet, whether it is served first (``answered``) and how many
    such requests pass first (``skip``); ``trigger`` is ``"drop"`` or ``"1101"`` (how the
    runner provokes the request), empty for the bracket fault. ``variant``: the garbage
    kind for junk, ``"1101"``/``"1102"`` for lost, the frame name for proxy_cut."""

    id: int
    kind: str
    at: dt.datetime
    seconds: float = 0.0
    request: str = ""
    answered: bool = True
    skip: int = 0
    trigger: str = ""
    variant: str = ""

    @property
    def armed(self) -> bool:
        return self.kind in _ARMED or self.kind == "bracket_drop"

    def describe(self) -> str:
        k = self.kind
        if k == "handshake_drop":
            what = "after nextValidId" if self.answered else "before nextValidId"
            return f"drop at START_API ({what}), triggered by a {self.trigger}"
        if k == "resubscribe_drop":
            served = "after serving" if self.answered else "at"
            return f"drop {served} {self.request}{_skip(self.skip)}, triggered by a {self.trigger}"
        if k == "pacing":
            return f"error 100 to {self.request}{_skip(self.skip)}, triggered by a {self.trigger}"
        if k == "unanswered":
            return f"{self.request}{_skip(self.skip)} left unanswered, triggered by a {self.trigger}"
        if k == "bracket_drop":
            leg = ("parent", "take-profit")[min(self.skip, 1)]
            return f"drop after the next bracket's {leg} order"
        if k in ("stall", "proxy_stall", "trickle"):
            return f"{k} for {self.seconds:g} s"
        if k == "junk":
            return f"unreadable frame from TWS ({self.variant})"
        if k == "lost":
            return f"1100 for {self.seconds:g} s, then {self.variant}"
        if k == "kill":
            return f"kill -9 of the engine, restarted after {self.seconds:g} s"
        if k == "proxy_cut":
            return f"FaultProxy cut {'after' if self.answered else 'instead of'} the next {self.variant}"
        if k == "proxy_junk":
            what = "a 2 GB length prefix" if self.variant == "oversize" else "random bytes"
            return f"FaultProxy injects {what} into the stream to the client"
        return k


def _skip(skip: int) -> str:
    return f" (after {skip} pass)" if skip else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultConfig:
    """How many faults a simulated day gets, of which kinds, and how long they last.

    ``spacing_seconds``: real seconds kept free between a fault and any other fault or
    calendar event (converted to simulated time with the speed at that moment), so one
    fault's recovery is measured before the next one starts. ``proxy``: FaultProxy is
    in the path (its kinds can be drawn). ``kill``: kill -9 may be drawn."""

    per_day: float = 6.0
    weights: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    kinds: tuple[str, ...] | None = None
    stall_seconds: tuple[float, float] = (0.5, 3.0)
    kill_down_seconds: tuple[float, float] = (0.1, 1.5)
    lost_seconds: tuple[float, float] = (0.2, 1.5)
    spacing_seconds: float = 3.0
    proxy: bool = False
    kill: bool = True

    def __post_init__(self) -> None:
        if self.per_day < 0:
            raise ValueError("per_day must be >= 0")
        unknown = set(self.kinds or ()) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        for name in ("stall_seconds", "kill_down_seconds", "lost_seconds"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be 0 < low <= high, not {(lo, hi)}")
        if self.spacing_seconds <= 0:
            raise ValueError("spacing_seconds must be positive")

    def eligible(self) -> list[str]:
        """The kinds that may be drawn, in :data:`FAULT_KINDS` order."""
        chosen = set(self.kinds) if self.kinds is not None else set(FAULT_KINDS)
        return [k for k in FAULT_KINDS if k in chosen and self.weights.get(k, 0) > 0
                and (self.proxy or k not in PROXY_KINDS) and (self.kill or k != "kill")]


def _busy(event: CalendarEvent) -> list[dt.datetime]:
    return [event.at] + ([event.until] if event.until is not None else [])


def schedule_faults(start: dt.datetime, end: dt.datetime, seed: int, *, config: FaultConfig | None = None,
                    calendar: Sequence[CalendarEvent] = (),
                    speed_at: Callable[[dt.datetime], float] = lambda _: 1.0) -> list[Fault]:
    """``config.per_day`` faults a simulated day at random moments in ``(start, end)``,
    each at least ``spacing_seconds`` of real time (at ``speed_at`` simulated seconds per
    real second) from the others, from the calendar's events and from both ends. Fewer
    when they do not fit. Ids count from 1 in time order."""
    cfg = config or FaultConfig()
    rng = random.Random(f"slob-soak-faults-{seed}")
    kinds = cfg.eligible()
    span = (end - start).total_seconds()
    wanted = round(cfg.per_day * span / 86_400)
    if not kinds or wanted <= 0 or span <= 0:
        return []
    weights = [cfg.weights.get(k, 0.0) for k in kinds]
    busy = sorted(t for e in calendar for t in _busy(e))

    memo: dict[dt.datetime, dt.datetime] = {}

    def after(t: dt.datetime) -> dt.datetime:
        if t not in memo:
            memo[t] = _after(t, cfg.spacing_seconds, speed_at)
        return memo[t]

    def near(t: dt.datetime, b: dt.datetime) -> bool:
        return t < after(b) if t >= b else after(t) > b

    def clash_at(t: dt.datetime) -> dt.datetime | None:
        i = bisect.bisect_left(busy, t)
        return next((b for b in busy[max(0, i - 2):i + 2] if near(t, b)), None)

    # A renewal process: after each fault (and the start) comes a dead time of
    # ``spacing_seconds`` of real time, then an exponential wait that makes the mean gap a
    # day / per_day when it fits.
    mean = 86_400 / cfg.per_day
    moments: list[dt.datetime] = []
    t = start
    while len(moments) < wanted:
        dead = after(t)
        wait = max(0.0, mean - (dead - t).total_seconds())
        t = dead + dt.timedelta(seconds=int(rng.expovariate(1 / wait)) if wait > 0 else 0)
        clash = clash_at(t)
        while clash is not None:  # past the calendar event, with room on its far side
            t = after(max(t, clash))
            clash = clash_at(t)
        if after(t) > end:
            break
        moments.append(t)
    moments.sort()
    return [_draw(rng, i + 1, rng.choices(kinds, weights)[0], t, cfg) for i, t in enumerate(moments)]


def _after(t: dt.datetime, real_seconds: float, speed_at: Callable[[dt.datetime], float]) -> dt.datetime:
    """The simulated moment ``real_seconds`` of real time after ``t``, with the clock at
    ``speed_at`` (integrated in steps of at most a simulated minute)."""
    left = real_seconds
    while left > 1e-9:
        speed = speed_at(t)
        step = min(60.0, left * speed)
        t += dt.timedelta(seconds=step)
        left -= step / speed
    return t


def _draw(rng: random.Random, fault_id: int, kind: str, at: dt.datetime, cfg: FaultConfig) -> Fault:
    def seconds(bounds: tuple[float, float]) -> float:
        return round(rng.uniform(*bounds), 2)

    trigger = rng.choice(("drop", "drop", "1101"))
    if kind == "handshake_drop":
        return Fault(fault_id, kind, at, answered=rng.random() < 0.5, trigger="drop")
    if kind in ("resubscribe_drop", "pacing", "unanswered"):
        requests = ARMED_REQUESTS if trigger == "drop" else ARMED_REQUESTS[:3]
        return Fault(fault_id, kind, at, request=rng.choice(requests), answered=rng.random() < 0.5,
                     skip=rng.choice((0, 0, 1)), trigger=trigger)
    if kind == "bracket_drop":
        return Fault(fault_id, kind, at, request="PLACE_ORDER", skip=rng.choice((0, 1)))
    if kind in ("stall", "proxy_stall", "trickle"):
        return Fault(fault_id, kind, at, seconds=seconds(cfg.stall_seconds))
    if kind == "kill":
        return Fault(fault_id, kind, at, seconds=seconds(cfg.kill_down_seconds))
    if kind == "lost":
        return Fault(fault_id, kind, at, seconds=seconds(cfg.lost_seconds), variant=rng.choice(("1101", "1102")))
    if kind == "junk":
        return Fault(fault_id, kind, at, variant=rng.choice(_GARBAGE))
    if kind == "proxy_cut":
        return Fault(fault_id, kind, at, answered=rng.random() < 0.5, variant=rng.choice(_PROXY_CUTS))
    if kind == "proxy_junk":
        return Fault(fault_id, kind, at, variant=rng.choice(("oversize", "random")))
    return Fault(fault_id, kind, at)
