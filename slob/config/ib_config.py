"""IBConfig: how slob connects to TWS / IB Gateway.

Frozen and keyword-only; every value is checked when the config is built, so a bad
setting fails at once with a :class:`~slob.ib.errors.ConfigError` naming the fix. Paper
trading is the default; a live port (7496 TWS, 4001 Gateway) needs ``paper_trading=False``
*and* ``allow_live=True``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from slob.ib.errors import ConfigError, LiveTradingRefused

__all__ = ["IBConfig", "LIVE_PORTS", "PAPER_PORTS"]

PAPER_PORTS = (7497, 4002)
LIVE_PORTS = (7496, 4001)
DATA_TYPES = ("realtime", "delayed")
TICK_SOURCES = ("tick_by_tick", "market_data")


@dataclass(frozen=True, kw_only=True, slots=True)
class IBConfig:
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    account: str = ""
    paper_trading: bool = True
    allow_live: bool = False
    max_reconnect_attempts: int = 10
    reconnect_delay_seconds: float = 5.0
    max_reconnect_delay_seconds: float = 60.0
    client_id_retries: int = 3  # connect attempts while TWS answers 326 (client id in use)
    data_type: str = "realtime"
    tick_source: str = "tick_by_tick"
    roll_days_before_expiry: int = 8
    connect_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 15.0
    max_messages_per_second: int = 45
    #: Backpressure: records queued for the event loop at which the reader stops reading the
    #: socket (it reads again below half). 10,000: ten seconds of NQ at its busiest, a few MB.
    bridge_high_water: int = 10_000
    #: Liveness: after this long with nothing received, TWS is asked the time...
    liveness_idle_seconds: float = 10.0
    #: ...and no answer within this long counts as a drop.
    liveness_timeout_seconds: float = 10.0
    #: A frame announced but still incomplete after this long counts as a drop.
    frame_timeout_seconds: float = 10.0
    #: Consecutive sessions ending in unreadable data tolerated before giving up (PeerNotTWS).
    max_junk_sessions: int = 2
    #: A recovered session counts as healthy (the attempt count starts again) after its first
    #: tick, or after streaming this long without one (a closed market).
    healthy_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("host is empty; use '127.0.0.1' for a TWS/Gateway on this machine")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is not a TCP port (TWS paper 7497, Gateway paper 4002)")
        if self.client_id < 0:
            raise ConfigError(f"client_id {self.client_id} is negative; IB accepts any integer >= 0")
        if self.data_type not in DATA_TYPES:
            raise ConfigError(f"data_type {self.data_type!r} is not one of {DATA_TYPES}")
        if self.tick_source not in TICK_SOURCES:
            raise ConfigError(f"tick_source {self.tick_source!r} is not one of {TICK_SOURCES}")
        if self.data_type == "delayed" and self.tick_source == "tick_by_tick":
            raise ConfigError(
                "data_type='delayed' needs tick_source='market_data': IB has no delayed tick-by-tick data"
            )
        if self.client_id_retries < 1:
            raise ConfigError("client_id_retries must be >= 1 (connect attempts while the client id is in use)")
        if self.max_reconnect_attempts < 0:
            raise ConfigError("max_reconnect_attempts must be >= 0 (0 = never reconnect)")
        if self.reconnect_delay_seconds < 0 or self.max_reconnect_delay_seconds < self.reconnect_delay_seconds:
            raise ConfigError("reconnect delays must be >= 0 with max_reconnect_delay_seconds >= reconnect_delay_seconds")
        if not 0 <= self.roll_days_before_expiry <= 60:
            raise ConfigError(f"roll_days_before_expiry {self.roll_days_before_expiry} is outside 0..60")
        if self.max_junk_sessions < 0:
            raise ConfigError("max_junk_sessions must be >= 0")
        for name in ("connect_timeout_seconds", "request_timeout_seconds", "liveness_idle_seconds",
                     "liveness_timeout_seconds", "frame_timeout_seconds", "healthy_after_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} {getattr(self, name)} must be positive")
        if not 1 <= self.max_messages_per_second <= 50:
            raise ConfigError("max_messages_per_second must be 1..50 (TWS allows 50 per second)")
        if self.bridge_high_water < 1:
            raise ConfigError("bridge_high_water must be >= 1")
        if self.account and not self.account.replace("-", "").isalnum():
            raise ConfigError(f"account {self.account!r} does not look like an IB account id (e.g. DU1234567)")
        self.check_live()

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def check_live(self) -> None:
        """Refuse a live port, or an account that is not a paper account (paper accounts
        start with ``D``, e.g. DU1234567), unless live trading is explicitly enabled."""
        live_port = self.port in LIVE_PORTS
        live_account = bool(self.account) and not self.account.upper().startswith("D")
        # Both switches, as documented: allow_live alone (still paper_trading=True) is not
        # an opt-in to a live port or account.
        opted_in = self.allow_live and not self.paper_trading
        if (live_port or live_account or not self.paper_trading) and not opted_in:
            what = (f"port {self.port} is a live-trading port (paper: 7497 TWS, 4002 Gateway)" if live_port
                    else f"account {self.account} is not a paper account" if live_account
                    else "paper_trading=False")
            raise LiveTradingRefused(
                f"{what}. slob trades paper by default; to trade live, set paper_trading=False and "
                "allow_live=True (CLI: --live) deliberately."
            )

    def replace(self, **changes: object) -> "IBConfig":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={'***' + self.account[-3:] if f.name == 'account' and self.account else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
        )
        return f"IBConfig({shown})"
