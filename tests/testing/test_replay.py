"""ReplayTWS: real captures replayed to IB's own client, and a session recorded through
the trace proxy replayed to the same client script with identical callbacks."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ibapi.client import EClient
from ibapi.wrapper import EWrapper
from support.ib_app import RecordingApp, future

from slob.ib import wire
from slob.testing import FakeTWS
from slob.testing.replay import ReplayTWS
from slob.trace.events import SERVER
from slob.trace.proxy import BackgroundProxy
from slob.trace.recording import Leg, Recorder, load_recording

CAPTURES = sorted((Path(__file__).resolve().parents[1] / "data" / "captures").glob("*.jsonl"))


class CountingClient(EWrapper, EClient):  # type: ignore[misc]
    """IB's client that notes the id of every message its decoder handles."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.decoded: list[int] = []
        self.client_errors: list[tuple[int, str]] = []
        self.changed = threading.Condition()
        self.runner: threading.Thread | None = None

    def start(self, port: int) -> "CountingClient":
        self.connect("127.0.0.1", port, 1)
        assert self.isConnected(), "handshake with ReplayTWS failed"
        interpret, protobuf = self.decoder.interpret, self.decoder.processProtoBuf

        def counted_interpret(fields: Any, msg_id: int) -> Any:
            result = interpret(fields, msg_id)
            self._note(msg_id)
            return result

        def counted_protobuf(body: Any, msg_id: int) -> Any:
            result = protobuf(body, msg_id)
            self._note(msg_id)
            return result

        self.decoder.interpret, self.decoder.processProtoBuf = counted_interpret, counted_protobuf
        self.runner = threading.Thread(target=self._run, name="ibapi-replay-run", daemon=True)
        self.runner.start()
        return self

    def _run(self) -> None:
        try:
            self.run()
        except TypeError:  # ibapi's own race on disconnect (see support.ib_app)
            pass

    def _note(self, msg_id: int) -> None:
        with self.changed:
            self.decoded.append(msg_id)
            self.changed.notify_all()

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str,
              advancedOrderRejectJson: str = "") -> None:
        if 500 <= errorCode < 600:  # ibapi's own client-side codes: decode failures etc.
            self.client_errors.append((errorCode, errorString))

    def wait_decoded(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.decoded) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"decoded {len(self.decoded)} of {count} messages")
                self.changed.wait(left)

    def stop(self) -> None:
        self.disconnect()
        if self.runner is not None:
            self.runner.join(5)
            assert not self.runner.is_alive()


def _replay_leg(tws: ReplayTWS, leg: Leg) -> None:
    expected = [wire.decode_message(f.payload, leg.server_version).msg_id
                for f in leg.frames if f.direction == SERVER]
    app = CountingClient().start(tws.port)
    try:
        for frame in leg.frames:
            if frame.direction != SERVER:
                app.conn.sendMsg(wire.frame(frame.payload))
        app.wait_decoded(len(expected))
        assert app.decoded == expected
        assert app.client_errors == []
    finally:
        app.stop()


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_each_real_capture_replays_to_ibapi_frame_for_frame(path: Path) -> None:
    """Every server frame after the handshake reaches IB's decoder, in the recorded order,
    for the capture's own request sequence; every leg of a multi-leg capture in turn."""
    recording = load_recording(path)
    with ReplayTWS(recording) as tws:
        for leg in recording.legs:
            _replay_leg(tws, leg)
        assert tws.unmatched == []


def script(port: int, base: int = 0, order_id: int | None = None) -> RecordingApp:
    """A fixed conversation: contract details, current time, a market-data snapshot and a
    resting limit order cancelled again, each answer awaited before the next request."""
    app = RecordingApp().start(port)
    try:
        app.reqContractDetails(base + 7, future("NQ"))
        app.wait_for("contractDetailsEnd")
        app.reqCurrentTime()
        app.wait_for("currentTime")
        app.reqMktData(base + 11, future("NQ", lastTradeDateOrContractMonth="202412"), "", True, False, [])
        app.wait_for("tickSnapshotEnd")
        from ibapi.order import Order
        order = Order()
        order.action, order.orderType, order.totalQuantity, order.lmtPrice = "BUY", "LMT", 1, 100.0
        oid = app.named("nextValidId")[0][0] if order_id is None else order_id
        app.placeOrder(oid, future("NQ", lastTradeDateOrContractMonth="202412"), order)
        app.wait_for("orderStatus", where=lambda a: a[1] in ("Submitted", "PreSubmitted"))
        from ibapi.order_cancel import OrderCancel
        app.cancelOrder(oid, OrderCancel())
        app.wait_for("orderStatus", where=lambda a: a[1] == "Cancelled")
        app.wait_for("error", where=lambda a: a[2] == 202)
    finally:
        app.stop()
    return app


def normalised(app: RecordingApp, base: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for name, args in app.events:
        if name.endswith("ProtoBuf"):
            continue  # ibapi's raw protobuf callbacks: the decoded ones below carry the same
        values = list(args)
        if base and values and isinstance(values[0], int) and values[0] >= base + 7 and name not in (
                "nextValidId", "currentTime", "orderStatus", "openOrder"):
            values[0] -= base
        out.append((name, tuple(str(v) for v in values)))
    return out


def test_a_session_recorded_through_the_proxy_replays_with_identical_callbacks(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with FakeTWS(speed=math.inf) as fake, Recorder(path) as recorder, \
            BackgroundProxy(upstream=("127.0.0.1", fake.port), on_event=recorder.write) as proxy:
        live = script(proxy.port)
    with ReplayTWS(path) as tws:
        again = script(tws.port)
        shifted = script(tws.port, base=100)  # other request ids: rewritten to the client's
        assert tws.unmatched == []
    assert normalised(again) == normalised(live)
    assert normalised(shifted, base=100) == normalised(live)
    assert [a[0] for a in shifted.named("contractDetails")] == [107] * len(live.named("contractDetails"))


def test_a_request_the_recording_cannot_answer_gets_an_error_not_a_crash(tmp_path: Path) -> None:
    capture = next(p for p in CAPTURES if p.stem == "current_time_live_sv206")
    with ReplayTWS(capture) as tws:
        app = RecordingApp().start(tws.port)
        try:
            app.reqCurrentTime()
            app.wait_for("currentTime")
            app.reqContractDetails(42, future("NQ"))
            code = app.wait_error(322)
            assert code[0] == 42 and "no recorded answer left for REQ_CONTRACT_DATA" in code[3]
            app.reqCurrentTime()  # the recorded one was used: nothing left either
            app.wait_for("error", count=2, where=lambda a: a[2] == 322)
        finally:
            app.stop()
        assert tws.unmatched == ["REQ_CONTRACT_DATA", "REQ_CURRENT_TIME"]
