"""Settings for ``slob run``: defaults < config file (TOML) < ``SLOB_*`` environment < flags.

Four sections, one per configuration record::

    [ib]      IBConfig fields (host, port, client_id, account, data_type, tick_source, ...)
    [engine]  symbols, data_dir, db, candle_intervals, trade, store_ticks
    [risk]    RiskConfig fields (contracts, max_position, max_daily_loss)
    [setup]   SetupConfig fields (every threshold of the strategy)

Every key ``K`` of section ``S`` is also the environment variable ``SLOB_<S>_<K>``
(upper case: ``SLOB_IB_PORT``, ``SLOB_RISK_MAX_DAILY_LOSS``); ``SLOB_DATA_DIR`` is
accepted for ``engine.data_dir`` (the store reads it too). ``SLOB_CONFIG`` names the config
file when no ``--config`` is given. Environment values are text and are coerced to the
key's type; lists are comma-separated. The live-trading opt-in is not a setting: it comes
from ``--live`` only (``paper_trading`` / ``allow_live`` in a file or the environment are
refused).

Everything here except :func:`read_config_file` is pure: the environment and the flags
are passed in, nothing is read from the process. Any unknown section or key, wrong type or
out-of-range value raises :class:`~slob.ib.errors.ConfigError` naming where the value came
from (file, environment variable or flag), the section, the key, and what is accepted.
A live port or non-paper account without ``live=True`` raises
:class:`~slob.ib.errors.LiveTradingRefused`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from slob.config.ib_config import DATA_TYPES, TICK_SOURCES, IBConfig
from slob.config.risk_config import RiskConfig
from slob.config.setup_config import SetupConfig
from slob.ib.errors import ConfigError, LiveTradingRefused

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - setup.cfg installs tomli below 3.11
    import tomli as tomllib

__all__ = [
    "ENV_ALIASES",
    "EngineConfig",
    "FLAGS",
    "Flag",
    "KEYS",
    "Key",
    "RunConfig",
    "SECTIONS",
    "config_path",
    "load_config",
    "merge",
    "parse_flag",
    "parse_toml",
    "read_config_file",
]

SECTIONS = ("ib", "engine", "risk", "setup")
#: Set only by ``--live`` (see :func:`merge`), never from a file or the environment.
LIVE_SWITCHES = ("paper_trading", "allow_live")
CONFIG_ENV = "SLOB_CONFIG"
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "path": "a path (a string)",
    "symbols": "a list of symbols (TOML array of strings; in text, comma-separated: NQ,ES)",
    "ints": "a list of whole seconds (TOML array of integers; in text, comma-separated: 60,300)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """What the engine runs on: the ``[engine]`` section."""

    symbols: tuple[str, ...] = ("NQ",)
    data_dir: Path | None = None  # the store goes to data_dir/slob.sqlite3 (see slob.store.store)
    db: Path | None = None  # the store file itself; wins over data_dir
    candle_intervals: tuple[int, ...] = (60, 300)
    trade: bool = True  # False: data and setups only, no orders
    store_ticks: bool = True

    def __post_init__(self) -> None:
        if not self.symbols or any(not s for s in self.symbols):
            raise ConfigError("symbols needs at least one non-empty symbol, e.g. NQ")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"symbols repeat: {', '.join(self.symbols)}")
        if any(i <= 0 for i in self.candle_intervals) or len(set(self.candle_intervals)) != len(self.candle_intervals):
            raise ConfigError("candle_intervals must be distinct positive whole seconds, e.g. [60, 300]")
        if 60 not in self.candle_intervals:
            raise ConfigError("candle_intervals must include 60: the setup tracker works on 1-minute candles")


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: ``[section] name`` in the file, ``SLOB_<SECTION>_<NAME>`` in the environment."""

    section: str
    name: str
    kind: str  # int, float, str, bool, path, symbols, ints
    default: Any
    choices: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"SLOB_{self.section.upper()}_{self.name.upper()}"

    @property
    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return _KIND_TEXT[self.kind]


def _record_keys(section: str, record: type, skip: tuple[str, ...] = (),
                 choices: Mapping[str, tuple[str, ...]] | None = None) -> tuple[Key, ...]:
    keys = []
    for f in dataclasses.fields(record):
        if f.name in skip:
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if kind not in ("int", "float", "str", "bool"):  # pragma: no cover - a new field of another type
            raise TypeError(f"{record.__name__}.{f.name}: type {f.type!r} needs a loader kind")
        keys.append(Key(section, f.name, kind, f.default, (choices or {}).get(f.name, ())))
    return tuple(keys)


