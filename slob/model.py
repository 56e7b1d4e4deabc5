"""slob's shared vocabulary: market records and events, as frozen slotted dataclasses.

Imported by ``slob.ib`` and ``slob.live`` alike (``slob.live`` re-exports them). Times are
tz-aware UTC datetimes; ``received_ns`` is ``time.monotonic_ns()`` when the frame that
carried the record arrived, so latency can be measured end to end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")

__all__ = [
    "Candle",
    "CandleClosed",
    "ConnectionLost",
    "ConnectionRestored",
    "ContractRolled",
    "ErrorReported",
    "Gap",
    "HistoryFilled",
    "HistoryUnavailable",
    "Quote",
    "Tick",
    "fast_constructor",
    "new_tick",
]


@dataclass(frozen=True, slots=True)
class Tick:
    """One trade.

    ``symbol`` is what was subscribed (``"NQ"``); ``contract`` the local symbol of the
    contract that traded (``"NQZ4"``). ``timestamp`` is the exchange time (1-second
    resolution from IB); ``delayed`` marks delayed market data (15-20 minutes late).
    """

    symbol: str
    price: float
    size: float
    timestamp: dt.datetime
    exchange: str
    contract: str
    received_ns: int
    delayed: bool = False


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and offer after a change (tick-by-tick BidAsk)."""

    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    timestamp: dt.datetime
    contract: str
    received_ns: int


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The feed stopped: the socket closed (``cause`` names why) or IB's servers are
    unreachable from TWS (1100)."""

    at: dt.datetime
    cause: str


@dataclass(frozen=True, slots=True)
class ConnectionRestored:
    at: dt.datetime
    cause: str
    data_lost: bool


@dataclass(frozen=True, slots=True)
class Gap:
    """An outage: no data could arrive from ``start`` to ``end``.

    ``filled``: the minutes it may have lost were requested from IB's historical bars and
    merged before the strategy saw the next live candle (slob.live.gapfill); it is not part
    of equality -- a filled gap is the same outage.
    """

    start: dt.datetime
    end: dt.datetime
    cause: str
    filled: bool = field(default=False, compare=False)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class HistoryFilled:
    """The minutes ``[start, end)`` of ``symbol`` were supplied whole -- from the store and
    from IB's historical bars -- and replayed through the candles and the strategy; live
    ticks build the candles from ``end`` on. ``cause``: ``"warm-up"`` or the outage's.
    ``missing``: the stretches history could not supply (no candles there)."""

    symbol: str
    start: dt.datetime
    end: dt.datetime
    cause: str
    stored: int  # 1-minute candles taken from the store
    bars: int  # 1-minute bars received from TWS
    requests: int  # history requests made
    missing: tuple[tuple[dt.datetime, dt.datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryUnavailable:
    """IB's historical bars for ``[start, end)`` of ``symbol`` could not be had (``reason``:
    the error, or why the answer was not believed); those minutes have no candles."""

    symbol: str
    start: dt.datetime
    end: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class ContractRolled:
    """A rolling symbol (``"NQ"``) now delivers ``new`` instead of ``old`` (local
    symbols); ``at`` is the exchange time of the new contract's first tick."""

    symbol: str
    old: str
    new: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Candle:
    """OHLCV over ``[start, start + interval_seconds)`` in exchange time (UTC).

    ``filled`` marks a minute inside trading hours with no trade: a flat candle at the
    previous close with volume 0 (see slob.market.candle_aggregator).
    """

    symbol: str
    contract: str
    interval_seconds: int
    start: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    filled: bool = False

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.interval_seconds)


@dataclass(frozen=True, slots=True)
class CandleClosed:
    candle: Candle


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """An error that did not stop the engine (a failing handler, a rejected request)."""

    where: str
    error: BaseException


def fast_constructor(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for a frozen, slotted dataclass, for hot paths.

    A frozen dataclass's ``__init__`` assigns every field through ``object.__setattr__``
    to get past its own guard: about 1.4 µs for :class:`Tick` against 0.6 µs here. The
    instance is built as a plain slotted twin with the same layout and then given its real
    class, so the result is indistinguishable from ``cls(...)`` (equal, same hash, still
    frozen). Arguments are positional, in field order, all required; no ``__post_init__``
    and no validation run -- use it only where ``cls(...)`` would do nothing more.
    """
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    slots = getattr(cls, "__slots__", None)
    names = [f.name for f in params]
    if slots is None or tuple(slots) != tuple(names) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    twin = type(f"_{cls.__name__}Builder", (), {"__slots__": tuple(names)})
    body = "".join(f"    obj.{name} = {name}\n" for name in names)
    source = (f"def make({', '.join(names)}):\n    obj = new(twin)\n{body}"
              f"    obj.__class__ = cls\n    return obj\n")
    namespace: dict[str, Any] = {"new": object.__new__, "twin": twin, "cls": cls}
    exec(source, namespace)  # noqa: S102 - generated from the dataclass's own field names
    make: Callable[..., T] = namespace["make"]
    make.__name__ = make.__qualname__ = f"new_{cls.__name__.lower()}"
    return make


#: ``Tick(...)`` with every field given positionally, for the reader thread.
new_tick: Callable[[str, float, float, dt.datetime, str, str, int, bool], Tick] = fast_constructor(Tick)
