"""FakeTWS against ib_async, an independent implementation of the TWS protocol (it
offers server versions 157..178 and waits for every start-up answer)."""

from __future__ import annotations

import asyncio
import math

import pytest

from slob.testing import FakeTWS

ib_async = pytest.importorskip("ib_async")


@pytest.mark.asyncio
async def test_ib_async_connects_and_streams_from_fake_tws() -> None:
    async with FakeTWS(speed=math.inf) as tws:
        ib = ib_async.IB()
        await ib.connectAsync("127.0.0.1", tws.port, clientId=5, timeout=10)
        try:
            assert ib.client.serverVersion() == 178  # min(ib_async's 178, FakeTWS's 200)
            assert ib.managedAccounts() == ["DU1234567"]
            assert {v.tag for v in ib.accountValues()} >= {"NetLiquidation", "BuyingPower"}
            details = await ib.reqContractDetailsAsync(ib_async.Future("NQ", exchange="CME"))
            assert sorted(d.contract.localSymbol for d in details) == ["NQH5", "NQM5", "NQU5", "NQZ4", "NQZ5"]
            front = min(details, key=lambda d: d.contract.lastTradeDateOrContractMonth)
            assert front.lastTradeTime == "08:30:00" and front.timeZoneId == "US/Central"

            trades: list[object] = []
            enough = asyncio.Event()

            def on_update(ticker: object) -> None:
                trades.extend(ticker.tickByTicks)  # type: ignore[attr-defined]
                if len(trades) >= 50:
                    enough.set()

            ticker = ib.reqTickByTickData(front.contract, "AllLast")
            ticker.updateEvent += on_update
            await asyncio.wait_for(enough.wait(), 10)
            assert all(t.price > 0 and t.size >= 1 and t.exchange == "CME" for t in trades)

            quote = ib.reqMktData(front.contract)
            for _ in range(200):
                if not any(math.isnan(v) for v in (quote.last, quote.bid, quote.ask)):
                    break
                await asyncio.wait_for(quote.updateEvent, 10)
            assert quote.bid < quote.ask and quote.last > 0
            assert tws.protocol_errors == []
            names = {r.name for r in tws.requests}
            assert {"REQ_POSITIONS", "REQ_OPEN_ORDERS", "REQ_COMPLETED_ORDERS", "REQ_ACCT_DATA",
                    "REQ_EXECUTIONS"} <= names
        finally:
            ib.disconnect()
