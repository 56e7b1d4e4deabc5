"""The two lanes deliver the same thing: IBWSFetcher's asyncio lane (on_tick on the event
loop) and its zero-hop lane (lane="direct", on_tick_direct on the reader thread) run one
pipeline (slob.live.delivery), so for any feed -- trades around a live roll, reconnects,
1101 resubscriptions, 1100/1102 with old data in flight, market-data replays -- they must
deliver the same tick sequence and the same events.

In process: a FakeConnector gives each session a FakeEClient (no socket, no thread), so the
"reader thread" of the zero-hop lane is the test's own; every record goes through IB's
decoder and slob's conversion as from a socket. Each plan (a list of steps) runs once per
lane; after each step the driver waits, on conditions, until the fetcher has handled
everything: a marker quote sent last has reached on_quote (records reach listen() in
order), a reconnect or resubscription has finished, a due roll has sent its request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.waiting import until

from slob.config.ib_config import IBConfig
from slob.live import IBWSFetcher
from slob.model import ConnectionLost, ConnectionRestored, ContractRolled, Gap, Quote, Tick
from slob.testing.fake_eclient import FakeConnector, FakeEClient

UTC = dt.timezone.utc
ROLL = dt.datetime(2024, 12, 11, 23, 0, tzinfo=UTC)  # NQZ4 -> NQH5 (tests/live/test_live_roll.py)
LEAD = dt.timedelta(seconds=10)  # roll_lead: the next contract is requested 10 s ahead
START = ROLL - dt.timedelta(seconds=30)
WAIT = 20.0  # seconds any one condition may take; a timeout fails the test, never passes it
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True, database=None)


# -- plans ---------------------------------------------------------------------------------

# ("trades", advance_seconds, picks): the clock moves, then one trade per pick on the live
#     request picks[i] % len(live) (sorted by request id: old contract before new);
# ("drop", advance_seconds): TWS goes away, the clock moves on (maybe past the roll moment);
#     the fetcher reconnects and resubscribes;
# ("data_lost",): 1101; the fetcher resubscribes on the same session;
# ("stale", picks): 1100, trades still in flight on the old requests, then 1102.
Step = tuple[Any, ...]

trades = st.tuples(st.just("trades"), st.integers(0, 4), st.lists(st.integers(0, 3), min_size=1, max_size=6))
steps = st.one_of(
    trades, trades, trades,
    st.tuples(st.just("drop"), st.sampled_from([0, 0, 40])), st.just(("data_lost",)),
    st.tuples(st.just("stale"), st.lists(st.integers(0, 3), max_size=3)),
)
plans = st.lists(steps, min_size=1, max_size=10).map(lambda p: [("trades", 0, [0])] + p)


# -- one run -------------------------------------------------------------------------------


@dataclass
class Outcome:
    ticks: list[tuple[Any, ...]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    rolls: list[ContractRolled] = field(default_factory=list)
    connection: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duplicates: int = 0
    stats_ticks: int = 0


def tick_key(t: Tick) -> tuple[Any, ...]:
    """A tick as both lanes must agree on it (received_ns is the arrival time: it differs)."""
    return (t.symbol, t.contract, t.timestamp, t.price, t.size, t.exchange, t.delayed)


class Driver:
    """Plays a plan against one fetcher and records what it hands out."""

    def __init__(self, lane: str, tick_source: str) -> None:
        self.connector = FakeConnector(start=START)
        cfg = IBConfig(reconnect_delay_seconds=0.0, max_reconnect_delay_seconds=0.0, tick_source=tick_source,
                       liveness_idle_seconds=3600.0, healthy_after_seconds=3600.0)
        self.fetcher = IBWSFetcher(config=cfg, client_factory=self.connector, lane=lane,
                                   subscribe_confirm_seconds=0.02)
        self.fetcher.roll_lead = LEAD
        self.fetcher.roll_grace_seconds = 3600.0  # retirement by timer never races the plan
        self.fetcher.roll_check_seconds = 3600.0
        self.market_data = tick_source == "market_data"
        self.out = Outcome()
        self.quotes: list[float] = []
        self.markers = itertools.count(1)
        self.prices = itertools.count()
        self.last_sent: tuple[int, float, int] | None = None  # (unix s, price, size) of the last trade sent
        self.step_ticks: list[Tick] = []
        f = self.fetcher
        if lane == "direct":
            f.on_tick_direct = self._tick
        else:
            f.on_tick = self._tick
        f.on_quote = lambda q: self.quotes.append(q.bid)
        f.on_event = self._event
        f.on_error = lambda exc: self.out.errors.append(f"{type(exc).__name__}: {exc}")

    def _tick(self, tick: Tick) -> None:
        self.out.ticks.append(tick_key(tick))
        self.step_ticks.append(tick)

    def _event(self, event: object) -> None:
        if isinstance(event, Gap):
            self.out.gaps.append(event)
        elif isinstance(event, ContractRolled):
            self.out.rolls.append(event)
        elif isinstance(event, ConnectionRestored):
            self.out.connection.append(("restored", event.cause, event.data_lost))
        elif isinstance(event, ConnectionLost):
            self.out.connection.append(("lost", event.cause))

    @property
    def fake(self) -> FakeEClient:
        return self.connector.client

    def live(self) -> list[tuple[int, str]]:
        """The current session's live market-data requests: (request id, local symbol)."""
        kinds = ("REQ_MKT_DATA", "CANCEL_MKT_DATA") if self.market_data else (
            "REQ_TICK_BY_TICK_DATA", "CANCEL_TICK_BY_TICK_DATA")
        open_: dict[int, str] = {}
        for r in self.fake.requests:
            if r.name == kinds[0]:
                open_[r.int("reqId")] = r.get("localSymbol")
            elif r.name == kinds[1]:
                open_.pop(r.int("reqId"), None)
        return sorted(open_.items())

    def restored(self) -> int:
        return sum(1 for c in self.out.connection if c[0] == "restored")

    # -- TWS's side ---------------------------------------------------------------------

    def trade(self, req_id: int, unix_s: int, price: float, size: int) -> None:
        if self.market_data:
            self.fake.deliver_tick_price(req_id, 4, price)  # LAST
            self.fake.deliver_tick_size(req_id, 5, size)  # LAST_SIZE
            self.fake.deliver_tick_string(req_id, 45, str(unix_s))  # LAST_TIMESTAMP
        else:
            self.fake.deliver_trade(req_id, price, size, time=dt.datetime.fromtimestamp(unix_s, UTC))

    def new_trade(self, req_id: int) -> None:
        i = next(self.prices)
        unix_s = int(self.connector.clock.now().timestamp())
        price, size = 21000.0 + (i % 40) * 0.25, 1 + i % 5
        self.last_sent = (unix_s, price, size)
        self.trade(req_id, unix_s, price, size)

    def replay(self) -> None:
        """market_data: a new request's first LAST is TWS's last trade, sent again."""
        live = self.live()
        if self.market_data and self.last_sent is not None and live:
            self.trade(live[-1][0], *self.last_sent)

    # -- steps ----------------------------------------------------------------------------

    async def settle(self) -> None:
        """Everything delivered so far has been handled (a marker quote reached on_quote),
        and a roll that is due has sent its request."""
        live = self.live()
        if live:
            marker = float(20000 + next(self.markers) * 0.25)
            self.fake.deliver_quote(live[0][0], marker, marker + 0.25)
            await until(lambda: bool(self.quotes) and self.quotes[-1] == marker, f"marker {marker}")
        due = ROLL - LEAD
        if any(t.contract == "NQZ4" and t.timestamp >= due for t in self.step_ticks) and \
                not any(sym == "NQH5" for _, sym in self.live()):
            await until(lambda: any(sym == "NQH5" for _, sym in self.live()), "the roll's request for NQH5")
        self.step_ticks.clear()

    async def play(self, plan: list[Step]) -> Outcome:
        f = self.fetcher
        await f.connect()
        await f.subscribe(["NQ"])
        listener = asyncio.create_task(f.listen())
        try:
            for step in plan:
                await self.step(step)
                await self.settle()
        finally:
            await f.disconnect()
            await asyncio.wait_for(listener, WAIT)
        stats = f.get_stats()
        self.out.duplicates, self.out.stats_ticks = stats["duplicates"], stats["ticks"]
        return self.out

    async def step(self, step: Step) -> None:
        kind = step[0]
        if kind == "trades":
            self.connector.clock.advance(step[1])
            for pick in step[2]:
                live = self.live()
                self.new_trade(live[pick % len(live)][0])
        elif kind in ("drop", "data_lost"):
            before, attempts = self.restored(), self.connector.attempts
            if kind == "drop":
                self.connector.clock.advance(step[1])
                self.fake.drop_connection()
            else:
                self.fake.deliver_error(1101)
            await until(lambda: self.restored() > before and self.fetcher.state == "streaming", f"recovery ({kind})")
            assert (self.connector.attempts > attempts) == (kind == "drop")
            self.replay()
        elif kind == "stale":
            self.fake.connectivity_lost()
            await until(lambda: self.fetcher.state == "stale", "1100 noticed")
            for pick in step[1]:
                live = self.live()
                self.new_trade(live[pick % len(live)][0])
            before = self.restored()
            self.fake.connectivity_restored(data_maintained=True)
            await until(lambda: self.restored() > before, "1102 noticed")
        else:  # pragma: no cover - a plan the strategies never make
            raise AssertionError(f"unknown step {step!r}")


