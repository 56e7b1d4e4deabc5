"""The zero-hop lane's reader side: ticks handed to user code on IBClient's reader thread.

``IBWSFetcher(..., lane="direct")`` gives the reader thread a :class:`DirectLane` as its
sink. For each read it runs the same :class:`~slob.live.delivery.Delivery` the asyncio lane
runs on the loop, calls ``on_tick_direct`` for every tick to deliver, right there, and
sends everything else -- Gap and ContractRolled events, the loop's chores (roll requests,
retirements), TWS messages, order records, a failed callback -- through the
:class:`~slob.ib.bridge.TickBridge` to :meth:`IBWSFetcher.listen`, which acts on them on
the event loop exactly as the asyncio lane does. No thread hop and no wake-up stand
between a frame and the callback.

The callback's obligations (docs/threading-model.md says the same to users):

* it runs on the reader thread: while it runs, nothing is read from TWS -- keep it short,
  or TCP pushes back on TWS (the stream is never dropped, only delayed);
* it may touch only what is safe from another thread: its own state, a ``queue.SimpleQueue``
  or ``collections.deque``, ``loop.call_soon_threadsafe`` /
  ``asyncio.run_coroutine_threadsafe`` to reach the event loop (orders, for instance, are
  placed from the loop), ``IBWSFetcher.get_stats()``; no other asyncio call and no
  fetcher method that sends a request;
* an exception it raises is counted in ``callback_errors`` and reported to ``on_error`` on
  the event loop; the reader goes on with the next tick.
"""

from __future__ import annotations

from typing import Callable

from slob.ib.bridge import TickBridge
from slob.live.delivery import CallbackFailed, Delivery
from slob.model import Tick

__all__ = ["DirectLane", "TickCallback"]

#: The zero-hop lane's callback: gets each Tick on the reader thread; its result is ignored.
TickCallback = Callable[[Tick], object]


class DirectLane:
    """IBClient's sink in the zero-hop lane (``put`` / ``put_batch``), on the reader thread."""

    __slots__ = ("delivery", "bridge", "on_tick", "note_batch")

    def __init__(self, delivery: Delivery, bridge: TickBridge[object], on_tick: TickCallback,
                 note_batch: Callable[[int], None]) -> None:
        self.delivery = delivery
        self.bridge = bridge
        self.on_tick = on_tick
        #: Called after a read's ticks were delivered, with the oldest one's ``received_ns``.
        self.note_batch = note_batch

    def put(self, record: object) -> None:
        self.put_batch([record])

    def put_batch(self, records: list[object]) -> None:
        outputs = self.delivery.process(records)
        on_tick = self.on_tick
        rest: list[object] = []
        first = 0
        for item in outputs:
            if type(item) is Tick:
                if not first:
                    first = item.received_ns
                try:
                    on_tick(item)
                except Exception as exc:  # reported on the loop; the reader goes on
                    rest.append(CallbackFailed(exc))
            else:
                rest.append(item)
        if first:
            self.note_batch(first)
        if rest:
            self.bridge.put_batch(rest)
