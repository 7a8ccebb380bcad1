"""Run a sweep: expand the spec, skip finished runs, execute the rest, index every outcome.

The loop keeps at most ``capacity`` runs in flight, so a run starts as soon as it is submitted and
its timeout is measured from submission. Outcomes are written to the index by this process only,
one transaction each, after the worker has written the Result file.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import logging
import math
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .._errors import check_positive_float, check_positive_int, spec_error
from ._task import execute_run
from .executors import make_executor
from .store import RunStore
from .sweep import Run, SweepSpec, load_sweep

logger = logging.getLogger(__name__)


def run_sweep(
    spec_or_path: SweepSpec | dict[str, Any] | str | Path,
    out: str | Path,
    workers: int | None = None,
    scheduler: Any = None,
    timeout: float | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every run of a sweep that is not finished yet and return the sweep's index rows.

    Parameters
    ----------
    spec_or_path : SweepSpec, dict or path
        The sweep (see :mod:`control_dl.experiments.sweep` for the TOML format).
    out : str or Path
        Sweep folder: ``index.sqlite`` and ``runs/<run_id>.npz``. Re-running with the same folder
        resumes: runs indexed with their Result file present are skipped.
    workers : int, optional
        Local worker processes, or workers of a local Dask cluster (default 1). Not with a
        scheduler address or Client: a running cluster brings its own workers.
    scheduler : None, "local", str or distributed.Client
        None: a local process pool. ``"local"``: a Dask LocalCluster; an address
        (``"tcp://host:8786"``) or a Client: that Dask cluster.
    timeout : float, optional
        Seconds a run may take; a run over it is stopped and recorded as failed ("timeout").
    progress : bool
        Show a progress bar over the runs.

    Returns
    -------
    list of dict
        One index row per run of this sweep, in grid order (see :func:`load_runs`).

    Raises
    ------
    SpecError
        On a bad spec, bad arguments, or a folder another sweep is writing to.
    """
    spec = spec_or_path if isinstance(spec_or_path, SweepSpec) else load_sweep(spec_or_path)
    if workers is None:
        workers = 1
    else:
        check_positive_int("workers", workers)
        workers = int(workers)
        if scheduler is not None and not (isinstance(scheduler, str) and scheduler == "local"):
            raise spec_error("workers", workers, "sets up local workers: a running scheduler brings its own")
    if timeout is not None:
        check_positive_float("timeout", timeout)
        timeout = float(timeout)
    runs = spec.runs()
    with RunStore(out, writable=True) as store:
        store.remove_temporaries()
        finished = store.finished()
        todo = [run for run in runs if run.run_id not in finished]
        logger.info("sweep %r: %d runs, %d to do, results in %s", spec.name, len(runs), len(todo), out)
        with tqdm(total=len(runs), initial=len(runs) - len(todo), disable=not progress, desc=spec.name) as bar:
            if todo:
                _execute(todo, store, workers, scheduler, timeout, bar)
        rows = {row["run_id"]: row for row in store.rows()}
        return [rows[run.run_id] for run in runs if run.run_id in rows]


def _execute(runs: list[Run], store: RunStore, workers: int, scheduler: Any, timeout: float | None, bar: Any) -> None:
    executor = make_executor(workers, scheduler)
    try:
        _loop(runs, store, executor, timeout, bar)
    except BaseException:
        executor.close(kill=True)
        raise
    executor.close()


def _loop(runs: list[Run], store: RunStore, executor: Any, timeout: float | None, bar: Any) -> None:
    """Submit, wait, record; stop runs over the timeout; isolate runs that kill their worker.

    A run in flight when a worker process died is a suspect: it is run again alone, and recorded
    as failed if its worker dies again.
    """
    queue = collections.deque(runs)
    inflight: dict[cf.Future, tuple[Run, float]] = {}
    suspects: set[str] = set()

    def record(run: Run, outcome: dict[str, Any]) -> None:
        store.record(run, outcome)
        bar.update(1)

    def can_submit() -> bool:
        if not queue or any(run.run_id in suspects for run, _ in inflight.values()):
            return False
        return not inflight if queue[0].run_id in suspects else len(inflight) < executor.capacity

    while queue or inflight:
        while can_submit():
            run = queue.popleft()
            relative = store.result_file(run.run_id)
            future = executor.submit(execute_run, run.params, str(store.root / relative), relative)
            inflight[future] = (run, time.monotonic() + timeout if timeout else math.inf)
        deadline = min(d for _, d in inflight.values())
        wait = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
        done, _ = cf.wait(list(inflight), timeout=wait, return_when=cf.FIRST_COMPLETED)
        broken = False
        for future in done:
            run, _ = inflight.pop(future)
            try:
                outcome = future.result()
            except BrokenProcessPool:
                logger.warning("a worker process died while running %s", run.run_id)
                broken = True
                if run.run_id not in suspects:
                    suspects.add(run.run_id)
                    queue.appendleft(run)
                    continue
                outcome = _failure("worker process died (twice)")
            except Exception as exc:  # the executor's own failure (e.g. a Dask worker killed repeatedly)
                outcome = _failure(f"{type(exc).__name__}: {exc}")
            record(run, outcome)
        now = time.monotonic()
        expired = [f for f, (_, d) in inflight.items() if d <= now]
        for future in expired:
            record(inflight.pop(future)[0], _failure(f"timeout: ran over {timeout} s"))
        if expired:
            logger.warning("%d run(s) over the %s s timeout: stopping their worker(s)", len(expired), timeout)
            executor.abort(expired)
        if (expired and executor.loses_inflight_on_abort) or broken:
            if broken and not expired:
                executor.restart()
            for run, _ in inflight.values():
                if broken:
                    suspects.add(run.run_id)
                queue.appendleft(run)
            inflight.clear()


def _failure(message: str) -> dict[str, Any]:
    return {"status": "failed", "message": message, "error": message, "result_path": None}
