"""Orchestration: one feed process + one client process per measurement, the scenarios
(throughput, fixed rates in rounds, burst, slow consumer, busy strategy, protocol
generations, memory), statistics and the JSON file; what is printed and plotted lives in
:mod:`slob.bench.report`."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any, Sequence, TextIO

from slob.bench import clients, feed, options, report
from slob.bench.clients import Work
from slob.bench.options import DEFAULT_JSON
from slob.bench.report import MEMORY_TOLERANCE_KIB_PER_1M, memory_summary

__all__ = ["DEFAULT_JSON", "MEMORY_TOLERANCE_KIB_PER_1M", "main", "measure", "memory_summary", "run",
           "run_and_report"]

MEMORY_POINTS = 10
#: Flat-out runs are scheduled as if sent at this rate: a client slower than this for
#: longer than --timeout is cut (and reported as partial).
FLAT_OUT_FLOOR = 10_000
#: The feed is shown not to be the bottleneck when the feed-only sink receives at least
#: this many times the fastest client's delivered ticks/s.
FEED_HEADROOM = 2.0


# -- one measurement ---------------------------------------------------------------------


def _recv(conn: Any, seconds: float, what: str) -> Any:
    if not conn.poll(seconds):
        raise TimeoutError(f"no {what} within {seconds:g} s")
    return conn.recv()


def _stop(proc: multiprocessing.process.BaseProcess) -> None:
    proc.join(5)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)


def _cpu_seconds() -> tuple[float, float] | None:
    """Machine-wide CPU-seconds (all CPUs) spent in processes (user+nice+system) and stolen
    by the hypervisor, from /proc/stat. Interrupt time (loopback TCP softirqs) is left out."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    steal = fields[7] if len(fields) > 7 else 0
    return (fields[0] + fields[1] + fields[2]) / tick, steal / tick


def measure(kind: str, n: int, rate: float | None, opts: argparse.Namespace, memory_points: int = 0,
            work: Work = Work(), start_delay: float | None = None, server_version: int | None = None,
            expected_s: float | None = None) -> dict[str, Any]:
    """Run the feed and one client (or the feed-only sink), each in a fresh process; return
    the raw figures. ``start_delay`` and ``server_version`` override the options';
    ``expected_s``: how long the run should take (default: n at the rate, or 10,000/s)."""
    ctx = multiprocessing.get_context("spawn")
    delay = opts.start_delay if start_delay is None else start_delay
    version = opts.server_version if server_version is None else server_version
    with tempfile.TemporaryDirectory(prefix="slob-bench-") as tmp:
        stamps_path = os.path.join(tmp, "send.i64")
        cb_path = os.path.join(tmp, "callback.i64")
        expected = (n / (rate or FLAT_OUT_FLOOR) if expected_s is None else expected_s) + delay
        client_timeout = expected + opts.timeout
        feed_conn, feed_child = ctx.Pipe()
        client_conn, client_child = ctx.Pipe()
        server = ctx.Process(
            target=feed.serve, name=f"bench-feed-{kind}", daemon=True,
            args=({"messages": n, "rate": rate, "start_delay": delay,
                   "batch_bytes": opts.batch_bytes, "stamps_path": stamps_path,
                   "server_version": version}, feed_child))
        client = ctx.Process(target=clients.run_client, name=f"bench-client-{kind}", daemon=True,
                             args=(kind, client_child, n, client_timeout, cb_path, rate is not None,
                                   memory_points, work))
        server.start()
        client.start()
        try:
            tag, port = _recv(feed_conn, 60, "port from the feed")
            ready = _recv(client_conn, 60, f"the {kind} client to start")
            if ready != "ready":  # it failed while importing
                raise RuntimeError(f"{kind} client failed:\n{ready.get('error')}")
            busy0, wall0 = _cpu_seconds(), time.monotonic()
            client_conn.send(port)
            info = _recv(client_conn, client_timeout + 60, f"result from the {kind} client")
            feed_conn.send("stop")
            tag, stats = _recv(feed_conn, 60, "stats from the feed")
            busy1, wall1 = _cpu_seconds(), time.monotonic()
        finally:
            _stop(client)
            _stop(server)
        if info.get("error"):
            raise RuntimeError(f"{kind} client failed:\n{info['error']}")
        if tag != "done":
            raise RuntimeError(f"feed failed:\n{stats.get('error')}")
        send = array("q")
        with open(stamps_path, "rb") as f:
            send.frombytes(f.read())
        cb = array("q")
        with open(cb_path, "rb") as f:
            cb.frombytes(f.read())
        arrival = None
        if os.path.exists(cb_path + ".arrival"):
            arrival = array("q")
            with open(cb_path + ".arrival", "rb") as f:
                arrival.frombytes(f.read())
    figures = _figures(kind, n, rate, info, stats, send, cb, arrival)
    if busy0 is not None and busy1 is not None and wall1 > wall0:
        # CPUs kept busy by anything but this client and the feed (other processes on the machine).
        ours = (info.get("cpu_window_ns", 0) + stats.get("cpu_window_ns", 0)) / 1e9
        wall = wall1 - wall0
        figures["other_load_cpus"] = round(max(0.0, (busy1[0] - busy0[0] - ours) / wall), 2)
        figures["steal_cpus"] = round((busy1[1] - busy0[1]) / wall, 2)
        figures["client_cpu_share"] = round(info.get("cpu_window_ns", 0) / 1e9 / (wall1 - wall0), 2)
    return figures


