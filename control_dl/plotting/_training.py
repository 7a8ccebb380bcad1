"""Training seen over training time: the heat map ‖θ(t, τ)‖ with the loss beside it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_bool
from ._common import new_axes


def training_heatmap(problem: Any, result: Any, ax: Any = None, log: bool = False) -> Any:
    """‖θ(t, τ)‖ over layer time t (vertical) and training iteration τ (horizontal), loss above.

    The colour is the norm of θ at the midpoint of every step (layer) for every snapshot of a solve
    run with ``record_every=K`` (:func:`control_dl.diagnostics.training_dynamics`); a panel above,
    sharing the τ axis, shows the training loss of the snapshots (log scale), and a colour bar on
    the right gives the scale.

    Parameters
    ----------
    problem : TrainingProblem
        The problem that was solved.
    result : Result
        A result with snapshots.
    ax : matplotlib Axes, optional
        Where to draw the heat map (the loss panel and the colour bar are split off it).
    log : bool
        Logarithmic colour scale (keeps the structure visible when a few iterates spike).

    Returns
    -------
    matplotlib Axes
        The heat-map axes.

    Raises
    ------
    SpecError
        ``log`` is not a bool, ``ax`` not an Axes, or the inputs of
        :func:`~control_dl.diagnostics.training_dynamics` are bad (see there).
    """
    from matplotlib.colors import LogNorm
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    from ..diagnostics.training_dynamics import training_dynamics

    check_bool("log", log)
    dyn = training_dynamics(problem, result)
    ax = new_axes(ax)
    taus = dyn.iterations.astype(float)
    tau_edges = _edges(taus)
    norm = LogNorm() if log and np.all(dyn.theta_norm > 0) else None
    mesh = ax.pcolormesh(tau_edges, problem.times, dyn.theta_norm.T, shading="flat", cmap="viridis", norm=norm)
    ax.set_xlabel("training iteration τ")
    ax.set_ylabel("layer time t")
    divider = make_axes_locatable(ax)
    cax = divider.append_axes("right", size="4%", pad=0.08)
    bar = ax.figure.colorbar(mesh, cax=cax)
    bar.set_label("‖θ(t, τ)‖")
    loss_ax = divider.append_axes("top", size="35%", pad=0.08, sharex=ax)
    positive = dyn.loss > 0
    loss_ax.plot(taus[positive], dyn.loss[positive], color="black", marker=".", ms=3)
    if np.any(positive):
        from matplotlib.ticker import NullFormatter

        loss_ax.set_yscale("log")
        loss_ax.yaxis.set_minor_formatter(NullFormatter())
    loss_ax.set_ylabel("loss")
    loss_ax.tick_params(labelbottom=False)
    loss_ax.grid(True, alpha=0.3)
    loss_ax.set_title(f"{result.solver}: θ over layer time and training time")
    return ax


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (half-way between neighbours)."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])
