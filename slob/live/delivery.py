"""Delivery: what happens to the records of a read before a tick reaches user code.

:class:`Delivery` is the one pipeline both of :class:`~slob.live.ib_ws_fetcher.IBWSFetcher`'s
lanes run: :meth:`Delivery.process` takes the records of one read (or one bridge batch), in
order, and returns, in order, the ticks to deliver interleaved with what the event loop
must do about them:

* routing across a live roll (:class:`~slob.live.feed_switch.FeedSwitch`): ticks of the
  wrong contract are dropped; the new contract's first tick is preceded by its
  :class:`~slob.model.ContractRolled` and a :class:`RetireLater` (just the ContractRolled
  when the roll moment passed during an outage: the old request died with it); an old-contract tick at
  or after the cut retires the old request at once (:class:`CancelTicks`); a tick within
  ``roll_lead`` of the roll moment asks for the next contract (:class:`StartRoll`);
* outages: a :class:`~slob.ib.client.SubscriptionLive` or TWS's 1102 marks new data, the
  first tick of new data is preceded by the outage's :class:`~slob.model.Gap`, old ticks
  move its start (:mod:`slob.live.outages`); the exchange clock follows the newest tick;
* duplicates: with ``tick_source='market_data'`` every delivered trade is remembered for
  the next request's :class:`~slob.ib.ticks.ReplayGuard`;
* health: the first delivered tick of a recovered session is preceded by
  :data:`DATA_FLOWING` (the supervisor marks the session healthy);
* everything else (quotes, TWS messages, order records, the end of a connection) passes
  through unchanged, in place.

The asyncio lane runs it on the event loop, on each batch the bridge hands over; the
zero-hop lane (:class:`~slob.live.direct_lane.DirectLane`) runs it on IBClient's reader
thread, on each read, and sends everything but the ticks through the bridge. Same records
in, same sequence out: the two lanes deliver identical tick sequences and events by
construction (tests/live/test_lanes.py holds them to it over generated feeds).

Threads. In the zero-hop lane the reader thread routes while the event loop changes some of
the same state. What is shared, and why it is safe:

* :meth:`Delivery.process` holds :attr:`Delivery.lock` for a whole read (a few µs; never
  across user code -- the ticks are delivered after it returns). The supervisor takes the
  same lock to open an outage (:attr:`Supervisor.lock`), and the loop takes it to retire an
  old contract's request (:meth:`Delivery.retire`): the outage tracker and the switch's
  retirement are never half-written when the reader looks. A lock rather than an ordering
  of writes because opening an outage and closing the previous one must be atomic against
  each other (a failure that lands as data resumes must open a new outage, never be lost).
* The exchange clock's anchor is one tuple (:class:`~slob.live.outages.ExchangeClock`).
* :meth:`FeedBook.roll <slob.live.ib_feeds.FeedBook.roll>` calls ``FeedSwitch.begin`` and
  ``abandon`` on the loop without the lock. Safe by the order of events: the new
  contract's ticks cannot arrive before its request is sent, which is after ``begin``
  returned and ``next_resolution`` is set; ``abandon`` clears ``incoming`` before ``cut``.
  The one stale value ``begin`` could expose mid-way -- the previous roll's ``cut``, before
  ``begin`` clears it -- is cleared earlier, when that roll's old request retires (here
  and in :meth:`Delivery.retire`): a retired switch never reads ``cut`` again.
* ``Feed.switch`` and ``Feed.resolution`` are replaced whole (resubscription builds a new
  FeedSwitch); dicts are read with single atomic operations.

This relies on CPython's GIL (attribute stores are seen in program order).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

from slob.ib.client import SubscriptionLive, TwsMessage
from slob.ib.errors import Action, Severity
from slob.live.feed_switch import FeedSwitch, Route
from slob.live.ib_feeds import Feed, FeedBook
from slob.live.ib_supervisor import Supervisor
from slob.model import ContractRolled, Tick

__all__ = ["CallbackFailed", "CancelTicks", "DATA_FLOWING", "DataFlowing", "Delivery", "RetireLater",
           "StartRoll", "resumes_data"]

log = logging.getLogger("slob.live.ib_ws_fetcher")


@dataclass(frozen=True, slots=True)
class StartRoll:
    """Request the next contract of ``feed`` (the event loop starts the roll task)."""

    feed: Feed


@dataclass(frozen=True, slots=True)
class RetireLater:
    """``feed`` switched contracts: retire the old request after ``roll_grace_seconds``."""

    feed: Feed


@dataclass(frozen=True, slots=True)
class CancelTicks:
    """Cancel request ``req_id`` (a retired contract's) with TWS."""

    req_id: int


@dataclass(frozen=True, slots=True)
class DataFlowing:
    """Ticks of this session are being delivered: the supervisor may mark it healthy."""


DATA_FLOWING = DataFlowing()


@dataclass(frozen=True, slots=True)
class CallbackFailed:
    """The zero-hop lane's tick callback raised ``error`` (reported to ``on_error`` on the loop)."""

    error: Exception


def resumes_data(msg: TwsMessage, book: FeedBook) -> bool:
    """TWS's 1102 (the same requests flow again) as IBWSFetcher acts on it: new data begins
    here, in order with the ticks around it."""
    if msg.action is not Action.KEEP or msg.code == 0 or msg.req_id in book.raised:
        return False
    owned = msg.req_id > 0 and any(f.owns(msg.req_id) for f in list(book.feeds.values()))
    return not (owned and msg.severity in (Severity.ERROR, Severity.FATAL))


class Delivery:
    """See the module docstring. ``supervisor`` may be replaced (a new one per
    :meth:`IBWSFetcher.connect` after a final stop); it must share :attr:`lock`."""

    def __init__(self, book: FeedBook, supervisor: Supervisor, *, guarded: bool) -> None:
        self.book = book
        self.supervisor = supervisor
        self.lock: threading.Lock = supervisor.lock
        #: Remember delivered trades for ReplayGuards (tick_source='market_data').
        self.guarded = guarded
        #: Ticks delivered (passed to the lane for its callback).
        self.ticks = 0
        self._rolls_asked: set[str] = set()

    def process(self, records: list[object]) -> list[object]:
        """One read's records, in order -> what to deliver and do, in order (see the
        module docstring). Runs on one thread at a time (it holds :attr:`lock`)."""
        out: list[object] = []
        append = out.append
        book = self.book
        feeds = book.feeds
        sup = self.supervisor
        outage = sup.outage
        newest: Tick | None = None
        with self.lock:
            for item in records:
                kind = type(item)
                if kind is Tick:
                    tick: Tick = item  # type: ignore[assignment]
                    feed = feeds.get(tick.symbol)
                    switch = feed.switch if feed is not None else None
                    if switch is not None:
                        route = switch.route(tick)
                        if route is not Route.DELIVER:
                            if route is Route.DROP:
                                continue
                            if route is Route.RETIRE:
                                append(CancelTicks(_retire(switch)))
                                continue
                            self._switched(feed, switch, tick, out)  # type: ignore[arg-type]
                        elif self._rolls_asked and tick.symbol in self._rolls_asked:
                            pass
                        elif book.roll_due(feed, tick.timestamp):  # type: ignore[arg-type]
                            self._rolls_asked.add(tick.symbol)
                            append(StartRoll(feed))  # type: ignore[arg-type]
                    if newest is None:
                        newest = tick
                        if sup.awaiting_data:
                            append(DATA_FLOWING)
                    elif tick.timestamp >= newest.timestamp:
                        newest = tick
                    if outage.start is not None:
                        gap = sup.during_outage(tick.timestamp, time.monotonic())
                        if gap is not None:
                            append(gap)
                    if self.guarded:
                        book.remember(tick)
                    self.ticks += 1
                    append(tick)
                elif kind is SubscriptionLive:
                    if outage.start is not None:
                        sup.data_resumed()  # a request made during the outage delivers
                elif kind is TwsMessage:
                    if resumes_data(item, book):  # type: ignore[arg-type]
                        sup.data_resumed()  # 1102: the same requests flow again, from here on
                    append(item)
                else:
                    append(item)
            if newest is not None:
                # The newest tick and when its frame arrived (not when it is processed), so
                # the clock does not depend on how the lane batches.
                sup.clock.tick(newest.timestamp, newest.received_ns / 1e9)
        return out

    def _switched(self, feed: Feed, switch: FeedSwitch, tick: Tick, out: list[object]) -> None:
        """The new contract's first tick: it is the front month from now on."""
        if switch.resumed_from is not None:  # the roll moment passed during an outage
            old_symbol, switch.resumed_from = switch.resumed_from, None
            self.book.rolls += 1
            log.info("= %s rolled %s -> %s across an outage, first tick %s", feed.symbol, old_symbol,
                     switch.current, tick.timestamp)
            out.append(ContractRolled(feed.symbol, old_symbol, switch.current, tick.timestamp))
            return  # no old request to retire: it died with the outage
        old, new = feed.resolution, feed.next_resolution
        if new is not None:
            feed.resolution, feed.next_resolution = new, None
        self.book.rolls += 1
        at: dt.datetime = switch.cut or tick.timestamp
        old_symbol = old.contract.local_symbol if old is not None else switch.retiring or ""
        log.info("= %s rolled %s -> %s at %s", feed.symbol, old_symbol, switch.current, at)
        out.append(ContractRolled(feed.symbol, old_symbol, switch.current, at))
        out.append(RetireLater(feed))

    def retire(self, feed: Feed) -> int:
        """The event loop retires ``feed``'s old request (the grace period after a switch
        is over); returns the request to cancel (0: none, or already retired)."""
        switch = feed.switch
        if switch is None:
            return 0
        with self.lock:
            return _retire(switch)

    def roll_done(self, symbol: str) -> None:
        """The roll task for ``symbol`` ended (or was not started): it may be asked for again."""
        self._rolls_asked.discard(symbol)


def _retire(switch: FeedSwitch) -> int:
    req = switch.retired()
    switch.cut = None  # see the module docstring: the next begin() never exposes it
    return req
