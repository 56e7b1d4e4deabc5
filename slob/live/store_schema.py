"""Moved to :mod:`slob.store.schema`; this path still imports (a re-export, nothing else)."""

from slob.store.schema import (  # noqa: F401
    MIGRATIONS as MIGRATIONS,
    ROWS as ROWS,
    Row as Row,
    SCHEMA_VERSION as SCHEMA_VERSION,
    SQL as SQL,
    TABLES as TABLES,
    event_from_row as event_from_row,
    from_ns as from_ns,
    migrate as migrate,
    to_ns as to_ns,
)

__all__ = [
    "MIGRATIONS",
    "ROWS",
    "Row",
    "SCHEMA_VERSION",
    "SQL",
    "TABLES",
    "event_from_row",
    "from_ns",
    "migrate",
    "to_ns",
]
