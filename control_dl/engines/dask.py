r"""Data-parallel evaluation on a ``dask.distributed`` cluster: one local engine per shard of samples.

J is a sum over samples plus a regulariser (docs/math/ocp.md), so with the batch's columns split into
shards s = 1..m of sizes S_s (Σ_s S_s = S),

    J(w) = Σ_s J_s(w),   J_s(w) = (1/S) Σ_{i ∈ s} [ ℓ(λ2(x_{N,i}), y_i) + h Σ_{k=1}^{N} r(x_{k,i}) ] + [s = 1] R(θ),

and likewise ∇J = Σ_s ∇J_s, the Gauss-Newton product G v = Σ_s G_s v (G is a sum of per-sample
terms J_Ŷᵀ ∇²ℓ J_Ŷ / S plus the exact Hessian of R and the running terms), and each term a_k of
the augmented Hamiltonian of E-MSA (Li, Chen, Tai & E 2018), a sum over samples. Each shard is a
local engine bound once with ``normaliser = S`` and the regulariser on shard 1 only
(:func:`~control_dl.engines.make_engine`), so the shards' answers simply add. This is how
full-batch L-BFGS is distributed for large logistic regressions (broadcast w, reduce f and ∇f;
e.g. Spark MLlib's L-BFGS).

Per evaluation only w (n_params floats) goes out and (J, loss, ∇J, sample count, correct-class
count) comes back; the predictions λ2(x_N) (n_out × S_s floats per shard: 800 kB for a ring shard
of 10⁵ samples, against 2 kB for the rest of its answer) only with ``predictions=True``. The shards' data stay on the workers, sent once at bind. Each
shard lives in a Dask *actor* (a worker-resident object, not a scheduler task: ~17 ms per task
round trip). Its calls travel by one of two transports (``Dask.transport``): a direct TCP
connection per shard (:mod:`._channel`; the default on tcp clusters), or Dask's actor calls
(~1 ms per round trip on a local cluster, plus ~2 ms of the driver's CPU and ~1 ms of the
worker's per call, which on two cores the shards' compute pays for). The clients this engine
opens talk to the workers directly (``direct_to_workers``), not relayed by the scheduler.
Results are added in shard order, so a run is reproducible for a given number of shards.

Faults. Every evaluation counts the samples that answered and raises :class:`DaskEngineError`
when the count is not S (never a silent wrong sum). A shard's direct connection closes when its
worker stops, and Dask tells which workers are gone. When a worker is lost, its shards are sent
again from the driver (which keeps x and y) to a live worker, bound there, and the call is
repeated (at most ``retries`` times per call); a Sweep kept on a lost worker is recomputed from
its w. A call whose connection broke while its worker lives is repeated there. What the local
engine itself raises is wrapped on the worker (:class:`_ShardRaised`), so that the driver never
takes it for a fault of the cluster: it is raised at once, as it was raised on the worker. When
recovery is impossible (no worker left, ``timeout`` exceeded) the evaluation raises
:class:`DaskEngineError`, a RuntimeError that the solvers report as status ``"failed"``; with
``checkpoint_every`` set, the last good w is on disk and ``control-dl solve --resume`` goes on.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection
from typing import Any, ClassVar

import numpy as np

from .._errors import (
    SpecError,
    check_bool,
    check_choice,
    check_positive_float,
    check_positive_int,
    python_scalars,
    require_rerunnable_main,
    spec_error,
    worker_start_error,
)
from ..problems.costs import predict_labels
from ._auto import Auto
from ._base import Engine, EngineSpec, Evaluation, StageValues, Sweep
from ._channel import ChannelError, connect_channel, encode_call, receive_answer, send_call, serve_channel

logger = logging.getLogger(__name__)

__all__ = ["LOCAL_CLUSTER_CONFIG", "Dask", "DaskEngine", "DaskEngineError"]


class DaskEngineError(RuntimeError):
    """A data-parallel evaluation could not be completed with every sample counted."""


class _Lost(Exception):
    """A shard's worker is gone (internal: the shard is rebuilt and the call repeated)."""


class _HungUp(Exception):
    """A call's connection broke while the shard's worker lives (internal: the call is repeated; a
    direct connection is dialled again first)."""


class _ShardRaised(Exception):
    """What a shard's method raised on its worker (its local engine, or the shard's own work), sent
    back as the method's answer, so that the driver never takes it for a fault of the cluster (the
    OSError of a broken connection looks like an engine's own OSError). Returned, not raised: a
    raised wrapper would carry the error as its ``__context__``, which tblib's exception pickling
    (installed by distributed) sends along, unpicklable or not.

    ``error`` is the exception itself when it survives a pickle round trip unchanged (type and
    message), else None: an exception whose ``__init__`` does not take its ``args`` back, or that
    holds a lock, would fail to unpickle at the driver (a Dask actor call then never returns) or
    come back different. ``description`` ("module.Type: message") names it in either case.
    """

    def __init__(self, error: BaseException | None, description: str) -> None:
        super().__init__(error, description)
        self.error, self.description = error, description

    @classmethod
    def wrap(cls, error: BaseException) -> _ShardRaised:
        """``error`` wrapped, or only described when it does not survive pickling unchanged."""
        import cloudpickle  # a dependency of distributed; pickles the classes of a driver's __main__ by value

        description = f"{type(error).__module__}.{type(error).__qualname__}: {error}"
        try:
            copy = cloudpickle.loads(cloudpickle.dumps(error))
            same = type(copy).__qualname__ == type(error).__qualname__ and str(copy) == str(error)
        except Exception:
            same = False
        return cls(error if same else None, description)


#: seconds between checks that a shard's worker is alive while waiting for its answer
_POLL = 0.5

#: seconds to wait for a shard's direct connection when ``Dask.timeout`` is None
_DIAL_S = 30.0

#: seconds to wait for a worker to join when none is left mid-solve, when ``Dask.timeout`` is None
#: (a nanny restarts a killed worker process in about 2 s here)
_REJOIN_S = 10.0

#: A method whose last call took less than this (seconds) runs on the worker's event loop
#: (distributed's ``separate_thread=False``) instead of the worker's actor thread: no hand-off
#: between threads in the worker, measured 0.6–0.7 ms less per call on a local cluster. Longer
#: calls stay in the actor thread so that the worker's event loop (heartbeats, the scheduler's
#: requests) is never blocked for long; distributed warns from 3 s.
_INLINE_S = 0.25

