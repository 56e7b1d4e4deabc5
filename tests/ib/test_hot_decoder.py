"""HotDecoder against IB's Decoder: the same wrapper calls with the same arguments.

Differential and property-based: for any valid TICK_BY_TICK / TICK_PRICE / TICK_SIZE /
TICK_STRING message, text or protobuf, at any server version slob supports, the hot
decoder makes exactly the calls IB's Decoder makes. For arbitrary (also invalid) fields it
either does the same or declines without calling anything -- then IB's Decoder runs.
"""

from __future__ import annotations

import math
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibapi.decoder import Decoder
from ibapi.message import IN
from ibapi.protobuf.TickByTickData_pb2 import TickByTickData
from ibapi.protobuf.TickPrice_pb2 import TickPrice
from ibapi.protobuf.TickSize_pb2 import TickSize
from ibapi.protobuf.TickString_pb2 import TickString
from ibapi.server_versions import MAX_CLIENT_VER, MIN_CLIENT_VER
from ibapi.wrapper import EWrapper

from slob.ib import wire
from slob.ib.hot_decoder import HOT_MESSAGE_IDS, HotDecoder
from slob.trace.captures import load_capture

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def _norm(value: Any) -> Any:
    """Arguments as comparable values: attribute objects by their fields, NaN by repr."""
    if isinstance(value, float):
        return ("f", repr(value))
    if isinstance(value, Decimal):
        return ("D", str(value))
    if hasattr(value, "SerializeToString"):
        return ("pb", type(value).__name__, value.SerializeToString(deterministic=True))
    if hasattr(value, "__dict__"):
        return (type(value).__name__, tuple(sorted((k, _norm(v)) for k, v in vars(value).items())))
    return value


class Recorder(EWrapper):  # type: ignore[misc]
    """Records every EWrapper call (name, normalised arguments)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or name == "calls" or not callable(attr) or not hasattr(EWrapper, name):
            return attr
        calls = super().__getattribute__("calls")

        def record(*args: Any) -> None:
            calls.append((name, tuple(_norm(a) for a in args)))
        return record


def ib_calls(payload: bytes, sv: int) -> tuple[list[tuple[str, tuple[Any, ...]]], str | None]:
    """What IB's Decoder does with ``payload``: its calls and the exception it raised."""
    rec = Recorder()
    try:
        message = wire.decode_message(payload, sv)
        decoder = Decoder(rec, sv)
        if message.protobuf is not None:
            decoder.processProtoBuf(message.protobuf, message.msg_id)
        else:
            decoder.interpret(message.fields, message.msg_id)
    except Exception as exc:
        return rec.calls, type(exc).__name__
    return rec.calls, None


def hot_calls(payload: bytes, sv: int) -> tuple[bool, list[tuple[str, tuple[Any, ...]]]]:
    rec = Recorder()
    handled = HotDecoder(rec, sv).decode(payload)
    return handled, rec.calls


def check(payload: bytes, sv: int, *, valid: bool) -> None:
    # Random bytes in a string field meet IB's "unicode-escape" decoding, which warns about
    # invalid escapes (a DeprecationWarning, an error under pytest's filterwarnings): both
    # decoders see the same bytes, so the warning says nothing about either; compare results.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected, raised = ib_calls(payload, sv)
        handled, got = hot_calls(payload, sv)
    if valid:
        assert raised is None, f"the generator made an invalid message: {raised}"
        assert handled, f"hot decoder declined a valid message {payload!r}"
    if handled:
        assert raised is None, f"hot decoder accepted what IB's Decoder rejects ({raised}): {payload!r}"
        assert got == expected
    else:
        assert got == [], "a declined message must not have called the wrapper"


# -- generators -----------------------------------------------------------------------------

