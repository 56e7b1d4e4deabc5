"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
from pathlib import Path
from typing import Collection

__all__ = ["EXIT_FAIL", "day", "money", "percent", "EXIT_OK", "EXIT_PIPE", "EXIT_USAGE", "EXIT_VERDICT_FAIL", "for_command_line", "positive",
           "speed", "when"]

#: Exit codes every command uses (documented in docs/reference/cli.md).
EXIT_OK = 0
EXIT_FAIL = 1  # an error slob explains on stderr (TWS not running, bad config...)
EXIT_USAGE = 2  # bad arguments (argparse)
EXIT_VERDICT_FAIL = 3  # a checkpoint ran but its verdict is FAIL
EXIT_PIPE = 141  # the output was closed early (128 + SIGPIPE, as `yes | head` exits)

#: IBConfig keys that fix texts name, and the option each has where a command offers one.
_KEY_OPTIONS = {
    "data_type": "--data-type", "tick_source": "--tick-source", "roll_days_before_expiry": "--roll-days",
    "client_id": "--client-id", "account": "--account", "port": "--port", "host": "--host",
}
#: The live opt-in as the library words it (slob.config.ib_config, slob.live.ib_session,
#: slob.execution.order_executor, slob.live.live_trading_engine).
_LIVE_WORDINGS = (
    (re.compile(r"set paper_trading=False and allow_live=True \(CLI: --live\)"), "add --live"),
    (re.compile(r"\(paper_trading=False and allow_live=True, CLI --live\)"), "(--live)"),
    (re.compile(r"\(allow_live=True / --live\)"), "(--live)"),
    (re.compile(r"paper_trading=False needs allow_live=True as well \(CLI: --live\)"), "live trading needs --live"),
)
_SETTING = re.compile(r"\b(?:(set|use) )?(" + "|".join(_KEY_OPTIONS) + r")=(?:'([^']*)'|(\w+))")


def for_command_line(text: str, command: str, options: Collection[str]) -> str:
    """A library error's fix text, worded for ``slob COMMAND``: a setting the command has a
    flag for becomes the flag (``set data_type='delayed'`` -> ``add --data-type delayed``),
    one it reads from its config file becomes the file's key, and the live opt-in becomes
    ``--live`` -- each only where the command offers it; other texts are kept as they are."""
    if "--live" in options:
        for pattern, words in _LIVE_WORDINGS:
            text = pattern.sub(words, text)

    def setting(m: re.Match[str]) -> str:
        verb, key, value = m[1], m[2], m[3] if m[3] is not None else m[4]
        option = _KEY_OPTIONS[key]
        if option in options:
            return f"{'add ' if verb else ''}{option} {value}"
        if "--config" in options:
            return f"{verb + ' ' if verb else ''}{key} = {value!r} in the config file's [ib] section"
        return m[0]

    return _SETTING.sub(setting, text)


def positive(text: str) -> float:
    """A positive, finite number (minutes, days, seconds, speeds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def speed(text: str) -> float:
    if text.lower() in ("max", "inf", "fast"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed (a number, or 'max')") from None
    if value < 0 or math.isnan(value):
        raise argparse.ArgumentTypeError("speed is >= 0 (0 = paused, 'max' = as fast as possible)")
    return value


def when(text: str) -> dt.datetime:
    if text == "now":
        return dt.datetime.now(dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date/time (e.g. 2024-12-02T15:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def day(text: str) -> dt.date:
    """A CME trading day: ``YYYY-MM-DD``, ``today`` or ``yesterday``."""
    from slob.ops.report import trading_day

    lowered = text.lower()
    if lowered in ("today", "yesterday"):
        today = trading_day(dt.datetime.now(dt.timezone.utc))
        return today if lowered == "today" else today - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD, 'today' or 'yesterday')") from None


def money(x: float) -> str:
    """USD as the reports print it: signed, two decimals, ``0.00`` for nothing."""
    return f"{x:+,.2f}" if round(x, 2) else "0.00"


def percent(x: float | None, dash: str) -> str:
    """A fraction as a percentage with one decimal; ``dash`` when there is none."""
    return dash if x is None else f"{x * 100:.1f}%"


def add_store_location(p: argparse.ArgumentParser) -> None:
    """``--db PATH`` or ``--data-dir DIR``: the store a command reads (one of the two)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, default=None, metavar="PATH",
                       help="the SQLite store (default: slob.sqlite3 in $SLOB_DATA_DIR, else $XDG_DATA_HOME/slob, "
                            "else ~/.local/share/slob)")
    where.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                       help="the directory holding slob.sqlite3 (what `slob run --data-dir` wrote to)")
