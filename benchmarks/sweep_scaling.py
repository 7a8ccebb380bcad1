"""Parallel efficiency of a sweep: the same runs on 1 and on 2 worker processes.

Prints JSON: wall time of each sweep (pool start-up included), speed-up t1/t2, parallel efficiency
speed-up/2, the summed per-run solve time, the CPU time the workers got (cpu_share: the fraction of
the worker-seconds they actually ran; below 1 means other processes took the cores) and the load
average. Goal: speed-up ≥ 1.8 on 2 idle cores.

    python benchmarks/sweep_scaling.py [--runs 16] [--n-samples 400]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time

from control_dl.experiments import run_sweep


def sweep(n_runs: int, n_samples: int) -> dict:
    """A sweep of ``n_runs`` equal-sized runs (ring, L-BFGS IPOPT, 60 iterations, varying seeds)."""
    return {
        "name": "scaling",
        "problem": {"name": "ring", "n_samples": n_samples, "n_steps": 10},
        "solver": {"preset": "ipopt-lbfgs", "max_iter": 60, "tol": 1e-14},
        "seeds": list(range(n_runs)),
    }


def timed(spec: dict, workers: int) -> tuple[float, float, list[dict]]:
    """Wall time, CPU time of the worker processes (reaped children) and the rows of one sweep."""
    with tempfile.TemporaryDirectory() as out:
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        rows = run_sweep(spec, out, workers=workers, progress=False)
        wall = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--n-samples", type=int, default=400)
    args = parser.parse_args()
    spec = sweep(args.runs, args.n_samples)
    load_before = os.getloadavg()[0]
    t1, cpu1, rows1 = timed(spec, 1)
    t2, cpu2, rows2 = timed(spec, 2)
    same = {r["run_id"]: r["objective"] for r in rows1} == {r["run_id"]: r["objective"] for r in rows2}
    print(
        json.dumps(
            {
                "benchmark": "sweep_scaling",
                "runs": args.runs,
                "n_samples": args.n_samples,
                "cpu_count": os.cpu_count(),
                "load_average_before": round(load_before, 2),
                "load_average_after": round(os.getloadavg()[0], 2),
                "wall_1_worker_s": round(t1, 3),
                "wall_2_workers_s": round(t2, 3),
                "sum_solve_time_1_worker_s": round(sum(r["wall_time"] for r in rows1), 3),
                "sum_solve_time_2_workers_s": round(sum(r["wall_time"] for r in rows2), 3),
                # pool start-up, pickling, saving and indexing: what does not shrink with more workers
                "overhead_1_worker_s": round(t1 - sum(r["wall_time"] for r in rows1), 3),
                "worker_cpu_1_worker_s": round(cpu1, 3),
                "worker_cpu_2_workers_s": round(cpu2, 3),
                # share of the available worker-seconds the workers got the CPU (1.0 on idle cores)
                "cpu_share_1_worker": round(cpu1 / t1, 3),
                "cpu_share_2_workers": round(cpu2 / (2 * t2), 3),
                "speedup": round(t1 / t2, 3),
                "parallel_efficiency": round(t1 / t2 / 2, 3),
                "same_objectives": same,
                "goal_speedup": 1.8,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