server_versions = st.integers(MIN_CLIENT_VER, MAX_CLIENT_VER)
text_versions = st.integers(MIN_CLIENT_VER, wire.MIN_PROTOBUF_SERVER_VERSION - 1)
ints = st.integers(-(2**31), 2**31 - 1)
small_ints = st.integers(0, 255)
prices = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(min_value=-100000, max_value=100000, places=4, allow_nan=False).map(str),
    st.sampled_from(["", "0", "-1", "1.7976931348623157E308", "Infinity", "21000.25"]),
)
sizes = st.one_of(
    st.integers(0, 10**12).map(str),
    st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False).map(str),
    st.sampled_from(["", "2147483647", "9223372036854775807", "1.7976931348623157E308",
                     "-9223372036854775808", "0", "1E+3", "NaN"]),
)
texts = st.text(max_size=12).filter(lambda t: "\x00" not in t)
tick_types_mkt = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 45, 48, 66, 67, 68, 69, 71, 88, 105]), small_ints)


def text_payload(msg_id: int, fields: list[object], sv: int) -> bytes:
    return wire.encode_message(msg_id, fields, sv)[4:]  # the payload, without the length prefix


def proto_payload(msg_id: int, body: bytes) -> bytes:
    return wire.encode_protobuf_message(msg_id, body)[4:]


@st.composite
def tick_by_tick_text(draw: st.DrawFn) -> tuple[bytes, int]:
    sv = draw(server_versions)
    tick_type = draw(st.sampled_from([0, 1, 2, 3, 4, 7]))
    fields: list[object] = [draw(ints), tick_type, draw(st.integers(0, 2**40))]
    if tick_type in (1, 2):
        fields += [draw(prices), draw(sizes), draw(small_ints), draw(texts), draw(texts)]
    elif tick_type == 3:
        fields += [draw(prices), draw(prices), draw(sizes), draw(sizes), draw(small_ints)]
    elif tick_type == 4:
        fields += [draw(prices)]
    fields += draw(st.lists(texts, max_size=2))  # trailing fields are ignored by both
    return text_payload(IN.TICK_BY_TICK, fields, sv), sv


@st.composite
def tick_price_text(draw: st.DrawFn) -> tuple[bytes, int]:
    sv = draw(server_versions)
    fields: list[object] = [6, draw(ints), draw(tick_types_mkt), draw(prices), draw(sizes), draw(small_ints)]
    return text_payload(IN.TICK_PRICE, fields, sv), sv


@st.composite
def tick_size_text(draw: st.DrawFn) -> tuple[bytes, int]:
    sv = draw(server_versions)
    fields: list[object] = [6, draw(ints), draw(tick_types_mkt), draw(sizes)]
    return text_payload(IN.TICK_SIZE, fields, sv), sv


@st.composite
def tick_string_text(draw: st.DrawFn) -> tuple[bytes, int]:
    sv = draw(server_versions)
    value = draw(st.one_of(st.integers(0, 2**40).map(str), texts, st.just("a\\x41b")))
    fields: list[object] = [6, draw(ints), draw(tick_types_mkt), value]
    return text_payload(IN.TICK_STRING, fields, sv), sv


def _maybe(draw: st.DrawFn, proto: Any, name: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        setattr(proto, name, draw(strategy))


proto_sizes = st.one_of(st.integers(0, 10**9).map(str),
                        st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False).map(str))
