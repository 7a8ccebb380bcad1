"""Certified-invertible training: the recommended constrained route against the alternatives (JSON).

    python benchmarks/constrained.py [--quick]

Ring (d = 3, S = 400, ``lipschitz = 0.9``): the preset ``certified`` (augmented Lagrangian around
L-BFGS-B, :mod:`control_dl.solvers._constrained`) against unconstrained ``lbfgsb`` on the same
problem without the constraint, and against ``ipopt-exact`` with it; all from
``problem.initial_guess(0)``, after one warm-up solve each (so JIT compilation is cached). The
measure is the wall time until the first iterate that reaches train accuracy ≥ 0.99 and satisfies
the constraint (Frobenius certificate ≤ c; not required of the unconstrained run), the median of
three interleaved runs for the L-BFGS-B routes (one with ``--quick``). Two ring
variants: the catalog one (N = 20, T = 1: the unconstrained fit already satisfies the constraint) and
an active one (N = 5, T = 2, c = 0.5). Digits (scikit-learn ``load_digits``, standardised, d = 64,
10 steps, cross-entropy, l2 = 1e-4) with the spectral-norm constraint: status, accuracies and the
certificate. ``--presets`` instead solves the constrained catalog ring (d = 2, 3) with every
solver preset as shipped (status, J start → end, accuracy, certificate), each in its own process
stopped after ``--limit`` seconds. The machine load (``os.getloadavg``) is recorded before and after: timings on a
shared machine are only comparable as ratios measured in one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np

import control_dl as cdl

TARGET_ACCURACY = 0.99


def time_to_target(problem: cdl.TrainingProblem, result: cdl.Result, constrained: bool) -> float | None:
    """Seconds until the first snapshot with train accuracy ≥ 0.99 (and, if ``constrained``, feasible)."""
    c = problem.constraints.lipschitz
    for _, seconds, w in result.snapshots:
        feasible = cdl.diagnostics.invertibility(problem, w, norm="frobenius").certificate <= c * (1 + 1e-9)
        if (feasible or not constrained) and problem.accuracy(w) >= TARGET_ACCURACY:
            return seconds
    return None


def row(name: str, problem: cdl.TrainingProblem, result: cdl.Result, constrained: bool) -> dict[str, Any]:
    """One solver's outcome on the constrained ``problem`` (``result`` may be of its unconstrained twin)."""
    report = cdl.diagnostics.invertibility(problem, result)
    return {
        "solver": name,
        "constrained": constrained,
        "status": result.status,
        "objective_start": result.history[0]["objective"],
        "objective": result.objective,
        "accuracy": result.accuracy,
        "test_accuracy": result.test_accuracy,
        "iterations": result.iterations,
        "wall_s": result.wall_time,
        "time_to_accuracy_s": time_to_target(problem, result, constrained),
        "certificate": report.certificate,
        "certificate_frobenius": cdl.diagnostics.invertibility(problem, result, norm="frobenius").certificate,
    }


def ring(overrides: dict[str, Any], ipopt_iter: int, repeats: int) -> dict[str, Any]:
    """certified vs unconstrained lbfgsb vs ipopt-exact on one ring problem (L-BFGS-B runs repeated)."""
    problem = cdl.load_problem("ring", **{"dim": 3, "lipschitz": 0.9, **overrides})
    free = dataclasses.replace(problem, constraints=cdl.Constraints())
    runs = {
        "certified": (problem, cdl.load_solver("certified", record_every=1), True),
        "lbfgsb (unconstrained)": (free, cdl.load_solver("lbfgsb", record_every=1), False),
        "ipopt-exact": (problem, cdl.load_solver("ipopt-exact", max_iter=ipopt_iter, record_every=1), True),
    }
    for target, solver, _ in runs.values():
        cdl.solve(target, dataclasses.replace(solver, max_iter=1, record_every=0), progress=False)  # JIT warm-up
    rows: dict[str, dict[str, Any]] = {}
    for repeat in range(repeats):  # interleaved, so the runs share the machine's load
        for name, (target, solver, constrained) in runs.items():
            if repeat and name == "ipopt-exact":
                continue
            outcome = row(name, problem, cdl.solve(target, solver, progress=False), constrained)
            times = rows.get(name, {}).get("times_to_accuracy_s", []) + [outcome["time_to_accuracy_s"]]
            rows[name] = {**outcome, "times_to_accuracy_s": times}
    for outcome in rows.values():
        times = outcome["times_to_accuracy_s"]
        outcome["time_to_accuracy_s"] = None if None in times else float(np.median(times))
    ours = rows["certified"]["time_to_accuracy_s"]

    def ratio(other: str) -> float | None:
        theirs = rows[other]["time_to_accuracy_s"]
        return None if ours is None or theirs is None else ours / theirs

    return {
        "problem": {"name": "ring", "dim": 3, "n_samples": 400, "lipschitz": 0.9, **overrides},
        "rows": list(rows.values()),
        "ratio_vs_unconstrained_lbfgsb": ratio("lbfgsb (unconstrained)"),
        "ratio_vs_ipopt_exact": ratio("ipopt-exact"),
    }


