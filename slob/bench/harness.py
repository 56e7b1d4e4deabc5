"""Orchestration: one feed process + one client process per measurement; statistics,
the printed table and the JSON file."""

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
from typing import Any, Sequence

from slob.bench import clients, feed


DEFAULT_JSON = Path("bench-results") / "bench.json"  # relative to the working directory


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


def measure(kind: str, n: int, rate: float | None, opts: argparse.Namespace) -> dict[str, Any]:
    """Run the feed and one client, each in a fresh process; return the raw figures."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="slob-bench-") as tmp:
        stamps_path = os.path.join(tmp, "send.i64")
        cb_path = os.path.join(tmp, "callback.i64")
        expected = (n / rate if rate else 0.0) + opts.start_delay
        client_timeout = expected + opts.timeout
        feed_conn, feed_child = ctx.Pipe()
        client_conn, client_child = ctx.Pipe()
        server = ctx.Process(
            target=feed.serve, name=f"bench-feed-{kind}", daemon=True,
            args=({"messages": n, "rate": rate, "start_delay": opts.start_delay,
                   "batch_bytes": opts.batch_bytes, "stamps_path": stamps_path}, feed_child))
        client = ctx.Process(target=clients.run_client, name=f"bench-client-{kind}", daemon=True,
                             args=(kind, client_child, n, client_timeout, cb_path, rate is not None))
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
        "errors": info.get("errors", []),
        "feed_problems": stats.get("problems", []),
        "feed_requests": stats.get("requests", []),
    }
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


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _measure_or_fail(kind: str, n: int, rate: float | None, opts: argparse.Namespace) -> dict[str, Any]:
    """A failed measurement is recorded (and reported), not fatal to the other clients."""
    try:
        return measure(kind, n, rate, opts)
    except Exception as exc:
        _log(f"   FAILED: {exc}")
        return {"error": str(exc), "sent": 0, "delivered": 0, "callbacks": 0, "delivered_fraction": 0.0,
                "timed_out": False, "server_version": None, "ticks_per_s": None, "cpu_us_per_tick": None,
                "latency": {"p50_us": None, "p99_us": None, "max_us": None}}


def run(opts: argparse.Namespace) -> dict[str, Any]:
    kinds = opts.clients
    results: dict[str, Any] = {k: {"label": clients.LABELS[k], "path": clients.PATHS[k],
                                   "throughput": {"runs": []}, "rates": {}} for k in kinds}
    started = time.monotonic()
    for run_no in range(1, opts.runs + 1):
        for kind in kinds:
            _log(f"== throughput run {run_no}/{opts.runs}: {kind}, {opts.messages:,} messages flat out")
            m = _measure_or_fail(kind, opts.messages, None, opts)
            _log(f"   {_brief(m)}")
            results[kind]["throughput"]["runs"].append(m)
    for rate in opts.rates:
        n = max(2, int(rate * opts.duration))
        for kind in kinds:
            _log(f"== latency: {kind}, {rate:,} ticks/s for {opts.duration:g} s ({n:,} ticks)")
            m = _measure_or_fail(kind, n, float(rate), opts)
            _log(f"   {_brief(m)}")
            results[kind]["rates"][str(rate)] = m
    for kind in kinds:
        tp = results[kind]["throughput"]
        runs = tp["runs"]
        tp["median_ticks_per_s"] = _median([r["ticks_per_s"] for r in runs])
        tp["median_cpu_us_per_tick"] = _median([r["cpu_us_per_tick"] for r in runs])
        tp["min_delivered_fraction"] = min((r["delivered_fraction"] for r in runs), default=None)
        results[kind]["server_version"] = next(
            (r["server_version"] for r in runs + list(results[kind]["rates"].values()) if r["server_version"]), None)
    report: dict[str, Any] = {
        "benchmark": "slob tools/bench: tick-by-tick AllLast over loopback TCP from one fast fake TWS feed",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "params": {"messages": opts.messages, "rates": opts.rates, "duration_s": opts.duration,
                   "runs": opts.runs, "timeout_s": opts.timeout, "start_delay_s": opts.start_delay,
                   "batch_bytes": opts.batch_bytes, "clients": kinds,
                   "feed_max_server_version": feed.MAX_SERVER_VERSION},
        "clients": results,
        "ratios": ratios(results, opts.rates),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    return report


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


def table(report: dict[str, Any]) -> str:
    rates = report["params"]["rates"]
    head = ["client", "ticks/s", "CPU µs/tick"] + [f"p50/p99/max µs at {_short(r)}" for r in rates]
    rows = [head]
    notes = []
    for kind, res in report["clients"].items():
        tp = res["throughput"]
        tput = _num(tp["median_ticks_per_s"], ",.0f")
        if tp["min_delivered_fraction"] is not None and tp["min_delivered_fraction"] < 1:
            tput += f" (partial: {tp['min_delivered_fraction']:.0%})"
        row = [res["label"], tput, _num(tp["median_cpu_us_per_tick"], ".2f")]
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
    mi = report["machine"]
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
                         f"{r['ticks_per_s_median_of_round_ratios']:.2f}x, CPU/tick {r['cpu_us_per_tick_median_of_round_ratios']:.2f}x")
    lines.append(f"ticks/s and CPU: median of {p['runs']} run(s) of {p['messages']:,} ticks sent flat out; "
                 f"latency: feed send -> user callback, {p['duration_s']:g} s per rate; "
                 f"CPU = client process time / delivered tick.")
    for kind, res in report["clients"].items():
        lines.append(f"{res['label']}: server version {res['server_version']}; {res['path']}")
    lines.append(f"machine: {mi['nproc']} CPUs ({mi['cpu_model']}), Python {mi['python']}, {mi['ibapi']}, "
                 f"ib_async {mi['ib_async']}")
    if any(r.get(k) for r in report["ratios"].values() for k in r if k.startswith("queueing_at_")):
        lines.append("(queueing): a client fell behind that rate or was cut by the timeout; its latency is "
                     "time spent queued, not per-tick cost.")
    lines.extend(notes)
    everything = [m for res in report["clients"].values()
                  for m in res["throughput"]["runs"] + list(res["rates"].values())]
    disturbed = [m for m in everything if m.get("other_load_cpus", 0) >= 0.25]
    if disturbed:
        lines.append(f"{len(disturbed)} of {len(everything)} measurements ran while other processes kept >= 0.25 "
                     f"of this machine's {mi['nproc']} CPUs busy (up to "
                     f"{max(m['other_load_cpus'] for m in disturbed):.2f}); see other_load_cpus in the JSON.")
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    return [int(float(x)) for x in text.replace("_", "").split(",") if x.strip()]


def _client_list(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in clients.CLIENTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown client(s) {bad}; choose from {','.join(clients.CLIENTS)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="tools/bench",
        description="Tick-by-tick throughput, latency and CPU per tick: slob vs IB's stock model vs "
                    "ib_async, each in its own process, fed by one fast fake TWS over loopback TCP.")
    ap.add_argument("--messages", type=int, default=200_000, help="ticks per throughput run (default 200000)")
    ap.add_argument("--rates", type=_int_list, default=[1000, 10000, 50000],
                    help="fixed rates for latency, ticks/s, comma-separated (default 1000,10000,50000)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per fixed-rate run (default 5)")
    ap.add_argument("--runs", type=int, default=3, help="throughput runs per client; the median is reported (default 3)")
    ap.add_argument("--clients", type=_client_list, default=list(clients.CLIENTS),
                    help="subset of slob,ibapi,ib_async (default: all three)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds a client may lag behind the feed's schedule before the run is cut (default 30)")
    ap.add_argument("--start-delay", type=float, default=0.5,
                    help="seconds between the tick-by-tick request and the first tick (default 0.5)")
    ap.add_argument("--batch-bytes", type=int, default=16384,
                    help="bytes per socket write when sending flat out (default 16384)")
    opts = ap.parse_args(argv)
    if opts.messages < 2 or opts.runs < 1 or opts.duration <= 0 or any(r <= 0 for r in opts.rates):
        ap.error("--messages >= 2, --runs >= 1, --duration > 0 and positive --rates, please")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    report = run(opts)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table(report))
    print(f"\nJSON: {opts.json}")
    failed = [m for res in report["clients"].values()
              for m in res["throughput"]["runs"] + list(res["rates"].values()) if m.get("error")]
    return 1 if failed else 0
