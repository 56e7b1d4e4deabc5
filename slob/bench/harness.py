"""Orchestration: one feed process + one client process per measurement; statistics,
the printed table, the targets of issue 9, the JSON file, and optionally a plot and a
Markdown page (docs/benchmarks.md)."""

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

from slob.bench import clients, feed, options
from slob.bench.options import DEFAULT_JSON

__all__ = ["DEFAULT_JSON", "main", "markdown", "measure", "memory_summary", "plot", "ratios", "run",
           "run_and_report", "table", "targets"]

#: Memory is "flat" when RSS, after the first WARMUP_FRACTION of the ticks, grows by less
#: than this per 1,000,000 delivered ticks.
MEMORY_TOLERANCE_KIB_PER_1M = 1024
WARMUP_FRACTION = 0.1
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


def measure(kind: str, n: int, rate: float | None, opts: argparse.Namespace,
            memory_points: int = 0) -> dict[str, Any]:
    """Run the feed and one client (or the feed-only sink), each in a fresh process; return
    the raw figures."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="slob-bench-") as tmp:
        stamps_path = os.path.join(tmp, "send.i64")
        cb_path = os.path.join(tmp, "callback.i64")
        expected = n / (rate or FLAT_OUT_FLOOR) + opts.start_delay
        client_timeout = expected + opts.timeout
        feed_conn, feed_child = ctx.Pipe()
        client_conn, client_child = ctx.Pipe()
        server = ctx.Process(
            target=feed.serve, name=f"bench-feed-{kind}", daemon=True,
            args=({"messages": n, "rate": rate, "start_delay": opts.start_delay,
                   "batch_bytes": opts.batch_bytes, "stamps_path": stamps_path,
                   "server_version": getattr(opts, "server_version", feed.MAX_SERVER_VERSION)}, feed_child))
        client = ctx.Process(target=clients.run_client, name=f"bench-client-{kind}", daemon=True,
                             args=(kind, client_child, n, client_timeout, cb_path, rate is not None,
                                   memory_points))
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


def memory_summary(samples: Sequence[Sequence[int]], n: int, delivered: int, source: str = "") -> dict[str, Any]:
    """RSS along a run: ``samples`` are (ticks delivered, RSS KiB, ...) with a first one
    before the subscription. The slope is a least-squares fit over the samples after
    warm-up (the first WARMUP_FRACTION of the ticks); ``flat``: the run delivered every
    tick and RSS grew less than MEMORY_TOLERANCE_KIB_PER_1M per 1M ticks after warm-up."""
    pts = [(int(s[0]), int(s[1])) for s in samples]
    post = [p for p in pts if p[0] >= max(1, WARMUP_FRACTION * n)]
    out: dict[str, Any] = {
        "ticks": n, "delivered": delivered, "source": source, "samples": [list(p) for p in pts],
        "rss_before_subscribe_kib": pts[0][1] if pts and pts[0][0] == 0 else None,
        "rss_after_warmup_kib": post[0][1] if post else None,
        "rss_last_kib": pts[-1][1] if pts else None,
        "rss_peak_kib": max(p[1] for p in pts) if pts else None,
        "warmup_ticks": post[0][0] if post else None,
        "tolerance_kib_per_1m_ticks": MEMORY_TOLERANCE_KIB_PER_1M,
        "slope_kib_per_100k_ticks": None, "growth_kib_after_warmup": None,
        "growth_kib_per_1m_ticks": None, "flat": False,
    }
    if len(post) >= 2 and post[-1][0] > post[0][0]:
        mx = statistics.fmean(p[0] for p in post)
        my = statistics.fmean(p[1] for p in post)
        sxx = sum((p[0] - mx) ** 2 for p in post)
        slope = sum((p[0] - mx) * (p[1] - my) for p in post) / sxx
        growth = post[-1][1] - post[0][1]
        per_1m = growth * 1e6 / (post[-1][0] - post[0][0])
        out.update(slope_kib_per_100k_ticks=round(slope * 100_000, 1), growth_kib_after_warmup=growth,
                   growth_kib_per_1m_ticks=round(per_1m, 1),
                   flat=bool(delivered >= n and per_1m < MEMORY_TOLERANCE_KIB_PER_1M))
    return out


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


def _measure_or_fail(kind: str, n: int, rate: float | None, opts: argparse.Namespace,
                     memory_points: int = 0) -> dict[str, Any]:
    """A failed measurement is recorded (and reported), not fatal to the other clients."""
    try:
        return measure(kind, n, rate, opts, memory_points)
    except Exception as exc:
        _log(f"   FAILED: {exc}")
        return _failed(str(exc))


def _spread(runs: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [r[key] for r in runs if r.get(key) is not None]
    return {"median": _median(values), "min": min(values, default=None), "max": max(values, default=None)}


def _summarise_runs(tp: dict[str, Any]) -> None:
    runs = tp["runs"]
    t, c = _spread(runs, "ticks_per_s"), _spread(runs, "cpu_us_per_tick")
    tp.update(median_ticks_per_s=t["median"], min_ticks_per_s=t["min"], max_ticks_per_s=t["max"],
              median_cpu_us_per_tick=c["median"], min_cpu_us_per_tick=c["min"], max_cpu_us_per_tick=c["max"],
              min_delivered_fraction=min((r["delivered_fraction"] for r in runs), default=None))


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
            _log(f"== throughput run {run_no}/{opts.runs}: {kind}, {opts.messages:,} messages flat out")
            m = _measure_or_fail(kind, opts.messages, None, opts)
            _log(f"   {_brief(m)}")
            results[kind]["throughput"]["runs"].append(m)
        _log(f"== feed only run {run_no}/{opts.runs}: the same {opts.messages:,}-tick stream to a raw socket sink")
        m = _measure_or_fail(clients.FEED_ONLY, opts.messages, None, opts)
        _log(f"   {_brief(m)}")
        feed_only["runs"].append(m)
    for rate in opts.rates:
        n = max(2, int(rate * opts.duration))
        for kind in kinds:
            _log(f"== latency: {kind}, {rate:,} ticks/s for {opts.duration:g} s ({n:,} ticks)")
            m = _measure_or_fail(kind, n, float(rate), opts)
            _log(f"   {_brief(m)}")
            results[kind]["rates"][str(rate)] = m
    memory_runs: dict[str, Any] = {}
    if opts.memory_ticks > 0:
        for kind in opts.memory_clients:
            _log(f"== memory: {kind}, {opts.memory_ticks:,} ticks flat out, RSS sampled {MEMORY_POINTS} times "
                 f"in the client process")
            m = _measure_or_fail(kind, opts.memory_ticks, None, opts, MEMORY_POINTS)
            mem = m.get("memory")
            _log(f"   {_brief(m)}" + (f"; RSS {mem['rss_after_warmup_kib']:,} -> {mem['rss_last_kib']:,} KiB, "
                                       f"{mem['slope_kib_per_100k_ticks']} KiB/100k ticks" if mem else ""))
            memory_runs[kind] = m
    proxy = measure_proxy(opts)
    for kind in kinds:
        tp = results[kind]["throughput"]
        _summarise_runs(tp)
        results[kind]["server_version"] = next(
            (r["server_version"] for r in tp["runs"] + list(results[kind]["rates"].values())
             if r["server_version"]), None)
    _summarise_runs(feed_only)
    report: dict[str, Any] = {
        "benchmark": "slob bench: tick-by-tick AllLast over loopback TCP from one fast fake TWS feed",
        "command": options.command_line(opts),
        "quick": bool(opts.quick),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "params": {"messages": opts.messages, "rates": opts.rates, "duration_s": opts.duration,
                   "runs": opts.runs, "timeout_s": opts.timeout, "start_delay_s": opts.start_delay,
                   "batch_bytes": opts.batch_bytes, "clients": kinds, "memory_ticks": opts.memory_ticks,
                   "memory_clients": opts.memory_clients, "proxy_ticks": opts.proxy_ticks,
                   "proxy_rate": opts.proxy_rate,
                   "feed_max_server_version": getattr(opts, "server_version", feed.MAX_SERVER_VERSION)},
        "clients": results,
        "ratios": ratios(results, opts.rates),
    }
    report["feed_capacity"] = _feed_capacity(feed_only, results)
    report["memory"] = _memory_block(memory_runs, opts)
    report["proxy_added_latency"] = proxy
    report.update(_headline(report))
    report["targets"] = targets(report)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    return report


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
        "ticks": opts.memory_ticks, "points": MEMORY_POINTS, "warmup_fraction": WARMUP_FRACTION,
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


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    r = report["ratios"].get("slob/ib_async", {})
    slob = report["clients"].get("slob")
    at_100k = slob["rates"].get("100000") if slob else None
    return {
        "throughput_ratio_vs_ib_async": r.get("ticks_per_s"),
        "p99_ratio_vs_ib_async_at_10k": r.get("p99_at_10k"),
        "p99_ratio_vs_ib_async_at_50k": r.get("p99_at_50k"),
        "cpu_ratio_vs_ib_async": r.get("cpu_us_per_tick"),
        "slob_p99_us_at_100k": at_100k["latency"]["p99_us"] if at_100k and not at_100k.get("error") else None,
    }


def _target(description: str, metric: str, measured: float | None, comparison: str, threshold: float,
            extra_ok: bool = True, note: str = "") -> dict[str, Any]:
    if measured is None:
        met: bool | None = None
    else:
        met = extra_ok and (measured >= threshold if comparison == ">=" else
                            measured <= threshold if comparison == "<=" else measured < threshold)
    out: dict[str, Any] = {"description": description, "metric": metric, "measured": measured,
                           "comparison": comparison, "threshold": threshold, "met": met}
    if note:
        out["note"] = note
    return out


def targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 9's targets for slob, each with the measured value, the threshold and whether
    it is met (None: not measured in this run)."""
    slob = report["clients"].get("slob", {"rates": {}})
    at_100k = slob["rates"].get("100000")
    complete = bool(at_100k and not at_100k.get("error") and at_100k["delivered"] >= at_100k["sent"] > 0
                    and not at_100k["timed_out"])
    mem = report["memory"]
    slob_mem = mem.get("slob") or {}
    mem_note = (f"reduced run: {mem['ticks']:,} ticks, not 1,000,000" if mem.get("reduced") else "")
    return {
        "throughput": _target("delivered ticks/s >= 3 x ib_async's", "throughput_ratio_vs_ib_async",
                              report["throughput_ratio_vs_ib_async"], ">=", 3.0),
        "p99_at_10k": _target("p99 latency at 10,000 ticks/s <= 0.75 x ib_async's", "p99_ratio_vs_ib_async_at_10k",
                              report["p99_ratio_vs_ib_async_at_10k"], "<=", 0.75),
        "p99_at_50k": _target("p99 latency at 50,000 ticks/s <= 0.5 x ib_async's", "p99_ratio_vs_ib_async_at_50k",
                              report["p99_ratio_vs_ib_async_at_50k"], "<=", 0.5),
        "p99_at_100k": _target("p99 latency at 100,000 ticks/s < 2 ms, every tick delivered (no collapse)",
                               "slob_p99_us_at_100k", report["slob_p99_us_at_100k"], "<", 2000.0, complete),
        "cpu_per_tick": _target("CPU per delivered tick <= 0.5 x ib_async's", "cpu_ratio_vs_ib_async",
                                report["cpu_ratio_vs_ib_async"], "<=", 0.5),
        "memory_flat": _target(f"memory flat: RSS growth after the first {WARMUP_FRACTION:.0%} of the ticks "
                               f"< {MEMORY_TOLERANCE_KIB_PER_1M} KiB per 1M ticks, every tick delivered",
                               "memory.slob.growth_kib_per_1m_ticks", slob_mem.get("growth_kib_per_1m_ticks"),
                               "<", float(MEMORY_TOLERANCE_KIB_PER_1M), bool(slob_mem.get("flat")), mem_note),
    }


