"""Helpers shared by the figure functions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_positive_int, is_integer, spec_error

#: (elevation, azimuth) of 3-D views: low enough that a lift along x_3 is visible
VIEW = (14.0, -60.0)


def new_axes(ax: Any = None, projection: str | None = None) -> Any:
    """Return ``ax`` or a fresh Axes on a new figure.

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Axes to draw on.
    projection : str, optional
        ``"3d"`` for a 3-D axes.

    Returns
    -------
    matplotlib Axes
        The axes to draw on.

    Raises
    ------
    SpecError
        ``ax`` is not a matplotlib Axes, or is a 2-D one where ``projection="3d"`` is needed.
    """
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is not None:
        if not isinstance(ax, Axes):
            raise spec_error("ax", type(ax).__name__, "must be a matplotlib Axes (or None for a new figure)")
        if projection == "3d" and ax.name != "3d":  # 3 coordinates on 2-D axes: matplotlib's own TypeError
            raise spec_error(
                "ax", ax.name, "this figure draws d >= 3 states in 3-D: pass axes made with projection='3d'"
            )
        return ax

    fig = plt.figure(figsize=(5.5, 4.5))
    return fig.add_subplot(111, projection=projection)


def class_colors(labels: np.ndarray) -> list[str]:
    """One colour per sample, by class label: matplotlib's ten-colour cycle (distinct up to 10 classes).

    Parameters
    ----------
    labels : ndarray
        Integer labels.

    Returns
    -------
    list of str
        Hex colours.
    """
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    return [palette[int(k) % len(palette)] for k in np.asarray(labels).ravel()]


def sample_index(n_samples: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly spread sample indices out of ``n_samples``.

    Parameters
    ----------
    n_samples : int
        Number S of samples.
    max_points : int
        Upper bound on the number returned.

    Returns
    -------
    ndarray
        Sorted integer indices.
    """
    check_positive_int("max_points", max_points)
    return np.unique(np.linspace(0, n_samples - 1, min(max_points, n_samples)).astype(int))


def point_colors(problem: Any, idx: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """Colours of the training samples ``idx``: by class label, or by target value for regression.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (its training labels or targets).
    idx : ndarray
        Sample indices.

    Returns
    -------
    tuple
        ``(c, kwargs)`` to pass to ``scatter(..., c=c, **kwargs)``.
    """
    if problem.data.task == "regression":
        return problem.data.y_train[0, idx], {"cmap": "viridis"}
    return class_colors(problem.data.y_train[idx]), {}


def class_legend(ax: Any, problem: Any, **kwargs: Any) -> None:
    """A legend with one marker per class (nothing for regression).

    Parameters
    ----------
    ax : matplotlib Axes
        Where the legend goes.
    problem : TrainingProblem
        The problem (its labels).
    **kwargs
        Passed to ``ax.legend``.
    """
    if problem.data.task == "regression":
        return
    from matplotlib.lines import Line2D

    labels = np.unique(problem.data.y_train)
    handles = [Line2D([], [], ls="", marker="o", color=class_colors([k])[0], label=f"class {int(k)}") for k in labels]
    ax.legend(handles=handles, **{"fontsize": 8, "loc": "best", **kwargs})


def input_box(problem: Any, pad: float = 0.15) -> np.ndarray:
    """Bounding box of the training inputs, enlarged by ``pad`` times its size.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    pad : float
        Relative margin.

    Returns
    -------
    ndarray
        ``n_in × 2`` array of (low, high) per input coordinate.
    """
    x = problem.data.x_train
    low, high = x.min(axis=1), x.max(axis=1)
    margin = pad * np.maximum(high - low, 1e-12)
    return np.stack([low - margin, high + margin], axis=1)


def grid_lines(problem: Any, n_lines: int = 11, resolution: int = 80) -> np.ndarray:
    """A square grid of the 2-D input plane as polylines.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with 2-D inputs (the grid covers its data box).
    n_lines : int
        Lines per direction.
    resolution : int
        Points per line.

    Returns
    -------
    ndarray
        ``(2 n_lines, 2, resolution)``: first the lines of constant x_1, then those of constant x_2.

    Raises
    ------
    SpecError
        The problem's inputs are not 2-D, or ``n_lines`` / ``resolution`` < 2.
    """
    if problem.data.n_in != 2:
        raise spec_error(
            "problem", problem.data.name, f"a grid of the input plane needs n_in=2 inputs, not {problem.data.n_in}"
        )
    check_positive_int("n_lines", n_lines, minimum=2)
    check_positive_int("resolution", resolution, minimum=2)
    box = input_box(problem, pad=0.05)
    side = box[:, 1] - box[:, 0]
    centre = box.mean(axis=1)
    half = 0.5 * side.max()
    ticks = np.linspace(-half, half, n_lines)
    run = np.linspace(-half, half, resolution)
    lines = []
    for axis in (0, 1):
        for c in ticks:
            pts = np.empty((2, resolution))
            pts[axis] = centre[axis] + c
            pts[1 - axis] = centre[1 - axis] + run
            lines.append(pts)
    return np.array(lines)


def flow_lines(problem: Any, w: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Push input-plane polylines through the flow: x_k of every point of every line.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    w : ndarray
        Decision vector.
    lines : ndarray
        ``(L, n_in, m)`` polylines in the input space.

    Returns
    -------
    ndarray
        ``(N + 1, L, d, m)`` states of the line points at every layer.

    Raises
    ------
    SpecError
        ``lines`` is not an ``(L, n_in, m)`` array.
    """
    lines = np.asarray(lines, dtype=float)
    if lines.ndim != 3 or lines.shape[1] != problem.data.n_in:
        raise spec_error("lines", lines.shape, f"must be polylines of shape (L, n_in={problem.data.n_in}, m)")
    n_lines, n_in, m = lines.shape
    flat = np.transpose(lines, (1, 0, 2)).reshape(n_in, n_lines * m)
    states = problem.forward(w, flat)
    return np.transpose(states.reshape(states.shape[0], problem.dim, n_lines, m), (0, 2, 1, 3))


def resolve_layer(problem: Any, layer: int) -> int:
    """Turn a layer index (negative counts from the end, as in Python) into 0..N.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (N = ``n_steps``).
    layer : int
        Layer k.

    Returns
    -------
    int
        The index in 0..N.
    """
    n = problem.n_steps
    if not is_integer(layer) or not -(n + 1) <= layer <= n:
        raise spec_error("layer", layer, f"must be an integer in [-{n + 1}, {n}] (N = {n} layers; -1 is the last)")
    return int(layer) % (n + 1)


def set_state_labels(ax: Any, three_d: bool) -> None:
    """Label the axes x_1, x_2 (and x_3).

    A 3-D box is drawn at 0.85 of its default size, so that the x_3 label and the tick labels stay
    inside the axes' own area and do not run into a neighbouring panel's labels.

    Parameters
    ----------
    ax : matplotlib Axes
        The axes.
    three_d : bool
        Whether it is a 3-D axes.
    """
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if three_d:
        from matplotlib.ticker import MaxNLocator

        ax.set_zlabel("$x_3$")
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=7, pad=0)
        ax.zaxis.labelpad = 2
        ax.set_box_aspect(None, zoom=0.85)
