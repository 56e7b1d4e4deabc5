"""GapFiller on its own: the hold, the two-step supply, the join, and what happens when
history cannot be had. History here is the reference candles of the same trades (what
FakeTWS computes too), handed out only for minutes that are over; the engine end to end
against FakeTWS is in test_warmup.py and test_restart_property.py."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.ib.errors import RequestTimedOut, SlobError
from slob.market.candle_aggregator import CandleAggregator
from slob.live.gapfill import GapFiller
from slob.live.warmup import MINUTE, MemoryConfig, floor_minute
from slob.model import Candle, Gap, HistoryFilled, HistoryUnavailable, Tick

UTC = dt.timezone.utc
BASE = dt.datetime(2025, 3, 5, 14, 0, tzinfo=UTC)  # a Wednesday afternoon, CME open
QUICK = MemoryConfig(history_delay_seconds=0, retry_seconds=0, max_attempts=2)


def ticks_for(minutes: int, *, quiet: frozenset[int] = frozenset()) -> list[Tick]:
    """Four trades a minute (at :00, :15, :30, :59) on a zig-zag, none in ``quiet`` minutes."""
    out = []
    for m in range(minutes):
        if m in quiet:
            continue
        for k, sec in enumerate((0, 15, 30, 59)):
            price = 20_000 + 0.25 * ((m * 7 + k * 3) % 23)
            out.append(Tick("NQ", price, float(1 + k), BASE + dt.timedelta(minutes=m, seconds=sec), "CME", "NQH5", 0))
    return out


def reference(ticks: list[Tick], end: dt.datetime) -> list[Candle]:
    agg = CandleAggregator("NQ")
    out = [c for t in ticks for c in agg.add(t)]
    return out + agg.advance(end)


class Harness:
    """The engine's part: aggregator, filler, candles delivered, events published."""

    def __init__(self, ticks: list[Tick], *, config: MemoryConfig = QUICK, fail: int = 0,
                 history: bool = True) -> None:
        self.all = ticks
        self.now = BASE
        self.bars = [c for c in reference(ticks, ticks[-1].timestamp + 2 * MINUTE)
                     if c.interval_seconds == 60 and not c.filled]
        self.requests: list[tuple[dt.datetime, dt.datetime]] = []
        self.fail = fail
        self.delivered: list[tuple[Candle, str]] = []
        self.events: list[object] = []
        self.records: list[object] = []
        self.agg = CandleAggregator("NQ")
        self.filler = GapFiller("NQ", self.agg, config=config, history=self.history if history else None,
                                deliver=self.deliver, publish=self.publish, record=self.records.append,
                                sleep=self.no_sleep)

    async def history(self, symbol: str, start: dt.datetime, end: dt.datetime) -> list[Candle]:
        self.requests.append((start, end))
        if self.fail:
            self.fail -= 1
            raise RequestTimedOut("historical data", 5.0)
        return [b for b in self.bars if start <= b.start < end and b.end <= self.now]

    async def no_sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    async def deliver(self, candle: Candle, origin: str) -> None:
        self.delivered.append((candle, origin))

    async def publish(self, event: object) -> None:
        self.events.append(event)

    async def live(self, tick: Tick) -> None:
        """What the engine does with a tick."""
        self.now = max(self.now, tick.timestamp)
        if self.filler.holding:
            self.filler.tick(tick)
            await self.filler.step()
        else:
            self.filler.saw(tick.timestamp)
            for c in self.agg.add(tick):
                await self.deliver(c, "live")

    def ones(self) -> list[Candle]:
        return [c for c, _ in self.delivered if c.interval_seconds == 60]


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.integers(1, 40), st.integers(0, 12), st.integers(0, 59), st.frozensets(st.integers(0, 44), max_size=6))
def test_an_outage_anywhere_is_filled_to_the_uninterrupted_candles(k: int, lost: int, second: int,
                                                                   quiet: frozenset[int]) -> None:
    async def go() -> None:
        ticks = ticks_for(45, quiet=quiet)
        end = BASE + 46 * MINUTE
        want = reference(ticks, end)
        h = Harness(ticks)
        k_ = min(k, len(ticks) - 1)
        for t in ticks[:k_]:
            await h.live(t)
        outage_at = ticks[k_ - 1].timestamp if k_ else BASE
        h.delivered += [(c, "live") for c in h.filler.hold(outage_at, "1101")]
        resume = outage_at + dt.timedelta(minutes=lost, seconds=second)
        after = [t for t in ticks if t.timestamp > resume]
        for t in ticks[k_:]:
            if t.timestamp <= resume:
                h.now = max(h.now, t.timestamp)  # the market goes on; the engine hears nothing
        if after:
            h.filler.gap(Gap(outage_at, after[0].timestamp, "1101"))
        for t in after:
            await h.live(t)
        h.now = end
        h.filler.saw(end)
        await h.filler.step()
        assert not h.filler.holding or not after
        got = h.delivered + [(c, "live") for c in h.agg.advance(end)]
        if not after:
            return
        key = lambda c: (c.interval_seconds, c.start)  # noqa: E731
        assert sorted((c for c, _ in got), key=key) == sorted(want, key=key)
        gaps = [r for r in h.records if isinstance(r, Gap)]
        assert len(gaps) == 1 and gaps[0].filled
        filled = [e for e in h.events if isinstance(e, HistoryFilled)]
        assert len(filled) == 1 and filled[0].missing == ()
    asyncio.run(go())


