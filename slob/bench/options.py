"""The benchmark's options, defined once for ``slob bench``, ``python -m slob.bench`` and
``tools/bench``.

Kept free of heavy imports (no ibapi, no ib_async, no slob.live): ``slob --help`` imports
every command module. Tunables default to ``None`` on the parser and are resolved by
:func:`resolve` from :data:`FULL` or, with ``--quick``, :data:`QUICK`; what the user gave
explicitly always wins and is what :func:`command_line` prints back.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any, Sequence

__all__ = ["DEFAULT_JSON", "FULL", "QUICK", "add_arguments", "command_line", "parse_args", "resolve",
           "validate"]

#: The highest server version the feed speaks (slob.testing.tws_versions.MAX_SERVER_VERSION;
#: not imported: that would pull in ibapi. tests/tools/test_bench_smoke.py checks they agree).
MAX_SERVER_VERSION = 226
CLIENTS = ("slob", "slob-direct", "ibapi", "ib_async")  # as slob.bench.clients.CLIENTS (checked there)
#: The architecture's floor (see clients.HOP_FLOOR): measured by default, as a reference.
EXTRA_CLIENTS = ("hop_floor",)
DEFAULT_CLIENTS = ("slob", "slob-direct", "ibapi", "ib_async", "hop_floor")
DEFAULT_JSON = Path("bench-results") / "bench.json"  # relative to the working directory

#: The full benchmark: >= 3 alternating throughput runs per client, 3 rounds of 5 s per
#: fixed rate, a 1,000,000-tick memory run, a burst, a slow consumer (both lanes), a busy
#: strategy, and slob's lanes at the other protocol generation.
FULL: dict[str, Any] = {
    "messages": 200_000, "rates": [1_000, 10_000, 50_000, 100_000], "duration": 5.0, "runs": 3, "rate_runs": 3,
    "timeout": 30.0, "memory_ticks": 1_000_000, "memory_clients": ["slob"], "proxy_ticks": 2000,
    "proxy_rate": 1000.0, "burst_ticks": 5000, "slow_ticks": 600_000, "slow_rate": 50_000, "busy_duration": 5.0,
}
#: ``--quick``: the same measurements, smaller (the memory run keeps its 1,000,000 ticks:
#: flat out it takes seconds).
QUICK: dict[str, Any] = {
    "messages": 100_000, "rates": [1_000, 10_000, 50_000, 100_000], "duration": 1.5, "runs": 3, "rate_runs": 2,
    "timeout": 8.0, "memory_ticks": 1_000_000, "memory_clients": ["slob"], "proxy_ticks": 1000,
    "proxy_rate": 1000.0, "burst_ticks": 5000, "slow_ticks": 400_000, "slow_rate": 50_000, "busy_duration": 2.0,
}


def _int_list(text: str) -> list[int]:
    try:
        return [int(float(x)) for x in text.replace("_", "").split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _client_list(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in names if x not in CLIENTS + EXTRA_CLIENTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown client(s) {bad}; choose from {','.join(CLIENTS + EXTRA_CLIENTS)}")
    return names


def _memory_clients(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else _client_list(text)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The benchmark's options (tunables default to None: see :func:`resolve`)."""
    f, q = FULL, QUICK
    ap.add_argument("--quick", action="store_true",
                    help="a reduced run (shorter throughput and fixed-rate runs, a shorter timeout) that finishes in "
                         "under 5 minutes; explicit options still win")
    ap.add_argument("--messages", type=int,
                    help=f"ticks per throughput run (default {f['messages']}; quick {q['messages']})")
    ap.add_argument("--rates", type=_int_list,
                    help="fixed rates for latency, ticks/s, comma-separated (default "
                         f"{','.join(map(str, f['rates']))}; 1000 may be added)")
    ap.add_argument("--duration", type=float,
                    help=f"seconds per fixed-rate run (default {f['duration']:g}; quick {q['duration']:g})")
    ap.add_argument("--runs", type=int,
                    help=f"throughput runs per client, alternating clients per round; median and min-max are "
                         f"reported (default {f['runs']})")
    ap.add_argument("--rate-runs", type=int,
                    help=f"rounds per fixed rate, clients alternating in each; ratios are medians of the per-round "
                         f"ratios (default {f['rate_runs']}; quick {q['rate_runs']}; IB's stock model runs one)")
    ap.add_argument("--clients", type=_client_list,
                    help=f"subset of {','.join(DEFAULT_CLIENTS)} (default: all; hop_floor is the floor of slob's "
                         "asyncio lane: reader thread -> bridge -> loop, no decoding)")
    ap.add_argument("--memory-ticks", type=int,
                    help=f"ticks of the memory run, flat out (RSS sampled in the client process; default "
                         f"{f['memory_ticks']}; 0 skips it)")
    ap.add_argument("--memory-clients", type=_memory_clients,
                    help="clients given a memory run, comma-separated, or none (default slob)")
    ap.add_argument("--proxy-ticks", type=int,
                    help=f"frames for the slob trace proxy's added latency (default {f['proxy_ticks']}; "
                         f"quick {q['proxy_ticks']}; 0 skips it)")
    ap.add_argument("--proxy-rate", type=float,
                    help=f"frames/s for the slob trace proxy measurement (default {f['proxy_rate']:g})")
    ap.add_argument("--burst-ticks", type=int,
                    help=f"ticks of the burst (sent within 50 ms after a quiet second; default {f['burst_ticks']}; "
                         "0 skips it)")
    ap.add_argument("--slow-ticks", type=int,
                    help=f"ticks of the slow-consumer run, each lane (on_tick costs twice the feed interval; "
                         f"default {f['slow_ticks']}; quick {q['slow_ticks']}; 0 skips it)")
    ap.add_argument("--slow-rate", type=int,
                    help=f"feed rate of the slow-consumer run, ticks/s (default {f['slow_rate']})")
    ap.add_argument("--busy-duration", type=float,
                    help=f"seconds of the busy-strategy run at 10,000 ticks/s (20 µs of work per tick, a 20 ms loop "
                         f"stall every second; default {f['busy_duration']:g}; quick {q['busy_duration']:g}; 0 skips)")
    ap.add_argument("--compare-version", type=int,
                    help="the other protocol generation slob's lanes are also measured at (throughput and 10k/s): "
                         "default 200 (text) when --server-version is 201 or more, else the highest; 0 skips it")
    ap.add_argument("--json", type=Path, help=f"results file (default {DEFAULT_JSON})")
    ap.add_argument("--plot", type=Path,
                    help="also write a PNG of latency percentiles (p50, p99, p99.9) against rate per client "
                         "(needs matplotlib: pip install slob[bench])")
    ap.add_argument("--markdown", type=Path,
                    help="also write the results as Markdown (table, targets, machine, command, plot link), "
                         "as in docs/benchmarks.md")
    ap.add_argument("--markdown-notes", type=Path,
                    help="a Markdown file whose text goes into the --markdown page after the results")
    ap.add_argument("--timeout", type=float,
                    help=f"seconds a client may lag behind the feed's schedule (flat-out runs: 10,000 ticks/s) "
                         f"before the run is cut (default {f['timeout']:g}; quick {q['timeout']:g})")
    ap.add_argument("--start-delay", type=float, default=0.5,
                    help="seconds between the tick-by-tick request and the first tick (default 0.5)")
    ap.add_argument("--batch-bytes", type=int, default=16384,
                    help="bytes per socket write when sending flat out (default 16384)")
    ap.add_argument("--server-version", type=int, default=MAX_SERVER_VERSION, metavar="N",
                    help=f"highest server version the feed offers, 100-{MAX_SERVER_VERSION} (default "
                         f"{MAX_SERVER_VERSION}: IB's client and slob stream protobuf; 200: the classic text "
                         "protocol for all; ib_async speaks 178 either way)")


