"""The soak's invariants, as pure functions over what was recorded.

Nothing here reads a file, a socket or a clock: the runner collects what FakeTWS sent and
holds (:meth:`~slob.testing.FakeTWS.sent_ticks`, orders, executions, positions), what the
engine's store holds (ticks, gaps, rolls, orders, fills) and what the soak did (faults,
calendar events, child exits), and these functions compare them. Each returns plain
data the report prints; :func:`verdict` lists the checks that decide PASS or FAIL.

**Ticks.** A trade is identified by the fake's trade number: one trade written to two
subscriptions of the engine (around a resubscription) is one trade. What the engine must
deliver is every trade written live to it on the contract it was delivering at that
second -- the contract changes at each :class:`~slob.model.ContractRolled` (its ``at`` is
the new contract's first tick). Trades only ever written as a resend (a market-data
snapshot repeating the last trade) and trades of another contract (the next contract
requested before a roll, the old one still streaming after it) *may* be delivered, once.
The comparison is an exact multiset per (contract, exchange second, price, size):
``missing`` = expected - delivered, ``duplicates`` = delivered beyond expected + optional.
A missing trade is *lost* unless its second overlaps a recorded gap
(``floor(start) <= second <= floor(end)``: the trade happened during the outage).

**Planted setups** (:func:`account_planted`). Each planted setup must be traded exactly
once -- one bracket with its id as orderRef -- whatever restarts and outages happen
around it, because the engine replays the minutes it missed (market memory) and never
sends a setup twice. The one excuse: its trigger candle fell in minutes the engine had to
replay from memory (it was down, or an outage was open, when the trigger closed); by the
time it knew, the moment to enter had passed, and it rightly did not chase it.
"""

from __future__ import annotations

import bisect
import collections
import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Sequence

from slob.strategy.setup_planting import PlantedSetup
from slob.store.store import ConnectionEvent, FillRecord
from slob.store.store import OrderRecord as StoredOrder
from slob.model import ConnectionLost, ContractRolled, Gap, Tick
from slob.testing.fake_market import SentTick
from slob.testing.futures import is_cme_open
from slob.testing.order_records import UNTRANSMITTED, ExecutionRecord, OrderInfo, PositionRecord

__all__ = [
    "Check",
    "FaultRecovery",
    "GapVerdict",
    "OrderAccount",
    "Outage",
    "PlantedAccount",
    "RecoveryInput",
    "TickAccount",
    "account_orders",
    "account_planted",
    "account_ticks",
    "closed_market_ticks",
    "compare_store_with_tws",
    "explain_gaps",
    "first_tick_after",
    "outages_without_gap",
    "percentile",
    "recoveries",
    "verdict",
]

Key = tuple[str, int, float, float]  # contract, exchange second, price, size
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_DEAD = frozenset({"Cancelled", "ApiCancelled", "Inactive"})
_LIVE = frozenset({"PreSubmitted", "Submitted"})


def _second(t: dt.datetime) -> int:
    return math.floor((t - _EPOCH).total_seconds())


# -- ticks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickAccount:
    """Sent against delivered; see the module docstring. ``*_examples`` show a few."""

    expected: int
    optional: int
    delivered: int
    missing: int
    missing_in_gaps: int
    lost: int
    duplicates: int
    unexpected: int
    lost_examples: tuple[dict[str, Any], ...] = ()
    duplicate_examples: tuple[dict[str, Any], ...] = ()
    unexpected_examples: tuple[dict[str, Any], ...] = ()


def _front_schedule(sent: Sequence[SentTick], rolls: Sequence[ContractRolled]) -> tuple[list[int], list[str]]:
    """(change seconds, contracts): contract[i] is delivered from seconds[i] on."""
    ordered = sorted(rolls, key=lambda r: r.at)
    if ordered:
        return [-(2**62)] + [_second(r.at) for r in ordered], [ordered[0].old] + [r.new for r in ordered]
    live = [s for s in sent if not s.resend]
    first = min(live, key=lambda s: (s.time, s.trade)).contract if live else ""
    return [-(2**62)], [first]


def _key(contract: str, second: int, price: float, size: float) -> Key:
    return (contract, second, float(price), float(size))


