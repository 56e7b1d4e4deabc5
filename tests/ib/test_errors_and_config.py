"""IB's error codes and slob's exceptions (``slob.ib.errors``), and IBConfig
(``slob.config.ib_config``): classification as ../shared/TWS-FACTS.md §5 documents it,
messages that name the fix, paper-trading defaults, validation that names the setting."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slob.config.ib_config import LIVE_PORTS, PAPER_PORTS, IBConfig
from slob.ib import errors
from slob.ib.errors import (
    IB_ERRORS,
    Action,
    ClientIdInUse,
    ConfigError,
    ConnectError,
    ConnectionLost,
    ContractNotFound,
    HandshakeFailed,
    LiveTradingRefused,
    MarketDataNotSubscribed,
    RequestFailed,
    Severity,
    SlobError,
    TWSNotRunning,
    classify,
)
from slob.market.symbols import FORMS

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)
I, W, E, F = Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.FATAL
A = Action

# ---------------------------------------------------------------------------
# Classification: every code TWS-FACTS §5 lists, with what it says about it.
#   (code, allowed severities, action)

FACTS = [
    # System / connectivity (id -1)
    (1100, {W, E}, A.MARK_STALE),       # TWS<->IB lost; the API socket stays open
    (1101, {W, I}, A.RESUBSCRIBE),      # restored, data lost: re-request subscriptions
    (1102, {I}, A.KEEP),                # restored, data maintained
    (1300, {F}, A.RECONNECT),           # socket port reset: the connection is dropped
    # Farm notices: all 2100-2199 are warnings/info, never a teardown
    (2103, {W, I}, A.NONE), (2104, {I}, A.NONE), (2105, {W, I}, A.NONE), (2106, {I}, A.NONE),
    (2107, {I}, A.NONE), (2108, {I}, A.NONE), (2110, {W, I}, A.NONE), (2119, {I}, A.NONE),
    (2157, {W, I}, A.NONE), (2158, {I}, A.NONE),
    # Request / order errors
    (100, {W, E}, A.BACK_OFF),          # pacing
    (101, {E}, A.FAIL_REQUEST),         # max tickers
    (102, {E}, A.FAIL_REQUEST),         # duplicate ticker id
    (103, {E}, A.FAIL_REQUEST),         # duplicate order id
    (110, {W}, A.FAIL_REQUEST),         # price not on min tick ("warning-like")
    (161, {W, I}, A.NONE),              # cancel of a non-cancellable order
    (162, {E}, A.FAIL_REQUEST),         # historical data service error
    (165, {I}, A.NONE),                 # historical data service query message: informational
    (200, {E}, A.FAIL_REQUEST),         # no security definition
    (201, {E}, A.FAIL_REQUEST),         # order rejected
    (202, {W, I}, A.NONE),              # order cancelled
    (300, {W, I}, A.NONE),              # cancel of an unknown market-data id
    (321, {E}, A.FAIL_REQUEST),         # error validating request
    (322, {E}, A.FAIL_REQUEST),         # error processing request
    (326, {F}, A.BACK_OFF),             # client id in use; TWS closes the socket
    (354, {E}, A.FAIL_REQUEST),         # market data not subscribed
    (366, {W, I}, A.NONE),              # no historical query for that id
    (502, {F}, A.RECONNECT), (504, {F}, A.RECONNECT), (507, {F}, A.RECONNECT),  # client side
    (10089, {E}, A.FAIL_REQUEST),       # needs an additional subscription
    (10090, {W}, A.NONE),               # part not subscribed; stream continues
    (10167, {W}, A.FALL_BACK_DELAYED),  # delayed data shown instead
    (10168, {E}, A.FAIL_REQUEST),       # terminal for that request
    (10182, {W}, A.RESUBSCRIBE),        # a farm dropped the subscription; socket up
    (10186, {E}, A.FAIL_REQUEST),       # not subscribed, delayed not enabled
    (10197, {W, I}, A.NONE),            # competing live session: paused
]


@pytest.mark.parametrize(("code", "severities", "action"), FACTS, ids=[str(c) for c, _, _ in FACTS])
def test_documented_codes_classify_as_tws_facts_says(code: int, severities: set[Severity], action: Action) -> None:
    info = classify(code)
    assert info.code == code
    assert info.severity in severities
    assert info.action is action
    assert info.hint and info.category
    assert code in IB_ERRORS  # a known code, not the "unknown" fallback
    assert info is IB_ERRORS[code]


def test_the_table_is_keyed_by_its_own_codes() -> None:
    assert all(code == entry.code for code, entry in IB_ERRORS.items())


def test_only_session_ending_codes_are_fatal() -> None:
    fatal = {code for code, e in IB_ERRORS.items() if e.severity is F}
    assert fatal == {326, 502, 504, 507, 1300}


@PROPERTY
@given(st.integers(min_value=2100, max_value=2199).filter(lambda c: c not in IB_ERRORS))
def test_unknown_notices_2100_to_2199_are_info(code: int) -> None:
    info = classify(code)
    assert (info.code, info.severity, info.action, info.category) == (code, I, A.NONE, "notice")


@PROPERTY
@given(st.integers(min_value=-(2**31), max_value=2**31).filter(lambda c: c not in IB_ERRORS and not 2100 <= c < 2200))
def test_other_unknown_codes_fail_the_request(code: int) -> None:
    info = classify(code)
    assert (info.code, info.severity, info.action, info.category) == (code, E, A.FAIL_REQUEST, "unknown")


@pytest.mark.parametrize("code", [2099, 2200])
def test_the_notice_range_is_2100_to_2199(code: int) -> None:
    assert classify(code).severity is E


# ---------------------------------------------------------------------------
# The exception tree and its messages


def test_the_exception_tree_is_the_documented_one() -> None:
    assert issubclass(ConfigError, SlobError) and issubclass(ConfigError, ValueError)
    for cls in (TWSNotRunning, ClientIdInUse, HandshakeFailed):
        assert issubclass(cls, ConnectError)
    assert issubclass(ConnectError, SlobError)
    for cls in (ContractNotFound, MarketDataNotSubscribed):
        assert issubclass(cls, RequestFailed)
    for cls in (ConnectionLost, RequestFailed, LiveTradingRefused):
        assert issubclass(cls, SlobError)
    # Every SlobError subclass the module defines appears in its docstring's tree.
    defined = {name for name, obj in vars(errors).items()
               if inspect.isclass(obj) and issubclass(obj, SlobError)}
    assert errors.__doc__ is not None
    documented = set(re.findall(r"[├└]── (\w+)", errors.__doc__)) | {"SlobError"}
    assert defined == documented
    assert defined <= set(errors.__all__)


def test_tws_not_running_names_host_port_and_the_api_setting() -> None:
    exc = TWSNotRunning("127.0.0.1", 7497, "Connection refused")
    text = str(exc)
    assert "127.0.0.1:7497" in text
    assert "(Connection refused)" in text
    assert "Enable ActiveX and Socket Clients" in text
    assert "7497" in text and "4002" in text
    assert (exc.host, exc.port) == ("127.0.0.1", 7497)
    assert "()" not in str(TWSNotRunning("10.0.0.5", 4002))


def test_client_id_in_use_says_use_a_unique_client_id() -> None:
    exc = ClientIdInUse(7)
    text = str(exc)
    assert "client id 7" in text and "326" in text
    assert "unique client id" in text.lower()
    assert "attempts" not in text
    assert "3 attempts" in str(ClientIdInUse(7, attempts=3))
    assert exc.client_id == 7


def test_contract_not_found_lists_the_symbol_forms() -> None:
    exc = ContractNotFound(200, 12, "No security definition has been found for the request", "NQZ9")
    text = str(exc)
    assert "NQZ9" in text and "200" in text and "No security definition" in text
    assert FORMS.replace(" or ", ", ") in text.replace(" or ", ", ")
    for form in ("'NQ'", "'NQZ4'", "'NQZ24'", "'NQZ2024'", "'NQ 202412'"):
        assert form in text
    assert (exc.code, exc.req_id) == (200, 12)
    assert isinstance(exc, RequestFailed)


@pytest.mark.parametrize("code", [354, 10089, 10168, 10186, 10189])
def test_market_data_not_subscribed_offers_delayed_data(code: int) -> None:
    exc = MarketDataNotSubscribed(code, 3, "Requested market data is not subscribed.", "NQ (NQZ4)")
    text = str(exc)
    assert "data_type='delayed'" in text
    assert "NQ (NQZ4)" in text and str(code) in text
    assert "Account Management" in text
    assert ("tick_source='market_data'" in text) == (code == 10189)


@pytest.mark.parametrize("code", [code for code, _, _ in FACTS])
def test_request_failed_carries_the_code_text_and_the_tables_hint(code: int) -> None:
    exc = RequestFailed(code, 9, "the text TWS sent")
    text = str(exc)
    assert f"IB error {code} for request 9" in text
    assert "the text TWS sent" in text
    assert classify(code).hint in text


def test_every_documented_hint_points_somewhere() -> None:
    for code, entry in IB_ERRORS.items():
        assert len(entry.hint) >= 10, code


# ---------------------------------------------------------------------------
# IBConfig: safe defaults


def test_defaults_are_paper_trading_on_tws_paper() -> None:
    cfg = IBConfig()
    assert cfg.host == "127.0.0.1" and cfg.port == 7497 and cfg.port in PAPER_PORTS
    assert cfg.paper_trading is True and cfg.allow_live is False
    assert cfg.client_id == 1 and cfg.account == ""
    assert cfg.data_type == "realtime" and cfg.tick_source == "tick_by_tick"
    assert cfg.max_reconnect_attempts == 10 and cfg.reconnect_delay_seconds == 5
    assert cfg.roll_days_before_expiry == 8
    assert 1 <= cfg.max_messages_per_second <= 50
    assert cfg.is_loopback


def test_config_is_frozen_and_keyword_only() -> None:
    cfg = IBConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 4002  # type: ignore[misc]
    with pytest.raises(TypeError):
        IBConfig("127.0.0.1", 7497)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"port": 0}, "port"),
        ({"port": -1}, "port"),
        ({"port": 65536}, "port"),
        ({"client_id": -1}, "client_id"),
        ({"data_type": "x"}, "data_type"),
        ({"data_type": "Delayed"}, "data_type"),
        ({"tick_source": "x"}, "tick_source"),
        ({"data_type": "delayed"}, "tick_source"),  # delayed needs market_data
        ({"host": ""}, "host"),
        ({"max_reconnect_attempts": -1}, "max_reconnect_attempts"),
        ({"reconnect_delay_seconds": -1.0}, "reconnect_delay_seconds"),
        ({"reconnect_delay_seconds": 10.0, "max_reconnect_delay_seconds": 5.0}, "max_reconnect_delay_seconds"),
        ({"roll_days_before_expiry": -1}, "roll_days_before_expiry"),
        ({"roll_days_before_expiry": 61}, "roll_days_before_expiry"),
        ({"connect_timeout_seconds": 0.0}, "connect_timeout_seconds"),
        ({"request_timeout_seconds": -2.0}, "request_timeout_seconds"),
        ({"max_messages_per_second": 0}, "max_messages_per_second"),
        ({"max_messages_per_second": 51}, "max_messages_per_second"),
        ({"bridge_high_water": 0}, "bridge_high_water"),
        ({"account": "DU 1234567"}, "account"),
        ({"account": "DU1234567;"}, "account"),
    ],
)
def test_bad_values_raise_config_error_naming_the_setting(changes: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        IBConfig(**changes)  # type: ignore[arg-type]
    assert setting in str(info.value)
    # replace() validates the same way.
    with pytest.raises(ConfigError):
        IBConfig().replace(**changes)


def test_delayed_data_with_market_data_is_accepted() -> None:
    cfg = IBConfig(data_type="delayed", tick_source="market_data")
    assert cfg.data_type == "delayed"
    with pytest.raises(ConfigError, match="data_type='delayed' needs tick_source='market_data'"):
        cfg.replace(tick_source="tick_by_tick")


@pytest.mark.parametrize("port", [7497, 4002, 7500, 1])
@pytest.mark.parametrize("account", ["", "DU1234567", "DF123", "du42"])
def test_paper_ports_and_accounts_need_no_opt_in(port: int, account: str) -> None:
    cfg = IBConfig(port=port, account=account)
    assert (cfg.port, cfg.account) == (port, account)


LIVE_CASES = [
    ({"port": 7496}, "port 7496"),
    ({"port": 4001}, "port 4001"),
    ({"account": "U1234567"}, "account U1234567"),
    ({"account": "F1234567"}, "account F1234567"),
    ({"paper_trading": False}, "paper_trading=False"),
]


@pytest.mark.parametrize(
    ("changes", "what", "flags"),
    [(changes, what, flags)
     for changes, what in LIVE_CASES
     for flags in ({}, {"allow_live": True}, {"paper_trading": False})
     if not (flags.get("allow_live") and changes.get("paper_trading") is False)],  # both switches: below
)
def test_live_trading_is_refused_without_both_switches(
    changes: dict[str, object], what: str, flags: dict[str, bool],
) -> None:
    settings_ = {**changes, **flags}
    with pytest.raises(LiveTradingRefused) as info:
        IBConfig(**settings_)  # type: ignore[arg-type]
    text = str(info.value)
    assert what in text
    assert "paper_trading=False" in text and "allow_live=True" in text and "--live" in text


@pytest.mark.parametrize(("changes", "what"), LIVE_CASES)
def test_live_trading_is_allowed_with_both_switches(changes: dict[str, object], what: str) -> None:
    cfg = IBConfig(**{**changes, "paper_trading": False, "allow_live": True})  # type: ignore[arg-type]
    assert cfg.allow_live and not cfg.paper_trading


@PROPERTY
@given(
    st.one_of(st.sampled_from(PAPER_PORTS + LIVE_PORTS), st.integers(min_value=1, max_value=65535)),
    st.one_of(st.just(""), st.from_regex(r"[DUF][A-Z]?[0-9]{1,8}", fullmatch=True)),
    st.booleans(), st.booleans(),
)
def test_live_refusal_rule(port: int, account: str, paper_trading: bool, allow_live: bool) -> None:
    live = port in LIVE_PORTS or (account != "" and not account.startswith("D")) or not paper_trading
    opted_in = allow_live and not paper_trading
    if live and not opted_in:
        with pytest.raises(LiveTradingRefused):
            IBConfig(port=port, account=account, paper_trading=paper_trading, allow_live=allow_live)
    else:
        IBConfig(port=port, account=account, paper_trading=paper_trading, allow_live=allow_live)


@pytest.mark.parametrize("account", ["DU1234567", "U7654321", "DF12345"])
def test_repr_masks_the_account(account: str) -> None:
    cfg = IBConfig(account=account, paper_trading=False, allow_live=True)
    for text in (repr(cfg), str(cfg)):
        assert account not in text
        assert account[:-3] not in text
        assert "***" + account[-3:] in text
        assert "port=7497" in text and "client_id=1" in text
    assert "account=''" in repr(IBConfig())
