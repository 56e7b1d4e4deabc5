"""Tests for the pure TWS wire codec, ``slob.ib.wire``.

Properties run under hypothesis, derandomized with a fixed example budget and no
example database, so every run checks the same cases. IB's own client (``ibapi.comm``)
is the reference for the bytes on the wire, and real TWS/Gateway captures under
``tests/data/captures`` are decoded and re-encoded byte for byte.
"""

from __future__ import annotations

import ast
import base64
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from ibapi import comm
from ibapi.message import OUT
from ibapi.server_versions import MAX_CLIENT_VER, MIN_CLIENT_VER, MIN_SERVER_VER_PROTOBUF
from ibapi.utils import decode as ibapi_decode

from slob.ib import wire
from slob.ib.wire import (
    API_PREFIX,
    MAX_MSG_LEN,
    MIN_PROTOBUF_SERVER_VERSION,
    PROTOBUF_ID_OFFSET,
    BadHandshake,
    ClientHello,
    FrameDecoder,
    FrameTooLong,
    MalformedMessage,
    Message,
    ServerHello,
    WireError,
    decode_message,
    encode_fields,
    encode_message,
    encode_protobuf_message,
    frame,
    split_fields,
)

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
_HEADER = 4
CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"

# ---------------------------------------------------------------------------
# Strategies and helpers

payloads = st.binary(max_size=48)
payload_lists = st.lists(payloads, max_size=10)
ascii_text = st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=20)
#: Text ibapi's make_field accepts (utils.isAsciiPrintable): printable ASCII, tab, CR, LF.
ibapi_printable = st.text(
    st.one_of(st.characters(min_codepoint=32, max_codepoint=126), st.sampled_from("\t\n\r")),
    max_size=20,
)
text_versions = st.integers(100, MIN_PROTOBUF_SERVER_VERSION - 1)
binary_versions = st.integers(MIN_PROTOBUF_SERVER_VERSION, 300)
nine_digits = st.integers(0, 999_999_999)


@st.composite
def hellos(draw: st.DrawFn) -> ClientHello:
    lo = draw(nine_digits)
    hi = draw(st.integers(lo, 999_999_999))
    options = draw(st.text(st.characters(codec="ascii"), max_size=20))
    return ClientHello(lo, hi, options)


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    """``stream`` cut at the given offsets (duplicates and 0/len give empty chunks)."""
    chunks, prev = [], 0
    for point in sorted(cuts) + [len(stream)]:
        chunks.append(stream[prev:point])
        prev = point
    assert b"".join(chunks) == stream
    return chunks


def draw_chunks(data: st.DataObject, stream: bytes) -> list[bytes]:
    """Either byte at a time or cut at arbitrary points (empty chunks included)."""
    if data.draw(st.booleans(), label="byte_at_a_time"):
        return [stream[i : i + 1] for i in range(len(stream))]
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24), label="cuts")
    return split_at(stream, cuts)


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        got = decoder.feed(chunk)
        assert type(got) is list and all(type(p) is bytes for p in got)
        out.extend(got)
    return out


