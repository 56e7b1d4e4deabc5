"""One API session with TWS at a time: open it, send paced requests, read their answers.

:class:`IBSession` owns the current :class:`~slob.ib.client.IBClient` (socket + reader
thread) and nothing else: the supervisor (:mod:`slob.live.ib_supervisor`) decides when a
session opens and closes, :class:`~slob.live.ib_ws_fetcher.IBWSFetcher` what is
subscribed. Every request goes through the pacer (TWS allows 50 messages per second) and
every answer is awaited with ``request_timeout_seconds``: a request TWS never answers ends
as :class:`~slob.ib.errors.RequestTimedOut`, one on a closed session as
:class:`~slob.ib.errors.ConnectionLost` -- never a bare ``TimeoutError``.

Orders pass through here too, and the paper check is made on every one
(:meth:`IBSession.check_paper`), not only when the engine starts.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as dt
import itertools
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel

from slob.config.ib_config import IBConfig
from slob.ib.client import IBClient
from slob.ib.errors import ConnectError, ConnectionLost, LiveTradingRefused, RequestTimedOut, SlobError
from slob.ib.handshake import Session, open_session_async
from slob.orders import Execution, OpenOrder, PositionReported

__all__ = ["ClientFactory", "IBSession", "SessionHooks"]

T = TypeVar("T")
_UTC = dt.timezone.utc
#: Builds an in-process client instead of a socket (tests): (sink, config) -> opened IBClient.
ClientFactory = Callable[[Callable[[object], None], IBConfig], IBClient]


@dataclass(frozen=True, slots=True)
class SessionHooks:
    """What the session's owner (IBWSFetcher) does at the supervisor's steps."""

    sinks: Callable[[], tuple[Callable[[object], None], Callable[[list[object]], None]]]
    started: Callable[[int, IBClient], None]  # (generation, client), before it is ready
    clock: Callable[[dt.timedelta], None]  # TWS's clock minus the local one, at each reading
    resubscribe: Callable[[bool], Awaitable[None]]
    reconcile: Callable[[], Awaitable[None]]
    emit: Callable[[object], Awaitable[None]]
    report: Callable[[BaseException], Awaitable[None]]
    give_up: Callable[[SlobError], Awaitable[None]]


class IBSession:
    """Also the supervisor's :class:`~slob.live.ib_supervisor.SessionPort`: the steps that
    concern the socket are its own, the rest are its owner's :class:`SessionHooks`."""

    def __init__(self, config: IBConfig, client_factory: ClientFactory | None, hooks: SessionHooks) -> None:
        self.config = config
        self.client: IBClient | None = None
        self.generation = 0
        self.server_offset = dt.timedelta(0)
        self.totals: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.req_ids = itertools.count(1000)
        self._factory = client_factory
        self._hooks = hooks
        self._handshaken: Session | None = None

    # -- opening and closing ---------------------------------------------------------

    def is_connected(self) -> bool:
        client = self.client
        return client is not None and client.isConnected() and client.ready.done() and not client.ready.exception()

    async def handshake(self) -> None:
        """TCP connect and the version exchange (nothing to do for an in-process client)."""
        self.close()
        if self._factory is None:
            cfg = self.config
            self._handshaken = await open_session_async(cfg.host, cfg.port, timeout=cfg.connect_timeout_seconds)

    async def start_api(self) -> None:
        """START_API; wait until TWS sent nextValidId and managedAccounts; read its clock."""
        cfg = self.config
        sink, batch_sink = self._hooks.sinks()
        self.generation += 1
        if self._factory is not None:
            client = self._factory(sink, cfg)  # in process: no socket, no reader thread
        else:
            session, self._handshaken = self._handshaken, None
            if session is None:
                raise ConnectError("no handshaken socket to start the API session on")
            client = IBClient(sink, batch_sink=batch_sink, max_messages_per_second=cfg.max_messages_per_second)
            client.start(session, cfg.client_id)
        self.client = client
        self._hooks.started(self.generation, client)
        try:
            await asyncio.wait_for(asyncio.wrap_future(client.ready), cfg.connect_timeout_seconds)
        except asyncio.TimeoutError:
            raise ConnectError(
                f"TWS at {cfg.host}:{cfg.port} accepted the connection but sent no nextValidId/managedAccounts "
                f"within {cfg.connect_timeout_seconds:g} s; is TWS showing a dialog, or still starting?"
            ) from None
        if cfg.account and cfg.account not in client.accounts:
            accounts = ", ".join(client.accounts)
            raise ConnectError(f"account {cfg.account} is not managed by this login (it has {accounts}); "
                               "set account to one of them")
        await self.server_now(client)  # measures the clock offset

    def close(self) -> None:
        """Our own close of the current session (idempotent); its counts go to the totals."""
        handshaken, self._handshaken = self._handshaken, None
        if handshaken is not None:
            handshaken.sock.close()
        client, self.client = self.client, None
        if client is not None:
            client.disconnect()
            self.totals["messages_in"] += client.messages_in
            self.totals["messages_out"] += client.messages_out
            self.totals["decode_errors"] += client.decode_errors
            self.rejected.update(client.rejected)

    # -- the rest of the supervisor's port ---------------------------------------------

    def close_session(self) -> None:
        self.close()

    def abort_session(self, cause: str, *, junk: bool = False) -> None:
        """End the session as a failure (the reader thread reports ``cause``)."""
        if self.client is not None:
            self.client.abort(cause, junk=junk)

    def received_age(self) -> float | None:
        client = self.client
        if client is None or not client.isConnected():
            return None
        return (time.monotonic_ns() - client.last_received_ns) / 1e9

    def partial_frame_age(self) -> float | None:
        since = self.client.partial_since_ns if self.client is not None else 0
        return (time.monotonic_ns() - since) / 1e9 if since else None

    async def ping(self) -> None:
        await self.server_now()

    async def resubscribe(self, same_session: bool) -> None:
        await self._hooks.resubscribe(same_session)

    async def reconcile(self) -> None:
        await self._hooks.reconcile()

    async def emit(self, event: object) -> None:
        await self._hooks.emit(event)

    async def report(self, exc: BaseException) -> None:
        await self._hooks.report(exc)

    async def give_up(self, exc: SlobError) -> None:
        await self._hooks.give_up(exc)

    # -- requests --------------------------------------------------------------------

    def require(self) -> IBClient:
        client = self.client
        if client is None or not self.is_connected():
            raise ConnectionLost("not connected to TWS; requests and orders cannot be sent now")
        return client

    async def paced(self, client: IBClient) -> None:
        delay = client.prepay()
        if delay > 0:
            await asyncio.sleep(delay)

    async def answer(self, future: "concurrent.futures.Future[T]", what: str) -> T:
        """TWS's answer to a request, or a SlobError: never a bare TimeoutError."""
        seconds = self.config.request_timeout_seconds
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), seconds)
        except asyncio.TimeoutError:
            raise RequestTimedOut(what, seconds) from None

    def server_clock(self) -> dt.datetime:
        """Local time corrected by TWS's clock offset (measured at connect)."""
        return dt.datetime.now(_UTC) + self.server_offset

    async def server_now(self, client: IBClient | None = None) -> dt.datetime:
        """TWS's clock (REQ_CURRENT_TIME); also a round trip: TWS answers in order."""
        client = client or self.client
        if client is None:
            raise ConnectionLost("not connected to TWS; call connect() first")
        await self.paced(client)
        seconds = await self.answer(client.request_current_time(), "REQ_CURRENT_TIME")
        now = dt.datetime.fromtimestamp(seconds, _UTC)
        self.server_offset = now - dt.datetime.now(_UTC)
        self._hooks.clock(self.server_offset)
        return now

    # -- orders ----------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        client = self.client
        return list(client.accounts) if client is not None else []

    @property
    def next_valid_id(self) -> int:
        client = self.client
        return client.next_order_id if client is not None else 0

    def check_paper(self) -> None:
        """Refuse orders when the login manages an account that is not a paper account
        (``D…``) and the config did not opt in to live trading. Called on every order."""
        cfg = self.config
        live = [a for a in self.accounts if not a.upper().startswith("D")]
        if live and not (cfg.allow_live and not cfg.paper_trading):
            raise LiveTradingRefused(
                f"this login manages non-paper account(s) {', '.join(live)}; slob sends orders to paper "
                "accounts only unless live trading is explicitly enabled (paper_trading=False and "
                "allow_live=True, CLI --live)")

    async def place_order(self, order_id: int, contract: Contract, order: Order) -> None:
        client = self.require()
        self.check_paper()
        client.track_order(order_id)
        await self.paced(client)
        client.placeOrder(order_id, contract, order)

    async def cancel_order(self, order_id: int) -> None:
        client = self.require()
        await self.paced(client)
        client.cancelOrder(order_id, OrderCancel())

    async def open_orders(self) -> list[OpenOrder]:
        client = self.require()
        await self.paced(client)
        return await self.answer(client.request_open_orders(), "the open-orders request")

    async def executions(self) -> list[Execution]:
        client = self.require()
        await self.paced(client)
        return await self.answer(client.request_executions(next(self.req_ids)), "the executions request")

    async def positions(self) -> list[PositionReported]:
        client = self.require()
        await self.paced(client)
        return await self.answer(client.request_positions(), "the positions request")
