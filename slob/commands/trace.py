"""`slob trace`: the decoding proxy between a TWS client and TWS / IB Gateway.

Runs until Ctrl-C or SIGTERM (or, with ``--once``, until the first client has gone). Each
message is printed as one line (see :mod:`slob.trace.describe`); ``--record`` also writes
every frame to a JSONL file that ``slob decode`` reads back. Documented in
docs/reference/cli.md and docs/debugging-the-tws-protocol.md.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from slob.commands.common import EXIT_OK

if TYPE_CHECKING:
    from slob.trace.filters import TraceFilter

__all__ = ["add_filter_arguments", "address", "serve", "trace_filter"]

NAME = "trace"
HELP = "a transparent proxy between a TWS client and TWS / IB Gateway that prints every message, decoded"


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:7497)")
    return host.strip("[]"), int(port)


def _direction(text: str) -> str:
    value = {"client": ">", ">": ">", "out": ">", "tws": "<", "<": "<", "in": "<"}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: use '>' or client (client -> TWS), '<' or tws (TWS -> client)")
    return value


def _req_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a request id (an integer)") from None


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--direction", type=_direction, default=None, metavar="DIR",
                   help="only client -> TWS ('>' or client) or TWS -> client ('<' or tws) messages")
    p.add_argument("--name", action="append", default=[], metavar="NAME",
                   help="only messages of this IB name or pattern, e.g. REQ_MKT_DATA, 'TICK_*'; repeatable")
    p.add_argument("--req-id", action="append", default=[], type=_req_id, metavar="ID",
                   help="only messages of this request/ticker/order id; repeatable")


def trace_filter(args: argparse.Namespace) -> "TraceFilter":
    from slob.trace.filters import TraceFilter

    return TraceFilter(direction=args.direction, names=tuple(args.name), req_ids=frozenset(args.req_id))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", type=address, default=("127.0.0.1", 7400), metavar="HOST:PORT",
                   help="where TWS clients connect (loopback only; default 127.0.0.1:7400)")
    p.add_argument("--upstream", type=address, default=("127.0.0.1", 7497), metavar="HOST:PORT",
                   help="the TWS / IB Gateway to relay to (default 127.0.0.1:7497, TWS paper)")
    p.add_argument("--record", default=None, metavar="PATH",
                   help="also write every frame with its time and direction to this JSONL file")
    p.add_argument("--once", action="store_true",
                   help="stop when the first client connection has closed")
    add_filter_arguments(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.trace.proxy import check_listen_host

    check_listen_host(args.listen[0])
    asyncio.run(serve(args, out))
    return EXIT_OK


async def serve(args: argparse.Namespace, out: TextIO, stop: asyncio.Event | None = None) -> None:
    """Run the proxy until ``stop`` is set, SIGINT/SIGTERM, or (``--once``) the first
    client has gone."""
    from slob.trace.describe import describe
    from slob.trace.events import Kind, TraceEvent
    from slob.trace.proxy import TraceProxy
    from slob.trace.recording import Recorder

    stop = stop or asyncio.Event()
    keep = trace_filter(args)
    upstream = f"{args.upstream[0]}:{args.upstream[1]}"
    recorder = Recorder(args.record, upstream=upstream) if args.record else None

    def on_event(event: TraceEvent) -> None:
        if recorder is not None:
            recorder.write(event)
        line = describe(event)
        if keep.accepts(line):
            print(line.text, file=out, flush=True)
        if args.once and event.kind == Kind.CLOSE:
            stop.set()

    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
    try:
        async with TraceProxy(listen=args.listen, upstream=args.upstream, on_event=on_event) as proxy:
            print(f"slob trace: listening on {args.listen[0]}:{proxy.port}, relaying to {upstream}"
                  + (f", recording to {args.record}" if args.record else "") + " (Ctrl-C stops)",
                  file=sys.stderr, flush=True)
            await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if recorder is not None:
            recorder.close()
