"""The turnpike claim on the ring (Esteve, Geshkovski, Pighin, Zuazua), checked and plotted.

With the running training loss κ ∫ ℓ(λ2(x(t)), y) dt in the cost, an optimal control reaches the
data's separating configuration early and then rests: ‖θ(t)‖ collapses after a short transient.
Without it (κ = 0) only the final time matters and θ(t) stays spread over [0, T].
This is the slow test ``tests/test_turnpike.py::test_turnpike_claim_on_ring`` as a script; it prints
JSON and writes ``turnpike_kappa.png``. ``--small`` (or ``CONTROL_DL_SMALL=1``) runs it at toy size,
as every example (the claim is then not expected to hold).
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from _shared import setup

import control_dl as cdl

small, out = setup("turnpike_claim", __doc__)


# --- model: ring lifted to d = 3, long horizon, L2 weight α = 1e-2, with and without κ ---------
def make_problem(kappa: float) -> cdl.TrainingProblem:
    """Ring (50 points), d = 3, T = 10, N = 50 Euler steps, α = 1e-2, turnpike weight κ."""
    size = dict(n_steps=5, n_samples=20) if small else dict(n_steps=50, n_samples=50)
    return cdl.load_problem("ring", dim=3, horizon=10.0, l2=1e-2, turnpike=kappa, **size)


# --- solver: IPOPT with L-BFGS, 300 iterations ---------------------------------------------------
SOLVER = cdl.Direct(hessian="lbfgs", max_iter=10 if small else 300)


# --- run ----------------------------------------------------------------------------------------
def main() -> None:
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
    fig.tight_layout()
    fig.savefig(out / "turnpike_kappa.png", dpi=110)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
