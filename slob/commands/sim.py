"""`slob sim`: the fake TWS standalone, on loopback, until Ctrl-C or SIGTERM.

``--scenario`` chooses what NQ (and MNQ) trade: ``random`` (the seeded random walk, the
default), ``planted`` (one day holding a short and a long SLOB setup, built with
:func:`slob.strategy.setup_planting.plant_setup`), or a CSV/JSON file of trades. ``--fault``
injects faults on a schedule (see :func:`fault` for the syntax); the schedule's clock
starts when the first client's API session is ready, so a fault never fires into an
empty room. Both are documented in docs/reference/cli.md.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import errno
import ipaddress
import json
import math
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, TextIO

from slob.commands.common import EXIT_OK, speed, when
from slob.ib.errors import ConfigError

if TYPE_CHECKING:
    from slob.model import Candle
    from slob.testing import FakeTWS
    from slob.testing.scenario import Scenario, Trade

__all__ = ["DEFAULT_ACCOUNT", "Fault", "FaultSchedule", "PLANTED_DAY", "build", "fault", "load_trades", "loopback",
           "planted_day", "scenario", "serve"]

NAME = "sim"
HELP = "run the fake TWS standalone (loopback only) until Ctrl-C, with a chosen scenario and scheduled faults"

#: The planted scenario's default day (a Wednesday; NQH5 is the front month).
PLANTED_DAY = dt.date(2025, 3, 5)
_LSE_HIGH, _LSE_LOW = 20_100.0, 19_950.0  # the planted day's LSE session range
_TICK = 0.25
_UTC = dt.timezone.utc
_GARBAGE = ("bad_id", "truncated", "oversize")
_FAULT_FORMS = ("drop, stall:SECONDS, restart:SECONDS, 1100, 1101, 1102, error:CODE (or a bare CODE), "
                "garbage[:bad_id|truncated|oversize]")


# -- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: ``kind`` at ``at`` real seconds after the first client's API
    session was ready. ``seconds``: stall/restart duration; ``code``: the error code;
    ``garbage``: the kind of unreadable frame."""

    spec: str
    kind: str  # drop | stall | restart | lost | restored | error | garbage
    at: float
    seconds: float = 0.0
    code: int = 0
    garbage: str = ""

    def inject(self, tws: FakeTWS) -> str:
        """Apply the fault to ``tws``; returns what happened, for the log line."""
        if self.kind == "drop":
            return f"closed {tws.drop()} client socket(s)"
        if self.kind == "stall":
            tws.stall(self.seconds)
            return f"sending nothing for {self.seconds:g} s"
        if self.kind == "restart":
            tws.restart(self.seconds)
            return f"restarting: sockets closed, port refusing connections for {self.seconds:g} s"
        if self.kind == "lost":
            tws.connectivity_lost()
            return "1100: connectivity to IB lost (sockets stay up, no market data)"
        if self.kind == "restored":
            kept = self.code == 1102
            tws.connectivity_restored(data_maintained=kept)
            return f"{self.code}: connectivity restored, data {'maintained' if kept else 'lost (subscriptions dropped)'}"
        if self.kind == "error":
            from slob.testing.fake_session import TEXTS

            text = None if TEXTS.get(self.code) else f"slob sim: injected error {self.code}"
            tws.send_error(self.code, text=text)
            return f"sent error {self.code} to every client"
        tws.send_garbage(self.garbage)
        return f"sent an unreadable frame ({self.garbage})"


