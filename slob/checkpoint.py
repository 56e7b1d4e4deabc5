"""Moved to :mod:`slob.ops.checkpoint`; this path still imports (a re-export, nothing else)."""

from slob.ops.checkpoint import (  # noqa: F401
    CheckpointRecorder as CheckpointRecorder,
    ClockMap as ClockMap,
    Criterion as Criterion,
    FORMAT as FORMAT,
    GapMeter as GapMeter,
    Outage as Outage,
    OutageLog as OutageLog,
    QuietPeriod as QuietPeriod,
    evaluate as evaluate,
    explain as explain,
    open_segments as open_segments,
    render_text as render_text,
)

__all__ = [
    "CheckpointRecorder",
    "ClockMap",
    "Criterion",
    "FORMAT",
    "GapMeter",
    "Outage",
    "OutageLog",
    "QuietPeriod",
    "evaluate",
    "explain",
    "open_segments",
    "render_text",
]
