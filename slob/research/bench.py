"""The backtest's benchmark (not a test): a generated year of 1-minute NQ bars through
:func:`slob.research.backtest.run_backtest`, timed, printed as candles per second.

    python -m slob.research.bench            # 52 weeks, about 359,000 bars
    python -m slob.research.bench --weeks 4 --seed 3 --csv year.csv

The year: every CME Globex minute of 52 weeks (Sunday 17:00 to Friday 16:00 Chicago, the
daily halt left out, holidays not modelled), a seeded random walk of NQ prices on the
0.25 grid with the front month of the live roll rule, so that rolls happen. The walk is
noisy enough for the tracker to find, trigger and invalidate setups, and for the fill
model to work; the numbers printed say how many. Generation is timed apart from the
backtest: the figure of merit is the backtest's candles per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path
from typing import Sequence, TextIO
from zoneinfo import ZoneInfo

from slob.model import Candle, fast_constructor
from slob.research.backtest import run_backtest
from slob.research.data import front_month

__all__ = ["generate_year", "main"]

CHICAGO = ZoneInfo("America/Chicago")
_MINUTE = dt.timedelta(minutes=1)
_make = fast_constructor(Candle)


def generate_year(weeks: int = 52, seed: int = 1, start: dt.date = dt.date(2024, 1, 7),
                  price: float = 17000.0) -> list[Candle]:
    """``weeks`` weeks of 1-minute NQ candles from Sunday ``start`` (see the module
    docstring)."""
    rng = random.Random(seed)
    gauss, randint = rng.gauss, rng.randint
    out: list[Candle] = []
    append = out.append
    p = price
    for week in range(weeks):
        sunday = start + dt.timedelta(weeks=week)
        for d in range(5):  # sessions opening Sunday .. Thursday 17:00 Chicago
            opens = dt.datetime.combine(sunday + dt.timedelta(days=d), dt.time(17, 0), tzinfo=CHICAGO)
            t = opens.astimezone(dt.timezone.utc)
            contract = front_month("NQ", t)
            drift = gauss(0.0, 0.02)
            for _ in range(23 * 60):
                o = p
                c = round((p + drift + gauss(0.0, 2.5)) * 4) / 4
                h = max(o, c) + randint(0, 8) * 0.25
                low = min(o, c) - randint(0, 8) * 0.25
                append(_make("NQ", contract, 60, t, o, h, low, c, 10.0, 12, False))
                p = c
                t += _MINUTE
    return out


def _write_csv(candles: Sequence[Candle], path: Path) -> None:
    from slob.research.export import write_csv

    with path.open("w", newline="", encoding="utf-8") as f:
        write_csv("candles", ((c.symbol, c.contract, 60, c.start, c.open, c.high, c.low, c.close, c.volume, c.trades,
                               c.filled) for c in candles), f)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    p = argparse.ArgumentParser(prog="python -m slob.research.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--weeks", type=int, default=52, help="weeks of bars to generate (default 52: about 359,000)")
    p.add_argument("--seed", type=int, default=1, help="the random walk's seed (default 1)")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help="also write the bars as a candle CSV")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    candles = generate_year(args.weeks, args.seed)
    t1 = time.perf_counter()
    result = run_backtest(candles, symbol="NQ")
    t2 = time.perf_counter()
    seconds = t2 - t1
    states = result.setup_states()
    rolls = sum(1 for a, b in zip(candles, candles[1:]) if a.contract != b.contract)
    print(f"generated {len(candles):,} one-minute NQ bars ({args.weeks} weeks, seed {args.seed}, {rolls} rolls) "
          f"in {t1 - t0:.2f} s", file=out)
    print(f"backtest: {seconds:.2f} s, {len(candles) / seconds:,.0f} candles/s; {sum(states.values())} setups "
          f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}), {len(result.trades)} trades, "
          f"{len(result.skipped)} not placed, P&L {result.pnl:+,.2f} USD", file=out)
    if args.csv is not None:
        _write_csv(candles, args.csv)
        print(f"wrote {args.csv}", file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
