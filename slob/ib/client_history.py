"""IBClient's history surface: historical bars (with keepUpToDate streams), historical
ticks and head timestamps, their cancels, and how their errors reach the caller.

A mixin of :class:`slob.ib.client.IBClient` (split from it; the callbacks run on IBClient's
reader thread, with its request bookkeeping: ``expect``, ``_pending``, ``_finish_rows``).
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any, Callable

from ibapi.client import EClient
from ibapi.wrapper import EWrapper

from slob.ib.client_types import HistoryUpdate, Pending, describe_contract, request_error
from slob.ib.errors import Severity
from slob.ib.history import HistoryNotPermitted, HistoryPacingViolation, hmds_kind

__all__ = ["HistoryRequests"]

log = logging.getLogger("slob.ib.client")
# CANCEL_HISTORICAL_TICKS exists only in protobuf form, from this server version on.
_CANCEL_TICKS_SERVER_VERSION = 215


class HistoryRequests(EWrapper, EClient):  # type: ignore[misc]
    """Historical data requests and answers (a part of IBClient, not used alone)."""

    _pending: dict[int, Pending]
    _history_ids: set[int]
    _history_streams: dict[int, HistoryUpdate]
    # IBClient's request bookkeeping (declared here for the type checker only)
    expect: Callable[[int, str], concurrent.futures.Future[Any]]
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
        future = self.expect(req_id, describe_contract(contract))
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
        future = self.expect(req_id, describe_contract(contract))
        if not future.done():
            self.reqHistoricalTicks(req_id, contract, start, end, count, what, int(use_rth), True, [])
        return future

    def request_head_timestamp(self, req_id: int, contract: Any, what: str = "TRADES", use_rth: bool = False,
                               format_date: int = 2) -> concurrent.futures.Future[str]:
        """REQ_HEAD_TIMESTAMP; the future completes with TWS's text (epoch seconds for
        ``format_date=2``)."""
        self._history_ids.add(req_id)
        future = self.expect(req_id, describe_contract(contract))
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
                pending.future.set_exception(request_error(code, req_id, text, pending.what))
            return
        stream = self._history_streams.pop(req_id, None) if failed else None
        if stream is not None:  # a keepUpToDate stream ended by TWS (10225 bust, farm loss...)
            self._tell_stream(req_id, stream, request_error(code, req_id, text, "the bar stream"))

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
