"""The session supervisor: drives :mod:`slob.live.session_machine` on the event loop.

One task owns every change of the session's state. It waits for signals -- the socket
closed (from the reader thread), TWS's 1100/1101/1102 (from :meth:`IBWSFetcher.listen`),
a failed liveness check -- and answers each with the steps of the table: close the
session, back off, connect, handshake, resubscribe, reconcile, stream. A failure of any
kind at any step is one ``FAILURE`` (an attempt); only :meth:`Supervisor.stop` and the
final error after the limits end the loop. That error is a
:class:`~slob.ib.errors.ConnectionLost` (or :class:`~slob.ib.errors.PeerNotTWS`) naming the
cause of every attempt; it is handed to the owner (``SessionPort.give_up``), which ends
``listen()`` with it.

A second task watches liveness: when nothing has been received for
``liveness_idle_seconds`` it asks TWS the time, and no answer within
``liveness_timeout_seconds`` ends the session as a drop; so does a frame that stays
incomplete for ``frame_timeout_seconds``. Both are counted in :attr:`Supervisor.stats`.
Silence is what the check looks for: a probe that goes unanswered while bytes keep
arriving, or while the reader has stopped reading because the consumer is behind
(backpressure: the session reports no silence then), is late, not lost (``liveness_late``).

Threads. Everything here runs on the event loop except what the thread that delivers ticks
calls: in the zero-hop lane (:mod:`slob.live.delivery`) that is IBClient's reader thread.
It touches :attr:`Supervisor.clock` (safe by construction, see ExchangeClock),
:attr:`Supervisor.outage` and the gap records, always holding :attr:`Supervisor.lock`;
the loop takes the same lock to open an outage. The lock is held for a few attribute
writes at a time, never across an ``await`` or a callback.

The supervisor knows the session only through :class:`SessionPort` (implemented by
IBWSFetcher), so it is tested alone against a scripted port as well as end to end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from slob.ib import wire
from slob.ib.errors import ConnectionLost, HandshakeFailed, PeerNotTWS, SlobError
from slob.live.backoff import backoff_delay
from slob.live.outages import ExchangeClock, OutageTracker
from slob.live.session_machine import Event, SessionMachine, State
from slob.model import ConnectionRestored, Gap
from slob.model import ConnectionLost as ConnectionLostEvent

__all__ = ["Closed", "Notice", "SessionPort", "Supervisor", "SupervisorSettings"]

log = logging.getLogger("slob.live.supervisor")
_UTC = dt.timezone.utc


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    max_attempts: int
    max_junk_sessions: int
    reconnect_delay: float
    max_reconnect_delay: float
    liveness_idle: float
    liveness_timeout: float
    frame_timeout: float
    healthy_after: float
    where: str  # "host:port", for messages


@dataclass(frozen=True, slots=True)
class Closed:
    """Session ``generation``'s socket closed: ``cause``; ``junk`` if it ended in bytes that
    are not the TWS protocol; ``by_client`` for our own close."""

    generation: int
    cause: str
    junk: bool
    by_client: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """TWS's connectivity notice: ``event`` is IB_LOST (1100), IB_RESTORED (1102) or
    DATA_LOST (1101, or a feed dropped by its farm)."""

    event: Event
    code: int
    text: str


class SessionPort(Protocol):
    """What the supervisor does to the session; every method may raise (any exception is a
    failure of the current attempt)."""

    @property
    def generation(self) -> int: ...  # the current session's number (changes with every session)

    async def handshake(self) -> None: ...  # TCP connect + version exchange
    async def start_api(self) -> None: ...  # START_API; nextValidId + managedAccounts; TWS's clock
    async def resubscribe(self, same_session: bool) -> None: ...
    async def reconcile(self) -> None: ...
    async def ping(self) -> None: ...  # REQ_CURRENT_TIME, answered within the liveness timeout
    def close_session(self) -> None: ...  # our own close of the current session (idempotent)
    def abort_session(self, cause: str, *, junk: bool = False) -> None: ...  # end it as a failure
    def received_age(self) -> float | None: ...  # seconds since bytes last arrived (None: no session)
    def partial_frame_age(self) -> float | None: ...  # seconds an incomplete frame has waited
    async def emit(self, event: object) -> None: ...
    async def report(self, exc: BaseException) -> None: ...
    async def give_up(self, exc: SlobError) -> None: ...  # report it and end listen() with it


class Supervisor:
    def __init__(self, port: SessionPort, settings: SupervisorSettings, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 delay: Callable[[int, float, float], float] = backoff_delay,
                 lock: threading.Lock | None = None) -> None:
        self.port = port
        #: Guards :attr:`outage` and :attr:`gaps` against the thread that delivers ticks
        #: (the reader thread in the zero-hop lane); see the module docstring.
        self.lock = lock if lock is not None else threading.Lock()
        self.settings = settings
        self.machine = SessionMachine(max_attempts=settings.max_attempts, junk_limit=settings.max_junk_sessions)
        self.outage = OutageTracker()
        self.clock = ExchangeClock()
        self.gaps: list[Gap] = []
        self.reconnects = 0
        self.stats: Counter[str] = Counter()
        self.recovery_seconds: list[float] = []
        self._monotonic = monotonic
        self._sleep = sleep
        self._delay = delay
        self._signals: asyncio.Queue[Closed | Notice] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._streaming_since: float | None = None
        self._healthy = False
        self._outage_mono: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the owner's calls ---------------------------------------------------------

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def supervising(self) -> bool:
        """Started and not final: a failed session will be recovered."""
        return any(not t.done() for t in self._tasks) and not self.machine.final

    async def connect(self) -> None:
        """The first session, driven through the same states; a failure raises to the
        caller (nothing to recover yet), and the machine returns to idle. Its
        reconciliation is the owner's own (the engine reconciles in start(), once it is
        listening), so the reconciling state passes without the hook here."""
        if self.machine.state in (State.STOPPED, State.FAILED):
            self.machine = SessionMachine(max_attempts=self.settings.max_attempts,
                                          junk_limit=self.settings.max_junk_sessions)
        m = self.machine
        m.fire(Event.START)
        try:
            await self.port.handshake()
            m.fire(Event.CONNECTED)
            await self.port.start_api()
            m.fire(Event.READY)
            m.fire(Event.RESUBSCRIBE)
            await self.port.resubscribe(False)
            m.fire(Event.RESUBSCRIBED)
            m.fire(Event.RECONCILED)
        except BaseException:
            self.port.close_session()
            m.state = State.IDLE  # not a failure of a running feed: the caller sees the error
            raise
        self._streaming(self._monotonic())

    def watch(self, generation: int, closed: "concurrent.futures.Future[object]",
              describe: Callable[[object], Closed]) -> None:
        """Turn session ``generation``'s end (a future resolved on the reader thread) into a
        signal on this loop."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop

        def done(future: "concurrent.futures.Future[object]") -> None:
            if future.cancelled() or future.exception() is not None:
                return
            signal = describe(future.result())
            try:
                loop.call_soon_threadsafe(self._signals.put_nowait, signal)
            except RuntimeError:
                pass  # the loop is closed: nobody is supervising any more

        closed.add_done_callback(done)

    def start(self) -> None:
        """Start supervising (after :meth:`connect`)."""
        self._loop = asyncio.get_running_loop()
        if not any(not t.done() for t in self._tasks):
            self._tasks = [asyncio.create_task(self._run(), name="slob-ib-supervisor"),
                           asyncio.create_task(self._watch_liveness(), name="slob-ib-liveness")]

    def notice(self, notice: Notice) -> None:
        """TWS's 1100/1101/1102, from the task that reads the bridge."""
        self._signals.put_nowait(notice)

    def on_batch(self, newest: dt.datetime, mono: float) -> None:
        """A batch of ticks is being delivered (``newest``: a timestamp in it): keeps the
        exchange clock and marks a recovered session healthy."""
        self.clock.tick(newest, mono)
        self.data_flowing()

    @property
    def awaiting_data(self) -> bool:
        """The session has not yet been marked healthy (any thread may ask): the first
        delivered ticks should be reported with :meth:`data_flowing`."""
        return not self._healthy

    def data_flowing(self) -> None:
        """Ticks are being delivered (event loop only): marks a recovered session healthy."""
        if not self._healthy and self.machine.state is State.STREAMING:
            self._healthy = True
            self.machine.fire(Event.HEALTHY)

    def data_resumed(self) -> None:
        """New data begins on the bridge: a request made during the outage is live, or TWS
        said 1102 (seen in order with the ticks, by the task that reads the bridge)."""
        self.outage.data_resumed()

    def during_outage(self, timestamp: dt.datetime, mono: float) -> Gap | None:
        """A tick is about to be delivered while an outage is open: the Gap when it is the
        first of new data (emit it first), else old data that moves the gap's start."""
        gap = self.outage.tick(timestamp)
        if gap is not None:
            self.gaps.append(gap)
            if self._outage_mono is not None:
                self.recovery_seconds.append(mono - self._outage_mono)
                self._outage_mono = None
        return gap

    async def stop(self) -> None:
        if not self.machine.final:
            self.machine.fire(Event.STOP)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def exchange_now(self) -> dt.datetime:
        return self.clock.now(self._monotonic(), dt.datetime.now(_UTC))

    # -- the supervising task -----------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self.machine.final:
                signal = await self._signals.get()
                if isinstance(signal, Closed):
                    if signal.by_client or signal.generation != self.port.generation:
                        continue  # our own close, or a session already replaced
                    if self.machine.state in (State.STREAMING, State.STALE):
                        await self._recover(signal.cause, junk=signal.junk)
                else:
                    await self._notice(signal)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug here must still end listen() with a SlobError
            log.exception("! supervisor failed")
            await self._final(ConnectionLost(f"the session supervisor failed: {exc!r}"))

    async def _notice(self, notice: Notice) -> None:
        state = self.machine.state
        if state not in (State.STREAMING, State.STALE):
            return  # a notice from a session being replaced: the recovery covers it
        if notice.event is Event.IB_LOST:
            self.machine.fire(Event.IB_LOST)
            await self._begin_outage(notice.text)
        elif notice.event is Event.IB_RESTORED:
            self.machine.fire(Event.IB_RESTORED)
            if state is State.STALE:
                self._streaming(self._monotonic())
                await self.port.emit(ConnectionRestored(self.exchange_now(), f"IB {notice.code}", data_lost=False))
        elif notice.event is Event.DATA_LOST:
            await self._begin_outage(notice.text)
            self.machine.fire(Event.DATA_LOST)
            try:
                await self.port.resubscribe(True)
                self.machine.fire(Event.RESUBSCRIBED)
                await self.port.reconcile()
                self.machine.fire(Event.RECONCILED)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                await self._recover(f"resubscribing after {notice.text!r} failed: {_describe(exc)}",
                                    junk=_is_junk(exc))
                return
            self._streaming(self._monotonic())
            await self.port.emit(ConnectionRestored(self.exchange_now(), f"IB {notice.code}", data_lost=True))

    async def _begin_outage(self, cause: str) -> None:
        until = self._complete_until()
        with self.lock:  # the reader thread may be closing the previous outage right now
            began = self.outage.begin(until, cause)
            start = self.outage.start
        if began:
            self._outage_mono = self._monotonic()
            await self.port.emit(ConnectionLostEvent(start or self.exchange_now(), cause))
        self._streaming_since = None

    async def _recover(self, cause: str, *, junk: bool) -> None:
        """The session failed with ``cause``: back off and open a new one, as often as the
        limits allow; or give up."""
        m = self.machine
        await self._begin_outage(cause)
        log.warning("! session lost: %s", cause)
        self.port.close_session()
        state = m.fail(cause, junk=junk)
        while state is State.BACKOFF:
            await self._sleep(self._delay(m.attempts, self.settings.reconnect_delay,
                                          self.settings.max_reconnect_delay))
            m.fire(Event.RETRY)
            step = "connecting"
            try:
                await self.port.handshake()
                m.fire(Event.CONNECTED)
                step = "starting the API session"
                await self.port.start_api()
                m.fire(Event.READY)
                step = "resubscribing"
                m.fire(Event.RESUBSCRIBE)
                await self.port.resubscribe(False)
                m.fire(Event.RESUBSCRIBED)
                step = "reconciling"
                await self.port.reconcile()
                m.fire(Event.RECONCILED)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                why = f"{step}: {_describe(exc)}"
                # Data may have resumed on this session (its requests were live) and closed
                # the outage: this failure loses data again, so it opens a new one.
                await self._begin_outage(why)
                self.port.close_session()
                log.warning("! attempt %d failed while %s", m.attempts, why)
                if not isinstance(exc, SlobError) or _is_junk(exc):
                    await self.port.report(SlobError(f"reconnect attempt failed while {why}"))
                state = m.fail(why, junk=_is_junk(exc))
                continue
            self.reconnects += 1
            self._streaming(self._monotonic())
            await self.port.emit(ConnectionRestored(self.exchange_now(), cause, data_lost=True))
            return
        await self._final(self._final_error())

    def _streaming(self, mono: float) -> None:
        self._streaming_since = mono
        self._healthy = False

    def _complete_until(self) -> dt.datetime:
        """Exchange time up to which the stream is known complete: the last frame received
        (TWS sends in order), or now if nothing is known."""
        mono, wall = self._monotonic(), dt.datetime.now(_UTC)
        age = self.port.received_age()
        if age is not None:
            mono, wall = mono - age, wall - dt.timedelta(seconds=age)
        return self.clock.now(mono, wall)

    def _final_error(self) -> SlobError:
        m, s = self.machine, self.settings
        causes = _summary(m.causes)
        if m.junk_tripped:
            return PeerNotTWS(
                f"the peer at {s.where} sent data that is not the TWS API in {m.junk} sessions in a row "
                f"({causes}). Check that {s.where} is a TWS / IB Gateway API port (7497 TWS paper, 4002 "
                "Gateway paper) and that nothing else (a proxy, another program) answers on it."
            )
        return ConnectionLost(
            f"lost the session with TWS at {s.where} and {m.attempts - 1} reconnect attempts failed "
            f"(causes: {causes}). Check that TWS/IB Gateway is running and logged in; raise "
            "max_reconnect_attempts to wait longer."
        )

    async def _final(self, exc: SlobError) -> None:
        if not self.machine.final:
            self.machine.state = State.FAILED
        log.error("! giving up: %s", exc)
        await self.port.give_up(exc)

    # -- liveness ------------------------------------------------------------------------

    async def _watch_liveness(self) -> None:
        s = self.settings
        period = max(0.01, min(1.0, s.liveness_idle / 4, s.frame_timeout / 4, s.healthy_after / 4))
        probing: asyncio.Task[None] | None = None
        try:
            while not self.machine.final:
                await self._sleep(period)
                if self.machine.state not in (State.READY, State.RESUBSCRIBING, State.RECONCILING,
                                              State.STREAMING, State.STALE):
                    continue
                partial = self.port.partial_frame_age()
                if partial is not None and partial > s.frame_timeout:
                    self.stats["frame_timeouts"] += 1  # a protocol violation: a TWS never does this
                    self.port.abort_session(f"a frame stayed incomplete for {partial:.1f} s "
                                            f"(frame_timeout_seconds={s.frame_timeout:g})", junk=True)
                    continue
                age = self.port.received_age()
                if age is not None and age > s.liveness_idle and (probing is None or probing.done()):
                    probing = asyncio.create_task(self._probe(), name="slob-ib-liveness-probe")
                since = self._streaming_since
                if (not self._healthy and since is not None and self.machine.state is State.STREAMING
                        and self._monotonic() - since >= s.healthy_after):
                    self._healthy = True
                    self.machine.fire(Event.HEALTHY)
        finally:
            if probing is not None:
                probing.cancel()
                await asyncio.gather(probing, return_exceptions=True)

    async def _probe(self) -> None:
        generation = self.port.generation
        self.stats["liveness_probes"] += 1
        try:
            await asyncio.wait_for(self.port.ping(), self.settings.liveness_timeout)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            age = self.port.received_age()
            if generation == self.port.generation and age is not None and age < self.settings.liveness_timeout:
                # Not silence: bytes arrived meanwhile (TWS answers in order, so the answer is
                # behind them), or reading is paused because the consumer is behind.
                self.stats["liveness_late"] += 1
                return
            if generation == self.port.generation:
                self.stats["liveness_timeouts"] += 1
                self.port.abort_session(f"no answer to the liveness probe within "
                                        f"{self.settings.liveness_timeout:g} s ({_describe(exc)})")