def reference_split(stream: bytes, max_len: int, expect_api_prefix: bool):
    """A one-shot, obviously-correct framer: (frames, error) where error is None or
    (error type, offset of the violation, index of the byte that reveals it)."""
    frames: list[bytes] = []
    pos = 0
    if expect_api_prefix:
        for i, byte in enumerate(stream[:4]):
            if byte != API_PREFIX[i]:
                return frames, (BadHandshake, 0, i)
        if len(stream) < 4:
            return frames, None
        pos = 4
    while len(stream) - pos >= 4:
        size = int.from_bytes(stream[pos : pos + 4], "big")
        if size > max_len:
            return frames, (FrameTooLong, pos, pos + 3)
        if pos + 4 + size > len(stream):
            break
        frames.append(stream[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return frames, None


# ---------------------------------------------------------------------------
# 1. Framing is independent of how the bytes arrive


@PROPERTY
@given(data=st.data(), frames=payload_lists)
def test_any_chunking_gives_the_original_frames(data: st.DataObject, frames: list[bytes]) -> None:
    stream = b"".join(frame(p) for p in frames)
    decoder = FrameDecoder()
    assert feed_all(decoder, draw_chunks(data, stream)) == frames
    assert decoder.buffered == 0
    assert decoder.failed is None


@PROPERTY
@given(data=st.data(), hello=hellos(), frames=payload_lists)
def test_any_chunking_with_api_prefix_and_client_hello(
    data: st.DataObject, hello: ClientHello, frames: list[bytes]
) -> None:
    stream = hello.encode() + b"".join(frame(p) for p in frames)
    decoder = FrameDecoder(expect_api_prefix=True)
    got = feed_all(decoder, draw_chunks(data, stream))
    assert got == [hello.payload(), *frames]
    assert ClientHello.parse(got[0]) == hello
    assert decoder.buffered == 0


@PROPERTY
@pytest.mark.parametrize("expect_api_prefix", [False, True])
@given(frames=payload_lists)
def test_byte_at_a_time_gives_the_original_frames(expect_api_prefix: bool, frames: list[bytes]) -> None:
    head = ClientHello(100, 226).encode() if expect_api_prefix else b""
    expected = [b"v100..226"] if expect_api_prefix else []
    stream = head + b"".join(frame(p) for p in frames)
    decoder = FrameDecoder(expect_api_prefix=expect_api_prefix)
    assert feed_all(decoder, [stream[i : i + 1] for i in range(len(stream))]) == expected + frames


@PROPERTY
@given(data=st.data(), frames=payload_lists, expect_api_prefix=st.booleans(), tail=st.binary(max_size=3))
def test_buffered_counts_the_bytes_not_yet_in_a_frame(
    data: st.DataObject, frames: list[bytes], expect_api_prefix: bool, tail: bytes
) -> None:
    # ``tail`` (< 4 bytes) can never complete a header, so it stays buffered.
    stream = (API_PREFIX if expect_api_prefix else b"") + b"".join(frame(p) for p in frames) + tail
    decoder = FrameDecoder(expect_api_prefix=expect_api_prefix)
    fed = framed = 0
    for chunk in draw_chunks(data, stream):
        fed += len(chunk)
        framed += sum(_HEADER + len(p) for p in decoder.feed(chunk))
        prefix = 4 if expect_api_prefix and fed >= 4 else 0
        assert decoder.buffered == fed - prefix - framed
    assert decoder.buffered == len(tail)


def test_long_streams_keep_absolute_offsets_after_the_buffer_is_compacted() -> None:
    # Over 64 KiB of frames in one feed plus a partial frame makes the decoder drop
    # the consumed prefix of its buffer; offsets must still count from stream start.
    frames = [bytes([i % 256]) * 1000 for i in range(70)]
    whole = b"".join(frame(p) for p in frames)
    partial = frame(b"partial-frame")
    decoder = FrameDecoder(max_len=2000)
    assert decoder.feed(whole + partial[:7]) == frames
    assert decoder.buffered == 7
    bad_header = (2001).to_bytes(4, "big")
    with pytest.raises(FrameTooLong) as info:
        decoder.feed(partial[7:] + frame(b"x") + bad_header)
    offset = len(whole) + len(partial) + len(frame(b"x"))
    assert info.value.frames == [b"partial-frame", b"x"]
    assert info.value.offset == offset
    assert f"offset {offset}" in str(info.value)


def test_frames_up_to_the_maximum_are_accepted() -> None:
    decoder = FrameDecoder(max_len=10)
    assert decoder.feed(frame(b"0123456789", max_len=10)) == [b"0123456789"]
    # The protocol maximum itself is a legal size: the decoder waits for the body.
    big = FrameDecoder()
    assert big.feed(MAX_MSG_LEN.to_bytes(4, "big") + b"abc") == []
    assert big.buffered == 7 and big.failed is None


def test_frame_refuses_payloads_over_the_maximum() -> None:
    assert frame(b"x" * 10, max_len=10) == b"\x00\x00\x00\x0a" + b"x" * 10
    with pytest.raises(FrameTooLong, match="11 bytes.*maximum of 10"):
        frame(b"x" * 11, max_len=10)
    with pytest.raises(FrameTooLong):
        frame(bytes(MAX_MSG_LEN + 1))


# ---------------------------------------------------------------------------
# 2. Arbitrary bytes: frames or a WireError, nothing else; failure is sticky

junk_streams = st.lists(
    st.one_of(st.binary(max_size=12), payloads.map(frame), st.just(API_PREFIX)), max_size=8
).map(b"".join)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(
    data=st.data(),
    stream=st.one_of(junk_streams, junk_streams.map(lambda b: API_PREFIX + b)),
    expect_api_prefix=st.booleans(),
    max_len=st.sampled_from([MAX_MSG_LEN, 0, 1, 5, 32, 255]),
)
def test_arbitrary_bytes_give_frames_or_a_wire_error(
    data: st.DataObject, stream: bytes, expect_api_prefix: bool, max_len: int
) -> None:
    expected_frames, expected_error = reference_split(stream, max_len, expect_api_prefix)
    decoder = FrameDecoder(max_len=max_len, expect_api_prefix=expect_api_prefix)
    chunks = draw_chunks(data, stream)
    delivered: list[bytes] = []
    fed = 0
    for index, chunk in enumerate(chunks):
        start, fed = fed, fed + len(chunk)
        try:
            got = decoder.feed(chunk)
        except WireError as exc:  # any other exception fails the test
            assert expected_error is not None, f"unexpected {exc!r}"
            kind, offset, reveal = expected_error
            assert type(exc) is kind
            assert start <= reveal < fed, "raised by a chunk that did not reveal the violation"
            if kind is FrameTooLong:
                assert exc.offset == offset
            else:
                assert 0 <= exc.offset <= reveal
            assert all(type(p) is bytes for p in exc.frames)
            assert delivered + exc.frames == expected_frames
            assert decoder.failed is exc
            assert decoder.buffered == 0  # the unframeable rest is dropped
            for later in [*chunks[index + 1 :], b"", frame(b"valid"), ClientHello(100, 226).encode()]:
                with pytest.raises(WireError):
                    decoder.feed(later)
            return
        assert type(got) is list and all(type(p) is bytes for p in got)
        delivered += got
    assert expected_error is None
    assert delivered == expected_frames
    assert decoder.failed is None


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(payload=st.one_of(st.binary(max_size=40), junk_streams), server_version=st.integers(0, 300))
def test_arbitrary_payloads_decode_or_raise_wire_errors_only(payload: bytes, server_version: int) -> None:
    try:
        message = decode_message(payload, server_version)
    except MalformedMessage:
        pass
    else:
        assert type(message) is Message and all(type(f) is bytes for f in message.fields)
    try:
        ClientHello.parse(payload)
    except BadHandshake:
        pass
    try:
        ServerHello.parse(payload)
    except BadHandshake:
        pass


def test_huge_numbers_are_wire_errors_not_value_errors() -> None:
    # int() refuses strings of over 4300 digits with a plain ValueError.
    digits = b"1" * 5000
    with pytest.raises(BadHandshake):
        ServerHello.parse(digits + b"\x00time\x00")
    with pytest.raises(BadHandshake):
        ClientHello.parse(b"v" + digits + b".." + digits)
    with pytest.raises(MalformedMessage):
        decode_message(digits + b"\x00", 200)


# ---------------------------------------------------------------------------
# 3. Oversized frames


@PROPERTY
@given(
    data=st.data(),
    before=payload_lists,
    after=payload_lists,
    max_len=st.sampled_from([MAX_MSG_LEN, 16, 40]),
    expect_api_prefix=st.booleans(),
)
def test_too_long_frame_is_rejected_and_ends_the_stream(
    data: st.DataObject, before: list[bytes], after: list[bytes], max_len: int, expect_api_prefix: bool
) -> None:
    before = [p[:max_len] for p in before]
    bad_size = data.draw(st.integers(max_len + 1, 2**32 - 1), label="bad_size")
    hello = ClientHello(100, 226)
    head = (hello.encode() if expect_api_prefix else b"") + b"".join(frame(p) for p in before)
    expected = ([hello.payload()] if expect_api_prefix else []) + before
    offset = len(head)
    body = data.draw(st.binary(max_size=20), label="body")
    stream = head + bad_size.to_bytes(4, "big") + body + b"".join(frame(p) for p in after)

    decoder = FrameDecoder(max_len=max_len, expect_api_prefix=expect_api_prefix)
    delivered: list[bytes] = []
    error: FrameTooLong | None = None
    fed = 0
    for chunk in draw_chunks(data, stream):
        start, fed = fed, fed + len(chunk)
        if error is not None:
            with pytest.raises(FrameTooLong):
                decoder.feed(chunk)
            continue
        try:
            delivered += decoder.feed(chunk)
        except FrameTooLong as exc:
            error = exc
            # Raised by the very chunk that completed the 4-byte header.
            assert start <= offset + 3 < fed
        else:
            assert fed <= offset + 3
    assert error is not None
    assert error.offset == offset
    message = str(error)
    assert f"offset {offset}" in message and f"maximum of {max_len}" in message and str(bad_size) in message
    assert delivered + error.frames == expected
    for more in [frame(b"ok"), b"", frame(b"")]:
        with pytest.raises(FrameTooLong):
            decoder.feed(more)
    assert decoder.failed is error
    assert decoder.buffered == 0


@pytest.mark.parametrize("max_len", [MAX_MSG_LEN, 100])
def test_too_long_is_raised_on_the_header_alone(max_len: int) -> None:
    header = (max_len + 1).to_bytes(4, "big")
    decoder = FrameDecoder(max_len=max_len)
    assert decoder.feed(frame(b"first") + header[:1]) == [b"first"]
    assert decoder.feed(header[1:2]) == []
    assert decoder.feed(header[2:3]) == []
    with pytest.raises(FrameTooLong) as info:
        decoder.feed(header[3:])  # no body byte has arrived
    assert info.value.offset == len(frame(b"first"))
    assert info.value.frames == []
    assert f"maximum of {max_len}" in str(info.value)


def test_too_long_reports_the_frames_completed_in_the_same_feed() -> None:
    decoder = FrameDecoder(max_len=10)
    stream = frame(b"a") + frame(b"bb") + (11).to_bytes(4, "big") + frame(b"after")
    with pytest.raises(FrameTooLong) as info:
        decoder.feed(stream)
    assert info.value.frames == [b"a", b"bb"]
    assert info.value.offset == 11
    with pytest.raises(FrameTooLong) as again:
        decoder.feed(frame(b"c"))
    assert again.value.frames == []


# ---------------------------------------------------------------------------
# 4. Handshake


def test_client_hello_exact_bytes_match_ibapi() -> None:
    assert ClientHello(100, 226).encode() == b"API\x00\x00\x00\x00\x09v100..226"
    # ibapi client.connect(): "API\0" + make_initial_msg("v%d..%d" % (MIN, MAX)).
    ours = ClientHello(MIN_CLIENT_VER, MAX_CLIENT_VER).encode()
    assert ours == b"API\0" + comm.make_initial_msg("v%d..%d" % (MIN_CLIENT_VER, MAX_CLIENT_VER))
    with_options = ClientHello(100, 226, "+PACEAPI").encode()
    assert with_options == b"API\0" + comm.make_initial_msg("v100..226 +PACEAPI")


@PROPERTY
@given(data=st.data(), hello=hellos())
def test_client_hello_round_trips_through_the_server_decoder(data: st.DataObject, hello: ClientHello) -> None:
    decoder = FrameDecoder(expect_api_prefix=True)
    (payload,) = feed_all(decoder, draw_chunks(data, hello.encode()))
    assert ClientHello.parse(payload) == hello


def test_client_hello_options_round_trip() -> None:
    for options in ["+PACEAPI", "", "+PACEAPI +OTHER", " leading"]:
        hello = ClientHello(100, 226, options)
        (payload,) = FrameDecoder(expect_api_prefix=True).feed(hello.encode())
        assert ClientHello.parse(payload) == hello
    assert ClientHello.parse(b"v100..226 +PACEAPI") == ClientHello(100, 226, "+PACEAPI")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"100..226",  # no v
        b"V100..226",
        b"v100",
        b"v100..",
        b"v..226",
        b"v100.226",
        b"v100..226+PACEAPI",  # options need the space
        b"v226..100",  # min above max
        b"v100..226 +P\xc3\xa9",  # options not ASCII
        b"v100..226 \xff",
        b"v1000000000..1000000001",  # more than 9 digits
        b"v-1..226",
        b"63\x00",  # pre-v100 client: its version as a text field, no range
        b"63",
        b"v100..226\x00",
    ],
)
def test_client_hello_rejects_bad_offers(payload: bytes) -> None:
    with pytest.raises(BadHandshake):
        ClientHello.parse(payload)


