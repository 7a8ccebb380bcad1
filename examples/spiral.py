"""Two interleaved spirals in 2-D, after Andreu.

Unlike the ring, the spiral arms are not nested: a homeomorphism of the plane can unwind them, so a
non-augmented ResNet (d = 2) makes them linearly separable. Writes the boundary, layer panels, the
deformed grid and a GIF of the flow.
"""

from __future__ import annotations

from _shared import direct_solver, save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("spiral", __doc__)

# --- model: d = 2, a deeper horizon so the flow has time to unwind the arms --------------------
size = dict(n_samples=40, n_steps=4) if small else dict(n_samples=200, n_steps=20)
problem = cdl.load_problem("spiral", dim=2, horizon=4.0, **size)

# --- solver -----------------------------------------------------------------------------------
solver = direct_solver(max_iter=10 if small else 300)

# --- run --------------------------------------------------------------------------------------
result = cdl.solve(problem, solver, seed=0, progress=False)
print(result.summary())
save(plotting.decision_boundary(problem, result).figure, out / "boundary.png")
save(plotting.layers(problem, result)[0].figure, out / "layers.png")
save(plotting.grid_deformation(problem, result).figure, out / "grid.png")
print(f"wrote {plotting.animate_flow(problem, result, out / 'flow.gif', fps=5)}")