_ENGINE = EngineConfig()
KEYS: dict[str, tuple[Key, ...]] = {
    "ib": _record_keys("ib", IBConfig, skip=LIVE_SWITCHES,
                       choices={"data_type": DATA_TYPES, "tick_source": TICK_SOURCES}),
    "engine": (
        Key("engine", "symbols", "symbols", _ENGINE.symbols),
        Key("engine", "data_dir", "path", None),
        Key("engine", "db", "path", None),
        Key("engine", "candle_intervals", "ints", _ENGINE.candle_intervals),
        Key("engine", "trade", "bool", True),
        Key("engine", "store_ticks", "bool", True),
    ),
    "risk": _record_keys("risk", RiskConfig),
    "setup": _record_keys("setup", SetupConfig),
}
_BY_DOTTED = {k.dotted: k for keys in KEYS.values() for k in keys}
_BY_ENV = {k.env: k for k in _BY_DOTTED.values()}
#: Other environment names for a key (the store already reads SLOB_DATA_DIR).
ENV_ALIASES = {"SLOB_DATA_DIR": "engine.data_dir"}


@dataclass(frozen=True, slots=True)
class Flag:
    """A command-line flag of ``slob run`` that sets a key."""

    option: str
    dotted: str
    metavar: str
    help: str

    @property
    def key(self) -> Key:
        return _BY_DOTTED[self.dotted]


