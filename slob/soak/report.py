"""The soak's report: the checks applied to a run's record, as JSON-ready data and text.

:func:`load_store` reads what the engine stored (the one I/O here); :func:`build_report`
turns a :class:`~slob.soak.runner.RunRecord` and that into a plain dict (the ``--json``
file); :func:`render` prints it. The verdict is PASS when every check in
``report["checks"]`` holds; docs/soak.md explains each one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from slob.store.store import ConnectionEvent, FillRecord, OrderRecord, SetupRecord, Store
from slob.model import ContractRolled, Gap, Tick
from slob.soak.checks import (
    Check,
    Outage,
    RecoveryInput,
    account_orders,
    account_planted,
    account_ticks,
    closed_market_ticks,
    compare_store_with_tws,
    explain_gaps,
    first_tick_after,
    outages_without_gap,
    percentile,
    recoveries,
    verdict,
)
from slob.soak.child import ib_config, parse_options
from slob.soak.faults import FAULT_KINDS
from slob.soak.runner import Applied, RunRecord
from slob.testing.fake_tws import Connection
from slob.testing.futures import is_cme_open

__all__ = ["StoreData", "build_report", "load_store", "render"]

_CALENDAR = ("restart", "reset", "reauth", "weekend")


@dataclass(frozen=True)
class StoreData:
    ticks: list[Tick]
    events: list[ConnectionEvent]
    orders: list[OrderRecord]
    fills: list[FillRecord]
    setups: list[SetupRecord]

    @property
    def gaps(self) -> list[Gap]:
        return [e for e in self.events if isinstance(e, Gap)]

    @property
    def rolls(self) -> list[ContractRolled]:
        return [e for e in self.events if isinstance(e, ContractRolled)]


def load_store(path: Path) -> StoreData:
    """Everything the engine committed to ``path`` (missing file: empty)."""
    if not path.exists():
        return StoreData([], [], [], [], [])
    with Store(path) as store:
        return StoreData(store.ticks(), store.connection_events(), store.orders(), store.fills(), store.setups())


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


#: Faults that leave one request without its answer (a pacing rejection, silence): their
#: effect lasts until the engine's request time-out, plus its reconnect.
_WAITED_OUT = frozenset({"pacing", "unanswered"})
_RECONNECT_NS = 2_000_000_000


def _start(a: Applied) -> tuple[int | None, dt.datetime | None, int | None]:
    """When an applied event took effect (monotonic, simulated), and when its armed fault
    fired (None: nothing armed). A triggered fault starts at its trigger -- the trigger (a
    drop, a 1101) is an outage even when the armed fault then never meets its request -- a
    bracket fault when it fired; one that never fired and had no trigger has no start."""
    if a.armed is None:
        return a.mono_ns, a.sim_at, None
    if "triggered by" in a.note:
        return a.mono_ns, a.sim_at, a.fired.monotonic_ns if a.fired is not None else None
    if a.fired is None:
        return None, None, None
    return a.fired.monotonic_ns, a.fired.at, a.fired.monotonic_ns


def build_report(record: RunRecord, store: StoreData) -> dict[str, Any]:
    cfg = record.config
    ticks_by_received = sorted(store.ticks, key=lambda t: t.received_ns)
    received = [t.received_ns for t in ticks_by_received]
    stamps = [_unix(t.timestamp) for t in ticks_by_received]
    by_received = {ns: t for ns, t in zip(received, ticks_by_received)}
    ready = sorted(c.ready_ns for c in record.connections if c.client_id == cfg.client_id and c.ready_ns)
    unplanned = sorted(c.ended_ns for c in record.children if c.why == "" and c.ended_ns is not None)
    end_ns = max([c.ended_ns for c in record.children if c.ended_ns] + [0])

    mine = [c for c in record.connections if c.client_id == cfg.client_id]
    request_timeout = float(ib_config(7497, cfg.client_id, parse_options(cfg.ib_options)).request_timeout_seconds)
    inputs, outages = [], []
    for a in record.applied:
        start_ns, sim, fired_ns = _start(a)
        if a.kind != "unplanned_exit":
            inputs.append(RecoveryInput(a.label, a.kind, start_ns, sim or a.sim_at,
                                        is_cme_open(sim or a.sim_at), fired_ns, a.healed_ns))
        if start_ns is None or sim is None:
            continue
        healed = a.healed_ns or 0
        if a.kind in _WAITED_OUT and fired_ns is not None:
            # TWS rejected or ignored one request: the engine finds out only when it gives up
            # waiting for the answer, and then replaces the session -- that outage is this fault's.
            healed = max(healed, fired_ns + int(request_timeout * 1e9) + _RECONNECT_NS)
        back = first_tick_after(received, stamps, max(start_ns, fired_ns or 0, healed), _unix(sim))
        end = by_received[back].timestamp if back is not None else record.sim_end
        back_ns = back if back is not None else 2**62
        if a.until is not None:
            end = max(end, a.until)
        outages.append(Outage(f"{a.label} ({a.kind})", sim, max(end, sim),
                              _interrupted(a, start_ns, back_ns, mine)))
    closed = sorted(c.closed_ns for c in mine if c.closed_ns is not None)
    recovered = recoveries(inputs, received, ready, unplanned, end_ns or 2**62, stamps, closed)
    by_label = {r.label: r for r in recovered}

    # The engine stamps events by its own clock (the newest tick plus local time elapsed),
    # and the soak notes its actions a few milliseconds late: allow a quarter of a real
    # second of simulated time either side.
    slack = dt.timedelta(seconds=max(5.0, 0.25 * max(cfg.speed, cfg.night_speed)))
    gap_verdicts = explain_gaps(store.gaps, outages, run=(record.sim_start, record.sim_end), slack=slack)
    # a gap in the wrong clock (inverted, or outside the run) explains no lost tick
    tick_account = account_ticks(record.sent, store.ticks, [v.gap for v in gap_verdicts if not v.problem],
                                 store.rolls)
    orders = account_orders(record.orders, record.positions, record.executions, cfg.client_id)
    planted = account_planted(record.planted, record.orders, store.events, cfg.client_id)
    diffs = compare_store_with_tws(store.orders, store.fills, record.orders, record.executions, record.positions,
                                   cfg.client_id)
    closed_ticks = closed_market_ticks(record.sent)
    not_survived = [r for r in recovered if not r.survived]
    unexplained = [v for v in gap_verdicts if not v.ok]
    no_gap = outages_without_gap(outages, store.gaps, slack=slack)
    own_exits = [c for c in record.children if c.why == ""]

    checks = [
        Check("ticks lost outside recorded gaps", tick_account.lost,
              detail=f"{tick_account.missing} sent but not delivered, {tick_account.missing_in_gaps} of them inside gaps",
              examples=tick_account.lost_examples),
        Check("duplicate ticks delivered", tick_account.duplicates, examples=tick_account.duplicate_examples),
        Check("ticks delivered that FakeTWS never sent", tick_account.unexpected,
              examples=tick_account.unexpected_examples),
        Check("gaps not explained by an outage", len(unexplained),
              examples=tuple(_gap(v.gap) | {"problem": v.problem or "overlaps no outage"} for v in unexplained[:10])),
        Check("outages without a recorded gap", len(no_gap),
              examples=tuple(f"{o.label} from {_iso(o.start)} to {_iso(o.end)}" for o in no_gap[:10])),
        Check("faults and calendar events not survived", len(not_survived),
              examples=tuple(f"{r.label} ({r.kind})" for r in not_survived[:10])),
        Check("engine exits the soak did not cause", len(own_exits),
              examples=tuple(f"process {c.number} (pid {c.pid}) code {c.exit_code}: " + " | ".join(c.log_tail[-3:])
                             for c in own_exits[:5])),
        Check("setups placed twice", len(orders.placed_twice), examples=orders.placed_twice),
        Check("planted setups not traded exactly once", len(planted.twice) + len(planted.missed),
              detail=f"{len(planted.traded)} of {len(record.planted)} traded once, {len(planted.replayed)} triggered "
                     "while the engine was down or cut off (replayed from memory, rightly not chased)",
              examples=tuple(f"{sid}: traded twice" for sid in planted.twice)
              + tuple(f"{sid}: not traded although its trigger was seen live" for sid in planted.missed)),
        Check("brackets left half-placed", len(orders.half_placed), examples=orders.half_placed),
        Check("positions without a stop", len(orders.unprotected), examples=orders.unprotected),
        Check("differences between the store and TWS", len(diffs), examples=tuple(diffs[:20])),
        Check("ticks FakeTWS sent while CME was closed", closed_ticks),
        Check("history requests refused under IB's pacing rules", record.history_refused.get("pacing", 0),
              detail=f"{record.history_served} served; the rules applied in simulated time"),
        Check("runner problems", len(record.problems), examples=tuple(record.problems[:10])),
    ]

    faults_by_kind: dict[str, dict[str, Any]] = {}
    for r in recovered:
        row = faults_by_kind.setdefault(r.kind, {"count": 0, "fired": 0, "survived": 0, "recovery": []})
        row["count"] += 1
        row["fired"] += r.fired
        row["survived"] += r.fired and r.survived
        if r.seconds is not None:
            row["recovery"].append(r.seconds)
    for a in record.applied:
        if a.kind == "unplanned_exit":  # listed with the events; nothing to recover from
            row = faults_by_kind.setdefault(a.kind, {"count": 0, "fired": 0, "survived": 0, "recovery": []})
            row["count"] += 1
            row["fired"] += 1
    for row in faults_by_kind.values():
        seconds = row.pop("recovery")
        row["recovery_p50_s"], row["recovery_max_s"] = percentile(seconds, 0.5), (max(seconds) if seconds else None)
    measured = [r.seconds for r in recovered if r.seconds is not None]
    first, last = (record.children[0], record.children[-1]) if record.children else (None, None)
    placed_refs = set(orders.setups)
    stored_setups = {s.id: s.state for s in store.setups}
    schedule = []
    for a in record.applied:
        rec = by_label.get(a.label)
        schedule.append({
            "label": a.label, "kind": a.kind, "planned": _iso(a.planned), "applied": _iso(a.sim_at), "what": a.note,
            "fired": _iso(a.fired.at) if a.fired else (None if a.armed else _iso(a.sim_at)),
            "survived": rec.survived if rec else None, "recovery_s": rec.seconds if rec else None,
            "recovered_by": rec.by if rec else None,
        })
    return {
        "verdict": verdict(checks),
        "checks": [{"name": c.name, "value": c.value, "want": c.want, "ok": c.ok, "detail": c.detail,
                    "examples": list(c.examples)} for c in checks],
        "run": {
            "seed": cfg.seed, "days": cfg.days, "speed": cfg.speed, "closed_speed": cfg.closed_speed,
            "start": _iso(record.sim_start), "end": _iso(record.sim_end), "wall_seconds": round(record.wall_seconds, 1),
            "trades_per_minute": cfg.trades_per_minute, "client_id": cfg.client_id, "store": str(record.store_path),
            "ib_options": list(cfg.ib_options), "fault_proxy": cfg.faults.proxy,
            "server_version": record.server_version,
        },
        "faults": {
            "by_kind": {k: faults_by_kind[k] for k in sorted(faults_by_kind, key=_kind_order)},
            "scheduled": len(record.faults),
            "applied": sum(1 for a in record.applied if a.label.startswith("fault")),
            "armed_never_fired": list(record.never_fired),
            "recovery_p50_s": percentile(measured, 0.5), "recovery_max_s": max(measured) if measured else None,
        },
        "ticks": {
            "sent_records": len(record.sent), "expected": tick_account.expected, "optional": tick_account.optional,
            "delivered": tick_account.delivered, "missing": tick_account.missing,
            "missing_in_gaps": tick_account.missing_in_gaps, "lost": tick_account.lost,
            "duplicates": tick_account.duplicates, "unexpected": tick_account.unexpected,
        },
        "gaps": {"count": len(gap_verdicts), "explained": len(gap_verdicts) - len(unexplained),
                 "seconds_total": round(sum(max(0.0, v.gap.seconds) for v in gap_verdicts), 1),
                 "rolls": [f"{r.old} -> {r.new} at {_iso(r.at)}" for r in store.rolls]},
        "orders": {
            "parents_placed": orders.placed, "setups_with_orders": len(orders.setups), "fills": orders.fills,
            "placed_twice": list(orders.placed_twice), "half_placed": list(orders.half_placed),
            "unprotected": list(orders.unprotected), "store_differences": diffs,
            "planted": [{"setup": p.setup_id, "direction": p.direction.value, "outcome": p.outcome,
                         "orders_at_tws": p.setup_id in placed_refs, "store_state": stored_setups.get(p.setup_id),
                         "trigger": _iso(p.trigger_at), "replayed_from_memory": p.setup_id in planted.replayed}
                        for p in record.planted],
        },
        "engine": {
            "processes": len(record.children),
            "killed_by_soak": sum(1 for c in record.children if c.why == "killed"),
            "exited_by_itself": len(own_exits),
            "rss_start_kb": first.rss_start_kb if first else None, "rss_end_kb": last.rss_end_kb if last else None,
            "reconnects_seen_by_tws": max(0, len(ready) - len(record.children)),
            "logs": [c.log_path for c in record.children],
        },
        "schedule": schedule,
    }


#: Outages that stop the data without closing the socket (1100 ... 1101/1102).
_IB_SIDE = frozenset({"reset", "weekend", "lost"})


def _interrupted(a: Applied, start_ns: int, back_ns: int, connections: Sequence[Connection]) -> bool:
    """Whether ``a`` cut the engine off: one of its sessions closed between the event and
    the feed's return, or IB connectivity went while a session was ready."""
    if a.kind in _IB_SIDE or a.note.endswith("triggered by a 1101"):
        return any(c.ready_ns is not None and c.ready_ns <= start_ns and (c.closed_ns is None or c.closed_ns > start_ns)
                   for c in connections)
    return any(c.closed_ns is not None and start_ns <= c.closed_ns <= back_ns for c in connections)


