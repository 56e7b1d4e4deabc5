"""Moved to :mod:`slob.strategy.setup_planting`; this path still imports (a re-export, nothing else)."""

from slob.strategy.setup_planting import (  # noqa: F401
    OUTCOMES as OUTCOMES,
    PlantedSetup as PlantedSetup,
    plant_setup as plant_setup,
)

__all__ = [
    "OUTCOMES",
    "PlantedSetup",
    "plant_setup",
]
