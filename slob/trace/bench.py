"""How much latency the trace proxy adds: a loopback feed sends frames stamped with
``time.perf_counter_ns()`` at a fixed rate; a client reads them directly and then through
a :class:`~slob.trace.proxy.BackgroundProxy` (on its own thread, describing every frame as
the live trace does, without printing). One-way latency = arrival - stamp, in µs.

``python -m slob.trace.bench [n] [rate]`` prints the percentiles.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from slob.ib import wire
from slob.trace.describe import describe
from slob.trace.events import TraceEvent
from slob.trace.proxy import BackgroundProxy

__all__ = ["measure_added_latency"]


async def _run_feed(n: int, rate: float, via: BackgroundProxy | None) -> list[float]:
    done = asyncio.Event()

    async def feed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(wire.ClientHello(100, 200).encode()))
        writer.write(wire.ServerHello(200, "20241202 10:00:00 EST").encode())
        interval = 1.0 / rate
        start = time.perf_counter()
        for i in range(n):
            delay = start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(wire.encode_message(46, [6, 1, 45, time.perf_counter_ns()], 200))
        await done.wait()
        writer.close()

    server = await asyncio.start_server(feed, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = port
    if via is not None:
        via.proxy.upstream = ("127.0.0.1", port)
        target = via.port
    reader, writer = await asyncio.open_connection("127.0.0.1", target)
    writer.write(wire.ClientHello(100, 200).encode())
    decoder = wire.FrameDecoder()
    latencies: list[float] = []
    greeted = False
    while len(latencies) < n:
        data = await reader.read(65536)
        if not data:
            break
        now = time.perf_counter_ns()
        for payload in decoder.feed(data):
            if not greeted:
                greeted = True
                continue
            stamp = int(wire.decode_message(payload, 200).fields[-1])
            latencies.append((now - stamp) / 1000.0)
    done.set()
    writer.close()
    server.close()
    await server.wait_closed()
    return latencies


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": round(q[49], 1), "p99": round(q[98], 1), "max": round(ordered[-1], 1)}


def measure_added_latency(n: int = 2000, rate: float = 1000.0) -> dict[str, object]:
    """Latency percentiles (µs) of ``n`` frames at ``rate``/s: ``direct``, ``proxy`` and
    ``added`` (proxy minus direct, per percentile)."""
    if n < 1 or rate <= 0:
        raise ValueError("n >= 1 and rate > 0")
    direct = asyncio.run(_run_feed(n, rate, None))

    def sink(event: TraceEvent) -> None:
        describe(event)

    with BackgroundProxy(upstream=("127.0.0.1", 1), on_event=sink) as proxy:
        proxied = asyncio.run(_run_feed(n, rate, proxy))
    d, p = _percentiles(direct), _percentiles(proxied)
    return {"n": n, "rate": rate, "unit": "us", "direct": d, "proxy": p,
            "added": {k: round(p[k] - d[k], 1) for k in d}}


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 2000
    rate = float(argv[1]) if len(argv) > 1 else 1000.0
    result = measure_added_latency(n, rate)
    print(f"slob trace proxy, {n} frames at {rate:g}/s, one-way latency in µs (loopback):")
    for key in ("direct", "proxy", "added"):
        values = result[key]
        assert isinstance(values, dict)
        print(f"  {key:<7} p50 {values['p50']:>8.1f}  p99 {values['p99']:>8.1f}  max {values['max']:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
