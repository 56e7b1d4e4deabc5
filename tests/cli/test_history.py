"""`slob history`: a month of simulated bars into the store, a second run requesting
nothing new, resuming after a failure, live candles kept, CSV export, the command line."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Iterator

import pytest

from slob.cli import main
from slob.commands.history import download
from slob.config.ib_config import IBConfig
from slob.ib.errors import ConnectionLost
from slob.ib.history import bar_size
from slob.live.ib_history import HistorySettings
from slob.store.store import CandleRecord, Store
from slob.model import Candle
from slob.testing import FakeTWS, RandomWalkScenario
from slob.testing.fake_history import history_of, record_from_now

UTC = dt.timezone.utc
FEB = dt.datetime(2025, 2, 3, tzinfo=UTC)  # a Monday; NQH5 the front month until 13 March
MINUTE = bar_size("1 min")


class ManualClock:
    """Both pacers' clock: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def month() -> Iterator[FakeTWS]:
    """A fake whose clock stands 30 days after FEB, with those days of (sparse) trades."""
    slow = {"NQ": RandomWalkScenario(seed=5, trades_per_second=0.02, start_price=21_500.0)}
    with FakeTWS(speed=0, start=FEB, scenarios=slow) as tws:
        record_from_now(tws)
        tws.advance(30 * 86_400)
        yield tws


def config(tws: FakeTWS) -> IBConfig:
    return IBConfig(port=tws.port, client_id=9, connect_timeout_seconds=5.0, max_reconnect_attempts=0)


def requests(tws: FakeTWS) -> int:
    return sum(1 for r in tws.requests if r.name == "REQ_HISTORICAL_DATA")


def test_a_month_fills_the_store_and_a_second_run_requests_nothing(month: FakeTWS, tmp_path: Path) -> None:
    clock = ManualClock()
    history_of(month).clock = clock
    settings = HistorySettings(clock=clock, sleep=clock.sleep)
    end = FEB + dt.timedelta(days=30)
    out = io.StringIO()
    with Store(tmp_path / "slob.sqlite3") as store:
        first = asyncio.run(download("NQ", FEB, end, bar=MINUTE, config=config(month), store=store, out=out,
                                     settings=settings))
        assert first.pages == 30 and requests(month) == 30  # one per UTC day, weekends included
        stored = store.candles("NQ", 60, FEB, end)
        assert len(stored) == first.bars > 20_000
        assert {c.contract for c in stored} == {"NQH5"}
        assert store.history_spans("NQ", 60) == [(FEB, end)]
        # the client's pacer kept IB's rules; the four Saturdays had no trades ("HMDS query returned no data")
        assert history_of(month).refused == {"no_data": 4}
        assert clock.now >= 2 * 5  # 30 requests for one contract: five per two seconds
        assert "30 request(s) to make; IB's pacing makes that at least 10 s" in out.getvalue()
        assert out.getvalue().count("page ") == 30
        again = asyncio.run(download("NQ", FEB, end, bar=MINUTE, config=config(month), store=store, out=out,
                                     settings=settings))
        assert again.pages == 0 and again.bars == 0 and requests(month) == 30  # nothing new asked
        # a longer range asks only for what is new (later: a fresh process's pacer knows
        # nothing of the requests before it, and IB's budget has to have recovered)
        clock.now += 600
        more = asyncio.run(download("NQ", FEB - dt.timedelta(days=2), end, bar=MINUTE, config=config(month),
                                    store=store, out=out, settings=settings))
        assert more.pages == 2 and requests(month) == 32
    # the bars are the scenario's: the same as asking IB's history directly
    with Store(tmp_path / "slob.sqlite3") as store:
        day = store.candles("NQ", 60, FEB + dt.timedelta(days=2), FEB + dt.timedelta(days=3))
        assert all(c.volume > 0 and c.trades > 0 and not c.filled for c in day)


