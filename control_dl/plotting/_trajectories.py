"""Layer-by-layer trajectories of the data points through the flow."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_positive_int, spec_error
from ..diagnostics._common import weights_of
from ._common import class_colors, new_axes


def trajectories(problem: Any, result: Any, ax: Any = None, max_points: int = 200) -> Any:
    """Paths t ↦ x_i(t) of the (lifted) training points, coloured by label; 3-D when d ≥ 3.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (states of dimension d ≥ 2).
    result : Result
        A solve.
    ax : matplotlib Axes, optional
        Where to draw (a 3-D axes for d ≥ 3).
    max_points : int
        Draw at most this many samples.

    Returns
    -------
    matplotlib Axes
        The axes; start points are circles, end points triangles.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        d < 2, ``max_points`` < 1, or ``ax`` not an Axes.
    """
    w = weights_of(problem, result)
    if problem.dim < 2:
        raise spec_error(
            "problem", problem.data.name, f"trajectories needs a state dimension d >= 2, not d={problem.dim}"
        )
    check_positive_int("max_points", max_points)
    states = problem.forward(w)
    three_d = problem.dim >= 3
    ax = new_axes(ax, "3d" if three_d else None)
    idx = np.linspace(0, states.shape[2] - 1, min(max_points, states.shape[2])).astype(int)
    labels = problem.data.y_train[idx] if problem.data.task != "regression" else np.zeros(idx.size, int)
    colors = class_colors(labels)
    coords = [states[:, k, idx] for k in range(3 if three_d else 2)]
    for j, color in enumerate(colors):
        ax.plot(*[c[:, j] for c in coords], color=color, lw=0.6, alpha=0.5)
    ax.scatter(*[c[0] for c in coords], c=colors, marker="o", s=8, label="x(0)")
    ax.scatter(*[c[-1] for c in coords], c=colors, marker="^", s=14, label="x(T)")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if three_d:
        ax.set_zlabel("$x_3$")
    ax.set_title(f"{problem.data.name}: trajectories through {problem.n_steps} layers (d = {problem.dim})")
    legend = ax.legend(loc="best", fontsize=8)
    for handle in legend.legend_handles:  # marker shape only: colours stand for classes
        handle.set_color("0.3")
    return ax
