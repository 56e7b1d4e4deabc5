"""LoopThread: a fake server's own daemon thread and asyncio event loop.

Why it exists: slob's fakes (:class:`~slob.testing.fake_tws.FakeTWS`,
:class:`~slob.testing.fake_alpaca.FakeAlpaca`) must serve synchronous tests, asyncio
tests (without blocking the test's loop) and other processes alike, so each runs its
event loop on a thread of its own. Starting that thread, waiting until the server is up,
stopping it, and running code on its loop from other threads are the same for every fake;
this base class holds that one copy.

A subclass implements :meth:`_main` -- set up, ``ready.set()``, ``await
self._stop_requested()``, clean up -- and :meth:`_start_failed`, which words the error
when the server did not come up. It gets ``start``/``stop``, ``with`` and ``async with``,
and these ways into the loop:

* :meth:`_call` -- run a plain function on the loop thread and return its result;
* :meth:`_call_async` -- run a coroutine function there and return its result;
* :meth:`_submit` -- schedule a coroutine function there without waiting for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Awaitable, Callable, ClassVar, NoReturn, TypeVar

__all__ = ["LoopThread"]

S = TypeVar("S", bound="LoopThread")
T = TypeVar("T")


class LoopThread:
    """See the module docstring."""

    #: The server's name in error messages, e.g. "FakeTWS".
    _label: ClassVar[str]
    #: The name of the server's thread, e.g. "slob-fake-tws".
    _thread_name: ClassVar[str]

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._failure: BaseException | None = None

    # -- what a subclass provides ---------------------------------------------------

    async def _main(self, ready: threading.Event) -> None:
        """The server on its loop: set up, ``ready.set()``, await :meth:`_stop_requested`,
        clean up. An exception before ``ready.set()`` is a failed start."""
        raise NotImplementedError

    def _start_failed(self, started: bool) -> NoReturn:
        """Raise for a start that did not come up: ``started`` False when ``ready`` was not
        set within 10 s, else :attr:`_failure` holds why :meth:`_main` failed."""
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------

    def start(self: S) -> S:
        """Start the thread and return once the server is up (at once when it runs)."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self._thread_name, daemon=True)
        self._thread.start()
        started = ready.wait(10)
        if not started or self._failure is not None:
            self._start_failed(started)
        return self

    def _abandon(self) -> None:
        """After a failed start: give the thread a moment to end, then forget it."""
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None

    def stop(self) -> None:
        """Ask :meth:`_main` to clean up and end (it closes the server's connections and
        listener), then stop the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        try:
            loop.call_soon_threadsafe(stopping.set)
        except RuntimeError:  # the loop already ended
            pass
        thread.join(10)
        self._thread = None
        if thread.is_alive():
            raise RuntimeError(f"{self._label} thread did not stop within 10 s")

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Starting and stopping take milliseconds, so the async forms simply block briefly
    # rather than borrow an executor thread.
    async def __aenter__(self: S) -> S:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # startup failure: reported by start()
            self._failure = exc
            ready.set()
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        await self._main(ready)

    async def _stop_requested(self) -> None:
        """Return once :meth:`stop` was called."""
        assert self._stopping is not None
        await self._stopping.wait()

    # -- calling into the loop -------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError(f"{self._label} is not running; use it as a context manager or call start()")
        return loop

    def _call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """``fn()`` on the loop thread (inline when already there); its result or exception."""
        loop = self._running_loop()
        if threading.current_thread() is self._thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def _call_async(self, fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """``await fn()`` on the loop, from another thread (the loop's own would deadlock)."""
        self._running_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self._label} commands cannot be called from its own loop")
        return self._submit(fn).result(timeout)

    def _submit(self, fn: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Schedule ``await fn()`` on the loop from any thread; its future."""
        loop = self._loop
        if loop is None:
            raise RuntimeError(f"{self._label} is not running")
        return asyncio.run_coroutine_threadsafe(_awaited(fn), loop)


async def _awaited(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()

