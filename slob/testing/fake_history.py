"""The fake TWS's historical data service (HMDS): bars, ticks and head timestamps.

Answers are computed from the same trades the fake streams (:mod:`slob.testing.history_tape`),
so history and live ticks agree: a 1-minute TRADES bar equals the candle slob builds
from the streamed ticks of that minute. Served, as a real TWS serves them (TWS-FACTS §10):

* REQ_HISTORICAL_DATA: bar sizes 1 sec .. 1 day; TRADES, MIDPOINT, BID, ASK, BID_ASK (the
  scenarios carry a quote with every trade); durations ``N S|D|W|M|Y`` (a day is 24 h
  here, a month 30 days, a year 365 days); ``endDateTime`` empty (now) or in IB's forms;
  ``formatDate`` 1 (login time zone) or 2 (epoch seconds); ``useRTH``; ``includeExpired``;
  HISTORICAL_DATA_END from server version 196; ``keepUpToDate`` with
  HISTORICAL_DATA_UPDATE for every trade of the bar forming. Only finished bars are
  answered: the bar still forming comes as an update (keepUpToDate) or not at all.
* REQ_HISTORICAL_TICKS: TRADES (HISTORICAL_TICKS_LAST), MIDPOINT, BID_ASK; at most 1000
  per request, completed to the second; from a start or back from an end.
* REQ_HEAD_TIMESTAMP: the first trade the fake knows.
* Errors: 200 for an unknown or ambiguous contract; 321 for bad parameters; 162 for
  IB's pacing rules (:mod:`slob.ib.history_pacing`, on a real monotonic clock unless one
  is injected), for "HMDS query returned no data", for roots without permission
  (FakeTWS ``no_permission``) and for second bars over IB's span limit.

Per FakeTWS one :class:`FakeHistory` (``history_of(tws)``), which tests configure::

    history_of(tws).pacing = PacingRules.unlimited()   # or None: no pacing at all
    history_of(tws).clock = manual_clock               # the pacing clock (seconds)
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, TypeVar
from zoneinfo import ZoneInfo

from ibapi.message import OUT

from slob.ib.history import BAR_SIZES, MAX_SPAN_SECONDS, MAX_TICKS_PER_REQUEST, duration_seconds, parse_ib_time
from slob.ib.history_pacing import HistoryKey, PacingLedger, PacingRules
from slob.testing import tws_history_messages as hmsg
from slob.testing.fake_market import Market
from slob.testing.futures import FutureContract
from slob.testing.history_tape import (Bar, PriceOf, Shifter, Tap, Timeline, add_trade, bucket_end_ns, bucket_of,
                                       bucket_start_ns, build_bars, in_rth)
from slob.testing.scenario import Scenario, ScriptedScenario, SimClock, Trade, from_ns
from slob.trace.tws_requests import Request

__all__ = ["FakeHistory", "HistoryPort", "TEXTS", "history_of", "record_from_now"]

log = logging.getLogger("slob.testing.fake_tws")
_NS = 1_000_000_000
_HMDS = "Historical Market Data Service error message:"
TEXTS = {
    "pacing": _HMDS + "Historical data request pacing violation",
    "no_data": _HMDS + "HMDS query returned no data: {what}",
    "permission": _HMDS + "No market data permissions for CME FUT",
    "too_long": _HMDS + "Time length exceed max.",
    "no_head": _HMDS + "No head time stamp",
}
WHAT_BARS = ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK")
WHAT_TICKS = ("TRADES", "MIDPOINT", "BID_ASK")


class HistoryPort(Protocol):
    """One client connection as the history service uses it."""

    @property
    def server_version(self) -> int: ...

    @property
    def alive(self) -> bool: ...

    def send(self, frame: bytes) -> None: ...

    def fail(self, req_id: int, code: int, text: str) -> None: ...

    def contracts(self, req: Request, with_expired: bool) -> list[FutureContract]: ...


class _Invalid(Exception):
    """A request TWS answers with an error: (code, text); ``reason`` names it for
    :attr:`FakeHistory.refused` (``pacing``, ``no_data``... or the code)."""

    def __init__(self, code: int, text: str, reason: str = "") -> None:
        super().__init__(text)
        self.code, self.text, self.reason = code, text, reason or str(code)


def _hmds(reason: str, **values: str) -> _Invalid:
    return _Invalid(162, TEXTS[reason].format(**values), reason)


def _invalid(detail: str) -> _Invalid:
    return _Invalid(321, f"Error validating request.-'bP' : cause - {detail}")


@dataclass(eq=False)
class _Stream:
    """A keepUpToDate request: every trade of its contract updates the bar forming."""

    port: HistoryPort
    req_id: int
    family: str
    shifter: Shifter
    bar_seconds: int
    what: str
    use_rth: bool
    format_date: int
    bars: list[Bar] = field(default_factory=list)


class FakeHistory:
    """The history service of one fake TWS (see the module docstring)."""

    def __init__(self, *, now_ns: Callable[[], int], scenarios: Mapping[str, Scenario], price_of: PriceOf,
                 zone: dt.tzinfo, no_permission: Callable[[], frozenset[str]],
                 flowing: Callable[[], bool] = lambda: True) -> None:
        self._now_ns = now_ns
        self._scenarios = dict(scenarios)
        self._price_of = price_of
        self.zone = zone
        self._no_permission = no_permission
        self._flowing = flowing
        #: IB's pacing rules the service enforces (162); None: none at all.
        self.pacing: PacingRules | None = PacingRules()
        #: The clock the pacing rules run on (monotonic seconds; inject one in tests).
        self.clock: Callable[[], float] = time.monotonic
        #: Record generated (non-scripted) scenarios as they play, for their history (about
        #: 56 bytes a trade). Set False before the first connection to save the memory
        #: in long runs that never ask for history: such families then have none.
        self.record_generated = True
        self._ledger: PacingLedger | None = None
        self._scripts: dict[str, Timeline] = {}
        self._taps: dict[str, Tap] = {}
        self._streams: dict[tuple[int, int], _Stream] = {}
        self._market: object | None = None
        #: Requests served, and refused by reason: "pacing", "no_data", "permission",
        #: "too_long", "no_head" (all 162) or the error code ("200", "321").
        self.served = 0
        self.refused: collections.Counter[str] = collections.Counter()

    # -- the trades --------------------------------------------------------------------

    def attach(self, market: Market) -> None:
        """Put a :class:`Tap` in each of ``market``'s family streams (once per market).
        The market keeps its stream per family in ``_streams`` and the trade it will play
        next in ``_next``: the tap takes the stream over from there on."""
        if self._market is market:
            return
        self._market = market
        self._taps = {}
        played = market.trades_played
        for family, source in list(market._streams.items()):  # noqa: SLF001 - see the docstring
            scripted = isinstance(self._scenarios.get(family), ScriptedScenario)
            tap = Tap(source, market._next.get(family),  # noqa: SLF001
                      record=self.record_generated and not scripted)
            tap.listeners.append(functools.partial(self._played, family))
            market._streams[family] = tap.stream()  # noqa: SLF001
            self._taps[family] = tap
        if played:
            log.info("= fake history attached after %d trades: generated families start here", played)

    def timeline(self, family: str, up_to_ns: int) -> Timeline | None:
        """The family's trades, recorded at least up to ``up_to_ns`` (None: no scenario)."""
        scenario = self._scenarios.get(family)
        if isinstance(scenario, ScriptedScenario):
            line = self._scripts.get(family)
            if line is None:
                line = self._scripts[family] = Timeline.of(iter(scenario.events(0)))
            return line
        tap = self._taps.get(family)
        if tap is not None and not tap.record:
            return None
        if tap is None:
            if scenario is None:
                return None
            # No market (FakeEClient): the scenario from the clock's start, recorded on demand.
            tap = self._taps[family] = Tap(iter(scenario.events(self._now_ns())), None, record=True)
        tap.extend_to(up_to_ns)
        return tap.timeline

    # -- requests ----------------------------------------------------------------------

    def handlers(self, port: HistoryPort) -> dict[int, Callable[[Request], None]]:
        """The request handlers by message id, for a connection's dispatch table."""
        return {
            OUT.REQ_HISTORICAL_DATA: lambda r: self.bars(port, r),
            OUT.CANCEL_HISTORICAL_DATA: lambda r: self.cancel(port, r),
            OUT.REQ_HISTORICAL_TICKS: lambda r: self.ticks(port, r),
            OUT.REQ_HEAD_TIMESTAMP: lambda r: self.head_timestamp(port, r),
            OUT.CANCEL_HEAD_TIMESTAMP: lambda r: None,
        }

    def _refuse(self, port: HistoryPort, req_id: int, exc: _Invalid) -> None:
        self.refused[exc.reason] += 1
        log.info("! history request %d refused: %d %s", req_id, exc.code, exc.text)
        port.fail(req_id, exc.code, exc.text)

    def _contract(self, port: HistoryPort, req: Request) -> FutureContract:
        if req.get("secType").upper() not in ("FUT", ""):
            raise _Invalid(200, "No security definition has been found for the request")
        found = port.contracts(req, req.get("includeExpired") in ("1", "true", "True"))
        if len(found) != 1:
            raise _Invalid(200, "No security definition has been found for the request")
        contract = found[0]
        if contract.spec.root in self._no_permission():
            raise _hmds("permission")
        return contract

    def _check_pacing(self, key: HistoryKey, open_now: int) -> None:
        """Refuse ``key`` (162) if it breaks a pacing rule with ``open_now`` requests
        already open; else record it."""
        rules = self.pacing
        if rules is None:
            return
        if self._ledger is None or self._ledger.rules is not rules:
            self._ledger = PacingLedger(rules)
        now = self.clock()
        if open_now >= rules.max_open or self._ledger.violation(key, now) is not None:
            raise _hmds("pacing")
        self._ledger.record(key, now)

    def _moment(self, text: str, what: str) -> int:
        try:
            return int(parse_ib_time(text, self.zone).timestamp() * _NS)
        except ValueError:
            raise _invalid(f"{what} {text!r} is not a date/time (yyyyMMdd HH:mm:ss [zone])") from None

    def bars(self, port: HistoryPort, req: Request) -> None:
        req_id = req.int("reqId")
        try:
            self._bars(port, req, req_id)
        except _Invalid as exc:
            self._refuse(port, req_id, exc)

    def _bars(self, port: HistoryPort, req: Request, req_id: int) -> None:
        contract = self._contract(port, req)
        what = req.get("whatToShow").upper()
        if what not in WHAT_BARS:
            raise _invalid(f"Invalid what to show: {req.get('whatToShow')!r}")
        bar_text = " ".join(req.get("barSizeSetting").split())
        if bar_text not in BAR_SIZES:
            raise _invalid(f"Historical data bar size setting is invalid: {bar_text!r}")
        bar_seconds = BAR_SIZES[bar_text]
        try:
            span = duration_seconds(req.get("durationStr"))
        except ValueError:
            raise _invalid(f"Invalid duration string {req.get('durationStr')!r}") from None
        format_date = req.int("formatDate", 1)
        if format_date not in (1, 2):
            raise _invalid(f"Invalid format date {format_date}")
        keep = req.get("keepUpToDate") in ("1", "true", "True")
        end_text = req.get("endDateTime").strip()
        if keep and end_text:
            raise _invalid("End date not supported with live updates")
        if keep and bar_seconds < 5:
            raise _invalid("Live updates need a bar size of 5 secs or more")
        now = self._now_ns()
        end = self._moment(end_text, "end date") if end_text else now
        key = HistoryKey(str(contract.con_id), what, (end_text, str(span), bar_text, req.get("useRTH"),
                                                       str(format_date), str(keep)))
        self._check_pacing(key, sum(1 for s in self._streams.values() if s.port is port))
        if bar_seconds < 60 and span > MAX_SPAN_SECONDS[bar_seconds]:
            raise _hmds("too_long")
        start = end - span * _NS
        use_rth = req.get("useRTH") == "1"
        line = self.timeline(contract.spec.family, min(end, now))
        shifter = Shifter(contract, self._price_of)
        finished: list[Bar] = []
        if line is not None:
            first = bucket_of(start, bar_seconds)  # bars start inside the span: the next if this began before
            lo = bucket_start_ns(first, bar_seconds)
            if lo < start:
                lo = bucket_start_ns(first + (1 if bar_seconds >= 86_400 else bar_seconds), bar_seconds)
            built = build_bars(line, shifter, lo, min(end, now), bar_seconds, what, use_rth)
            finished = [b for b in built if bucket_end_ns(b.key, bar_seconds) <= now
                        and bucket_start_ns(b.key, bar_seconds) < end]
        sv = port.server_version
        if not finished and not keep:
            raise _hmds("no_data", what=f"{contract.local_symbol}@CME {what.title()}")
        self.served += 1
        rows = [self._row(b, bar_seconds, what, format_date) for b in finished]
        start_text, stop_text = self._span_text(start), self._span_text(min(end, now))
        port.send(hmsg.historical_data(req_id, rows, start_text, stop_text, sv))
        if sv >= hmsg.SV_HISTORICAL_DATA_END:
            port.send(hmsg.historical_data_end(req_id, start_text, stop_text, sv))
        if keep:
            stream = _Stream(port, req_id, contract.spec.family, shifter, bar_seconds, what, use_rth, format_date)
            if line is not None:  # the bar forming now, so far
                key_now = bucket_of(now, bar_seconds)
                forming = build_bars(line, shifter, bucket_start_ns(key_now, bar_seconds), now + 1, bar_seconds,
                                     what, use_rth)
                stream.bars = [b for b in forming if b.key == key_now]
                if stream.bars:
                    port.send(hmsg.historical_data_update(req_id, self._row(stream.bars[-1], bar_seconds, what,
                                                                            format_date), sv))
            self._streams[(id(port), req_id)] = stream

    def cancel(self, port: HistoryPort, req: Request) -> None:
        req_id = req.int("reqId")
        if self._streams.pop((id(port), req_id), None) is None:
            port.fail(req_id, 366, f"No historical data query found for ticker id:{req_id}")

    def drop_port(self, port: HistoryPort) -> None:
        """The connection ended (or lost its subscriptions): its streams end."""
        for k in [k for k, s in self._streams.items() if s.port is port]:
            del self._streams[k]

    def _played(self, family: str, trade: Trade) -> None:
        """The market plays ``trade``: update the bar of every stream of its family."""
        if not self._streams or not self._flowing():
            return
        for k, s in list(self._streams.items()):
            if s.family != family:
                continue
            if not s.port.alive:
                del self._streams[k]
                continue
            if s.use_rth and not in_rth(trade.time_ns):
                continue
            shift = s.shifter.shift(trade.time_ns, trade.price)
            if shift is None:
                continue
            bar = add_trade(s.bars, bucket_of(trade.time_ns, s.bar_seconds), s.what, trade.price + shift,
                            trade.size, trade.bid + shift, trade.ask + shift)
            del s.bars[:-1]
            s.port.send(hmsg.historical_data_update(s.req_id, self._row(bar, s.bar_seconds, s.what, s.format_date),
                                                    s.port.server_version))

    def ticks(self, port: HistoryPort, req: Request) -> None:
        req_id = req.int("reqId")
        try:
            self._ticks(port, req, req_id)
        except _Invalid as exc:
            self._refuse(port, req_id, exc)

    def _ticks(self, port: HistoryPort, req: Request, req_id: int) -> None:
        contract = self._contract(port, req)
        what = req.get("whatToShow").upper()
        if what not in WHAT_TICKS:
            raise _invalid(f"Invalid what to show for ticks: {req.get('whatToShow')!r}")
        count = req.int("numberOfTicks", 0)
        if not 0 < count <= MAX_TICKS_PER_REQUEST:
            raise _invalid(f"numberOfTicks {count} is not 1..{MAX_TICKS_PER_REQUEST}")
        start_text, end_text = req.get("startDateTime").strip(), req.get("endDateTime").strip()
        if bool(start_text) == bool(end_text):
            raise _invalid("Exactly one of start and end date/time must be given")
        key = HistoryKey(str(contract.con_id), what, ("ticks", start_text, end_text, str(count), req.get("useRTH")))
        self._check_pacing(key, 0)
        now = self._now_ns()
        line = self.timeline(contract.spec.family, now)
        shifter = Shifter(contract, self._price_of)
        use_rth = req.get("useRTH") == "1"
        rows: list[hmsg.TickRow] = []
        if line is not None:
            if start_text:
                positions = iter(line.indices(self._moment(start_text, "start date"), now + 1))
            else:
                end = min(now, self._moment(end_text, "end date"))
                positions = reversed(line.indices(0, (end // _NS + 1) * _NS))
            for i in positions:
                t = line.times[i]
                second = t // _NS
                if len(rows) >= count and second != rows[-1].time:
                    break  # the limit reached, and the last second complete
                if use_rth and not in_rth(t):
                    continue
                shift = shifter.shift(t, line.prices[i])
                if shift is None:
                    continue
                if what == "TRADES":
                    rows.append(hmsg.TickRow(second, line.prices[i] + shift, line.sizes[i]))
                elif what == "MIDPOINT":
                    rows.append(hmsg.TickRow(second, (line.bids[i] + line.asks[i]) / 2 + shift, 0))
                else:
                    rows.append(hmsg.TickRow(second, line.bids[i] + shift, line.bid_sizes[i], line.asks[i] + shift,
                                             line.ask_sizes[i]))
            if not start_text:
                rows.reverse()
        self.served += 1
        sv = port.server_version
        if what == "TRADES":
            port.send(hmsg.historical_ticks_last(req_id, rows, True, sv))
        elif what == "MIDPOINT":
            port.send(hmsg.historical_ticks_midpoint(req_id, rows, True, sv))
        else:
            port.send(hmsg.historical_ticks_bid_ask(req_id, rows, True, sv))

    def head_timestamp(self, port: HistoryPort, req: Request) -> None:
        req_id = req.int("reqId")
        try:
            contract = self._contract(port, req)
            what = req.get("whatToShow").upper()
            if what not in WHAT_BARS:
                raise _invalid(f"Invalid what to show: {req.get('whatToShow')!r}")
            format_date = req.int("formatDate", 1)
            self._check_pacing(HistoryKey(str(contract.con_id), "HEAD", (what, req.get("useRTH"), str(format_date))), 0)
            line = self.timeline(contract.spec.family, self._now_ns())
            first = line.first_ns if line is not None else None
            if first is None or first > self._now_ns():
                raise _hmds("no_head")
        except _Invalid as exc:
            self._refuse(port, req_id, exc)
            return
        self.served += 1
        moment = from_ns(first)
        text = str(first // _NS) if format_date == 2 else f"{moment:%Y%m%d-%H:%M:%S}"
        port.send(hmsg.head_timestamp(req_id, text, port.server_version))

    # -- formatting --------------------------------------------------------------------

    def _row(self, bar: Bar, bar_seconds: int, what: str, format_date: int) -> hmsg.BarRow:
        if bar_seconds >= 86_400:
            date = f"{dt.date.fromordinal(bar.key):%Y%m%d}"
        elif format_date == 2:
            date = str(bar.key)
        else:
            local = from_ns(bar.key * _NS).astimezone(self.zone)
            date = f"{local:%Y%m%d %H:%M:%S} {_zone_name(self.zone)}"
        if what == "TRADES":
            return hmsg.BarRow(date, bar.open, bar.high, bar.low, bar.close, bar.volume, round(bar.wap, 6), bar.count)
        return hmsg.BarRow(date, bar.open, bar.high, bar.low, bar.close, -1, -1, -1)

    def _span_text(self, ns: int) -> str:
        local = from_ns(ns).astimezone(self.zone)
        return f"{local:%Y%m%d %H:%M:%S} {_zone_name(self.zone)}"


def _zone_name(zone: dt.tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone.tzname(None) or "UTC")


# -- FakeTWS -----------------------------------------------------------------------------


_T = TypeVar("_T")


class HistoryHost(Protocol):
    """What the history service needs of its FakeTWS (:class:`slob.testing.fake_tws.FakeTWS`):
    given, not imported."""

    @property
    def clock(self) -> SimClock: ...

    @property
    def scenarios(self) -> Mapping[str, Scenario]: ...

    @property
    def market(self) -> Market: ...

    @property
    def time_zone(self) -> ZoneInfo: ...

    @property
    def no_permission(self) -> frozenset[str]: ...

    def _call(self, fn: Callable[[], _T], timeout: float = 10.0) -> _T: ...


class HistoryClient(Protocol):
    """What the history service needs of a client connection (the FakeTWS session,
    :class:`slob.testing.fake_session.Session`, is one)."""

    @property
    def tws(self) -> HistoryHost: ...

    @property
    def server_version(self) -> int: ...

    @property
    def state(self) -> str: ...

    def send(self, frame: bytes) -> None: ...

    def error(self, req_id: int, code: int, **values: object) -> None: ...

    def resolve(self, req: Request, *, with_expired: bool = False) -> list[FutureContract]: ...


class _SessionPort:
    """A FakeTWS session as the history service sees it."""

    def __init__(self, session: HistoryClient) -> None:
        self.session = session

    @property
    def server_version(self) -> int:
        return self.session.server_version

    @property
    def alive(self) -> bool:
        return self.session.state == "ready"

    def send(self, frame: bytes) -> None:
        self.session.send(frame)

    def fail(self, req_id: int, code: int, text: str) -> None:
        self.session.error(req_id, code, text=text)

    def contracts(self, req: Request, with_expired: bool) -> list[FutureContract]:
        return self.session.resolve(req, with_expired=with_expired)


_SERVICES: "weakref.WeakKeyDictionary[HistoryHost, FakeHistory]" = weakref.WeakKeyDictionary()


def history_of(tws: HistoryHost) -> FakeHistory:
    """The history service of ``tws`` (made on first use; the same object afterwards)."""
    service = _SERVICES.get(tws)
    if service is None:
        service = _SERVICES[tws] = FakeHistory(
            now_ns=tws.clock.now_ns, scenarios=tws.scenarios,
            price_of=lambda c, p, t: tws.market.contract_price(c, p, t),
            zone=tws.time_zone, no_permission=lambda: tws.no_permission,
            flowing=lambda: tws.market.flowing)
    return service


def record_from_now(tws: HistoryHost) -> FakeHistory:
    """Start keeping ``tws``'s generated trades as history now (call it right after
    ``start()``): by default that begins with the first client connection, so trades the
    market plays before it -- a clock advanced with nobody connected -- have no history."""
    service = history_of(tws)

    def attach() -> None:
        service.attach(tws.market)

    tws._call(attach)  # noqa: SLF001 - on the fake's loop, where the market runs
    return service


def session_handlers(session: HistoryClient) -> dict[int, Callable[[Request], None]]:
    """The history handlers for one FakeTWS session (its hook): attaches the service to
    the running market on the first connection."""
    service = history_of(session.tws)
    service.attach(session.tws.market)
    return service.handlers(_SessionPort(session))
