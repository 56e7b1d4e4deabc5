"""Rolling by hand: the expiry book's properties and the ContractManager on real data."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ibapi.contract import Contract, ContractDetails
from ibapi.decoder import Decoder
from ibapi.wrapper import EWrapper

from slob.ib.errors import ConfigError
from slob.market.expiry_book import CHICAGO, ExpiryBook, ListedContract, parse_sessions, roll_moment
from slob.live.ib_contract_manager import ContractManager, listed_contract
from slob.testing.futures import FUTURES, FutureContract, active_contracts, third_friday, trading_hours

UTC = dt.timezone.utc
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"
moments = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 6, 30), timezones=st.just(UTC))
offsets = st.integers(0, 20)


def listed(fc: FutureContract, offset: int) -> ListedContract:
    return ListedContract(fc.spec.root, fc.local_symbol, fc.con_id, fc.last_trade_moment,
                          roll_moment(fc.last_trade_moment, offset), fc.contract_month)


def book_around(t: dt.datetime, offset: int, root: str = "NQ") -> ExpiryBook:
    return ExpiryBook(root, (listed(fc, offset) for fc in active_contracts(root, t, include_expired=2)))


def details_of(fc: FutureContract, now: dt.datetime, exchange: str = "CME") -> ContractDetails:
    d = ContractDetails()
    c: Contract = d.contract
    c.symbol, c.secType, c.exchange, c.currency = fc.spec.root, "FUT", exchange, "USD"
    c.localSymbol, c.conId, c.tradingClass, c.multiplier = fc.local_symbol, fc.con_id, fc.spec.root, fc.spec.multiplier
    c.lastTradeDateOrContractMonth = f"{fc.last_trade_date:%Y%m%d}"
    d.lastTradeTime, d.timeZoneId, d.contractMonth = "08:30:00", "US/Central", fc.contract_month
    d.realExpirationDate, d.minTick = c.lastTradeDateOrContractMonth, 0.25
    d.tradingHours = trading_hours(now)
    return d


@settings(max_examples=200, deadline=None)
@given(moments, offsets)
def test_front_month_is_unique_rolls_after_t_and_its_predecessor_did_not(t: dt.datetime, offset: int) -> None:
    book = book_around(t, offset)
    front = book.front_at(t)
    assert front.roll > t
    prev = book.previous_before(front)
    assert prev is not None and prev.roll <= t
    assert [c for c in book if c.roll > t and (prev is None or c.last_trade <= front.last_trade)] == [front]


@settings(max_examples=100, deadline=None)
@given(moments, offsets)
def test_front_month_windows_are_back_to_back(t: dt.datetime, offset: int) -> None:
    book = book_around(t, offset)
    contracts = list(book)
    assert all(c.contract_month[4:] in ("03", "06", "09", "12") and c.month_code in "HMUZ" for c in contracts)
    for a, b in itertools.pairwise(contracts):
        assert a.roll < b.roll
        assert book.window(b) == (a.roll, b.roll)  # no overlap, no gap
        assert b.roll <= b.last_trade
    # every moment inside a window has that window's contract as front month
    for a, b in itertools.pairwise(contracts[:-1]):
        assert book.front_at(a.roll) == b
        assert book.front_at(b.roll - dt.timedelta(microseconds=1)) == b


@given(st.integers(2000, 2099), st.sampled_from([3, 6, 9, 12]))
def test_default_roll_is_the_thursday_eight_days_before_expiry_at_the_evening_open(year: int, month: int) -> None:
    fc = FutureContract(FUTURES["NQ"], year, month)
    roll = roll_moment(fc.last_trade_moment, 8)
    local = roll.astimezone(CHICAGO)
    assert local.time() == dt.time(17, 0)
    roll_day = local.date() + dt.timedelta(days=1)  # the trading day that session belongs to
    assert roll_day == fc.last_trade_date - dt.timedelta(days=8)
    if fc.last_trade_date == third_friday(year, month):  # not moved by a holiday
        assert roll_day.weekday() == 3 and local.weekday() == 2  # Thursday, opening Wednesday evening


@settings(max_examples=50, deadline=None)
@given(moments, offsets, st.randoms(use_true_random=False))
def test_results_do_not_depend_on_the_order_details_arrive_in(t: dt.datetime, offset: int, rnd: random.Random) -> None:
    rows = [details_of(fc, t, ex) for fc in active_contracts("ES", t, include_expired=1) for ex in ("CME", "QBALGO")]
    shuffled = list(rows)
    rnd.shuffle(shuffled)

    def resolve(batch: list[ContractDetails]) -> tuple[str, dt.datetime | None, list[str]]:
        async def fetch(root: str) -> list[ContractDetails]:
            return batch

        manager = ContractManager(fetch, roll_days=offset, clock=lambda: t)
        res = asyncio.run(manager.resolve("ES"))
        book = asyncio.run(manager.book("ES"))
        return res.contract.local_symbol, res.until, [c.local_symbol for c in book]

    assert resolve(rows) == resolve(shuffled)


def test_trading_hours_decide_the_roll_open_when_they_list_the_day() -> None:
    expiry = dt.datetime(2024, 12, 20, 8, 30, tzinfo=CHICAGO)
    sessions = parse_sessions("20241210:1800-20241211:1600;20241211:1700-20241212:1600", CHICAGO)
    assert roll_moment(expiry, 8, sessions) == dt.datetime(2024, 12, 11, 17, 0, tzinfo=CHICAGO)
    assert roll_moment(expiry, 9, sessions) == dt.datetime(2024, 12, 10, 18, 0, tzinfo=CHICAGO)
    assert roll_moment(expiry, 6) == dt.datetime(2024, 12, 15, 17, 0, tzinfo=CHICAGO)  # Saturday -> Monday's session
    with pytest.raises(ConfigError, match="YYYYMMDD:HHMM"):
        parse_sessions("garbage-here", CHICAGO)


def test_pinned_months_and_one_digit_years() -> None:
    t = dt.datetime(2024, 12, 2, 15, tzinfo=UTC)
    book = book_around(t, 8)
    assert book.pinned(3, 5, 1, t).local_symbol == "NQH5"
    assert book.pinned(3, 25, 2, t).local_symbol == "NQH5"
    assert book.pinned(3, 2025, 4, t).local_symbol == "NQH5"
    with pytest.raises(ConfigError, match="NQZ4"):
        book.pinned(9, 2030, 4, t)


# -- the manager ---------------------------------------------------------------------


class Counting:
    def __init__(self, now: list[dt.datetime]) -> None:
        self.now = now
        self.calls = 0

    async def __call__(self, root: str) -> list[ContractDetails]:
        self.calls += 1
        return [details_of(fc, self.now[0]) for fc in active_contracts(root, self.now[0])]


def test_cache_is_reused_until_a_day_boundary_or_roll_or_invalidate() -> None:
    now = [dt.datetime(2024, 12, 2, 15, tzinfo=UTC)]  # Monday 09:00 Chicago
    fetch = Counting(now)
    manager = ContractManager(fetch, clock=lambda: now[0])

    async def run() -> list[str]:
        out = [(await manager.resolve("NQ")).contract.local_symbol]
        now[0] += dt.timedelta(hours=6)  # 15:00 Chicago, same trading day
        out.append((await manager.resolve("NQ")).contract.local_symbol)
        assert fetch.calls == 1
        now[0] += dt.timedelta(hours=3)  # 18:00 Chicago: a new trading day
        out.append((await manager.resolve("NQ")).contract.local_symbol)
        assert fetch.calls == 2
        manager.invalidate()
        await manager.resolve("NQ")
        assert fetch.calls == 3
        now[0] = dt.datetime(2024, 12, 11, 23, 30, tzinfo=UTC)  # Wed 17:30 Chicago: past Z4's roll
        res = await manager.resolve("NQ")
        out.append(res.contract.local_symbol)
        return out

    assert asyncio.run(run()) == ["NQZ4", "NQZ4", "NQZ4", "NQH5"]


def test_bad_zones_and_symbols_are_clear_errors() -> None:
    t = dt.datetime(2024, 12, 2, 15, tzinfo=UTC)

    async def fetch(root: str) -> list[ContractDetails]:
        rows = [details_of(fc, t) for fc in active_contracts("NQ", t)]
        rows[0].timeZoneId = "Mars/Olympus"
        return rows

    with pytest.raises(ConfigError, match="unknown timeZoneId 'Mars/Olympus'"):
        asyncio.run(ContractManager(fetch, clock=lambda: t).resolve("NQ"))
    with pytest.raises(ConfigError, match="'NQZ4', 'NQZ24'"):
        asyncio.run(ContractManager(fetch, clock=lambda: t).resolve("N-Q"))


# -- real data -------------------------------------------------------------------------


class _Rows(EWrapper):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ContractDetails] = []

    def contractDetails(self, reqId: int, contractDetails: ContractDetails) -> None:  # noqa: N802,N803
        self.rows.append(contractDetails)


def capture_rows(name: str) -> tuple[list[ContractDetails], dt.datetime]:
    lines = (CAPTURES / f"{name}.jsonl").read_text().splitlines()
    header: dict[str, Any] = json.loads(lines[0])
    wrapper = _Rows()
    decoder = Decoder(wrapper, header["server_version"])
    for line in lines[1:]:
        frame = json.loads(line)
        if frame["dir"] == "server" and frame["msg_id"] == 10:
            decoder.processProtoBuf(base64.b64decode(frame["frame_b64"])[8:], 10)
    when = dt.datetime.strptime(header["connection_time"][:17], "%Y%m%d %H:%M:%S")
    # "CET" in the header is the Gateway host's label for Central European (summer) time
    return wrapper.rows, when.replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))


@pytest.mark.parametrize("name,root,front,listed_count", [
    ("contract_details_es_fut", "ES", "ESU6", 21),
    ("api_future_campaign_mes", "MES", "MESU6", 5),
    ("contract_details_settlement_es_fut", "ES", "ESZ6", 1),
])
def test_real_gateway_lists_give_the_right_front_month(name: str, root: str, front: str, listed_count: int) -> None:
    rows, when = capture_rows(name)

    async def fetch(r: str) -> list[ContractDetails]:
        return rows

    manager = ContractManager(fetch, clock=lambda: when)
    res = asyncio.run(manager.resolve(root))
    assert res.contract.local_symbol == front
    assert len(asyncio.run(manager.book(root))) == listed_count
    # ESU6 expires 2026-09-18; its roll is the Thursday session 2026-09-10, opening Wednesday 17:00 CT
    if front == "ESU6":
        assert res.until == dt.datetime(2026, 9, 9, 17, 0, tzinfo=CHICAGO)