def _seconds(text: str, what: str, spec: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: {what} must be a number of seconds >= 0 (optionally with s, m or h: 90, 1.5m), not {text!r}")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


def fault(text: str) -> Fault:
    """Parse ``WHAT@WHEN`` (argparse type). WHEN: real seconds after the first client's API
    session was ready (``30``, ``1.5``, ``2m``). WHAT: ``drop`` (close every client socket),
    ``stall:SECONDS`` (send nothing, then deliver what queued up), ``restart:SECONDS`` (TWS
    restarting: sockets closed, the port refusing connections that long), ``1100``
    (connectivity to IB lost), ``1101``/``1102`` (restored, data lost / maintained),
    ``error:CODE`` or a bare ``CODE`` (send IB error CODE), ``garbage[:KIND]`` (an
    unreadable frame: bad_id, truncated or oversize)."""
    spec = text.strip()
    what, at_sign, moment = spec.rpartition("@")
    if not at_sign or not what:
        raise argparse.ArgumentTypeError(
            f"{spec!r} has no time: write WHAT@SECONDS, e.g. drop@30 or stall:5@60 ({_FAULT_FORMS})")
    at = _seconds(moment, "the time after @", spec)
    name, colon, arg = what.partition(":")
    name = name.strip().lower()
    if name in ("stall", "restart"):
        if not colon or not arg.strip():
            raise argparse.ArgumentTypeError(f"{spec!r}: {name} needs a duration: {name}:SECONDS@WHEN, "
                                             f"e.g. {name}:5@60")
        seconds = _seconds(arg, f"the {name} duration", spec)
        if seconds <= 0:
            raise argparse.ArgumentTypeError(f"{spec!r}: the {name} duration must be more than 0 seconds")
        return Fault(spec, name, at, seconds=seconds)
    if name == "drop":
        if colon:
            raise argparse.ArgumentTypeError(f"{spec!r}: drop takes no argument (write drop@{moment})")
        return Fault(spec, "drop", at)
    if name == "garbage":
        kind = arg.strip().lower() or "bad_id"
        if kind not in _GARBAGE:
            raise argparse.ArgumentTypeError(f"{spec!r}: garbage is one of {', '.join(_GARBAGE)}, not {kind!r}")
        return Fault(spec, "garbage", at, garbage=kind)
    code_text = arg if name == "error" else (name if not colon else "")
    if name == "error" and not code_text.strip():
        raise argparse.ArgumentTypeError(f"{spec!r}: error needs a code: error:CODE@WHEN, e.g. error:10197@45")
    if name == "error" and not code_text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{spec!r}: the error code must be a number, e.g. error:10197@45")
    if not code_text.strip().isdigit() or not 0 < int(code_text) < 2**31:
        raise argparse.ArgumentTypeError(f"{spec!r}: unknown fault {what!r}; one of {_FAULT_FORMS}")
    code = int(code_text)
    if name != "error" and code == 1100:
        return Fault(spec, "lost", at, code=code)
    if name != "error" and code in (1101, 1102):
        return Fault(spec, "restored", at, code=code)
    return Fault(spec, "error", at, code=code)


class FaultSchedule:
    """Injects ``faults`` into ``tws`` at their times, on a thread of its own. The clock
    starts when the first client's START_API arrives; faults due at the same moment fire
    in the order given. ``report`` gets one line per fault."""

    def __init__(self, tws: FakeTWS, faults: Sequence[Fault], report: Callable[[str], None]) -> None:
        self.tws = tws
        self.faults = sorted(faults, key=lambda f: f.at)  # stable: equal times keep their order
        self.report = report
        self.fired: list[Fault] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FaultSchedule:
        if self.faults and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="slob-sim-faults", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():  # wait for the first client, checking for stop
            try:
                self.tws.wait_for_request("START_API", timeout=0.25)
                break
            except TimeoutError:
                continue
        origin = time.monotonic()
        for f in self.faults:
            if self._stop.wait(max(0.0, origin + f.at - time.monotonic())):
                return
            try:
                outcome = f.inject(self.tws)
            except Exception as exc:  # a fault that cannot be applied must not end the sim
                outcome = f"failed: {exc}"
            self.fired.append(f)
            self.report(f"fault {f.spec} at +{time.monotonic() - origin:.1f} s: {outcome}")


# -- scenarios ---------------------------------------------------------------------------------


def scenario(text: str) -> str:
    """``random``, ``planted`` or the path of an existing .csv/.json file (argparse type)."""
    if text.lower() in ("random", "planted"):
        return text.lower()
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".csv", ".json"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a scenario: 'random', 'planted', or a .csv/.json file of trades (time,price,size)")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no trades file at {path}")
    return str(path)


