"""One authenticated session with Alpaca's market-data stream (used by AlpacaWSFetcher).

:meth:`AlpacaConnection.open` does the WebSocket handshake, waits for the welcome and
authenticates; :meth:`~AlpacaConnection.read` then reads until the connection ends,
stamping each frame's arrival (``time.monotonic_ns``), turning trades into Ticks and
handing them, with errors and unreadable frames, to ``put``. :meth:`request` sends one
subscribe/unsubscribe and waits for the server's ``subscription`` message (or the error
that answers it); requests are not correlated by the protocol, so the caller keeps one
in flight at a time.

Credentials never reach a log. ``websockets`` logs every frame it sends and receives at
DEBUG (on ``websockets.client``), the authentication frame included, and elides long
frames in a way that leaves pieces of the secret. So the connection gets its own
:class:`CredentialFilter` as its logger: the same ``websockets.client`` logger, seen
through an adapter that replaces any frame holding the key id or the secret by a
placeholder (and scrubs them from any other message or argument) before a record is
made -- whatever the level and whatever handlers the application installed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import websockets
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import Frame

from slob.config.alpaca_config import AlpacaConfig
from slob.ib.errors import ConnectError, SlobError
from slob.live.alpaca_protocol import (
    AlpacaError,
    AlpacaUnreachable,
    Credentials,
    MalformedMessage,
    error_for,
    parse_frame,
    tick_from_trade,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["AlpacaConnection", "CredentialFilter", "Dropped"]

log = logging.getLogger("slob.live.alpaca_ws_fetcher")
#: Errors that answer a subscribe/unsubscribe request (others are reported as they come).
REQUEST_ERRORS = frozenset({400, 401, 405, 409, 410})


class Dropped(SlobError):
    """The connection ended while a request waited for its answer."""


class _Withheld:
    """Stands in for a log argument that carried a credential."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


