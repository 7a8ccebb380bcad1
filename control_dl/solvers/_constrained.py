r"""``Direct(nlp="lbfgsb")`` with the invertibility constraint: an augmented Lagrangian around L-BFGS-B.

The constraint ``lipschitz = c`` asks, at every distinct integrator node i of the control,
h·Lip(σ)·‖M_i‖ ≤ r (:mod:`control_dl.problems.lipschitz`: r = c for Euler, q⁻¹(c) for RK4), where
M_i = Σ_j a_ij M(C_j) is the field's matrix (A for Inside, W for Outside) at the node, linear in the
θ coefficients C_j with the control's basis weights a_ij. So M_i must lie in the norm ball
B = {M : ‖M‖ ≤ ρ}, ρ = r / (h·Lip σ), in the Frobenius or the spectral norm (``lipschitz_norm``),
both with an exact projection P_B: scaling M by min(1, ρ/‖M‖_F), or clipping its singular values
at ρ (M = U Σ Vᵀ ↦ U min(Σ, ρ) Vᵀ).

Method (Powell-Hestenes-Rockafellar augmented Lagrangian for a set constraint, as in Birgin &
Martínez, *Practical Augmented Lagrangian Methods for Constrained Optimization*, SIAM 2014, ch. 4):

    L_μ(w, Λ) = J(w) + (μ/2) Σ_i dist²(M_i(w) + Λ_i/μ, B) − Σ_i ‖Λ_i‖²/(2μ),

which is C¹ with ∇_{M_i} = μ (Z_i − P_B(Z_i)), Z_i = M_i + Λ_i/μ, whatever the norm. Each outer
iteration minimises L_μ(·, Λ) with scipy's L-BFGS-B (the box |θ| ≤ M of ``theta_max`` as its bounds),
warm-started, then updates Λ_i ← μ (Z_i − P_B(Z_i)) and multiplies μ by 10 when the violation
v = max_i dist(M_i, B)/ρ fell by less than 4×. Only J and ∇J are needed, so any engine serves. When
the constraint is inactive the first outer iteration is plain L-BFGS-B (Λ = 0, no penalty).

Exact feasibility at the end: every node's matrix is scaled by α_i = min(1, ρ/‖M_i‖) (per
coefficient when each node is one coefficient — piecewise-constant and time-invariant controls —
else all coefficients by min_i α_i). Scaling towards 0 keeps |θ| ≤ M, and the returned w satisfies
the constraint to rounding, so its certificate (:func:`control_dl.diagnostics.invertibility`) is ≤ c < 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import Bounds, minimize
from threadpoolctl import threadpool_limits

from .._errors import spec_error
from ..problems import lipschitz
from ..problems.training import TrainingProblem
from ..result import Result
from ._lbfgsb import Evaluator, training_data_recorder
from ._transcriptions import theta_bounds
from .base import make_result

if TYPE_CHECKING:
    from .direct import Direct

#: initial penalty μ, its growth factor, and the violation decrease that keeps μ
PENALTY_START, PENALTY_GROWTH, REQUIRED_DECREASE = 10.0, 10.0, 0.25
#: relative violation max_i dist(M_i, B)/ρ below which the outer loop stops (then exact restoration)
FEASIBILITY_TOL = 1e-6
#: most outer iterations
MAX_OUTER = 30


class NodeBalls:
    """The matrices M_i at the distinct nodes, as linear maps of w, and the ball B they must lie in.

    Parameters
    ----------
    problem : TrainingProblem
        A flow with an Inside or Outside field and ``constraints.lipschitz`` set.

    Raises
    ------
    SpecError
        For a field other than Inside / Outside (use IPOPT: ``load_solver("ipopt-exact")``).
    """

    def __init__(self, problem: TrainingProblem) -> None:
        names = lipschitz.matrix_names(problem.field)
        if names is None or len(names) != 1:
            field = type(problem.field).__name__
            if names is None and getattr(problem.field, "lipschitz_sq_bound", None) is None:
                raise spec_error(
                    "field",
                    field,
                    "the lipschitz constraint needs a bound on the field's Lipschitz constant: give the field a "
                    "method lipschitz_sq_bound(params, ops) (docs/guide/constraints.md), then use nlp='ipopt' "
                    "(preset 'ipopt-exact')",
                )
            raise spec_error(
                "nlp",
                "lbfgsb",
                f"the Lipschitz constraint of field {field} is not a norm ball: use nlp='ipopt' (preset 'ipopt-exact')",
            )
        lay = problem.layout
        offset = 0
        for name, shape in lay.theta_shapes.items():
            size = int(np.prod(shape))
            if name == names[0]:
                self.block = slice(offset, offset + size)
                self.shape = (shape[1], shape[0])  # C-order view of the column-major block: Mᵀ (same norms)
            offset += size
        nodes = lipschitz.distinct_nodes(problem)
        self.weights = np.array([problem.stage_weights[k, j] for k, j in nodes])  # (n_nodes, n_coeffs)
        self.one_hot = bool(np.all(np.isin(self.weights, (0.0, 1.0))) and np.all(self.weights.sum(axis=1) == 1.0))
        self.norm = problem.constraints.lipschitz_norm
        self.radius = lipschitz.constraint_limit(problem) / (problem.step_size * problem.field.lipschitz)
        self.n_coeffs, self.p, self.n_theta = lay.n_coeffs, lay.p, lay.n_theta

    def coefficients(self, w: np.ndarray) -> np.ndarray:
        """The matrix parts of the coefficients C_j, shape ``(n_coeffs, rows·cols)``."""
        return w[: self.n_theta].reshape(self.n_coeffs, self.p)[:, self.block]

    def matrices(self, w: np.ndarray) -> np.ndarray:
        """M_i at every node, shape ``(n_nodes, rows·cols)``."""
        return self.weights @ self.coefficients(w)

    def norms(self, flat: np.ndarray) -> np.ndarray:
        """‖M_i‖ in the constraint's norm, one per row of ``flat``."""
        if self.norm == "frobenius":
            return np.linalg.norm(flat, axis=1)
        return np.linalg.norm(flat.reshape(-1, *self.shape), 2, axis=(1, 2))

    def project(self, flat: np.ndarray) -> np.ndarray:
        """P_B of every row: the nearest matrix of norm ≤ ρ (Frobenius scaling or singular-value clip)."""
        if self.norm == "frobenius":
            norms = np.linalg.norm(flat, axis=1, keepdims=True)
            return flat * np.minimum(1.0, self.radius / np.maximum(norms, 1e-300))
        u, s, vt = np.linalg.svd(flat.reshape(-1, *self.shape))
        return (u * np.minimum(s, self.radius)[:, None, :] @ vt).reshape(flat.shape)

    def violation(self, w: np.ndarray) -> float:
        """max_i max(0, ‖M_i‖ − ρ)/ρ (the distance to B relative to ρ in both norms' sense)."""
        return float(np.max(self.norms(self.matrices(w)) - self.radius, initial=0.0) / self.radius)

    def restore(self, w: np.ndarray) -> np.ndarray:
        """w with every node matrix scaled into B (see the module docstring); a copy."""
        scale = np.minimum(1.0, self.radius * (1.0 - 1e-12) / np.maximum(self.norms(self.matrices(w)), 1e-300))
        if self.one_hot:
            per_coeff = np.ones(self.n_coeffs)
            for i, j in enumerate(np.argmax(self.weights, axis=1)):
                per_coeff[j] = min(per_coeff[j], scale[i])
        else:
            per_coeff = np.full(self.n_coeffs, scale.min())
        out = w.copy()
        coeffs = out[: self.n_theta].reshape(self.n_coeffs, self.p)
        coeffs[:, self.block] *= per_coeff[:, None]
        return out

    def penalty(self, w: np.ndarray, multipliers: np.ndarray, mu: float) -> tuple[float, np.ndarray, np.ndarray]:
        """(μ/2) Σ dist²(Z_i, B) − Σ‖Λ_i‖²/(2μ), its gradient in w, and the new multipliers μ(Z − P_B Z)."""
        z = self.matrices(w) + multipliers / mu
        residual = z - self.project(z)
        value = 0.5 * mu * float(np.sum(residual * residual)) - float(np.sum(multipliers * multipliers)) / (2 * mu)
        grad = np.zeros_like(w)
        coeff_grad = grad[: self.n_theta].reshape(self.n_coeffs, self.p)
        coeff_grad[:, self.block] = mu * (self.weights.T @ residual)
        return value, grad, mu * residual


