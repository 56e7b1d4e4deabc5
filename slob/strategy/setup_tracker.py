"""SetupTracker: the 5/1 SLOB liquidity-sweep setup as a state machine over closed 1-minute candles.

Pure (no I/O, no clock): time comes from the candles, so a replay gives exactly the events
the live feed gave. Feed it each *closed* 1-minute candle of one symbol in time order
(:meth:`SetupTracker.on_candle`); it returns the :data:`SetupEvent` s that candle caused.
Every decision uses that candle and earlier ones only (no look-ahead): the events after
candle k are the same whatever candles follow k.

**The strategy** (../shared/DESIGN.md §5, short; long mirrors it with high/low, above/below
and bullish/bearish swapped):

1. Track the high and low of the trading day's LSE session (09:00-15:30 London, from the
   candles that *start* in it; a tracker started mid-session uses the candles it saw).
2. LIQ #1: a candle of the NYSE session (15:30 London to 16:00 New York, 4 or 5 hours
   apart, see :mod:`slob.market.sessions`) trades above the LSE high. A setup is born, with
   id ``{symbol}-{YYYYMMDD}-{short|long}-{HHMM of the LIQ #1 candle, UTC}-{n}`` (n counts
   the setups of that direction that day from 1), so a replay gives the same ids.
3. Consolidation: the candles *after* the LIQ #1 candle and before LIQ #2. It is *formed*
   when it has ``consolidation_min_candles``..``consolidation_max_candles`` candles, its
   range (high - low) is ``consolidation_min_range_pct``..``consolidation_max_range_pct`` of
   the LIQ #1 candle's close, and at least ``consolidation_min_touches`` candles have a high
   within ``touch_tolerance_points`` of its high. A candle that pushes the high further
   without being a LIQ #2 joins it, and may leave it unformed until the new high is touched
   again (CONSOLIDATION -> LIQ1). Wider than the maximum range, or longer than the maximum
   count without a LIQ #2: invalid.
4. LIQ #2 + no-wick: while formed, a bullish candle (close > open) whose high is above the
   consolidation high and whose upper wick (high - close) is at most
   ``no_wick_max_fraction`` of its range, or at most ``no_wick_max_points``. The stop is
   then fixed at its high + ``stop_buffer_points`` rounded *up* to the tick (away from the
   entry), the target at the LSE low - ``target_buffer_points`` rounded *up* (towards the
   entry: never asks for more than computed). Long: stop = LIQ #2 low - buffer rounded
   down, target = LSE high + buffer rounded down.
5. Trigger: one of the next ``entry_wait_max_candles`` candles closes below the LIQ #2
   candle's open -> TRIGGERED (checked with the trigger's close as the estimated entry:
   risk = stop - entry > 0, reward = entry - target > 0, reward >= ``min_risk_reward`` x
   risk). A candle reaching the stop (high >= stop) first invalidates the setup, even if
   it also closes below the open.
6. Entry: the open of the candle after the trigger. It is known for certain only when
   that candle closes, so READY (and :class:`SetupReady`, with entry, stop and target) is
   emitted at the close of the entry candle, after the checks are repeated with the real
   entry (opening at or beyond the stop: STOP_BREACHED; failing them: RISK_REWARD). An
   engine that wants the entry *at* that open acts on TRIGGERED (emitted at the trigger's
   close, i.e. the entry candle's open, stop and target already known) and treats READY /
   INVALIDATED as the confirmation. Once READY the tracker's work is done:
   target/stop fills after the entry are the bracket order's business.

Invalidation (any live state) by a candle outside the setup's NYSE session (SESSION_END;
NEW_DAY if it is in a later trading day's session), of another contract
(CONTRACT_CHANGED: two contracts' prices do not mix; in the LSE session the levels
restart from that candle, in the NYSE session no new setup is born that day), or after
more than ``max_missing_candles`` missing minutes (DATA_GAP: the stop may have been hit).

At most one *live* setup per direction: a new one is born at a LIQ #1 candle once the
previous one of that direction is READY or INVALIDATED (that same candle can be the new
LIQ #1), so a short and a long can be alive together, and a new consolidation can form
after one fails. Per candle: live setups advance in birth order, then births (short
first); a setup changes state at most once per candle.

**The table** (:data:`TRANSITIONS`, the only place a state changes; any other pair
raises :class:`IllegalTransition`)::

    IDLE           --LIQ1_SWEEP-------------> LIQ1
    LIQ1           --CONSOLIDATION_FORMED---> CONSOLIDATION
    CONSOLIDATION  --CONSOLIDATION_EXTENDED-> LIQ1
    CONSOLIDATION  --LIQ2_SWEEP-------------> LIQ2
    LIQ2           --ENTRY_TRIGGER----------> TRIGGERED
    TRIGGERED      --ENTRY_OPEN-------------> READY           (terminal)
    LIQ1, CONSOLIDATION --CONSOLIDATION_BROKEN--> INVALIDATED (terminal)
    LIQ2           --WAIT_EXCEEDED----------> INVALIDATED
    LIQ2, TRIGGERED --STOP_BREACHED, RISK_REWARD--> INVALIDATED
    LIQ1, CONSOLIDATION, LIQ2, TRIGGERED
                   --SESSION_END, NEW_DAY, CONTRACT_CHANGED, DATA_GAP--> INVALIDATED

Internally a long setup is a short one on negated prices (high <-> -low), so the two
directions cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Mapping, NamedTuple, TypeAlias

from slob.config.setup_config import SetupConfig
from slob.ib.errors import SlobError
from slob.market.sessions import LONDON, LSE, NYSE, lse_session, nyse_session
from slob.model import Candle

__all__ = [
    "CandleRejected", "Consolidation", "Direction", "IllegalTransition", "SetupChanged", "SetupConfig",
    "SetupEvent", "SetupReady", "SetupTracker", "Signal", "State", "TRANSITIONS", "next_state",
]

_EPS = 1e-9
_MINUTE = dt.timedelta(minutes=1)


class Direction(Enum):
    SHORT = "short"
    LONG = "long"

    @property
    def sign(self) -> int:
        """+1 short, -1 long: a long setup is a short one on ``sign * price``."""
        return 1 if self is Direction.SHORT else -1


class State(Enum):
    IDLE = "idle"  # before LIQ #1: the state a setup is born from
    LIQ1 = "liq1"  # LSE level swept; consolidation forming
    CONSOLIDATION = "consolidation"  # consolidation formed; waiting for LIQ #2
    LIQ2 = "liq2"  # no-wick sweep seen; stop/target known; waiting for the trigger
    TRIGGERED = "triggered"  # trigger closed; entry at the next candle's open
    READY = "ready"  # entry known (terminal)
    INVALIDATED = "invalidated"  # terminal

    @property
    def live(self) -> bool:
        return self in _LIVE


class Signal(Enum):
    """What a candle (or the calendar) did to a setup: the table's events."""

    LIQ1_SWEEP = "liq1_sweep"
    CONSOLIDATION_FORMED = "consolidation_formed"
    CONSOLIDATION_EXTENDED = "consolidation_extended"
    CONSOLIDATION_BROKEN = "consolidation_broken"
    LIQ2_SWEEP = "liq2_sweep"
    ENTRY_TRIGGER = "entry_trigger"
    ENTRY_OPEN = "entry_open"
    STOP_BREACHED = "stop_breached"
    WAIT_EXCEEDED = "wait_exceeded"
    RISK_REWARD = "risk_reward"
    SESSION_END = "session_end"
    NEW_DAY = "new_day"
    CONTRACT_CHANGED = "contract_changed"
    DATA_GAP = "data_gap"


