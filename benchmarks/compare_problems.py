"""Solver comparison on ring, spiral and sin: prints one JSON document (rows of cdl.compare).

    python benchmarks/compare_problems.py [--seeds 0,1,2] [--solvers ipopt-lbfgs,adam,torch-lbfgs,sgd]

Every solver runs from the same ``problem.initial_guess(seed)``; time-to-target is wall time until
the training loss first reaches the problem's target. Presets ``lbfgsb`` and ``emsa`` are added
when they exist. torch runs on one thread (the presets' default); pin BLAS with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import control_dl as cdl

#: problem name -> training-loss target of time-to-target
TARGETS = {"ring": 1e-2, "spiral": 0.1, "sin": 1e-3}
DEFAULT_SOLVERS = ["ipopt-lbfgs", "lbfgsb", "emsa", "adam", "torch-lbfgs", "sgd"]


def gradient_ms(problem: cdl.TrainingProblem, repeats: int = 20) -> dict[str, float]:
    """Median milliseconds of one J + ∇J on the training set: torch autograd vs the costate pass."""
    import torch

    torch.set_num_threads(1)
    w = problem.initial_guess(0)
    timings = {}
    for label, adjoint in (("torch_backprop", False), ("torch_adjoint", True)):
        trainer = cdl.TorchTrainer(adjoint=adjoint)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            trainer.objective_and_gradient(problem, w)
            samples.append(time.perf_counter() - start)
        timings[label] = 1e3 * statistics.median(samples)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--solvers", default=",".join(DEFAULT_SOLVERS))
    parser.add_argument("--problems", default=",".join(TARGETS))
    args = parser.parse_args()
    available = cdl.list_solvers()
    solvers = [s for s in args.solvers.split(",") if s in available]
    seeds = tuple(int(s) for s in args.seeds.split(","))
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": sys.platform},
        "seeds": list(seeds),
        "solvers": solvers,
        "problems": {},
    }
    for name in args.problems.split(","):
        problem = cdl.load_problem(name)
        table = cdl.compare(problem, solvers, seeds=seeds, target=TARGETS.get(name))
        report["problems"][name] = {
            "target_loss": table.target,
            "n_params": problem.n_params,
            "gradient_ms": gradient_ms(problem),
            "rows": table.rows,
        }
        print(f"## {name}\n{table.to_markdown()}\n", file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