@pytest.mark.asyncio
async def test_the_warm_up_uses_the_store_and_asks_only_for_the_rest() -> None:
    ticks = ticks_for(30)
    h = Harness(ticks)
    stored = {c.start: c for c in h.bars if c.start < BASE + 10 * MINUTE}
    h.filler.use_stored(stored)
    h.filler.start(BASE)
    h.now = BASE + dt.timedelta(minutes=20, seconds=30)  # TWS's clock at start
    h.filler.saw(h.now)
    h.filler.join_at(BASE + 21 * MINUTE)
    await h.filler.step()
    assert h.requests == [(BASE + 10 * MINUTE, BASE + 20 * MINUTE)]  # the minute forming now comes later
    assert [c.start for c in h.ones()] == [BASE + i * MINUTE for i in range(20)]
    assert {o for c, o in h.delivered if c.interval_seconds == 60 and c.start < BASE + 10 * MINUTE} == {"store"}
    for t in ticks:
        if t.timestamp >= BASE + dt.timedelta(minutes=20, seconds=30):
            await h.live(t)  # the live feed from the subscription on
    assert h.requests[1:] == [(BASE + 20 * MINUTE, BASE + 21 * MINUTE)] and not h.filler.holding
    assert h.ones() == [c for c in reference(ticks, BASE + 30 * MINUTE) if c.interval_seconds == 60][:29]
    filled = [e for e in h.events if isinstance(e, HistoryFilled)]
    assert [(e.start, e.end, e.stored, e.bars, e.requests) for e in filled] == [(BASE, BASE + 21 * MINUTE, 10, 11, 2)]


@pytest.mark.asyncio
async def test_history_that_cannot_be_had_leaves_the_minutes_missing_and_says_so() -> None:
    ticks = ticks_for(20)
    h = Harness(ticks, history=False)
    for t in ticks[:20]:
        await h.live(t)  # five minutes live
    h.filler.hold(ticks[19].timestamp, "socket closed")
    h.filler.gap(Gap(ticks[19].timestamp, ticks[40].timestamp, "socket closed"))
    for t in ticks[40:]:
        await h.live(t)
    assert not h.filler.holding
    unavailable = [e for e in h.events if isinstance(e, HistoryUnavailable)]
    # the minutes before the join's, then the one forming at the join, once it is over
    assert [(e.start, e.end) for e in unavailable] == [(BASE + 4 * MINUTE, BASE + 10 * MINUTE),
                                                       (BASE + 10 * MINUTE, BASE + 11 * MINUTE)]
    assert "no historical bars" in unavailable[0].reason
    starts = [c.start for c in h.ones()]
    assert starts[:4] == [BASE + i * MINUTE for i in range(4)]
    assert not [s for s in starts if BASE + 4 * MINUTE <= s < BASE + 11 * MINUTE]  # no candles, no flat ones
    assert starts[4] == BASE + 11 * MINUTE
    assert not [r for r in h.records if isinstance(r, Gap)]  # the gap stays unfilled
    assert h.filler.missing == [(BASE + 4 * MINUTE, BASE + 10 * MINUTE), (BASE + 10 * MINUTE, BASE + 11 * MINUTE)]