def digits(max_iter: int) -> dict[str, Any]:
    """The spectral-norm constraint on scikit-learn's digits (d = 64)."""
    problem = cdl.TrainingProblem(
        data=cdl.datasets.bundled("digits"),
        dim=64,
        control=cdl.PiecewiseConstant(10),
        cost=cdl.Cost(loss="cross_entropy", l2=1e-4),
        constraints=cdl.Constraints(lipschitz=0.9, lipschitz_norm="spectral"),
    )
    result = cdl.solve(problem, cdl.load_solver("certified", max_iter=max_iter), progress=False)
    report = row("certified", problem, result, True)
    report.pop("time_to_accuracy_s")  # no snapshots: 42k parameters per iterate
    return {
        "problem": {"name": "digits", "dim": 64, "n_steps": 10, "lipschitz": 0.9, "lipschitz_norm": "spectral"},
        "message": result.message,
        **report,
    }


def one_preset(name: str, dim: int) -> dict[str, Any]:
    """One preset, as shipped, on the constrained catalog ring of dimension ``dim``."""
    problem = cdl.load_problem("ring", dim=dim, lipschitz=0.9)
    entry: dict[str, Any] = {"preset": name, "dim": dim}
    try:
        result = cdl.solve(problem, cdl.load_solver(name), progress=False)
    except cdl.SpecError as exc:
        return {**entry, "status": "SpecError", "message": str(exc)}
    outcome = {**entry, **row(name, problem, result, True), "message": result.message}
    outcome.pop("time_to_accuracy_s")
    return outcome


def presets(dims: tuple[int, ...], limit_s: float) -> list[dict[str, Any]]:
    """Every solver preset on the constrained catalog ring, each in its own process killed after ``limit_s``."""
    rows = []
    for dim in dims:
        for name in cdl.list_solvers():
            command = [sys.executable, __file__, "--one-preset", name, str(dim)]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s, check=True)
                rows.append(json.loads(done.stdout))
            except subprocess.TimeoutExpired:
                rows.append({"preset": name, "dim": dim, "status": f"not finished in {limit_s:g} s"})
            except subprocess.CalledProcessError as exc:
                rows.append({"preset": name, "dim": dim, "status": "crashed", "message": exc.stderr[-500:]})
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the catalog ring only, short IPOPT and digits runs")
    parser.add_argument("--presets", action="store_true", help="only: every preset on the constrained ring")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds per preset run (--presets)")
    parser.add_argument("--one-preset", nargs=2, metavar=("NAME", "DIM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_preset:
        print(json.dumps(one_preset(args.one_preset[0], int(args.one_preset[1])), default=float))
        return
    load_before = os.getloadavg()
    start = time.perf_counter()
    out: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
    if args.presets:
        out["presets"] = presets((2, 3), args.limit)
    else:
        rings = [ring({}, 30 if args.quick else 60, 1 if args.quick else 3)]
        if not args.quick:
            rings.append(ring({"n_steps": 5, "horizon": 2.0, "lipschitz": 0.5}, 200, 3))
        out["ring"] = rings
        out["digits"] = digits(50 if args.quick else 200)
        out["goals"] = {"ratio_vs_unconstrained_lbfgsb": "<= 3 (goal 1.5)", "ratio_vs_ipopt_exact": "<= 0.05"}
    out.update(load_before=list(load_before), load_after=list(os.getloadavg()), total_s=time.perf_counter() - start)
    print(json.dumps(out, indent=2, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))


if __name__ == "__main__":
    main()
