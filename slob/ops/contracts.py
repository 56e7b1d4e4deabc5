"""`slob contracts ROOT`: the expiry book as slob sees it, with roll moments.

Queries an embedded fake TWS by default (at its simulated date), or a real TWS/Gateway
given ``--host/--port``; read-only, so any port is fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Iterator, TextIO

from slob.config.ib_config import IBConfig
from slob.ib.errors import ContractNotFound, RequestFailed
from slob.market.expiry_book import CHICAGO
from slob.live.ib_ws_fetcher import IBWSFetcher
from slob.testing import DEFAULT_START, FakeTWS
from slob.testing.futures import FUTURES

__all__ = ["UnknownRoot", "run_contracts"]


class UnknownRoot(ContractNotFound):
    """A root the embedded fake TWS does not list: the message names the ones it does."""

    def __init__(self, exc: ContractNotFound) -> None:
        RequestFailed.__init__(self, exc.code, exc.req_id, exc.text,
                               f"{exc} The embedded fake TWS knows the roots {', '.join(sorted(FUTURES))}; "
                               "for any other, ask a real TWS / IB Gateway with --host/--port.")


def run_contracts(
    root: str, *, at: dt.datetime | None, roll_days: int, host: str | None, port: int | None,
    client_id: int, out: TextIO,
) -> int:
    with _request_errors_raised():
        if port is None and host is None:
            with FakeTWS(start=at or DEFAULT_START, speed=0) as tws:
                try:
                    return asyncio.run(_show(root.upper(), at, roll_days, "127.0.0.1", tws.port, client_id,
                                             "fake TWS", out))
                except ContractNotFound as exc:
                    raise UnknownRoot(exc) from None
        return asyncio.run(_show(root.upper(), at, roll_days, host or "127.0.0.1", port or 7497, client_id,
                                 "TWS", out))


@contextlib.contextmanager
def _request_errors_raised() -> Iterator[None]:
    """The query's own failures (e.g. 200, no such contract) reach the user once, as the
    command's error line: the client's warning line for them is dropped meanwhile."""
    client_log = logging.getLogger("slob.ib.client")
    quiet = _RequestErrors()
    client_log.addFilter(quiet)
    try:
        yield
    finally:
        client_log.removeFilter(quiet)


class _RequestErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (record.msg == "! %d %s (req %d)" and isinstance(args, tuple) and args and args[0] == 200)


async def _show(root: str, at: dt.datetime | None, roll_days: int, host: str, port: int, client_id: int,
                source: str, out: TextIO) -> int:
    # Read-only query: contract details do not trade, so a live port is acceptable here.
    config = IBConfig(host=host, port=port, client_id=client_id, roll_days_before_expiry=roll_days,
                      paper_trading=False, allow_live=True)
    fetcher = IBWSFetcher(config=config)
    await fetcher.connect()
    try:
        now = at or await fetcher.server_time()
        book = await fetcher.contracts.book(root, now=now)
        front = book.front_at(now)
    finally:
        await fetcher.disconnect()
    print(f"{root} from {source} {host}:{port} at {now:%Y-%m-%d %H:%M %Z}; roll {roll_days} days before expiry, "
          "at the open of that CME trading day (times US/Central)", file=out)
    print(f"  {'contract':9} {'conId':>10}  {'last trade':16}  {'front month from':16}  {'until (roll)':16}", file=out)
    for c in book:
        start, end = book.window(c)
        mark = "*" if c == front else ("x" if c.last_trade <= now else " ")
        begin = f"{start.astimezone(CHICAGO):%Y-%m-%d %H:%M}" if start else "-"
        print(f"{mark} {c.local_symbol:9} {c.con_id:>10}  {c.last_trade.astimezone(CHICAGO):%Y-%m-%d %H:%M}  "
              f"{begin:16}  {end.astimezone(CHICAGO):%Y-%m-%d %H:%M}", file=out)
    print(f"front month: {front.local_symbol} until {front.roll.astimezone(CHICAGO):%Y-%m-%d %H:%M %Z}", file=out)
    return 0
