"""The turnpike claim on the ring (Esteve, Geshkovski, Pighin, Zuazua), checked and plotted.

With the running training loss κ ∫ ℓ(λ2(x(t)), y) dt in the cost, an optimal control reaches the
data's separating configuration early and then rests: ‖θ(t)‖ collapses after a short transient.
Without it (κ = 0) only the final time matters and θ(t) stays spread over [0, T].
This is the slow test ``tests/test_turnpike.py::test_turnpike_claim_on_ring`` as a script; it prints
JSON and writes ``turnpike_kappa.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import control_dl as cdl  # noqa: E402


# --- model: ring lifted to d = 3, long horizon, L2 weight α = 1e-2, with and without κ ---------
def make_problem(kappa: float) -> cdl.TrainingProblem:
    """Ring (50 points), d = 3, T = 10, N = 50 Euler steps, α = 1e-2, turnpike weight κ."""
    return cdl.load_problem("ring", dim=3, horizon=10.0, n_steps=50, l2=1e-2, turnpike=kappa, n_samples=50)


# --- solver: IPOPT with L-BFGS, 300 iterations ---------------------------------------------------
SOLVER = cdl.Direct(hessian="lbfgs", max_iter=300)


# --- run ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/examples/turnpike_claim")
    args = parser.parse_args()
    rows, fig = {}, plt.figure(figsize=(6, 4.5))
    ax = fig.add_subplot(111)
    for kappa in (1.0, 0.0):
        problem = make_problem(kappa)
        result = cdl.solve(problem, SOLVER, progress=False)
        report = cdl.diagnostics.turnpike(problem, result)
        rows[f"kappa={kappa:g}"] = {
            "status": result.status,
            "loss": result.loss,
            "accuracy": result.accuracy,
            "wall_time": result.wall_time,
            "half_ratio": report.half_ratio,
            "rate": report.rate,
            "fit_r2": report.fit_r2,
            "claim_holds": bool(report.half_ratio <= 0.2 and report.rate > 0)
            if kappa > 0
            else bool(report.half_ratio > 0.5),
        }
        ax.semilogy(report.t, report.theta_norm, label=f"κ = {kappa:g} (μ = {report.rate:.2f})")
    ax.set_xlabel("t")
    ax.set_ylabel("‖θ(t)‖")
    ax.set_title("Ring, d = 3, T = 10: ‖θ(t)‖ with and without κ")
    ax.legend()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / "turnpike_kappa.png", dpi=110)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
