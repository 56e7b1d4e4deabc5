"""Historical data through IB's client and the fetcher's session, against FakeTWS over
loopback: bars equal the candles slob builds from the same trades streamed live, pages
across days and a roll, keepUpToDate, pacing, and every way a request can fail."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, AsyncIterator

import pytest
import pytest_asyncio
from ibapi.contract import Contract
from support.recorder import Recorder

from slob.config.ib_config import IBConfig
from slob.ib.errors import ConnectionLost, ContractNotFound, RequestTimedOut, SlobError
from slob.ib.history import HistoryNotPermitted, HistoryPacingViolation
from slob.ib.history_pacing import PacingRules
from slob.live import IBWSFetcher
from slob.market.candle_aggregator import CandleAggregator
from slob.live.ib_history import HistorySettings
from slob.model import Candle, Tick
from slob.testing import FakeTWS, RandomWalkScenario
from slob.testing.fake_history import history_of

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 12, 2, 15, 0, tzinfo=UTC)  # a Monday; NQZ4 the front month
FAST = dict(reconnect_delay_seconds=0.05, max_reconnect_delay_seconds=0.2, connect_timeout_seconds=5.0)


class ManualClock:
    """The pacers' clock: sleeping advances it, nothing waits for real."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def connected(tws: FakeTWS, *, subscribe: bool = False, clock: ManualClock | None = None,
                    **settings: Any) -> tuple[IBWSFetcher, Recorder, asyncio.Task[None]]:
    fetcher = IBWSFetcher(config=IBConfig(port=tws.port, **FAST))
    rec = Recorder(timeout=20.0)
    fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
    clock = clock or ManualClock()
    history_of(tws).clock = clock
    fetcher.configure_history(HistorySettings(clock=clock, sleep=clock.sleep, **settings))
    await fetcher.connect()
    if subscribe:
        await fetcher.subscribe(["NQ"])
    return fetcher, rec, asyncio.create_task(fetcher.listen())


async def stop(fetcher: IBWSFetcher, task: asyncio.Task[None]) -> None:
    await fetcher.disconnect()
    await asyncio.wait_for(task, 5)


def candles_of(ticks: list[Tick], until: dt.datetime) -> list[Candle]:
    """What slob's aggregator makes of the ticks: the real (not filled) minutes ended by ``until``."""
    agg = CandleAggregator("NQ", (60,))
    out: list[Candle] = []
    for t in ticks:
        out += agg.add(t)
    out += agg.advance(until)
    return [c for c in out if not c.filled]


@pytest_asyncio.fixture
async def paused() -> AsyncIterator[FakeTWS]:
    async with FakeTWS(speed=0, start=T0) as server:
        yield server


async def stream(tws: FakeTWS, rec: Recorder, seconds: float) -> dt.datetime:
    """Play ``seconds`` of market and wait until the client has every tick sent."""
    now = await asyncio.to_thread(tws.advance, seconds)
    await asyncio.to_thread(tws.settle)
    await rec.until(lambda: len(rec.ticks) == len(tws.sent_ticks()))
    return now


@pytest.mark.asyncio
async def test_bars_equal_the_candles_built_from_the_streamed_trades(paused: FakeTWS) -> None:
    fetcher, rec, task = await connected(paused, subscribe=True)
    now = await stream(paused, rec, 20 * 60 + 30)
    live = candles_of(rec.ticks, now)
    assert len(live) == 20 and live[-1].end <= now
    bars = await fetcher.history("NQ", T0, now)
    assert bars == live  # every field: OHLC, volume, trade count, contract
    assert all(c.symbol == "NQ" and c.contract == "NQZ4" for c in bars)
    # the minute 15:20 has not ended: not a finished bar
    assert bars[-1].start == T0 + dt.timedelta(minutes=19)
    # a sub-range is the same bars
    assert await fetcher.history("NQ", T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=7)) == live[5:7]
    await stop(fetcher, task)
    assert rec.errors == []


@pytest.mark.asyncio
async def test_other_bar_sizes_and_what_to_show(paused: FakeTWS) -> None:
    fetcher, rec, task = await connected(paused, subscribe=True)
    now = await stream(paused, rec, 10 * 60)
    agg = CandleAggregator("NQ", (5, 300))
    built: list[Candle] = []
    for t in rec.ticks:
        built += agg.add(t)
    built += agg.advance(now)
    fives = [c for c in built if c.interval_seconds == 300 and not c.filled]
    assert await fetcher.history("NQ", T0, now, bar="5 mins") == fives
    secs = [c for c in built if c.interval_seconds == 5 and not c.filled]
    assert await fetcher.history("NQ", T0, now, bar="5 secs") == secs  # one page: 5-second bars go by the hour
    mid = await fetcher.history("NQ", T0, now, what="MIDPOINT")
    assert len(mid) == 10 and all(c.volume == 0 and c.trades == 0 for c in mid)
    trades = await fetcher.history("NQ", T0, now)
    for m, t in zip(mid, trades):
        assert abs(m.close - t.close) <= 0.25  # the quote straddles the trade
    bid_ask = await fetcher.history("NQ", T0, now, what="BID_ASK")
    assert all(c.low <= c.open <= c.high and c.low <= c.close <= c.high for c in bid_ask)
    await stop(fetcher, task)
    assert rec.errors == []


