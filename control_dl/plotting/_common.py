"""Helpers shared by the figure functions."""

from __future__ import annotations

from typing import Any

import numpy as np


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
    """
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5.5, 4.5))
    return fig.add_subplot(111, projection=projection)


def class_colors(labels: np.ndarray) -> list[str]:
    """One colour per sample from a colour-blind-safe pair/cycle, by class label.

    Parameters
    ----------
    labels : ndarray
        Integer labels.

    Returns
    -------
    list of str
        Hex colours.
    """
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    return [palette[int(k) % len(palette)] for k in np.asarray(labels).ravel()]
