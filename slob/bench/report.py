"""What a benchmark run reports: ratios, the headline keys, issue 18's targets, the table,
the plot and the Markdown page -- all computed from the report dict
:func:`slob.bench.harness.run` builds (pure: no measurement happens here).

Ratios are slob's figure divided by the reference's. For latency and CPU at a fixed rate
they are the median of the per-round ratios (clients run interleaved, so a noisy moment on
a shared machine hits both sides of a round alike); for throughput both the ratio of the
medians and the median of the per-round ratios are given.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any, Sequence

__all__ = ["HEADLINE_KEYS", "MEMORY_TOLERANCE_KIB_PER_1M", "PAIRS", "headline", "markdown", "memory_summary",
           "plot", "ratios", "table", "targets", "targets_block"]

#: Memory is "flat" when RSS, after the first WARMUP_FRACTION of the ticks, grows by less
#: than this per 1,000,000 delivered ticks.
MEMORY_TOLERANCE_KIB_PER_1M = 1024
WARMUP_FRACTION = 0.1
#: (slob client, reference) pairs whose ratios are reported.
PAIRS = (("slob", "ib_async"), ("slob", "ibapi"), ("slob-direct", "ib_async"), ("slob", "hop_floor"),
         ("slob-direct", "hop_floor"))
#: Issue 18's keys (besides issue 9's, which stay).
HEADLINE_KEYS = (
    "direct_p50_ratio_vs_ib_async_at_1k", "direct_p50_ratio_vs_ib_async_at_10k",
    "direct_p50_ratio_vs_ib_async_at_50k", "direct_p99_ratio_vs_ib_async_at_1k",
    "direct_p99_ratio_vs_ib_async_at_10k", "direct_p99_ratio_vs_ib_async_at_50k",
    "direct_cpu_ratio_vs_ib_async_at_1k", "direct_cpu_ratio_vs_ib_async_at_10k",
    "asyncio_p50_ratio_vs_hop_floor_at_10k", "asyncio_p99_ratio_vs_hop_floor_at_10k",
    "asyncio_cpu_ratio_vs_ib_async_at_10k", "asyncio_throughput_ratio_vs_ib_async",
    "slow_consumer_growth_kib_per_1m_ticks", "slow_consumer_drops",
)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _div(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def short(rate: int) -> str:
    return f"{rate // 1000}k" if rate % 1000 == 0 else str(rate)


def _num(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


# -- memory ---------------------------------------------------------------------------


def memory_summary(samples: Sequence[Sequence[int]], n: int, delivered: int, source: str = "",
                   warmup_ticks: int | None = None) -> dict[str, Any]:
    """RSS along a run: ``samples`` are (ticks delivered, RSS KiB, ...) with a first one
    before the subscription. The slope is a least-squares fit over the samples after
    warm-up (the first WARMUP_FRACTION of the ticks, or ``warmup_ticks``); ``flat``: the
    run delivered every tick and RSS grew less than MEMORY_TOLERANCE_KIB_PER_1M per 1M
    ticks after warm-up."""
    pts = [(int(s[0]), int(s[1])) for s in samples]
    start = max(1, WARMUP_FRACTION * n) if warmup_ticks is None else max(1, warmup_ticks)
    post = [p for p in pts if p[0] >= start]
    out: dict[str, Any] = {
        "ticks": n, "delivered": delivered, "source": source, "samples": [list(s) for s in samples],
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


# -- ratios ---------------------------------------------------------------------------


def struggled(m: dict[str, Any]) -> bool:
    """The client did not keep up with the rate: its latency is queueing, not per-tick cost."""
    return bool(m.get("error") or m.get("fell_behind") or m.get("timed_out") or m.get("delivered", 0) < m.get("sent", 0))


def ratios(results: dict[str, Any], rates: Sequence[int]) -> dict[str, Any]:
    """``num/den`` for every pair of :data:`PAIRS` both measured."""
    out: dict[str, Any] = {}
    for num, den in PAIRS:
        if num not in results or den not in results:
            continue
        a, b = results[num], results[den]
        r: dict[str, Any] = {
            "ticks_per_s": _div(a["throughput"]["median_ticks_per_s"], b["throughput"]["median_ticks_per_s"]),
            "cpu_us_per_tick": _div(a["throughput"]["median_cpu_us_per_tick"],
                                    b["throughput"]["median_cpu_us_per_tick"]),
        }
        for key in ("ticks_per_s", "cpu_us_per_tick"):
            pairs = [_div(x.get(key), y.get(key)) for x, y in zip(a["throughput"]["runs"], b["throughput"]["runs"])]
            r[f"{key}_median_of_round_ratios"] = _median(pairs)
        for rate in rates:
            ra, rb = a["rates"].get(str(rate)), b["rates"].get(str(rate))
            if not ra or not rb:
                continue
            s = short(rate)
            rounds = list(zip(ra.get("rounds", [ra]), rb.get("rounds", [rb])))
            for key in ("p50_us", "p99_us", "max_us"):
                r[f"{key.split('_')[0]}_at_{s}"] = _median(
                    [_div(x["latency"][key], y["latency"][key]) for x, y in rounds
                     if not x.get("error") and not y.get("error")])
            r[f"cpu_us_per_tick_at_{s}"] = _median([_div(x.get("cpu_us_per_tick"), y.get("cpu_us_per_tick"))
                                                    for x, y in rounds])
            r[f"rounds_at_{s}"] = len(rounds)
            r[f"failed_at_{s}"] = any(x.get("error") or y.get("error") for x, y in rounds)
            r[f"queueing_at_{s}"] = not r[f"failed_at_{s}"] and any(struggled(x) or struggled(y) for x, y in rounds)
        out[f"{num}/{den}"] = r
    return out


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON's top-level keys: issue 9's (kept) and issue 18's."""
    rat = report["ratios"]
    r = rat.get("slob/ib_async", {})
    d = rat.get("slob-direct/ib_async", {})
    f = rat.get("slob/hop_floor", {})
    slob = report["clients"].get("slob")
    at_100k = slob["rates"].get("100000") if slob else None
    slow = report.get("slow_consumer") or {}
    out: dict[str, Any] = {
        "throughput_ratio_vs_ib_async": r.get("ticks_per_s"),
        "p99_ratio_vs_ib_async_at_10k": r.get("p99_at_10k"),
        "p99_ratio_vs_ib_async_at_50k": r.get("p99_at_50k"),
        "cpu_ratio_vs_ib_async": r.get("cpu_us_per_tick"),
        "slob_p99_us_at_100k": at_100k["latency"]["p99_us"] if at_100k and not at_100k.get("error") else None,
    }
    for q in ("p50", "p99"):
        for s in ("1k", "10k", "50k"):
            out[f"direct_{q}_ratio_vs_ib_async_at_{s}"] = d.get(f"{q}_at_{s}")
    for s in ("1k", "10k"):
        out[f"direct_cpu_ratio_vs_ib_async_at_{s}"] = d.get(f"cpu_us_per_tick_at_{s}")
    out["asyncio_p50_ratio_vs_hop_floor_at_10k"] = f.get("p50_at_10k")
    out["asyncio_p99_ratio_vs_hop_floor_at_10k"] = f.get("p99_at_10k")
    out["asyncio_cpu_ratio_vs_ib_async_at_10k"] = r.get("cpu_us_per_tick_at_10k")
    out["asyncio_throughput_ratio_vs_ib_async"] = r.get("ticks_per_s_median_of_round_ratios")
    out["slow_consumer_growth_kib_per_1m_ticks"] = slow.get("growth_kib_per_1m_ticks")
    out["slow_consumer_drops"] = slow.get("drops")
    return out


