"""What a worker process does: set itself to one thread, and execute one run."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
import traceback
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def init_worker(barrier: Any = None, watch_parent: bool = False) -> None:
    """Initialise a worker process: one thread per process, then wait for the other workers.

    Runs in the worker process only (never in the caller's). Thread variables cover libraries loaded
    later (torch, a BLAS not loaded yet); ``threadpoolctl``, if installed, limits a BLAS already
    loaded; torch, if imported, gets one intra-op thread.

    Parameters
    ----------
    barrier : multiprocessing.Barrier, optional
        Passed by the process pool so that every worker is up before the first deadline starts.
    watch_parent : bool
        Exit as soon as the parent process dies (a pool worker would otherwise wait forever for
        work from a sweep killed with SIGKILL).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    # progress bars are off in workers; a thread lock keeps tqdm from creating a named semaphore that a
    # worker killed on timeout would leak
    from tqdm.std import tqdm

    tqdm.set_lock(threading.RLock())
    parent = multiprocessing.parent_process()
    if watch_parent and parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True, name="watch-parent").start()
    if barrier is not None:
        try:
            barrier.wait(timeout=120)
        except Exception:  # a broken barrier only costs start-up time
            pass


def _exit_with(sentinel: int) -> None:
    """Block until the parent process is gone, then end this worker at once."""
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def ready() -> int:
    """A no-op task that returns the worker's pid (used to wait until the workers are up).

    Returns
    -------
    int
        Process id.
    """
    return os.getpid()


def execute_run(params: dict[str, Any], result_path: str, relative_path: str) -> dict[str, Any]:
    """Build, solve and save one run; never raises.

    Parameters
    ----------
    params : dict
        ``Run.params``: normalised problem spec, solver options and seed (and ``data_sha256``: a
        data file that no longer has it fails the run rather than record a result on other data).
    result_path : str
        Where to save the Result (atomically).
    relative_path : str
        The same path relative to the sweep folder (stored in the index).

    Returns
    -------
    dict
        ``status``, metrics, ``message``, ``error`` (traceback text when the run raised) and
        ``result_path`` (None when no Result was written).
    """
    from control_dl._errors import SpecError
    from control_dl.problems.spec import build_problem, normalise
    from control_dl.solvers.base import solve
    from control_dl.solvers.catalog import solver_from_options

    try:
        problem = build_problem(normalise(params["problem"]))
        read = (problem.data.source or {}).get("sha256")
        if "data_sha256" in params and read != params["data_sha256"]:
            raise SpecError(
                f"path={params['problem']['data']['path']!r}: the data file changed after the sweep was "
                f"expanded (SHA-256 {params['data_sha256'][:12]}…, read {str(read)[:12]}…); run the sweep "
                "again: the new file is a new run"
            )
        options = dict(params["solver"])
        solver = solver_from_options(options.pop("solver"), options)
        result = solve(problem, solver, seed=params["seed"], progress=False)
        result.save(result_path)
    except Exception as exc:
        return {"status": "failed", "message": f"{type(exc).__name__}: {exc}", "error": traceback.format_exc()}
    outcome = {k: getattr(result, k) for k in ("status", "objective", "loss", "accuracy", "test_accuracy")}
    outcome.update(
        wall_time=result.wall_time,
        iterations=result.iterations,
        message=result.message,
        error=None,
        result_path=relative_path,
    )
    return outcome
