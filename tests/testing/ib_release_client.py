"""Run as ``python ib_release_client.py PORT [--history]`` with one release of IB's client
first on PYTHONPATH (see ib_releases.py): the documented EClient/EWrapper way, against a
running ``slob sim``. It asks for contract details, tick-by-tick trades, market data, a
bracket (market entry, limit target, stop), the executions and the positions, and
historical bars with ``--history``; then prints one JSON object of what came back.

Only API calls every release from 9.81 to 10.50 has are used; callbacks whose signature
changed between releases (``error``) take ``*args``. Waits are events with time-outs.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.execution import ExecutionFilter
from ibapi.order import Order
from ibapi.server_versions import MAX_CLIENT_VER
from ibapi.wrapper import EWrapper

TIMEOUT = 30.0


class App(EWrapper, EClient):  # type: ignore[misc]
    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.cond = threading.Condition()
        self.seen: dict[str, list[Any]] = {}
        self.errors: list[list[Any]] = []

    def _add(self, name: str, value: Any) -> None:
        with self.cond:
            self.seen.setdefault(name, []).append(value)
            self.cond.notify_all()

    def wait(self, name: str, count: int = 1, where: Any = None) -> list[Any]:
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                got = [v for v in self.seen.get(name, []) if where is None or where(v)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {count} x {name}; errors {self.errors}; seen {sorted(self.seen)}")
                self.cond.wait(min(left, 0.5))

    # -- callbacks ------------------------------------------------------------------------
    def nextValidId(self, orderId: int) -> None:  # noqa: N802,N803
        self._add("nextValidId", orderId)

    def error(self, *args: Any) -> None:
        codes = [a for a in args[1:] if isinstance(a, int)]
        code = codes[-1] if codes else None
        if code is not None and not 2100 <= code < 2200:
            with self.cond:
                self.errors.append([str(a) for a in args])
        self._add("error", code)

    def contractDetails(self, reqId: int, details: Any) -> None:  # noqa: N802,N803
        c = details.contract
        self._add("contractDetails", {"localSymbol": c.localSymbol, "conId": c.conId,
                                      "expiry": c.lastTradeDateOrContractMonth[:8],
                                      "month": details.contractMonth})

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802,N803
        self._add("contractDetailsEnd", reqId)

    def tickByTickAllLast(self, reqId: int, tickType: int, time_: int, price: float, size: Any,  # noqa: N802,N803
                          attrib: Any, exchange: str, specialConditions: str) -> None:  # noqa: N803
        self._add("tickByTick", [reqId, int(time_), float(price), float(size)])

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:  # noqa: N802,N803
        self._add("tickPrice", [reqId, tickType, float(price)])

    def orderStatus(self, orderId: int, status: str, *args: Any) -> None:  # noqa: N802,N803
        self._add("orderStatus", [orderId, status])

    def openOrder(self, orderId: int, contract: Any, order: Any, state: Any) -> None:  # noqa: N802,N803
        self._add("openOrder", [orderId, order.orderType, order.parentId, state.status])

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:  # noqa: N802,N803
        self._add("execDetails", [reqId, execution.orderId, execution.side, float(execution.shares),
                                  float(execution.price), contract.localSymbol])

    def execDetailsEnd(self, reqId: int) -> None:  # noqa: N802,N803
        self._add("execDetailsEnd", reqId)

    def position(self, account: str, contract: Any, position: Any, avgCost: float) -> None:  # noqa: N803
        self._add("position", [account, contract.localSymbol, float(position), float(avgCost)])

    def positionEnd(self) -> None:  # noqa: N802
        self._add("positionEnd", True)

    def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N802,N803
        self._add("historicalData", [bar.date, float(bar.open), float(bar.high), float(bar.low), float(bar.close)])

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802,N803
        self._add("historicalDataEnd", reqId)


def nq(**fields: Any) -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "NQ", "FUT", "CME", "USD"
    for k, v in fields.items():
        setattr(c, k, v)
    return c


def order(action: str, kind: str, *, parent: int = 0, price: float = 0.0, transmit: bool = True) -> Order:
    o = Order()
    o.action, o.orderType, o.totalQuantity, o.transmit, o.parentId = action, kind, 1, transmit, parent
    if kind == "LMT":
        o.lmtPrice = price
    if kind == "STP":
        o.auxPrice = price
    for unsupported in ("eTradeOnly", "firmQuoteOnly"):  # 9.81 sets them; TWS refuses them since 10.x
        if hasattr(o, unsupported):
            setattr(o, unsupported, False)
    return o


def main() -> None:
    port, history = int(sys.argv[1]), "--history" in sys.argv
    app = App()
    app.connect("127.0.0.1", port, 7)
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    out: dict[str, Any] = {"max_client_version": MAX_CLIENT_VER}
    try:
        first_id = app.wait("nextValidId")[0]
        out["server_version"] = app.serverVersion()
        app.reqContractDetails(1, nq())
        app.wait("contractDetailsEnd")
        rows = sorted(app.seen["contractDetails"], key=lambda r: r["expiry"])
        out["contracts"] = [r["localSymbol"] for r in rows]
        front = nq(conId=rows[0]["conId"], localSymbol=rows[0]["localSymbol"])
        app.reqTickByTickData(2, front, "AllLast", 0, False)
        out["ticks"] = app.wait("tickByTick", 3)[:3]
        app.cancelTickByTickData(2)
        app.reqMktData(3, front, "", False, False, [])
        out["last_price"] = app.wait("tickPrice", where=lambda t: t[1] == 4)[0]
        app.cancelMktData(3)
        last = out["last_price"][2]
        parent = first_id
        app.placeOrder(parent, front, order("BUY", "MKT", transmit=False))
        app.placeOrder(parent + 1, front, order("SELL", "LMT", parent=parent, price=last + 500, transmit=False))
        app.placeOrder(parent + 2, front, order("SELL", "STP", parent=parent, price=last - 500))
        app.wait("orderStatus", where=lambda s: s == [parent, "Filled"])
        for child in (parent + 1, parent + 2):
            app.wait("orderStatus", where=lambda s, c=child: s[0] == c and s[1] in ("Submitted", "PreSubmitted"))
        out["orders"] = sorted({tuple(o) for o in app.seen["openOrder"]})
        app.reqExecutions(4, ExecutionFilter())
        app.wait("execDetailsEnd")
        out["executions"] = [e for e in app.seen["execDetails"] if e[0] == 4]
        app.reqPositions()
        app.wait("positionEnd")
        out["positions"] = app.seen.get("position", [])
        if history:
            app.reqHistoricalData(5, front, "", "120 S", "5 secs", "TRADES", 0, 1, False, [])
            app.wait("historicalDataEnd")
            out["bars"] = app.seen.get("historicalData", [])
        app.reqGlobalCancel(*(() if MAX_CLIENT_VER < 192 else (_order_cancel(),)))
        out["errors"] = app.errors
    finally:
        app.disconnect()
        runner.join(10)
    print(json.dumps(out))


def _order_cancel() -> Any:
    from ibapi.order_cancel import OrderCancel

    return OrderCancel()


if __name__ == "__main__":
    main()
