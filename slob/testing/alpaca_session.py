"""One client connection to :class:`~slob.testing.fake_alpaca.FakeAlpaca`: the server
side of Alpaca's market-data stream protocol v2 (runs on the fake's loop thread)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Awaitable, Protocol

from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

__all__ = ["CHANNELS", "ERROR_TEXT", "AlpacaHost", "Session"]

#: The stock stream's channels (corrections and cancelErrors follow trades).
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
ERROR_TEXT = {
    400: "invalid syntax", 401: "not authenticated", 402: "auth failed", 403: "already authenticated",
    404: "auth timeout", 405: "symbol limit exceeded", 406: "connection limit exceeded", 407: "slow client",
    408: "v2 not enabled", 409: "insufficient subscription", 410: "invalid subscribe action for this feed",
    500: "internal error",
}


class AlpacaHost(Protocol):
    """What a session needs of the server that accepted it
    (:class:`~slob.testing.fake_alpaca.FakeAlpaca`): its limits and credentials, the
    session table and the records it keeps. Given, not imported."""

    @property
    def accepting(self) -> bool: ...

    @property
    def auth_timeout(self) -> float: ...

    @property
    def connection_limit(self) -> int: ...

    @property
    def symbol_limit(self) -> int: ...

    @property
    def key_id(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    @property
    def _sessions(self) -> dict[int, Session]: ...

    @property
    def _requests(self) -> list[tuple[int, object]]: ...

    @property
    def _errors_sent(self) -> list[tuple[int, int]]: ...

    def _spawn(self, coro: Awaitable[Any]) -> None: ...

    def _changed(self) -> None: ...


class Session:
    def __init__(self, fake: AlpacaHost, id: int, ws: ServerConnection) -> None:
        self.fake, self.id, self.ws = fake, id, ws
        peer = ws.remote_address
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        request: Any = getattr(ws, "request", None)  # websockets >= 13; legacy servers have .path
        self.path = str(getattr(request, "path", None) or getattr(ws, "path", ""))
        self.authenticated = False
        self.channels: dict[str, list[str]] = {c: [] for c in CHANNELS}

    def wants(self, symbol: str) -> bool:
        trades = self.channels["trades"]
        return self.authenticated and (symbol in trades or "*" in trades)

    async def serve(self) -> None:
        fake = self.fake
        if not fake.accepting:
            self.abort()
            return
        fake._sessions[self.id] = self
        fake._changed()
        timer = asyncio.get_running_loop().call_later(fake.auth_timeout, self._auth_expired)
        try:
            await self.send([{"T": "success", "msg": "connected"}])
            async for raw in self.ws:
                await self._on_request(raw)
        except ConnectionClosed:
            pass
        finally:
            timer.cancel()
            fake._sessions.pop(self.id, None)
            fake._changed()

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (a network failure)."""
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def send(self, payload: object) -> None:
        frame = payload if isinstance(payload, (str, bytes)) else json.dumps(payload, separators=(",", ":"))
        try:
            await self.ws.send(frame)
        except ConnectionClosed:
            pass

    async def error(self, code: int, text: str | None = None, *, close: bool = False) -> None:
        self.fake._errors_sent.append((self.id, code))
        await self.send([{"T": "error", "code": code, "msg": text or ERROR_TEXT.get(code, "error")}])
        if close:  # not awaited: a command from a test must not wait for the client's close frame
            self.fake._spawn(self.ws.close())
        self.fake._changed()

    def _auth_expired(self) -> None:
        if not self.authenticated and self.id in self.fake._sessions:
            self.fake._spawn(self.error(404, close=True))

    async def _on_request(self, raw: str | bytes) -> None:
        try:
            req: object = json.loads(raw)
        except ValueError:
            req = None
        self.fake._requests.append((self.id, raw if req is None else req))
        self.fake._changed()
        if not isinstance(req, dict) or not isinstance(req.get("action"), str):
            await self.error(400)
        elif req["action"] == "auth":
            await self._auth(req)
        elif req["action"] in ("subscribe", "unsubscribe"):
            await self._subscribe(req["action"], req)
        else:
            await self.error(400)

    async def _auth(self, req: dict[str, Any]) -> None:
        fake = self.fake
        if self.authenticated:
            await self.error(403)
        elif req.get("key") != fake.key_id or req.get("secret") != fake.secret_key:
            await self.error(402, close=True)
        elif sum(s.authenticated for s in fake._sessions.values()) >= fake.connection_limit:
            await self.error(406, close=True)
        else:
            self.authenticated = True
            await self.send([{"T": "success", "msg": "authenticated"}])
            fake._changed()

    async def _subscribe(self, action: str, req: dict[str, Any]) -> None:
        if not self.authenticated:
            await self.error(401)
            return
        asked = {k: v for k, v in req.items() if k != "action"}
        if any(k not in CHANNELS for k in asked):
            await self.error(410)
            return
        if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in asked.values()):
            await self.error(400)
            return
        new = {c: list(symbols) for c, symbols in self.channels.items()}
        for channel, symbols in asked.items():
            if action == "subscribe":
                new[channel] += [s for s in dict.fromkeys(symbols) if s not in new[channel]]
            else:
                new[channel] = [s for s in new[channel] if s not in symbols]
        if len(set(new["trades"]) | set(new["quotes"])) > self.fake.symbol_limit:
            await self.error(405)
            return
        self.channels = new
        ack: dict[str, Any] = {"T": "subscription", **new}
        ack["corrections"] = ack["cancelErrors"] = list(new["trades"])
        await self.send([ack])
        self.fake._changed()