def _unix(t: dt.datetime) -> int:
    return math.floor(t.timestamp())


def _kind_order(kind: str) -> tuple[int, str]:
    order = list(_CALENDAR) + list(FAULT_KINDS)
    return (order.index(kind), kind) if kind in order else (len(order), kind)


def _gap(g: Gap) -> dict[str, Any]:
    return {"start": _iso(g.start), "end": _iso(g.end), "seconds": g.seconds, "cause": g.cause}


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def render(report: dict[str, Any], *, schedule: bool = True) -> str:
    run, faults, ticks, gaps, orders, engine = (report[k] for k in ("run", "faults", "ticks", "gaps", "orders",
                                                                    "engine"))
    lines = [f"slob soak: {report['verdict']}  ({run['days']:g} simulated days from {run['start']}, seed {run['seed']}, "
             f"{run['speed']:g}x, server version {run.get('server_version') or '?'}, {run['wall_seconds']:g} s wall)",
             "", "checks:"]
    for c in report["checks"]:
        mark = "ok  " if c["ok"] else "FAIL"
        lines.append(f"  {mark} {c['name']}: {c['value']}" + (f"  ({c['detail']})" if c["detail"] else ""))
        if not c["ok"]:
            lines += [f"         {e}" for e in c["examples"][:5]]
    lines += ["", "faults and calendar events (count, fired, survived, recovery p50/max s):"]
    for kind, row in faults["by_kind"].items():
        lines.append(f"  {kind:<17} {row['count']:>4} {row['fired']:>5} {row['survived']:>5}   "
                     f"{_s(row['recovery_p50_s'])} / {_s(row['recovery_max_s'])}")
    lines.append(f"  all recoveries: p50 {_s(faults['recovery_p50_s'])} s, max {_s(faults['recovery_max_s'])} s")
    if faults["armed_never_fired"]:
        lines.append(f"  armed but never met their request: {', '.join(faults['armed_never_fired'])}")
    lines += ["", f"ticks: {ticks['expected']} to deliver (+{ticks['optional']} optional), {ticks['delivered']} delivered, "
                  f"{ticks['missing']} missing ({ticks['missing_in_gaps']} inside gaps, {ticks['lost']} lost), "
                  f"{ticks['duplicates']} duplicates, {ticks['unexpected']} never sent",
              f"gaps: {gaps['count']} ({gaps['explained']} explained), {gaps['seconds_total']:g} s in all; rolls: "
              f"{', '.join(gaps['rolls']) or 'none'}",
              f"orders: {orders['parents_placed']} brackets for {orders['setups_with_orders']} setups, "
              f"{orders['fills']} fills; planted setups traded: "
              f"{sum(p['orders_at_tws'] for p in orders['planted'])} of {len(orders['planted'])}"
              f" ({sum(p.get('replayed_from_memory', False) for p in orders['planted'])} triggered while cut off)",
              f"engine: {engine['processes']} processes ({engine['killed_by_soak']} killed by the soak, "
              f"{engine['exited_by_itself']} exited by themselves), RSS {engine['rss_start_kb']} KiB at the start, "
              f"{engine['rss_end_kb']} KiB at the end; {engine['reconnects_seen_by_tws']} reconnects"]
    if schedule:
        lines += ["", "schedule (simulated UTC; recovery in real seconds):"]
        for row in report["schedule"]:
            state = ("not fired" if row["fired"] is None else
                     f"{'survived' if row['survived'] else 'NOT SURVIVED'}"
                     + (f", {row['recovery_s']:.2f} s by {row['recovered_by']}" if row["recovery_s"] is not None else ""))
            lines.append(f"  {row['applied'][:19]}  {row['label']:<26} {row['what']}  [{state}]")
    return "\n".join(lines)

