"""The same sweep, the same table: in this process, on a local process pool and on a real
local Dask cluster (a scheduler and two workers, each its own process, on 127.0.0.1) --
and still the same table when a worker process is killed in the middle of the sweep.

The year tests (20 combinations over a generated year of 1-minute bars) are the issue's
"done when"; the kill tests use six weeks, so that they stay quick. No timing anywhere:
the kill happens when the first result arrives (the executors call back on each result),
with tasks still running and queued on the workers.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from slob.research.bench import generate_year
from slob.research.candle_block import CandleBlock, pack
from slob.research.executors import DaskCluster, Executor, InProcess, LocalPool
from slob.research.grid import parse_grid
from slob.research.sweep import Plan, TaskResult, collect, make_plan, trading_days
from slob.research.sweep_table import build_rows, write_csv

distributed = pytest.importorskip("distributed", reason="the cluster extra (dask.distributed) is not installed")

GRID = """
[grid]
no_wick_max_fraction = { from = 0.1, to = 0.5, step = 0.1 }
stop_buffer_points = [0.5, 1.0]
target_buffer_points = [0.0, 1.0]
"""
#: The kill tests' grid adds walk-forward windows (two folds over six weeks): several
#: backtests per task, the same rules.
WF_GRID = GRID + """
[walk_forward]
in_sample_days = 10
out_of_sample_days = 5
step_days = 10
"""


@dataclass(frozen=True)
class Sweep:
    plan: Plan
    block: CandleBlock


def _sweep(weeks: int, grid: str) -> Sweep:
    candles = generate_year(weeks)
    plan = make_plan(parse_grid(grid), trading_days(candles))
    return Sweep(plan, pack(candles))


def table(sweep: Sweep, executor: Executor,
          on_result: Callable[[TaskResult, int, int], None] | None = None) -> str:
    tasks = sweep.plan.tasks(sweep.block)
    results = collect(tasks, lambda accept: executor.run(sweep.block, tasks, accept), on_result)
    out = io.StringIO()
    write_csv(sweep.plan, build_rows(sweep.plan, results), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def year() -> Sweep:
    sweep = _sweep(52, GRID)
    assert len(sweep.plan.combinations) == 20 and len(sweep.plan.days) == 260
    return sweep


@pytest.fixture(scope="module")
def year_table(year: Sweep) -> str:
    """The reference: every combination in this process, one after another."""
    text = table(year, InProcess())
    figures = [line.split(",")[4:7] for line in text.splitlines()[1:]]
    assert len(set(map(tuple, figures))) > 5, "the combinations must differ for the comparison to mean something"
    return text


@pytest.fixture(scope="module")
def weeks6() -> tuple[Sweep, str]:
    sweep = _sweep(6, WF_GRID)
    assert len(sweep.plan.windows) == 4
    return sweep, table(sweep, InProcess())


# -- a local Dask cluster ----------------------------------------------------------------------


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def local_cluster(tmp: Path, workers: int = 2) -> Iterator[Cluster]:
    """A Dask scheduler and ``workers`` single-threaded workers, each a process of its own
    (no nanny: killing one kills the worker), all on 127.0.0.1; their logs in ``tmp``."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        log.close()
        procs.append(proc)
        return proc

    try:
        scheduler = start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                          address.rsplit(":", 1)[1], "--no-dashboard")
        nodes = [start(f"worker{i}", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                       "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}", "--local-directory",
                       str(tmp / f"w{i}")) for i in range(workers)]
        with distributed.Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
        yield Cluster(address, scheduler, nodes)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with local_cluster(tmp_path_factory.mktemp("dask")) as c:
        yield c


# -- the same table everywhere ---------------------------------------------------------------


@pytest.mark.timeout(900)
def test_a_year_on_a_local_pool_gives_the_in_process_table(year: Sweep, year_table: str) -> None:
    assert table(year, LocalPool(2)) == year_table


@pytest.mark.timeout(900)
def test_a_year_on_a_local_dask_cluster_gives_the_in_process_table(year: Sweep, year_table: str,
                                                                    cluster: Cluster) -> None:
    executor = DaskCluster(cluster.address)
    assert table(year, executor) == year_table
    assert executor.resubmitted == 0


# -- a worker killed mid-sweep ---------------------------------------------------------------


@pytest.mark.timeout(600)
def test_killing_a_pool_worker_mid_sweep_still_gives_the_full_identical_table(weeks6: tuple[Sweep, str]) -> None:
    sweep, reference = weeks6
    pool = LocalPool(2)
    killed: list[int | None] = []

    def kill_one(_result: TaskResult, done: int, total: int) -> None:
        if killed:
            return
        assert done < total
        victim = multiprocessing.active_children()[0]
        os.kill(victim.pid or 0, signal.SIGKILL)
        # Not victim.join(): the pool's own thread may reap the process first, and then the
        # Process object never learns its exit code. The pool starting again says it died.
        killed.append(victim.pid)

    assert table(sweep, pool, kill_one) == reference
    assert len(killed) == 1 and pool.restarts >= 1
    assert pool.restarts == 1  # the broken pool was started anew for the combinations without a result


@pytest.mark.timeout(600)
def test_killing_a_dask_worker_mid_sweep_still_gives_the_full_identical_table(
        weeks6: tuple[Sweep, str], tmp_path: Path) -> None:
    sweep, reference = weeks6
    with local_cluster(tmp_path) as c:
        victim = c.workers[0]
        states: list[tuple[int, int]] = []

        def kill_one(_result: TaskResult, done: int, total: int) -> None:
            if states:
                return
            states.append((done, total))
            victim.kill()
            victim.wait(timeout=60)

        assert table(sweep, DaskCluster(c.address), kill_one) == reference
        assert states == [(1, 20)] and victim.returncode == -signal.SIGKILL
        with distributed.Client(c.address, timeout=60, set_as_default=False) as client:
            assert [w["name"] for w in client.scheduler_info()["workers"].values()] == ["w1"]  # the other finished it


def test_a_scheduler_nobody_runs_is_an_error_saying_what_to_start(weeks6: tuple[Sweep, str]) -> None:
    from slob.ib.errors import SlobError

    sweep, _ = weeks6
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(SlobError, match=f"no Dask scheduler answers at {address} .*start one with `dask scheduler`"):
        table(sweep, DaskCluster(address, timeout=2.0))
