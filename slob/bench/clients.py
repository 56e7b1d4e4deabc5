"""The three clients measured, each run in a process of its own (:func:`run_client`).

Every client ends in the same user callback work, :meth:`Recorder.hit`: stamp
``time.monotonic_ns()`` for the tick's sequence number (its SIZE), count it, and signal the
end at the N-th tick.

* ``slob``: ``slob.live.IBWSFetcher`` as users run it -- ``connect()``, ``listen()`` (as a
  task, so the subscription's confirmation window runs while ticks flow), ``subscribe(["NQ"])``
  (contract details + current time + reqTickByTickData AllLast) -- with ``on_tick`` set. Inside:
  IBClient's reader thread (recv -> slob.ib.wire -> IB's Decoder -> EWrapper overrides ->
  slob.ib.ticks) -> TickBridge -> the asyncio loop -> on_tick.
* ``ibapi``: IB's stock model: an ``EClient``+``EWrapper`` app, ``connect()`` (EReader
  thread), ``run()`` on a thread of its own, ``tickByTickAllLast`` callback.
* ``ib_async``: ``IB().connectAsync()``, ``reqTickByTickData(contract, "AllLast")``, each
  tick of ``ticker.tickByTicks`` handled in a ``ticker.updateEvent`` handler.

CPU time is ``time.process_time_ns()`` (all threads of the client process, user + system)
from just before the subscription request to the N-th callback (or the timeout); the time
from the first callback on is kept too (``cpu_streaming_us_per_tick``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
import traceback
from array import array
from multiprocessing.connection import Connection
from typing import Any, Callable

CLIENTS = ("slob", "ibapi", "ib_async")
LABELS = {
    "slob": "slob (IBWSFetcher)",
    "ibapi": "ibapi stock (EReader+run)",
    "ib_async": "ib_async 2.1.0",
}
PATHS = {
    "slob": "IBWSFetcher.connect/listen/subscribe(['NQ']) -> on_tick "
            "(IBClient reader thread -> TickBridge -> asyncio loop)",
    "ibapi": "EClient.connect (EReader thread) + EClient.run() thread -> EWrapper.tickByTickAllLast",
    "ib_async": "IB.connectAsync + reqTickByTickData -> ticker.updateEvent -> ticker.tickByTicks",
}
HOST = "127.0.0.1"


class Recorder:
    """The user's callback work, identical for every client."""

    __slots__ = ("cb", "n", "count", "on_done", "cpu0", "cpu_first", "cpu_end", "extra")

    def __init__(self, n: int) -> None:
        self.cb = array("q", bytes(8 * (n + 1)))
        self.n = n
        self.count = 0
        self.on_done: Callable[[], None] = lambda: None
        self.cpu0 = 0
        self.cpu_first = 0
        self.cpu_end = 0
        self.extra: "array[int] | None" = None

    def start(self) -> None:
        self.cpu0 = time.process_time_ns()

    def hit(self, seq: int) -> None:
        self.cb[seq] = time.monotonic_ns()
        self.count += 1
        if self.count == 1:
            self.cpu_first = time.process_time_ns()
        if self.count >= self.n:
            self.cpu_end = time.process_time_ns()
            self.on_done()

    def finish(self) -> None:
        if not self.cpu_end:
            self.cpu_end = time.process_time_ns()


def front_contract() -> Any:
    from slob.testing.futures import active_contracts
    return active_contracts("NQ", dt.datetime.now(dt.timezone.utc))[0]


# -- slob ----------------------------------------------------------------------------


async def _slob(port: int, rec: Recorder, timeout: float, info: dict[str, Any]) -> None:
    from slob.config.ib_config import IBConfig
    from slob.live.ib_ws_fetcher import IBWSFetcher

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    rec.on_done = lambda: None if done.done() else done.set_result(None)
    errors: list[str] = []
    fetcher = IBWSFetcher(config=IBConfig(port=port, client_id=11))
    hit = rec.hit
    arrivals = rec.extra
    if arrivals is None:
        fetcher.on_tick = lambda tick: hit(int(tick.size))
    else:
        def on_tick(tick: Any) -> None:
            seq = int(tick.size)
            arrivals[seq] = tick.received_ns
            hit(seq)
        fetcher.on_tick = on_tick
    fetcher.on_error = lambda exc: errors.append(repr(exc))
    await fetcher.connect()
    listener = asyncio.create_task(fetcher.listen())
    rec.start()
    await fetcher.subscribe(["NQ"])
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        info["timed_out"] = True
    rec.finish()
    stats = fetcher.get_stats()
    info["server_version"] = stats["server_version"]
    info["client_stats"] = {k: stats[k] for k in ("ticks", "rejected", "decode_errors", "duplicates",
                                                  "bridge_high_water", "callback_errors")}
    info["client_stats"]["bridge_wakeups"] = fetcher._bridge.wakeups if fetcher._bridge is not None else None
    info["client_stats"]["high_water_reports"] = fetcher.high_water_reports
    info["errors"] = errors[:20]
    await fetcher.disconnect()
    await asyncio.gather(listener, return_exceptions=True)


# -- IB's stock threading model --------------------------------------------------------


