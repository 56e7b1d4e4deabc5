"""The soak tests. The one that runs a whole soak is marked ``soak`` (deselect it locally
with ``-m "not soak"``; CI runs it)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: runs `slob soak` end to end (a minute or two; CI runs it)")
