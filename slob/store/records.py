"""The store's record types and errors: what the engine writes and reads back.

Trading records (setups, orders, order statuses, fills, runs) and :class:`Gap` are
``URGENT``: each closes its batch at once and commits with fsync (see :mod:`slob.store.store`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from slob.ib.errors import SlobError
from slob.model import (Candle, ConnectionLost, ConnectionRestored, ContractRolled, ErrorReported,
                        Gap, Tick)

__all__ = [
    "CANDLE_SOURCES", "CandleRecord", "ConnectionEvent", "ErrorEvent", "HistorySpan", "FillRecord", "OrderRecord", "OrderStatusRecord", "RunRecord",
    "RunStarted", "RunStopped", "SetupRecord", "StoreClosed", "StoreError", "StoreRecord", "StoreStats",
    "StoreVersionError", "URGENT",
]


class StoreError(SlobError):
    """Records could not be written (the message says which and why)."""


class StoreClosed(StoreError):
    """A record was added after :meth:`Store.close`."""


class StoreVersionError(StoreError):
    """The database was written by a newer slob than this one."""


# -- records without a slob.model type yet (setups, orders and fills come in later issues) ----
@dataclass(frozen=True, slots=True)
class SetupRecord:
    """A SLOB setup's latest state; stored by ``id`` (upsert keeps the first ``created``)."""

    id: str
    symbol: str
    direction: str  # "long" | "short"
    state: str
    created: dt.datetime
    updated: dt.datetime
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order: what was sent and its latest state; stored by ``order_id`` (upsert keeps
    the first ``created`` and a known ``perm_id``). ``setup_id`` is IB's ``orderRef``.

    Status guard (any upsert): a final status (Filled, Cancelled, ApiCancelled, Inactive) is
    never replaced by a non-final one -- only ``Filled`` may replace another final status --
    and slob's own ``Intent``/``Sent`` never replace a status TWS reported. Late or duplicate
    reports therefore cannot move an order backwards."""

    order_id: int
    setup_id: str | None
    action: str  # "BUY" | "SELL"
    order_type: str  # "LMT" | "STP" | "MKT" ...
    quantity: float
    status: str  # IB's, or slob's "Intent" (written, not sent) / "Sent" (handed to the socket)
    created: dt.datetime
    updated: dt.datetime
    perm_id: int | None = None
    parent_id: int | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    # schema 3: the leg as sent (an intent can be sent again from these) and fill progress
    con_id: int | None = None
    contract: str | None = None  # local symbol
    role: str | None = None  # "entry" | "take_profit" | "stop" for slob's legs
    tif: str | None = None
    oca_group: str | None = None
    transmit: bool | None = None
    filled: float | None = None
    avg_fill_price: float | None = None


@dataclass(frozen=True, slots=True)
class OrderStatusRecord:
    """A status TWS reported (or reconciliation concluded) for an order: updates status,
    ``perm_id`` and fill progress only, never what was sent (the status guard of
    :class:`OrderRecord` applies). For an order the store does not hold yet (one slob did
    not place, or whose intent was lost) a row is inserted with what is known."""

    order_id: int
    status: str
    updated: dt.datetime
    perm_id: int | None = None
    filled: float | None = None
    avg_fill_price: float | None = None
    setup_id: str | None = None
    action: str = ""
    order_type: str = ""
    quantity: float = 0.0
    con_id: int | None = None
    contract: str | None = None
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The engine started on this store (schema 3's ``runs`` table)."""

    run_id: str
    at: dt.datetime
    pid: int


@dataclass(frozen=True, slots=True)
class RunStopped:
    """The engine stopped cleanly: a run without this record ended by a kill or a crash."""

    run_id: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of the engine as read back; ``stopped`` None: it did not end cleanly (or
    is still running)."""

    run_id: str
    started: dt.datetime
    stopped: dt.datetime | None
    pid: int


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution, unique by ``exec_id``. IB sends the commission report after the
    execution, so a later record with the same ``exec_id`` fills in commission and pnl."""

    exec_id: str
    order_id: int
    time: dt.datetime
    price: float
    quantity: float
    commission: float | None = None
    realized_pnl: float | None = None


#: Where a stored candle came from: slob's own aggregation of live ticks, or IB's history.
CANDLE_SOURCES = ("live", "history")


@dataclass(frozen=True, slots=True)
class CandleRecord:
    """A candle with its source (schema 4). A plain :class:`~slob.model.Candle` added to
    the store is ``live``. Candles are upserted by (symbol, interval, start): the same
    record twice leaves one row, and a later record replaces an earlier one -- except
    that with ``keep_live`` (what ``slob history`` writes) a history candle does not
    replace a live candle that saw trades (only a flat, filled one)."""

    candle: Candle
    source: str = "history"
    keep_live: bool = False

    def __post_init__(self) -> None:
        if self.source not in CANDLE_SOURCES:
            raise ValueError(f"candle source {self.source!r} is not one of {CANDLE_SOURCES}")


@dataclass(frozen=True, slots=True)
class HistorySpan:
    """``[start, end)`` of ``symbol``'s candles of ``interval_seconds`` was downloaded from
    IB's history at ``fetched`` (a span with no bars at all -- a weekend -- is downloaded
    too). Overlapping spans merge when read; what is covered is not requested again."""

    symbol: str
    interval_seconds: int
    start: dt.datetime
    end: dt.datetime
    fetched: dt.datetime


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An :class:`~slob.model.ErrorReported` as read back: stamped when it was written."""

    at: dt.datetime
    cause: str


ConnectionEvent = Union[ConnectionLost, ConnectionRestored, Gap, ContractRolled, ErrorEvent]
StoreRecord = Union[Tick, Candle, Gap, ConnectionLost, ConnectionRestored, ContractRolled,
                    ErrorReported, SetupRecord, OrderRecord, OrderStatusRecord, FillRecord, RunStarted,
                    RunStopped, CandleRecord, HistorySpan]
#: Records that close their batch at once and commit with fsync (see the module docstring).
URGENT: frozenset[type] = frozenset({SetupRecord, OrderRecord, OrderStatusRecord, FillRecord, RunStarted,
                                     RunStopped, Gap})


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters, for tests and reports. ``batches_by_*`` say why each batch closed."""

    enqueued: int
    written: int
    rejected: int
    pending: int
    batches: int
    batches_by_size: int
    batches_by_interval: int
    batches_by_flush: int
    largest_batch: int
    batches_urgent: int = 0  # closed by a trading record, committed with fsync
