"""The soak's planted-setup check: traded exactly once, unless the trigger fell in minutes
the engine had to replay from memory."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from slob.strategy.setup_planting import plant_setup
from slob.strategy.setup_tracker import Direction
from slob.model import ConnectionLost, Gap
from slob.soak.checks import account_planted, replayed_windows
from slob.testing.order_records import OrderInfo

UTC = dt.timezone.utc
MINUTE = dt.timedelta(minutes=1)
SHORT = plant_setup(dt.date(2025, 3, 5), Direction.SHORT, lse_high=20100, lse_low=19950)
LONG = plant_setup(dt.date(2025, 3, 6), Direction.LONG, lse_high=20050, lse_low=19900)


def parent(oid: int, ref: str, client: int = 7) -> OrderInfo:
    return OrderInfo(oid, client, 100 + oid, "DU1234567", "NQH5", 1, "SELL", Decimal(1), "MKT", None, None, "DAY",
                     "", 0, ref, 0, True, "Filled", "", Decimal(1), 0.0, None, ())


def test_each_planted_setup_traded_once_passes() -> None:
    account = account_planted([SHORT, LONG], [parent(1, SHORT.setup_id), parent(4, LONG.setup_id)], [], 7)
    assert account.traded == (SHORT.setup_id, LONG.setup_id) and not (account.twice or account.missed)


def test_twice_or_not_at_all_fails_and_other_clients_do_not_count() -> None:
    orders = [parent(1, SHORT.setup_id), parent(9, SHORT.setup_id), parent(12, LONG.setup_id, client=8)]
    account = account_planted([SHORT, LONG], orders, [], 7)
    assert account.twice == (SHORT.setup_id,) and account.missed == (LONG.setup_id,)


def test_a_trigger_inside_an_outage_is_replayed_not_missed() -> None:
    t = SHORT.trigger_at
    events = [ConnectionLost(t - 3 * MINUTE + dt.timedelta(seconds=20), "socket closed"),
              Gap(t - 2 * MINUTE, t + dt.timedelta(seconds=30), "socket closed")]
    account = account_planted([SHORT], [], events, 7)
    assert account.replayed == (SHORT.setup_id,) and account.missed == ()
    # the stretch runs from the minute before the loss was noticed to the minute after the join
    assert replayed_windows(events) == [(t - 4 * MINUTE, t + MINUTE)]


def test_an_outage_that_ended_before_the_trigger_excuses_nothing() -> None:
    t = SHORT.trigger_at
    events = [Gap(t - 10 * MINUTE, t - 2 * MINUTE - dt.timedelta(seconds=1), "1101")]
    assert account_planted([SHORT], [], events, 7).missed == (SHORT.setup_id,)
