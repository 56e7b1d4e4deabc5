"""`slob demo`: stream NQ from an embedded fake TWS through slob's IB feed."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from slob.commands.common import EXIT_FAIL, EXIT_OK, speed, when

NAME = "demo"
HELP = "stream NQ from an embedded fake TWS through slob's IB feed (what tools/demo runs)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=15.0, help="how long to stream (real seconds; default 15)")
    p.add_argument("--speed", type=speed, default=60.0,
                   help="simulated seconds per real second (default 60; 'max' as fast as possible)")
    p.add_argument("--symbol", default="NQ", choices=["NQ", "MNQ", "ES", "MES"])
    p.add_argument("--start", type=when, default=None,
                   help="simulated start time, ISO or 'now' (default 2024-12-02T15:00Z, a Monday)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.demo import run_demo

    result = run_demo(seconds=args.seconds, speed=args.speed, symbol=args.symbol, start=args.start, out=out)
    if result.ticks == 0:
        print("no ticks arrived: " + ("; ".join(result.errors) or "see --log-level DEBUG"), file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
