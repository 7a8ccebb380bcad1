r"""Gradients of J in torch: autograd through the whole forward pass, or the costate backward pass.

The adjoint (costate) pass of Pontryagin's principle computes the same ∇_w J one step at a time.
With the step map x_{k+1} = Φ_h(x_k, θ_k), the terminal loss ℓ_T(x) = (1/S) Σ_i ℓ(λ2(x_i), y_i), the
running cost L and the Hamiltonian H_k = p_{k+1}·Φ_h(x_k, θ_k) + h L(x_k), the costates run backwards:

    p_N = ∇_x ℓ_T(x_N) + h ∇_x L(x_N),     p_k = ∇_x H_k = (∂Φ_h/∂x_k)ᵀ p_{k+1} + h ∇_x L(x_k)  (k ≥ 1),
    ∇_θ J = Σ_k ∇_θ H_k + ∇_θ R = Σ_k (∂Φ_h/∂θ_k)ᵀ p_{k+1} + ∇_θ R.

(This is the minimisation sign convention; the maximised Hamiltonian of MSA uses −p.) For Euler,
p_k = p_{k+1} + h ∂_x(p_{k+1}·f(x_k, θ_k)) is the costate ODE p' = −∂H/∂x stepped backwards by the same
scheme; for RK4 the recursion is RK4's symplectic partner (Hager 2000; Sanz-Serna 2016), so the gradient
is exact for every integrator and control. Only one step's autograd graph is alive at a time (the
forward states are stored, not the graph). The readout P, c and a trainable lift λ1 get their
gradients from ℓ_T, L and p_0.
"""

from __future__ import annotations

from typing import Any

from ..problems.training import TrainingProblem


def backprop_objective_and_gradient(problem: TrainingProblem, w: Any, x: Any, target: Any, ops: Any) -> tuple:
    """(J, loss, ∇_w J) by reverse-mode autograd through the whole forward pass.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    w : torch.Tensor
        Decision vector (float64, any grad state).
    x, target : torch.Tensor
        Batch inputs ``n_in × S`` and encoded targets ``n_out × S``.
    ops : TorchOps
        The torch backend.

    Returns
    -------
    tuple of torch.Tensor
        ``(J, loss, grad)``, all detached.
    """
    import torch

    leaf = w.detach().requires_grad_(True)
    j, loss = problem.objective_terms(leaf, x, target, ops)
    (grad,) = torch.autograd.grad(j, leaf)
    return j.detach(), loss.detach(), grad


def adjoint_objective_and_gradient(problem: TrainingProblem, w: Any, x: Any, target: Any, ops: Any) -> tuple:
    """(J, loss, ∇_w J) by the costate backward pass (see the module docstring).

    The value agrees with :meth:`TrainingProblem.objective_terms` and the gradient with
    :func:`backprop_objective_and_gradient` to rounding, for every control and integrator.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    w : torch.Tensor
        Decision vector (float64).
    x, target : torch.Tensor
        Batch inputs ``n_in × S`` and encoded targets ``n_out × S``.
    ops : TorchOps
        The torch backend.

    Returns
    -------
    tuple of torch.Tensor
        ``(J, loss, grad)``, all detached.
    """
    import torch

    w = w.detach()
    n, h = x.shape[1], problem.step_size
    running = problem.cost.has_running_cost
    with torch.no_grad():
        states = list(problem.trajectory(w, x, ops))

    def readout_terms(state: Any, terminal: bool) -> tuple[Any, Any, Any, Any]:
        """Value, loss and gradients (w.r.t. x and w) of the terms that read state x_k directly."""
        leaf_w = w.clone().requires_grad_(True)
        leaf_x = state.clone().requires_grad_(True)
        readout = problem.layout.readout(leaf_w, ops)
        value = h * problem.running_cost(leaf_x, target, readout, ops) / n if running else 0.0 * leaf_x.sum()
        loss = leaf_x.new_zeros(())
        if terminal:
            loss = problem.terminal_loss(leaf_x, target, readout, ops) / n
            value = value + loss + problem.regulariser(leaf_w, ops)
        grad_x, grad_w = torch.autograd.grad(value, (leaf_x, leaf_w), allow_unused=True)
        grad_w = torch.zeros_like(w) if grad_w is None else grad_w
        grad_x = torch.zeros_like(state) if grad_x is None else grad_x
        return value.detach(), loss.detach(), grad_x, grad_w

    j, loss, costate, grad = readout_terms(states[-1], terminal=True)
    for k in range(problem.n_steps - 1, -1, -1):
        leaf_w = w.clone().requires_grad_(True)
        leaf_x = states[k].clone().requires_grad_(True)
        nxt = problem.step(leaf_x, problem.stage_thetas(leaf_w, k, ops), ops, k)
        costate, step_grad = torch.autograd.grad(nxt, (leaf_x, leaf_w), grad_outputs=costate)
        grad = grad + step_grad
        if k > 0 and running:
            value, _, grad_x, grad_w = readout_terms(states[k], terminal=False)
            j, costate, grad = j + value, costate + grad_x, grad + grad_w
    lift = problem.layout.lift(w, ops)
    if lift:
        leaf_w = w.clone().requires_grad_(True)
        x0 = problem.lift_states(x, problem.layout.lift(leaf_w, ops), ops)
        (lift_grad,) = torch.autograd.grad(x0, leaf_w, grad_outputs=costate)
        grad = grad + lift_grad
    return j, loss, grad
