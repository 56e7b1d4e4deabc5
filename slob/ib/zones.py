"""IB's time-zone names (``timeZoneId``, execution times) as zoneinfo zones.

IB has sent ``US/Central``, ``CST``, ``CST (Central Standard Time)`` and IANA names over
the years (../shared/TWS-FACTS.md §3); this is the one place that maps them.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slob.ib.errors import ConfigError

__all__ = ["ib_zone"]

# Names IB has put in timeZoneId over the years (TWS-FACTS §3), mapped to IANA zones.
ZONE_ALIASES = {
    "US/Central": "America/Chicago",
    "CST": "America/Chicago",
    "CST (Central Standard Time)": "America/Chicago",
    "US/Eastern": "America/New_York",
    "EST": "America/New_York",
    "EST (Eastern Standard Time)": "America/New_York",
    "US/Pacific": "America/Los_Angeles",
    "GMT": "Etc/GMT",
    "Europe/London": "Europe/London",
}



def ib_zone(name: str) -> ZoneInfo:
    """The zone IB names in ``timeZoneId`` (``US/Central``, ``CST``, an IANA name...)."""
    cleaned = (name or "").strip()
    try:
        return ZoneInfo(ZONE_ALIASES.get(cleaned, cleaned))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a key naming a directory of the zone database ("America") or too long
        raise ConfigError(f"unknown timeZoneId {name!r}; expected e.g. 'US/Central'") from None
