"""Direct methods (CasADi) against torch on one problem: time to a target training MSE, f+grad cost.

One run, same problem (ring, d = 3, N = 20 Euler steps, S = 400, MSE), same initial w, one thread
each. Prints one JSON document. Usage::

    python benchmarks/direct_vs_torch.py [--quick] [--no-scale] [--l2 0.0]

``--quick`` skips the slow IPOPT variants (exact Hessian). The scale case (S = 10 000, N = 100)
runs L-BFGS-B and torch L-BFGS only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import control_dl as cdl  # noqa: E402
from control_dl.backends import get_ops  # noqa: E402
from control_dl.engines import casadi_model  # noqa: E402
from control_dl.engines._casadi_model import objective_loss_gradient  # noqa: E402
from control_dl.engines._jit import compile_function  # noqa: E402

TARGET = 1e-3


def torch_run(problem, w0, optimizer: str, time_limit: float, lr: float = 1e-2) -> dict:
    """Minimal torch loop over problem.objective_terms: time until the training MSE <= TARGET."""
    ops = get_ops("torch")
    x, y = ops.asarray(problem.data.x_train), ops.asarray(problem.targets)
    w = ops.asarray(w0).clone().requires_grad_(True)
    if optimizer == "lbfgs":
        # torch's defaults (history 100); 20 iterations per step() call, no early stop of its own
        opt = torch.optim.LBFGS(
            [w], lr=1.0, max_iter=20, tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe"
        )
    else:
        opt = torch.optim.Adam([w], lr=lr)
    last = {}

    class Reached(Exception):
        pass

    def closure():
        opt.zero_grad()
        j, loss = problem.objective_terms(w, x, y, ops)
        last["loss"] = float(loss.detach())
        last["evaluations"] = last.get("evaluations", 0) + 1
        if last["loss"] <= TARGET:  # stop at the first evaluation that reaches the target
            raise Reached
        j.backward()
        return j

    start = time.perf_counter()
    iterations = 0
    while True:
        try:
            opt.step(closure)
        except Reached:
            pass
        iterations += 20 if optimizer == "lbfgs" else 1
        elapsed = time.perf_counter() - start
        if last["loss"] <= TARGET or elapsed > time_limit:
            break
    with torch.no_grad():
        _, loss = problem.objective_terms(w, x, y, ops)
    reached = last["loss"] <= TARGET
    return {
        "time_to_target": elapsed if reached else None,
        "iterations": iterations,
        "evaluations": last["evaluations"],
        "final_loss": float(loss),
    }


def direct_run(problem, w0, solver) -> dict:
    """Time until the training loss <= TARGET (the solver stops there: ``target_loss``)."""
    start = time.perf_counter()
    result = cdl.solve(problem, solver, w0=w0, progress=False)
    elapsed = time.perf_counter() - start
    reached = result.loss <= TARGET
    return {
        "time_to_target": elapsed if reached else None,
        "iterations": result.iterations,
        "final_loss": result.loss,
        "status": result.status,
        "message": result.message,
    }


def fgrad_times(problem, reps: int = 200) -> dict:
    """Median seconds of one objective+gradient evaluation: CasADi JIT, CasADi uncompiled, torch."""
    w = problem.initial_guess(0)
    n = problem.data.x_train.shape[1]
    x, y = ca.DM(problem.data.x_train), ca.DM(problem.targets)
    plain = casadi_model(problem).functions(n)[1]
    compiled, _ = compile_function(objective_loss_gradient(casadi_model(problem), n))
    ops = get_ops("torch")
    xt, yt = ops.asarray(problem.data.x_train), ops.asarray(problem.targets)

    def torch_fg():
        wt = ops.asarray(w).requires_grad_(True)
        j, _ = problem.objective_terms(wt, xt, yt, ops)
        j.backward()
        return wt.grad

    def median(f):
        f()
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            f()
            samples.append(time.perf_counter() - t)
        return float(np.median(samples))

    out = {
        "casadi_jit_s": median(lambda: compiled(w, x, y)),
        "casadi_uncompiled_s": median(lambda: plain(w, x, y)),
        "torch_s": median(torch_fg),
    }
    out["ratio_jit_vs_torch"] = out["casadi_jit_s"] / out["torch_s"]
    return out


def compile_times(problem) -> dict:
    """JIT compile time on an empty cache, then on the warm cache (same Function)."""
    n = problem.data.x_train.shape[1]
    f = objective_loss_gradient(casadi_model(problem), n)
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("CONTROL_DL_CACHE")
        os.environ["CONTROL_DL_CACHE"] = cache
        try:
            cold = compile_function(f)[1]
            warm = compile_function(f)[1]
        finally:
            if previous is None:
                os.environ.pop("CONTROL_DL_CACHE")
            else:
                os.environ["CONTROL_DL_CACHE"] = previous
    return {"cold_s": cold["compile_time"], "warm_s": warm["compile_time"], "warm_cache_hit": warm["cache_hit"]}


def ratios(results: dict, reference: str) -> dict:
    base = results[reference]["time_to_target"]
    return {
        name: (r["time_to_target"] / base if r["time_to_target"] is not None and base else None)
        for name, r in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the slow IPOPT exact-Hessian variants")
    parser.add_argument("--no-scale", action="store_true", help="skip S = 10 000, N = 100")
    parser.add_argument(
        "--l2", type=float, default=0.0, help="l2 weight α (the ring preset's 1e-3 cannot reach MSE 1e-3)"
    )
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run before giving up")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)

    problem = cdl.load_problem("ring", dim=3, n_steps=20, n_samples=400, l2=args.l2)
    w0 = problem.initial_guess(0)
    limit = {"max_wall_time": args.time_limit}
    report: dict = {
        "problem": {"name": "ring", "dim": 3, "n_steps": 20, "n_samples": 400, "loss": "mse", "l2": args.l2},
        "target_mse": TARGET,
        "n_params": problem.n_params,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "compile": compile_times(problem),
        "fgrad": fgrad_times(problem),
    }
    with tempfile.TemporaryDirectory() as cache:  # the first L-BFGS-B run compiles on an empty cache
        os.environ["CONTROL_DL_CACHE"] = cache
        variants = {
            "lbfgsb_cold_cache": cdl.Direct(nlp="lbfgsb", max_iter=20000, target_loss=TARGET),
            "lbfgsb_warm_cache": cdl.Direct(nlp="lbfgsb", max_iter=20000, target_loss=TARGET),
            "ipopt_lbfgs": cdl.Direct(hessian="lbfgs", max_iter=20000, target_loss=TARGET, ipopt_options=limit),
            "ipopt_gauss_newton": cdl.Direct(
                hessian="gauss-newton", max_iter=20000, target_loss=TARGET, ipopt_options=limit
            ),
        }
        if not args.quick:
            variants["ipopt_exact"] = cdl.Direct(max_iter=20000, target_loss=TARGET, ipopt_options=limit)
        results = {name: direct_run(problem, w0, solver) for name, solver in variants.items()}
        os.environ.pop("CONTROL_DL_CACHE")
    results["torch_lbfgs"] = torch_run(problem, w0, "lbfgs", args.time_limit)
    results["torch_adam"] = torch_run(problem, w0, "adam", args.time_limit)
    report["time_to_target"] = results
    report["ratio_vs_torch_lbfgs"] = ratios(results, "torch_lbfgs")
    report["ratio_vs_torch_adam"] = ratios(results, "torch_adam")

    if not args.no_scale:
        big = cdl.load_problem("ring", dim=3, n_steps=100, n_samples=10000, l2=args.l2)
        wb = big.initial_guess(0)
        scale = {
            "lbfgsb": direct_run(big, wb, cdl.Direct(nlp="lbfgsb", max_iter=20000, target_loss=TARGET)),
            "torch_lbfgs": torch_run(big, wb, "lbfgs", 4 * args.time_limit),
            "fgrad": fgrad_times(big, reps=10),
        }
        scale["ratio_lbfgsb_vs_torch_lbfgs"] = ratios({k: v for k, v in scale.items() if k != "fgrad"}, "torch_lbfgs")[
            "lbfgsb"
        ]
        report["scale_S10000_N100"] = scale
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