def planted_day(day: dt.date = PLANTED_DAY) -> tuple[Candle, ...]:
    """One day of NQ 1-minute candles with two SLOB setups: a short that reaches its target,
    then -- its target candle sweeping the LSE low -- a long that is stopped out. Built from
    two :func:`plant_setup` days on the same LSE levels: the short's day up to its target,
    then the long's candles after its LIQ #1, moved in time to follow on."""
    from slob.strategy.setup_planting import plant_setup
    from slob.strategy.setup_tracker import Direction

    try:
        short = plant_setup(day, Direction.SHORT, lse_high=_LSE_HIGH, lse_low=_LSE_LOW, outcome="target")
        long = plant_setup(day, Direction.LONG, lse_high=_LSE_HIGH, lse_low=_LSE_LOW, outcome="stop")
    except ValueError as exc:
        raise ConfigError(f"cannot plant setups on {day} ({day:%A}): {exc}; pick a weekday with --start") from None
    starts = [c.start for c in long.candles]
    rest = long.candles[starts.index(long.liq1_at) + 1:]
    shift = short.candles[-1].end - rest[0].start
    return short.candles + tuple(dataclasses.replace(c, start=c.start + shift) for c in rest)


def _time(value: Any, where: str) -> dt.datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), _UTC)
    text = str(value).strip()
    try:
        return dt.datetime.fromtimestamp(float(text), _UTC)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ConfigError(f"{where}: time {text!r} is neither ISO 8601 (2025-03-05T14:30:00Z) nor Unix "
                          "seconds") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_UTC)


