"""Moved to :mod:`slob.ops.report`; this path still imports (a re-export, nothing else)."""

from slob.ops.report import (  # noqa: F401
    DayReport as DayReport,
    MULTIPLIERS as MULTIPLIERS,
    NO_DATA as NO_DATA,
    Report as Report,
    ReportInput as ReportInput,
    TradeRow as TradeRow,
    build_report as build_report,
    day_bounds as day_bounds,
    max_drawdown as max_drawdown,
    report_json as report_json,
    trade_days as trade_days,
    trading_day as trading_day,
)

__all__ = [
    "DayReport",
    "MULTIPLIERS",
    "NO_DATA",
    "Report",
    "ReportInput",
    "TradeRow",
    "build_report",
    "day_bounds",
    "max_drawdown",
    "report_json",
    "trade_days",
    "trading_day",
]
