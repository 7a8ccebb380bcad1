"""An invertible ResNet and its inverse, after Andreu (Behrmann et al.'s sufficient condition).

Each Euler step x ↦ x + h f(x, θ_k) is invertible when h·Lip_x f(·, θ_k) < 1; the direct method
enforces h·‖A_k‖·Lip σ ≤ c with ``lipschitz = c``. The inverse of a step is then the limit of the
contraction x ← y − h f(x, θ_k), so the whole network can be run backwards: the grid of the input
plane is recovered from its image. Without the constraint (few, large steps) the map may fold.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _shared import save, setup

import control_dl as cdl
from control_dl import plotting
from control_dl.backends import numpy_ops

small, out = setup("invertible", __doc__)

# --- model: ring in 2-D with few, large steps (h = 0.5), with and without the constraint ------
size = dict(n_samples=40) if small else dict(n_samples=200)
problems = {
    "lipschitz c = 0.9": cdl.load_problem("ring", dim=2, n_steps=4, horizon=2.0, lipschitz=0.9, **size),
    "unconstrained": cdl.load_problem("ring", dim=2, n_steps=4, horizon=2.0, **size),
}

# --- solver: the recommended constrained route (augmented Lagrangian around L-BFGS-B) ---------
solver = cdl.load_solver("certified", max_iter=10 if small else 1000)


# --- run --------------------------------------------------------------------------------------
def inverse(problem: cdl.TrainingProblem, w: np.ndarray, y: np.ndarray, iters: int = 200) -> np.ndarray:
    """x_0 from x_N by inverting the Euler steps backwards with the fixed point x ← y − h f(x, θ_k)."""
    for k in reversed(range(problem.n_steps)):
        (theta,) = problem.stage_thetas(w, k, numpy_ops)
        x = y.copy()
        for _ in range(iters):
            x = y - problem.step_size * problem.rhs(x, theta, numpy_ops)
        y = x
    return y


results = {name: cdl.solve(p, solver, seed=0, progress=False) for name, p in problems.items()}
fig, axes = plt.subplots(2, 3, figsize=(14, 9), layout="constrained")
for row, (name, problem) in zip(axes, problems.items(), strict=True):
    res = results[name]
    lines = plotting.grid_lines(problem, n_lines=9, resolution=60)
    image = plotting.flow_lines(problem, res.w, lines)[-1]  # (lines, d, points)
    back = np.stack([inverse(problem, res.w, line) for line in image])
    error = float(np.max(np.abs(back - lines)))
    print(f"{name}: {res.summary()}; max inverse error on the grid {error:.2e}")
    plotting.grid_deformation(problem, res, ax=row[0], layer=0, n_lines=9).set_title(f"{name}: input grid", fontsize=10)
    plotting.grid_deformation(problem, res, ax=row[1], n_lines=9).set_title(f"{name}: image x(T)", fontsize=10)
    for line in back:
        row[2].plot(line[0], line[1], color="0.4", lw=0.8)
    row[2].set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    row[2].set_title(f"{name}: inverse of the image, max error {error:.1e}", fontsize=10)
save(fig, out / "invertible.png")
