"""Figures for one-dimensional inputs: the fitted map and the paths t ↦ x_i(t)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_positive_int, is_integer, spec_error
from ..diagnostics._common import weights_of
from ._common import class_legend, input_box, new_axes, point_colors, sample_index


def time_paths(problem: Any, result: Any, ax: Any = None, coord: int = 0, max_points: int = 60) -> Any:
    """Coordinate ``coord`` of every sample's state against t: x_{i,coord}(t_k), k = 0..N.

    In d = 1 the paths of an ODE flow cannot cross, which is why x ↦ x² is out of reach of a
    non-augmented neural ODE (Kuntz); in an augmented space they may pass each other.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result
        A solve.
    ax : matplotlib Axes, optional
        Where to draw.
    coord : int
        State coordinate in 0..d-1.
    max_points : int
        Draw at most this many samples.

    Returns
    -------
    matplotlib Axes
        The axes (colour bar of the target for regression, class legend otherwise).

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        ``coord`` is not a state coordinate in [0, d − 1], or ``ax`` not an Axes.
    """
    if not is_integer(coord) or not 0 <= coord < problem.dim:
        raise spec_error(
            "coord", coord, f"must be an integer in [0, {problem.dim - 1}] (a state coordinate, d = {problem.dim})"
        )
    w = weights_of(problem, result)
    ax = new_axes(ax)
    states = problem.forward(w)
    idx = sample_index(states.shape[2], max_points)
    colors, color_kw = point_colors(problem, idx)
    if problem.data.task == "regression":
        import matplotlib.pyplot as plt

        norm = plt.Normalize(float(np.min(colors)), float(np.max(colors)))
        cmap = plt.get_cmap(color_kw["cmap"])
        line_colors = [cmap(norm(v)) for v in colors]
        ax.figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="target y")
    else:
        line_colors = colors
    for j, i in enumerate(idx):
        ax.plot(problem.times, states[:, coord, i], color=line_colors[j], lw=0.9, alpha=0.8)
    class_legend(ax, problem)
    ax.set_xlabel("time t (depth)")
    ax.set_ylabel(f"$x_{{{coord + 1}}}(t)$")
    ax.set_title(f"{problem.data.name}, d = {problem.dim}: paths of coordinate {coord + 1}", fontsize=10)
    return ax


def regression_fit(problem: Any, result: Any, ax: Any = None, resolution: int = 200) -> Any:
    """Training/test data and the learnt map x ↦ Φ(x) = λ2(x(T)) for 1-D inputs.

    Parameters
    ----------
    problem : TrainingProblem
        A regression problem with 1-D inputs and targets.
    result : Result
        A solve.
    ax : matplotlib Axes, optional
        Where to draw.
    resolution : int
        Points on the curve.

    Returns
    -------
    matplotlib Axes
        The axes with a legend.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the data are not a regression with 1-D inputs and targets, ``resolution`` < 2, or ``ax`` not an Axes.
    """
    data = problem.data
    if data.n_in != 1 or data.task != "regression" or data.n_out != 1:
        why = "regression_fit needs a regression problem with 1-D inputs and targets"
        raise spec_error("problem", data.name, f"{why}, not a {data.task} one with n_in={data.n_in}")
    w = weights_of(problem, result)
    check_positive_int("resolution", resolution, minimum=2)
    ax = new_axes(ax)
    grid = np.linspace(*input_box(problem, pad=0.05)[0], resolution)[None, :]
    ax.scatter(data.x_train[0], data.y_train[0], s=10, color="0.5", label="training data")
    ax.scatter(data.x_test[0], data.y_test[0], s=10, marker="x", color="0.2", label="test data")
    kind = "augmented" if problem.dim > 1 else "non-augmented"
    ax.plot(grid[0], problem.predict(w, grid)[0], color="#d62728", lw=2, label=f"Φ(x), d = {problem.dim}")
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    ax.set_title(f"{data.name}, d = {problem.dim} ({kind}): loss {problem.objective_and_loss(w)[1]:.2e}", fontsize=10)
    ax.legend(fontsize=8)
    return ax
