"""FakeEClient: slob's IBClient with TWS replaced in process -- no socket, no thread.

For unit tests of code that talks to IB through :class:`~slob.ib.client.IBClient` (or
through :class:`~slob.live.IBWSFetcher`, see :class:`FakeConnector`)::

    fake = FakeEClient().open(client_id=1)      # nextValidId + managedAccounts answered
    fake.reqTickByTickData(7, contract, "AllLast", 0, False)
    assert fake.last("REQ_TICK_BY_TICK_DATA")["localSymbol"] == "NQZ4"
    fake.deliver_trade(7, 21000.25, size=2)     # a real TICK_BY_TICK frame, decoded by IB
    fake.drop_connection()                      # the same end-of-connection path as a socket

What it does:

* **Requests are recorded, decoded.** Every request IB's ``EClient`` methods send is kept
  in :attr:`FakeEClient.requests` as a :class:`~slob.trace.tws_requests.Request` with
  named fields (the decoding FakeTWS uses), searchable with :meth:`~FakeEClient.requests_named`
  and :meth:`~FakeEClient.last`.
* **Answers are real frames.** The ``deliver_*`` helpers build each message with the
  encoders FakeTWS sends (:mod:`slob.testing.tws_messages`,
  :mod:`slob.testing.tws_order_messages`) and pass it through
  :meth:`IBClient.dispatch <slob.ib.client.IBClient.dispatch>`, so IB's ``Decoder`` and
  slob's conversion run exactly as they do for a socket.
* **Routine requests are answered for you** (``auto_answer=True``, the default), the way
  FakeTWS answers them: START_API (MANAGED_ACCTS, NEXT_VALID_ID, farm notices), ids,
  current time, contract details of NQ/MNQ/ES/MES (error 200 for anything else), the
  market-data preamble, and the ENDs of the open-order, position and execution lists.
  Orders are recorded but never acknowledged or filled by themselves: the test says what
  happens to them (:meth:`~FakeEClient.acknowledge`, :meth:`~FakeEClient.deliver_fill`, ...).
* **History is answered** from ``history_scenarios`` (price family -> scenario, e.g.
  ``{"NQ": ScriptedScenario.from_candles(day)}``) with the bars, ticks and head timestamps
  FakeTWS would send (:mod:`slob.testing.fake_history`; a scripted scenario is its own
  history, a generated one starts at the clock's time of the first request); without
  one, HMDS has no data (162). Pacing is off unless ``fake.history.pacing`` is set.
* **Time is simulated**: :attr:`FakeEClient.clock` is a paused
  :class:`~slob.testing.scenario.SimClock` (default start: a Monday with NQZ4 the front
  month) that stamps current-time answers, errors, trades and fills; move it with
  ``fake.clock.advance(seconds)``.

Everything happens synchronously in the calling thread: a ``deliver_*`` call returns after
the wrapper callbacks and the ``sink`` have run. Call a FakeEClient from one thread only
-- with an :class:`~slob.live.IBWSFetcher`, the event loop's (the sink is then the tick
bridge, fed from the loop thread itself).

It speaks what FakeTWS speaks: server versions 100-226 (default 226, or
``$SLOB_FAKE_TWS_SERVER_VERSION``), classic text up to 200, binary ids and protobuf by
family from 201. Protobuf requests are decoded into the same named fields as text ones.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from ibapi import comm
from ibapi.client import EClient
from ibapi.decoder import Decoder
from ibapi.message import OUT

from slob.config.ib_config import IBConfig
from slob.ib import wire
from slob.ib.client import IBClient, TwsMessage
from slob.ib.errors import TWSNotRunning
from slob.model import Tick
from slob.testing import tws_messages as msg
from slob.testing import tws_order_messages as omsg
from slob.testing.fake_history import FakeHistory
from slob.testing.fake_orders import EXEC_BASE, PERM_BASE, activation_status, exec_id, order_from_request
from slob.testing.fake_session import error_text
from slob.testing.fake_tws import DEFAULT_START
from slob.testing.futures import FutureContract, active_contracts, resolve_contracts
from slob.testing.order_records import (
    COMMISSION_PER_CONTRACT,
    TERMINAL,
    UNTRANSMITTED,
    ExecutionRecord,
    OrderRecord,
)
from slob.testing.history_tape import standalone_price
from slob.testing.scenario import Scenario, SimClock
from slob.trace.tws_requests import Request, decode_request
from slob.testing.tws_versions import MIN_PROTOBUF_SERVER_VERSION, check_server_version, default_server_version

__all__ = ["FakeConnector", "FakeEClient"]

log = logging.getLogger("slob.testing.fake_eclient")

#: Farm notices a real TWS sends after START_API, and on the first market-data request.
_START_NOTICES = ((2104, "usfarm"), (2106, "ushmds"), (2158, "secdefnj"))
_FUTURES_NOTICES = ((2119, "usfuture"), (2104, "usfuture"))


class FakeEClient(IBClient):
    """See the module docstring.

    ``sink`` receives what IBClient produces (Tick, Quote, TwsMessage, ConnectionClosed,
    order records); by default they are appended to :attr:`records`. ``server_version``
    (100-226), ``accounts``, ``next_order_id``, ``seed`` (the contract-details order) and
    ``farm_notices`` mean what they mean for FakeTWS; ``clock`` (or ``start``) sets the
    simulated time.
    """

    def __init__(
        self,
        sink: Callable[[object], None] | None = None,
        *,
        server_version: int | None = None,
        accounts: Iterable[str] = ("DU1234567",),
        next_order_id: int = 1,
        clock: SimClock | None = None,
        start: dt.datetime | None = None,
        seed: int = 1,
        auto_answer: bool = True,
        farm_notices: bool = True,
        history_scenarios: Mapping[str, Scenario] | None = None,
    ) -> None:
        server_version = check_server_version(
            default_server_version() if server_version is None else server_version, "FakeEClient")
        self.records: list[object] = []
        super().__init__(sink if sink is not None else self.records.append, max_server_version=server_version)
        self.server_version = server_version
        self.account_list = tuple(accounts)
        if not self.account_list:
            raise ValueError("FakeEClient needs at least one account")
        self.order_id_to_report = next_order_id
        self.clock = clock if clock is not None else SimClock(start or DEFAULT_START, 0.0)
        self.seed = seed
        self.auto_answer = auto_answer
        self.farm_notices = farm_notices
        #: Every request sent, decoded, oldest first.
        self.requests: list[Request] = []
        #: The orders placed (by order id), as TWS would hold them.
        self.orders: dict[int, OrderRecord] = {}
        #: The fills delivered so far (what REQ_EXECUTIONS lists).
        self.executions: list[ExecutionRecord] = []
        self._fake_api_client_id: int | None = None
        self._fake_opened = False
        self._fake_md_type = 1
        self._fake_futures_farm_announced = False
        self._fake_perm_ids = itertools.count(PERM_BASE)
        self._fake_exec_seq = itertools.count(EXEC_BASE)
        self._fake_answers: dict[int, Callable[[Request], None]] = {
            OUT.START_API: self._fake_answer_start_api,
            OUT.REQ_IDS: lambda r: self._fake_send(msg.next_valid_id(self.order_id_to_report, self._fake_sv)),
            OUT.REQ_CURRENT_TIME: lambda r: self._fake_send(msg.current_time(self.clock.now_ns() // 10**9, self._fake_sv)),
            OUT.REQ_CURRENT_TIME_IN_MILLIS: lambda r: self._fake_send(
                msg.current_time_millis(self.clock.now_ns() // 10**6, self._fake_sv)),
            OUT.REQ_CONTRACT_DATA: self._fake_answer_contract_data,
            OUT.REQ_MKT_DATA: self._fake_answer_mkt_data,
            OUT.REQ_MARKET_DATA_TYPE: self._fake_answer_market_data_type,
            OUT.REQ_TICK_BY_TICK_DATA: self._fake_answer_tick_by_tick,
            OUT.REQ_POSITIONS: lambda r: self._fake_send(msg.position_end(self._fake_sv)),
            OUT.REQ_OPEN_ORDERS: self._fake_answer_open_orders,
            OUT.REQ_ALL_OPEN_ORDERS: self._fake_answer_open_orders,
            OUT.REQ_COMPLETED_ORDERS: lambda r: self._fake_send(msg.completed_orders_end(self._fake_sv)),
            OUT.REQ_EXECUTIONS: self._fake_answer_executions,
            OUT.REQ_MANAGED_ACCTS: lambda r: self._fake_send(msg.managed_accounts(list(self.account_list), self._fake_sv)),
        }
        #: The historical data service answering REQ_HISTORICAL_DATA & co. (see the module docstring).
        self.history = FakeHistory(now_ns=self.clock.now_ns, scenarios=history_scenarios or {},
                                   price_of=standalone_price(), zone=dt.timezone.utc, no_permission=frozenset)
        self.history.pacing = None
        self._fake_answers.update(self.history.handlers(_HistoryPort(self)))

    # -- the session ---------------------------------------------------------------

    def open(self, client_id: int = 1) -> "FakeEClient":
        """Complete the session state IBClient.start sets from a handshake, then send
        START_API (answered at once when ``auto_answer``). Returns self."""
        if self._fake_opened:
            raise RuntimeError("FakeEClient is single-use, as IBClient is: create a new one to reconnect")
        self._fake_opened = True
        self.host, self.port, self.clientId = "in-process", 0, client_id
        self.serverVersion_ = self.server_version
        self.connTime = f"{self.clock.now():%Y%m%d %H:%M:%S} UTC"
        self.decoder = Decoder(self, self.server_version)
        self.setConnState(EClient.CONNECTED)
        self._frame_ns = time.monotonic_ns()
        log.debug("= in-process session, server version %d, client id %d", self.server_version, client_id)
        self.startApi()
        return self

    def connect(self, host: str, port: int, clientId: int, timeout: float = 10.0) -> None:  # noqa: N803
        """IB's ``connect`` signature for code under test: no network, :meth:`open`."""
        self.open(clientId)

    def disconnect(self) -> None:
        """End the session as :meth:`IBClient.disconnect` does (ConnectionClosed, by client)."""
        self._closing = True
        if self._fake_opened and not self.closed.done():
            self._finish("disconnected by this client", None)
        self.setConnState(EClient.DISCONNECTED)

    def drop_connection(self, cause: str = "TWS closed the connection") -> None:
        """TWS goes away (crash, network cut): the same end-of-connection path as a socket
        EOF -- pending requests fail with ConnectionLost, :attr:`closed` resolves, the
        sink receives a ConnectionClosed."""
        self._fake_require_open()
        self._finish(cause, None)

    def isConnected(self) -> bool:  # noqa: N802
        return bool(self._fake_opened and self.connState == EClient.CONNECTED and not self.closed.done())

    # -- requests ------------------------------------------------------------------

    def sendMsg(self, msgId: int, msg: str) -> None:  # noqa: N802,N803
        if self._prepaid > 0:  # no pacing without a socket; keep IBClient's bookkeeping straight
            self._prepaid -= 1
        payload = comm.make_msg(msgId, self._fake_sv >= MIN_PROTOBUF_SERVER_VERSION, msg)[4:]
        self._fake_take(payload)

    def sendMsgProtoBuf(self, msgId: int, msg: bytes) -> None:  # noqa: N802,N803
        if self._prepaid > 0:
            self._prepaid -= 1
        self._fake_take(comm.make_msg_proto(msgId, msg)[4:])

    def _fake_take(self, payload: bytes) -> None:
        """Decode one request payload as FakeTWS would, and record (and answer) it."""
        request = decode_request(wire.decode_message(payload, self._fake_sv), self._fake_api_client_id, self._fake_sv)
        self._fake_record(request)

    def _fake_record(self, request: Request) -> None:
        self.requests.append(request)
        self.messages_out += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("> %s %s", request.name, dict(request.fields))
        if request.msg_id == OUT.START_API and self._fake_api_client_id is None:
            self._fake_api_client_id = request.int("clientId")
        if request.msg_id == OUT.PLACE_ORDER:
            self._fake_take_order(request)
        if self.auto_answer:
            answer = self._fake_answers.get(request.msg_id)
            if answer is not None:
                answer(request)

    def requests_named(self, name: str) -> list[Request]:
        """The requests called ``name`` (IB's name, e.g. ``REQ_TICK_BY_TICK_DATA``), in order."""
        return [r for r in self.requests if r.name == name]

    def last(self, name: str) -> Request:
        """The latest request called ``name``; LookupError (naming what was sent) if none."""
        for r in reversed(self.requests):
            if r.name == name:
                return r
        raise LookupError(f"no {name} was sent; sent: {[r.name for r in self.requests]}")

    # -- what the sink received (when it is the default, :attr:`records`) ------------

    @property
    def ticks(self) -> list[Tick]:
        return [r for r in self.records if type(r) is Tick]

    def messages(self, code: int | None = None) -> list[TwsMessage]:
        """The TwsMessages (errors and notices) received, optionally of one code."""
        return [r for r in self.records if isinstance(r, TwsMessage) and (code is None or r.code == code)]

    # -- delivering messages -----------------------------------------------------------

    def deliver(self, frames: bytes) -> None:
        """Dispatch complete frames (4-byte length prefix + payload each) as if TWS sent
        them; ValueError for a partial frame."""
        self._fake_require_open()
        decoder = wire.FrameDecoder()
        payloads = decoder.feed(frames)
        if decoder.buffered:
            raise ValueError(f"{decoder.buffered} bytes do not make a complete frame")
        for payload in payloads:
            if self.closed.done():
                raise RuntimeError("the connection is closed: TWS sends nothing more on it")
            self._frame_ns = time.monotonic_ns()
            self.dispatch(payload)

    def _fake_send(self, frame: bytes) -> None:
        self.deliver(frame)

    @property
    def _fake_sv(self) -> int:
        return self.server_version

    def _fake_when(self, when: dt.datetime | None) -> dt.datetime:
        return self.clock.now() if when is None else when

    def deliver_error(self, code: int, req_id: int = -1, text: str | None = None, **values: object) -> None:
        """ERR_MSG ``code`` (TWS's real text for known codes unless ``text`` is given;
        ``values`` fill its placeholders, e.g. ``farm="usfarm"``), stamped with the clock."""
        body = text if text is not None else error_text(code, **values)
        self._fake_send(msg.error(req_id, code, body, self._fake_sv, time_ms=self.clock.now_ns() // 1_000_000))

    def deliver_contract_details(self, req_id: int, contracts: str | Iterable[FutureContract], *,
                                 end: bool = True) -> None:
        """CONTRACT_DATA for each contract (a root such as ``"NQ"``: its live expiries at
        the clock's time), then CONTRACT_DATA_END unless ``end`` is False."""
        now = self.clock.now()
        listed = active_contracts(contracts, now) if isinstance(contracts, str) else list(contracts)
        for contract in listed:
            self._fake_send(msg.contract_data(req_id, contract, now, self._fake_sv))
        if end:
            self._fake_send(msg.contract_data_end(req_id, self._fake_sv))

    def deliver_trade(self, req_id: int, price: float, size: int = 1, *, time: dt.datetime | None = None,
                      exchange: str = "CME", conditions: str = "", all_last: bool = True) -> None:
        """A tick-by-tick trade (AllLast, or Last) for request ``req_id``."""
        unix_s = int(self._fake_when(time).timestamp())
        self._fake_send(msg.tbt_last(req_id, all_last, unix_s, price, size, 0, exchange, conditions, self._fake_sv))

    def deliver_quote(self, req_id: int, bid: float, ask: float, bid_size: int = 1, ask_size: int = 1, *,
                      time: dt.datetime | None = None) -> None:
        """A tick-by-tick BidAsk for request ``req_id``."""
        unix_s = int(self._fake_when(time).timestamp())
        self._fake_send(msg.tbt_bid_ask(req_id, unix_s, bid, ask, bid_size, ask_size, 0, self._fake_sv))

    def deliver_tick_price(self, req_id: int, tick_type: int, price: float, size: int = 0) -> None:
        """TICK_PRICE for a reqMktData request (e.g. 4 LAST, 1 BID, 2 ASK)."""
        self._fake_send(msg.tick_price(req_id, tick_type, price, size, 0, self._fake_sv))

    def deliver_tick_size(self, req_id: int, tick_type: int, size: int) -> None:
        """TICK_SIZE for a reqMktData request (e.g. 5 LAST_SIZE, 8 VOLUME)."""
        self._fake_send(msg.tick_size(req_id, tick_type, size, self._fake_sv))

    def deliver_tick_string(self, req_id: int, tick_type: int, value: str) -> None:
        """TICK_STRING for a reqMktData request (e.g. 45 LAST_TIMESTAMP, Unix seconds)."""
        self._fake_send(msg.tick_string(req_id, tick_type, value, self._fake_sv))

    def connectivity_lost(self) -> None:
        """TWS lost IB's servers: 2103 (farm broken) and 1100; the session stays up."""
        self.deliver_error(2103, farm="usfarm")
        self.deliver_error(1100)

    def connectivity_restored(self, data_maintained: bool = True) -> None:
        """2104 (farm OK), then 1102 (subscriptions kept) or 1101 (subscriptions lost)."""
        self.deliver_error(2104, farm="usfarm")
        self.deliver_error(1102 if data_maintained else 1101)

    # -- orders ----------------------------------------------------------------------

    def _fake_take_order(self, req: Request) -> None:
        """Keep a PLACE_ORDER as the order TWS would hold (the same id again modifies it)."""
        try:
            oid = req.int("orderId")
            contracts = resolve_contracts(req.fields, self.clock.now())
            if len(contracts) != 1:
                log.info("! order %d names no single known future; recorded, not held", oid)
                return
            order_type = " ".join(req.get("orderType").upper().split())
            existing = self.orders.get(oid)
            parent = self.orders.get(req.int("parentId", 0))
            order = order_from_request(
                req, client_id=self.clientId, account=self.account_list[0], contract=contracts[0],
                order_type=order_type, parent=parent,
                perm_id=existing.perm_id if existing is not None else next(self._fake_perm_ids))
        except ValueError as exc:  # includes RequestError: a field that is not a number
            log.info("! unreadable order: %s; recorded, not held", exc)
            return
        if existing is not None:
            order = replace(order, status=existing.status, why_held=existing.why_held,
                            filled=existing.filled, avg_fill_price=existing.avg_fill_price,
                            last_fill_price=existing.last_fill_price, commission=existing.commission,
                            fills=existing.fills, revision=existing.revision + (existing.status != UNTRANSMITTED))
        self.orders[oid] = order
        self.order_id_to_report = max(self.order_id_to_report, oid + 1)

    def _fake_order(self, order_id: int) -> OrderRecord:
        try:
            return self.orders[order_id]
        except KeyError:
            raise KeyError(f"order {order_id} was not placed (placed: {sorted(self.orders)})") from None

    def deliver_open_order(self, order_id: int) -> None:
        """OPEN_ORDER for a placed order in its current status."""
        self._fake_send(omsg.open_order(self._fake_order(order_id), self._fake_sv))

    def deliver_order_status(self, order_id: int, status: str | None = None, *, why_held: str | None = None) -> None:
        """ORDER_STATUS for a placed order, after setting its ``status``/``why_held`` if given."""
        o = self._fake_order(order_id)
        if status is not None:
            o.status = status
        if why_held is not None:
            o.why_held = why_held
        self._fake_send(omsg.order_status(o, self._fake_sv))

    def acknowledge(self, order_id: int) -> None:
        """What TWS sends when it takes a transmitted order: OPEN_ORDER + ORDER_STATUS,
        PreSubmitted for a market order, Submitted for others, a child of an unfilled
        parent PreSubmitted with whyHeld ``child`` (FakeTWS's rules)."""
        o = self._fake_order(order_id)
        parent = self.orders.get(o.parent_id) if o.parent_id else None
        o.transmit = True
        o.status, o.why_held = activation_status(o, parent)
        self.deliver_open_order(order_id)
        self.deliver_order_status(order_id)

    def deliver_fill(self, order_id: int, price: float, *, time: dt.datetime | None = None,
                     realized_pnl: float | None = None, liquidity: int = 2) -> ExecutionRecord:
        """Fill what remains of an order at ``price``, in the message order TWS uses:
        EXECUTION_DATA, OPEN_ORDER + ORDER_STATUS Filled, the pair again with the
        commission, COMMISSION_REPORT. OCA siblings and children are the test's to drive."""
        o = self._fake_order(order_id)
        when = self._fake_when(time)
        qty = o.remaining
        if qty <= 0:
            raise ValueError(f"order {order_id} has nothing left to fill")
        commission = round(COMMISSION_PER_CONTRACT.get(o.contract.spec.root, 2.25) * float(qty), 6)
        cum = o.filled + qty
        avg = (o.avg_fill_price * float(o.filled) + price * float(qty)) / float(cum)
        o.filled, o.avg_fill_price, o.last_fill_price = cum, avg, price
        o.status, o.why_held = "Filled", ""
        execution = ExecutionRecord(
            exec_id=exec_id(next(self._fake_exec_seq), when), order_id=o.order_id, client_id=o.client_id,
            perm_id=o.perm_id, account=o.account, contract=o.contract,
            side="BOT" if o.action == "BUY" else "SLD", shares=qty, price=price, time=when, cum_qty=cum,
            avg_price=avg, order_ref=o.order_ref, commission=commission, realized_pnl=realized_pnl,
            last_liquidity=liquidity,
        )
        o.fills.append(execution)
        self.executions.append(execution)
        self._fake_send(omsg.execution_data(-1, execution, self._fake_sv))
        self.deliver_open_order(order_id)
        self.deliver_order_status(order_id)
        o.commission = (o.commission or 0.0) + commission
        self.deliver_open_order(order_id)
        self.deliver_order_status(order_id)
        self._fake_send(omsg.commission_report(execution, self._fake_sv))
        return execution

    def deliver_cancelled(self, order_id: int) -> None:
        """ORDER_STATUS Cancelled, then error 202, as TWS confirms a cancel."""
        self.deliver_order_status(order_id, "Cancelled", why_held="")
        self.deliver_error(202, order_id)

    # -- automatic answers -----------------------------------------------------------

    def _fake_require_open(self) -> None:
        if not self._fake_opened:
            raise RuntimeError("call open() first: the session has not started")

    def _fake_answer_start_api(self, req: Request) -> None:
        sv = self._fake_sv
        self._fake_send(msg.managed_accounts(list(self.account_list), sv))
        self._fake_send(msg.next_valid_id(self.order_id_to_report, sv))
        if self.farm_notices:
            for code, farm in _START_NOTICES:
                self.deliver_error(code, farm=farm)

    def _fake_answer_contract_data(self, req: Request) -> None:
        req_id = req.int("reqId")
        now = self.clock.now()
        contracts = resolve_contracts(req.fields, now, with_expired=req.get("includeExpired") == "1")
        if not contracts:
            self.deliver_error(200, req_id)  # and no CONTRACT_DATA_END, as TWS does
            return
        sec_type = "CONTFUT" if req.get("secType").upper() == "CONTFUT" else "FUT"
        for frame in msg.contract_details_answer(req_id, contracts, now, self._fake_sv, exchange=req.get("exchange"),
                                                 sec_type=sec_type, seed=self.seed):
            self._fake_send(frame)

    def _fake_one_contract(self, req: Request) -> FutureContract | None:
        contracts = [] if req.get("secType").upper() == "CONTFUT" else resolve_contracts(req.fields, self.clock.now())
        if len(contracts) != 1:
            self.deliver_error(200, req.int("reqId"))
            return None
        if self.farm_notices and not self._fake_futures_farm_announced:
            self._fake_futures_farm_announced = True
            for code, farm in _FUTURES_NOTICES:
                self.deliver_error(code, farm=farm)
        return contracts[0]

    def _fake_answer_market_data_type(self, req: Request) -> None:
        self._fake_md_type = req.int("marketDataType", 1)

    def _fake_answer_mkt_data(self, req: Request) -> None:
        contract = self._fake_one_contract(req)
        if contract is None:
            return
        req_id = req.int("reqId")
        self._fake_send(msg.tick_req_params(req_id, contract.spec.min_tick, "a60001", 3, self._fake_sv))
        self._fake_send(msg.market_data_type(req_id, 1, self._fake_sv))

    def _fake_answer_tick_by_tick(self, req: Request) -> None:
        self._fake_one_contract(req)

    def _fake_answer_open_orders(self, req: Request) -> None:
        for o in sorted(self.orders.values(), key=lambda o: o.order_id):
            if o.live:
                self.deliver_open_order(o.order_id)
                self.deliver_order_status(o.order_id)
        self._fake_send(msg.open_order_end(self._fake_sv))

    def _fake_answer_executions(self, req: Request) -> None:
        req_id = req.int("reqId")
        for e in self.executions:
            self._fake_send(omsg.execution_data(req_id, e, self._fake_sv))
        for e in self.executions:
            self._fake_send(omsg.commission_report(e, self._fake_sv))
        self._fake_send(msg.execution_data_end(req_id, self._fake_sv))

    @property
    def live_orders(self) -> list[OrderRecord]:
        """Placed orders that are transmitted and not finished."""
        return [o for o in self.orders.values() if o.transmit and o.status not in TERMINAL]


class _HistoryPort:
    """A FakeEClient as the history service sees it."""

    def __init__(self, fake: FakeEClient) -> None:
        self.fake = fake

    @property
    def server_version(self) -> int:
        return self.fake.server_version

    @property
    def alive(self) -> bool:
        return self.fake.isConnected()

    def send(self, frame: bytes) -> None:
        self.fake.deliver(frame)

    def fail(self, req_id: int, code: int, text: str) -> None:
        self.fake.deliver_error(code, req_id, text)

    def contracts(self, req: Request, with_expired: bool) -> list[FutureContract]:
        return resolve_contracts(req.fields, self.fake.clock.now(), with_expired=with_expired)


class FakeConnector:
    """What :class:`~slob.live.IBWSFetcher` connects through instead of a socket
    (``IBWSFetcher(..., client_factory=FakeConnector())``): every connection attempt
    gets a new, opened :class:`FakeEClient` sharing one clock. :attr:`client` is the
    current one; :meth:`refuse` makes the next attempts fail as if TWS were down.

    ``fake_options`` are passed to each FakeEClient (``accounts``, ``seed``, ...).
    """

    def __init__(self, **fake_options: Any) -> None:
        fake_options.setdefault("clock", SimClock(fake_options.pop("start", None) or DEFAULT_START, 0.0))
        self.clock: SimClock = fake_options["clock"]
        self._options = fake_options
        self.clients: list[FakeEClient] = []
        self._refusals = 0
        self.attempts = 0

    def refuse(self, attempts: int = 1) -> None:
        """Refuse the next ``attempts`` connection attempts (TWSNotRunning)."""
        self._refusals += attempts

    def __call__(self, sink: Callable[[object], None], config: IBConfig) -> FakeEClient:
        self.attempts += 1
        if self._refusals > 0:
            self._refusals -= 1
            raise TWSNotRunning(config.host, config.port, "refused by FakeConnector")
        client = FakeEClient(sink, **self._options)
        self.clients.append(client)
        return client.open(config.client_id)

    @property
    def client(self) -> FakeEClient:
        """The FakeEClient of the latest connection."""
        if not self.clients:
            raise LookupError("no connection yet: call the fetcher's connect() first")
        return self.clients[-1]
