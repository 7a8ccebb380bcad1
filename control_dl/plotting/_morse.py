"""Morse contours: level sets of the scalar input-output map Φ over the 2-D input plane."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_bool, check_positive_int, spec_error
from ..diagnostics._common import weights_of
from ._common import class_colors, input_box, new_axes

#: critical-point type -> marker style
MARKERS = {
    "maximum": dict(marker="^", color="gold"),
    "minimum": dict(marker="v", color="limegreen"),
    "saddle": dict(marker="X", color="magenta"),
    "degenerate": dict(marker="o", color="white"),
}


def hessian_eigenvalues(problem: Any, w: np.ndarray, points: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Eigenvalues of the Hessian of Φ = λ2(x(T)) at each column of ``points``, by central differences.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with 2-D inputs and a scalar readout.
    w : ndarray
        Its decision vector.
    points : ndarray
        Shape ``(2, m)``.
    h : float
        Difference step.

    Returns
    -------
    ndarray
        Shape ``(m, 2)``, each row ascending.
    """
    e = np.eye(2) * h

    def phi(x: np.ndarray) -> np.ndarray:
        return problem.predict(w, x)[0]

    hess = np.empty((points.shape[1], 2, 2))
    for i in range(2):
        for j in range(2):
            a, b = e[:, i : i + 1], e[:, j : j + 1]
            hess[:, i, j] = (phi(points + a + b) - phi(points + a - b) - phi(points - a + b) + phi(points - a - b)) / (
                4 * h * h
            )
    return np.linalg.eigvalsh(0.5 * (hess + hess.transpose(0, 2, 1)))


def critical_point_types(eigenvalues: np.ndarray, rtol: float = 1e-6) -> list[str]:
    """Type of each critical point from the signs of its Hessian's eigenvalues.

    Parameters
    ----------
    eigenvalues : ndarray
        Shape ``(m, 2)`` (:func:`hessian_eigenvalues`).
    rtol : float
        An eigenvalue within ``rtol · max(1, max |λ|)`` of 0 counts as zero (a degenerate point).

    Returns
    -------
    list of str
        ``"maximum"`` (both negative), ``"minimum"`` (both positive), ``"saddle"`` (one of each) or
        ``"degenerate"`` (a zero eigenvalue: not a Morse point).
    """
    kinds = []
    for lam in np.atleast_2d(eigenvalues):
        tol = rtol * max(1.0, float(np.abs(lam).max()))
        if np.any(np.abs(lam) <= tol):
            kinds.append("degenerate")
        elif np.all(lam < 0):
            kinds.append("maximum")
        elif np.all(lam > 0):
            kinds.append("minimum")
        else:
            kinds.append("saddle")
    return kinds


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
        Points to mark, shape ``(2, m)`` or ``(m, 2)`` (e.g. from a critical-point search). Each is
        marked by its type, read from the signs of the eigenvalues of Φ's Hessian there (both < 0:
        maximum, both > 0: minimum, mixed: saddle, a zero: degenerate); the legend names the types
        and their counts.
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
        kinds = np.array(critical_point_types(hessian_eigenvalues(problem, w, pts)) if pts.shape[1] else [])
        for kind, style in MARKERS.items():
            if np.any(kinds == kind):
                chosen = pts[:, kinds == kind]
                label = f"∇Φ = 0: {kind} ({chosen.shape[1]})"
                ax.plot(chosen[0], chosen[1], ls="", ms=11, mec="k", label=label, **style)
        if pts.shape[1] == 0:
            ax.plot([], [], ls="", marker="none", label="no critical point (∇Φ ≠ 0)")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_aspect("equal")
    kind = "augmented" if problem.dim > problem.data.n_in else "non-augmented"
    ax.set_title(f"{problem.data.name}, d = {problem.dim} ({kind}): level sets of Φ", fontsize=10)
    return ax
