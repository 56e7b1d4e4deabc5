"""The proxy latency benchmark runs and reports its figures (no timing assertions)."""

from slob.trace.bench import measure_added_latency


def test_measure_added_latency_returns_the_percentiles() -> None:
    result = measure_added_latency(n=50, rate=2000.0)
    assert result["n"] == 50 and result["unit"] == "us"
    for key in ("direct", "proxy", "added"):
        assert set(result[key]) == {"p50", "p99", "max"}  # type: ignore[arg-type]
