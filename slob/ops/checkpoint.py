"""The checkpoint's bookkeeping, verdict and report: pure (no I/O, no clock, no network).

``slob checkpoint`` (:mod:`slob.commands.checkpoint`) streams a symbol for N minutes and
feeds everything it sees into a :class:`CheckpointRecorder` together with the moment it
saw it (a tz-aware UTC *real* time, from the local clock); at the end
:meth:`CheckpointRecorder.report` turns that into a JSON-ready dict with a PASS/FAIL
verdict, and :func:`~slob.ops.checkpoint_text.render_text` into the readable form. Tests feed hand-made ticks and
events with hand-made times.

**Two clocks.** Tick timestamps are *exchange* time (TWS's clock; the simulated clock of
the fake TWS in ``--sim``). Outages and the arrival of each tick are *real* time. A
:class:`ClockMap` maps real time to exchange time (``speed`` 1 against a real TWS, the
fake's speed in ``--sim``), so every length in the report is in exchange-clock seconds;
``real_seconds`` gives the wall-clock length.

**Gaps** are quiet periods -- no tick for the subscribed symbol -- measured two ways:
``exchange``, between consecutive tick timestamps; ``real``, between tick arrivals (and
from the start of the stream to the first tick, from the last tick to the end), mapped to
the exchange clock. Only the part of a quiet period during which the market is open counts
(:class:`~slob.market.sessions.CmeHours`): a quiet period inside the CME daily halt or the
weekend is no gap, and one that spans a halt is split into the open parts before and after
it. A gap whose real span overlaps a recorded outage (ConnectionLost ... ConnectionRestored)
is *explained* by that outage's cause; the others are *unexplained*.

**Market memory.** Each recorded :class:`~slob.model.Gap` (in exchange time) marks the
minutes the feed may have lost: from the minute of its start to the minute of its end.
The command asks IB's history for them once the stream is over (:meth:`CheckpointRecorder.gap_spans`,
:meth:`CheckpointRecorder.filled`), and the report tells the run's CME trading minutes
apart: *live* (no gap touched them), *from history* (a gap touched them and history
answered) and *missing* (a gap touched them and history could not be had). This does not
change the verdict: the gaps are judged as quiet periods above.

**Verdict** (all four must hold for PASS): at least one tick; every tick for the subscribed
symbol; no unexplained gap longer than ``max_gap_seconds``; every outage recovered (each
ConnectionLost followed by a ConnectionRestored before the end, and the feed did not give up).
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from slob.market.candle_aggregator import CandleAggregator
from slob.market.sessions import CmeHours
from slob.market.symbols import MONTH_CODES, parse_symbol
from slob.model import Candle, ConnectionLost, ConnectionRestored, ContractRolled, Gap, Tick
from slob.ops.checkpoint_text import render_text as render_text

__all__ = [
    "FORMAT",
    "CheckpointRecorder",
    "ClockMap",
    "Criterion",
    "Outage",
    "OutageLog",
    "QuietPeriod",
    "GapMeter",
    "evaluate",
    "explain",
    "open_segments",
    "render_text",
]

#: Version of the report's JSON layout (``"format"`` in the report).
FORMAT = 1
PASS, FAIL = "PASS", "FAIL"
EXCHANGE, REAL = "exchange", "real"
_UTC = dt.timezone.utc
_MAX_ERRORS = 50
_MAX_FOREIGN_EXAMPLES = 5


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(_UTC).isoformat()


def _r(x: float, digits: int = 3) -> float:
    return round(x, digits)


_MINUTE = dt.timedelta(minutes=1)


def _floor_minute(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


# -- clocks and market hours ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockMap:
    """Real (local) time -> exchange time: ``exchange_anchor + (real - real_anchor) * speed``."""

    real_anchor: dt.datetime
    exchange_anchor: dt.datetime
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0 or self.speed == float("inf"):
            raise ValueError(f"clock speed must be positive and finite, not {self.speed}")

    def to_exchange(self, real: dt.datetime) -> dt.datetime:
        return self.exchange_anchor + (real - self.real_anchor) * self.speed

    def to_real(self, exchange: dt.datetime) -> dt.datetime:
        return self.real_anchor + (exchange - self.exchange_anchor) / self.speed


def open_segments(hours: CmeHours, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The parts of ``[start, end)`` during which the market is open, in order."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    t = start
    while t < end:
        if hours.is_open(t):
            bounds = hours.session_bounds(t)
            stop = min(bounds[1], end) if bounds is not None else end
            if stop <= t:  # pragma: no cover - session_bounds contains t when open
                stop = end
            out.append((t, stop))
            t = stop
        else:
            t = min(hours.next_open(t), end)
    return out


# -- outages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outage:
    """From a ConnectionLost to the ConnectionRestored that ended it (``real_end`` None:
    never restored). ``causes`` lists every ConnectionLost cause while it lasted."""

    real_start: dt.datetime
    real_end: dt.datetime | None
    causes: tuple[str, ...]
    restored_by: str | None = None
    data_lost: bool | None = None

    @property
    def recovered(self) -> bool:
        return self.real_end is not None

    @property
    def cause(self) -> str:
        return "; ".join(self.causes)

    @property
    def kind(self) -> str:
        """``"connectivity"`` (IB 1100: TWS lost IB's servers, the socket stayed up) or
        ``"socket"`` (the API connection closed; a reconnect ended it)."""
        return "connectivity" if self.causes and self.causes[0].startswith("IB ") else "socket"

    def real_seconds(self, run_end: dt.datetime) -> float:
        return ((self.real_end or run_end) - self.real_start).total_seconds()


class OutageLog:
    """Pairs ConnectionLost and ConnectionRestored events (in the order they arrived)."""

    def __init__(self) -> None:
        self.closed: list[Outage] = []
        self._open: tuple[dt.datetime, list[str]] | None = None
        #: ConnectionRestored events with no outage open (e.g. a 1102 without a 1100).
        self.unmatched_restores = 0

    @property
    def open(self) -> bool:
        return self._open is not None

    def lost(self, real_at: dt.datetime, cause: str) -> None:
        if self._open is None:
            self._open = (real_at, [cause])
        elif cause not in self._open[1]:
            self._open[1].append(cause)

    def restored(self, real_at: dt.datetime, cause: str, data_lost: bool) -> None:
        if self._open is None:
            self.unmatched_restores += 1
            return
        start, causes = self._open
        self._open = None
        self.closed.append(Outage(start, real_at, tuple(causes), cause, data_lost))

    def outages(self) -> list[Outage]:
        """Every outage so far; one still open is last, with ``real_end`` None."""
        out = list(self.closed)
        if self._open is not None:
            out.append(Outage(self._open[0], None, tuple(self._open[1])))
        return out


# -- gaps -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietPeriod:
    """An open-market stretch without ticks. ``start``/``end``/``seconds`` are on the
    exchange clock; ``real_start``/``real_end`` the real span it was observed in (for an
    ``exchange`` gap: the arrivals of the two ticks around it)."""

    measure: str
    start: dt.datetime
    end: dt.datetime
    real_start: dt.datetime
    real_end: dt.datetime
    explained_by: str | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def real_seconds(self) -> float:
        return (self.real_end - self.real_start).total_seconds()

    def with_cause(self, cause: str | None) -> QuietPeriod:
        return QuietPeriod(self.measure, self.start, self.end, self.real_start, self.real_end, cause)

    def to_json(self) -> dict[str, Any]:
        return {"measure": self.measure, "start": _iso(self.start), "end": _iso(self.end),
                "seconds": _r(self.seconds), "real_start": _iso(self.real_start), "real_end": _iso(self.real_end),
                "real_seconds": _r(self.real_seconds), "explained": self.explained_by is not None,
                "explained_by": self.explained_by}


class GapMeter:
    """Streams (exchange time, real arrival) pairs and keeps, per measure, the longest
    quiet period and every one of at least ``floor_seconds`` (up to ``limit``; further
    ones are counted in ``omitted``). Halts are cut out with ``hours``."""

    def __init__(self, hours: CmeHours, clock: ClockMap, *, floor_seconds: float, limit: int = 1000) -> None:
        self.hours = hours
        self.clock = clock
        self.floor_seconds = floor_seconds
        self.limit = limit
        self.periods: list[QuietPeriod] = []
        self.longest: dict[str, QuietPeriod | None] = {EXCHANGE: None, REAL: None}
        self.omitted = 0
        self._stream_start: dt.datetime | None = None
        self._last_exchange: dt.datetime | None = None
        self._last_real: dt.datetime | None = None

    def start(self, real_at: dt.datetime) -> None:
        """The stream began at ``real_at``: the wait for the first tick counts too."""
        self._stream_start = real_at

    def observe(self, exchange_at: dt.datetime, real_at: dt.datetime) -> None:
        last_x, last_r = self._last_exchange, self._last_real
        if last_x is not None and last_r is not None and exchange_at > last_x:
            self._interval(EXCHANGE, last_x, exchange_at, last_r, real_at)
        since = last_r if last_r is not None else self._stream_start
        if since is not None and real_at > since:
            self._interval(REAL, self.clock.to_exchange(since), self.clock.to_exchange(real_at), since, real_at)
        if last_x is None or exchange_at > last_x:
            self._last_exchange = exchange_at
        if last_r is None or real_at > last_r:
            self._last_real = real_at

    def finish(self, real_end: dt.datetime) -> None:
        """The stream ended at ``real_end``: the quiet time after the last tick counts."""
        since = self._last_real if self._last_real is not None else self._stream_start
        if since is not None and real_end > since:
            self._interval(REAL, self.clock.to_exchange(since), self.clock.to_exchange(real_end), since, real_end)
            self._last_real = real_end

    def _interval(self, measure: str, start: dt.datetime, end: dt.datetime,
                  real_start: dt.datetime, real_end: dt.datetime) -> None:
        best = self.longest[measure]
        raw = (end - start).total_seconds()
        if raw < self.floor_seconds and best is not None and raw <= best.seconds:
            return  # cannot be listed nor be the longest: skip the calendar
        for seg_start, seg_end in open_segments(self.hours, start, end):
            if measure == REAL:
                seg_real = (self.clock.to_real(seg_start), self.clock.to_real(seg_end))
            else:
                seg_real = (real_start, real_end)
            period = QuietPeriod(measure, seg_start, seg_end, *seg_real)
            if best is None or period.seconds > best.seconds:
                self.longest[measure] = best = period
            if period.seconds >= self.floor_seconds:
                if len(self.periods) < self.limit:
                    self.periods.append(period)
                else:
                    self.omitted += 1


def explain(period: QuietPeriod, outages: Iterable[Outage], run_end: dt.datetime) -> str | None:
    """The cause of the first outage whose real span overlaps ``period``'s; None if none does."""
    for outage in outages:
        end = outage.real_end or run_end
        if period.real_start <= end and period.real_end >= outage.real_start:
            return outage.cause
    return None


def _period_json(period: QuietPeriod | None) -> dict[str, Any] | None:
    return None if period is None else period.to_json()


# -- verdict ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    description: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "passed": self.passed, "detail": self.detail}


def evaluate(
    *,
    symbol: str,
    ticks: int,
    foreign_ticks: int,
    foreign_examples: Iterable[str] = (),
    gaps: Iterable[QuietPeriod],
    max_gap_seconds: float,
    outages: Iterable[Outage],
    feed_error: str | None = None,
) -> list[Criterion]:
    """The four criteria, in order; the verdict is PASS when every one passed."""
    result = [Criterion("ticks", "at least one tick arrived", ticks > 0,
                        f"{ticks} ticks" if ticks else "no tick arrived")]
    examples = ", ".join(foreign_examples)
    result.append(Criterion(
        "symbol", f"every tick is for the subscribed symbol {symbol}", foreign_ticks == 0,
        f"all {ticks} ticks" if foreign_ticks == 0
        else f"{foreign_ticks} of {ticks} ticks for something else (e.g. {examples})"))
    over = sorted((g for g in gaps if g.explained_by is None and g.seconds > max_gap_seconds),
                  key=lambda g: -g.seconds)
    if over:
        shown = "; ".join(f"{g.measure} {g.seconds:.1f} s from {g.start:%Y-%m-%d %H:%M:%S} UTC" for g in over[:3])
        detail = f"{len(over)} unexplained gap{'s' if len(over) > 1 else ''} over the limit: {shown}"
    else:
        detail = "none"
    result.append(Criterion("gaps", f"no unexplained gap longer than {max_gap_seconds:g} s "
                            "(scheduled CME halts excluded)", not over, detail))
    all_outages = list(outages)
    lost = [o for o in all_outages if not o.recovered]
    if lost:
        detail = "; ".join(f"{o.cause} since {o.real_start:%H:%M:%S} UTC (real) never restored" for o in lost)
    elif all_outages:
        detail = f"{len(all_outages)} outage{'s' if len(all_outages) > 1 else ''}, all recovered"
    else:
        detail = "no outage"
    if feed_error:
        detail += f"; the feed gave up: {feed_error if len(feed_error) <= 120 else feed_error[:117] + '...'}"
    result.append(Criterion("outages", "every outage recovered (each ConnectionLost followed by "
                            "ConnectionRestored before the end)", not lost and not feed_error, detail))
    return result


# -- the recorder -----------------------------------------------------------------------


@dataclass
class _Counts:
    ticks: int = 0
    foreign: int = 0
    foreign_examples: list[str] = field(default_factory=list)
    by_contract: collections.Counter[str] = field(default_factory=collections.Counter)
    first_exchange: dt.datetime | None = None
    last_exchange: dt.datetime | None = None
    last_price: float | None = None
    last_contract: str = ""


class CheckpointRecorder:
    """Everything a checkpoint run observed, fed one item at a time with its real time.

    ``symbol`` is what was subscribed (``"NQ"``); ``hours`` the contract's trading hours;
    ``clock`` maps real to exchange time; ``stream_start`` is the real moment the
    subscription was requested.
    """

    def __init__(
        self,
        symbol: str,
        *,
        hours: CmeHours,
        clock: ClockMap,
        stream_start: dt.datetime,
        max_gap_seconds: float = 60.0,
        candle_intervals: tuple[int, ...] = (60, 300),
    ) -> None:
        if not max_gap_seconds > 0:
            raise ValueError(f"max_gap_seconds must be positive, not {max_gap_seconds}")
        self.symbol = symbol.strip().upper()
        self.root = parse_symbol(symbol).root
        self._contract_re = re.compile(rf"{re.escape(self.root)}[{MONTH_CODES}]\d{{1,2}}")
        self.hours = hours
        self.clock = clock
        self.stream_start = stream_start
        self.max_gap_seconds = max_gap_seconds
        self.gaps = GapMeter(hours, clock, floor_seconds=min(10.0, max_gap_seconds / 2))
        self.gaps.start(stream_start)
        self.outage_log = OutageLog()
        self.rolls: list[ContractRolled] = []
        self.errors: list[str] = []
        self.error_count = 0
        self.counts = _Counts()
        self.candles = CandleAggregator(self.symbol, candle_intervals, is_trading=hours.is_open)
        self.candles_by_interval: collections.Counter[int] = collections.Counter()
        self.filled_candles = 0
        self.last_real: dt.datetime = stream_start
        self.outage_gaps: list[Gap] = []
        self._supplied: dict[tuple[dt.datetime, dt.datetime], tuple[int | None, str]] = {}

    # -- input ---------------------------------------------------------------------------

    def is_ours(self, tick: Tick) -> bool:
        """The tick is for the subscribed symbol, from one of its root's futures."""
        return tick.symbol.strip().upper() == self.symbol and self._contract_re.fullmatch(tick.contract) is not None

    def tick(self, tick: Tick, real_at: dt.datetime) -> None:
        c = self.counts
        c.ticks += 1
        c.by_contract[tick.contract] += 1
        self.last_real = max(self.last_real, real_at)
        if not self.is_ours(tick):
            c.foreign += 1
            example = f"{tick.symbol}/{tick.contract}"
            if len(c.foreign_examples) < _MAX_FOREIGN_EXAMPLES and example not in c.foreign_examples:
                c.foreign_examples.append(example)
            return
        if c.first_exchange is None or tick.timestamp < c.first_exchange:
            c.first_exchange = tick.timestamp
        if c.last_exchange is None or tick.timestamp > c.last_exchange:
            c.last_exchange = tick.timestamp
        c.last_price, c.last_contract = tick.price, tick.contract
        self.gaps.observe(tick.timestamp, real_at)
        self._count_candles(self.candles.add(tick))

    def event(self, event: object, real_at: dt.datetime) -> None:
        """A fetcher event (ConnectionLost, ConnectionRestored, ContractRolled; others ignored)."""
        self.last_real = max(self.last_real, real_at)
        if isinstance(event, ConnectionLost):
            self.outage_log.lost(real_at, event.cause)
        elif isinstance(event, ConnectionRestored):
            self.outage_log.restored(real_at, event.cause, event.data_lost)
        elif isinstance(event, ContractRolled):
            self.rolls.append(event)
        elif isinstance(event, Gap):
            self.outage_gaps.append(event)

    def gap_spans(self) -> list[tuple[dt.datetime, dt.datetime]]:
        """The minutes the recorded gaps may have lost, merged: ``[start, end)`` minute
        boundaries (exchange time) to ask IB's history for."""
        spans = sorted((_floor_minute(g.start), _floor_minute(g.end) + _MINUTE) for g in self.outage_gaps)
        merged: list[tuple[dt.datetime, dt.datetime]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    def filled(self, span: tuple[dt.datetime, dt.datetime], bars: Sequence[Candle] | None, reason: str = "") -> None:
        """History's answer for a span of :meth:`gap_spans`: its bars, or None with why not."""
        self._supplied[span] = (None if bars is None else len(bars), reason)

    def error(self, error: BaseException | str, real_at: dt.datetime) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"{real_at:%H:%M:%S} {error}")

    def _count_candles(self, candles: list[Candle]) -> None:
        for candle in candles:
            self.candles_by_interval[candle.interval_seconds] += 1
            self.filled_candles += candle.filled

    # -- views -----------------------------------------------------------------------------

    def longest(self, measure: str) -> QuietPeriod | None:
        return self.gaps.longest[measure]

    def report(
        self,
        *,
        real_end: dt.datetime,
        run: Mapping[str, Any],
        stats: Mapping[str, Any],
        feed_error: str | None = None,
    ) -> dict[str, Any]:
        """Finish (closes the open candles, measures the quiet tail) and build the report.
        ``run`` describes the run (mode, host, ...), ``stats`` is the fetcher's get_stats()."""
        self.gaps.finish(real_end)
        self._count_candles(self.candles.flush())
        c = self.counts
        outages = self.outage_log.outages()
        periods = [p.with_cause(explain(p, outages, real_end)) for p in self.gaps.periods]
        longest = {m: (p.with_cause(explain(p, outages, real_end)) if p is not None else None)
                   for m, p in self.gaps.longest.items()}
        candidates = list(dict.fromkeys([*periods, *(p for p in longest.values() if p is not None)]))
        criteria = evaluate(symbol=self.symbol, ticks=c.ticks, foreign_ticks=c.foreign,
                            foreign_examples=c.foreign_examples, gaps=candidates,
                            max_gap_seconds=self.max_gap_seconds, outages=outages, feed_error=feed_error)
        unexplained = [p for p in candidates if p.explained_by is None]
        longest_unexplained = max(unexplained, key=lambda p: p.seconds, default=None)
        real_seconds = (real_end - self.stream_start).total_seconds()
        run_start_x, run_end_x = self.clock.to_exchange(self.stream_start), self.clock.to_exchange(real_end)
        open_seconds = sum((b - a).total_seconds() for a, b in open_segments(self.hours, run_start_x, run_end_x))
        reconnect_causes = collections.Counter(o.causes[0] for o in outages if o.kind == "socket" and o.recovered)
        resubscribed = sum(1 for o in outages if o.kind == "connectivity" and o.recovered and o.data_lost)
        verdict = PASS if all(k.passed for k in criteria) else FAIL
        return {
            "format": FORMAT,
            "verdict": verdict,
            "reasons": [f"{k.description}: {k.detail}" for k in criteria if not k.passed],
            "criteria": [k.to_json() for k in criteria],
            "run": {
                **run,
                "symbol": self.symbol,
                "max_gap_seconds": self.max_gap_seconds,
                "real_start": _iso(self.stream_start),
                "real_end": _iso(real_end),
                "real_seconds": _r(real_seconds),
                "exchange_start": _iso(run_start_x),
                "exchange_end": _iso(run_end_x),
                "clock_speed": self.clock.speed,
                "feed_error": feed_error,
            },
            "market": {
                "open_seconds": _r(open_seconds),
                "closed_seconds": _r((run_end_x - run_start_x).total_seconds() - open_seconds),
            },
            "ticks": {
                "count": c.ticks,
                "per_second": _r(c.ticks / real_seconds if real_seconds > 0 else 0.0, 1),
                "foreign": c.foreign,
                "foreign_examples": list(c.foreign_examples),
                "first_at": _iso(c.first_exchange),
                "last_at": _iso(c.last_exchange),
                "last_price": c.last_price,
                "by_contract": dict(c.by_contract),
            },
            "contracts": sorted(c.by_contract),
            "rolls": [{"symbol": r.symbol, "old": r.old, "new": r.new, "at": _iso(r.at)} for r in self.rolls],
            "gaps": {
                "max_gap_seconds": self.max_gap_seconds,
                "listed_from_seconds": self.gaps.floor_seconds,
                "longest_exchange": _period_json(longest[EXCHANGE]),
                "longest_real": _period_json(longest[REAL]),
                "longest_unexplained_seconds": _r(longest_unexplained.seconds) if longest_unexplained else 0.0,
                "unexplained_over_limit": sum(1 for p in unexplained if p.seconds > self.max_gap_seconds),
                "listed": [p.to_json() for p in periods],
                "omitted": self.gaps.omitted,
            },
            "outages": [
                {"kind": o.kind, "cause": o.cause, "causes": list(o.causes), "recovered": o.recovered,
                 "restored_by": o.restored_by, "data_lost": o.data_lost,
                 "real_start": _iso(o.real_start), "real_end": _iso(o.real_end),
                 "start": _iso(self.clock.to_exchange(o.real_start)),
                 "end": _iso(self.clock.to_exchange(o.real_end)) if o.real_end else None,
                 "real_seconds": _r(o.real_seconds(real_end)),
                 "seconds": _r(o.real_seconds(real_end) * self.clock.speed)}
                for o in outages
            ],
            "reconnects": {
                "count": int(stats.get("reconnects", 0) or 0),
                "causes": dict(reconnect_causes),
                "resubscribed_after_1101": resubscribed,
                "unmatched_restores": self.outage_log.unmatched_restores,
            },
            "latency_us": {"p50": stats.get("latency_p50_us"), "p99": stats.get("latency_p99_us"),
                           "measures": "frame arrival -> on_tick returned"},
            "rejected": {"count": int(stats.get("rejected", 0) or 0),
                         "by_reason": dict(stats.get("rejected_by_reason", {}) or {}),
                         "duplicates": int(stats.get("duplicates", 0) or 0),
                         "decode_errors": int(stats.get("decode_errors", 0) or 0)},
            "candles": {
                "built": sum(self.candles_by_interval.values()),
                "by_interval": {str(i): self.candles_by_interval[i] for i in self.candles.intervals},
                "filled": self.filled_candles,
                "late_ticks": self.candles.late_ticks,
            },
            "errors": {"count": self.error_count, "first": list(self.errors)},
            "memory": self._memory(run_start_x, run_end_x),
            "feed_stats": dict(stats),
        }

    def _memory(self, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        """The run's CME trading minutes: live, from history, missing (see the module docstring)."""
        first, last = _floor_minute(start), _floor_minute(end)
        spans = self.gap_spans()
        live = history = missing = 0
        m = first
        while m < last:
            if self.hours.is_open(m):
                span = next((s for s in spans if s[0] <= m < s[1]), None)
                if span is None:
                    live += 1
                elif self._supplied.get(span, (None, ""))[0] is not None:
                    history += 1
                else:
                    missing += 1
            m += _MINUTE
        return {
            "live_minutes": live, "history_minutes": history, "missing_minutes": missing,
            "gaps": len(self.outage_gaps),
            "spans": [{"start": _iso(a), "end": _iso(b), "bars": self._supplied.get((a, b), (None, ""))[0],
                       "filled": self._supplied.get((a, b), (None, ""))[0] is not None,
                       "why_not": self._supplied.get((a, b), (None, "not asked"))[1] or None}
                      for a, b in spans],
        }
