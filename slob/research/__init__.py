"""Research on the SLOB strategy: backtests over history, paper against backtest, charts
and exports. Pure where it can be (the backtest, the fill model, the chart model);
charting, Parquet and frames need the ``charts``, ``parquet`` and ``frames`` extras and
are imported only when used.

    from slob.research import BacktestConfig, frame, run_backtest
    from slob.research.data import store_candles

    result = run_backtest(store_candles(Path("slob.sqlite3"), "NQ"), BacktestConfig())
    candles = frame("candles", db="slob.sqlite3", first="2025-03-05")   # a pandas DataFrame
"""

from __future__ import annotations

from slob.research.backtest import BacktestConfig, BacktestResult, Backtester, Trade, run_backtest
from slob.research.export import frame
from slob.research.fills import FillConfig

__all__ = ["BacktestConfig", "BacktestResult", "Backtester", "FillConfig", "Trade", "frame", "run_backtest"]
