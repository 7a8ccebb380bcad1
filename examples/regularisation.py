"""Noisy rings with and without regularisation, after Andreu.

With noisy inputs some points sit on the wrong side; fitting them all needs a convoluted flow. The
L2 and H1 penalties α∫‖θ‖² + β∫‖θ'‖² of the cost ask for simple dynamics instead: smaller, smoother
θ(t), a gentler grid deformation and a smoother boundary that generalises better.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import direct_solver, save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("regularisation", __doc__)

# --- model: the ring with Gaussian input noise, without and with L2 + H1 penalties -------------
size = dict(n_samples=40, n_steps=4) if small else dict(n_samples=200, n_steps=20)
weights = {"no regularisation": dict(l2=0.0, h1=0.0), "L2 + H1": dict(l2=0.005, h1=0.005)}
problems = {name: cdl.load_problem("ring", dim=3, noise=0.15, horizon=2.0, **size, **w) for name, w in weights.items()}

# --- solver -----------------------------------------------------------------------------------
solver = direct_solver(max_iter=10 if small else 300)

# --- run --------------------------------------------------------------------------------------
results = {name: cdl.solve(p, solver, seed=0, progress=False) for name, p in problems.items()}
fig = plt.figure(figsize=(16, 8), layout="constrained")
for row, (name, problem) in enumerate(problems.items()):
    res = results[name]
    print(f"{name}: {res.summary()}")
    ax = plotting.decision_boundary(problem, res, ax=fig.add_subplot(2, 3, 3 * row + 1))
    ax.set_title(f"{name}: train {res.accuracy:.2f}, test {res.test_accuracy:.2f}", fontsize=10)
    ax = plotting.grid_deformation(problem, res, ax=fig.add_subplot(2, 3, 3 * row + 2, projection="3d"), n_lines=9)
    ax.set_title(f"{name}: input grid at T", fontsize=10)
    ax = plotting.theta_heatmap(problem, res, ax=fig.add_subplot(2, 3, 3 * row + 3))
    ax.set_title(f"{name}: θ(t)", fontsize=10)
save(fig, out / "regularisation.png")
