"""What a chart shows, without drawing it: a :class:`Chart` of one trading day (candles,
the LSE range, each setup's LIQ #1, consolidation, LIQ #2 and trigger, each trade's
entry, stop, target and exit, and the data's gaps, filled minutes and rolls), or of an
equity curve. :mod:`slob.research.render` draws a Chart as an interactive HTML page
(plotly) or a PNG (matplotlib); both read only this model, so the two pictures agree.

Pure: the inputs are candles, the tracker's events, trades and the store's connection
events; no I/O, no clock.

**The legend** (docs/backtesting.md shows it):

* candles: green rises, red falls; grey shading: *filled* minutes (no trade: a flat
  candle at the previous close), red shading: *gaps* (minutes missing inside CME hours,
  or an outage the feed recorded), a dashed violet line: a *roll* (the contract changed);
* the blue band: the LSE session's high and low, drawn over the LSE and NYSE sessions;
* per setup: a triangle at LIQ #1 (the sweep of the LSE level), an orange box for the
  consolidation, a diamond at LIQ #2 (the no-wick sweep), a cross at the trigger candle;
* per trade: a black circle at the entry, a red line for the stop and a green one for
  the target from the entry to the exit, and a star at the exit (green at the target,
  red at the stop).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence

from slob.market.sessions import lse_session, nyse_session
from slob.strategy.setup_tracker import SetupChanged, SetupEvent, State
from slob.model import Candle, ContractRolled, Gap

__all__ = ["Box", "Chart", "Level", "Marker", "Series", "Span", "day_chart", "equity_chart", "day_window"]

_MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in time and price: the LSE band, a consolidation."""

    start: dt.datetime
    end: dt.datetime
    low: float
    high: float
    kind: str  # "lse" | "consolidation"
    label: str


@dataclass(frozen=True, slots=True)
class Level:
    """A horizontal price line over [start, end]: a trade's entry, stop or target."""

    start: dt.datetime
    end: dt.datetime
    price: float
    kind: str  # "stop" | "target"
    label: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A point: ``kind`` liq1 | liq2 | trigger | entry | exit_target | exit_stop | exit_roll."""

    time: dt.datetime
    price: float
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time: ``kind`` gap | filled | roll (a roll is an instant: start == end)."""

    start: dt.datetime
    end: dt.datetime
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Series:
    """A line: the equity curve (drawn as steps)."""

    times: tuple[dt.datetime, ...]
    values: tuple[float, ...]
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    candles: tuple[Candle, ...] = ()
    boxes: tuple[Box, ...] = ()
    levels: tuple[Level, ...] = ()
    markers: tuple[Marker, ...] = ()
    spans: tuple[Span, ...] = ()
    series: tuple[Series, ...] = ()
    y_label: str = "price"
    #: The part worth a closer look: the setups and trades, with some minutes around them.
    focus: tuple[dt.datetime, dt.datetime] | None = None


class _TradeLike:
    """What a chart needs of a trade (a backtest Trade or a paper TradeRow)."""

    setup_id: str
    direction: str
    entry_time: dt.datetime
    entry_price: float
    exit_time: dt.datetime
    exit_price: float


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """What a day chart covers: the LSE session's open to the NYSE session's close."""
    return lse_session(day)[0], nyse_session(day)[1]


def _gaps(candles: Sequence[Candle], recorded: Iterable[Gap], start: dt.datetime, end: dt.datetime) -> list[Span]:
    from slob.testing.futures import is_cme_open

    spans = []
    for a, b in zip(candles, candles[1:]):
        if b.start > a.end and is_cme_open(a.end):
            minutes = (b.start - a.end) // _MINUTE
            spans.append(Span(a.end, b.start, "gap", f"{minutes} minute(s) missing"))
    for g in recorded:
        if g.end > start and g.start < end:
            spans.append(Span(max(g.start, start), min(g.end, end), "gap", f"outage: {g.cause}"))
    return spans


def _filled(candles: Sequence[Candle]) -> list[Span]:
    spans: list[Span] = []
    for c in candles:
        if not c.filled:
            continue
        if spans and spans[-1].end == c.start:
            last = spans[-1]
            spans[-1] = Span(last.start, c.end, "filled", last.label)
        else:
            spans.append(Span(c.start, c.end, "filled", "filled minute(s): no trade"))
    return spans


def _rolls(candles: Sequence[Candle], recorded: Iterable[ContractRolled], start: dt.datetime,
           end: dt.datetime) -> list[Span]:
    spans = [Span(b.start, b.start, "roll", f"roll {a.contract} -> {b.contract}")
             for a, b in zip(candles, candles[1:]) if a.contract != b.contract]
    seen = {s.start for s in spans}
    for r in recorded:
        if start <= r.at < end and r.at not in seen:
            spans.append(Span(r.at, r.at, "roll", f"roll {r.old} -> {r.new}"))
    return spans


