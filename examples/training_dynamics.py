"""Two time scales: θ over layer time t and training time τ, one heat map per solver.

The same ring problem is solved by the direct method (IPOPT) and, when they are installed in this
version of control_dl, by Adam and E-MSA, each recording a snapshot of w every few iterations
(``record_every``). The figure runs/examples/training_dynamics/heatmaps.png shows ‖θ(t, τ)‖ beside
the loss for each, side by side; results.npz files hold the snapshots.

Set CONTROL_DL_SMALL=1 for a CI-sized run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import control_dl as cdl  # noqa: E402

SMALL = os.environ.get("CONTROL_DL_SMALL", "") not in ("", "0") or "--small" in sys.argv

# --- model: the ring lifted to 3-D, a ResNet of N layers ------------------------------------------
PROBLEM = cdl.load_problem("ring", dim=3, n_samples=100 if SMALL else 400, n_steps=10 if SMALL else 20)

# --- solvers: every available one, each keeping a snapshot of w every `record_every` iterations ----
ITERS = 60 if SMALL else 300
CANDIDATES = {
    "ipopt-lbfgs": {"max_iter": ITERS, "record_every": max(ITERS // 30, 1)},
    "adam": {"epochs": 10 * ITERS, "record_every": max(ITERS // 3, 1)},
    "emsa": {"max_iter": ITERS, "record_every": max(ITERS // 30, 1)},
}


def _load(name: str, options: dict) -> object:
    """The preset with our iteration budget, or with only record_every if it names budgets otherwise."""
    try:
        return cdl.load_solver(name, **options)
    except cdl.SpecError:
        return cdl.load_solver(name, record_every=options["record_every"])


SOLVERS = {name: _load(name, options) for name, options in CANDIDATES.items() if name in cdl.list_solvers()}


# --- run -------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="CI-sized run (also CONTROL_DL_SMALL=1)")
    parser.add_argument("--out", default="runs/examples/training_dynamics")
    args = parser.parse_args()
    out = Path(args.out)
    fig, axes = plt.subplots(1, len(SOLVERS), figsize=(5.5 * len(SOLVERS), 5.0), squeeze=False)
    for ax, (name, solver) in zip(axes[0], SOLVERS.items(), strict=True):
        result = cdl.solve(PROBLEM, solver, seed=0, progress=False)
        result.save(out / name / "result.npz")
        cdl.plotting.training_heatmap(PROBLEM, result, ax=ax, log=True)
        dyn = cdl.diagnostics.training_dynamics(PROBLEM, result)
        half = next(i for i, d in enumerate(dyn.distance) if d <= 0.5 * dyn.distance[0])
        print(
            f"{name:<12} {result.status:<9} loss {result.loss:.3e}  snapshots {len(result.snapshots):>3}  "
            f"half-way to the final θ(·) at iteration {dyn.iterations[half]}"
        )
    fig.tight_layout()
    fig.savefig(out / "heatmaps.png", dpi=110)
    print(f"heat maps and results under {out}/")


if __name__ == "__main__":
    main()
