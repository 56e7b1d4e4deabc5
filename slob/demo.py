"""`slob demo`: stream NQ from an embedded fake TWS through slob's IB feed.

Everything on the path is real: FakeTWS serves the TWS wire protocol on a loopback port;
:class:`~slob.live.IBWSFetcher` connects with IB's handshake, resolves the front month
from contract details, and its reader thread runs IB's own ``Decoder`` and hands ticks to
the event loop, which prints one summary line per second and the feed's statistics.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, TextIO

from slob.config.ib_config import IBConfig
from slob.live import IBWSFetcher, Tick
from slob.testing import FakeTWS

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    contract: str = ""
    ticks: int = 0
    volume: float = 0.0
    first_price: float = math.nan
    last_price: float = math.nan
    high: float = -math.inf
    low: float = math.inf
    errors: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def run_demo(
    *, seconds: float = 15.0, speed: float = 60.0, symbol: str = "NQ", out: TextIO,
    start: dt.datetime | None = None,
) -> DemoResult:
    """Run the demo for ``seconds`` of real time at ``speed`` simulated seconds per second."""
    return asyncio.run(_demo(seconds, speed, symbol, out, start))


async def _demo(seconds: float, speed: float, symbol: str, out: TextIO, start: dt.datetime | None) -> DemoResult:
    result = DemoResult()
    window = {"ticks": 0, "volume": 0.0}
    last_time: list[dt.datetime] = []

    def on_tick(tick: Tick) -> None:
        result.ticks += 1
        result.volume += tick.size
        window["ticks"] += 1
        window["volume"] += tick.size
        if math.isnan(result.first_price):
            result.first_price = tick.price
        result.last_price = tick.price
        result.high = max(result.high, tick.price)
        result.low = min(result.low, tick.price)
        result.contract = tick.contract
        last_time[:] = [tick.timestamp]

    async with FakeTWS(speed=speed, start=start) as tws:
        print(f"fake TWS on 127.0.0.1:{tws.port}, simulated clock {tws.clock.now():%Y-%m-%d %H:%M} UTC "
              f"at {speed:g}x", file=out)
        fetcher = IBWSFetcher(config=IBConfig(port=tws.port, client_id=1))
        fetcher.on_tick = on_tick
        fetcher.on_error = lambda exc: result.errors.append(str(exc))
        await fetcher.connect()
        stats = fetcher.get_stats()
        print(f"connected: server version {stats['server_version']}, IB client ibapi {stats['ibapi_version']}",
              file=out)
        listener = asyncio.create_task(fetcher.listen())
        try:
            await fetcher.subscribe([symbol])
            contract = fetcher.get_stats()["contracts"][symbol]
            print(f"{symbol} front month {contract}; streaming tick-by-tick trades for {seconds:g} s", file=out)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while (left := deadline - loop.time()) > 0:
                await asyncio.sleep(min(1.0, left))
                stamp = f"{last_time[0]:%H:%M:%S}" if last_time else "--:--:--"
                print(f"{stamp} UTC  {contract}  last {result.last_price:10.2f}  ticks {window['ticks']:5d}  "
                      f"volume {window['volume']:6.0f}", file=out, flush=True)
                window["ticks"], window["volume"] = 0, 0.0
        finally:
            result.stats = fetcher.get_stats()
            await fetcher.disconnect()
            await listener
    s = result.stats
    print(f"done: {result.ticks} trades, volume {result.volume:.0f}, {result.contract} "
          f"{result.first_price:.2f} -> {result.last_price:.2f} (high {result.high:.2f}, low {result.low:.2f})",
          file=out)
    print(f"feed: {s['messages_in']} messages in, {s['rejected']} rejected, {s['drops']} dropped, "
          f"latency frame->on_tick p50 {s['latency_p50_us']} us, p99 {s['latency_p99_us']} us", file=out)
    return result