def test_a_run_cut_by_a_lost_connection_keeps_its_pages_and_the_next_goes_on(month: FakeTWS,
                                                                              tmp_path: Path) -> None:
    clock = ManualClock()
    history_of(month).clock = clock
    settings = HistorySettings(clock=clock, sleep=clock.sleep)
    end = FEB + dt.timedelta(days=5)
    month.drop_on_next_request("REQ_HISTORICAL_DATA", answered=False, skip=3)
    with Store(tmp_path / "slob.sqlite3") as store:
        with pytest.raises(ConnectionLost):
            asyncio.run(download("NQ", FEB, end, bar=MINUTE, config=config(month), store=store, out=io.StringIO(),
                                 settings=settings))
        store.flush()
        assert store.history_spans("NQ", 60) == [(FEB, FEB + dt.timedelta(days=3))]
        before = requests(month)
        rest = asyncio.run(download("NQ", FEB, end, bar=MINUTE, config=config(month), store=store,
                                    out=io.StringIO(), settings=settings))
        assert rest.pages == 2 and requests(month) == before + 2
        assert store.history_spans("NQ", 60) == [(FEB, end)]


def test_history_never_replaces_live_candles_with_trades(month: FakeTWS, tmp_path: Path) -> None:
    clock = ManualClock()
    history_of(month).clock = clock
    live = Candle("NQ", "NQH5", 60, FEB + dt.timedelta(hours=15), 1.0, 1.0, 1.0, 1.0, 1.0, 1)
    with Store(tmp_path / "slob.sqlite3") as store:
        store.add(live)
        store.flush()
        asyncio.run(download("NQ", FEB, FEB + dt.timedelta(days=1), bar=MINUTE, config=config(month), store=store,
                             out=io.StringIO(), settings=HistorySettings(clock=clock, sleep=clock.sleep)))
        records = store.candle_records("NQ", 60, live.start, live.end)
        assert [(r.candle, r.source) for r in records] == [(live, "live")]
        assert len(store.candles("NQ", 60, FEB, FEB + dt.timedelta(days=1), source="history")) > 500


def test_the_command_line(month: FakeTWS, tmp_path: Path) -> None:
    db, export = tmp_path / "slob.sqlite3", tmp_path / "bars.csv"
    argv = ["history", "NQ", "--from", "2025-03-01", "--to", "2025-03-03T12:00Z", "--bar", "5min",
            "--port", str(month.port), "--db", str(db), "--csv", str(export)]
    out = io.StringIO()
    assert main(argv, out=out) == 0
    text = out.getvalue()
    assert "slob history: NQ 5 mins bars 2025-03-01 00:00..2025-03-03 12:00 UTC; 1 request(s) to make" in text
    assert f"into {db}" in text and f"to {export}" in text
    with export.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["source"] for r in rows} == {"history"} and {r["interval_seconds"] for r in rows} == {"300"}
    assert rows[0]["start"] >= "2025-03-02T23:00"  # Saturday and Sunday before the open: no trades
    out = io.StringIO()
    assert main(argv, out=out) == 0
    assert "0 request(s) to make, 1 stored span(s) skipped" in out.getvalue()
    with Store(db) as store:
        assert [r.source for r in store.candle_records("NQ", 300)] == ["history"] * len(rows)


def test_command_line_errors(month: FakeTWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["history", "NQ", "--port", str(month.port), "--db", str(tmp_path / "s.sqlite3")]
    assert main(base + ["--from", "2025-03-03", "--to", "2025-03-01"], out=io.StringIO()) == 1
    assert "--from must be before --to" in capsys.readouterr().err
    assert main(["history", "ZZ9", "--from", "2025-03-01", "--port", str(month.port), "--db",
                 str(tmp_path / "s.sqlite3")], out=io.StringIO()) == 1
    assert "no contract found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--from", "2025-03-01", "--bar", "7min"], out=io.StringIO())
    assert main(["history", "NQ", "--from", "2025-03-01", "--port", "1", "--db", str(tmp_path / "s.sqlite3")],
                out=io.StringIO()) == 1
    assert "not accepting API connections" in capsys.readouterr().err
    with Store(tmp_path / "s.sqlite3") as store:
        assert store.candle_records("NQ", 60) == [] and CandleRecord  # nothing half-written