def test_old_style_handshake_is_rejected_at_the_first_byte() -> None:
    # A pre-v100 client opens with its version as a NUL-terminated field, no "API\0".
    decoder = FrameDecoder(expect_api_prefix=True)
    with pytest.raises(BadHandshake, match="API"):
        decoder.feed(b"6")
    with pytest.raises(BadHandshake):
        decoder.feed(b"3\x00")


@PROPERTY
@given(
    good=st.integers(0, 3),
    wrong=st.integers(0, 255),
    rest=st.binary(max_size=20),
    chunked=st.booleans(),
)
def test_missing_api_prefix_is_detected_at_the_first_wrong_byte(
    good: int, wrong: int, rest: bytes, chunked: bool
) -> None:
    assume(wrong != API_PREFIX[good])
    stream = API_PREFIX[:good] + bytes([wrong]) + rest
    decoder = FrameDecoder(expect_api_prefix=True)
    if chunked:  # byte by byte: the good bytes pass, the wrong one raises
        for i in range(good):
            assert decoder.feed(stream[i : i + 1]) == []
        with pytest.raises(BadHandshake) as info:
            decoder.feed(stream[good : good + 1])
    else:
        with pytest.raises(BadHandshake) as info:
            decoder.feed(stream)
    assert info.value.frames == []
    assert 0 <= info.value.offset <= good
    with pytest.raises(BadHandshake):
        decoder.feed(ClientHello(100, 226).encode())


