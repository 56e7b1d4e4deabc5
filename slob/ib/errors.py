"""IB's error codes and slob's exceptions.

The exception tree (every error slob raises on purpose derives from :class:`SlobError`)::

    SlobError
    ├── ConfigError              a setting is invalid (raised when the config is built)
    ├── ConnectError             could not get a working API session
    │   ├── TWSNotRunning        connection refused / timed out at host:port
    │   ├── ClientIdInUse        326: another session uses this client id
    │   └── HandshakeFailed      the peer is not a TWS, or speaks no common version
    ├── ConnectionLost           the session died and reconnecting gave up (or not connected)
    │   └── PeerNotTWS           repeated unreadable data: the peer is not a TWS
    ├── RequestTimedOut          TWS did not answer a request in time
    ├── RequestFailed            TWS answered a request with an error (code, req_id)
    │   ├── ContractNotFound     200: no such contract
    │   └── MarketDataNotSubscribed   354/10089/10168/10186/10189: no data permission
    └── LiveTradingRefused       a live port or account without explicit opt-in

Each message says what happened and what to do. :data:`IB_ERRORS` classifies every code
slob knows (../shared/TWS-FACTS.md §5) for logging and for the reconnect logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Action",
    "ClientIdInUse",
    "ConfigError",
    "ConnectError",
    "ConnectionLost",
    "ContractNotFound",
    "HandshakeFailed",
    "IB_ERRORS",
    "IbError",
    "LiveTradingRefused",
    "MarketDataNotSubscribed",
    "PeerNotTWS",
    "RequestFailed",
    "RequestTimedOut",
    "Severity",
    "SlobError",
    "TWSNotRunning",
    "classify",
]


class Severity(Enum):
    INFO = "info"  # farm status and similar notices: log, do nothing
    WARNING = "warning"  # something degraded but the request or session goes on
    ERROR = "error"  # the request failed
    FATAL = "fatal"  # the session is gone or unusable


class Action(Enum):
    NONE = "none"
    FAIL_REQUEST = "fail_request"
    MARK_STALE = "mark_stale"  # 1100: data stops; keep the socket
    RESUBSCRIBE = "resubscribe"  # 1101: subscriptions lost; request them again
    KEEP = "keep"  # 1102: subscriptions maintained
    RECONNECT = "reconnect"  # the socket is gone or going
    BACK_OFF = "back_off"  # 326 / pacing: wait, then retry
    FALL_BACK_DELAYED = "fall_back_delayed"  # 10167: delayed data is coming


@dataclass(frozen=True, slots=True)
class IbError:
    code: int
    category: str
    severity: Severity
    action: Action
    hint: str


def _e(code: int, category: str, severity: Severity, action: Action, hint: str) -> IbError:
    return IbError(code, category, severity, action, hint)


_I, _W, _E, _F = Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.FATAL
_A = Action

IB_ERRORS: dict[int, IbError] = {e.code: e for e in (
    _e(100, "pacing", _W, _A.BACK_OFF, "more than 50 messages/s were sent; TWS may drop the session after 3"),
    _e(101, "market data", _E, _A.FAIL_REQUEST, "too many market-data lines in use; cancel some or buy a booster"),
    _e(102, "request", _E, _A.FAIL_REQUEST, "duplicate ticker id; use a fresh request id"),
    _e(103, "order", _E, _A.FAIL_REQUEST, "duplicate order id; take ids from nextValidId"),
    _e(110, "order", _W, _A.FAIL_REQUEST, "price is not on the contract's minimum tick"),
    _e(161, "order", _W, _A.NONE, "the order cannot be cancelled in its state"),
    _e(162, "historical data", _E, _A.FAIL_REQUEST, "historical data service error; see the text"),
    _e(165, "historical data", _I, _A.NONE, "historical data service notice; informational"),
    _e(200, "contract", _E, _A.FAIL_REQUEST, "check the symbol, security type, exchange and month"),
    _e(201, "order", _E, _A.FAIL_REQUEST, "order rejected; the text gives IB's reason"),
    _e(202, "order", _W, _A.NONE, "order cancelled"),
    _e(300, "market data", _W, _A.NONE, "cancel of an unknown market-data id"),
    _e(320, "request", _E, _A.FAIL_REQUEST, "TWS could not read the request (client/server version mismatch?)"),
    _e(321, "request", _E, _A.FAIL_REQUEST, "TWS rejected the request's fields; see the text"),
    _e(322, "request", _E, _A.FAIL_REQUEST, "TWS failed processing the request; see the text"),
    _e(326, "connection", _F, _A.BACK_OFF, "another session uses this client id; pick a unique client id"),
    _e(354, "market data", _E, _A.FAIL_REQUEST,
       "no market-data subscription: subscribe to CME data in Account Management, or use data_type='delayed'"),
    _e(366, "historical data", _W, _A.NONE, "no historical query for that id"),
    _e(502, "connection", _F, _A.RECONNECT, "could not connect: is TWS/Gateway running with the API enabled?"),
    _e(504, "connection", _F, _A.RECONNECT, "not connected"),
    _e(507, "connection", _F, _A.RECONNECT, "bad message length / socket EOF: the session ended"),
    _e(1100, "connectivity", _W, _A.MARK_STALE, "TWS lost its link to IB's servers; data stops until 1101/1102"),
    _e(1101, "connectivity", _W, _A.RESUBSCRIBE, "link restored, data lost: subscriptions must be requested again"),
    _e(1102, "connectivity", _I, _A.KEEP, "link restored, data maintained"),
    _e(1300, "connection", _F, _A.RECONNECT, "TWS changed its socket port; reconnect on the port in the text"),
    _e(2103, "farm", _W, _A.NONE, "a market-data farm is disconnected; TWS reconnects by itself"),
    _e(2104, "farm", _I, _A.NONE, "market-data farm connected"),
    _e(2105, "farm", _W, _A.NONE, "a historical-data farm is disconnected"),
    _e(2106, "farm", _I, _A.NONE, "historical-data farm connected"),
    _e(2107, "farm", _I, _A.NONE, "historical-data farm idle, available on demand"),
    _e(2108, "farm", _I, _A.NONE, "market-data farm idle, available on demand"),
    _e(2110, "connectivity", _W, _A.NONE, "TWS-server link broken; restored automatically"),
    _e(2119, "farm", _I, _A.NONE, "market-data farm connecting"),
    _e(2157, "farm", _W, _A.NONE, "a security-definition farm is disconnected"),
    _e(2158, "farm", _I, _A.NONE, "security-definition farm connected"),
    _e(10089, "market data", _E, _A.FAIL_REQUEST, "the API needs an additional market-data subscription"),
    _e(10090, "market data", _W, _A.NONE, "part of the requested data is not subscribed"),
    _e(10167, "market data", _W, _A.FALL_BACK_DELAYED, "not subscribed: delayed data is shown instead"),
    _e(10168, "market data", _E, _A.FAIL_REQUEST, "not subscribed and delayed data is not enabled"),
    _e(10182, "market data", _W, _A.RESUBSCRIBE, "a subscription was dropped by a farm; request it again"),
    _e(10186, "market data", _E, _A.FAIL_REQUEST, "not subscribed and delayed data is not enabled"),
    _e(10189, "market data", _E, _A.FAIL_REQUEST,
       "tick-by-tick data needs a live subscription (no delayed tick-by-tick); use tick_source='market_data'"),
    _e(10190, "market data", _E, _A.FAIL_REQUEST, "too many tick-by-tick subscriptions (usually 5); cancel one"),
    _e(10197, "market data", _W, _A.NONE, "the same user is logged in elsewhere; market data is paused"),
)}

_NOT_SUBSCRIBED = {354, 10089, 10168, 10186, 10189}


def classify(code: int) -> IbError:
    """The table entry for ``code``; unknown codes are errors, and 2100-2199 are notices."""
    known = IB_ERRORS.get(code)
    if known is not None:
        return known
    if 2100 <= code < 2200:
        return IbError(code, "notice", Severity.INFO, Action.NONE, "informational notice")
    return IbError(code, "unknown", Severity.ERROR, Action.FAIL_REQUEST, "see IB's message codes")


class SlobError(Exception):
    """Root of every error slob raises on purpose."""


class ConfigError(SlobError, ValueError):
    """A configuration value is invalid; the message names the setting and the fix."""


class ConnectError(SlobError):
    """No working API session could be established."""


class TWSNotRunning(ConnectError):
    def __init__(self, host: str, port: int, detail: str = "") -> None:
        self.host, self.port = host, port
        super().__init__(
            f"TWS/IB Gateway is not accepting API connections at {host}:{port}"
            + (f" ({detail})" if detail else "")
            + ". Start TWS or IB Gateway, enable Configure > API > Settings > 'Enable ActiveX and "
            "Socket Clients' on that port (7497 TWS paper, 4002 Gateway paper), and allow 127.0.0.1."
        )


class ClientIdInUse(ConnectError):
    def __init__(self, client_id: int, attempts: int = 1) -> None:
        self.client_id = client_id
        super().__init__(
            f"client id {client_id} is already in use by another API session (IB error 326"
            + (f", {attempts} attempts" if attempts > 1 else "")
            + "). Use a unique client id (IBConfig.client_id / --client-id), or close the other "
            "session; after a crash TWS can hold the id for up to a minute."
        )


class HandshakeFailed(ConnectError):
    """The peer did not answer like a TWS (wrong port, old TWS, or not TWS at all)."""


class ConnectionLost(SlobError):
    """The API session ended and could not be re-established."""


class PeerNotTWS(ConnectionLost):
    """Session after session ended in bytes that are not the TWS API: the circuit breaker
    tripped rather than reconnect forever to something that is not a TWS."""


class RequestTimedOut(SlobError):
    """TWS did not answer a request within the configured time."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what, self.seconds = what, seconds
        super().__init__(
            f"TWS did not answer {what} within {seconds:g} s. TWS may be overloaded or pacing requests; "
            "slob retries on the next session. Raise request_timeout_seconds if this repeats on a slow link."
        )


