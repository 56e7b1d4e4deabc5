"""AlpacaWSFetcher against FakeAlpaca over loopback (a real WebSocket server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio
from support.recorder import Recorder

from slob.config.alpaca_config import AlpacaConfig
from slob.ib.errors import ConfigError, ConnectError, ConnectionLost, SlobError
from slob.live.alpaca_protocol import (
    AuthenticationFailed,
    ConnectionLimitExceeded,
    InsufficientSubscription,
    MalformedMessage,
    SlowClient,
    SymbolLimitExceeded,
    error_for,
    parse_time,
)
from slob.live.alpaca_ws_fetcher import AlpacaWSFetcher
from slob.model import ConnectionLost as ConnectionLostEvent
from slob.model import ConnectionRestored, Tick
from slob.testing.fake_alpaca import FakeAlpaca, StockTrade

KEY, SECRET = "test-key", "test-secret"
FAST: dict[str, Any] = dict(reconnect_delay_seconds=0.01, max_reconnect_delay_seconds=0.05,
                            connect_timeout_seconds=5.0, request_timeout_seconds=5.0)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def make(fake: FakeAlpaca, **config: Any) -> tuple[AlpacaWSFetcher, Recorder]:
    fetcher = AlpacaWSFetcher(KEY, SECRET, config=AlpacaConfig(url=fake.url, **{**FAST, **config}))
    rec = Recorder(timeout=5.0)
    fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
    return fetcher, rec


async def running(fake: FakeAlpaca, symbols: list[str], **config: Any
                  ) -> tuple[AlpacaWSFetcher, Recorder, asyncio.Task[None]]:
    fetcher, rec = make(fake, **config)
    await fetcher.connect()
    await fetcher.subscribe(symbols)
    return fetcher, rec, asyncio.create_task(fetcher.listen())


async def stop(fetcher: AlpacaWSFetcher, task: asyncio.Task[None], fake: FakeAlpaca) -> None:
    await fetcher.disconnect()
    await asyncio.wait_for(task, 5)
    await fake.until(lambda f: f.client_count == 0, 5)


@pytest_asyncio.fixture
async def alpaca() -> AsyncIterator[FakeAlpaca]:
    async with FakeAlpaca(rate=200) as fake:
        yield fake


def expected_tick(message: dict[str, Any], time_ns: int, received_ns: int) -> Tick:
    return Tick(symbol=message["S"], price=message["p"], size=message["s"],
                timestamp=EPOCH + dt.timedelta(microseconds=time_ns // 1000), exchange=message["x"],
                contract=message["S"], received_ns=received_ns)


# -- streaming ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_streams_trades_as_ticks_with_equal_fields(alpaca: FakeAlpaca) -> None:
    before = time.monotonic_ns()
    fetcher, rec, task = await running(alpaca, ["AAPL", "msft"])
    await rec.until(lambda: len(rec.ticks) >= 40)
    sent = alpaca.sent_trades
    assert len(sent) >= 40 and {s.connection for s in sent} == {alpaca.clients[0].id}
    for tick, s in zip(rec.ticks[:40], sent):
        assert before <= tick.received_ns <= time.monotonic_ns()
        assert tick == expected_tick(s.message, s.time_ns, tick.received_ns)
        assert tick.timestamp.utcoffset() == dt.timedelta(0)
        assert len(s.message["t"]) == len("2021-02-22T15:51:44.208123456Z")  # nanoseconds on the wire
    assert {t.symbol for t in rec.ticks} == {"AAPL", "MSFT"}
    stats = fetcher.get_stats()
    assert stats["connected"] and fetcher.is_connected()
    assert stats["symbols"] == ["AAPL", "MSFT"]
    assert stats["ticks"] >= 40 and stats["errors"] == 0 and stats["reconnects"] == 0 and stats["gaps"] == 0
    assert stats["frames"] < stats["messages"]  # both symbols' trades share frames
    assert stats["last_tick_age_seconds"] is not None and stats["latency_p50_us"] is not None
    await stop(fetcher, task, alpaca)
    assert rec.errors == []


@pytest.mark.asyncio
async def test_scripted_trades_arrive_exactly_and_in_order() -> None:
    script = [StockTrade("AAPL", 126.55, 1, exchange="D", conditions=("@", "I")),
              StockTrade("AAPL", 126.56, 300, exchange="V"),
              StockTrade("TSLA", 250.01, 7, exchange="K", tape="C"),
              StockTrade("AAPL", 126.5, 2)]
    async with FakeAlpaca(trades=script, rate=500, batch=2) as fake:
        fetcher, rec, task = await running(fake, ["AAPL", "TSLA"])
        await rec.until(lambda: len(rec.ticks) == 4)
        assert [(t.symbol, t.price, t.size, t.exchange, t.contract) for t in rec.ticks] == [
            ("AAPL", 126.55, 1.0, "D", "AAPL"), ("AAPL", 126.56, 300.0, "V", "AAPL"),
            ("TSLA", 250.01, 7.0, "K", "TSLA"), ("AAPL", 126.5, 2.0, "V", "AAPL")]
        assert [s.message["c"] for s in fake.sent_trades][:2] == [["@", "I"], ["@"]]
        await fake.until(lambda f: f.market.script_done)
        await stop(fetcher, task, fake)


@pytest.mark.asyncio
async def test_async_callbacks_and_unsubscribe(alpaca: FakeAlpaca) -> None:
    fetcher = AlpacaWSFetcher(KEY, SECRET, config=AlpacaConfig(url=alpaca.url, **FAST))
    rec = Recorder(timeout=5.0)

    async def on_tick(tick: Tick) -> None:
        rec.tick(tick)

    fetcher.on_tick = on_tick
    await fetcher.connect()
    await fetcher.subscribe(["AAPL", "MSFT"])
    task = asyncio.create_task(fetcher.listen())
    await rec.until(lambda: {"AAPL", "MSFT"} <= {t.symbol for t in rec.ticks})
    await fetcher.unsubscribe(["MSFT"])
    assert alpaca.clients[0].trades == ("AAPL",)
    mark = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= mark + 10)
    assert {t.symbol for t in rec.ticks[mark:]} == {"AAPL"}
    await stop(fetcher, task, alpaca)


# -- the errors users meet first ----------------------------------------------------


@pytest.mark.asyncio
async def test_bad_credentials_name_the_fix(alpaca: FakeAlpaca) -> None:
    fetcher = AlpacaWSFetcher("wrong", "wrong", config=AlpacaConfig(url=alpaca.url, **FAST))
    with pytest.raises(AuthenticationFailed, match="check your APCA key/secret") as info:
        await fetcher.connect()
    assert info.value.code == 402 and "APCA_API_KEY_ID" in str(info.value)
    assert isinstance(info.value, ConnectError) and not fetcher.is_connected()
    await alpaca.until(lambda f: f.client_count == 0)
    with pytest.raises(SlobError, match="connect"):
        await fetcher.listen()


def test_missing_credentials_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        AlpacaWSFetcher()
    monkeypatch.setenv("APCA_API_SECRET_KEY", "from-env")
    with pytest.raises(ConfigError, match="key id missing"):
        AlpacaWSFetcher()
    with pytest.raises(ConfigError, match="secret key missing"):
        AlpacaWSFetcher("k", "")  # an explicit argument wins over the environment


@pytest.mark.asyncio
async def test_credentials_from_the_environment(alpaca: FakeAlpaca, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    fetcher = AlpacaWSFetcher(url=alpaca.url)
    assert SECRET not in repr(fetcher)
    await fetcher.connect()
    assert fetcher.is_connected()
    await fetcher.disconnect()
    await alpaca.until(lambda f: f.client_count == 0)


@pytest.mark.asyncio
async def test_symbol_limit() -> None:
    async with FakeAlpaca(symbol_limit=2, rate=200) as fake:
        fetcher, rec, task = await running(fake, ["AAPL"])
        with pytest.raises(SymbolLimitExceeded, match="subscribe to fewer symbols") as info:
            await fetcher.subscribe(["MSFT", "TSLA"])
        assert info.value.code == 405 and "MSFT, TSLA" in str(info.value)
        assert fetcher.is_connected() and fetcher.get_stats()["symbols"] == ["AAPL"]
        await fetcher.subscribe(["MSFT"])  # within the limit
        await rec.until(lambda: {"AAPL", "MSFT"} <= {t.symbol for t in rec.ticks})
        await stop(fetcher, task, fake)


@pytest.mark.asyncio
async def test_connection_limit(alpaca: FakeAlpaca) -> None:
    first, rec, task = await running(alpaca, ["AAPL"])
    second, _ = make(alpaca)
    with pytest.raises(ConnectionLimitExceeded, match="another connection with these keys is already open") as info:
        await second.connect()
    assert info.value.code == 406 and not second.is_connected()
    await alpaca.until(lambda f: f.client_count == 1)
    mark = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) > mark + 5)  # the first connection is unaffected
    await stop(first, task, alpaca)


# -- faults ------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("clean, cause", [(False, "without a close frame"), (True, "code 1001: going away")])
async def test_dropped_connection_reconnects_resubscribes_and_records_a_gap(
        alpaca: FakeAlpaca, clean: bool, cause: str) -> None:
    fetcher, rec, task = await running(alpaca, ["AAPL", "MSFT"])
    await rec.until(lambda: len(rec.ticks) >= 10)
    first = alpaca.clients[0].id
    assert alpaca.drop(clean=clean) == 1
    await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
    mark = len(rec.ticks)
    await rec.until(lambda: {"AAPL", "MSFT"} <= {t.symbol for t in rec.ticks[mark:]})
    (client,) = alpaca.clients
    assert client.id != first and client.trades == ("AAPL", "MSFT")
    assert (client.id, {"action": "subscribe", "trades": ["AAPL", "MSFT"]}) in alpaca.requests
    lost, restored = rec.events
    assert isinstance(lost, ConnectionLostEvent) and isinstance(restored, ConnectionRestored)
    (gap,) = fetcher.gaps
    assert gap.start == lost.at and gap.end == restored.at and gap.seconds >= 0
    assert cause in gap.cause
    stats = fetcher.get_stats()
    assert stats["reconnects"] == 1 and stats["gaps"] == 1 and stats["connected"]
    await stop(fetcher, task, alpaca)
    assert rec.errors == []


@pytest.mark.asyncio
async def test_gives_up_after_max_attempts_and_listen_raises(alpaca: FakeAlpaca) -> None:
    fetcher, rec, task = await running(alpaca, ["AAPL"], max_reconnect_attempts=3)
    await rec.until(lambda: len(rec.ticks) >= 1)
    alpaca.accepting = False
    alpaca.drop()
    with pytest.raises(ConnectionLost, match="3 reconnect attempt") as info:
        await asyncio.wait_for(task, 5)
    assert "max_reconnect_attempts" in str(info.value) and info.value.__cause__ is not None
    assert rec.errors and rec.errors[-1] is info.value  # reported as well as raised
    assert not fetcher.is_connected() and fetcher.get_stats()["reconnects"] == 0
    with pytest.raises(SlobError, match="not connected"):
        await fetcher.subscribe(["MSFT"])
    await fetcher.disconnect()
    await alpaca.until(lambda f: f.client_count == 0)


@pytest.mark.asyncio
async def test_on_tick_exception_goes_to_on_error_and_the_stream_goes_on(alpaca: FakeAlpaca) -> None:
    fetcher, rec = make(alpaca)
    seen: list[Tick] = []

    def flaky(tick: Tick) -> None:
        seen.append(tick)
        if len(seen) in (3, 7):
            raise RuntimeError(f"strategy bug at tick {len(seen)}")
        rec.tick(tick)

    fetcher.on_tick = flaky
    await fetcher.connect()
    await fetcher.subscribe(["AAPL"])
    task = asyncio.create_task(fetcher.listen())
    await rec.until(lambda: len(seen) >= 20)
    assert [str(e) for e in rec.errors] == ["strategy bug at tick 3", "strategy bug at tick 7"]
    assert fetcher.get_stats()["callback_errors"] == 2 and fetcher.is_connected()
    await stop(fetcher, task, alpaca)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["truncated", "not_array", "bad_trade", "bad_time", "binary"])
async def test_malformed_frame_is_reported_and_the_stream_goes_on(alpaca: FakeAlpaca, kind: str) -> None:
    fetcher, rec, task = await running(alpaca, ["AAPL"])
    await rec.until(lambda: len(rec.ticks) >= 1)
    assert alpaca.send_malformed(kind) == 1
    await rec.until(lambda: len(rec.errors) == 1)
    assert isinstance(rec.errors[0], MalformedMessage) and "skipped it" in str(rec.errors[0])
    mark = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= mark + 5)
    stats = fetcher.get_stats()
    assert stats["malformed"] == 1 and stats["reconnects"] == 0 and fetcher.is_connected()
    await stop(fetcher, task, alpaca)


@pytest.mark.asyncio
async def test_server_error_messages_are_reported_with_the_fix(alpaca: FakeAlpaca) -> None:
    fetcher, rec, task = await running(alpaca, ["AAPL"])
    alpaca.send_error(407)
    await rec.until(lambda: len(rec.errors) == 1)
    assert isinstance(rec.errors[0], SlowClient) and "make on_tick faster" in str(rec.errors[0])
    mark = len(rec.ticks)
    await rec.until(lambda: len(rec.ticks) >= mark + 5)
    alpaca.send_error(500, close=True)  # an error, then the server closes: reconnect
    await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
    assert "after error 500" in fetcher.gaps[0].cause
    await stop(fetcher, task, alpaca)


@pytest.mark.asyncio
async def test_disconnect_leaves_no_task_or_connection_behind(alpaca: FakeAlpaca) -> None:
    fetcher, rec, task = await running(alpaca, ["AAPL"])
    await rec.until(lambda: len(rec.ticks) >= 3)
    await fetcher.disconnect()
    assert await asyncio.wait_for(task, 5) is None  # listen() returns
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await alpaca.until(lambda f: f.client_count == 0)
    assert not fetcher.is_connected() and not fetcher.get_stats()["connected"]
    with pytest.raises(SlobError, match="connect"):
        await fetcher.subscribe(["AAPL"])
    await fetcher.connect()  # a fetcher can be used again
    await fetcher.disconnect()
    await alpaca.until(lambda f: f.client_count == 0)


@pytest.mark.asyncio
async def test_unreachable_server() -> None:
    with FakeAlpaca() as fake:
        url = fake.url  # the port is free again once the fake stopped
    fetcher = AlpacaWSFetcher(KEY, SECRET, config=AlpacaConfig(url=url, **FAST))
    with pytest.raises(ConnectError, match="could not open the Alpaca stream"):
        await fetcher.connect()


# -- configuration and protocol details -----------------------------------------------


def test_config_defaults_to_the_real_stream_and_refuses_clear_text_remote() -> None:
    assert AlpacaWSFetcher("k", "s").config.stream_url == "wss://stream.data.alpaca.markets/v2/iex"
    assert AlpacaWSFetcher("k", "s", feed="sip").config.stream_url == "wss://stream.data.alpaca.markets/v2/sip"
    with pytest.raises(ConfigError, match="feed"):
        AlpacaConfig(feed="nasdaq")
    with pytest.raises(ConfigError, match="clear text"):
        AlpacaConfig(url="ws://stream.example.com/v2/iex")
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        AlpacaConfig(url="https://stream.data.alpaca.markets/v2/iex")
    with pytest.raises(ConfigError, match="stock symbol"):
        asyncio.run(AlpacaWSFetcher("k", "s").subscribe(["BAD SYMBOL"]))


def test_rfc3339_times() -> None:
    utc = dt.timezone.utc
    assert parse_time("2021-02-22T15:51:44.208Z") == dt.datetime(2021, 2, 22, 15, 51, 44, 208000, tzinfo=utc)
    assert parse_time("2021-02-22T15:51:44.208123456Z") == dt.datetime(2021, 2, 22, 15, 51, 44, 208123, tzinfo=utc)
    assert parse_time("2021-02-22T15:51:44Z") == dt.datetime(2021, 2, 22, 15, 51, 44, tzinfo=utc)
    assert parse_time("2021-02-22T10:51:44.5-05:00") == dt.datetime(2021, 2, 22, 15, 51, 44, 500000, tzinfo=utc)
    with pytest.raises(ValueError):
        parse_time("2021-02-22 15:51")


@pytest.mark.parametrize("code, cls, fix", [
    (402, AuthenticationFailed, "APCA key/secret"),
    (405, SymbolLimitExceeded, "fewer symbols"),
    (406, ConnectionLimitExceeded, "another connection"),
    (409, InsufficientSubscription, "subscription plan"),
])
def test_error_codes_map_to_errors_naming_the_fix(code: int, cls: type[Exception], fix: str) -> None:
    exc = error_for(code, "text from server")
    assert type(exc) is cls and fix in str(exc) and "text from server" in str(exc)
    assert error_for(999, "").code == 999 and "unknown" in str(error_for(999, ""))
