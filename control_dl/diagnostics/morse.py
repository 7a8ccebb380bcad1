r"""Critical points of the input-output map Φ = λ2 ∘ flow ∘ λ1 (Kuehn and Kuntz, via Morse theory).

For a scalar output, x* is a critical point when ∇Φ(x*) = 0; it is non-degenerate when the Hessian
∇²Φ(x*) is invertible, and its Morse index is the number of negative eigenvalues. Kuntz's results:
a non-augmented network (d = n_in, full-rank λ1, λ2, invertible flow) has no critical points; an
augmented one (d > n_in) generically has only non-degenerate ones; a rank-deficient λ1 makes Φ
constant along ker λ1, so every critical point is degenerate.

Φ, ∇Φ and ∇²Φ are exact: the model is traced with the CasADi ops on one symbolic input
(``problem.trajectory(w, x, casadi_ops)`` then ``problem.readout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from .._errors import check_positive_float, check_positive_int, spec_error
from ..backends import casadi_ops
from ..problems.datasets import as_features
from ..problems.training import TrainingProblem
from ._common import require_scalar_output, weights_of


@dataclass(frozen=True)
class CriticalPoint:
    """One x* with ∇Φ(x*) ≈ 0.

    Attributes
    ----------
    x : ndarray
        The point in input space, shape ``(n_in,)``.
    value : float
        Φ(x*).
    grad_norm : float
        ‖∇Φ(x*)‖.
    hessian_eigenvalues : ndarray
        Eigenvalues of ∇²Φ(x*), ascending.
    index : int
        Morse index: number of eigenvalues below −tol.
    degenerate : bool
        True when some |eigenvalue| ≤ tol (tol relative to the largest |eigenvalue|, at least absolute).
    """

    x: np.ndarray
    value: float
    grad_norm: float
    hessian_eigenvalues: np.ndarray
    index: int
    degenerate: bool


@dataclass(frozen=True)
class CriticalPointReport:
    """Critical points found in a box, and the smallest gradient on a dense grid of it.

    Attributes
    ----------
    points : tuple of CriticalPoint
        Distinct critical points found by the multi-start Newton search.
    grid_min_grad : float
        min ‖∇Φ‖ over the grid.
    grid_argmin : ndarray
        Where that minimum is attained.
    bounds : ndarray
        The box searched, shape ``(n_in, 2)``.
    """

    points: tuple[CriticalPoint, ...]
    grid_min_grad: float
    grid_argmin: np.ndarray
    bounds: np.ndarray


class InputOutputMap:
    """Φ(x) = λ2(x(T)) with x(0) = λ1(x) for a fixed w, with exact derivatives in x.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with scalar output.
    w : ndarray or Result
        Decision vector, shape ``(n_params,)`` (or a solve).

    Raises
    ------
    SpecError
        ``w`` does not fit ``problem``, or λ2 is not scalar (n_out > 1).
    """

    def __init__(self, problem: TrainingProblem, w: np.ndarray) -> None:
        w = weights_of(problem, w)
        require_scalar_output(problem, "the input-output map Φ")
        x = ca.SX.sym("x", problem.data.n_in)
        wd = ca.DM(w)
        *_, final = problem.trajectory(wd, x, casadi_ops)
        phi = problem.readout(final, problem.layout.readout(wd, casadi_ops), casadi_ops)
        hessian, grad = ca.hessian(phi, x)
        self.n_in = problem.data.n_in
        self.derivatives = ca.Function("phi", [x], [phi, grad, hessian], ["x"], ["phi", "grad", "hess"])
        self.gradient = ca.Function("grad", [x], [grad])

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(Φ(x), ∇Φ(x), ∇²Φ(x)) at one point.

        Parameters
        ----------
        x : ndarray
            Input point, shape ``(n_in,)``.

        Returns
        -------
        tuple
            Φ(x) (float), ∇Φ(x) ``(n_in,)`` and ∇²Φ(x) ``(n_in, n_in)``.

        Raises
        ------
        SpecError
            ``x`` is not one finite point of n_in numbers.
        """
        point = np.asarray(x, dtype=float).ravel() if np.size(x) == self.n_in else None
        if point is None or not np.all(np.isfinite(point)):
            raise spec_error("x", np.shape(x), f"must be one finite input point of n_in={self.n_in} numbers")
        phi, grad, hess = self.derivatives(point)
        return float(phi), np.asarray(grad, dtype=float).ravel(), np.asarray(hess, dtype=float)

    def grad_norms(self, points: np.ndarray) -> np.ndarray:
        """‖∇Φ‖ at the columns of ``points``.

        Parameters
        ----------
        points : ndarray
            Inputs, ``n_in × M``.

        Returns
        -------
        ndarray
            Shape ``(M,)``.

        Raises
        ------
        SpecError
            ``points`` is not an ``n_in × M`` matrix of finite numbers with M ≥ 1.
        """
        points = as_features(points, self.n_in, field="points")
        grads = np.asarray(self.gradient.map(points.shape[1])(points), dtype=float)
        return np.linalg.norm(grads, axis=0)


def _newton(phi: InputOutputMap, x: np.ndarray, bounds: np.ndarray, tol: float, max_iter: int) -> np.ndarray | None:
    """Damped Newton on ∇Φ = 0 (least-squares steps, so singular Hessians are allowed)."""
    _, grad, hess = phi(x)
    for _ in range(max_iter):
        norm = np.linalg.norm(grad)
        if norm <= tol:
            return x
        step = np.linalg.lstsq(hess, -grad, rcond=1e-12)[0]
        for _ in range(30):
            trial = np.clip(x + step, bounds[:, 0], bounds[:, 1])
            _, g_trial, h_trial = phi(trial)
            if np.linalg.norm(g_trial) < norm:
                x, grad, hess = trial, g_trial, h_trial
                break
            step = 0.5 * step
        else:
            return None
    return x if np.linalg.norm(grad) <= tol else None


