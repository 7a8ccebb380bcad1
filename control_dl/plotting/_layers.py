"""Layer-by-layer snapshots of the data points x_i(t_k) (one panel per chosen layer k)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import as_list, check_bool, spec_error
from ..diagnostics._common import weights_of
from ._common import (
    VIEW,
    class_legend,
    flow_lines,
    grid_lines,
    point_colors,
    resolve_layer,
    sample_index,
    set_state_labels,
)


def default_layers(problem: Any, n_panels: int = 4) -> list[int]:
    """``n_panels`` layer indices spread evenly over 0..N (first and last included).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    n_panels : int
        How many layers.

    Returns
    -------
    list of int
        Distinct layer indices.
    """
    return sorted(set(np.linspace(0, problem.n_steps, n_panels).round().astype(int).tolist()))


def layers(
    problem: Any,
    result: Any,
    layers: Sequence[int] | None = None,
    fig: Any = None,
    max_points: int = 300,
    grid: bool = True,
    n_lines: int = 9,
) -> np.ndarray:
    """Where the flow has moved the training points after layer k, one panel per k.

    Panel k shows x_i(t_k) = the state after k steps (k = 0 is the lifted input λ1(x_i)), coloured
    by class (or by target for regression); 3-D panels when d ≥ 3 (first three coordinates). With
    ``grid=True`` and 2-D inputs, the image of a square grid of the input plane is drawn too.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with state dimension d ≥ 2.
    result : Result
        A solve of it.
    layers : sequence of int, optional
        Layer indices in 0..N (negative ones count from the end); default four spread over 0..N.
    fig : matplotlib Figure, optional
        Figure to draw on (a new one by default).
    max_points : int
        Draw at most this many samples.
    grid : bool
        Overlay the deformed grid of the input plane (2-D inputs only).
    n_lines : int
        Grid lines per direction.

    Returns
    -------
    ndarray of matplotlib Axes
        One axes per layer, in the order given.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        d < 2, ``layers`` not a non-empty list of layer indices in [-(N+1), N], ``grid`` not a bool,
        or ``fig`` not a matplotlib Figure.
    """
    if problem.dim < 2:
        raise spec_error("problem", problem.data.name, f"layers needs a state dimension d >= 2, not d={problem.dim}")
    w = weights_of(problem, result)
    check_bool("grid", grid)
    if layers is not None:
        layers = as_list("layers", layers, "a list of layer indices, e.g. [0, 5, -1]")
    if fig is not None:
        from matplotlib.figure import FigureBase

        if not isinstance(fig, FigureBase):
            raise spec_error("fig", type(fig).__name__, "must be a matplotlib Figure (or None for a new one)")
    ks = [resolve_layer(problem, k) for k in (default_layers(problem) if layers is None else layers)]
    if not ks:
        raise spec_error("layers", layers, "must name at least one layer")
    three_d = problem.dim >= 3
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=((4.0 if three_d else 3.6) * len(ks), 3.8 if three_d else 3.6), layout="constrained")
    states = problem.forward(w)
    idx = sample_index(states.shape[2], max_points)
    colors, color_kw = point_colors(problem, idx)
    n_axes = 3 if three_d else 2
    draw_grid = grid and problem.data.n_in == 2
    lines = flow_lines(problem, w, grid_lines(problem, n_lines)) if draw_grid else None
    chosen = states[np.ix_(ks, range(n_axes), idx)]
    low, high = chosen.min(axis=(0, 2)), chosen.max(axis=(0, 2))
    margin = 0.08 * np.maximum(high - low, 1e-9)
    axes = []
    for j, k in enumerate(ks):
        ax = fig.add_subplot(1, len(ks), j + 1, projection="3d" if three_d else None)
        if lines is not None:
            for line in lines[k]:
                ax.plot(*line[:n_axes], color="0.55", lw=0.5, alpha=0.7)
        points = ax.scatter(*states[k, :n_axes][:, idx], c=colors, s=9, **color_kw)
        for a, name in enumerate("xyz"[:n_axes]):
            getattr(ax, f"set_{name}lim")(low[a] - margin[a], high[a] + margin[a])
        set_state_labels(ax, three_d)
        ax.set_title(f"layer {k} (t = {problem.times[k]:.2f})", fontsize=10)
        if three_d:
            ax.view_init(elev=VIEW[0], azim=VIEW[1])
        elif np.max(high - low) < 4 * np.min(high - low):  # equal scales unless the cloud is a thin curve
            ax.set_aspect("equal", adjustable="box")
        axes.append(ax)
    if problem.data.task == "regression":
        fig.colorbar(points, ax=axes, label="target y", shrink=0.8)
    else:
        class_legend(axes[0], problem)
    fig.suptitle(f"{problem.data.name}, d = {problem.dim}: the points through the layers", fontsize=11)
    return np.array(axes, dtype=object)