def _example(key: Key, **extra: Any) -> dict[str, Any]:
    contract, second, price, size = key
    at = (_EPOCH + dt.timedelta(seconds=second)).isoformat()
    return {"contract": contract, "time": at, "price": price, "size": size, **extra}


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint union of closed integer intervals (inverted ones ignored)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(s for s in spans if s[0] <= s[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _in_gaps(second: int, spans: Sequence[tuple[int, int]], starts: Sequence[int]) -> bool:
    i = bisect.bisect_right(starts, second)
    return i > 0 and spans[i - 1][0] <= second <= spans[i - 1][1]


def account_ticks(sent: Iterable[SentTick], delivered: Iterable[Tick], gaps: Sequence[Gap],
                  rolls: Sequence[ContractRolled] = (), *, examples: int = 10) -> TickAccount:
    """Compare the trades the engine had to deliver with what it stored (module docstring)."""
    sent = list(sent)
    changes, fronts = _front_schedule(sent, rolls)
    live: dict[Key, set[int]] = collections.defaultdict(set)
    extra: dict[Key, set[int]] = collections.defaultdict(set)
    for s in sent:
        front = fronts[bisect.bisect_right(changes, s.time) - 1]
        key = _key(s.contract, s.time, s.price, s.size)
        (extra if s.resend or s.contract != front else live)[key].add(s.trade)
    expected = {k: len(v) for k, v in live.items()}
    optional = {k: len(v - live.get(k, set())) for k, v in extra.items()}
    got = collections.Counter(_key(t.contract, _second(t.timestamp), t.price, t.size) for t in delivered)
    spans = _merged((_second(g.start), _second(g.end)) for g in gaps)
    starts = [lo for lo, _ in spans]
    missing = in_gaps = lost = dups = unexpected = 0
    lost_ex: list[dict[str, Any]] = []
    dup_ex: list[dict[str, Any]] = []
    unexpected_ex: list[dict[str, Any]] = []
    for key, n in expected.items():
        short = n - got.get(key, 0)
        if short <= 0:
            continue
        missing += short
        if _in_gaps(key[1], spans, starts):
            in_gaps += short
        else:
            lost += short
            if len(lost_ex) < examples:
                lost_ex.append(_example(key, missing=short, sent=n))
    for key, n in got.items():
        allowed = expected.get(key, 0) + optional.get(key, 0)
        if allowed == 0:
            unexpected += n
            if len(unexpected_ex) < examples:
                unexpected_ex.append(_example(key, delivered=n))
        elif n > allowed:
            dups += n - allowed
            if len(dup_ex) < examples:
                dup_ex.append(_example(key, delivered=n, sent=allowed))
    return TickAccount(sum(expected.values()), sum(optional.values()), sum(got.values()), missing, in_gaps, lost,
                       dups, unexpected, tuple(sorted(lost_ex, key=lambda e: e["time"])),
                       tuple(sorted(dup_ex, key=lambda e: e["time"])),
                       tuple(sorted(unexpected_ex, key=lambda e: e["time"])))


def closed_market_ticks(sent: Iterable[SentTick]) -> int:
    """Ticks written while CME was closed (the daily halt, weekends): the fake's own
    sanity, since its market must be quiet then."""
    seen: dict[int, bool] = {}
    count = 0
    for s in sent:
        is_open = seen.get(s.time)
        if is_open is None:
            is_open = seen[s.time] = is_cme_open(_EPOCH + dt.timedelta(seconds=s.time))
        count += not is_open
    return count


# -- gaps ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outage:
    """Something the soak did that may interrupt the feed, over simulated ``[start, end]``
    (``end``: when the feed was back). ``interrupted``: it did cut the engine off (its
    socket closed, or IB connectivity was lost while it was connected), so the store
    must hold a gap for it."""

    label: str
    start: dt.datetime
    end: dt.datetime
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class GapVerdict:
    gap: Gap
    explained_by: tuple[str, ...]
    problem: str = ""  # "inverted" (ends before it starts) or "outside the run"

    @property
    def ok(self) -> bool:
        return bool(self.explained_by) and not self.problem


def explain_gaps(gaps: Sequence[Gap], outages: Sequence[Outage], *, run: tuple[dt.datetime, dt.datetime],
                 slack: dt.timedelta = dt.timedelta(seconds=5)) -> list[GapVerdict]:
    """Each gap with the outages it overlaps (``slack`` either side). A gap that ends
    before it starts, or reaches more than an hour outside the run, is a problem whatever
    it overlaps (a clock mix-up: DESIGN §8 wants gaps in exchange time)."""
    out = []
    margin = dt.timedelta(hours=1)
    for g in gaps:
        problem = ""
        if g.end < g.start:
            problem = "inverted"
        elif g.start < run[0] - margin or g.end > run[1] + margin:
            problem = "outside the run"
        by = tuple(o.label for o in outages if g.start <= o.end + slack and g.end >= o.start - slack)
        out.append(GapVerdict(g, by, problem))
    return out


def outages_without_gap(outages: Sequence[Outage], gaps: Sequence[Gap], *,
                        slack: dt.timedelta = dt.timedelta(seconds=5)) -> list[Outage]:
    """The outages that cut the engine off but overlap no recorded gap: every outage must
    be one Gap (DESIGN §8)."""
    return [o for o in outages if o.interrupted
            and not any(g.start <= o.end + slack and g.end >= o.start - slack for g in gaps)]


# -- orders -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderAccount:
    """Brackets at FakeTWS. ``placed``: parent orders; ``placed_twice``: orderRefs with
    more than one parent; ``half_placed``: parents whose bracket is incomplete or never
    transmitted (a parent cancelled before it filled is a cut bracket cleaned up: fine);
    ``unprotected``: contracts with a position and no working stop covering it."""

    placed: int
    setups: tuple[str, ...]
    placed_twice: tuple[str, ...]
    half_placed: tuple[str, ...]
    unprotected: tuple[str, ...]
    fills: int


def account_orders(orders: Sequence[OrderInfo], positions: Sequence[PositionRecord],
                   executions: Sequence[ExecutionRecord], client_id: int) -> OrderAccount:
    mine = [o for o in orders if o.client_id == client_id]
    parents = [o for o in mine if o.parent_id == 0]
    children: dict[int, list[OrderInfo]] = collections.defaultdict(list)
    for o in mine:
        if o.parent_id:
            children[o.parent_id].append(o)
    refs = collections.Counter(o.order_ref for o in parents)
    half = []
    for p in parents:
        legs = children.get(p.order_id, [])
        if p.status in _DEAD and p.filled == 0:
            continue
        if len(legs) < 2 or any(o.status == UNTRANSMITTED for o in [p, *legs]):
            half.append(f"{p.order_ref or '?'} (parent {p.order_id} {p.status}, "
                        f"{len(legs)} of 2 children{'' if not legs else ': ' + ', '.join(o.status for o in legs)})")
    unprotected = []
    for pos in positions:
        if pos.quantity == 0:
            continue
        closing = "SELL" if pos.quantity > 0 else "BUY"
        cover = sum((o.quantity - o.filled for o in mine
                     if o.con_id == pos.contract.con_id and o.action == closing and o.status in _LIVE
                     and o.order_type in ("STP", "STP LMT")), Decimal(0))
        if cover < abs(pos.quantity):
            unprotected.append(f"{pos.contract.local_symbol} position {pos.quantity} with stops for {cover}")
    return OrderAccount(len(parents), tuple(sorted(refs)), tuple(sorted(r for r, n in refs.items() if n > 1)),
                        tuple(half), tuple(unprotected),
                        sum(1 for e in executions if e.client_id == client_id))


@dataclass(frozen=True)
class PlantedAccount:
    """Planted setups against the brackets at TWS (see the module docstring): ``traded``
    exactly once, ``twice`` or more, ``missed`` although the engine saw the trigger live,
    ``replayed``: not traded, the trigger in minutes replayed from memory."""

    traded: tuple[str, ...]
    twice: tuple[str, ...]
    missed: tuple[str, ...]
    replayed: tuple[str, ...]


_MINUTE = dt.timedelta(minutes=1)


def _floor_minute(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


def replayed_windows(events: Sequence[ConnectionEvent]) -> list[tuple[dt.datetime, dt.datetime]]:
    """The minutes the engine replayed from memory rather than saw live, one stretch per
    recorded gap: from the minute before its outage was noticed (the earliest
    ConnectionLost since the previous gap, else the gap's start) to the minute after its
    end (the join)."""
    out = []
    lost: dt.datetime | None = None
    for e in sorted(events, key=lambda e: e.end if isinstance(e, Gap) else getattr(e, "at", _EPOCH)):
        if isinstance(e, ConnectionLost):
            lost = e.at if lost is None else min(lost, e.at)
        elif isinstance(e, Gap):
            start = min(e.start, lost) if lost is not None else e.start
            out.append((_floor_minute(start) - _MINUTE, _floor_minute(e.end) + _MINUTE))
            lost = None
    return out


def account_planted(planted: Sequence[PlantedSetup], orders: Sequence[OrderInfo],
                    events: Sequence[ConnectionEvent], client_id: int) -> PlantedAccount:
    parents = collections.Counter(o.order_ref for o in orders if o.client_id == client_id and o.parent_id == 0)
    windows = replayed_windows(events)
    traded, twice, missed, replayed = [], [], [], []
    for p in planted:
        n = parents.get(p.setup_id, 0)
        if n == 1:
            traded.append(p.setup_id)
        elif n > 1:
            twice.append(p.setup_id)
        elif any(a <= p.trigger_at < b for a, b in windows):
            replayed.append(p.setup_id)
        else:
            missed.append(p.setup_id)
    return PlantedAccount(tuple(traded), tuple(twice), tuple(missed), tuple(replayed))


def compare_store_with_tws(stored_orders: Sequence[StoredOrder], stored_fills: Sequence[FillRecord],
                           orders: Sequence[OrderInfo], executions: Sequence[ExecutionRecord],
                           positions: Sequence[PositionRecord], client_id: int) -> list[str]:
    """Every difference between the engine's store and FakeTWS: orders (present, same
    status), fills (present, price, signed quantity, order) and the net position. A leg in
    the store that TWS never got is no difference when the store settled it as never
    working (Cancelled/ApiCancelled/Inactive, no fill): an intent cut before it was sent."""
    diffs: list[str] = []
    mine = {o.order_id: o for o in orders if o.client_id == client_id}
    stored = {o.order_id: o for o in stored_orders}
    for oid, o in sorted(mine.items()):
        s = stored.get(oid)
        if s is None:
            diffs.append(f"order {oid} ({o.order_ref}, {o.status} at TWS) is not in the store")
        elif s.status != o.status:
            diffs.append(f"order {oid} ({o.order_ref}): store says {s.status}, TWS says {o.status}")
    filled_ids = {f.order_id for f in stored_fills}
    for oid, s in sorted(stored.items()):
        if oid not in mine and not (s.status in _DEAD and oid not in filled_ids):
            # a leg never sent and settled as such (cancelled, unfilled) agrees with TWS
            diffs.append(f"order {oid} ({s.setup_id}) is in the store as {s.status} but TWS never got it")
    execs = {e.exec_id: e for e in executions if e.client_id == client_id}
    fills = {f.exec_id: f for f in stored_fills}
    for eid, e in sorted(execs.items()):
        f = fills.get(eid)
        signed = float(e.shares) * (1 if e.side == "BOT" else -1)
        if f is None:
            diffs.append(f"fill {eid} (order {e.order_id}, {e.side} {e.shares} @ {e.price}) is not in the store")
        elif f.price != e.price or f.quantity != signed or f.order_id != e.order_id:
            diffs.append(f"fill {eid}: store {f.quantity:+g} @ {f.price} (order {f.order_id}), "
                         f"TWS {signed:+g} @ {e.price} (order {e.order_id})")
    for eid in sorted(set(fills) - set(execs)):
        diffs.append(f"fill {eid} is in the store but not at TWS")
    tws_position = float(sum((p.quantity for p in positions), Decimal(0)))
    store_position = sum(f.quantity for f in stored_fills)
    if tws_position != store_position:
        diffs.append(f"position: store fills add up to {store_position:+g}, TWS holds {tws_position:+g}")
    return diffs


# -- recovery -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryInput:
    """One fault or calendar event as the runner saw it: ``start_ns`` (monotonic) when it
    took effect (None: an armed fault that never met its request), simulated ``sim_at``,
    and whether CME was open then. An armed fault starts at its trigger (or, without one,
    when it fired) and ``after_ns`` is when it fired: the feed has recovered at the first
    tick after both."""

    label: str
    kind: str
    start_ns: int | None
    sim_at: dt.datetime
    market_open: bool
    after_ns: int | None = None  # recovery counts from a tick after this too (an armed fault's firing)
    healed_ns: int | None = None  # when the soak undid it (port back, connectivity restored)


@dataclass(frozen=True, slots=True)
class FaultRecovery:
    label: str
    kind: str
    fired: bool
    survived: bool
    seconds: float | None  # None: not measured (not fired, or nothing to recover)
    by: str  # "tick", "reconnect", "" (not measured)


def recoveries(events: Sequence[RecoveryInput], received_ns: Sequence[int], ready_ns: Sequence[int],
               unplanned_exit_ns: Sequence[int], end_ns: int,
               stamps: Sequence[int] | None = None, closed_ns: Sequence[int] = ()) -> list[FaultRecovery]:
    """Recovery of each event: real seconds from it to the first tick delivered afterwards
    (``received_ns`` sorted: the engine's receive times; with ``stamps``, their exchange
    seconds in the same order, the first tick that also traded after the event -- not one
    already in flight), or, when the market was closed then, to the engine's next ready
    session at FakeTWS (``ready_ns`` sorted) if one of its sessions closed meanwhile
    (``closed_ns`` sorted), else to the moment the soak undid the event (``after_ns``: the
    session was kept, nothing to deliver). Survived: the feed delivered again (or, closed
    market, reconnected or kept its session) without an engine exit the soak did not
    cause, before the run ended."""
    out = []
    for e in events:
        if e.start_ns is None:
            out.append(FaultRecovery(e.label, e.kind, False, True, None, ""))
            continue
        start = e.start_ns
        fired = max(start, e.after_ns or start)
        effect = max(fired, e.healed_ns or start)
        tick = first_tick_after(received_ns, stamps, effect, _second(e.sim_at))
        cut = _first_after(closed_ns, start)  # the engine's session closed (within a second, or before it healed)
        disconnected = cut is not None and cut <= max(effect, start + 1_000_000_000)
        ready = _first_after(ready_ns, max(cut or 0, fired))
        if e.market_open and tick is not None:
            done, by = tick, "tick"
        elif not e.market_open and not disconnected:
            done, by = effect, "restored"
        elif not e.market_open and ready is not None:
            done, by = max(ready, effect), "reconnect"
        elif tick is not None:
            done, by = tick, "tick"
        else:
            done, by = None, ""
        crashed = any(start < x <= (done if done is not None else end_ns) for x in unplanned_exit_ns)
        survived = not crashed and (done is not None or not e.market_open)
        seconds = (done - start) / 1e9 if done is not None else None
        out.append(FaultRecovery(e.label, e.kind, True, survived, seconds, by))
    return out


def first_tick_after(received_ns: Sequence[int], stamps: Sequence[int] | None, after_ns: int,
                     after_second: int) -> int | None:
    """The receive time of the first tick received after ``after_ns`` that traded after
    exchange second ``after_second`` (any exchange time when ``stamps`` is None)."""
    i = bisect.bisect_right(received_ns, after_ns)
    if stamps is not None:
        while i < len(received_ns) and stamps[i] <= after_second:
            i += 1
    return received_ns[i] if i < len(received_ns) else None


def _first_after(sorted_ns: Sequence[int], after: int) -> int | None:
    i = bisect.bisect_right(sorted_ns, after)
    return sorted_ns[i] if i < len(sorted_ns) else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# -- the verdict ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the verdict: ``value`` must equal ``want`` (``detail`` explains)."""

    name: str
    value: int
    want: int = 0
    detail: str = ""
    examples: tuple[Any, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.value == self.want


def verdict(checks: Sequence[Check]) -> str:
    return "PASS" if all(c.ok for c in checks) else "FAIL"
