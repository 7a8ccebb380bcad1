r"""The training OCP written as an NLP: single shooting, multiple shooting, direct collocation.

Every transcription has the decision vector z = [w; states], the terminal predictions
Ŷ = λ2(X_N) (``n_out × S``), the mean terminal loss (1/S) Σ_i ℓ(Ŷ_i, y_i), the rest of the objective
(regulariser R(w) and running terms h Σ_{k=1}^{N} (1/S) Σ_i r(X_k)), and the constraints g:

- ``single_shooting``: z = w; the states are eliminated by the problem's integrator;
- ``multiple_shooting``: z = [w; X_1; …; X_N] with continuity X_{k+1} − Φ_h(X_k, Θ_k) = 0;
- ``collocation``: per step k the states X_{k,j} at the collocation points τ_j (Legendre or Radau,
  degree K = 1..4) and X_{k+1}, with Σ_r C_{rj} X_{k,r} = h f(X_{k,j}, θ(t_k + τ_j h)) and
  X_{k+1} = Σ_r D_r X_{k,r} (Lagrange polynomial through τ_0 = 0, τ_1..τ_K). Collocation is its
  own integrator: the problem's ``integrator`` (euler/rk4) is not used.

Each uses per-sample CasADi Functions ``map``-ped over the S columns (never one expanded graph), and
the optional constraints |θ| ≤ M (bounds on the θ coefficients) and h²·Lip_x f(·, θ)² ≤ r² at every
node (r = c for Euler, q⁻¹(c) for RK4: :mod:`control_dl.problems.lipschitz`).
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from .._errors import spec_error
from ..backends import casadi_ops
from ..problems.costs import loss_per_sample
from ..problems.lipschitz import constraint_limit as lipschitz_limit

#: transcription name -> short label used in solver names
SHORT = {"single_shooting": "ss", "multiple_shooting": "ms", "collocation": "col"}


@dataclass
class Transcription:
    """An NLP built from a problem: min_z loss(z) + rest(z) s.t. lbg ≤ g(z) ≤ ubg, lbz ≤ z ≤ ubz.

    Attributes
    ----------
    z : casadi.MX
        Decision vector; its first ``n_w`` entries are w.
    z0 : ndarray
        Initial guess (states simulated from w0).
    lbz, ubz : ndarray
        Bounds of z.
    g : casadi.MX
        Constraints (lipschitz first, then continuity / collocation equations).
    lbg, ubg : ndarray
        Bounds of g.
    predictions : casadi.MX
        Ŷ = λ2(X_N), ``n_out × S``.
    loss, rest : casadi.MX
        Mean terminal loss and J − loss.
    targets : casadi.DM
        Encoded targets of the batch, ``n_out × S``.
    n_w : int
        Number of network parameters at the front of z.
    """

    z: ca.MX
    z0: np.ndarray
    lbz: np.ndarray
    ubz: np.ndarray
    g: ca.MX
    lbg: np.ndarray
    ubg: np.ndarray
    predictions: ca.MX
    loss: ca.MX
    rest: ca.MX
    targets: ca.DM
    n_w: int

    @property
    def objective(self) -> ca.MX:
        """J = loss + rest."""
        return self.loss + self.rest


def theta_bounds(problem) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of w: ±M on the θ coefficients when ``theta_max = M``, else ±∞.

    Parameters
    ----------
    problem : TrainingProblem
        The problem (its ``constraints.theta_max``).

    Returns
    -------
    tuple of ndarray
        ``(lbx, ubx)``, each of length ``n_params``.
    """
    lbx = np.full(problem.n_params, -np.inf)
    ubx = np.full(problem.n_params, np.inf)
    if problem.constraints.theta_max is not None:
        lbx[: problem.layout.n_theta] = -problem.constraints.theta_max
        ubx[: problem.layout.n_theta] = problem.constraints.theta_max
    return lbx, ubx