def test_server_hello_exact_bytes_and_ibapi_reads_them() -> None:
    hello = ServerHello(200, "20260405 23:49:26 CET")
    encoded = hello.encode()
    assert encoded == frame(b"200\x0020260405 23:49:26 CET\x00")
    # ibapi client.connect(): read_msg, read_fields, then "(server_version, conn_time) = fields".
    size, msg, rest = comm.read_msg(encoded)
    assert (size, rest) == (len(encoded) - 4, b"")
    server_version, conn_time = comm.read_fields(msg)
    assert (int(server_version), conn_time) == (200, b"20260405 23:49:26 CET")


@PROPERTY
@given(data=st.data(), version=nine_digits, when=ascii_text)
def test_server_hello_round_trips(data: st.DataObject, version: int, when: str) -> None:
    hello = ServerHello(version, when)
    (payload,) = feed_all(FrameDecoder(), draw_chunks(data, hello.encode()))
    assert ServerHello.parse(payload) == hello


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        b"200\x00",  # one field
        b"200\x00time",  # second field not NUL-terminated
        b"200",
        b"200\x00a\x00b\x00",  # three fields
        b"x\x00time\x00",  # version not numeric
        b"\x00time\x00",
        b"-1\x00time\x00",
        b"2 0\x00time\x00",
        b"\xd9\xa2\x00time\x00",
        b"1234567890\x00time\x00",  # more than 9 digits
        b"1" * 5000 + b"\x00time\x00",
    ],
)
def test_server_hello_rejects_bad_greetings(payload: bytes) -> None:
    with pytest.raises(BadHandshake):
        ServerHello.parse(payload)


