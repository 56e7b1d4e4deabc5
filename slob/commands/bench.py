"""`slob bench`: slob vs IB's stock threading model vs ib_async on one fast fake TWS feed.

The options are defined once in :mod:`slob.bench.options` (shared with ``python -m
slob.bench`` and ``tools/bench``); the measurements live in :mod:`slob.bench.harness`,
imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from slob.bench import options
from slob.commands.common import EXIT_USAGE

NAME = "bench"
HELP = ("benchmark slob against ib_async and IB's stock model: ticks/s, latency at fixed rates, CPU and "
        "memory per tick, each client in its own process")


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_arguments(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    import sys

    opts = options.resolve(args)
    problem = options.validate(opts)
    if problem:
        print(f"slob bench: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from slob.bench import harness

    return harness.run_and_report(opts, out)
