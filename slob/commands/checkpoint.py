"""`slob checkpoint`: the one-hour checkpoint -- stream a symbol for N minutes, then a
PASS/FAIL report (JSON + text) and an exit code that follows the verdict.

    slob checkpoint --minutes 60                    # TWS paper on 127.0.0.1:7497
    slob checkpoint --port 4002 --minutes 60        # IB Gateway paper
    slob checkpoint --sim --minutes 1               # embedded fake TWS, faults injected

What is measured and the criteria live in :mod:`slob.ops.checkpoint` (pure, unit-tested);
this module connects, streams, shows progress (rich on a terminal, plain lines
otherwise), injects the ``--sim`` faults and writes the report files. See
docs/checkpoint.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, TextIO

from slob.commands.common import EXIT_OK, EXIT_VERDICT_FAIL, positive, when

if TYPE_CHECKING:
    from ibapi.contract import ContractDetails

    from slob.config.ib_config import IBConfig

    from slob.ops.checkpoint import CheckpointRecorder
    from slob.market.sessions import CmeHours
    from slob.testing import FakeTWS

NAME = "checkpoint"
HELP = "stream a symbol for N minutes and write a PASS/FAIL report (the one-hour checkpoint)"

#: ``--sim-fault`` choices: ``none`` passes; each other one makes the run FAIL.
SIM_FAULTS = {
    "none": "only the recoverable faults (the run should PASS)",
    "restart-forever": "TWS goes away for good half-way: reconnects give up, the outage is never restored",
    "lost-forever": "IB connectivity lost (1100) half-way and never restored (no 1101/1102)",
    "long-stall": "TWS sends nothing for 1.5x --max-gap-seconds half-way: an unexplained gap",
}
#: Reconnect quickly against the fake TWS, and give up within a few seconds.
_SIM_CONFIG: dict[str, Any] = dict(reconnect_delay_seconds=0.05, max_reconnect_delay_seconds=0.4,
                                   max_reconnect_attempts=8, connect_timeout_seconds=5.0)
_UTC = dt.timezone.utc
_LIVE_PORTS = (7496, 4001)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="TWS/Gateway host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="TWS/Gateway port (default 7497, TWS paper; Gateway paper 4002)")
    p.add_argument("--client-id", type=int, default=60,
                   help="API client id (default 60, so it can run beside `slob run`)")
    p.add_argument("--symbol", default="NQ", help="what to subscribe (default NQ, the front month, rolled)")
    p.add_argument("--data-type", choices=("realtime", "delayed"), default="realtime",
                   help="realtime (default) or delayed (15-minute delayed data, for a login without a CME "
                        "subscription; streams market data, as IB has no delayed tick-by-tick)")
    p.add_argument("--tick-source", choices=("tick_by_tick", "market_data"), default=None,
                   help="tick_by_tick (default for realtime) or market_data (the default for delayed)")
    p.add_argument("--account", default="", metavar="ID",
                   help="IB account id (default: the login's); --live needs it, to confirm it")
    p.add_argument("--live", action="store_true",
                   help="allow a live port (7496/4001) or account: read-only here, but confirmed as for `slob run`")
    p.add_argument("--confirm-live", metavar="ACCOUNT", default=None,
                   help="with --live, confirm the account without a prompt (for scripts: no terminal needed)")
    p.add_argument("--minutes", type=positive, default=60.0,
                   help="how long to stream, real minutes; fractions allowed (default 60)")
    p.add_argument("--max-gap-seconds", type=positive, default=60.0,
                   help="longest unexplained quiet period allowed while the market is open (default 60)")
    p.add_argument("--report-dir", type=Path, default=Path("."),
                   help="where to write checkpoint-*.json and .txt (default: the current directory)")
    p.add_argument("--progress-seconds", type=positive, default=None,
                   help="plain progress line interval (default: run length / 20, 1..30 s)")
    sim = p.add_argument_group("simulation (--sim: an embedded fake TWS instead of a real one)")
    sim.add_argument("--sim", action="store_true",
                     help="run against an embedded fake TWS, with faults injected on a schedule")
    sim.add_argument("--sim-speed", type=positive, default=60.0,
                     help="simulated exchange seconds per real second (default 60)")
    sim.add_argument("--sim-start", type=when, default=None,
                     help="simulated start, ISO (default 2024-12-02T15:00Z, a Monday, NQZ4 front month)")
    sim.add_argument("--sim-fault", choices=sorted(SIM_FAULTS), default="none",
                     help="add a fault that makes the run FAIL: " +
                          "; ".join(f"{k}: {v}" for k, v in SIM_FAULTS.items() if k != "none"))


# -- real time --------------------------------------------------------------------------


class _RealClock:
    """Local wall-clock time from the monotonic clock (steady, comparable with the
    ``received_ns`` stamps IB's reader puts on each tick)."""

    def __init__(self) -> None:
        self._wall = dt.datetime.now(_UTC)
        self._mono = time.monotonic_ns()

    def at_ns(self, monotonic_ns: int) -> dt.datetime:
        return self._wall + dt.timedelta(microseconds=(monotonic_ns - self._mono) / 1000)

    def now(self) -> dt.datetime:
        return self.at_ns(time.monotonic_ns())


# -- the simulated faults ---------------------------------------------------------------


@dataclass(frozen=True)
class SimFault:
    at: float  # real seconds after the stream started
    name: str
    action: Callable[["FakeTWS"], object]


def sim_schedule(seconds: float, speed: float, max_gap: float, fail: str = "none") -> list[SimFault]:
    """The faults of a ``--sim`` run of ``seconds``, spread over its first 75 % so that every
    outage is over well before the end. Each fault's length is scaled to the run; a stall
    stays under half of ``max_gap`` on the exchange clock (the fake's clock runs at ``speed``)."""
    blip = min(0.05 * seconds, 0.5)
    stall = min(0.05 * seconds, 0.4 * max_gap / speed)
    down = min(0.05 * seconds, 1.0)
    faults = [
        SimFault(0.15 * seconds, "socket drop (TWS closes the API connection)", lambda t: t.drop()),
        SimFault(0.30 * seconds, "IB connectivity lost (2103, 1100)", lambda t: t.connectivity_lost()),
        SimFault(0.30 * seconds + blip, "IB connectivity restored, data kept (2104, 1102)",
                 lambda t: t.connectivity_restored(data_maintained=True)),
        SimFault(0.45 * seconds, f"stall: TWS sends nothing for {stall:.2f} s", lambda t: t.stall(stall)),
        SimFault(0.55 * seconds, f"TWS restart: sockets closed, port refusing for {down:.2f} s",
                 lambda t: t.restart(down_for=down)),
        SimFault(0.70 * seconds, "IB connectivity lost (2103, 1100)", lambda t: t.connectivity_lost()),
        SimFault(0.70 * seconds + blip, "IB connectivity restored, data lost (2104, 1101)",
                 lambda t: t.connectivity_restored(data_maintained=False)),
    ]
    if fail == "none":
        return faults
    half = 0.5 * seconds
    kept = [f for f in faults if f.at < half - blip]
    if fail == "restart-forever":
        kept.append(SimFault(half, "TWS goes away for good (port refusing until the end)",
                             lambda t: t.restart(down_for=365 * 86400.0)))
    elif fail == "lost-forever":
        kept.append(SimFault(half, "IB connectivity lost (2103, 1100), never restored",
                             lambda t: t.connectivity_lost()))
    elif fail == "long-stall":
        long = 1.5 * max_gap / speed
        kept.append(SimFault(half, f"long stall: TWS sends nothing for {long:.2f} s", lambda t: t.stall(long)))
    else:
        raise ValueError(f"unknown sim fault {fail!r}; one of {sorted(SIM_FAULTS)}")
    return kept


# -- progress ---------------------------------------------------------------------------


@dataclass
class _Snapshot:
    elapsed: float
    total: float
    ticks: int
    contract: str
    price: float | None
    exchange_at: dt.datetime | None
    reconnects: int
    outages: int
    outage_open: bool
    longest_gap: float
    market_open: bool
    errors: int


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _line(s: _Snapshot) -> str:
    rate = s.ticks / s.elapsed if s.elapsed > 0 else 0.0
    last = (f"{s.contract} {s.price:.2f} @ {s.exchange_at:%H:%M:%S}" if s.price is not None and s.exchange_at
            else "no tick yet")
    state = "OUTAGE" if s.outage_open else "market open" if s.market_open else "market closed (halt)"
    return (f"[{_mmss(s.elapsed)}/{_mmss(s.total)}] ticks {s.ticks} ({rate:.0f}/s)  {last}  "
            f"reconnects {s.reconnects}  outages {s.outages}  longest gap {s.longest_gap:.1f} s  {state}"
            + (f"  errors {s.errors}" if s.errors else ""))


class _Display(Protocol):
    def note(self, elapsed: float, text: str) -> None: ...
    def update(self, snapshot: _Snapshot) -> None: ...
    def close(self) -> None: ...


class _PlainDisplay:
    """One progress line every ``every`` seconds, and a line per event."""

    def __init__(self, out: TextIO, every: float) -> None:
        self.out, self.every, self._due = out, every, every

    def note(self, elapsed: float, text: str) -> None:
        print(f"[{_mmss(elapsed)}] {text}", file=self.out, flush=True)

    def update(self, snapshot: _Snapshot) -> None:
        if snapshot.elapsed >= self._due:
            self._due = (snapshot.elapsed // self.every + 1) * self.every
            print(_line(snapshot), file=self.out, flush=True)

    def close(self) -> None:
        pass


class _RichDisplay:
    """A live panel (progress bar and figures) for terminals; events scroll above it."""

    def __init__(self, out: TextIO, title: str) -> None:
        from rich.live import Live

        from slob.commands.live_view import console

        self.title = title
        self.console = console(file=out)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def note(self, elapsed: float, text: str) -> None:
        self.live.console.print(f"[{_mmss(elapsed)}] {text}", markup=False, highlight=False)

    def update(self, snapshot: _Snapshot) -> None:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        s = snapshot
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        rate = s.ticks / s.elapsed if s.elapsed > 0 else 0.0
        grid.add_row("time", f"{_mmss(s.elapsed)} / {_mmss(s.total)}")
        grid.add_row("ticks", f"{s.ticks}  ({rate:.0f}/s)")
        last = f"{s.contract} {s.price:.2f} at {s.exchange_at:%Y-%m-%d %H:%M:%S} UTC" \
            if s.price is not None and s.exchange_at else "no tick yet"
        grid.add_row("last", last)
        state = "[red]OUTAGE[/]" if s.outage_open else "open" if s.market_open else "closed (scheduled halt)"
        grid.add_row("market", state)
        grid.add_row("reconnects", f"{s.reconnects}   outages {s.outages}   errors {s.errors}")
        grid.add_row("longest gap", f"{s.longest_gap:.1f} s")
        bar = ProgressBar(total=max(s.total, 1e-9), completed=min(s.elapsed, s.total))
        self.live.update(Panel(Group(bar, grid), title=self.title), refresh=False)

    def close(self) -> None:
        self.live.stop()


def _display(out: TextIO, total: float, every: float | None, title: str) -> _Display:
    isatty = getattr(out, "isatty", None)
    if callable(isatty) and isatty():
        return _RichDisplay(out, title)
    return _PlainDisplay(out, every or min(30.0, max(1.0, total / 20)))


# -- the run ----------------------------------------------------------------------------


@dataclass
class _Outcome:
    report: dict[str, Any]
    interrupted: bool = False
    faults: list[dict[str, Any]] = field(default_factory=list)


def _hours(details: "ContractDetails | None") -> "CmeHours":
    from slob.ib.errors import SlobError
    from slob.market.sessions import CmeHours

    if details is None:
        return CmeHours.default()
    try:
        return CmeHours(details.tradingHours or "", details.timeZoneId or "US/Central")
    except (SlobError, ValueError, KeyError):
        return CmeHours.default()


def _report_dir(path: Path) -> Path:
    """Create the directory and check it is writable now, not after an hour of streaming."""
    from slob.ib.errors import ConfigError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report directory {path}: {exc}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"the report directory {path} is not writable; choose another with --report-dir")
    return path


def _write(report: dict[str, Any], text: str, directory: Path, stamp: str) -> tuple[Path, Path]:
    base = directory / stamp
    n = 0
    while base.with_suffix(".json").exists() or base.with_suffix(".txt").exists():
        n += 1
        base = directory / f"{stamp}-{n}"
    json_path, text_path = base.with_suffix(".json"), base.with_suffix(".txt")
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    text_path.write_text(text, encoding="utf-8")
    return json_path, text_path


def ib_config(args: argparse.Namespace, *, port: int | None = None) -> IBConfig:
    """The connection ``args`` describe (``port``: the embedded fake's). Raises
    LiveTradingRefused for a live port or account without --live, ConfigError for bad values."""
    from slob.config.ib_config import IBConfig
    from slob.ib.errors import ConfigError

    if args.confirm_live is not None and not args.live:
        raise ConfigError("--confirm-live confirms live trading: add --live (or drop --confirm-live)")
    if args.live and args.sim:
        raise ConfigError("--live is for a real TWS / IB Gateway; the embedded fake (--sim) is paper only")
    source = args.tick_source or ("market_data" if args.data_type == "delayed" else "tick_by_tick")
    common: dict[str, Any] = dict(client_id=args.client_id, account=args.account, data_type=args.data_type,
                                  tick_source=source, paper_trading=not args.live, allow_live=args.live)
    if port is not None:
        return IBConfig(host="127.0.0.1", port=port, **common, **_SIM_CONFIG)
    return IBConfig(host=args.host, port=args.port, **common)


def run(args: argparse.Namespace, out: TextIO) -> int:
    import sys

    from slob.ops.checkpoint import render_text
    from slob.commands.run import confirm_live

    if not args.sim:
        config = ib_config(args)  # refuses a live port or a bad value before anything starts
        if config.port in _LIVE_PORTS or args.live:
            confirm_live(config.account, confirmation=args.confirm_live, stdin=sys.stdin, prompt=sys.stderr,
                         account_hint="--account")
    else:
        ib_config(args, port=7497)  # the values, before the fake starts on its own port
    directory = _report_dir(args.report_dir)
    started = dt.datetime.now(_UTC)
    symbol_tag = re.sub(r"[^A-Za-z0-9]+", "", args.symbol.upper()) or "symbol"
    stamp = f"checkpoint-{symbol_tag}{'-sim' if args.sim else ''}-{started:%Y%m%dT%H%M%SZ}"
    outcome = asyncio.run(_checkpoint(args, out))
    text = render_text(outcome.report)
    json_path, text_path = _write(outcome.report, text, directory, stamp)
    print("", file=out)
    print(text, end="", file=out)
    print(f"\nreport: {json_path}\n        {text_path}", file=out, flush=True)
    if outcome.interrupted:
        raise KeyboardInterrupt
    return EXIT_OK if outcome.report["verdict"] == "PASS" else EXIT_VERDICT_FAIL


async def _checkpoint(args: argparse.Namespace, out: TextIO) -> _Outcome:
    tws: FakeTWS | None = None
    if args.sim:
        from slob.testing import FakeTWS

        tws = FakeTWS(speed=args.sim_speed, start=args.sim_start).start()
    try:
        return await _stream(args, out, tws)
    finally:
        if tws is not None:
            tws.stop()


async def _stream(args: argparse.Namespace, out: TextIO, tws: "FakeTWS | None") -> _Outcome:
    from slob import __version__
    from slob.ops.checkpoint import REAL, CheckpointRecorder, ClockMap
    from slob.ib.errors import SlobError
    from slob.live import IBWSFetcher
    from slob.model import ConnectionLost, ConnectionRestored, ContractRolled, Tick

    total = args.minutes * 60.0
    symbol = " ".join(args.symbol.split())  # the same text for the subscription and the checks
    real = _RealClock()
    config = ib_config(args, port=tws.port if tws is not None else None)
    fetcher = IBWSFetcher(config=config)
    where = f"{config.host}:{config.port}" + (" (embedded fake TWS)" if tws is not None else "")
    print(f"checkpoint: {symbol} from {where}, client id {config.client_id}, for {args.minutes:g} min; "
          f"unexplained gaps over {args.max_gap_seconds:g} s fail", file=out, flush=True)
    listener: asyncio.Task[None] | None = None
    injector: asyncio.Task[None] | None = None
    display: _Display | None = None
    recorder: CheckpointRecorder | None = None
    faults_done: list[dict[str, Any]] = []
    interrupted = False
    feed_error: str | None = None
    stats: dict[str, Any] = {}
    info: dict[str, Any] = {}
    stream_start = real.now()
    try:
        await fetcher.connect()
        info = fetcher.get_stats()
        print(f"connected: server version {info['server_version']}, ibapi {info['ibapi_version']}",
              file=out, flush=True)
        if tws is not None:
            clock = ClockMap(real.now(), tws.clock.now(), tws.clock.speed)
        else:
            server = await fetcher.server_time()
            clock = ClockMap(real.now(), server, 1.0)
        stream_start = real.now()
        await fetcher.subscribe([symbol])
        contract = fetcher.get_stats()["contracts"].get(symbol.upper(), "?")
        rec = recorder = CheckpointRecorder(symbol, hours=_hours(fetcher.details_for(symbol)),
                                            clock=clock, stream_start=stream_start,
                                            max_gap_seconds=args.max_gap_seconds)
        print(f"{symbol} -> {contract}; exchange clock {clock.to_exchange(stream_start):%Y-%m-%d %H:%M:%S} UTC"
              + (f" at {clock.speed:g}x" if clock.speed != 1 else ""), file=out, flush=True)
        disp = display = _display(out, total, args.progress_seconds, f"slob checkpoint {symbol}")

        def elapsed() -> float:
            return (real.now() - stream_start).total_seconds()

        def on_tick(tick: Tick) -> None:
            rec.tick(tick, real.at_ns(tick.received_ns))

        def on_event(event: object) -> None:
            rec.event(event, real.now())
            if isinstance(event, ConnectionLost):
                disp.note(elapsed(), f"! connection lost: {event.cause}")
            elif isinstance(event, ConnectionRestored):
                disp.note(elapsed(), f"= connection restored ({event.cause}"
                                     f"{'; data lost, resubscribed' if event.data_lost else ''})")
            elif isinstance(event, ContractRolled):
                disp.note(elapsed(), f"= {event.symbol} rolled {event.old} -> {event.new} at {event.at:%H:%M:%S}")

        def on_error(exc: BaseException) -> None:
            rec.error(exc, real.now())
            disp.note(elapsed(), f"! {exc}")

        fetcher.on_tick, fetcher.on_event, fetcher.on_error = on_tick, on_event, on_error
        listener = asyncio.create_task(fetcher.listen(), name="slob-checkpoint-listen")
        if tws is not None:
            schedule = sim_schedule(total, tws.clock.speed, args.max_gap_seconds, args.sim_fault)
            injector = asyncio.create_task(_inject(tws, schedule, elapsed, disp, faults_done),
                                           name="slob-checkpoint-faults")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, total - elapsed())
        try:
            while (left := deadline - loop.time()) > 0 and not listener.done():
                await asyncio.wait({listener}, timeout=min(0.25, left))
                longest = rec.longest(REAL)
                counts = rec.counts
                disp.update(_Snapshot(
                    elapsed(), total, counts.ticks, counts.last_contract, counts.last_price, counts.last_exchange,
                    fetcher.reconnects, len(rec.outage_log.outages()), rec.outage_log.open,
                    longest.seconds if longest else 0.0, rec.hours.is_open(clock.to_exchange(real.now())),
                    rec.error_count))
        except asyncio.CancelledError:
            interrupted = True  # Ctrl-C: stop streaming, still write the report
    finally:
        for task in (injector,):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await fetcher.disconnect()
        if listener is not None:
            try:
                await listener
            except SlobError as exc:
                feed_error = str(exc)
        stats = fetcher.get_stats()  # after the listener drained: its counts match what we saw
        if display is not None:
            display.close()
    assert recorder is not None  # set before anything that can end the stream normally
    run_info: dict[str, Any] = {
        "mode": "sim" if tws is not None else "paper",
        "host": config.host,
        "port": config.port,
        "client_id": config.client_id,
        "minutes": args.minutes,
        "interrupted": interrupted,
        "slob_version": __version__,
        "ibapi_version": stats.get("ibapi_version"),
        "server_version": info.get("server_version"),
        "sim": None if tws is None else {
            "speed": tws.clock.speed,
            "fault": args.sim_fault,
            "faults": faults_done,
        },
    }
    report = recorder.report(real_end=real.now(), run=run_info, stats=stats, feed_error=feed_error)
    return _Outcome(report, interrupted, faults_done)


async def _inject(tws: "FakeTWS", schedule: list[SimFault], elapsed: Callable[[], float], display: _Display,
                  done: list[dict[str, Any]]) -> None:
    """Run the faults at their times (real seconds after the stream started)."""
    for fault in sorted(schedule, key=lambda f: f.at):
        wait = fault.at - elapsed()
        if wait > 0:
            await asyncio.sleep(wait)
        at = elapsed()
        display.note(at, f"sim fault: {fault.name}")
        done.append({"at_seconds": round(at, 3), "fault": fault.name,
                     "exchange_at": tws.clock.now().isoformat()})
        fault.action(tws)