# ---------------------------------------------------------------------------
# 5. Messages


@PROPERTY
@given(
    data=st.data(),
    fields=st.lists(ascii_text, max_size=8),
    text_ids=st.booleans(),
)
def test_text_messages_round_trip(data: st.DataObject, fields: list[str], text_ids: bool) -> None:
    if text_ids:
        server_version = data.draw(text_versions, label="server_version")
        msg_id = data.draw(nine_digits, label="msg_id")
    else:
        server_version = data.draw(binary_versions, label="server_version")
        msg_id = data.draw(st.integers(0, PROTOBUF_ID_OFFSET), label="msg_id")
    encoded = encode_message(msg_id, fields, server_version)
    assert int.from_bytes(encoded[:4], "big") == len(encoded) - 4
    payload = encoded[4:]
    if text_ids:
        assert payload.startswith(str(msg_id).encode() + b"\x00")
    else:
        assert payload[:4] == msg_id.to_bytes(4, "big")
    message = decode_message(payload, server_version)
    assert message == Message(msg_id, tuple(f.encode("ascii") for f in fields))
    assert not message.is_protobuf
    assert [message.text(i) for i in range(len(fields))] == fields


@PROPERTY
@given(msg_id=st.integers(1, 10_000), body=st.binary(max_size=40), server_version=binary_versions)
def test_protobuf_messages_round_trip(msg_id: int, body: bytes, server_version: int) -> None:
    encoded = encode_protobuf_message(msg_id, body)
    assert encoded[4:8] == (msg_id + PROTOBUF_ID_OFFSET).to_bytes(4, "big")
    message = decode_message(encoded[4:], server_version)
    assert message == Message(msg_id, (), body)
    assert message.is_protobuf