def _classify_point(phi: InputOutputMap, x: np.ndarray, degenerate_tol: float) -> CriticalPoint:
    value, grad, hess = phi(x)
    eig = np.linalg.eigvalsh(0.5 * (hess + hess.T))
    tol = degenerate_tol * max(1.0, float(np.max(np.abs(eig))))
    return CriticalPoint(
        x=x,
        value=value,
        grad_norm=float(np.linalg.norm(grad)),
        hessian_eigenvalues=eig,
        index=int(np.sum(eig < -tol)),
        degenerate=bool(np.any(np.abs(eig) <= tol)),
    )


def _grid(bounds: np.ndarray, n_points: int, rng: np.random.Generator) -> np.ndarray:
    n_in = bounds.shape[0]
    if n_in <= 2:
        per_axis = int(round(n_points ** (1.0 / n_in)))
        axes = [np.linspace(lo, hi, per_axis) for lo, hi in bounds]
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    return bounds[:, :1] + (bounds[:, 1:] - bounds[:, :1]) * rng.random((n_in, n_points))


def _check_bounds(bounds: Any, n_in: int) -> np.ndarray:
    """The box as an ``(n_in, 2)`` float array of finite (low, high) rows with low < high, or a SpecError."""
    why = f"must be a box of shape (n_in, 2) = ({n_in}, 2): one finite (low, high) row per input, low < high"
    try:
        box = np.array(bounds, dtype=float)
    except (TypeError, ValueError):
        raise spec_error("bounds", bounds, why) from None
    if box.shape == (2,) and n_in == 1:
        box = box.reshape(1, 2)
    if box.shape != (n_in, 2):
        raise spec_error("bounds", box.shape, why)
    if not np.all(np.isfinite(box)) or not np.all(box[:, 0] < box[:, 1]):
        raise spec_error("bounds", box.tolist(), why)
    return box


def critical_points(
    problem: TrainingProblem,
    result: Any,
    bounds: Any = None,
    n_starts: int = 20,
    n_grid: int = 10_000,
    tol: float = 1e-9,
    degenerate_tol: float = 1e-6,
    max_iter: int = 50,
    seed: int = 0,
) -> CriticalPointReport:
    """Search the box for x with ∇Φ(x) = 0 and classify each by its Hessian.

    Multi-start damped Newton on ∇Φ = 0 (steps −∇²Φ⁺∇Φ, accepted when ‖∇Φ‖ decreases), started from
    the grid points of smallest ‖∇Φ‖ and random points; converged points (‖∇Φ‖ ≤ tol) are merged
    when closer than 1e-4 times the box size. A point is degenerate when some eigenvalue of ∇²Φ has
    |λ| ≤ tol_H = ``degenerate_tol`` · max(1, max |λ|); its Morse index is the number of eigenvalues
    below −tol_H (Milnor, *Morse Theory*, 1963). What to expect per architecture: Kuehn & Kuntz
    (arXiv:2405.09351, 2024), see :func:`classify`.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with scalar output (n_out = 1).
    result : Result or array_like
        The solve (or its w, shape ``(n_params,)``).
    bounds : array_like, optional
        Box ``(n_in, 2)``; default: the training inputs' bounding box, widened by 10 %.
    n_starts : int
        Number of Newton starts.
    n_grid : int
        Grid points (a full grid for n_in ≤ 2, uniform random points otherwise).
    tol : float
        ‖∇Φ‖ at which a point counts as critical.
    degenerate_tol : float
        Relative size of a Hessian eigenvalue treated as zero.
    max_iter : int
        Newton iterations per start.
    seed : int
        Seed of the random starts.

    Returns
    -------
    CriticalPointReport
        The distinct critical points and the grid minimum of ‖∇Φ‖.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        the output is not scalar, ``bounds`` is not a finite ``(n_in, 2)`` box with lower < upper,
        or a count / tolerance is not positive.
    """
    w = weights_of(problem, result)
    for name, value in (("n_starts", n_starts), ("n_grid", n_grid), ("max_iter", max_iter)):
        check_positive_int(name, value)
    check_positive_int("seed", seed, minimum=0)
    check_positive_float("tol", tol)
    check_positive_float("degenerate_tol", degenerate_tol)
    phi = InputOutputMap(problem, w)
    if bounds is None:
        x = problem.data.x_train
        lo, hi = x.min(axis=1), x.max(axis=1)
        pad = 0.1 * np.maximum(hi - lo, 1e-12)
        bounds = np.stack([lo - pad, hi + pad], axis=1)
    bounds = _check_bounds(bounds, problem.data.n_in)
    rng = np.random.default_rng(seed)
    grid = _grid(bounds, n_grid, rng)
    norms = phi.grad_norms(grid)
    best = int(np.argmin(norms))
    n_from_grid = max(1, n_starts // 2)
    starts = [grid[:, i] for i in np.argsort(norms)[:n_from_grid]]
    starts += [
        bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * rng.random(bounds.shape[0])
        for _ in range(n_starts - n_from_grid)
    ]
    found: list[np.ndarray] = []
    merge = 1e-4 * float(np.linalg.norm(bounds[:, 1] - bounds[:, 0]))
    for start in starts:
        x = _newton(phi, np.asarray(start, dtype=float), bounds, tol, max_iter)
        if x is not None and all(np.linalg.norm(x - y) > merge for y in found):
            found.append(x)
    points = tuple(_classify_point(phi, x, degenerate_tol) for x in found)
    return CriticalPointReport(points, float(norms[best]), grid[:, best].copy(), bounds)
