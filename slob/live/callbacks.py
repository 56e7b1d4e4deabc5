"""How slob calls user code: callbacks that may be sync or async.

Why it exists: the event bus, the engine's hooks and both live fetchers call user code,
and each must accept a plain function or a coroutine function alike; :func:`invoke` is
that one rule. :class:`~slob.live.ib_ws_fetcher.IBWSFetcher` and
:class:`~slob.live.alpaca_ws_fetcher.AlpacaWSFetcher` also promise the same error
contract, kept once in :class:`UserCallbacks`: a callback that raises is counted in
``callback_errors`` and reported to ``on_error`` -- except a failing ``on_error`` itself,
which is only logged, so a broken error handler cannot recurse -- and the stream goes on.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar

__all__ = ["Awaiting", "Callback", "UserCallbacks", "invoke"]

#: A user callback: takes one item, returns anything (awaited when awaitable).
Callback = Callable[[Any], Any]


async def invoke(callback: Callback, item: Any) -> None:
    """``callback(item)``, awaited when it returns an awaitable (an async callback)."""
    result = callback(item)
    if inspect.isawaitable(result):
        await result


class UserCallbacks:
    """Mixin for the fetchers; see the module docstring. The subclass sets ``on_error``,
    ``on_event`` and ``callback_errors`` in its ``__init__`` and names its logger."""

    on_error: Callback | None
    on_event: Callback | None
    callback_errors: int
    #: The subclass's module logger: reports appear under the fetcher's name.
    _log: ClassVar[logging.Logger]

    async def _call(self, callback: Callback, item: Any) -> None:
        """``callback(item)``, awaited when async; a failure is counted and reported."""
        try:
            await invoke(callback, item)
        except Exception as exc:
            self.callback_errors += 1
            if callback is not self.on_error:
                await self._report(exc)
            else:
                self._log.exception("! on_error raised")

    async def _report(self, exc: BaseException) -> None:
        """Log ``exc`` and hand it to ``on_error``."""
        self._log.warning("! %s", exc)
        if self.on_error is not None:
            await self._call(self.on_error, exc)

    async def _emit(self, event: object) -> None:
        """Hand a connection event to ``on_event``."""
        if self.on_event is not None:
            await self._call(self.on_event, event)


@dataclass(frozen=True, slots=True)
class Awaiting:
    """An async on_tick's awaitable, met by the bridge's fast path: the fetcher's listen()
    awaits it (moved from :mod:`slob.live.ib_ws_fetcher`)."""

    result: Awaitable[object]
