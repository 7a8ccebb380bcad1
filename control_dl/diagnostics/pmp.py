r"""Pontryagin's maximum principle along a trained network: costates, ∂H/∂θ and H(t).

Discrete setting (any one-step scheme x_{k+1} = Φ_h(x_k, Θ_k), Θ_k = θ at the step's nodes; for
Euler Φ_h(x, θ) = x + h f(x, θ)). With the per-sample running cost r(x) = κ ℓ(λ2(x), y) + η ‖x − x̄‖²
taken at t_1..t_N and the terminal loss ℓ(λ2(x_N), y), the costate of sample i is

    p_{N,i} = −∇_x [ℓ + h r](x_{N,i}),      p_{k,i} = (∂_x Φ_h)ᵀ p_{k+1,i} − h ∇_x r(x_{k,i})  (k ≥ 1),

i.e. p_{k,i} = −S ∂J/∂x_{k,i} (one column per sample, the 1/S of J taken out). The stage Hamiltonian
(maximised by an optimal control, Li, Chen, Tai, E) is

    H_k(θ) = (1/S) Σ_i [ p_{k+1,i}·(Φ_h(x_{k,i}, θ) − x_{k,i}) / h − r(x_{k,i}) ] − L(θ),

L(θ) = α ‖θ‖² + γ Σ(√(θ² + ε²) − ε) at the step's integrator nodes (quadrature weights of the
scheme). For a :class:`~control_dl.PiecewiseConstant` control without β, R = h Σ_k L(θ_k) and
∂J/∂θ_k = −h ∂H_k/∂θ_k exactly, so ‖∂H_k/∂θ‖ = 0 at every step is the discrete PMP stationarity. Other
controls tie the steps together: θ at a node is Σ_j a_{k,m,j} B_j (B_j the coefficient vectors of
w's θ block, a the basis weights), and R(B) is the exact α ∫‖θ‖² + β ∫‖θ'‖² (+ the L1 midpoint
rule; a user :class:`~control_dl.problems.dynamics.Dynamics` its own), not h Σ_k L(θ_k); a single step's ∂H_k/∂θ then need not vanish at an optimum. What vanishes
is the gradient, with respect to the control's own coefficients, of the summed Hamiltonian

    𝓗(B) = Σ_k h H̄_k(Θ_k(B)) − R(B),    H̄_k = H_k + L (the data part, L dropped),

chained through Θ_k(B) = (θ at the nodes of step k): ∂𝓗/∂B_j = −∂J/∂B_j for every control and
regulariser (H1 included; the running costs κ, η enter through the costates). The *PMP residual*
(:attr:`PMPReport.residual`) is max_j ‖∂𝓗/∂B_j‖ = max_j ‖∂J/∂B_j‖: for a piecewise-constant control
without β it is max_k h ‖∂H_k/∂θ‖ (block j is step j), the residual of the discrete stage Hamiltonian
p·Φ_h − h L of Li et al. (docs/math/pmp.md). It is the quantity E-MSA's history records and stops on
(``pmp_residual``, the same block norms), so the comparison tables and the solvers report one
number. With box bounds or the invertibility constraint active, a constrained optimum has
multipliers and the residual need not vanish there. For an autonomous problem
(:class:`~control_dl.TimeInvariant`) H is constant along the continuous state-costate flow; the
discrete H_k drifts by O(h).

A feed-forward model (x_{k+1} = F_k(x_k, θ_k), x_k ∈ R^{w_k}, h its ``step``) has costates
p_k ∈ R^{w_k} (zero-padded to the largest width, like ``forward``'s states), no running cost and

    H_k(θ) = (1/S) Σ_i p_{k+1,i}·F_k(x_{k,i}, θ) / h − L(θ),

so that again ∂J/∂θ_k = −h ∂H_k/∂θ_k (R = h Σ_k L(θ_k)); its drift carries no meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from ..backends import casadi_ops, numpy_ops, smooth_abs
from ..engines import Casadi, EngineSpec, make_engine
from ..problems.training import TrainingProblem
from ._common import weights_of

#: Quadrature weights of the integrator nodes (θ at each node enters L with this weight).
_NODE_WEIGHTS = {"euler": (1.0,), "rk4": (1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0)}


@dataclass(frozen=True)
class PMPReport:
    """Costates and the Hamiltonian along a solve.

    Attributes
    ----------
    t : ndarray
        Grid t_0..t_N.
    costates : ndarray
        p_k, shape ``(N + 1, d, S)`` (p_k = −S ∂J/∂x_k; zero-padded to d for a feed-forward model).
    grad_h_norm : ndarray
        ‖∂H_k/∂θ‖ per step, shape ``(N,)``: the derivative for one θ shared by the step's integrator
        nodes (the sum of the node blocks). It vanishes at a stationary point only for a
        piecewise-constant control without β (or a feed-forward layer); see :attr:`block_grad_norm`.
    block_grad_norm : ndarray
        ‖∂𝓗/∂B_j‖ = ‖∂J/∂B_j‖ per θ block B_j of w (a coefficient vector C_j of the control, a layer's
        θ_k), shape ``(n_blocks,)``: the stationarity of the summed Hamiltonian in the control's own
        coefficients (module docstring), zero at every stationary point of J.
    hamiltonian : ndarray
        H_k at the solve's θ_k, shape ``(N,)``.
    drift : float
        max_k |H_k − H_0|.
    relative_drift : float
        drift / max(|H_0|, max_k |H_k|).
    step_size : float
        h (h ‖∂H_k/∂θ‖ is the discrete stage Hamiltonian's residual).
    """

    t: np.ndarray
    costates: np.ndarray
    grad_h_norm: np.ndarray
    block_grad_norm: np.ndarray
    hamiltonian: np.ndarray
    drift: float
    relative_drift: float

    step_size: float

    def __repr__(self) -> str:
        """The scalars and the shapes (the costates of every sample would fill the screen)."""
        return (
            f"PMPReport(residual={self.residual:.3g}, drift={self.drift:.3g}, relative_drift={self.relative_drift:.3g}, "
            f"costates={self.costates.shape}, steps={self.grad_h_norm.shape[0]})"
        )

    @property
    def residual(self) -> float:
        """max_j ‖∂𝓗/∂B_j‖ = max_j ‖∂J/∂B_j‖ over the θ blocks of w: the PMP residual.

        For every control and regulariser it is zero exactly at a stationary point of J in θ. For a
        piecewise-constant control without β (and a feed-forward model) it equals max_k h ‖∂H_k/∂θ‖,
        the stationarity residual of the discrete stage Hamiltonian h H_k = p·Φ_h − h L (Li, Chen,
        Tai & E 2018; docs/math/pmp.md). The same number as ``pmp_residual`` in an E-MSA history.
        """
        return float(np.max(self.block_grad_norm))


def _control_cost(problem: TrainingProblem, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """L(θ) = α‖θ‖² + γ Σ(√(θ²+ε²) − ε) and its gradient."""
    cost = problem.cost
    value = cost.l2 * float(theta @ theta)
    grad = 2.0 * cost.l2 * theta
    if cost.l1 > 0:
        value += cost.l1 * float(np.sum(smooth_abs(theta, cost.l1_eps, numpy_ops)))
        grad = grad + cost.l1 * theta / np.sqrt(theta**2 + cost.l1_eps**2)  # d/dθ of smooth_abs
    return value, grad


def _block_gradients(
    problem: TrainingProblem, w: np.ndarray, stage_grads: list[np.ndarray], n_samples: int
) -> np.ndarray:
    """‖∂𝓗/∂B_j‖ per θ block: the chain rule through Θ_k(w) of the stage gradients, minus ∇R.

    𝓗(w) = (1/S) Σ_k a_k(Θ_k(w)) − R(w) up to terms free of θ (a_k = Σ_i p̂_{k+1,i}·Φ_h(x_{k,i}, Θ_k),
    the engine's stage term), so ∂𝓗/∂w = (1/S) Σ_k (∂Θ_k/∂w)ᵀ ∂a_k/∂Θ_k − ∇R(w), traced once in
    CasADi through the dynamics' own ``stage_thetas`` and ``regulariser`` (any control, any
    :class:`~control_dl.problems.dynamics.Dynamics`).
    """
    w_sym = ca.SX.sym("w", problem.layout.n_params)
    total = -ca.SX(problem.regulariser(w_sym, casadi_ops))
    for k, grad in enumerate(stage_grads):
        theta = ca.vertcat(*[ca.vec(t) for t in problem.stage_thetas(w_sym, k, casadi_ops)])
        total = total + ca.dot(ca.DM(np.ravel(grad) / n_samples), theta)
    gradient = np.asarray(ca.Function("grad_h", [w_sym], [ca.gradient(total, w_sym)])(w), dtype=float).ravel()
    offsets = problem.dynamics.offsets
    return np.array([np.linalg.norm(gradient[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)])


def pmp_residual(problem: TrainingProblem, result: Any, engine: str | EngineSpec | None = None) -> PMPReport:
    """Costates p_k, ‖∂H_k/∂θ‖ per step, the PMP residual and the Hamiltonian H_k along t.

    The costates and ∂H_k/∂θ come from the engine layer's one costate pass and stage Hamiltonian
    (:meth:`~control_dl.engines.Engine.sweep` and ``augmented_hamiltonian`` at ρ = 0, whose
    a_k = Σ_i p_{k+1,i}·Φ_h(x_{k,i}, Θ_k) with this module's p = S × the engine's costates).
    ∂H_k/∂θ = 0 at every step is the stationarity of the discrete maximum principle (Li, Chen, Tai
    & E, JMLR 18(165), 2018) for a piecewise-constant control without β; for every control the
    residual is taken in the control's own coefficients (the summed Hamiltonian chained through
    θ(t), with the exact regulariser, H1 included), so it is zero exactly where ∇_θ J is. H_k, p_k
    and the residual are defined in the module docstring.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result or array_like
        The solve (or its w, shape ``(n_params,)``).
    engine : str or EngineSpec, optional
        Engine of the sweep (default: uncompiled CasADi, as a diagnostic evaluates once).

    Returns
    -------
    PMPReport
        Costates, ∂H/∂θ, H and its drift.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite.
    """
    w = weights_of(problem, result)
    x, targets = problem.data.x_train, problem.targets
    n_steps, n_samples, h = problem.n_steps, x.shape[1], problem.step_size
    bound = make_engine(Casadi(jit=False) if engine is None else engine, problem, x, targets, regulariser=False)
    sweep = bound.sweep(w)
    dims = problem.state_dims
    costates = np.zeros((n_steps + 1, problem.dim, n_samples))
    for k, p in enumerate(sweep.costates):
        costates[k, : dims[k]] = n_samples * p
    nodes = [problem.stage_thetas(w, k, numpy_ops) for k in range(n_steps)]
    stages = bound.augmented_hamiltonian(sweep, [np.concatenate([np.ravel(t) for t in th]) for th in nodes], 0.0)
    readout = problem.layout.readout(w, numpy_ops)
    weights = _NODE_WEIGHTS[problem.integrator]
    grad_h = np.zeros(n_steps)
    hamiltonian = np.zeros(n_steps)
    for k in range(n_steps):
        control = [_control_cost(problem, np.ravel(th)) for th in nodes[k]]
        per_node = stages.gradients[k].reshape(len(nodes[k]), -1) / (h * n_samples)
        grad_theta = sum(row - c * g for row, c, (_, g) in zip(per_node, weights, control, strict=True))
        grad_h[k] = float(np.linalg.norm(grad_theta))
        if problem.dynamics.vector_field is not None:  # a flow: mean_i [p_{k+1,i}·(Φ_h − x_{k,i}) / h − r(x_{k,i})]
            shift = n_samples * float(np.sum(sweep.costates[k + 1] * sweep.states[k]))
            running = problem.running_cost(sweep.states[k], targets, readout, numpy_ops) / n_samples
            data = (stages.values[k] - shift) / (h * n_samples) - float(running)
        else:  # stage maps without a vector field: H_k = p·F_k / h, no running cost
            data = stages.values[k] / (h * n_samples)
        hamiltonian[k] = data - sum(c * v for c, (v, _) in zip(weights, control, strict=True))
    drift = float(np.max(np.abs(hamiltonian - hamiltonian[0])))
    scale = max(float(np.max(np.abs(hamiltonian))), np.finfo(float).tiny)
    blocks = _block_gradients(problem, w, stages.gradients, n_samples)
    return PMPReport(problem.times, costates, grad_h, blocks, hamiltonian, drift, drift / scale, h)
