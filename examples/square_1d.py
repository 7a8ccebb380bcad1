"""x ↦ x² in 1-D (impossible) vs augmented (possible), after Kuntz.

The paths t ↦ x(t) of a 1-D flow cannot cross, so x and −x cannot both reach x²: a non-augmented
network (d = 1) must fit an order-preserving map. With one extra dimension (d = 2) the paths pass
each other and the fit succeeds. Each Euler step is kept invertible (h·Lip f < 0.9, see
invertible.py), so the discrete network keeps the topology of the flow it approximates.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("square_1d", __doc__)

# --- model: y = x² on [-1, 1], state dimension 1 (non-augmented) and 2 (augmented) -----------
size = dict(n_samples=16, n_steps=4) if small else dict(n_samples=80, n_steps=20)
problems = {dim: cdl.load_problem("square_1d", dim=dim, horizon=4.0, lipschitz=0.9, **size) for dim in (1, 2)}

# --- solver: `certified` returns an exactly feasible (invertible) network, whatever the budget ---
solver = cdl.load_solver("certified", max_iter=10 if small else 400)

# --- run --------------------------------------------------------------------------------------
results = {dim: cdl.solve(p, solver, seed=0, progress=False) for dim, p in problems.items()}
fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
for col, (dim, problem) in enumerate(problems.items()):
    print(f"d = {dim}: {results[dim].summary()}")
    plotting.regression_fit(problem, results[dim], ax=axes[0, col])
    plotting.time_paths(problem, results[dim], ax=axes[1, col], coord=0)
save(fig, out / "square_1d.png")
save(plotting.layers(problems[2], results[2])[0].figure, out / "layers_d2.png")
