"""One client connection to the fake TWS: handshake, requests and answers.

Behaviour follows a real TWS / IB Gateway (../shared/TWS-FACTS.md): the handshake reply
travels alone (IB's ``connect()`` reads only the first frame of it), START_API is
answered with MANAGED_ACCTS, NEXT_VALID_ID and the farm notices, a duplicate client id
gets 326 and the socket closed, and bad input is answered with an error (320) while the
connection stays up -- except broken framing, after which nothing can be trusted and
the connection is closed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from typing import Callable, Protocol
from zoneinfo import ZoneInfo

from ibapi.message import OUT

from slob.ib import wire
from slob.testing import fake_history
from slob.testing import tws_messages as msg
from slob.testing.fake_history import HistoryHost
from slob.testing.fake_market import TICK_BY_TICK_TYPES, Market, Subscription
from slob.testing.fake_orders import OrderBook
from slob.testing.futures import FutureContract, is_cme_open, resolve_contracts
from slob.testing.request_faults import RequestFault
from slob.testing.scenario import SimClock
from slob.trace.tws_requests import Request, RequestError, decode_request

log = logging.getLogger("slob.testing.fake_tws")

# Real TWS texts (TWS-FACTS §5 and the captures).
TEXTS = {
    100: "Max rate of messages per second has been exceeded.",
    103: "Duplicate order id",
    200: "No security definition has been found for the request",
    202: "Order Canceled - reason:",
    300: "Can't find EId with tickerId:{ticker}",
    320: "Error reading request. {detail}",
    322: "Error processing request. {detail}",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    354: (
        "Requested market data is not subscribed. Check API status by selecting the Account menu "
        "then under Management choose Market Data Subscription Manager and/or availability of "
        "delayed data.Delayed market data is available.{description} /TOP/ALL"
    ),
    1100: "Connectivity between IBKR and Trader Workstation has been lost.",
    1101: "Connectivity between IBKR and Trader Workstation has been restored - data lost.",
    1102: (
        "Connectivity between IBKR and Trader Workstation has been restored - data maintained. "
        "All data farms are connected: usfarm; ushmds; secdefnj."
    ),
    1300: "TWS socket port has been reset and this connection is being dropped. "
          "Please reconnect on the new port - {port}",
    2103: "Market data farm connection is broken:{farm}",
    2104: "Market data farm connection is OK:{farm}",
    2105: "HMDS data farm connection is broken:{farm}",
    2106: "HMDS data farm connection is OK:{farm}",
    2119: "Market data farm is connecting:{farm}",
    2157: "Sec-def data farm connection is broken:{farm}",
    2158: "Sec-def data farm connection is OK:{farm}",
    10089: (
        "Requested market data requires additional subscription for API. See link in "
        "'Market Data Connections' dialog for more details."
    ),
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10189: (
        "Failed to request tick-by-tick data.No market data permissions for CME FUT. Requested "
        "market data requires additional subscription for API. See link in 'Market Data "
        "Connections' dialog for more details."
    ),
    10190: "Max number of tick-by-tick requests has been reached.",
    10197: "No market data during competing live session",
}

# What a fresh paper account reports.
ACCOUNT_VALUES = (
    ("NetLiquidation", "1000000.00"),
    ("TotalCashValue", "1000000.00"),
    ("BuyingPower", "4000000.00"),
    ("AvailableFunds", "1000000.00"),
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_HIGH_WATER = 1 << 20


def error_text(code: int, **values: object) -> str:
    template = TEXTS.get(code, "")
    try:
        return template.format(**values)
    except KeyError:
        return template


def describe(contract: FutureContract) -> str:
    """IB's short description in 354 texts: ``MES SEP'26 (MESU6)``."""
    return (f"{contract.spec.root} {_MONTHS[contract.month - 1]}'{contract.year % 100:02d} "
            f"({contract.local_symbol})")


class SessionHost(HistoryHost, Protocol):
    """What a session needs of the server that accepted it (:class:`slob.testing.fake_tws.FakeTWS`):
    its settings, the market, the book and the clock, and where to report what happened.
    The session is given its host; it does not import the server."""

    @property
    def book(self) -> OrderBook: ...

    @property
    def market(self) -> Market: ...

    @property
    def clock(self) -> SimClock: ...

    @property
    def time_zone(self) -> ZoneInfo: ...

    @property
    def accounts(self) -> tuple[str, ...]: ...

    @property
    def server_version(self) -> int: ...

    @property
    def next_order_id(self) -> int: ...

    @property
    def seed(self) -> int: ...

    @property
    def max_messages_per_second(self) -> int: ...

    @property
    def pacing(self) -> str: ...

    @property
    def farm_notices(self) -> bool: ...

    @property
    def no_permission(self) -> frozenset[str]: ...

    @property
    def competing_session(self) -> bool: ...

    @property
    def tick_by_tick_limit(self) -> int: ...

    def _session_opened(self, session: Session) -> None: ...

    def _session_closed(self, session: Session) -> None: ...

    def _session_ready(self, session: Session) -> None: ...

    def _client_id_taken(self, client_id: int, asking: Session) -> bool: ...

    def _request_fault(self, session: Session, request: Request) -> RequestFault | None: ...

    def _record(self, request: Request) -> None: ...

    def _protocol_error(self, session: Session, exc: wire.WireError) -> None: ...

    def _pacing_violation(self, session: Session) -> None: ...

    def _notify(self) -> None: ...


class Session(asyncio.Protocol):
    """The server side of one API socket."""

    def __init__(self, tws: SessionHost) -> None:
        self.tws = tws
        self.transport: asyncio.Transport | None = None
        self.decoder = wire.FrameDecoder(expect_api_prefix=True)
        self.state = "hello"  # -> "start" (greeted) -> "ready" (START_API) -> "closed"
        self.server_version = 0
        self.client_id: int | None = None
        self.peer = ""
        self.md_type = 1
        self.number = 0  # the fake's count of accepted connections, from 1 (set by FakeTWS)
        self.held: list[bytes] | None = None
        #: trade ticks among the held frames, recorded in the sent log once released
        self._held_trades: list[tuple[int, str, int, float, int, str, bool, int]] = []
        self.futures_farm_announced = False
        self.positions_subscribed = False  # REQ_POSITIONS until CANCEL_POSITIONS
        self._writable = asyncio.Event()
        self._writable.set()
        self._arrivals: collections.deque[float] = collections.deque()
        self.pacing_violations = 0
        self._handlers: dict[int, Callable[[Request], None]] = {
            OUT.START_API: self._start_api,
            OUT.REQ_IDS: self._req_ids,
            OUT.REQ_CURRENT_TIME: self._req_current_time,
            OUT.REQ_CURRENT_TIME_IN_MILLIS: self._req_current_time_millis,
            OUT.REQ_CONTRACT_DATA: self._req_contract_data,
            OUT.REQ_MKT_DATA: self._req_mkt_data,
            OUT.CANCEL_MKT_DATA: self._cancel_mkt_data,
            OUT.REQ_MARKET_DATA_TYPE: self._req_market_data_type,
            OUT.REQ_TICK_BY_TICK_DATA: self._req_tick_by_tick,
            OUT.CANCEL_TICK_BY_TICK_DATA: self._cancel_tick_by_tick,
            OUT.REQ_POSITIONS: self._req_positions,
            OUT.CANCEL_POSITIONS: self._cancel_positions,
            OUT.REQ_OPEN_ORDERS: lambda r: self.tws.book.send_open_orders(self),
            OUT.REQ_ALL_OPEN_ORDERS: lambda r: self.tws.book.send_open_orders(self, everyone=True),
            OUT.REQ_AUTO_OPEN_ORDERS: lambda r: None,
            OUT.REQ_COMPLETED_ORDERS: lambda r: self.send(msg.completed_orders_end(self.server_version)),
            OUT.REQ_ACCT_DATA: self._req_account_updates,
            OUT.REQ_EXECUTIONS: self._req_executions,
            OUT.REQ_ACCOUNT_UPDATES_MULTI: self._req_account_updates_multi,
            OUT.CANCEL_ACCOUNT_UPDATES_MULTI: lambda r: None,
            OUT.REQ_MANAGED_ACCTS: lambda r: self.send(
                msg.managed_accounts(list(self.tws.accounts), self.server_version)),
            OUT.PLACE_ORDER: self._place_order,
            OUT.CANCEL_ORDER: lambda r: self.tws.book.cancel(self, r.int("orderId")),
            OUT.REQ_GLOBAL_CANCEL: lambda r: self.tws.book.global_cancel(self),
        }
        self._handlers.update(fake_history.session_handlers(self))  # bars, ticks, head timestamps

    # -- transport callbacks -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        self.tws._session_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = "closed"
        self._writable.set()
        self.tws._session_closed(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def drained(self) -> None:
        if not self._writable.is_set():
            await self._writable.wait()

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self.decoder.feed(data)
        except wire.WireError as exc:
            for payload in exc.frames:
                self._payload(payload)
            self.tws._protocol_error(self, exc)
            log.warning("! %s: %s; closing the connection", self.peer, exc)
            self.abort()
            return
        for payload in payloads:
            if self.state == "closed":
                return
            self._payload(payload)

    # -- output ----------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        if self.state == "closed" or self.transport is None or self.transport.is_closing():
            return
        if self.held is not None:
            self.held.append(frame)
            return
        self.transport.write(frame)

    def send_trade(self, frame: bytes, trade: tuple[int, str, int, float, int, str, bool, int]) -> None:
        """Send a frame carrying one trade tick and write it down in the fake's sent log
        when it goes to the transport. ``trade``: (req id, local symbol, Unix second,
        price, size, kind, resend, trade number); see slob.testing.fake_market.SentTick."""
        if self.state == "closed" or self.transport is None or self.transport.is_closing():
            return  # a dying socket: nothing is handed over (and nothing recorded)
        if self.held is not None:
            self.held.append(frame)
            self._held_trades.append(trade)
            return
        self.transport.write(frame)
        self._log_trade(trade, time.monotonic_ns())

    def _log_trade(self, trade: tuple[int, str, int, float, int, str, bool, int], sent_ns: int) -> None:
        req_id, contract, unix_s, price, size, kind, resend, seq = trade
        self.tws.market.sent.record(self.client_id or 0, self.number, req_id, contract, unix_s, price, size,
                                    kind, resend, seq, sent_ns)

    def hold(self) -> None:
        if self.held is None:
            self.held = []

    def release(self) -> None:
        held, self.held = self.held, None
        trades, self._held_trades = self._held_trades, []
        if held and self.transport is not None and self.state != "closed":
            self.transport.write(b"".join(held))
            now = time.monotonic_ns()
            for trade in trades:
                self._log_trade(trade, now)

    def close(self) -> None:
        """Close after what is queued has been written."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.state = "closed"
        if self.transport is not None:
            self.transport.abort()

    def error(self, req_id: int, code: int, **values: object) -> None:
        self.send(self.error_frame(req_id, code, **values))

    def error_frame(self, req_id: int, code: int, **values: object) -> bytes:
        """ERR_MSG ``code`` for this session: ``text`` if given, else the real text."""
        text = str(values.pop("text", "")) or error_text(code, **values)
        now_ms = self.tws.clock.now_ns() // 1_000_000
        return msg.error(req_id, code, text, self.server_version, time_ms=now_ms)

    # -- input -----------------------------------------------------------------

    def _payload(self, payload: bytes) -> None:
        if self.state == "hello":
            self._hello(payload)
            return
        try:
            message = wire.decode_message(payload, self.server_version)
            request = decode_request(message, self.client_id, self.server_version)
        except wire.WireError as exc:  # RequestError too: a protobuf body that does not parse
            self.tws._protocol_error(self, exc)
            self.error(-1, 320, detail=str(exc))
            return
        self.tws._record(request)
        if self._paced_out():
            return
        fault = self.tws._request_fault(self, request)
        if fault is not None:
            self._fault(fault, request)
            return
        self._handle(message.msg_id, request)

    def _handle(self, msg_id: int, request: Request) -> None:
        handler = self._handlers.get(msg_id)
        if handler is None:
            self.error(-1, 320, detail=f"Unknown message id {msg_id}.")
            return
        if self.state != "ready" and msg_id != OUT.START_API:
            log.info("! %s sent %s before START_API; ignored", self.peer, request.name)
            return
        try:
            handler(request)
        except (RequestError, ValueError, KeyError, IndexError) as exc:
            req_id = _safe_int(request.fields.get("reqId", "-1"))
            self.error(req_id, 320, detail=str(exc))
        except Exception as exc:  # a fake-TWS bug must not take the server down
            log.exception("fake TWS failed on %s", request.name)
            self.error(-1, 322, detail=repr(exc))

    def _fault(self, fault: RequestFault, request: Request) -> None:
        """An armed request fault (FakeTWS.reject_next_request and friends) meets its request."""
        if fault.kind == "reject":
            req_id = _safe_int(request.fields.get("reqId") or request.fields.get("orderId") or "-1")
            log.info("! %s: %s answered with error %d (injected)", self.peer, request.name, fault.code)
            self.error(req_id, fault.code)
        elif fault.kind == "ignore":
            log.info("! %s: %s left unanswered (injected)", self.peer, request.name)
        else:
            if fault.answered:
                self._handle(request.msg_id, request)
            log.info("! %s: connection closed at %s (injected)", self.peer, request.name)
            self.abort()

    def _hello(self, payload: bytes) -> None:
        try:
            hello = wire.ClientHello.parse(payload)
        except wire.WireError as exc:
            self.tws._protocol_error(self, exc)
            log.warning("! %s: %s; closing", self.peer, exc)
            self.abort()
            return
        top = self.tws.server_version
        if hello.min_version > top:
            log.warning("! %s wants server version >= %d, this TWS speaks up to %d; closing",
                        self.peer, hello.min_version, top)
            self.abort()
            return
        self.server_version = min(hello.max_version, top)
        self.state = "start"
        now = self.tws.clock.now().astimezone(self.tws.time_zone)
        self.send(msg.server_hello(self.server_version, now))

    def _paced_out(self) -> bool:
        """TWS's message-rate limit (TWS-FACTS §6): count what exceeds it; in "reject"
        mode answer 100 and drop the session after three violations."""
        limit = self.tws.max_messages_per_second
        if not limit:
            return False
        now = time.monotonic()
        arrivals = self._arrivals
        arrivals.append(now)
        while arrivals and now - arrivals[0] >= 1.0:
            arrivals.popleft()
        if len(arrivals) <= limit:
            return False
        self.pacing_violations += 1
        self.tws._pacing_violation(self)
        if self.tws.pacing == "reject":
            self.error(-1, 100)
            if self.pacing_violations >= 3:
                self.close()
            return True
        return False

    # -- session start ---------------------------------------------------------

    def _start_api(self, req: Request) -> None:
        if self.state == "ready":
            return
        client_id = req.int("clientId")
        if self.tws._client_id_taken(client_id, self):
            self.error(-1, 326)
            self.close()
            return
        self.client_id = client_id
        self.tws._session_ready(self)  # its record first: no reader sees a ready client without it
        self.state = "ready"
        sv = self.server_version
        # TWS replays a returning client's open orders first (api_reconnect_active_order).
        self.tws.book.replay_on_connect(self)
        self.send(msg.managed_accounts(list(self.tws.accounts), sv))
        self.send(msg.next_valid_id(self.tws.next_order_id, sv))
        if self.tws.farm_notices:
            self.error(-1, 2104, farm="usfarm")
            self.error(-1, 2106, farm="ushmds")
            self.error(-1, 2158, farm="secdefnj")
        self.tws._notify()

    def _req_ids(self, req: Request) -> None:
        self.send(msg.next_valid_id(self.tws.next_order_id, self.server_version))

    def _req_current_time(self, req: Request) -> None:
        self.send(msg.current_time(self.tws.clock.now_ns() // 1_000_000_000, self.server_version))

    def _req_current_time_millis(self, req: Request) -> None:
        self.send(msg.current_time_millis(self.tws.clock.now_ns() // 1_000_000, self.server_version))

    def _req_account_updates(self, req: Request) -> None:
        if req.get("subscribe") != "1":
            return
        sv = self.server_version
        account = req.get("account") or self.tws.accounts[0]
        for key, value in ACCOUNT_VALUES:
            self.send(msg.account_value(key, value, "USD", account, sv))
        self.send(msg.account_update_time(f"{self.tws.clock.now():%H:%M}", sv))
        self.send(msg.account_download_end(account, sv))

    def _req_account_updates_multi(self, req: Request) -> None:
        sv, req_id = self.server_version, req.int("reqId")
        account = req.get("account") or self.tws.accounts[0]
        for key, value in ACCOUNT_VALUES:
            self.send(msg.account_update_multi(req_id, account, req.get("modelCode"), key, value, "USD", sv))
        self.send(msg.account_update_multi_end(req_id, sv))

    def _req_executions(self, req: Request) -> None:
        self.tws.book.send_executions(self, req)

    def _req_positions(self, req: Request) -> None:
        self.positions_subscribed = True
        self.tws.book.send_positions(self)

    def _cancel_positions(self, req: Request) -> None:
        self.positions_subscribed = False

    def _place_order(self, req: Request) -> None:
        self.tws.book.place(self, req)
        self.tws.market.wake()  # a working order may need time to run (speed inf)

    # -- contracts -------------------------------------------------------------

    def resolve(self, req: Request, *, with_expired: bool = False) -> list[FutureContract]:
        """The futures a request's contract fields describe (empty: none match)."""
        return resolve_contracts(req.fields, self.tws.clock.now(), with_expired=with_expired)

    def _req_contract_data(self, req: Request) -> None:
        req_id = req.int("reqId")
        contracts = self.resolve(req, with_expired=req.get("includeExpired") == "1")
        if not contracts:
            self.error(req_id, 200)  # and no CONTRACT_DATA_END, as TWS does
            return
        sec_type = "CONTFUT" if req.get("secType").upper() == "CONTFUT" else "FUT"
        for frame in msg.contract_details_answer(req_id, contracts, self.tws.clock.now(), self.server_version,
                                                 exchange=req.get("exchange"), sec_type=sec_type,
                                                 seed=self.tws.seed):
            self.send(frame)

    def _one_contract(self, req: Request, req_id: int) -> FutureContract | None:
        contracts = self.resolve(req)
        if req.get("secType").upper() == "CONTFUT":
            contracts = []  # continuous futures are for historical data only
        if len(contracts) != 1:
            self.error(req_id, 200)
            return None
        return contracts[0]

    # -- market data -----------------------------------------------------------

    def _announce_futures_farm(self) -> None:
        if not self.futures_farm_announced and self.tws.farm_notices:
            self.futures_farm_announced = True
            self.error(-1, 2119, farm="usfuture")
            self.error(-1, 2104, farm="usfuture")

    def _req_market_data_type(self, req: Request) -> None:
        md_type = req.int("marketDataType")
        if md_type not in (1, 2, 3, 4):
            raise RequestError(f"market data type {md_type} is not 1-4")
        self.md_type = md_type

    def _req_mkt_data(self, req: Request) -> None:
        req_id = req.int("reqId")
        contract = self._one_contract(req, req_id)
        if contract is None:
            return
        sv = self.server_version
        self._announce_futures_farm()
        delayed = contract.spec.root in self.tws.no_permission
        if delayed and self.md_type not in (3, 4):
            self.error(req_id, 354, description=describe(contract))
            return
        if self.tws.competing_session:
            self.error(req_id, 10197)
            return
        # Real order (quote_snapshot / set_type_switch captures): params, type, then 10167.
        self.send(msg.tick_req_params(req_id, contract.spec.min_tick, "a60001", 3, sv))
        frozen = self.md_type in (2, 4) and not _market_open(self.tws)
        shown = (3 if delayed else 1) + (1 if frozen else 0)
        self.send(msg.market_data_type(req_id, shown, sv))
        if delayed:
            self.error(req_id, 10167)
        sub = Subscription(self, req_id, contract, "mkt", delayed=delayed)
        market = self.tws.market
        market.snapshot(sub)
        if req.get("snapshot") == "1":
            self.send(msg.tick_snapshot_end(req_id, sv))
            return
        market.add(sub)

    def _cancel_mkt_data(self, req: Request) -> None:
        req_id = req.int("reqId")
        if self.tws.market.remove(self, req_id) is None:
            self.error(req_id, 300, ticker=req_id)

    def _req_tick_by_tick(self, req: Request) -> None:
        req_id = req.int("reqId")
        tick_type = req.get("tickType")
        if tick_type not in TICK_BY_TICK_TYPES:
            raise RequestError(f"tick-by-tick type {tick_type!r} is not one of {TICK_BY_TICK_TYPES}")
        contract = self._one_contract(req, req_id)
        if contract is None:
            return
        self._announce_futures_farm()
        if contract.spec.root in self.tws.no_permission:
            # As captured: Last gets 10189, the other types 10089; delayed tick-by-tick
            # does not exist.
            self.error(req_id, 10189 if tick_type == "Last" else 10089)
            return
        if self.tws.competing_session:
            self.error(req_id, 10197)
            return
        market = self.tws.market
        if market.count(self, TICK_BY_TICK_TYPES) >= self.tws.tick_by_tick_limit:
            self.error(req_id, 10190)
            return
        market.add(Subscription(self, req_id, contract, tick_type))

    def _cancel_tick_by_tick(self, req: Request) -> None:
        self.tws.market.remove(self, req.int("reqId"))


def _market_open(tws: SessionHost) -> bool:
    return is_cme_open(tws.clock.now())


def _safe_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


__all__ = ["Session", "TEXTS", "describe", "error_text"]
