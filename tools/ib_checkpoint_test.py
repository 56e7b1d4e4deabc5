#!/usr/bin/env python3
"""The original design's one-hour checkpoint: stream NQ from TWS / IB Gateway (paper) for
N minutes and write a PASS/FAIL report. The same as ``slob checkpoint --minutes N ...``.

    tools/ib_checkpoint_test.py 60                     # TWS paper on 127.0.0.1:7497
    tools/ib_checkpoint_test.py 60 --port 4002         # IB Gateway paper
    tools/ib_checkpoint_test.py 1 --sim                # embedded fake TWS, faults injected
    tools/ib_checkpoint_test.py 0.2 --sim --sim-fault restart-forever   # a FAIL, exit 3
    .venv/bin/python tools/ib_checkpoint_test.py 60    # straight with the venv's Python

The first argument, when it is not an option, is the number of minutes (default 60);
everything else goes to ``slob checkpoint`` (``--help`` lists it). Run it with any
Python 3: when slob or IB's ibapi cannot be imported, it re-runs itself under the
project's virtual environment, which tools/_bootstrap.sh creates or updates first, as
tools/demo does. Exit code: 0 PASS, 3 FAIL, 1 could not run, 2 bad arguments.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
_GUARD = "SLOB_CHECKPOINT_BOOTSTRAPPED"


def slob_argv(args: list[str]) -> list[str]:
    """``60 --sim`` -> ``checkpoint --minutes 60 --sim``."""
    if args and not args[0].startswith("-"):
        return ["checkpoint", "--minutes", args[0], *args[1:]]
    return ["checkpoint", *args]


def _reexec(args: list[str]) -> NoReturn:
    """Run this script again under the project's virtual environment: its Python straight
    away when the venv exists, else through tools/_bootstrap.sh, which creates it first."""
    stage = os.environ.get(_GUARD, "")
    me = str(Path(__file__).resolve())
    venv = Path(os.environ.get("SLOB_VENV") or ROOT / ".venv")
    python = venv / "bin" / "python"
    if not stage and python.exists() and Path(sys.executable).resolve() != python.resolve():
        os.environ[_GUARD] = "venv"
        os.execv(str(python), [str(python), me, *args])
    if stage != "bootstrap":
        os.environ[_GUARD] = "bootstrap"
        # _bootstrap.sh reads its optional argument (pip extras) as $1: source it with "".
        script = 'root=$1; shift; source "$root/tools/_bootstrap.sh" ""; exec python "$@"'
        os.execvp("bash", ["bash", "-c", script, "bash", str(ROOT), me, *args])
    sys.exit("ib_checkpoint_test: slob or IB's ibapi is still not importable in the virtual environment "
             f"{venv}; see docs/getting-started.md")


def main(args: list[str]) -> int:
    try:
        import ibapi  # noqa: F401  (IB's client, installed from vendor/ by the bootstrap)

        from slob.cli import main as slob_main
    except ImportError:
        _reexec(args)
    return slob_main(slob_argv(args))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
