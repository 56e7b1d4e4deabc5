"""asyncio plumbing that more than one room needs: :class:`~slob.aio.loop_thread.LoopThread`
(a server's own daemon thread and event loop), used by the fakes in :mod:`slob.testing`
and by the recording proxy of :mod:`slob.trace`.

Imports nothing of slob: the bottom of the house (docs/architecture.md).
"""