FLAGS = (
    Flag("--host", "ib.host", "HOST", "TWS/Gateway host (default 127.0.0.1)"),
    Flag("--port", "ib.port", "PORT", "API port: 7497 TWS paper (default), 4002 Gateway paper; 7496/4001 are live"),
    Flag("--client-id", "ib.client_id", "N", "API client id, unique per session (default 1)"),
    Flag("--account", "ib.account", "ID", "IB account id, e.g. DU1234567 (default: the login's)"),
    Flag("--data-type", "ib.data_type", "TYPE", "realtime (default) or delayed (15-minute delayed data)"),
    Flag("--tick-source", "ib.tick_source", "SOURCE",
         "tick_by_tick (default) or market_data (default with --data-type delayed)"),
    Flag("--roll-days", "ib.roll_days_before_expiry", "DAYS",
         "roll to the next contract DAYS before expiry (default 8)"),
    Flag("--symbols", "engine.symbols", "LIST", "comma-separated symbols (default NQ)"),
    Flag("--data-dir", "engine.data_dir", "DIR", "store directory (default $SLOB_DATA_DIR or ~/.local/share/slob)"),
    Flag("--db", "engine.db", "FILE", "store file (default DATA_DIR/slob.sqlite3)"),
    Flag("--contracts", "risk.contracts", "N", "contracts per trade (default 1)"),
    Flag("--max-position", "risk.max_position", "N", "contracts open at most (default 1)"),
    Flag("--max-daily-loss", "risk.max_daily_loss", "USD",
         "no new entries after this realized loss today (default 1000)"),
)
_FLAG_NAMES = {f.dotted: f.option for f in FLAGS} | {"engine.trade": "--trade/--no-trade"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """Everything ``slob run`` needs, validated."""

    ib: IBConfig
    engine: EngineConfig
    risk: RiskConfig
    setup: SetupConfig
    config_file: Path | None = None
    #: Where each value came from: "default", "config file PATH", "environment SLOB_IB_PORT", "--port".
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return not self.ib.paper_trading


# -- values ------------------------------------------------------------------------------


class _Bad(Exception):
    """A value of the wrong shape; the caller adds where it came from."""


def _show(value: object) -> str:
    if isinstance(value, (str, bool)) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _Bad("a finite number")
    return value


def _symbols(items: list[Any]) -> tuple[str, ...]:
    if not all(isinstance(s, str) for s in items):
        raise _Bad(_KIND_TEXT["symbols"])
    out = tuple(" ".join(s.split()).upper() for s in items)
    if not out or not all(out):
        raise _Bad("at least one non-empty symbol, e.g. NQ")
    return out


def _ints(items: list[Any]) -> tuple[int, ...]:
    if not items or not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        raise _Bad(_KIND_TEXT["ints"])
    return tuple(items)


def _typed(key: Key, value: object, base: Path | None = None) -> object:
    """A value that already has a type (TOML, or a flag parsed by argparse)."""
    kind = key.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(float(value))
    elif kind == "str":
        if isinstance(value, str):
            if key.choices and value not in key.choices:
                raise _Bad(key.expected)
            return value
    elif kind == "path":
        if isinstance(value, Path):
            value = str(value)
        if isinstance(value, str):
            if not value.strip():
                raise _Bad("a non-empty path")
            path = Path(value).expanduser()
            return base / path if base is not None and not path.is_absolute() else path
    elif kind == "symbols":
        if isinstance(value, str):
            return _text(key, value)
        if isinstance(value, (list, tuple)):
            return _symbols(list(value))
    elif kind == "ints":
        if isinstance(value, (list, tuple)):
            return _ints(list(value))
    raise _Bad(key.expected)


def _text(key: Key, text: str) -> object:
    """A value from the environment or a flag: text coerced to the key's type."""
    kind, raw = key.kind, text.strip()
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return _finite(float(raw))
        if kind == "bool":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise _Bad("true or false (also yes/no, on/off, 1/0)")
        if kind == "symbols":
            return _symbols(raw.split(","))
        if kind == "ints":
            return _ints([int(p) for p in raw.split(",")])
    except ValueError:
        raise _Bad(key.expected) from None
    return _typed(key, raw)


def parse_flag(dotted: str, text: str) -> object:
    """A flag's text as the key's value (argparse's ``type=``); ConfigError if malformed."""
    key = _BY_DOTTED[dotted]
    try:
        return _text(key, text)
    except _Bad as bad:
        raise ConfigError(f"expected {bad}") from None


# -- layers ------------------------------------------------------------------------------

Layer = dict[str, tuple[object, str]]  # dotted key -> (value, source)


def _accepted(section: str) -> str:
    return ", ".join(sorted(k.name for k in KEYS[section]))


def config_path(config_file: str | Path | None, env: Mapping[str, str]) -> tuple[Path, str] | None:
    """The config file to read and why: ``--config``, else ``$SLOB_CONFIG``, else none."""
    if config_file is not None and str(config_file):
        return Path(config_file).expanduser(), "--config"
    named = env.get(CONFIG_ENV, "").strip()
    return (Path(named).expanduser(), CONFIG_ENV) if named else None


def read_config_file(path: Path, why: str = "--config") -> Layer:
    """Read and check a TOML config file (the loader's only I/O)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} (from {why}) does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} (from {why}) cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    return parse_toml(text, path)


def parse_toml(text: str, path: Path) -> Layer:
    """The settings in TOML ``text`` read from ``path`` (relative paths in it are taken
    relative to the file's directory)."""
    where = f"config file {path}"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    layer: Layer = {}
    sections = ", ".join(f"[{s}]" for s in SECTIONS)
    for section, table in doc.items():
        if not isinstance(table, dict):
            home = [f"[{k.section}]" for k in _BY_DOTTED.values() if k.name == section]
            raise ConfigError(f"{where}: {section} = {_show(table)} is outside any section; settings go under "
                              + (f"{' or '.join(home)}" if home else f"one of {sections}"))
        if section not in KEYS:
            raise ConfigError(f"{where}: unknown section [{section}]; accepted sections: {sections}")
        for name, value in table.items():
            if name in LIVE_SWITCHES and section == "ib":
                raise ConfigError(f"{where}: [ib] {name} cannot be set in a config file: live trading is "
                                  "enabled only on the command line, with --live")
            key = _BY_DOTTED.get(f"{section}.{name}")
            if key is None:
                raise ConfigError(f"{where}: [{section}] unknown key {name!r}; accepted keys: {_accepted(section)}")
            try:
                layer[key.dotted] = (_typed(key, value, base=path.parent), where)
            except _Bad as bad:
                raise ConfigError(f"{where}: [{section}] {name} = {_show(value)}: expected {bad}") from None
    return layer


def _env_layer(env: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    prefixes = {f"SLOB_{s.upper()}_": s for s in SECTIONS}
    for var in sorted(env):
        text = env[var]
        dotted = ENV_ALIASES.get(var)
        if dotted is None:
            section = next((s for p, s in prefixes.items() if var.startswith(p)), None)
            if section is None:
                continue  # not ours (SLOB_CONFIG, SLOB_VENV, ...)
            key = _BY_ENV.get(var)
            if key is None:
                if var[len(f"SLOB_{section.upper()}_"):].lower() in LIVE_SWITCHES and section == "ib":
                    raise ConfigError(f"environment {var}: live trading is enabled only on the command line, "
                                      "with --live")
                raise ConfigError(f"environment {var}: [{section}] has no such key; accepted: "
                                  + ", ".join(sorted(k.env for k in KEYS[section])))
            dotted = key.dotted
        if not text.strip():
            continue  # set but empty: as if unset
        key = _BY_DOTTED[dotted]
        try:
            value = _text(key, text)
        except _Bad as bad:
            raise ConfigError(f"environment {var}={text!r}: [{key.section}] {key.name}: expected {bad}") from None
        if dotted in layer and layer[dotted][0] != value:
            raise ConfigError(f"environment {var}={text!r} and {layer[dotted][1]} disagree about "
                              f"[{key.section}] {key.name}; set one of them")
        layer[dotted] = (value, f"environment {var}")
    return layer


def _flag_layer(flags: Mapping[str, object]) -> Layer:
    layer: Layer = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        key = _BY_DOTTED.get(dotted)
        if key is None:
            raise ConfigError(f"no setting {dotted!r}; accepted: {', '.join(sorted(_BY_DOTTED))}")
        source = _FLAG_NAMES.get(dotted, f"flag {dotted}")
        try:
            layer[dotted] = (_text(key, value) if isinstance(value, str) else _typed(key, value), source)
        except _Bad as bad:
            raise ConfigError(f"{source} {_show(value)}: expected {bad}") from None
    return layer


# -- merging -----------------------------------------------------------------------------


def _build(section: str, make: Callable[..., Any], merged: Layer, **extra: object) -> Any:
    given = [k for k in KEYS[section] if k.dotted in merged]
    try:
        return make(**{k.name: merged[k.dotted][0] for k in given}, **extra)
    except (ConfigError, LiveTradingRefused) as exc:
        # Blame the one setting that fails on its own, if there is one; else all of them.
        for key in given:
            value, source = merged[key.dotted]
            try:
                make(**{key.name: value}, **extra)
            except (ConfigError, LiveTradingRefused) as alone:
                raise type(exc)(f"{source}: [{section}] {key.name} = {_show(value)}: {alone}") from None
        shown = "; ".join(f"{k.name} = {_show(merged[k.dotted][0])} from {merged[k.dotted][1]}" for k in given)
        raise type(exc)(f"[{section}] {shown or 'defaults'}: {exc}") from None


def merge(*, file: Layer | None = None, env: Mapping[str, str] | None = None,
          flags: Mapping[str, object] | None = None, live: bool = False,
          config_file: Path | None = None) -> RunConfig:
    """Defaults < ``file`` < ``env`` < ``flags``, validated. ``flags`` maps dotted keys
    (``"ib.port"``) to values (typed, or text to coerce). ``live`` is the ``--live`` opt-in:
    IBConfig(paper_trading=False, allow_live=True)."""
    merged: Layer = {}
    for layer in (file or {}, _env_layer(env or {}), _flag_layer(flags or {})):
        merged.update(layer)
    # Delayed data has no tick-by-tick form: unless a tick source was chosen, follow data_type.
    if "ib.tick_source" not in merged and merged.get("ib.data_type", ("", ""))[0] == "delayed":
        merged["ib.tick_source"] = ("market_data", "the default for data_type \"delayed\"")
    ib = _build("ib", IBConfig, merged, paper_trading=not live, allow_live=live)
    engine = _build("engine", EngineConfig, merged)
    risk = _build("risk", RiskConfig, merged)
    setup = _build("setup", SetupConfig, merged)
    sources = {dotted: merged[dotted][1] if dotted in merged else "default" for dotted in _BY_DOTTED}
    return RunConfig(ib=ib, engine=engine, risk=risk, setup=setup, config_file=config_file, sources=sources)


def load_config(*, config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                flags: Mapping[str, object] | None = None, live: bool = False) -> RunConfig:
    """:func:`merge` with the file named by ``config_file`` or ``$SLOB_CONFIG`` (if any)."""
    env = env or {}
    found = config_path(config_file, env)
    file = read_config_file(*found) if found is not None else None
    return merge(file=file, env=env, flags=flags, live=live, config_file=found[0] if found else None)
