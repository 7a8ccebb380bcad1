"""Solver convergence: objective against iteration or wall time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import as_list, check_choice, spec_error
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
        The axes with a legend, titled by what is drawn (e.g. "objective against wall time").

    Raises
    ------
    SpecError
        ``results`` is not a non-empty list of Results with recorded histories, ``y`` is not a
        field of their histories, ``x`` not 'iter' or 'time', or ``ax`` not a matplotlib Axes.
    """
    check_choice("x", x, ("iter", "time"))
    results = as_list("results", results, "a list of Results (one result: [result])")
    if not results:
        raise spec_error("results", results, "must hold at least one Result")
    for res in results:
        if not hasattr(res, "history"):
            raise spec_error("results", type(res).__name__, "must hold Results of control_dl.solve")
    keys = sorted({key for res in results for h in res.history for key in h})
    if not keys:
        raise spec_error("results", [r.solver for r in results], "have no history to plot (no iteration recorded)")
    if not isinstance(y, str) or y not in keys:
        raise spec_error("y", y, f"must be a field of the histories: {keys}")
    ax = new_axes(ax)
    for res in results:
        points = [(h[x], h[y]) for h in res.history if y in h and h[y] > 0]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=f"{res.solver} ({res.status})")
    ax.set_yscale("log")
    ax.set_xlabel("iteration" if x == "iter" else "wall time [s]")
    ax.set_ylabel(y)
    ax.set_title(f"{y} against {'iteration' if x == 'iter' else 'wall time'}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
