"""`slob contracts ROOT`: expiries, roll windows and the front month."""

from __future__ import annotations

import argparse
from typing import TextIO

from slob.commands.common import when

NAME = "contracts"
HELP = "list a root's expiries, roll moments and the front month"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="futures root, e.g. NQ, MNQ, ES, MES")
    p.add_argument("--at", type=when, default=None,
                   help="the moment to evaluate (ISO; default: TWS's clock, or 2024-12-02T15:00Z on the fake)")
    p.add_argument("--roll-days", type=int, default=8, help="roll this many days before expiry (default 8)")
    p.add_argument("--host", default=None, help="a real TWS/Gateway host (default: the embedded fake TWS)")
    p.add_argument("--port", type=int, default=None, help="a real TWS/Gateway port (7497 TWS paper, 4002 Gateway paper)")
    p.add_argument("--client-id", type=int, default=97, help="client id for the query (default 97)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.ops.contracts import run_contracts

    return run_contracts(args.root, at=args.at, roll_days=args.roll_days, host=args.host, port=args.port,
                         client_id=args.client_id, out=out)