def _extreme(candles: dict[dt.datetime, Candle], at: dt.datetime | None, short: bool) -> float | None:
    c = candles.get(at) if at is not None else None
    if c is None:
        return None
    return c.high if short else c.low


def day_chart(day: dt.date, candles: Sequence[Candle], events: Iterable[SetupEvent] = (),
              trades: Iterable[_TradeLike] = (), *, gaps: Iterable[Gap] = (), rolls: Iterable[ContractRolled] = (),
              title: str = "") -> Chart:
    """The chart of London weekday ``day`` (see the module docstring). ``candles``: the
    day's 1-minute candles (others are cut off); ``events``: the tracker's events over
    them; ``trades``: the trades to show (those entered within the window)."""
    start, end = day_window(day)
    trades = [t for t in trades if start <= t.entry_time < end]
    end = max([end] + [t.exit_time + 5 * _MINUTE for t in trades])
    shown = tuple(c for c in candles if start <= c.start < end)
    by_start = {c.start: c for c in shown}
    latest: dict[str, SetupChanged] = {}
    for e in events:
        if isinstance(e, SetupChanged) and e.day == day:
            latest[e.setup_id] = e
    boxes: list[Box] = []
    markers: list[Marker] = []
    levels: list[Level] = []
    lse = next(((e.lse_high, e.lse_low) for e in latest.values()), None)
    if lse is None:
        inside = [c for c in shown if c.start < lse_session(day)[1]]
        if inside:
            lse = (max(c.high for c in inside), min(c.low for c in inside))
    if lse is not None:
        boxes.append(Box(start, nyse_session(day)[1], lse[1], lse[0], "lse",
                         f"LSE range {lse[1]:,.2f} - {lse[0]:,.2f}"))
    for setup_id, e in latest.items():
        short = e.direction.value == "short"
        where = f"{setup_id}: {e.state.value}" + (f" ({e.reason})" if e.state is State.INVALIDATED else "")
        liq1 = _extreme(by_start, e.liq1_at, short)
        if liq1 is not None:
            markers.append(Marker(e.liq1_at, liq1, "liq1", f"LIQ #1 {where}"))
        if e.consolidation is not None:
            k = e.consolidation
            boxes.append(Box(k.start, k.end, k.low, k.high, "consolidation",
                             f"consolidation of {setup_id}: {k.candles} candles, {k.range_pct:.3f}%"))
        liq2 = _extreme(by_start, e.liq2_at, short)
        if liq2 is not None and e.liq2_at is not None:
            markers.append(Marker(e.liq2_at, liq2, "liq2", f"LIQ #2 {where}"))
        trigger = by_start.get(e.trigger_at) if e.trigger_at is not None else None
        if trigger is not None:
            markers.append(Marker(trigger.start, trigger.close, "trigger", f"trigger {where}"))
    for t in trades:
        markers.append(Marker(t.entry_time, t.entry_price, "entry",
                              f"entry {t.setup_id}: {t.direction} at {t.entry_price:,.2f}"))
        stop, target, by = getattr(t, "stop", None), getattr(t, "target", None), getattr(t, "exit_by", "")
        if stop is not None:
            levels.append(Level(t.entry_time, t.exit_time, float(stop), "stop", f"stop {float(stop):,.2f}"))
        if target is not None:
            levels.append(Level(t.entry_time, t.exit_time, float(target), "target", f"target {float(target):,.2f}"))
        if not by:
            won = (t.exit_price > t.entry_price) == (t.direction == "long")
            by = "target" if won else "stop"
        markers.append(Marker(t.exit_time, t.exit_price, f"exit_{by}",
                              f"exit {t.setup_id} at its {by}: {t.exit_price:,.2f}"))
    spans = _gaps(shown, gaps, start, end) + _filled(shown) + _rolls(shown, rolls, start, end)
    moments = [m.time for m in markers] + [b.end for b in boxes if b.kind == "consolidation"]
    focus = None
    if moments and shown:
        focus = (max(min(moments) - 15 * _MINUTE, shown[0].start), min(max(moments) + 15 * _MINUTE, shown[-1].end))
    return Chart(title or f"{shown[0].symbol if shown else ''} {day:%Y-%m-%d} (UTC)", shown, tuple(boxes),
                 tuple(levels), tuple(markers), tuple(spans), focus=focus)


def equity_chart(result: object, *, title: str = "equity") -> Chart:
    """The cumulative realized P&L of a backtest (``BacktestResult``) as a step line."""
    from slob.research.backtest import BacktestResult
    from slob.research.output import equity_curve

    assert isinstance(result, BacktestResult)
    points = equity_curve(result)
    return Chart(title, series=(Series(tuple(t for t, _ in points), tuple(v for _, v in points),
                                       "realized P&L, net of commissions (USD)"),), y_label="USD")
