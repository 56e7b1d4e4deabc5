"""The differential test: one scripted session run twice -- against FakeTWS over loopback
with the real IBClient (socket, reader thread), and through FakeEClient (no socket, no
thread) -- must give the same requests, the same EWrapper callbacks with the same
arguments, and the same records (Ticks, quotes, messages, order records).

The client side of the script is one function; only the server side differs: FakeTWS
plays a scripted scenario on its paused clock and matches orders itself, the FakeEClient
test drives the same events with its ``deliver_*`` helpers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from decimal import Decimal
from typing import Any, Callable, Protocol

import pytest
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel
from ibapi.wrapper import EWrapper

from slob.ib import ticks
from slob.ib.client import ConnectionClosed, IBClient, Subscription
from slob.ib.errors import ContractNotFound
from slob.model import Tick
from slob.orders import OrderUpdate
from slob.testing import DEFAULT_START, FakeEClient, FakeTWS, ScriptedScenario

#: (seconds after the start, price, size): three NQ trades; FakeTWS quotes each as
#: bid = price - 0.25, ask = price, sizes 10 x 10 (ScriptedScenario.from_prices).
TRADES = [(1.0, 21000.0, 2), (2.0, 21000.25, 1), (2.5, 20999.75, 3)]
_CALLBACKS = sorted(n for n, f in vars(EWrapper).items() if callable(f) and not n.startswith("_"))

Call = tuple[str, tuple[Any, ...]]


class Server(Protocol):
    """The TWS side of the script."""

    def trades(self) -> None: ...
    def connectivity_lost(self) -> None: ...
    def take_orders(self) -> None: ...
    def confirm_cancel(self, order_id: int) -> None: ...
    def drop(self) -> None: ...


def normalise(value: Any) -> Any:
    """Comparable values: ibapi objects (no __eq__) become their type name and attributes."""
    if type(value).__module__.startswith("ibapi"):
        return (type(value).__name__, normalise(vars(value)))
    if isinstance(value, dict):
        return tuple(sorted((k, normalise(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(normalise(v) for v in value)
    return value


def tape(client: IBClient) -> list[Call]:
    """Record every EWrapper callback IB's Decoder makes on ``client`` (it looks each one
    up on the instance), then let it through."""
    calls: list[Call] = []
    lock = threading.Lock()
    for name in _CALLBACKS:
        original = getattr(client, name)

        def recorded(*args: Any, _name: str = name, _original: Callable[..., Any] = original) -> Any:
            with lock:
                calls.append((_name, normalise(args)))
            return _original(*args)

        setattr(client, name, recorded)
    return calls


def comparable(record: object) -> object:
    """Records without their local-clock parts (arrival time, wall-clock stamps)."""
    if isinstance(record, ConnectionClosed):
        # EOF or, should the OS reset the aborted socket, a socket error: both mean TWS went away.
        return ("ConnectionClosed", record.by_client)
    if dataclasses.is_dataclass(record) and hasattr(record, "received_ns"):
        return dataclasses.replace(record, received_ns=0)  # type: ignore[type-var]
    if isinstance(record, OrderUpdate):
        return dataclasses.replace(record, at=DEFAULT_START)
    return record


def script(client: IBClient, server: Server) -> None:
    """What the client does; ``server`` makes TWS's side happen at the marked points."""
    def sync() -> None:  # a round trip: everything sent before its answer has been dispatched
        client.request_current_time().result(10)

    assert client.ready.result(10) == 1
    sync()
    query = Contract()
    query.symbol, query.secType, query.exchange, query.currency = "NQ", "FUT", "CME", "USD"
    rows = client.expect(1, "NQ")
    client.reqContractDetails(1, query)
    nq = min(rows.result(10), key=lambda d: d.contract.lastTradeDateOrContractMonth).contract
    ref = ticks.ContractRef("NQ", nq.localSymbol, 0.25, False)
    client.subscribe(Subscription(2, ref, "tick_by_tick"))
    client.reqTickByTickData(2, nq, "AllLast", 0, False)
    client.subscribe(Subscription(3, ref, "tick_by_tick"))
    client.reqTickByTickData(3, nq, "BidAsk", 0, False)
    sync()
    server.trades()
    sync()
    server.connectivity_lost()
    unknown = Contract()
    unknown.symbol, unknown.secType, unknown.exchange = "XYZ", "FUT", "CME"
    missing = client.expect(4, "XYZ")
    client.reqContractDetails(4, unknown)
    with pytest.raises(ContractNotFound):
        missing.result(10)
    resting, market = Order(), Order()
    resting.action, resting.orderType, resting.totalQuantity, resting.lmtPrice = "BUY", "LMT", 1, 20000.0
    market.action, market.orderType, market.totalQuantity, market.orderRef = "SELL", "MKT", 1, "setup-7"
    for order_id, order in ((1, resting), (2, market)):
        client.track_order(order_id)
        client.placeOrder(order_id, nq, order)
    server.take_orders()
    sync()
    client.cancelOrder(1, OrderCancel())
    server.confirm_cancel(1)
    sync()
    server.drop()
    client.closed.result(10)


