"""The paper-trading validation report: pure computations over what the store recorded.

The original design asks for a report before any go-live decision; ``slob report``
(:mod:`slob.commands.report`) reads the store and hands the records to
:func:`build_report`, which computes everything here without I/O or clock (``now`` is
an input), so the numbers are reproducible and unit-testable.

**Days.** A *trading day* is CME's: day D runs from 17:00 Chicago on D-1 to 17:00
Chicago on D (the Globex session D-1 17:00 -> D 16:00, then the daily halt). Every
record is assigned to the trading day of its time (UTC in the store).

**Uptime** = covered time / trading time, per day and in total:

* *trading time*: the CME Globex hours of the day (Sunday 17:00 to Friday 16:00 Chicago,
  halt 16:00-17:00; exchange holidays are not modelled), cut off at ``now`` so today's
  report only counts hours that have passed.
* *covered time*: the minutes for which the store holds data -- at least one tick, or a
  stored 1-minute candle (the engine writes a flat ``filled`` candle for a quiet minute
  while it runs, so a quiet market is not an outage) -- minus every recorded outage:
  each ``Gap`` (start..end) the feed recorded after a reconnect or an IB 1100 -> 1101/1102,
  and each ``ConnectionLost`` that no gap closed (the engine stopped or gave up during
  the outage), from its time until the next minute with real trades. The flat candles
  the engine fills in across an outage therefore do not count as data.
* *gaps*: the stretches of trading time that are not covered. Each gap gets the causes
  of the recorded outages it overlaps, or ``no data recorded`` (the engine was not
  running, or the feed was silent without TWS saying why).

**Market memory** (docs/history.md) tells three kinds of minutes apart: *live* coverage
(above: what the engine saw on its socket), *history-filled* minutes -- trading time not
covered live whose 1-minute candle came from IB's history (warm-up, gap fill, ``slob
history``; ``history_minutes``) -- and minutes still *missing*, neither. A gap row is
``filled`` when history supplied every minute of it. Uptime stays the live figure.

**Trades** are closed brackets: the fills of each setup's orders (``orders.setup_id`` is
IB's ``orderRef``), in time order, from the first fill until the position is flat again.
A trade belongs to the trading day of its exit. Its P&L is IB's realized P&L of the
closing fills, which IB reports net of both legs' commissions; when a closing fill has
no commission report stored, the P&L is computed from the fill prices x the contract
multiplier minus the commissions stored (``pnl_source="prices"``). A win is a trade with
P&L > 0; the win rate is wins / trades with a P&L.

**Max drawdown** is the largest fall of the cumulative realized P&L curve (trades in exit
order, the curve starting at 0) from its running peak, as a positive amount: per day on
that day's trades alone, in total on all trades of the range.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from slob.market.sessions import CmeHours
from slob.store.store import ConnectionEvent, ErrorEvent, FillRecord, OrderRecord, SetupRecord
from slob.model import ConnectionLost, ConnectionRestored, ContractRolled, Gap

__all__ = [
    "MULTIPLIERS", "NO_DATA", "DayReport", "Report", "ReportInput", "TradeRow",
    "build_report", "day_bounds", "max_drawdown", "report_json", "trade_days", "trading_day",
]

CHICAGO = ZoneInfo("America/Chicago")
UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_DAY_TURN = dt.time(17, 0)  # a CME trading day starts at 17:00 Chicago the evening before
_EPS = 1e-9

#: Contract multipliers (USD per index point) of the roots slob trades.
MULTIPLIERS: Mapping[str, float] = {"NQ": 20.0, "MNQ": 2.0, "ES": 50.0, "MES": 5.0}
#: The cause of a gap no recorded outage explains.
NO_DATA = "no data recorded"

Span = tuple[float, float]  # [start, end) in seconds since the epoch


def trading_day(t: dt.datetime) -> dt.date:
    """The CME trading day of ``t``: 17:00 Chicago and later belongs to the next date."""
    local = t.astimezone(CHICAGO)
    return local.date() + dt.timedelta(days=1) if local.time() >= _DAY_TURN else local.date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Trading day ``day`` as [17:00 Chicago the day before, 17:00 Chicago), in UTC."""
    start = dt.datetime.combine(day - dt.timedelta(days=1), _DAY_TURN, tzinfo=CHICAGO)
    end = dt.datetime.combine(day, _DAY_TURN, tzinfo=CHICAGO)
    return start.astimezone(UTC), end.astimezone(UTC)