#: Dask config for the local clusters this engine starts (all measured here, ring shards):
#:
#: - glibc's allocator in the workers. Dask's nannies set MALLOC_TRIM_THRESHOLD_ = 64 KiB in every
#:   worker, which also freezes the mmap threshold at 128 KiB: each array of a large shard is then
#:   mmap-ed, zero-filled and unmapped on every evaluation (a numpy loop on 3 × 10⁵ arrays 8×
#:   slower in a worker than in the driver). A 32 MiB mmap threshold keeps such arrays on the heap,
#:   and a 1 GiB trim threshold keeps the freed heap for the next evaluation instead of returning
#:   it to the system and faulting it in again (torch f+grad on 5·10⁴ samples: 28.2 → 26.5 ms,
#:   a third of the page faults, half the system time; two such processes at once no longer slow
#:   each other down by 5–11 %). A worker's resident set stays at its largest evaluation's.
#:   One arena (MALLOC_ARENA_MAX = 1): the shard computes in a thread other than the worker's main
#:   one, and such a thread's arena grows in heaps of at most 64 MiB, each returned to the system
#:   whenever it empties, whatever the trim threshold. A working set above 64 MiB (ring's full
#:   10⁵-sample shard) then faulted in 30–57 MB again on some evaluations: 12 900–14 650 page
#:   faults and +20 ms on 3–5 of a solve's 45 f+grad (of 30 ms), none with one arena. L-BFGS-B on
#:   ring S = 10⁵, median time to target of 3 solves in each of three alternating runs: 1 worker
#:   1.29–1.33 s against 1.34–1.38 s, 2 workers 0.75–0.79 s against 0.77–0.83 s.
#: - Background work of the event loops, CPU that the shards' compute needs when there is one core
#:   per worker. The workers' statistical profiler (a stack walk of the computing thread every
#:   10 ms, for a dashboard these clusters do not start) is off; the latency probe (every 20 ms),
#:   the system monitor (0.5 s) and the memory monitor of the nannies and workers (0.1 s) run every
#:   1 s, 5 s and 1 s. Idle, a 2-worker cluster then costs 9.5 ms of CPU per second in all, against
#:   22 ms with only the first two slowed (the memory limits are checked every second).
#:
#: Use it for your own clusters too (``dask.config.set(LOCAL_CLUSTER_CONFIG)`` before starting them).
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 2**25,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 2**30,
    "distributed.nanny.pre-spawn-environ.MALLOC_ARENA_MAX": 1,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


#: ``Dask.transport`` values (see :class:`Dask`).
TRANSPORTS = ("auto", "socket", "actor")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SpecError("engine='dask' needs the 'dask' extra: pip install 'control_dl[dask]'") from None
    return distributed


def check_scheduler_address(field: str, address: str) -> None:
    """Raise a SpecError naming ``field`` unless ``address`` is a Dask scheduler address.

    Parameters
    ----------
    field : str
        The option that holds the address (``client``, ``scheduler``).
    address : str
        E.g. ``"tcp://10.0.0.1:8786"`` (the protocol defaults to tcp; tcp and tls need a port).

    Raises
    ------
    SpecError
        Dask is not installed, or the address does not parse, or its protocol is not one of
        Dask's (``distributed.comm.registry.backends``: tcp, tls, ws, wss, inproc, ucx).
    """
    _import_distributed()
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in registry.backends:
            raise ValueError(f"{scheme!r} is not a Dask protocol; those are {sorted(registry.backends)}")
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise spec_error(field, address, f"not a Dask scheduler address like 'tcp://host:8786' ({exc})") from None


def _probe_scheduler(address: str, timeout: float) -> None:
    """Connect to ``address`` and complete Dask's handshake within ``timeout`` seconds, then hang up.

    ``distributed.Client(address, timeout=...)`` bounds the connection but not the handshake that
    follows: a service that accepts and stays silent (an HTTP server, e.g. the dashboard's port)
    kept a client waiting for good (seen here: 4 minutes, then killed). The probe runs on an
    event loop of its own in a helper thread, so it also works where the caller's thread already
    runs one (a notebook).

    Raises
    ------
    TimeoutError
        No handshake within ``timeout`` + 1 s.
    Exception
        Whatever the connection raised (OSError for a refused port; a service that answers with
        something else than Dask's protocol can make the reader fail in other ways).
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def probe() -> None:  # connect's own timeout reports a refused port; ours the handshake
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout + 1)
        await comm.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, probe()).result()


def scheduler_client(
    field: str, address: str, timeout: float, workers_timeout: float | None = None, **client_options: Any
) -> Any:
    """A ``distributed.Client`` on the scheduler at ``address`` with at least one worker connected.

    Parameters
    ----------
    field : str
        The option that holds the address (named in the errors).
    address : str
        Scheduler address.
    timeout : float
        Seconds to wait for the scheduler.
    workers_timeout : float, optional
        Seconds to wait, after connecting, for a first worker (default ``timeout``).
    **client_options
        Passed to ``distributed.Client`` (e.g. ``direct_to_workers=True``).

    Returns
    -------
    distributed.Client
        The connected client (the caller closes it).

    Raises
    ------
    SpecError
        The address does not parse, no scheduler answers there, or no worker joins it in time.
    """
    check_scheduler_address(field, address)
    distributed = _import_distributed()
    try:
        _probe_scheduler(address, timeout)
        client = distributed.Client(address, timeout=timeout, **client_options)
    except Exception as exc:  # refused, timed out, or not Dask's protocol (any reader failure)
        if isinstance(exc, TimeoutError):
            why = f"no Dask handshake within {timeout + 1:g} s"
        else:
            why = f"{type(exc).__name__}: {exc}"
        raise spec_error(field, address, f"no Dask scheduler answered there ({why})") from None
    try:
        wait_for_first_worker(client, field, address, timeout if workers_timeout is None else workers_timeout)
    except SpecError:
        client.close()
        raise
    return client


#: seconds of waiting for a scheduler's first worker before saying so (a log warning)
_QUIET_WAIT_S = 5.0


def check_connected(client: Any, field: str, value: object) -> None:
    """Raise a SpecError naming ``field`` unless ``client`` is connected to a scheduler.

    Parameters
    ----------
    client : distributed.Client
        The user's client.
    field, value : str, object
        The option that gave it, and its value (in the error).

    Raises
    ------
    SpecError
        The client is closed, or lost its scheduler (its cluster was closed).
    """
    if client.status != "running" or client.scheduler is None:
        raise spec_error(
            field,
            value,
            f"is not connected to a scheduler (client status {client.status!r}): pass a running Client "
            "or a scheduler address",
        )


def wait_for_first_worker(client: Any, field: str, value: object, wait: float) -> None:
    """Return once a worker is connected to ``client``'s scheduler; after 5 s, log that it waits.

    Parameters
    ----------
    client : distributed.Client
        A connected client.
    field, value : str, object
        The option that named the scheduler, and its value (in the error).
    wait : float
        Seconds to wait in all.

    Raises
    ------
    SpecError
        The client is not connected (:func:`check_connected`), or no worker joined within ``wait`` seconds.
    """
    check_connected(client, field, value)
    none = spec_error(field, value, f"the scheduler has no worker (none joined in {wait:g} s)")
    quiet = min(wait, _QUIET_WAIT_S)
    try:
        client.wait_for_workers(1, timeout=quiet)
        return
    except (OSError, TimeoutError):
        if wait <= quiet:
            raise none from None
    logger.warning(
        "no worker has joined the Dask scheduler at %s yet: waiting up to %g s more",
        client.scheduler.address,
        wait - quiet,
    )
    try:
        client.wait_for_workers(1, timeout=wait - quiet)
    except (OSError, TimeoutError):
        raise none from None


def cores_to_bind(workers: int, processes: bool) -> tuple[int, ...] | None:
    """The cores a local cluster's worker processes are bound to (worker k to the k-th), or None.

    Cores only when the workers are processes that fill exactly the cores this process may run on
    (``os.sched_getaffinity``; Linux). Otherwise None, and the OS places the workers: with more
    workers, binding would stack two on a core; with fewer, two clusters started side by side
    (two experiments on one server) would both be bound to the same first cores.

    Parameters
    ----------
    workers, processes : int, bool
        As for :func:`start_local_cluster`.

    Returns
    -------
    tuple of int or None
        The CPU numbers this process may run on, ascending; None to leave placement to the OS.
    """
    if not processes or not hasattr(os, "sched_getaffinity") or not os.path.isdir("/proc/self/task"):
        return None
    cores = tuple(sorted(os.sched_getaffinity(0)))
    return cores if workers == len(cores) else None


def start_local_cluster(workers: int, processes: bool, field: str, value: object) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded workers set up for training.

    With :data:`LOCAL_CLUSTER_CONFIG`, no dashboard, and the scheduler's HTTP server (health
    routes) on a free port: on its default 8787 a second cluster warns that the port is in use.
    Worker processes are bound to a core each where :func:`cores_to_bind` gives cores (see
    :class:`~control_dl.engines._dask_plugins.BindToCore`).

    Parameters
    ----------
    workers : int
        Worker count.
    processes : bool
        Worker processes (True) or threads of this process.
    field, value : str, object
        The option that asked for the cluster (named if its processes cannot start).

    Returns
    -------
    distributed.LocalCluster
        The running cluster (the caller closes it).

    Raises
    ------
    SpecError
        Dask is not installed; the worker processes are spawned (Dask's default) from a main script
        they cannot re-run (:func:`~control_dl._errors.require_rerunnable_main`, checked before
        any starts); or they could not start (:func:`~control_dl._errors.worker_start_error`).
    """
    distributed = _import_distributed()
    import dask

    from ._dask_plugins import BindToCore

    if processes and dask.config.get("distributed.worker.multiprocessing-method") == "spawn":
        require_rerunnable_main(field, value, "the local Dask worker processes")
    cores = cores_to_bind(workers, processes)
    try:
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            return distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": ":0"},
                plugins=() if cores is None else (BindToCore(cores),),
            )
    except RuntimeError as exc:  # "Nanny failed to start"
        if not processes:
            raise
        raise worker_start_error(field, value, "the local Dask worker processes", exc) from exc


