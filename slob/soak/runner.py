"""Runs a soak: FakeTWS in this process, the engine in a child, the calendar and the
faults applied at their simulated moments; returns everything the checks need.

The timeline is simulated time on FakeTWS's clock, which runs at ``speed`` while CME is
open and ``closed_speed`` while it is closed. The runner waits for each moment on that
clock and applies what is due: a calendar event, a fault, a speed change. Follow-ups
measured in real seconds (a port back up, 1101/1102 after an 1100, the engine started
again after a kill) sit on a real-time timer list. While waiting it watches the engine's
process: an exit the soak did not cause is recorded and the engine is started again (a
supervisor would), so the rest of the run still tests something.

At the end: pending follow-ups are applied at once, armed faults disarmed, the clock
stopped; the engine is asked to ``sync`` (everything FakeTWS wrote has been delivered and
committed) and stopped with SIGTERM. Then FakeTWS's records and the store are read.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import importlib
import itertools
import logging
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ibapi.message import OUT

from slob.strategy.setup_planting import PlantedSetup
from slob.soak.calendar import NEW_YORK, CalendarConfig, CalendarEvent, ib_calendar, market_transitions
from slob.soak.faults import PROXY_KINDS, Fault, FaultConfig, schedule_faults
from slob.soak.market import SoakMarket, plant_days
from slob.soak.process import Child, rss_kb
from slob.testing.fake_history import history_of
from slob.testing.fake_tws import Connection, FakeTWS, RequestFault
from slob.testing.futures import is_cme_open
from slob.testing.scenario import from_ns, to_ns

__all__ = ["Applied", "ChildLife", "Fired", "RunRecord", "SoakConfig", "make_proxy", "proxy_available", "run_soak"]

log = logging.getLogger("slob.soak")
_UTC = dt.timezone.utc
#: A Monday with NQH5 the front month; 30 days from it include the March roll and both
#: daylight-saving changes (New York on the 9th, London on the 30th).
DEFAULT_START = dt.datetime(2025, 3, 3, 0, 0, tzinfo=_UTC)


@dataclass(frozen=True, kw_only=True)
class SoakConfig:
    days: float = 30.0
    seed: int = 1
    speed: float = 6000.0
    closed_speed: float = 60000.0
    night_speed: float = 2000.0
    night: tuple[dt.time, dt.time] = (dt.time(23, 40), dt.time(1, 50))  # New York: restart, then reset
    start: dt.datetime = DEFAULT_START
    trades_per_minute: float = 20.0
    plant_probability: float = 0.6
    faults: FaultConfig = field(default_factory=FaultConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    client_id: int = 1
    work_dir: Path | None = None
    keep: bool = False
    ib_options: tuple[str, ...] = ()
    child_log_level: str = "WARNING"
    start_timeout: float = 60.0
    settle_seconds: float = 2.0
    #: the fake TWS's highest server version (None: its default, 226 or
    #: $SLOB_FAKE_TWS_SERVER_VERSION); 200 soaks the classic text protocol
    server_version: int | None = None

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=self.days)

    def speed_at(self, t: dt.datetime) -> float:
        """The clock's speed at ``t``: ``night_speed`` around the nightly restart and reset
        (so their real-second outages stay minutes, not hours, of simulated time and do not
        run into each other), else ``speed`` while CME is open and ``closed_speed`` while
        it is closed."""
        local = t.astimezone(NEW_YORK).time()
        lo, hi = self.night
        if (local >= lo or local < hi) if lo > hi else lo <= local < hi:
            return self.night_speed
        return self.speed if is_cme_open(t) else self.closed_speed

    def speed_changes(self) -> list[tuple[dt.datetime, float]]:
        """Every moment in the run where :meth:`speed_at` changes, with the new speed."""
        moments = {m for m, _ in market_transitions(self.start, self.end)}
        day = self.start.astimezone(NEW_YORK).date() - dt.timedelta(days=1)
        while dt.datetime.combine(day, dt.time(0, 0), tzinfo=NEW_YORK) <= self.end:
            for t in self.night:
                moment = dt.datetime.combine(day, t, tzinfo=NEW_YORK).astimezone(_UTC)
                if self.start < moment <= self.end:
                    moments.add(moment)
            day += dt.timedelta(days=1)
        out, speed = [], self.speed_at(self.start)
        for moment in sorted(moments):
            new = self.speed_at(moment)
            if new != speed:
                out.append((moment, new))
                speed = new
        return out


@dataclass(frozen=True, slots=True)
class Fired:
    """When an armed fault met its moment: simulated and monotonic time."""

    at: dt.datetime
    monotonic_ns: int


@dataclass
class Applied:
    """A calendar event or fault as applied: simulated and monotonic time it took effect.
    ``armed``: what it armed (a FakeTWS RequestFault, a FaultProxy handle), if anything;
    ``fired`` once that met its request or frame; ``healed_ns`` when the soak undid it
    (the port listening again, connectivity restored, a stall over, the engine started
    again): the feed has recovered at the first tick after that."""

    label: str
    kind: str
    planned: dt.datetime
    sim_at: dt.datetime
    mono_ns: int
    note: str = ""
    armed: object | None = None
    fired: Fired | None = None
    until: dt.datetime | None = None  # the simulated end of a windowed event (weekend)
    healed_ns: int | None = None  # monotonic: when the soak undid it (port back, 1102/1101, engine started)


@dataclass
class ChildLife:
    number: int
    pid: int
    started_ns: int
    ended_ns: int | None
    exit_code: int | None
    why: str  # "killed" (a kill fault), "stopped" (the end), "" (exited by itself)
    rss_start_kb: int | None
    rss_end_kb: int | None
    events: list[dict[str, Any]]
    log_path: str
    log_tail: list[str]


@dataclass
class RunRecord:
    config: SoakConfig
    planted: tuple[PlantedSetup, ...]
    calendar: list[CalendarEvent]
    faults: list[Fault]
    applied: list[Applied]
    children: list[ChildLife]
    connections: list[Connection]
    never_fired: list[str]
    sim_start: dt.datetime
    sim_end: dt.datetime
    wall_seconds: float
    store_path: Path
    sent: list[Any]  # SentTick, of the soak's client
    orders: list[Any]
    executions: list[Any]
    positions: list[Any]
    problems: list[str]  # things the runner itself could not do (a start that never came...)
    server_version: int = 0  # the highest server version the fake TWS offered (the engine's IB client: all of it)
    #: IB's history service of the fake: requests served, and refused by reason ("pacing": a 162
    #: under IB's pacing rules, which the fake applies in simulated time).
    history_served: int = 0
    history_refused: dict[str, int] = field(default_factory=dict)


class _Timers:
    """Real-time follow-ups: (monotonic deadline, order, action)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), action))

    def next_in(self) -> float | None:
        return self._heap[0][0] - time.monotonic() if self._heap else None

    def run_due(self, everything: bool = False) -> None:
        while self._heap and (everything or self._heap[0][0] <= time.monotonic()):
            heapq.heappop(self._heap)[2]()


