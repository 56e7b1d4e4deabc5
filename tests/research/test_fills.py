"""The bracket fill model on hand-made candles and trades: every rule of
slob.research.fills, and each one against what FakeTWS's matching does."""

from __future__ import annotations

import datetime as dt

import pytest

from slob.ib.errors import ConfigError
from slob.model import Candle
from slob.research.fills import COMMISSIONS, FillConfig, Position, candle_exit, pnl, tick_exit
from slob.testing.order_records import COMMISSION_PER_CONTRACT

T0 = dt.datetime(2025, 3, 5, 15, 40, tzinfo=dt.timezone.utc)
NS0 = int(T0.timestamp()) * 10**9


def candle(o: float, h: float, low: float, c: float, minutes: int = 0) -> Candle:
    return Candle("NQ", "NQH5", 60, T0 + dt.timedelta(minutes=minutes), o, h, low, c, 10.0, 4)


SHORT = Position("S", "NQ", "NQH5", "short", 1, T0, stop=20104.0, target=19949.5, entry_time=T0, entry_price=20089.5)
LONG = Position("L", "NQ", "NQH5", "long", 1, T0, stop=19896.0, target=20050.5, entry_time=T0, entry_price=19910.5)
FILLS = FillConfig()


def test_a_candle_reaching_only_the_target_fills_the_limit_at_the_target() -> None:
    e = candle_exit(SHORT, candle(20000, 20010, 19940, 19960, 3), FILLS, entry_candle=False)
    assert e is not None and (e.by, e.price, e.exact) == ("target", 19949.5, False)
    assert e.time == T0 + dt.timedelta(minutes=3)  # the candle's start: all a candle can say


def test_a_candle_reaching_only_the_stop_fills_at_the_stop_price() -> None:
    e = candle_exit(LONG, candle(19900, 19905, 19890, 19892, 1), FILLS, entry_candle=False)
    assert e is not None and (e.by, e.price) == ("stop", 19896.0)


def test_when_one_candle_reaches_both_the_stop_is_assumed_first() -> None:
    wide = candle(20000, 20110, 19900, 19950, 2)
    e = candle_exit(SHORT, wide, FILLS, entry_candle=False)
    assert e is not None and (e.by, e.price) == ("stop", 20104.0)


def test_a_candle_opening_beyond_the_stop_fills_the_stop_at_the_open() -> None:
    e = candle_exit(SHORT, candle(20110, 20120, 20100, 20105, 5), FILLS, entry_candle=False)
    assert e is not None and (e.by, e.price) == ("stop", 20110.0)


def test_a_gap_through_the_target_fills_the_resting_limit_at_the_target_but_the_entry_candle_at_its_open() -> None:
    later = candle_exit(SHORT, candle(19940, 19945, 19930, 19935, 5), FILLS, entry_candle=False)
    first = candle_exit(SHORT, candle(19940, 19945, 19930, 19935, 0), FILLS, entry_candle=True)
    assert later is not None and (later.by, later.price) == ("target", 19949.5)  # FakeTWS: resting -> its limit
    assert first is not None and (first.by, first.price) == ("target", 19940.0)  # marketable at activation


def test_a_candle_inside_the_bracket_fills_nothing() -> None:
    assert candle_exit(SHORT, candle(20000, 20103.75, 19949.75, 20001, 1), FILLS, entry_candle=False) is None


def test_the_minutes_trades_decide_the_order_and_the_stop_fills_at_the_trade_through_it() -> None:
    trades = [(NS0 + 1 * 10**9, 20000.0), (NS0 + 7 * 10**9, 19949.0), (NS0 + 9 * 10**9, 20110.0)]
    e = tick_exit(SHORT, trades, FILLS, entry_candle=False)
    assert e is not None and (e.by, e.price, e.exact) == ("target", 19949.5, True)
    assert e.time == T0 + dt.timedelta(seconds=7)
    trades = [(NS0 + 1 * 10**9, 20000.0), (NS0 + 3 * 10**9, 20104.75), (NS0 + 9 * 10**9, 19900.0)]
    e = tick_exit(SHORT, trades, FILLS, entry_candle=False)
    assert e is not None and (e.by, e.price) == ("stop", 20104.75)  # through the stop: that trade's price
    assert tick_exit(SHORT, [(NS0, 20000.0), (NS0 + 10**9, 20103.75)], FILLS, entry_candle=False) is None


def test_slippage_worsens_the_market_orders_only() -> None:
    slip = FillConfig(slippage_ticks=2)
    stop = candle_exit(SHORT, candle(20100, 20105, 20090, 20095, 1), slip, entry_candle=False)
    assert stop is not None and stop.price == 20104.5  # a buy stop fills 2 ticks higher
    long_stop = candle_exit(LONG, candle(19900, 19905, 19890, 19892, 1), slip, entry_candle=False)
    assert long_stop is not None and long_stop.price == 19895.5
    target = candle_exit(SHORT, candle(19960, 19965, 19940, 19945, 1), slip, entry_candle=False)
    assert target is not None and target.price == 19949.5  # a limit never fills worse
    assert slip.slipped(20000.0, buy=True) == 20000.5 and slip.slipped(20000.0, buy=False) == 19999.5


def test_pnl_is_ibs_realized_pnl_net_of_both_commissions() -> None:
    assert pnl(SHORT, 19949.5, FILLS) == (2795.5, 4.5)  # the demo's short: (20089.5 - 19949.5) x 20 - 2 x 2.25
    assert pnl(LONG, 19895.75, FILLS) == (-299.5, 4.5)
    two = Position("L", "MNQ", "MNQH5", "long", 2, T0, stop=1.0, target=3.0, entry_time=T0, entry_price=2.0)
    assert pnl(two, 3.0, FillConfig()) == (2 * 2.0 - 4 * 0.62, 4 * 0.62)
    assert pnl(SHORT, 19949.5, FillConfig(commission=0.0, multiplier=2.0)) == (280.0, 0.0)


def test_the_commissions_are_the_ones_faketws_charges() -> None:
    assert dict(COMMISSIONS) == COMMISSION_PER_CONTRACT


@pytest.mark.parametrize("kwargs", [{"commission": -1.0}, {"slippage_ticks": -1.0}, {"tick_size": 0.0},
                                    {"multiplier": 0.0}, {"slippage_ticks": float("nan")}])
def test_nonsense_fill_settings_are_refused_with_the_reason(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        FillConfig(**kwargs)


def test_an_unknown_symbol_needs_its_multiplier() -> None:
    with pytest.raises(ConfigError, match="multiplier"):
        FillConfig().multiplier_for("ZZ")
    assert FillConfig(multiplier=10.0).multiplier_for("ZZ") == 10.0
