"""The soak's checker: pure functions, properties over generated runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from slob.store.store import FillRecord
from slob.store.store import OrderRecord as StoredOrder
from slob.model import ContractRolled, Gap, Tick
from slob.soak.checks import (
    Check,
    Outage,
    RecoveryInput,
    account_orders,
    account_ticks,
    closed_market_ticks,
    compare_store_with_tws,
    explain_gaps,
    outages_without_gap,
    percentile,
    recoveries,
    verdict,
)
from slob.testing.fake_market import SentTick
from slob.testing.futures import contract_for
from slob.testing.order_records import ExecutionRecord, OrderInfo, PositionRecord

UTC = dt.timezone.utc
T0 = 1_741_000_000  # 2025-03-03, a Monday, CME open
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def at(second: float) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=second)


def sent(trade: int, second: int, price: float = 20000.0, size: int = 1, contract: str = "NQH5", *,
         resend: bool = False, req: int = 1000) -> SentTick:
    return SentTick(1, 1, req, contract, second, price, size, "AllLast", resend, trade, 0)


def tick(s: SentTick) -> Tick:
    return Tick("NQ", s.price, float(s.size), at(s.time), "CME", s.contract, 0)


# trades: (second offset, price in ticks, size); several may share a second, price and size
trades = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=40)


def _sent(rows: list[tuple[int, int, int]]) -> list[SentTick]:
    return [sent(i + 1, T0 + s, 20000 + 0.25 * p, z) for i, (s, p, z) in enumerate(sorted(rows))]


@given(trades)
def test_delivering_exactly_what_was_sent_passes(rows: list[tuple[int, int, int]]) -> None:
    ticks = _sent(rows)
    account = account_ticks(ticks, [tick(s) for s in ticks], [])
    assert (account.expected, account.delivered) == (len(ticks), len(ticks))
    assert (account.missing, account.lost, account.duplicates, account.unexpected) == (0, 0, 0, 0)


@given(trades, st.data())
def test_each_dropped_tick_is_lost_unless_a_gap_covers_its_second(rows: list[tuple[int, int, int]],
                                                                   data: st.DataObject) -> None:
    ticks = _sent(rows)
    drop = data.draw(st.sets(st.integers(0, len(ticks) - 1)))
    kept = [tick(s) for i, s in enumerate(ticks) if i not in drop]
    assert account_ticks(ticks, kept, []).lost == len(drop)
    lo, hi = sorted(data.draw(st.tuples(st.integers(0, 30), st.integers(0, 30))))
    gap = Gap(at(T0 + lo + 0.4), at(T0 + hi + 0.6), "test")  # whole seconds it touches count
    covered = sum(1 for i in drop if lo <= ticks[i].time - T0 <= hi)
    account = account_ticks(ticks, kept, [gap])
    assert (account.missing, account.missing_in_gaps, account.lost) == (len(drop), covered, len(drop) - covered)


@given(trades, st.data())
def test_each_extra_copy_is_a_duplicate(rows: list[tuple[int, int, int]], data: st.DataObject) -> None:
    ticks = _sent(rows)
    again = data.draw(st.lists(st.integers(0, len(ticks) - 1), max_size=5))
    delivered = [tick(s) for s in ticks] + [tick(ticks[i]) for i in again]
    account = account_ticks(ticks, delivered, [])
    assert (account.duplicates, account.lost, account.unexpected) == (len(again), 0, 0)


@given(trades)
def test_one_trade_on_two_subscriptions_is_delivered_once(rows: list[tuple[int, int, int]]) -> None:
    ticks = _sent(rows)
    both = ticks + [SentTick(1, 2, 2000, s.contract, s.time, s.price, s.size, "AllLast", False, s.trade, 1)
                    for s in ticks]  # the new subscription repeats every trade number
    account = account_ticks(both, [tick(s) for s in ticks], [])
    assert (account.expected, account.lost, account.duplicates) == (len(ticks), 0, 0)
    twice = account_ticks(both, [tick(s) for s in both], [])
    assert twice.duplicates == len(ticks)


def test_identical_real_trades_in_one_second_must_all_arrive() -> None:
    ticks = [sent(1, T0), sent(2, T0), sent(3, T0)]  # same second, price, size: three trades
    account = account_ticks(ticks, [tick(ticks[0])], [])
    assert (account.expected, account.lost) == (3, 2)
    assert account.lost_examples[0]["missing"] == 2


def test_resends_and_other_contracts_are_optional_but_only_once() -> None:
    ticks = [sent(1, T0), sent(1, T0 + 5, resend=True), sent(2, T0 + 6, resend=True),
             sent(3, T0 + 7, contract="NQM5")]
    nothing_optional = account_ticks(ticks, [tick(ticks[0])], [])
    assert (nothing_optional.expected, nothing_optional.optional, nothing_optional.lost) == (1, 3, 0)
    everything = account_ticks(ticks, [tick(s) for s in ticks], [])
    assert (everything.duplicates, everything.unexpected) == (0, 0)
    resent_twice = account_ticks(ticks, [tick(ticks[0]), tick(ticks[2]), tick(ticks[2])], [])
    assert resent_twice.duplicates == 1
    never = account_ticks(ticks, [tick(ticks[0]), Tick("NQ", 1.0, 1.0, at(T0), "CME", "NQH5", 0)], [])
    assert never.unexpected == 1


def test_the_delivering_contract_follows_the_rolls() -> None:
    ticks = [sent(1, T0, contract="NQH5"), sent(1, T0, contract="NQM5", req=2),
             sent(2, T0 + 10, contract="NQH5"), sent(2, T0 + 10, contract="NQM5", req=2)]
    roll = ContractRolled("NQ", "NQH5", "NQM5", at(T0 + 10))
    account = account_ticks(ticks, [tick(ticks[0]), tick(ticks[3])], [], [roll])
    assert (account.expected, account.optional, account.lost, account.duplicates) == (2, 2, 0, 0)
    missed = account_ticks(ticks, [tick(ticks[0]), tick(ticks[2])], [], [roll])  # stayed on the old one
    assert missed.lost == 1


def test_ticks_while_cme_is_closed_are_counted() -> None:
    saturday = 1_741_391_200  # 2025-03-08 00:00 UTC
    assert closed_market_ticks([sent(1, T0), sent(2, saturday), sent(3, saturday + 60)]) == 2


# -- gaps ----------------------------------------------------------------------------------------


def test_gaps_are_explained_by_overlapping_outages_in_the_run() -> None:
    run = (at(T0), at(T0 + 86_400))
    outage = Outage("fault 1 (drop)", at(T0 + 100), at(T0 + 160), interrupted=True)
    inside = Gap(at(T0 + 95), at(T0 + 161), "drop")
    elsewhere = Gap(at(T0 + 5000), at(T0 + 5010), "?")
    inverted = Gap(at(T0 + 120), at(T0 + 110), "clock skew")
    years = Gap(at(T0 + 100), at(T0 + 10**8), "local clock")
    verdicts = explain_gaps([inside, elsewhere, inverted, years], [outage], run=run)
    assert [(v.ok, v.explained_by, v.problem) for v in verdicts] == [
        (True, ("fault 1 (drop)",), ""), (False, (), ""), (False, ("fault 1 (drop)",), "inverted"),
        (False, ("fault 1 (drop)",), "outside the run")]
    assert outages_without_gap([outage], [inside]) == []
    assert outages_without_gap([outage], [elsewhere]) == [outage]
    quiet = Outage("calendar reset", at(T0), at(T0 + 10))  # the engine was not connected
    assert outages_without_gap([quiet], []) == []


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 100)), max_size=8),
       st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 100)), max_size=8))
def test_a_gap_is_explained_exactly_when_some_outage_overlaps_it(gaps: list[tuple[int, int]],
                                                                 outs: list[tuple[int, int]]) -> None:
    run = (at(T0), at(T0 + 2000))
    outages = [Outage(f"o{i}", at(T0 + s), at(T0 + s + d)) for i, (s, d) in enumerate(outs)]
    for (s, d), v in zip(gaps, explain_gaps([Gap(at(T0 + s), at(T0 + s + d), "") for s, d in gaps], outages,
                                            run=run, slack=dt.timedelta(0))):
        overlapping = {f"o{i}" for i, (os_, od) in enumerate(outs) if s <= os_ + od and s + d >= os_}
        assert set(v.explained_by) == overlapping


# -- orders --------------------------------------------------------------------------------------

NQH5 = contract_for("NQ", "H", 2025)


def order(oid: int, ref: str, *, parent: int = 0, kind: str = "MKT", action: str = "BUY", status: str = "Filled",
          filled: int = 1, client: int = 1) -> OrderInfo:
    return OrderInfo(oid, client, 100 + oid, "DU1234567", NQH5.local_symbol, NQH5.con_id, action, Decimal(1), kind,
                     None, None, "DAY", "", 0, ref, parent, True, status, "", Decimal(filled), 0.0, None, ())


def bracket(first: int, ref: str, *, stop_status: str = "Submitted") -> list[OrderInfo]:
    return [order(first, ref), order(first + 1, ref, parent=first, kind="LMT", action="SELL", status="Submitted",
                                     filled=0),
            order(first + 2, ref, parent=first, kind="STP", action="SELL", status=stop_status, filled=0)]


def position(qty: int) -> PositionRecord:
    return PositionRecord("DU1234567", NQH5, Decimal(qty), 0.0)


def test_a_complete_bracket_with_its_stop_is_clean() -> None:
    account = account_orders(bracket(1, "s1"), [position(1)], [], 1)
    assert (account.placed, account.placed_twice, account.half_placed, account.unprotected) == (1, (), (), ())


def test_twice_half_and_unprotected_are_found() -> None:
    orders = bracket(1, "s1") + bracket(4, "s1") + [order(7, "s2", status="ApiPending", filled=0)]
    orders += [order(8, "s3", filled=0, status="Cancelled")]  # a cut bracket cancelled: fine
    account = account_orders(orders, [position(2)], [], 1)
    assert account.placed == 4
    assert account.placed_twice == ("s1",)
    assert len(account.half_placed) == 1 and account.half_placed[0].startswith("s2")
    assert account.unprotected == ()  # two stops for two contracts
    lone = account_orders([order(1, "s4")], [position(1)], [], 1)
    assert lone.half_placed and lone.unprotected
    other_client = account_orders([order(1, "s5", client=2)], [], [], 1)
    assert other_client.placed == 0


def _execution(eid: str, oid: int, side: str, price: float) -> ExecutionRecord:
    return ExecutionRecord(eid, oid, 1, 100 + oid, "DU1234567", NQH5, side, Decimal(1), price, at(T0), Decimal(1),
                           price, "s1", 2.25, None, 2)


def _stored(oid: int, status: str) -> StoredOrder:
    return StoredOrder(oid, "s1", "BUY", "MKT", 1.0, status, at(T0), at(T0))


def test_store_and_tws_compared_order_by_order_fill_by_fill() -> None:
    orders = bracket(1, "s1")
    execs = [_execution("e1", 1, "BOT", 20000.0)]
    stored = [_stored(1, "Filled"), _stored(2, "Submitted"), _stored(3, "Submitted")]
    fills = [FillRecord("e1", 1, at(T0), 20000.0, 1.0)]
    assert compare_store_with_tws(stored, fills, orders, execs, [position(1)], 1) == []
    settled = compare_store_with_tws(stored + [_stored(9, "Cancelled")], fills, orders, execs, [position(1)], 1)
    assert settled == []  # an intent's leg never sent, settled as cancelled
    diffs = compare_store_with_tws(stored[:2] + [_stored(9, "Sent")], [], orders, execs, [position(1)], 1)
    assert any("order 3" in d and "not in the store" in d for d in diffs)
    assert any("order 9" in d and "never got it" in d for d in diffs)
    assert any("fill e1" in d for d in diffs)
    assert any(d.startswith("position") for d in diffs)


# -- recovery and the verdict ------------------------------------------------------------------


def test_recovery_is_the_first_tick_after_or_the_reconnect_when_closed() -> None:
    events = [RecoveryInput("a", "drop", 1_000, at(T0), True), RecoveryInput("b", "restart", 5_000, at(T0), False),
              RecoveryInput("c", "bracket_drop", None, at(T0), True),
              RecoveryInput("d", "pacing", 7_000, at(T0), True, after_ns=8_000),
              RecoveryInput("e", "kill", 20_000, at(T0), True)]
    received = [500, 3_000, 8_500, 9_000]
    got = recoveries(events, received, ready_ns=[6_000], unplanned_exit_ns=[], end_ns=30_000, closed_ns=[5_500])
    assert [(r.label, r.survived, r.seconds, r.by) for r in got] == [
        ("a", True, 2e-6, "tick"), ("b", True, 1e-6, "reconnect"), ("c", True, None, ""),
        ("d", True, 1.5e-6, "tick"), ("e", False, None, "")]
    kept = RecoveryInput("f", "weekend", 10_000, at(T0), False, healed_ns=12_000)  # 1100 .. 1101, socket kept
    (r,) = recoveries([kept], received, ready_ns=[6_000, 15_000], unplanned_exit_ns=[], end_ns=30_000,
                      closed_ns=[5_500])
    assert (r.survived, r.seconds, r.by) == (True, 2e-6, "restored")
    # a restart inside it: the engine reconnected meanwhile, recovered once it also healed
    (r,) = recoveries([kept], received, ready_ns=[11_000], unplanned_exit_ns=[], end_ns=30_000, closed_ns=[10_500])
    assert (r.seconds, r.by) == (2e-6, "reconnect")
    crashed = recoveries(events[:1], received, [], unplanned_exit_ns=[2_000], end_ns=30_000)
    assert not crashed[0].survived


def test_percentile_and_verdict() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([3.0, 1.0, 2.0], 1.0) == 3.0
    assert verdict([Check("a", 0), Check("b", 1, want=1)]) == "PASS"
    assert verdict([Check("a", 0), Check("b", 2)]) == "FAIL"


def test_a_tick_already_in_flight_is_not_a_recovery() -> None:
    stall = RecoveryInput("s", "stall", 1_000, at(T0 + 100), True)
    received = [1_500, 2_000, 3_000]
    stamps = [T0 + 99, T0 + 100, T0 + 101]  # the first two traded before (or in the second of) the fault
    (r,) = recoveries([stall], received, [], [], 10_000, stamps)
    assert (r.seconds, r.by) == (2e-6, "tick")
    (plain,) = recoveries([stall], received, [], [], 10_000)
    assert plain.seconds == 5e-7
