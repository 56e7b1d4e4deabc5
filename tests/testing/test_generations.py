"""FakeTWS and FakeEClient at every server version where IB moved a family to protobuf.

At each version (200, the text generation's last; 201, 203..208, 213 and 226) IB's own
client (10.50) talks to a FakeTWS offering exactly that version over loopback: every
request arrives in the encoding IB's client chose for it (``client_sends_protobuf``),
every answer in the encoding the table gives (``sends_protobuf``), and the whole round
(contract details, market data, tick-by-tick, a bracket whose entry fills, executions,
positions) completes with no protocol error. FakeEClient does the same in process.
"""

from __future__ import annotations

import argparse
import math
import threading
from typing import Iterator

import pytest
from ibapi.execution import ExecutionFilter
from ibapi.message import IN, OUT
from ibapi.order import Order
from support.ib_app import RecordingApp, future

from slob.ib import ticks, wire
from slob.ib.client import Subscription
from slob.testing import FakeEClient, FakeTWS
from slob.testing.tws_versions import client_sends_protobuf, generation, sends_protobuf
from slob.trace.events import SERVER, Kind, TraceEvent
from slob.trace.proxy import BackgroundProxy

#: Each version is a parameter of its own here (tests/conftest.py: tws_generation).
TWS_SERVER_VERSIONS = (226,)
VERSIONS = [200, 201, 202, 203, 204, 205, 206, 207, 208, 212, 213, 226]


def order(action: str, kind: str, *, parent: int = 0, price: float = 0.0, transmit: bool = True) -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity, o.transmit, o.parentId = action, kind, 1, transmit, parent
    if kind == "LMT":
        o.lmtPrice = price
    if kind == "STP":
        o.auxPrice = price
    return o


class Session:
    """IB's client on a FakeTWS at one version, through slob trace's proxy (which sees
    every frame, for the encodings)."""

    def __init__(self, tws: FakeTWS) -> None:
        self.tws = tws
        self.events: list[TraceEvent] = []
        self.closed = threading.Event()
        self.app = RecordingApp()

    def record(self, event: TraceEvent) -> None:
        self.events.append(event)
        if event.kind == Kind.CLOSE:
            self.closed.set()

    def finish(self) -> list[TraceEvent]:
        """Stop the client; every frame's event is in once the proxy saw the close."""
        self.app.stop()
        assert self.closed.wait(10)
        return self.events


@pytest.fixture(params=VERSIONS, ids=[f"at{v}" for v in VERSIONS])
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    with FakeTWS(speed=math.inf, server_version=request.param) as tws:
        s = Session(tws)
        with BackgroundProxy(upstream=("127.0.0.1", tws.port), on_event=s.record) as proxy:
            s.app.start(proxy.port)
            try:
                yield s
            finally:
                s.app.stop()


