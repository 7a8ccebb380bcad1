"""Solver convergence: objective against iteration or wall time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._common import new_axes


def convergence(results: Sequence[Any], ax: Any = None, x: str = "iter", y: str = "objective") -> Any:
    """One line per Result: ``y`` (objective, loss, …) against iteration or wall time, log scale.

    Parameters
    ----------
    results : sequence of Result
        Solves to compare (their ``history``).
    ax : matplotlib Axes, optional
        Where to draw.
    x : {"iter", "time"}
        Horizontal axis.
    y : str
        History field to plot.

    Returns
    -------
    matplotlib Axes
        The axes with a legend.
    """
    if x not in ("iter", "time"):
        raise ValueError(f"x={x!r} must be 'iter' or 'time'")
    ax = new_axes(ax)
    for res in results:
        points = [(h[x], h[y]) for h in res.history if y in h and h[y] > 0]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=f"{res.solver} ({res.status})")
    ax.set_yscale("log")
    ax.set_xlabel("iteration" if x == "iter" else "wall time [s]")
    ax.set_ylabel(y)
    ax.set_title(f"{y} during training")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
