"""θ(t) as a heat map: one row per parameter, time along the horizontal axis."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_positive_int
from ..diagnostics._common import weights_of
from ._common import new_axes


def theta_heatmap(problem: Any, result: Any, ax: Any = None, resolution: int | None = None) -> Any:
    """Heat map of the control θ(t) ∈ R^p over [0, T], rows grouped by parameter block (A, b, …).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result
        A solve.
    ax : matplotlib Axes, optional
        Where to draw.
    resolution : int, optional
        Time samples; by default one per integration step (θ at the step midpoints, exact for a
        piecewise-constant control).

    Returns
    -------
    matplotlib Axes
        The axes, with a symmetric diverging colour bar.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        ``resolution`` < 1, or ``ax`` not an Axes.
    """
    w = weights_of(problem, result)
    ax = new_axes(ax)
    if resolution is None:
        edges = problem.times
    else:
        check_positive_int("resolution", resolution)
        edges = np.linspace(0.0, problem.horizon, resolution + 1)
    theta = problem.theta(w, 0.5 * (edges[:-1] + edges[1:])).T
    vmax = float(np.max(np.abs(theta))) or 1.0
    mesh = ax.pcolormesh(edges, np.arange(theta.shape[0] + 1), theta, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.figure.colorbar(mesh, ax=ax, label="θ value")
    start, ticks, names = 0, [], []
    shapes = problem.layout.theta_shapes if problem.layout.uniform else {}  # layers of different sizes: no names
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        ticks.append(start + 0.5 * size)
        names.append(f"{name} {'×'.join(map(str, shape))}")
        start += size
        if start < theta.shape[0]:
            ax.axhline(start, color="k", lw=0.8)
    ax.set_yticks(ticks, names)
    ax.invert_yaxis()
    ax.set_xlabel("time t (depth)")
    ax.set_ylabel(f"parameter ({theta.shape[0]} entries)")
    ax.set_title(f"{problem.data.name}, d = {problem.dim}: θ(t)", fontsize=10)
    return ax
