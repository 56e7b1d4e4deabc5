"""Alpaca credentials never reach a log, at any level, through any logger.

DEBUG is on for the root logger (and for ``websockets``, whose client logs every frame it
sends), a real WebSocket server speaks Alpaca's protocol, and the client goes through a
whole session: authentication, subscription, trades, a dropped connection with its
re-authentication, the reprs and stats a user might log, and a refused secret. Then no
log record -- message, arguments or traceback, as captured by pytest and by a plain
handler on the root logger -- holds the key, the secret, or any 8-character piece of
them (websockets elides long frames, which would leave pieces).

The server runs in a child process: its own logs are those of a peer that *receives*
the credentials, not slob's.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import random
import string
import subprocess
import sys
from typing import Any, Iterator

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.recorder import Recorder
from websockets.frames import Frame, Opcode

from slob.config.alpaca_config import AlpacaConfig
from slob.ib.errors import ConfigError
from slob.live.alpaca_connection import CredentialFilter
from slob.live.alpaca_protocol import AuthenticationFailed, Credentials
from slob.live.alpaca_ws_fetcher import AlpacaWSFetcher
from slob.model import ConnectionRestored

_rng = random.Random(20240613)
KEY = "PK" + "".join(_rng.choice(string.ascii_uppercase) for _ in range(18))
SECRET = "".join(_rng.choice(string.ascii_letters) for _ in range(40))
WRONG = "".join(_rng.choice(string.ascii_letters) for _ in range(40))
FAST: dict[str, Any] = dict(reconnect_delay_seconds=0.01, max_reconnect_delay_seconds=0.05,
                            connect_timeout_seconds=5.0, request_timeout_seconds=5.0)

CHILD = """
import os, sys
from slob.testing.fake_alpaca import FakeAlpaca
with FakeAlpaca(key_id=os.environ["FAKE_KEY"], secret_key=os.environ["FAKE_SECRET"], rate=200) as fake:
    print(fake.url, flush=True)
    for line in sys.stdin:
        if line.strip() == "drop":
            print(fake.drop(), flush=True)
"""


class Peer:
    """FakeAlpaca in a child process, steered through its stdin."""

    def __init__(self) -> None:
        env = {**os.environ, "FAKE_KEY": KEY, "FAKE_SECRET": SECRET}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("ws://127.0.0.1:"):
            self.close()
            raise RuntimeError(f"FakeAlpaca child did not start (said {self.url!r})")

    def drop(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("drop\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


@pytest.fixture
def root_text(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """DEBUG everywhere: pytest's capture and a plain handler on the root logger."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="websockets")
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield text
    root.removeHandler(handler)


def pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def leaks(text: str) -> list[str]:
    """Every piece of a credential found in ``text``."""
    return sorted(p for s in (KEY, SECRET, WRONG) for p in pieces(s) if p in text)


