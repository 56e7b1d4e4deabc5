"""Test tools for slob and for its users: fakes of the real peers.

``FakeTWS`` serves the real TWS wire protocol on loopback (integration tests);
``FakeEClient`` is slob's IBClient with TWS in process -- no socket, no thread (unit
tests), and ``FakeConnector`` plugs it into ``IBWSFetcher``. ``SimClock`` and the
scenarios in ``slob.testing.scenario`` drive the simulated market. ``FakeAlpaca`` is a
websockets server speaking Alpaca's market-data stream protocol v2. The pytest plugin
(:mod:`slob.testing.pytest_plugin`) offers them as fixtures.

The names are imported on first use, so importing this package (as pytest does for the
plugin) costs nothing and does not need IB's ``ibapi``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slob.testing.fake_alpaca import FakeAlpaca
    from slob.testing.fake_eclient import FakeConnector, FakeEClient
    from slob.testing.fake_market import SentTick
    from slob.testing.fake_tws import DEFAULT_START, ClientInfo, Connection, FakeTWS, FiredFault, RequestFault
    from slob.testing.fault_proxy import FaultProxy
    from slob.testing.scenario import RandomWalkScenario, ScriptedScenario, SimClock, Trade

_WHERE = {
    "DEFAULT_START": "slob.testing.fake_tws",
    "ClientInfo": "slob.testing.fake_tws",
    "Connection": "slob.testing.fake_tws",
    "FakeAlpaca": "slob.testing.fake_alpaca",
    "FakeConnector": "slob.testing.fake_eclient",
    "FakeEClient": "slob.testing.fake_eclient",
    "FakeTWS": "slob.testing.fake_tws",
    "FaultProxy": "slob.testing.fault_proxy",
    "FiredFault": "slob.testing.fake_tws",
    "RequestFault": "slob.testing.fake_tws",
    "SentTick": "slob.testing.fake_market",
    "RandomWalkScenario": "slob.testing.scenario",
    "ScriptedScenario": "slob.testing.scenario",
    "SimClock": "slob.testing.scenario",
    "Trade": "slob.testing.scenario",
}

__all__ = [
    "DEFAULT_START",
    "ClientInfo",
    "Connection",
    "FakeAlpaca",
    "FakeConnector",
    "FakeEClient",
    "FakeTWS",
    "FaultProxy",
    "FiredFault",
    "RandomWalkScenario",
    "RequestFault",
    "ScriptedScenario",
    "SentTick",
    "SimClock",
    "Trade",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'slob.testing' has no attribute {name!r}")
    import slob

    slob.require_ibapi()  # one line saying what to install, not a traceback from deep inside
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
