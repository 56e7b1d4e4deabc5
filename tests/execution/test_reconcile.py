"""The pure reconciliation: the decision table row by row, its safety properties over any
TWS state (hypothesis), its idempotence, the status guard, and the store-vs-TWS
differences (a store that mirrors TWS has none; each kind of damage is named)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.execution.intents import ENTRY, STOP, TAKE_PROFIT, Intent, Leg, OrderContract, bracket, repair_legs
from slob.execution.reconcile import (CANCELLED, CLOSED, OPEN, PLACED, TERMINAL, Difference, KnownFill, KnownOrder,
                                      TwsState, Verdict, decide, differences, next_status)
from slob.ib.errors import SlobError
from slob.orders import CommissionReported, Execution, OpenOrder, PositionReported

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
UTC = dt.timezone.utc
T0 = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
NQZ4 = OrderContract(495512563, "NQZ4", "NQ")
SETUP = "NQ-20241202-short-1532-1"


def short_bracket(ids: tuple[int, int, int] = (10, 11, 12)) -> Intent:
    return bracket(setup_id=SETUP, symbol="NQ", direction="short", contract=NQZ4, quantity=1.0, stop=21010.0,
                   target=20990.0, ids=ids)


def working(leg: Leg, status: str = "Submitted", ref: str = SETUP) -> OpenOrder:
    return OpenOrder(leg.order_id, 1_351_823_369 + leg.order_id, 1, leg.parent_id or 0, ref, "NQZ4", NQZ4.con_id,
                     leg.action, leg.quantity, leg.order_type, leg.limit_price, leg.stop_price, leg.oca_group,
                     "DU1234567", status)


def fill(leg: Leg, n: int = 0, qty: float | None = None, price: float = 21000.0) -> Execution:
    shares = leg.quantity if qty is None else qty
    return Execution(9, f"0000e1a7.{leg.order_id:08x}.01.{n:02d}", leg.order_id, 0, SETUP, "NQZ4", NQZ4.con_id,
                     "BOT" if leg.action == "BUY" else "SLD", shares, price, T0, "DU1234567", shares, price)


def legs(intent: Intent) -> tuple[Leg, Leg, Leg]:
    entry, tp, sl = intent.legs
    return entry, tp, sl


# -- the table, row by row ---------------------------------------------------------------------


def test_a_working_bracket_is_left_alone() -> None:
    intent = short_bracket()
    entry, tp, sl = legs(intent)
    tws = TwsState(open_orders=(working(entry, "PreSubmitted"), working(tp, "PreSubmitted"),
                                working(sl, "PreSubmitted")))
    verdict = decide(intent, {}, tws)
    assert (verdict.state, verdict.cancel, verdict.protect) == (PLACED, (), None)
    assert dict(verdict.statuses) == {10: "PreSubmitted", 11: "PreSubmitted", 12: "PreSubmitted"}


@pytest.mark.parametrize("sent", [0, 1, 2], ids=["nothing sent", "parent held", "parent and target held"])
def test_a_bracket_cut_before_its_last_leg_is_cancelled_leg_by_leg(sent: int) -> None:
    """Held legs are invisible to reqOpenOrders: every leg not known final gets a cancel."""
    intent = short_bracket()
    stored = {leg.order_id: ("Sent" if i < sent else "Intent") for i, leg in enumerate(intent.legs)}
    verdict = decide(intent, stored, TwsState())
    assert (verdict.state, verdict.cancel, verdict.protect) == (CANCELLED, (10, 11, 12), None)
    assert set(verdict.statuses.values()) == {"Cancelled"}


def test_an_entry_working_without_its_stop_is_cancelled() -> None:
    intent = short_bracket()
    entry, tp, _ = legs(intent)
    verdict = decide(intent, {12: "Inactive"}, TwsState(open_orders=(working(entry), working(tp))))
    assert (verdict.state, verdict.cancel, verdict.protect) == (CANCELLED, (10, 11), None)
    assert verdict.statuses[12] == "Inactive"


@pytest.mark.parametrize("stop_working,target_working", [(False, False), (False, True), (True, False)])
def test_an_open_position_gets_what_it_lacks(stop_working: bool, target_working: bool) -> None:
    intent = short_bracket()
    entry, tp, sl = legs(intent)
    open_orders = tuple(working(leg) for leg, on in ((tp, target_working), (sl, stop_working)) if on)
    verdict = decide(intent, {10: "Filled", 11: "Sent", 12: "Sent"},
                     TwsState(open_orders=open_orders, executions=(fill(entry),)))
    assert verdict.state == OPEN and verdict.protect is not None
    assert (verdict.protect.stop, verdict.protect.target, verdict.protect.quantity) == (
        not stop_working, not target_working, 1.0)
    # the new exit joins the OCA group of the one still working, so one cancels the other
    assert verdict.protect.oca_group == ("" if not (stop_working or target_working) else f"slob-{SETUP}")
    assert verdict.statuses[10] == "Filled"


def test_a_closed_trade_cancels_what_still_works() -> None:
    intent = short_bracket()
    entry, tp, sl = legs(intent)
    verdict = decide(intent, {}, TwsState(open_orders=(working(sl),), executions=(fill(entry), fill(tp, 1))))
    assert (verdict.state, verdict.cancel, verdict.protect) == (CLOSED, (12,), None)
    assert dict(verdict.statuses) == {10: "Filled", 11: "Filled", 12: "Cancelled"}


def test_a_settled_intent_asks_for_nothing() -> None:
    intent = short_bracket()
    entry, tp, _ = legs(intent)
    verdict = decide(intent, {10: "Filled", 11: "Filled", 12: "Cancelled"},
                     TwsState(executions=(fill(entry), fill(tp, 1))))
    assert (verdict.state, verdict.acts) == (CLOSED, False)


def test_bracket_and_repair_shapes() -> None:
    intent = short_bracket()
    entry, tp, sl = legs(intent)
    assert (entry.action, entry.order_type, entry.transmit, entry.parent_id) == ("SELL", "MKT", False, None)
    assert (tp.action, tp.limit_price, tp.transmit, tp.parent_id) == ("BUY", 20990.0, False, 10)
    assert (sl.action, sl.stop_price, sl.transmit, sl.parent_id) == ("BUY", 21010.0, True, 10)
    assert tp.oca_group == sl.oca_group == f"slob-{SETUP}"
    repair = repair_legs(intent, quantity=1.0, stop_id=20, target_id=21, oca_group="g")
    assert [(r.role, r.order_id, r.transmit, r.parent_id, r.repair) for r in repair] == [
        (STOP, 20, True, None, True), (TAKE_PROFIT, 21, True, None, True)]  # the stop goes first
    assert intent.with_legs(repair).with_legs(repair).order_ids == (10, 11, 12, 20, 21)
    with pytest.raises(SlobError):
        short_bracket(ids=(1, 1, 2))


# -- properties over any TWS state ---------------------------------------------------------------

SITUATIONS = ("absent", "working", "filled", "partial")
STORED = ("", "Intent", "Sent", "PreSubmitted", "Submitted", "Cancelled", "Inactive", "Filled")


@st.composite
def scenes(draw: st.DrawFn) -> tuple[Intent, dict[int, str], TwsState]:
    direction = draw(st.sampled_from(["long", "short"]))
    intent = bracket(setup_id=SETUP, symbol="NQ", direction=direction, contract=NQZ4, quantity=2.0,
                     stop=21010.0 if direction == "short" else 20990.0,
                     target=20990.0 if direction == "short" else 21010.0, ids=(10, 11, 12))
    if draw(st.booleans()):  # an earlier reconciliation added exits
        intent = intent.with_legs(repair_legs(intent, quantity=2.0, stop_id=20,
                                              target_id=draw(st.sampled_from([21, None])), oca_group="r"))
    stored: dict[int, str] = {}
    open_orders: list[OpenOrder] = []
    executions: list[Execution] = []
    for leg in intent.legs:
        situation = draw(st.sampled_from(SITUATIONS))
        stored[leg.order_id] = draw(st.sampled_from(STORED))
        if situation == "working":
            open_orders.append(working(leg, draw(st.sampled_from(["PreSubmitted", "Submitted"]))))
        elif situation == "filled":
            executions.append(fill(leg))
        elif situation == "partial":
            executions.append(fill(leg, qty=1.0))
            if draw(st.booleans()):
                open_orders.append(working(leg))
    return intent, stored, TwsState(open_orders=tuple(open_orders), executions=tuple(executions))


def position_of(intent: Intent, tws: TwsState) -> float:
    filled = tws.filled_by_order()
    entered = sum(filled.get(leg.order_id, 0.0) for leg in intent.legs_of(ENTRY))
    return entered - sum(filled.get(leg.order_id, 0.0) for leg in intent.legs_of(TAKE_PROFIT, STOP))


@PROPERTY
@given(scenes())
def test_no_position_is_left_without_a_stop_and_nothing_is_entered_again(
        scene: tuple[Intent, dict[int, str], TwsState]) -> None:
    intent, stored, tws = scene
    verdict = decide(intent, stored, tws)
    working_ids = {o.order_id for o in tws.open_orders}
    filled = tws.filled_by_order()
    position = position_of(intent, tws)
    stop_working = any(leg.order_id in working_ids for leg in intent.legs_of(STOP))
    if position > 0:
        assert verdict.state == OPEN
        assert not any(leg.order_id in verdict.cancel for leg in intent.legs_of(STOP) if leg.order_id in working_ids)
        if not stop_working:
            assert verdict.protect is not None and verdict.protect.stop and verdict.protect.quantity == position
    else:
        assert verdict.protect is None  # exits only for a position that exists
        assert verdict.state in (PLACED, CLOSED, CANCELLED)
    if verdict.state == PLACED:
        assert stop_working and position == 0
    if verdict.state in (CLOSED, CANCELLED):  # nothing of this setup keeps working
        assert working_ids & set(intent.order_ids) <= set(verdict.cancel)
    assert set(verdict.cancel) <= set(intent.order_ids)
    assert not any(filled.get(i, 0.0) >= intent.leg(i).quantity for i in verdict.cancel)  # type: ignore[union-attr]
    assert set(verdict.statuses) == set(intent.order_ids)
    for order_id, status in verdict.statuses.items():
        if filled.get(order_id, 0.0) >= 2.0:
            assert status == "Filled"


def applied(intent: Intent, verdict: Verdict, stored: dict[int, str], tws: TwsState) -> tuple[Intent, dict[int, str],
                                                                                            TwsState]:
    """The world after the executor carried the verdict out at a TWS that obeyed."""
    gone = set(verdict.cancel)
    open_orders = [o for o in tws.open_orders if o.order_id not in gone]
    stored = {**stored, **verdict.statuses}
    if verdict.protect is not None:
        p = verdict.protect
        new = repair_legs(intent, quantity=p.quantity, stop_id=100 if p.stop else None,
                          target_id=101 if p.target else None, oca_group=p.oca_group or "new")
        intent = intent.with_legs(new)
        for leg in new:
            open_orders.append(working(leg))
            stored[leg.order_id] = "Sent"
    return intent, stored, dataclasses.replace(tws, open_orders=tuple(open_orders))


@PROPERTY
@given(scenes())
def test_a_second_reconciliation_changes_nothing(scene: tuple[Intent, dict[int, str], TwsState]) -> None:
    intent, stored, tws = scene
    first = decide(intent, stored, tws)
    intent2, stored2, tws2 = applied(intent, first, stored, tws)
    second = decide(intent2, stored2, tws2)
    assert not second.acts, (first, second)
    assert second.state == first.state


# -- the status guard -------------------------------------------------------------------------

ALL_STATUSES = sorted(TERMINAL | {"Intent", "Sent", "PendingSubmit", "PreSubmitted", "Submitted", ""})


@PROPERTY
@given(st.lists(st.sampled_from(ALL_STATUSES), min_size=1, max_size=8))
def test_a_status_never_moves_backwards(reports: list[str]) -> None:
    status = ""
    for new in reports:
        before, status = status, next_status(status, new)
        if before in TERMINAL:
            assert status == before or status == "Filled"
        if before == "Filled":
            assert status == "Filled"
        if new in ("Intent", "Sent") and before not in ("", "Intent", "Sent"):
            assert status == before
    if "Filled" in reports:
        assert status == "Filled"


# -- store versus TWS ------------------------------------------------------------------------------


@st.composite
def tws_states(draw: st.DrawFn) -> TwsState:
    ids = draw(st.lists(st.integers(1, 60), unique=True, max_size=8))
    split = draw(st.integers(0, len(ids)))
    open_orders = tuple(OpenOrder(i, 0, 1, 0, f"setup-{i % 3}", "NQZ4", NQZ4.con_id, "BUY", 1.0, "LMT", 21000.0,
                                  None, "", "DU1", draw(st.sampled_from(["PreSubmitted", "Submitted"])))
                        for i in ids[:split])
    executions: list[Execution] = []
    commissions: dict[str, CommissionReported] = {}
    for n, i in enumerate(ids[split:]):
        con_id = draw(st.sampled_from([NQZ4.con_id, 12345]))
        side = draw(st.sampled_from(["BOT", "SLD"]))
        e = Execution(1, f"e{n}", i, 0, f"setup-{i % 3}", "X", con_id, side, draw(st.sampled_from([1.0, 2.0])),
                      draw(st.sampled_from([21000.0, 21000.25])), T0, "DU1", 1.0, 21000.0)
        executions.append(e)
        if draw(st.booleans()):
            commissions[e.exec_id] = CommissionReported(e.exec_id, 2.25, "USD", draw(st.sampled_from([None, -4.5])))
    held: dict[int, float] = {}
    for e in executions:
        held[e.con_id] = held.get(e.con_id, 0.0) + (e.shares if e.side == "BOT" else -e.shares)
    positions = tuple(PositionReported("DU1", "X", c, q, 0.0) for c, q in held.items())
    return TwsState(open_orders, tuple(executions), commissions, positions)


def mirror(tws: TwsState) -> tuple[list[KnownOrder], list[KnownFill]]:
    orders = [KnownOrder(o.order_id, o.order_ref, o.status, o.quantity, o.con_id) for o in tws.open_orders]
    orders += [KnownOrder(e.order_id, e.order_ref, "Filled", e.shares, e.con_id) for e in tws.executions]
    fills = []
    for e in tws.executions:
        report = tws.commissions.get(e.exec_id)
        fills.append(KnownFill(e.exec_id, e.order_id, e.shares if e.side == "BOT" else -e.shares, e.price,
                               report.commission if report else None, report.realized_pnl if report else None))
    return orders, fills


def kinds(found: Sequence[Difference]) -> set[tuple[str, str]]:
    return {(d.kind, d.key) for d in found}


@PROPERTY
@given(tws_states())
def test_a_store_that_mirrors_tws_has_no_differences(tws: TwsState) -> None:
    orders, fills = mirror(tws)
    assert differences(orders, fills, tws) == ()


@PROPERTY
@given(tws_states(), st.data())
def test_each_kind_of_damage_is_named(tws: TwsState, data: st.DataObject) -> None:
    orders, fills = mirror(tws)
    if fills:
        lost = data.draw(st.sampled_from(fills))
        found = kinds(differences(orders, [f for f in fills if f is not lost], tws))
        assert ("fill missing", lost.exec_id) in found
        if lost.quantity:
            con_id = next(e.con_id for e in tws.executions if e.exec_id == lost.exec_id)
            assert ("position", str(con_id)) in found
        if tws.commissions.get(lost.exec_id) is not None:
            stale = [dataclasses.replace(f, commission=None) if f.exec_id == lost.exec_id else f for f in fills]
            assert ("commission", lost.exec_id) in kinds(differences(orders, stale, tws))
    if tws.open_orders:
        o = data.draw(st.sampled_from(tws.open_orders))
        wrong = [dataclasses.replace(k, status="Cancelled") if k.order_id == o.order_id else k for k in orders]
        assert ("order status", str(o.order_id)) in kinds(differences(wrong, fills, tws))
        missing = [k for k in orders if k.order_id != o.order_id]
        assert ("order missing", str(o.order_id)) in kinds(differences(missing, fills, tws))
    ghost = KnownOrder(999, "setup-x", "Submitted", 1.0, NQZ4.con_id)
    assert kinds(differences(orders + [ghost], fills, tws)) == {("order not open at TWS", "999")}
    done = dataclasses.replace(ghost, status="Cancelled")
    assert differences(orders + [done], fills, tws) == ()  # finished orders are not listed by TWS
