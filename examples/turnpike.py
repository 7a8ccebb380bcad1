"""Turnpike for a growing horizon T (Esteve, Geshkovski, Pighin, Zuazua), after Andreu.

With the running training error κ∫(1/S)Σℓ(λ2(x_i(t)), y_i) dt in the cost and a fixed step h, deeper
networks (larger T) reach a small error early and then stay near it: ‖θ(t)‖ and the error decay in t,
and the curves for different T overlap on the first part of [0, T]. (The third turnpike curve,
``quantity="state"``, is the mean ‖x_i(t) − x̄_i‖ with x̄_i = x_i(T), as this cost has no tracking
target; all three curves are those of ``cdl.diagnostics.turnpike``.)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from _shared import direct_solver, save, setup

import control_dl as cdl
from control_dl import plotting

small, out = setup("turnpike", __doc__)

# --- model: same data and step h = 0.2, horizons T; running error weight κ ------------------
horizons = (1.0, 2.0) if small else (1.0, 2.0, 4.0, 8.0)
n_samples = 30 if small else 100
problems = [
    cdl.load_problem("ring", dim=3, n_samples=n_samples, horizon=T, n_steps=int(5 * T), turnpike=1.0, l2=1e-3)
    for T in horizons
]

# --- solver -----------------------------------------------------------------------------------
solver = direct_solver(max_iter=10 if small else 200)

# --- run --------------------------------------------------------------------------------------
pairs = [(p, cdl.solve(p, solver, seed=0, progress=False)) for p in problems]
for p, r in pairs:
    print(f"T = {p.horizon:g}: {r.summary()}")
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, quantity in zip(axes, ("theta", "error"), strict=True):
    plotting.turnpike(pairs, quantity, ax=ax)
save(fig, out / "turnpike.png")
save(plotting.theta_heatmap(*pairs[-1]).figure, out / "theta_longest.png")
