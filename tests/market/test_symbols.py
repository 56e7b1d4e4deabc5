"""Futures symbols as users write them (``slob.market.symbols``), and picking the contract
they mean from IB's contract details, which arrive unsorted and, for a blank-exchange
request, once per exchange."""

from __future__ import annotations

import calendar
import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibapi.contract import ContractDetails

from slob.ib.errors import ConfigError
from slob.market.symbols import FORMS, SymbolSpec, expiry_moment, parse_symbol

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)
UTC = dt.timezone.utc
CODES = "FGHJKMNQUVXZ"


# ---------------------------------------------------------------------------
# parse_symbol


@pytest.mark.parametrize(
    ("text", "root", "month", "year", "digits"),
    [
        ("NQ", "NQ", None, None, 0),
        ("NQZ4", "NQ", 12, 4, 1),
        ("NQZ24", "NQ", 12, 24, 2),
        ("NQZ2024", "NQ", 12, 2024, 4),
        ("NQ 202412", "NQ", 12, 2024, 4),
        ("NQ202412", "NQ", 12, 2024, 4),
        ("MNQH5", "MNQ", 3, 5, 1),
        ("ESM25", "ES", 6, 25, 2),
        ("ESU2025", "ES", 9, 2025, 4),
        ("nq", "NQ", None, None, 0),
        ("nqz4", "NQ", 12, 4, 1),
        ("  NQZ24\t", "NQ", 12, 24, 2),
        ("nq   202403", "NQ", 3, 2024, 4),
        ("\nmnqm5 ", "MNQ", 6, 5, 1),
        ("ZNZ4", "ZN", 12, 4, 1),  # a root that ends in a month-code letter
        ("ZN", "ZN", None, None, 0),
        ("GF F5", None, None, None, None),  # no space before the month code
    ],
)
def test_parse_symbol_accepted_forms(
    text: str, root: str | None, month: int | None, year: int | None, digits: int | None,
) -> None:
    if root is None:
        with pytest.raises(ConfigError):
            parse_symbol(text)
        return
    spec = parse_symbol(text)
    assert spec == SymbolSpec(text, root, month, year, digits)
    assert spec.text == text  # as the user wrote it
    assert spec.rolling == (month is None)


@pytest.mark.parametrize(
    "text", ["", " ", "NQZ202", "NQ 202413", "NQ 202400", "12", "NQ-Z4", "NQ Z4", "NQZ20245",
             "NQ 2024", "ABCDEFZ4", "NQ2024121", "N Q", "ÑQZ4"],
)
def test_parse_symbol_rejects_other_forms_naming_the_accepted_ones(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_symbol(text)
    message = str(info.value)
    assert repr(text) in message
    assert FORMS in message
    for form in ("'NQ'", "'NQZ4'", "'NQZ24'", "'NQZ2024'", "'NQ 202412'"):
        assert form in message


@PROPERTY
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4),
       st.sampled_from(CODES), st.sampled_from([1, 2, 4]), st.integers(min_value=0, max_value=9999), st.data())
def test_parse_symbol_reads_any_root_month_code_and_year(
    root: str, code: str, digits: int, year: int, data: st.DataObject,
) -> None:
    year %= 10**digits
    text = f"{root}{code}{year:0{digits}d}"
    text = data.draw(st.sampled_from([text, text.lower(), f"  {text} "]))
    spec = parse_symbol(text)
    assert (spec.root, spec.month, spec.year, spec.year_digits) == (root, CODES.index(code) + 1, year, digits)
    assert not spec.rolling


@PROPERTY
@given(st.text(max_size=12))
def test_parse_symbol_gives_a_spec_or_config_error(text: str) -> None:
    try:
        spec = parse_symbol(text)
    except ConfigError as exc:
        assert FORMS in str(exc)
    else:
        assert spec.root.isalpha() and spec.root.isupper()
        assert spec.month is None or 1 <= spec.month <= 12


# ---------------------------------------------------------------------------
# Contract details built by hand


def third_friday(year: int, month: int) -> dt.date:
    fridays = [d for d in calendar.Calendar().itermonthdates(year, month)
               if d.month == month and d.weekday() == calendar.FRIDAY]
    return fridays[2]


def details(root: str, year: int, month: int, *, exchange: str = "CME", con_id: int | None = None,
            zone: str = "US/Central", last_trade_time: str = "08:30:00", contract_month: bool = True,
            expiry: dt.date | None = None) -> ContractDetails:
    day = expiry or third_friday(year, month)
    d = ContractDetails()
    c = d.contract
    c.symbol = root
    c.secType = "FUT"
    c.localSymbol = f"{root}{CODES[month - 1]}{year % 10}"
    c.lastTradeDateOrContractMonth = f"{day:%Y%m%d}"
    c.conId = con_id if con_id is not None else year * 100 + month
    c.exchange = exchange
    c.tradingClass = root
    d.lastTradeTime = last_trade_time
    d.timeZoneId = zone
    d.contractMonth = f"{year}{month:02d}" if contract_month else ""
    d.realExpirationDate = f"{day:%Y%m%d}"
    d.minTick = 0.25
    return d


def quarterlies(root: str, first_year: int, last_year: int) -> list[ContractDetails]:
    return [details(root, y, m) for y in range(first_year, last_year + 1) for m in (3, 6, 9, 12)]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def local_symbols(rows: list[ContractDetails]) -> list[str]:
    return [r.contract.localSymbol for r in rows]


# ---------------------------------------------------------------------------
# expiry_moment


@pytest.mark.parametrize("zone", ["US/Central", "CST (Central Standard Time)", "America/Chicago", "CST"])
def test_expiry_moment_reads_ibs_zone_names(zone: str) -> None:
    winter = expiry_moment(details("NQ", 2024, 12, zone=zone))
    assert winter.utcoffset() == dt.timedelta(hours=-6)
    assert winter == at("2024-12-20T14:30:00")
    summer = expiry_moment(details("NQ", 2024, 6, zone=zone))  # CDT
    assert summer == at("2024-06-21T13:30:00")


def test_expiry_moment_reads_short_times_and_falls_back_to_the_real_expiration_date() -> None:
    d = details("NQ", 2025, 6, last_trade_time="08:30")
    assert expiry_moment(d) == at("2025-06-20T13:30:00")
    d.contract.lastTradeDateOrContractMonth = "202506"  # a month only
    assert expiry_moment(d) == at("2025-06-20T13:30:00")
    d.lastTradeTime = ""
    assert expiry_moment(d) == at("2025-06-20T05:00:00")  # midnight in Chicago


@pytest.mark.parametrize("zone", ["", "   "])
def test_expiry_moment_without_a_zone_is_a_config_error(zone: str) -> None:
    with pytest.raises(ConfigError, match="NQZ4.*timeZoneId"):
        expiry_moment(details("NQ", 2024, 12, zone=zone))


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Central Time", "America", "US", "../etc", "Z" * 300])
def test_expiry_moment_with_an_unknown_zone_is_a_config_error(zone: str) -> None:
    with pytest.raises(ConfigError, match="unknown timeZoneId"):
        expiry_moment(details("NQ", 2024, 12, zone=zone))


def test_expiry_moment_without_any_date_is_a_config_error() -> None:
    d = details("NQ", 2024, 12)
    d.contract.lastTradeDateOrContractMonth = ""
    d.realExpirationDate = ""
    with pytest.raises(ConfigError, match="no last trade date"):
        expiry_moment(d)
