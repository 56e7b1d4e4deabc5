"""`slob decode`: print a `slob trace --record` file (or a real capture) as the live trace would."""

from __future__ import annotations

import argparse
from typing import TextIO

from slob.commands.common import EXIT_OK
from slob.commands.trace import add_filter_arguments, trace_filter
from slob.ib.errors import ConfigError

NAME = "decode"
HELP = "print a recorded session (slob trace --record) or a capture file as the live trace would"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a .jsonl file written by slob trace --record, or a capture in that format")
    add_filter_arguments(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.trace.describe import describe
    from slob.trace.recording import read_events

    keep = trace_filter(args)
    try:
        for event in read_events(args.path):
            line = describe(event)
            if keep.accepts(line):
                print(line.text, file=out)
    except BrokenPipeError:
        raise  # the reader went away (| head): not the input file's fault
    except OSError as exc:
        raise ConfigError(f"cannot read {args.path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{exc}; is it a file written by slob trace --record?") from None
    return EXIT_OK
