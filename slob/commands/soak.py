"""`slob soak`: days of unattended operation, compressed -- the engine against FakeTWS with
IB's calendar and seeded faults at random moments, then a PASS/FAIL report.

    slob soak --days 30 --seed 7 --json soak.json      # about 7 minutes
    slob soak --days 2 --seed 1                         # the CI run

The work is in :mod:`slob.soak` (calendar, faults, market, checks: pure; runner, child
process: I/O); this module is the command's shell. Exit code 0 PASS, 3 FAIL, 1 when the
soak itself could not run. See docs/soak.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import threading
from pathlib import Path
from typing import TextIO

from slob.commands.common import EXIT_OK, EXIT_VERDICT_FAIL, positive, when

NAME = "soak"
HELP = ("run the engine unattended for simulated days against the fake TWS -- IB's restarts and resets, CME "
        "halts, seeded random faults, kill -9 -- then check no tick was lost or duplicated and no order "
        "placed twice or half (PASS/FAIL)")


def _at_least_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _kinds(text: str) -> tuple[str, ...]:
    from slob.soak.faults import FAULT_KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(FAULT_KINDS)}")
    return kinds


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_arguments(p: argparse.ArgumentParser) -> None:
    from slob.soak.faults import FAULT_KINDS

    p.epilog = ("exit codes: 0 PASS, 3 FAIL (the report names each failing check), 1 the soak could not run. "
                f"Fault kinds: {', '.join(FAULT_KINDS)}. Every check: docs/soak.md")
    p.add_argument("--days", type=positive, default=30.0, help="simulated days to run (default 30; fractions allowed)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the market, the planted setups, the calendar's draws and the faults (default 1)")
    p.add_argument("--speed", type=positive, default=6000.0,
                   help="simulated seconds per real second while CME is open (default 6000; 2000 from 23:40 to 01:50 "
                        "New York, around the nightly restart and reset: a trading day takes about 17 s)")
    p.add_argument("--closed-speed", type=positive, default=None,
                   help="simulated seconds per real second while CME is closed (default 10 x --speed)")
    p.add_argument("--start", type=when, default=None,
                   help="simulated start, ISO (default 2025-03-03T00:00Z, a Monday; 30 days include the NQ roll "
                        "and both daylight-saving changes)")
    p.add_argument("--faults-per-day", type=_at_least_zero, default=6.0,
                   help="random faults per simulated day, as many as fit --fault-spacing real seconds apart and "
                        "away from the calendar's events (default 6; 0 = the calendar only)")
    p.add_argument("--fault-spacing", type=positive, default=3.0,
                   help="real seconds kept free after each fault and around calendar events (default 3)")
    p.add_argument("--fault-kinds", type=_kinds, default=None, metavar="KIND,...",
                   help="only these fault kinds (default all that can run here; the proxy_* kinds and trickle need "
                        "FaultProxy; listed below)")
    p.add_argument("--no-kill", action="store_true", help="never kill -9 the engine")
    p.add_argument("--no-proxy", action="store_true",
                   help="connect the engine straight to the fake TWS: no FaultProxy in between, none of its fault "
                        "kinds (by default the proxy is used when this slob has slob.testing.FaultProxy)")
    p.add_argument("--trades-per-minute", type=positive, default=20.0, help="NQ trades per minute (default 20)")
    p.add_argument("--plant-probability", type=float, default=0.6,
                   help="chance a weekday gets a planted SLOB setup (the first weekday always does; default 0.6)")
    p.add_argument("--ib", action="append", default=[], metavar="NAME=VALUE",
                   help="an IBConfig setting for the engine, e.g. --ib request_timeout_seconds=2 (repeatable)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the report as JSON to FILE")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory (the engine's store and logs); its path is printed")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="put the store and logs here (kept) instead of a temporary directory")
    p.add_argument("--engine-log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level of the engine process (its log is in the work directory; default WARNING)")
    p.add_argument("--no-schedule", action="store_true", help="leave the per-event schedule out of the printed report")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.ib.errors import ConfigError
    from slob.soak.child import parse_options
    from slob.soak.faults import FaultConfig
    from slob.soak.report import build_report, load_store, render
    from slob.soak.runner import DEFAULT_START, SoakConfig, proxy_available, run_soak

    if not 0 <= args.plant_probability <= 1:
        raise ConfigError(f"--plant-probability {args.plant_probability} is outside 0..1")
    try:
        parse_options(args.ib)
    except ValueError as exc:
        raise ConfigError(f"--ib: {exc}") from None
    proxy = proxy_available() and not args.no_proxy
    config = SoakConfig(
        days=args.days, seed=args.seed, speed=args.speed, closed_speed=args.closed_speed or 10 * args.speed,
        start=args.start or DEFAULT_START, trades_per_minute=args.trades_per_minute,
        plant_probability=args.plant_probability,
        faults=FaultConfig(per_day=args.faults_per_day, kinds=args.fault_kinds, kill=not args.no_kill, proxy=proxy,
                           spacing_seconds=args.fault_spacing),
        work_dir=args.work_dir, keep=args.keep, ib_options=tuple(args.ib), child_log_level=args.engine_log_level,
    )

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    # The fakes' warnings (and asyncio's about their sockets dying) are the soak's own faults.
    quiet = [logging.getLogger(name) for name in ("slob.testing", "asyncio")]
    if not logging.getLogger().isEnabledFor(logging.INFO):
        for logger in quiet:
            logger.setLevel(logging.ERROR)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        record, soak = run_soak(config, say)  # SIGTERM/Ctrl-C: the engine process is killed on the way out
    finally:
        for logger in quiet:
            logger.setLevel(logging.NOTSET)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    try:
        report = build_report(record, load_store(record.store_path))
    finally:
        soak.cleanup()
    print(render(report, schedule=not args.no_schedule), file=out, flush=True)
    if args.keep or args.work_dir:
        print(f"work directory kept: {record.store_path.parent}", file=out)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"report written to {args.json}", file=out)
    return EXIT_OK if report["verdict"] == "PASS" else EXIT_VERDICT_FAIL