class _SampleFunctions:
    """Per-sample SX Functions beyond :class:`CasadiModel`'s: the rhs f(x, θ) and the loss Hessian."""

    def __init__(self, model) -> None:
        problem = model.problem
        lay = problem.layout
        x = ca.SX.sym("x", problem.state_dims[-1])
        yhat = ca.SX.sym("yhat", lay.n_out)
        y = ca.SX.sym("y", lay.n_out)
        loss = ca.sum2(loss_per_sample(problem.cost.loss, yhat, y, casadi_ops))
        self.rhs: ca.Function | None = None
        if problem.dynamics.vector_field is not None:  # a flow has f(x, θ); a layer stack has none
            theta = ca.SX.sym("theta", lay.p)
            self.rhs = ca.Function("rhs", [x, theta], [problem.rhs(x, theta, casadi_ops)])
        self.loss_hessian = ca.Function("loss_hessian", [yhat, y], [ca.hessian(loss, yhat)[0]])


def _finish(model, w: ca.MX, y: np.ndarray, states: list[ca.MX], z: ca.MX, z0, g_extra: list[ca.MX]) -> Transcription:
    """Objective terms, constraints and bounds (shared by all transcriptions)."""
    problem, lay = model.problem, model.problem.layout
    y = ca.DM(y)
    predictions, loss, rest = model.objective_parts(w, states, y)
    lbw, ubw = theta_bounds(problem)
    n_extra = z.shape[0] - lay.n_params
    lbz = np.r_[lbw, np.full(n_extra, -np.inf)]
    ubz = np.r_[ubw, np.full(n_extra, np.inf)]
    lipschitz = problem.step_lipschitz_sq(w, casadi_ops) if problem.constraints.lipschitz is not None else []
    n_lip = len(lipschitz)
    g = ca.vertcat(*lipschitz, *g_extra)
    n_eq = g.shape[0] - n_lip
    c2 = lipschitz_limit(problem) ** 2 if n_lip else 0.0
    lbg = np.r_[np.full(n_lip, -np.inf), np.zeros(n_eq)]
    ubg = np.r_[np.full(n_lip, c2), np.zeros(n_eq)]
    return Transcription(
        z, np.asarray(z0, dtype=float), lbz, ubz, g, lbg, ubg, predictions, loss, rest, y, lay.n_params
    )


def _lifted(model, w: ca.MX, x: np.ndarray) -> ca.MX:
    lay = model.problem.layout
    x = ca.DM(x)
    return model.mapped(model.lift, x.shape[1], [1], [])(x, w[lay.n_theta + lay.n_readout :])


def single_shooting(model, x: np.ndarray, y: np.ndarray, w0: np.ndarray) -> Transcription:
    """z = w; the states are simulated by the problem's integrator.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    x, y : ndarray
        Training batch: inputs ``n_in × S`` and encoded targets ``n_out × S``.
    w0 : ndarray
        Initial guess.

    Returns
    -------
    Transcription
        The NLP.
    """
    w = ca.MX.sym("w", model.problem.n_params)
    states = model.trajectory_expr(w, ca.DM(x))
    return _finish(model, w, y, states, w, w0, [])


