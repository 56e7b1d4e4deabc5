"""`slob demo`: stream NQ from an embedded fake TWS through IB's own client.

Everything on the path is real: FakeTWS serves the TWS wire protocol on a loopback
port, IB's ``EClient``/``EWrapper`` connect to it the documented way (handshake,
START_API, EReader thread, ``run()`` loop), contract details resolve the NQ front month,
and tick-by-tick trades stream to the console, summarised once a second.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, TextIO

from ibapi.client import EClient
from ibapi.contract import Contract, ContractDetails
from ibapi.wrapper import EWrapper

from slob.testing import FakeTWS

__all__ = ["DemoResult", "run_demo"]

_FARM_NOTICES = range(2100, 2200)


@dataclass
class DemoResult:
    contract: str = ""
    ticks: int = 0
    volume: int = 0
    first_price: float = math.nan
    last_price: float = math.nan
    high: float = -math.inf
    low: float = math.inf
    errors: list[str] = field(default_factory=list)


class _DemoApp(EWrapper, EClient):  # type: ignore[misc]
    """IB's client used exactly as IB documents it; only the callbacks are ours."""

    def __init__(self, on_tick: Callable[[int, float, Decimal], None]) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.details_done = threading.Event()
        self.details: list[ContractDetails] = []
        self.errors: list[str] = []
        self._on_tick = on_tick
        self.stopping = False

    def run_until_disconnected(self) -> None:
        try:
            self.run()
        except TypeError:
            # IB's stock model races here: disconnect() from another thread resets the
            # server version to None while run() still drains its queue (ibapi 10.50
            # client.py run()). slob's own reader thread does not have this problem.
            if not self.stopping:
                raise

    def nextValidId(self, orderId: int) -> None:
        self.ready.set()

    def contractDetails(self, reqId: int, contractDetails: ContractDetails) -> None:
        self.details.append(contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self.details_done.set()

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str,
              advancedOrderRejectJson: str = "") -> None:
        if errorCode not in _FARM_NOTICES:
            self.errors.append(f"{errorCode}: {errorString}")
            self.details_done.set()

    def tickByTickAllLast(self, reqId: int, tickType: int, time: int, price: float, size: Decimal,
                          tickAttribLast: Any, exchange: str, specialConditions: str) -> None:
        self._on_tick(time, price, size)


def run_demo(
    *, seconds: float = 15.0, speed: float = 60.0, symbol: str = "NQ", out: TextIO,
    start: dt.datetime | None = None,
) -> DemoResult:
    """Run the demo for ``seconds`` of real time at ``speed`` simulated seconds per second."""
    result = DemoResult()
    lock = threading.Lock()
    window = {"ticks": 0, "volume": 0}

    def on_tick(unix_s: int, price: float, size: Decimal) -> None:
        with lock:
            result.ticks += 1
            result.volume += int(size)
            window["ticks"] += 1
            window["volume"] += int(size)
            if math.isnan(result.first_price):
                result.first_price = price
            result.last_price = price
            result.high = max(result.high, price)
            result.low = min(result.low, price)
            window["time"] = unix_s

    with FakeTWS(speed=speed, start=start) as tws:
        print(f"fake TWS on 127.0.0.1:{tws.port}, simulated clock {tws.clock.now():%Y-%m-%d %H:%M} UTC "
              f"at {speed:g}x", file=out)
        app = _DemoApp(on_tick)
        app.connect("127.0.0.1", tws.port, 1)
        runner = threading.Thread(target=app.run_until_disconnected, name="demo-ibapi-run", daemon=True)
        runner.start()
        try:
            if not app.ready.wait(10):
                raise RuntimeError("no nextValidId from the fake TWS within 10 s")
            print(f"connected: server version {app.serverVersion()}, IB client "
                  f"{_ibapi_version()}", file=out)
            query = Contract()
            query.symbol, query.secType, query.exchange, query.currency = symbol, "FUT", "CME", "USD"
            app.reqContractDetails(1, query)
            if not app.details_done.wait(10) or not app.details:
                raise RuntimeError(f"no contract details for {symbol}: {app.errors}")
            now = tws.clock.now()
            live = sorted(app.details, key=lambda d: d.contract.lastTradeDateOrContractMonth)
            front = next(d for d in live if _expiry(d) > now).contract
            result.contract = front.localSymbol
            print(f"{symbol} expiries: {', '.join(d.contract.localSymbol for d in live)}; "
                  f"front month {front.localSymbol} (conId {front.conId})", file=out)
            app.reqTickByTickData(2, front, "AllLast", 0, False)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                with lock:
                    n, vol, t = window["ticks"], window["volume"], window.get("time")
                    window["ticks"] = window["volume"] = 0
                    last = result.last_price
                stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%H:%M:%S") if t else "--:--:--"
                print(f"{stamp} UTC  {front.localSymbol}  last {last:10.2f}  ticks {n:5d}  "
                      f"volume {vol:6d}", file=out, flush=True)
            app.cancelTickByTickData(2)
        finally:
            app.stopping = True
            app.disconnect()
            runner.join(5)
        result.errors = app.errors
    print(f"done: {result.ticks} trades, volume {result.volume}, {result.contract} "
          f"{result.first_price:.2f} -> {result.last_price:.2f} (high {result.high:.2f}, "
          f"low {result.low:.2f})", file=out)
    return result


def _expiry(details: ContractDetails) -> dt.datetime:
    day = dt.datetime.strptime(details.contract.lastTradeDateOrContractMonth, "%Y%m%d")
    return day.replace(tzinfo=dt.timezone.utc)


def _ibapi_version() -> str:
    from slob.ib.version import ibapi_info

    return str(ibapi_info())