# -- inputs and results --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportInput:
    """Everything the report is computed from.

    ``tick_minutes`` maps a minute (minutes since the epoch, UTC) to its number of stored
    ticks; ``candle_minutes`` maps each minute with a stored 1-minute candle to its trade
    count (0 for a flat, filled candle); ``history_minutes`` the minutes whose stored
    candle came from IB's history (they may be in ``candle_minutes`` too: they count as
    history, not live). ``events``, ``setups``, ``orders`` and ``fills``
    may reach outside the range; they are assigned to days here.
    """

    first: dt.date
    last: dt.date
    now: dt.datetime
    tick_minutes: Mapping[int, int] = field(default_factory=dict)
    candle_minutes: Mapping[int, int] = field(default_factory=dict)
    events: Sequence[ConnectionEvent] = ()
    history_minutes: Mapping[int, int] = field(default_factory=dict)
    setups: Sequence[SetupRecord] = ()
    orders: Sequence[OrderRecord] = ()
    fills: Sequence[FillRecord] = ()
    hours: CmeHours = field(default_factory=CmeHours.default)


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One closed bracket: the fills of one setup from flat to flat."""

    setup_id: str
    symbol: str
    direction: str  # "long" | "short"
    quantity: float
    entry_time: dt.datetime
    entry_price: float
    exit_time: dt.datetime
    exit_price: float
    commission: float
    pnl: float | None  # net of commissions; None when it cannot be known
    pnl_source: str  # "ib" (IB's realized P&L), "prices" (computed from fills), "unknown"


@dataclass(frozen=True, slots=True)
class DayReport:
    """One trading day (``day``), or the whole range (``day=None``)."""

    day: dt.date | None
    trading_seconds: float
    covered_seconds: float
    gaps: tuple[Gap, ...]
    outages: int  # ConnectionLost events
    reconnects_socket: int  # ConnectionRestored after a new socket session
    reconnects_ib: int  # ConnectionRestored by IB 1101/1102 (or 10182)
    rolls: int
    errors: int
    ticks: int
    setup_states: Mapping[str, int]
    trades: tuple[TradeRow, ...]
    open_trades: int
    history_seconds: float = 0.0  # trading time not covered live, supplied by IB's history

    @property
    def uptime(self) -> float | None:
        return self.covered_seconds / self.trading_seconds if self.trading_seconds > 0 else None

    @property
    def missing_seconds(self) -> float:
        """Trading time neither covered live nor filled from history."""
        return max(0.0, self.trading_seconds - self.covered_seconds - self.history_seconds)

    @property
    def gap_seconds(self) -> float:
        return sum(g.seconds for g in self.gaps)

    @property
    def reconnects(self) -> int:
        return self.reconnects_socket + self.reconnects_ib

    @property
    def setups(self) -> int:
        return sum(self.setup_states.values())

    @property
    def invalidated(self) -> int:
        return self.setup_states.get("invalidated", 0)

    @property
    def priced(self) -> tuple[TradeRow, ...]:
        """The trades whose P&L is known."""
        return tuple(t for t in self.trades if t.pnl is not None)

    @property
    def wins(self) -> int:
        return sum(1 for t in self.priced if t.pnl is not None and t.pnl > 0)

    @property
    def losses(self) -> int:
        return len(self.priced) - self.wins

    @property
    def win_rate(self) -> float | None:
        return self.wins / len(self.priced) if self.priced else None

    @property
    def pnl(self) -> float:
        return sum(t.pnl for t in self.priced if t.pnl is not None)

    @property
    def commissions(self) -> float:
        return sum(t.commission for t in self.trades)

    @property
    def max_drawdown(self) -> float:
        return max_drawdown(t.pnl for t in self.priced if t.pnl is not None)


@dataclass(frozen=True, slots=True)
class Report:
    first: dt.date
    last: dt.date
    now: dt.datetime
    days: tuple[DayReport, ...]  # days with trading hours or any record, in order
    total: DayReport
    unattributed_fills: int  # fills whose order has no setup id

    @property
    def empty(self) -> bool:
        """Nothing recorded in the range (trading hours without data do not count)."""
        t = self.total
        return not (t.ticks or t.covered_seconds or t.outages or t.reconnects or t.rolls or t.errors
                    or t.setups or t.trades or t.open_trades or self.unattributed_fills)


# -- spans ---------------------------------------------------------------------------------


def _seconds(t: dt.datetime) -> float:
    return (t - _EPOCH).total_seconds()


def _time(seconds: float) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds)


def _union(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    """Both merged and sorted."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a: list[Span], b: list[Span]) -> list[Span]:
    """``a`` without ``b``; both merged and sorted."""
    out: list[Span] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > start:
                out.append((start, b[k][0]))
            start = max(start, b[k][1])
            k += 1
        if end > start:
            out.append((start, end))
    return out