def _trade(row: Mapping[str, Any], where: str) -> Trade:
    from slob.testing.scenario import Trade, to_ns

    missing = [k for k in ("time", "price", "size") if row.get(k) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: no {', '.join(missing)} (every trade needs time, price and size)")
    t = _time(row["time"], where)
    try:
        price, size = float(row["price"]), float(row["size"])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: price {row['price']!r} and size {row['size']!r} must be numbers") from None
    if not (math.isfinite(price) and price > 0) or abs(price / _TICK - round(price / _TICK)) > 1e-9:
        raise ConfigError(f"{where}: price {row['price']} is not a positive multiple of NQ's tick {_TICK}")
    if not (size >= 1 and size == int(size)):
        raise ConfigError(f"{where}: size {row['size']} is not a whole number of contracts >= 1")
    return Trade(to_ns(t), price, int(size), price - _TICK, price, 10, 10)


def load_trades(path: Path) -> list[Trade]:
    """The trades of a scenario file, in time order. CSV: a header naming ``time``,
    ``price`` and ``size`` (other columns ignored; blank lines and lines starting with
    ``#`` skipped). JSON: an array of objects with those keys. ``time`` is ISO 8601 (no
    zone: UTC) or Unix seconds, ``price`` on NQ's 0.25 grid, ``size`` whole contracts.
    Raises ConfigError naming the file and line (or index)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the trades file {path}: {exc}") from None
    trades: list[Trade] = []
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: expected a JSON array of {{\"time\", \"price\", \"size\"}} objects")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ConfigError(f"{path} [{i}]: expected an object with time, price and size")
            trades.append(_trade(row, f"{path} [{i}]"))
    else:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
                 if line.strip() and not line.lstrip().startswith("#")]
        reader = csv.DictReader(line for _, line in lines)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if not {"time", "price", "size"} <= set(header):
            raise ConfigError(f"{path}: the first line must be a header naming time, price and size "
                              f"(found {', '.join(header) or 'nothing'})")
        reader.fieldnames = header
        for (number, _), row in zip(lines[1:], reader):
            trades.append(_trade(row, f"{path} line {number}"))
    if not trades:
        raise ConfigError(f"{path} holds no trades")
    return sorted(trades, key=lambda t: t.time_ns)


def _scenarios(args: argparse.Namespace) -> tuple[dict[str, Scenario] | None, dt.datetime | None, str]:
    """The price paths, the clock's start, and a description, for ``args.scenario``."""
    from slob.testing.fake_market import default_scenarios
    from slob.testing.scenario import ScriptedScenario, from_ns

    if args.scenario == "random":
        return None, args.start, f"random walk, seed {args.seed}"
    paths = default_scenarios(args.seed)
    if args.scenario == "planted":
        day = args.start.date() if args.start is not None else PLANTED_DAY
        candles = planted_day(day)
        paths["NQ"] = ScriptedScenario.from_candles(candles)
        start = candles[0].start - dt.timedelta(minutes=1)
        # A time of day given with --start is honoured (a mid-day start: what came before
        # is history); a bare date, or midnight, starts just before the first candle.
        if args.start is not None and args.start.astimezone(_UTC).time() != dt.time(0, 0):
            start = args.start
        return paths, start, (f"planted SLOB day {day}: {len(candles)} one-minute candles from "
                              f"{candles[0].start:%H:%M} to {candles[-1].end:%H:%M} UTC, a short then a long; "
                              f"the clock starts at {start.astimezone(_UTC):%H:%M:%S} UTC")
    trades = load_trades(Path(args.scenario))
    paths["NQ"] = ScriptedScenario(trades)
    first, last = from_ns(trades[0].time_ns), from_ns(trades[-1].time_ns)
    return paths, args.start or first, f"{len(trades)} trades from {args.scenario} ({first:%Y-%m-%d %H:%M:%S} .. " \
                                       f"{last:%Y-%m-%d %H:%M:%S} UTC)"


# -- the command -------------------------------------------------------------------------------


#: The managed account by default: the original design's example (``account='DU123456'``)
#: runs against ``slob sim`` exactly as written.
DEFAULT_ACCOUNT = "DU123456"


def loopback(text: str) -> str:
    """A loopback address to bind (argparse type): the fake TWS is never reachable from
    the network. ``localhost`` is 127.0.0.1."""
    host = "127.0.0.1" if text.strip().lower() == "localhost" else text.strip()
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address; slob sim binds a loopback address "
                                         "(127.0.0.1, the default, or ::1)") from None
    if not ok:
        raise argparse.ArgumentTypeError(f"{text} is not a loopback address: slob sim binds loopback only "
                                         "(127.0.0.1, the default, or ::1), so no other machine can reach it")
    return host


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", type=loopback, default="127.0.0.1",
                   help="loopback address to bind: 127.0.0.1 (default) or ::1; nothing else is accepted")
    p.add_argument("--port", type=int, default=7497, help="port (default 7497, TWS paper; 0 = any free)")
    p.add_argument("--speed", type=speed, default=1.0,
                   help="simulated seconds per real second (default 1; 0 = paused: the clock stands still and "
                        "nothing trades; 'max' = as fast as clients read)")
    p.add_argument("--start", type=when, default=None,
                   help="simulated start time, ISO or 'now' (default 2024-12-02T15:00Z; for --scenario planted "
                        "its date is the day to plant and its time, if any, where the clock starts -- a bare date "
                        "starts before the first candle; for a trades file the default is the first trade's time)")
    p.add_argument("--seed", type=int, default=1, help="price-path seed (default 1)")
    p.add_argument("--scenario", type=scenario, default="random", metavar="random|planted|FILE",
                   help="what NQ/MNQ trade: 'random' (seeded random walk, default), 'planted' (a day with a short "
                        "and a long SLOB setup), or a .csv/.json file of trades time,price,size")
    p.add_argument("--fault", type=fault, action="append", default=[], metavar="WHAT@SECONDS",
                   help="inject a fault SECONDS (real time) after the first client connected; repeatable. WHAT: "
                        + _FAULT_FORMS + ". E.g. drop@30, stall:5@60, restart:10@90, 1101@120, error:10197@45")
    p.add_argument("--server-version", type=server_version, default=None, metavar="N",
                   help="highest server version offered, 100-226 (default 226, or $SLOB_FAKE_TWS_SERVER_VERSION): "
                        "a client gets min(its maximum, N); text up to 200, binary ids and protobuf from 201")
    p.add_argument("--no-permission", action="append", default=[], metavar="ROOT",
                   help="a root without market-data permission (354 / delayed); repeatable")
    p.add_argument("--account", action="append", default=None,
                   help=f"managed account; repeatable (default {DEFAULT_ACCOUNT}, as in the original design's example)")


