"""FakeEClient: IBClient with TWS in process -- requests recorded decoded, answers as
real frames through IB's Decoder, the same end-of-connection path as a socket."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import threading

import pytest
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel
from support.recorder import Recorder

from slob.config.ib_config import IBConfig
from slob.ib import ticks, wire
from slob.ib.client import ConnectionClosed, Subscription
from slob.ib.errors import ConnectionLost, ContractNotFound, MarketDataNotSubscribed, Severity, TWSNotRunning
from slob.live import IBWSFetcher
from slob.model import ConnectionRestored, Quote
from slob.orders import CommissionReported, Execution, OpenOrder, OrderError, OrderUpdate
from slob.testing import DEFAULT_START, FakeConnector, FakeEClient


def nq_query() -> Contract:
    q = Contract()
    q.symbol, q.secType, q.exchange, q.currency = "NQ", "FUT", "CME", "USD"
    return q


def front(fake: FakeEClient, req_id: int = 1) -> Contract:
    future = fake.expect(req_id, "NQ")
    fake.reqContractDetails(req_id, nq_query())
    rows = future.result(0)
    return min(rows, key=lambda d: d.contract.lastTradeDateOrContractMonth).contract


def subscribed(fake: FakeEClient, req_id: int = 7, kind: str = "tick_by_tick") -> Contract:
    contract = front(fake)
    sub = Subscription(req_id, ticks.ContractRef("NQ", contract.localSymbol, 0.25, False), kind)
    if kind == "market_data":
        sub.merger = ticks.LastTradeMerger(sub.ref, "CME")
        fake.subscribe(sub)
        fake.reqMktData(req_id, contract, "", False, False, [])
    else:
        fake.subscribe(sub)
        fake.reqTickByTickData(req_id, contract, "AllLast", 0, False)
    return contract


def order(action: str, order_type: str, qty: int = 1, *, lmt: float | None = None, aux: float | None = None,
          parent: int = 0, transmit: bool = True, ref: str = "") -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity, o.parentId, o.transmit, o.orderRef = (
        action, order_type, qty, parent, transmit, ref)
    if lmt is not None:
        o.lmtPrice = lmt
    if aux is not None:
        o.auxPrice = aux
    return o


# -- the session ----------------------------------------------------------------------


def test_open_answers_start_api_like_tws_without_socket_or_thread() -> None:
    threads = set(threading.enumerate())
    fake = FakeEClient(accounts=["DU7654321"], next_order_id=42).open(client_id=9)
    assert fake.ready.result(0) == 42 and fake.accounts == ["DU7654321"]
    assert fake.isConnected() and fake.serverVersion() == fake.server_version
    start = fake.last("START_API")
    assert start.int("clientId") == 9 and start.client_id is None  # as FakeTWS records it
    assert [(m.code, m.severity) for m in fake.messages()] == [
        (2104, Severity.INFO), (2106, Severity.INFO), (2158, Severity.INFO)]
    assert "usfarm" in fake.messages(2104)[0].text
    assert set(threading.enumerate()) == threads
    with pytest.raises(RuntimeError, match="single-use"):
        fake.open()


def test_connect_is_open_for_code_that_calls_ibs_connect() -> None:
    fake = FakeEClient(farm_notices=False)
    fake.connect("127.0.0.1", 7497, 3)
    assert fake.clientId == 3 and fake.ready.done() and fake.messages() == []


def test_requests_are_recorded_decoded_and_searchable() -> None:
    fake = FakeEClient().open()
    contract = front(fake)
    fake.reqMktData(11, contract, "233", False, False, [])
    fake.reqTickByTickData(12, contract, "BidAsk", 0, True)
    fake.placeOrder(5, contract, order("SELL", "STP", 2, aux=20990.5, ref="setup-1"))
    fake.cancelOrder(5, OrderCancel())
    fake.cancelTickByTickData(12)
    assert [r.name for r in fake.requests] == [
        "START_API", "REQ_CONTRACT_DATA", "REQ_MKT_DATA", "REQ_TICK_BY_TICK_DATA", "PLACE_ORDER",
        "CANCEL_ORDER", "CANCEL_TICK_BY_TICK_DATA"]
    assert all(r.client_id == 1 for r in fake.requests[1:])
    assert fake.last("REQ_CONTRACT_DATA")["symbol"] == "NQ"
    md = fake.last("REQ_MKT_DATA")
    assert (md.int("reqId"), md["localSymbol"], md["genericTickList"]) == (11, "NQZ4", "233")
    tbt = fake.last("REQ_TICK_BY_TICK_DATA")
    assert (tbt["tickType"], tbt["ignoreSize"], tbt.int("conId")) == ("BidAsk", "1", contract.conId)
    placed = fake.last("PLACE_ORDER")
    assert (placed.int("orderId"), placed["action"], placed["orderType"], placed["auxPrice"],
            placed["orderRef"], placed["totalQuantity"]) == (5, "SELL", "STP", "20990.5", "setup-1", "2")
    assert fake.last("CANCEL_ORDER").int("orderId") == 5
    assert fake.requests_named("CANCEL_TICK_BY_TICK_DATA")[0].int("reqId") == 12
    if placed.protobuf is None:
        assert placed.raw[0] == b"5"  # the raw fields are kept too
    else:  # and the parsed message of a protobuf request (sv >= 203 for orders)
        assert placed.protobuf.orderId == 5 and placed.protobuf.order.auxPrice == 20990.5
    with pytest.raises(LookupError, match="no REQ_POSITIONS was sent; sent: .*START_API"):
        fake.last("REQ_POSITIONS")


def test_contract_details_answered_unsorted_reproducibly_and_200_for_unknown() -> None:
    a, b = FakeEClient().open(), FakeEClient().open()
    rows_a = [d.contract.localSymbol for d in _details(a, 1, nq_query())]
    assert sorted(rows_a) == ["NQH5", "NQM5", "NQU5", "NQZ4", "NQZ5"]
    assert rows_a == [d.contract.localSymbol for d in _details(b, 1, nq_query())]
    assert rows_a != sorted(rows_a)  # a gateway lists expiries in no particular order
    details = _details(a, 2, nq_query())[0]
    assert details.minTick == 0.25 and details.contract.multiplier == "20" and details.timeZoneId == "US/Central"
    unknown = Contract()
    unknown.symbol, unknown.secType, unknown.exchange = "XYZ", "FUT", "CME"
    future = a.expect(3, "XYZ")
    a.reqContractDetails(3, unknown)
    with pytest.raises(ContractNotFound):
        future.result(0)


def _details(fake: FakeEClient, req_id: int, query: Contract) -> list:  # type: ignore[type-arg]
    future = fake.expect(req_id, query.symbol)
    fake.reqContractDetails(req_id, query)
    return list(future.result(0))


def test_without_auto_answer_the_test_delivers_everything() -> None:
    fake = FakeEClient(auto_answer=False).open()
    assert not fake.ready.done()
    fake.deliver(b"".join([_frame("managed_accounts", fake), _frame("next_valid_id", fake)]))
    assert fake.ready.result(0) == 1
    future = fake.expect(4, "NQ")
    fake.reqContractDetails(4, nq_query())
    assert not future.done()
    fake.deliver_contract_details(4, "NQ")
    assert sorted(d.contract.localSymbol for d in future.result(0))[:1] == ["NQH5"]


def _frame(kind: str, fake: FakeEClient) -> bytes:
    from slob.testing import tws_messages as msg
    sv = fake.server_version
    return msg.managed_accounts(["DU1"], sv) if kind == "managed_accounts" else msg.next_valid_id(1, sv)


# -- market data ----------------------------------------------------------------------


@pytest.mark.parametrize("server_version", [150, 176, 200])
def test_trades_and_quotes_become_ticks_at_any_text_server_version(server_version: int) -> None:
    fake = FakeEClient(server_version=server_version).open()
    subscribed(fake)
    when = DEFAULT_START + dt.timedelta(seconds=5)
    fake.deliver_trade(7, 21000.25, 3, time=when)
    fake.deliver_quote(7, 21000.0, 21000.25, 4, 6, time=when)
    fake.deliver_trade(7, 21000.3, 1)  # off the 0.25 grid: rejected, counted
    tick = fake.ticks[0]
    assert (tick.symbol, tick.contract, tick.price, tick.size, tick.timestamp, tick.exchange) == (
        "NQ", "NQZ4", 21000.25, 3, when, "CME")
    quotes = [r for r in fake.records if type(r) is Quote]
    assert [(q.bid, q.ask, q.bid_size, q.ask_size) for q in quotes] == [(21000.0, 21000.25, 4, 6)]
    assert len(fake.ticks) == 1 and sum(fake.rejected.values()) == 1
    assert fake.subscriptions[7].status.result(0) is None  # the first trade accepted the request


def test_tick_by_tick_request_gets_the_futures_farm_notices_once() -> None:
    fake = FakeEClient().open()
    contract = subscribed(fake)
    fake.reqTickByTickData(8, contract, "BidAsk", 0, False)
    assert [m.code for m in fake.messages()][3:] == [2119, 2104]


def test_market_data_request_is_answered_and_last_fields_merge_into_a_tick() -> None:
    fake = FakeEClient().open()
    subscribed(fake, 9, "market_data")
    assert fake.subscriptions[9].status.result(0) is None  # MARKET_DATA_TYPE 1 accepted it
    when = DEFAULT_START + dt.timedelta(seconds=2)
    fake.deliver_tick_price(9, 4, 21001.0, 2)
    fake.deliver_tick_size(9, 5, 2)
    fake.deliver_tick_string(9, 45, str(int(when.timestamp())))
    assert [(t.price, t.size, t.timestamp) for t in fake.ticks] == [(21001.0, 2, when)]


def test_errors_reach_the_request_they_name() -> None:
    fake = FakeEClient().open()
    subscribed(fake)
    fake.deliver_error(354, 7, description="NQ DEC'24 (NQZ4)")
    with pytest.raises(MarketDataNotSubscribed):
        fake.subscriptions[7].status.result(0)
    text = fake.messages(354)[0].text
    assert text.startswith("Requested market data is not subscribed") and "NQ DEC'24 (NQZ4)" in text
    assert fake.messages(354)[0].time == DEFAULT_START  # stamped by the simulated clock
    fake.connectivity_lost()
    fake.connectivity_restored(data_maintained=False)
    assert [m.code for m in fake.messages()][-4:] == [2103, 1100, 2104, 1101]


def test_an_unreadable_frame_goes_the_production_way() -> None:
    fake = FakeEClient(server_version=200).open()
    fake.deliver(wire.frame(b"1\x006\x00notanumber\x00"))  # TICK_PRICE with a bad req id
    assert fake.decode_errors == 1 and "could not be decoded" in fake.messages(0)[0].text
    with pytest.raises(ValueError, match="complete frame"):
        fake.deliver(wire.frame(b"1\x00")[:-1])


# -- orders -----------------------------------------------------------------------------


def test_an_order_acknowledged_filled_and_listed() -> None:
    fake = FakeEClient().open()
    contract = front(fake)
    fake.track_order(1)
    fake.placeOrder(1, contract, order("BUY", "LMT", 2, lmt=20990.0, ref="s1"))
    assert fake.records[-1:] != [] and not any(isinstance(r, OpenOrder) for r in fake.records)  # no auto-ack
    fake.acknowledge(1)
    fill_time = DEFAULT_START + dt.timedelta(minutes=1)
    execution = fake.deliver_fill(1, 20990.0, time=fill_time)
    kinds = [type(r).__name__ for r in fake.records if type(r) in (OpenOrder, OrderUpdate, Execution,
                                                                   CommissionReported)]
    assert kinds == ["OpenOrder", "OrderUpdate", "Execution", "OpenOrder", "OrderUpdate", "OpenOrder",
                     "OrderUpdate", "CommissionReported"]
    statuses = [r.status for r in fake.records if type(r) is OrderUpdate]
    assert statuses == ["Submitted", "Filled", "Filled"]
    executed = next(r for r in fake.records if type(r) is Execution)
    assert (executed.order_id, executed.side, executed.shares, executed.price, executed.time, executed.order_ref) == (
        1, "BOT", 2, 20990.0, fill_time, "s1")
    commission = next(r for r in fake.records if type(r) is CommissionReported)
    assert commission.exec_id == execution.exec_id and commission.commission == 4.5
    listed = fake.request_executions(30).result(0)
    assert [e.exec_id for e in listed] == [execution.exec_id]
    assert fake.request_open_orders().result(0) == []  # filled: no longer open
    assert fake.request_positions().result(0) == []


def test_bracket_children_wait_for_their_parent_and_cancels_confirm() -> None:
    fake = FakeEClient().open()
    contract = front(fake)
    for oid in (10, 11, 12):
        fake.track_order(oid)
    fake.placeOrder(10, contract, order("BUY", "LMT", lmt=20990.0, transmit=False))
    fake.placeOrder(11, contract, order("SELL", "LMT", lmt=21010.0, parent=10, transmit=False))
    fake.placeOrder(12, contract, order("SELL", "STP", aux=20980.0, parent=10))
    for oid in (10, 11, 12):
        fake.acknowledge(oid)
    held = {r.order_id: (r.status, r.why_held) for r in fake.records if type(r) is OrderUpdate}
    assert held == {10: ("Submitted", ""), 11: ("PreSubmitted", "child"), 12: ("PreSubmitted", "child,trigger")}
    assert fake.orders[11].oca_group == fake.orders[12].oca_group == str(fake.orders[10].perm_id)
    assert [o.order_id for o in fake.request_open_orders().result(0)] == [10, 11, 12]
    fake.deliver_cancelled(12)
    update, error = fake.records[-2:]
    assert isinstance(update, OrderUpdate) and (update.order_id, update.status) == (12, "Cancelled")
    assert isinstance(error, OrderError) and (error.order_id, error.code) == (12, 202)
    fake.reqIds(1)
    assert fake.ready.result(0) == 1 and fake.order_id_to_report == 13


# -- the end of a connection ---------------------------------------------------------------


def test_drop_connection_ends_the_session_the_socket_way() -> None:
    fake = FakeEClient().open()
    pending = fake.expect(77, "NQ")  # an unanswered request
    waiting = fake.request_current_time()
    assert waiting.done()  # answered at once
    fake.drop_connection()
    closed = fake.closed.result(0)
    assert closed == ConnectionClosed("TWS closed the connection", None, False)
    assert fake.records[-1] == closed and not fake.isConnected()
    with pytest.raises(ConnectionLost):
        pending.result(0)
    with pytest.raises(RuntimeError, match="closed"):
        fake.deliver_trade(7, 21000.0)


def test_disconnect_is_by_client_and_later_requests_are_refused_by_ibapi() -> None:
    fake = FakeEClient().open()
    fake.disconnect()
    assert fake.closed.result(0).by_client and fake.closed.result(0).cause == "disconnected by this client"
    count = len(fake.requests)
    fake.reqCurrentTime()  # IB's EClient checks isConnected() and reports NOT_CONNECTED
    assert len(fake.requests) == count


def test_unopened_fake_refuses_deliveries_and_bad_versions() -> None:
    with pytest.raises(RuntimeError, match="open"):
        FakeEClient().deliver_trade(1, 1.0)
    with pytest.raises(ValueError, match="100..226"):
        FakeEClient(server_version=227)
    with pytest.raises(ValueError, match="100..226"):
        FakeEClient(server_version=99)


# -- with IBWSFetcher and its asyncio bridge ------------------------------------------------


@pytest.mark.asyncio
async def test_fetcher_streams_recovers_and_disconnects_in_process() -> None:
    threads = set(threading.enumerate())
    connector = FakeConnector()
    config = IBConfig(client_id=4, reconnect_delay_seconds=0.0, max_reconnect_delay_seconds=0.0)
    fetcher = IBWSFetcher(config=config, client_factory=connector, subscribe_confirm_seconds=0.0)
    rec = Recorder(timeout=10.0)
    fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
    await fetcher.connect()
    assert fetcher.is_connected() and connector.client.clientId == 4
    await fetcher.subscribe(["NQ"])
    listening = asyncio.create_task(fetcher.listen())
    first = connector.client
    req_id = first.last("REQ_TICK_BY_TICK_DATA").int("reqId")
    first.deliver_trade(req_id, 21000.25, 2)
    await rec.until(lambda: len(rec.ticks) == 1)
    assert (rec.ticks[0].symbol, rec.ticks[0].contract) == ("NQ", "NQZ4")

    first.drop_connection()
    await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
    second = connector.client
    assert second is not first and fetcher.reconnects == 1
    again = second.last("REQ_TICK_BY_TICK_DATA").int("reqId")
    second.clock.advance(1)
    second.deliver_trade(again, 21000.5, 1)
    await rec.until(lambda: len(rec.ticks) == 2)
    assert fetcher.get_stats()["gaps"] == 1

    await fetcher.disconnect()
    await asyncio.wait_for(listening, 5)
    assert not second.isConnected() and second.last("CANCEL_TICK_BY_TICK_DATA").int("reqId") == again
    assert rec.errors == [] and set(threading.enumerate()) == threads


@pytest.mark.asyncio
async def test_connector_refusals_look_like_tws_down() -> None:
    connector = FakeConnector()
    connector.refuse(1)
    fetcher = IBWSFetcher(config=IBConfig(port=4002), client_factory=connector)
    with pytest.raises(TWSNotRunning, match="127.0.0.1:4002"):
        await fetcher.connect()
    await fetcher.connect()
    assert connector.attempts == 2 and fetcher.is_connected()
    await fetcher.disconnect()


def test_results_are_plain_futures() -> None:
    fake = FakeEClient().open()
    assert isinstance(fake.request_current_time(), concurrent.futures.Future)
    assert fake.request_current_time().result(0) == int(DEFAULT_START.timestamp())
    fake.clock.advance(90)
    assert fake.request_current_time().result(0) == int(DEFAULT_START.timestamp()) + 90


def test_slob_testing_public_names_are_pinned_and_resolve() -> None:
    import slob.testing

    assert slob.testing.__all__ == [
        "DEFAULT_START", "ClientInfo", "Connection", "FakeAlpaca", "FakeConnector", "FakeEClient", "FakeTWS",
        "FaultProxy", "FiredFault", "RandomWalkScenario", "RequestFault", "ScriptedScenario", "SentTick", "SimClock",
        "Trade"]
    assert all(getattr(slob.testing, name) is not None for name in slob.testing.__all__)
    with pytest.raises(AttributeError):
        slob.testing.NoSuchThing  # noqa: B018
