"""The records and interfaces IBClient's callers see, and the request bookkeeping its
parts share: split from :mod:`slob.ib.client` (which re-exports the public names).

``Subscription``/``SubscriptionLive`` (market-data and tick-by-tick requests),
``TwsMessage`` (a classified ERR_MSG), ``ConnectionClosed`` (why the reader ended),
``FlowControl`` (what the reader asks of its consumer's queue), ``Pending`` (a request
waiting for its rows) and how a failed request is worded.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from slob.ib import ticks
from slob.ib.errors import Action, ContractNotFound, MarketDataNotSubscribed, RequestFailed, Severity

__all__ = ["ConnectionClosed", "FlowControl", "HistoryUpdate", "NOT_SUBSCRIBED", "Pending", "Subscription",
           "SubscriptionLive", "TwsMessage", "describe_contract", "request_error"]

#: Error codes that mean "no market-data subscription" (MarketDataNotSubscribed).
NOT_SUBSCRIBED = {354, 10089, 10168, 10186, 10189}
#: What a keepUpToDate request's callback receives, on the reader thread: IB's BarData
#: (an update of the bar forming, or the first of a new bar), or the SlobError ending it.
HistoryUpdate = Callable[[Any], None]


class FlowControl(Protocol):
    """What the reader asks of its consumer's queue (TickBridge implements it)."""

    @property
    def full(self) -> bool: ...  # stop reading (checked after every read)

    @property
    def paused(self) -> bool: ...  # a producer is waiting in wait_for_room now

    def wait_for_room(self, stop: Callable[[], bool]) -> None: ...  # block until there is room or stop()

    def wake_producer(self) -> None: ...  # re-check stop() now


@dataclass(frozen=True, slots=True)
class TwsMessage:
    """An ERR_MSG from TWS (errors, warnings and notices alike), classified."""

    req_id: int
    code: int
    text: str
    time: dt.datetime
    severity: Severity
    action: Action


@dataclass(frozen=True, slots=True)
class SubscriptionLive:
    """A market-data or tick-by-tick request's first data arrived: on the bridge just
    before that data, so everything after it on the bridge was sent on that request."""

    req_id: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The reader thread ended: ``cause`` says why; ``error`` is the failure, if any."""

    cause: str
    error: BaseException | None
    by_client: bool
    #: The peer broke the protocol: unframeable bytes, or a frame it never completed.
    junk: bool = False


@dataclass(eq=False)
class Subscription:
    """A market-data or tick-by-tick request the reader converts into records."""

    req_id: int
    ref: ticks.ContractRef
    kind: str  # "tick_by_tick" or "market_data"
    merger: ticks.LastTradeMerger | None = None
    delayed: bool = False
    #: Resolved by the reader: None at the first data for this request, or the error
    #: TWS answered it with (so a caller can wait for acceptance without a consumer).
    status: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    settled: bool = False  # status resolved (a plain flag: checking the future takes a lock)

    def accept(self) -> None:
        if not self.settled:
            self.settled = True
            if not self.status.done():
                self.status.set_result(None)

    def reject(self, error: BaseException) -> None:
        if not self.settled:
            self.settled = True
            if not self.status.done():
                self.status.set_exception(error)


@dataclass(eq=False)
class Pending:
    """A request waiting for its answer: rows gathered until its END completes ``future``."""

    future: concurrent.futures.Future[Any]
    what: str
    rows: list[Any] = field(default_factory=list)


def describe_contract(contract: Any) -> str:
    """A contract as error messages name it: its local symbol, else its symbol."""
    return str(getattr(contract, "localSymbol", "") or getattr(contract, "symbol", "") or "the contract")


def request_error(code: int, req_id: int, text: str, what: str) -> RequestFailed:
    if code == 200:
        return ContractNotFound(code, req_id, text, what)
    if code in NOT_SUBSCRIBED:
        return MarketDataNotSubscribed(code, req_id, text, what)
    return RequestFailed(code, req_id, text)
