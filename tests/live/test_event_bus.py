"""EventBus: typed delivery in subscription order, failing handlers reported and isolated."""

from __future__ import annotations

import datetime as dt

import pytest

from slob.live.event_bus import EventBus
from slob.model import ContractRolled, ErrorReported, Gap, Tick

T0 = dt.datetime(2024, 12, 2, 15, tzinfo=dt.timezone.utc)
TICK = Tick("NQ", 21000.0, 1.0, T0, "CME", "NQZ4", 0)


@pytest.mark.asyncio
async def test_handlers_get_only_their_type_in_order_sync_and_async() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def second(tick: Tick) -> None:
        seen.append(f"async {tick.contract}")

    bus.subscribe(Tick, lambda t: seen.append(f"sync {t.price}"))
    bus.subscribe(Tick, second)
    bus.subscribe(Gap, lambda g: seen.append("gap"))
    await bus.publish(TICK)
    await bus.publish(ContractRolled("NQ", "NQZ4", "NQH5", T0))  # nobody listens: fine
    assert seen == ["sync 21000.0", "async NQZ4"]
    assert bus.published == {"Tick": 1, "ContractRolled": 1}


@pytest.mark.asyncio
async def test_a_failing_handler_is_reported_and_the_others_still_run() -> None:
    bus = EventBus()
    seen: list[object] = []

    def broken(tick: Tick) -> None:
        raise ValueError("handler bug")

    bus.subscribe(Tick, broken)
    bus.subscribe(Tick, seen.append)
    bus.subscribe(ErrorReported, seen.append)
    await bus.publish(TICK)
    assert TICK in seen  # the handler after the broken one still ran
    (report,) = [e for e in seen if isinstance(e, ErrorReported)]
    assert isinstance(report, ErrorReported) and "broken on Tick" in report.where
    assert str(report.error) == "handler bug" and bus.handler_errors == 1


@pytest.mark.asyncio
async def test_a_failing_error_handler_does_not_recurse() -> None:
    bus = EventBus()

    def bad(event: object) -> None:
        raise RuntimeError("again")

    bus.subscribe(Tick, bad)
    bus.subscribe(ErrorReported, bad)
    await bus.publish(TICK)
    assert bus.handler_errors == 2 and bus.published["ErrorReported"] == 1


@pytest.mark.asyncio
async def test_unsubscribe() -> None:
    bus = EventBus()
    seen: list[Tick] = []
    stop = bus.subscribe(Tick, seen.append)
    await bus.publish(TICK)
    stop()
    await bus.publish(TICK)
    assert seen == [TICK] and not bus.has_subscribers(Tick)
