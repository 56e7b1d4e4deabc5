"""slob: real-time NQ futures from Interactive Brokers through IB's own ibapi
client, for the 5/1 SLOB liquidity-sweep strategy, paper trading first.

Importing ``slob`` itself needs nothing but the standard library, so the ``slob``
command can always start and say what is missing. :func:`require_ibapi` is the one
check for IB's client: ``slob.live`` calls it on import and the command line on every
command that connects.
"""

from __future__ import annotations

import importlib.util
import sys
from types import TracebackType

__version__ = "0.1.0"

#: The IB client release a plain ``pip install`` brings (setup.cfg, vendor/requirements.txt).
IBAPI_REQUIREMENT = "ibapi-stable==10.50.2"
PROTOBUF_REQUIREMENT = "protobuf>=5.29.5,<6"


class IbapiMissing(ImportError):
    """IB's ibapi package cannot be imported or is too old for slob.

    Defined here, at the bottom of the house, so that :func:`require_ibapi` raises it
    without importing upward; :mod:`slob.ib.version` re-exports it under its old name."""


def ibapi_missing() -> str:
    """Empty when IB's client and its protobuf runtime can be imported; otherwise one
    line saying what to install."""
    if _missing("ibapi"):
        return (f"IB's Python client (ibapi) is not installed: pip install '{IBAPI_REQUIREMENT}' (what "
                "`pip install slob` brings), or keep IB's own installer's copy as vendor/README.md says")
    if _missing("google.protobuf"):
        return (f"IB's client needs protobuf, which is not installed: pip install '{PROTOBUF_REQUIREMENT}' "
                "(or the release IB's notes name for your ibapi)")
    return ""


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        return True


def require_ibapi() -> None:
    """Raise :class:`IbapiMissing` (an ImportError) with one line saying
    what to install, if IB's client cannot be imported.

    When nobody catches it, the process ends with that line alone on stderr (exit 1), not
    a traceback: the message is the whole story. Code that catches ImportError (an optional
    import, ``pytest.importorskip``) sees an ordinary ImportError."""
    problem = ibapi_missing()
    if not problem:
        return
    _install_one_line_hook(IbapiMissing)
    raise IbapiMissing(problem, name="ibapi")


def _install_one_line_hook(kind: type[BaseException]) -> None:
    """Show an uncaught ``kind`` as ``slob: <message>``; every other exception as before."""
    previous = sys.excepthook
    if getattr(previous, "_slob_one_line", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, kind):
            print(f"slob: {exc}", file=sys.stderr)
        else:
            previous(exc_type, exc, tb)

    hook._slob_one_line = True  # type: ignore[attr-defined]
    sys.excepthook = hook