@PROPERTY
@given(raw_id=st.integers(0, 2**32 - 1), body=st.binary(max_size=30), server_version=binary_versions)
def test_binary_ids_above_200_mean_protobuf(raw_id: int, body: bytes, server_version: int) -> None:
    payload = raw_id.to_bytes(4, "big") + body + b"\x00"
    message = decode_message(payload, server_version)
    if raw_id > PROTOBUF_ID_OFFSET:
        assert message == Message(raw_id - PROTOBUF_ID_OFFSET, (), body + b"\x00")
        assert message.is_protobuf
    else:
        assert message == Message(raw_id, split_fields(body + b"\x00"))
        assert not message.is_protobuf


def test_binary_id_edges() -> None:
    assert decode_message(b"\x00\x00\x00\xc8a\x00", 201) == Message(200, (b"a",))
    assert decode_message(b"\x00\x00\x00\xc9", 201) == Message(1, (), b"")
    assert decode_message(b"\x00\x00\x00\x31", 201) == Message(49, ())
    assert decode_message(b"49\x00", 200) == Message(49, ())


def test_encoders_refuse_ids_that_would_read_back_as_another_message() -> None:
    with pytest.raises(MalformedMessage):
        encode_message(PROTOBUF_ID_OFFSET + 1, ["x"], MIN_PROTOBUF_SERVER_VERSION)  # would be protobuf 1
    with pytest.raises(MalformedMessage):
        encode_message(-1, [], MIN_PROTOBUF_SERVER_VERSION)
    with pytest.raises(MalformedMessage):
        encode_protobuf_message(0, b"x\x00")  # would be text message 200
    with pytest.raises(MalformedMessage):
        encode_protobuf_message(2**32, b"")
    assert encode_message(PROTOBUF_ID_OFFSET, ["x"], 201) == frame(b"\x00\x00\x00\xc8x\x00")
    assert encode_message(201, ["x"], 200) == frame(b"201\x00x\x00")


