"""The session table (slob.live.session_machine): transitions and attempt accounting."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from slob.live.session_machine import LIVE, TRANSITIONS, Event, IllegalSessionTransition, SessionMachine, State

PROPERTY = settings(max_examples=150, stateful_step_count=60, deadline=None, derandomize=True, database=None)


def test_the_happy_path_and_a_reconnect() -> None:
    m = SessionMachine(max_attempts=2)
    for event in (Event.START, Event.CONNECTED, Event.READY, Event.RESUBSCRIBE, Event.RESUBSCRIBED,
                  Event.RECONCILED):
        m.fire(event)
    assert m.state is State.STREAMING
    assert m.fail("TWS closed the connection") is State.BACKOFF
    m.fire(Event.RETRY)
    assert m.state is State.CONNECTING and m.attempts == 1


def test_limits_count_every_failure_until_a_healthy_session() -> None:
    m = SessionMachine(max_attempts=2, state=State.STREAMING)
    assert m.fail("drop") is State.BACKOFF
    m.fire(Event.RETRY)
    assert m.fail("refused") is State.BACKOFF
    m.fire(Event.RETRY)
    assert m.fail("refused") is State.FAILED and m.causes == ["drop", "refused", "refused"]
    with pytest.raises(IllegalSessionTransition):
        m.fire(Event.RETRY)
    assert m.state is State.FAILED


def test_junk_trips_the_breaker_even_when_each_session_streamed() -> None:
    m = SessionMachine(max_attempts=10, junk_limit=2)
    m.state = State.STREAMING
    for n in (1, 2):
        m.fire(Event.HEALTHY)  # ticks flowed: the attempt count starts again...
        assert m.fail("unreadable data", junk=True) is State.BACKOFF
        for event in (Event.RETRY, Event.CONNECTED, Event.READY, Event.RESUBSCRIBE, Event.RESUBSCRIBED,
                      Event.RECONCILED):
            m.fire(event)
    m.fire(Event.HEALTHY)
    assert m.fail("unreadable data", junk=True) is State.FAILED  # ...but the junk count does not
    assert m.junk_tripped


def test_a_clean_drop_after_streaming_forgives_earlier_junk() -> None:
    m = SessionMachine(max_attempts=10, junk_limit=1, state=State.STREAMING)
    m.fail("unreadable data", junk=True)
    for event in (Event.RETRY, Event.CONNECTED, Event.READY, Event.RESUBSCRIBE, Event.RESUBSCRIBED,
                  Event.RECONCILED):
        m.fire(event)
    m.fail("TWS closed the connection")
    assert m.junk == 0 and m.state is State.BACKOFF


def test_every_live_state_can_stop_and_fail() -> None:
    for state in LIVE:
        assert TRANSITIONS[(state, Event.STOP)] is State.STOPPED
        m = SessionMachine(max_attempts=1, state=state)
        assert m.fail("x") is State.BACKOFF


class Machine(RuleBasedStateMachine):
    """Any sequence of events: illegal ones raise and change nothing; the limits hold."""

    def __init__(self) -> None:
        super().__init__()
        self.max_attempts, self.junk_limit = 3, 2
        self.m = SessionMachine(max_attempts=self.max_attempts, junk_limit=self.junk_limit)
        self.since_healthy = 0
        self.junk_run = 0
        self.streamed = False

    @rule(event=st.sampled_from([e for e in Event if e is not Event.FAILURE]))
    def fire(self, event: Event) -> None:
        before = self.m.state
        if (before, event) not in TRANSITIONS:
            with pytest.raises(IllegalSessionTransition):
                self.m.fire(event)
            assert self.m.state is before
            return
        self.m.fire(event)
        if event is Event.HEALTHY:
            self.since_healthy = 0
        if event is Event.RETRY:
            self.streamed = False
        if self.m.state is State.STREAMING:
            self.streamed = True

    @rule(junk=st.booleans())
    def fail(self, junk: bool) -> None:
        before = self.m.state
        if before not in LIVE:
            with pytest.raises(IllegalSessionTransition):
                self.m.fail("x", junk=junk)
            assert self.m.state is before
            return
        self.since_healthy += 1
        self.junk_run = self.junk_run + 1 if junk else (0 if self.streamed else self.junk_run)
        self.streamed = False
        after = self.m.fail("x", junk=junk)
        gave_up = self.since_healthy > self.max_attempts or self.junk_run > min(self.junk_limit, self.max_attempts)
        assert after is (State.FAILED if gave_up else State.BACKOFF)

    @invariant()
    def counts_match(self) -> None:
        assert self.m.attempts == self.since_healthy and self.m.junk == self.junk_run
        assert len(self.m.causes) == self.m.attempts


TestMachine = Machine.TestCase
TestMachine.settings = PROPERTY
