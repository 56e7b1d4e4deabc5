"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
import math

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "EXIT_VERDICT_FAIL", "positive", "speed", "when"]

#: Exit codes every command uses (documented in docs/reference/cli.md).
EXIT_OK = 0
EXIT_FAIL = 1  # an error slob explains on stderr (TWS not running, bad config...)
EXIT_USAGE = 2  # bad arguments (argparse)
EXIT_VERDICT_FAIL = 3  # a checkpoint ran but its verdict is FAIL


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
