"""EventBus: typed publish/subscribe inside the engine's event loop.

Handlers subscribe to an event class (``bus.subscribe(CandleClosed, handler)``) and are
called in subscription order; sync handlers directly, async handlers awaited. A handler
that raises is reported -- as an :class:`~slob.model.ErrorReported` event to the
``ErrorReported`` subscribers and in :attr:`EventBus.handler_errors` -- and the other
handlers still run. Events are slob's frozen records (Tick, CandleClosed, ContractRolled,
ConnectionLost/Restored, Gap, ErrorReported, and the setup/order events of later issues).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable, TypeVar

from slob.live.callbacks import invoke
from slob.model import ErrorReported

__all__ = ["EventBus"]

log = logging.getLogger("slob.live.event_bus")
E = TypeVar("E")
Handler = Callable[[Any], Any]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self.published: Counter[str] = Counter()
        self.handler_errors = 0

    def subscribe(self, event_type: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        """Call ``handler`` for every published ``event_type``; returns an unsubscribe."""
        handlers = self._handlers.setdefault(event_type, [])
        handlers.append(handler)

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def has_subscribers(self, event_type: type) -> bool:
        return bool(self._handlers.get(event_type))

    async def publish(self, event: object) -> None:
        kind = type(event)
        self.published[kind.__name__] += 1
        handlers = self._handlers.get(kind)
        if not handlers:
            return
        for handler in list(handlers):
            try:
                await invoke(handler, event)
            except Exception as exc:
                self.handler_errors += 1
                name = getattr(handler, "__qualname__", repr(handler))
                log.warning("! handler %s failed on %s: %r", name, kind.__name__, exc)
                if kind is not ErrorReported:  # never recurse on a failing error handler
                    await self.publish(ErrorReported(f"{name} on {kind.__name__}", exc))
