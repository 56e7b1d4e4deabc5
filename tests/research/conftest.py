"""Fixtures for the research tests: one fast demo run whose store several tests read."""

from __future__ import annotations

from pathlib import Path

import pytest

from slob.ops.demo import DemoStats, run_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoStats:
    """The demo's engine on FakeTWS, as fast as possible (what `tools/demo --fast` runs):
    its store holds the ticks, candles, setups, orders and fills of the two planted days.
    Tests only read it."""
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    stats = run_demo(seconds=0.0, db=db)
    assert not stats.problems, stats.problems
    return stats


@pytest.fixture
def demo_db(demo_run: DemoStats) -> Path:
    return demo_run.db
