"""FakeAlpaca speaks Alpaca's stream protocol v2 to a plain WebSocket client, and works
from synchronous tests (its server runs on its own thread)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from slob.testing.alpaca_market import PricePaths, rfc3339_ns
from slob.testing.fake_alpaca import FakeAlpaca


async def recv(ws: Any) -> list[dict[str, Any]]:
    frame = await asyncio.wait_for(ws.recv(), 5)
    messages: list[dict[str, Any]] = json.loads(frame)
    return messages


async def call(ws: Any, payload: object) -> list[dict[str, Any]]:
    """Send, then return the next control message (skipping trade frames)."""
    await ws.send(payload if isinstance(payload, str) else json.dumps(payload))
    while True:
        messages = await recv(ws)
        if messages[0]["T"] != "t":
            return messages


async def next_trades(ws: Any) -> list[dict[str, Any]]:
    while True:
        messages = await recv(ws)
        if messages[0]["T"] == "t":
            return messages


def codes(messages: list[dict[str, Any]]) -> list[object]:
    return [m.get("code", m.get("msg")) for m in messages]


def test_protocol_from_a_synchronous_test() -> None:
    with FakeAlpaca(rate=100, symbol_limit=3) as fake:
        async def session() -> None:
            async with websockets.connect(fake.url) as ws:
                assert await recv(ws) == [{"T": "success", "msg": "connected"}]
                assert codes(await call(ws, {"action": "subscribe", "trades": ["AAPL"]})) == [401]
                assert codes(await call(ws, "not json")) == [400]
                assert codes(await call(ws, {"action": "dance"})) == [400]
                assert await call(ws, {"action": "auth", "key": "test-key", "secret": "test-secret"}) == [
                    {"T": "success", "msg": "authenticated"}]
                assert codes(await call(ws, {"action": "auth", "key": "test-key", "secret": "test-secret"})) == [403]
                (ack,) = await call(ws, {"action": "subscribe", "trades": ["AAPL"], "quotes": ["MSFT"]})
                assert ack == {"T": "subscription", "trades": ["AAPL"], "quotes": ["MSFT"], "bars": [],
                               "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": [],
                               "corrections": ["AAPL"], "cancelErrors": ["AAPL"]}
                assert codes(await call(ws, {"action": "subscribe", "orderbooks": ["AAPL"]})) == [410]
                assert codes(await call(ws, {"action": "subscribe", "trades": "AAPL"})) == [400]
                trades = await next_trades(ws)
                assert set(trades[0]) == {"T", "S", "i", "x", "p", "s", "t", "c", "z"}
                assert trades[0]["S"] == "AAPL" and trades[0]["x"] == "V"
                # 2 + 2 symbols exceed the limit of 3: refused, nothing changes
                assert 405 in codes(await call(ws, {"action": "subscribe", "trades": ["A", "B"]}))
                await fake.until(lambda f: f.clients[0].trades == ("AAPL",))
                await ws.send(json.dumps({"action": "unsubscribe", "trades": ["AAPL"], "quotes": ["MSFT"]}))
                await fake.until(lambda f: f.clients[0].trades == ())

        asyncio.run(session())
        fake.wait_until(lambda f: f.client_count == 0, 5)
        assert [code for _, code in fake.errors_sent] == [401, 400, 400, 403, 410, 400, 405]
        with pytest.raises(TimeoutError):
            fake.wait_until(lambda f: f.client_count == 5, 0.05)


def test_bad_credentials_auth_timeout_and_connection_limit() -> None:
    with FakeAlpaca(auth_timeout=0.2) as fake:
        async def session() -> None:
            async with websockets.connect(fake.url) as ws:
                await recv(ws)
                assert codes(await call(ws, {"action": "auth", "key": "test-key", "secret": "nope"})) == [402]
                await asyncio.wait_for(ws.wait_closed(), 5)
            async with websockets.connect(fake.url) as ws:
                await recv(ws)
                assert codes(await recv(ws)) == [404]  # no auth within auth_timeout
                await asyncio.wait_for(ws.wait_closed(), 5)
            auth = {"action": "auth", "key": "test-key", "secret": "test-secret"}
            async with websockets.connect(fake.url) as first, websockets.connect(fake.url) as second:
                await recv(first), await recv(second)
                assert codes(await call(first, auth)) == ["authenticated"]
                assert codes(await call(second, auth)) == [406]
                await asyncio.wait_for(second.wait_closed(), 5)

        asyncio.run(session())
        fake.wait_until(lambda f: f.client_count == 0, 5)


def test_price_paths_are_seeded_per_symbol() -> None:
    a, b = PricePaths(seed=7), PricePaths(seed=7)
    first = [a.next("AAPL") for _ in range(5)]
    b.next("ZZZZ")  # other symbols do not disturb a symbol's path
    assert [b.next("AAPL") for _ in range(5)] == first
    assert [PricePaths(seed=8).next("AAPL") for _ in range(5)] != first
    assert all(t.price > 0 and round(t.price, 2) == t.price for t in first)
    assert rfc3339_ns(1_614_009_104_208_123_456) == "2021-02-22T15:51:44.208123456Z"
