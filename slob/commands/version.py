"""`slob version`: slob's version and the IB API client it runs on."""

from __future__ import annotations

import argparse
from typing import TextIO

from slob import __version__
from slob.commands.common import EXIT_FAIL, EXIT_OK

NAME = "version"
HELP = "print slob's version and the IB API client in use"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, out: TextIO) -> int:
    from slob.ib.version import IbapiMissing, ibapi_info

    print(f"slob {__version__}", file=out)
    try:
        print(str(ibapi_info()), file=out)
    except IbapiMissing as exc:
        print(f"IB API client: {exc}", file=out)
        return EXIT_FAIL
    return EXIT_OK
