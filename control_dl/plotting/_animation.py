"""A GIF of the data points and the input grid moving through the layers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import (
    as_list,
    check_bool,
    check_positive_float,
    spec_error,
)
from .._files import check_destination
from ..diagnostics._common import weights_of
from ..result import temporary_sibling
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


def animate_flow(
    problem: Any,
    result: Any,
    path: str | Path,
    frames: Sequence[int] | None = None,
    fps: float = 4.0,
    max_points: int = 300,
    grid: bool = True,
    n_lines: int = 9,
) -> Path:
    """Write a GIF whose frame j shows x_i(t_k) for the j-th chosen layer k (and the deformed grid).

    The file is written atomically: to a temporary file in the same folder, then renamed.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with d ≥ 2 (3-D view when d ≥ 3).
    result : Result
        A solve.
    path : str or Path
        Destination ``.gif``.
    frames : sequence of int, optional
        Layers to show, in order (default 0, 1, …, N).
    fps : float
        Frames per second.
    max_points : int
        Draw at most this many samples.
    grid : bool
        Draw the image of a square grid of the input plane (2-D inputs only).
    n_lines : int
        Grid lines per direction.

    Returns
    -------
    Path
        The GIF written.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        ``frames`` not a non-empty list of layer indices in [-(N+1), N], ``fps`` not > 0, ``grid`` not a
        bool, or ``path`` not a writable ``.gif`` file.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    if problem.dim < 2:
        raise spec_error(
            "problem", problem.data.name, f"animate_flow needs a state dimension d >= 2, not d={problem.dim}"
        )
    check_positive_float("fps", fps)
    check_bool("grid", grid)
    if frames is not None:
        frames = as_list("frames", frames, "a list of layer indices, e.g. [0, 5, -1]")
    ks = list(range(problem.n_steps + 1)) if frames is None else [resolve_layer(problem, k) for k in frames]
    if not ks:
        raise spec_error("frames", frames, "must name at least one layer")
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise spec_error("path", str(path), "must end in .gif")
    check_destination(path)  # a directory or a path under a file: now, not after rendering every frame
    three_d = problem.dim >= 3
    n_axes = 3 if three_d else 2
    w = weights_of(problem, result)
    states = problem.forward(w)
    idx = sample_index(states.shape[2], max_points)
    colors, color_kw = point_colors(problem, idx)
    lines = flow_lines(problem, w, grid_lines(problem, n_lines)) if grid and problem.data.n_in == 2 else None
    shown = states[np.ix_(ks, range(n_axes), idx)]
    low, high = shown.min(axis=(0, 2)), shown.max(axis=(0, 2))
    margin = 0.08 * np.maximum(high - low, 1e-9)

    fig = plt.figure(figsize=(5, 4.6), layout="constrained")
    ax = fig.add_subplot(111, projection="3d" if three_d else None)

    def draw(j: int) -> list[Any]:
        k = ks[j]
        ax.clear()
        if lines is not None:
            for line in lines[k]:
                ax.plot(*line[:n_axes], color="0.6", lw=0.5)
        ax.scatter(*states[k, :n_axes][:, idx], c=colors, s=9, **color_kw)
        for a, name in enumerate("xyz"[:n_axes]):
            getattr(ax, f"set_{name}lim")(low[a] - margin[a], high[a] + margin[a])
        set_state_labels(ax, three_d)
        if three_d:
            ax.view_init(elev=VIEW[0], azim=VIEW[1])
        class_legend(ax, problem, loc="upper right")
        ax.set_title(
            f"{problem.data.name}, d = {problem.dim}: layer {k} / {problem.n_steps} (t = {problem.times[k]:.2f})"
        )
        return []

    animation = FuncAnimation(fig, draw, frames=len(ks), blit=False)
    tmp = temporary_sibling(path, ".tmp.gif")
    try:
        animation.save(tmp, writer=PillowWriter(fps=fps))
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
