"""`slob export ticks|candles|trades|setups`: the store's records as CSV or Parquet.

The rows are :mod:`slob.research.export`'s (which also hands out pandas / polars frames
to Python code); Parquet needs the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from slob.commands.common import EXIT_OK, EXIT_USAGE
from slob.commands.common import add_store_location, day

NAME = "export"
HELP = "write the store's ticks, candles, trades or setups as CSV or Parquet (--from/--to CME trading days)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("ticks", "candles", "trades", "setups"), help="the records to export")
    p.add_argument("--from", dest="first", type=day, default=None, metavar="DATE",
                   help="first CME trading day, YYYY-MM-DD (default: everything)")
    p.add_argument("--to", dest="last", type=day, default=None, metavar="DATE",
                   help="last CME trading day, inclusive (default: the --from day, else everything)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="csv (default) or parquet")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="the file to write (default: standard output for CSV; WHAT.parquet for Parquet)")
    p.add_argument("--symbol", default=None, help="only this symbol (default: all)")
    p.add_argument("--interval", type=int, default=60, metavar="SECONDS",
                   help="candles of this interval (default 60; 0: every interval)")
    add_store_location(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.ops.report import day_bounds
    from slob.research.export import rows, write_csv, write_parquet
    from slob.research.sources import store_path

    if args.first and args.last and args.first > args.last:
        print(f"slob export: --from {args.first} is after --to {args.last}", file=sys.stderr)
        return EXIT_USAGE
    last = args.last or args.first
    start = day_bounds(args.first)[0] if args.first else None
    end = day_bounds(last)[1] if last else None
    path = store_path(args.db, args.data_dir)
    records = rows(path, args.what, start, end, symbol=args.symbol.upper() if args.symbol else None,
                   interval=args.interval or None)
    if args.format == "parquet":
        target = args.out or Path(f"{args.what}.parquet")
        n = write_parquet(args.what, records, target)
        print(f"wrote {n:,} {args.what} to {target}", file=sys.stderr)
    elif args.out is not None:
        with args.out.open("w", newline="", encoding="utf-8") as f:
            n = write_csv(args.what, records, f)
        print(f"wrote {n:,} {args.what} to {args.out}", file=sys.stderr)
    else:
        write_csv(args.what, records, out)
    return EXIT_OK
