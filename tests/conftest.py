"""Shared fixtures. tests/ is on sys.path (pytest's prepend import mode), so test
modules import helpers as ``from support.ib_app import RecordingApp``.

**Both protocol generations.** Every test of the FakeTWS tier -- a test module that uses
FakeTWS, FakeEClient or the fake's pytest fixtures, or runs ``slob sim``, ``slob demo`` or
``slob soak`` -- runs twice: at server version 200
(the classic text protocol, ``[sv200]``) and at 226 (binary ids and protobuf, ``[sv226]``).
The autouse fixture :func:`tws_generation` sets ``$SLOB_FAKE_TWS_SERVER_VERSION`` for the
test, which FakeTWS and FakeEClient read when no ``server_version`` is given (and child
processes inherit: ``slob sim``, ``slob demo``, the soak). ``pytest --tws-generation text``
(or ``protobuf``) runs one generation only; a module pins its own list with
``TWS_SERVER_VERSIONS = (200,)``.
"""

from __future__ import annotations

import inspect
import threading
from typing import Iterator

import pytest

from slob.testing.tws_versions import MAX_SERVER_VERSION, MAX_TEXT_SERVER_VERSION, SERVER_VERSION_ENV

GENERATIONS = {"text": MAX_TEXT_SERVER_VERSION, "protobuf": MAX_SERVER_VERSION}
#: What in a test module's source puts it in the FakeTWS tier.
_FAKE_TIER_MARKS = ("FakeTWS", "FakeEClient", "fake_tws", "fake_eclient", "\"sim\"", 'main(["demo"',
                    'main(["soak"')


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tws-generation", choices=("text", "protobuf", "both"), default="both",
        help="protocol generation(s) the FakeTWS-tier tests run at: text (server version 200), "
             f"protobuf ({MAX_SERVER_VERSION}) or both (default)")


_TIER: dict[str, bool] = {}


def _in_fake_tier(module: object) -> bool:
    name = getattr(module, "__name__", "")
    if name not in _TIER:
        try:
            source = inspect.getsource(module)  # type: ignore[arg-type]
        except (OSError, TypeError):
            source = ""
        _TIER[name] = any(mark in source for mark in _FAKE_TIER_MARKS)
    return _TIER[name]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tws_generation" not in metafunc.fixturenames or metafunc.module is None:
        return
    pinned = getattr(metafunc.module, "TWS_SERVER_VERSIONS", None)
    if pinned is None:
        if not _in_fake_tier(metafunc.module):
            return
        chosen = metafunc.config.getoption("--tws-generation")
        pinned = tuple(GENERATIONS.values()) if chosen == "both" else (GENERATIONS[chosen],)
    metafunc.parametrize("tws_generation", list(pinned), indirect=True, ids=[f"sv{v}" for v in pinned])


@pytest.fixture(autouse=True)
def tws_generation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int | None:
    """The server version FakeTWS/FakeEClient offer in this test (None: not a FakeTWS-tier
    test, the fakes' own default applies)."""
    version: int | None = getattr(request, "param", None)
    if version is not None:
        monkeypatch.setenv(SERVER_VERSION_ENV, str(version))
    return version


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