_LIVE = frozenset({State.LIQ1, State.CONSOLIDATION, State.LIQ2, State.TRIGGERED})
_ANYTIME = (Signal.SESSION_END, Signal.NEW_DAY, Signal.CONTRACT_CHANGED, Signal.DATA_GAP)

#: Every legal (state, signal) -> next state. Nothing else changes a setup's state.
TRANSITIONS: Mapping[tuple[State, Signal], State] = MappingProxyType({
    (State.IDLE, Signal.LIQ1_SWEEP): State.LIQ1,
    (State.LIQ1, Signal.CONSOLIDATION_FORMED): State.CONSOLIDATION,
    (State.CONSOLIDATION, Signal.CONSOLIDATION_EXTENDED): State.LIQ1,
    (State.CONSOLIDATION, Signal.LIQ2_SWEEP): State.LIQ2,
    (State.LIQ2, Signal.ENTRY_TRIGGER): State.TRIGGERED,
    (State.TRIGGERED, Signal.ENTRY_OPEN): State.READY,
    (State.LIQ1, Signal.CONSOLIDATION_BROKEN): State.INVALIDATED,
    (State.CONSOLIDATION, Signal.CONSOLIDATION_BROKEN): State.INVALIDATED,
    (State.LIQ2, Signal.WAIT_EXCEEDED): State.INVALIDATED,
    (State.LIQ2, Signal.STOP_BREACHED): State.INVALIDATED,
    (State.LIQ2, Signal.RISK_REWARD): State.INVALIDATED,
    (State.TRIGGERED, Signal.STOP_BREACHED): State.INVALIDATED,
    (State.TRIGGERED, Signal.RISK_REWARD): State.INVALIDATED,
    **{(s, g): State.INVALIDATED for s in sorted(_LIVE, key=lambda s: s.value) for g in _ANYTIME},
})


