"""``--source ib``: 1-minute candles from TWS's historical data, cached in the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from slob.ib.errors import SlobError
from slob.model import Candle

if TYPE_CHECKING:
    from slob.research.sources import IbSource

__all__ = ["ib_candles"]


def ib_candles(db: Path, symbol: str, first: dt.date, last: dt.date, ib: "IbSource") -> list[Candle]:
    raise SlobError("--source ib is not available in this build yet; record the days with `slob run`, or "
                    "give a CSV file of 1-minute candles")
