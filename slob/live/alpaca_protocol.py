"""Alpaca market-data stream v2: message parsing, the error-code table and the
credentials that must never be shown (no I/O).

The server sends JSON arrays of messages, each with a type ``T``: control messages
(``success``, ``error``, ``subscription``) arrive one per frame, data (``t`` trades,
``q`` quotes, ``b`` bars, ...) possibly several per frame. A trade::

    {"T":"t","S":"AAPL","i":96921,"x":"D","p":126.55,"s":1,
     "t":"2021-02-22T15:51:44.208Z","c":["@","I"],"z":"C"}

``t`` is RFC-3339 in UTC with up to nanosecond digits. Error messages carry a code;
:func:`error_for` turns one into a :class:`~slob.ib.errors.SlobError` subclass whose
message names the fix::

    SlobError
    ├── AlpacaError                 the stream sent {"T":"error","code":...}
    │   ├── AuthenticationFailed    402 (also a ConnectError)
    │   ├── ConnectionLimitExceeded 406 (also a ConnectError)
    │   ├── InsufficientSubscription 409 (also a ConnectError)
    │   ├── AlpacaConnectError      404 auth timeout, 408 v2 not enabled (ConnectError)
    │   ├── SymbolLimitExceeded     405
    │   ├── SlowClient              407
    │   ├── AlpacaProtocolError     400, 401, 403, 410: a request the server refused
    │   └── AlpacaServerError       500 and codes slob does not know
    ├── ConnectError
    │   └── AlpacaUnreachable       no WebSocket session could be opened at the URL
    └── MalformedMessage            a frame or trade slob cannot read (the stream goes on)
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from slob.ib.errors import ConnectError, SlobError
from slob.model import Tick

__all__ = [
    "ALPACA_ERRORS",
    "AlpacaConnectError",
    "AlpacaError",
    "AlpacaProtocolError",
    "AlpacaServerError",
    "AlpacaUnreachable",
    "AuthenticationFailed",
    "ConnectionLimitExceeded",
    "Credentials",
    "InsufficientSubscription",
    "MalformedMessage",
    "SlowClient",
    "SymbolLimitExceeded",
    "error_for",
    "parse_frame",
    "parse_time",
    "tick_from_trade",
]

_UTC = dt.timezone.utc


class AlpacaError(SlobError):
    """The Alpaca stream answered with an error message."""

    def __init__(self, code: int, text: str, context: str = "") -> None:
        self.code, self.text, self.context = code, text, context
        where = f" while {context}" if context else ""
        super().__init__(f"Alpaca error {code} ({text}){where}: {hint_for(code)}")


class AuthenticationFailed(AlpacaError, ConnectError):
    """402: the key id / secret pair was refused."""


class ConnectionLimitExceeded(AlpacaError, ConnectError):
    """406: another connection with these keys is open on this feed."""


class InsufficientSubscription(AlpacaError, ConnectError):
    """409: the account's market-data plan does not include this feed or data."""


class AlpacaConnectError(AlpacaError, ConnectError):
    """404 (authentication timed out) or 408 (market data v2 not enabled)."""


class SymbolLimitExceeded(AlpacaError):
    """405: more symbols than the plan allows on one connection."""


class SlowClient(AlpacaError):
    """407: the client reads too slowly; Alpaca drops data or the connection."""


class AlpacaProtocolError(AlpacaError):
    """400, 401, 403, 410: the server refused a request slob sent."""


class AlpacaServerError(AlpacaError):
    """500 or an unknown code."""


class AlpacaUnreachable(ConnectError):
    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        super().__init__(
            f"could not open the Alpaca stream at {url} ({detail}). Check the network (and any proxy), "
            "that the feed in the URL exists (iex, sip, ...), and Alpaca's status page."
        )


