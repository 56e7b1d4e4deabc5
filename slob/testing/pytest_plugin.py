"""slob's pytest plugin: FakeTWS, FakeEClient and a connected IBWSFetcher as fixtures.

Installed with slob (entry point ``pytest11``), so any test in an environment with slob
can use them without a conftest:

* ``fake_tws`` -- a started :class:`~slob.testing.FakeTWS` on a free 127.0.0.1 port,
  stopped after the test (its thread joined, every socket closed). It runs on its own
  thread, so sync and async tests use it alike.
* ``fake_eclient`` -- an opened :class:`~slob.testing.FakeEClient` (no socket, no thread).
* ``fake_connector`` -- a :class:`~slob.testing.FakeConnector`, for
  ``IBWSFetcher(client_factory=fake_connector)`` in process.
* ``ib_fetcher`` (async tests, needs pytest-asyncio) -- an
  :class:`~slob.live.IBWSFetcher` connected to ``fake_tws`` (not yet subscribed),
  disconnected after the test.

Choosing what they do:

* ``@pytest.mark.fake_tws(speed=..., seed=..., scenario=..., faults=[...], **FakeTWS options)``
  -- ``scenario`` is a Scenario for NQ/MNQ, or a list of ``(seconds, price, size)``
  points; ``faults`` names conditions present from the start: ``"no_permission"`` (no
  market-data subscription for any root: 354 / 10189), ``"competing_session"`` (10197).
* ``@pytest.mark.fake_eclient(**FakeEClient options)``, ``@pytest.mark.ib_fetcher(**IBConfig options)``.
* ``--slob-speed``, ``--slob-seed``, ``--slob-faults`` set the defaults for a whole run
  (a marker's values win).

pytest-asyncio warns at start-up when a project leaves ``asyncio_default_fixture_loop_scope``
unset. A plugin cannot set another plugin's ini value through pytest's public API, and
choosing it for the user's own async fixtures is not slob's call; so ``ib_fetcher``
declares its own loop scope (function: a fetcher lives on its test's loop), and
docs/getting-started.md (section 4) shows the one line that silences the warning.

Everything slob is imported inside the fixtures: loading this plugin (which pytest does
in every run of an environment where slob is installed) imports only pytest.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

import pytest

if TYPE_CHECKING:
    from slob.live import IBWSFetcher
    from slob.testing import FakeConnector, FakeEClient, FakeTWS

__all__ = ["FAULTS", "fake_connector", "fake_eclient", "fake_tws", "ib_fetcher"]

#: Fault names for ``faults=`` and ``--slob-faults``.
FAULTS = ("no_permission", "competing_session")
#: The default simulated speed: a minute of market per real second.
DEFAULT_SPEED = 60.0

_MARKERS = (
    "fake_tws(speed=None, seed=None, scenario=None, faults=(), **options): configure slob's fake_tws "
    "fixture (options go to slob.testing.FakeTWS)",
    "fake_eclient(**options): configure slob's fake_eclient fixture (options go to slob.testing.FakeEClient; "
    "client_id=1 is the id it opens with)",
    "ib_fetcher(**options): configure slob's ib_fetcher fixture (options go to slob's IBConfig)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("slob", "slob fakes (FakeTWS, FakeEClient)")
    group.addoption("--slob-speed", type=float, default=None,
                    help=f"simulated seconds per real second for fake_tws (default {DEFAULT_SPEED:g}; inf: as fast "
                         "as clients read; 0: paused until advance())")
    group.addoption("--slob-seed", type=int, default=None, help="seed of fake_tws's price paths (default 1)")
    group.addoption("--slob-faults", default="",
                    help=f"comma-separated faults every fake_tws starts with: {', '.join(FAULTS)}")


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


def _need_ibapi(fixture: str) -> None:
    from slob import ibapi_missing

    missing = ibapi_missing()
    if missing:
        pytest.fail(f"slob's {fixture} fixture: {missing}", pytrace=False)


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{name} takes keyword arguments only, got {marker.args!r}")
    return dict(marker.kwargs)


def fake_tws_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """FakeTWS keyword arguments from the ``fake_tws`` marker and the ``--slob-*`` options."""
    options = _marker_kwargs(request, "fake_tws")
    config = request.config
    speed = options.pop("speed", None)
    if speed is None:
        speed = config.getoption("--slob-speed", None)
    options["speed"] = DEFAULT_SPEED if speed is None else float(speed)
    seed = options.pop("seed", None)
    if seed is None:
        seed = config.getoption("--slob-seed", None)
    options["seed"] = 1 if seed is None else int(seed)
    faults = options.pop("faults", None)
    if faults is None or faults == ():
        faults = [f for f in str(config.getoption("--slob-faults", "") or "").split(",") if f.strip()]
    faults = [f.strip() for f in ([faults] if isinstance(faults, str) else faults)]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise pytest.UsageError(f"unknown slob fault(s) {unknown}; known: {list(FAULTS)}")
    scenario = options.pop("scenario", None)
    if scenario is not None:
        options["scenarios"] = {"NQ": _scenario(scenario, options.get("start"))}
    if "no_permission" in faults:
        options["no_permission"] = ("NQ", "MNQ", "ES", "MES")
    options["_competing"] = "competing_session" in faults
    return options


def _scenario(value: Any, start: Any) -> Any:
    from slob.testing import DEFAULT_START, ScriptedScenario

    if hasattr(value, "events"):
        return value
    return ScriptedScenario.from_prices(start or DEFAULT_START, list(value))


@pytest.fixture
def fake_tws(request: pytest.FixtureRequest) -> Iterator["FakeTWS"]:
    """A started FakeTWS on a free loopback port; stopped (thread joined) after the test."""
    _need_ibapi("fake_tws")
    from slob.testing import FakeTWS

    options = fake_tws_options(request)
    competing = options.pop("_competing")
    server = FakeTWS(**options).start()
    server.competing_session = competing
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_eclient(request: pytest.FixtureRequest) -> Iterator["FakeEClient"]:
    """An opened FakeEClient (IBClient with TWS in process), disconnected after the test."""
    _need_ibapi("fake_eclient")
    from slob.testing import FakeEClient

    options = _marker_kwargs(request, "fake_eclient")
    client_id = int(options.pop("client_id", 1))
    fake = FakeEClient(**options).open(client_id)
    try:
        yield fake
    finally:
        if fake.isConnected():
            fake.disconnect()


@pytest.fixture
def fake_connector(request: pytest.FixtureRequest) -> "FakeConnector":
    """A FakeConnector: ``IBWSFetcher(..., client_factory=fake_connector)`` runs in process."""
    _need_ibapi("fake_connector")
    from slob.testing import FakeConnector

    return FakeConnector(**_marker_kwargs(request, "fake_eclient"))


def _function_loop() -> Any:
    """``loop_scope="function"`` where pytest-asyncio knows the argument (0.24 and later)."""
    import inspect

    import pytest_asyncio

    known = "loop_scope" in inspect.signature(pytest_asyncio.fixture).parameters
    return {"loop_scope": "function"} if known else {}


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture(**_function_loop())
    async def ib_fetcher(request: pytest.FixtureRequest, fake_tws: "FakeTWS") -> AsyncIterator["IBWSFetcher"]:
        """An IBWSFetcher connected to ``fake_tws`` (not subscribed); disconnected after
        the test. Use it from ``async`` tests (``@pytest.mark.asyncio``)."""
        from slob.config.ib_config import IBConfig
        from slob.live import IBWSFetcher

        options: dict[str, Any] = {"reconnect_delay_seconds": 0.05, "max_reconnect_delay_seconds": 0.5,
                                   "connect_timeout_seconds": 5.0}
        options.update(_marker_kwargs(request, "ib_fetcher"))
        options.update(host="127.0.0.1", port=fake_tws.port)
        fetcher = IBWSFetcher(config=IBConfig(**options))
        await fetcher.connect()
        try:
            yield fetcher
        finally:
            await fetcher.disconnect()

else:  # pragma: no cover - exercised only without pytest-asyncio

    @pytest.fixture
    def ib_fetcher() -> None:
        """Needs pytest-asyncio (its connect/disconnect are coroutines)."""
        pytest.fail("slob's ib_fetcher fixture is async and needs pytest-asyncio: pip install pytest-asyncio",
                    pytrace=False)
