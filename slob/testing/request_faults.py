"""Request faults: a fault armed on FakeTWS to meet a client's request, and the record of
one that fired (``FakeTWS.reject_next_request`` and friends, ``FakeTWS.fired_faults``).

Records only, so that a session (:mod:`slob.testing.fake_session`) can read the fault it
meets without importing the server that armed it. :mod:`slob.testing.fake_tws` re-exports
both under their old names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["FiredFault", "RequestFault"]


@dataclass(frozen=True, slots=True)
class RequestFault:
    """A fault armed to meet the next request called ``name`` (IB's name, e.g.
    ``REQ_CONTRACT_DATA``) from ``client_id`` (None: any client), after letting ``skip``
    such requests pass. ``kind``: ``"reject"`` (answered with error ``code`` instead),
    ``"ignore"`` (never answered), ``"drop"`` (the socket closed right there, after the
    request was handled if ``answered``)."""

    kind: str
    name: str
    code: int = 0
    answered: bool = True
    skip: int = 0
    client_id: int | None = None


@dataclass(frozen=True, slots=True)
class FiredFault:
    """An armed :class:`RequestFault` that met its request: when (simulated ``at``,
    and ``time.monotonic_ns()``), on which client and session."""

    fault: RequestFault
    client_id: int | None
    session: int
    at: dt.datetime
    monotonic_ns: int