class RequestFailed(SlobError):
    """TWS answered a request with an error."""

    def __init__(self, code: int, req_id: int, text: str, message: str | None = None) -> None:
        self.code, self.req_id, self.text = code, req_id, text
        hint = classify(code).hint
        super().__init__(message or f"IB error {code} for request {req_id}: {text} -- {hint}")


class ContractNotFound(RequestFailed):
    def __init__(self, code: int, req_id: int, text: str, what: str = "") -> None:
        super().__init__(
            code, req_id, text,
            f"no contract found for {what or 'the request'} (IB error {code}: {text}). Check the symbol "
            "and month: 'NQ' (front month), 'NQZ4', 'NQZ24', 'NQZ2024' or 'NQ 202412'; futures trade on CME.",
        )


class MarketDataNotSubscribed(RequestFailed):
    def __init__(self, code: int, req_id: int, text: str, what: str = "") -> None:
        super().__init__(
            code, req_id, text,
            f"no market-data permission for {what or 'the request'} (IB error {code}: {text}). "
            "Subscribe to CME real-time data in IB Account Management (and enable API access to it), "
            "or set data_type='delayed' for 15-minute delayed data"
            + (" with tick_source='market_data' (tick-by-tick has no delayed form)" if code == 10189 else "")
            + ".",
        )


class LiveTradingRefused(SlobError):
    """A live port or account was given without the explicit live-trading opt-in."""
