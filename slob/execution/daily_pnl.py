"""Realized P&L per CME trading day, for the daily loss limit.

Why per day: an engine runs for weeks; a loss limit on the P&L since the process started
would stop all trading after a few losing days, and one that a restart resets would
depend on when the process last died. IB reports realized P&L per closing fill (commission
report); each is booked on the CME trading day of its fill -- day D runs from 17:00
Chicago on D-1 to 17:00 Chicago on D, as in ``slob report`` -- and the limit looks at the
day of the setup being placed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

__all__ = ["DailyPnl", "trading_day"]

_CHICAGO = ZoneInfo("America/Chicago")
_DAY_TURN = dt.time(17, 0)


def trading_day(t: dt.datetime) -> dt.date:
    """The CME trading day of ``t`` (tz-aware): 17:00 Chicago and later is the next date."""
    local = t.astimezone(_CHICAGO)
    return local.date() + dt.timedelta(days=1) if local.time() >= _DAY_TURN else local.date()


class DailyPnl:
    """Realized P&L booked by execution id (each counted once), summed per trading day."""

    def __init__(self) -> None:
        self._booked: dict[str, tuple[dt.date, float]] = {}
        self._days: dict[dt.date, float] = defaultdict(float)

    def book(self, exec_id: str, when: dt.datetime, pnl: float) -> bool:
        """Book ``pnl`` of the fill ``exec_id`` at ``when``; False if it was booked already."""
        if exec_id in self._booked:
            return False
        day = trading_day(when)
        self._booked[exec_id] = (day, pnl)
        self._days[day] += pnl
        return True

    def day(self, when: dt.datetime) -> float:
        """Realized P&L of the trading day of ``when``."""
        return self._days.get(trading_day(when), 0.0)