def _ibapi(port: int, rec: Recorder, timeout: float, info: dict[str, Any]) -> None:
    from ibapi.client import EClient
    from ibapi.contract import Contract
    from ibapi.wrapper import EWrapper

    done = threading.Event()
    rec.on_done = done.set
    hit = rec.hit

    class App(EWrapper, EClient):  # type: ignore[misc]
        def __init__(self) -> None:
            EWrapper.__init__(self)
            EClient.__init__(self, self)
            self.ready = threading.Event()
            self.errors: list[str] = []

        def nextValidId(self, orderId: int) -> None:  # noqa: N802,N803
            self.ready.set()

        def managedAccounts(self, accountsList: str) -> None:  # noqa: N802,N803
            pass

        def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str,  # noqa: N802,N803
                  advancedOrderRejectJson: str = "") -> None:
            self.errors.append(f"{errorCode} {errorString}")

        def tickByTickAllLast(self, reqId: int, tickType: int, time: int, price: float, size: Any,  # noqa: N802,N803
                              tickAttribLast: Any, exchange: str, specialConditions: str) -> None:
            hit(int(size))

    app = App()
    app.connect(HOST, port, 12)
    if not app.isConnected():
        raise ConnectionError(f"ibapi could not connect to {HOST}:{port}: {app.errors}")

    def run() -> None:
        try:
            app.run()
        except TypeError:  # IB's own race when disconnect() runs while run() drains the queue
            pass

    runner = threading.Thread(target=run, name="ibapi-run", daemon=True)
    runner.start()
    if not app.ready.wait(15):
        raise TimeoutError("ibapi: no nextValidId within 15 s")
    c = front_contract()
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = "NQ", "FUT", "CME", "USD"
    contract.lastTradeDateOrContractMonth, contract.localSymbol = c.contract_month, c.local_symbol
    rec.start()
    app.reqTickByTickData(1, contract, "AllLast", 0, False)
    if not done.wait(timeout):
        info["timed_out"] = True
    rec.finish()
    info["server_version"] = app.serverVersion()
    info["client_stats"] = {"queue_depth_at_end": app.msg_queue.qsize()}
    info["errors"] = app.errors[:20]
    app.disconnect()
    runner.join(2)


# -- ib_async -----------------------------------------------------------------------------


async def _ib_async(port: int, rec: Recorder, timeout: float, info: dict[str, Any]) -> None:
    import ib_async

    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    rec.on_done = lambda: None if done.done() else done.set_result(None)
    hit = rec.hit
    ib = ib_async.IB()
    errors: list[str] = []
    ib.errorEvent += lambda *args: errors.append(" ".join(map(str, args[:3])))
    await ib.connectAsync(HOST, port, clientId=13, timeout=15)
    c = front_contract()
    contract = ib_async.Future(symbol="NQ", lastTradeDateOrContractMonth=c.contract_month, exchange="CME",
                               currency="USD", localSymbol=c.local_symbol, conId=c.con_id)

    def on_update(ticker: Any) -> None:
        for tick in ticker.tickByTicks:
            hit(int(tick.size))

    rec.start()
    ticker = ib.reqTickByTickData(contract, "AllLast")
    ticker.updateEvent += on_update
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except asyncio.TimeoutError:
        info["timed_out"] = True
    rec.finish()
    info["server_version"] = ib.client.serverVersion()
    info["client_stats"] = {}
    info["errors"] = errors[:20]
    ib.disconnect()


# -- process entry point ------------------------------------------------------------------


def run_client(kind: str, conn: Connection, n: int, timeout: float, cb_path: str, record_arrivals: bool) -> None:
    """Import everything, receive the feed's port, measure, write the callback stamps (int64
    per seq 0..N, 0 = never delivered) to ``cb_path``, send the result dict, exit."""
    info: dict[str, Any] = {"client": kind, "timed_out": False}
    try:
        # Import before the port arrives, so start-up cost stays out of the measurement.
        if kind == "slob":
            import slob.live.ib_ws_fetcher  # noqa: F401
        elif kind == "ibapi":
            import ibapi.client  # noqa: F401
        elif kind == "ib_async":
            import ib_async  # noqa: F401
        else:
            raise ValueError(f"unknown client {kind!r}; choose from {CLIENTS}")
        conn.send("ready")
        port = conn.recv()
        cpu_window0 = time.process_time_ns()
        rec = Recorder(n)
        if record_arrivals and kind == "slob":
            rec.extra = array("q", bytes(8 * (n + 1)))
        if kind == "slob":
            asyncio.run(_slob(port, rec, timeout, info))
        elif kind == "ibapi":
            _ibapi(port, rec, timeout, info)
        else:
            asyncio.run(_ib_async(port, rec, timeout, info))
        with open(cb_path, "wb") as out:
            rec.cb.tofile(out)
        if rec.extra is not None:
            with open(cb_path + ".arrival", "wb") as out:
                rec.extra.tofile(out)
        info.update(callbacks=rec.count, cpu_ns=rec.cpu_end - rec.cpu0,
                    cpu_window_ns=time.process_time_ns() - cpu_window0,
                    cpu_streaming_ns=rec.cpu_end - rec.cpu_first if rec.cpu_first else 0)
        conn.send(info)
    except BaseException:
        info["error"] = traceback.format_exc(limit=6)
        conn.send(info)
    finally:
        conn.close()
        os._exit(0)  # do not wait for client library threads that may still linger
