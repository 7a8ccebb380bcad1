"""E-MSA vs torch Adam on the paper's toy (Li, Chen, Tai & E 2018): prints one JSON document.

    python benchmarks/msa_vs_adam.py [--adam-steps 5000] [--emsa-iters 300] [--seed 0]

Problem: ``cdl.load_problem("sin")``: y = sin x on [−π, π], 100 points, 20 residual steps
x + 0.25 tanh(W x + b) in 5-D, MSE + 1e-3 ∫‖θ‖², trainable readout. Both methods start from the
same w0 = ``problem.initial_guess(seed)``, on one thread (BLAS and torch pinned in this script).
Adam (lr 0.005, full batch) evaluates J through the torch backend of the same model; E-MSA is the
``emsa`` preset (ρ₀ = 1). Reported: J and the training loss against wall time for both, E-MSA's
set-up time (building and compiling its CasADi Functions, cached on disk after the first run; not
in its curve), and for Adam budgets of 500, 1000, … steps the time E-MSA needs to reach Adam's J
and Adam's best training loss by then (``null``: not reached).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import control_dl as cdl  # noqa: E402
from control_dl.backends import get_ops  # noqa: E402


def run_adam(problem: cdl.TrainingProblem, w0: np.ndarray, steps: int, lr: float) -> dict[str, list[float]]:
    """Full-batch torch Adam on ``problem.objective_terms``; J and loss recorded at every step."""
    ops = get_ops("torch")
    w = ops.asarray(w0.copy()).requires_grad_(True)  # asarray may share memory with w0
    x, y = ops.asarray(problem.data.x_train), ops.asarray(problem.targets)
    optimizer = torch.optim.Adam([w], lr=lr)
    times, objectives, losses = [], [], []
    start = time.perf_counter()
    for _ in range(steps + 1):
        optimizer.zero_grad()
        j, loss = problem.objective_terms(w, x, y, ops)
        times.append(time.perf_counter() - start)
        objectives.append(float(j.detach()))
        losses.append(float(loss.detach()))
        j.backward()
        optimizer.step()
    return {"time": times, "objective": objectives, "loss": losses}


def run_emsa(problem: cdl.TrainingProblem, w0: np.ndarray, iters: int) -> dict[str, object]:
    """The ``emsa`` preset from w0; the curve's clock starts after the Functions are built."""
    start = time.perf_counter()
    result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=iters, tol=1e-10), w0=w0, progress=False)
    total = time.perf_counter() - start
    h = result.history
    return {
        "time": [e["time"] for e in h],
        "objective": [e["objective"] for e in h],
        "loss": [e["loss"] for e in h],
        "pmp_residual": [e["pmp_residual"] for e in h],
        "setup_s": total - result.wall_time,
        "status": result.status,
        "accepted": int(sum(e["accepted"] for e in h[1:])),
        "iterations": result.iterations,
    }


def time_to(curve: dict, target: float, offset: float = 0.0, key: str = "objective") -> float | None:
    """First time (plus ``offset``) at which the curve's ``key`` (J or the loss) is ≤ target."""
    for t, j in zip(curve["time"], curve[key], strict=True):
        if j <= target:
            return t + offset
    return None


def thin(curve: dict, points: int = 60) -> dict:
    """About ``points`` samples of each list of a curve (log-spaced indices)."""
    n = len(curve["time"])
    idx = np.unique(np.geomspace(1, n, points).astype(int) - 1)
    return {k: [v[i] for i in idx] if isinstance(v, list) else v for k, v in curve.items()}


def main() -> None:
    """Run both methods and print the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam-steps", type=int, default=5000)
    parser.add_argument("--emsa-iters", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = cdl.load_problem("sin")
    w0 = problem.initial_guess(args.seed)
    adam = run_adam(problem, w0, args.adam_steps, args.lr)
    emsa = run_emsa(problem, w0, args.emsa_iters)
    budgets = [s for s in (500, 1000, 2000, 3000, 5000, 10000, 20000) if s <= args.adam_steps]
    comparison = []
    for steps in budgets:
        target, loss = adam["objective"][steps], min(adam["loss"][: steps + 1])
        comparison.append(
            {
                "adam_steps": steps,
                "adam_time_s": adam["time"][steps],
                "adam_objective": target,
                "emsa_time_to_objective_s": time_to(emsa, target),
                "emsa_time_to_objective_with_setup_s": time_to(emsa, target, emsa["setup_s"]),
                "adam_best_loss": loss,
                "adam_time_to_best_loss_s": time_to(adam, loss, key="loss"),
                "emsa_time_to_loss_s": time_to(emsa, loss, key="loss"),
            }
        )
    final = adam["objective"][-1]
    doc = {
        "problem": "sin (100 points, d=5, N=20, T=5, h=0.25, tanh, MSE, l2=1e-3)",
        "seed": args.seed,
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "adam": {"lr": args.lr, "steps": args.adam_steps, **thin(adam)},
        "emsa": {"preset": "emsa", **thin(emsa)},
        "adam_final_objective": final,
        "adam_time_s": adam["time"][-1],
        "emsa_time_to_adam_final_s": time_to(emsa, final),
        "adam_final_loss": adam["loss"][-1],
        "emsa_time_to_adam_final_loss_s": time_to(emsa, adam["loss"][-1], key="loss"),
        "emsa_final_loss": emsa["loss"][-1],
        "emsa_final_objective": emsa["objective"][-1],
        "emsa_time_s": emsa["time"][-1],
        "time_to_adam_objective_after_steps": comparison,
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