class OverLoopback:
    def __init__(self, tws: FakeTWS) -> None:
        self.tws = tws

    def trades(self) -> None:
        self.tws.advance(3)
        self.tws.settle()

    def connectivity_lost(self) -> None:
        self.tws.send_error(1100)

    def take_orders(self) -> None:
        pass  # FakeTWS acknowledges both and fills the market order at the last trade

    def confirm_cancel(self, order_id: int) -> None:
        pass  # FakeTWS answers the cancel itself

    def drop(self) -> None:
        self.tws.drop()


class InProcess:
    def __init__(self, fake: FakeEClient) -> None:
        self.fake = fake

    def trades(self) -> None:
        for seconds, price, size in TRADES:
            when = DEFAULT_START + dt.timedelta(seconds=seconds)
            self.fake.deliver_trade(2, price, size, time=when)
            self.fake.deliver_quote(3, price - 0.25, price, 10, 10, time=when)
        self.fake.clock.advance(3)

    def connectivity_lost(self) -> None:
        self.fake.deliver_error(1100)

    def take_orders(self) -> None:
        self.fake.acknowledge(1)
        self.fake.acknowledge(2)
        self.fake.deliver_fill(2, TRADES[-1][1])

    def confirm_cancel(self, order_id: int) -> None:
        self.fake.deliver_cancelled(order_id)

    def drop(self) -> None:
        self.fake.drop_connection()


Run = tuple[list[tuple[str, dict[str, str], tuple[str, ...]]], list[Call], list[object]]


def over_loopback() -> Run:
    records: list[object] = []
    scenario = ScriptedScenario.from_prices(DEFAULT_START, TRADES)
    with FakeTWS(speed=0, scenarios={"NQ": scenario}) as tws:
        client = IBClient(records.append)
        calls = tape(client)
        client.connect("127.0.0.1", tws.port, 1)
        try:
            script(client, OverLoopback(tws))
        finally:
            client.disconnect()
        requests = [(r.name, dict(r.fields), r.extra) for r in tws.requests]
    return requests, calls, records


def in_process() -> Run:
    fake = FakeEClient()
    calls = tape(fake)
    fake.open(1)
    script(fake, InProcess(fake))
    return [(r.name, dict(r.fields), r.extra) for r in fake.requests], calls, fake.records


def test_fake_tws_over_loopback_and_fake_eclient_give_the_same_session() -> None:
    real_requests, real_calls, real_records = over_loopback()
    fake_requests, fake_calls, fake_records = in_process()

    assert fake_requests == real_requests
    assert [name for name, _ in fake_calls] == [name for name, _ in real_calls]
    assert fake_calls == real_calls
    assert [comparable(r) for r in fake_records] == [comparable(r) for r in real_records]

    # ... and the script did exercise what it claims to.
    names = {name for name, _ in real_calls}
    assert {"contractDetails", "contractDetailsEnd", "tickByTickAllLast", "tickByTickBidAsk", "error",
            "openOrder", "orderStatus", "execDetails", "commissionAndFeesReport", "currentTime"} <= names
    ticks_seen = [r for r in real_records if type(r) is Tick]
    assert [(t.price, t.size, t.timestamp) for t in ticks_seen] == [
        (price, Decimal(size), DEFAULT_START + dt.timedelta(seconds=int(s))) for s, price, size in TRADES]
    codes = [args[2] for name, args in real_calls if name == "error"]
    assert 1100 in codes and 200 in codes and 202 in codes
    assert isinstance(real_records[-1], ConnectionClosed) and isinstance(fake_records[-1], ConnectionClosed)
