"""The soak's engine process: ``python -m slob.soak.child --port PORT --store FILE ...``.

What ``slob run`` is in production -- the full :class:`~slob.live.LiveTradingEngine`
(``data_source="ib"``, trading on, a store file) through IB's client -- so the soak can
kill it with SIGKILL and start it again, as a process supervisor would after a crash.

It talks to the parent in JSON lines: on stdout it reports ``starting``, ``started``
(connected and subscribed), ``start_failed`` (and tries again, as a supervisor would),
``synced``, ``feed_ended`` (the engine gave up: the soak counts it as a failure) and
``stopped``; on stdin it takes ``sync`` (report once everything FakeTWS wrote before the
request has been delivered and committed to the store). SIGTERM, or the end of stdin (the
soak is gone), stops the engine cleanly. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["ib_config", "main", "parse_options"]

log = logging.getLogger("slob.soak.child")

#: IBConfig values the soak uses: reconnect at once and keep trying (the soak's outages are
#: real seconds long), short time-outs so an unanswered request costs little, and a
#: liveness probe after a second of silence so a stall of a few seconds is noticed.
SOAK_IB: dict[str, Any] = dict(reconnect_delay_seconds=0.05, max_reconnect_delay_seconds=0.5,
                               max_reconnect_attempts=40, client_id_retries=20, connect_timeout_seconds=3.0,
                               request_timeout_seconds=3.0, liveness_idle_seconds=1.0,
                               liveness_timeout_seconds=1.5, frame_timeout_seconds=1.5)


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs for IBConfig fields; values are read as JSON when they parse
    (numbers, true/false), else kept as text. Unknown names raise ValueError."""
    from slob.config.ib_config import IBConfig

    names = {f.name for f in dataclasses.fields(IBConfig)}
    out: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"{item!r} is not NAME=VALUE")
        if name not in names:
            raise ValueError(f"IBConfig has no field {name!r} (it has {', '.join(sorted(names))})")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError:
            out[name] = text
    return out


def ib_config(port: int, client_id: int, options: dict[str, Any]) -> Any:
    """The engine's IBConfig: :data:`SOAK_IB` (those fields this slob has) and ``options``."""
    from slob.config.ib_config import IBConfig

    names = {f.name for f in dataclasses.fields(IBConfig)}
    base = {k: v for k, v in SOAK_IB.items() if k in names}
    return IBConfig(host="127.0.0.1", port=port, client_id=client_id, **{**base, **options})


def _say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "pid": os.getpid(), "mono_ns": time.monotonic_ns(), **fields}),
          flush=True)


async def _run(args: argparse.Namespace) -> int:
    from slob.ib.errors import SlobError
    from slob.ib.history_pacing import PacingRules
    from slob.live.ib_history import HistorySettings
    from slob.live.ib_ws_fetcher import IBWSFetcher
    from slob.live.live_trading_engine import LiveTradingEngine

    config = ib_config(args.port, args.client_id, parse_options(args.ib))
    attempt = 0
    while True:
        attempt += 1
        _say("starting", attempt=attempt)
        engine = LiveTradingEngine("ib", [args.symbol], ib_config=config, store=Path(args.store), trade=True)
        # The soak's fake applies IB's historical pacing in simulated time (and reports any 162):
        # this process's pacer runs on real time, where 15 s are a day of the soak.
        if isinstance(engine.fetcher, IBWSFetcher):
            engine.fetcher.configure_history(HistorySettings(pacing=PacingRules.unlimited(),
                                                             pacing_backoff_seconds=0.05))
        try:
            await engine.start()
            break
        except (SlobError, OSError, asyncio.TimeoutError) as exc:
            _say("start_failed", attempt=attempt, error=f"{type(exc).__name__}: {exc}")
            try:
                await engine.stop()
            except Exception as stop_exc:  # the start failure is what matters
                log.debug("stop after a failed start: %r", stop_exc)
            if attempt >= args.start_attempts:
                return 1
            await asyncio.sleep(min(2.0, 0.1 * attempt))
    _say("started", attempt=attempt)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    buffer = bytearray()

    def readable() -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:  # the soak is gone (or done): stop as on SIGTERM, never run on orphaned
            loop.remove_reader(sys.stdin.fileno())
            asyncio.ensure_future(engine.stop())
            return
        buffer.extend(data)
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            commands.put_nowait(line.decode().strip())

    loop.add_reader(sys.stdin.fileno(), readable)
    runner = asyncio.create_task(engine.run(), name="soak-engine")
    serving = asyncio.create_task(_serve(engine, commands), name="soak-commands")
    try:
        await runner
    except Exception as exc:  # the feed gave up: the soak counts it
        _say("feed_ended", error=f"{type(exc).__name__}: {exc}")
        return 2
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        loop.remove_reader(sys.stdin.fileno())
    _say("stopped")
    return 0


async def _serve(engine: Any, commands: "asyncio.Queue[str]") -> None:
    while True:
        command = await commands.get()
        if command == "sync":
            _say("synced", **await _sync(engine))


async def _sync(engine: Any) -> dict[str, Any]:
    """Wait until what TWS wrote before now is delivered and stored: a current-time round
    trip (the reader has read everything before its answer), then until the tick bridge is
    empty and the delivered count stands still over a further round trip; then flush."""
    fetcher = engine.fetcher
    previous = -1
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        try:
            await fetcher.server_time()
        except Exception as exc:  # not connected right now: try again
            log.info("sync: %r", exc)
            await asyncio.sleep(0.1)
            continue
        stats = fetcher.get_stats()
        if stats.get("bridge_depth", 0) == 0 and stats.get("ticks") == previous:
            break
        previous = stats.get("ticks", -1)
    if engine.store is not None:
        await engine.store.aflush()
    stats = fetcher.get_stats()
    return {"ticks": stats.get("ticks"), "connected": stats.get("connected")}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m slob.soak.child", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--client-id", type=int, default=1)
    p.add_argument("--symbol", default="NQ")
    p.add_argument("--ib", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--start-attempts", type=int, default=50)
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(message)s")
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