def _length(spans: Iterable[Span]) -> float:
    return sum((end - start for start, end in spans), 0.0)


def _minute_spans(minutes: Iterable[int]) -> list[Span]:
    return _union((m * 60.0, m * 60.0 + 60.0) for m in minutes)


def _trading_spans(hours: CmeHours, start: dt.datetime, end: dt.datetime) -> list[Span]:
    """CME trading hours within [start, end)."""
    spans: list[Span] = []
    t = start
    while t < end:
        opens = hours.next_open(t)
        if opens >= end:
            break
        bounds = hours.session_bounds(opens)
        assert bounds is not None
        close = min(bounds[1], end)
        spans.append((_seconds(opens), _seconds(close)))
        t = close
    return _union(spans)


# -- outages and gaps ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outage:
    start: float
    end: float
    cause: str


def _outages(events: Sequence[ConnectionEvent], data_minutes: Sequence[int], horizon: float) -> list[_Outage]:
    """Recorded gaps, and losses no gap closed (until the next minute with trades)."""
    gaps = [e for e in events if isinstance(e, Gap)]
    out = [_Outage(_seconds(g.start), _seconds(g.end), g.cause or "outage") for g in gaps]
    spans = [(o.start, o.end) for o in out]
    starts = sorted(m * 60.0 for m in set(data_minutes))
    for e in events:
        if not isinstance(e, ConnectionLost):
            continue
        at = _seconds(e.at)
        if any(start - _EPS <= at <= end + _EPS for start, end in spans):
            continue
        i = bisect_right(starts, at)
        end = starts[i] if i < len(starts) else max(horizon, at)
        out.append(_Outage(at, end, f"{e.cause or 'connection lost'} (no reconnect recorded)"))
    return out


def _gap_rows(uncovered: list[Span], outages: list[_Outage], filled: list[Span]) -> list[Gap]:
    rows = []
    for start, end in uncovered:
        causes = list(dict.fromkeys(o.cause for o in outages if o.start < end and o.end > start))
        whole = not _subtract([(start, end)], filled)
        rows.append(Gap(_time(start), _time(end), "; ".join(causes) or NO_DATA, filled=whole))
    return rows


# -- trades --------------------------------------------------------------------------------


def _symbol(setup_id: str, setups: Mapping[str, SetupRecord]) -> str:
    record = setups.get(setup_id)
    return record.symbol if record is not None else setup_id.split("-", 1)[0]


def _trade(setup_id: str, symbol: str, fills: list[FillRecord]) -> TradeRow:
    sign = 1.0 if fills[0].quantity > 0 else -1.0
    entries = [f for f in fills if f.quantity * sign > 0]
    exits = [f for f in fills if f.quantity * sign < 0]
    qty = sum(abs(f.quantity) for f in entries)
    exit_qty = sum(abs(f.quantity) for f in exits)
    commission = sum(f.commission or 0.0 for f in fills)
    multiplier = MULTIPLIERS.get(symbol.upper())
    pnl: float | None
    if all(f.realized_pnl is not None for f in exits):
        pnl, source = sum(f.realized_pnl or 0.0 for f in fills), "ib"
    elif multiplier is not None:
        pnl, source = -sum(f.quantity * f.price for f in fills) * multiplier - commission, "prices"
    else:
        pnl, source = None, "unknown"
    return TradeRow(
        setup_id=setup_id, symbol=symbol, direction="long" if sign > 0 else "short", quantity=qty,
        entry_time=entries[0].time, entry_price=sum(abs(f.quantity) * f.price for f in entries) / qty,
        exit_time=exits[-1].time, exit_price=sum(abs(f.quantity) * f.price for f in exits) / exit_qty,
        commission=commission, pnl=pnl, pnl_source=source,
    )


def _trades(orders: Sequence[OrderRecord], fills: Sequence[FillRecord],
            setups: Mapping[str, SetupRecord]) -> tuple[list[TradeRow], list[dt.datetime]]:
    """Closed trades, and the entry times of trades still open (fills without a setup id
    cannot be attributed and are left out)."""
    setup_of = {o.order_id: o.setup_id for o in orders}
    by_setup: dict[str, list[FillRecord]] = {}
    for f in sorted(fills, key=lambda f: (f.time, f.exec_id)):
        setup_id = setup_of.get(f.order_id)
        if not setup_id:
            continue
        by_setup.setdefault(setup_id, []).append(f)
    closed: list[TradeRow] = []
    still_open: list[dt.datetime] = []
    for setup_id, group in by_setup.items():
        symbol = _symbol(setup_id, setups)
        current: list[FillRecord] = []
        position = 0.0
        for f in group:
            if f.quantity == 0:
                continue
            current.append(f)
            position += f.quantity
            if abs(position) < _EPS:
                closed.append(_trade(setup_id, symbol, current))
                current, position = [], 0.0
        if current:
            still_open.append(current[0].time)
    closed.sort(key=lambda t: (t.exit_time, t.setup_id))
    return closed, still_open