class MalformedMessage(SlobError):
    """A frame or message the stream sent that slob cannot read; it is skipped."""

    def __init__(self, reason: str, raw: object) -> None:
        self.reason = reason
        text = raw if isinstance(raw, str) else repr(raw)
        self.raw = text[:200]
        super().__init__(f"unreadable message from the Alpaca stream ({reason}); skipped it: {self.raw}")


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """An Alpaca key pair, kept out of every text slob makes of it.

    Its repr and str show at most the last four characters of a full-length key id (they
    tell a paper key from a live one) and never the secret; only :meth:`auth_message`
    spells them out, for the one frame that needs them. :meth:`found_in` lets a log
    filter recognise that frame, or anything else carrying either value, however it is
    encoded there (plain, in a JSON string or in a repr).
    """

    key_id: str
    secret_key: str

    @property
    def hint(self) -> str:
        """``'...WXYZ'`` for a full-length key id, ``'***'`` for a short one."""
        return f"'...{self.key_id[-4:]}'" if len(self.key_id) >= 16 else "'***'"

    def __repr__(self) -> str:
        return f"Credentials(key_id={self.hint}, secret_key='***')"

    __str__ = __repr__

    def auth_message(self) -> str:
        return json.dumps({"action": "auth", "key": self.key_id, "secret": self.secret_key})

    def _forms(self) -> tuple[str, ...]:
        """Each value as it may appear in text: plain, in a JSON string, in a repr."""
        forms: list[str] = []
        for value in (self.key_id, self.secret_key):
            if value:
                forms += {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
        return tuple(forms)

    def found_in(self, data: str | bytes | bytearray | memoryview) -> bool:
        """Whether ``data`` holds the key id or the secret."""
        if isinstance(data, str):
            return any(form in data for form in self._forms())
        raw = bytes(data)
        return any(form.encode("utf-8") in raw for form in self._forms())

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key id and the secret replaced by ``***``
        (all of it withheld if replacing cannot get rid of them, as for a secret made of
        asterisks)."""
        forms = sorted(self._forms(), key=len, reverse=True)
        for _ in range(4):
            if not self.found_in(text):
                return text
            for form in forms:
                text = text.replace(form, "***")
        return text if not self.found_in(text) else "<withheld: it held an Alpaca credential>"


_KEYS = ("pass key_id=/secret_key= or set APCA_API_KEY_ID / APCA_API_SECRET_KEY")

#: code -> (class, Alpaca's text, what to do)
ALPACA_ERRORS: dict[int, tuple[type[AlpacaError], str, str]] = {
    400: (AlpacaProtocolError, "invalid syntax",
          "the server could not parse a message slob sent; this is a slob bug, please report it with the log"),
    401: (AlpacaProtocolError, "not authenticated",
          "a request was sent before authentication succeeded; call connect() before subscribe()"),
    402: (AuthenticationFailed, "auth failed",
          f"check your APCA key/secret: {_KEYS}. Paper and live accounts have different keys, and "
          "regenerating a key invalidates the old one"),
    403: (AlpacaProtocolError, "already authenticated", "the connection was authenticated twice; harmless"),
    404: (AlpacaConnectError, "auth timeout",
          "authentication must complete within about 10 s of connecting; check the network latency to Alpaca"),
    405: (SymbolLimitExceeded, "symbol limit exceeded",
          "subscribe to fewer symbols (the free IEX plan allows 30 trade/quote symbols per connection), "
          "unsubscribe some, or upgrade the market-data plan"),
    406: (ConnectionLimitExceeded, "connection limit exceeded",
          "another connection with these keys is already open on this feed (most plans allow one): close the "
          "other program (another slob, a notebook, a script), or wait a minute for a dropped connection to "
          "expire"),
    407: (SlowClient, "slow client",
          "slob read the stream too slowly and Alpaca dropped data: make on_tick faster (queue the work) "
          "or subscribe to fewer symbols"),
    408: (AlpacaConnectError, "v2 not enabled",
          "market data v2 is not enabled for this account; contact Alpaca support"),
    409: (InsufficientSubscription, "insufficient subscription",
          "your market-data subscription plan does not include this feed: use feed='iex' (free) or upgrade to "
          "a plan with SIP data"),
    410: (AlpacaProtocolError, "invalid subscribe action",
          "the subscription names a channel this feed does not offer; slob subscribes trades only, so this is "
          "a slob bug"),
    500: (AlpacaServerError, "internal error",
          "Alpaca had an internal error; slob reconnects if the connection drops; retry later if it persists"),
}


def hint_for(code: int) -> str:
    known = ALPACA_ERRORS.get(code)
    return known[2] if known else "unknown Alpaca error code; see Alpaca's market-data stream documentation"


def error_for(code: object, text: object = "", context: str = "") -> AlpacaError:
    """The exception for an ``{"T":"error"}`` message."""
    number = code if isinstance(code, int) and not isinstance(code, bool) else -1
    known = ALPACA_ERRORS.get(number)
    cls = known[0] if known else AlpacaServerError
    message = text if isinstance(text, str) and text else (known[1] if known else "unknown error")
    return cls(number, message, context)


def parse_frame(frame: str | bytes) -> list[dict[str, Any]]:
    """The messages in one frame (a JSON array of objects; a lone object is accepted)."""
    if isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("binary frame that is not UTF-8 text", frame) from None
    try:
        data = json.loads(frame)
    except ValueError as exc:
        raise MalformedMessage(f"not JSON: {exc}", frame) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        raise MalformedMessage("not an array of objects", frame)
    return data


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z")


def parse_time(text: str) -> dt.datetime:
    """RFC-3339 -> tz-aware UTC datetime; digits beyond microseconds are truncated."""
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"not an RFC-3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    t = dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=_UTC)
    if m.group(9):
        offset = dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        t = t - offset if m.group(9) == "+" else t + offset
    return t


def tick_from_trade(msg: dict[str, Any], received_ns: int) -> Tick:
    """A ``T:"t"`` message as a Tick; MalformedMessage if a field is missing or wrong."""
    symbol, price, size, stamp = msg.get("S"), msg.get("p"), msg.get("s"), msg.get("t")
    exchange = msg.get("x", "")
    if not isinstance(symbol, str) or not symbol:
        raise MalformedMessage("trade without a symbol S", msg)
    if not _number(price) or not math.isfinite(price) or price <= 0:
        raise MalformedMessage(f"trade price p={price!r} is not a positive number", msg)
    if not _number(size) or not math.isfinite(size) or size < 0:
        raise MalformedMessage(f"trade size s={size!r} is not a number >= 0", msg)
    if not isinstance(exchange, str):
        raise MalformedMessage(f"trade exchange x={exchange!r} is not a string", msg)
    if not isinstance(stamp, str):
        raise MalformedMessage("trade without a time t", msg)
    try:
        when = parse_time(stamp)
    except ValueError as exc:
        raise MalformedMessage(str(exc), msg) from None
    return Tick(symbol=symbol, price=float(price), size=float(size), timestamp=when, exchange=exchange,
                contract=symbol, received_ns=received_ns)


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
