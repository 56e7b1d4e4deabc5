"""`slob version`: slob's version and the IB API client it runs on.

It also says when two distributions of IB's client are installed at once: IB's installer
(``ibapi``) and the PyPI republication (``ibapi-stable``) write the same ``ibapi/``
folder, so a plain ``pip install`` of slob over IB's copy replaces its files without a
word from pip. The line names which one's files are in place and how to go back.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from base64 import urlsafe_b64encode
from importlib import metadata
from typing import TextIO

from slob import IBAPI_REQUIREMENT, __version__, ibapi_missing
from slob.commands.common import EXIT_FAIL, EXIT_OK

NAME = "version"
HELP = "print slob's version and the IB API client in use"
#: The two distributions that install the package ``ibapi``.
DISTRIBUTIONS = ("ibapi-stable", "ibapi")


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, out: TextIO) -> int:
    print(f"slob {__version__}", file=out)
    missing = ibapi_missing()
    if missing:
        print(f"slob: {missing}", file=sys.stderr)
        return EXIT_FAIL
    from slob.ib.version import IbapiMissing, ibapi_info

    try:
        info = ibapi_info()
    except IbapiMissing as exc:
        print(f"slob: {exc}", file=sys.stderr)
        return EXIT_FAIL
    owner = files_owner()
    print(str(info) if owner is None else f"ibapi {info.version} ({owner}, client max v{info.max_client_version})",
          file=out)
    both = both_installed(owner)
    if both:
        print(f"slob: {both}", file=sys.stderr)
    return EXIT_OK


def files_owner() -> str | None:
    """The distribution whose recorded files are the ``ibapi`` package on disk: the one
    whose RECORD hashes match ``ibapi/client.py`` (None: neither, or no record)."""
    for name in DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for path in dist.files or ():
            if path.as_posix() != "ibapi/client.py" or path.hash is None or path.hash.mode != "sha256":
                continue
            try:
                data = Path(path.locate()).read_bytes()
            except OSError:
                continue
            if urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode() == path.hash.value:
                return name
    return None


def both_installed(owner: str | None) -> str:
    """Empty unless IB's installer's ``ibapi`` and ``ibapi-stable`` are both installed."""
    versions = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if len(versions) < 2:
        return ""
    active = f"the files in place are {owner}'s" if owner else "the files in place may be a mix of both"
    return (f"two IB clients are installed over one ibapi/ folder: IB's installer's ibapi {versions['ibapi']} and "
            f"ibapi-stable {versions['ibapi-stable']}; {active}. Keep one: to keep IB's, "
            "`pip uninstall ibapi-stable ibapi`, then reinstall from IBJts/source/pythonclient (vendor/README.md); "
            f"to keep ibapi-stable, `pip uninstall ibapi ibapi-stable && pip install '{IBAPI_REQUIREMENT}'`")
