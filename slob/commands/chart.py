"""`slob chart DAY`: one trading day drawn -- candles, the LSE range, each setup's LIQ #1,
consolidation, LIQ #2 and trigger, each trade's entry, stop, target and exit, gaps,
filled minutes and rolls -- as an interactive, self-contained HTML page or a PNG.

The chart model is :mod:`slob.research.charts`, its data :mod:`slob.research.day`, the
drawing :mod:`slob.research.render` (plotly and matplotlib: ``pip install 'slob[charts]'``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TextIO

from slob.commands.common import EXIT_OK
from slob.commands.common import add_store_location, day

NAME = "chart"
HELP = ("draw one trading day from the store or a backtest: candles, LSE range, LIQ #1, consolidation, LIQ #2, "
        "trigger, entry, stop, target, exit, gaps, filled minutes and rolls (HTML or PNG)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("day", type=day, metavar="DAY", help="the trading day, YYYY-MM-DD (a weekday)")
    p.add_argument("--html", nargs="?", const="", default=None, metavar="PATH",
                   help="write an interactive, self-contained HTML page (the default; PATH default: "
                        "slob-chart-DAY.html)")
    p.add_argument("--png", nargs="?", const="", default=None, metavar="PATH",
                   help="write a PNG picture (PATH default: slob-chart-DAY.png)")
    p.add_argument("--trades", dest="trade_source", choices=("auto", "paper", "backtest"), default="auto",
                   help="whose trades to draw: the store's paper trades, the backtest's, or auto (paper when the "
                        "store recorded trades that day; default)")
    p.add_argument("--source", default="store", metavar="store|FILE.csv",
                   help="where the candles come from: the store (default) or a CSV file of 1-minute candles")
    p.add_argument("--symbol", default="NQ", help="the symbol (default NQ)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a SetupConfig, RiskConfig or fill-model field for the backtest behind the chart")
    add_store_location(p)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.research.backtest import BacktestConfig
    from slob.research.day import chart_of_day
    from slob.research.render import write_chart
    from slob.research.settings import apply_settings
    from slob.research.sources import load

    when: dt.date = args.day
    config = apply_settings(BacktestConfig(), args.settings)
    loaded = load(args.source, symbol=args.symbol, first=when, last=when, db=args.db, data_dir=args.data_dir,
                  need_ticks=config.exact_ticks)
    try:
        chart, result, used = chart_of_day(when, loaded.candles, config=config, ticks=loaded.ticks, db=loaded.db,
                                           trades=args.trade_source)
    finally:
        loaded.close()
    targets = []
    if args.html is not None or args.png is None:
        targets.append(Path(args.html or f"slob-chart-{when}.html"))
    if args.png is not None:
        targets.append(Path(args.png or f"slob-chart-{when}.png"))
    for path in targets:
        write_chart(chart, path)
        print(f"wrote {path}: {len(chart.candles):,} candles, {len(result.setups)} setup(s), "
              f"{sum(1 for m in chart.markers if m.kind == 'entry')} {used} trade(s)", file=out)
    return EXIT_OK
