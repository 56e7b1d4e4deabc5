"""AlpacaWSFetcher: US-stock trades from Alpaca's market-data stream (v2), with the
same interface as :class:`~slob.live.ib_ws_fetcher.IBWSFetcher`::

    fetcher = AlpacaWSFetcher()            # APCA_API_KEY_ID / APCA_API_SECRET_KEY, feed 'iex'
    fetcher.on_tick = handle_tick          # sync or async; gets slob.model.Tick
    fetcher.on_error = handle_error        # sync or async; gets an exception
    await fetcher.connect()                # welcome + auth; raises AuthenticationFailed etc.
    await fetcher.subscribe(["AAPL"])      # raises SymbolLimitExceeded etc.
    await fetcher.listen()                 # returns after disconnect(); raises ConnectionLost
                                           # when reconnecting gives up

One reader task per connection stamps each frame's arrival (``time.monotonic_ns``),
parses it, turns trades into Ticks and queues them; :meth:`listen` delivers the queue in
batches, in order, together with errors (to ``on_error``) and connection events (to
``on_event``). Subscription acknowledgements and request errors are matched to the one
request in flight. A supervisor task awaits the reader: when the connection ends without
:meth:`disconnect`, it reconnects with exponential backoff and jitter, authenticates,
resubscribes every symbol and records the outage as a :class:`~slob.model.Gap`.
Alpaca does not replay trades missed during an outage.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import os
import time
from typing import Any, Sequence

from slob.config.alpaca_config import AlpacaConfig
from slob.ib.errors import ConfigError, ConnectError, ConnectionLost, SlobError
from slob.live.alpaca_connection import AlpacaConnection, Dropped
from slob.live.alpaca_protocol import AlpacaError, Credentials, SymbolLimitExceeded, error_for
from slob.live.backoff import backoff_delay
from slob.live.callbacks import Callback, UserCallbacks
from slob.live.stats import percentile
from slob.model import ConnectionRestored, Gap, Tick
from slob.model import ConnectionLost as ConnectionLostEvent

__all__ = ["AlpacaWSFetcher"]

log = logging.getLogger("slob.live.alpaca_ws_fetcher")
_UTC = dt.timezone.utc
#: Reconnecting cannot fix these (402 auth failed, 408 v2 not enabled, 409 plan): give up at once.
_FATAL_CODES = frozenset({402, 408, 409})


class _Closed(Exception):
    pass


class _Inbox:
    """What the reader and the supervisor hand to listen(), in arrival order."""

    def __init__(self) -> None:
        self.items: collections.deque[object] = collections.deque()
        self.closed = False
        self._ready = asyncio.Event()

    def put(self, item: object) -> None:
        if not self.closed:
            self.items.append(item)
            self._ready.set()

    async def get(self) -> list[object]:
        while not self.items:
            if self.closed:
                raise _Closed
            self._ready.clear()
            await self._ready.wait()
        batch = list(self.items)
        self.items.clear()
        return batch

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class AlpacaWSFetcher(UserCallbacks):
    _log = log  # UserCallbacks reports under this module's logger

    def __init__(
        self,
        key_id: str | None = None,
        secret_key: str | None = None,
        *,
        feed: str = "iex",
        url: str | None = None,
        config: AlpacaConfig | None = None,
    ) -> None:
        self.config = config or AlpacaConfig(feed=feed, url=url)
        self._credentials = _credentials(key_id, secret_key)
        self.on_tick: Callback | None = None
        self.on_error: Callback | None = None
        #: Receives slob.model ConnectionLost / ConnectionRestored events (sync or async).
        self.on_event: Callback | None = None
        self.gaps: list[Gap] = []
        self.reconnects = 0
        self.ticks = 0
        self.callback_errors = 0
        self._conn: AlpacaConnection | None = None
        self._reader: asyncio.Task[str] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._inbox: _Inbox | None = None
        self._lock: asyncio.Lock | None = None
        self._wanted: list[str] = []  # what the user subscribed, in order
        self._stopping = False
        self._final_error: BaseException | None = None
        self._outage_start: dt.datetime | None = None
        self._last_tick_mono: float | None = None
        self._latency_us: collections.deque[float] = collections.deque(maxlen=20_000)
        self._counts: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"AlpacaWSFetcher(url={self.config.stream_url!r}, key_id={self._credentials.hint})"

    # -- public interface ----------------------------------------------------------

    def is_connected(self) -> bool:
        return self._conn is not None and self._reader is not None and not self._reader.done()

    async def connect(self) -> None:
        """Open the stream and authenticate. Raises AuthenticationFailed (402),
        ConnectionLimitExceeded (406), InsufficientSubscription (409), AlpacaUnreachable."""
        if self._supervisor is not None and not self._supervisor.done():
            return  # connected, or reconnecting already
        self._stopping = False
        self._final_error = None
        self._wanted.clear()  # a new session starts with no subscriptions
        if self._inbox is None or self._inbox.closed:
            self._inbox = _Inbox()
        try:
            await self._open()
        except BaseException:
            self._inbox = None  # listen() without a session is a usage error, not a hang
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="slob-alpaca-supervisor")

    async def subscribe(self, symbols: Sequence[str]) -> None:
        """Subscribe to trades of ``symbols`` (tickers such as 'AAPL'); returns when Alpaca
        acknowledged. Raises SymbolLimitExceeded (405) or InsufficientSubscription (409).
        While the stream is reconnecting, the symbols are added and subscribed on reconnect."""
        add = [s for s in _normalise(symbols) if s not in self._wanted]
        await self._change("subscribe", add)

    async def unsubscribe(self, symbols: Sequence[str]) -> None:
        drop = [s for s in _normalise(symbols) if s in self._wanted]
        await self._change("unsubscribe", drop)

    async def listen(self) -> None:
        """Deliver ticks to ``on_tick`` until :meth:`disconnect`; raise ConnectionLost if
        the stream cannot be re-established."""
        inbox = self._inbox
        if inbox is None:
            raise SlobError("call connect() before listen()")
        while True:
            try:
                batch = await inbox.get()
            except _Closed:
                if self._final_error is not None:
                    raise self._final_error
                return
            for item in batch:
                if type(item) is Tick:
                    await self._deliver(item)
                elif isinstance(item, BaseException):
                    await self._report(item)
                else:
                    await self._emit(item)

    async def disconnect(self) -> None:
        """Close the stream; listen() returns. Subscriptions are forgotten."""
        self._stopping = True
        tasks = [t for t in (self._supervisor, self._reader) if t is not None]
        self._supervisor = self._reader = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_conn()
        self._wanted.clear()
        if self._inbox is not None:
            self._inbox.close()

    def get_stats(self) -> dict[str, Any]:
        lat = sorted(self._latency_us)
        c = self._counts
        return {
            "connected": self.is_connected(),
            "url": self.config.stream_url,
            "feed": self.config.feed,
            "symbols": list(self._wanted),
            "frames": c["frames"],
            "messages": c["messages"],
            "messages_out": c["messages_out"],
            "ticks": self.ticks,
            "malformed": c["malformed"],
            "server_errors": c["server_errors"],
            "errors": c["errors"],
            "callback_errors": self.callback_errors,
            "reconnects": self.reconnects,
            "gaps": len(self.gaps),
            "last_tick_age_seconds": None if self._last_tick_mono is None else time.monotonic() - self._last_tick_mono,
            "queue_depth": len(self._inbox.items) if self._inbox is not None else 0,
            "latency_p50_us": percentile(lat, 0.50),
            "latency_p99_us": percentile(lat, 0.99),
        }

    # -- connection ----------------------------------------------------------------

    async def _open(self) -> None:
        conn = await AlpacaConnection.open(self.config, self._credentials, self._counts, self._put)
        self._conn = conn
        self._reader = asyncio.create_task(conn.read(), name="slob-alpaca-reader")
        log.info("= connected to %s", self.config.stream_url)

    async def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def _put(self, item: object) -> None:
        if self._inbox is not None:
            self._inbox.put(item)

    # -- subscriptions ---------------------------------------------------------------

    async def _change(self, action: str, symbols: list[str]) -> None:
        if self._supervisor is None or self._supervisor.done():
            raise SlobError(f"not connected: call connect() before {action}()"
                            + (f" (the stream was lost: {self._final_error})" if self._final_error else ""))
        if not symbols:
            return
        async with self._request_lock():
            if self._conn is None:  # reconnecting: the supervisor sends the whole set
                self._apply(action, symbols)
                return
            try:
                await self._request({"action": action, "trades": symbols})
            except Dropped:
                self._apply(action, symbols)  # the reconnect (re)sends the whole set
                return
            except AlpacaError as exc:
                raise error_for(exc.code, exc.text, f"{action[:-1]}ing {', '.join(symbols)}") from None
            self._apply(action, symbols)

    def _apply(self, action: str, symbols: list[str]) -> None:
        if action == "subscribe":
            self._wanted += [s for s in symbols if s not in self._wanted]
        else:
            self._wanted = [s for s in self._wanted if s not in symbols]

    def _request_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._conn is None:
            raise Dropped("not connected")
        return await self._conn.request(payload)

    # -- reconnecting ----------------------------------------------------------------

    async def _supervise(self) -> None:
        while self._reader is not None:
            cause = await self._reader
            if self._stopping:
                return
            lost = dt.datetime.now(_UTC)
            self._outage_start = self._outage_start or lost
            await self._close_conn()
            log.warning("! Alpaca stream lost: %s; reconnecting", cause)
            self._put(ConnectionLostEvent(lost, cause))
            try:
                await self._reconnect(cause)
            except Exception as exc:
                self._final_error = exc
                self._put(exc)
                if self._inbox is not None:
                    self._inbox.close()
                return

    async def _reconnect(self, cause: str) -> None:
        cfg = self.config
        attempt = 0
        last: BaseException | None = None
        while attempt < cfg.max_reconnect_attempts:
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))
            try:
                await self._open()
                await self._resubscribe()
            except (ConnectError, OSError, asyncio.TimeoutError, SlobError) as exc:
                last = exc
                await self._drop_reader()
                if isinstance(exc, AlpacaError) and exc.code in _FATAL_CODES:
                    break
                log.warning("! reconnect attempt %d/%d failed: %s", attempt, cfg.max_reconnect_attempts, exc)
                continue
            self.reconnects += 1
            start, self._outage_start = self._outage_start, None
            now = dt.datetime.now(_UTC)
            self.gaps.append(Gap(start or now, now, cause))
            self._put(ConnectionRestored(now, cause, data_lost=True))
            log.info("= Alpaca stream restored after %d attempt(s)", attempt)
            return
        raise ConnectionLost(
            f"lost the Alpaca stream at {cfg.stream_url} ({cause}) and {attempt} reconnect attempt(s) failed"
            f"{f' (last: {last})' if last else ''}. Check the network and Alpaca's status page; raise "
            "max_reconnect_attempts to keep trying longer."
        ) from last

    async def _resubscribe(self) -> None:
        async with self._request_lock():
            if not self._wanted:
                return
            try:
                await self._request({"action": "subscribe", "trades": list(self._wanted)})
            except SymbolLimitExceeded as exc:  # the plan changed while away: report, keep the stream
                self._put(exc)

    async def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await self._close_conn()

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.config.reconnect_delay_seconds, self.config.max_reconnect_delay_seconds)

    # -- delivery -------------------------------------------------------------------

    async def _deliver(self, tick: Tick) -> None:
        self.ticks += 1
        self._last_tick_mono = time.monotonic()
        if self.on_tick is not None:
            await self._call(self.on_tick, tick)
        self._latency_us.append((time.monotonic_ns() - tick.received_ns) / 1000)

    async def _report(self, exc: BaseException) -> None:
        self._counts["errors"] += 1
        await super()._report(exc)


def _credentials(key_id: str | None, secret_key: str | None) -> Credentials:
    """Arguments first; the environment only for an argument that is None."""
    key = key_id if key_id is not None else os.environ.get("APCA_API_KEY_ID", "")
    secret = secret_key if secret_key is not None else os.environ.get("APCA_API_SECRET_KEY", "")
    missing = [name for name, value in (("key id", key), ("secret key", secret)) if not value]
    if missing:
        raise ConfigError(
            f"Alpaca {' and '.join(missing)} missing: pass key_id= and secret_key= to AlpacaWSFetcher, or set "
            "APCA_API_KEY_ID and APCA_API_SECRET_KEY (Alpaca dashboard > API keys; paper and live keys differ)"
        )
    return Credentials(key, secret)


def _normalise(symbols: Sequence[str]) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    out: list[str] = []
    for s in symbols:
        text = s.strip().upper() if isinstance(s, str) else ""
        if not text or any(c.isspace() for c in text):
            raise ConfigError(f"{s!r} is not a stock symbol; use tickers such as 'AAPL' or 'BRK.B'")
        if text not in out:
            out.append(text)
    return out