class IllegalTransition(SlobError):
    """A (state, signal) pair missing from :data:`TRANSITIONS`: a bug, never data."""

    def __init__(self, state: State, signal: Signal, setup_id: str = "") -> None:
        self.state, self.signal, self.setup_id = state, signal, setup_id
        allowed = sorted(g.value for (s, g) in TRANSITIONS if s is state)
        super().__init__(
            f"{'setup ' + setup_id + ': ' if setup_id else ''}no transition from state "
            f"{state.value!r} on {signal.value!r}; allowed from {state.value!r}: "
            f"{', '.join(allowed) if allowed else 'nothing (terminal state)'}"
        )


class CandleRejected(SlobError, ValueError):
    """A candle the tracker cannot use: not 1-minute, naive time, another symbol, or not
    after the previous candle. Feed one symbol's closed 1-minute candles in time order."""


def next_state(state: State, signal: Signal, setup_id: str = "") -> State:
    """The table's answer for ``(state, signal)``; :class:`IllegalTransition` if none."""
    try:
        return TRANSITIONS[state, signal]
    except KeyError:
        raise IllegalTransition(state, signal, setup_id) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Consolidation:
    """The consolidation so far: candles after LIQ #1 (real prices)."""

    start: dt.datetime  # first candle's start
    end: dt.datetime  # last candle's end
    candles: int
    high: float
    low: float
    touches: int  # candles touching the swept side (short: the high; long: the low)
    range_pct: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupChanged:
    """A setup changed state. ``at`` is the end of the candle that caused it (when it
    became known); ``*_at`` are candle starts. ``stop``/``target`` are set from LIQ2 on,
    ``entry`` at READY. ``reason`` says why in words, ``signal`` in the table's terms."""

    setup_id: str
    symbol: str
    contract: str
    direction: Direction
    day: dt.date
    state: State
    previous: State
    signal: Signal
    at: dt.datetime
    reason: str
    lse_high: float
    lse_low: float
    liq1_at: dt.datetime
    consolidation: Consolidation | None = None
    liq2_at: dt.datetime | None = None
    trigger_at: dt.datetime | None = None
    entry: float | None = None
    stop: float | None = None
    target: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupReady:
    """Emitted right after the READY :class:`SetupChanged`: the trade to place.
    ``entry`` is the open of the candle starting at ``entry_at``; ``at`` its end."""

    setup_id: str
    symbol: str
    contract: str
    direction: Direction
    day: dt.date
    at: dt.datetime
    entry_at: dt.datetime
    entry: float
    stop: float
    target: float
    lse_high: float
    lse_low: float

    @property
    def risk(self) -> float:
        return abs(self.stop - self.entry)

    @property
    def reward(self) -> float:
        return abs(self.entry - self.target)

    @property
    def risk_reward(self) -> float:
        return self.reward / self.risk


#: What :meth:`SetupTracker.on_candle` returns.
SetupEvent: TypeAlias = SetupChanged | SetupReady


class _Bar(NamedTuple):
    """A candle's prices seen as a short setup sees them (long: negated, high <-> low)."""

    open: float
    high: float
    low: float
    close: float


def _bar(c: Candle, sign: int) -> _Bar:
    if sign > 0:
        return _Bar(c.open, c.high, c.low, c.close)
    return _Bar(-c.open, -c.low, -c.high, -c.close)


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


