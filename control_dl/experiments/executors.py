"""Where sweep runs execute: a local process pool or a Dask cluster, behind one small interface.

Both hand back :class:`concurrent.futures.Future` objects, so the sweep loop is the same code for
both. Neither can interrupt a running Python call, so a run over its timeout is stopped by
stopping its process: the whole local pool is killed and restarted (the other in-flight runs are
resubmitted), or the Dask worker running it is restarted through its nanny (Dask reschedules the
worker's other tasks itself).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._errors import SpecError, require_rerunnable_main, worker_start_error
from ..engines.dask import scheduler_client, start_local_cluster, wait_for_first_worker
from ._task import init_worker, ready

logger = logging.getLogger(__name__)


class ProcessExecutor:
    """A ``concurrent.futures`` process pool (spawn context: no state inherited from the caller).

    Parameters
    ----------
    workers : int
        Number of worker processes, each single-threaded.
    """

    #: the in-flight runs die with a killed pool and must be submitted again
    loses_inflight_on_abort = True

    def __init__(self, workers: int) -> None:
        self.capacity = workers
        self._context = multiprocessing.get_context("spawn")
        require_rerunnable_main("workers", workers, "the sweep's worker processes")
        self._start()

    def _start(self) -> None:
        barrier = self._context.Barrier(self.capacity)
        self.pool = ProcessPoolExecutor(
            self.capacity, mp_context=self._context, initializer=init_worker, initargs=(barrier, True)
        )
        # one no-op per worker: returns once every process has started and imported control_dl,
        # so start-up time never counts against a run's timeout
        try:
            for future in [self.pool.submit(ready) for _ in range(self.capacity)]:
                future.result()
        except BrokenProcessPool as exc:
            self.pool.shutdown(wait=True, cancel_futures=True)
            raise worker_start_error("workers", self.capacity, "the sweep's worker processes", exc) from exc

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Schedule ``fn(*args)``.

        Parameters
        ----------
        fn : callable
            A picklable top-level function.
        *args
            Its arguments.

        Returns
        -------
        concurrent.futures.Future
            The pending call.
        """
        return self.pool.submit(fn, *args)

    def abort(self, futures: list[cf.Future]) -> None:
        """Stop the given running calls: kill every worker process and start a fresh pool.

        Parameters
        ----------
        futures : list of Future
            Calls to stop (the others in flight are lost too; see ``loses_inflight_on_abort``).
        """
        self._kill()
        self._start()

    def restart(self) -> None:
        """Replace a broken pool (a worker died) by a fresh one."""
        self._kill()
        self._start()

    def _kill(self) -> None:
        if hasattr(self.pool, "kill_workers"):  # Python >= 3.14
            self.pool.kill_workers()
        else:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def close(self, kill: bool = False) -> None:
        """Shut the pool down.

        Parameters
        ----------
        kill : bool
            Kill running calls instead of waiting for them.
        """
        if kill:
            self._kill()
        else:
            self.pool.shutdown(wait=True)


class DaskExecutor:
    """A ``dask.distributed`` client: a local cluster, or a running scheduler.

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"local"`` for a :class:`distributed.LocalCluster` of ``workers`` single-threaded worker
        processes; a scheduler address such as ``"tcp://10.0.0.1:8786"``; or a Client.
    workers : int
        Worker processes of a local cluster (unused otherwise: run_sweep refuses it next to a running
        scheduler).
    """

    loses_inflight_on_abort = False

    def __init__(self, scheduler: Any, workers: int) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise SpecError("scheduler: Dask is not installed; pip install 'control_dl[dask]'") from None
        self._owned: list[Any] = []
        if isinstance(scheduler, Client):
            self.client = scheduler
            wait_for_first_worker(self.client, "scheduler", scheduler, 120)
        elif scheduler == "local":
            cluster = start_local_cluster(workers, processes=True, field="workers", value=workers)
            self.client = Client(cluster)
            self._owned += [self.client, cluster]
        else:
            self.client = scheduler_client("scheduler", scheduler, 30, workers_timeout=120)
            self._owned.append(self.client)
        self.client.run(init_worker)
        self.capacity = max(1, sum(self.client.nthreads().values()))
        self._dask: dict[cf.Future, Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Schedule ``fn(*args)`` on the cluster.

        Parameters
        ----------
        fn : callable
            A picklable function.
        *args
            Its arguments.

        Returns
        -------
        concurrent.futures.Future
            Completed when the Dask task is.
        """
        future: cf.Future = cf.Future()
        task = self.client.submit(fn, *args, pure=False)
        self._dask[future] = task

        def transfer(done: Any) -> None:
            self._dask.pop(future, None)
            if done.status == "cancelled":
                future.cancel()
                future.set_running_or_notify_cancel()
                return
            try:  # fetching the value can fail too (its worker lost): the sweep must still hear of it
                future.set_result(done.result())
            except BaseException as exc:
                future.set_exception(exc)

        task.add_done_callback(transfer)
        return future

    def abort(self, futures: list[cf.Future]) -> None:
        """Cancel the given calls and restart the workers running them.

        Parameters
        ----------
        futures : list of Future
            Calls to stop.
        """
        tasks = [self._dask.pop(f) for f in futures if f in self._dask]
        keys = {t.key for t in tasks}
        busy = [addr for addr, running in self.client.processing().items() if keys & set(running)]
        for task in tasks:
            task.cancel()
        if busy:
            self.client.restart_workers(busy, raise_for_error=False)

    def restart(self) -> None:
        """Nothing to do: Dask replaces dead workers itself."""

    def close(self, kill: bool = False) -> None:
        """Close the client and the local cluster this object started.

        Parameters
        ----------
        kill : bool
            Cancel pending calls first.
        """
        if kill:
            for task in list(self._dask.values()):
                task.cancel()
        for owned in self._owned:
            owned.close()


def make_executor(workers: int, scheduler: Any = None) -> ProcessExecutor | DaskExecutor:
    """The executor for ``run_sweep``: a process pool, or Dask when ``scheduler`` is given.

    Parameters
    ----------
    workers : int
        Worker processes (process pool or local Dask cluster).
    scheduler : None, "local", str or distributed.Client
        None: process pool. Otherwise see :class:`DaskExecutor`.

    Returns
    -------
    ProcessExecutor or DaskExecutor
        A started executor.
    """
    if scheduler is None:
        return ProcessExecutor(workers)
    return DaskExecutor(scheduler, workers)
