"""Morse contours: level sets of the scalar input-output map Φ over the 2-D input plane."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_bool, check_positive_int, spec_error
from ..diagnostics._common import weights_of
from ._common import class_colors, input_box, new_axes


def morse_contours(
    problem: Any,
    result: Any,
    ax: Any = None,
    critical_points: Any = None,
    resolution: int = 150,
    levels: int = 20,
    show_data: bool = True,
) -> Any:
    """Contours of Φ(x) = λ2(x(T)) over the input plane, with critical points ∇Φ = 0 marked.

    Kuehn and Kuntz show that a non-augmented network (d = n_in) has no critical points, while an
    augmented one (d > n_in) generically has only non-degenerate ones: Φ is a Morse function.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with 2-D inputs and a scalar readout (n_out = 1).
    result : Result
        A solve.
    ax : matplotlib Axes, optional
        Where to draw.
    critical_points : array_like, optional
        Points to mark, shape ``(2, m)`` or ``(m, 2)`` (e.g. from a critical-point search).
    resolution : int
        Grid points per axis.
    levels : int
        Number of contour levels.
    show_data : bool
        Draw the training points.

    Returns
    -------
    matplotlib Axes
        The axes, with a colour bar of Φ.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the problem has no scalar output or no 2-D inputs, ``resolution`` < 2, ``levels`` < 1,
        ``critical_points`` not (2, m) or (m, 2) points, or ``ax`` not an Axes.
    """
    if problem.data.n_in != 2 or problem.targets.shape[0] != 1:
        raise spec_error(
            "problem",
            problem.data.name,
            f"morse_contours needs 2-D inputs and a scalar readout; this problem has n_in={problem.data.n_in}, "
            f"n_out={problem.targets.shape[0]}",
        )
    w = weights_of(problem, result)
    check_positive_int("resolution", resolution, minimum=2)
    check_positive_int("levels", levels)
    check_bool("show_data", show_data)
    ax = new_axes(ax)
    box = input_box(problem)
    g0, g1 = (np.linspace(lo, hi, resolution) for lo, hi in box)
    xx, yy = np.meshgrid(g0, g1)
    phi = problem.predict(w, np.vstack([xx.ravel(), yy.ravel()]))[0].reshape(xx.shape)
    filled = ax.contourf(xx, yy, phi, levels=levels, cmap="coolwarm", alpha=0.85)
    ax.contour(xx, yy, phi, levels=filled.levels, colors="k", linewidths=0.4, alpha=0.5)
    ax.figure.colorbar(filled, ax=ax, label="Φ(x) = λ2(x(T))")
    if show_data:
        x = problem.data.x_train
        ax.scatter(x[0], x[1], c=class_colors(problem.data.y_train), s=6, alpha=0.6, edgecolors="none")
    if critical_points is not None:
        try:
            pts = np.atleast_2d(np.asarray(critical_points, dtype=float))
        except (TypeError, ValueError):
            raise spec_error(
                "critical_points", type(critical_points).__name__, "must be points, (2, m) or (m, 2)"
            ) from None
        pts = pts.T if pts.shape[0] != 2 and pts.shape[1] == 2 else pts
        if pts.shape[0] != 2:
            raise spec_error("critical_points", pts.shape, "must be points, (2, m) or (m, 2)")
        ax.plot(pts[0], pts[1], ls="", marker="X", ms=10, color="gold", mec="k", label=f"∇Φ = 0 ({pts.shape[1]})")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_aspect("equal")
    kind = "augmented" if problem.dim > problem.data.n_in else "non-augmented"
    ax.set_title(f"{problem.data.name}, d = {problem.dim} ({kind}): level sets of Φ", fontsize=10)
    return ax
