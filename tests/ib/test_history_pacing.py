"""The historical pacer (``slob.ib.history_pacing``) on an injected clock.

Properties: whatever the requests and their timing, a caller that waits what the pacer
says before each send never breaks one of IB's historical rules -- checked here by an
independent, brute-force reading of the rules -- and never waits longer than a rule
needs. The ledger's exact check (what the fake TWS answers 162 with) agrees with the same
brute-force reading."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib.history_pacing import HistoryKey, HistoryPacer, PacingLedger, PacingRules

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
RULES = PacingRules()


class Clock:
    def __init__(self, now: float = 5000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Sent:
    at: float
    key: HistoryKey


def broken_rule(log: list[Sent], key: HistoryKey, now: float, rules: PacingRules = RULES) -> str | None:
    """IB's rules read literally, over the whole log."""
    for s in log:
        if (s.key.contract, s.key.what, s.key.identity) == (key.contract, key.what, key.identity) \
                and now - s.at < rules.identical_seconds:
            return "identical"
    same = [s for s in log if (s.key.contract, s.key.what) == (key.contract, key.what)
            and now - s.at < rules.per_contract_seconds]
    if len(same) + 1 > rules.per_contract_limit:
        return "per contract"
    used = sum(s.key.weight for s in log if now - s.at < rules.window_seconds)
    if used + key.weight > rules.window_limit:
        return "window"
    return None


KEYS = st.builds(
    HistoryKey,
    contract=st.sampled_from(["NQH5", "NQM5", "ESH5"]),
    what=st.sampled_from(["TRADES", "TRADES", "MIDPOINT", "BID_ASK"]),
    identity=st.sampled_from([("a",), ("b",), ("c",), ("d",), ("e",), ("f",), ("g",)]),
)
GAPS = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=3.0), st.sampled_from([0.4, 2.0, 15.0, 60.0, 600.0]))


@PROPERTY
@given(st.lists(st.tuples(GAPS, KEYS), min_size=1, max_size=150))
def test_waiting_what_the_pacer_says_breaks_no_rule_and_waits_no_longer_than_needed(
        requests: list[tuple[float, HistoryKey]]) -> None:
    clock = Clock()
    pacer = HistoryPacer(RULES, clock=clock)
    log: list[Sent] = []
    for gap, key in requests:
        clock.now += gap
        delay = pacer.delay(key)
        assert math.isfinite(delay) and delay >= 0
        # Tight: a little earlier than the pacer says, some rule would still be broken.
        early = clock.now + delay - RULES.margin_seconds - 0.01
        if delay > RULES.margin_seconds + 0.01:
            assert broken_rule(log, key, early) is not None
        clock.now += delay
        assert broken_rule(log, key, clock.now) is None
        pacer.sent(key)
        pacer.finished()
        log.append(Sent(clock.now, key))
    assert pacer.sent_count == len(requests)


@PROPERTY
@given(st.lists(st.tuples(GAPS, KEYS), min_size=1, max_size=120), KEYS, st.floats(min_value=0, max_value=700))
def test_the_exact_check_agrees_with_the_rules(requests: list[tuple[float, HistoryKey]], key: HistoryKey,
                                               after: float) -> None:
    """What the fake TWS refuses (ledger.violation) is exactly what IB's rules forbid, for
    logs built by anyone (here: sent without pacing)."""
    ledger = PacingLedger(RULES)
    log: list[Sent] = []
    now = 100.0
    for gap, k in requests:
        now += gap
        if ledger.violation(k, now) is None:  # the fake records what it serves
            ledger.record(k, now)
            log.append(Sent(now, k))
    now += after
    assert (ledger.violation(key, now) is None) == (broken_rule(log, key, now) is None)


def test_identical_requests_wait_fifteen_seconds() -> None:
    clock = Clock(0.0)
    pacer = HistoryPacer(clock=clock)
    key = HistoryKey("NQH5", "TRADES", ("20250305-15:00:00", "86400 S"))
    assert pacer.delay(key) == 0.0
    pacer.sent(key)
    pacer.finished()
    assert pacer.delay(key) == pytest.approx(15.0 + RULES.margin_seconds)
    other = HistoryKey("NQH5", "TRADES", ("20250304-15:00:00", "86400 S"))
    assert pacer.delay(other) == 0.0


def test_a_sixth_request_for_one_contract_waits_out_two_seconds() -> None:
    clock = Clock(0.0)
    pacer = HistoryPacer(clock=clock)
    for i in range(5):
        key = HistoryKey("NQH5", "TRADES", (str(i),))
        assert pacer.delay(key) == 0.0
        pacer.sent(key)
        pacer.finished()
        clock.now += 0.1
    sixth = HistoryKey("NQH5", "TRADES", ("5",))
    assert pacer.delay(sixth) == pytest.approx(2.0 + RULES.margin_seconds - 0.5)
    assert pacer.delay(HistoryKey("NQM5", "TRADES", ("5",))) == 0.0  # another contract
    assert pacer.delay(HistoryKey("NQH5", "MIDPOINT", ("5",))) == 0.0  # another tick type


def test_the_ten_minute_budget_counts_bid_ask_twice() -> None:
    clock = Clock(0.0)
    pacer = HistoryPacer(clock=clock)
    for i in range(30):
        key = HistoryKey(f"C{i}", "BID_ASK", ())
        assert pacer.delay(key) == 0.0
        pacer.sent(key)
        pacer.finished()
        clock.now += 1.0
    late = HistoryKey("X", "TRADES", ())
    assert pacer.delay(late) == pytest.approx(600.0 + RULES.margin_seconds - 30.0)


def test_fifty_open_requests_block_the_next_until_one_ends() -> None:
    clock = Clock(0.0)
    pacer = HistoryPacer(clock=clock)
    for i in range(50):
        pacer.sent(HistoryKey(f"C{i}", "TRADES", ()))
        clock.now += 1.0
    assert pacer.open == 50
    assert pacer.delay(HistoryKey("X", "TRADES", ())) == math.inf
    pacer.finished()
    assert pacer.delay(HistoryKey("X", "TRADES", ())) == 0.0


def test_unlimited_rules_never_wait() -> None:
    pacer = HistoryPacer(PacingRules.unlimited(), clock=Clock())
    key = HistoryKey("NQH5", "TRADES", ("same",))
    for _ in range(500):
        assert pacer.delay(key) == 0.0
        pacer.sent(key)
    assert pacer.ledger.violation(key, 0.0) is None


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        PacingRules(window_limit=0)
    with pytest.raises(ValueError):
        PacingRules(identical_seconds=-1)