def max_drawdown(pnls: Iterable[float]) -> float:
    """The largest fall of the cumulative sum of ``pnls`` (starting at 0) from its running
    peak; 0.0 when it never falls."""
    total = peak = worst = 0.0
    for pnl in pnls:
        total += pnl
        peak = max(peak, total)
        worst = max(worst, peak - total)
    return worst


# -- the report ----------------------------------------------------------------------------


def build_report(data: ReportInput) -> Report:
    """The report of trading days ``data.first`` .. ``data.last`` (inclusive)."""
    if data.last < data.first:
        raise ValueError(f"the range ends ({data.last}) before it starts ({data.first})")
    if data.now.tzinfo is None:
        raise ValueError("now must be tz-aware")
    now = _seconds(data.now)
    history = set(data.history_minutes)
    live_candles = {m: n for m, n in data.candle_minutes.items() if m not in history}
    evidence = _minute_spans(set(data.tick_minutes) | set(live_candles))
    history_spans = _minute_spans(history)
    traded = [m for m, n in data.tick_minutes.items() if n > 0]
    traded += [m for m, n in live_candles.items() if n > 0]
    outages = _outages(data.events, traded, now)
    outage_spans = _union((o.start, o.end) for o in outages)
    setups = {s.id: s for s in data.setups}
    closed, still_open = _trades(data.orders, data.fills, setups)

    days: list[DayReport] = []
    day = data.first
    while day <= data.last:
        lo, hi = day_bounds(day)
        trading = _trading_spans(data.hours, lo, min(hi, data.now)) if lo < data.now else []
        covered = _subtract(_intersect(evidence, trading), outage_spans)
        uncovered = _subtract(trading, covered)
        filled = _intersect(uncovered, history_spans)
        events = [e for e in data.events if trading_day(_event_time(e)) == day]
        start_minute, end_minute = int(_seconds(lo)) // 60, int(_seconds(hi)) // 60
        report = DayReport(
            day=day,
            trading_seconds=_length(trading),
            covered_seconds=_length(covered),
            gaps=tuple(_gap_rows(uncovered, outages, filled)),
            outages=sum(1 for e in events if isinstance(e, ConnectionLost)),
            reconnects_socket=sum(1 for e in events if isinstance(e, ConnectionRestored)
                                  and not e.cause.startswith("IB ")),
            reconnects_ib=sum(1 for e in events if isinstance(e, ConnectionRestored) and e.cause.startswith("IB ")),
            rolls=sum(1 for e in events if isinstance(e, ContractRolled)),
            errors=sum(1 for e in events if isinstance(e, ErrorEvent)),
            ticks=sum(n for m, n in data.tick_minutes.items() if start_minute <= m < end_minute),
            setup_states=dict(Counter(s.state for s in data.setups if trading_day(s.created) == day)),
            trades=tuple(t for t in closed if trading_day(t.exit_time) == day),
            open_trades=sum(1 for t in still_open if trading_day(t) == day),
            history_seconds=_length(filled),
        )
        if report.trading_seconds > 0 or _active(report):
            days.append(report)
        day += dt.timedelta(days=1)

    states: Counter[str] = Counter()
    for d in days:
        states.update(d.setup_states)
    total = DayReport(
        day=None,
        trading_seconds=sum(d.trading_seconds for d in days),
        covered_seconds=sum(d.covered_seconds for d in days),
        gaps=tuple(g for d in days for g in d.gaps),
        outages=sum(d.outages for d in days),
        reconnects_socket=sum(d.reconnects_socket for d in days),
        reconnects_ib=sum(d.reconnects_ib for d in days),
        rolls=sum(d.rolls for d in days),
        errors=sum(d.errors for d in days),
        ticks=sum(d.ticks for d in days),
        setup_states=dict(states),
        trades=tuple(t for d in days for t in d.trades),
        open_trades=sum(d.open_trades for d in days),
        history_seconds=sum(d.history_seconds for d in days),
    )
    setup_of = {o.order_id: o.setup_id for o in data.orders}
    unattributed = sum(1 for f in data.fills
                       if not setup_of.get(f.order_id) and data.first <= trading_day(f.time) <= data.last)
    return Report(data.first, data.last, data.now, tuple(days), total, unattributed)


