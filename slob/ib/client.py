"""IBClient: IB's EClient + EWrapper with one reader thread of slob's own.

IB's stock model runs two threads joined by a ``queue.Queue`` (an EReader thread that
re-slices its whole buffer for every frame, and an ``EClient.run()`` loop that polls the
queue). IBClient keeps IB's request methods and IB's ``Decoder`` but replaces both
threads with one: the thread named ``slob-ib-reader`` does recv -> :mod:`slob.ib.wire`
framing -> :class:`~slob.ib.hot_decoder.HotDecoder` for tick messages, IB's ``Decoder``
for the rest (text, or protobuf from server version 201) -> the EWrapper overrides below
-> :mod:`slob.ib.ticks` conversion -> ``sink`` (normally a
:class:`~slob.ib.bridge.TickBridge`). IB's camelCase stays in this class.

Records reach the sink in order. Ticks decoded from one read are handed over together
(``batch_sink``, at most ``_FLUSH_EVERY`` at a time, so a large read does not hold back its
first tick); any other record flushes what is waiting and goes at once.

Backpressure: with :attr:`IBClient.flow` set (the :class:`~slob.ib.bridge.TickBridge` the
sink feeds), the reader stops reading the socket while the consumer is behind -- after the
read that filled the bridge past its high-water mark, until the consumer drained it below
the low-water mark -- so TCP flow control pushes back on TWS instead of memory growing.
Nothing is dropped. While paused -- or busy with a read, e.g. in a zero-hop callback -- the
session is not silent (:attr:`last_received_ns` reads "now", an incomplete frame does not
age): the liveness check must not take a slow consumer for a dead TWS.

Caller obligations:

* :meth:`connect` blocks for the handshake (it raises :class:`TWSNotRunning`,
  :class:`HandshakeFailed`); the reader thread starts only once the session state is
  complete. :attr:`ready` resolves when both NEXT_VALID_ID and MANAGED_ACCTS arrived.
* Send requests from one thread at a time (IB's socket lock serialises the bytes, the
  pacer assumes one sender).
* :meth:`disconnect` closes the socket in the calling thread and joins the reader within
  ``join_timeout``. If the reader dies by itself, :attr:`closed` resolves with a
  :class:`ConnectionClosed` naming the cause and chaining the failure.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Protocol

from ibapi import comm
from ibapi.client import EClient
from ibapi.connection import Connection
from ibapi.contract import ContractDetails
from ibapi.decoder import Decoder
from ibapi.server_versions import MAX_CLIENT_VER
from ibapi.wrapper import EWrapper

from ibapi.execution import ExecutionFilter

from slob.ib import ticks, wire
from slob.ib import order_conversion as orders
from slob.ib.bridge import BridgeClosed
from slob.ib.hot_decoder import HotDecoder
from slob.ib.handshake import Session, open_session
from slob.ib.errors import (
    Action,
    ClientIdInUse,
    ConnectionLost,
    ContractNotFound,
    MarketDataNotSubscribed,
    RequestFailed,
    Severity,
    classify,
)
from slob.ib.history import HistoryNotPermitted, HistoryPacingViolation, hmds_kind
from slob.ib.pacing import TokenBucket
from slob.model import Quote, Tick
from slob.orders import UNSET_PNL, Execution, OpenOrder, OrderError, PositionReported

__all__ = ["ConnectionClosed", "FlowControl", "HistoryUpdate", "IBClient", "Subscription", "SubscriptionLive",
           "TwsMessage"]

log = logging.getLogger("slob.ib.client")
_NOT_SUBSCRIBED = {354, 10089, 10168, 10186, 10189}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Keys for the list requests that have no request id of their own.
_OPEN_ORDERS, _POSITIONS = -5, -61
# Ticks handed to the sink per batch at most: batching saves a hand-off per tick, the cap
# bounds how long the first tick of a large read waits for the rest (~64 x 2 us).
_FLUSH_EVERY = 64
# What converting a decoded tick may raise on odd input: reported, the frame skipped.
_HANDLING_ERRORS = (ValueError, TypeError, IndexError, ArithmeticError)
# CANCEL_HISTORICAL_TICKS exists only in protobuf form, from this server version on.
_CANCEL_TICKS_SERVER_VERSION = 215
#: What a keepUpToDate request's callback receives, on the reader thread: IB's BarData
#: (an update of the bar forming, or the first of a new bar), or the SlobError ending it.
HistoryUpdate = Callable[[Any], None]


class FlowControl(Protocol):
    """What the reader asks of its consumer's queue (TickBridge implements it)."""

    @property
    def full(self) -> bool: ...  # stop reading (checked after every read)

    @property
    def paused(self) -> bool: ...  # a producer is waiting in wait_for_room now

    def wait_for_room(self, stop: Callable[[], bool]) -> None: ...  # block until there is room or stop()

    def wake_producer(self) -> None: ...  # re-check stop() now


@dataclass(frozen=True, slots=True)
class TwsMessage:
    """An ERR_MSG from TWS (errors, warnings and notices alike), classified."""

    req_id: int
    code: int
    text: str
    time: dt.datetime
    severity: Severity
    action: Action