def validate(opts: argparse.Namespace) -> str | None:
    """What is wrong with resolved options, or None."""
    if opts.messages < 2 or opts.runs < 1 or opts.duration <= 0 or any(r <= 0 for r in opts.rates):
        return "--messages >= 2, --runs >= 1, --duration > 0 and positive --rates, please"
    if opts.rate_runs < 1:
        return "--rate-runs >= 1, please"
    if opts.burst_ticks < 0 or opts.slow_ticks < 0 or opts.slow_rate <= 0 or opts.busy_duration < 0:
        return "--burst-ticks, --slow-ticks, --busy-duration >= 0 and --slow-rate > 0, please"
    if 0 < opts.slow_ticks < 20:
        return "--slow-ticks is 0 (skip) or >= 20"
    if opts.memory_ticks < 0 or (0 < opts.memory_ticks < 20):
        return "--memory-ticks is 0 (skip) or >= 20"
    if opts.proxy_ticks < 0 or opts.proxy_rate <= 0:
        return "--proxy-ticks >= 0 and --proxy-rate > 0, please"
    if opts.timeout <= 0 or opts.start_delay < 0 or opts.batch_bytes < 1:
        return "--timeout > 0, --start-delay >= 0 and --batch-bytes >= 1, please"
    if not 100 <= opts.server_version <= MAX_SERVER_VERSION:
        return f"--server-version is 100..{MAX_SERVER_VERSION}"
    if opts.compare_version and not 100 <= opts.compare_version <= MAX_SERVER_VERSION:
        return f"--compare-version is 0 (skip) or 100..{MAX_SERVER_VERSION}"
    return None