def trade_days(days: Iterable[dt.date], trades: Sequence[TradeRow],
               setup_states: Mapping[dt.date, Mapping[str, int]] | None = None,
               open_trades: Mapping[dt.date, int] | None = None) -> tuple[tuple[DayReport, ...], DayReport]:
    """The trade figures of :func:`build_report` (trades, wins, win rate, P&L,
    commissions, max drawdown: :class:`DayReport`'s properties) for trades that do not
    come from the store -- a backtest's -- per trading day of ``days`` and in total. A
    trade belongs to the trading day of its exit, as in the report; the uptime fields are
    zero (there was no feed to measure)."""
    states = setup_states or {}
    opened = open_trades or {}
    out = []
    for day in sorted(set(days)):
        out.append(DayReport(day=day, trading_seconds=0.0, covered_seconds=0.0, gaps=(), outages=0,
                             reconnects_socket=0, reconnects_ib=0, rolls=0, errors=0, ticks=0,
                             setup_states=dict(states.get(day, {})),
                             trades=tuple(t for t in trades if trading_day(t.exit_time) == day),
                             open_trades=opened.get(day, 0)))
    total_states: Counter[str] = Counter()
    for d in out:
        total_states.update(d.setup_states)
    total = DayReport(day=None, trading_seconds=0.0, covered_seconds=0.0, gaps=(), outages=0, reconnects_socket=0,
                      reconnects_ib=0, rolls=0, errors=0, ticks=0, setup_states=dict(total_states),
                      trades=tuple(t for d in out for t in d.trades), open_trades=sum(d.open_trades for d in out))
    return tuple(out), total


def _event_time(e: ConnectionEvent) -> dt.datetime:
    return e.start if isinstance(e, Gap) else e.at


def _active(d: DayReport) -> bool:
    return bool(d.ticks or d.covered_seconds or d.outages or d.reconnects or d.rolls or d.errors
                or d.setups or d.trades or d.open_trades)


# -- JSON ----------------------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(x: float) -> float:
    return round(x, 2) + 0.0


def _day_json(d: DayReport) -> dict[str, Any]:
    return {
        "day": d.day.isoformat() if d.day else "total",
        "trading_seconds": round(d.trading_seconds, 3),
        "covered_seconds": round(d.covered_seconds, 3),
        "uptime": None if d.uptime is None else round(d.uptime, 6),
        "history_seconds": round(d.history_seconds, 3),
        "missing_seconds": round(d.missing_seconds, 3),
        "gaps": len(d.gaps),
        "gaps_filled": sum(1 for g in d.gaps if g.filled),
        "gap_seconds": round(d.gap_seconds, 3),
        "outages": d.outages,
        "reconnects": d.reconnects,
        "reconnects_socket": d.reconnects_socket,
        "reconnects_ib": d.reconnects_ib,
        "rolls": d.rolls,
        "errors": d.errors,
        "ticks": d.ticks,
        "setups_found": d.setups,
        "setups_invalidated": d.invalidated,
        "setup_states": dict(sorted(d.setup_states.items())),
        "trades": len(d.trades),
        "open_trades": d.open_trades,
        "wins": d.wins,
        "losses": d.losses,
        "win_rate": None if d.win_rate is None else round(d.win_rate, 6),
        "pnl": _money(d.pnl),
        "commissions": _money(d.commissions),
        "max_drawdown": _money(d.max_drawdown),
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (times ISO 8601 UTC, money in USD rounded to cents)."""
    causes: dict[str, dict[str, float]] = {}
    for g in report.total.gaps:
        entry = causes.setdefault(g.cause, {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + g.seconds, 3)
    return {
        "from": report.first.isoformat(),
        "to": report.last.isoformat(),
        "generated": _iso(report.now),
        "empty": report.empty,
        "days": [_day_json(d) for d in report.days],
        "total": _day_json(report.total),
        "gaps": [{"start": _iso(g.start), "end": _iso(g.end), "seconds": round(g.seconds, 3), "cause": g.cause,
                  "filled": g.filled} for g in report.total.gaps],
        "gap_causes": causes,
        "trades": [{
            "setup_id": t.setup_id, "symbol": t.symbol, "direction": t.direction, "quantity": t.quantity,
            "entry_time": _iso(t.entry_time), "entry_price": t.entry_price,
            "exit_time": _iso(t.exit_time), "exit_price": t.exit_price,
            "commission": _money(t.commission), "pnl": None if t.pnl is None else _money(t.pnl),
            "pnl_source": t.pnl_source,
        } for t in report.total.trades],
        "unattributed_fills": report.unattributed_fills,
    }
