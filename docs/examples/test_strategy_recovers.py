"""A strategy's own tests, without an IB account: the worked example of
docs/testing-your-strategy.md. Installing slob (it brings IB's client), pytest and
pytest-asyncio is all it needs: the fixtures come from slob's pytest plugin."""

import asyncio

import pytest

from slob.config.ib_config import IBConfig
from slob.live import IBWSFetcher, Tick
from slob.model import ConnectionLost, ConnectionRestored


class NQWatcher:
    """The strategy under test: follows NQ and trades only while the feed is up."""

    def __init__(self) -> None:
        self.last_price: float | None = None
        self.ticks = 0
        self.feed_up = True
        self.history: list[str] = []  # "lost" / "restored", in order
        self.changed = asyncio.Event()

    def on_tick(self, tick: Tick) -> None:
        self.last_price = tick.price
        self.ticks += 1
        self.changed.set()

    def on_event(self, event: object) -> None:
        if isinstance(event, ConnectionLost):
            self.feed_up = False
            self.history.append("lost")
        elif isinstance(event, ConnectionRestored):
            self.feed_up = True
            self.history.append("restored")
        self.changed.set()

    @property
    def may_trade(self) -> bool:
        return self.feed_up and self.last_price is not None

    async def until(self, condition, timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds, re-checking after every tick and event."""
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)


def attach(strategy: NQWatcher, fetcher: IBWSFetcher) -> None:
    fetcher.on_tick = strategy.on_tick
    fetcher.on_event = strategy.on_event


# 1. Against FakeTWS over loopback: the whole stack, real sockets, real reconnects.
@pytest.mark.asyncio
async def test_strategy_recovers_when_tws_drops_the_connection(ib_fetcher, fake_tws):
    strategy = NQWatcher()
    attach(strategy, ib_fetcher)
    await ib_fetcher.subscribe(["NQ"])
    listening = asyncio.create_task(ib_fetcher.listen())
    await strategy.until(lambda: strategy.ticks >= 5)
    assert strategy.may_trade

    fake_tws.drop()  # TWS goes away: every API socket closed abruptly
    await strategy.until(lambda: strategy.history == ["lost", "restored"])
    seen = strategy.ticks
    await strategy.until(lambda: strategy.ticks >= seen + 5)  # streaming again, resubscribed
    assert strategy.may_trade
    assert ib_fetcher.reconnects == 1 and ib_fetcher.get_stats()["gaps"] == 1

    await ib_fetcher.disconnect()
    await listening


# 2. In process with FakeEClient: no socket, no thread; the test says what TWS sends.
@pytest.mark.asyncio
async def test_strategy_recovers_in_process(fake_connector):
    config = IBConfig(reconnect_delay_seconds=0, max_reconnect_delay_seconds=0)
    fetcher = IBWSFetcher(config=config, client_factory=fake_connector, subscribe_confirm_seconds=0)
    strategy = NQWatcher()
    attach(strategy, fetcher)
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])
    listening = asyncio.create_task(fetcher.listen())

    tws = fake_connector.client
    tws.deliver_trade(tws.last("REQ_TICK_BY_TICK_DATA").int("reqId"), 21000.25, size=2)
    await strategy.until(lambda: strategy.ticks == 1)
    assert strategy.may_trade and strategy.last_price == 21000.25

    tws.drop_connection()
    await strategy.until(lambda: strategy.history == ["lost", "restored"])
    tws = fake_connector.client  # the session the fetcher reconnected with
    tws.clock.advance(5)
    tws.deliver_trade(tws.last("REQ_TICK_BY_TICK_DATA").int("reqId"), 21001.0)
    await strategy.until(lambda: strategy.ticks == 2)
    assert strategy.may_trade and strategy.last_price == 21001.0

    await fetcher.disconnect()
    await listening
