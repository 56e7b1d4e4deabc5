"""GapFiller: one symbol's minutes owed by history, between the live ticks and its candles.

The engine's candles come from live ticks -- except where the live feed cannot be
complete: the minutes before the engine subscribed (warm-up, slob.live.warmup) and the
minutes an outage may have lost (a :class:`~slob.model.Gap`: socket loss, IB's 1101, a
stall, a restart). Those minutes are *owed*: the filler holds the live ticks back from the
aggregator, takes the owed minutes whole from the store and from TWS's 1-minute historical
bars, replays them through the aggregator (and so the strategy), and then releases the
held ticks from the first minute the live feed saw whole. Nothing is counted twice,
nothing is left out:

* **Hold.** An outage is noticed at its start (:class:`~slob.model.ConnectionLost`, in
  exchange time: the last moment the stream was known complete). Everything the aggregator
  closed before that is complete. The open minute is not: :meth:`GapFiller.hold` cuts the
  aggregator there (:meth:`~slob.market.candle_aggregator.CandleAggregator.cut`), and from
  then on ticks are held, not aggregated. At start the engine holds from the warm-up
  window's start.
* **Join.** The first tick of new data ends the outage (the Gap's ``end``); trades in the
  same minute before it may have been missed, so the *join* -- the first minute built from
  live ticks -- is the next minute (:meth:`GapFiller.join_at`). At start it is the minute
  after TWS's clock once the subscription is live.
* **Supply**, in two steps so the strategy is never later than it must be: the minutes
  before the current one as soon as their bars exist (``history_delay_seconds`` after
  they end), then the minute that was forming at the join once it is over. A minute is
  "over" when a tick (or TWS's clock, polled on a quiet market) shows exchange time past
  it.
* **Release.** Held ticks from the join on go to the aggregator in order; older ones are
  dropped from the candles (they are in the bars; the engine stored them as ticks anyway).

A new outage while holding only moves the join later. A history request that fails is
retried (``max_attempts``, ``retry_seconds``); one that still fails leaves its minutes
*missing*: no candles (no flat ones either -- nobody knows they were quiet), a
:class:`~slob.model.HistoryUnavailable` event and a WARNING, and the Gap stays unfilled.
The strategy then sees the jump (the SLOB tracker invalidates live setups on missing
minutes). An empty answer is believed to be a quiet market only for a short stretch with
no live trades in it (``empty_answer_minutes``); a minute in which live trades were seen
must have a bar.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Protocol

from slob.ib.errors import ConnectionLost, RequestTimedOut, SlobError
from slob.market.candle_aggregator import CandleAggregator
from slob.store.records import HistorySpan
from slob.live.warmup import MINUTE, MemoryConfig, Range, floor_minute, missing_ranges, overlaps, trading_minutes
from slob.model import Candle, Gap, HistoryFilled, HistoryUnavailable, Tick

__all__ = ["GapFiller", "History", "Origin", "memory_stats"]

log = logging.getLogger("slob.live.gapfill")

#: Where a candle came from: "live" (the live feed, as it happened), "store" (already
#: stored), "history" (TWS's bars, or built from them), "held" (live ticks held during a
#: hold and released after it: right, but late -- triggers in it may be stale).
Origin = str


class History(Protocol):
    """IBWSFetcher.history: 1-minute TRADES bars of ``symbol`` starting in [start, end)."""

    def __call__(self, symbol: str, start: dt.datetime, end: dt.datetime) -> Awaitable[list[Candle]]: ...


Deliver = Callable[[Candle, Origin], Awaitable[None]]
Publish = Callable[[object], Awaitable[None]]
Clock = Callable[[], Awaitable[dt.datetime]]


class _Interrupted(Exception):
    """A new outage began while the request ran: try again after it."""


@dataclass
class _Hold:
    owed_from: dt.datetime | None  # the first minute owed (None: nothing before the join)
    cause: str
    live_from: dt.datetime | None = None  # the join; None while an outage is open
    first_tick_joins: bool = False  # no clock to tell the join: the first tick's next minute
    live_before: bool = True  # the minutes before owed_from were seen live (not so at start)
    ticks: list[Tick] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    first: dt.datetime | None = None  # the first minute this hold owed
    stored: int = 0
    bars: int = 0
    requests: int = 0
    missing: list[Range] = field(default_factory=list)
    evidence: set[dt.datetime] = field(default_factory=set)  # owed minutes with live trades seen


class GapFiller:
    """See the module docstring. ``deliver`` gets every candle the replay closes (and the
    candles a cut closes), in order; ``publish`` the HistoryFilled/HistoryUnavailable
    events and the filled Gaps' records go to ``record``."""

    def __init__(self, symbol: str, aggregator: CandleAggregator, *, config: MemoryConfig,
                 history: History | None, deliver: Deliver, publish: Publish,
                 record: Callable[[object], None] = lambda _: None, clock: Clock | None = None,
                 is_trading: Callable[[dt.datetime], bool] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.symbol = symbol
        self.aggregator = aggregator
        self.config = config
        self._history = history
        self._deliver = deliver
        self._publish = publish
        self._record = record
        self._clock = clock
        self._is_trading = is_trading or aggregator.is_trading
        self._sleep = sleep
        self._stored: dict[dt.datetime, Candle] = {}
        self._hold: _Hold | None = None
        self._wake = asyncio.Event()
        self._newest: dt.datetime | None = None  # newest exchange time seen (ticks, TWS's clock)
        self._last_tick: dt.datetime | None = None  # newest live tick's
        #: Every stretch history could not supply, for the whole run.
        self.missing: list[Range] = []
        self.stats = {"holds": 0, "requests": 0, "bars": 0, "stored": 0, "failures": 0, "gaps_filled": 0,
                      "gaps_unfilled": 0, "dropped_ticks": 0}
        self.joined_at: dt.datetime | None = None  # the last join
        self._last_covered: tuple[dt.datetime, dt.datetime, bool] | None = None  # the last hold's first, join,
        # live_before
        self._late: list[Candle] = []  # closed by a cut outside the engine's reach: delivered by run()
        self._polled = False

    # -- the engine's calls (event loop, never awaiting) ---------------------------------

    @property
    def holding(self) -> bool:
        return self._hold is not None

    @property
    def now(self) -> dt.datetime | None:
        """The newest exchange time known (a tick's, or TWS's clock)."""
        return self._newest

    @property
    def stored(self) -> dict[dt.datetime, Candle]:
        return self._stored

    def use_stored(self, candles: dict[dt.datetime, Candle]) -> None:
        """Trusted stored 1-minute candles (slob.live.warmup.trusted) the next supply may use."""
        self._stored = dict(candles)

    def start(self, window_start: dt.datetime | None, cause: str = "warm-up") -> None:
        """Hold from the start: minutes from ``window_start`` on are owed (None: none
        before the join)."""
        self._begin(window_start, cause).live_before = False
        if window_start is not None:
            self.aggregator.cut(window_start)

    def hold(self, at: dt.datetime, cause: str) -> list[Candle]:
        """An outage began at ``at`` (exchange time; the stream was complete until then):
        cut the aggregator at its first open minute and hold; return the candles the cut
        closed (complete: deliver them as live). Already holding: the join waits for the
        outage's end."""
        if self._hold is not None:
            self._hold.live_from = None
            return []
        owed = self.aggregator.pending_from or floor_minute(at)
        out = self.aggregator.cut(owed)
        hold = self._begin(owed, cause)
        if self._last_tick is not None and self._last_tick >= owed:
            hold.evidence.add(floor_minute(self._last_tick))  # the minute the cut dropped
        return out

    def join_on_first_tick(self) -> None:
        """No clock says when the subscription went live: the first tick does (the join is
        the minute after it)."""
        if self._hold is not None and self._hold.live_from is None:
            self._hold.first_tick_joins = True

    def join_at(self, live_from: dt.datetime) -> None:
        """Live ticks build the candles from minute ``live_from`` on (the join)."""
        hold = self._hold
        if hold is None:
            return
        hold.live_from = live_from if hold.live_from is None else max(hold.live_from, live_from)
        if hold.owed_from is None:
            hold.owed_from = hold.first = hold.live_from
        self._wake.set()

    def gap(self, gap: Gap, *, join: bool = True) -> None:
        """An outage ended (its first tick of new data at ``gap.end``): the join is the next
        minute. ``join=False`` only records it (the engine's own restart gap, which the
        warm-up covers)."""
        if self._hold is None:
            if not join:  # the warm-up is over already: it covered the gap or it did not
                if self._covers(gap, *(self._last_covered or (gap.end, gap.end, False)), self.missing):
                    self._record(replace(gap, filled=True))
                return
            # A Gap without its ConnectionLost first: the candles since its start may hold
            # part of it; they are owed too.
            self._deliver_later(self.hold(gap.start, gap.cause))
        assert self._hold is not None
        self._hold.gaps.append(gap)
        if join:
            self._hold.first_tick_joins = False
            self.join_at(floor_minute(gap.end) + MINUTE)

    def tick(self, tick: Tick) -> None:
        """A live tick while holding: kept until the join's minute is supplied."""
        hold = self._hold
        assert hold is not None
        hold.ticks.append(tick)
        hold.evidence.add(floor_minute(tick.timestamp))
        if hold.first_tick_joins:
            hold.first_tick_joins = False
            self.join_at(floor_minute(tick.timestamp) + MINUTE)
        self.saw(tick.timestamp)

    def saw(self, t: dt.datetime, *, tick: bool = True) -> None:
        """Exchange time ``t`` was seen: a live tick's (``tick``), or TWS's clock."""
        if tick and (self._last_tick is None or t > self._last_tick):
            self._last_tick = t
        if self._newest is None or t > self._newest:
            self._newest = t
            if self._hold is not None:
                self._wake.set()

    async def close(self) -> None:
        """A stop while holding. The owed minutes stay without candles (the next start owes
        them again: they lie after its last stored data). The held ticks become candles as
        at any stop -- the open minute closed as it was seen: from the join on, or, when the
        stop comes before the join, the minute forming then (the next start asks for it
        again, it is the one its last stored tick falls in)."""
        hold = self._hold
        if hold is None:
            return
        self._hold = None
        if hold.live_from is None:
            return
        ticks = hold.ticks
        start = hold.live_from if any(t.timestamp >= hold.live_from for t in ticks) else hold.live_from - MINUTE
        agg = self.aggregator
        if hold.owed_from is not None and hold.owed_from < start:
            await self._hand_over(agg.advance(hold.owed_from) + agg.skip(start), {})
        for tick in ticks:
            if tick.timestamp >= start:
                for c in agg.add(tick):
                    await self._deliver(c, "held")

    # -- the filler's task ---------------------------------------------------------------

    async def run(self) -> None:
        """Supply what can be supplied whenever something changes; poll TWS's clock while
        a hold waits for time to pass on a quiet market. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            # not asyncio.wait_for: before Python 3.12 it can swallow a cancellation that
            # meets the event being set, and this task must stop when the engine does
            self._polled = False
            timer = loop.call_later(self.config.clock_poll_seconds, self._poll)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            self._wake.clear()
            if self._polled and self._hold is not None and self._hold.live_from is not None \
                    and self._clock is not None:
                try:
                    self.saw(await self._clock(), tick=False)
                except SlobError as exc:
                    log.debug("= %s: TWS's clock unreadable while holding: %s", self.symbol, exc)
            if self._late:
                late, self._late = self._late, []
                await self._hand_over(late, {})
            await self.step()

    def _poll(self) -> None:
        self._polled = True
        self._wake.set()

    async def step(self) -> None:
        """Supply every owed minute that is over, and release the held ticks once the join
        is reached."""
        while True:
            hold = self._hold
            if hold is None or hold.live_from is None or hold.owed_from is None:
                return
            if hold.owed_from >= hold.live_from:
                await self._release(hold)
                return
            now = self._newest
            if now is None:
                return
            over = floor_minute(now - dt.timedelta(seconds=self.config.history_delay_seconds))
            until = min(hold.live_from, over)
            if until <= hold.owed_from:
                return
            try:
                await self._supply(hold, hold.owed_from, until)
            except _Interrupted:
                return
            hold.owed_from = until

    # -- supplying -------------------------------------------------------------------------

    def _deliver_later(self, candles: list[Candle]) -> None:
        self._late += candles
        self._wake.set()

    @staticmethod
    def _covers(gap: Gap, first: dt.datetime, join: dt.datetime, live_before: bool, missing: list[Range]) -> bool:
        """Were all the minutes ``gap`` may have lost supplied -- live before ``first`` when
        ``live_before`` (the candles closed before a hold began were complete: the stream
        reached past them), from memory in [first, join), and live again from ``join``?"""
        span = (floor_minute(gap.start), floor_minute(gap.end) + MINUTE)
        return (live_before or first <= span[0]) and not any(overlaps(span, m) for m in missing)

    def _begin(self, owed: dt.datetime | None, cause: str) -> _Hold:
        hold = self._hold = _Hold(owed, cause, first=owed)
        self.stats["holds"] += 1
        log.info("= %s: holding live ticks; minutes from %s owed by history (%s)", self.symbol,
                 owed.isoformat() if owed else "the join", cause)
        return hold

    async def _supply(self, hold: _Hold, start: dt.datetime, end: dt.datetime) -> None:
        """Minutes [start, end): stored ones where trusted, the rest from TWS, replayed in
        order; stretches nobody could supply are skipped. Raises _Interrupted when an
        outage began meanwhile (nothing replayed)."""
        stored = {m: c for m, c in self._stored.items() if start <= m < end}
        fetched: dict[dt.datetime, Candle] = {}
        missing: list[Range] = []
        for span in missing_ranges(start, end, stored):
            bars = await self._fetch(hold, span)
            if bars is None:
                missing.append(span)
            else:
                fetched.update((b.start, b) for b in bars)
        if hold.live_from is None:
            raise _Interrupted
        hold.stored += sum(1 for c in stored.values() if not c.filled)
        hold.bars += len(fetched)
        hold.missing += missing
        self.missing += missing
        self.stats["stored"] += sum(1 for c in stored.values() if not c.filled)
        self.stats["bars"] += len(fetched)
        agg = self.aggregator
        items: list[tuple[dt.datetime, Candle | None, dt.datetime]] = [
            (c.start, c, c.end) for c in list(stored.values()) + list(fetched.values()) if not c.filled]
        items += [(s, None, e) for s, e in missing]
        for at, bar, until in sorted(items, key=lambda i: i[0]):
            if bar is not None:
                closed = agg.add_bar(bar)
            else:
                closed = agg.advance(at) + agg.skip(until)
            await self._hand_over(closed, stored)
        await self._hand_over(agg.advance(end), stored)

    async def _hand_over(self, candles: list[Candle], stored: dict[dt.datetime, Candle]) -> None:
        for c in candles:
            origin = "store" if c.interval_seconds == 60 and c.start in stored else "history"
            await self._deliver(c, origin)

    async def _fetch(self, hold: _Hold, span: Range) -> list[Candle] | None:
        """The bars of ``span`` from TWS, or None when they cannot be had. Tried again
        (``max_attempts``, ``retry_seconds`` apart) only when another try may answer
        differently: a time-out, a lost session, a minute with live trades and no bar yet.
        An error TWS will repeat (no permission, unknown contract, pacing after the
        history service's own retries) or "no data" is final at once."""
        cfg = self.config
        reason = "this data source has no historical bars"
        if self._history is None:
            await self._unavailable(span, reason)
            return None
        for attempt in range(1, cfg.max_attempts + 1):
            hold.requests += 1
            self.stats["requests"] += 1
            log.info("> %s: history %s .. %s%s", self.symbol, span[0].isoformat(), span[1].isoformat(),
                     f" (attempt {attempt})" if attempt > 1 else "")
            try:
                answer = await self._history(self.symbol, span[0], span[1])
            except SlobError as exc:
                if hold.live_from is None:
                    raise _Interrupted from exc
                reason = f"{type(exc).__name__}: {exc}"
                again = isinstance(exc, (RequestTimedOut, ConnectionLost))
            else:
                bars = [replace(b, symbol=self.symbol) if b.symbol != self.symbol else b
                        for b in answer if b.interval_seconds == 60 and span[0] <= b.start < span[1]]
                bars.sort(key=lambda b: b.start)
                doubt = self._doubt(bars, span, hold)
                if doubt is None:
                    log.info("< %s: %d bars for %s .. %s", self.symbol, len(bars), span[0].isoformat(),
                             span[1].isoformat())
                    # what IB's history covered: slob history will not ask for it again
                    self._record(HistorySpan(self.symbol, 60, span[0], span[1], dt.datetime.now(dt.timezone.utc)))
                    return bars
                reason, again = doubt
            self.stats["failures"] += 1
            if not again or attempt == cfg.max_attempts:
                break
            log.warning("! %s: history %s .. %s: %s; again in %g s", self.symbol, span[0].isoformat(),
                        span[1].isoformat(), reason, cfg.retry_seconds)
            await self._sleep(cfg.retry_seconds)
            if hold.live_from is None:
                raise _Interrupted
        await self._unavailable(span, reason)
        return None

    def _doubt(self, bars: list[Candle], span: Range, hold: _Hold) -> tuple[str, bool] | None:
        """Why an answer cannot be the whole truth about ``span``, and whether asking
        again may help; None if it can be."""
        live = {m for m in hold.evidence if span[0] <= m < span[1]}
        lacking = sorted(live - {b.start for b in bars})
        if lacking:  # the bar of a minute just over may not be published yet
            return f"no bar for {lacking[0]:%H:%M} UTC although live trades were seen in it", True
        if not bars:
            n = trading_minutes(span, self._is_trading)
            if n >= self.config.empty_answer_minutes:
                return f"TWS returned no bars for {n} trading minutes (no data)", False
        return None

    async def _unavailable(self, span: Range, reason: str) -> None:
        log.warning("! %s: history unavailable for %s .. %s (%s): those minutes have no candles", self.symbol,
                    span[0].isoformat(), span[1].isoformat(), reason)
        await self._publish(HistoryUnavailable(self.symbol, span[0], span[1], reason))

    async def _release(self, hold: _Hold) -> None:
        """The owed minutes are in: hand the held ticks from the join on to the aggregator."""
        join = hold.live_from
        assert join is not None
        agg = self.aggregator
        while hold.ticks:
            tick = hold.ticks.pop(0)
            if tick.timestamp < join:
                self.stats["dropped_ticks"] += 1
                continue
            for c in agg.add(tick):
                await self._deliver(c, "held")
        # no await between the last check and here: a tick arriving now goes the live way
        self._hold = None
        self.joined_at = join
        first = hold.first or join
        self._last_covered = (first, join, hold.live_before)
        for g in hold.gaps:
            filled = self._covers(g, first, join, hold.live_before, hold.missing)
            self.stats["gaps_filled" if filled else "gaps_unfilled"] += 1
            if filled:
                self._record(replace(g, filled=True))
        log.info("= %s: joined live at %s: %d stored candles, %d bars in %d requests%s", self.symbol,
                 join.isoformat(), hold.stored, hold.bars, hold.requests,
                 f", {len(hold.missing)} stretch(es) missing" if hold.missing else "")
        await self._publish(HistoryFilled(self.symbol, first, join, hold.cause, hold.stored, hold.bars,
                                          hold.requests, tuple(hold.missing)))


def memory_stats(fillers: dict[str, GapFiller], config: MemoryConfig, levels_unknown: set[dt.date]) -> dict[str, Any]:
    """The engine's ``get_stats()["memory"]``: totals over the symbols' fillers."""
    keys = next(iter(fillers.values())).stats if fillers else {}
    return {
        "enabled": config.enabled,
        "holding": sorted(s for s, f in fillers.items() if f.holding),
        "joined_at": {s: f.joined_at.isoformat() if f.joined_at else None for s, f in fillers.items()},
        "missing_minutes": sum(int((e - s) / MINUTE) for f in fillers.values() for s, e in f.missing),
        "levels_unknown": sorted(d.isoformat() for d in levels_unknown),
        **{k: sum(f.stats[k] for f in fillers.values()) for k in keys},
    }
