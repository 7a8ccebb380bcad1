"""Ring in 2-D (fails) vs 3-D (separates), after Andreu.

A ResNet step x ↦ x + h f(x, θ) with small h is a homeomorphism of the plane: it cannot pull the
inner disk out of the surrounding annulus, so a 2-D flow ends with classes squeezed against each
other. One extra dimension (d = 3, zero-padded lift) lets the flow lift the disk over the annulus.
Writes boundaries, layer panels, the deformed grid and a GIF per dimension.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import direct_solver, save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("ring_dimensions", __doc__)

# --- model: the same ring data, non-augmented (d = 2) and augmented (d = 3) ------------------
size = dict(n_samples=40, n_steps=4) if small else dict(n_samples=200, n_steps=20)
problems = {dim: cdl.load_problem("ring", dim=dim, horizon=1.0, **size) for dim in (2, 3)}

# --- solver -----------------------------------------------------------------------------------
solver = direct_solver(max_iter=10 if small else 200)

# --- run --------------------------------------------------------------------------------------
results = {dim: cdl.solve(p, solver, seed=0, progress=False) for dim, p in problems.items()}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
for ax, (dim, problem) in zip(axes, problems.items(), strict=True):
    plotting.decision_boundary(problem, results[dim], ax=ax)
    print(f"d = {dim}: {results[dim].summary()}")
save(fig, out / "boundaries.png")
for dim, problem in problems.items():
    axes = plotting.layers(problem, results[dim])
    save(axes[0].figure, out / f"layers_d{dim}.png")
    ax = plotting.grid_deformation(problem, results[dim])
    save(ax.figure, out / f"grid_d{dim}.png")
    print(f"wrote {plotting.animate_flow(problem, results[dim], out / f'flow_d{dim}.gif', fps=5)}")
