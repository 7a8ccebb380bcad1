r"""The step Lipschitz bound: one definition for the invertibility constraint and its certificate.

A step x_{k+1} = x_k + Ψ_k(x_k) is a homeomorphism (an invertible ResNet block, Behrmann et al.,
"Invertible Residual Networks", ICML 2019, Thm. 1) when its increment is a contraction:
Lip Ψ_k < 1; the inverse is then the limit of the fixed-point iteration x ← x_{k+1} − Ψ_k(x).

Field bounds. With L_σ = Lip(σ) (1 for tanh, softplus, relu, identity; 1/4 for sigmoid):

    Inside      f = σ(A x + b):    Lip_x f ≤ L_σ ‖A‖
    Outside     f = W σ(x) + b:    Lip_x f ≤ L_σ ‖W‖
    Bottleneck  f = W σ(A x + b):  Lip_x f ≤ L_σ ‖W‖ ‖A‖

in one of two norms (``lipschitz_norm``): ``"spectral"`` ‖M‖₂ (exact, the largest singular value)
or ``"frobenius"`` ‖M‖_F ≥ ‖M‖₂ (smooth in M: the form an interior-point NLP can take; up to √d
times larger). A user field supplies ``lipschitz_sq_bound(params, ops) -> (Lip_x f)²`` itself.

Step bounds. Let L_k = max over the integrator nodes of step k of Lip_x f(·, θ(t_k + c h)).

    Euler  Ψ = h f(x, θ_k):                    Lip Ψ ≤ h L_k
    RK4    Ψ = h/6 (k1 + 2 k2 + 2 k3 + k4):    Lip Ψ ≤ q(h L_k),  q(s) = s (1 + s/2 + s²/6 + s³/24)

(for RK4, Lip k1 ≤ L, Lip k2 ≤ L(1 + hL/2), Lip k3 ≤ L(1 + hL/2 + (hL)²/4), Lip k4 ≤
L(1 + hL + (hL)²/2 + (hL)³/4), and their weighted sum gives q). The certificate is
max_k Lip Ψ_k < 1. The constraint ``lipschitz = c`` asks max_k Lip Ψ_k ≤ c; since q is increasing
it is the per-node condition h·Lip_x f(·, θ(t_k + c_j h)) ≤ r with r = :func:`node_limit` (c for
Euler, q⁻¹(c) for RK4). A solver enforces it row by row as (h·Lip)² ≤ r² (:func:`node_bounds_sq`,
smooth in the Frobenius form), so a feasible point always has certificate ≤ c < 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import check_choice, check_positive_float, spec_error
from ..backends import numpy_ops
from .fields import Bottleneck, Inside, Outside

#: the one-step schemes whose increment bound is known here
INTEGRATORS = ("euler", "rk4")

NORMS = ("frobenius", "spectral")


def matrix_names(field: Any) -> tuple[str, ...] | None:
    """Names of the parameter matrices whose norms bound Lip_x f, for the built-in fields.

    Parameters
    ----------
    field : VectorField
        The field.

    Returns
    -------
    tuple of str or None
        ``("A",)`` (Inside), ``("W",)`` (Outside), ``("W", "A")`` (Bottleneck); None for a user
        field (its ``lipschitz_sq_bound`` is used).
    """
    if isinstance(field, Bottleneck):
        return ("W", "A")
    if isinstance(field, Inside):
        return ("A",)
    if isinstance(field, Outside):
        return ("W",)
    return None


def spectral_norm(matrix: np.ndarray) -> float:
    """‖M‖₂, the largest singular value (LAPACK SVD; exact to rounding).

    Parameters
    ----------
    matrix : ndarray
        Any 2-D array (m × n matrix).

    Returns
    -------
    float
        The spectral norm.
    """
    return float(np.linalg.norm(np.asarray(matrix, dtype=float), 2))


def field_lipschitz_sq(field: Any, params: dict[str, Any], ops: Any, norm: str = "frobenius") -> Any:
    """(Lip_x f(·, θ))², the square of the field bound in the module docstring.

    Parameters
    ----------
    field : VectorField
        The field (built-in, or one with ``lipschitz_sq_bound``).
    params : dict
        θ unpacked by the field's shapes (arrays of ``ops``).
    ops : namespace
        Backend. The Frobenius form is a polynomial in θ (any backend, smooth); the spectral form
        needs numpy arrays.
    norm : {"frobenius", "spectral"}
        Matrix norm of the bound (a user field's own bound serves both).

    Returns
    -------
    scalar
        The squared bound (a backend scalar).

    Raises
    ------
    SpecError
        The field has no bound, or the spectral form is asked of a symbolic backend.
    """
    check_choice("norm", norm, ("frobenius", "spectral"))
    names = matrix_names(field)
    if names is None:
        bound = getattr(field, "lipschitz_sq_bound", None)
        if bound is None:
            raise spec_error(
                "field",
                type(field).__name__,
                "the lipschitz constraint needs a method lipschitz_sq_bound(params, ops) on the field "
                "(docs/guide/constraints.md)",
            )
        return bound(params, ops)
    total = field.lipschitz**2
    for name in names:
        if norm == "spectral":
            if ops is not numpy_ops:
                raise spec_error(
                    "lipschitz_norm",
                    norm,
                    "‖A‖₂ is not a smooth constraint: IPOPT, fatrop and MSA take 'frobenius'; "
                    "the spectral form is enforced by nlp='lbfgsb' (preset 'certified')",
                )
            total = total * spectral_norm(params[name]) ** 2
        else:
            total = total * ops.sum(params[name] * params[name])
    return total


def increment_bound(integrator: str, hl: Any) -> Any:
    """Lip Ψ of one step's increment from s = h·L (L the largest node bound of the step).

    Parameters
    ----------
    integrator : {"euler", "rk4"}
        The scheme.
    hl : float or ndarray
        s = h·L ≥ 0, a number or an array of any shape (elementwise).

    Returns
    -------
    float or ndarray
        s (Euler) or q(s) = s (1 + s/2 + s²/6 + s³/24) (RK4).

    Raises
    ------
    SpecError
        ``integrator`` is not "euler" or "rk4".
    """
    check_choice("integrator", integrator, INTEGRATORS)
    if integrator == "euler":
        return hl
    return hl * (1.0 + hl / 2.0 + hl**2 / 6.0 + hl**3 / 24.0)


def node_limit(integrator: str, c: float) -> float:
    """r: the largest h·Lip_x f at a node for which the step increment's bound is ≤ c.

    Parameters
    ----------
    integrator : {"euler", "rk4"}
        The scheme.
    c : float
        The constraint level, 0 < c < 1.

    Returns
    -------
    float
        c for Euler; the positive root of q(s) = c for RK4 (q of :func:`increment_bound`).

    Raises
    ------
    SpecError
        ``integrator`` is not "euler" or "rk4", or ``c`` is not a finite number > 0.
    """
    check_choice("integrator", integrator, INTEGRATORS)
    check_positive_float("c", c)
    if integrator == "euler":
        return float(c)
    roots = np.roots([1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, -float(c)])
    real = roots[np.abs(roots.imag) < 1e-12].real
    return float(real[real > 0].min())


def _node_params(problem: Any, theta: Any, ops: Any) -> dict[str, Any]:
    return problem.layout.unpack(theta, problem.layout.theta_shapes, ops)


def distinct_nodes(problem: Any) -> list[tuple[int, int]]:
    """(step k, node j) of every integrator node with its own θ, in step order.

    Nodes whose basis weights repeat an earlier node (RK4's three nodes of a piecewise-constant
    step, every node of a time-invariant control) are left out, so the constraint rows are distinct
    (duplicate rows make the constraint Jacobian rank-deficient).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.

    Returns
    -------
    list of tuple
        Indices into ``problem.stage_weights``.
    """
    seen: set[bytes] = set()
    nodes = []
    for k, step in enumerate(problem.stage_weights):
        for j, weights in enumerate(step):
            key = np.asarray(weights, dtype=float).tobytes()
            if key not in seen:
                seen.add(key)
                nodes.append((k, j))
    return nodes


def node_bounds_sq(problem: Any, w: Any, ops: Any, norm: str | None = None) -> list[Any]:
    """(h·Lip_x f(·, θ))² at every distinct integrator node: the rows of the constraint ≤ r².

    Parameters
    ----------
    problem : TrainingProblem
        The problem (a flow; its ``constraints.lipschitz_norm`` is the default norm).
    w : array
        Decision vector (any backend).
    ops : namespace
        Backend of ``w``.
    norm : {"frobenius", "spectral"}, optional
        Override the problem's norm.

    Returns
    -------
    list
        One backend scalar per node of :func:`distinct_nodes`; bound them by ``node_limit(...)²``.
    """
    norm = problem.constraints.lipschitz_norm if norm is None else norm
    h2 = problem.step_size**2
    weights = problem.stage_weights
    return [
        h2
        * field_lipschitz_sq(
            problem.field, _node_params(problem, problem.theta_vector(w, weights[k, j], ops), ops), ops, norm
        )
        for k, j in distinct_nodes(problem)
    ]


def constraint_limit(problem: Any) -> float:
    """r for the problem's constraint ``lipschitz = c`` and integrator (:func:`node_limit`).

    Parameters
    ----------
    problem : TrainingProblem
        A problem with ``constraints.lipschitz`` set.

    Returns
    -------
    float
        The bound of h·Lip_x f at every node.
    """
    return node_limit(problem.integrator, problem.constraints.lipschitz)


def step_constants(problem: Any, w: np.ndarray, norm: str = "spectral") -> np.ndarray:
    """Lip Ψ_k of every step's increment (the certificate's constants; module docstring).

    Parameters
    ----------
    problem : TrainingProblem
        The problem (a flow).
    w : ndarray
        Decision vector.
    norm : {"spectral", "frobenius"}
        Matrix norm of the field bound (spectral is the tightest).

    Returns
    -------
    ndarray
        Shape ``(N,)``.

    Raises
    ------
    SpecError
        ``w`` does not fit ``problem``, the model is a feed-forward stack (no residual steps), or
        ``norm`` is unknown.
    """
    w = problem.check_w(w)
    if problem.dynamics.vector_field is None:
        raise spec_error("problem", problem.data.name, "step constants need a flow x' = f(x, θ), not a layer stack")
    check_choice("norm", norm, ("frobenius", "spectral"))
    h = problem.step_size
    constants = np.empty(problem.n_steps)
    for k in range(problem.n_steps):
        lip_sq = max(
            float(field_lipschitz_sq(problem.field, _node_params(problem, np.ravel(th), numpy_ops), numpy_ops, norm))
            for th in problem.stage_thetas(w, k, numpy_ops)
        )
        constants[k] = increment_bound(problem.integrator, h * np.sqrt(lip_sq))
    return constants
