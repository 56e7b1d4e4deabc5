"""Where a sweep's tasks run: in this process, on a pool of local processes (the default),
or on a Dask distributed cluster (``--scheduler``).

Every executor has one method, ``run(block, tasks, accept)``: run each task
(:func:`slob.research.sweep.run_task`) and hand each result to ``accept``, in whatever
order they finish. The candles go to each worker once, packed
(:class:`~slob.research.candle_block.CandleBlock`): to the local pool's processes as their
initializer's argument, to the cluster by ``scatter`` to every worker; a task carries
only its configuration and windows. :func:`slob.research.sweep.collect` turns the results
into one per combination, so the table does not depend on the executor.

Faults: a task that raises is retried (``retries`` times, then the sweep stops with a
SlobError naming the combination and the error); a local worker process that dies
breaks the pool, which is started anew for the tasks without a result (at most
``retries`` times); on Dask, a worker lost mid-task has its tasks rerun elsewhere by the
scheduler, and a task that still fails -- or whose candles were lost with the workers
holding them -- is submitted again, candles scattered again. A result computed twice is
the same result, kept once.

**Why Dask.** ``dask.distributed`` is the established Python cluster scheduler: a
scheduler and workers started with one command each (``dask scheduler``, ``dask worker
ADDRESS``) on any number of machines, on Kubernetes, HPC batch systems or cloud VMs
through its deployment projects; data scattered to workers and fetched peer to peer;
retries, lost-worker recovery and work stealing built in; a dashboard. Ray would do too,
but brings a much larger runtime (its own object store and raylet per node) for what is
here a bag of independent, CPU-bound Python tasks; a plain ``multiprocessing`` pool does
not cross machines. Dask is imported only when ``--scheduler`` is given (the ``cluster``
extra).
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol, Sequence

from slob.ib.errors import ConfigError, SlobError
from slob.research.candle_block import CandleBlock, candles_of
from slob.research.sweep import Task, TaskResult, run_task

__all__ = ["DaskCluster", "Executor", "InProcess", "LocalPool", "executor_for"]

log = logging.getLogger(__name__)
Accept = Callable[[TaskResult], None]


class Executor(Protocol):
    description: str

    def run(self, block: CandleBlock, tasks: Sequence[Task], accept: Accept) -> None: ...


class InProcess:
    """Every task in this process, one after another (``--workers 1``)."""

    description = "this process"

    def run(self, block: CandleBlock, tasks: Sequence[Task], accept: Accept) -> None:
        for task in tasks:
            accept(run_task(block, task))


# -- local processes -------------------------------------------------------------------------

_worker_block: CandleBlock | None = None


def _prepare(block: CandleBlock) -> None:
    """A pool process's initializer: keep the candles, unpacked, for every task."""
    global _worker_block
    _worker_block = block
    candles_of(block)


def _run_here(task: Task) -> TaskResult:
    if _worker_block is None:  # pragma: no cover - the initializer always ran
        raise SlobError("a sweep worker process started without its candles")
    return run_task(_worker_block, task)


class LocalPool:
    """``workers`` processes on this machine (the default executor). Started with
    ``spawn``: a fresh interpreter each, the same on Linux, macOS and Windows, and safe from
    a parent with threads (``fork`` there is not)."""

    def __init__(self, workers: int, *, retries: int = 2) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers, self.retries = workers, retries
        self.description = f"{workers} local worker process{'es' if workers != 1 else ''}"
        #: How many times the pool broke (a worker process died) and was started anew.
        self.restarts = 0

    def run(self, block: CandleBlock, tasks: Sequence[Task], accept: Accept) -> None:
        pending = {t.combination: t for t in tasks}
        failures: Counter[int] = Counter()
        while pending:
            broken = self._round(block, pending, failures, accept)
            if broken and pending:
                self.restarts += 1
                if self.restarts > self.retries:
                    raise SlobError(f"the local worker processes died {self.restarts} times ({broken}); "
                                    f"{len(pending)} combination(s) have no result. Is the machine short of memory? "
                                    "Try fewer --workers")
                log.warning("! a sweep worker process died (%s): starting the pool again for %d combination(s)",
                            broken, len(pending))

    def _round(self, block: CandleBlock, pending: dict[int, Task], failures: Counter[int], accept: Accept) -> str:
        """Run ``pending`` on a new pool until done or the pool breaks (the reason)."""
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(pending)), mp_context=context,
                                   initializer=_prepare, initargs=(block,))
        try:
            running: dict[Future[TaskResult], Task] = {pool.submit(_run_here, t): t for t in pending.values()}
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        return str(exc) or "a worker process ended abruptly"
                    except SlobError:
                        raise
                    except Exception as exc:  # a bug or the environment: retry, then say which
                        failures[task.combination] += 1
                        _give_up_after(self.retries, failures[task.combination], task, exc)
                        running[pool.submit(_run_here, task)] = task
                        continue
                    pending.pop(task.combination, None)
                    accept(result)
            return ""
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _give_up_after(retries: int, failures: int, task: Task, exc: BaseException) -> None:
    if failures > retries:
        raise SlobError(f"combination {task.combination} failed {failures} times, last with {type(exc).__name__}: "
                        f"{exc}") from exc
    log.warning("! combination %d failed (%s: %s): retrying", task.combination, type(exc).__name__, exc)


