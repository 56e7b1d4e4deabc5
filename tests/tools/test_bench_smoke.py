"""Smoke test of the benchmark (slob bench / tools/bench / python -m slob.bench): tiny
parameters, all three clients.

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

#: The bench runs at both protocol generations (tests/conftest.py: the tws_generation fixture).
TWS_SERVER_VERSIONS = (200, 226)

CLIENTS = ("slob", "ibapi", "ib_async")
HEADLINE = ("throughput_ratio_vs_ib_async", "p99_ratio_vs_ib_async_at_10k", "p99_ratio_vs_ib_async_at_50k",
            "cpu_ratio_vs_ib_async", "slob_p99_us_at_100k")
TARGETS = ("throughput", "p99_at_10k", "p99_at_50k", "p99_at_100k", "cpu_per_tick", "memory_flat")


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


@pytest.mark.timeout(90)
def test_bench_runs_all_three_clients_and_delivers_everything(tmp_path: Path, tws_generation: int) -> None:
    out = tmp_path / "bench.json"
    png, md = tmp_path / "latency.png", tmp_path / "bench.md"
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "slob.bench", "--messages", "2000", "--rates", "1000,10000", "--duration", "0.3",
         "--runs", "2", "--memory-ticks", "3000", "--proxy-ticks", "100", "--start-delay", "0.2",
         "--timeout", "20", "--json", str(out), "--plot", str(png), "--markdown", str(md),
         "--server-version", str(tws_generation)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=85,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert set(report["clients"]) == set(CLIENTS)
    assert report["machine"]["nproc"] >= 1
    assert report["params"]["rates"] == [1000, 10000]
    assert report["params"]["feed_max_server_version"] == tws_generation
    for kind in CLIENTS:
        result = report["clients"][kind]
        tp = result["throughput"]
        runs = tp["runs"]
        assert len(runs) == 2
        measurements = runs + [result["rates"]["1000"], result["rates"]["10000"]]
        for m in measurements:
            assert m["sent"] > 0 and m["delivered"] == m["sent"], (kind, m)
            assert m["callbacks"] == m["delivered"], (kind, m)  # no tick delivered twice
            assert not m["timed_out"], (kind, m)
            assert m["ticks_per_s"] > 0 and m["cpu_us_per_tick"] > 0, (kind, m)
            assert m["feed_problems"] == [] and m["errors"] == [], (kind, m)
        assert runs[0]["sent"] == 2000
        assert result["rates"]["1000"]["sent"] == 300 and result["rates"]["10000"]["sent"] == 3000
        latency = result["rates"]["1000"]["latency"]
        assert 0 < latency["p50_us"] <= latency["p99_us"] <= latency["p999_us"] <= latency["max_us"], (kind, latency)
        for key in ("ticks_per_s", "cpu_us_per_tick"):  # median (min-max) of the runs
            values = sorted(r[key] for r in runs)
            assert tp[f"min_{key}"] == values[0] and tp[f"max_{key}"] == values[-1]
            assert tp[f"min_{key}"] <= tp[f"median_{key}"] <= tp[f"max_{key}"]
        assert result["server_version"] == (178 if kind == "ib_async" else tws_generation)
    assert report["clients"]["slob"]["rates"]["1000"]["slob_breakdown"]["frame_arrival_to_callback"]["p50_us"] > 0

    # Headline ratios: slob's figure divided by ib_async's, from the reported medians / runs.
    slob, ib_async = report["clients"]["slob"], report["clients"]["ib_async"]
    assert set(HEADLINE) <= set(report)
    assert report["throughput_ratio_vs_ib_async"] == pytest.approx(
        slob["throughput"]["median_ticks_per_s"] / ib_async["throughput"]["median_ticks_per_s"], abs=1e-3)
    assert report["cpu_ratio_vs_ib_async"] == pytest.approx(
        slob["throughput"]["median_cpu_us_per_tick"] / ib_async["throughput"]["median_cpu_us_per_tick"], abs=1e-3)
    assert report["p99_ratio_vs_ib_async_at_10k"] == pytest.approx(
        slob["rates"]["10000"]["latency"]["p99_us"] / ib_async["rates"]["10000"]["latency"]["p99_us"], abs=1e-3)
    assert report["p99_ratio_vs_ib_async_at_50k"] is None and report["slob_p99_us_at_100k"] is None  # not run
    assert report["ratios"]["slob/ib_async"]["ticks_per_s"] == report["throughput_ratio_vs_ib_async"]

    # Targets: every one listed, measured value = the headline figure, met consistent with it.
    targets = report["targets"]
    assert set(targets) == set(TARGETS)
    for name, t in targets.items():
        assert {"description", "metric", "measured", "comparison", "threshold", "met"} <= set(t), name
        if t["measured"] is None:
            assert t["met"] is None, name
    assert targets["throughput"]["measured"] == report["throughput_ratio_vs_ib_async"]
    assert targets["throughput"]["met"] == (report["throughput_ratio_vs_ib_async"] >= 3.0)
    assert targets["p99_at_10k"]["met"] == (report["p99_ratio_vs_ib_async_at_10k"] <= 0.75)
    assert targets["p99_at_50k"]["met"] is None and targets["p99_at_100k"]["met"] is None
    assert targets["cpu_per_tick"]["met"] == (report["cpu_ratio_vs_ib_async"] <= 0.5)

    # Feed only: the same stream to a raw socket sink, next to the fastest client.
    fc = report["feed_capacity"]
    assert len(fc["runs"]) == 2
    for m in fc["runs"]:
        assert m["delivered"] == m["sent"] == 2000 and m["errors"] == [], m
    assert fc["median_ticks_per_s"] > 0 and fc["median_feed_send_rate"] > 0
    assert fc["fastest_client"] in CLIENTS
    assert fc["fastest_client_ticks_per_s"] == max(report["clients"][k]["throughput"]["median_ticks_per_s"]
                                                   for k in CLIENTS)
    assert isinstance(fc["not_the_bottleneck"], bool)

    # Memory: RSS sampled in the slob client process along a run that still counted every tick.
    mem = report["memory"]
    assert mem["ticks"] == 3000 and mem["reduced"] is True
    slob_mem = mem["clients"]["slob"]
    assert mem["slob"] == slob_mem and mem["flat"] == slob_mem["flat"]
    assert slob_mem["delivered"] == slob_mem["sent"] == 3000
    ticks = [s[0] for s in slob_mem["samples"]]
    assert ticks[0] == 0 and ticks[-1] == 3000 and len(ticks) == 11 and ticks == sorted(ticks)
    assert all(s[1] > 0 for s in slob_mem["samples"])
    assert slob_mem["rss_last_kib"] == slob_mem["samples"][-1][1]
    assert isinstance(slob_mem["flat"], bool) and slob_mem["slope_kib_per_100k_ticks"] is not None
    assert targets["memory_flat"]["met"] == slob_mem["flat"]

    # slob trace's proxy (issue 8).
    proxy = report["proxy_added_latency"]
    assert proxy["n"] == 100 and proxy["unit"] == "us"
    assert {"p50", "p99", "max"} <= set(proxy["added"]) and {"direct", "proxy"} <= set(proxy)

    assert "slob (IBWSFetcher)" in proc.stdout and "ratio slob/ib_async" in proc.stdout
    assert "targets (issue 9" in proc.stdout and "feed capacity:" in proc.stdout and "wall time:" in proc.stdout
    assert md.read_text().startswith("# Benchmarks") and report["command"] in md.read_text()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in proc.stdout
    else:
        assert png.read_bytes().startswith(b"\x89PNG") and png.name in md.read_text()


def test_quick_resolves_to_the_reduced_defaults_and_explicit_options_win() -> None:
    from slob.bench import options

    opts = options.parse_args(["--quick", "--runs", "4", "--json", "x.json"])
    assert opts.messages == options.QUICK["messages"] and opts.duration == options.QUICK["duration"]
    assert opts.runs == 4 and opts.rates == [10_000, 50_000, 100_000] and opts.clients == list(CLIENTS)
    assert options.command_line(opts) == "slob bench --quick --runs 4 --json x.json"
    full = options.parse_args([])
    assert full.runs >= 3 and full.memory_ticks == 1_000_000 and full.messages == options.FULL["messages"]
    assert options.command_line(full) == "slob bench"


def test_memory_summary_slope_and_flat_verdict() -> None:
    from slob.bench.harness import MEMORY_TOLERANCE_KIB_PER_1M, memory_summary

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
         "--duration", "0.3", "--runs", "1", "--memory-ticks", "0", "--proxy-ticks", "50", "--start-delay", "0.2",
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