class Soak:
    def __init__(self, config: SoakConfig, say: Callable[[str], None]) -> None:
        self.cfg = config
        self.say = say
        self.planted = plant_days(config.seed, config.start, config.end, probability=config.plant_probability)
        self.calendar = ib_calendar(config.start, config.end, config.seed, config.calendar)
        self.faults = schedule_faults(config.start, config.end, config.seed, config=config.faults,
                                      calendar=self.calendar, speed_at=config.speed_at)
        self.applied: list[Applied] = []
        self.children: list[Child] = []
        self.problems: list[str] = []
        self.timers = _Timers()
        self._lost: dict[str, bool] = {}  # who holds connectivity "lost" now
        self._by_label: dict[str, Applied] = {}
        self._never: list[str] = []  # armed FakeTWS faults that never fired (disarmed at the end)
        self._restored_pending = False
        self._dir = Path(config.work_dir) if config.work_dir else Path(tempfile.mkdtemp(prefix="slob-soak-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self.store_path = self._dir / "soak.sqlite3"
        self.tws: FakeTWS | None = None
        self.proxy: Any = None
        self._port = 0
        self._samples: list[tuple[int, int]] = []  # (monotonic ns, simulated ns), to map one to the other

    # -- the child -------------------------------------------------------------------

    @property
    def child(self) -> Child | None:
        return self.children[-1] if self.children else None

    def _start_child(self) -> Child:
        n = len(self.children) + 1
        args = ["--port", str(self._port), "--store", str(self.store_path), "--client-id", str(self.cfg.client_id),
                "--log-level", self.cfg.child_log_level]
        for option in self.cfg.ib_options:
            args += ["--ib", option]
        child = Child(n, args, self._dir / f"engine-{n}.log")
        self.children.append(child)
        return child

    def _watch_child(self) -> None:
        child = self.child
        if child is None or child.alive or child.expected_exit:
            return
        code = child.reap()
        self.say(f"! engine process {child.number} exited by itself (code {code}); starting it again")
        assert self.tws is not None
        now = self.tws.clock.now()
        self._record(f"engine exit {child.number}", "unplanned_exit", now, self._now(),
                     f"exited by itself with code {code}: " + " | ".join(child.log_tail(2)))
        self._start_child()

    # -- waiting on the simulated clock --------------------------------------------------

    def _wait_until(self, moment: dt.datetime) -> None:
        assert self.tws is not None
        clock = self.tws.clock
        target = to_ns(moment)
        while True:
            self.timers.run_due()
            self._watch_child()
            now = clock.now_ns()
            self._samples.append((time.monotonic_ns(), now))
            if now >= target:
                return
            wait = clock.real_seconds_until(target)
            timer = self.timers.next_in()
            step = min(x for x in (wait if wait is not None else 0.1, timer if timer is not None else 0.1, 0.1))
            time.sleep(max(0.0, step))

    def _sim_at(self, mono_ns: int) -> dt.datetime:
        """The simulated time at monotonic ``mono_ns``, from the clock samples taken while
        waiting (at most a tenth of a second apart)."""
        samples = self._samples
        i = bisect.bisect_right(samples, (mono_ns, 2**63))
        if i == 0:
            return from_ns(samples[0][1]) if samples else self.cfg.start
        m0, s0 = samples[i - 1]
        if i == len(samples):
            return from_ns(s0)
        m1, s1 = samples[i]
        return from_ns(s0 + (s1 - s0) * (mono_ns - m0) // max(1, m1 - m0))

    # -- applying ------------------------------------------------------------------------

    def _now(self) -> tuple[dt.datetime, int]:
        assert self.tws is not None
        return self.tws.clock.now(), time.monotonic_ns()

    def _record(self, label: str, kind: str, planned: dt.datetime, at: tuple[dt.datetime, int], note: str = "",
                armed: object | None = None, until: dt.datetime | None = None,
                healed_after: float | None = None) -> Applied:
        """Note an applied event; ``at`` is (simulated, monotonic) when it began;
        ``healed_after``: real seconds until it heals by itself (a port back, a stall over)."""
        healed = at[1] + int(healed_after * 1e9) if healed_after is not None else None
        applied = Applied(label, kind, planned, at[0], at[1], note, armed, until=until, healed_ns=healed)
        self.applied.append(applied)
        self._by_label[label] = applied
        log.info("= %s %s: %s", label, kind, note)
        return applied

    def _healed(self, label: str) -> None:
        applied = self._by_label.get(label)
        if applied is not None and applied.healed_ns is None:
            applied.healed_ns = time.monotonic_ns()

    def _lose(self, holder: str) -> None:
        assert self.tws is not None
        self._lost[holder] = True
        self.tws.connectivity_lost(all_farms=True)

    def _restore(self, holder: str, data_maintained: bool) -> None:
        assert self.tws is not None
        if holder not in self._lost:
            return
        del self._lost[holder]
        self._restored_pending = self._restored_pending or not data_maintained
        if not self._lost:
            self.tws.connectivity_restored(data_maintained=not self._restored_pending, all_farms=True)
            self._restored_pending = False
        self._healed(holder)

    def _calendar(self, e: CalendarEvent) -> None:
        tws = self.tws
        assert tws is not None
        at = self._now()
        label = f"calendar {e.kind} {e.at:%m-%d %H:%M}"
        if e.kind in ("restart", "reauth"):
            self._record(label, e.kind, e.at, at, e.describe(), healed_after=e.down_seconds)
            tws.restart(e.down_seconds)
            return
        self._record(label, e.kind, e.at, at, e.describe(), until=e.until)
        if e.kind == "reset":
            self._lose(label)
            for i in range(e.repeats):
                self.timers.after(e.down_seconds * (i + 1) / (e.repeats + 1),
                                  lambda: tws.connectivity_lost(all_farms=True) if not tws.connectivity else None)
            self.timers.after(e.down_seconds, lambda: self._restore(label, e.data_maintained))
        elif e.kind == "weekend":
            self._lose(label)

    def _weekend_over(self, e: CalendarEvent) -> None:
        self._restore(f"calendar {e.kind} {e.at:%m-%d %H:%M}", False)

    def _fault(self, f: Fault) -> None:
        tws, cid = self.tws, self.cfg.client_id
        assert tws is not None
        at = self._now()
        label = f"fault {f.id}"
        armed: object | None = None
        proxy = self.proxy
        k = f.kind
        if k == "handshake_drop":
            armed = tws.drop_on_next_request("START_API", answered=f.answered, client_id=cid)
        elif k == "resubscribe_drop":
            armed = tws.drop_on_next_request(f.request, answered=f.answered, skip=f.skip, client_id=cid)
        elif k == "pacing":
            armed = tws.reject_next_request(f.request, 100, skip=f.skip, client_id=cid)
        elif k == "unanswered":
            armed = tws.ignore_next_request(f.request, skip=f.skip, client_id=cid)
        elif k == "bracket_drop":
            armed = tws.drop_on_next_request("PLACE_ORDER", skip=f.skip, client_id=cid)
        elif k == "proxy_cut" and proxy is not None:
            direction = "client" if hasattr(OUT, f.variant) else "server"  # IB's names: OUT client -> TWS
            armed = proxy.cut_after(f.variant, 1, direction=direction, before=not f.answered)
        lasts = f.seconds if k in ("stall", "proxy_stall", "trickle") else None
        self._record(label, k, f.at, at, f.describe(), armed, healed_after=lasts)
        if k == "drop" or f.trigger == "drop":
            tws.drop(cid)
        elif f.trigger == "1101":
            self._lose(label)
            self.timers.after(0.2, lambda: self._restore(label, False))
        elif k == "stall":
            tws.stall(f.seconds)
        elif k == "junk":
            tws.send_garbage(f.variant, client_id=cid)
        elif k == "lost":
            self._lose(label)
            self.timers.after(f.seconds, lambda: self._restore(label, f.variant == "1102"))
        elif k == "kill":
            child = self.child
            if child is not None:
                child.kill("killed")
                self.timers.after(f.seconds, lambda: self._restart_after_kill(label))
        elif k in PROXY_KINDS and proxy is None:
            self.problems.append(f"{label}: {k} needs FaultProxy, which this soak runs without")
        elif k == "proxy_stall" and proxy is not None:
            proxy.stall(f.seconds)
        elif k == "proxy_junk" and proxy is not None:
            proxy.inject(junk(f), to="client")
        elif k == "trickle" and proxy is not None:
            proxy.trickle(0.0005)
            self.timers.after(f.seconds, lambda: proxy.trickle(None))

    def _restart_after_kill(self, label: str) -> None:
        child = self.child
        if child is not None:
            child.proc.wait(10)
            child.reap()
        self._start_child()
        self._healed(label)

    # -- the run -------------------------------------------------------------------------

    def run(self) -> RunRecord:
        cfg = self.cfg
        began = time.monotonic()
        market = SoakMarket(cfg.seed, self.planted, trades_per_minute=cfg.trades_per_minute)
        with FakeTWS(start=cfg.start, speed=cfg.speed_at(cfg.start), seed=cfg.seed, scenarios={"NQ": market},
                     server_version=cfg.server_version) as tws:
            self.tws = tws
            self._port = tws.port
            # IB's historical pacing (60 requests in 10 minutes, 15 s between identical ones...)
            # in simulated time: what the engine's requests would meet in a real 30 days. The
            # engine leaves pacing to the fake (slob.soak.child), whose real-time pacer would
            # otherwise hold it for simulated days.
            history_of(tws).clock = lambda: tws.clock.now_ns() / 1e9
            if cfg.faults.proxy:
                self.proxy = make_proxy(tws.port)
                self._port = self.proxy.port
            try:
                self._main(tws)
            finally:
                try:
                    for child in self.children:
                        if child.alive:
                            child.kill("stopped")
                            child.proc.wait(10)
                        child.reap()
                finally:
                    if self.proxy is not None:
                        self.proxy.stop()
            return self._collect(tws, time.monotonic() - began)

    def _main(self, tws: FakeTWS) -> None:
        cfg = self.cfg
        self.say(f"soak: {cfg.days:g} simulated days from {cfg.start:%Y-%m-%d %H:%M} UTC, seed {cfg.seed}, "
                 f"{cfg.speed:g}x ({cfg.closed_speed:g}x while CME is closed); {len(self.planted)} planted setups, "
                 f"{len(self.calendar)} calendar events, {len(self.faults)} faults; work dir {self._dir}")
        tws.set_speed(0)  # hold the market until the engine is up
        first = self._start_child()
        if first.wait_event("started", timeout=cfg.start_timeout) is None:
            self.problems.append(f"the engine did not start within {cfg.start_timeout:g} s (see {first.log_path})")
            return
        first.rss_start_kb = rss_kb(first.pid)
        tws.set_speed(cfg.speed_at(tws.clock.now()))
        actions: list[tuple[dt.datetime, int, Callable[[], None]]] = []
        for e in self.calendar:
            actions.append((e.at, 1, lambda e=e: self._calendar(e)))  # type: ignore[misc]
            if e.until is not None and e.until < cfg.end:
                actions.append((e.until, 1, lambda e=e: self._weekend_over(e)))  # type: ignore[misc]
        for f in self.faults:
            actions.append((f.at, 2, lambda f=f: self._fault(f)))  # type: ignore[misc]
        for moment, speed in cfg.speed_changes():
            actions.append((moment, 0, lambda s=speed: tws.set_speed(s)))  # type: ignore[misc]
        days_said = 0
        for moment, _, action in sorted(actions, key=lambda a: (a[0], a[1])):
            self._wait_until(moment)
            try:
                action()
            except Exception as exc:  # a fault that cannot be applied must not end the soak
                log.exception("soak action at %s failed", moment)
                self.problems.append(f"the action due at {moment:%Y-%m-%d %H:%M:%S} could not be applied: {exc!r}")
            day = int((moment - cfg.start).total_seconds() // 86_400)
            if day > days_said:
                days_said = day
                self.say(f"  day {day}: {moment:%Y-%m-%d %H:%M} UTC, {len(self.applied)} events applied, "
                         f"engine process {self.child.number if self.child else 0}")
        self._wait_until(cfg.end)
        self._finish(tws)

    def _finish(self, tws: FakeTWS) -> None:
        """Heal everything, stop the clock, sync the engine, stop it cleanly."""
        cfg = self.cfg
        self._never = [f"{f.kind} {f.name}" for f in tws.disarm()]  # nothing may fire into the final sync
        if self.proxy is not None:
            self.proxy.disarm()  # also releases a hold and ends a trickle
        self.timers.run_due(everything=True)
        for holder in list(self._lost):
            self._restore(holder, True)
        tws.wait_until(lambda t: t.listening, timeout=30)
        self._watch_child()
        child = self.child
        assert child is not None
        if child.wait_event("started", timeout=cfg.start_timeout) is None:
            self.problems.append(f"engine process {child.number} did not start again before the end")
        deadline = time.monotonic() + cfg.settle_seconds  # the market runs on a little: the last recovery
        while time.monotonic() < deadline:
            self._watch_child()
            time.sleep(0.05)
        tws.set_speed(0)
        child = self.child
        assert child is not None
        mark = len(child.events)
        if not child.send("sync") or child.wait_event("synced", after=mark, timeout=60) is None:
            self.problems.append(f"engine process {child.number} did not confirm its final sync")
        child.rss_end_kb = rss_kb(child.pid)
        code = child.terminate()
        if code not in (0, None):
            self.problems.append(f"engine process {child.number} stopped with code {code}")

    def _collect(self, tws: FakeTWS, wall: float) -> RunRecord:
        never = self._never + [f"{f.kind} {f.name}" for f in tws.disarm()]
        fired = tws.fired_faults
        for a in self.applied:
            if isinstance(a.armed, RequestFault):
                hit = next((x for x in fired if x.fault is a.armed), None)
                a.fired = Fired(hit.at, hit.monotonic_ns) if hit is not None else None
            elif a.armed is not None:  # a FaultProxy handle
                records = getattr(a.armed, "records", [])
                if records:
                    ns = int(records[0].at * 1e9)
                    a.fired = Fired(self._sim_at(ns), ns)
                else:
                    never.append(str(getattr(a.armed, "what", a.armed)))
        lives = [ChildLife(c.number, c.pid, c.started_ns, c.ended_ns, c.proc.returncode, c.expected_exit,
                           c.rss_start_kb, c.rss_end_kb, list(c.events), str(c.log_path), c.log_tail())
                 for c in self.children]
        return RunRecord(
            config=self.cfg, planted=self.planted, calendar=self.calendar, faults=self.faults,
            applied=self.applied, children=lives, connections=tws.connections, never_fired=never,
            sim_start=self.cfg.start, sim_end=tws.clock.now(), wall_seconds=wall, store_path=self.store_path,
            sent=tws.sent_ticks(client_id=self.cfg.client_id), orders=tws.orders, executions=tws.executions,
            positions=tws.positions, problems=self.problems, server_version=tws.server_version,
            history_served=history_of(tws).served, history_refused=dict(history_of(tws).refused))

    def cleanup(self) -> None:
        if not self.cfg.keep and self.cfg.work_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)


def proxy_available() -> bool:
    """Whether this slob has :class:`slob.testing.FaultProxy` (the soak then runs the
    engine through it and draws the proxy's fault kinds too)."""
    try:
        importlib.import_module("slob.testing.fault_proxy")
    except ImportError:
        return False
    return True


def make_proxy(upstream_port: int) -> Any:
    """A started FaultProxy in front of FakeTWS at ``upstream_port``."""
    module = importlib.import_module("slob.testing.fault_proxy")
    return module.FaultProxy(upstream=("127.0.0.1", upstream_port)).start()


def junk(fault: Fault) -> bytes:
    """The bytes a proxy_junk fault injects (seeded by the fault): ``oversize`` a 2 GB
    length prefix mid-stream, else random bytes."""
    rng = random.Random(f"slob-soak-junk-{fault.id}-{fault.at.isoformat()}")
    if fault.variant == "oversize":
        return (0x7FFFFFFF).to_bytes(4, "big") + bytes(rng.randrange(256) for _ in range(12))
    return bytes(rng.randrange(256) for _ in range(rng.randint(8, 64)))


def run_soak(config: SoakConfig, say: Callable[[str], None] = lambda _: None) -> tuple[RunRecord, Soak]:
    """Run the soak; the caller reads the store (``record.store_path``) and then calls
    ``soak.cleanup()`` to remove the work directory (kept with ``keep``)."""
    soak = Soak(config, say)
    return soak.run(), soak
