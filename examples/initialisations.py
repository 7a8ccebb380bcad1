"""Different initialisations, different flows, after Andreu.

The training problem has many optima: the same ring data and ResNet (3 neurons per layer) started
from three random θ reach three different dynamics that all separate the classes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import direct_solver, save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("initialisations", __doc__)

# --- model ------------------------------------------------------------------------------------
size = dict(n_samples=40, n_steps=4) if small else dict(n_samples=200, n_steps=20)
problem = cdl.load_problem("ring", dim=3, horizon=2.0, **size)

# --- solver -----------------------------------------------------------------------------------
solver = direct_solver(max_iter=10 if small else 200)

# --- run: one solve per seed of the initial guess ---------------------------------------------
seeds = (0, 1, 2)
results = {seed: cdl.solve(problem, solver, seed=seed, progress=False) for seed in seeds}
fig = plt.figure(figsize=(14, 10), layout="constrained")
for sub, seed in zip(fig.subfigures(len(seeds), 1), seeds, strict=True):
    print(f"seed {seed}: {results[seed].summary()}")
    plotting.layers(problem, results[seed], fig=sub, grid=False)
    sub.suptitle(f"initial guess seed {seed}: train accuracy {results[seed].accuracy:.3f}", fontsize=11)
save(fig, out / "initialisations.png")
