"""Grid deformation: how the flow bends a square grid of the input plane."""

from __future__ import annotations

from typing import Any

from .._errors import check_positive_int
from ..diagnostics._common import weights_of
from ._common import (
    VIEW,
    flow_lines,
    grid_lines,
    new_axes,
    point_colors,
    resolve_layer,
    sample_index,
    set_state_labels,
)

#: colours of the two families of grid lines (constant x_1, constant x_2)
GRID_COLORS = ("0.25", "0.6")


def grid_deformation(
    problem: Any,
    result: Any,
    ax: Any = None,
    layer: int = -1,
    n_lines: int = 11,
    resolution: int = 80,
    max_points: int = 200,
) -> Any:
    """Image of a square grid of the input plane after ``layer`` steps of the flow.

    A grid line {x : x_1 = c} of the (2-D) input space is lifted by λ1 and pushed through k steps,
    x ↦ x_k; the picture shows the curves x_k(line) (first two or three state coordinates), with the
    training points x_i(t_k) on top. A homeomorphic flow bends the grid but never folds or tears it.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with 2-D inputs.
    result : Result
        A solve.
    ax : matplotlib Axes, optional
        Where to draw (a 3-D axes when d ≥ 3).
    layer : int
        Layer k in 0..N (negative counts from the end; default the output layer N).
    n_lines : int
        Lines per direction.
    resolution : int
        Points per line.
    max_points : int
        Training points drawn (0: none).

    Returns
    -------
    matplotlib Axes
        The axes, with a legend naming the two line families.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        ``layer`` outside [-(N+1), N], ``max_points`` < 0, or ``ax`` not an Axes.
    """
    w = weights_of(problem, result)
    k = resolve_layer(problem, layer)
    check_positive_int("max_points", max_points, minimum=0)
    three_d = problem.dim >= 3
    ax = new_axes(ax, "3d" if three_d else None)
    n_axes = 3 if three_d else 2
    lines = flow_lines(problem, w, grid_lines(problem, n_lines, resolution))[k]
    for j, line in enumerate(lines):
        family = j // n_lines
        label = ("$x_1$ = const", "$x_2$ = const")[family] if j % n_lines == 0 else None
        ax.plot(*line[:n_axes], color=GRID_COLORS[family], lw=0.8, label=label)
    if max_points > 0:
        states = problem.forward(w)
        idx = sample_index(states.shape[2], max_points)
        colors, color_kw = point_colors(problem, idx)
        ax.scatter(*states[k, :n_axes][:, idx], c=colors, s=8, zorder=3, **color_kw)
    set_state_labels(ax, three_d)
    if three_d:
        ax.view_init(elev=VIEW[0], azim=VIEW[1])
    else:
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(
        f"{problem.data.name}, d = {problem.dim}: input grid after layer {k} (t = {problem.times[k]:.2f})", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper right")
    return ax
