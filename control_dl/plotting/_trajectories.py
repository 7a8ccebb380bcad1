"""Layer-by-layer trajectories of the data points through the flow."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_positive_int, spec_error
from ..diagnostics._common import weights_of
from ._common import class_colors, new_axes, set_state_labels


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
        The axes; start points are circles, end points triangles, colours the classes (named in the
        legend). The title says which coordinates are
        drawn when d > 3.

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
    ax.scatter(*[c[0] for c in coords], c=colors, marker="o", s=8)
    ax.scatter(*[c[-1] for c in coords], c=colors, marker="^", s=14)
    set_state_labels(ax, three_d)
    n_shown = 3 if three_d else 2
    coords_shown = ", ".join(f"$x_{k + 1}$" for k in range(n_shown))
    shown = "" if problem.dim == n_shown else f"\nshown: {coords_shown} of the {problem.dim} state coordinates"
    ax.set_title(
        f"{problem.data.name}: trajectories through {problem.n_steps} layers (d = {problem.dim}){shown}", fontsize=10
    )
    from matplotlib.lines import Line2D

    handles = [  # marker shape for start and end, colour for the class
        Line2D([], [], ls="", marker="o", color="0.3", ms=4, label="x(0)"),
        Line2D([], [], ls="", marker="^", color="0.3", ms=5, label="x(T)"),
    ]
    if problem.data.task != "regression":
        names = getattr(problem.data, "class_names", None)
        for k in np.unique(problem.data.y_train):
            name = names[int(k)] if names is not None and int(k) < len(names) else str(int(k))
            handles.append(Line2D([], [], ls="", marker="o", color=class_colors([k])[0], label=f"class {name}"))
    many = len(handles) > 4
    ax.legend(handles=handles, fontsize=7 if many else 8, ncol=2 if many else 1, loc="upper left" if many else "best")
    return ax
