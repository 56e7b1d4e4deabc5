"""IBClient: IB's EClient + EWrapper with one reader thread of slob's own.

IB's stock model runs two threads joined by a ``queue.Queue`` (an EReader thread that
re-slices its whole buffer for every frame, and an ``EClient.run()`` loop that polls the
queue). IBClient keeps IB's request methods and IB's ``Decoder`` but replaces both
threads with one: the thread named ``slob-ib-reader`` does recv -> :mod:`slob.ib.wire`
framing -> :class:`~slob.ib.hot_decoder.HotDecoder` for tick messages, IB's ``Decoder``
for the rest (text, or protobuf from server version 201) -> the EWrapper overrides below
-> :mod:`slob.ib.ticks` conversion -> ``sink`` (normally a
:class:`~slob.ib.bridge.TickBridge`). IB's camelCase stays in this class.

This module holds the connection, the reader thread, sending and pacing, the session and
tick callbacks. The order surface (:mod:`slob.ib.client_orders`) and the history surface
(:mod:`slob.ib.client_history`) are mixins of IBClient in modules of their own; the records
callers see are in :mod:`slob.ib.client_types` (re-exported here).

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
from decimal import Decimal
from typing import Any, Callable

from ibapi import comm
from ibapi.client import EClient
from ibapi.connection import Connection
from ibapi.contract import ContractDetails
from ibapi.decoder import Decoder
from ibapi.server_versions import MAX_CLIENT_VER
from ibapi.wrapper import EWrapper


from slob.ib import ticks, wire
from slob.ib.bridge import BridgeClosed
from slob.ib.client_history import HistoryRequests
from slob.ib.client_orders import OrderCallbacks
from slob.ib.client_types import (
    ConnectionClosed,
    FlowControl,
    HistoryUpdate,
    Pending,
    Subscription,
    SubscriptionLive,
    TwsMessage,
    request_error,
)
from slob.ib.hot_decoder import HotDecoder
from slob.ib.handshake import Session, open_session
from slob.ib.errors import (
    Action,
    ClientIdInUse,
    ConnectionLost,
    Severity,
    classify,
)
from slob.ib.pacing import TokenBucket
from slob.model import Quote, Tick
from slob.orders import OrderError

__all__ = ["ConnectionClosed", "FlowControl", "HistoryUpdate", "IBClient", "Subscription", "SubscriptionLive",
           "TwsMessage"]

log = logging.getLogger("slob.ib.client")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Ticks handed to the sink per batch at most: batching saves a hand-off per tick, the cap
# bounds how long the first tick of a large read waits for the rest (~64 x 2 us).
_FLUSH_EVERY = 64
# What converting a decoded tick may raise on odd input: reported, the frame skipped.
_HANDLING_ERRORS = (ValueError, TypeError, IndexError, ArithmeticError)


class IBClient(OrderCallbacks, HistoryRequests, EWrapper, EClient):  # type: ignore[misc]
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
        self._pending: dict[int, Pending] = {}
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
        pending = Pending(concurrent.futures.Future(), what)
        self._pending[req_id] = pending
        self._fail_if_closed(pending.future)
        return pending.future

    def _fail_if_closed(self, future: concurrent.futures.Future[Any]) -> None:
        """A request made after the reader ended gets no answer: fail it now rather than
        leave the caller to time out."""
        closed = self.closed
        if closed.done() and not future.done():
            future.set_exception(ConnectionLost(f"the session is closed ({closed.result().cause})"))

    def _finish_rows(self, key: int) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(pending.rows)

    def connectAck(self) -> None:  # noqa: N802
        pass

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
            pending.future.set_exception(request_error(errorCode, reqId, errorString, pending.what))
        sub = self.subscriptions.get(reqId) if reqId >= 0 else None
        if sub is not None and info.severity in (Severity.ERROR, Severity.FATAL) and not sub.settled:
            sub.reject(request_error(errorCode, reqId, errorString, sub.ref.symbol))
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