@dataclass(frozen=True)
class Dask(EngineSpec):
    """Options of the data-parallel engine (bound per batch by :meth:`bind`).

    Parameters
    ----------
    client : None, str or distributed.Client
        None: start a :class:`distributed.LocalCluster` of ``workers`` single-threaded worker
        processes, owned (and closed) by the bound engine. A scheduler address such as
        ``"tcp://10.0.0.1:8786"``: connect to that cluster. A Client: use it (not closed).
    n_shards : int, optional
        Number m of shards the batch columns are split into (default: the number of workers).
        Results are reproducible for a given m; shards are placed round-robin on the workers.
    local : str or EngineSpec
        The engine each worker runs on its shard (``"auto"``, ``"casadi"``, ``"torch"`` or a
        spec object). ``"auto"`` (or an :class:`~control_dl.engines.Auto` spec) is resolved once,
        on the first shard, and the winning candidate is used for all shards; the bound engine's
        ``info["local_info"]`` keeps what was timed and why.
    workers : int, optional
        Worker processes of the local cluster (default: the CPU count); only with ``client=None``.
    processes : bool, optional
        Local cluster workers as processes (default True) or threads of this process (fast to
        start, shares the GIL: for tests); only with ``client=None``.
    timeout : float, optional
        Seconds one shard may take to answer one call before the evaluation fails (default: wait).
        Also bounds each step of binding a shard (then a SpecError naming it), reaching a
        scheduler address (default 30 s), waiting for its first worker (default 120 s), opening
        a shard's direct connection (default 30 s) and, when no worker is left during a solve,
        waiting for one to join (default 10 s: a nanny restarts a killed worker in about 2 s).
    retries : int
        Times a call is repeated after its shard was rebuilt on another worker (worker lost) or
        after its connection broke while the worker lives (a direct connection is dialled again).
        An error the local engine itself raises is raised at once, as it was raised on the worker.
    predictions : bool
        Send each shard's predictions λ2(x_N) back with every evaluation (``Evaluation.predictions``,
        ``n_out × S``). Off (default), only the sums and counts travel: ``predictions`` is None and
        classification accuracies come from ``Evaluation.n_correct``, counted on the shards.
    transport : {"auto", "socket", "actor"}
        How the calls reach the shards. ``"socket"``: one direct TCP connection per shard, opened
        at bind and authenticated with a random key (:mod:`~control_dl.engines._channel`); the
        worker computes in a thread of its own; Dask still places the shards, holds their data and
        reports lost workers. ``"actor"``: every call is a Dask actor call (Dask's comms, its TLS).
        ``"auto"`` (default): ``"socket"`` when the scheduler's address is tcp, with a warning and
        ``"actor"`` if a worker cannot be reached that way; ``"actor"`` on other protocols (tls:
        the socket is not encrypted; inproc, ws, ucx). Measured on a local 2-worker cluster, ring
        S = 10⁵: 17.2–18.4 against 19.0–20.0 ms per f+grad (docs/benchmarks/dask.md).

    Raises
    ------
    SpecError
        A field out of range or of the wrong type (the message names it), ``workers`` or
        ``processes`` set with a ``client``, a scheduler address Dask cannot parse, or Dask not
        installed (the message names the extra ``dask``); on binding, ``transport="socket"`` where
        a shard's worker cannot be reached by a direct connection.
    """

    name: ClassVar[str] = "dask"

    client: Any = None
    n_shards: int | None = None
    local: str | EngineSpec = "auto"
    workers: int | None = None
    processes: bool | None = None
    timeout: float | None = None
    retries: int = 2
    predictions: bool = False
    transport: str = "auto"

    def __post_init__(self) -> None:
        python_scalars(self)  # a lock's wait refuses an np.float32 timeout
        if isinstance(self.client, str):
            check_scheduler_address("client", self.client)
        elif self.client is not None:
            distributed = _import_distributed()
            if not isinstance(self.client, distributed.Client):
                raise spec_error(
                    "client",
                    self.client,
                    f"must be None, a scheduler address or a Client, not {type(self.client).__name__}",
                )
        for field, value in (("n_shards", self.n_shards), ("workers", self.workers)):
            if value is not None:
                check_positive_int(field, value)
        if self.client is not None:
            for field in ("workers", "processes"):
                if getattr(self, field) is not None:
                    raise spec_error(field, getattr(self, field), "sets up a local cluster: only with client=None")
        if self.processes is not None:
            check_bool("processes", self.processes)
        check_bool("predictions", self.predictions)
        check_choice("transport", self.transport, TRANSPORTS)
        if isinstance(self.local, Dask) or (
            not isinstance(self.local, EngineSpec) and self.local not in ("auto", "casadi", "torch")
        ):
            raise spec_error("local", self.local, "must be a local engine: 'auto', 'casadi', 'torch' or their spec")
        if self.timeout is not None:
            check_positive_float("timeout", self.timeout)
        check_positive_int("retries", self.retries, minimum=0)

    def bind(
        self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float | None = None, regulariser: bool = True
    ) -> DaskEngine:
        """Split (x, y) into shards, send each once to a worker and bind a local engine there.

        Parameters
        ----------
        problem : TrainingProblem
            What to evaluate; shipped to the workers without its data (must pickle).
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.
        normaliser : float, optional
            n in J's (1/n) Σ_i (default S).
        regulariser : bool
            Include R(θ) (on the first shard).

        Returns
        -------
        DaskEngine
            The bound engine; close it (or use it as a context manager) to release the workers.

        Raises
        ------
        SpecError
            Dask is not installed, more shards than samples, or the problem does not pickle.
        """
        return DaskEngine(self, problem, x, y, normaliser, regulariser)