def run(lane: str, plan: list[Step], tick_source: str) -> Outcome:
    return asyncio.run(Driver(lane, tick_source).play(plan))


def assert_same(plan: list[Step], tick_source: str) -> tuple[Outcome, Outcome]:
    loop_lane, direct = run("asyncio", plan, tick_source), run("direct", plan, tick_source)
    assert direct.ticks == loop_lane.ticks
    assert direct.gaps == loop_lane.gaps
    assert direct.rolls == loop_lane.rolls
    assert direct.connection == loop_lane.connection
    assert direct.errors == loop_lane.errors
    assert (direct.duplicates, direct.stats_ticks) == (loop_lane.duplicates, loop_lane.stats_ticks)
    assert loop_lane.stats_ticks == len(loop_lane.ticks)
    return loop_lane, direct


# -- the property --------------------------------------------------------------------------


@PROPERTY
@given(plans)
def test_both_lanes_deliver_the_same_ticks_and_events_for_any_feed(plan: list[Step]) -> None:
    assert_same(plan, "tick_by_tick")


@PROPERTY
@given(plans)
def test_both_lanes_agree_on_market_data_with_replays(plan: list[Step]) -> None:
    assert_same(plan, "market_data")


# -- what the generated plans exercise, shown on fixed ones ----------------------------------