def _pct(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _summary(values_ns: list[int]) -> dict[str, float]:
    values_ns.sort()
    return {
        "p50_us": round(_pct(values_ns, 0.50) / 1000, 1),
        "p90_us": round(_pct(values_ns, 0.90) / 1000, 1),
        "p99_us": round(_pct(values_ns, 0.99) / 1000, 1),
        "p999_us": round(_pct(values_ns, 0.999) / 1000, 1),
        "max_us": round(values_ns[-1] / 1000, 1) if values_ns else float("nan"),
    }


def _figures(kind: str, n: int, rate: float | None, info: dict[str, Any], stats: dict[str, Any],
             send: "array[int]", cb: "array[int]", arrival: "array[int] | None") -> dict[str, Any]:
    sent = stats["sent"]
    delivered_ns = [t for t in cb[1:n + 1] if t]
    delivered = len(delivered_ns)
    out: dict[str, Any] = {
        "sent": sent,
        "delivered": delivered,
        "callbacks": info.get("callbacks", 0),
        "delivered_fraction": round(delivered / n, 4) if n else 0.0,
        "timed_out": bool(info.get("timed_out")),
        "server_version": info.get("server_version"),
        "client_stats": info.get("client_stats", {}),
        "cpu_us_per_tick_by_thread": info.get("cpu_us_per_tick_by_thread", {}),
        "errors": info.get("errors", []),
        "feed_problems": stats.get("problems", []),
        "feed_requests": stats.get("requests", []),
    }
    if info.get("memory_samples"):
        out["memory"] = memory_summary(info["memory_samples"], n, delivered, info.get("memory_source", ""))
    out["cpu_us_per_tick"] = round(info["cpu_ns"] / 1000 / delivered, 3) if delivered else None
    out["cpu_streaming_us_per_tick"] = (round(info["cpu_streaming_ns"] / 1000 / (delivered - 1), 3)
                                        if delivered >= 2 and info.get("cpu_streaming_ns") else None)
    if delivered >= 2:
        first, last = min(delivered_ns), max(delivered_ns)
        out["ticks_per_s"] = round((delivered - 1) / ((last - first) / 1e9)) if last > first else None
        out["callback_span_s"] = round((last - first) / 1e9, 4)
    else:
        out["ticks_per_s"] = None
    if stats.get("stream_end_ns") and stats.get("stream_start_ns") and sent:
        span = (stats["stream_end_ns"] - stats["stream_start_ns"]) / 1e9
        out["feed_send_rate"] = round(sent / span) if span > 0 else None
        if out["ticks_per_s"] is None and delivered == sent and span > 0:
            # Everything arrived in one read (a small run, a descheduled sink): no delivery
            # span to time, so the rate is bounded by how fast the feed sent it.
            out["ticks_per_s"] = out["feed_send_rate"]
    if rate is not None:
        out["rate"] = rate
        out["fell_behind"] = bool(out["ticks_per_s"] and out["ticks_per_s"] < 0.95 * rate)
        lat = [cb[seq] - send[seq - 1] for seq in range(1, min(sent, n) + 1) if cb[seq]]
        out["latency"] = _summary(lat)
        period = 1e9 / rate
        start = stats["stream_start_ns"]
        lag = [send[i] - (start + i * period) for i in range(sent)]
        out["feed_lag_behind_schedule"] = _summary([int(x) for x in lag])
        if arrival is not None:
            wire = [arrival[seq] - send[seq - 1] for seq in range(1, min(sent, n) + 1) if cb[seq]]
            inside = [cb[seq] - arrival[seq] for seq in range(1, min(sent, n) + 1) if cb[seq]]
            out["slob_breakdown"] = {"send_to_frame_arrival": _summary(wire),
                                     "frame_arrival_to_callback": _summary(inside)}
    return out


# -- the whole benchmark ---------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        from slob.ib.version import ibapi_info
        info["ibapi"] = str(ibapi_info())
    except Exception as exc:  # pragma: no cover - reported, not fatal
        info["ibapi"] = f"unknown ({exc})"
    try:
        from importlib import metadata
        info["ib_async"] = metadata.version("ib_async")
    except Exception:
        info["ib_async"] = "not installed"
    return info


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _brief(m: dict[str, Any]) -> str:
    if m.get("error"):
        return "FAILED"
    parts = [f"delivered {m['delivered']}/{m['sent']}"]
    if m.get("ticks_per_s"):
        parts.append(f"{m['ticks_per_s']:,} ticks/s")
    if m.get("cpu_us_per_tick") is not None:
        parts.append(f"{m['cpu_us_per_tick']:.2f} CPU us/tick")
    if "latency" in m:
        lat = m["latency"]
        parts.append(f"p50/p99/max {lat['p50_us']:.0f}/{lat['p99_us']:.0f}/{lat['max_us']:.0f} us")
    if m["timed_out"]:
        parts.append("TIMED OUT")
    if m.get("other_load_cpus", 0) >= 0.25:
        parts.append(f"other load on the machine: {m['other_load_cpus']:.2f} CPUs")
    return ", ".join(parts)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _failed(error: str) -> dict[str, Any]:
    return {"error": error, "sent": 0, "delivered": 0, "callbacks": 0, "delivered_fraction": 0.0,
            "timed_out": False, "server_version": None, "ticks_per_s": None, "cpu_us_per_tick": None,
            "latency": {"p50_us": None, "p99_us": None, "p999_us": None, "max_us": None}}


def _measure_or_fail(kind: str, n: int, rate: float | None, opts: argparse.Namespace, what: str,
                     **extra: Any) -> dict[str, Any]:
    """A failed measurement is recorded (and reported), not fatal to the other clients."""
    _log(f"== {what}")
    try:
        m = measure(kind, n, rate, opts, **extra)
    except Exception as exc:
        _log(f"   FAILED: {exc}")
        return _failed(str(exc))
    _log(f"   {_brief(m)}")
    return m


def _spread(runs: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [r[key] for r in runs if r.get(key) is not None]
    return {"median": _median(values), "min": min(values, default=None), "max": max(values, default=None)}


def _summarise_runs(tp: dict[str, Any]) -> None:
    runs = tp["runs"]
    t, c = _spread(runs, "ticks_per_s"), _spread(runs, "cpu_us_per_tick")
    tp.update(median_ticks_per_s=t["median"], min_ticks_per_s=t["min"], max_ticks_per_s=t["max"],
              median_cpu_us_per_tick=c["median"], min_cpu_us_per_tick=c["min"], max_cpu_us_per_tick=c["max"],
              min_delivered_fraction=min((r["delivered_fraction"] for r in runs), default=None))


def _rate_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One client at one rate over its rounds: the least complete round's counts, the
    medians of latency percentiles and CPU, every round kept under ``rounds``."""
    ok = [r for r in rounds if not r.get("error")]
    if not ok:
        return {**rounds[0], "rounds": rounds}
    worst = min(ok, key=lambda r: r["delivered_fraction"])
    out = {**worst, "rounds": rounds}
    out["latency"] = {k: _median([r["latency"].get(k) for r in ok]) for k in ok[0]["latency"]}
    for key in ("cpu_us_per_tick", "ticks_per_s"):
        out[key] = _median([r.get(key) for r in ok])
    out["fell_behind"] = any(r.get("fell_behind") for r in ok)
    out["timed_out"] = any(r.get("timed_out") for r in ok)
    return out


def measure_proxy(opts: argparse.Namespace) -> dict[str, Any] | None:
    """Issue 8: the latency ``slob trace``'s proxy adds (slob.trace.bench, in this process)."""
    if opts.proxy_ticks <= 0:
        return None
    _log(f"== slob trace proxy: added latency, {opts.proxy_ticks:,} frames at {opts.proxy_rate:g}/s")
    try:
        from slob.trace.bench import measure_added_latency
        result = dict(measure_added_latency(opts.proxy_ticks, opts.proxy_rate))
    except Exception as exc:
        _log(f"   FAILED: {exc}")
        return {"n": opts.proxy_ticks, "rate": opts.proxy_rate, "error": str(exc)}
    added = result["added"]
    assert isinstance(added, dict)
    _log(f"   added p50/p99/max {added['p50']}/{added['p99']}/{added['max']} µs")
    return result


def run(opts: argparse.Namespace) -> dict[str, Any]:
    kinds = opts.clients
    results: dict[str, Any] = {k: {"label": clients.LABELS[k], "path": clients.PATHS[k],
                                   "throughput": {"runs": []}, "rates": {}} for k in kinds}
    feed_only: dict[str, Any] = {"label": clients.FEED_ONLY_LABEL, "path": clients.FEED_ONLY_PATH, "runs": []}
    started = time.monotonic()
    for run_no in range(1, opts.runs + 1):
        for kind in kinds:
            results[kind]["throughput"]["runs"].append(_measure_or_fail(
                kind, opts.messages, None, opts,
                f"throughput run {run_no}/{opts.runs}: {kind}, {opts.messages:,} messages flat out"))
        feed_only["runs"].append(_measure_or_fail(
            clients.FEED_ONLY, opts.messages, None, opts,
            f"feed only run {run_no}/{opts.runs}: the same {opts.messages:,}-tick stream to a raw socket sink"))
    rounds: dict[str, dict[int, list[dict[str, Any]]]] = {k: {r: [] for r in opts.rates} for k in kinds}
    for rate in opts.rates:
        n = max(2, int(rate * opts.duration))
        for round_no in range(1, opts.rate_runs + 1):
            for kind in kinds:
                if kind == "ibapi" and round_no > 1:
                    continue  # IB's stock model: one round is enough (no ratio of issue 18 uses it)
                rounds[kind][rate].append(_measure_or_fail(
                    kind, n, float(rate), opts, f"latency round {round_no}/{opts.rate_runs}: {kind}, {rate:,} "
                                                f"ticks/s for {opts.duration:g} s ({n:,} ticks)"))
    for kind in kinds:
        for rate in opts.rates:
            results[kind]["rates"][str(rate)] = _rate_summary(rounds[kind][rate])
    memory_runs: dict[str, Any] = {}
    if opts.memory_ticks > 0:
        for kind in opts.memory_clients:
            memory_runs[kind] = _measure_or_fail(
                kind, opts.memory_ticks, None, opts, f"memory: {kind}, {opts.memory_ticks:,} ticks flat out, RSS "
                                                     f"sampled {MEMORY_POINTS} times in the client process",
                memory_points=MEMORY_POINTS)
    burst = _burst(opts, kinds)
    slow = _slow_consumer(opts, kinds)
    busy = _busy_strategy(opts, kinds)
    generations = _generations(opts, kinds, results)
    proxy = measure_proxy(opts)
    for kind in kinds:
        tp = results[kind]["throughput"]
        _summarise_runs(tp)
        results[kind]["server_version"] = next(
            (r["server_version"] for r in tp["runs"] + list(results[kind]["rates"].values())
             if r["server_version"]), None)
    _summarise_runs(feed_only)
    out: dict[str, Any] = {
        "benchmark": "slob bench: tick-by-tick AllLast over loopback TCP from one fast fake TWS feed",
        "command": options.command_line(opts),
        "quick": bool(opts.quick),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "params": {"messages": opts.messages, "rates": opts.rates, "duration_s": opts.duration,
                   "runs": opts.runs, "rate_runs": opts.rate_runs, "timeout_s": opts.timeout,
                   "start_delay_s": opts.start_delay, "batch_bytes": opts.batch_bytes, "clients": kinds,
                   "memory_ticks": opts.memory_ticks, "memory_clients": opts.memory_clients,
                   "proxy_ticks": opts.proxy_ticks, "proxy_rate": opts.proxy_rate,
                   "feed_max_server_version": opts.server_version},
        "clients": results,
        "ratios": report.ratios(results, opts.rates),
    }
    out["feed_capacity"] = _feed_capacity(feed_only, results)
    out["memory"] = _memory_block(memory_runs, opts)
    out["burst"] = burst
    out["slow_consumer"] = slow
    out["busy_strategy"] = busy
    out["generations"] = generations
    out["proxy_added_latency"] = proxy
    out.update(report.headline(out))
    out["targets"] = report.targets(out)
    out["wall_seconds"] = round(time.monotonic() - started, 1)
    return out


# -- scenarios -------------------------------------------------------------------------------

#: The burst: BURST_TICKS within BURST_WINDOW_S, after a quiet BURST_QUIET_S.
BURST_WINDOW_S = 0.05
BURST_QUIET_S = 1.0
#: The busy strategy: per-tick Python work, and a loop stall once a second, at BUSY_RATE.
BUSY_WORK = Work(tick_us=20.0, stall_ms=20.0, stall_every_s=1.0)
BUSY_RATE = 10_000


def _burst(opts: argparse.Namespace, kinds: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"ticks": opts.burst_ticks, "window_ms": BURST_WINDOW_S * 1000, "quiet_s": BURST_QUIET_S,
                           "clients": {}}
    if opts.burst_ticks <= 0:
        return out
    rate = opts.burst_ticks / BURST_WINDOW_S
    for kind in kinds:
        out["clients"][kind] = _measure_or_fail(
            kind, opts.burst_ticks, rate, opts, f"burst: {kind}, {opts.burst_ticks:,} ticks within "
                                                f"{BURST_WINDOW_S * 1000:g} ms after a quiet {BURST_QUIET_S:g} s",
            start_delay=BURST_QUIET_S)
    return out


def _slow_consumer(opts: argparse.Namespace, kinds: Sequence[str]) -> dict[str, Any]:
    """Both lanes with an on_tick that costs twice the feed interval: memory must stay
    bounded (backpressure) and every tick must arrive."""
    rate = float(opts.slow_rate)
    tick_us = 2e6 / rate
    out: dict[str, Any] = {"ticks": opts.slow_ticks, "rate": rate, "tick_us": tick_us, "clients": {},
                           "growth_kib_per_1m_ticks": None, "drops": None,
                           "warmup": "until reading first paused (the bridge at its bound), or the first "
                                     f"{report.WARMUP_FRACTION:.0%} of the ticks if it never paused"}
    lanes = [k for k in ("slob", clients.SLOB_DIRECT) if k in kinds]
    if opts.slow_ticks <= 0 or not lanes:
        return out
    for kind in lanes:
        m = _measure_or_fail(
            kind, opts.slow_ticks, rate, opts, f"slow consumer: {kind}, {opts.slow_ticks:,} ticks at {rate:,.0f}/s, "
                                               f"on_tick costs {tick_us:g} µs", memory_points=MEMORY_POINTS,
            work=Work(tick_us=tick_us), expected_s=opts.slow_ticks * tick_us / 1e6)
        samples = m.get("memory", {}).get("samples") or []
        paused_at = next((s[0] for s in samples if len(s) > 3 and s[3] > 0), None)
        mem = (memory_summary(samples, opts.slow_ticks, m["delivered"], warmup_ticks=paused_at)
               if samples else {"error": m.get("error") or "no RSS samples came back"})
        stats = m.get("client_stats", {})
        mem.update(sent=m.get("sent"), delivered=m.get("delivered"), timed_out=m.get("timed_out"),
                   drops=(m.get("sent") or 0) - (m.get("delivered") or 0) + (stats.get("drops") or 0),
                   read_paused_seconds=stats.get("read_paused_seconds"), read_pauses=stats.get("read_pauses"),
                   bridge_high_water=stats.get("bridge_high_water"), error=m.get("error"))
        out["clients"][kind] = mem
    growth = [c.get("growth_kib_per_1m_ticks") for c in out["clients"].values()]
    out["growth_kib_per_1m_ticks"] = None if None in growth else max(growth)
    drops = [c.get("drops") for c in out["clients"].values()]
    out["drops"] = None if any(c.get("error") for c in out["clients"].values()) else sum(drops)
    return out


def _busy_strategy(opts: argparse.Namespace, kinds: Sequence[str]) -> dict[str, Any]:
    work = BUSY_WORK
    out: dict[str, Any] = {"rate": BUSY_RATE, "tick_us": work.tick_us, "stall_ms": work.stall_ms,
                           "stall_every_s": work.stall_every_s, "duration_s": opts.busy_duration, "clients": {}}
    if opts.busy_duration <= 0:
        return out
    n = int(BUSY_RATE * opts.busy_duration)
    for kind in kinds:
        if kind in clients.ASYNCIO_CLIENTS:
            out["clients"][kind] = _measure_or_fail(
                kind, n, float(BUSY_RATE), opts, f"busy strategy: {kind}, {BUSY_RATE:,} ticks/s, {work.tick_us:g} µs "
                                                 f"per tick, {work.stall_ms:g} ms loop stall every "
                                                 f"{work.stall_every_s:g} s", work=work)
    return out


def _generations(opts: argparse.Namespace, kinds: Sequence[str], results: dict[str, Any]) -> dict[str, Any]:
    """slob's lanes at the other protocol generation too (text at 200, protobuf from 201)."""
    main = opts.server_version
    other = opts.compare_version
    out: dict[str, Any] = {"main": main, "compare": other, "clients": {}}
    lanes = [k for k in ("slob", clients.SLOB_DIRECT) if k in kinds]
    if not other or other == main or not lanes:
        return out
    n = max(2, int(10_000 * opts.duration))
    for kind in lanes:
        res = results[kind]
        by_version = out["clients"].setdefault(kind, {})
        by_version[str(main)] = {"throughput": res["throughput"]["runs"][0] if res["throughput"]["runs"] else None,
                                 "at_10k": (res["rates"].get("10000") or {}).get("rounds", [None])[0]}
        by_version[str(other)] = {
            "throughput": _measure_or_fail(kind, opts.messages, None, opts, f"generation {other}: {kind} flat out",
                                           server_version=other),
            "at_10k": _measure_or_fail(kind, n, 10_000.0, opts, f"generation {other}: {kind} at 10,000 ticks/s",
                                       server_version=other),
        }
    return out


def _feed_capacity(feed_only: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    fastest = max(results, key=lambda k: results[k]["throughput"]["median_ticks_per_s"] or 0, default=None)
    best = results[fastest]["throughput"]["median_ticks_per_s"] if fastest else None
    sink = feed_only["median_ticks_per_s"]
    send = _median([r.get("feed_send_rate") for r in feed_only["runs"]])
    headroom = round(sink / best, 2) if sink and best else None
    return {**feed_only, "median_feed_send_rate": send, "fastest_client": fastest,
            "fastest_client_ticks_per_s": best, "headroom_vs_fastest_client": headroom,
            "required_headroom": FEED_HEADROOM,
            "not_the_bottleneck": bool(headroom is not None and headroom >= FEED_HEADROOM)}


def _memory_block(runs: dict[str, Any], opts: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ticks": opts.memory_ticks, "points": MEMORY_POINTS, "warmup_fraction": report.WARMUP_FRACTION,
        "tolerance_kib_per_1m_ticks": MEMORY_TOLERANCE_KIB_PER_1M, "mode": "flat out (as fast as the client reads)",
        "reduced": 0 < opts.memory_ticks < 1_000_000,
        "clients": {},
    }
    for kind, m in runs.items():
        mem = dict(m.get("memory") or {"error": m.get("error") or "no RSS samples came back", "flat": False})
        mem.update(sent=m.get("sent"), delivered=m.get("delivered"), ticks_per_s=m.get("ticks_per_s"),
                   timed_out=m.get("timed_out"), client_stats=m.get("client_stats", {}))
        out["clients"][kind] = mem
    slob = out["clients"].get("slob")
    out["flat"] = slob["flat"] if slob is not None else None
    out["slob"] = slob
    return out


# -- command line --------------------------------------------------------------------


def _failures(rep: dict[str, Any]) -> list[dict[str, Any]]:
    ms = [m for res in rep["clients"].values()
          for m in res["throughput"]["runs"] + [x for v in res["rates"].values() for x in v.get("rounds", [v])]]
    ms += rep["feed_capacity"]["runs"]
    ms += list(rep["burst"]["clients"].values()) + list(rep["busy_strategy"]["clients"].values())
    ms += [c for c in rep["slow_consumer"]["clients"].values() if c.get("error")]
    return [m for m in ms if m.get("error")]


def run_and_report(opts: argparse.Namespace, out: TextIO) -> int:
    """Run the benchmark with resolved options; write JSON (+ plot, Markdown); print the
    table and the targets to ``out``. Exit code 1 when a measurement failed."""
    rep = run(opts)
    note = None
    if opts.plot is not None:
        note = report.plot(rep, opts.plot)
        rep["plot"] = None if note else str(opts.plot)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(rep, indent=2, default=str) + "\n")
    print(report.table(rep), file=out)
    print("", file=out)
    print(report.targets_block(rep), file=out)
    print("", file=out)
    print(f"JSON: {opts.json}", file=out)
    if opts.plot is not None:
        print(note or f"plot: {opts.plot}", file=out)
    if opts.markdown is not None:
        opts.markdown.parent.mkdir(parents=True, exist_ok=True)
        notes = opts.markdown_notes.read_text() if getattr(opts, "markdown_notes", None) else ""
        opts.markdown.write_text(report.markdown(rep, None if note else opts.plot, opts.markdown, notes))
        print(f"Markdown: {opts.markdown}", file=out)
    print(f"wall time: {rep['wall_seconds']:g} s{' (--quick)' if opts.quick else ''}", file=out)
    return 1 if _failures(rep) else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return options.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(options.parse_args(argv), sys.stdout)