def _shard_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """A :class:`_ShardWorker` method run under the process lock, answering :class:`_ShardRaised` when it raises.

    BaseExceptions too: a KeyboardInterrupt or SystemExit raised by the local engine would
    otherwise end the serving thread, the worker process or an in-process cluster's event loop;
    the driver raises it instead, as the local engine alone would.
    """

    @functools.wraps(method)
    def run(self: _ShardWorker, *args: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args)
            except BaseException as exc:
                return _ShardRaised.wrap(exc)

    return run


class _ShardWorker:
    """The Dask actor holding one shard and the local engine bound to it (lives on a worker).

    Every call holds a process-wide lock: workers that are threads of one process
    (``processes=False``) would otherwise build and run CasADi Functions concurrently, and CasADi
    is not thread-safe (a segfault seen in the tests). Worker processes are unaffected: the actors
    of one worker already run one call at a time.
    """

    _lock = threading.Lock()

    def __init__(
        self, local: Any, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float, regulariser: bool
    ) -> None:
        from distributed import get_worker

        from . import make_engine

        self.worker = get_worker()  # built in the actor's creation task, on its worker
        with self._lock:
            self.engine = make_engine(local, problem, x, y, normaliser, regulariser)
        self.sweeps: dict[int, Sweep] = {}
        self.task, self.loss = problem.data.task, problem.cost.loss
        # the class of each target: predict_labels inverts encode_targets (0/1 rows, one-hot columns)
        self.labels = None if self.task == "regression" else predict_labels(self.task, self.loss, np.asarray(y))

    def open_channel(self, key: bytes, timeout: float) -> tuple[str, int]:
        """Listen on this worker's host for the driver's direct connection (:mod:`._channel`)."""
        from distributed.comm.addressing import get_address_host, parse_address

        scheme, _ = parse_address(self.worker.address)
        host = get_address_host(self.worker.address) if scheme in ("tcp", "tls") else "127.0.0.1"  # inproc: here
        return serve_channel(self, host, key, timeout, self.serving)

    def serving(self) -> bool:
        """Whether this actor's worker still runs (a closing worker's direct connection stops answering)."""
        from distributed.core import Status

        return self.worker.status in (Status.running, Status.paused)

    def engine_info(self) -> dict[str, Any]:
        """The local engine's ``info`` (its name; with ``"auto"``, what was timed and why it won)."""
        return {"name": self.engine.name, **self.engine.info}

    def memory(self) -> dict[str, int]:
        """Bytes of the shard's arrays and the worker process's resident set size."""
        import psutil  # a dependency of distributed

        rss = int(psutil.Process(os.getpid()).memory_info().rss)
        return {"shard_bytes": int(self.engine.x.nbytes + self.engine.y.nbytes), "rss": rss}

    @_shard_method
    def evaluate(self, w: np.ndarray, gradient: bool, predictions: bool) -> Evaluation:
        """The local engine's Evaluation, with the correct-class count and without the predictions
        unless asked (they are what makes an answer large: n_out × S_s floats against n_params)."""
        ev = self.engine.evaluate(w, gradient)
        correct = None
        # an engine may leave out the predictions (Evaluation allows it); a wrong n_samples fails the
        # driver's count check
        if self.labels is not None and ev.predictions is not None and ev.n_samples == self.labels.size:
            correct = int(np.count_nonzero(predict_labels(self.task, self.loss, ev.predictions) == self.labels))
        return dataclasses.replace(ev, predictions=ev.predictions if predictions else None, n_correct=correct)

    @_shard_method
    def gauss_newton_product(self, w: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, int]:
        return self.engine.gauss_newton_product(w, v), self.engine.n_samples

    @_shard_method
    def states(self, w: np.ndarray) -> list[np.ndarray]:
        return self.engine.states(w)

    @_shard_method
    def sweep(self, token: int, w: np.ndarray, release: list[int]) -> int:
        for old in release:
            self.sweeps.pop(old, None)
        self.sweeps[token] = self.engine.sweep(w)
        return self.engine.n_samples

    @_shard_method
    def augmented_hamiltonian(
        self, token: int, w: np.ndarray, thetas: list[np.ndarray], rho: float, hessian: bool
    ) -> tuple[StageValues, int]:
        sweep = self.sweeps.get(token)
        if sweep is None:  # this shard was rebuilt after a worker was lost: recompute its sweep
            sweep = self.sweeps[token] = self.engine.sweep(w)
        return self.engine.augmented_hamiltonian(sweep, thetas, rho, hessian), self.engine.n_samples


