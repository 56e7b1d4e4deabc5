"""The grid file of ``slob sweep``: which settings to try, and the walk-forward windows.

A TOML file::

    [base]                       # optional: settings every combination shares (as --set)
    slippage_ticks = 1

    [grid]                       # each key: a SetupConfig, RiskConfig or fill-model field
    min_risk_reward = [1.0, 1.5, 2.0]                            # a list of values
    no_wick_max_fraction = { from = 0.1, to = 0.3, step = 0.05 } # a range, both ends included
    entry_wait_max_candles = { from = 3, to = 7 }                # whole numbers step by 1
    stop_buffer_points = 1.0                                     # one value

    [walk_forward]               # optional
    in_sample_days = 60          # CME trading days of data
    out_of_sample_days = 20
    step_days = 20               # default: out_of_sample_days
    anchored = false             # true: every in-sample window starts at the first day
    overfit_ratio = 0.5          # warn when out-of-sample P&L/day < this x in-sample's

Keys are the ``--set`` keys of ``slob backtest`` (:mod:`slob.research.settings`); values
keep the text they have in the file, so that ``0.15`` stays ``0.15`` in the results table.
Ranges step in decimal arithmetic for the same reason (0.1 + 0.05 is 0.15 here, not
0.15000000000000002). The combinations are the cartesian product in the file's key order,
the last key varying fastest.

Pure: :func:`parse_grid` reads text and refuses, with a ConfigError naming the key and the
fix, anything it cannot use.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterator, Mapping

from slob.ib.errors import ConfigError
from slob.research.settings import KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - setup.cfg installs tomli below 3.11
    import tomli as tomllib

__all__ = ["Grid", "WalkForward", "MAX_COMBINATIONS", "load_grid", "parse_grid"]

#: More combinations than this is almost certainly a typo in a range (a step of 0.0001).
MAX_COMBINATIONS = 100_000
#: Values one range may produce at most.
_MAX_RANGE_VALUES = 10_000
_TABLES = ("base", "grid", "walk_forward")
_WF_KEYS = ("in_sample_days", "out_of_sample_days", "step_days", "anchored", "overfit_ratio")


@dataclass(frozen=True, slots=True)
class WalkForward:
    """Rolling (or anchored) in-sample / out-of-sample windows, in CME trading days of the
    data. Fold k's in-sample window starts at day ``k * step_days`` (``anchored``: at day
    0) and ends just before its out-of-sample window, which is ``out_of_sample_days``
    long."""

    in_sample_days: int
    out_of_sample_days: int
    step_days: int
    anchored: bool = False
    overfit_ratio: float = 0.5

    def __post_init__(self) -> None:
        for name in ("in_sample_days", "out_of_sample_days", "step_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"[walk_forward] {name} must be a whole number of trading days >= 1, got {value!r}")
        if not 0 <= self.overfit_ratio <= 1:
            raise ConfigError(f"[walk_forward] overfit_ratio must be within 0..1, got {self.overfit_ratio!r}")

    def folds(self, days: int) -> list[tuple[range, range]]:
        """(in-sample, out-of-sample) index ranges into ``days`` trading days: only whole
        folds; the days after the last whole fold are not used."""
        out: list[tuple[range, range]] = []
        k = 0
        while True:
            start = k * self.step_days
            oos_start = start + self.in_sample_days
            oos_end = oos_start + self.out_of_sample_days
            if oos_end > days:
                return out
            out.append((range(0 if self.anchored else start, oos_start), range(oos_start, oos_end)))
            k += 1


@dataclass(frozen=True, slots=True)
class Grid:
    """The parsed grid: ``axes`` maps each key to its values (as text, in file order),
    ``base`` the settings shared by every combination."""

    axes: tuple[tuple[str, tuple[str, ...]], ...]
    base: tuple[tuple[str, str], ...] = ()
    walk_forward: WalkForward | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.axes)

    @property
    def size(self) -> int:
        n = 1
        for _, values in self.axes:
            n *= len(values)
        return n

    def combinations(self) -> Iterator[tuple[tuple[str, str], ...]]:
        """Every combination as ((key, value), ...), the last key varying fastest."""
        keys = self.keys
        for values in itertools.product(*(v for _, v in self.axes)):
            yield tuple(zip(keys, values))


def load_grid(path: Path) -> Grid:
    if not path.is_file():
        raise ConfigError(f"no grid file at {path}; see docs/tuning.md for its shape ([grid] key = [values])")
    return parse_grid(path.read_text(encoding="utf-8"), str(path))


def parse_grid(text: str, where: str = "the grid file") -> Grid:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - set(_TABLES))
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) or key(s) {', '.join(unknown)}; it holds [grid], and optionally "
                          "[base] and [walk_forward]")
    grid = doc.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{where}: no [grid] table; give it at least one key, e.g. min_risk_reward = [1.0, 1.5, 2.0]")
    axes = tuple((_key(key, "grid", where), _values(key, value, where)) for key, value in grid.items())
    base_table = doc.get("base", {})
    if not isinstance(base_table, dict):
        raise ConfigError(f"{where}: base must be a table, [base]")
    base = tuple((_key(key, "base", where), _scalar(key, value, where)) for key, value in base_table.items())
    both = sorted(set(dict(axes)) & set(dict(base)))
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} in both [grid] and [base]; keep it in one of them")
    out = Grid(axes, base, _walk_forward(doc.get("walk_forward"), where))
    if out.size > MAX_COMBINATIONS:
        raise ConfigError(f"{where}: {out.size:,} combinations (more than {MAX_COMBINATIONS:,}); check the ranges' "
                          "steps, or split the grid")
    return out


def _key(key: str, table: str, where: str) -> str:
    name = key.strip().replace("-", "_")
    if name == "exact_ticks":
        raise ConfigError(f"{where}: [{table}] exact_ticks: a sweep runs on candles alone (ticks stay on the machine "
                          "that stored them); leave it out")
    if name not in KEYS:
        raise ConfigError(f"{where}: [{table}] {key}: no such setting; known: {', '.join(sorted(KEYS))}")
    return name


def _scalar(key: str, value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # the shortest text that reads back as the number
    if isinstance(value, str) and value.strip().lower() in ("none", "default"):
        return "none"
    raise ConfigError(f"{where}: {key} = {value!r}: expected a number or true/false")


def _values(key: str, value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{where}: [grid] {key} = []: give at least one value")
        values = tuple(_scalar(key, v, where) for v in value)
    elif isinstance(value, dict):
        values = _range(key, value, where)
    else:
        values = (_scalar(key, value, where),)
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ConfigError(f"{where}: [grid] {key} lists {', '.join(dupes)} more than once")
    return values


def _range(key: str, spec: Mapping[str, Any], where: str) -> tuple[str, ...]:
    extra = sorted(set(spec) - {"from", "to", "step"})
    if extra or "from" not in spec or "to" not in spec:
        raise ConfigError(f"{where}: [grid] {key}: a range is {{ from = A, to = B, step = S }} (step optional for "
                          f"whole numbers); got {dict(spec)!r}")
    ends = (spec["from"], spec["to"], spec.get("step", 1))
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in ends):
        raise ConfigError(f"{where}: [grid] {key}: from, to and step must be numbers, got {dict(spec)!r}")
    if "step" not in spec and not all(isinstance(x, int) for x in ends[:2]):
        raise ConfigError(f"{where}: [grid] {key}: a range of decimals needs a step, e.g. step = 0.05")
    try:
        first, last, step = (Decimal(repr(x)) for x in ends)
    except InvalidOperation:  # pragma: no cover - TOML numbers always read back
        raise ConfigError(f"{where}: [grid] {key}: {dict(spec)!r} is not a range of numbers") from None
    if not step > 0 or not step.is_finite() or not first.is_finite() or not last.is_finite():
        raise ConfigError(f"{where}: [grid] {key}: step must be a positive number, got {spec.get('step')!r}")
    if last < first:
        raise ConfigError(f"{where}: [grid] {key}: from {spec['from']!r} is above to {spec['to']!r}")
    count = int((last - first) / step) + 1
    if count > _MAX_RANGE_VALUES:
        raise ConfigError(f"{where}: [grid] {key}: {count:,} values (more than {_MAX_RANGE_VALUES:,}); use a bigger "
                          "step")
    whole = all(isinstance(x, int) for x in ends)
    return tuple(str(int(first + i * step)) if whole else _decimal_text(first + i * step) for i in range(count))


def _decimal_text(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return text if "." in text else text + ".0"


def _walk_forward(table: Any, where: str) -> WalkForward | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: walk_forward must be a table, [walk_forward]")
    unknown = sorted(set(table) - set(_WF_KEYS))
    if unknown:
        raise ConfigError(f"{where}: [walk_forward] {', '.join(unknown)}: unknown; known: {', '.join(_WF_KEYS)}")
    missing = [k for k in ("in_sample_days", "out_of_sample_days") if k not in table]
    if missing:
        raise ConfigError(f"{where}: [walk_forward] needs {' and '.join(missing)} (CME trading days)")
    ratio = table.get("overfit_ratio", 0.5)
    anchored = table.get("anchored", False)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ConfigError(f"{where}: [walk_forward] overfit_ratio must be a number within 0..1, got {ratio!r}")
    if not isinstance(anchored, bool):
        raise ConfigError(f"{where}: [walk_forward] anchored must be true or false, got {anchored!r}")
    step = table["step_days"] if "step_days" in table else table["out_of_sample_days"]
    return WalkForward(table["in_sample_days"], table["out_of_sample_days"], step, anchored, float(ratio))