# -- targets (issue 18) -------------------------------------------------------------------


def _target(description: str, metric: str, measured: float | None, comparison: str, threshold: float,
            note: str = "") -> dict[str, Any]:
    if measured is None:
        met: bool | None = None
    else:
        met = (measured >= threshold if comparison == ">=" else measured <= threshold if comparison == "<="
               else measured < threshold if comparison == "<" else measured == threshold)
    out: dict[str, Any] = {"description": description, "metric": metric, "measured": measured,
                           "comparison": comparison, "threshold": threshold, "met": met}
    if note:
        out["note"] = note
    return out


#: Issue 18's targets: (key, description, the JSON key measured, comparison, threshold).
TARGETS: tuple[tuple[str, str, str, str, float], ...] = (
    *((f"direct_p50_at_{s}", f"zero-hop lane p50 at {s} ticks/s vs ib_async",
       f"direct_p50_ratio_vs_ib_async_at_{s}", "<=", 1.0) for s in ("1k", "10k", "50k")),
    *((f"direct_p99_at_{s}", f"zero-hop lane p99 at {s} ticks/s vs ib_async",
       f"direct_p99_ratio_vs_ib_async_at_{s}", "<=", 0.8) for s in ("1k", "10k", "50k")),
    *((f"direct_cpu_at_{s}", f"zero-hop lane CPU per tick at {s} ticks/s vs ib_async",
       f"direct_cpu_ratio_vs_ib_async_at_{s}", "<=", 0.85) for s in ("1k", "10k")),
    ("asyncio_throughput", "asyncio lane throughput flat out vs ib_async",
     "asyncio_throughput_ratio_vs_ib_async", ">=", 2.0),
    ("asyncio_p50_vs_floor", "asyncio lane p50 at 10k ticks/s vs the hop floor",
     "asyncio_p50_ratio_vs_hop_floor_at_10k", "<=", 1.3),
    ("asyncio_p99_vs_floor", "asyncio lane p99 at 10k ticks/s vs the hop floor",
     "asyncio_p99_ratio_vs_hop_floor_at_10k", "<=", 1.5),
    ("asyncio_cpu", "asyncio lane CPU per tick at 10k ticks/s vs ib_async",
     "asyncio_cpu_ratio_vs_ib_async_at_10k", "<=", 1.6),
    ("slow_consumer_memory", "both lanes, slow consumer: RSS growth per 1M ticks (KiB)",
     "slow_consumer_growth_kib_per_1m_ticks", "<", float(MEMORY_TOLERANCE_KIB_PER_1M)),
    ("slow_consumer_drops", "both lanes, slow consumer: ticks dropped", "slow_consumer_drops", "==", 0.0),
)


def targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 18's targets, each with the measured ratio, the threshold and whether it is
    met (None: not measured in this run). Printed, never asserted."""
    return {key: _target(description, metric, report.get(metric), comparison, threshold)
            for key, description, metric, comparison, threshold in TARGETS}


def targets_block(report: dict[str, Any]) -> str:
    lines = ["targets (issue 18; ratios are medians of per-round ratios from this run):"]
    for t in report["targets"].values():
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        value = t["measured"]
        measured = "n/a" if value is None else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
        note = f" [{t['note']}]" if t.get("note") else ""
        lines.append(f"  {verdict:<12} {t['description']}: {t['metric']} = {measured} "
                     f"(needs {t['comparison']} {t['threshold']:g}){note}")
    return "\n".join(lines)


# -- the table ---------------------------------------------------------------------------


def _range(median: float | None, lo: float | None, hi: float | None, fmt: str) -> str:
    if median is None:
        return "n/a"
    return f"{format(median, fmt)} ({format(lo, fmt)}–{format(hi, fmt)})"


def _latency_cell(m: dict[str, Any]) -> str:
    if m.get("error"):
        return "FAILED (see JSON)"
    lat = m["latency"]
    if lat.get("p50_us") is None:
        return "n/a"
    cell = f"{lat['p50_us']:,.0f} / {lat['p99_us']:,.0f} / {lat['max_us']:,.0f}"
    if m["delivered"] < m["sent"] or m["timed_out"]:
        cell += f" (delivered {m['delivered_fraction']:.0%} within timeout)"
    elif m.get("fell_behind"):
        cell += f" (fell behind: {m['ticks_per_s'] / 1000:.1f}k/s)"
    return cell


def table(report: dict[str, Any]) -> str:
    rates = report["params"]["rates"]
    head = ["client", "ticks/s median (min–max)", "CPU µs/tick median (min–max)"] + [
        f"p50/p99/max µs at {short(r)}" for r in rates]
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
            row.append("n/a" if m is None else _latency_cell(m))
        rows.append(row)
        if tp["runs"] and any(r["timed_out"] for r in tp["runs"]):
            notes.append(f"{res['label']}: a throughput run hit the timeout; ticks/s counts what was delivered")
    fc = report.get("feed_capacity")
    if fc and fc["runs"]:
        rows.append([fc["label"], _range(fc["median_ticks_per_s"], fc["min_ticks_per_s"], fc["max_ticks_per_s"],
                                         ",.0f"),
                     _range(fc["median_cpu_us_per_tick"], fc["min_cpu_us_per_tick"], fc["max_cpu_us_per_tick"],
                            ".2f")] + ["—"] * len(rates))
    for name, r in report["ratios"].items():
        row = [f"ratio {name}", _num(r.get("ticks_per_s_median_of_round_ratios"), ".2f") + "x",
               _num(r.get("cpu_us_per_tick_median_of_round_ratios"), ".2f") + "x"]
        for rate in rates:
            s = short(rate)
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
        lines.append(" | ".join(cell.ljust(w) if j == 0 else cell.rjust(w)
                                for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    p = report["params"]
    lines.append("")
    for kind, res in report["clients"].items():
        runs = res["throughput"]["runs"]
        if len(runs) > 1:
            lines.append(f"{res['label']} throughput runs: " + ", ".join(
                _num(r["ticks_per_s"], ",.0f") + f" ticks/s @ {_num(r['cpu_us_per_tick'], '.1f')} µs" for r in runs))
    for kind, res in report["clients"].items():
        if res["rates"]:
            lines.append(f"{res['label']} CPU µs/tick at fixed rates: " + ", ".join(
                f"{_num(m.get('cpu_us_per_tick'), '.1f')} at {short(int(rate))}" for rate, m in res["rates"].items()))
    lines.append(f"ticks/s and CPU: median (min–max) of {p['runs']} run(s) per client of {p['messages']:,} ticks "
                 f"sent flat out, clients alternating each round; latency: feed send -> user callback, "
                 f"{p['rate_runs']} round(s) of {p['duration_s']:g} s per rate, medians over the rounds; ratio rows: "
                 "medians of per-round ratios; CPU = client process time / delivered tick.")
    if fc and fc["runs"]:
        lines.append(_feed_line(fc))
    for kind, mem in report.get("memory", {}).get("clients", {}).items():
        lines.append(_memory_line(kind, mem, report["memory"]))
    lines.extend(_scenario_lines(report))
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
                  for m in res["throughput"]["runs"] + [x for v in res["rates"].values() for x in v.get("rounds", [v])]]
    disturbed = [m for m in everything if m.get("other_load_cpus", 0) >= 0.25]
    if disturbed:
        lines.append(f"{len(disturbed)} of {len(everything)} measurements ran while other processes kept >= 0.25 "
                     f"of this machine's {report['machine']['nproc']} CPUs busy (up to "
                     f"{max(m['other_load_cpus'] for m in disturbed):.2f}); see other_load_cpus in the JSON.")
    return "\n".join(lines)


def _scenario_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    labels = {k: v["label"] for k, v in report["clients"].items()}
    burst = report.get("burst")
    if burst and burst.get("clients"):
        lines.append(f"burst ({burst['ticks']:,} ticks within {burst['window_ms']:g} ms after a quiet "
                     f"{burst['quiet_s']:g} s), p50/p99/max µs: " + "; ".join(
                         f"{labels.get(k, k)} {_latency_cell(m)}" for k, m in burst["clients"].items()))
    slow = report.get("slow_consumer")
    if slow and slow.get("clients"):
        parts = []
        for k, m in slow["clients"].items():
            if m.get("error"):
                parts.append(f"{labels.get(k, k)} FAILED: {m['error']}")
                continue
            parts.append(f"{labels.get(k, k)}: {_num(m.get('rss_after_warmup_kib'), ',')} -> "
                         f"{_num(m.get('rss_last_kib'), ',')} KiB, {_num(m.get('growth_kib_per_1m_ticks'), '.0f')} "
                         f"KiB per 1M ticks after warm-up ({_num(m.get('warmup_ticks'), ',')} ticks), "
                         f"dropped {m.get('drops')}, reading paused {_num(m.get('read_paused_seconds'), '.1f')} s")
        lines.append(f"slow consumer ({slow['ticks']:,} ticks at {slow['rate']:,.0f}/s, on_tick costs "
                     f"{slow['tick_us']:g} µs = twice the feed interval): " + "; ".join(parts))
    busy = report.get("busy_strategy")
    if busy and busy.get("clients"):
        lines.append(f"busy strategy (no target; {busy['rate']:,.0f} ticks/s, on_tick does {busy['tick_us']:g} µs of "
                     f"Python work, the loop stalls {busy['stall_ms']:g} ms every {busy['stall_every_s']:g} s), "
                     "p50/p99/max µs, CPU µs/tick: " + "; ".join(
                         f"{labels.get(k, k)} {_latency_cell(m)}, {_num(m.get('cpu_us_per_tick'), '.1f')}"
                         for k, m in busy["clients"].items()))
    gen = report.get("generations")
    if gen and gen.get("clients"):
        parts = []
        for k, by_version in gen["clients"].items():
            for sv, m in by_version.items():
                tp, at = m.get("throughput") or {}, m.get("at_10k") or {}
                parts.append(f"{labels.get(k, k)} @ {sv}: {_num(tp.get('ticks_per_s'), ',.0f')} ticks/s, "
                             f"{_num(tp.get('cpu_us_per_tick'), '.2f')} µs/tick; 10k p50/p99 "
                             f"{_num((at.get('latency') or {}).get('p50_us'), ',.0f')}/"
                             f"{_num((at.get('latency') or {}).get('p99_us'), ',.0f')} µs")
        lines.append("protocol generations (server version 200: text; 201+: binary ids, protobuf ticks from 208): "
                     + "; ".join(parts))
    return lines


def machine_line(report: dict[str, Any]) -> str:
    mi = report["machine"]
    load = f", load average {mi['loadavg']}" if mi.get("loadavg") else ""
    return (f"machine: {mi['nproc']} CPUs ({mi['cpu_model']}), {mi['platform']}, Python {mi['python']}, "
            f"{mi['ibapi']}, ib_async {mi['ib_async']}{load}")


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


# -- plot and Markdown -----------------------------------------------------------------

#: One colour per client, never shared (the hop floor is not slob).
COLORS = {"slob": "tab:blue", "slob-direct": "tab:green", "hop_floor": "tab:purple", "ibapi": "tab:gray",
          "ib_async": "tab:orange"}


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
    for kind, res in report["clients"].items():
        for key, (name, line, marker) in styles.items():
            xs, ys = [], []
            for rate in rates:
                m = res["rates"].get(str(rate))
                if m and not m.get("error") and m["latency"].get(key):
                    xs.append(rate)
                    ys.append(m["latency"][key])
            if xs:
                ax.plot(xs, ys, line, marker=marker, color=COLORS.get(kind), label=f"{res['label']} {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.set_xticklabels([short(r) for r in rates])
    ax.minorticks_off()
    ax.set_xlabel("feed rate (ticks/s)")
    ax.set_ylabel("latency feed send -> user callback (µs)")
    ax.set_title("Tick-by-tick latency percentiles against rate (medians over rounds)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=6.5, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    mi = report["machine"]
    fig.text(0.01, 0.005, f"{mi['nproc']} CPUs ({mi['cpu_model']}), Python {mi['python']}, ib_async {mi['ib_async']}; "
                          "a client that fell behind a rate shows its queueing time", fontsize=6, color="dimgray")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None


def markdown(report: dict[str, Any], plot_path: Path | None, md_path: Path, notes: str = "") -> str:
    """docs/benchmarks.md: the command, the table, the targets, the machine, the plot;
    ``notes`` (Markdown) goes after the results."""
    quick = " (`--quick`: a reduced run)" if report.get("quick") else ""
    lines = [
        "# Benchmarks",
        "",
        "slob end to end -- socket → reader thread → `on_tick_direct` (the zero-hop lane), or → bridge → "
        "`on_tick` in the asyncio loop (the asyncio lane) -- side by side with ib_async, IB's stock threading "
        "model and the thread-hop floor, in one run of `slob bench`: one fast fake TWS (its own process, "
        "pre-encoded tick-by-tick frames over loopback TCP), each client in its own process, clients "
        "alternating. Only delivered callbacks are counted; nothing is dropped or conflated. Which lane to "
        "choose: [threading-model.md](threading-model.md). Source: `slob/bench/`.",
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
        "## Targets (issue 18)",
        "",
        "```text",
        targets_block(report),
        "```",
        "",
    ]
    if plot_path is not None:
        rel = os.path.relpath(plot_path.resolve(), md_path.resolve().parent)
        lines += ["## Latency against rate", "", f"![latency percentiles against rate]({rel})", ""]
    if notes:
        lines += [notes.rstrip(), ""]
    lines += [f"Wall time of the run: {report['wall_seconds']:g} s. The JSON file holds every run's raw figures.",
              ""]
    return "\n".join(lines)
