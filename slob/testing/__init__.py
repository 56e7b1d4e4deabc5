"""Test tools for slob and for its users: a protocol-level fake TWS and its parts.

``FakeTWS`` serves the real TWS wire protocol on loopback; ``SimClock`` and the
scenarios in ``slob.testing.scenario`` drive its simulated market.
"""

from slob.testing.fake_tws import DEFAULT_START, ClientInfo, FakeTWS
from slob.testing.scenario import RandomWalkScenario, ScriptedScenario, SimClock, Trade

__all__ = [
    "DEFAULT_START",
    "ClientInfo",
    "FakeTWS",
    "RandomWalkScenario",
    "ScriptedScenario",
    "SimClock",
    "Trade",
]
