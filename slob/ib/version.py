"""Which IB API client slob runs on, and whether it is one slob supports.

slob uses IB's official Python client (`ibapi`), installed either from the
hash-pinned ``vendor/requirements.txt`` (distribution ``ibapi-stable``) or
from IB's own TWS API installer (distribution ``ibapi``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from slob import IbapiMissing as IbapiMissing
from slob import ibapi_missing

#: The release slob is tested against (vendor/requirements.txt).
TESTED_IBAPI = (10, 50, 2)
#: The oldest release whose text protocol and Decoder slob relies on.
MINIMUM_IBAPI = (10, 30, 0)


@dataclass(frozen=True, slots=True)
class IbapiInfo:
    version: str  # as the package reports it, e.g. "10.50.02"
    parts: tuple[int, int, int]
    distribution: str  # "ibapi-stable", "ibapi" or "unknown"
    max_client_version: int  # highest server version the client offers in the handshake

    def __str__(self) -> str:
        return f"ibapi {self.version} ({self.distribution}, client max v{self.max_client_version})"


def ibapi_info() -> IbapiInfo:
    """Report the ibapi release in use; raise IbapiMissing with the fix if unusable."""
    try:
        import ibapi
        from ibapi.server_versions import MAX_CLIENT_VER
    except ImportError as exc:
        raise IbapiMissing(ibapi_missing() or f"IB's Python client cannot be imported ({exc})") from exc
    raw = getattr(ibapi, "VERSION", None)
    if isinstance(raw, dict):
        parts = (int(raw.get("major", 0)), int(raw.get("minor", 0)), int(raw.get("micro", 0)))
    else:
        parts = _parse(str(getattr(ibapi, "__version__", "0.0.0")))
    version = str(getattr(ibapi, "__version__", ".".join(map(str, parts))))
    distribution = "unknown"
    for name in ("ibapi-stable", "ibapi"):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        distribution = name
        break
    info = IbapiInfo(version, parts, distribution, int(MAX_CLIENT_VER))
    if parts < MINIMUM_IBAPI:
        raise IbapiMissing(
            f"{info} is older than slob supports (>= {'.'.join(map(str, MINIMUM_IBAPI))}); "
            "install the pinned copy from vendor/requirements.txt."
        )
    return info


def _parse(text: str) -> tuple[int, int, int]:
    nums = [int(p) for p in text.split(".")[:3] if p.isdigit()]
    nums += [0] * (3 - len(nums))
    return (nums[0], nums[1], nums[2])
