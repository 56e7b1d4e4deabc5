"""Smoke test of the benchmark (slob bench / tools/bench / python -m slob.bench): tiny
parameters, every client and scenario.

A correctness test of the harness, not of performance: every tick the feed sent must reach
each client's callback, and every figure, ratio and target must be there and consistent.
No timing thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slob import cli

pytest.importorskip("ib_async")

#: One generation for the tests that take the fixture: the run itself measures slob's lanes at
#: the other one too (--compare-version), so both are covered.
TWS_SERVER_VERSIONS = (226,)

CLIENTS = ("slob", "slob-direct", "ibapi", "ib_async", "hop_floor")
OLD_HEADLINE = ("throughput_ratio_vs_ib_async", "p99_ratio_vs_ib_async_at_10k", "p99_ratio_vs_ib_async_at_50k",
                "cpu_ratio_vs_ib_async", "slob_p99_us_at_100k")
TARGETS = ("direct_p50_at_1k", "direct_p50_at_10k", "direct_p50_at_50k", "direct_p99_at_1k", "direct_p99_at_10k",
           "direct_p99_at_50k", "direct_cpu_at_1k", "direct_cpu_at_10k", "asyncio_throughput",
           "asyncio_p50_vs_floor", "asyncio_p99_vs_floor", "asyncio_cpu", "slow_consumer_memory",
           "slow_consumer_drops")


def _median(values: list[float]) -> float:
    import statistics
    return statistics.median(values)


def test_slob_bench_help_goes_through_the_slob_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert "bench" in cli.COMMANDS
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--quick", "--json", "--plot", "--markdown", "--memory-ticks", "--runs", "--rates"):
        assert option in text


def test_slob_bench_rejects_bad_options_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--runs", "0"]) == 2
    assert "--runs >= 1" in capsys.readouterr().err


@pytest.mark.timeout(600)
def test_bench_runs_every_client_and_scenario_and_delivers_everything(tmp_path: Path, tws_generation: int) -> None:
    from slob.bench.report import HEADLINE_KEYS

    out = tmp_path / "bench.json"
    png, md = tmp_path / "latency.png", tmp_path / "bench.md"
    notes = tmp_path / "notes.md"
    notes.write_text("## Notes\n\nWhich lane to choose.\n")
    proc = subprocess.run(
        [sys.executable, "-m", "slob.bench", "--messages", "2000", "--rates", "1000,10000", "--duration", "0.3",
         "--runs", "2", "--rate-runs", "2", "--memory-ticks", "3000", "--proxy-ticks", "100",
         "--start-delay", "0.2", "--burst-ticks", "300", "--slow-ticks", "2000", "--slow-rate", "5000",
         "--busy-duration", "0.3", "--timeout", "20", "--json", str(out), "--plot", str(png), "--markdown", str(md),
         "--markdown-notes", str(notes), "--server-version", str(tws_generation)],
        cwd=tmp_path, capture_output=True, text=True, timeout=590,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert set(report["clients"]) == set(CLIENTS)
    assert report["machine"]["nproc"] >= 1
    assert report["params"]["rates"] == [1000, 10000] and report["params"]["rate_runs"] == 2
    assert report["params"]["feed_max_server_version"] == tws_generation

    def complete(m: dict, what: object) -> None:
        assert m["sent"] > 0 and m["delivered"] == m["sent"], (what, m)
        assert m["callbacks"] == m["delivered"], (what, m)  # no tick delivered twice
        assert not m["timed_out"] and m["errors"] == [] and m["feed_problems"] == [], (what, m)
        assert m["ticks_per_s"] > 0 and m["cpu_us_per_tick"] > 0, (what, m)

    for kind in CLIENTS:
        result = report["clients"][kind]
        tp = result["throughput"]
        assert len(tp["runs"]) == 2 and tp["runs"][0]["sent"] == 2000
        for m in tp["runs"]:
            complete(m, (kind, "throughput"))
        for rate, n in (("1000", 300), ("10000", 3000)):
            summary = result["rates"][rate]
            rounds = summary["rounds"]
            assert len(rounds) == (1 if kind == "ibapi" else 2), (kind, rate)
            for m in rounds:
                complete(m, (kind, rate))
                assert m["sent"] == n
                lat = m["latency"]
                assert 0 < lat["p50_us"] <= lat["p99_us"] <= lat["p999_us"] <= lat["max_us"], (kind, lat)
            assert summary["latency"]["p50_us"] == _median([m["latency"]["p50_us"] for m in rounds])
        for key in ("ticks_per_s", "cpu_us_per_tick"):  # median (min-max) of the runs
            values = sorted(r[key] for r in tp["runs"])
            assert tp[f"min_{key}"] == values[0] and tp[f"max_{key}"] == values[-1]
        expected_version = {"ib_async": 178, "hop_floor": 200}.get(kind, tws_generation)
        assert result["server_version"] == expected_version, kind
    for kind in ("slob", "slob-direct"):
        breakdown = report["clients"][kind]["rates"]["1000"]["rounds"][0]["slob_breakdown"]
        assert breakdown["frame_arrival_to_callback"]["p50_us"] > 0
        assert report["clients"][kind]["rates"]["10000"]["rounds"][0]["client_stats"]["lane"] == (
            "direct" if kind == "slob-direct" else "asyncio")

    # Issue 18's keys: each slob figure over the reference's, the median of the per-round ratios.
    assert set(HEADLINE_KEYS) <= set(report) and set(OLD_HEADLINE) <= set(report)
    clients = report["clients"]

    def round_ratio(num: str, den: str, rate: str, pick: object) -> float:
        pairs = zip(clients[num]["rates"][rate]["rounds"], clients[den]["rates"][rate]["rounds"])
        return _median([round(pick(a) / pick(b), 3) for a, b in pairs])  # type: ignore[operator]

    p50, p99 = (lambda m: m["latency"]["p50_us"]), (lambda m: m["latency"]["p99_us"])
    cpu = lambda m: m["cpu_us_per_tick"]  # noqa: E731
    for rate, s in (("1000", "1k"), ("10000", "10k")):
        assert report[f"direct_p50_ratio_vs_ib_async_at_{s}"] == round_ratio("slob-direct", "ib_async", rate, p50)
        assert report[f"direct_p99_ratio_vs_ib_async_at_{s}"] == round_ratio("slob-direct", "ib_async", rate, p99)
        assert report[f"direct_cpu_ratio_vs_ib_async_at_{s}"] == round_ratio("slob-direct", "ib_async", rate, cpu)
    assert report["direct_p50_ratio_vs_ib_async_at_50k"] is None  # not run
    assert report["asyncio_p50_ratio_vs_hop_floor_at_10k"] == round_ratio("slob", "hop_floor", "10000", p50)
    assert report["asyncio_p99_ratio_vs_hop_floor_at_10k"] == round_ratio("slob", "hop_floor", "10000", p99)
    assert report["asyncio_cpu_ratio_vs_ib_async_at_10k"] == round_ratio("slob", "ib_async", "10000", cpu)
    tput = [round(a["ticks_per_s"] / b["ticks_per_s"], 3)
            for a, b in zip(clients["slob"]["throughput"]["runs"], clients["ib_async"]["throughput"]["runs"])]
    assert report["asyncio_throughput_ratio_vs_ib_async"] == _median(tput)
    assert report["throughput_ratio_vs_ib_async"] == pytest.approx(
        clients["slob"]["throughput"]["median_ticks_per_s"] / clients["ib_async"]["throughput"]["median_ticks_per_s"],
        abs=1e-3)

    # Targets: every one of issue 18's, the measured value = the key, met consistent with it.
    targets = report["targets"]
    assert set(targets) == set(TARGETS)
    for name, t in targets.items():
        assert {"description", "metric", "measured", "comparison", "threshold", "met"} <= set(t), name
        assert t["measured"] == report[t["metric"]], name
        if t["measured"] is None:
            assert t["met"] is None, name
    assert targets["direct_p99_at_10k"]["met"] == (report["direct_p99_ratio_vs_ib_async_at_10k"] <= 0.8)
    assert targets["asyncio_throughput"]["met"] == (report["asyncio_throughput_ratio_vs_ib_async"] >= 2.0)
    assert targets["direct_p50_at_50k"]["met"] is None

    # The scenarios.
    burst = report["burst"]
    assert burst["ticks"] == 300 and set(burst["clients"]) == set(CLIENTS)
    for kind, m in burst["clients"].items():
        complete(m, (kind, "burst"))
    slow = report["slow_consumer"]
    assert set(slow["clients"]) == {"slob", "slob-direct"} and slow["tick_us"] == 400.0
    for kind, mem in slow["clients"].items():
        assert mem["delivered"] == mem["sent"] == 2000 and mem["drops"] == 0 and not mem["error"], (kind, mem)
        assert [s[0] for s in mem["samples"]][-1] == 2000
    assert report["slow_consumer_drops"] == 0
    assert report["slow_consumer_growth_kib_per_1m_ticks"] == max(
        m["growth_kib_per_1m_ticks"] for m in slow["clients"].values())
    busy = report["busy_strategy"]
    assert set(busy["clients"]) == {"slob", "slob-direct", "ib_async", "hop_floor"}
    for kind, m in busy["clients"].items():
        complete(m, (kind, "busy"))
    gen = report["generations"]
    other = 200 if tws_generation >= 201 else 226
    assert (gen["main"], gen["compare"]) == (tws_generation, other)
    for kind in ("slob", "slob-direct"):
        by_version = gen["clients"][kind]
        for m in by_version[str(other)].values():
            complete(m, (kind, other))
            assert m["server_version"] == other
        assert by_version[str(tws_generation)]["throughput"]["server_version"] == tws_generation

    # Feed only, memory, the proxy: as before.
    fc = report["feed_capacity"]
    assert len(fc["runs"]) == 2 and all(m["delivered"] == m["sent"] == 2000 for m in fc["runs"])
    assert fc["fastest_client"] in CLIENTS and isinstance(fc["not_the_bottleneck"], bool)
    slob_mem = report["memory"]["clients"]["slob"]
    assert slob_mem["delivered"] == slob_mem["sent"] == 3000
    assert [s[0] for s in slob_mem["samples"]][0] == 0 and len(slob_mem["samples"]) == 11
    proxy = report["proxy_added_latency"]
    assert proxy["n"] == 100 and {"p50", "p99", "max"} <= set(proxy["added"])

    text = proc.stdout
    for label in ("slob (IBWSFetcher)", "slob zero-hop lane", "thread-hop floor", "ratio slob-direct/ib_async",
                  "ratio slob/hop_floor", "targets (issue 18", "burst (", "slow consumer (", "busy strategy (",
                  "protocol generations", "feed capacity:", "wall time:"):
        assert label in text, label
    page = md.read_text()
    assert page.startswith("# Benchmarks") and report["command"] in page and "Which lane to choose." in page
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in text
    else:
        assert png.read_bytes().startswith(b"\x89PNG") and png.name in page


def test_quick_resolves_to_the_reduced_defaults_and_explicit_options_win() -> None:
    from slob.bench import options

    opts = options.parse_args(["--quick", "--runs", "4", "--json", "x.json"])
    assert opts.messages == options.QUICK["messages"] and opts.duration == options.QUICK["duration"]
    assert opts.runs == 4 and opts.rates == [1_000, 10_000, 50_000, 100_000] and opts.clients == list(CLIENTS)
    assert opts.rate_runs == options.QUICK["rate_runs"] and opts.compare_version == 200
    assert options.command_line(opts) == "slob bench --quick --runs 4 --json x.json"
    full = options.parse_args([])
    assert full.runs >= 3 and full.memory_ticks == 1_000_000 and full.messages == options.FULL["messages"]
    assert options.command_line(full) == "slob bench"


def test_memory_summary_slope_and_flat_verdict() -> None:
    from slob.bench.report import MEMORY_TOLERANCE_KIB_PER_1M, memory_summary

    n = 1_000_000
    flat = [(0, 40_000)] + [(n * k // 10, 45_000 + (8 if k > 5 else 0)) for k in range(1, 11)]
    m = memory_summary(flat, n, n)
    assert m["flat"] is True and m["rss_after_warmup_kib"] == 45_000 and m["rss_last_kib"] == 45_008
    assert m["growth_kib_per_1m_ticks"] < MEMORY_TOLERANCE_KIB_PER_1M
    growing = [(0, 40_000)] + [(n * k // 10, 45_000 + 300 * k) for k in range(1, 11)]
    g = memory_summary(growing, n, n)
    assert g["flat"] is False and g["slope_kib_per_100k_ticks"] == 300.0
    assert memory_summary(flat, n, n - 1)["flat"] is False  # a tick missing: not a valid memory run


@pytest.mark.timeout(60)
def test_the_hop_floor_client_delivers_every_tick(tmp_path: Path) -> None:
    """--clients hop_floor: slob's architecture without decoding, measured like a client."""
    out = tmp_path / "floor.json"
    proc = subprocess.run(
        [sys.executable, "-m", "slob.bench", "--clients", "hop_floor", "--messages", "2000", "--rates", "1000",
         "--duration", "0.3", "--runs", "1", "--rate-runs", "1", "--memory-ticks", "0", "--proxy-ticks", "50",
         "--start-delay", "0.2", "--burst-ticks", "0", "--slow-ticks", "0", "--busy-duration", "0",
         "--timeout", "20", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=55,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())["clients"]["hop_floor"]
    for m in result["throughput"]["runs"] + [result["rates"]["1000"]]:
        assert m["delivered"] == m["sent"] > 0 and m["callbacks"] == m["delivered"], m
        assert m["errors"] == [] and not m["timed_out"], m
    assert "thread-hop floor" in proc.stdout


def test_unknown_clients_are_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--clients", "slob,bloomberg"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown client(s) ['bloomberg']" in err and "hop_floor" in err


def test_bench_options_know_the_fakes_highest_server_version() -> None:
    from slob.bench import options
    from slob.testing.tws_versions import MAX_SERVER_VERSION

    assert options.MAX_SERVER_VERSION == MAX_SERVER_VERSION
