"""Test tools for slob and for its users: protocol-level fakes of the real peers.

``FakeTWS`` serves the real TWS wire protocol on loopback; ``SimClock`` and the
scenarios in ``slob.testing.scenario`` drive its simulated market. ``FakeAlpaca`` is a
websockets server speaking Alpaca's market-data stream protocol v2.
"""

from slob.testing.fake_alpaca import FakeAlpaca
from slob.testing.fake_tws import DEFAULT_START, ClientInfo, FakeTWS
from slob.testing.scenario import RandomWalkScenario, ScriptedScenario, SimClock, Trade

__all__ = [
    "DEFAULT_START",
    "ClientInfo",
    "FakeAlpaca",
    "FakeTWS",
    "RandomWalkScenario",
    "ScriptedScenario",
    "SimClock",
    "Trade",
]
