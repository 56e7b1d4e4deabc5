"""describe(): one event -> one line, named fields for the common messages, IB's names,
error meanings from slob's table, protobuf frames of the real captures decoded."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ibapi.message import IN, OUT

from slob.ib import wire
from slob.testing import tws_messages as msg
from slob.trace.captures import load_capture
from slob.trace.describe import describe
from slob.trace.events import CLIENT, SERVER, Kind, TraceEvent, Tracer

CAPTURES = sorted((Path(__file__).resolve().parents[1] / "data" / "captures").glob("*.jsonl"))
T = 1_700_000_000.25  # 22:13:20.250000 UTC


def message(direction: str, frame: bytes, sv: int = 200) -> TraceEvent:
    return TraceEvent(T, 1, direction, Kind.MESSAGE, frame[4:], sv)


fields = st.lists(st.text(st.characters(min_codepoint=1, max_codepoint=0x7E), max_size=12), max_size=12)


@given(msg_id=st.integers(0, 200), values=fields, sv=st.sampled_from([100, 176, 200, 201, 206, 213, 225]),
       direction=st.sampled_from([CLIENT, SERVER]))
def test_any_valid_text_frame_gives_one_line_with_its_name(msg_id: int, values: list[str], sv: int,
                                                           direction: str) -> None:
    line = describe(message(direction, wire.encode_message(msg_id, values, sv), sv))
    assert "\n" not in line.text and line.text.startswith("22:13:20.250000 1 " + direction + " ")
    names = OUT if direction == CLIENT else IN
    known = {int(m): m.name for m in names}
    assert line.name == known.get(msg_id, f"UNKNOWN_{msg_id}")


@given(payload=st.binary(max_size=64), sv=st.sampled_from([0, 150, 200, 201, 225]),
       kind=st.sampled_from(Kind.ALL), direction=st.sampled_from([CLIENT, SERVER, "="]))
def test_any_bytes_in_any_event_never_raise(payload: bytes, sv: int, kind: str, direction: str) -> None:
    line = describe(TraceEvent(T, 3, direction, kind, payload, sv, "note"))
    assert "\n" not in line.text and line.text.startswith("22:13:20.250000 3 ")


@given(msg_id=st.sampled_from([60, 70, 150]), values=st.lists(st.sampled_from(["a", "1", "", "x y"]), max_size=5))
def test_messages_without_a_layout_show_every_raw_field(msg_id: int, values: list[str]) -> None:
    line = describe(message(SERVER, wire.encode_message(msg_id, values, 200)))
    assert line.text.endswith(" fields=" + "|".join(values))


def test_error_lines_name_the_code_and_its_meaning_from_slobs_table() -> None:
    line = describe(message(SERVER, msg.error(7, 354, "Requested market data is not subscribed.", 200)))
    assert line.name == "ERR_MSG" and line.req_id == 7
    assert 'code=354 msg="Requested market data is not subscribed."' in line.text
    assert "meaning=" in line.text and "subscription" in line.text.split("meaning=")[1].lower()
    old = describe(message(SERVER, msg.error(-1, 2104, "Market data farm connection is OK:usfarm", 176), 176))
    assert old.req_id == -1 and "code=2104" in old.text and 'meaning="farm, info' in old.text


def test_common_messages_have_named_fields() -> None:
    price = describe(message(SERVER, msg.tick_price(5, 4, 21012.25, 3, 0, 200)))
    assert price.text.endswith("TICK_PRICE id=5 tickType=4 price=21012.25 size=3 attrMask=0")
    tbt = describe(message(SERVER, msg.tbt_last(9, True, 1733151600, 21000.5, 2, 0, "CME", "", 200)))
    assert tbt.text.endswith("TICK_BY_TICK id=9 tickType=2 time=1733151600 price=21000.5 size=2 attrMask=0 exchange=CME")
    nvi = describe(message(SERVER, msg.next_valid_id(117, 176), 176))
    assert nvi.text.endswith("NEXT_VALID_ID id=117")
    start = describe(message(CLIENT, wire.encode_message(OUT.START_API, [2, 7, ""], 200)))
    assert start.text.endswith("START_API clientId=7")
    req = describe(message(CLIENT, wire.encode_message(OUT.REQ_TICK_BY_TICK_DATA, [
        3, 0, "NQ", "FUT", "202412", 0.0, "", "", "CME", "", "USD", "", "", "AllLast", 0, 0], 200)))
    assert req.req_id == 3 and "symbol=NQ" in req.text and "tickType=AllLast" in req.text


def test_handshake_lines() -> None:
    tracer = Tracer()
    hello = tracer.frame(1, CLIENT, wire.ClientHello(100, 226, "+PACEAPI").payload(), T)
    greeting = tracer.frame(1, SERVER, wire.ServerHello(200, "20241202 10:00:00 EST").encode()[4:], T)
    assert describe(hello).text.endswith("> HELLO minVersion=100 maxVersion=226 options=+PACEAPI")
    assert describe(greeting).text.endswith('< GREETING serverVersion=200 connectionTime="20241202 10:00:00 EST"')
    assert tracer.frame(1, SERVER, b"x", T).server_version == 200


@pytest.mark.parametrize("path", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_every_frame_of_the_real_captures_decodes(path: Path) -> None:
    capture = load_capture(path)
    for frame in capture.frames:
        direction = CLIENT if frame.direction == "client" else SERVER
        line = describe(TraceEvent(T, frame.leg, direction, Kind.MESSAGE, frame.payload,
                                   capture.server_version_of(frame)))
        assert not line.name.startswith(("UNKNOWN", "UNDECOD")), line.text
        assert " protobuf(" not in line.text, f"protobuf body not decoded: {line.text}"
        if frame.encoding == "protobuf" and frame.msg_id == IN.ERR_MSG and direction == SERVER:
            assert "errorCode=" in line.text and "meaning=" in line.text