def server_version(text: str) -> int:
    """Parse ``--server-version`` (argparse type): an integer the fake speaks."""
    from slob.testing.tws_versions import MAX_SERVER_VERSION, check_server_version

    try:
        return check_server_version(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a server version the fake TWS speaks: give an integer from 100 to "
            f"{MAX_SERVER_VERSION} (200 and below: the classic text protocol; 201 and up: protobuf)") from None


def build(args: argparse.Namespace) -> tuple[FakeTWS, str]:
    """The (not yet started) FakeTWS ``args`` describe, and a description of its scenario.
    Raises ConfigError for a scenario that cannot be built."""
    from slob.testing import FakeTWS

    paths, start, described = _scenarios(args)
    tws = FakeTWS(host=args.host, port=args.port, speed=args.speed, start=start, seed=args.seed, scenarios=paths,
                  server_version=args.server_version, no_permission=args.no_permission,
                  accounts=args.account or (DEFAULT_ACCOUNT,))
    return tws, described


def serve(tws: FakeTWS, faults: Iterable[Fault], stop: threading.Event, out: TextIO) -> None:
    """Run the fault schedule on the started ``tws`` until ``stop`` is set (or Ctrl-C)."""
    lock = threading.Lock()

    def report(line: str) -> None:
        with lock:
            print(line, file=out, flush=True)

    schedule = FaultSchedule(tws, list(faults), report).start()
    try:
        while not stop.wait(0.5):  # a bounded wait keeps Ctrl-C responsive
            pass
    finally:
        schedule.stop()


def _start(tws: FakeTWS, args: argparse.Namespace) -> None:
    """Start ``tws``; a port that cannot be bound is a ConfigError naming the fix."""
    try:
        tws.start()
    except RuntimeError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {args.port} on {args.host} is already in use (another slob sim, or TWS / IB "
                              "Gateway itself?): stop that, or choose another port with --port (0 = any free "
                              "port)") from None
        if isinstance(cause, OSError):
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: {cause.strerror or cause}; choose another "
                              "--port (0 = any free port)") from None
        raise


def run(args: argparse.Namespace, out: TextIO) -> int:
    tws, described = build(args)
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main_thread else None
    try:
        _start(tws, args)
        with tws:
            from slob.testing.fake_history import record_from_now

            record_from_now(tws)  # history from the moment it starts, not from the first client
            print(f"fake TWS listening on {tws.host}:{tws.port} (server version <= {tws.server_version}, "
                  f"clock {tws.clock.now():%Y-%m-%d %H:%M:%S} UTC at {args.speed:g}x); Ctrl-C stops it",
                  file=out, flush=True)
            print(f"scenario: {described}", file=out, flush=True)
            if args.fault:
                print("faults (seconds after the first client connects): "
                      + ", ".join(f.spec for f in sorted(args.fault, key=lambda f: f.at)), file=out, flush=True)
            try:
                serve(tws, args.fault, stop, out)
            except KeyboardInterrupt:
                pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("fake TWS stopped", file=out)
    return EXIT_OK
