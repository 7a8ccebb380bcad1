"""Morse contours of Φ, augmented vs not, after Kuntz (Kuehn & Kuntz).

Φ(x) = λ2(x(T)) of a non-augmented network (d = n_in = 2) has no critical points: its level sets
cannot close around the circle class, only bend. An augmented network (d = 3) can have
non-degenerate critical points, here a maximum inside the circle. Critical points are found by a
grid search of ‖∇Φ‖ refined by a root solve; the figure marks each by its type (maximum, minimum or
saddle, from the signs of the eigenvalues of Φ's Hessian there).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from _shared import direct_solver, save, setup
from scipy.ndimage import minimum_filter
from scipy.optimize import root

import control_dl as cdl
from control_dl import plotting

small, out = setup("morse", __doc__)

# --- model: circle data (label = inside the circle), scalar logistic readout, d = 2 and d = 3 ---
size = dict(n_samples=40, n_steps=4) if small else dict(n_samples=300, n_steps=20)
problems = {dim: cdl.load_problem("circle", dim=dim, horizon=2.0, **size) for dim in (2, 3)}

# --- solver -----------------------------------------------------------------------------------
solver = direct_solver(max_iter=10 if small else 300)


# --- run --------------------------------------------------------------------------------------
def gradient(problem: cdl.TrainingProblem, w: np.ndarray, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∇Φ at the columns of x by central differences of the readout."""
    steps = np.eye(2)[:, :, None] * eps
    return np.stack([(problem.predict(w, x + e) - problem.predict(w, x - e))[0] / (2 * eps) for e in steps])


def critical_points(problem: cdl.TrainingProblem, w: np.ndarray, n: int = 80, tol: float = 1e-4) -> np.ndarray:
    """Points with ∇Φ = 0 inside the data box: local minima of ‖∇Φ‖ on a grid, refined by a root solve."""
    x = problem.data.x_train
    low, high = x.min(axis=1), x.max(axis=1)
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n))
    norm = np.linalg.norm(gradient(problem, w, np.vstack([xx.ravel(), yy.ravel()])), axis=0).reshape(n, n)
    found: list[np.ndarray] = []
    for i, j in zip(*np.nonzero(norm == minimum_filter(norm, size=5)), strict=True):
        sol = root(lambda z: gradient(problem, w, z[:, None])[:, 0], [xx[i, j], yy[i, j]])
        z = sol.x
        inside = np.all((z >= low) & (z <= high))
        if (
            sol.success
            and inside
            and np.linalg.norm(sol.fun) < tol
            and all(np.linalg.norm(z - f) > 1e-3 for f in found)
        ):
            found.append(z)
    return np.array(found).reshape(-1, 2)


results = {dim: cdl.solve(p, solver, seed=0, progress=False) for dim, p in problems.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
for ax, (dim, problem) in zip(axes, problems.items(), strict=True):
    points = critical_points(problem, results[dim].w)
    print(f"d = {dim}: {results[dim].summary()}; {len(points)} critical point(s) {points.round(3).tolist()}")
    plotting.morse_contours(problem, results[dim], ax=ax, critical_points=points)
save(fig, out / "morse.png")