def test_a_roll_with_old_and_new_trades_interleaved_is_the_same_in_both_lanes() -> None:
    # to 5 s before the roll moment (the next contract is requested), then trades on both
    # contracts around the roll moment, the old one's last ones after the cut
    plan: list[Step] = [("trades", 0, [0]), ("trades", 25, [0, 0]), ("trades", 3, [0, 1, 0, 1]),
                        ("trades", 2, [1, 0, 1]), ("trades", 1, [0, 1, 1, 0]), ("trades", 1, [1])]
    loop_lane, _ = assert_same(plan, "tick_by_tick")
    assert [(r.old, r.new, r.at) for r in loop_lane.rolls] == [("NQZ4", "NQH5", ROLL)]
    assert {t[1] for t in loop_lane.ticks} == {"NQZ4", "NQH5"}
    assert all(t[1] == "NQH5" for t in loop_lane.ticks if t[2] >= ROLL)


def test_a_reconnect_and_a_1101_each_make_one_gap_in_both_lanes() -> None:
    plan: list[Step] = [("trades", 0, [0, 0]), ("drop", 0), ("trades", 2, [0]), ("data_lost",),
                        ("trades", 1, [0, 0])]
    loop_lane, _ = assert_same(plan, "tick_by_tick")
    assert len(loop_lane.gaps) == 2 and [c[0] for c in loop_lane.connection] == ["lost", "restored"] * 2


