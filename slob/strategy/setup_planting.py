"""plant_setup: a synthetic trading day of 1-minute candles holding exactly one SLOB setup.

For end-to-end tests (a FakeTWS scenario replays the candles' prices) and for the
tracker's own tests. Pure and deterministic: the same arguments give the same candles.

The day, for a short (a long is the mirror image: every price reflected, high <-> low)::

    LSE session     a gentle wave that touches lse_high once and lse_low once
    NYSE open       ``liq1_minute`` candles drifting up to just under the LSE high
    LIQ #1          high = lse_high + liq1_sweep, close back under it
    consolidation   ``consolidation_candles`` candles in a band of
                    ``consolidation_range_pct`` % below the LSE high; every other one
                    touches the top exactly, the others the bottom
    LIQ #2          bullish, from inside the band to top + liq2_sweep, closing at its high
    (waiting)       ``trigger_after - 1`` candles holding above the LIQ #2 open
    trigger         closes 2 ticks below the LIQ #2 open
    entry candle    opens at the trigger's close: the entry
    continuation    ``step`` points a candle towards the target (``outcome="target"``,
                    down to it), the stop (``"stop"``, up through it) or nothing ("none")

:class:`PlantedSetup` carries the candles and the expected id, entry, stop and target;
:func:`plant_setup` checks them with a :class:`~slob.strategy.setup_tracker.SetupTracker`
and raises ValueError when the arguments cannot make exactly that one READY setup
under ``config``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from slob.market.sessions import lse_session, nyse_session
from slob.strategy.setup_tracker import Direction, SetupConfig, SetupReady, SetupTracker
from slob.model import Candle

__all__ = ["OUTCOMES", "PlantedSetup", "plant_setup"]

OUTCOMES = ("target", "stop", "none")
_MINUTE = dt.timedelta(minutes=1)
_UTC = dt.timezone.utc


@dataclass(frozen=True, slots=True, kw_only=True)
class PlantedSetup:
    """The planted day and what the tracker must make of it. ``ready_at`` is when the
    READY event comes (the entry candle's close); ``*_at`` are candle starts (UTC)."""

    candles: tuple[Candle, ...]
    direction: Direction
    setup_id: str
    entry: float
    stop: float
    target: float
    lse_high: float
    lse_low: float
    liq1_at: dt.datetime
    liq2_at: dt.datetime
    trigger_at: dt.datetime
    entry_at: dt.datetime
    ready_at: dt.datetime
    outcome: str


def plant_setup(
    day: dt.date,
    direction: Direction,
    *,
    lse_high: float,
    lse_low: float,
    symbol: str = "NQ",
    contract: str = "NQM5",
    config: SetupConfig | None = None,
    lse_candles: int | None = None,
    liq1_minute: int = 2,
    liq1_sweep: float = 4.0,
    consolidation_candles: int = 5,
    consolidation_range_pct: float | None = None,
    liq2_sweep: float = 3.0,
    trigger_after: int = 1,
    step: float = 5.0,
    outcome: str = "target",
) -> PlantedSetup:
    """The candles of weekday ``day`` with one ``direction`` setup (see the module
    docstring). ``lse_candles``: how many LSE candles, ending at the LSE close (default:
    the whole session, 390). ``liq1_minute``: LIQ #1 is the candle starting that many
    minutes after the NYSE open. ``consolidation_range_pct`` defaults to the middle of
    the config's range. Points are price points; all prices land on the tick grid."""
    cfg = config if config is not None else SetupConfig()
    t, rt = cfg.tick_size, cfg.round_tick
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {OUTCOMES}")
    if not lse_high - lse_low >= 10 * t:
        raise ValueError(f"the LSE range {lse_low}..{lse_high} must be at least 10 ticks wide")
    if min(liq1_sweep, liq2_sweep, step) < t:
        raise ValueError("liq1_sweep, liq2_sweep and step must be at least one tick")
    if not 1 <= trigger_after <= cfg.entry_wait_max_candles:
        raise ValueError(f"trigger_after must be within 1..entry_wait_max_candles ({cfg.entry_wait_max_candles})")
    if liq1_minute < 0:
        raise ValueError("liq1_minute must be >= 0")
    sign = direction.sign
    high, low = (rt(lse_high), rt(lse_low)) if sign > 0 else (-rt(lse_low), -rt(lse_high))
    pct = consolidation_range_pct
    if pct is None:
        pct = (cfg.consolidation_min_range_pct + cfg.consolidation_max_range_pct) / 2
    width = rt(abs(high) * pct / 100)
    quarter = max(t, rt(width / 4))
    if width < 4 * t:
        raise ValueError(f"a {pct}% consolidation at {abs(high)} is narrower than 4 ticks")

    bars: list[tuple[float, float, float, float]] = []  # short-space (open, high, low, close)
    lse_start, lse_end = lse_session(day)
    n_lse = lse_candles if lse_candles is not None else (lse_end - lse_start) // _MINUTE
    if not 1 <= n_lse <= (lse_end - lse_start) // _MINUTE:
        raise ValueError("lse_candles must be within 1..the session's length in minutes")
    mid, amp = rt((high + low) / 2), (high - low) / 2
    prev = mid
    for i in range(n_lse):
        close = rt(mid + 0.5 * amp * math.sin(2 * math.pi * (i + 1) / max(n_lse, 4)))
        bars.append((prev, min(max(prev, close) + t, high - t), max(min(prev, close) - t, low + t), close))
        prev = close
    o, h, lo, c = bars[n_lse // 3]
    bars[n_lse // 3] = (o, high, lo, c)
    o, h, lo, c = bars[2 * n_lse // 3]
    bars[2 * n_lse // 3] = (o, h, low, c)
    nyse_open = nyse_session(day)[0]
    first = len(bars)
    approach = high - 2 * t
    for j in range(liq1_minute):
        close = rt(prev + (approach - prev) * (j + 1) / liq1_minute)
        bars.append((prev, min(max(prev, close) + t, high), max(min(prev, close) - t, low + t), close))
        prev = close
    liq1 = len(bars)
    top, bottom, middle = high, high - width, rt(high - width / 2)
    bars.append((prev, rt(high + liq1_sweep), max(min(prev, top - quarter) - t, low + t), top - quarter))
    for i in range(consolidation_candles):
        if i % 2 == 0:
            bars.append((middle, top, middle - t, top - quarter))
        else:
            bars.append((top - quarter, top - quarter + t, bottom, middle))
    liq2 = len(bars)
    liq2_open, liq2_high = top - quarter, rt(top + liq2_sweep)
    bars.append((liq2_open, liq2_high, liq2_open - t, liq2_high))
    stop = cfg.ceil_tick(liq2_high + cfg.stop_buffer_points)
    target = cfg.ceil_tick(low - cfg.target_buffer_points)
    for _ in range(trigger_after - 1):
        bars.append((liq2_high - t, liq2_high - t, liq2_high - 3 * t, liq2_high - 2 * t))
    trigger = len(bars)
    entry = rt(liq2_open - 2 * t)
    bars.append((liq2_high - t, liq2_high - t, entry - t, entry))
    prev = entry
    if outcome == "target":
        while True:
            close = max(rt(prev - step), target)
            bars.append((prev, prev, close - t if close == target else close, close))
            prev = close
            if close <= target:
                break
    elif outcome == "stop":
        while True:
            close = min(rt(prev + step), stop + t)
            bars.append((prev, close, prev - t, close))
            prev = close
            if close >= stop + t:
                break
    else:
        bars.append((entry, entry + t, entry - t, entry))

    nyse_end = nyse_session(day)[1]
    candles: list[Candle] = []
    for i, (o, h, lo, c) in enumerate(bars):
        start = lse_end - (n_lse - i) * _MINUTE if i < first else nyse_open + (i - first) * _MINUTE
        if start >= nyse_end:
            raise ValueError(f"the planted day runs past the NYSE close ({nyse_end}); use a larger step")
        po, ph, pl, pc = (o, h, lo, c) if sign > 0 else (-o, -lo, -h, -c)
        candles.append(Candle(symbol, contract, 60, start, po + 0.0, ph + 0.0, pl + 0.0, pc + 0.0,
                              volume=float(5 + i % 11), trades=3 + i % 7))
    at = [candles[k].start for k in (liq1, liq2, trigger, trigger + 1)]
    planted = PlantedSetup(
        candles=tuple(candles), direction=direction,
        setup_id=f"{symbol}-{day:%Y%m%d}-{direction.value}-{at[0].astimezone(_UTC):%H%M}-1",
        entry=sign * entry + 0.0, stop=sign * stop + 0.0, target=sign * target + 0.0,
        lse_high=rt(lse_high), lse_low=rt(lse_low),
        liq1_at=at[0], liq2_at=at[1], trigger_at=at[2], entry_at=at[3], ready_at=at[3] + _MINUTE,
        outcome=outcome,
    )
    _verify(planted, cfg)
    return planted


def _verify(planted: PlantedSetup, cfg: SetupConfig) -> None:
    tracker = SetupTracker(cfg)
    events = [e for c in planted.candles for e in tracker.on_candle(c)]
    ready = [e for e in events if isinstance(e, SetupReady)]
    expected = (planted.setup_id, planted.entry, planted.stop, planted.target, planted.ready_at)
    if [(r.setup_id, r.entry, r.stop, r.target, r.at) for r in ready] != [expected]:
        story = "; ".join(f"{e.setup_id} {e.state.value}: {e.reason}" for e in events if not isinstance(e, SetupReady))
        raise ValueError(
            f"these arguments do not plant exactly one READY setup {expected} under this config "
            f"(got {len(ready)} READY): {story}"
        )