# -- Dask ------------------------------------------------------------------------------------


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SlobError("--scheduler runs the sweep on a Dask cluster, which needs dask.distributed: "
                        "pip install 'slob[cluster]' (on this machine and on every worker)") from None
    return distributed


class DaskCluster:
    """An existing Dask distributed cluster, by its scheduler's address
    (``tcp://HOST:8786``). The workers must have slob installed (the same version)."""

    def __init__(self, address: str, *, retries: int = 2, timeout: float = 30.0) -> None:
        self.address, self.retries, self.timeout = address, retries, timeout
        self.description = f"the Dask cluster at {address}"
        #: Tasks submitted again after Dask's own retries failed (tests read it).
        self.resubmitted = 0

    def run(self, block: CandleBlock, tasks: Sequence[Task], accept: Accept) -> None:
        distributed = _distributed()
        # Knock first: a Client that cannot connect leaves the thread of the event loop it
        # started running (distributed 2026.8), and says less than this.
        _knock(self.address, self.timeout)
        try:
            client = distributed.Client(self.address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SlobError(_no_scheduler(self.address, exc)) from None
        try:
            self._run(distributed, client, block, tasks, accept)
        finally:
            client.close()

    def _run(self, distributed: Any, client: Any, block: CandleBlock, tasks: Sequence[Task], accept: Accept) -> None:
        try:
            client.wait_for_workers(1, timeout=self.timeout)
        except TimeoutError:
            raise SlobError(f"the Dask scheduler at {self.address} has no worker after {self.timeout:g} s; start some "
                            f"with `dask worker {self.address}`") from None
        run_id = uuid.uuid4().hex[:12]
        log.info("= sweep %s: %d task(s) on %s, candles %r", run_id, len(tasks), self.address, block)
        data = client.scatter(block, broadcast=True, hash=False)
        futures: dict[Any, Task] = {}
        attempts: Counter[int] = Counter()

        def submit(task: Task) -> Any:
            attempts[task.combination] += 1
            key = f"slob-sweep-{run_id}-{task.combination}-{attempts[task.combination]}"
            future = client.submit(run_task, data, task, key=key, retries=self.retries, pure=False)
            futures[future] = task
            return future

        for task in tasks:
            submit(task)
        pending = {t.combination for t in tasks}
        queue = distributed.as_completed(list(futures), loop=client.loop)
        for future in queue:
            task = futures.pop(future)
            try:
                result = future.result()
            except SlobError:
                raise
            except Exception as exc:  # KilledWorker, lost candles, a failure Dask's retries did not cure
                if attempts[task.combination] > self.retries:
                    raise SlobError(f"combination {task.combination} failed on the cluster {attempts[task.combination]}"
                                    f" times, last with {type(exc).__name__}: {exc}") from exc
                log.warning("! combination %d failed on the cluster (%s: %s): submitting it again", task.combination,
                            type(exc).__name__, exc)
                if data.status != "finished":  # the workers holding the candles are gone: send them again
                    data = client.scatter(block, broadcast=True, hash=False)
                self.resubmitted += 1
                queue.add(submit(task))
                continue
            if task.combination in pending:
                pending.discard(task.combination)
                accept(result)
            future.release()


def _no_scheduler(address: str, exc: BaseException) -> str:
    return (f"no Dask scheduler answers at {address} ({exc}); start one with `dask scheduler` and workers with "
            "`dask worker ADDRESS`, or leave out --scheduler to use local processes")


def _knock(address: str, timeout: float) -> None:
    """Connect to a ``tcp://``/``tls://`` scheduler address (or ``HOST:PORT``) and hang up;
    SlobError when nothing listens there. Other protocols are left to Dask."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in ("tcp", "tls"):
        return
    host, _, port = rest.rpartition(":")
    try:
        number = int(port.split("/")[0])
    except ValueError:
        raise ConfigError(f"--scheduler {address}: expected tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786") from None
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", number), timeout=timeout).close()
    except OSError as exc:
        raise SlobError(_no_scheduler(address, exc)) from None


def executor_for(workers: int | None, scheduler: str | None, *, retries: int = 2) -> Executor:
    """``--scheduler``: the cluster; else ``--workers`` local processes (1: this
    process; default: one per core)."""
    if scheduler:
        if workers is not None:
            raise ConfigError("--workers is for local processes; with --scheduler the cluster's workers run the sweep")
        return DaskCluster(scheduler, retries=retries)
    count = workers if workers is not None else (multiprocessing.cpu_count() or 1)
    if count < 1:
        raise ConfigError(f"--workers must be >= 1, got {count}")
    return InProcess() if count == 1 else LocalPool(count, retries=retries)