@pytest.mark.asyncio
async def test_a_failed_request_is_tried_again() -> None:
    ticks = ticks_for(12)
    h = Harness(ticks, fail=1)
    for t in ticks[:8]:
        await h.live(t)
    h.filler.hold(ticks[7].timestamp, "1101")
    h.filler.gap(Gap(ticks[7].timestamp, ticks[20].timestamp, "1101"))
    for t in ticks[20:]:
        await h.live(t)
    h.now = BASE + 13 * MINUTE
    h.filler.saw(h.now)
    await h.filler.step()
    assert h.requests[:2] == [(BASE + MINUTE, BASE + 5 * MINUTE)] * 2 and h.filler.stats["failures"] == 1
    assert h.ones() == [c for c in reference(ticks, BASE + 13 * MINUTE) if c.interval_seconds == 60][:11]


@pytest.mark.asyncio
async def test_an_empty_answer_is_no_data_when_live_trades_contradict_it() -> None:
    ticks = ticks_for(10)
    h = Harness(ticks)
    h.bars = []  # TWS: "HMDS query returned no data"
    for t in ticks[:4]:
        await h.live(t)
    h.filler.hold(ticks[3].timestamp, "1101")
    h.filler.gap(Gap(ticks[3].timestamp, ticks[9].timestamp, "1101"))  # mid-minute 2
    for t in ticks[9:]:
        await h.live(t)
    reasons = [e.reason for e in h.events if isinstance(e, HistoryUnavailable)]
    # live trades were seen in 14:00 (before the outage) and 14:02 (after it): an empty
    # answer is not the truth; each stretch is asked twice, then given up
    assert reasons == ["no bar for 14:00 UTC although live trades were seen in it",
                       "no bar for 14:02 UTC although live trades were seen in it"]
    assert h.requests == [(BASE, BASE + 2 * MINUTE)] * 2 + [(BASE + 2 * MINUTE, BASE + 3 * MINUTE)] * 2
    assert h.filler.missing == [(BASE, BASE + 2 * MINUTE), (BASE + 2 * MINUTE, BASE + 3 * MINUTE)]


@pytest.mark.asyncio
async def test_a_new_outage_during_the_request_waits_for_its_end() -> None:
    ticks = ticks_for(12)
    h = Harness(ticks)
    started = asyncio.Event()
    release = asyncio.Event()
    plain = h.history

    async def slow(symbol: str, start: dt.datetime, end: dt.datetime) -> list[Candle]:
        started.set()
        await release.wait()
        if h.filler.holding and h.requests == []:
            h.requests.append((start, end))
            raise SlobError("the session was lost")
        return await plain(symbol, start, end)

    h.filler._history = slow  # noqa: SLF001 - the request path, slowed down
    for t in ticks[:8]:
        await h.live(t)
    h.filler.hold(ticks[7].timestamp, "1101")
    h.filler.gap(Gap(ticks[7].timestamp, ticks[20].timestamp, "1101"))
    h.filler.tick(ticks[20])
    h.now = ticks[20].timestamp
    stepping = asyncio.create_task(h.filler.step())
    await started.wait()
    h.filler.hold(ticks[20].timestamp, "socket closed")  # a second outage: the join is unknown again
    release.set()
    await stepping
    assert h.filler.holding and h.ones() == [c for c in reference(ticks, BASE) if c.interval_seconds == 60][:1]
    assert h.filler.stats["failures"] == 0  # interrupted, not failed
    h.filler.gap(Gap(ticks[20].timestamp, ticks[24].timestamp, "socket closed"))
    for t in ticks[24:]:
        await h.live(t)
    h.now = BASE + 13 * MINUTE
    h.filler.saw(h.now)
    await h.filler.step()
    assert h.ones() == [c for c in reference(ticks, BASE + 13 * MINUTE) if c.interval_seconds == 60][:11]
    assert floor_minute(ticks[24].timestamp) + MINUTE == h.filler.joined_at
