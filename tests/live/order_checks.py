"""Shared checks for the order tests: the store against FakeTWS's own record of orders,
executions and positions, and the bracket invariants (never placed twice, never half
placed, never a position without its stop). Importable from tests in this directory."""

from __future__ import annotations

import math
from collections import defaultdict

from slob.execution.order_executor import TradePlan
from slob.strategy.setup_tracker import Direction
from slob.store.store import Store
from slob.testing import FakeTWS
from slob.testing.order_records import OrderInfo

TERMINAL = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}


def plan(n: int = 1, direction: Direction = Direction.SHORT) -> TradePlan:
    """Setup ``n`` of 2024-12-02 15:32: entry at market, stop and target 10 points away."""
    if direction is Direction.SHORT:
        return TradePlan(f"NQ-20241202-short-1532-{n}", "NQ", direction, 21010.0, 20990.0, None)
    return TradePlan(f"NQ-20241202-long-1532-{n}", "NQ", direction, 20990.0, 21010.0, None)


def by_ref(tws: FakeTWS) -> dict[str, list[OrderInfo]]:
    out: dict[str, list[OrderInfo]] = defaultdict(list)
    for o in tws.orders:
        out[o.order_ref].append(o)
    return dict(out)


def bracket_problems(tws: FakeTWS) -> list[str]:
    """Each setup (orderRef) at TWS: at most one entry; nothing held untransmitted; a
    position from its fills has a working stop; no entry works without a working stop."""
    problems: list[str] = []
    for ref, orders in by_ref(tws).items():
        entries = [o for o in orders if o.order_type == "MKT"]
        if len(entries) > 1:
            problems.append(f"{ref}: placed twice ({[o.order_id for o in entries]})")
        held = [o.order_id for o in orders if o.status == "ApiPending"]
        if held:
            problems.append(f"{ref}: orders held untransmitted at TWS {held}")
        position = sum(float(f.shares) * (1 if f.side == "BOT" else -1) for o in orders for f in o.fills)
        stops = [o for o in orders if o.order_type == "STP" and o.status in ("PreSubmitted", "Submitted")]
        if abs(position) > 1e-9 and not stops:
            problems.append(f"{ref}: position {position:g} without a working stop")
        if any(o.status in ("PreSubmitted", "Submitted") for o in entries) and not stops:
            problems.append(f"{ref}: entry working without a stop")
    return problems


def store_problems(store: Store, tws: FakeTWS) -> list[str]:
    """Where the store disagrees with FakeTWS: every order TWS holds has the same status in
    the store; an order the store holds that never reached TWS is Cancelled; fills equal
    executions (with commission and realized P&L); positions equal the stored fills."""
    store.flush()
    problems: list[str] = []
    rows = {r.order_id: r for r in store.orders()}
    at_tws = {o.order_id: o for o in tws.orders}
    for oid, o in at_tws.items():
        row = rows.get(oid)
        if row is None:
            problems.append(f"order {oid} ({o.status} at TWS) missing in the store")
        elif row.status != o.status:
            problems.append(f"order {oid}: store {row.status}, TWS {o.status}")
    for oid, row in rows.items():
        if oid not in at_tws and row.status != "Cancelled":
            problems.append(f"order {oid} never reached TWS but the store says {row.status}")
    fills = {f.exec_id: f for f in store.fills()}
    execs = {e.exec_id: e for e in tws.executions}
    if set(fills) != set(execs):
        problems.append(f"fills {sorted(fills)} != executions {sorted(execs)}")
    for exec_id in set(fills) & set(execs):
        f, e = fills[exec_id], execs[exec_id]
        signed = float(e.shares) * (1 if e.side == "BOT" else -1)
        same_pnl = (f.realized_pnl is None) == (e.realized_pnl is None) and (
            e.realized_pnl is None or math.isclose(f.realized_pnl or 0.0, e.realized_pnl, abs_tol=1e-6))
        if (f.order_id, f.quantity, f.price, f.commission) != (e.order_id, signed, e.price, e.commission) \
                or not same_pnl:
            problems.append(f"fill {exec_id}: store {f}, TWS {e}")
    held = sum(f.quantity for f in fills.values())
    position = sum(float(p.quantity) for p in tws.positions)
    if not math.isclose(held, position, abs_tol=1e-9):
        problems.append(f"position: store {held:g}, TWS {position:g}")
    return problems


def report_pnl(store: Store, tws: FakeTWS) -> tuple[float, float]:
    """(`slob report`'s total P&L over the FakeTWS executions' trading days, the sum of
    FakeTWS's realized P&L): what a user would compare."""
    from slob.commands.report import collect
    from slob.ops.report import build_report, trading_day

    store.flush()
    days = sorted({trading_day(e.time) for e in tws.executions})
    report = build_report(collect(store, days[0], days[-1], tws.clock.now()))
    return report.total.pnl, sum(e.realized_pnl or 0.0 for e in tws.executions)