proto_prices = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def tick_by_tick_proto(draw: st.DrawFn) -> tuple[bytes, int]:
    sv = draw(st.integers(wire.MIN_PROTOBUF_SERVER_VERSION, MAX_CLIENT_VER))
    p = TickByTickData()
    _maybe(draw, p, "reqId", st.integers(-(2**31), 2**31 - 1))
    _maybe(draw, p, "tickType", st.sampled_from([0, 1, 2, 3, 4, 9]))
    which = draw(st.sampled_from(["last", "bidask", "mid", None]))
    if which == "last":
        t = p.historicalTickLast
        t.SetInParent()
        _maybe(draw, t, "time", st.integers(0, 2**40))
        _maybe(draw, t, "price", proto_prices)
        _maybe(draw, t, "size", proto_sizes)
        _maybe(draw, t, "exchange", texts)
        _maybe(draw, t, "specialConditions", texts)
        if draw(st.booleans()):
            t.tickAttribLast.SetInParent()
            _maybe(draw, t.tickAttribLast, "pastLimit", st.booleans())
            _maybe(draw, t.tickAttribLast, "unreported", st.booleans())
    elif which == "bidask":
        q = p.historicalTickBidAsk
        q.SetInParent()
        _maybe(draw, q, "time", st.integers(0, 2**40))
        _maybe(draw, q, "priceBid", proto_prices)
        _maybe(draw, q, "priceAsk", proto_prices)
        _maybe(draw, q, "sizeBid", proto_sizes)
        _maybe(draw, q, "sizeAsk", proto_sizes)
        if draw(st.booleans()):
            q.tickAttribBidAsk.SetInParent()
            _maybe(draw, q.tickAttribBidAsk, "bidPastLow", st.booleans())
            _maybe(draw, q.tickAttribBidAsk, "askPastHigh", st.booleans())
    elif which == "mid":
        m = p.historicalTickMidPoint
        m.SetInParent()
        _maybe(draw, m, "time", st.integers(0, 2**40))
        _maybe(draw, m, "price", proto_prices)
    return proto_payload(IN.TICK_BY_TICK, p.SerializeToString()), sv


@st.composite
def tick_mkt_proto(draw: st.DrawFn) -> tuple[bytes, int]:
    sv = draw(st.integers(wire.MIN_PROTOBUF_SERVER_VERSION, MAX_CLIENT_VER))
    kind = draw(st.sampled_from(["price", "size", "string"]))
    proto: Any = {"price": TickPrice, "size": TickSize, "string": TickString}[kind]()
    _maybe(draw, proto, "reqId", st.integers(-(2**31), 2**31 - 1))
    _maybe(draw, proto, "tickType", tick_types_mkt)
    if kind == "price":
        _maybe(draw, proto, "price", proto_prices)
        _maybe(draw, proto, "size", proto_sizes)
        _maybe(draw, proto, "attrMask", st.integers(0, 7))
    elif kind == "size":
        _maybe(draw, proto, "size", proto_sizes)
    else:
        _maybe(draw, proto, "value", texts)
    msg_id = {"price": IN.TICK_PRICE, "size": IN.TICK_SIZE, "string": IN.TICK_STRING}[kind]
    return proto_payload(msg_id, proto.SerializeToString()), sv


def _valid(payload_sv: tuple[bytes, int]) -> bool:
    """The generators draw a few texts IB's Decoder itself cannot read (e.g. a size of
    'NaN' is fine, a price of 'nan' too); keep the ones it reads cleanly as 'valid'."""
    return ib_calls(*payload_sv)[1] is None


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.one_of(tick_by_tick_text(), tick_price_text(), tick_size_text(), tick_string_text()))
def test_text_tick_messages_call_the_wrapper_exactly_as_ibs_decoder(case: tuple[bytes, int]) -> None:
    payload, sv = case
    check(payload, sv, valid=_valid(case))


@SETTINGS
@given(st.one_of(tick_by_tick_proto(), tick_mkt_proto()))
def test_protobuf_tick_messages_call_the_wrapper_exactly_as_ibs_decoder(case: tuple[bytes, int]) -> None:
    payload, sv = case
    check(payload, sv, valid=True)


@SETTINGS
@given(server_versions, st.sampled_from(sorted(HOT_MESSAGE_IDS)),
       st.lists(st.one_of(st.binary(max_size=8).filter(lambda b: b"\x00" not in b),
                          st.integers(-5, 300).map(lambda i: str(i).encode())), max_size=10))
def test_any_fields_either_decode_as_ib_does_or_are_declined_untouched(
        sv: int, msg_id: int, fields: list[bytes]) -> None:
    body = b"".join(field + b"\x00" for field in fields)  # raw bytes: also invalid UTF-8
    head = msg_id.to_bytes(4, "big") if sv >= wire.MIN_PROTOBUF_SERVER_VERSION else b"%d\x00" % msg_id
    payload = head + body
    check(payload, sv, valid=False)