@pytest.mark.asyncio
async def test_a_whole_session_at_debug_logs_no_credential(
        peer: Peer, root_text: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.secrets")
    fetcher = AlpacaWSFetcher(KEY, SECRET, config=AlpacaConfig(url=peer.url, **FAST))
    rec = Recorder(timeout=10.0)
    fetcher.on_tick, fetcher.on_error, fetcher.on_event = rec.tick, rec.error, rec.event
    log.debug("what a user might log: %r %s", fetcher, fetcher.config)
    await fetcher.connect()
    await fetcher.subscribe(["AAPL", "MSFT"])
    task = asyncio.create_task(fetcher.listen())
    try:
        await rec.until(lambda: len(rec.ticks) >= 20)
        assert peer.drop() == 1  # the reconnect authenticates again
        await rec.until(lambda: any(isinstance(e, ConnectionRestored) for e in rec.events))
        seen = len(rec.ticks)
        await rec.until(lambda: len(rec.ticks) >= seen + 20)
        log.debug("stats %r, gaps %r, fetcher %s", fetcher.get_stats(), fetcher.gaps, fetcher)
    finally:
        await fetcher.disconnect()
        await asyncio.wait_for(task, 5)

    refused = AlpacaWSFetcher(KEY, WRONG, config=AlpacaConfig(url=peer.url, **FAST))
    with pytest.raises(AuthenticationFailed) as info:
        await refused.connect()
    log.exception("refused: %r", refused, exc_info=info.value)

    texts = [caplog.text, root_text.getvalue()]
    texts += [r.getMessage() for r in caplog.records]
    texts += [r.exc_text or "" for r in caplog.records]
    assert [leak for t in texts for leak in leaks(t)] == []
    assert rec.errors == []

    # The session was logged in detail, frames included: the test exercised the path.
    client_frames = [r.getMessage() for r in caplog.records if r.name == "websockets.client"]
    assert sum(m.startswith("> TEXT") for m in client_frames) >= 5  # 3 auths, 2 subscribes
    assert sum(m.startswith("< TEXT") for m in client_frames) >= 10
    assert sum("withheld" in m for m in client_frames) == 3  # each auth, shown without its credentials


def test_reprs_and_errors_hold_no_credential() -> None:
    fetcher = AlpacaWSFetcher(KEY, SECRET)
    shown = repr(fetcher) + str(fetcher) + repr(fetcher.config) + repr(fetcher.get_stats())
    assert leaks(shown) == []
    assert KEY[-4:] in repr(fetcher)  # the end of the key id tells paper and live keys apart
    short = AlpacaWSFetcher("abc", "xyz")
    assert "abc" not in repr(short) and "xyz" not in repr(short)


def test_a_url_with_credentials_in_it_is_refused() -> None:
    # websockets would turn them into an Authorization header and log it at DEBUG.
    with pytest.raises(ConfigError, match="credentials") as info:
        AlpacaConfig(url=f"wss://{KEY}:{SECRET}@stream.data.alpaca.markets/v2/iex")
    assert leaks(str(info.value)) == []



# -- the pieces, for any credentials -----------------------------------------------------

# Realistic credentials are 20 and 40 letters and digits; these add punctuation (quotes and
# backslashes change in JSON and in reprs) and non-ASCII letters. At least 8 characters,
# so a value is not by chance part of the fixed text around it.
credential = st.text(st.characters(categories=["L", "Nd", "P", "S"]), min_size=8, max_size=60)
FIXED = ("TEXT {auth: key and secret withheld} [bytes] Credentials(key_id='***', secret_key='***') "
         '< TEXT \'[{"T":"success","msg":"authenticated"}]\' [39 bytes] key ')


@settings(max_examples=300, deadline=None)
@given(credential, credential, st.text(max_size=30), st.text(max_size=30))
def test_redact_leaves_no_credential_in_any_text(key: str, secret: str, before: str, after: str) -> None:
    assume(key not in FIXED and secret not in FIXED)
    creds = Credentials(key, secret)
    for text in (before + key + after, before + secret + after, creds.auth_message(), before + after):
        out = creds.redact(text)
        assert key not in out and secret not in out
        assert not creds.found_in(out)
    assert not creds.found_in(repr(creds)) and not creds.found_in(str(creds))


@settings(max_examples=300, deadline=None)
@given(credential, credential)
def test_the_auth_frame_is_withheld_whatever_the_credentials(key: str, secret: str) -> None:
    assume(key not in FIXED and secret not in FIXED)
    creds = Credentials(key, secret)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.Logger("t.secrets", logging.DEBUG)
    logger.addHandler(Keep())
    adapter = CredentialFilter(logger, creds)
    frame = Frame(Opcode.TEXT, creds.auth_message().encode())
    adapter.debug("> %s", frame)
    adapter.debug("%s %r", f"key {key}", (secret,))
    adapter.info("< %s", Frame(Opcode.TEXT, b'[{"T":"success","msg":"authenticated"}]'))
    texts = [r.getMessage() for r in records]
    assert texts[0] == f"> TEXT {{auth: key and secret withheld}} [{len(frame.data)} bytes]"
    assert texts[2] == "< TEXT '[{\"T\":\"success\",\"msg\":\"authenticated\"}]' [39 bytes]"
    assert not any(creds.found_in(t) for t in texts)
