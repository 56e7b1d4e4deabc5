"""Futures symbols as users write them (``slob.live.symbols``), and picking the contract
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
from slob.live.symbols import FORMS, SymbolSpec, expiry_moment, parse_symbol, pick_contract

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


# ---------------------------------------------------------------------------
# pick_contract


def test_front_month_is_the_earliest_unexpired_whatever_the_order() -> None:
    rows = quarterlies("NQ", 2024, 2025)
    random.Random(7).shuffle(rows)
    spec = parse_symbol("NQ")
    assert pick_contract(spec, rows, at("2024-01-10T00:00:00")).contract.localSymbol == "NQH4"
    # NQH4 stops trading at 08:30 Chicago time on 2024-03-15, daylight time by then (UTC-5).
    assert pick_contract(spec, rows, at("2024-03-15T13:29:59")).contract.localSymbol == "NQH4"
    # At the expiry moment itself the contract is over.
    assert pick_contract(spec, rows, at("2024-03-15T13:30:00")).contract.localSymbol == "NQM4"
    assert pick_contract(spec, rows, at("2024-12-21T00:00:00")).contract.localSymbol == "NQH5"


def test_rows_repeated_per_exchange_collapse_to_the_cme_one() -> None:
    rows = []
    for y, m in ((2025, 3), (2025, 6), (2025, 9)):
        rows.append(details("NQ", y, m, exchange="QBALGO"))
        rows.append(details("NQ", y, m, exchange="CME"))
    random.Random(3).shuffle(rows)
    now = at("2025-01-02T00:00:00")
    front = pick_contract(parse_symbol("NQ"), rows, now)
    assert (front.contract.localSymbol, front.contract.exchange) == ("NQH5", "CME")
    pinned = pick_contract(parse_symbol("NQM25"), rows, now)
    assert (pinned.contract.localSymbol, pinned.contract.exchange) == ("NQM5", "CME")
    # Each contract is listed once when a pinned month is missing.
    with pytest.raises(ConfigError) as info:
        pick_contract(parse_symbol("NQZ25"), rows, now)
    assert str(info.value).endswith("TWS lists NQH5, NQM5, NQU5")


def test_other_roots_in_the_rows_are_ignored() -> None:
    rows = quarterlies("ES", 2025, 2025) + [details("NQ", 2025, 12)] + quarterlies("MNQ", 2025, 2025)
    front = pick_contract(parse_symbol("NQ"), rows, at("2025-01-02T00:00:00"))
    assert front.contract.localSymbol == "NQZ5" and front.contract.symbol == "NQ"


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("NQZ4", "2024-12-01T00:00:00", "202412"),
        ("NQZ4", "2024-12-20T15:00:00", "203412"),  # Z2024 expired: the next Z...4
        ("NQZ24", "2024-12-01T00:00:00", "202412"),
        ("NQZ34", "2024-12-01T00:00:00", "203412"),
        ("NQZ2034", "2024-12-01T00:00:00", "203412"),
        ("NQ 202412", "2024-12-01T00:00:00", "202412"),
        ("NQ203412", "2024-12-01T00:00:00", "203412"),
        ("NQH5", "2024-12-01T00:00:00", "202503"),
        ("nqh2025", "2024-12-01T00:00:00", "202503"),
    ],
)
def test_pinned_months_and_years(text: str, now: str, expected: str) -> None:
    # Z2034 has no contractMonth: the month comes from lastTradeDateOrContractMonth.
    rows = [details("NQ", 2034, 12, contract_month=False), details("NQ", 2025, 3), details("NQ", 2024, 12)]
    picked = pick_contract(parse_symbol(text), rows, at(now))
    assert picked.contract.lastTradeDateOrContractMonth[:6] == expected


@pytest.mark.parametrize("text", ["NQZ4", "NQZ24", "NQZ2024", "NQ 202412", "NQM5"])
def test_a_pinned_month_that_has_expired_or_is_not_listed_is_a_config_error(text: str) -> None:
    rows = [details("NQ", 2024, 12), details("NQ", 2025, 3)]
    with pytest.raises(ConfigError, match="no such unexpired contract; TWS lists NQH5"):
        pick_contract(parse_symbol(text), rows, at("2024-12-21T00:00:00"))


def test_no_unexpired_contract_is_a_config_error() -> None:
    rows = quarterlies("NQ", 2024, 2024)
    with pytest.raises(ConfigError, match="no unexpired NQ contract in the 4 contract details"):
        pick_contract(parse_symbol("NQ"), rows, at("2025-01-01T00:00:00"))
    with pytest.raises(ConfigError, match="no unexpired NQ contract in the 0"):
        pick_contract(parse_symbol("NQ"), [], at("2025-01-01T00:00:00"))


@st.composite
def contract_lists(draw: st.DrawFn) -> tuple[dt.datetime, list[ContractDetails]]:
    now = draw(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31, 23, 59, 59),
                            timezones=st.just(UTC)))
    first = draw(st.integers(min_value=max(2000, now.year - 2), max_value=min(2099, now.year + 1)))
    count = draw(st.integers(min_value=1, max_value=10))
    months = [(first + i // 4, (3, 6, 9, 12)[i % 4]) for i in range(count)]
    months = [ym for ym in months if ym[0] <= 2099]
    keep = draw(st.lists(st.sampled_from(months), min_size=1, unique=True))
    rows = []
    for y, m in keep:
        zone = draw(st.sampled_from(["US/Central", "CST (Central Standard Time)"]))
        rows.append(details("NQ", y, m, zone=zone))
        if draw(st.booleans()):
            rows.append(details("NQ", y, m, exchange="QBALGO", zone=zone))
    return now, draw(st.permutations(rows))


@PROPERTY
@given(contract_lists())
def test_the_rolling_pick_is_the_earliest_contract_not_yet_expired(case: tuple[dt.datetime, list[ContractDetails]]) -> None:
    now, rows = case
    unexpired = [expiry_moment(r) for r in rows if expiry_moment(r) > now]
    if not unexpired:
        with pytest.raises(ConfigError):
            pick_contract(parse_symbol("NQ"), rows, now)
        return
    picked = pick_contract(parse_symbol("NQ"), rows, now)
    assert picked in rows
    assert expiry_moment(picked) > now
    assert expiry_moment(picked) == min(unexpired)
    assert picked.contract.exchange == "CME"