def test_ibs_client_does_a_whole_round_at_each_version(session: Session) -> None:
    tws, app = session.tws, session.app
    sv = tws.server_version
    assert app.serverVersion() == sv
    app.reqContractDetails(1, future("NQ"))
    app.wait_for("contractDetailsEnd")
    front = min((a[1].contract for a in app.named("contractDetails")),
                key=lambda c: c.lastTradeDateOrContractMonth)
    app.reqMktData(2, front, "", False, False, [])
    app.wait_for("tickPrice", where=lambda a: a[0] == 2 and a[1] == 4)
    app.cancelMktData(2)
    app.reqTickByTickData(3, front, "AllLast", 0, False)
    app.wait_for("tickByTickAllLast", 3)
    app.cancelTickByTickData(3)
    parent = app.named("nextValidId")[0][0]
    app.placeOrder(parent, front, order("BUY", "MKT", transmit=False))
    app.placeOrder(parent + 1, front, order("SELL", "LMT", parent=parent, price=99_000.0, transmit=False))
    app.placeOrder(parent + 2, front, order("SELL", "STP", parent=parent, price=1_000.0))
    app.wait_for("orderStatus", where=lambda a: a[:2] == (parent, "Filled"))
    app.wait_for("commissionAndFeesReport")
    app.reqExecutions(4, ExecutionFilter())
    app.wait_for("execDetailsEnd")
    app.reqPositions()
    app.wait_for("positionEnd")
    assert [a[2].side for a in app.named("execDetails") if a[0] == 4] == ["BOT"]
    assert [(a[1].localSymbol, a[2]) for a in app.named("position")] == [(front.localSymbol, 1)]
    app.reqCurrentTime()
    app.wait_for("currentTime")
    assert tws.protocol_errors == [] and app.errors() == []
    events = session.finish()

    # every request as IB's client encodes it at this version, decoded alike
    for r in tws.requests:
        assert r.encoding == ("protobuf" if client_sends_protobuf(r.msg_id, sv) else "text"), (r.name, sv)
    placed = [r for r in tws.requests if r.msg_id == OUT.PLACE_ORDER]
    assert [(r.int("orderId"), r["orderType"], r.get("transmit")) for r in placed] == [
        (parent, "MKT", "0"), (parent + 1, "LMT", "0"), (parent + 2, "STP", "1")]
    # every answer in the encoding the table gives it
    seen: dict[int, str] = {}
    for e in events:
        if e.direction == SERVER and e.kind == Kind.MESSAGE:
            assert e.server_version == sv
            message = wire.decode_message(e.payload, sv)
            got = "protobuf" if message.is_protobuf else "text"
            want = "protobuf" if sends_protobuf(message.msg_id, sv) else "text"
            assert got == want, (message.msg_id, sv)
            seen[message.msg_id] = got
    assert {IN.CONTRACT_DATA, IN.TICK_PRICE, IN.TICK_BY_TICK, IN.OPEN_ORDER, IN.ORDER_STATUS, IN.EXECUTION_DATA,
            IN.COMMISSION_AND_FEES_REPORT, IN.POSITION_DATA, IN.NEXT_VALID_ID, IN.CURRENT_TIME} <= set(seen)
    if generation(sv) == "text":
        assert set(seen.values()) == {"text"}


@pytest.mark.parametrize("sv", VERSIONS)
def test_fake_eclient_decodes_requests_and_answers_at_each_version(sv: int) -> None:
    fake = FakeEClient(server_version=sv).open()
    assert fake.ready.result(0) == 1
    contract = future("NQ")
    got = fake.expect(1, "NQ")
    fake.reqContractDetails(1, contract)
    front = min((d.contract for d in got.result(0)), key=lambda c: c.lastTradeDateOrContractMonth)
    fake.subscribe(Subscription(7, ticks.ContractRef("NQ", front.localSymbol, 0.25, False), "tick_by_tick"))
    fake.reqTickByTickData(7, front, "AllLast", 0, False)
    fake.deliver_trade(7, 21000.25, size=2)
    fake.placeOrder(5, front, order("BUY", "MKT"))
    fake.acknowledge(5)
    fake.deliver_fill(5, 21000.0)
    assert [(t.price, t.size) for t in fake.ticks] == [(21000.25, 2)]
    for r in fake.requests:
        assert r.encoding == ("protobuf" if client_sends_protobuf(r.msg_id, sv) else "text"), (r.name, sv)
    assert fake.last("PLACE_ORDER")["orderType"] == "MKT"
    assert fake.last("REQ_TICK_BY_TICK_DATA")["tickType"] == "AllLast"
    assert fake.decode_errors == 0


def test_slob_sim_takes_any_server_version_the_fake_speaks(capsys: pytest.CaptureFixture[str]) -> None:
    from slob.cli import main
    from slob.commands import sim

    assert [sim.server_version(v) for v in ("100", "200", "201", "226")] == [100, 200, 201, 226]
    for bad in ("99", "227", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="100 to 226"):
            sim.server_version(bad)
    with pytest.raises(SystemExit):
        main(["sim", "--server-version", "227"])
    assert "100 to 226" in capsys.readouterr().err
    p = argparse.ArgumentParser()
    sim.add_arguments(p)
    tws, _ = sim.build(p.parse_args(["--port", "0", "--server-version", "206"]))
    assert tws.server_version == 206
