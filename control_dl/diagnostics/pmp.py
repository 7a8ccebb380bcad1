r"""Pontryagin's maximum principle along a trained network: costates, ∂H/∂θ and H(t).

Discrete setting (any one-step scheme x_{k+1} = Φ_h(x_k, Θ_k), Θ_k = θ at the step's nodes; for
Euler Φ_h(x, θ) = x + h f(x, θ)). With the per-sample running cost r(x) = κ ℓ(λ2(x), y) + η ‖x − x̄‖²
taken at t_1..t_N and the terminal loss ℓ(λ2(x_N), y), the costate of sample i is

    p_{N,i} = −∇_x [ℓ + h r](x_{N,i}),      p_{k,i} = (∂_x Φ_h)ᵀ p_{k+1,i} − h ∇_x r(x_{k,i})  (k ≥ 1),

i.e. p_{k,i} = −S ∂J/∂x_{k,i} (one column per sample, the 1/S of J taken out). The stage Hamiltonian
(maximised by an optimal control, Li, Chen, Tai, E) is

    H_k(θ) = (1/S) Σ_i [ p_{k+1,i}·(Φ_h(x_{k,i}, θ) − x_{k,i}) / h − r(x_{k,i}) ] − L(θ),

L(θ) = α ‖θ‖² + γ Σ(√(θ² + ε²) − ε) (the H1 term β couples steps and is not part of H_k). For a
:class:`~control_dl.PiecewiseConstant` control without β, ∂J/∂θ_k = −h ∂H_k/∂θ_k exactly, so
‖∂H_k/∂θ‖ = 0 at every step is the discrete PMP stationarity. For other controls only the
projection Σ_k h φ_j(t_k) ∂H_k/∂θ vanishes at a stationary point. For an autonomous problem
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

from ..backends import numpy_ops
from ..engines import casadi_model
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
        nodes (the sum of the node blocks).
    hamiltonian : ndarray
        H_k at the solve's θ_k, shape ``(N,)``.
    drift : float
        max_k |H_k − H_0|.
    relative_drift : float
        drift / max(|H_0|, max_k |H_k|).
    """

    t: np.ndarray
    costates: np.ndarray
    grad_h_norm: np.ndarray
    hamiltonian: np.ndarray
    drift: float
    relative_drift: float

    @property
    def residual(self) -> float:
        """max_k ‖∂H_k/∂θ‖: the PMP stationarity residual."""
        return float(np.max(self.grad_h_norm))


class _StageFunctions:
    """Per-sample CasADi Functions of the model, mapped over the S columns (one per distinct step)."""

    def __init__(self, problem: TrainingProblem, n_samples: int) -> None:
        model, lay, h = casadi_model(problem), problem.layout, problem.step_size
        y = ca.SX.sym("y", lay.n_out)
        w_readout = ca.SX.sym("w_readout", lay.n_readout)
        if problem.model is None:
            self._stages = [self._stage(problem, model.step, y, w_readout).map(n_samples, "serial")]
        else:
            self._stages = [
                self._stage(problem, model.step_at(k), y, w_readout).map(n_samples, "serial")
                for k in range(problem.n_steps)
            ]
        x = ca.SX.sym("x", problem.state_dims[-1])
        run = model.running(x, y, w_readout)
        term = model.terminal(x, y, w_readout)
        final = ca.Function("final", [x, y, w_readout], [ca.gradient(term + h * run, x)])
        self.final = final.map(n_samples, "serial")

    @staticmethod
    def _stage(problem: TrainingProblem, step: ca.Function, y: ca.SX, w_readout: ca.SX) -> ca.Function:
        """(x, Θ, p, y, w_readout) -> (J_xᵀ p, J_Θᵀ p / h, the data part of H, ∇r) for one step."""
        h = problem.step_size
        x, theta = ca.SX.sym("x", step.size1_in(0)), ca.SX.sym("Theta", step.size1_in(1))
        p = ca.SX.sym("p", step.size1_out(0))
        nxt = step(x, theta)
        if problem.model is None:
            run = casadi_model(problem).running(x, y, w_readout)
            data = ca.dot(p, nxt - x) / h - run
        else:  # the state size changes: H_k = p·F_k / h, no running cost
            run, data = ca.SX(0), ca.dot(p, nxt) / h
        outputs = [ca.jtimes(nxt, x, p, True), ca.jtimes(nxt, theta, p, True) / h, data, ca.gradient(run, x)]
        return ca.Function("stage", [x, theta, p, y, w_readout], outputs)

    def stage(self, k: int) -> ca.Function:
        """The mapped stage Function of step k."""
        return self._stages[k if len(self._stages) > 1 else 0]


def _control_cost(problem: TrainingProblem, theta: np.ndarray) -> tuple[float, np.ndarray]:
    """L(θ) = α‖θ‖² + γ Σ(√(θ²+ε²) − ε) and its gradient."""
    cost = problem.cost
    value = cost.l2 * float(theta @ theta)
    grad = 2.0 * cost.l2 * theta
    if cost.l1 > 0:
        root = np.sqrt(theta**2 + cost.l1_eps**2)
        value += cost.l1 * float(np.sum(root - cost.l1_eps))
        grad = grad + cost.l1 * theta / root
    return value, grad


def pmp_residual(problem: TrainingProblem, result: Any) -> PMPReport:
    """Costates p_k, the stationarity residual ‖∂H_k/∂θ‖ and the Hamiltonian H_k along t.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    result : Result or array_like
        The solve (or its w).

    Returns
    -------
    PMPReport
        Costates (backward pass through CasADi vector-Jacobian products), ∂H/∂θ, H and its drift.
    """
    w = weights_of(problem, result)
    states = problem.forward(w)
    n_steps, n_samples = problem.n_steps, states.shape[2]
    funcs = _StageFunctions(problem, n_samples)
    lay, dims = problem.layout, problem.state_dims
    w_readout = w[lay.n_theta : lay.n_theta + lay.n_readout]
    targets = problem.targets
    weights = _NODE_WEIGHTS[problem.integrator]
    costates = np.zeros_like(states)
    costates[-1, : dims[-1]] = -np.asarray(funcs.final(states[-1, : dims[-1]], targets, w_readout))
    grad_h = np.zeros(n_steps)
    hamiltonian = np.zeros(n_steps)
    for k in range(n_steps - 1, -1, -1):
        nodes = problem.stage_thetas(w, k, numpy_ops)
        stacked = np.concatenate([np.ravel(th) for th in nodes])
        x_k, p_next = states[k, : dims[k]], costates[k + 1, : dims[k + 1]]
        vjp_x, vjp_theta, h_data, grad_run = (
            np.asarray(v) for v in funcs.stage(k)(x_k, stacked, p_next, targets, w_readout)
        )
        running_grad = grad_run if k > 0 else 0.0
        costates[k, : dims[k]] = vjp_x - problem.step_size * running_grad
        control = [_control_cost(problem, np.ravel(th)) for th in nodes]
        per_node = vjp_theta.sum(axis=1).reshape(len(nodes), -1) / n_samples
        grad_theta = sum(row - c * g for row, c, (_, g) in zip(per_node, weights, control, strict=True))
        grad_h[k] = float(np.linalg.norm(grad_theta))
        hamiltonian[k] = float(h_data.mean()) - sum(c * v for c, (v, _) in zip(weights, control, strict=True))
    drift = float(np.max(np.abs(hamiltonian - hamiltonian[0])))
    scale = max(float(np.max(np.abs(hamiltonian))), np.finfo(float).tiny)
    return PMPReport(problem.times, costates, grad_h, hamiltonian, drift, drift / scale)