def multiple_shooting(model, x: np.ndarray, y: np.ndarray, w0: np.ndarray) -> Transcription:
    """z = [w; vec X_1; …; vec X_N] with continuity constraints X_{k+1} = Φ_h(X_k, Θ_k).

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    x, y : ndarray
        Training batch: inputs ``n_in × S`` and encoded targets ``n_out × S``.
    w0 : ndarray
        Initial guess; the initial states are the forward pass of w0.

    Returns
    -------
    Transcription
        The NLP.
    """
    problem = model.problem
    n = x.shape[1]
    w = ca.MX.sym("w", problem.n_params)
    steps: dict[str, ca.Function] = {}
    states = [_lifted(model, w, x)]
    variables, continuity = [w], []
    for k in range(problem.n_steps):
        f = model.step_at(k)  # one Function for a flow, one per layer for a feed-forward model
        step = steps.setdefault(f.name(), model.mapped(f, n, [1], []))
        x_next = ca.MX.sym(f"X_{k + 1}", problem.state_dims[k + 1], n)
        continuity.append(ca.vec(x_next - step(states[-1], model.stage_vector(w, k))))
        variables.append(ca.vec(x_next))
        states.append(x_next)
    # a feed-forward model's states come zero-padded to the max width; a w0 whose states overflow
    # gives inf guesses (no numpy warnings: the solve's status reports it)
    with np.errstate(over="ignore", invalid="ignore"):
        forward = problem.forward(w0, x)
    dims = problem.state_dims
    z0 = np.concatenate([w0] + [forward[k, : dims[k]].ravel(order="F") for k in range(1, problem.n_steps + 1)])
    return _finish(model, w, y, states, ca.vertcat(*variables), z0, continuity)