def ratios(results: dict[str, Any], rates: Sequence[int], num: str = "slob") -> dict[str, Any]:
    """``num``/other for each metric: ratio of the medians, and for throughput and CPU also
    the median of the per-round ratios (clients run interleaved, so a noisy moment on the
    machine hits both sides of a round alike)."""

    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    out: dict[str, Any] = {}
    for den in ("ib_async", "ibapi"):
        if num not in results or den not in results:
            continue
        a, b = results[num], results[den]
        r: dict[str, Any] = {
            "ticks_per_s": div(a["throughput"]["median_ticks_per_s"], b["throughput"]["median_ticks_per_s"]),
            "cpu_us_per_tick": div(a["throughput"]["median_cpu_us_per_tick"],
                                   b["throughput"]["median_cpu_us_per_tick"]),
        }
        for key in ("ticks_per_s", "cpu_us_per_tick"):
            pairs = [div(x[key], y[key]) for x, y in zip(a["throughput"]["runs"], b["throughput"]["runs"])]
            r[f"{key}_median_of_round_ratios"] = _median([p for p in pairs if p is not None])
        for rate in rates:
            ra, rb = a["rates"].get(str(rate)), b["rates"].get(str(rate))
            if ra and rb:
                s = _short(rate)
                for key in ("p50_us", "p99_us", "max_us"):
                    r[f"{key.split('_')[0]}_at_{s}"] = div(ra["latency"][key], rb["latency"][key])
                r[f"cpu_us_per_tick_at_{s}"] = div(ra["cpu_us_per_tick"], rb["cpu_us_per_tick"])
                r[f"failed_at_{s}"] = bool(ra.get("error") or rb.get("error"))
                r[f"queueing_at_{s}"] = not r[f"failed_at_{s}"] and (_struggled(ra) or _struggled(rb))
        out[f"{num}/{den}"] = r
    return out


