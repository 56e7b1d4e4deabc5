"""The `slob` command: each subcommand lives in its own module under slob.commands.

Exit codes: 0 success, 1 an error slob explains on stderr, 2 bad arguments, 3 a checkpoint
or soak whose verdict is FAIL, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType
from typing import Sequence, TextIO

from slob.commands.common import EXIT_FAIL
from slob.ib.errors import SlobError

__all__ = ["COMMANDS", "main"]

#: Subcommand modules, in the order --help lists them.
COMMANDS = ("demo", "run", "checkpoint", "report", "contracts", "history", "sim", "soak", "trace", "decode",
            "bench", "version")


def _modules() -> list[ModuleType]:
    return [importlib.import_module(f"slob.commands.{name}") for name in COMMANDS]


def _parser(modules: list[ModuleType]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slob", description="NQ futures from Interactive Brokers, paper trading first.",
                                epilog="exit codes: 0 ok, 1 error (explained on stderr), 2 bad arguments, "
                                       "3 checkpoint or soak verdict FAIL, 130 interrupted")
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"],
                   help="logging level (DEBUG shows protocol traffic; default WARNING)")
    sub = p.add_subparsers(dest="command", required=True)
    for module in modules:
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
    return p


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    modules = _modules()
    args = _parser(modules).parse_args(argv)
    stream = out or sys.stdout
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    command = next(m for m in modules if m.NAME == args.command)
    try:
        code: int = command.run(args, stream)
        return code
    except KeyboardInterrupt:
        return 130
    except SlobError as exc:
        print(f"slob: {exc}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    raise SystemExit(main())
