r"""Gradients of J in torch: autograd through the whole forward pass, or the costate backward pass.

The adjoint (costate) pass of Pontryagin's principle computes the same ∇_w J one step at a time,
p_k = −∂J/∂x_k running backwards by one vector-Jacobian product per step. It lives once, in the
engine layer (:func:`control_dl.engines._torch.costate_pass`, also behind the torch engine's
``sweep``); this module only offers the two ways ``TorchTrainer`` computes (J, loss, ∇J).
"""

from __future__ import annotations

from typing import Any

from ..engines._torch import costate_pass
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
    """(J, loss, ∇_w J) by the costate backward pass (:func:`control_dl.engines._torch.costate_pass`).

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
    j, loss, grad, *_ = costate_pass(problem, w, x, target, ops)
    return j, loss, grad