@SETTINGS
@given(st.integers(wire.MIN_PROTOBUF_SERVER_VERSION, MAX_CLIENT_VER), st.sampled_from(sorted(HOT_MESSAGE_IDS)),
       st.binary(max_size=40))
def test_any_protobuf_body_either_decodes_as_ib_does_or_is_declined(sv: int, msg_id: int, body: bytes) -> None:
    check(proto_payload(msg_id, body), sv, valid=False)


@pytest.mark.parametrize("payload", [b"", b"\x00", b"99", b"99\x00", b"4\x002\x00", b"abc\x00"])
def test_other_or_broken_frames_are_declined(payload: bytes) -> None:
    for sv in (MIN_CLIENT_VER, 200, 201, MAX_CLIENT_VER):
        handled, calls = hot_calls(payload, sv)
        assert not handled and calls == []


def test_attribute_objects_equal_ibs_and_are_shared_per_value() -> None:
    payload = text_payload(IN.TICK_BY_TICK, [7, 1, 1700000000, "21000.25", "3", 2, "CME", ""], 200)
    first, second = Recorder(), Recorder()
    seen: list[Any] = []

    class Keep(EWrapper):  # type: ignore[misc]
        def tickByTickAllLast(self, *args: Any) -> None:
            seen.append(args[5])
    HotDecoder(Keep(), 200).decode(payload)
    HotDecoder(Keep(), 200).decode(payload)
    assert seen[0] is seen[1] and (seen[0].pastLimit, seen[0].unreported) == (False, True)
    check(payload, 200, valid=True)
    del first, second


def _capture_tick_frames() -> list[tuple[str, bytes, int]]:
    out = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        capture = load_capture(path)
        for frame in capture.frames:
            if frame.direction == "server" and frame.msg_id in HOT_MESSAGE_IDS:
                out.append((path.name, frame.payload, capture.server_version_of(frame)))
    return out


CAPTURED = _capture_tick_frames()


def test_the_real_captures_hold_tick_frames() -> None:
    assert len(CAPTURED) >= 20
    assert any(payload[:1] == b"\x00" for _, payload, _ in CAPTURED)  # some from server >= 201


@pytest.mark.parametrize("name, payload, sv", CAPTURED[:400], ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CAPTURED[:400])])
def test_real_captured_tick_frames_decode_exactly_as_ibs_decoder(name: str, payload: bytes, sv: int) -> None:
    check(payload, sv, valid=True)


def test_norm_tells_nan_and_values_apart() -> None:
    assert _norm(math.nan) == _norm(float("nan")) and _norm(1.0) != _norm(1)


_MEMORY_PROBE = """
import os, sys
from ibapi.wrapper import EWrapper
from slob.ib.hot_decoder import HotDecoder
from slob.testing import tws_messages as msg
class Quiet(EWrapper):
    ignores_proto_hooks = True
    def tickByTickAllLast(self, *args): pass
frames = [msg.tbt_last(5, True, 1733151600 + i, 21000.25, i + 1, 0, "CME", "", 226)[4:] for i in range(997)]
decoder = HotDecoder(Quiet(), 226)
for payload in frames:  # warm up: the arena and the caches as a session has them
    assert decoder.decode(payload)
def rss_kib():  # resident now (a peak would start at the forking parent's)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
before = rss_kib()
for i in range(int(sys.argv[1])):
    decoder.decode(frames[i % 997])
print(rss_kib() - before)
"""


def test_decoding_protobuf_ticks_for_ever_keeps_memory_bounded() -> None:
    """upb never frees what a parse allocates in a message's arena while the message lives:
    one reused TickByTickData grew ~120 bytes a tick (35 MB for these 300,000). A fresh
    process, so that its resident memory is this loop's."""
    import subprocess
    import sys

    if not Path("/proc/self/statm").exists():
        pytest.skip("needs Linux's /proc/self/statm to read the resident memory")
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, "300000"], capture_output=True, text=True,
                         timeout=120, check=True)
    assert int(out.stdout) < 8 * 1024, f"RSS grew {out.stdout.strip()} KiB over 300,000 ticks"
