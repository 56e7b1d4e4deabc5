"""The soak's configuration pieces that are pure: clock speeds, engine options, junk."""

from __future__ import annotations

import datetime as dt

import pytest

from slob.soak.calendar import NEW_YORK
from slob.soak.child import SOAK_IB, ib_config, parse_options
from slob.soak.faults import Fault
from slob.soak.runner import SoakConfig, junk

UTC = dt.timezone.utc


def test_the_clock_slows_down_around_the_nightly_restart_and_reset() -> None:
    cfg = SoakConfig(days=3)
    tuesday = dt.datetime(2025, 3, 4, tzinfo=NEW_YORK)
    assert cfg.speed_at(tuesday.replace(hour=12)) == cfg.speed
    assert cfg.speed_at(tuesday.replace(hour=23, minute=45)) == cfg.night_speed
    assert cfg.speed_at(tuesday.replace(hour=1, minute=0)) == cfg.night_speed
    assert cfg.speed_at(tuesday.replace(hour=17, minute=30)) == cfg.closed_speed  # the CME halt
    changes = cfg.speed_changes()
    assert all(cfg.start < m <= cfg.end for m, _ in changes)
    speeds = [cfg.speed_at(cfg.start)] + [s for _, s in changes]
    assert all(a != b for a, b in zip(speeds, speeds[1:]))  # only real changes
    for moment, speed in changes:
        assert cfg.speed_at(moment) == speed


def test_engine_options_are_ibconfig_fields() -> None:
    assert parse_options(["request_timeout_seconds=2", "account=DU1"]) == {"request_timeout_seconds": 2,
                                                                          "account": "DU1"}
    with pytest.raises(ValueError, match="no field"):
        parse_options(["warp=9"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_options(["request_timeout_seconds"])
    config = ib_config(4002, 7, {"request_timeout_seconds": 2})
    assert (config.port, config.client_id, config.request_timeout_seconds) == (4002, 7, 2)
    assert config.reconnect_delay_seconds == SOAK_IB["reconnect_delay_seconds"]


def test_proxy_junk_is_seeded_and_oversize_announces_two_gigabytes() -> None:
    at = dt.datetime(2025, 3, 3, 12, tzinfo=UTC)
    big = junk(Fault(1, "proxy_junk", at, variant="oversize"))
    assert int.from_bytes(big[:4], "big") == 0x7FFFFFFF
    noise = Fault(2, "proxy_junk", at, variant="random")
    assert junk(noise) == junk(noise) and 8 <= len(junk(noise)) <= 64
