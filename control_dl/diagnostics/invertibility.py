r"""Invertibility of the ResNet steps (Behrmann et al.) and what it does to decision regions.

A step x_{k+1} = x_k + h f(x_k, θ_k) is invertible when h·Lip_x f(·, θ_k) < 1: then
x_k = x_{k+1} − h f(x_k, θ_k) is a contraction fixed point. With Lip_x f ≤ Lip(σ)‖A‖₂ (Inside),
Lip(σ)‖W‖₂ (Outside) or Lip(σ)‖W‖₂‖A‖₂ (Bottleneck), the certificate is

    c = max_k h · Lip_x f(·, θ_k) < 1.

For RK4 the increment Ψ obeys Lip Ψ ≤ L(1 + hL/2 + (hL)²/6 + (hL)³/24), used in place of L. An
invertible flow is a homeomorphism: in the plane (d = n_in = 2) the region a linear readout assigns
to one class is then the image of a half-plane, unbounded, so it cannot be an enclosed disk
(Andreu's ring example); an augmented flow (d = 3) can enclose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..backends import numpy_ops
from ..problems.costs import predict_labels
from ..problems.fields import Bottleneck, Inside, Outside
from ..problems.training import TrainingProblem
from ._common import weights_of


@dataclass(frozen=True)
class InvertibilityReport:
    """The certificate of :func:`invertibility`.

    Attributes
    ----------
    step_constants : ndarray
        h·Lip_x of each step's map increment, shape ``(N,)``.
    certificate : float
        max of ``step_constants``.
    invertible : bool
        ``certificate < 1``.
    """

    step_constants: np.ndarray
    certificate: float
    invertible: bool


def field_lipschitz(problem: TrainingProblem, theta: np.ndarray) -> float:
    """Lip_x f(·, θ) from spectral norms (exact norms, not the Frobenius bound).

    Parameters
    ----------
    problem : TrainingProblem
        Supplies the field and the parameter layout.
    theta : ndarray
        One flat θ.

    Returns
    -------
    float
        The Lipschitz bound.
    """
    field = problem.field
    params = problem.layout.unpack(theta, problem.layout.theta_shapes, numpy_ops)
    if isinstance(field, Inside):
        norm = np.linalg.norm(params["A"], 2)
    elif isinstance(field, Outside):
        norm = np.linalg.norm(params["W"], 2)
    elif isinstance(field, Bottleneck):
        norm = np.linalg.norm(params["W"], 2) * np.linalg.norm(params["A"], 2)
    elif hasattr(field, "lipschitz_sq_bound"):
        return float(np.sqrt(field.lipschitz_sq_bound(params, numpy_ops)))
    else:
        raise ValueError(f"field {type(field).__name__} has no Lipschitz bound (add lipschitz_sq_bound())")
    return float(field.lipschitz * norm)


def invertibility(problem: TrainingProblem, result: Any) -> InvertibilityReport:
    """Certificate max_k h·‖A_k‖₂·Lip(σ) that every step is invertible.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result or array_like
        The solve (or its w).

    Returns
    -------
    InvertibilityReport
        Per-step constants and their maximum.
    """
    w = weights_of(problem, result)
    h = problem.step_size
    constants = []
    for k in range(problem.n_steps):
        lip = max(field_lipschitz(problem, np.ravel(th)) for th in problem.stage_thetas(w, k, numpy_ops))
        hl = h * lip
        constants.append(hl if problem.integrator == "euler" else hl * (1 + hl / 2 + hl**2 / 6 + hl**3 / 24))
    constants = np.array(constants)
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
        The solve (or its w).
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
    """
    w = weights_of(problem, result)
    x_next = np.asarray(x_final, dtype=float)
    if x_next.ndim != 2 or x_next.shape[0] != problem.dim:
        raise ValueError(f"x_final has shape {x_next.shape}; expected d × S with d={problem.dim}")
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
        The solve (or its w).
    resolution : int
        Grid points per axis.
    extent : float, optional
        Half-width of the square grid; default 1.5 × the largest |input coordinate|.

    Returns
    -------
    RegionTopology
        The labelled grid and whether the origin's region (4-connected) reaches the edge.
    """
    if problem.data.n_in != 2 or problem.data.task == "regression":
        raise ValueError("decision_region_topology needs a classification problem with n_in=2")
    w = weights_of(problem, result)
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
