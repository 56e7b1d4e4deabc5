"""The supervisor over fault sequences (hypothesis), against a scripted session port.

The port is the supervisor's only view of the session; here every call of it follows a
drawn script (succeed, or raise any kind of exception), and drops and TWS notices arrive
at drawn moments. Whatever the sequence: the supervisor either streams or gives up with a
SlobError naming every cause, after exactly the failures the limits allow; it never lets
another exception out; every outage becomes exactly one gap, in exchange time, once a
tick is delivered after recovery. The same supervisor runs end to end in
tests/live/test_unattended.py against FakeTWS through IB's client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from slob.ib import wire
from slob.ib.errors import ConnectionLost, HandshakeFailed, PeerNotTWS, RequestTimedOut, SlobError
from slob.live.ib_supervisor import Closed, Notice, Supervisor, SupervisorSettings
from slob.live.session_machine import Event, State
from slob.model import ConnectionRestored, Gap
from slob.model import ConnectionLost as LostEvent

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None)
BASE = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)

FAILURES = {
    "refused": lambda: OSError("connection refused"),
    "timeout": lambda: asyncio.TimeoutError(),
    "request_timeout": lambda: RequestTimedOut("REQ_CURRENT_TIME", 1.0),
    "lost": lambda: ConnectionLost("the session is closed"),
    "bug": lambda: KeyError("surprise"),
    "runtime": lambda: RuntimeError("boom"),
    "junk": lambda: HandshakeFailed("127.0.0.1:1 does not speak the TWS API: bad"),
    "wire": lambda: wire.FrameTooLong("2 GB frame", offset=0),
}


class ScriptedPort:
    """Each step call pops the next outcome of its script ("ok" when empty)."""

    def __init__(self, script: list[str]) -> None:
        self.script = deque(script)
        self.generation = 0
        self.calls: list[str] = []
        self.events: list[object] = []
        self.reports: list[BaseException] = []
        self.final: SlobError | None = None
        self.sup: Supervisor | None = None
        self.closes = 0

    def _step(self, name: str) -> None:
        self.calls.append(name)
        outcome = self.script.popleft() if self.script else "ok"
        if outcome != "ok":
            raise FAILURES[outcome]()

    async def handshake(self) -> None:
        self._step("handshake")

    async def start_api(self) -> None:
        self.generation += 1
        self._step("start_api")

    async def resubscribe(self, same_session: bool) -> None:
        self._step("resubscribe")

    async def reconcile(self) -> None:
        self._step("reconcile")

    async def ping(self) -> None:
        return None

    def close_session(self) -> None:
        self.closes += 1

    def abort_session(self, cause: str, *, junk: bool = False) -> None:
        assert self.sup is not None
        self.sup._signals.put_nowait(Closed(self.generation, cause, junk, False))

    def received_age(self) -> float | None:
        return 0.0

    def partial_frame_age(self) -> float | None:
        return None

    async def emit(self, event: object) -> None:
        self.events.append(event)

    async def report(self, exc: BaseException) -> None:
        self.reports.append(exc)

    async def give_up(self, exc: SlobError) -> None:
        self.final = exc


def settings_for(max_attempts: int, junk: int) -> SupervisorSettings:
    return SupervisorSettings(max_attempts=max_attempts, max_junk_sessions=junk, reconnect_delay=0.0,
                              max_reconnect_delay=0.0, liveness_idle=3600, liveness_timeout=3600,
                              frame_timeout=3600, healthy_after=3600, where="127.0.0.1:1")


async def quiet(sup: Supervisor) -> None:
    """Let the supervisor act on everything queued (all its waits are zero-length)."""
    for _ in range(2000):
        await asyncio.sleep(0)
        if sup.machine.final:
            return
        if sup._signals.empty() and sup.state in (State.STREAMING, State.STALE, State.FAILED, State.STOPPED):
            for _ in range(5):
                await asyncio.sleep(0)
            if sup._signals.empty():
                return
    raise AssertionError(f"supervisor did not settle: {sup.state}")


ACTIONS = st.one_of(
    st.tuples(st.just("drop"), st.booleans()),
    st.tuples(st.just("notice"), st.sampled_from([Event.IB_LOST, Event.IB_RESTORED, Event.DATA_LOST])),
    st.tuples(st.just("tick"), st.just(None)),
)


@PROPERTY
@given(script=st.lists(st.sampled_from(["ok", "ok", "ok", *FAILURES]), max_size=40),
       actions=st.lists(ACTIONS, max_size=25),
       max_attempts=st.integers(0, 4), junk=st.integers(0, 3))
def test_any_fault_sequence_ends_in_streaming_or_one_final_slob_error(
        script: list[str], actions: list[tuple[str, Any]], max_attempts: int, junk: int) -> None:
    asyncio.run(_scenario(script, actions, max_attempts, junk))


async def _scenario(script: list[str], actions: list[tuple[str, Any]], max_attempts: int, junk: int) -> None:
    port = ScriptedPort([])
    sup = Supervisor(port, settings_for(max_attempts, junk), sleep=lambda s: asyncio.sleep(0))  # type: ignore[arg-type]
    port.sup = sup
    await sup.connect()
    port.script.extend(script)
    sup.start()
    second = 0
    try:
        for kind, arg in actions:
            if sup.machine.final:
                break
            if kind == "drop":
                sup._signals.put_nowait(Closed(port.generation, "TWS closed the connection", arg, False))
            elif kind == "notice":
                sup.notice(Notice(arg, 1100, "IB notice"))
            else:
                second += 1
                at = BASE + dt.timedelta(seconds=second)
                sup.on_batch(at, float(second))
                gap = sup.during_outage(at, float(second)) if sup.outage.open else None
                if gap is not None:
                    port.events.append(gap)
            await quiet(sup)
            assert sup.state in (State.STREAMING, State.STALE, State.FAILED)
    finally:
        await sup.stop()
    m = sup.machine
    event(f"final={type(port.final).__name__}, reconnects>0={sup.reconnects > 0}")
    if port.final is not None:  # gave up: the one final error, a SlobError naming the causes
        assert isinstance(port.final, ConnectionLost)
        assert m.attempts > max_attempts or m.junk > min(junk, max_attempts)
        assert isinstance(port.final, PeerNotTWS) == m.junk_tripped
        assert all(c.split(":")[0] in str(port.final) for c in m.causes[-3:])
    # outages and gaps: one ConnectionLost event per outage, one gap per closed outage
    lost = [e for e in port.events if isinstance(e, LostEvent)]
    gaps = [e for e in port.events if isinstance(e, Gap)]
    assert len(lost) == sup.outage.outages
    assert len(gaps) == sup.outage.outages - (1 if sup.outage.open else 0)
    # no tick delivered strictly inside a gap
    assert not any(g.start < BASE + dt.timedelta(seconds=n) < g.end for g in gaps for n in range(1, second + 1))
    assert all(g.start <= g.end for g in gaps)
    restored = [e for e in port.events if isinstance(e, ConnectionRestored)]
    assert len(restored) >= len(gaps)
    # nothing but SlobErrors reached the owner's on_error
    assert all(isinstance(r, SlobError) for r in port.reports)


@pytest.mark.asyncio
async def test_a_failure_while_resubscribing_after_1101_reconnects_instead_of_ending() -> None:
    port = ScriptedPort([])
    sup = Supervisor(port, settings_for(3, 2), sleep=lambda s: asyncio.sleep(0))  # type: ignore[arg-type]
    port.sup = sup
    await sup.connect()
    sup.start()
    port.script.extend(["request_timeout"])  # the resubscription after 1101 goes unanswered
    sup.notice(Notice(Event.DATA_LOST, 1101, "IB 1101: restored, data lost"))
    await quiet(sup)
    assert sup.state is State.STREAMING and port.final is None
    assert sup.reconnects == 1 and sup.machine.attempts == 1
    assert "resubscribing after" in sup.machine.causes[0]
    sup.on_batch(BASE, 1.0)
    assert sup.during_outage(BASE, 1.0) is not None and len(sup.gaps) == 1
    await sup.stop()