@pytest.mark.asyncio
async def test_historical_ticks_are_the_trades_streamed_paged_by_a_thousand(paused: FakeTWS) -> None:
    fetcher, rec, task = await connected(paused, subscribe=True)
    now = await stream(paused, rec, 10 * 60)
    ticks = await fetcher.historical_ticks("NQ", T0, now)
    assert len(ticks) == len(rec.ticks) > 2000  # so at least three requests
    key = lambda t: (t.timestamp, t.price, t.size, t.contract)  # noqa: E731
    assert [key(t) for t in ticks] == [key(t) for t in rec.ticks]
    requests = [r for r in paused.requests if r.name == "REQ_HISTORICAL_TICKS"]
    assert len(requests) >= 3 and all(r["numberOfTicks"] == "1000" for r in requests)
    head = await fetcher.head_timestamp("NQ")
    assert head == rec.ticks[0].timestamp
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_pages_by_day_across_a_weekend() -> None:
    slow = {"NQ": RandomWalkScenario(seed=3, trades_per_second=0.05, start_price=21_000.0)}
    friday = dt.datetime(2024, 12, 6, 12, 0, tzinfo=UTC)
    async with FakeTWS(speed=0, start=friday, scenarios=slow) as tws:
        fetcher, rec, task = await connected(tws)
        await asyncio.to_thread(tws.advance, 4 * 86_400)  # to Tuesday noon
        now = tws.clock.now()
        bars = await fetcher.history("NQ", friday, now)
        requests = [r for r in tws.requests if r.name == "REQ_HISTORICAL_DATA"]
        assert len(requests) == 5  # Fri (from noon), Sat, Sun, Mon, Tue (to noon): one UTC day each
        assert [r["durationStr"] for r in requests] == ["43200 S"] + ["86400 S"] * 3 + ["43200 S"]
        assert all(r["formatDate"] == "2" and r["useRTH"] == "0" for r in requests)
        # the whole answer equals the aggregator's candles of the scenario's own trades
        trades = [Tick("NQ", t.price, t.size, dt.datetime.fromtimestamp(t.time_ns // 10**9, UTC), "CME", "NQZ4", 0)
                  for t in _until(slow["NQ"].events(int(friday.timestamp()) * 10**9), now)]
        assert bars == candles_of(trades, now)
        assert not any(c.start.weekday() == 5 for c in bars)  # Saturday: no trades, no bars
        await stop(fetcher, task)


def _until(trades: Any, end: dt.datetime) -> Any:
    limit = int(end.timestamp()) * 10**9
    for t in trades:
        if t.time_ns >= limit:
            return
        yield t


@pytest.mark.asyncio
async def test_the_front_month_is_followed_across_a_roll() -> None:
    """NQZ4 rolls to NQH5 at 17:00 Chicago on 2024-12-11 (23:00 UTC); history of "NQ"
    over the roll is NQZ4's bars then NQH5's, as the live feed delivered them."""
    start = dt.datetime(2024, 12, 11, 21, 50, tzinfo=UTC)
    async with FakeTWS(speed=0, start=start) as tws:
        fetcher, rec, task = await connected(tws, subscribe=True)
        fetcher.roll_check_seconds = 0.05
        await stream(tws, rec, 10 * 60)  # to the 16:00 Chicago halt
        await asyncio.to_thread(tws.advance, 59 * 60)  # 22:59: the next contract is requested
        await asyncio.to_thread(tws.wait_for_request, "REQ_TICK_BY_TICK_DATA",
                                where=lambda r: r["localSymbol"] == "NQH5")
        now = await asyncio.to_thread(tws.advance, 16 * 60)  # the roll at 23:00, 15 minutes of NQH5
        await asyncio.to_thread(tws.settle)
        last = max(t.time for t in tws.sent_ticks() if t.contract == "NQH5")
        await rec.until(lambda: rec.ticks[-1].contract == "NQH5" and rec.ticks[-1].timestamp.timestamp() == last)
        assert fetcher.rolls == 1
        live = candles_of(rec.ticks, now)
        bars = await fetcher.history("NQ", start, now)
        assert {c.contract for c in bars} == {"NQZ4", "NQH5"}
        roll = dt.datetime(2024, 12, 11, 23, 0, tzinfo=UTC)
        assert [c for c in bars if c.start != roll] == [c for c in live if c.start != roll]
        # The roll minute: the same trades, but live, the old contract's frame of the first
        # trades at 23:00:00 came before the new one's, so FeedSwitch cut at 23:00:01 and
        # the live candle opens at NQZ4's price (slob.live.feed_switch); history is NQH5's.
        (h,), (l,) = [c for c in bars if c.start == roll], [c for c in live if c.start == roll]
        assert (h.contract, h.close, h.volume, h.trades) == (l.contract, l.close, l.volume, l.trades)
        pinned = await fetcher.history("NQZ4", start, now)
        assert {c.contract for c in pinned} == {"NQZ4"} and len(pinned) > len([c for c in bars if c.contract == "NQZ4"])
        await stop(fetcher, task)


@pytest.mark.asyncio
async def test_an_expired_contract_is_asked_with_include_expired() -> None:
    later = dt.datetime(2025, 1, 6, 15, 0, tzinfo=UTC)  # NQZ4 expired on 2024-12-20
    slow = {"NQ": RandomWalkScenario(seed=3, trades_per_second=0.2, start_price=21_000.0)}
    async with FakeTWS(speed=0, start=dt.datetime(2024, 12, 16, 15, 0, tzinfo=UTC), scenarios=slow) as tws:
        fetcher, rec, task = await connected(tws)
        await asyncio.to_thread(tws.advance, (later - tws.clock.now()).total_seconds())
        bars = await fetcher.history("NQZ4", dt.datetime(2024, 12, 16, 15, 0, tzinfo=UTC),
                                     dt.datetime(2024, 12, 16, 16, 0, tzinfo=UTC))
        assert len(bars) >= 55 and {c.contract for c in bars} == {"NQZ4"}
        request = next(r for r in tws.requests if r.name == "REQ_HISTORICAL_DATA")
        assert request["includeExpired"] == "1" and request["localSymbol"] == "NQZ4"
        await stop(fetcher, task)


@pytest.mark.asyncio
async def test_no_data_is_an_empty_answer_not_an_error(paused: FakeTWS) -> None:
    fetcher, rec, task = await connected(paused)
    saturday = dt.datetime(2024, 11, 30, 12, 0, tzinfo=UTC)
    assert await fetcher.history("NQ", saturday, saturday + dt.timedelta(hours=2)) == []
    await asyncio.sleep(0)
    assert rec.errors == []  # nothing reported to on_error either
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_unknown_contracts_and_permissions() -> None:
    async with FakeTWS(speed=0, start=T0, no_permission=["NQ"]) as tws:
        fetcher, rec, task = await connected(tws)
        with pytest.raises(ContractNotFound, match="ZZ"):
            await fetcher.history("ZZ", T0 - dt.timedelta(hours=1), T0)
        bogus = Contract()
        bogus.conId, bogus.symbol, bogus.secType, bogus.exchange, bogus.localSymbol = 1, "NQ", "FUT", "CME", "NQX9"
        with pytest.raises(ContractNotFound, match="NQX9"):
            await fetcher.history(bogus, T0 - dt.timedelta(hours=1), T0)
        with pytest.raises(HistoryNotPermitted, match="permission"):
            await fetcher.history("NQ", T0 - dt.timedelta(hours=1), T0)
        with pytest.raises(SlobError, match="bar size"):
            await fetcher.history("NQ", T0 - dt.timedelta(hours=1), T0, bar="7 mins")
        await asyncio.sleep(0)
        assert rec.errors == []
        await stop(fetcher, task)


@pytest.mark.asyncio
async def test_an_unanswered_request_times_out_and_is_cancelled(paused: FakeTWS) -> None:
    fetcher, rec, task = await connected(paused, timeout_seconds=0.5)
    paused.ignore_next_request("REQ_HISTORICAL_DATA")
    with pytest.raises(RequestTimedOut):
        await fetcher.history("NQ", T0 - dt.timedelta(hours=1), T0)
    cancel = await asyncio.to_thread(paused.wait_for_request, "CANCEL_HISTORICAL_DATA")
    request = next(r for r in paused.requests if r.name == "REQ_HISTORICAL_DATA")
    assert cancel["reqId"] == request["reqId"]
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_a_connection_lost_mid_request_raises_connection_lost(paused: FakeTWS) -> None:
    fetcher, rec, task = await connected(paused)
    paused.drop_on_next_request("REQ_HISTORICAL_DATA", answered=False)
    with pytest.raises(ConnectionLost):
        await fetcher.history("NQ", T0 - dt.timedelta(hours=1), T0)
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_a_pacing_violation_is_waited_out_and_retried(paused: FakeTWS) -> None:
    """The client's pacer switched off, the fake's on: the identical second request is
    refused (162), the client backs off on its clock and the retry is served."""
    clock = ManualClock()
    fetcher, rec, task = await connected(paused, clock=clock, pacing=PacingRules.unlimited())
    span = (T0, T0 + dt.timedelta(minutes=10))
    await asyncio.to_thread(paused.advance, 600)
    first = await fetcher.history("NQ", *span)
    second = await fetcher.history("NQ", *span)
    assert first == second and len(first) == 10
    service = fetcher.history_service
    assert service.pacing_violations == 1 and clock.slept == [15.0]
    assert history_of(paused).refused == {"pacing": 1}
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_pacing_violations_beyond_the_retries_raise(paused: FakeTWS) -> None:
    clock = ManualClock()
    fetcher, rec, task = await connected(paused, clock=clock, pacing=PacingRules.unlimited(), pacing_retries=2,
                                         pacing_backoff_seconds=1.0)
    span = (T0, T0 + dt.timedelta(minutes=10))
    await asyncio.to_thread(paused.advance, 600)
    await fetcher.history("NQ", *span)
    with pytest.raises(HistoryPacingViolation, match="after 2 retries"):
        await fetcher.history("NQ", *span)
    assert clock.slept == [1.0, 2.0]
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_the_client_pacer_keeps_a_fake_with_ibs_rules_content(paused: FakeTWS) -> None:
    """Both pacers on one clock: many pages for one contract, identical repeats, nothing refused."""
    clock = ManualClock()
    fetcher, rec, task = await connected(paused, clock=clock)
    await asyncio.to_thread(paused.advance, 3 * 3600)
    for _ in range(3):
        bars = await fetcher.history("NQ", T0, T0 + dt.timedelta(hours=3), bar="1 sec")
        assert len(bars) > 3 * 3600 * 0.9
    assert history_of(paused).refused == {}
    assert fetcher.history_service.requests == 3 * 6  # six 30-minute pages of second bars each time
    assert sum(clock.slept) >= 2 * 15.0  # the repeats waited for the identical-request rule
    await stop(fetcher, task)


@pytest.mark.asyncio
async def test_history_needs_a_session() -> None:
    fetcher = IBWSFetcher(config=IBConfig(port=1, **FAST))
    with pytest.raises(ConnectionLost, match="not connected"):
        await fetcher.history("NQ", T0 - dt.timedelta(hours=1), T0)
    with pytest.raises(ConnectionLost):
        await fetcher.head_timestamp("NQ")
    with pytest.raises(ConnectionLost):
        await fetcher.historical_ticks("NQ", T0 - dt.timedelta(hours=1), T0)


def test_keep_up_to_date_through_ibclient_ends_with_the_session() -> None:
    """IBClient's keepUpToDate: the initial bars, then every update of the bar forming on
    the reader thread, and ConnectionLost as the stream's last word when the socket dies."""
    import threading

    from slob.ib.client import IBClient

    with FakeTWS(speed=0, start=T0) as tws:
        items: list[Any] = []
        changed = threading.Condition()

        def on_update(item: Any) -> None:
            with changed:
                items.append(item)
                changed.notify_all()

        client = IBClient(lambda record: None)
        client.connect("127.0.0.1", tws.port, 5)
        try:
            client.ready.result(5)
            tws.advance(150)  # 15:02:30
            contract = Contract()
            contract.symbol, contract.secType, contract.exchange, contract.localSymbol = "NQ", "FUT", "CME", "NQZ4"
            rows = client.request_history(7, contract, "", "600 S", "1 min", "TRADES", keep_up_to_date=True,
                                          on_update=on_update).result(10)
            assert [r.date for r in rows] == [str(int((T0 + dt.timedelta(minutes=m)).timestamp())) for m in (0, 1)]
            with changed:
                assert changed.wait_for(lambda: len(items) >= 1, 10)  # the minute 15:02 so far
            tws.advance(60)
            minute_2 = str(int((T0 + dt.timedelta(minutes=2)).timestamp()))
            with changed:
                assert changed.wait_for(lambda: any(getattr(i, "date", "") > minute_2 for i in items), 10)
            final_2 = [i for i in items if i.date == minute_2][-1]
            plain = client.request_history(8, contract, "20241202-15:03:00", "60 S", "1 min", "TRADES").result(10)
            assert (final_2.open, final_2.high, final_2.low, final_2.close, final_2.volume, final_2.barCount) == (
                plain[0].open, plain[0].high, plain[0].low, plain[0].close, plain[0].volume, plain[0].barCount)
            tws.drop()
            with changed:
                assert changed.wait_for(lambda: isinstance(items[-1], ConnectionLost), 10)
        finally:
            client.disconnect()
