"""OrderGateway: what the OrderExecutor needs from the connection to TWS.

:class:`~slob.live.ib_ws_fetcher.IBWSFetcher` is the one implementation. The executor is
*given* a gateway rather than importing the fetcher, so execution sits below the feeds
(slob.live) in the house: docs/architecture.md. A Protocol, checked by mypy, not at run time.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from ibapi.contract import Contract, ContractDetails
from ibapi.order import Order

from slob.orders import Execution, OpenOrder, PositionReported

__all__ = ["OrderGateway"]


class OrderGateway(Protocol):
    """The order surface of one TWS session (IBWSFetcher's, method for method)."""

    @property
    def accounts(self) -> list[str]: ...

    @property
    def next_valid_id(self) -> int: ...

    @property
    def session_number(self) -> int: ...

    def details_for(self, symbol: str) -> ContractDetails | None: ...

    async def place_order(self, order_id: int, contract: Contract, order: Order) -> None: ...

    async def cancel_order(self, order_id: int) -> None: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def executions(self) -> list[Execution]: ...

    async def positions(self) -> list[PositionReported]: ...

    async def server_time(self) -> dt.datetime: ...
