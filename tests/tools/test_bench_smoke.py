"""Smoke test of the benchmark harness (tools/bench): tiny parameters, all three clients.

A correctness test of the harness, not of performance: every tick the feed sent must reach
each client's callback, and every figure must be there. No timing thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ib_async")

CLIENTS = ("slob", "ibapi", "ib_async")


@pytest.mark.timeout(90)
def test_bench_runs_all_three_clients_and_delivers_everything(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "slob.bench", "--messages", "2000", "--rates", "1000", "--duration", "1",
         "--runs", "1", "--start-delay", "0.2", "--timeout", "20", "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=85,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert set(report["clients"]) == set(CLIENTS)
    assert report["machine"]["nproc"] >= 1
    for kind in CLIENTS:
        result = report["clients"][kind]
        runs = result["throughput"]["runs"]
        assert len(runs) == 1
        measurements = runs + [result["rates"]["1000"]]
        for m in measurements:
            assert m["sent"] > 0 and m["delivered"] == m["sent"], (kind, m)
            assert m["callbacks"] == m["delivered"], (kind, m)  # no tick delivered twice
            assert not m["timed_out"], (kind, m)
            assert m["ticks_per_s"] > 0 and m["cpu_us_per_tick"] > 0, (kind, m)
            assert m["feed_problems"] == [] and m["errors"] == [], (kind, m)
        assert runs[0]["sent"] == 2000
        assert result["rates"]["1000"]["sent"] == 1000
        latency = result["rates"]["1000"]["latency"]
        assert 0 < latency["p50_us"] <= latency["p99_us"] <= latency["max_us"], (kind, latency)
        assert result["throughput"]["median_ticks_per_s"] > 0
        assert result["server_version"] == (178 if kind == "ib_async" else 200)
    assert report["clients"]["slob"]["rates"]["1000"]["slob_breakdown"]["frame_arrival_to_callback"]["p50_us"] > 0
    ratios = report["ratios"]["slob/ib_async"]
    assert ratios["ticks_per_s"] > 0 and ratios["p50_at_1k"] > 0
    assert "slob (IBWSFetcher)" in proc.stdout and "ratio slob/ib_async" in proc.stdout