class CredentialFilter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for ``websockets`` that never lets the key id or the secret through.

    A sent or received frame that holds either is logged as
    ``TEXT {auth: key and secret withheld} [103 bytes]``; any other argument or message
    holding one has it replaced by ``***``. Frames without credentials stay lazy (their
    text is made only if a handler formats the record).
    """

    def __init__(self, logger: logging.Logger, credentials: Credentials) -> None:
        super().__init__(logger, {})
        self.credentials = credentials

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            msg, args = self._scrub(msg, args)
            # The record names the caller in websockets, not this adapter.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            self.logger.log(level, msg, *args, **kwargs)

    def _scrub(self, msg: object, args: tuple[object, ...]) -> tuple[object, tuple[object, ...]]:
        creds = self.credentials
        clean: list[object] = []
        for arg in args:
            if isinstance(arg, Frame):
                if creds.found_in(arg.data):
                    arg = _Withheld(f"{arg.opcode.name} {{auth: key and secret withheld}} [{len(arg.data)} bytes]")
            elif isinstance(arg, (int, float)) or arg is None:
                pass
            else:
                text = arg.decode("utf-8", "replace") if isinstance(arg, (bytes, bytearray)) else str(arg)
                if creds.found_in(text):
                    arg = _Withheld(creds.redact(text))
            clean.append(arg)
        if isinstance(msg, str) and creds.found_in(msg):
            msg = creds.redact(msg)
        return msg, tuple(clean)


class AlpacaConnection:
    def __init__(self, ws: ClientConnection, config: AlpacaConfig, counts: collections.Counter[str],
                 put: Callable[[object], None]) -> None:
        self.ws, self.config, self.counts, self.put = ws, config, counts, put
        #: The trades channel as the server last acknowledged it.
        self.streaming: set[str] = set()
        self.last_error: AlpacaError | None = None
        self._ack: asyncio.Future[dict[str, Any]] | None = None

    @classmethod
    async def open(cls, config: AlpacaConfig, credentials: Credentials, counts: collections.Counter[str],
                   put: Callable[[object], None]) -> AlpacaConnection:
        """Connect, read the welcome, authenticate. Raises AlpacaUnreachable, ConnectError or
        the AlpacaError the server answered with (402 auth failed, 406, 409, ...)."""
        url = config.stream_url
        try:
            ws = await websockets.connect(
                url, open_timeout=config.connect_timeout_seconds, ping_interval=config.ping_interval_seconds,
                ping_timeout=config.ping_interval_seconds, close_timeout=config.close_timeout_seconds,
                compression=None, logger=CredentialFilter(logging.getLogger("websockets.client"), credentials))
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            raise AlpacaUnreachable(url, str(exc) or type(exc).__name__) from exc
        conn = cls(ws, config, counts, put)
        try:
            await asyncio.wait_for(conn._handshake(credentials), config.connect_timeout_seconds)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, asyncio.TimeoutError):
                raise ConnectError(f"the Alpaca stream at {url} did not confirm authentication within "
                                   f"{config.connect_timeout_seconds:g} s; check the network and retry") from None
            raise
        return conn

    async def _handshake(self, credentials: Credentials) -> None:
        await self._expect("connected", "connecting")
        await self.ws.send(credentials.auth_message())
        self.counts["messages_out"] += 1
        await self._expect("authenticated", "authenticating")

    async def _expect(self, what: str, doing: str) -> None:
        """Read frames until ``{"T":"success","msg":what}``; raise the mapped error on
        ``{"T":"error"}``."""
        while True:
            try:
                frame = await self.ws.recv()
            except ConnectionClosed as exc:
                raise ConnectError(f"the Alpaca stream at {self.config.stream_url} closed the connection while "
                                   f"{doing} ({describe_close(exc)}); retry, or check the URL and feed") from None
            self.counts["frames"] += 1
            for msg in parse_frame(frame):
                self.counts["messages"] += 1
                if msg.get("T") == "error":
                    self.counts["server_errors"] += 1
                    raise error_for(msg.get("code"), msg.get("msg"), doing)
                if msg.get("T") == "success" and msg.get("msg") == what:
                    return

    async def close(self) -> None:
        try:
            await self.ws.close()
        except Exception:  # already broken: nothing left to close politely
            log.debug("closing the Alpaca WebSocket failed", exc_info=True)

    async def read(self) -> str:
        """Read until the connection ends; return why it ended."""
        cause = ""
        try:
            async for frame in self.ws:
                self._on_frame(frame, time.monotonic_ns())
        except ConnectionClosed as exc:
            cause = describe_close(exc)
        except Exception as exc:  # a bug here must not end the feed silently
            log.exception("! Alpaca reader failed")
            self.put(SlobError(f"the Alpaca reader failed: {exc!r}"))
            cause = f"reader failed: {exc!r}"
        finally:
            ack = self._ack
            if ack is not None and not ack.done():
                ack.set_exception(Dropped("the connection ended before the server answered"))
        ws = self.ws
        if not cause:
            cause = f"server closed the stream (code {ws.close_code}{f': {ws.close_reason}' if ws.close_reason else ''})"
        if self.last_error is not None:
            cause += f" after error {self.last_error.code} ({self.last_error.text})"
        return cause

    def _on_frame(self, frame: str | bytes, received_ns: int) -> None:
        counts, put = self.counts, self.put
        counts["frames"] += 1
        try:
            messages = parse_frame(frame)
        except MalformedMessage as exc:
            counts["malformed"] += 1
            put(exc)
            return
        for msg in messages:
            counts["messages"] += 1
            kind = msg.get("T")
            if kind == "t":
                try:
                    tick = tick_from_trade(msg, received_ns)
                except MalformedMessage as exc:
                    counts["malformed"] += 1
                    put(exc)
                    continue
                if tick.symbol in self.streaming or "*" in self.streaming:
                    put(tick)  # else: a late trade for a symbol just unsubscribed
            elif kind == "subscription":
                trades = msg.get("trades")
                self.streaming = {s for s in trades if isinstance(s, str)} if isinstance(trades, list) else set()
                if self._ack is not None and not self._ack.done():
                    self._ack.set_result(msg)
            elif kind == "error":
                counts["server_errors"] += 1
                error = error_for(msg.get("code"), msg.get("msg"))
                self.last_error = error
                if self._ack is not None and not self._ack.done() and error.code in REQUEST_ERRORS:
                    self._ack.set_exception(error)
                else:
                    put(error)
            # success, quotes, bars, statuses, corrections...: not used

    async def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one subscribe/unsubscribe; return the server's subscription message.
        Raises the AlpacaError that answered it, Dropped, or SlobError on timeout."""
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._ack = ack
        try:
            try:
                await self.ws.send(json.dumps(payload))
            except ConnectionClosed:
                raise Dropped("the connection ended while sending") from None
            self.counts["messages_out"] += 1
            timeout = self.config.request_timeout_seconds
            try:
                return await asyncio.wait_for(ack, timeout)
            except asyncio.TimeoutError:
                raise SlobError(f"Alpaca did not acknowledge {payload['action']} {payload.get('trades')} "
                                f"within {timeout:g} s") from None
        finally:
            self._ack = None


def describe_close(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "connection lost without a close frame"
    return f"server closed the stream (code {frame.code}{f': {frame.reason}' if frame.reason else ''})"