def collocation_coefficients(degree: int, scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collocation points τ_0 = 0, τ_1..τ_K and the Lagrange coefficients C (derivatives) and D (end).

    Parameters
    ----------
    degree : int
        K, the number of collocation points (1..4).
    scheme : {"legendre", "radau"}
        Gauss-Legendre or Gauss-Radau points.

    Returns
    -------
    tuple of ndarray
        ``tau`` (K+1,), ``C`` (K+1, K+1) with ``C[r, j] = ℓ_r'(τ_j)``, ``D`` (K+1,) with ``D[r] = ℓ_r(1)``.
    """
    tau = np.r_[0.0, ca.collocation_points(degree, scheme)]
    c = np.zeros((degree + 1, degree + 1))
    d = np.zeros(degree + 1)
    for r in range(degree + 1):
        basis = np.poly1d([1.0])
        for s in range(degree + 1):
            if s != r:
                basis *= np.poly1d([1.0, -tau[s]]) / (tau[r] - tau[s])
        d[r] = basis(1.0)
        derivative = np.polyder(basis)
        c[r] = [derivative(t) for t in tau]
    return tau, c, d


def collocation(
    model, x: np.ndarray, y: np.ndarray, w0: np.ndarray, degree: int = 3, scheme: str = "legendre"
) -> Transcription:
    """Direct collocation: per step the states at τ_1..τ_K and at the step's end are variables.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    x, y : ndarray
        Training batch: inputs ``n_in × S`` and encoded targets ``n_out × S``.
    w0 : ndarray
        Initial guess; states start on the forward pass of w0 (linear in between).
    degree : int
        K = 1..4.
    scheme : {"legendre", "radau"}
        Collocation points.

    Returns
    -------
    Transcription
        The NLP.
    """
    problem = model.problem
    n, h = x.shape[1], problem.step_size
    if problem.dynamics.vector_field is None:
        raise spec_error("transcription", "collocation", "needs a flow x' = f(x, θ); a feed-forward model has none")
    tau, c, d = collocation_coefficients(degree, scheme)
    rhs = model.mapped(_SampleFunctions(model).rhs, n, [1], [])
    w = ca.MX.sym("w", problem.n_params)
    states = [_lifted(model, w, x)]
    variables, equations, z0 = [w], [], [w0]
    with np.errstate(over="ignore", invalid="ignore"):  # as in multiple_shooting
        forward = problem.forward(w0, x)
    for k in range(problem.n_steps):
        points = [states[-1]] + [ca.MX.sym(f"X_{k}_{j}", problem.dim, n) for j in range(1, degree + 1)]
        for j in range(1, degree + 1):
            theta = problem.theta_vector(w, problem.control.stage_basis(k, tau[j], problem.horizon), casadi_ops)
            slope = sum(c[r, j] * points[r] for r in range(degree + 1))
            equations.append(ca.vec(h * rhs(points[j], theta) - slope))
            variables.append(ca.vec(points[j]))
            z0.append(((1 - tau[j]) * forward[k] + tau[j] * forward[k + 1]).ravel(order="F"))
        x_next = ca.MX.sym(f"X_{k + 1}", problem.dim, n)
        equations.append(ca.vec(x_next - sum(d[r] * points[r] for r in range(degree + 1))))
        variables.append(ca.vec(x_next))
        z0.append(forward[k + 1].ravel(order="F"))
        states.append(x_next)
    return _finish(model, w, y, states, ca.vertcat(*variables), np.concatenate(z0), equations)


def gauss_newton_hessian(tr: Transcription, model, damping: float = 0.0) -> ca.Function:
    r"""``hess_lag`` for IPOPT: (generalised) Gauss-Newton on the loss, exact on the rest.

    ∇²L ≈ σ_f [(1/S) Σ_i J_iᵀ ∇²_ŷ ℓ(Ŷ_i, y_i) J_i + ∇² rest] + ∇²(λ_gᵀ g), with J_i = ∂Ŷ_i/∂z.
    For MSE, ∇²_ŷ ℓ = 2 I (the classical J_rᵀ J_r); for logistic and cross-entropy it is the PSD
    Hessian of the loss in the logits (generalised Gauss-Newton). The regulariser is convex, so the
    result is positive semi-definite apart from the constraint curvature.

    Parameters
    ----------
    tr : Transcription
        The NLP.
    model : CasadiModel
        The problem's CasADi view.
    damping : float
        μ: adds σ_f μ I (Levenberg-Marquardt) to the Gauss-Newton term.

    Returns
    -------
    casadi.Function
        ``(x, p, lam_f, lam_g) -> triu(H)``.
    """
    n_out, n = tr.predictions.shape
    lam_f = ca.MX.sym("lam_f")
    lam_g = ca.MX.sym("lam_g", tr.g.shape[0])
    jac = ca.jacobian(ca.vec(tr.predictions), tr.z)
    blocks = model.mapped(_SampleFunctions(model).loss_hessian, n, [], [])(tr.predictions, tr.targets)
    h_gn = 0
    for a in range(n_out):
        for b in range(n_out):
            weights = blocks[a, b::n_out].T
            h_gn += ca.mtimes([jac[a::n_out, :].T, ca.diag(weights), jac[b::n_out, :]])
    lagrangian_rest = lam_f * tr.rest + (ca.dot(lam_g, tr.g) if tr.g.shape[0] else 0)
    h_rest = ca.hessian(lagrangian_rest, tr.z)[0]
    hessian = lam_f * (h_gn / n + damping * ca.DM.eye(tr.z.shape[0])) + h_rest
    return ca.Function(
        "hess_lag",
        [tr.z, ca.MX.sym("p", 0), lam_f, lam_g],
        [ca.triu(hessian)],
        ["x", "p", "lam_f", "lam_g"],
        ["triu_hess_gamma_x_x"],
    )


def symmetric_hessian(upper: ca.Function) -> ca.Function:
    """The full symmetric Hessian from a ``hess_lag`` Function that returns its upper triangle.

    IPOPT takes triu(H); CasADi's ``sqpmethod`` wants H itself: H = U + Uᵀ − diag(U).

    Parameters
    ----------
    upper : casadi.Function
        ``(x, p, lam_f, lam_g) -> triu(H)``, e.g. from :func:`gauss_newton_hessian`.

    Returns
    -------
    casadi.Function
        ``(x, p, lam_f, lam_g) -> H``.
    """
    inputs = [ca.MX.sym(name, upper.sparsity_in(i)) for i, name in enumerate(upper.name_in())]
    u = upper(*inputs)
    return ca.Function("hess_lag", inputs, [u + u.T - ca.diag(ca.diag(u))], upper.name_in(), ["hess_gamma_x_x"])
