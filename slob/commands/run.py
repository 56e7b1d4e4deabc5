"""`slob run`: the trading engine against a real TWS / IB Gateway (paper by default).

Settings come from defaults < ``--config`` TOML file (or ``$SLOB_CONFIG``) < ``SLOB_*``
environment < flags (:mod:`slob.config.loader`; docs/reference/configuration.md). The
command prints a one-line plan, then runs :class:`~slob.live.live_trading_engine.LiveTradingEngine`
until SIGINT/SIGTERM (the engine stops cleanly: open candles closed, subscriptions
cancelled, the store flushed).

Live trading needs ``--live`` *and* a confirmation naming the account: typed at the
prompt when stdin is a terminal, or ``--confirm-live ACCOUNT`` (for scripts). Without a
terminal and without ``--confirm-live`` it is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

from slob.commands.common import EXIT_OK, for_command_line
from slob.commands.live_view import open_view, status_line
from slob.commands.run_view import RunWatch
from slob.config.loader import FLAGS, Flag, RunConfig, load_config, parse_flag
from slob.ib.errors import ConfigError, LiveTradingRefused

if TYPE_CHECKING:
    from slob.live.live_trading_engine import LiveTradingEngine

NAME = "run"
HELP = "run the engine (ticks, candles, setups, paper orders) against TWS / IB Gateway"

log = logging.getLogger("slob.commands.run")
STATUS_EVERY = 10.0  # real seconds between status lines when the output is not a terminal
#: The options `slob run` has: a fix text names these (slob.commands.common.for_command_line).
OPTIONS = frozenset({f.option for f in FLAGS} | {"--config", "--live", "--trade", "--no-trade"})
_PORTS = {7497: "TWS paper", 4002: "IB Gateway paper", 7496: "TWS live", 4001: "IB Gateway live"}


def _flag_type(flag: Flag) -> Callable[[str], object]:
    def convert(text: str) -> object:
        try:
            return parse_flag(flag.dotted, text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    return convert


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH", default=None,
                   help="TOML config file ([ib], [engine], [risk], [setup]; default $SLOB_CONFIG)")
    for flag in FLAGS:
        p.add_argument(flag.option, dest=_dest(flag), metavar=flag.metavar, default=None, type=_flag_type(flag),
                       help=flag.help)
    p.add_argument("--trade", action=argparse.BooleanOptionalAction, default=None,
                   help="place bracket orders for triggered setups (default); --no-trade: data and setups only")
    p.add_argument("--live", action="store_true",
                   help="allow live trading (live ports 7496/4001, non-paper accounts); asks to confirm the account")
    p.add_argument("--confirm-live", metavar="ACCOUNT", default=None,
                   help="with --live, confirm the account without a prompt (for scripts: no terminal needed)")
    p.add_argument("--check", action="store_true",
                   help="print the plan and exit without connecting (checks the configuration)")
    p.add_argument("--status-every", type=_every, default=STATUS_EVERY, metavar="SECONDS",
                   help=f"when the output is not a terminal: a status line every SECONDS (default {STATUS_EVERY:g}; "
                        "0 = none). On a terminal a live panel shows the same figures")


def _every(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("a number of seconds >= 0 (0 = no status lines)")
    return value


def _dest(flag: Flag) -> str:
    return "cfg_" + flag.dotted.replace(".", "_")


def flag_values(args: argparse.Namespace) -> dict[str, object]:
    """The settings given as flags, as the loader's dotted keys."""
    values: dict[str, object] = {f.dotted: getattr(args, _dest(f)) for f in FLAGS}
    values["engine.trade"] = args.trade
    return {k: v for k, v in values.items() if v is not None}


def db_path(config: RunConfig) -> Path:
    from slob.store.store import default_db_path

    return config.engine.db or default_db_path(config.engine.data_dir)


def plan(config: RunConfig, db: Path) -> str:
    """One line: what ``run`` connects to, paper or live, what it trades, where it stores."""
    ib, engine, risk = config.ib, config.engine, config.risk
    port = _PORTS.get(ib.port)
    mode = "LIVE trading" if config.live else "paper trading"
    orders = (f"orders: {risk.contracts} contract(s) per setup, max position {risk.max_position}, "
              f"max daily loss {risk.max_daily_loss:g} USD" if engine.trade else "no orders (data and setups only)")
    parts = [
        f"slob run: {mode} via {ib.host}:{ib.port}" + (f" ({port})" if port else ""),
        f"client id {ib.client_id}, account {ib.account or 'of the login'}",
        f"symbols {', '.join(engine.symbols)} ({ib.data_type}, {ib.tick_source})",
        orders,
        f"store {db}",
    ]
    if config.config_file is not None:
        parts.append(f"config {config.config_file}")
    return "; ".join(parts)


