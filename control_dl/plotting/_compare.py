"""Solver comparison: objective against wall time and against iteration, shaded over seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import spec_error

#: Points of the common wall-time grid the seeds are resampled on.
TIME_POINTS = 200


def compare_curves(table: Any, axes: Any = None) -> Any:
    """Two panels: J against wall time (from each run's first logged iterate, as the table's
    ``wall_time``: ``CompareTable.curves``) and against iteration (log scale), one line per solver.

    The line is the median over seeds; the band spans their minimum to maximum. A run that ended
    early keeps its last objective (it stopped there). Wall-time curves are resampled on a
    common grid as step functions (the value of the last iterate recorded by then).

    Parameters
    ----------
    table : CompareTable
        Output of :func:`control_dl.compare` (uses ``table.curves()`` and ``table.seeds``).
    axes : sequence of two matplotlib Axes, optional
        Where to draw (time panel, iteration panel); a new 1×2 figure by default.

    Returns
    -------
    ndarray of matplotlib Axes
        The two axes, shape ``(2,)``, with legends.

    Raises
    ------
    SpecError
        ``table`` is not a CompareTable of :func:`control_dl.compare`.
    """
    if not hasattr(table, "curves") or not hasattr(table, "seeds"):
        raise spec_error("table", type(table).__name__, "must be a CompareTable from control_dl.compare")
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_time, ax_iter = axes
    for label, runs in table.curves().items():
        curves = [(t, j) for _, t, j in runs if t.size]
        if not curves:
            continue
        t_max = max(t[-1] for t, _ in curves)
        t_min = min(t[0] for t, _ in curves)
        grid_t = np.geomspace(max(t_min, 1e-4), max(t_max, 2e-4), TIME_POINTS)
        line = _band(ax_time, grid_t, [_step_sample(t, j, grid_t) for t, j in curves], label)
        n_iter = max(len(j) for _, j in curves)
        grid_i = np.arange(n_iter)
        padded = [np.r_[j, np.full(n_iter - len(j), j[-1])] for _, j in curves]
        _band(ax_iter, grid_i, padded, label, color=line.get_color())
    ax_time.set_xscale("log")
    for ax, xlabel in ((ax_time, "wall time since the first iterate [s]"), (ax_iter, "iteration")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("objective J")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    n_seeds = len(table.seeds)
    ax_time.set_title("objective vs wall time" + (f" ({n_seeds} seeds: median, min–max)" if n_seeds > 1 else ""))
    ax_iter.set_title("objective vs iteration")
    return np.asarray(axes)


def _step_sample(t: np.ndarray, j: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """J of the last iterate recorded by each grid time (NaN before the first record)."""
    index = np.searchsorted(t, grid, side="right") - 1
    return np.where(index >= 0, j[np.clip(index, 0, None)], np.nan)


def _band(ax: Any, x: np.ndarray, ys: list[np.ndarray], label: str, color: Any = None) -> Any:
    """Median line and min–max band of several curves sampled on x (non-positive values masked)."""
    stack = np.array(ys, dtype=float)
    stack[~(stack > 0)] = np.nan
    valid = np.any(np.isfinite(stack), axis=0)
    x, stack = x[valid], stack[:, valid]
    (line,) = ax.plot(x, np.nanmedian(stack, axis=0), label=label, color=color)
    if stack.shape[0] > 1:
        ax.fill_between(x, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0), color=line.get_color(), alpha=0.2)
    return line