def run_constrained(solver: Direct, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
    """Minimise J subject to the invertibility constraint (and ``theta_max``): see the module docstring.

    Parameters
    ----------
    solver : Direct
        Options: ``max_iter`` (L-BFGS-B iterations over all outer iterations), ``tol`` (inner
        ``gtol``/``ftol``), ``lbfgsb_options``, ``engine`` (any: only J and ∇J are evaluated),
        ``jit``, ``target_loss``, ``subsample``.
    problem : TrainingProblem
        A flow with an Inside or Outside field and ``constraints.lipschitz`` set.
    w0 : ndarray
        Initial decision vector.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Result
        ``converged`` when the last inner solve converged with the violation ≤ 1e-6 (before the
        exact restoration) or the target loss was reached, ``max_iter`` when the iteration budget
        ran out, ``failed`` on an evaluation error; w always satisfies the constraint. History
        entries carry ``violation`` (max_i dist(M_i, B)/ρ) and ``penalty`` (μ).
    """
    balls = NodeBalls(problem)
    recorder = solver.recorder(problem, progress)
    evaluate = Evaluator(solver.bind_engine(problem, *solver.batch(problem)))
    record = training_data_recorder(solver, problem, recorder, evaluate)
    lbx, ubx = theta_bounds(problem)
    w = np.clip(w0, lbx, ubx)
    multipliers = np.zeros_like(balls.matrices(w))
    mu, used, status, message = PENALTY_START, 0, "max_iter", "iteration limit reached"
    evaluated: dict[bytes, tuple[float, float, dict[str, float]]] = {}
    reached, current = False, w

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        j, loss, grad, extra = evaluate(v)
        value, pgrad, _ = balls.penalty(v, multipliers, mu)
        if len(evaluated) > 32:
            evaluated.clear()
        evaluated[v.tobytes()] = (j, loss, extra)
        return j + value, grad + pgrad

    def log(v: np.ndarray) -> None:
        nonlocal reached, current
        current = v
        if v.tobytes() not in evaluated:
            fun(v)
        j, loss, extra = evaluated[v.tobytes()]
        if record(v, j, loss, violation=balls.violation(v), penalty=mu, **extra):
            reached = True
            raise StopIteration

    def callback(intermediate_result: Any) -> None:
        log(np.asarray(intermediate_result.x, dtype=float))

    violation = balls.violation(w)
    try:
        log(w)
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(MAX_OUTER):
                options = solver.lbfgsb_options.scipy_options(solver.max_iter - used, solver.tol)
                res = minimize(
                    fun, w, jac=True, method="L-BFGS-B", bounds=Bounds(lbx, ubx), callback=callback, options=options
                )
                w, used = np.asarray(res.x, dtype=float), used + int(res.nit)
                _, _, multipliers = balls.penalty(w, multipliers, mu)
                previous, violation = violation, balls.violation(w)
                if violation <= FEASIBILITY_TOL and res.status == 0:
                    status, message = "converged", f"L-BFGS-B: {res.message}"
                    break
                if used >= solver.max_iter or res.status not in (0, 1):
                    status = "max_iter" if used >= solver.max_iter else "failed"
                    message = f"L-BFGS-B: {res.message}"
                    break
                if violation > REQUIRED_DECREASE * previous:
                    mu *= PENALTY_GROWTH
    except StopIteration:
        w, violation = current, balls.violation(current)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        w, violation, used = current, balls.violation(current), len(recorder.history) - 1
        status, message = "failed", f"L-BFGS-B error: {exc}; returned the last logged iterate"
    if reached:
        status, message = "converged", f"target loss {solver.target_loss:g} reached"
    restored = balls.restore(w)
    message += (
        f"; augmented Lagrangian μ={mu:g}, violation {violation:.1e} before the exact restoration ({evaluate.note})"
    )
    return make_result(problem, solver, restored, status, message, recorder, used, evaluate.engine.info)