@pytest.mark.parametrize(
    ("payload", "server_version"),
    [
        (b"", 200),
        (b"", 201),
        (b"1\x002", 200),  # text not ending in NUL
        (b"1", 200),
        (b"x\x001\x00", 200),  # non-numeric id
        (b"\x00", 200),  # empty id
        (b"-1\x00", 200),
        (b"1.5\x00", 200),
        (b" 1\x00", 200),
        (b"1234567890\x00", 200),
        (b"\x00\x00\x00", 201),  # shorter than the binary id
        (b"\x01", 225),
        (b"\x00\x00\x00\x05abc", 201),  # binary id, text not ending in NUL
    ],
)
def test_malformed_payloads_are_rejected(payload: bytes, server_version: int) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(payload, server_version)


def test_wire_errors_are_value_errors_with_offset_and_frames() -> None:
    for cls in (FrameTooLong, BadHandshake, MalformedMessage):
        assert issubclass(cls, WireError) and issubclass(cls, ValueError)
    err = WireError("x")
    assert (err.offset, err.frames) == (-1, [])


# ---------------------------------------------------------------------------
# 6. Cross-checks against IB's own client


def test_start_api_bytes_match_ibapi() -> None:
    text = comm.make_field(2) + comm.make_field(7) + comm.make_field("")
    assert encode_message(OUT.START_API, [2, 7, ""], 200) == comm.make_msg(71, False, text)
    assert OUT.START_API == 71
    assert MIN_SERVER_VER_PROTOBUF == MIN_PROTOBUF_SERVER_VERSION
    assert encode_message(71, [2, 7, ""], 201) == comm.make_msg(71, True, text)


@PROPERTY
@given(
    msg_id=st.integers(0, PROTOBUF_ID_OFFSET),
    fields=st.lists(st.one_of(ibapi_printable, st.integers(-(2**63), 2**63), st.booleans()), max_size=8),
)
def test_text_message_bytes_match_ibapi(msg_id: int, fields: list[object]) -> None:
    text = "".join(comm.make_field(f) for f in fields)
    assert encode_message(msg_id, fields, 200) == comm.make_msg(msg_id, False, text)
    assert encode_message(msg_id, fields, 201) == comm.make_msg(msg_id, True, text)


@PROPERTY
@given(msg_id=st.integers(1, 10_000), body=st.binary(max_size=40))
def test_protobuf_bytes_match_ibapi(msg_id: int, body: bytes) -> None:
    assert encode_protobuf_message(msg_id, body) == comm.make_msg_proto(msg_id + PROTOBUF_ID_OFFSET, body)


@PROPERTY
@given(messages=st.lists(st.tuples(st.integers(0, 999), st.lists(ascii_text, max_size=6)), max_size=8))
def test_ibapi_reader_splits_our_frames_into_the_same_fields(
    messages: list[tuple[int, list[str]]],
) -> None:
    buf = b"".join(encode_message(msg_id, fields, 200) for msg_id, fields in messages)
    for msg_id, fields in messages:
        size, msg, buf = comm.read_msg(buf)
        assert size == len(msg)
        assert comm.read_fields(msg) == (str(msg_id).encode(), *(f.encode() for f in fields))
        assert decode_message(msg, 200) == Message(msg_id, tuple(f.encode() for f in fields))
    assert buf == b""


@PROPERTY
@given(text=st.text(max_size=30).filter(lambda t: "\x00" not in t))
def test_non_ascii_text_is_escaped_the_way_ibapi_unescapes_it(text: str) -> None:
    # Pure-ASCII text goes out verbatim; a backslash in it would be read as an escape
    # by ibapi's unicode-escape decoding, so only backslash-free ASCII is checked here.
    assume(not text.isascii() or "\\" not in text)
    encoded = encode_fields([text])
    assert encoded.isascii() and encoded.endswith(b"\x00")
    (field,) = comm.read_fields(encoded)
    assert field.decode("unicode-escape") == text
    # decoder.py since MIN_SERVER_VER_ENCODE_MSG_ASCII7 (153), both spellings it uses:
    assert ibapi_decode(str, iter([field])).encode().decode("unicode-escape") == text
    assert ibapi_decode(str, iter([field]), False, True) == text
    if text.isascii():
        assert encoded == text.encode("ascii") + b"\x00"


