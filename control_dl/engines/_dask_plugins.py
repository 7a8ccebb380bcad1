"""Worker plugins of the local Dask clusters that :func:`~control_dl.engines.dask.start_local_cluster` starts.

A module of its own because it imports ``distributed`` (an optional dependency) at import time:
the plugin is a ``distributed.WorkerPlugin`` and is pickled by reference into each worker process.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from distributed import WorkerPlugin


class BindToCore(WorkerPlugin):
    """Binds the worker process named ``k`` to one core, ``cores[k mod len(cores)]``, when it starts.

    Every thread the process has then (``/proc/self/task``) gets the affinity; threads started
    later (the actor thread) inherit it. A worker the nanny restarts keeps its name, so it is
    bound to the same core again. Measured on the 2-core machine (ring S = 10⁵, 2 workers, 150
    f+grad in each of four alternating clusters): the median call is unchanged, the slowest
    tenth 22.1–24.3 ms against 25.3–28.9 ms unbound (the OS may then put both workers on one core
    for a while), the mean 0.5–1.5 ms lower, and L-BFGS-B solves 3 % faster (mean of 6 pairs).

    Parameters
    ----------
    cores : tuple of int
        CPU numbers (from ``os.sched_getaffinity``), one per worker of the cluster.
    """

    name = "control-dl-bind-to-core"

    def __init__(self, cores: tuple[int, ...]) -> None:
        self.cores = tuple(cores)

    def setup(self, worker: Any) -> None:
        core = self.cores[int(worker.name) % len(self.cores)]
        for thread in os.listdir("/proc/self/task"):
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(thread), {core})
