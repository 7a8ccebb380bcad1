"""Data-parallel scaling of the Dask engine: the same training on 1 and 2 workers (LocalCluster processes).

For ring (S = 10⁵ unless ``--ring-samples``, d = 3, N = 20) and scikit-learn digits (standardised, training set repeated ×20):

The Dask engine calls its shards over ``--transport`` (default ``auto``: direct connections on
these tcp clusters; ``actor``: Dask's actor calls, for comparison).

- f+grad: median seconds of one ``evaluate(w)`` on the local engine alone (no Dask, on S, S/2
  and 8 samples; timed before any cluster starts, since a LocalCluster's scheduler and nannies
  are threads of the driver and take the GIL from it) and through ``engines.Dask`` with 1 and 2
  single-threaded worker processes, and the speed-up t(1)/t(2). The engines are timed in turn, in
  blocks of ``--block`` consecutive calls (the same load for all, and consecutive calls as in a
  solve: one call per engine in turn started each 2-worker call right after the other cluster's
  compute had flushed the caches, measured 23.0 ms against 20.2–20.7 ms in blocks);
- every f+grad also "net" of the load (Linux): wall time minus the time the critical threads (the
  driver's main thread, each worker's busiest thread) were runnable but waiting for a CPU taken by
  other processes (``/proc/<pid>/task/<tid>/schedstat``): about what the call takes on free cores;
- the overhead per call: the Dask engine's f+grad minus the local engine's on the slowest shard
  (S/m), net where available, and the CPU seconds per call of the driver process (which also
  hosts the scheduler and the nannies) and of each worker (CPU time does not depend on the load);
- time to target: L-BFGS-B (``Direct(nlp="lbfgsb")``) iterations until the training loss reaches
  the loss the serial solve has after ``--iters`` iterations (time from the first logged iterate,
  so binding/compiling is reported apart as ``bind_s``); the median of ``--solve-reps`` solves
  per worker count, the 1- and 2-worker solves interleaved with both clusters up;
- the scaling model's inputs, measured here: the latency of an actor round trip, the time to send
  n_params floats out and back, an empty call to every shard over the engine's transport, the bytes of one shard's answer, the local engine's cost per sample
  (from f+grad at S and S/2), the constant c_m that Dask adds to a call (f+grad through Dask minus
  the local engine's, on 8 samples per shard: nothing to compute, the same n_params), and the
  model's f+grad, local engine on S/m + c_m (docs/guide/dask.md), beside the measured one;
- memory: each shard's array bytes and each worker's resident set growth after binding.

Prints one JSON object. The machine load (``os.getloadavg``) is recorded before and after: timings
taken while other processes use the cores are noted as such; ratios measured in one run are the
comparison.

    python benchmarks/dask_scaling.py [--quick] [--iters 40] [--reps 30] [--block 10] [--solve-reps 3]
        [--problems ring digits] [--ring-samples 100000] [--transport auto]
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import pickle
import statistics
import time
from typing import Any

import numpy as np
import psutil
import torch
from distributed import Client
from threadpoolctl import threadpool_limits

import control_dl as cdl
from control_dl.engines import Dask, make_engine
from control_dl.engines.dask import start_local_cluster


class Echo:
    """An actor that sends back what it gets: round-trip latency and transfer of n floats."""

    def echo(self, w: np.ndarray) -> np.ndarray:
        return w


def rss() -> int:
    """Resident set size of the calling process (run on each worker)."""
    import psutil

    return int(psutil.Process(os.getpid()).memory_info().rss)


def warm_up() -> None:
    """Import what a shard's engine imports, so RSS growth after binding is the shard's own."""
    import casadi  # noqa: F401
    import torch  # noqa: F401

    import control_dl.engines  # noqa: F401


def median_time(fn: Any, reps: int) -> float:
    """Median wall time of ``fn()`` over ``reps`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def problems(quick: bool, ring_samples: int | None = None) -> dict[str, cdl.TrainingProblem]:
    """ring with S = ``ring_samples`` (default 10⁵, 2·10⁴ quick) and digits repeated ×20 (×4 quick)."""
    if ring_samples is None:
        ring_samples = 20_000 if quick else 100_000
    ring = cdl.load_problem("ring", n_samples=ring_samples, dim=3, n_steps=20)
    digits = cdl.load_problem("digits")
    data = digits.data
    times = 4 if quick else 20
    repeated = dataclasses.replace(
        data, x_train=np.tile(data.x_train, times), y_train=np.tile(data.y_train, times), name=f"digits x{times}"
    )
    return {"ring": ring, "digits": dataclasses.replace(digits, data=repeated)}


def time_to_target(history: list[dict], target: float) -> float | None:
    """Seconds from the first logged iterate to the first with loss ≤ target (None: not reached)."""
    for entry in history:
        if entry["loss"] <= target:
            return entry["time"] - history[0]["time"]
    return None


#: samples per shard of the batch that measures the Dask engine's constant cost per call
TINY = 8


def thread_times(pids: list[int]) -> dict[tuple[int, int], tuple[float, float]]:
    """(CPU seconds, seconds runnable but waiting for a CPU) of every thread of ``pids``.

    From Linux's ``/proc/<pid>/task/<tid>/schedstat``; empty where that does not exist.
    """
    times = {}
    for pid in pids:
        for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
            try:
                with open(path) as f:
                    cpu, wait, _ = f.read().split()
            except (OSError, ValueError):  # a thread that ended meanwhile
                continue
            times[(pid, int(path.split("/")[-2]))] = (int(cpu) * 1e-9, int(wait) * 1e-9)
    return times


def waited(before: dict, after: dict, driver: int, workers: list[int]) -> float:
    """Seconds the critical path of one call spent waiting for a CPU (other processes' load).

    The driver's main thread, plus the longest wait of a worker's busiest thread (the one that
    computed); the threads that only pass messages are not counted, so the remainder
    (wall − this) is, if anything, an over-estimate of the call on free cores.
    """
    delta = {
        key: (after[key][0] - before.get(key, (0.0, 0.0))[0], after[key][1] - before.get(key, (0.0, 0.0))[1])
        for key in after
    }
    main = delta.get((driver, driver), (0.0, 0.0))[1]
    busiest = [max((v for (p, _), v in delta.items() if p == pid), default=(0.0, 0.0))[1] for pid in workers]
    return main + max(busiest, default=0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all its threads."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def time_calls(
    calls: dict[str, Any], pids: dict[str, list[int]], w: np.ndarray, reps: int, block: int
) -> dict[str, dict]:
    """f+grad timings of several engines, in turn in blocks of consecutive calls (the same load for all).

    Parameters
    ----------
    calls : dict
        Name -> ``engine.evaluate``.
    pids : dict
        Name -> the worker processes that engine calls (none for a local engine).
    w : ndarray
        The decision vector.
    reps : int
        Calls per engine.
    block : int
        Consecutive calls of one engine before the next engine's turn.

    Returns
    -------
    dict
        Name -> ``fgrad_s`` (median wall), ``fgrad_net_s`` (median of wall minus the critical threads'
        wait for a CPU; None without /proc) and ``cpu_per_call_s`` (driver and workers, from a
        block of ``reps`` calls: CPU time does not depend on the load, wall time does).
    """
    driver = os.getpid()
    has_schedstat = bool(thread_times([driver]))  # Linux
    for call in calls.values():
        call(w)  # warm-up
    walls: dict[str, list[float]] = {key: [] for key in calls}
    nets: dict[str, list[float]] = {key: [] for key in calls}
    for first in range(0, reps, block):
        for key, call in calls.items():
            workers = pids.get(key, [])
            for _ in range(min(block, reps - first)):
                before = thread_times([driver, *workers])
                start = time.perf_counter()
                call(w)
                walls[key].append(time.perf_counter() - start)
                nets[key].append(walls[key][-1] - waited(before, thread_times([driver, *workers]), driver, workers))
    out = {}
    for key, call in calls.items():
        procs = [driver, *pids.get(key, [])]
        before = [cpu_seconds(pid) for pid in procs]
        for _ in range(reps):
            call(w)
        used = [(cpu_seconds(pid) - b) / reps for pid, b in zip(procs, before, strict=True)]
        out[key] = {
            "fgrad_s": statistics.median(walls[key]),
            "fgrad_net_s": statistics.median(nets[key]) if has_schedstat else None,
            "cpu_per_call_s": {"driver": used[0], "workers": used[1:]},
        }
    return out


def load_free(times: dict[str, Any]) -> float:
    """The net f+grad time where /proc gives it, else the wall time."""
    return times["fgrad_s"] if times["fgrad_net_s"] is None else times["fgrad_net_s"]


def measure(name: str, problem: cdl.TrainingProblem, args: argparse.Namespace) -> dict[str, Any]:
    """Every number of one problem (see the module docstring)."""
    x, y, w = problem.data.x_train, problem.targets, problem.initial_guess(seed=0)
    n_samples, n_params = x.shape[1], problem.n_params
    serial = make_engine("auto", problem, x, y)
    local = serial.info["name"]
    # the local engine on S, on the slowest shard of 2 workers (S/2), and on TINY samples; timed
    # before any cluster exists: a LocalCluster's scheduler and nannies are threads of this process
    # and would take the GIL from it
    columns = {"serial": n_samples, "serial_half": n_samples // 2, "serial_tiny": TINY}
    local_engines = {
        key: make_engine(local, problem, x[:, :n], y[:, :n], normaliser=n_samples) for key, n in columns.items()
    }
    serial_times = time_calls({key: e.evaluate for key, e in local_engines.items()}, {}, w, args.reps, args.block)
    solver = cdl.load_solver("lbfgsb", engine=local, max_iter=args.iters, tol=1e-14)
    start = time.perf_counter()
    ref = cdl.solve(problem, solver, progress=False)
    target = ref.history[-1]["loss"]
    out: dict[str, Any] = {
        "n_samples": n_samples,
        "n_params": n_params,
        "local_engine": local,
        "serial": {
            **{f"{key}_{field}": value for key, times in serial_times.items() for field, value in times.items()},
            "time_to_target_s": time_to_target(ref.history, target),
            "solve_s": time.perf_counter() - start,
            "iterations": ref.iterations,
        },
        "target_loss": target,
    }
    best = {key: load_free(t) for key, t in serial_times.items()}
    out["serial"]["per_sample_s"] = (best["serial"] - best["serial_half"]) / (n_samples - n_samples // 2)
    clusters, engines, pids = {}, {}, {}
    for workers in (1, 2):  # both clusters up at once: their f+grad blocks alternate (same load)
        # the engine's own cluster set-up (LOCAL_CLUSTER_CONFIG: allocator, background work; a core per worker)
        cluster = start_local_cluster(workers, processes=True, field="workers", value=workers)
        client = Client(cluster, direct_to_workers=True)  # actor calls straight to the workers
        client.run(warm_up)
        idle = client.run(rss)
        pids[f"dask_{workers}"] = pids[f"tiny_{workers}"] = sorted(client.run(os.getpid).values())
        echo = client.submit(Echo, actor=True).result()
        start = time.perf_counter()
        engine = make_engine(Dask(client, local=local, transport=args.transport), problem, x, y)
        out[f"workers_{workers}"] = {
            "transport": engine.info["transport"],
            "bind_s": time.perf_counter() - start,
            "latency_s": median_time(lambda e=echo: e.echo(np.zeros(0)).result(), 4 * args.reps),
            "round_trip_n_params_s": median_time(lambda e=echo: e.echo(np.zeros(n_params)).result(), 4 * args.reps),
            # an empty call to every shard over the engine's own transport (its floor per call)
            "call_round_trip_s": median_time(lambda e=engine: e._call("engine_info"), 4 * args.reps),
        }
        engine.evaluate(w)
        grown = client.run(rss)
        out[f"workers_{workers}"].update(
            shard_mib=[m["shard_bytes"] / 2**20 for m in engine.memory()],
            worker_rss_growth_mib=sorted((grown[a] - idle[a]) / 2**20 for a in idle),
        )
        clusters[workers], engines[f"dask_{workers}"] = (cluster, client), engine
    dask_times = time_calls({key: e.evaluate for key, e in engines.items()}, pids, w, args.reps, args.block)
    # the TINY-sample engines after the others, in a pass of their own: interleaved with them, a
    # second shard actor on each worker slowed the 2-worker calls of ring 2.4x (seen here)
    for workers, (_, client) in clusters.items():
        engines[f"dask_{workers}"].close()
        cols = slice(0, TINY * workers)  # TINY samples per shard
        engines[f"tiny_{workers}"] = make_engine(
            Dask(client, local=local, transport=args.transport), problem, x[:, cols], y[:, cols]
        )
    tiny_engines = {key: e for key, e in engines.items() if key.startswith("tiny")}
    dask_times.update(time_calls({key: e.evaluate for key, e in tiny_engines.items()}, pids, w, args.reps, args.block))
    answer = dataclasses.replace(serial.evaluate(w), predictions=None, n_correct=0)
    for workers in clusters:
        engines[f"tiny_{workers}"].close()
        times, tiny = dask_times[f"dask_{workers}"], dask_times[f"tiny_{workers}"]
        shard = "serial_half" if workers == 2 else "serial"
        # the model's constant c_m: what Dask adds to a call of TINY samples per shard (round trip,
        # w out and ∇J back, messaging; the same n_params)
        constant = load_free(tiny) - best["serial_tiny"]
        measured = load_free(times)
        entry = out[f"workers_{workers}"]
        entry.update(
            **times,
            # what Dask adds to one call: the time beyond the local engine on the slowest shard
            overhead_s=measured - best[shard],
            overhead_constant_s=constant,
            cpu_per_tiny_call_s=tiny["cpu_per_call_s"],
            answer_bytes=len(pickle.dumps(answer, protocol=5)),
            predictions_bytes=8 * y.shape[0] * n_samples // workers,
            # model: the local engine on the slowest shard + c_m
            model_fgrad_s=best[shard] + constant,
        )
    # time to target: the 1- and 2-worker solves interleaved with both clusters up (the same load
    # for both), the median of --solve-reps solves each
    solvers = {
        workers: cdl.load_solver(
            "lbfgsb",
            engine=Dask(client, local=local, transport=args.transport),
            max_iter=args.iters + 20,
            tol=1e-14,
            target_loss=target,
        )
        for workers, (_, client) in clusters.items()
    }
    runs: dict[int, list[Any]] = {workers: [] for workers in clusters}
    for _ in range(args.solve_reps):
        for workers, solver in solvers.items():
            runs[workers].append(cdl.solve(problem, solver, progress=False))
    for workers, (cluster, client) in clusters.items():
        times = [time_to_target(run.history, target) for run in runs[workers]]
        out[f"workers_{workers}"].update(
            time_to_target_s=None if None in times else statistics.median(times),
            time_to_target_all_s=times,
            iterations=[run.iterations for run in runs[workers]],
            status=[run.status for run in runs[workers]],
        )
        client.close()
        cluster.close()
    one, two = out["workers_1"], out["workers_2"]
    out["speedup_fgrad"] = one["fgrad_s"] / two["fgrad_s"]
    if one["fgrad_net_s"] is not None:
        out["speedup_fgrad_net"] = one["fgrad_net_s"] / two["fgrad_net_s"]
    if one["time_to_target_s"] and two["time_to_target_s"]:
        out["speedup_time_to_target"] = one["time_to_target_s"] / two["time_to_target_s"]
    headline: dict[str, Any] = {"transport": out["workers_2"]["transport"]}
    headline.update({k: v for k, v in out.items() if k.startswith("speedup")})
    headline.update({f"overhead_ms_{m}": 1e3 * out[f"workers_{m}"]["overhead_s"] for m in (1, 2)})
    headline.update({f"constant_ms_{m}": 1e3 * out[f"workers_{m}"]["overhead_constant_s"] for m in (1, 2)})
    headline.update({f"shard_mib_{m}": out[f"workers_{m}"]["shard_mib"] for m in (1, 2)})
    headline.update({f"worker_rss_growth_mib_{m}": out[f"workers_{m}"]["worker_rss_growth_mib"] for m in (1, 2)})
    print(f"# {name}: {json.dumps(headline)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer iterations (a smoke run)")
    parser.add_argument("--iters", type=int, default=None, help="L-BFGS-B iterations of the serial reference")
    parser.add_argument("--problems", nargs="+", default=["ring", "digits"], choices=["ring", "digits"])
    parser.add_argument("--reps", type=int, default=30, help="calls per f+grad timing (median)")
    parser.add_argument("--block", type=int, default=10, help="consecutive calls of one engine before the next's turn")
    parser.add_argument("--solve-reps", type=int, default=3, help="solves per worker count for time to target (median)")
    parser.add_argument(
        "--ring-samples", type=int, default=None, help="ring's S (default 10⁵, 2·10⁴ with --quick): where 2 workers pay"
    )
    parser.add_argument(
        "--transport",
        default="auto",
        choices=["auto", "socket", "actor"],
        help="Dask(transport=...): direct connections (auto here) or Dask actor calls",
    )
    args = parser.parse_args()
    for name in ("iters", "reps", "block", "solve_reps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.ring_samples is not None and args.ring_samples < 2 * TINY:
        parser.error(f"--ring-samples must be at least {2 * TINY} (2 shards of {TINY}), got {args.ring_samples}")
    if args.iters is None:
        args.iters = 10 if args.quick else 40
    torch.set_num_threads(1)  # the serial baseline gets one core, like each worker
    load_before = os.getloadavg()
    with threadpool_limits(limits=1):
        chosen = {
            name: problem for name, problem in problems(args.quick, args.ring_samples).items() if name in args.problems
        }
        results = {name: measure(name, problem, args) for name, problem in chosen.items()}
    report = {
        "benchmark": "dask_scaling",
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        **results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
