r"""Compiled CasADi pieces of the discrete maximum principle, traced from the one model.

Discrete PMP for x_{k+1} = F(x_k, Θ_k) (one Euler or RK4 step, ``casadi_model(problem).step``) and

    J = (1/S) Σ_i Φ(x_{N,i}) + (h/S) Σ_{k=1}^{N} Σ_i L(x_{k,i}) + R(θ):

- costates p_k = −∂J/∂x_k:  p_N = −(1/S) ∇Φ(x_N) − (h/S) ∇L(x_N),
  p_k = ∇_x H_k(x_k, p_{k+1}, θ) = J_F(x_k, Θ_k)ᵀ p_{k+1} − (h/S) ∇L(x_k)   (no L at k = 0),
  with H_k(x, p, θ) = p·F(x, Θ_k) − (h/S) L(x) − R_k(θ);
- q_k = J_F(x_k, Θ_k)ᵀ p_{k+1} (the Θ-dependent part of ∇_x H_k; p_k − ∇_x H_k = q_k − J_Fᵀ p_{k+1});
- the augmented Hamiltonian of E-MSA, written per sample with the paper's costates p̂ = S p
  (so that ρ does not depend on the batch size S), summed over the steps:

      H̃(θ) = (1/S) Σ_k Σ_i [ p̂_{k+1,i}·F(x_{k,i}, Θ_k) − ρ/2 ‖x_{k+1,i} − F(x_{k,i}, Θ_k)‖²
                              − ρ/2 ‖q̂_{k,i} − J_F(x_{k,i}, Θ_k)ᵀ p̂_{k+1,i}‖² ] − R(θ).

  At the current θ both penalties vanish and ∇_θ H̃ = −∇_θ J.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import casadi as ca
import numpy as np

from ..backends import casadi_ops
from ..engines import casadi_model

if TYPE_CHECKING:
    from ..problems.training import TrainingProblem


class PontryaginFunctions:
    """Forward/backward sweep and Hamiltonian derivatives for batches of ``n_samples`` columns.

    Parameters
    ----------
    problem : TrainingProblem
        The problem; its :class:`~control_dl.engines.CasadiModel` supplies the traced
        per-sample Functions ``step``, ``terminal`` and ``running``.
    n_samples : int
        Batch size S.
    """

    def __init__(self, problem: TrainingProblem, n_samples: int) -> None:
        self.problem = problem
        self.n_samples = n_samples
        model, lay = casadi_model(problem), problem.layout
        self.n_theta_stage = model.step.size1_in(1)
        x = ca.SX.sym("x", problem.dim)
        y = ca.SX.sym("y", lay.n_out)
        w_readout = ca.SX.sym("w_readout", model.terminal.size1_in(2))
        self._vjp, h_vg, h_vgh = stage_functions(model.step)
        self._terminal_grad = ca.Function(
            "terminal_grad", [x, y, w_readout], [ca.gradient(model.terminal(x, y, w_readout), x)]
        )
        self._running_grad = ca.Function(
            "running_grad", [x, y, w_readout], [ca.gradient(model.running(x, y, w_readout), x)]
        )
        self.sweep = self._build_sweep()
        self.readout_objective = self._build_readout_objective()
        w = ca.MX.sym("w", problem.n_params)
        x_in = ca.MX.sym("x_in", lay.n_in, n_samples)
        self.forward = ca.Function("forward", [w, x_in], [ca.horzcat(*model.trajectory_expr(w, x_in))])
        self.stage_vg = self._stage_map(h_vg)
        self.stage_vgh = self._stage_map(h_vgh)

    def _stage_map(self, per_sample: ca.Function) -> ca.Function:
        """Sum a per-sample function over the S samples, then map over the N steps."""
        over_samples = sum_over_samples(per_sample, self.n_samples)
        return over_samples.map("steps", "serial", self.problem.n_steps, [5], [])

    def _build_sweep(self) -> ca.Function:
        """(w, x_in, y) -> (X, P, Q): states, costates and q_k, each ``d × S·(N+1)`` (Q: ``d × S·N``)."""
        problem, model, lay = self.problem, casadi_model(self.problem), self.problem.layout
        s = self.n_samples
        w = ca.MX.sym("w", problem.n_params)
        x_in = ca.MX.sym("x_in", lay.n_in, s)
        y = ca.MX.sym("y", lay.n_out, s)
        w_readout = w[lay.n_theta : lay.n_theta + model.terminal.size1_in(2)]
        states = model.trajectory_expr(w, x_in)
        vjp = self._vjp.map("vjp_map", "serial", s, [1], [])
        h_over_s = problem.step_size / s
        running = problem.cost.has_running_cost
        run_grad = self._running_grad.map("running_grad_map", "serial", s, [2], [])
        p = -self._terminal_grad.map("terminal_grad_map", "serial", s, [2], [])(states[-1], y, w_readout) / s
        if running:
            p -= h_over_s * run_grad(states[-1], y, w_readout)
        costates, qs = [p], []
        for k in range(problem.n_steps - 1, -1, -1):
            q = vjp(states[k], model.stage_vector(w, k), p)
            p = q - h_over_s * run_grad(states[k], y, w_readout) if (running and k > 0) else q
            qs.append(q)
            costates.append(p)
        return ca.Function(
            "sweep",
            [w, x_in, y],
            [ca.horzcat(*states), ca.horzcat(*costates[::-1]), ca.horzcat(*qs[::-1])],
            ["w", "x_in", "y"],
            ["X", "P", "Q"],
        )

    def _build_readout_objective(self) -> ca.Function:
        """(w_readout, X, y) -> (J − R, ∇_{w_readout}, ∇²_{w_readout}): the cost of fixed states X
        (``d × S·(N+1)``) as a function of the readout (P, c) only, with its gradient and Hessian."""
        problem, model, lay = self.problem, casadi_model(self.problem), self.problem.layout
        s, n = self.n_samples, self.problem.n_steps
        w_readout = ca.MX.sym("w_readout", model.terminal.size1_in(2))
        states = ca.MX.sym("X", problem.dim, s * (n + 1))
        y = ca.MX.sym("y", lay.n_out, s)
        terminal = model.terminal.map("terminal_map", "serial", s, [2], [0])
        j = terminal(states[:, n * s :], y, w_readout) / s
        if problem.cost.has_running_cost:
            running = model.running.map("running_map", "serial", s, [2], [0])
            for k in range(1, n + 1):
                j += problem.step_size / s * running(states[:, k * s : (k + 1) * s], y, w_readout)
        grad = ca.gradient(j, w_readout)
        hess = ca.densify(ca.jacobian(grad, w_readout))
        return ca.Function("readout_objective", [w_readout, states, y], [j, grad, hess])

    def states_costates(self, w: np.ndarray, x_in: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """Forward states, backward costates and q_k as arrays.

        Parameters
        ----------
        w : ndarray
            Decision vector.
        x_in, y : ndarray
            Batch inputs ``n_in × S`` and encoded targets ``n_out × S``.

        Returns
        -------
        tuple of ndarray
            X and P of shape ``(N + 1, d, S)``, Q of shape ``(N, d, S)``.
        """
        x, p, q = self.sweep(w, x_in, y)
        d, s = self.problem.dim, self.n_samples

        def split(m: ca.DM) -> np.ndarray:
            return np.asarray(m).reshape(d, -1, s).transpose(1, 0, 2)

        return split(x), split(p), split(q)


def stage_functions(step: ca.Function) -> tuple[ca.Function, ca.Function, ca.Function]:
    """Per-sample pieces of one step x⁺ = F(x, Θ) (any step Function, the state sizes may differ).

    Parameters
    ----------
    step : casadi.Function
        ``(x, Θ) -> x⁺`` for one sample.

    Returns
    -------
    tuple of casadi.Function
        ``vjp(x, Θ, p_next) -> J_Fᵀ p_next``; ``h_vg(x, p_next, x_next, q, Θ, rho) -> (a, ∇_Θ a)`` and
        ``h_vgh`` (also ∇²_Θ a), with a = p_next·F − ρ/2 (‖x_next − F‖² + ‖q − J_Fᵀ p_next‖²) the
        sample's term of H̃.
    """
    x = ca.SX.sym("x", step.size1_in(0))
    pn = ca.SX.sym("p_next", step.size1_out(0))
    theta = ca.SX.sym("Theta", step.size1_in(1))
    f = step(x, theta)
    vjp = ca.jtimes(f, x, pn, True)
    xn = ca.SX.sym("x_next", step.size1_out(0))
    q = ca.SX.sym("q", step.size1_in(0))
    rho = ca.SX.sym("rho")
    gap_x, gap_p = xn - f, q - vjp
    a = ca.dot(pn, f) - 0.5 * rho * (ca.dot(gap_x, gap_x) + ca.dot(gap_p, gap_p))
    grad = ca.gradient(a, theta)
    hess = ca.jacobian(grad, theta)
    ins, names = [x, pn, xn, q, theta, rho], ["x", "p_next", "x_next", "q", "Theta", "rho"]
    return (
        ca.Function("vjp", [x, theta, pn], [vjp]),
        ca.Function("h_vg", ins, [a, grad], names, ["H", "g"]),
        ca.Function("h_vgh", ins, [a, grad, hess], names, ["H", "g", "Hess"]),
    )


def sum_over_samples(per_sample: ca.Function, n_samples: int) -> ca.Function:
    """Map a per-sample ``h_vg``/``h_vgh`` over S columns, summing every output (Θ and ρ shared)."""
    return per_sample.map("samples", "serial", n_samples, [4, 5], list(range(per_sample.n_out())))


def regulariser_functions(problem: TrainingProblem, n_blocks: int) -> tuple[ca.Function, ...]:
    """R(θ) with its gradient, and the diagonal blocks of its Hessian, from ``problem.regulariser``.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    n_blocks : int
        Number of equal blocks of the θ block of w (N for a ResNet, 1 otherwise).

    Returns
    -------
    tuple of casadi.Function
        ``reg_vg(theta) -> (R, ∇R)``, ``reg_blocks(theta) -> [∇²R_11, …, ∇²R_bb]`` (horizontally
        stacked diagonal blocks, ``m × m·n_blocks``) and ``reg_hess(theta) -> ∇²R`` (sparse).
    """
    lay = problem.layout
    theta = ca.SX.sym("theta", lay.n_theta)
    w = ca.vertcat(theta, ca.SX.zeros(lay.n_params - lay.n_theta))
    r = ca.SX(problem.regulariser(w, casadi_ops))
    grad = ca.gradient(r, theta)
    m = lay.n_theta // n_blocks
    blocks = [ca.densify(ca.jacobian(grad[b * m : (b + 1) * m], theta[b * m : (b + 1) * m])) for b in range(n_blocks)]
    return (
        ca.Function("reg_vg", [theta], [r, grad]),
        ca.Function("reg_blocks", [theta], [ca.horzcat(*blocks)]),
        ca.Function("reg_hess", [theta], [ca.jacobian(grad, theta)]),
    )