@dataclass(frozen=True, slots=True)
class SubscriptionLive:
    """A market-data or tick-by-tick request's first data arrived: on the bridge just
    before that data, so everything after it on the bridge was sent on that request."""

    req_id: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The reader thread ended: ``cause`` says why; ``error`` is the failure, if any."""

    cause: str
    error: BaseException | None
    by_client: bool
    #: The peer broke the protocol: unframeable bytes, or a frame it never completed.
    junk: bool = False


@dataclass(eq=False)
class Subscription:
    """A market-data or tick-by-tick request the reader converts into records."""

    req_id: int
    ref: ticks.ContractRef
    kind: str  # "tick_by_tick" or "market_data"
    merger: ticks.LastTradeMerger | None = None
    delayed: bool = False
    #: Resolved by the reader: None at the first data for this request, or the error
    #: TWS answered it with (so a caller can wait for acceptance without a consumer).
    status: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    settled: bool = False  # status resolved (a plain flag: checking the future takes a lock)

    def accept(self) -> None:
        if not self.settled:
            self.settled = True
            if not self.status.done():
                self.status.set_result(None)

    def reject(self, error: BaseException) -> None:
        if not self.settled:
            self.settled = True
            if not self.status.done():
                self.status.set_exception(error)


@dataclass(eq=False)
class _Pending:
    future: concurrent.futures.Future[Any]
    what: str
    rows: list[Any] = field(default_factory=list)


class IBClient(EWrapper, EClient):  # type: ignore[misc]
    def __init__(
        self,
        sink: Callable[[object], None],
        *,
        batch_sink: Callable[[list[object]], None] | None = None,
        max_messages_per_second: int = 45,
        max_server_version: int = MAX_CLIENT_VER,
        join_timeout: float = 1.0,
    ) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.sink = sink
        #: Takes a list of records at once (e.g. TickBridge.put_batch); default: ``sink`` each.
        self.batch_sink = batch_sink
        self._out: list[object] = []  # records decoded but not yet handed to the sink
        self._hot: HotDecoder | None = None
        self._reader_ident = 0
        self.pacer = TokenBucket(max_messages_per_second)
        self.max_server_version = max_server_version
        self.join_timeout = join_timeout
        #: Seconds :meth:`disconnect` waits for TWS to close its side after ours.
        self.close_grace = 0.25
        self.ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self.closed: concurrent.futures.Future[ConnectionClosed] = concurrent.futures.Future()
        self.next_order_id = 0
        self._have_order_id = False
        self._time_waiters: list[concurrent.futures.Future[int]] = []
        self.accounts: list[str] = []
        self.messages_in = 0
        self.messages_out = 0
        self.ticks_out = 0
        self.rejected: Counter[str] = Counter()
        self.decode_errors = 0
        self.client_id_rejected = False
        self.subscriptions: dict[int, Subscription] = {}
        self._pending: dict[int, _Pending] = {}
        self._order_ids: set[int] = set()
        #: Historical requests (bars, ticks, head timestamps) of this session: their errors
        #: go to their callers, never to the sink as TwsMessages (162 "no data" is an answer).
        self._history_ids: set[int] = set()
        self._history_streams: dict[int, HistoryUpdate] = {}
        self._prepaid = 0
        self._reader: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._closing = False
        self._abort_cause = ""
        self._abort_junk = False
        self._pnl_unset = False  # the protobuf commission report just decoded had no realizedPNL
        self._frame_ns = 0
        self._partial_since_ns = 0  # see partial_since_ns
        self._in_recv = False  # the reader waits for the peer (else it is busy with a read)
        #: The consumer's queue: the reader waits while it is full (backpressure). Set it
        #: before or after start(); None reads on whatever the consumer's speed.
        self.flow: FlowControl | None = None

    # -- connection ------------------------------------------------------------

    def connect(self, host: str, port: int, clientId: int, timeout: float = 10.0) -> None:  # noqa: N803
        """IB's handshake (blocking), then :meth:`start`. Raises :class:`TWSNotRunning`
        or :class:`HandshakeFailed` with the fix in the message."""
        self.start(open_session(host, port, timeout=timeout, max_version=self.max_server_version,
                                options=self.connectOptions or ""), clientId)

    def start(self, session: Session, client_id: int) -> None:
        """Take over a handshaken socket: complete the session state, start the reader
        thread, send START_API."""
        if self._reader is not None:
            raise RuntimeError("IBClient is single-use: create a new one to reconnect")
        sock = session.sock
        self._sock = sock
        conn = Connection(session.host, session.port)
        conn.socket = sock
        self.conn = conn
        self.host, self.port, self.clientId = session.host, session.port, client_id
        self.serverVersion_ = session.server_version
        self.connTime = session.connection_time
        self.decoder = Decoder(self, session.server_version)
        self.setConnState(EClient.CONNECTED)
        self._frame_ns = time.monotonic_ns()
        self._reader = threading.Thread(
            target=self._read_loop, args=(sock, session.decoder, session.early),
            name="slob-ib-reader", daemon=True,
        )
        self._reader.start()
        log.debug("= connected to %s:%d, server version %d, %s", session.host, session.port,
                  session.server_version, session.connection_time)
        self.startApi()

    def disconnect(self) -> None:
        """Close the session and stop the reader thread (within ``join_timeout``).

        Gracefully first: a FIN after everything already sent (the cancels of a clean stop)
        while the reader goes on reading until TWS closes too. Closing a socket that still
        holds unread data sends a reset instead, and a peer that had not yet read our last
        requests loses them. If TWS has not closed within ``close_grace`` seconds, both
        directions are shut."""
        self._closing = True
        self._release_reader()
        deadline = time.monotonic() + self.join_timeout
        sock = self._sock
        reader = self._reader
        joinable = reader is not None and reader is not threading.current_thread()
        if sock is not None:
            if reader is not None and joinable and reader.is_alive():
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                reader.join(min(self.close_grace, self.join_timeout / 2))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by the reader, or never connected
                pass
        if reader is not None and joinable:
            reader.join(max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                log.error("! reader thread did not stop within %.1f s", self.join_timeout)
        self.setConnState(EClient.DISCONNECTED)

    def abort(self, cause: str, *, junk: bool = False) -> None:
        """End the session from outside as a failure (not a clean close): a liveness probe
        went unanswered, a frame stayed incomplete (``junk``: a protocol violation). The
        reader ends with ``cause``."""
        if self.closed.done() or self._closing:
            return
        self._abort_cause, self._abort_junk = cause, junk
        self._release_reader()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _release_reader(self) -> None:
        """A reader paused by backpressure goes on to read (and see the end)."""
        flow = self.flow
        if flow is not None:
            flow.wake_producer()

    def _stopping(self) -> bool:
        return self._closing or bool(self._abort_cause)

    def _reader_busy(self) -> bool:
        """The reader is handling a read (decoding, a zero-hop callback) or paused by
        backpressure: not waiting for the peer."""
        reader = self._reader
        return not self._in_recv and reader is not None and reader.is_alive()

    @property
    def partial_since_ns(self) -> int:
        """monotonic ns since which the reader has waited for the rest of an incomplete
        frame (0: none). Only time spent waiting on the peer counts: not the time the
        reader spent busy or paused (it is not the peer holding the frame back)."""
        return 0 if self._reader_busy() else self._partial_since_ns

    @property
    def last_received_ns(self) -> int:
        """monotonic ns of the last bytes received (or of the session's start); "now"
        while the reader is busy or paused for a consumer that is behind -- that is not
        silence, and the liveness check must not take it for a dead TWS."""
        return time.monotonic_ns() if self._reader_busy() else self._frame_ns

    def isConnected(self) -> bool:  # noqa: N802
        return bool(self.connState == EClient.CONNECTED and self._sock is not None and not self.closed.done())

    @property
    def reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    # -- the reader thread -------------------------------------------------------

    def _read_loop(self, sock: socket.socket, decoder: wire.FrameDecoder, early: list[bytes]) -> None:
        cause = ""
        error: BaseException | None = None
        self._reader_ident = threading.get_ident()
        try:
            for payload in early:
                self._dispatch_frame(payload)
            self._flush()
            recv = sock.recv
            feed = decoder.feed
            dispatch = self._dispatch_frame
            dispatch_all = self._dispatch_frames
            flush = self._flush
            now = time.monotonic_ns()
            while True:
                if self._partial_since_ns:  # the time just spent busy is not the peer's
                    self._partial_since_ns += time.monotonic_ns() - now
                self._in_recv = True
                data = recv(1 << 16)
                self._in_recv = False
                if not data:
                    cause = ("disconnected by this client" if self._closing else self._abort_cause
                             or "TWS closed the connection")
                    break
                self._frame_ns = now = time.monotonic_ns()
                try:
                    payloads = feed(data)
                except wire.WireError as exc:
                    for payload in exc.frames:
                        dispatch(payload)
                    flush()
                    raise
                # An incomplete frame's age is what the liveness check watches: a peer that
                # announces a frame and never completes it is as dead as a silent one.
                if decoder.buffered:
                    if not self._partial_since_ns or not payloads:
                        self._partial_since_ns = self._partial_since_ns or now
                    else:
                        self._partial_since_ns = now  # a new frame began in this read
                else:
                    self._partial_since_ns = 0
                dispatch_all(payloads)
                flush()
                flow = self.flow
                if flow is not None and flow.full:
                    flow.wait_for_room(self._stopping)
        except OSError as exc:
            if self._closing:
                cause = "disconnected by this client"
            elif self._abort_cause:
                cause = self._abort_cause
            else:
                cause, error = f"socket error: {exc}", exc
        except wire.WireError as exc:
            cause, error = f"unreadable data from TWS: {exc}", exc
        except BridgeClosed as exc:  # the consumer (its event loop) is gone: nobody to feed
            cause = f"the consumer stopped: {exc}"
        except BaseException as exc:  # a bug downstream (wrapper, sink): stop loudly
            cause, error = f"reader failed: {exc!r}", exc
            log.exception("! reader thread failed")
        finally:
            try:
                sock.close()
            finally:
                try:
                    self._flush()  # what was decoded before the end still goes out
                except Exception:  # the consumer is gone (BridgeClosed): nobody to tell
                    self._out = []
                self._finish(cause or "reader stopped", error)

    def _finish(self, cause: str, error: BaseException | None) -> None:
        if self.client_id_rejected and not self._closing:
            cause = f"TWS refused client id {self.clientId} (326) and closed the connection"
        junk = isinstance(error, wire.WireError) or (self._abort_junk and not self._closing)
        closed = ConnectionClosed(cause, error, self._closing, junk)
        self.setConnState(EClient.DISCONNECTED)
        lost = ClientIdInUse(self.clientId) if self.client_id_rejected else ConnectionLost(cause)
        if error is not None:
            lost.__cause__ = error
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(lost)
        self._pending.clear()
        for future in self._time_waiters:
            if not future.done():
                future.set_exception(lost)
        self._time_waiters.clear()
        streams, self._history_streams = self._history_streams, {}
        for req_id, on_update in streams.items():
            self._tell_stream(req_id, on_update, lost)
        if not self.ready.done():
            self.ready.set_exception(lost)
        if not self.closed.done():
            self.closed.set_result(closed)
        try:
            self.sink(closed)
        except Exception:  # the consumer is gone (its loop closed); nothing left to tell
            pass

    def dispatch(self, payload: bytes) -> None:
        """Decode one frame's payload, drive the wrapper and hand the resulting records to
        the sink: what the reader thread does for every frame. Public for in-process fakes
        (no socket) and protocol tools; call it from one thread, and not while a reader
        thread runs."""
        self._dispatch_frame(payload)
        self._flush()

    def _flush(self) -> None:
        out = self._out
        if out:
            self._out = []
            if self.batch_sink is not None:
                self.batch_sink(out)
            else:
                sink = self.sink
                for item in out:
                    sink(item)

    def _send(self, record: object) -> None:
        """A record that is not a tick: after any ticks still waiting, at once."""
        if self._reader is None or threading.get_ident() == self._reader_ident:
            self._out.append(record)  # the reader's own, or no reader at all (in-process use)
            self._flush()
        else:  # a wrapper call on a requesting thread (e.g. IB's "not connected" error)
            self.sink(record)

    def _hot_decoder(self) -> HotDecoder:
        hot = self._hot
        if hot is None or hot.server_version != self.serverVersion_:
            hot = self._hot = HotDecoder(self, self.serverVersion_)
        return hot

    def _dispatch_frame(self, payload: bytes) -> None:
        self.messages_in += 1
        try:
            if self._hot_decoder().decode(payload):
                return
        except _HANDLING_ERRORS as exc:
            self._tick_failed(exc)
            return
        self._decode_with_ib(payload)

    def _dispatch_frames(self, payloads: list[bytes]) -> None:
        """The reader's loop over one read's frames: :meth:`_dispatch_frame` unrolled,
        since per-frame calls are a good part of the cost at high rates."""
        self.messages_in += len(payloads)
        hot_decode = self._hot_decoder().decode
        for payload in payloads:
            try:
                if hot_decode(payload):
                    if len(self._out) >= _FLUSH_EVERY:
                        self._flush()
                    continue
            except _HANDLING_ERRORS as exc:
                self._tick_failed(exc)
                continue
            self._decode_with_ib(payload)

    def _tick_failed(self, exc: BaseException) -> None:
        self._bad_message(f"TWS tick message could not be handled ({exc!r}); skipped")

    def _decode_with_ib(self, payload: bytes) -> None:
        try:
            message = wire.decode_message(payload, self.serverVersion_)
        except wire.MalformedMessage as exc:
            self._bad_message(f"malformed message from TWS ({exc}); skipped")
            return
        try:
            if message.protobuf is not None:
                self.decoder.processProtoBuf(message.protobuf, message.msg_id)
            else:
                self.decoder.interpret(message.fields, message.msg_id)
        except (ValueError, TypeError, IndexError, UnicodeDecodeError, ArithmeticError) as exc:
            # ArithmeticError: decimal.InvalidOperation for a non-numeric size field
            self._bad_message(f"TWS message {message.msg_id} could not be decoded ({exc!r}); skipped")
        except Exception as exc:
            if type(exc).__name__ == "BadMessage":  # ibapi.utils.BadMessage
                self._bad_message(f"TWS message {message.msg_id} is incomplete ({exc}); skipped")
            else:
                raise

    def _bad_message(self, text: str) -> None:
        self.decode_errors += 1
        log.warning("! %s", text)
        self._send(TwsMessage(-1, 0, text, dt.datetime.now(dt.timezone.utc), Severity.WARNING, Action.NONE))

    # -- sending -----------------------------------------------------------------

    def prepay(self) -> float:
        """Reserve a send slot now; returns the seconds to wait before the next request
        (an asyncio caller awaits them instead of blocking in :meth:`sendMsg`)."""
        self._prepaid += 1
        return self.pacer.reserve()

    def _pace(self) -> None:
        if self._prepaid > 0:
            self._prepaid -= 1
            return
        delay = self.pacer.reserve()
        if delay > 0:
            time.sleep(delay)

    def sendMsg(self, msgId: int, msg: str) -> None:  # noqa: N802,N803
        self._pace()
        use_binary_id = self.serverVersion_ >= wire.MIN_PROTOBUF_SERVER_VERSION
        self.conn.sendMsg(comm.make_msg(msgId, use_binary_id, msg))
        self.messages_out += 1

    def sendMsgProtoBuf(self, msgId: int, msg: bytes) -> None:  # noqa: N802,N803
        self._pace()
        self.conn.sendMsg(comm.make_msg_proto(msgId, msg))
        self.messages_out += 1

    # -- request bookkeeping (any thread) ----------------------------------------

    def expect(self, req_id: int, what: str) -> concurrent.futures.Future[Any]:
        """Register a request whose answer (rows then an END) completes the future."""
        pending = _Pending(concurrent.futures.Future(), what)
        self._pending[req_id] = pending
        self._fail_if_closed(pending.future)
        return pending.future

    def _fail_if_closed(self, future: concurrent.futures.Future[Any]) -> None:
        """A request made after the reader ended gets no answer: fail it now rather than
        leave the caller to time out."""
        closed = self.closed
        if closed.done() and not future.done():
            future.set_exception(ConnectionLost(f"the session is closed ({closed.result().cause})"))

    def subscribe(self, sub: Subscription) -> None:
        self.subscriptions[sub.req_id] = sub

    def unsubscribe(self, req_id: int) -> Subscription | None:
        return self.subscriptions.pop(req_id, None)

    # -- EWrapper: session ---------------------------------------------------------

    def nextValidId(self, orderId: int) -> None:  # noqa: N802,N803
        self.next_order_id = orderId
        self._have_order_id = True
        self._check_ready()

    def managedAccounts(self, accountsList: str) -> None:  # noqa: N802,N803
        self.accounts = [a for a in accountsList.split(",") if a]
        self._check_ready()

    def _check_ready(self) -> None:
        # TWS-FACTS §1.3: the session is usable once both have arrived, in either order.
        if self._have_order_id and self.accounts and not self.ready.done():
            self.ready.set_result(self.next_order_id)

    def connectionClosed(self) -> None:  # noqa: N802
        pass  # the reader thread reports the close itself (ConnectionClosed)

    def error(self, reqId: int, errorTime: int, errorCode: int, errorString: str,  # noqa: N802,N803
              advancedOrderRejectJson: str = "") -> None:
        info = classify(errorCode)
        when = _EPOCH + dt.timedelta(milliseconds=errorTime) if errorTime else dt.datetime.now(dt.timezone.utc)
        if errorCode == 326:
            self.client_id_rejected = True
        if self._closing and 500 <= errorCode < 600 and "Sending Error" in errorString:
            # IB's client could not send on a session this client is closing (the write half
            # is shut first): expected, not TWS's error. The request's caller hears of the close.
            log.debug("< %d %s while closing (req %d)", errorCode, errorString, reqId)
            return
        if reqId in self._order_ids:  # an order's error, for on_order (which logs it): never a request's
            self._send(OrderError(reqId, errorCode, errorString, when))
            return
        if reqId in self._history_ids:  # a historical request's: its caller hears of it
            self._history_error(reqId, errorCode, errorString, info.severity)
            return
        pending = self._pending.get(reqId) if reqId >= 0 else None
        # 100: TWS dropped the request under pacing -- it will never answer it.
        failed = info.severity in (Severity.ERROR, Severity.FATAL) or errorCode == 100
        if pending is not None and failed:
            del self._pending[reqId]
            pending.future.set_exception(_request_error(errorCode, reqId, errorString, pending.what))
        sub = self.subscriptions.get(reqId) if reqId >= 0 else None
        if sub is not None and info.severity in (Severity.ERROR, Severity.FATAL) and not sub.settled:
            sub.reject(_request_error(errorCode, reqId, errorString, sub.ref.symbol))
        if sub is not None and errorCode == 10167:
            sub.delayed = True
            sub.ref = ticks.ContractRef(sub.ref.symbol, sub.ref.contract, sub.ref.min_tick, True)
            if sub.merger is not None:
                sub.merger.ref = sub.ref
        self._log_error(info.severity, errorCode, errorString, reqId)
        self._send(TwsMessage(reqId, errorCode, errorString, when, info.severity, info.action))

    def _log_error(self, severity: Severity, code: int, text: str, req_id: int) -> None:
        level = logging.INFO if severity is Severity.INFO else logging.WARNING
        if log.isEnabledFor(level):
            log.log(level, "! %d %s (req %d)", code, text, req_id)

    # -- EWrapper: contract details ----------------------------------------------

    def contractDetails(self, reqId: int, contractDetails: ContractDetails) -> None:  # noqa: N802,N803
        pending = self._pending.get(reqId)
        if pending is not None:
            pending.rows.append(contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802,N803
        pending = self._pending.pop(reqId, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(pending.rows)

    def request_current_time(self) -> concurrent.futures.Future[int]:
        """Ask TWS for its clock (Unix seconds); the future completes with the answer."""
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._time_waiters.append(future)
        self._fail_if_closed(future)
        if not future.done():
            self.reqCurrentTime()
        return future

    def currentTime(self, time: int) -> None:  # noqa: N802
        waiters, self._time_waiters = self._time_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(time)

    # -- EWrapper: ticks -------------------------------------------------------------

    def _emit(self, record: Tick | Quote | ticks.Rejection | None) -> None:
        if record is None:
            return
        if type(record) is ticks.Rejection:
            self.rejected[record.reason] += 1
            return
        self.ticks_out += 1
        self._out.append(record)  # called only while decoding: flushed by the reader or dispatch()

    # IB's Decoder (and HotDecoder) hand every protobuf tick to these hooks first; IB's
    # defaults build a log record per call. slob reads the decoded arguments instead (and
    # tells HotDecoder not to call them at all).
    ignores_proto_hooks = True

    def tickByTickDataProtoBuf(self, tickByTickDataProto: Any) -> None:  # noqa: N802,N803
        pass

    def tickPriceProtoBuf(self, tickPriceProto: Any) -> None:  # noqa: N802,N803
        pass

    def tickSizeProtoBuf(self, tickSizeProto: Any) -> None:  # noqa: N802,N803
        pass

    def tickStringProtoBuf(self, tickStringProto: Any) -> None:  # noqa: N802,N803
        pass

    def _settle(self, sub: Subscription) -> None:
        """The request's first data: accepted, and said on the bridge before the data."""
        sub.accept()
        self._out.append(SubscriptionLive(sub.req_id))

    def tickByTickAllLast(self, reqId: int, tickType: int, time: int, price: float, size: Decimal,  # noqa: N802,N803
                          tickAttribLast: Any, exchange: str, specialConditions: str) -> None:
        sub = self.subscriptions.get(reqId)
        if sub is None:
            self.rejected["unknown_request"] += 1
            return
        if not sub.settled:
            self._settle(sub)
        record = ticks.trade(sub.ref, time, price, size, exchange, self._frame_ns)
        if type(record) is Tick:  # the hot path: _emit inlined
            self.ticks_out += 1
            self._out.append(record)
        else:
            self._emit(record)

    def tickByTickBidAsk(self, reqId: int, time: int, bidPrice: float, askPrice: float,  # noqa: N802,N803
                         bidSize: Decimal, askSize: Decimal, tickAttribBidAsk: Any) -> None:
        sub = self.subscriptions.get(reqId)
        if sub is None:
            self.rejected["unknown_request"] += 1
            return
        self._emit(ticks.quote(sub.ref, time, bidPrice, askPrice, bidSize, askSize, self._frame_ns))

    def tickPrice(self, reqId: int, tickType: int, price: float, attrib: Any) -> None:  # noqa: N802,N803
        sub = self.subscriptions.get(reqId)
        if sub is not None and not sub.settled:
            self._settle(sub)
        if sub is not None and sub.merger is not None:
            self._emit(sub.merger.on_price(tickType, price, self._frame_ns))

    def tickSize(self, reqId: int, tickType: int, size: Decimal) -> None:  # noqa: N802,N803
        sub = self.subscriptions.get(reqId)
        if sub is not None and sub.merger is not None:
            self._emit(sub.merger.on_size(tickType, size, self._frame_ns))

    def tickString(self, reqId: int, tickType: int, value: str) -> None:  # noqa: N802,N803
        sub = self.subscriptions.get(reqId)
        if sub is not None and sub.merger is not None:
            self._emit(sub.merger.on_string(tickType, value, self._frame_ns))

    def marketDataType(self, reqId: int, marketDataType: int) -> None:  # noqa: N802,N803
        sub = self.subscriptions.get(reqId)
        if sub is not None and marketDataType in (1, 2) and not sub.settled:
            self._settle(sub)  # live data accepted (delayed waits for its first ticks)
        if sub is not None and marketDataType in (3, 4) and not sub.delayed:
            sub.delayed = True
            sub.ref = ticks.ContractRef(sub.ref.symbol, sub.ref.contract, sub.ref.min_tick, True)
            if sub.merger is not None:
                sub.merger.ref = sub.ref

    # Everything else IB's decoder calls is ignored quietly (EWrapper's defaults log each
    # call at INFO, which costs time on the reader thread).
    def tickGeneric(self, reqId: int, tickType: int, value: float) -> None:  # noqa: N802,N803
        pass

    def tickReqParams(self, tickerId: int, minTick: float, bboExchange: str,  # noqa: N802,N803
                      snapshotPermissions: int) -> None:
        sub = self.subscriptions.get(tickerId)
        if sub is not None and minTick > 0 and minTick != sub.ref.min_tick:
            sub.ref = ticks.ContractRef(sub.ref.symbol, sub.ref.contract, minTick, sub.ref.delayed)
            if sub.merger is not None:
                sub.merger.ref = sub.ref

    def tickSnapshotEnd(self, reqId: int) -> None:  # noqa: N802,N803
        pass

    # -- EWrapper: orders, executions, positions -------------------------------------

    def track_order(self, order_id: int) -> None:
        """Errors carrying this id are order errors (reported as OrderError records)."""
        self._order_ids.add(order_id)

    def request_open_orders(self) -> concurrent.futures.Future[list[OpenOrder]]:
        future = self.expect(_OPEN_ORDERS, "open orders")
        self.reqOpenOrders()
        return future

    def request_positions(self) -> concurrent.futures.Future[list[PositionReported]]:
        future = self.expect(_POSITIONS, "positions")
        self.reqPositions()
        return future

    def request_executions(self, req_id: int) -> concurrent.futures.Future[list[Execution]]:
        future = self.expect(req_id, "executions")
        self.reqExecutions(req_id, ExecutionFilter())
        return future

    def openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:  # noqa: N802,N803
        record = orders.open_order(orderId, contract, order, orderState)
        self._order_ids.add(orderId)
        pending = self._pending.get(_OPEN_ORDERS)
        if pending is not None:
            pending.rows.append(record)
        self._send(record)

    def openOrderEnd(self) -> None:  # noqa: N802
        self._finish_rows(_OPEN_ORDERS)

    def orderStatus(self, orderId: int, status: str, filled: Decimal, remaining: Decimal,  # noqa: N802,N803
                    avgFillPrice: float, permId: int, parentId: int, lastFillPrice: float, clientId: int,
                    whyHeld: str, mktCapPrice: float) -> None:
        self._send(orders.order_update(orderId, status, filled, remaining, avgFillPrice, permId, parentId,
                                      lastFillPrice, whyHeld))

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:  # noqa: N802,N803
        record = orders.execution(reqId, contract, execution)
        pending = self._pending.get(reqId) if reqId >= 0 else None
        if pending is not None:
            pending.rows.append(record)  # an answer to request_executions, not a new fill
        else:
            self._send(record)

    def execDetailsEnd(self, reqId: int) -> None:  # noqa: N802,N803
        self._finish_rows(reqId)

    def commissionAndFeesReportProtoBuf(self, commissionAndFeesReportProto: Any) -> None:  # noqa: N802,N803
        # From 201 an opening fill's report leaves realizedPNL out, and IB's decoder then says
        # 0.0 -- a realized P&L of zero, which it is not. Remember it for the call that follows
        # (IB's decoder makes both, in order, on this thread).
        self._pnl_unset = not commissionAndFeesReportProto.HasField("realizedPNL")

    def commissionAndFeesReport(self, commissionAndFeesReport: Any) -> None:  # noqa: N802,N803
        if self._pnl_unset:
            self._pnl_unset = False
            commissionAndFeesReport.realizedPNL = UNSET_PNL  # "none", as the text protocol says
        self._send(orders.commission(commissionAndFeesReport))

    def position(self, account: str, contract: Any, position: Decimal, avgCost: float) -> None:  # noqa: N803
        pending = self._pending.get(_POSITIONS)
        if pending is not None:
            pending.rows.append(orders.position(account, contract, position, avgCost))

    def positionEnd(self) -> None:  # noqa: N802
        self._finish_rows(_POSITIONS)
        if not self._stopping():  # a closing session's subscriptions end with it
            self.cancelPositions()

    def completedOrdersEnd(self) -> None:  # noqa: N802
        pass

    def _finish_rows(self, key: int) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(pending.rows)

    def connectAck(self) -> None:  # noqa: N802
        pass

    # -- historical data ----------------------------------------------------------------
    # The requests complete futures on the reader thread, as request_executions does; IB's
    # decoder calls the same methods for text (< 208) and protobuf (>= 208) answers.

    def expect_quietly(self, req_id: int, what: str) -> concurrent.futures.Future[Any]:
        """:meth:`expect` for a request whose errors go to its caller only, never to the
        sink (the history service's contract-details lookups)."""
        self._history_ids.add(req_id)
        return self.expect(req_id, what)

    def request_history(self, req_id: int, contract: Any, end: str, duration: str, bar: str, what: str,
                        use_rth: bool = False, *, format_date: int = 2, keep_up_to_date: bool = False,
                        on_update: HistoryUpdate | None = None) -> concurrent.futures.Future[list[Any]]:
        """REQ_HISTORICAL_DATA; the future completes with IB's BarData rows at
        HISTORICAL_DATA_END -- with no rows for 162 "HMDS query returned no data" -- or
        fails with a RequestFailed (HistoryPacingViolation for 162 pacing,
        HistoryNotPermitted, ContractNotFound for 200). ``keep_up_to_date``: afterwards
        ``on_update`` gets each HISTORICAL_DATA_UPDATE's BarData on the reader thread, and
        the SlobError that ends the stream (an error, the session closing)."""
        self._history_ids.add(req_id)
        future = self.expect(req_id, _describe(contract))
        if future.done():
            return future
        if keep_up_to_date and on_update is not None:
            self._history_streams[req_id] = on_update
        self.reqHistoricalData(req_id, contract, end, duration, bar, what, int(use_rth), format_date,
                               keep_up_to_date, [])
        return future

    def request_historical_ticks(self, req_id: int, contract: Any, start: str, end: str, count: int,
                                 what: str = "TRADES", use_rth: bool = False) -> concurrent.futures.Future[list[Any]]:
        """REQ_HISTORICAL_TICKS (exactly one of ``start``/``end`` set); the future completes
        with IB's HistoricalTickLast (TRADES), HistoricalTick (MIDPOINT) or
        HistoricalTickBidAsk rows once TWS says ``done``."""
        self._history_ids.add(req_id)
        future = self.expect(req_id, _describe(contract))
        if not future.done():
            self.reqHistoricalTicks(req_id, contract, start, end, count, what, int(use_rth), True, [])
        return future

    def request_head_timestamp(self, req_id: int, contract: Any, what: str = "TRADES", use_rth: bool = False,
                               format_date: int = 2) -> concurrent.futures.Future[str]:
        """REQ_HEAD_TIMESTAMP; the future completes with TWS's text (epoch seconds for
        ``format_date=2``)."""
        self._history_ids.add(req_id)
        future = self.expect(req_id, _describe(contract))
        if not future.done():
            self.reqHeadTimeStamp(req_id, contract, what, int(use_rth), format_date)
        return future

    def cancel_history(self, req_id: int, kind: str = "bars") -> None:
        """Stop waiting for (and tell TWS to drop) a historical request: ``kind`` is
        ``bars``, ``ticks`` or ``head``. Its late answers and errors are ignored."""
        self._pending.pop(req_id, None)
        self._history_streams.pop(req_id, None)
        if not self.isConnected():
            return
        if kind == "bars":
            self.cancelHistoricalData(req_id)
        elif kind == "head":
            self.cancelHeadTimeStamp(req_id)
        elif kind == "ticks" and self.serverVersion() >= _CANCEL_TICKS_SERVER_VERSION:
            self.cancelHistoricalTicks(req_id)

    def _history_error(self, req_id: int, code: int, text: str, severity: Severity) -> None:
        kind = hmds_kind(text) if code == 162 else ""
        level = logging.INFO if kind == "no_data" or severity is Severity.INFO else logging.WARNING
        log.log(level, "! %d %s (history request %d)", code, text, req_id)
        failed = severity in (Severity.ERROR, Severity.FATAL) or code == 100
        pending = self._pending.get(req_id)
        if pending is not None and (failed or kind == "no_data"):
            del self._pending[req_id]
            if pending.future.done():
                return
            if kind == "no_data":
                pending.future.set_result(pending.rows)
            elif kind == "pacing":
                pending.future.set_exception(HistoryPacingViolation(code, req_id, text, pending.what))
            elif kind == "permission":
                pending.future.set_exception(HistoryNotPermitted(code, req_id, text, pending.what))
            else:
                pending.future.set_exception(_request_error(code, req_id, text, pending.what))
            return
        stream = self._history_streams.pop(req_id, None) if failed else None
        if stream is not None:  # a keepUpToDate stream ended by TWS (10225 bust, farm loss...)
            self._tell_stream(req_id, stream, _request_error(code, req_id, text, "the bar stream"))

    def _tell_stream(self, req_id: int, on_update: HistoryUpdate, item: object) -> None:
        try:
            on_update(item)
        except Exception:  # the caller's bug must not end the session's reader
            log.exception("! the update callback of history request %d failed; the stream is dropped", req_id)
            self._history_streams.pop(req_id, None)

    def historicalData(self, reqId: int, bar: Any) -> None:  # noqa: N802,N803
        pending = self._pending.get(reqId)
        if pending is not None:
            pending.rows.append(bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802,N803
        self._finish_rows(reqId)

    def historicalDataUpdate(self, reqId: int, bar: Any) -> None:  # noqa: N802,N803
        on_update = self._history_streams.get(reqId)
        if on_update is not None:
            self._tell_stream(reqId, on_update, bar)

    def _tick_rows(self, req_id: int, ticks: Any, done: bool) -> None:
        pending = self._pending.get(req_id)
        if pending is not None:
            pending.rows.extend(ticks)
            if done:
                self._finish_rows(req_id)

    def historicalTicksLast(self, reqId: int, ticks: Any, done: bool) -> None:  # noqa: N802,N803
        self._tick_rows(reqId, ticks, done)

    def historicalTicks(self, reqId: int, ticks: Any, done: bool) -> None:  # noqa: N802,N803
        self._tick_rows(reqId, ticks, done)

    def historicalTicksBidAsk(self, reqId: int, ticks: Any, done: bool) -> None:  # noqa: N802,N803
        self._tick_rows(reqId, ticks, done)

    def headTimestamp(self, reqId: int, headTimestamp: str) -> None:  # noqa: N802,N803
        pending = self._pending.pop(reqId, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(headTimestamp)

    # IB's decoder hands each protobuf answer to these hooks first; EWrapper's defaults
    # log every call. The decoded arguments arrive through the methods above.
    def historicalDataProtoBuf(self, historicalDataProto: Any) -> None:  # noqa: N802,N803
        pass

    def historicalDataEndProtoBuf(self, historicalDataEndProto: Any) -> None:  # noqa: N802,N803
        pass

    def historicalDataUpdateProtoBuf(self, historicalDataUpdateProto: Any) -> None:  # noqa: N802,N803
        pass

    def historicalTicksLastProtoBuf(self, historicalTicksLastProto: Any) -> None:  # noqa: N802,N803
        pass

    def historicalTicksProtoBuf(self, historicalTicksProto: Any) -> None:  # noqa: N802,N803
        pass

    def historicalTicksBidAskProtoBuf(self, historicalTicksBidAskProto: Any) -> None:  # noqa: N802,N803
        pass

    def headTimestampProtoBuf(self, headTimestampProto: Any) -> None:  # noqa: N802,N803
        pass


def _describe(contract: Any) -> str:
    """A contract as error messages name it: its local symbol, else its symbol."""
    return str(getattr(contract, "localSymbol", "") or getattr(contract, "symbol", "") or "the contract")


def _request_error(code: int, req_id: int, text: str, what: str) -> RequestFailed:
    if code == 200:
        return ContractNotFound(code, req_id, text, what)
    if code in _NOT_SUBSCRIBED:
        return MarketDataNotSubscribed(code, req_id, text, what)
    return RequestFailed(code, req_id, text)