def confirm_live(account: str, *, confirmation: str | None, stdin: TextIO, prompt: TextIO,
                 account_hint: str = "--account (or SLOB_IB_ACCOUNT, or [ib] account in the config file)") -> None:
    """Refuse live trading unless the account is confirmed: ``--confirm-live ACCOUNT``, or
    the account id typed at the prompt (only when ``stdin`` is a terminal). ``account_hint``
    says where the command takes the account from."""
    if not account:
        raise LiveTradingRefused(f"live trading needs the account named, to confirm it: give {account_hint}")
    if confirmation is not None:
        if confirmation.strip() != account:
            raise LiveTradingRefused(f"--confirm-live {confirmation} does not match the account {account}; "
                                     "live trading not started")
        return
    if not stdin.isatty():
        raise LiveTradingRefused(
            f"live trading on account {account} must be confirmed, and stdin is not a terminal: run it from a "
            f"terminal to type the account id, or add --confirm-live {account} to confirm non-interactively")
    print(f"Type the account id {account} to confirm live trading: ", end="", file=prompt, flush=True)
    answer = stdin.readline().strip()
    if answer != account:
        raise LiveTradingRefused(f"live trading not confirmed (typed {answer!r}, not {account}); nothing was sent")


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.confirm_live is not None and not args.live:
        raise ConfigError("--confirm-live confirms live trading: add --live (or drop --confirm-live)")
    config = load_config(config_file=args.config, env=os.environ, flags=flag_values(args), live=args.live)
    db = db_path(config)
    print(plan(config, db), file=out, flush=True)
    if args.check:
        return EXIT_OK
    if config.live:
        confirm_live(config.ib.account, confirmation=args.confirm_live, stdin=sys.stdin, prompt=sys.stderr)
    asyncio.run(_run_engine(config, db, out, args.status_every))
    return EXIT_OK


async def _run_engine(config: RunConfig, db: Path, out: TextIO, every: float) -> None:
    from slob.live.ib_ws_fetcher import IBWSFetcher
    from slob.live.live_trading_engine import LiveTradingEngine

    live = config.live
    engine = LiveTradingEngine(
        "ib", config.engine.symbols, paper_trading=not live, allow_live=live, ib_config=config.ib, store=db,
        candle_intervals=config.engine.candle_intervals, store_ticks=config.engine.store_ticks,
        setup_config=config.setup, trade=config.engine.trade, risk=config.risk,
    )
    fetcher = engine.fetcher
    assert isinstance(fetcher, IBWSFetcher)

    def multiplier(symbol: str) -> float:
        details = fetcher.details_for(symbol)
        try:
            return float(details.contract.multiplier) if details is not None else 20.0
        except (TypeError, ValueError):
            return 20.0

    def error(line: str) -> None:
        print(f"slob: {for_command_line(line, NAME, OPTIONS)}", file=sys.stderr, flush=True)

    watch = RunWatch(engine, say=lambda line: view.say(line), error=error, multiplier=multiplier)
    mode = "LIVE" if live else "paper"
    view = open_view(out, title=lambda: f"slob run: {mode} trading via {config.ib.host}:{config.ib.port}, store {db}",
                     fields=lambda: watch.snapshot, every=every,
                     waiting=f"connecting to {config.ib.host}:{config.ib.port}...")
    watch.attach()
    quiet = _ClientIdNotices()
    cancels = _OrderCancels()
    client_log = logging.getLogger("slob.ib.client")
    client_log.addFilter(cancels)
    if not client_log.isEnabledFor(logging.INFO):  # at INFO/DEBUG the user asked for every line
        client_log.addFilter(quiet)
    try:
        with view:
            try:
                await engine.start()
            except BaseException:
                try:
                    await engine.stop()  # closes the store and whatever part of the session opened
                except Exception:  # the start failure is the error to report
                    log.debug("stop after a failed start", exc_info=True)
                raise
            finally:
                client_log.removeFilter(quiet)
            contracts = []
            for symbol in engine.symbols:
                details = fetcher.details_for(symbol)
                local = details.contract.localSymbol if details is not None else ""
                contracts.append(f"{symbol.upper()} -> {local}" if local else symbol.upper())
            view.say(f"connected; streaming {', '.join(contracts)}. Ctrl-C or SIGTERM stops cleanly.")
            refresher = asyncio.create_task(watch.refresh_forever(), name="slob-run-status")
            try:
                await engine.run()
            finally:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)
    finally:
        client_log.removeFilter(cancels)
        watch.detach()
    stats = engine.get_stats()
    _say(out, "final: " + status_line(watch.fields()))
    orders = stats.get("orders")
    placed = f", {orders['placed_setups']} setups with orders" if orders else ""
    _say(out, f"stopped: {stats['feed'].get('ticks', 0)} trades, {stats['candles']} candles, "
              f"{stats['setups']} setups{placed}; store {stats['store']}")


class _ClientIdNotices(logging.Filter):
    """While starting, the errors that end the start are not logged by the client as well:
    326 (client id in use, per attempt) becomes ClientIdInUse, 200 ContractNotFound, the
    market-data permission codes MarketDataNotSubscribed -- each reported once, as the
    command's one error line."""

    CODES = frozenset({326, 200, 354, 10089, 10168, 10186, 10189})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (record.msg == "! %d %s (req %d)" and isinstance(args, tuple) and args and args[0] in self.CODES)


class _OrderCancels(logging.Filter):
    """TWS's 202 (order cancelled) is logged once, at INFO, by the order executor (and
    shown as an event line); the client's own warning line for it would say it twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (record.msg == "! %d %s (req %d)" and isinstance(args, tuple) and args and args[0] == 202)


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)
