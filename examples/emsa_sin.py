"""E-MSA and MSA on the toy of Li, Chen, Tai & E (2018): fit y = sin x with 20 residual steps.

Pontryagin training: forward states, backward costates, then all 20 layers' (augmented)
Hamiltonians maximised at once. Plain MSA (ρ = 0) without step control oscillates; the step control
(backtracking + adaptive ρ) makes plain MSA and E-MSA (ρ₀ = 1) descend monotonically. The ``emsa``
preset solves the readout exactly after every Hamiltonian step (variable projection); the same
method with the paper-style inexact readout (a few L-BFGS-B iterations) creeps in the late stage.
Writes ``convergence.png``: the objective J against wall time and against iteration (log scale).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("emsa_sin", __doc__)

# --- model: 100 points on [-pi, pi], d = 5, N = 20 steps of x + 0.25 tanh(W x + b), l2 = 1e-3 ----
problem = cdl.load_problem("sin", **(dict(n_samples=20, n_steps=4) if small else {}))

# --- solvers ----------------------------------------------------------------------------------
iters = 5 if small else 300
solvers = [
    cdl.load_solver("emsa", max_iter=iters, jit=not small),
    cdl.load_solver("emsa", readout="lbfgsb", inner_iters=5, max_iter=iters, jit=not small),
    cdl.load_solver("msa", max_iter=iters, jit=not small),
    cdl.MSA(rho=0.0, inner="newton", inner_iters=5, adapt_rho=False, max_iter=min(iters, 60), jit=not small),
]

# --- run --------------------------------------------------------------------------------------
results = [cdl.solve(problem, solver, seed=0, progress=False) for solver in solvers]
for result in results:
    print(result.summary())
fig, (by_time, by_iter) = plt.subplots(1, 2, figsize=(11, 4))
plotting.convergence(results, ax=by_time, x="time")
plotting.convergence(results, ax=by_iter, x="iter")
fig.suptitle("Pontryagin training on sin (Li et al. 2018 toy)")
save(fig, out / "convergence.png")