def resolve(opts: argparse.Namespace) -> argparse.Namespace:
    """Fill the tunables left at None from FULL or QUICK; record what was given explicitly."""
    base = QUICK if opts.quick else FULL
    given: dict[str, Any] = {}
    for key, value in base.items():
        explicit = getattr(opts, key, None)
        if explicit is None:
            setattr(opts, key, list(value) if isinstance(value, list) else value)
        else:
            given[key] = explicit
    if getattr(opts, "clients", None) is None:
        opts.clients = list(DEFAULT_CLIENTS)
    else:
        given["clients"] = opts.clients
    for key, default in (("start_delay", 0.5), ("batch_bytes", 16384), ("server_version", MAX_SERVER_VERSION)):
        if getattr(opts, key) != default:
            given[key] = getattr(opts, key)
    if getattr(opts, "compare_version", None) is None:
        opts.compare_version = 200 if opts.server_version >= 201 else MAX_SERVER_VERSION
    else:
        given["compare_version"] = opts.compare_version
    for key in ("json", "plot", "markdown", "markdown_notes"):
        if getattr(opts, key, None) is not None:
            given[key] = getattr(opts, key)
    if opts.json is None:
        opts.json = DEFAULT_JSON
    opts.given = given
    return opts


def command_line(opts: argparse.Namespace) -> str:
    """``slob bench ...`` with the options that produced ``opts``."""
    words = ["slob", "bench"] + (["--quick"] if opts.quick else [])
    for key, value in getattr(opts, "given", {}).items():
        if isinstance(value, list):
            value = ",".join(str(v) for v in value) or "none"
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        words += ["--" + key.replace("_", "-"), str(value)]
    return shlex.join(words)


def parse_args(argv: Sequence[str] | None = None, prog: str = "tools/bench") -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Tick-by-tick throughput, latency, CPU per tick and memory: slob vs IB's stock model vs "
                    "ib_async, each in its own process, fed by one fast fake TWS over loopback TCP.")
    add_arguments(ap)
    opts = resolve(ap.parse_args(argv))
    problem = validate(opts)
    if problem:
        ap.error(problem)
    return opts
