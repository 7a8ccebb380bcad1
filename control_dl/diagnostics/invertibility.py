r"""Invertibility of the ResNet steps (Behrmann et al.) and what it does to decision regions.

A step x_{k+1} = x_k + Ψ_k(x_k) is invertible when its increment is a contraction, Lip Ψ_k < 1:
then x_k = x_{k+1} − Ψ_k(x_k) is a contraction fixed point (Behrmann et al. 2019). The certificate

    c = max_k Lip Ψ_k < 1,   Lip Ψ_k ≤ h L_k (Euler),  q(h L_k) = hL_k(1 + hL_k/2 + (hL_k)²/6 + (hL_k)³/24) (RK4),

with L_k the field bound at the step's nodes, is computed by :mod:`control_dl.problems.lipschitz`,
the same definition the solvers constrain (``lipschitz = c``), in the exact spectral norm. An
invertible flow is a homeomorphism: in the plane (d = n_in = 2) the region a linear readout assigns
to one class is then the image of a half-plane, unbounded, so it cannot be an enclosed disk
(Andreu's ring example); an augmented flow (d = 3) can enclose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .._errors import check_positive_float, check_positive_int, spec_error
from ..backends import numpy_ops
from ..problems import lipschitz
from ..problems.costs import predict_labels
from ..problems.datasets import as_features
from ..problems.training import TrainingProblem
from ._common import require_flow, weights_of


def missing_lipschitz_bound(problem: TrainingProblem, what: str) -> str | None:
    """Why ``what`` cannot bound Lip_x f of ``problem``'s field, or None when it can.

    A built-in field is bounded by the norms of its matrices; a user field needs a method
    ``lipschitz_sq_bound(params, ops)`` (docs/guide/constraints.md).

    Parameters
    ----------
    problem : TrainingProblem
        A flow.
    what : str
        What needs the bound, for the message (e.g. "the invertibility certificate").

    Returns
    -------
    str or None
        The reason, to follow the field's name in a message; None when the field has a bound.
    """
    field = problem.field
    if lipschitz.matrix_names(field) is not None or getattr(field, "lipschitz_sq_bound", None) is not None:
        return None
    return f"has no Lipschitz bound: {what} needs a method lipschitz_sq_bound(params, ops) on the field (docs/guide/constraints.md)"


@dataclass(frozen=True)
class InvertibilityReport:
    """The certificate of :func:`invertibility`.

    Attributes
    ----------
    step_constants : ndarray
        Lip Ψ_k of each step's increment, shape ``(N,)``.
    certificate : float
        max of ``step_constants``.
    invertible : bool
        ``certificate < 1``.
    """

    step_constants: np.ndarray
    certificate: float
    invertible: bool


def invertibility(problem: TrainingProblem, result: Any, norm: str = "spectral") -> InvertibilityReport:
    """Certificate max_k Lip Ψ_k that every step is invertible (e.g. Euler: h·Lip(σ)·‖A_k‖₂).

    A step x_{k+1} = x_k + Ψ_k(x_k) with Lip Ψ_k < 1 is a homeomorphism (Behrmann et al.,
    "Invertible Residual Networks", ICML 2019, Thm. 1); the bounds of Lip Ψ_k per field and
    integrator are those of :mod:`control_dl.problems.lipschitz`.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (a flow: a feed-forward model has no residual steps).
    result : Result or array_like
        The solve (or its w, shape ``(n_params,)``).
    norm : {"spectral", "frobenius"}
        Matrix norm of the field bound: the exact ‖·‖₂ (default), or ‖·‖_F as a
        ``lipschitz_norm="frobenius"`` constraint bounds it (never smaller).

    Returns
    -------
    InvertibilityReport
        Per-step constants and their maximum.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the model is not a flow, its field has no Lipschitz bound (a user field without
        ``lipschitz_sq_bound``), or ``norm`` is not 'spectral' or 'frobenius'.
    """
    w = weights_of(problem, result)
    require_flow(problem, "invertibility")
    missing = missing_lipschitz_bound(problem, "the invertibility certificate")
    if missing is not None:
        raise spec_error("field", type(problem.field).__name__, missing)
    constants = lipschitz.step_constants(problem, w, norm)  # checks norm
    certificate = float(constants.max())
    return InvertibilityReport(constants, certificate, certificate < 1.0)


@dataclass(frozen=True)
class Inversion:
    """Output of :func:`invert`.

    Attributes
    ----------
    states : ndarray
        Reconstructed x_0 (lifted, ``d × S``).
    inputs : ndarray
        Reconstructed inputs λ1⁻¹(x_0), ``n_in × S``.
    residual : float
        max_k max |Φ_h(x_k) − x_{k+1}| of the reconstruction (its forward consistency).
    iterations : int
        Largest number of fixed-point iterations any step needed.
    converged : bool
        Whether every step reached ``tol``.
    """

    states: np.ndarray
    inputs: np.ndarray
    residual: float
    iterations: int
    converged: bool


def invert(
    problem: TrainingProblem, result: Any, x_final: np.ndarray, tol: float = 1e-13, max_iter: int = 1000
) -> Inversion:
    """Run the network backwards from x_N by fixed-point iteration.

    Each step solves x_k = x_{k+1} − (Φ_h(x_k) − x_k) (for Euler: x_k = x_{k+1} − h f(x_k, θ_k)),
    a contraction when the step's certificate is < 1. The inputs follow from the lift: the first
    n_in rows (padding) or the least-squares solution of L x = x_0 − l (affine lift).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result or array_like
        The solve (or its w, shape ``(n_params,)``).
    x_final : ndarray
        States x_N, ``d × S``.
    tol : float
        Stop a step when the update is below tol (max norm).
    max_iter : int
        Iteration limit per step.

    Returns
    -------
    Inversion
        The reconstruction and its error.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the model is not a flow, ``x_final`` is not ``d × S``, or ``tol`` / ``max_iter`` not positive.
    """
    w = weights_of(problem, result)
    require_flow(problem, "invert")
    check_positive_float("tol", tol)
    check_positive_int("max_iter", max_iter)
    x_next = as_features(x_final, problem.dim, field="x_final", rows="d")
    residual, most, converged = 0.0, 0, True
    for k in range(problem.n_steps - 1, -1, -1):
        thetas = problem.stage_thetas(w, k, numpy_ops)
        x, iterations, change = x_next.copy(), 0, np.inf
        while iterations < max_iter:
            update = x_next - (problem.step(x, thetas, numpy_ops) - x)
            change = float(np.max(np.abs(update - x)))
            x, iterations = update, iterations + 1
            if change <= tol or not np.isfinite(change):
                break
        converged &= change <= tol
        most = max(most, iterations)
        residual = max(residual, float(np.max(np.abs(problem.step(x, thetas, numpy_ops) - x_next))))
        x_next = x
    lift = problem.unflatten(w)["lift"]
    if lift:
        inputs = np.linalg.lstsq(lift["L"], x_next - lift["l"].reshape(-1, 1), rcond=None)[0]
    else:
        inputs = x_next[: problem.data.n_in]
    return Inversion(x_next, inputs, residual, most, bool(converged))


@dataclass(frozen=True)
class RegionTopology:
    """Output of :func:`decision_region_topology`.

    Attributes
    ----------
    labels : ndarray
        Predicted class on the grid, shape ``(n, n)`` (rows: second input).
    extent : tuple of float
        (x_min, x_max, y_min, y_max) of the grid.
    inner_class : int
        The class predicted at the origin.
    reaches_edge : bool
        Whether the connected region of ``inner_class`` containing the origin touches the grid's edge.
    region_fraction : float
        Fraction of the grid inside that region.
    """

    labels: np.ndarray
    extent: tuple[float, float, float, float]
    inner_class: int
    reaches_edge: bool
    region_fraction: float


def decision_region_topology(
    problem: TrainingProblem, result: Any, resolution: int = 301, extent: float | None = None
) -> RegionTopology:
    """Flood-fill the decision region around the origin and ask whether it is enclosed.

    Parameters
    ----------
    problem : TrainingProblem
        A classification problem with two inputs.
    result : Result or array_like
        The solve (or its w, shape ``(n_params,)``).
    resolution : int
        Grid points per axis.
    extent : float, optional
        Half-width of the square grid; default 1.5 × the largest |input coordinate|.

    Returns
    -------
    RegionTopology
        The labelled grid and whether the origin's region (4-connected) reaches the edge.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the problem is not a classification with 2-D inputs, ``resolution`` < 3, or ``extent`` <= 0.
    """
    w = weights_of(problem, result)
    if problem.data.n_in != 2 or problem.data.task == "regression":
        why = "decision_region_topology needs a classification problem with n_in=2 inputs"
        raise spec_error(
            "problem", problem.data.name, f"{why}, not a {problem.data.task} one with n_in={problem.data.n_in}"
        )
    check_positive_int("resolution", resolution, minimum=3)
    if extent is not None:
        check_positive_float("extent", extent)
    half = 1.5 * float(np.abs(problem.data.x_train).max()) if extent is None else float(extent)
    axis = np.linspace(-half, half, resolution)
    gx, gy = np.meshgrid(axis, axis)
    labels = predict_labels(
        problem.data.task, problem.cost.loss, problem.predict(w, np.stack([gx.ravel(), gy.ravel()]))
    )
    labels = labels.reshape(gx.shape)
    centre = int(np.argmin(np.abs(axis)))
    inner = int(labels[centre, centre])
    components, _ = ndimage.label(labels == inner)
    region = components == components[centre, centre]
    edge = region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any()
    return RegionTopology(labels, (-half, half, -half, half), inner, bool(edge), float(region.mean()))
