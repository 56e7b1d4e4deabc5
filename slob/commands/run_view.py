"""What `slob run` shows while it runs: event lines and the live status.

:class:`RunWatch` follows the engine's event bus and says, one line each, what a user
watches for: the first trade, connection changes and gaps, rolls, setups, brackets,
fills, closed trades with their P&L, and cancels. Its :meth:`RunWatch.fields` are the
status figures -- connection state and server version, ticks/s and the last price,
candles, each live setup's tracker state, orders, fills, position, realized and open
P&L, gaps and reconnects, the warm-up once the engine reports one -- computed on the
event loop (:meth:`RunWatch.refresh`) and read by the display's thread as a finished list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import TYPE_CHECKING, Any, Callable

from slob.commands.live_view import Fields, Rate

if TYPE_CHECKING:
    from slob.live.live_trading_engine import LiveTradingEngine
    from slob.execution.order_executor import BracketPlaced, SetupSkipped
    from slob.strategy.setup_tracker import SetupChanged
    from slob.model import CandleClosed, ConnectionLost, ConnectionRestored, ContractRolled, ErrorReported, Gap, Tick
    from slob.orders import CommissionReported, Execution, OrderError

__all__ = ["RunWatch"]

_ROLES = ("entry", "target", "stop")


class RunWatch:
    """``say`` gets the event lines, ``error`` the lines for stderr. ``multiplier(symbol)``
    is the contract's multiplier (USD per point) for the open P&L."""

    def __init__(self, engine: LiveTradingEngine, say: Callable[[str], None], error: Callable[[str], None],
                 multiplier: Callable[[str], float]) -> None:
        self.engine, self.say, self.error, self.multiplier = engine, say, error, multiplier
        self.rate = Rate()
        self.snapshot: Fields | None = None
        self.ticks = 0
        self.last: dict[str, Tick] = {}  # symbol -> its latest trade
        self.candles: dict[int, int] = {}  # interval seconds -> closed candles
        self.setups: dict[str, SetupChanged] = {}  # setup id -> its latest change
        self.brackets: dict[int, tuple[str, str]] = {}  # order id -> (setup id, role)
        self.bracket_count = 0
        self.fills = 0
        self.closed = 0
        self.realized = 0.0  # from this run's commission reports
        self._avg: dict[str, float] = {}  # contract -> average price of the open position (this run's fills)
        self._held: dict[str, float] = {}  # contract -> signed position from this run's fills
        self._symbol_of: dict[str, str] = {}  # contract -> subscribed symbol
        self._exec: dict[str, Execution] = {}
        self._waiting = {s.upper() for s in engine.symbols}
        self._unsubscribe: list[Callable[[], None]] = []

    # -- wiring ----------------------------------------------------------------------------

    def attach(self) -> None:
        from slob.execution.order_executor import BracketPlaced, SetupSkipped
        from slob.strategy.setup_tracker import SetupChanged
        from slob.model import (CandleClosed, ConnectionLost, ConnectionRestored, ContractRolled, ErrorReported, Gap,
                                Tick)
        from slob.orders import CommissionReported, Execution, OrderError

        handlers: list[tuple[type, Callable[[Any], None]]] = [
            (Tick, self.tick), (CandleClosed, self.candle), (ConnectionLost, self.lost),
            (ConnectionRestored, self.restored), (Gap, self.gap), (ContractRolled, self.rolled),
            (SetupChanged, self.setup), (BracketPlaced, self.bracket), (SetupSkipped, self.skipped),
            (Execution, self.execution), (CommissionReported, self.commission), (OrderError, self.order_error),
            (ErrorReported, self.reported)]
        self._unsubscribe = [self.engine.bus.subscribe(kind, handler) for kind, handler in handlers]

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    async def refresh_forever(self, every: float = 0.25) -> None:
        """Recompute the status figures every ``every`` seconds (on the loop)."""
        while True:
            self.refresh()
            await asyncio.sleep(every)

    def refresh(self) -> None:
        self.snapshot = self.fields()

    # -- events ----------------------------------------------------------------------------

    def tick(self, tick: Tick) -> None:
        self.ticks += 1
        self.last[tick.symbol] = tick
        self._symbol_of[tick.contract] = tick.symbol
        if tick.symbol in self._waiting:
            self._waiting.discard(tick.symbol)
            delayed = " (delayed)" if tick.delayed else ""
            self.say(f"{tick.symbol}: first trade {tick.price:.2f} x {tick.size:g} on {tick.contract} "
                     f"at {tick.timestamp:%Y-%m-%d %H:%M:%S} UTC{delayed}")

    def candle(self, event: CandleClosed) -> None:
        n = event.candle.interval_seconds
        self.candles[n] = self.candles.get(n, 0) + 1

    def lost(self, event: ConnectionLost) -> None:
        self.say(f"connection lost ({event.cause}); reconnecting")

    def restored(self, event: ConnectionRestored) -> None:
        self.say(f"connection restored ({event.cause})" + ("; data was lost, resubscribed" if event.data_lost else ""))

    def gap(self, event: Gap) -> None:
        self.say(f"gap {event.start:%Y-%m-%d %H:%M:%S} -> {event.end:%H:%M:%S} UTC ({_span(event.seconds)}): "
                 f"{event.cause}")

    def rolled(self, event: ContractRolled) -> None:
        self.say(f"{event.symbol}: rolled {event.old} -> {event.new}")

    def setup(self, event: SetupChanged) -> None:
        self.setups[event.setup_id] = event
        self.say(f"setup {event.setup_id} {event.direction.value} {event.state.value}"
                 + (f": {event.reason}" if event.reason else ""))

    def bracket(self, event: BracketPlaced) -> None:
        self.bracket_count += 1
        for order_id, role in zip((event.parent_id, event.take_profit_id, event.stop_id), _ROLES):
            self.brackets[order_id] = (event.setup_id, role)
        self.say(f"orders for {event.setup_id}: {event.direction} {event.quantity} {event.contract}, "
                 f"stop {event.stop:.2f}, target {event.target:.2f}")

    def skipped(self, event: SetupSkipped) -> None:
        self.say(f"setup {event.setup_id} not traded: {event.reason}")

    def execution(self, e: Execution) -> None:
        if e.exec_id in self._exec:
            return  # a reconciliation's copy of a fill already shown
        self._exec[e.exec_id] = e
        self.fills += 1
        signed = e.shares if e.side == "BOT" else -e.shares
        held = self._held.get(e.contract, 0.0)
        if held == 0 or (held > 0) == (signed > 0):
            self._avg[e.contract] = (self._avg.get(e.contract, 0.0) * abs(held) + e.price * abs(signed)) / (
                abs(held) + abs(signed))
        self._held[e.contract] = held + signed
        setup, role = self.brackets.get(e.order_id, (e.order_ref or "?", "fill"))
        position = self.engine.executor.position if self.engine.executor is not None else held + signed
        self.say(f"fill {e.side} {e.shares:g} {e.contract} @ {e.price:.2f} at {e.time:%H:%M:%S} UTC "
                 f"({role} of {setup}, order {e.order_id}); position {position:+g}")

    def commission(self, c: CommissionReported) -> None:
        if c.realized_pnl is None:
            return  # an opening fill: nothing realized yet
        self.realized += c.realized_pnl
        self.closed += 1
        fill = self._exec.get(c.exec_id)
        setup, role = self.brackets.get(fill.order_id, (fill.order_ref or "?", "exit")) if fill else ("?", "exit")
        total = self.engine.executor.realized_pnl if self.engine.executor is not None else self.realized
        self.say(f"trade {setup} closed" + (f" at its {role}" if role in ("target", "stop") else "")
                 + f": {c.realized_pnl:+,.2f} USD (commission {c.commission:.2f}); realized {total:+,.2f} USD")

    def order_error(self, e: OrderError) -> None:
        setup, role = self.brackets.get(e.order_id, ("", ""))
        if e.code == 202 and role in ("target", "stop"):
            other = "stop" if role == "target" else "target"
            filled = any(self.brackets.get(f.order_id) == (setup, other) for f in self._exec.values())
            self.say(f"order {e.order_id} ({role} of {setup}) cancelled"
                     + (f": its {other} filled (one cancels the other)" if filled else ""))
        elif e.code == 202:
            self.say(f"order {e.order_id} cancelled")
        else:
            self.error(f"order {e.order_id}: IB error {e.code}: {e.text}")

    def reported(self, event: ErrorReported) -> None:
        self.error(f"{event.where}: {event.error}")

    # -- the status ------------------------------------------------------------------------

    def fields(self) -> Fields:
        stats = self.engine.get_stats()
        feed: dict[str, Any] = stats.get("feed") or {}
        orders: dict[str, Any] | None = stats.get("orders")
        state = str(feed.get("state") or ("connected" if feed.get("connected") else "disconnected"))
        version = feed.get("server_version")
        rows: Fields = [
            ("connection", f"{state}" + (f", server v{version}" if version else "")),
            ("ticks", f"{self.ticks:,} ({self.rate(self.ticks):,.0f}/s)"),
            ("last", "; ".join(f"{t.contract} {t.price:.2f} at {t.timestamp:%H:%M:%S}" for t in self.last.values())
             or "no trade yet"),
            ("candles", f"{self.candles.get(60, 0):,} x 1 min, {self.candles.get(300, 0):,} x 5 min"),
            ("setups", self._live_setups()),
        ]
        warmup = stats.get("warmup")
        if warmup:
            rows.append(("warm-up", _compact(warmup)))
        if orders is not None:
            position = float(orders.get("position") or 0.0)
            rows += [
                ("orders", f"{self.bracket_count} brackets, {self.fills} fills, {self.closed} closed"),
                ("position", f"{position:+g}" + (f" {self._contract()}" if position and self._contract() else "")),
                ("realized P&L", f"{float(orders.get('realized_pnl') or 0.0):+,.2f} USD"),
                ("open P&L", self._open_pnl(position)),
            ]
        rows += [
            ("gaps", f"{feed.get('gaps', 0)}" + (f" (+ restart gap {stats['restart_gap']:.0f} s)"
                                                 if stats.get("restart_gap") else "")),
            ("reconnects", f"{feed.get('reconnects', 0)}, outages {feed.get('outages', 0)}"),
        ]
        return rows

    def _live_setups(self) -> str:
        """Each setup the tracker still follows, with its state, and each one in a trade."""
        filled = {self.brackets[f.order_id] for f in self._exec.values() if f.order_id in self.brackets}
        shown = []
        for e in self.setups.values():
            in_trade = (e.setup_id, "entry") in filled and not any(
                (e.setup_id, role) in filled for role in ("target", "stop"))
            if e.state.live or in_trade:
                shown.append(f"{e.setup_id} {e.state.value}" + (", in trade" if in_trade else ""))
        return ", ".join(shown) or f"none live ({len(self.setups)} seen)"

    def _contract(self) -> str:
        held = [c for c, n in self._held.items() if n]
        return held[0] if len(held) == 1 else ""

    def _open_pnl(self, position: float) -> str:
        """The open position marked at the last trade; '-' when it was opened before this
        run (its average price is not known here)."""
        if not position:
            return "+0.00 USD"
        if sum(self._held.values()) != position:
            return "- (position from before this run)"
        total = 0.0
        for contract, held in self._held.items():
            symbol = self._symbol_of.get(contract, "")
            tick = self.last.get(symbol)
            if not held or tick is None or tick.contract != contract:
                return "-"
            total += held * (tick.price - self._avg[contract]) * self.multiplier(symbol)
        return f"{total + 0.0:+,.2f} USD" if math.isfinite(total) else "-"


def _span(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _compact(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    return str(value)
