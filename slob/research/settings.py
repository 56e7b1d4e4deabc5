"""``--set key=value``: any field of the strategy (:class:`SetupConfig`), the engine's risk
rules (:class:`RiskConfig`) or the fill model (:class:`FillConfig`), by its name.

Values are parsed as the field's type (int, float, bool, or float-or-none); the configs'
own checks then refuse what makes no sense, with a ConfigError saying why. ``tick_size``
belongs to the tracker and the fill model alike and sets both.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

from slob.ib.errors import ConfigError
from slob.config.risk_config import RiskConfig
from slob.config.setup_config import SetupConfig
from slob.research.backtest import BacktestConfig
from slob.research.fills import FillConfig

__all__ = ["KEYS", "apply_settings", "parse_setting"]

_GROUPS: tuple[tuple[str, type], ...] = (("setup", SetupConfig), ("risk", RiskConfig), ("fills", FillConfig))
#: Every settable key -> the configs (attribute names of BacktestConfig) it belongs to.
KEYS: Mapping[str, tuple[str, ...]] = {
    **{name: tuple(g for g, cls in _GROUPS if name in {f.name for f in dataclasses.fields(cls)})
       for _, cls in _GROUPS for name in (f.name for f in dataclasses.fields(cls))},
    "exact_ticks": (),
}


def parse_setting(text: str) -> tuple[str, str]:
    """``key=value`` -> (key, value); ConfigError naming the known keys otherwise."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key or not value.strip():
        raise ConfigError(f"--set takes key=value, got {text!r}")
    if key not in KEYS:
        raise ConfigError(f"--set {key}: no such setting; known: {', '.join(sorted(KEYS))}")
    return key, value.strip()


def _convert(key: str, value: str, current: Any) -> Any:
    lowered = value.lower()
    if isinstance(current, bool):
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={value}: expected true or false")
    if lowered in ("none", "default", "") and key in ("commission", "multiplier"):
        return None
    try:
        if isinstance(current, int):
            return int(value)
        return float(value)
    except ValueError:
        kind = "a whole number" if isinstance(current, int) else "a number"
        raise ConfigError(f"--set {key}={value}: expected {kind}") from None


def apply_settings(config: BacktestConfig, settings: Iterable[str | tuple[str, str]]) -> BacktestConfig:
    """``config`` with every ``key=value`` applied, in order."""
    parts: dict[str, dict[str, Any]] = {"setup": {}, "risk": {}, "fills": {}}
    top: dict[str, Any] = {}
    for item in settings:
        key, value = parse_setting(item) if isinstance(item, str) else item
        if key == "exact_ticks":
            top[key] = _convert(key, value, config.exact_ticks)
            continue
        for group in KEYS[key]:
            current = getattr(getattr(config, group), key)
            if current is None:  # float-or-none fields (commission, multiplier)
                current = 0.0
            parts[group][key] = _convert(key, value, current)
    changes = {group: dataclasses.replace(getattr(config, group), **values)
               for group, values in parts.items() if values}
    return dataclasses.replace(config, **changes, **top)
