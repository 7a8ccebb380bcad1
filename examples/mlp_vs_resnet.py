"""A width-2 MLP beside a 2-D and a 3-D ResNet on Andreu's ring: which layers lose information?

For every model and seed the script trains with IPOPT (limited-memory), then measures each layer
with ``cdl.diagnostics.layer_ranks``: a layer *collapses* when its Jacobian ∂x_{k+1}/∂x_k has
numerical rank < min(w_k, w_{k+1}) at most training points (σ_min ≤ 10⁻² σ_max: the median over the
data of σ_min/σ_max is ≤ 10⁻²), i.e. it squeezes the data onto a lower-dimensional set. The smallest
median ratio over the hidden layers is reported too, so the scale is visible whatever the cut-off. It writes under runs/examples/mlp_vs_resnet/:
layers_<model>.png (the data layer by layer, seed 0), singular_values.png (Jacobian singular
values per layer, seed 0) and summary.json (per model and seed: accuracy, collapsed layers).

Set CONTROL_DL_SMALL=1 for a CI-sized run (fewer samples, layers and iterations).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

import control_dl as cdl  # noqa: E402

SMALL = os.environ.get("CONTROL_DL_SMALL", "") not in ("", "0") or "--small" in sys.argv
N_SAMPLES, N_STEPS, MAX_ITER = (100, 5, 80) if SMALL else (400, 10, 400)
MLP_LAYERS = 5  # deeper width-2 tanh MLPs mostly stop at the constant net (all layers collapsed)
RTOL = 1e-2

# --- models: the same data, three architectures ---------------------------------------------------
MODELS = {
    "mlp-2d": {"model": "mlp", "widths": [2] * MLP_LAYERS + [1]},  # width-2 MLP
    "resnet-2d": {"dim": 2, "n_steps": N_STEPS},  # non-augmented ResNet
    "resnet-3d": {"dim": 3, "n_steps": N_STEPS},  # augmented ResNet
}

# --- solver: CasADi single shooting, IPOPT with a limited-memory Hessian ---------------------------
SOLVER = cdl.load_solver("ipopt-lbfgs", max_iter=MAX_ITER)


def build(name: str, seed: int) -> cdl.TrainingProblem:
    """The ring problem for model ``name``, data drawn with ``seed``."""
    return cdl.load_problem("ring", n_samples=N_SAMPLES, seed=seed, **MODELS[name])


# --- figures ---------------------------------------------------------------------------------------
def plot_layers(problem: cdl.TrainingProblem, result: cdl.Result, path: Path, title: str) -> None:
    """The training points layer by layer (first two principal directions of each x_k)."""
    states = list(problem.trajectory(result.w, problem.data.x_train, cdl.backends.numpy_ops))
    picks = np.unique(np.linspace(0, len(states) - 1, min(6, len(states))).astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks), 2.8))
    colors = np.where(problem.data.y_train == 1, "#ff7f0e", "#1f77b4")
    for ax, k in zip(np.atleast_1d(axes), picks, strict=True):
        x = states[k] - states[k].mean(axis=1, keepdims=True)
        u = np.linalg.svd(x, full_matrices=False)[0]
        coords = u.T @ x
        second = coords[1] if coords.shape[0] > 1 else np.zeros(coords.shape[1])
        ax.scatter(coords[0], second, c=colors, s=4)
        ax.set_title(f"x_{k} (width {states[k].shape[0]})", fontsize=9)
        ax.set_xlabel("principal direction 1", fontsize=7)
        ax.set_ylabel("principal direction 2", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_singular_values(reports: dict[str, tuple[cdl.diagnostics.LayerRanks, int]], path: Path) -> None:
    """Median (over the data) of every Jacobian singular value of the hidden layers, per model."""
    fig, axes = plt.subplots(1, len(reports), figsize=(4.2 * len(reports), 3.4), sharey=True)
    for ax, (name, (rep, n_hidden)) in zip(axes, reports.items(), strict=True):
        medians = np.array([np.median(sv, axis=0) for sv in rep.jacobian_singular_values[:n_hidden]])
        for j in range(medians.shape[1]):
            ax.semilogy(np.arange(medians.shape[0]), medians[:, j], marker="o", label=f"σ_{j + 1}")
        ax.axhline(RTOL * medians.max(), color="grey", ls=":", lw=0.8, label="10⁻² · largest")
        ax.set_title(name)
        ax.set_xlabel("layer k")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers: no 0.5, 1.5, …
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("median singular value of the layer Jacobian")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- run -------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="CI-sized run (also CONTROL_DL_SMALL=1)")
    parser.add_argument("--out", default="runs/examples/mlp_vs_resnet")
    parser.add_argument("--seeds", type=int, default=2 if SMALL else 5)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, list[dict]] = {name: [] for name in MODELS}
    first_reports = {}
    for name in MODELS:
        for seed in range(args.seeds):
            problem = build(name, seed)
            result = cdl.solve(problem, SOLVER, seed=seed, progress=False)
            # the last layer maps onto the output (MLP) or is read out by P: judge the hidden layers
            rep = cdl.diagnostics.layer_ranks(problem, result, rtol=RTOL)
            hidden = rep.collapsed[:-1] if problem.model is not None else rep.collapsed
            ratios = [np.median(sv[:, -1] / sv[:, 0]) for sv in rep.jacobian_singular_values[: len(hidden)]]
            summary[name].append(
                {
                    "seed": seed,
                    "status": result.status,
                    "train_accuracy": result.accuracy,
                    "test_accuracy": result.test_accuracy,
                    "collapsed_layers": int(sum(hidden)),
                    "n_layers": len(hidden),
                    "min_median_jacobian_ratio": float(min(ratios)),
                }
            )
            if seed == 0:
                first_reports[name] = (rep, len(hidden))
                plot_layers(problem, result, out / f"layers_{name}.png", f"{name}: ring, seed 0")
    plot_singular_values(first_reports, out / "singular_values.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    header = (
        f"{'model':<10} {'runs with a collapse':>20} {'collapsed layers':>17} {'min σ_min/σ_max':>16} "
        f"{'train acc':>9} {'test acc':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, rows in summary.items():
        hit = sum(r["collapsed_layers"] > 0 for r in rows)
        layers = np.mean([r["collapsed_layers"] / r["n_layers"] for r in rows])
        ratio = np.median([r["min_median_jacobian_ratio"] for r in rows])
        print(
            f"{name:<10} {f'{hit}/{len(rows)}':>20} {f'{100 * layers:.0f}%':>17} {ratio:>16.3g} "
            f"{np.mean([r['train_accuracy'] for r in rows]):>9.3f} {np.mean([r['test_accuracy'] for r in rows]):>9.3f}"
        )
    print(f"figures and summary.json under {out}/")


if __name__ == "__main__":
    main()