@dataclass(slots=True)
class _Setup:
    """One candidate, in short-space prices (``sign * price``)."""

    setup_id: str
    direction: Direction
    day: dt.date
    contract: str
    lse_high: float  # real prices, as events report them
    lse_low: float
    opposite: float  # short-space target level (short: LSE low; long: -LSE high)
    ref: float  # LIQ #1 close (real, > 0): the consolidation range's reference price
    liq1_at: dt.datetime
    state: State = State.IDLE
    window: list[_Bar] = field(default_factory=list)
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    liq2: _Bar | None = None
    liq2_at: dt.datetime | None = None
    trigger_at: dt.datetime | None = None
    waited: int = 0
    stop: float | None = None  # short space
    target: float | None = None
    entry: float | None = None

    @property
    def sign(self) -> int:
        return self.direction.sign

    def real(self, x: float | None) -> float | None:
        return None if x is None else self.sign * x + 0.0  # + 0.0: no -0.0

    def extremes(self) -> tuple[float, float]:
        return max(b.high for b in self.window), min(b.low for b in self.window)

    def touches(self, tolerance: float) -> int:
        top = self.extremes()[0]
        return sum(b.high >= top - tolerance - _EPS for b in self.window)


class SetupTracker:
    """The SLOB state machine for one symbol (see the module docstring).

    ``symbol``: refuse candles of other symbols (default: the first candle's symbol).
    """

    def __init__(self, config: SetupConfig | None = None, *, symbol: str | None = None) -> None:
        self.config = config if config is not None else SetupConfig()
        self._symbol = symbol
        self._last: Candle | None = None
        self._day: dt.date | None = None
        self._lse: tuple[float, float] | None = None  # (high, low) of the day's LSE session
        self._lse_contract: str | None = None
        self._born: dict[Direction, int] = {}
        self._setups: list[_Setup] = []  # live, in birth order
        self._latest: dict[str, SetupChanged] = {}
        self._bounds: tuple[dt.date, dt.datetime, dt.datetime, dt.datetime] | None = None

    @property
    def lse_range(self) -> tuple[float, float] | None:
        """(high, low) of the current trading day's LSE session so far; None before any."""
        return self._lse

    @property
    def live_setups(self) -> tuple[SetupChanged, ...]:
        """The latest event of every live (not READY / INVALIDATED) setup, birth order."""
        return tuple(self._latest[s.setup_id] for s in self._setups)

    def on_candle(self, candle: Candle) -> list[SetupEvent]:
        """Advance on one closed 1-minute candle; the events it caused, in order."""
        self._check(candle)
        day, session = self._where(candle.start)
        missing = 0 if self._last is None else (candle.start - self._last.end) // _MINUTE
        self._last = candle
        out: list[SetupEvent] = []
        for s in self._setups:
            out.extend(self._advance(s, candle, day, session, missing))
        self._setups = [s for s in self._setups if s.state.live]
        for gone in [k for k in self._latest if not self._latest[k].state.live]:
            del self._latest[gone]
        if day is not None and day != self._day:
            self._day, self._lse, self._lse_contract, self._born = day, None, None, {}
        if session == LSE:
            if self._lse is None or candle.contract != self._lse_contract:
                self._lse, self._lse_contract = (candle.high, candle.low), candle.contract
            else:
                self._lse = (max(self._lse[0], candle.high), min(self._lse[1], candle.low))
        elif session == NYSE and self._lse is not None:
            if candle.contract != self._lse_contract:
                self._lse = None  # levels of another contract: no new setups today
            else:
                out.extend(self._births(candle, day))
        return out

    # -- input -------------------------------------------------------------------------

    def _check(self, c: Candle) -> None:
        if c.interval_seconds != 60:
            raise CandleRejected(
                f"{c.symbol} candle at {c.start} is {c.interval_seconds}s; the SLOB tracker takes "
                "1-minute candles only (filter on interval_seconds == 60)"
            )
        if c.start.tzinfo is None or c.start.utcoffset() is None:
            raise CandleRejected(f"candle start {c.start!r} is naive; candles need tz-aware UTC times")
        if self._symbol is None:
            self._symbol = c.symbol
        elif c.symbol != self._symbol:
            raise CandleRejected(
                f"candle of {c.symbol!r} fed to the {self._symbol!r} tracker; use one SetupTracker per symbol"
            )
        if self._last is not None and c.start < self._last.end:
            raise CandleRejected(
                f"candle at {c.start} is not after the previous one ({self._last.start}): "
                "feed each closed candle once, in time order"
            )

    def _where(self, t: dt.datetime) -> tuple[dt.date | None, str | None]:
        """(trading day, session) of ``t`` as slob.market.sessions' ``trading_day`` and
        ``session_at`` define them, with the day's bounds cached."""
        day = t.astimezone(LONDON).date()
        if day.weekday() >= 5:
            return None, None
        if self._bounds is None or self._bounds[0] != day:
            (lse_start, lse_end), (_, nyse_end) = lse_session(day), nyse_session(day)
            self._bounds = (day, lse_start, lse_end, nyse_end)
        _, lse_start, lse_end, nyse_end = self._bounds
        if lse_start <= t < lse_end:
            return day, LSE
        if lse_end <= t < nyse_end:
            return day, NYSE
        return None, None

    # -- the machine -------------------------------------------------------------------

    def _births(self, c: Candle, day: dt.date | None) -> list[SetupEvent]:
        assert self._lse is not None and day is not None and self._symbol is not None
        high, low = self._lse
        out: list[SetupEvent] = []
        for d in Direction:
            if any(s.direction is d for s in self._setups):
                continue
            level, opposite = (high, low) if d is Direction.SHORT else (-low, -high)
            if _bar(c, d.sign).high <= level:
                continue
            n = self._born[d] = self._born.get(d, 0) + 1
            s = _Setup(
                setup_id=f"{self._symbol}-{day:%Y%m%d}-{d.value}-{c.start.astimezone(dt.timezone.utc):%H%M}-{n}",
                direction=d, day=day, contract=c.contract, lse_high=high, lse_low=low,
                opposite=opposite, ref=abs(c.close) or 1.0, liq1_at=c.start,
            )
            self._setups.append(s)
            side = f"high {_fmt(c.high)} above the LSE high" if d is Direction.SHORT else \
                f"low {_fmt(c.low)} below the LSE low"
            out.append(self._fire(s, Signal.LIQ1_SWEEP, c, f"LIQ #1: {side} {_fmt(s.sign * level)}"))
        return out

    def _advance(self, s: _Setup, c: Candle, day: dt.date | None, session: str | None,
                 missing: int) -> list[SetupEvent]:
        if day != s.day or session != NYSE:
            if day is not None and day != s.day:
                return [self._fire(s, Signal.NEW_DAY, c, f"new trading day {day}")]
            return [self._fire(s, Signal.SESSION_END, c, f"NYSE session of {s.day} over at {c.start:%H:%M} UTC")]
        if c.contract != s.contract:
            return [self._fire(s, Signal.CONTRACT_CHANGED, c, f"contract changed {s.contract} -> {c.contract}")]
        if missing > self.config.max_missing_candles:
            return [self._fire(s, Signal.DATA_GAP, c, f"{missing} candle(s) missing before {c.start:%H:%M} UTC")]
        return self._step(s, c, _bar(c, s.sign))

    def _step(self, s: _Setup, c: Candle, v: _Bar) -> list[SetupEvent]:
        cfg = self.config
        if s.state in (State.LIQ1, State.CONSOLIDATION):
            if s.state is State.CONSOLIDATION and self._is_liq2(s, v):
                s.liq2, s.liq2_at = v, c.start
                s.stop = cfg.ceil_tick(v.high + cfg.stop_buffer_points)
                s.target = cfg.ceil_tick(s.opposite - cfg.target_buffer_points)
                return [self._fire(s, Signal.LIQ2_SWEEP, c,
                                   f"LIQ #2: no-wick sweep of the consolidation to {_fmt(s.sign * v.high)}")]
            s.window.append(v)
            s.window_start = s.window_start or c.start
            s.window_end = c.end
            high, low = s.extremes()
            pct = (high - low) / s.ref * 100
            if len(s.window) > cfg.consolidation_max_candles:
                return [self._fire(s, Signal.CONSOLIDATION_BROKEN, c,
                                   f"no LIQ #2 within {cfg.consolidation_max_candles} consolidation candles")]
            if pct > cfg.consolidation_max_range_pct + _EPS:
                return [self._fire(s, Signal.CONSOLIDATION_BROKEN, c,
                                   f"consolidation range {pct:.3f}% wider than {cfg.consolidation_max_range_pct}%")]
            touches = s.touches(cfg.touch_tolerance_points)
            formed = (len(s.window) >= cfg.consolidation_min_candles and touches >= cfg.consolidation_min_touches
                      and pct >= cfg.consolidation_min_range_pct - _EPS)
            if formed and s.state is State.LIQ1:
                return [self._fire(s, Signal.CONSOLIDATION_FORMED, c,
                                   f"consolidation of {len(s.window)} candles, range {pct:.3f}%, {touches} touches")]
            if not formed and s.state is State.CONSOLIDATION:
                return [self._fire(s, Signal.CONSOLIDATION_EXTENDED, c,
                                   f"consolidation extreme moved to {_fmt(s.sign * high)}: waiting for a retest")]
            return []
        assert s.liq2 is not None and s.stop is not None
        if s.state is State.LIQ2:
            s.waited += 1
            if v.high >= s.stop - _EPS:
                return [self._fire(s, Signal.STOP_BREACHED, c, f"stop {_fmt(s.sign * s.stop)} reached before entry")]
            if v.close < s.liq2.open - _EPS:
                problem = self._risk_problem(s, v.close)
                if problem:
                    return [self._fire(s, Signal.RISK_REWARD, c, f"trigger rejected: {problem}")]
                s.trigger_at = c.start
                side = "below" if s.sign > 0 else "above"
                return [self._fire(s, Signal.ENTRY_TRIGGER, c,
                                   f"close {_fmt(c.close)} {side} the LIQ #2 open {_fmt(s.sign * s.liq2.open)}: "
                                   "entry at the next candle's open")]
            if s.waited >= cfg.entry_wait_max_candles:
                return [self._fire(s, Signal.WAIT_EXCEEDED, c,
                                   f"no trigger within {cfg.entry_wait_max_candles} candles of LIQ #2")]
            return []
        entry = cfg.round_tick(v.open)  # TRIGGERED: this candle's open is the entry
        if entry >= s.stop - _EPS:
            return [self._fire(s, Signal.STOP_BREACHED, c,
                               f"entry candle opens at {_fmt(c.open)}, beyond the stop {_fmt(s.sign * s.stop)}")]
        problem = self._risk_problem(s, entry)
        if problem:
            return [self._fire(s, Signal.RISK_REWARD, c, f"entry rejected: {problem}")]
        s.entry = entry
        changed = self._fire(s, Signal.ENTRY_OPEN, c,
                             f"entry {_fmt(s.sign * entry)} at the open of {c.start:%H:%M} UTC")
        assert changed.entry is not None and changed.stop is not None and changed.target is not None
        ready = SetupReady(
            setup_id=s.setup_id, symbol=changed.symbol, contract=s.contract, direction=s.direction, day=s.day,
            at=c.end, entry_at=c.start, entry=changed.entry, stop=changed.stop, target=changed.target,
            lse_high=s.lse_high, lse_low=s.lse_low,
        )
        return [changed, ready]

    def _is_liq2(self, s: _Setup, v: _Bar) -> bool:
        cfg = self.config
        wick_limit = max(cfg.no_wick_max_fraction * (v.high - v.low), cfg.no_wick_max_points)
        return v.close > v.open and v.high > s.extremes()[0] and v.high - v.close <= wick_limit + _EPS

    def _risk_problem(self, s: _Setup, entry: float) -> str:
        """Why a (short-space) entry is not worth taking; empty if it is."""
        assert s.stop is not None and s.target is not None
        risk, reward = s.stop - entry, entry - s.target
        if risk <= _EPS:
            return f"entry {_fmt(s.sign * entry)} at or beyond the stop {_fmt(s.sign * s.stop)}"
        if reward <= _EPS:
            return f"entry {_fmt(s.sign * entry)} at or beyond the target {_fmt(s.sign * s.target)}"
        if reward < self.config.min_risk_reward * risk - _EPS:
            return f"reward/risk {reward / risk:.2f} below {self.config.min_risk_reward:g}"
        return ""

    def _fire(self, s: _Setup, signal: Signal, c: Candle, reason: str) -> SetupChanged:
        previous = s.state
        s.state = next_state(previous, signal, s.setup_id)
        consolidation = None
        if s.window and s.window_start is not None and s.window_end is not None:
            high, low = s.extremes()
            real = sorted((s.sign * high + 0.0, s.sign * low + 0.0))
            consolidation = Consolidation(
                start=s.window_start, end=s.window_end, candles=len(s.window), high=real[1], low=real[0],
                touches=s.touches(self.config.touch_tolerance_points), range_pct=(high - low) / s.ref * 100,
            )
        event = SetupChanged(
            setup_id=s.setup_id, symbol=c.symbol, contract=s.contract, direction=s.direction, day=s.day,
            state=s.state, previous=previous, signal=signal, at=c.end, reason=reason,
            lse_high=s.lse_high, lse_low=s.lse_low, liq1_at=s.liq1_at, consolidation=consolidation,
            liq2_at=s.liq2_at, trigger_at=s.trigger_at,
            entry=s.real(s.entry), stop=s.real(s.stop), target=s.real(s.target),
        )
        self._latest[s.setup_id] = event
        return event
