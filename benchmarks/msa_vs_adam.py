"""E-MSA variants vs torch Adam and torch L-BFGS, same problem object, one run: prints one JSON document.

    python benchmarks/msa_vs_adam.py [--problems sin ring breast_cancer] [--quick] [--seed 0]

For each problem every method starts from the same w0 = ``problem.initial_guess(seed)`` on one
thread (BLAS and torch pinned in this script):

- Adam: lr 0.005, full batch, ``--adam-steps`` steps (10 000) through the torch backend of the model;
- torch L-BFGS: the ``torch-lbfgs`` preset (strong Wolfe), ``--lbfgs-epochs`` epochs;
- E-MSA: the ``emsa`` preset (its own stopping rule: PMP residual and readout gradient ≤ 1e-4) and
  the variants of :data:`PLAN` (:data:`VARIANTS`, options on top of the preset); on breast cancer
  the preset runs its whole budget (``tol`` 1e-15), the 100 iterations compared with 100 Adam epochs;
- on the sin toy, the preset and the variant without quasi-Newton memory from ``--robust-seeds`` other
  initial guesses (status, iterations, final J and PMP residual: does the stopping rule end every
  run at residual ≤ 1e-4?).

Targets are Adam's objectives J after 500, 1000, 2000, 5000 and 10 000 steps. Reported per method:
the time to each target (the clock of the solver's history: set-up, i.e. building and compiling the
CasADi Functions, is excluded and reported as ``setup_s``), the final J, the final PMP residual
max_k ‖∂H_k/∂θ_k‖ = max_k ‖∇_{θ_k} J‖ at the final w (computed the same way for every method), and
the ratios E-MSA / Adam and E-MSA / torch L-BFGS of the times to each target, and the time of the
preset's iterations against as many Adam steps (``emsa_iterations_vs_adam_steps``). The machine load
(``os.getloadavg``) is recorded before and after: on a shared machine only the ratios compare.
``--quick`` shrinks every budget (Adam 1000 steps, 50 E-MSA iterations, one other seed; sin unless
``--problems`` says otherwise) for a smoke run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import control_dl as cdl  # noqa: E402
from control_dl.backends import get_ops  # noqa: E402

#: E-MSA variants: name -> options on top of the ``emsa`` preset (the first is the paper's update).
VARIANTS: dict[str, dict[str, Any]] = {
    "paper: L-BFGS-B readout, 5 Newton": {"readout": "lbfgsb", "inner_iters": 5},
    "exact readout, 5 Newton": {"inner_iters": 5},
    "no QN memory": {"memory": 0},
    "full budget (tol 1e-10)": {"tol": 1e-10},
    "no QN memory, full budget (tol 1e-10)": {"memory": 0, "tol": 1e-10},
}

#: Adam budgets whose objectives are the targets.
BUDGETS = (500, 1000, 2000, 5000, 10000)

#: Problem -> (E-MSA iterations, variants run besides the preset, options of the preset row). Breast
#: cancer (d = 30, N = 10, 930 parameters per layer: the L-BFGS-B inner solver) runs the preset only,
#: for its whole budget of 100 iterations, the budget the issue compares with Adam's 100 epochs.
PLAN: dict[str, tuple[int, tuple[str, ...], dict[str, Any]]] = {
    "sin": (500, tuple(VARIANTS), {}),
    "ring": (300, ("paper: L-BFGS-B readout, 5 Newton", "no QN memory"), {}),
    "breast_cancer": (100, (), {"tol": 1e-15}),
}

#: Variants run from the other initial guesses of ``--robust-seeds`` (sin toy).
ROBUST: dict[str, dict[str, Any]] = {"emsa preset": {}, "emsa no QN memory": {"memory": 0}}


def load(name: str) -> cdl.TrainingProblem:
    """The benchmark problems: the paper's sin toy, the ring at d = 3, breast cancer at d = 30, N = 10."""
    if name == "sin":
        return cdl.load_problem("sin")
    if name == "ring":
        return cdl.load_problem("ring", dim=3)
    if name == "breast_cancer":
        return cdl.load_problem("breast_cancer", dim=30, n_steps=10)
    raise ValueError(name)


def run_adam(problem: cdl.TrainingProblem, w0: np.ndarray, steps: int, lr: float) -> dict[str, Any]:
    """Full-batch torch Adam on ``problem.objective_terms``; J recorded at every step."""
    ops = get_ops("torch")
    w = ops.asarray(w0.copy()).requires_grad_(True)  # asarray may share memory with w0
    x, y = ops.asarray(problem.data.x_train), ops.asarray(problem.targets)
    optimizer = torch.optim.Adam([w], lr=lr)
    times, objectives = [], []
    start = time.perf_counter()
    for _ in range(steps + 1):
        optimizer.zero_grad()
        j, _ = problem.objective_terms(w, x, y, ops)
        times.append(time.perf_counter() - start)
        objectives.append(float(j.detach()))
        j.backward()
        optimizer.step()
    return {"time": times, "objective": objectives, "w": w.detach().numpy().copy(), "setup_s": 0.0}


def run_solver(problem: cdl.TrainingProblem, w0: np.ndarray, solver: Any) -> dict[str, Any]:
    """Any control_dl solver from w0; the curve's clock is the history's (set-up excluded)."""
    start = time.perf_counter()
    result = cdl.solve(problem, solver, w0=w0, progress=False)
    total = time.perf_counter() - start
    return {
        "time": [e["time"] for e in result.history],
        "objective": [e["objective"] for e in result.history],
        "w": result.w,
        "setup_s": total - result.wall_time,
        "status": result.status,
        "iterations": result.iterations,
        "engine": result.engine.get("name"),
    }