def _struggled(m: dict[str, Any]) -> bool:
    """The client did not keep up with the rate: its latency is queueing, not per-tick cost."""
    return bool(m.get("fell_behind") or m["timed_out"] or m["delivered"] < m["sent"])


def _short(rate: int) -> str:
    return f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)


# -- the table -----------------------------------------------------------------------


def _num(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def _range(median: float | None, lo: float | None, hi: float | None, fmt: str) -> str:
    if median is None:
        return "n/a"
    return f"{format(median, fmt)} ({format(lo, fmt)}–{format(hi, fmt)})"


def table(report: dict[str, Any]) -> str:
    rates = report["params"]["rates"]
    head = ["client", "ticks/s median (min–max)", "CPU µs/tick median (min–max)"] + [
        f"p50/p99/max µs at {_short(r)}" for r in rates]
    rows = [head]
    notes = []
    for kind, res in report["clients"].items():
        tp = res["throughput"]
        tput = _range(tp["median_ticks_per_s"], tp["min_ticks_per_s"], tp["max_ticks_per_s"], ",.0f")
        if tp["min_delivered_fraction"] is not None and tp["min_delivered_fraction"] < 1:
            tput += f" (partial: {tp['min_delivered_fraction']:.0%})"
        row = [res["label"], tput,
               _range(tp["median_cpu_us_per_tick"], tp["min_cpu_us_per_tick"], tp["max_cpu_us_per_tick"], ".2f")]
        for rate in rates:
            m = res["rates"].get(str(rate))
            if m is None or m.get("error"):
                row.append("n/a" if m is None else "FAILED (see JSON)")
                continue
            lat = m["latency"]
            cell = f"{lat['p50_us']:,.0f} / {lat['p99_us']:,.0f} / {lat['max_us']:,.0f}"
            if m["delivered"] < m["sent"] or m["timed_out"]:
                cell += f" (delivered {m['delivered_fraction']:.0%} within timeout)"
            elif m.get("fell_behind"):
                cell += f" (fell behind: {m['ticks_per_s'] / 1000:.1f}k/s)"
            row.append(cell)
        rows.append(row)
        if res["throughput"]["runs"] and any(r["timed_out"] for r in res["throughput"]["runs"]):
            notes.append(f"{res['label']}: a throughput run hit the timeout; ticks/s counts what was delivered")
    fc = report.get("feed_capacity")
    if fc and fc["runs"]:
        rows.append([fc["label"], _range(fc["median_ticks_per_s"], fc["min_ticks_per_s"], fc["max_ticks_per_s"],
                                         ",.0f"),
                     _range(fc["median_cpu_us_per_tick"], fc["min_cpu_us_per_tick"], fc["max_cpu_us_per_tick"],
                            ".2f")] + ["—"] * len(rates))
    for name, r in report["ratios"].items():
        row = [f"ratio {name}", _num(r.get("ticks_per_s"), ".2f") + "x", _num(r.get("cpu_us_per_tick"), ".2f") + "x"]
        for rate in rates:
            s = _short(rate)
            cell = " / ".join(_num(r.get(f"{k}_at_{s}"), ".2f") for k in ("p50", "p99", "max")) + " x"
            if r.get(f"failed_at_{s}"):
                cell = "n/a (a measurement failed)"
            elif r.get(f"queueing_at_{s}"):
                cell += " (queueing)"
            row.append(cell)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for i, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    p = report["params"]
    lines.append("")
    for kind, res in report["clients"].items():
        runs = res["throughput"]["runs"]
        if len(runs) > 1:
            lines.append(f"{res['label']} throughput runs: "
                         + ", ".join(_num(r["ticks_per_s"], ",.0f") + f" ticks/s @ {_num(r['cpu_us_per_tick'], '.1f')} µs"
                                     for r in runs))
    for kind, res in report["clients"].items():
        if res["rates"]:
            lines.append(f"{res['label']} CPU µs/tick at fixed rates: " + ", ".join(
                f"{_num(m['cpu_us_per_tick'], '.1f')} at {_short(int(rate))}" for rate, m in res["rates"].items()))
    for name, r in report["ratios"].items():
        if r.get("ticks_per_s_median_of_round_ratios") is not None:
            lines.append(f"ratio {name}, median of per-round ratios: ticks/s "
                         f"{r['ticks_per_s_median_of_round_ratios']:.2f}x, CPU/tick "
                         f"{_num(r['cpu_us_per_tick_median_of_round_ratios'], '.2f')}x")
    lines.append(f"ticks/s and CPU: median (min–max) of {p['runs']} run(s) per client of {p['messages']:,} ticks "
                 f"sent flat out, clients alternating each round; latency: feed send -> user callback, one "
                 f"{p['duration_s']:g} s run per rate; CPU = client process time / delivered tick.")
    if fc and fc["runs"]:
        lines.append(_feed_line(fc))
    for kind, mem in report.get("memory", {}).get("clients", {}).items():
        lines.append(_memory_line(kind, mem, report["memory"]))
    proxy = report.get("proxy_added_latency")
    if proxy:
        lines.append(_proxy_line(proxy))
    for kind, res in report["clients"].items():
        lines.append(f"{res['label']}: server version {res['server_version']}; {res['path']}")
    lines.append(machine_line(report))
    if any(r.get(k) for r in report["ratios"].values() for k in r if k.startswith("queueing_at_")):
        lines.append("(queueing): a client fell behind that rate or was cut by the timeout; its latency is "
                     "time spent queued, not per-tick cost.")
    lines.extend(notes)
    everything = [m for res in report["clients"].values()
                  for m in res["throughput"]["runs"] + list(res["rates"].values())]
    disturbed = [m for m in everything if m.get("other_load_cpus", 0) >= 0.25]
    if disturbed:
        lines.append(f"{len(disturbed)} of {len(everything)} measurements ran while other processes kept >= 0.25 "
                     f"of this machine's {report['machine']['nproc']} CPUs busy (up to "
                     f"{max(m['other_load_cpus'] for m in disturbed):.2f}); see other_load_cpus in the JSON.")
    return "\n".join(lines)


def machine_line(report: dict[str, Any]) -> str:
    mi = report["machine"]
    return (f"machine: {mi['nproc']} CPUs ({mi['cpu_model']}), {mi['platform']}, Python {mi['python']}, "
            f"{mi['ibapi']}, ib_async {mi['ib_async']}")


def _feed_line(fc: dict[str, Any]) -> str:
    verdict = ("not the bottleneck" if fc["not_the_bottleneck"] else
               f"NOT shown to be faster than {fc['required_headroom']:g}x the fastest client")
    return (f"feed capacity: the same stream flat out to a raw socket sink: "
            f"{_num(fc['median_ticks_per_s'], ',.0f')} ticks/s received (feed send rate "
            f"{_num(fc['median_feed_send_rate'], ',.0f')}/s) vs the fastest client ({fc['fastest_client']}) "
            f"{_num(fc['fastest_client_ticks_per_s'], ',.0f')} ticks/s: "
            f"{_num(fc['headroom_vs_fastest_client'], '.1f')}x -> the feed is {verdict}.")


def _memory_line(kind: str, mem: dict[str, Any], block: dict[str, Any]) -> str:
    if mem.get("error"):
        return f"memory ({kind}): FAILED: {mem['error']}"
    reduced = " (reduced run, not 1,000,000)" if block.get("reduced") else ""
    return (f"memory ({kind}, {block['ticks']:,} ticks flat out{reduced}, RSS in the client process): "
            f"{_num(mem['rss_before_subscribe_kib'], ',')} KiB before subscribing, "
            f"{_num(mem['rss_after_warmup_kib'], ',')} KiB after {_num(mem['warmup_ticks'], ',')} ticks, "
            f"{_num(mem['rss_last_kib'], ',')} KiB at the end; slope "
            f"{_num(mem['slope_kib_per_100k_ticks'], '.1f')} KiB/100k ticks, growth "
            f"{_num(mem['growth_kib_per_1m_ticks'], '.0f')} KiB per 1M ticks after warm-up -> "
            f"{'flat' if mem['flat'] else 'NOT flat'} (tolerance {block['tolerance_kib_per_1m_ticks']} KiB/1M)"
            + (f"; bridge high water {mem['client_stats']['bridge_high_water']:,} ticks"
               if mem.get("client_stats", {}).get("bridge_high_water") is not None else ""))


def _proxy_line(proxy: dict[str, Any]) -> str:
    if proxy.get("error"):
        return f"slob trace proxy: FAILED: {proxy['error']}"
    d, p, a = proxy["direct"], proxy["proxy"], proxy["added"]
    return (f"slob trace proxy ({proxy['n']:,} frames at {proxy['rate']:g}/s, one-way µs): direct p50/p99/max "
            f"{d['p50']}/{d['p99']}/{d['max']}, through the proxy {p['p50']}/{p['p99']}/{p['max']}, "
            f"added {a['p50']}/{a['p99']}/{a['max']}")


def targets_block(report: dict[str, Any]) -> str:
    lines = ["targets (issue 9, slob vs ib_async):"]
    for t in report["targets"].values():
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        value = t["measured"]
        measured = "n/a" if value is None else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
        note = f" [{t['note']}]" if t.get("note") else ""
        lines.append(f"  {verdict:<12} {t['description']}: {t['metric']} = {measured} "
                     f"(needs {t['comparison']} {t['threshold']:g}){note}")
    return "\n".join(lines)


# -- plot and Markdown -----------------------------------------------------------------


def plot(report: dict[str, Any], path: Path) -> str | None:
    """Latency percentiles (p50, p99, p99.9) against rate per client, log axes, as a PNG.
    Returns None on success, else why no plot was written (matplotlib missing...)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install 'slob[bench]')"
    rates = [int(r) for r in report["params"]["rates"]]
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    styles = {"p50_us": ("p50", "-", "o"), "p99_us": ("p99", "--", "s"), "p999_us": ("p99.9", ":", "^")}
    colors = {"slob": "tab:blue", "ibapi": "tab:gray", "ib_async": "tab:orange"}
    for kind, res in report["clients"].items():
        for key, (name, line, marker) in styles.items():
            xs, ys = [], []
            for rate in rates:
                m = res["rates"].get(str(rate))
                if m and not m.get("error") and m["latency"].get(key):
                    xs.append(rate)
                    ys.append(m["latency"][key])
            if xs:
                ax.plot(xs, ys, line, marker=marker, color=colors.get(kind), label=f"{res['label']} {name}")
    ax.axhline(2000, color="tab:red", linewidth=0.8, alpha=0.6)
    ax.text(rates[0] if rates else 1, 2000, " 2 ms (slob's target at 100k/s)", color="tab:red", fontsize=7,
            va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.set_xticklabels([_short(r) for r in rates])
    ax.minorticks_off()
    ax.set_xlabel("feed rate (ticks/s)")
    ax.set_ylabel("latency feed send -> user callback (µs)")
    ax.set_title("Tick-by-tick latency percentiles against rate", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    mi = report["machine"]
    fig.text(0.01, 0.005, f"{mi['nproc']} CPUs ({mi['cpu_model']}), Python {mi['python']}, ib_async {mi['ib_async']}; "
                          "a client that fell behind a rate shows its queueing time", fontsize=6, color="dimgray")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None


def markdown(report: dict[str, Any], plot_path: Path | None, md_path: Path) -> str:
    """docs/benchmarks.md: the command, the table, the targets, the machine, the plot."""
    quick = " (`--quick`: a reduced run)" if report.get("quick") else ""
    lines = [
        "# Benchmarks",
        "",
        "slob end to end (socket → reader thread → bridge → `on_tick` in the asyncio loop) side by side "
        "with ib_async and IB's stock threading model, in one run of `slob bench`: one fast fake TWS "
        "(its own process, pre-encoded tick-by-tick frames over loopback TCP), each client in its own "
        "process, clients alternating. Only delivered callbacks are counted; nothing is dropped or "
        "conflated. Source: `slob/bench/`.",
        "",
        f"Produced {report['when']} by this command{quick}:",
        "",
        "```bash",
        report["command"],
        "```",
        "",
        machine_line(report).replace("machine: ", "**Machine:** ", 1),
        "",
        "## Results",
        "",
        "```text",
        table(report),
        "```",
        "",
        "## Targets (issue 9)",
        "",
        "```text",
        targets_block(report),
        "```",
        "",
    ]
    if plot_path is not None:
        rel = os.path.relpath(plot_path.resolve(), md_path.resolve().parent)
        lines += ["## Latency against rate", "", f"![latency percentiles against rate]({rel})", ""]
    lines += [f"Wall time of the run: {report['wall_seconds']:g} s. The JSON file holds every run's raw figures.",
              ""]
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------


def _failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    ms = [m for res in report["clients"].values()
          for m in res["throughput"]["runs"] + list(res["rates"].values())]
    ms += report["feed_capacity"]["runs"]
    return [m for m in ms if m.get("error")]


def run_and_report(opts: argparse.Namespace, out: TextIO) -> int:
    """Run the benchmark with resolved options; write JSON (+ plot, Markdown); print the
    table and the targets to ``out``. Exit code 1 when a measurement failed."""
    report = run(opts)
    note = None
    if opts.plot is not None:
        note = plot(report, opts.plot)
        report["plot"] = None if note else str(opts.plot)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table(report), file=out)
    print("", file=out)
    print(targets_block(report), file=out)
    print("", file=out)
    print(f"JSON: {opts.json}", file=out)
    if opts.plot is not None:
        print(note or f"plot: {opts.plot}", file=out)
    if opts.markdown is not None:
        opts.markdown.parent.mkdir(parents=True, exist_ok=True)
        opts.markdown.write_text(markdown(report, None if note else opts.plot, opts.markdown))
        print(f"Markdown: {opts.markdown}", file=out)
    print(f"wall time: {report['wall_seconds']:g} s{' (--quick)' if opts.quick else ''}", file=out)
    return 1 if _failures(report) else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return options.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(options.parse_args(argv), sys.stdout)
