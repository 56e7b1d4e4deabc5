"""The backtest: 1-minute candles -> the engine's SetupTracker -> the bracket fill model
(:mod:`slob.research.fills`) -> trades.

Pure and deterministic: no I/O but the optional ``ticks`` look-up, no clock, no
randomness; the same candles and configuration give the same trades. It follows the
paper engine step by step (:mod:`slob.live.live_trading_engine`), per candle:

1. a bracket placed at the previous candle's close enters at this candle's open (a
   market order);
2. every open bracket is checked against this candle (stop, target; see the fill model);
   a bracket whose contract is no longer the one traded -- the candles rolled to the next
   contract -- is closed at its contract's last close (``by="roll"``: its prices are gone);
3. the candle goes to the tracker; a setup that becomes TRIGGERED is placed at once,
   unless the engine's risk rules (:class:`~slob.execution.order_executor.RiskConfig`) refuse
   it: ``max_position`` contracts open at most, no new entry once the CME trading day's
   realized P&L is at or below ``-max_daily_loss``.

The tracker invalidates a setup whose contract changes (CONTRACT_CHANGED), so a setup is
never carried across a roll, exactly as live.

**Splitting.** The state that crosses a CME trading-day boundary is only the brackets
still open (and one placed but not yet entered): :attr:`BacktestResult.carry`. So a
range run in parts, each part given the previous part's carry, gives the same trades as
one run (tests/research prove it with hypothesis); parts run independently agree as
long as no bracket is open across the boundary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from slob.execution.daily_pnl import trading_day
from slob.execution.order_executor import RiskConfig
from slob.strategy.setup_tracker import SetupChanged, SetupConfig, SetupEvent, SetupTracker, State
from slob.model import Candle
from slob.ops.report import TradeRow
from slob.research.fills import Exit, FillConfig, Position, TickPrice, candle_exit, pnl, tick_exit

__all__ = ["BacktestConfig", "BacktestResult", "Backtester", "Skipped", "Ticks", "Trade", "run_backtest"]

#: The trades of one minute of one contract, or an empty sequence when unknown:
#: ``ticks(symbol, contract, start, end)``.
Ticks = Callable[[str, str, dt.datetime, dt.datetime], Sequence[TickPrice]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestConfig:
    """The strategy (the tracker's :class:`SetupConfig`), the engine's risk rules and the
    fill model. ``exact_ticks``: resolve the exit minute from its trades when they are
    known (a ``ticks`` look-up is given and holds as many trades as the candle)."""

    setup: SetupConfig = field(default_factory=SetupConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    fills: FillConfig = field(default_factory=FillConfig)
    exact_ticks: bool = True


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed bracket. ``exact``: its exit was found from the minute's trades."""

    setup_id: str
    symbol: str
    contract: str
    direction: str
    quantity: int
    signal_at: dt.datetime
    entry_time: dt.datetime
    entry_price: float
    stop: float
    target: float
    exit_time: dt.datetime
    exit_price: float
    exit_by: str
    commission: float
    pnl: float
    exact: bool

    @property
    def day(self) -> dt.date:
        """The CME trading day of the exit (where ``slob report`` counts a trade)."""
        return trading_day(self.exit_time)

    def row(self) -> TradeRow:
        """As ``slob report`` holds a trade, for its per-day figures."""
        return TradeRow(setup_id=self.setup_id, symbol=self.symbol, direction=self.direction,
                        quantity=float(self.quantity), entry_time=self.entry_time, entry_price=self.entry_price,
                        exit_time=self.exit_time, exit_price=self.exit_price, commission=self.commission,
                        pnl=self.pnl, pnl_source="backtest")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A triggered setup the engine's risk rules would not have placed."""

    setup_id: str
    at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What a run produced. ``events``: every tracker event (kept when asked for: charts
    need them); ``setups``: the last state of every setup, by id, in birth order."""

    trades: tuple[Trade, ...]
    skipped: tuple[Skipped, ...]
    carry: tuple[Position, ...]
    setups: dict[str, SetupChanged]
    events: tuple[SetupEvent, ...]
    candles: int
    first: dt.datetime | None
    last: dt.datetime | None

    @property
    def pnl(self) -> float:
        return sum(t.pnl for t in self.trades)

    def setup_states(self, day: dt.date | None = None) -> dict[str, int]:
        """How many setups ended in each state (of CME trading day ``day``, or all)."""
        out: dict[str, int] = defaultdict(int)
        for s in self.setups.values():
            if day is None or trading_day(s.at) == day:
                out[s.state.value] += 1
        return dict(out)


class Backtester:
    """Feed it candles in time order (:meth:`feed`), then read :meth:`result`.
    ``carry``: the brackets a previous part left open (see the module docstring)."""

    def __init__(self, config: BacktestConfig | None = None, *, symbol: str | None = None,
                 ticks: Ticks | None = None, carry: Iterable[Position] = (), keep_events: bool = False) -> None:
        self.config = config or BacktestConfig()
        self.tracker = SetupTracker(self.config.setup, symbol=symbol)
        self._ticks = ticks if self.config.exact_ticks else None
        self._pending: list[Position] = [p for p in carry if p.entry_time is None]
        self._open: list[Position] = [p for p in carry if p.entry_time is not None]
        self._trades: list[Trade] = []
        self._skipped: list[Skipped] = []
        self._setups: dict[str, SetupChanged] = {}
        self._events: list[SetupEvent] | None = [] if keep_events else None
        self._realized: dict[dt.date, float] = defaultdict(float)
        self._count = 0
        self._first: dt.datetime | None = None
        self._last: dt.datetime | None = None

    def feed(self, c: Candle) -> None:
        if self._first is None:
            self._first = c.start
        self._last = c.end
        self._count += 1
        if self._pending:
            self._enter(c)
        if self._open:
            self._exits(c)
        events = self.tracker.on_candle(c)
        if events:
            self._on_events(events)

    def run(self, candles: Iterable[Candle]) -> BacktestResult:
        feed = self.feed
        for c in candles:
            feed(c)
        return self.result()

    def result(self) -> BacktestResult:
        trades = sorted(self._trades, key=lambda t: (t.exit_time, t.setup_id))
        return BacktestResult(tuple(trades), tuple(self._skipped), tuple(self._pending + self._open),
                              dict(self._setups), tuple(self._events or ()), self._count, self._first, self._last)

    # -- steps ---------------------------------------------------------------------------

    def _enter(self, c: Candle) -> None:
        fills = self.config.fills
        for p in self._pending:
            if c.contract != p.contract:
                self._skipped.append(Skipped(p.setup_id, c.start, f"contract changed {p.contract} -> {c.contract} "
                                             "before the entry"))
                continue
            price = fills.slipped(c.open, buy=p.long)
            self._open.append(dataclasses.replace(p, entry_time=c.start, entry_price=price))
        self._pending = []

    def _exits(self, c: Candle) -> None:
        still: list[Position] = []
        for p in self._open:
            if c.contract != p.contract:
                assert p.last_close is not None and p.last_end is not None
                self._close(p, Exit(p.last_end, p.last_close, "roll"))
                continue
            first = p.entry_time == c.start
            found = candle_exit(p, c, self.config.fills, entry_candle=first)
            if found is not None and self._ticks is not None and c.trades > 0:
                trades = self._ticks(c.symbol, c.contract, c.start, c.end)
                if len(trades) == c.trades:
                    found = tick_exit(p, trades, self.config.fills, entry_candle=first) or found
            if found is None:
                still.append(dataclasses.replace(p, last_close=c.close, last_end=c.end))
            else:
                self._close(p, found)
        self._open = still

    def _close(self, p: Position, e: Exit) -> None:
        assert p.entry_time is not None and p.entry_price is not None
        net, commission = pnl(p, e.price, self.config.fills)
        trade = Trade(p.setup_id, p.symbol, p.contract, p.direction, p.quantity, p.signal_at, p.entry_time,
                      p.entry_price, p.stop, p.target, e.time, e.price, e.by, commission, net, e.exact)
        self._trades.append(trade)
        self._realized[trading_day(e.time)] += net

    def _on_events(self, events: list[SetupEvent]) -> None:
        if self._events is not None:
            self._events.extend(events)
        for e in events:
            if not isinstance(e, SetupChanged):
                continue
            self._setups[e.setup_id] = e
            if e.state is State.TRIGGERED:
                self._place(e)

    def _place(self, e: SetupChanged) -> None:
        risk = self.config.risk
        assert e.stop is not None and e.target is not None
        held = sum(p.quantity for p in self._open) + sum(p.quantity for p in self._pending)
        today = self._realized.get(trading_day(e.at), 0.0)
        reason = ""
        if today <= -risk.max_daily_loss:
            reason = f"daily loss limit reached (realized {today:.2f} USD on this trading day)"
        elif held + risk.contracts > risk.max_position:
            reason = f"position {held} + {risk.contracts} would exceed max_position {risk.max_position}"
        if reason:
            self._skipped.append(Skipped(e.setup_id, e.at, reason))
            return
        self._pending.append(Position(e.setup_id, e.symbol, e.contract, e.direction.value, risk.contracts, e.at,
                                      e.stop, e.target))


def run_backtest(candles: Iterable[Candle], config: BacktestConfig | None = None, *, symbol: str | None = None,
                 ticks: Ticks | None = None, carry: Iterable[Position] = (),
                 keep_events: bool = False) -> BacktestResult:
    """Run ``candles`` (one symbol's 1-minute candles, in time order) through a new
    :class:`Backtester`."""
    return Backtester(config, symbol=symbol, ticks=ticks, carry=carry, keep_events=keep_events).run(candles)
