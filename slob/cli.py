"""The `slob` command: each subcommand lives in its own module under slob.commands.

Exit codes: 0 success, 1 an error slob explains on stderr, 2 bad arguments, 3 a checkpoint
or soak whose verdict is FAIL, 130 interrupted, 141 the output was closed early (piped
into ``head``).

Every error leaves as one line on stderr, ``slob: ...``, never a traceback: a
:class:`~slob.ib.errors.SlobError` (its fix text worded for the command line:
:func:`slob.commands.common.for_command_line`), IB's client missing (:func:`slob.require_ibapi`),
or a closed pipe (silently: the reader has what it wanted).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType
from typing import Sequence, TextIO

from slob import ibapi_missing
from slob.commands.common import EXIT_FAIL, EXIT_PIPE, for_command_line
from slob.ib.errors import SlobError

__all__ = ["COMMANDS", "main"]

#: Subcommand modules, in the order --help lists them.
COMMANDS = ("demo", "run", "checkpoint", "report", "backtest", "sweep", "chart", "export", "contracts", "history", "sim",
            "soak", "trace", "decode", "bench", "version")
#: Commands that report a missing IB client themselves (``slob version`` still prints slob's version).
_OWN_IBAPI_CHECK = ("version",)


def _modules() -> list[ModuleType | _Unavailable]:
    modules: list[ModuleType | _Unavailable] = []
    for name in COMMANDS:
        try:
            modules.append(importlib.import_module(f"slob.commands.{name}"))
        except ImportError as exc:  # its options come from modules that need IB's client
            if not ibapi_missing():
                raise
            modules.append(_Unavailable(name, exc))
    return modules


class _Unavailable:
    """A command whose module cannot be imported without IB's client: listed by --help,
    and running it says what to install (main checks before running any command)."""

    def __init__(self, name: str, error: ImportError) -> None:
        self.NAME, self.error = name, error
        self.HELP = f"(needs IB's client ibapi, not installed: see `slob {name}`)"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        pass  # main accepts any arguments for it, then says what to install

    def run(self, args: argparse.Namespace, out: TextIO) -> int:
        raise self.error


def _parser(modules: list[ModuleType | _Unavailable]) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    p = argparse.ArgumentParser(prog="slob", description="NQ futures from Interactive Brokers, paper trading first.",
                                epilog="exit codes: 0 ok, 1 error (explained on stderr), 2 bad arguments, "
                                       "3 checkpoint or soak verdict FAIL, 130 interrupted, "
                                       "141 output closed early (e.g. piped into head)")
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"],
                   help="logging level (DEBUG shows protocol traffic; default WARNING)")
    sub = p.add_subparsers(dest="command", required=True)
    commands = {}
    for module in modules:
        command = commands[module.NAME] = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
    return p, commands


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    modules = _modules()
    parser, commands = _parser(modules)
    args, extra = parser.parse_known_args(argv)
    command = next(m for m in modules if m.NAME == args.command)
    if extra and not isinstance(command, _Unavailable):  # what parse_args says
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    stream = out or sys.stdout
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    options = frozenset(commands[args.command]._option_string_actions)
    try:
        if args.command not in _OWN_IBAPI_CHECK and (missing := ibapi_missing()):
            print(f"slob: {missing}", file=sys.stderr)
            return EXIT_FAIL
        code: int = command.run(args, stream)
        stream.flush()  # here, not at exit: a reader gone early (| head) is this function's to report
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_PIPE
    except SlobError as exc:
        print(f"slob: {for_command_line(str(exc), args.command, options)}", file=sys.stderr)
        return EXIT_FAIL
    except ImportError as exc:  # IB's client half-installed, e.g. a submodule or protobuf missing
        if not (exc.name or "").startswith(("ibapi", "google")):
            raise
        print(f"slob: {ibapi_missing() or f'IB client import failed ({exc})'}", file=sys.stderr)
        return EXIT_FAIL


def _discard_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null: the interpreter's final flush would
    otherwise fail again and print 'Exception ignored ... BrokenPipeError'."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's StringIO)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
