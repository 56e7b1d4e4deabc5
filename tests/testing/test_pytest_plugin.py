"""slob's pytest plugin, used as a user would: test files in a fresh directory with no
conftest, run by a separate pytest process -- so the fixtures can only come from the
``pytest11`` entry point of the installed slob."""

from __future__ import annotations

import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = '''
import asyncio
import threading

import pytest

from slob.ib.client import IBClient
from slob.testing import FakeEClient, FakeTWS


def test_fake_tws_serves_a_real_client(fake_tws):
    assert isinstance(fake_tws, FakeTWS) and fake_tws.port > 0
    assert (fake_tws.clock.speed, fake_tws.seed, fake_tws.competing_session) == (60.0, 1, False)
    client = IBClient(lambda record: None)
    client.connect("127.0.0.1", fake_tws.port, 5)
    try:
        assert client.ready.result(10) == 1
        fake_tws.wait_for_clients(1)
    finally:
        client.disconnect()


@pytest.mark.fake_tws(speed=0, seed=3, scenario=[(1.0, 21000.0, 2)], faults=["competing_session"],
                      accounts=["DU555"])
def test_marker_configures_fake_tws(fake_tws):
    assert (fake_tws.clock.speed, fake_tws.seed, fake_tws.accounts) == (0.0, 3, ("DU555",))
    assert fake_tws.competing_session


@pytest.mark.fake_tws(faults=["no_permission"])
def test_no_permission_fault(fake_tws):
    assert fake_tws.no_permission == {"NQ", "MNQ", "ES", "MES"}


def test_fake_eclient_is_open(fake_eclient):
    assert isinstance(fake_eclient, FakeEClient) and fake_eclient.ready.result(0) == 1
    assert fake_eclient.last("START_API").int("clientId") == 1


@pytest.mark.fake_eclient(client_id=7, accounts=["DU999"])
def test_marker_configures_fake_eclient(fake_eclient):
    assert fake_eclient.clientId == 7 and fake_eclient.accounts == ["DU999"]


@pytest.mark.asyncio
async def test_ib_fetcher_streams_nq(ib_fetcher, fake_tws):
    assert ib_fetcher.is_connected() and ib_fetcher.config.port == fake_tws.port
    got = asyncio.Event()
    ticks = []
    ib_fetcher.on_tick = lambda tick: (ticks.append(tick), got.set())
    await ib_fetcher.subscribe(["NQ"])
    listening = asyncio.create_task(ib_fetcher.listen())
    await asyncio.wait_for(got.wait(), 10)
    assert ticks[0].symbol == "NQ" and ticks[0].contract == "NQZ4"
    await ib_fetcher.disconnect()
    await asyncio.wait_for(listening, 5)


@pytest.mark.asyncio
@pytest.mark.ib_fetcher(client_id=12)
async def test_ib_fetcher_marker(ib_fetcher, fake_tws):
    assert ib_fetcher.config.client_id == 12
    assert [c.client_id for c in fake_tws.clients] == [12]


@pytest.mark.asyncio
async def test_fake_connector_runs_the_fetcher_in_process(fake_connector):
    from slob.live import IBWSFetcher

    fetcher = IBWSFetcher(client_factory=fake_connector, subscribe_confirm_seconds=0)
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])
    assert fake_connector.client.last("REQ_TICK_BY_TICK_DATA")["localSymbol"] == "NQZ4"
    await fetcher.disconnect()


def test_zz_nothing_left_running():
    names = [t.name for t in threading.enumerate() if t.name.startswith("slob-")]
    assert names == []
'''


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user=textwrap.dedent(source))
    # -W error: an unclosed socket or an unawaited task would fail the run.
    return pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", *args)


def test_installed_slob_is_enough_to_use_the_fixtures_and_markers(pytester: pytest.Pytester) -> None:
    result = run(pytester, USER_TESTS, "--strict-markers")
    result.assert_outcomes(passed=9)


def test_command_line_options_set_the_defaults(pytester: pytest.Pytester) -> None:
    source = '''
        import pytest

        def test_defaults_from_the_command_line(fake_tws):
            assert (fake_tws.clock.speed, fake_tws.seed, fake_tws.competing_session) == (0.0, 9, True)

        @pytest.mark.fake_tws(speed=5, faults=["no_permission"])
        def test_marker_wins(fake_tws):
            assert fake_tws.clock.speed == 5.0 and not fake_tws.competing_session
    '''
    result = run(pytester, source, "--slob-speed=0", "--slob-seed=9", "--slob-faults=competing_session")
    result.assert_outcomes(passed=2)


def test_unknown_fault_is_a_usage_error(pytester: pytest.Pytester) -> None:
    source = '''
        import pytest

        @pytest.mark.fake_tws(faults=["earthquake"])
        def test_it(fake_tws):
            pass
    '''
    result = run(pytester, source)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown slob fault(s)*earthquake*known*no_permission*"])


def test_without_ibapi_the_fixtures_say_what_to_install(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['ibapi'] = None  # as if IB's client were not installed\n")
    source = '''
        def test_it(fake_eclient):
            pass
    '''
    result = run(pytester, source)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fake_eclient fixture*IB's Python client (ibapi) is not installed: "
                                 "pip install 'ibapi-stable==10.50.2'*"])


def test_loading_the_plugin_imports_no_ibapi(pytester: pytest.Pytester) -> None:
    source = '''
        import sys

        def test_it():
            assert "slob.testing.pytest_plugin" in sys.modules
            assert not any(name == "ibapi" or name.startswith("ibapi.") for name in sys.modules)
    '''
    result = run(pytester, source)
    result.assert_outcomes(passed=1)
    assert sys.modules.get("slob.testing.pytest_plugin") is not None  # loaded here too, by entry point