def test_a_roll_moment_passed_during_an_outage_is_the_same_roll_in_both_lanes() -> None:
    plan: list[Step] = [("trades", 0, [0, 0]), ("drop", 40), ("trades", 1, [0, 0])]
    loop_lane, _ = assert_same(plan, "tick_by_tick")
    first_new = next(t for t in loop_lane.ticks if t[1] == "NQH5")
    assert [(r.old, r.new, r.at) for r in loop_lane.rolls] == [("NQZ4", "NQH5", first_new[2])]
    assert len(loop_lane.gaps) == 1


def test_1102_with_old_data_in_flight_moves_the_gap_start_in_both_lanes() -> None:
    plan: list[Step] = [("trades", 0, [0]), ("stale", [0, 0]), ("trades", 3, [0])]
    loop_lane, _ = assert_same(plan, "tick_by_tick")
    assert len(loop_lane.gaps) == 1
    gap = loop_lane.gaps[0]
    in_flight = [t[2] for t in loop_lane.ticks[1:3]]
    assert gap.start == max(in_flight) and gap.end == loop_lane.ticks[-1][2]


def test_market_data_replays_are_dropped_in_both_lanes() -> None:
    plan: list[Step] = [("trades", 0, [0, 0]), ("drop", 0), ("trades", 1, [0]), ("data_lost",)]
    loop_lane, _ = assert_same(plan, "market_data")
    assert loop_lane.duplicates == 2  # TWS's last trade, sent again on each new request


@pytest.mark.parametrize("lane", ["asyncio", "direct"])
def test_a_callback_that_raises_is_reported_and_the_stream_goes_on(lane: str) -> None:
    async def scenario() -> tuple[list[str], int, list[tuple[Any, ...]]]:
        driver = Driver(lane, "tick_by_tick")
        seen: list[Tick] = []

        def flaky(tick: Tick) -> None:
            seen.append(tick)
            if len(seen) % 2 == 0:
                raise RuntimeError(f"strategy bug at tick {len(seen)}")
            driver._tick(tick)

        if lane == "direct":
            driver.fetcher.on_tick_direct = flaky
        else:
            driver.fetcher.on_tick = flaky
        out = await driver.play([("trades", 0, [0, 0, 0, 0, 0])])
        return out.errors, driver.fetcher.callback_errors, out.ticks

    errors, count, delivered = asyncio.run(scenario())
    assert errors == ["RuntimeError: strategy bug at tick 2", "RuntimeError: strategy bug at tick 4"]
    assert count == 2 and len(delivered) == 3


def test_the_lane_and_its_callback_must_match() -> None:
    from slob.ib.errors import ConfigError

    with pytest.raises(ConfigError, match="lane"):
        IBWSFetcher(lane="threads")

    async def connect(fetcher: IBWSFetcher) -> None:
        await fetcher.connect()

    direct = IBWSFetcher(client_factory=FakeConnector(), lane="direct")
    with pytest.raises(ConfigError, match="on_tick_direct"):
        asyncio.run(connect(direct))
    direct.on_tick = lambda tick: None
    with pytest.raises(ConfigError, match="on_tick is set"):
        asyncio.run(connect(direct))

    async def coroutine(tick: Tick) -> None:
        pass

    direct.on_tick, direct.on_tick_direct = None, coroutine  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="plain function"):
        asyncio.run(connect(direct))
    loop_lane = IBWSFetcher(client_factory=FakeConnector())
    loop_lane.on_tick_direct = lambda tick: None
    with pytest.raises(ConfigError, match="lane='direct'"):
        asyncio.run(connect(loop_lane))