@dataclass
class _Shard:
    """Driver-side record of one shard: its columns [start, stop), its actor and where it lives."""

    start: int
    stop: int
    future: Any = None
    actor: Any = None
    worker: str = ""
    channel: Any = None  # the direct connection (transport "socket"), a multiprocessing Connection

    def hang_up(self) -> None:
        """Close the direct connection, if any (its worker ends the serving thread)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class _SweepHandle:
    """Sweep.handle of a Dask engine: which engine, and the token of the sweeps kept on the workers."""

    engine_id: int
    token: int


def _stub_data(data: Any) -> Any:
    """A copy of the Dataset with one training and one test column (same n_in, task, classes, n_out).

    The workers never read ``problem.data`` (each gets its shard), so shipping it whole would only
    cost memory; the kept columns are those with the largest labels so ``n_classes`` is unchanged.
    """
    from ..problems.datasets import Dataset

    def keep(y: np.ndarray) -> list[int]:
        return [0] if data.task == "regression" else [int(np.argmax(y))]

    train, test = keep(data.y_train), keep(data.y_test)
    y_train = data.y_train[:, train] if data.task == "regression" else data.y_train[train]
    y_test = data.y_test[:, test] if data.task == "regression" else data.y_test[test]
    return Dataset(data.x_train[:, train], y_train, data.x_test[:, test], y_test, data.task, data.name)


def _shippable(problem: Any) -> Any:
    """The problem without its data and caches (compiled Functions are rebuilt on the workers).

    Raises
    ------
    SpecError
        The problem (e.g. a user vector field) cannot be pickled by cloudpickle.
    """
    import cloudpickle

    light = dataclasses.replace(problem, data=_stub_data(problem.data))
    try:
        cloudpickle.dumps(light)
    except Exception as exc:
        raise spec_error("engine", "dask", f"the problem must pickle to reach the workers ({exc})") from None
    return light


def _close_owned(owned: list[Any]) -> None:
    for item in owned:
        try:
            item.close()
        except Exception:  # already closed, or its event loop is gone at interpreter exit
            logger.debug("closing %r failed", item, exc_info=True)


class DaskEngine(Engine):
    """The bound data-parallel engine (see the module docstring); made by :meth:`Dask.bind`.

    Parameters
    ----------
    spec : Dask
        Options.
    problem : TrainingProblem
        What to evaluate.
    x, y : ndarray
        Inputs ``n_in × S`` and encoded targets ``n_out × S`` (kept here to rebuild lost shards).
    normaliser : float, optional
        n in J's (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ).

    Attributes
    ----------
    info : dict
        ``name``, ``local`` (the local engine's name), ``local_info`` (the first shard's engine
        ``info``: with ``local="auto"``, its ``"auto"`` entry says what was timed and why that engine
        won), ``transport`` ("socket" or "actor": how the calls travel), ``n_shards``, ``workers``,
        ``scheduler``, ``bind_time`` (s) and ``rebuilt_shards`` (shards re-sent after a worker was
        lost, while binding or later).

    Raises
    ------
    SpecError
        Dask is not installed, ``n_shards`` exceeds S, the problem does not pickle, a shard
        could not be bound within ``timeout``, or (``transport="socket"``) a shard's worker cannot
        be reached directly.
    DaskEngineError
        No worker is connected to the scheduler.
    """

    name = "dask"
    _ids = itertools.count()

    def __init__(
        self,
        spec: Dask,
        problem: Any,
        x: np.ndarray,
        y: np.ndarray,
        normaliser: float | None = None,
        regulariser: bool = True,
    ) -> None:
        super().__init__(problem, x, y, normaliser, regulariser)
        distributed = _import_distributed()
        started = time.perf_counter()
        self.spec = spec
        self._id = next(self._ids)
        self._tokens = itertools.count()
        self._released: list[int] = []
        self._last_call_s: dict[str, float] = {}  # method -> seconds its last call took (see _INLINE_S)
        self._closed = False
        self._lock = threading.RLock()
        n_shards = spec.n_shards
        if n_shards is not None and n_shards > self.n_samples:
            raise spec_error(
                "n_shards",
                n_shards,
                f"must be <= the number of samples S={self.n_samples} of the batch the engine is bound to "
                "(mini-batch MSA binds one per batch of batch_size samples)",
            )
        self._light = _shippable(problem)
        self.client, owned = self._connect(distributed)
        self._finalizer = weakref.finalize(self, _close_owned, owned)
        self._transport = self._choose_transport()
        if self._transport == "actor" and not self.client.direct_to_workers:
            logger.warning(
                "the scheduler relays every call of the Dask engine: Client(..., direct_to_workers=True) "
                "saves a hop per call"
            )
        try:
            workers = self._live_workers()
            n_shards = n_shards or min(len(workers), self.n_samples)
            edges = np.linspace(0, self.n_samples, n_shards + 1).round().astype(int)
            self._shards = [_Shard(int(a), int(b)) for a, b in itertools.pairwise(edges)]
            self._local = spec.local
            self.info["rebuilt_shards"] = 0
            self._place_live(0, workers[0])
            local_info = self._bound(0, self._shards[0].actor.engine_info())
            if isinstance(self._local, str) and self._local == "auto":
                self._local = Auto()
            if isinstance(self._local, Auto):  # one choice for every shard: the candidate shard 0 timed fastest
                self._local = getattr(self._local, str(local_info["name"]))
            for i in range(1, n_shards):
                self._place_live(i, workers[i % len(workers)])
        except BaseException:
            self.close()
            raise
        self.info.update(
            local=str(self._local if isinstance(self._local, str) else self._local.name),
            local_info=local_info,
            transport=self._transport,
            n_shards=n_shards,
            workers=len(workers),
            scheduler=str(self.client.scheduler.address),
            bind_time=time.perf_counter() - started,
        )

    # ----------------------------------------------------------------------------- cluster
    def _connect(self, distributed: Any) -> tuple[Any, list[Any]]:
        """The client, and what this engine started (and must close)."""
        spec = self.spec
        if isinstance(spec.client, distributed.Client):
            check_connected(spec.client, "client", spec.client)
            return spec.client, []
        # direct_to_workers: actor calls go straight to the worker; otherwise the scheduler relays
        # every call and its answer (one more hop, and the answer is (de)serialised once more)
        if spec.client is not None:
            client = scheduler_client(
                "client", spec.client, spec.timeout or 30, workers_timeout=spec.timeout or 120, direct_to_workers=True
            )
            return client, [client]
        cluster = start_local_cluster(
            spec.workers or os.cpu_count() or 1,
            processes=True if spec.processes is None else spec.processes,
            field="engine",
            value=f"Dask(workers={spec.workers})",
        )
        client = distributed.Client(cluster, direct_to_workers=True)
        return client, [client, cluster]

    def _choose_transport(self) -> str:
        """``spec.transport``, with ``"auto"`` made "socket" on a tcp scheduler and "actor" on others."""
        from distributed.comm.addressing import parse_address

        scheme = parse_address(self.client.scheduler.address)[0]
        if self.spec.transport == "socket" and scheme == "tls":
            logger.warning("transport='socket' on a tls:// cluster: w and the shards' answers travel unencrypted")
        if self.spec.transport != "auto":
            return self.spec.transport
        return "socket" if scheme == "tcp" else "actor"

    def _worker_addresses(self) -> list[str]:
        """Addresses of the workers now connected to the scheduler, sorted (maybe none).

        Raises
        ------
        DaskEngineError
            The scheduler cannot be reached.
        """
        if self.client.status in ("closing", "closed"):  # a Client passed in and closed by its owner mid-solve
            raise DaskEngineError(
                f"the Dask Client this engine uses was closed (client status {self.client.status!r}): keep it open "
                "until the solve ends"
            )
        try:
            return list(self.client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.workers)))
        except Exception as exc:  # OSError, CommClosedError, TimeoutError: the scheduler is gone
            raise DaskEngineError(f"the Dask scheduler cannot be reached: {exc!r}") from exc

    def _live_workers(self, wait: float = 0.0) -> list[str]:
        """Addresses of the workers connected to the scheduler, waiting up to ``wait`` s for one to join.

        Raises
        ------
        DaskEngineError
            None is connected (after ``wait``), or the scheduler cannot be reached.
        """
        deadline, said = time.monotonic() + wait, False
        while not (workers := self._worker_addresses()):
            if time.monotonic() >= deadline:
                joined = f" (none joined in {wait:g} s)" if wait else ""
                raise DaskEngineError(f"no Dask worker is connected to the scheduler{joined}")
            if not said:
                logger.warning("no Dask worker left: waiting up to %g s for one to join (a nanny restarting it)", wait)
                said = True
            time.sleep(_POLL)
        return workers

    def _place(self, i: int, worker: str) -> None:
        """Send shard i's columns to ``worker`` (once) and bind the local engine there as an actor."""
        shard = self._shards[i]
        columns = slice(shard.start, shard.stop)
        x_future, y_future = self.client.scatter(
            [np.ascontiguousarray(self.x[:, columns]), np.ascontiguousarray(self.y[:, columns])],
            workers=[worker],
            hash=False,
        )
        future = self.client.submit(
            _ShardWorker,
            self._local,
            self._light,
            x_future,
            y_future,
            self.normaliser,
            self.regulariser and i == 0,
            actor=True,
            workers=[worker],
            allow_other_workers=True,
            pure=False,
        )
        shard.actor = self._bound(i, future)
        # The proxy's own reference to its creation future is dropped (``shard.future`` keeps the
        # actor alive): on a connection error while that future is being recomputed, distributed's
        # Actor awaits it synchronously inside the event loop and deadlocks every client of the
        # process (seen with in-process workers); without it, the call fails with an OSError that
        # ``_call`` turns into a rebuild of the shard.
        shard.actor._future = None
        shard.hang_up()  # a rebuilt shard's old connection
        shard.future, shard.worker = future, worker
        # the actor holds the arrays; dropping these futures lets the worker forget its own copy
        del x_future, y_future
        if self._transport == "socket":
            self._dial(i)

    def _dial(self, i: int) -> None:
        """Open shard i's direct connection (transport "socket"); on failure, a SpecError or actor calls.

        With ``transport="auto"`` a worker that cannot be reached directly (a firewall between
        driver and workers) turns this engine to actor calls, with a warning; with "socket", a
        SpecError naming ``transport``.
        """
        shard = self._shards[i]
        key = secrets.token_bytes(32)
        timeout = self.spec.timeout or _DIAL_S
        address = self._bound(i, shard.actor.open_channel(key, timeout))
        try:
            shard.channel = connect_channel(tuple(address), key, timeout)
        except (OSError, EOFError, AuthenticationError) as exc:
            reason = f"shard {i}'s worker {shard.worker} cannot be reached at {address[0]}:{address[1]} ({exc!r})"
            if self.spec.transport == "socket":
                raise spec_error("transport", "socket", f"{reason}: use 'actor' (Dask's comms)") from None
            logger.warning("%s: the Dask engine calls its shards through Dask actors instead", reason)
            self._transport = self.info["transport"] = "actor"  # the other shards hang up at their next call

    def _bound(self, i: int, future: Any) -> Any:
        """The result of a step of binding shard i, within ``timeout``; else a SpecError naming it."""
        try:
            return future.result(timeout=self.spec.timeout)
        except TimeoutError:
            raise spec_error(
                "timeout",
                self.spec.timeout,
                f"shard {i} was not bound in time (its data sent, its local engine built): "
                "allow more seconds, or None to wait",
            ) from None

    def _alive(self, shard: _Shard) -> bool:
        """Whether the shard's actor and its worker are still there."""
        return shard.future.status == "finished" and shard.worker in self._worker_addresses()

    def _answers(self, shard: _Shard) -> bool:
        """Whether the shard's actor answers a call through Dask (within :data:`_POLL` s): its worker lives.

        Asked when a direct connection breaks: a live worker gets the connection dialled again at
        once, a dead one (its process killed: the connection closes before the scheduler knows)
        has its shard rebuilt, without waiting for the scheduler to notice.
        """
        if shard.actor is None or shard.future.status != "finished":
            return False
        try:
            shard.actor.engine_info().result(timeout=_POLL)
        except Exception:  # the worker is gone, or Dask cannot reach it either
            return False
        return True

    def _fault(self, shard: _Shard) -> Exception:
        """What a broken call to ``shard`` was: :class:`_HungUp` when its actor still answers
        (:meth:`_answers`: the worker lives), else :class:`_Lost`."""
        return _HungUp() if self._answers(shard) else _Lost()

    def _fire(self, i: int, method: str, args: tuple[Any, ...], call: Any) -> Any:
        """Start ``method(*args)`` on shard i: its connection or actor future, or the error that stopped it.

        Over the shard's connection, ``call`` is the call pickled once for all shards
        (:func:`~._channel.encode_call`; None when the engine calls actors). An actor call runs on
        the worker's event loop when the method's last call took less than ``_INLINE_S``.
        """
        shard = self._shards[i]
        if shard.future.status != "finished":  # the scheduler has told the client the worker is gone
            return RuntimeError(f"the actor of shard {i} is {shard.future.status}")
        if self._transport == "socket":
            try:
                if shard.channel is None:  # hung up after a call that failed or timed out
                    self._dial(i)
                if shard.channel is not None:  # else the engine just turned to actor calls
                    send_call(shard.channel, method, call)
                    return shard.channel
            except Exception as exc:  # the connection broke, or the actor is gone: the shard may be lost
                return exc
        shard.hang_up()  # the engine turned to actor calls
        inline = self._last_call_s.get(method, _INLINE_S) < _INLINE_S
        try:
            return getattr(shard.actor, method)(*args, **({"separate_thread": False} if inline else {}))
        except RuntimeError as exc:  # "Worker holding Actor was lost"
            return exc

    def _await(self, i: int, pending: Any, method: str) -> Any:
        """Shard i's answer; raises :class:`_Lost` when its worker is gone, checking every ``_POLL`` s.

        ``pending`` is what :meth:`_fire` returned: the shard's connection, an actor call's future,
        or the error that prevented the call.
        """
        shard = self._shards[i]
        if isinstance(pending, BaseException):  # the call could not be sent, or the connection not dialled
            raise self._fault(shard) from pending
        waited = 0.0
        while True:
            try:
                if isinstance(pending, Connection):
                    done, answer = receive_answer(pending, _POLL)
                else:
                    try:
                        done, answer = True, pending.result(timeout=_POLL)
                    except TimeoutError:
                        done, answer = False, None
            except ChannelError as exc:  # the connection closed or broke: is the worker there?
                raise self._fault(shard) from exc
            except Exception as exc:
                if isinstance(pending, Connection):
                    raise  # raised on the worker outside a shard method (an answer that does not pickle)
                # an actor call that Dask could not complete: its worker is gone, or the call's connection broke
                raise self._fault(shard) from exc
            if isinstance(answer, _ShardRaised):  # the shard's own error, not a fault of the cluster
                if answer.error is None:
                    raise DaskEngineError(
                        f"shard {i}: {method} raised {answer.description} on its worker (an exception that does "
                        "not survive pickling, so it cannot be raised here as it was)"
                    )
                raise answer.error  # as it was raised on the worker
            if done:
                return answer
            waited += _POLL
            if not self._alive(shard):
                raise _Lost() from None
            if self.spec.timeout is not None and waited >= self.spec.timeout:
                raise DaskEngineError(f"shard {i}: no answer to {method} in {self.spec.timeout} s") from None

    def _least_loaded(self) -> str:
        """The live worker holding the fewest shards (ties: the first address).

        When none is left, waits ``timeout`` (default :data:`_REJOIN_S`) for one to join.
        """
        workers = self._live_workers(wait=self.spec.timeout or _REJOIN_S)
        load = {w: sum(s.worker == w for s in self._shards) for w in workers}
        return min(workers, key=lambda w: (load[w], w))

    def _place_live(self, i: int, worker: str) -> None:
        """:meth:`_place`; where ``worker`` is lost meanwhile, on the least-loaded live worker (``retries`` times)."""
        for attempt in itertools.count():
            try:
                self._place(i, worker)
                return
            except SpecError:
                raise
            except Exception:  # distributed's errors for a worker that went away (cancelled, no valid worker)
                if attempt >= self.spec.retries or worker in self._worker_addresses():
                    raise
            lost, worker = worker, self._least_loaded()
            logger.warning("Dask worker %s lost while shard %d was sent to it: sent to %s", lost, i, worker)
            self.info["rebuilt_shards"] += 1

    def _rebuild(self, i: int) -> None:
        target = self._least_loaded()
        logger.warning("Dask worker %s lost: shard %d re-sent to %s", self._shards[i].worker, i, target)
        self.info["rebuilt_shards"] += 1
        self._place_live(i, target)  # and if that worker dies meanwhile, on another

    def _call(self, method: str, *args: Any) -> list[Any]:
        """Call ``method(*args)`` on every shard's actor (all at once); answers in shard order.

        A shard whose worker was lost is rebuilt on a live worker and called again (``retries``).
        """
        with self._lock:
            if self._closed:
                raise DaskEngineError("this Dask engine is closed (close(), or the end of cdl.solve): bind a new one")
            started = time.perf_counter()
            answers: list[Any] = []
            try:
                call = encode_call(method, args) if self._transport == "socket" else None  # pickled once for all
                pending = [self._fire(i, method, args, call) for i in range(len(self._shards))]
                self._collect(method, args, call, pending, answers)
            except BaseException:
                for shard in self._shards[len(answers) :]:  # their answers, if any come, would answer the next call
                    shard.hang_up()
                raise
            self._last_call_s[method] = time.perf_counter() - started
            return answers

    def _collect(self, method: str, args: tuple[Any, ...], call: Any, pending: list[Any], answers: list[Any]) -> None:
        """Append the shards' answers to ``answers`` in shard order, rebuilding lost shards (see :meth:`_call`)."""
        for i in range(len(self._shards)):
            for attempt in itertools.count():
                try:
                    answers.append(self._await(i, pending[i], method))
                    break
                except (_Lost, _HungUp) as fault:
                    what = "worker lost" if isinstance(fault, _Lost) else "call to its live worker broke"
                    if attempt >= self.spec.retries:
                        times = "once" if attempt == 0 else f"{attempt + 1} times"
                        raise DaskEngineError(f"shard {i}: {what} {times} during {method}") from (fault.__cause__)
                    if isinstance(fault, _HungUp):
                        again = "dialling again" if self._transport == "socket" else "calling again"
                        logger.warning("shard %d: its call to %s broke; %s", i, self._shards[i].worker, again)
                        self._shards[i].hang_up()  # over direct connections, _fire dials again
                    else:
                        if self.client.status in ("closing", "closed"):  # not a lost worker: the Client went
                            self._worker_addresses()  # raises the DaskEngineError that says so
                        try:
                            self._rebuild(i)
                        except Exception as exc:
                            raise DaskEngineError(
                                f"shard {i} could not be rebuilt after its worker was lost: {exc}"
                            ) from exc
                    pending[i] = self._fire(i, method, args, call)

    def _check_counts(self, counts: list[int], what: str) -> int:
        """The total sample count, after checking every shard answered for all its samples."""
        for i, (shard, count) in enumerate(zip(self._shards, counts, strict=True)):
            if int(count) != shard.size:
                raise DaskEngineError(f"{what}: shard {i} answered for {count} samples, it holds {shard.size}")
        total = int(sum(int(c) for c in counts))
        if total != self.n_samples:
            raise DaskEngineError(f"{what}: {total} samples answered, the batch has S={self.n_samples}")
        return total

    def batch_spec(self) -> Dask:
        """These options on this engine's client and local engine: binding them again reuses both.

        Mini-batch MSA binds an engine per batch; with ``client=None`` each bind would start a
        cluster of its own (a user measured 23.7 s for 5 iterations against 2.7 s with a Client).

        Returns
        -------
        Dask
            ``client`` = this engine's Client, ``local`` = the engine ``"auto"`` chose,
            ``transport`` = "actor" after this engine fell back to actor calls, else its own option.
        """
        transport = "actor" if self._transport == "actor" else self.spec.transport  # "auto" may still fall back
        return dataclasses.replace(
            self.spec, client=self.client, workers=None, processes=None, local=self._local, transport=transport
        )

    def close(self) -> None:
        """Hang up the shards' connections, release their actors, close the client/cluster this engine started."""
        self._closed = True
        for shard in getattr(self, "_shards", []):
            shard.hang_up()
            shard.actor = shard.future = None
        self._finalizer()

    def memory(self) -> list[dict[str, int]]:
        """Per shard: the bytes of its data arrays (``shard_bytes``) and its worker's RSS (``rss``).

        Returns
        -------
        list of dict
            One entry per shard, in shard order.
        """
        return self._call("memory")

    # ----------------------------------------------------------------------------- Engine
    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Evaluation:
        """J, loss, ∇J and the correct-class count at w: each shard's answers added in shard order.

        Parameters
        ----------
        w : ndarray
            Decision vector, ``(n_params,)``.
        gradient : bool
            Compute ∇J.

        Returns
        -------
        Evaluation
            Sums over the shards; ``n_samples`` = S; ``n_correct`` summed (classification);
            predictions concatenated (``n_out × S``) with ``predictions=True``, else None.

        Raises
        ------
        DaskEngineError
            A shard did not answer for all its samples, or no live worker could evaluate it.
        """
        w = np.asarray(w, dtype=np.float64)
        parts: list[Evaluation] = self._call("evaluate", w, gradient, self.spec.predictions)
        n = self._check_counts([p.n_samples for p in parts], "evaluate")
        objective = loss = 0.0
        for p in parts:
            objective += float(p.objective)
            loss += float(p.loss)
        grad = None
        if gradient:
            grad = np.array(parts[0].gradient, dtype=np.float64)
            for p in parts[1:]:
                grad += p.gradient
        predictions = None
        if self.spec.predictions:
            predictions = np.concatenate([p.predictions for p in parts], axis=1)
        correct = None if any(p.n_correct is None for p in parts) else sum(int(p.n_correct) for p in parts)
        return Evaluation(objective, loss, grad, predictions, n, correct)

    def gauss_newton_product(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """G(w) v = Σ_s G_s(w) v (see the module docstring).

        Parameters
        ----------
        w, v : ndarray
            Decision vector and direction, ``(n_params,)``.

        Returns
        -------
        ndarray
            The product, ``(n_params,)``.

        Raises
        ------
        DaskEngineError
            A shard did not answer for all its samples, or no live worker could evaluate it.
        """
        parts = self._call("gauss_newton_product", np.asarray(w, dtype=np.float64), np.asarray(v, dtype=np.float64))
        self._check_counts([n for _, n in parts], "gauss_newton_product")
        total = np.array(parts[0][0], dtype=np.float64)
        for product, _ in parts[1:]:
            total += product
        return total

    def states(self, w: np.ndarray) -> list[np.ndarray]:
        """x_0, …, x_N for the whole batch, gathered from the shards (for diagnostics).

        Parameters
        ----------
        w : ndarray
            Decision vector, ``(n_params,)``.

        Returns
        -------
        list of ndarray
            Each ``d_k × S``, columns in the batch's order.

        Raises
        ------
        DaskEngineError
            A shard did not answer for all its samples, or no live worker could evaluate it.
        """
        parts = self._call("states", np.asarray(w, dtype=np.float64))
        self._check_counts([p[0].shape[1] for p in parts], "states")
        return [np.concatenate(layer, axis=1) for layer in zip(*parts, strict=True)]

    def sweep(self, w: np.ndarray) -> Sweep:
        """Run each shard's forward/backward sweep and keep it on its worker.

        Parameters
        ----------
        w : ndarray
            Decision vector, ``(n_params,)``.

        Returns
        -------
        Sweep
            ``w`` and a handle naming the sweeps on the workers; ``states``, ``costates`` and ``q``
            are empty (use :meth:`states` to gather states). Once this object is garbage-collected,
            the workers drop their sweep at this engine's next ``sweep`` call (or at ``close``).

        Raises
        ------
        DaskEngineError
            A shard did not answer for all its samples, or no live worker could evaluate it.
        """
        w = np.array(w, dtype=np.float64)
        token = next(self._tokens)
        with self._lock:
            release, self._released[:] = list(self._released), []
        counts = self._call("sweep", token, w, release)
        self._check_counts(counts, "sweep")
        sweep = Sweep(w=w, handle=_SweepHandle(self._id, token))
        weakref.finalize(sweep, self._released.append, token)
        return sweep

    def augmented_hamiltonian(
        self, sweep: Sweep, thetas: list[np.ndarray], rho: float, hessian: bool = False
    ) -> StageValues:
        """a_k(Θ_k) and derivatives: each shard's sums added in shard order (see :class:`StageValues`).

        Parameters
        ----------
        sweep : Sweep
            A sweep of this engine.
        thetas : list of ndarray
            Θ_k, one per step: θ at the integrator nodes of step k stacked, a flat vector.
        rho : float
            Penalty ρ of E-MSA.
        hessian : bool
            Also return ∂²a_k/∂Θ_k².

        Returns
        -------
        StageValues
            Values ``(N,)``, gradients and (optionally) Hessians per step.

        Raises
        ------
        ValueError
            ``sweep`` was not made by this engine.
        DaskEngineError
            A shard did not answer for all its samples, or no live worker could evaluate it.
        """
        handle = sweep.handle
        if not isinstance(handle, _SweepHandle) or handle.engine_id != self._id:
            raise ValueError("sweep was not made by this Dask engine")
        thetas = [np.asarray(t, dtype=np.float64) for t in thetas]
        parts = self._call("augmented_hamiltonian", handle.token, sweep.w, thetas, float(rho), hessian)
        self._check_counts([n for _, n in parts], "augmented_hamiltonian")
        first = parts[0][0]
        values = np.array(first.values, dtype=np.float64)
        gradients = [np.array(g, dtype=np.float64) for g in first.gradients]
        hessians = [np.array(h, dtype=np.float64) for h in first.hessians] if hessian and first.hessians else None
        for stage, _ in parts[1:]:
            values += stage.values
            for total, g in zip(gradients, stage.gradients, strict=True):
                total += g
            if hessians is not None:
                for total, h in zip(hessians, stage.hessians, strict=True):
                    total += h
        return StageValues(values, gradients, hessians)