def _is_junk(exc: BaseException) -> bool:
    """The peer answered with bytes that are not the TWS API."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, wire.WireError):
            return True
        if isinstance(seen, HandshakeFailed) and "does not speak the TWS API" in str(seen):
            return True
        seen = seen.__cause__
    return False


def _describe(exc: BaseException) -> str:
    """One attempt's cause, short: a SlobError's first sentence (its fix is said once, in
    the final error), anything else with its type."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, SlobError):
        return f"{type(exc).__name__}: {text}"
    cut = text.find(". ", 40)
    return text[:cut] if cut > 0 else text


def _summary(causes: list[str], limit: int = 8) -> str:
    """``1) a; 2-4) b (3 times); ...``: repeats folded, the last ``limit`` kinds kept."""
    runs: list[tuple[int, int, str]] = []  # (first, last, cause), numbered from 1
    for number, cause in enumerate(causes, start=1):
        if runs and runs[-1][2] == cause:
            runs[-1] = (runs[-1][0], number, cause)
        else:
            runs.append((number, number, cause))
    shown = [f"{a}) {c}" if a == b else f"{a}-{b}) {c} ({b - a + 1} times)" for a, b, c in runs[-limit:]]
    return ("...; " if len(runs) > limit else "") + "; ".join(shown)
