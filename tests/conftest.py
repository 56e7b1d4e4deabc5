"""Shared fixtures. tests/ is on sys.path (pytest's prepend import mode), so test
modules import helpers as ``from support.ib_app import RecordingApp``."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Every test must leave no thread of its own running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leaked:  # give closing threads a moment, but no more
        t.join(2.0)
    leaked = [t.name for t in leaked if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
