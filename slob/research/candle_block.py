"""Candles packed for shipping to sweep workers: one compact, compressed block per date
range, unpacked once per worker process.

A year of 1-minute candles is about 360,000 :class:`~slob.model.Candle` objects; pickled
one by one that is some 60 MB and seconds of work on each side, for every task. A
:class:`CandleBlock` holds the same numbers column by column (``array`` bytes, zlib
compressed: about 8 MB for a generated year) and a digest of them. Executors send it once
per worker (the local pool's initializer, Dask's scatter), and tasks name it by digest;
:func:`candles_of` unpacks it at most once per process and keeps it for the next task.

Unpacking gives candles equal to the packed ones: same fields, times in UTC to the
microsecond (the store's resolution), contracts by runs.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import zlib
from array import array
from dataclasses import dataclass
from typing import Sequence

from slob.ib.errors import SlobError
from slob.store.schema import from_ns, to_ns
from slob.model import Candle, fast_constructor

__all__ = ["CandleBlock", "Unpacked", "candles_of", "pack"]

_make = fast_constructor(Candle)
#: Unpacked blocks a process keeps (a sweep uses one; a worker serving two sweeps, two).
_KEEP = 2


@dataclass(frozen=True, slots=True)
class CandleBlock:
    """One symbol's candles, packed (see the module docstring). ``contracts``: (index of
    the first candle, contract) for each run of one contract."""

    symbol: str
    count: int
    digest: str
    data: bytes  # zlib of: start ns (q), open, high, low, close, volume (d), trades (q), interval (q), filled (b)
    contracts: tuple[tuple[int, str], ...]

    def __repr__(self) -> str:
        return f"CandleBlock({self.symbol}, {self.count:,} candles, {len(self.data):,} bytes, {self.digest[:12]})"


@dataclass(frozen=True, slots=True)
class Unpacked:
    """A block's candles and their start times (ns), for picking a window by bisection."""

    candles: list[Candle]
    starts: array[int]

    def between(self, start_ns: int, end_ns: int) -> list[Candle]:
        """The candles starting in ``[start_ns, end_ns)``."""
        lo = bisect.bisect_left(self.starts, start_ns)
        hi = bisect.bisect_left(self.starts, end_ns, lo)
        return self.candles[lo:hi]


def pack(candles: Sequence[Candle]) -> CandleBlock:
    """``candles`` (one symbol, in time order) as a block."""
    if not candles:
        raise SlobError("no candles to sweep over; choose --from/--to where the source has candles")
    symbol = candles[0].symbol
    starts, trades, intervals = array("q"), array("q"), array("q")
    prices = array("d")
    filled = bytearray()
    runs: list[tuple[int, str]] = []
    last_ns = None
    for i, c in enumerate(candles):
        if c.symbol != symbol:
            raise SlobError(f"a sweep runs over one symbol; the candles hold {symbol} and {c.symbol}")
        ns = to_ns(c.start)
        if last_ns is not None and ns <= last_ns:
            raise SlobError(f"candles out of time order at {c.start.isoformat()}; sort them first")
        last_ns = ns
        starts.append(ns)
        prices.extend((c.open, c.high, c.low, c.close, c.volume))
        trades.append(c.trades)
        intervals.append(c.interval_seconds)
        filled.append(1 if c.filled else 0)
        if not runs or runs[-1][1] != c.contract:
            runs.append((i, c.contract))
    raw = b"".join((starts.tobytes(), prices.tobytes(), trades.tobytes(), intervals.tobytes(), bytes(filled)))
    digest = hashlib.sha256(symbol.encode() + repr(runs).encode() + raw).hexdigest()
    return CandleBlock(symbol, len(candles), digest, zlib.compress(raw, 1), tuple(runs))


def _unpack(block: CandleBlock) -> Unpacked:
    raw = zlib.decompress(block.data)
    n = block.count
    cuts = [0, 8 * n, 8 * n + 40 * n, 8 * n + 40 * n + 8 * n, 8 * n + 40 * n + 16 * n, 8 * n + 40 * n + 16 * n + n]
    if len(raw) != cuts[-1]:
        raise SlobError(f"{block!r} is damaged: {len(raw)} bytes unpacked, {cuts[-1]} expected")
    starts, prices, trades, intervals = array("q"), array("d"), array("q"), array("q")
    starts.frombytes(raw[cuts[0]:cuts[1]])
    prices.frombytes(raw[cuts[1]:cuts[2]])
    trades.frombytes(raw[cuts[2]:cuts[3]])
    intervals.frombytes(raw[cuts[3]:cuts[4]])
    filled = raw[cuts[4]:cuts[5]]
    bounds = [i for i, _ in block.contracts[1:]] + [n]
    out: list[Candle] = []
    append = out.append
    symbol = block.symbol
    i = 0
    for (_, contract), end in zip(block.contracts, bounds):
        while i < end:
            p = 5 * i
            append(_make(symbol, contract, intervals[i], from_ns(starts[i]), prices[p], prices[p + 1], prices[p + 2],
                         prices[p + 3], prices[p + 4], trades[i], filled[i] == 1))
            i += 1
    return Unpacked(out, starts)


_cache: dict[str, Unpacked] = {}
_lock = threading.Lock()


def candles_of(block: CandleBlock) -> Unpacked:
    """``block`` unpacked, at most once per process (a Dask worker may run tasks on
    several threads: they wait for the one unpacking)."""
    with _lock:
        found = _cache.get(block.digest)
        if found is None:
            found = _unpack(block)
            while len(_cache) >= _KEEP:
                _cache.pop(next(iter(_cache)))
            _cache[block.digest] = found
        return found
