"""Data-parallel scaling of the Dask engine: the same training on 1 and 2 workers (LocalCluster processes).

For ring (S = 10⁵, d = 3, N = 20) and scikit-learn digits (standardised, training set repeated ×20):

- f+grad: median seconds of one ``evaluate(w)`` on the local engine alone (no Dask) and through
  ``engines.Dask`` with 1 and 2 single-threaded worker processes, and the speed-up t(1)/t(2);
- time to target: L-BFGS-B (``Direct(nlp="lbfgsb")``) iterations until the training loss reaches
  the loss the serial solve has after ``--iters`` iterations (time from the first logged iterate,
  so binding/compiling is reported apart as ``bind_s``);
- the scaling model's inputs, measured here: the latency of an actor round trip, the time to send
  n_params floats out and back, the local engine's cost per sample (from f+grad at S and S/2),
  and its prediction of the 2-worker time per evaluation (docs/guide/dask.md);
- memory: each shard's array bytes and each worker's resident set growth after binding.

Prints one JSON object. The machine load (``os.getloadavg``) is recorded before and after: timings
taken while other processes use the cores are noted as such; ratios measured in one run are the
comparison.

    python benchmarks/dask_scaling.py [--quick] [--iters 40] [--reps 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from typing import Any

import dask
import numpy as np
import torch
from distributed import Client, LocalCluster
from threadpoolctl import threadpool_limits

import control_dl as cdl
from control_dl.engines import Dask, make_engine
from control_dl.engines.dask import LOCAL_CLUSTER_CONFIG


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


def problems(quick: bool) -> dict[str, cdl.TrainingProblem]:
    """ring with S = 10⁵ (2·10⁴ quick) and digits repeated ×20 (×4 quick)."""
    ring = cdl.load_problem("ring", n_samples=20_000 if quick else 100_000, dim=3, n_steps=20)
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


def measure(name: str, problem: cdl.TrainingProblem, args: argparse.Namespace) -> dict[str, Any]:
    """Every number of one problem (see the module docstring)."""
    x, y, w = problem.data.x_train, problem.targets, problem.initial_guess(seed=0)
    n_samples, n_params = x.shape[1], problem.n_params
    serial = make_engine("auto", problem, x, y)
    local = serial.info["name"]
    half = make_engine(local, problem, x[:, : n_samples // 2], y[:, : n_samples // 2], normaliser=n_samples)
    fg_full = median_time(lambda: serial.evaluate(w), args.reps)
    fg_half = median_time(lambda: half.evaluate(w), args.reps)
    per_sample = (fg_full - fg_half) / (n_samples - n_samples // 2)
    solver = cdl.load_solver("lbfgsb", engine=local, max_iter=args.iters, tol=1e-14)
    start = time.perf_counter()
    ref = cdl.solve(problem, solver, progress=False)
    target = ref.history[-1]["loss"]
    out: dict[str, Any] = {
        "n_samples": n_samples,
        "n_params": n_params,
        "local_engine": local,
        "serial": {
            "fgrad_s": fg_full,
            "fgrad_half_s": fg_half,
            "per_sample_s": per_sample,
            "time_to_target_s": time_to_target(ref.history, target),
            "solve_s": time.perf_counter() - start,
            "iterations": ref.iterations,
        },
        "target_loss": target,
    }
    clusters, engines = {}, {}
    for workers in (1, 2):  # both clusters up at once: their f+grad timings interleave (same load)
        with dask.config.set(LOCAL_CLUSTER_CONFIG):  # large arrays stay on the heap (see that constant)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client.run(warm_up)
        idle = client.run(rss)
        echo = client.submit(Echo, actor=True).result()
        shard_predictions = np.zeros(y.shape[0] * n_samples // workers)
        start = time.perf_counter()
        engine = make_engine(Dask(client, local=local), problem, x, y)
        out[f"workers_{workers}"] = {
            "bind_s": time.perf_counter() - start,
            "latency_s": median_time(lambda e=echo: e.echo(np.zeros(0)).result(), 4 * args.reps),
            "round_trip_n_params_s": median_time(lambda e=echo: e.echo(np.zeros(n_params)).result(), 4 * args.reps),
            "round_trip_predictions_s": median_time(lambda e=echo, p=shard_predictions: e.echo(p).result(), args.reps),
        }
        engine.evaluate(w)
        grown = client.run(rss)
        out[f"workers_{workers}"].update(
            shard_mib=[m["shard_bytes"] / 2**20 for m in engine.memory()],
            worker_rss_growth_mib=sorted((grown[a] - idle[a]) / 2**20 for a in idle),
        )
        clusters[workers], engines[workers] = (cluster, client), engine
    samples: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.reps):
        for workers, engine in engines.items():
            start = time.perf_counter()
            engine.evaluate(w)
            samples[workers].append(time.perf_counter() - start)
    for workers, (cluster, client) in clusters.items():
        engines[workers].close()
        entry = out[f"workers_{workers}"]
        entry["fgrad_s"] = statistics.median(samples[workers])
        # model: slowest shard's f+grad + (w out, ∇J back) + predictions back (echo: out and back) + one latency
        entry["model_fgrad_s"] = (fg_half if workers == 2 else fg_full) + entry["round_trip_n_params_s"]
        entry["model_fgrad_s"] += entry["round_trip_predictions_s"] - entry["latency_s"]
        solver = cdl.load_solver(
            "lbfgsb", engine=Dask(client, local=local), max_iter=args.iters + 20, tol=1e-14, target_loss=target
        )
        run = cdl.solve(problem, solver, progress=False)
        entry.update(time_to_target_s=time_to_target(run.history, target), iterations=run.iterations, status=run.status)
        client.close()
        cluster.close()
    one, two = out["workers_1"], out["workers_2"]
    out["speedup_fgrad"] = one["fgrad_s"] / two["fgrad_s"]
    if one["time_to_target_s"] and two["time_to_target_s"]:
        out["speedup_time_to_target"] = one["time_to_target_s"] / two["time_to_target_s"]
    out["speedup_fgrad_vs_serial"] = out["serial"]["fgrad_s"] / two["fgrad_s"]
    print(f"# {name}: {json.dumps({k: v for k, v in out.items() if k.startswith('speedup')})}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer iterations (a smoke run)")
    parser.add_argument("--iters", type=int, default=None, help="L-BFGS-B iterations of the serial reference")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per timing (median)")
    args = parser.parse_args()
    if args.iters is None:
        args.iters = 10 if args.quick else 40
    torch.set_num_threads(1)  # the serial baseline gets one core, like each worker
    load_before = os.getloadavg()
    with threadpool_limits(limits=1):
        results = {name: measure(name, problem, args) for name, problem in problems(args.quick).items()}
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
