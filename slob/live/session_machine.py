"""The IB session's states and every transition between them, in one table.

Pure: no I/O, no clock, no asyncio. :class:`~slob.live.ib_supervisor.Supervisor` drives it;
this module decides. The states (../shared/DESIGN.md §8, "One supervisor table")::

    idle -> connecting -> handshake -> ready -> resubscribing -> reconciling -> streaming
                ^                                                              |  ^
                |                                   1100 (IB lost) ->  stale --+  |  1102
                |                                   1101 (data lost) -> resubscribing
                +------ backoff <------ FAILURE from any live state
    any live state -- STOP --> stopped          backoff -- GIVE_UP --> failed

Any failure in any live state -- an exception of any type, a time-out, a drop, junk after
the handshake, an unanswered liveness probe -- is the one event ``FAILURE``: it counts as
an attempt and leads to ``backoff`` (another attempt follows) or to ``failed`` (final).
An event the table does not list for the current state raises :class:`IllegalSessionTransition`
and leaves the state unchanged.

Counting attempts. ``attempts`` counts failures since the last *healthy* session: one that
reached ``streaming`` and then showed real data (a tick) or stayed up ``stable`` long (the
driver fires ``HEALTHY``). Reaching ``streaming`` alone is not enough, or a peer that
completes the handshake and then fails every time would loop forever. ``junk`` counts
consecutive sessions that ended in unreadable data (a peer that is not a TWS); only a
session that streamed and then ended for another reason resets it, so the circuit breaker
trips however healthy each junk session looked first. The machine gives up when
``attempts`` exceeds ``max_attempts``, or ``junk`` exceeds ``min(junk_limit, max_attempts)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from slob.ib.errors import SlobError

__all__ = ["Event", "IllegalSessionTransition", "LIVE", "SessionMachine", "State", "TRANSITIONS"]


class State(Enum):
    IDLE = "idle"  # before connect(), or after a stop
    CONNECTING = "connecting"  # TCP connect and the version handshake
    HANDSHAKE = "handshake"  # greeted; START_API sent, waiting for nextValidId + managedAccounts
    READY = "ready"  # the session is usable (ids, accounts, TWS's clock)
    RESUBSCRIBING = "resubscribing"  # requesting every feed again
    RECONCILING = "reconciling"  # the owner's reconciliation hook (orders against TWS)
    STREAMING = "streaming"
    STALE = "stale"  # 1100: the socket is up, IB's servers are not
    BACKOFF = "backoff"  # waiting before the next attempt
    STOPPED = "stopped"  # disconnect(): final
    FAILED = "failed"  # gave up: final


class Event(Enum):
    START = "start"
    CONNECTED = "connected"  # greeting received
    READY = "ready"
    RESUBSCRIBE = "resubscribe"
    RESUBSCRIBED = "resubscribed"
    RECONCILED = "reconciled"
    IB_LOST = "ib_lost"  # 1100
    IB_RESTORED = "ib_restored"  # 1102: data maintained
    DATA_LOST = "data_lost"  # 1101 (or a farm's 10182 for a feed): subscribe again
    HEALTHY = "healthy"  # data flowed (or the session stayed up) after recovery
    FAILURE = "failure"
    RETRY = "retry"  # the back-off delay is over
    STOP = "stop"


#: The states in which a session exists or is being made; FAILURE and STOP apply to each.
LIVE = frozenset({State.CONNECTING, State.HANDSHAKE, State.READY, State.RESUBSCRIBING, State.RECONCILING,
                  State.STREAMING, State.STALE})

_S, _E = State, Event
TRANSITIONS: Mapping[tuple[State, Event], State] = {
    (_S.IDLE, _E.START): _S.CONNECTING,
    (_S.CONNECTING, _E.CONNECTED): _S.HANDSHAKE,
    (_S.HANDSHAKE, _E.READY): _S.READY,
    (_S.READY, _E.RESUBSCRIBE): _S.RESUBSCRIBING,
    (_S.RESUBSCRIBING, _E.RESUBSCRIBED): _S.RECONCILING,
    (_S.RECONCILING, _E.RECONCILED): _S.STREAMING,
    (_S.STREAMING, _E.IB_LOST): _S.STALE,
    (_S.STALE, _E.IB_LOST): _S.STALE,  # TWS repeats 1100 every ~30 s during a long reset
    (_S.STALE, _E.IB_RESTORED): _S.STREAMING,
    (_S.STREAMING, _E.IB_RESTORED): _S.STREAMING,  # a 1102 with no 1100 before it
    (_S.STREAMING, _E.DATA_LOST): _S.RESUBSCRIBING,
    (_S.STALE, _E.DATA_LOST): _S.RESUBSCRIBING,
    (_S.STREAMING, _E.HEALTHY): _S.STREAMING,
    (_S.BACKOFF, _E.RETRY): _S.CONNECTING,
    (_S.BACKOFF, _E.STOP): _S.STOPPED,
    (_S.IDLE, _E.STOP): _S.STOPPED,
    (_S.STOPPED, _E.STOP): _S.STOPPED,
    (_S.FAILED, _E.STOP): _S.FAILED,
    **{(s, _E.STOP): _S.STOPPED for s in LIVE},
    # FAILURE's target (backoff or failed) depends on the counts: see SessionMachine.fail.
}


class IllegalSessionTransition(SlobError):
    """An event the table does not allow in the current state: a bug in the driver."""


@dataclass
class SessionMachine:
    """The table plus the attempt accounting. ``causes`` holds the cause of every failure
    since the last healthy session, for the final error's message."""

    max_attempts: int
    junk_limit: int = 2
    state: State = State.IDLE
    attempts: int = 0
    junk: int = 0
    failures: int = 0  # every FAILURE ever, for stats
    causes: list[str] = field(default_factory=list)
    history: list[tuple[State, Event, State]] = field(default_factory=list)
    _streamed: bool = False  # the current session reached streaming

    def fire(self, event: Event) -> State:
        if event is Event.FAILURE:
            raise IllegalSessionTransition("use fail(cause) for a failure: it needs the cause")
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise IllegalSessionTransition(f"event {event.value!r} is not allowed in state {self.state.value!r}")
        if event is Event.HEALTHY:
            self.attempts = 0
            self.causes.clear()
        if event is Event.RETRY:
            self._streamed = False
        if target is State.STREAMING:
            self._streamed = True
        return self._move(event, target)

    def fail(self, cause: str, *, junk: bool = False) -> State:
        """A failure in a live state (or a failed attempt seen in backoff's aftermath):
        count it and go to ``backoff``, or to ``failed`` when the limits are reached."""
        if self.state not in LIVE:
            raise IllegalSessionTransition(f"a failure is not possible in state {self.state.value!r}")
        self.failures += 1
        self.attempts += 1
        self.causes.append(cause)
        if junk:
            self.junk += 1
        elif self._streamed:
            self.junk = 0  # a session that streamed and ended for another reason: the peer is a TWS
        self._streamed = False
        gave_up = self.attempts > self.max_attempts or self.junk > min(self.junk_limit, self.max_attempts)
        return self._move(Event.FAILURE, State.FAILED if gave_up else State.BACKOFF)

    @property
    def junk_tripped(self) -> bool:
        return self.state is State.FAILED and self.junk > min(self.junk_limit, self.max_attempts)

    @property
    def final(self) -> bool:
        return self.state in (State.STOPPED, State.FAILED)

    def _move(self, event: Event, target: State) -> State:
        self.history.append((self.state, event, target))
        if len(self.history) > 200:
            del self.history[:100]
        self.state = target
        return target
