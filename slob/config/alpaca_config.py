"""AlpacaConfig: how slob connects to Alpaca's real-time stock data stream (v2).

Frozen and keyword-only; every value is checked when the config is built, so a bad
setting fails at once with a :class:`~slob.ib.errors.ConfigError` naming the fix.
Credentials are deliberately not part of it (they are given to
:class:`~slob.live.alpaca_ws_fetcher.AlpacaWSFetcher` or read from
``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``), so a config can be logged safely: a URL
carrying ``user:password@`` is refused (``websockets`` would send it as an Authorization
header and log that header at DEBUG), and no error message repeats such a URL.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from slob.ib.errors import ConfigError

__all__ = ["AlpacaConfig", "FEEDS", "STREAM_URL"]

#: The production stream; ``{feed}`` is one of :data:`FEEDS`.
STREAM_URL = "wss://stream.data.alpaca.markets/v2/{feed}"
#: iex: free (IEX exchange only); sip: all US exchanges (paid plan); delayed_sip: SIP
#: 15 minutes late; boats / overnight: extended-hours feeds; test: Alpaca's always-on
#: test stream (symbol FAKEPACA).
FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "test")


@dataclass(frozen=True, kw_only=True, slots=True)
class AlpacaConfig:
    feed: str = "iex"
    #: Overrides the URL built from ``feed`` (tests: ``ws://127.0.0.1:<port>/v2/iex``).
    url: str | None = None
    max_reconnect_attempts: int = 10
    reconnect_delay_seconds: float = 1.0
    max_reconnect_delay_seconds: float = 30.0
    #: Opening handshake, welcome and authentication together.
    connect_timeout_seconds: float = 10.0
    #: How long subscribe()/unsubscribe() wait for the server's acknowledgement.
    request_timeout_seconds: float = 10.0
    #: WebSocket keepalive pings (None: off). A dead peer is noticed within twice this.
    ping_interval_seconds: float | None = 20.0
    close_timeout_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.feed not in FEEDS:
            raise ConfigError(f"feed {self.feed!r} is not one of {FEEDS}: 'iex' is free, 'sip' needs a paid "
                              "market-data plan")
        if self.url is not None:
            _check_url(self.url)
        if self.max_reconnect_attempts < 0:
            raise ConfigError("max_reconnect_attempts must be >= 0 (0 = never reconnect)")
        if self.reconnect_delay_seconds < 0 or self.max_reconnect_delay_seconds < self.reconnect_delay_seconds:
            raise ConfigError("reconnect delays must be >= 0 with max_reconnect_delay_seconds >= reconnect_delay_seconds")
        for name in ("connect_timeout_seconds", "request_timeout_seconds", "close_timeout_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} {getattr(self, name)} must be positive")
        if self.ping_interval_seconds is not None and not self.ping_interval_seconds > 0:
            raise ConfigError("ping_interval_seconds must be positive, or None to turn keepalive pings off")

    @property
    def stream_url(self) -> str:
        return self.url if self.url is not None else STREAM_URL.format(feed=self.feed)

    def replace(self, **changes: object) -> "AlpacaConfig":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _check_url(url: str) -> None:
    shown = _USERINFO.sub("//***@", url)  # never repeat credentials in an error
    if shown != url:
        raise ConfigError(f"url {shown!r} carries credentials (user:password@); remove them: {_KEYS}")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"url {url!r} is not a valid URL ({exc})") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"url carries credentials (user:password@); remove them: {_KEYS}")
    if parts.scheme not in ("ws", "wss") or not host:
        raise ConfigError(f"url {url!r} must be ws:// or wss://host/..., e.g. {STREAM_URL.format(feed='iex')}")
    if parts.scheme == "ws" and not _is_loopback(host):
        raise ConfigError(f"url {url!r} is unencrypted ws:// to a remote host, which would send the API key in "
                          "clear text; use wss:// (ws:// is only for a local fake such as slob.testing.FakeAlpaca)")


#: ``//user:password@`` (or ``//user@``) in a URL: the part websockets would log.
_USERINFO = re.compile(r"//[^/?#]*@")
_KEYS = ("Alpaca keys go to AlpacaWSFetcher(key_id=..., secret_key=...) or the environment "
         "(APCA_API_KEY_ID / APCA_API_SECRET_KEY), where slob keeps them out of every log")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
