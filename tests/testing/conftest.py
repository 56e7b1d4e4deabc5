"""Fixtures of the FakeTWS tests: the fake at full speed, and IB's own client on it.

Shared here because the fault tests and the ibapi tests start both the same way."""

from __future__ import annotations

import math
from typing import Iterator

import pytest
from support.ib_app import RecordingApp

from slob.testing import FakeTWS


@pytest.fixture
def tws() -> Iterator[FakeTWS]:
    with FakeTWS(speed=math.inf) as server:
        yield server


@pytest.fixture
def app(tws: FakeTWS) -> Iterator[RecordingApp]:
    """IB's client connected to ``tws`` as client 1, stopped after the test."""
    client = RecordingApp().start(tws.port)
    yield client
    client.stop()
