"""The `slob` command.

    slob demo       stream NQ from an embedded fake TWS through slob's IB feed
    slob sim        run the fake TWS standalone for any TWS client
    slob contracts  a root's expiries, roll moments and front month
    slob version    slob's version and the IB API client it runs on
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import signal
import sys
import threading
from typing import Sequence, TextIO

from slob import __version__
from slob.ib.errors import SlobError

__all__ = ["main"]


def _speed(text: str) -> float:
    if text.lower() in ("max", "inf", "fast"):
        return math.inf
    value = float(text)
    if value < 0 or math.isnan(value):
        raise argparse.ArgumentTypeError("speed is >= 0 (0 = paused, 'max' = as fast as possible)")
    return value


def _when(text: str) -> dt.datetime:
    if text == "now":
        return dt.datetime.now(dt.timezone.utc)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date/time (e.g. 2024-12-02T15:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slob", description="NQ futures from Interactive Brokers, paper trading first.")
    p.add_argument("--log-level", default="WARNING", help="logging level (DEBUG shows protocol traffic)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="stream NQ from an embedded fake TWS through IB's own client")
    d.add_argument("--seconds", type=float, default=15.0, help="how long to stream (real seconds; default 15)")
    d.add_argument("--speed", type=_speed, default=60.0,
                   help="simulated seconds per real second (default 60; 'max' as fast as possible)")
    d.add_argument("--symbol", default="NQ", choices=["NQ", "MNQ", "ES", "MES"])
    d.add_argument("--start", type=_when, default=None,
                   help="simulated start time, ISO or 'now' (default 2024-12-02T15:00Z, a Monday)")

    s = sub.add_parser("sim", help="run the fake TWS standalone (loopback only) until Ctrl-C")
    s.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=7497, help="port (default 7497, TWS paper; 0 = any free)")
    s.add_argument("--speed", type=_speed, default=1.0, help="simulated seconds per real second (default 1)")
    s.add_argument("--start", type=_when, default=None, help="simulated start time, ISO or 'now'")
    s.add_argument("--seed", type=int, default=1, help="price-path seed (default 1)")
    s.add_argument("--server-version", type=int, default=200, help="highest server version offered (100-200)")
    s.add_argument("--no-permission", action="append", default=[], metavar="ROOT",
                   help="a root without market-data permission (354 / delayed); repeatable")
    s.add_argument("--account", action="append", default=None, help="managed account (default DU1234567)")

    c = sub.add_parser("contracts", help="list a root's expiries, roll moments and the front month")
    c.add_argument("root", help="futures root, e.g. NQ, MNQ, ES, MES")
    c.add_argument("--at", type=_when, default=None,
                   help="the moment to evaluate (ISO; default: TWS's clock, or 2024-12-02T15:00Z on the fake)")
    c.add_argument("--roll-days", type=int, default=8, help="roll this many days before expiry (default 8)")
    c.add_argument("--host", default=None, help="a real TWS/Gateway host (default: the embedded fake TWS)")
    c.add_argument("--port", type=int, default=None, help="a real TWS/Gateway port (7497 TWS paper, 4002 Gateway paper)")
    c.add_argument("--client-id", type=int, default=97, help="client id for the query (default 97)")

    sub.add_parser("version", help="print slob's version and the IB API client in use")
    return p


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stream = out or sys.stdout
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "version":
            return _version(stream)
        if args.command == "demo":
            from slob.demo import run_demo

            result = run_demo(seconds=args.seconds, speed=args.speed, symbol=args.symbol,
                              start=args.start, out=stream)
            if result.ticks == 0:
                print("no ticks arrived: " + ("; ".join(result.errors) or "see --log-level DEBUG"),
                      file=sys.stderr)
                return 1
            return 0
        if args.command == "sim":
            return _sim(args, stream)
        if args.command == "contracts":
            from slob.contracts_command import run_contracts

            return run_contracts(args.root, at=args.at, roll_days=args.roll_days, host=args.host,
                                 port=args.port, client_id=args.client_id, out=stream)
    except KeyboardInterrupt:
        return 130
    except SlobError as exc:
        print(f"slob: {exc}", file=sys.stderr)
        return 1
    return 2


def _version(out: TextIO) -> int:
    from slob.ib.version import IbapiMissing, ibapi_info

    print(f"slob {__version__}", file=out)
    try:
        print(str(ibapi_info()), file=out)
    except IbapiMissing as exc:
        print(f"IB API client: {exc}", file=out)
        return 1
    return 0


def _sim(args: argparse.Namespace, out: TextIO) -> int:
    from slob.testing import FakeTWS

    tws = FakeTWS(host=args.host, port=args.port, speed=args.speed, start=args.start, seed=args.seed,
                  server_version=args.server_version, no_permission=args.no_permission,
                  accounts=args.account or ("DU1234567",))
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if _main_thread() else None
    with tws:
        print(f"fake TWS listening on {tws.host}:{tws.port} (server version <= {tws.server_version}, "
              f"clock {tws.clock.now():%Y-%m-%d %H:%M:%S} UTC at {args.speed:g}x); Ctrl-C stops it",
              file=out, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
    print("fake TWS stopped", file=out)
    return 0


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    raise SystemExit(main())
