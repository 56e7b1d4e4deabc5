"""`slob sim`: the fake TWS standalone, on loopback, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import TextIO

from slob.commands.common import EXIT_OK, speed, when

NAME = "sim"
HELP = "run the fake TWS standalone (loopback only) until Ctrl-C"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7497, help="port (default 7497, TWS paper; 0 = any free)")
    p.add_argument("--speed", type=speed, default=1.0, help="simulated seconds per real second (default 1)")
    p.add_argument("--start", type=when, default=None, help="simulated start time, ISO or 'now'")
    p.add_argument("--seed", type=int, default=1, help="price-path seed (default 1)")
    p.add_argument("--server-version", type=int, default=200, help="highest server version offered (100-200)")
    p.add_argument("--no-permission", action="append", default=[], metavar="ROOT",
                   help="a root without market-data permission (354 / delayed); repeatable")
    p.add_argument("--account", action="append", default=None, help="managed account (default DU1234567)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.testing import FakeTWS

    tws = FakeTWS(host=args.host, port=args.port, speed=args.speed, start=args.start, seed=args.seed,
                  server_version=args.server_version, no_permission=args.no_permission,
                  accounts=args.account or ("DU1234567",))
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main_thread else None
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
    return EXIT_OK