def evaluation_time(problem: cdl.TrainingProblem, w: np.ndarray, engine: str, repeats: int = 20) -> float:
    """Seconds of one J + ∇J on ``engine`` (the E-MSA run's): the median of ``repeats`` after a warm-up."""
    bound = cdl.engines.make_engine(engine, problem, problem.data.x_train, problem.targets)
    bound.evaluate(w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bound.evaluate(w)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_to(curve: dict[str, Any], target: float) -> float | None:
    """First time at which the curve's J is ≤ target (None: never)."""
    return next((t for t, j in zip(curve["time"], curve["objective"], strict=True) if j <= target), None)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when either is missing."""
    return None if a is None or b is None or b == 0 else a / b


def bench(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """All methods on one problem object; the summary rows of the document."""
    problem = load(name)
    w0 = problem.initial_guess(args.seed)
    iters, variants, preset = PLAN[name]
    iters = args.emsa_iters or iters
    curves = {
        "adam": run_adam(problem, w0, args.adam_steps, args.lr),
        "torch-lbfgs": run_solver(problem, w0, cdl.load_solver("torch-lbfgs", epochs=args.lbfgs_epochs, tol=1e-10)),
        "emsa preset": run_solver(problem, w0, cdl.load_solver("emsa", max_iter=iters, **preset)),
    }
    for label in variants:
        solver = cdl.load_solver("emsa", max_iter=iters, **VARIANTS[label])
        curves[f"emsa {label}"] = run_solver(problem, w0, solver)
    budgets = [s for s in BUDGETS if s <= args.adam_steps]
    targets = {str(s): curves["adam"]["objective"][s] for s in budgets}
    rows = {}
    for label, curve in curves.items():
        times = {s: time_to(curve, target) for s, target in targets.items()}
        row = {
            "final_objective": curve["objective"][-1],
            "pmp_residual": cdl.diagnostics.pmp_residual(problem, curve["w"]).residual,
            "wall_s": curve["time"][-1],
            "setup_s": curve["setup_s"],
            "status": curve.get("status", "max_iter"),
            "time_to_target_s": times,
        }
        if label.startswith("emsa"):
            row["ratio_to_adam"] = {s: ratio(t, time_to(curves["adam"], targets[s])) for s, t in times.items()}
            row["ratio_to_torch_lbfgs"] = {
                s: ratio(t, time_to(curves["torch-lbfgs"], targets[s])) for s, t in times.items()
            }
        rows[label] = row
    preset, adam = curves["emsa preset"], curves["adam"]
    n_iter = len(preset["time"]) - 1
    j_grad = evaluation_time(problem, w0, preset["engine"])
    per_iteration = {
        "emsa_preset_iterations": n_iter,
        "emsa_preset_time_s": preset["time"][-1] - preset["time"][0],
        "adam_time_for_as_many_steps_s": adam["time"][min(n_iter, len(adam["time"]) - 1)],
        "engine_j_grad_s": j_grad,
    }
    per_iteration["ratio"] = ratio(per_iteration["emsa_preset_time_s"], per_iteration["adam_time_for_as_many_steps_s"])
    per_iteration["emsa_iteration_in_j_grad"] = ratio(per_iteration["emsa_preset_time_s"], n_iter * j_grad)
    robust = {}
    if name == "sin":
        for seed in args.robust_seeds:
            start = problem.initial_guess(seed)
            for label, options in ROBUST.items():
                curve = run_solver(problem, start, cdl.load_solver("emsa", max_iter=iters, **options))
                robust[f"{label}, seed {seed}"] = {
                    "status": curve["status"],
                    "iterations": curve["iterations"],
                    "final_objective": curve["objective"][-1],
                    "pmp_residual": cdl.diagnostics.pmp_residual(problem, curve["w"]).residual,
                    "wall_s": curve["time"][-1],
                }
    return {
        "problem": name,
        "engine": preset["engine"],
        "emsa_iterations_vs_adam_steps": per_iteration,
        "n_params": problem.n_params,
        "n_samples": int(problem.data.x_train.shape[1]),
        "targets_adam_steps_to_objective": targets,
        "methods": rows,
        "other_initial_guesses": robust,
    }


def main() -> None:
    """Run the benchmark and print the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=None, help="default: sin ring breast_cancer (--quick: sin)")
    parser.add_argument("--adam-steps", type=int, default=10000)
    parser.add_argument("--lbfgs-epochs", type=int, default=500)
    parser.add_argument("--emsa-iters", type=int, default=None, help="override the per-problem budgets (PLAN)")
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--robust-seeds", type=int, nargs="*", default=[1, 2], help="sin: other initial guesses")
    parser.add_argument("--quick", action="store_true", help="small budgets, sin only (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.problems = args.problems or ["sin"]
        args.adam_steps, args.lbfgs_epochs, args.emsa_iters = 1000, 50, 50
        args.robust_seeds = [1]
    args.problems = args.problems or ["sin", "ring", "breast_cancer"]
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    results = [bench(name, args) for name in args.problems]
    doc = {
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "seed": args.seed,
        "adam": {"lr": args.lr, "steps": args.adam_steps},
        "torch_lbfgs_epochs": args.lbfgs_epochs,
        "emsa_iters": args.emsa_iters or {name: PLAN[name][0] for name in args.problems},
        "emsa_preset_options": {name: PLAN[name][2] for name in args.problems},
        "variants": VARIANTS,
        "results": results,
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