def test_non_ascii_examples() -> None:
    assert encode_fields(["Café ✓"]) == b"Caf\\xe9 \\u2713\x00"
    assert encode_fields(["日本\\x"]).decode("ascii")[:-1].encode().decode("unicode-escape") == "日本\\x"


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "é\x00", b"a\x00"])
def test_nul_inside_a_field_is_malformed(value: object) -> None:
    with pytest.raises(MalformedMessage, match="NUL"):
        encode_fields(["ok", value])
    with pytest.raises(MalformedMessage):
        encode_message(1, [value], 200)


def test_none_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="None"):
        encode_fields([1, None])
    with pytest.raises(MalformedMessage):
        encode_message(1, [None], 201)


def test_field_values_encode_as_ibapi_text() -> None:
    assert encode_fields([True, False]) == b"1\x000\x00"
    assert encode_fields([True, False]) == "".join(map(comm.make_field, [True, False])).encode()
    assert encode_fields([]) == b""
    assert encode_fields(
        [0, -17, "", "NQ", b"raw", Decimal("21012.25"), Decimal("1E+3"), 21012.25, 1.0]
    ) == b"0\x00-17\x00\x00NQ\x00raw\x0021012.25\x001000\x0021012.25\x001.0\x00"


# ---------------------------------------------------------------------------
# Real TWS / Gateway bytes


def _capture_files() -> list[Path]:
    files = sorted(CAPTURES.glob("*.jsonl"))
    assert files, f"no captures under {CAPTURES}"
    return files


def test_real_captures_decode_and_re_encode_byte_for_byte() -> None:
    checked = 0
    for path in _capture_files():
        lines = path.read_text().splitlines()
        server_version = json.loads(lines[0])["server_version"]
        raw_frames = [json.loads(line) for line in lines[1:]]
        stream = b"".join(base64.b64decode(r["frame_b64"]) for r in raw_frames)
        # Feed in odd-sized chunks: framing must not depend on where reads end.
        decoder = FrameDecoder()
        payloads_ = feed_all(decoder, [stream[i : i + 7] for i in range(0, len(stream), 7)])
        assert decoder.buffered == 0 and len(payloads_) == len(raw_frames)
        for record, payload in zip(raw_frames, payloads_):
            message = decode_message(payload, server_version)
            assert message.msg_id == record["msg_id"], path.name
            assert message.is_protobuf == (record["encoding"] == "protobuf"), path.name
            if message.is_protobuf:
                assert message.protobuf is not None
                again = encode_protobuf_message(message.msg_id, message.protobuf)
            else:
                again = encode_message(message.msg_id, message.fields, server_version)
            assert again == base64.b64decode(record["frame_b64"]), path.name
            checked += 1
    assert checked > 0


# ---------------------------------------------------------------------------
# 7. Purity: no I/O machinery in the codec

FORBIDDEN_MODULES = {"socket", "threading", "asyncio", "selectors"}


def _io_imports(source: str) -> set[str]:
    """Forbidden modules that ``source`` imports, statically or by name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            callee = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if callee in {"__import__", "import_module"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names = [arg.value]
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in FORBIDDEN_MODULES)
    return found


def test_the_checker_catches_io_imports() -> None:
    assert _io_imports("import socket") == {"socket"}
    assert _io_imports("def f():\n    import threading as t\n") == {"threading"}
    assert _io_imports("from asyncio.events import AbstractEventLoop") == {"asyncio"}
    assert _io_imports("import os, selectors") == {"selectors"}
    assert _io_imports("importlib.import_module('socket')") == {"socket"}
    assert _io_imports("import re\nfrom decimal import Decimal\nfrom . import socket") == set()


def test_wire_module_imports_no_io_machinery() -> None:
    source_path = Path(wire.__file__)
    assert source_path.name == "wire.py"
    source = source_path.read_text(encoding="utf-8")
    assert "import" in source
    assert _io_imports(source) == set()
