r"""The torch engine: the one model on batched ``d × S`` float64 tensors (BLAS GEMMs), cpu or cuda.

J_batch, the loss and the predictions come from :meth:`TrainingProblem.batch_objective` over a
device-aware torch ``ops`` namespace (the model is never re-written); derivatives by autograd:

- ``evaluate``: one forward pass and one reverse sweep (``torch.autograd.grad``);
- ``gauss_newton_product``: G v = J_Ŷᵀ (∇²_Ŷ ℓ / n) J_Ŷ v + ∇²(rest) v (Schraudolph 2002): J_Ŷ v by
  double backward, the loss Hessian in the outputs by reverse-over-reverse, J_Ŷᵀ u by a
  vector-Jacobian product; "rest" (R and running terms) by an exact Hessian-vector product;
- ``sweep``: :func:`costate_pass`, THE torch costate (adjoint) pass, step by step with one
  vector-Jacobian product per step (only one step's graph alive at a time); it also accumulates
  ∇_w J, which is what ``TorchTrainer(adjoint=True)`` uses, and keeps J, ∇J and the predictions of
  its w so that an ``evaluate`` at the same w (MSA evaluates every iterate it sweeps) costs nothing;
- ``augmented_hamiltonian``: a_k(Θ) of E-MSA per step (the inner J_{F,x}ᵀ p̂ by a vector-Jacobian
  product with its graph kept, ∇_Θ by reverse mode, Hessians by batched reverse-over-reverse only
  when requested).

Plain autograd throughout: ``torch.func`` transforms re-trace the model on every call, measured 15×
slower than the whole Gauss-Newton product on a small problem.

On cpu, numpy inputs become tensors without a copy (``torch.as_tensor``); torch's intra-op threads
are set to ``threads`` around every call and restored afterwards.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import check_positive_int, python_scalars, spec_error
from ..problems.costs import loss_per_sample
from ._base import Engine, EngineSpec, Evaluation, StageValues, Sweep


def import_torch() -> Any:
    """torch, or a SpecError naming the ``torch`` extra when it is not installed.

    Returns
    -------
    module
        The torch module.

    Raises
    ------
    SpecError
        torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:
        raise spec_error("engine", "torch", "needs the 'torch' extra: pip install 'control_dl[torch]'") from exc
    return torch


@dataclass(frozen=True)
class Torch(EngineSpec):
    """Options of the torch engine.

    Parameters
    ----------
    device : str
        "cpu", "cuda" or "cuda:<index>".
    threads : int
        torch intra-op threads during every call (the caller's setting is restored afterwards).

    Raises
    ------
    SpecError
        A bad option; on binding, torch missing or cuda requested where no GPU is available.
    """

    device: str = "cpu"
    threads: int = 1

    name = "torch"

    def __post_init__(self) -> None:
        python_scalars(self)
        device = self.device
        if not isinstance(device, str) or not (device in ("cpu", "cuda") or device.startswith("cuda:")):
            raise spec_error("device", device, "must be 'cpu', 'cuda' or 'cuda:<index>'")
        check_positive_int("threads", self.threads)

    def bind(
        self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float | None = None, regulariser: bool = True
    ) -> TorchEngine:
        """A :class:`TorchEngine` for ``problem`` on the batch (x, y).

        Parameters
        ----------
        problem : TrainingProblem
            What to evaluate.
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.
        normaliser : float, optional
            n in J's (1/n) Σ_i (default S).
        regulariser : bool
            Include R(θ).

        Returns
        -------
        TorchEngine
            The bound engine.

        Raises
        ------
        SpecError
            torch is not installed, or ``device`` is cuda and no GPU is available.
        """
        torch = import_torch()
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise spec_error("device", self.device, "no CUDA device is available (torch.cuda.is_available() is false)")
        return TorchEngine(problem, x, y, normaliser, regulariser, self)


def device_ops(device: Any) -> Any:
    """The torch ``ops`` namespace creating its constants on ``device``.

    Parameters
    ----------
    device : torch.device
        Where new tensors (zero padding, regulariser factors) are allocated.

    Returns
    -------
    TorchOps
        ``torch_ops(device=device)``: ``asarray``, ``zeros``, ``ones`` and numpy constants on ``device``.
    """
    from ..backends import torch_ops

    return torch_ops(device=device)


def costate_pass(
    problem: Any,
    w: Any,
    x: Any,
    y: Any,
    ops: Any,
    normaliser: float | None = None,
    regulariser: bool = True,
    gradient: bool = True,
) -> tuple[Any, Any, Any, list[Any], list[Any], list[Any]]:
    r"""The discrete adjoint pass: J_batch, its loss, ∇_w J_batch, the states and the costates.

    States x_0..x_N by a forward pass without a graph, then backwards (costates p_k = −∂J/∂x_k,
    symbols as in :mod:`._base`):

        p_N = −(1/n) ∇_x [ℓ(λ2(x_N), y) + h r(x_N)],   q_k = J_{F,x}(x_k, Θ_k)ᵀ p_{k+1},
        p_k = q_k − (h/n) ∇r(x_k)  (k ≥ 1),   p_0 = q_0,
        ∇_w J = ∇_w R + Σ_k J_{F,w}(x_k, Θ_k(w))ᵀ (−p_{k+1}) + [readout and lift terms].

    For Euler this is the costate ODE p' = −∂H/∂x stepped backwards by the same scheme; for RK4 the
    recursion is RK4's symplectic partner (Hager 2000; Sanz-Serna 2016), so the gradient is exact
    for every integrator and control. One vector-Jacobian product per step; only one step's
    autograd graph is alive at a time.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    w : torch.Tensor
        Decision vector (float64).
    x, y : torch.Tensor
        Batch inputs ``n_in × S`` and encoded targets ``n_out × S``.
    ops : TorchOps
        The torch backend (on the tensors' device).
    normaliser : float, optional
        n (default S).
    regulariser : bool
        Include R(θ).
    gradient : bool
        Accumulate ∇_w J (False: the step products are taken in x only, as a sweep needs; ``grad``
        then holds the readout, lift and R terms alone).

    Returns
    -------
    tuple
        ``(J, loss, grad, states, costates, q)``: detached tensors; lists x_0..x_N, p_0..p_N, q_0..q_{N−1}.
    """
    import torch

    w = w.detach()
    n = float(x.shape[1] if normaliser is None else normaliser)
    h, running = problem.step_size, problem.cost.has_running_cost
    with torch.no_grad():
        states = list(problem.trajectory(w, x, ops))

    def readout_terms(state: Any, terminal: bool) -> tuple[Any, Any, Any, Any]:
        """Value, loss and gradients (in x and w) of the terms that read x_k directly."""
        leaf_w, leaf_x = w.clone().requires_grad_(True), state.clone().requires_grad_(True)
        readout = problem.layout.readout(leaf_w, ops)
        value = h * problem.running_cost(leaf_x, y, readout, ops) / n if running else 0.0 * leaf_x.sum()
        loss = leaf_x.new_zeros(())
        if terminal:
            loss = problem.terminal_loss(leaf_x, y, readout, ops) / n
            value = value + loss + (problem.regulariser(leaf_w, ops) if regulariser else 0.0)
        grad_x, grad_w = torch.autograd.grad(value, (leaf_x, leaf_w), allow_unused=True)
        grad_w = torch.zeros_like(w) if grad_w is None else grad_w
        grad_x = torch.zeros_like(state) if grad_x is None else grad_x
        return value.detach(), loss.detach(), grad_x, grad_w

    j, loss, dj_dx, grad = readout_terms(states[-1], terminal=True)
    costates, qs = [-dj_dx], []
    for k in range(problem.n_steps - 1, -1, -1):
        leaf_w = w.clone().requires_grad_(True) if gradient else w
        leaf_x = states[k].clone().requires_grad_(True)
        nxt = problem.step(leaf_x, problem.stage_thetas(leaf_w, k, ops), ops, k)
        if gradient:
            dj_dx, step_grad = torch.autograd.grad(nxt, (leaf_x, leaf_w), grad_outputs=dj_dx)
            grad = grad + step_grad
        else:
            (dj_dx,) = torch.autograd.grad(nxt, leaf_x, grad_outputs=dj_dx)
        qs.append(-dj_dx)
        if k > 0 and running:
            value, _, grad_x, grad_w = readout_terms(states[k], terminal=False)
            j, dj_dx, grad = j + value, dj_dx + grad_x, grad + grad_w
        costates.append(-dj_dx)
    if problem.layout.lift(w, ops):
        leaf_w = w.clone().requires_grad_(True)
        x0 = problem.lift_states(x, problem.layout.lift(leaf_w, ops), ops)
        (lift_grad,) = torch.autograd.grad(x0, leaf_w, grad_outputs=dj_dx)
        grad = grad + lift_grad
    return j, loss, grad, states, costates[::-1], qs[::-1]


class TorchEngine(Engine):
    """The torch engine bound to one problem and batch (see the module docstring).

    Parameters
    ----------
    problem : TrainingProblem
        What is evaluated.
    x, y : ndarray
        Inputs ``n_in × S`` and encoded targets ``n_out × S``.
    normaliser : float, optional
        n in J's (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ).
    spec : Torch
        Options.

    Attributes
    ----------
    info : dict
        ``name``, ``device``, ``threads`` and ``setup_s``.
    """

    name = "torch"

    def __init__(
        self,
        problem: Any,
        x: np.ndarray,
        y: np.ndarray,
        normaliser: float | None = None,
        regulariser: bool = True,
        spec: Torch | None = None,
    ) -> None:
        super().__init__(problem, x, y, normaliser, regulariser)
        import torch

        start = time.perf_counter()
        self.spec = spec or Torch()
        self.torch = torch
        self.device = torch.device(self.spec.device)
        self.ops = device_ops(self.device)
        self._x = self._tensor(self.x)
        self._y = self._tensor(self.y)
        self._swept: tuple[np.ndarray, Evaluation] | None = None  # w of the last sweep, and J, ∇J there
        self.info.update(device=str(self.device), threads=self.spec.threads, setup_s=time.perf_counter() - start)

    # ------------------------------------------------------------------------------ internals
    def _tensor(self, a: np.ndarray) -> Any:
        """A float64 tensor on the device (no copy for a float64 numpy array on cpu)."""
        return self.torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.device)

    def _numpy(self, t: Any) -> np.ndarray:
        return t.detach().cpu().numpy()

    @contextmanager
    def _threads(self) -> Iterator[None]:
        """torch's intra-op threads set to ``threads`` for the call, then restored."""
        previous = self.torch.get_num_threads()
        if previous != self.spec.threads:
            self.torch.set_num_threads(self.spec.threads)
        try:
            yield
        finally:
            if previous != self.spec.threads:
                self.torch.set_num_threads(previous)

    def _objective(self, w: Any) -> tuple[Any, Any, Any]:
        return self.problem.batch_objective(w, self._x, self._y, self.ops, self.normaliser, self.regulariser)

    def _predictions(self, w: Any) -> Any:
        problem = self.problem
        *_, final = problem.trajectory(w, self._x, self.ops)
        return problem.readout(final, problem.layout.readout(w, self.ops), self.ops)

    def _rest(self, w: Any) -> Any:
        """J_batch − loss: R (when included) and the running terms."""
        if self.problem.cost.has_running_cost:
            j, loss, _ = self._objective(w)
            return j - loss
        rest = self.problem.regulariser(w, self.ops) if self.regulariser else 0.0
        return rest + 0.0 * w.sum()  # a tensor even when R vanishes identically

    def _split(self, theta: Any) -> list[Any]:
        """Θ_k (stacked node values) back into the list of θ at the nodes that ``problem.step`` takes."""
        n_nodes = self.problem.dynamics.n_nodes
        size = theta.shape[0] // n_nodes
        return [theta[i * size : (i + 1) * size] for i in range(n_nodes)]

    # ------------------------------------------------------------------------------ interface
    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Evaluation:
        """J, the loss, ∇J (when ``gradient``: one reverse sweep) and the predictions at w.

        Parameters
        ----------
        w : ndarray
            Decision vector, shape ``(n_params,)``.
        gradient : bool
            Also compute ∇_w J.

        Returns
        -------
        Evaluation
            Values on this engine's batch.
        """
        if self._swept is not None and np.array_equal(self._swept[0], w):  # the last sweep's w
            evaluation = self._swept[1]  # copies: a caller may change its arrays in place
            return dataclasses.replace(
                evaluation,
                gradient=evaluation.gradient.copy() if gradient else None,
                predictions=evaluation.predictions.copy(),
            )
        torch = self.torch
        with self._threads():
            wt = self._tensor(w)
            if gradient:
                wt = wt.detach().requires_grad_(True)
                j, loss, yhat = self._objective(wt)
                (g,) = torch.autograd.grad(j, wt)
                grad = self._numpy(g)
            else:
                with torch.no_grad():
                    j, loss, yhat = self._objective(wt)
                grad = None
            return Evaluation(float(j.detach()), float(loss.detach()), grad, self._numpy(yhat), self.n_samples)

    def gauss_newton_product(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """G(w) v (see the module docstring).

        J_Ŷ v by the double-backward trick (the reverse product J_Ŷᵀ u is linear in u, so its
        derivative in u along v is J_Ŷ v), then the loss Hessian in the outputs and J_Ŷᵀ by reverse
        products on the same graph: plain autograd, no per-call tracing.

        Parameters
        ----------
        w : ndarray
            Decision vector, shape ``(n_params,)``.
        v : ndarray
            Direction, shape ``(n_params,)``.

        Returns
        -------
        ndarray
            G(w) v, shape ``(n_params,)``.
        """
        torch, problem, ops, n = self.torch, self.problem, self.ops, self.normaliser
        grad = torch.autograd.grad
        with self._threads():
            wt = self._tensor(w).detach().requires_grad_(True)
            vt = self._tensor(v)
            yhat = self._predictions(wt)
            u = torch.zeros_like(yhat, requires_grad=True)
            (ju,) = grad(yhat, wt, u, create_graph=True)
            (jv,) = grad(ju, u, vt)
            out = yhat.detach().requires_grad_(True)
            (lg,) = grad(ops.sum(loss_per_sample(problem.cost.loss, out, self._y, ops)) / n, out, create_graph=True)
            (hu,) = grad(lg, out, jv)
            (gv,) = grad(yhat, wt, hu)
            rest = self._rest(wt)
            if rest.requires_grad:
                (rg,) = grad(rest, wt, create_graph=True)
                if rg.requires_grad:
                    gv = gv + grad(rg, wt, vt)[0]
            return self._numpy(gv)

    def states(self, w: np.ndarray) -> list[np.ndarray]:
        """x_0, …, x_N on the batch.

        Parameters
        ----------
        w : ndarray
            Decision vector.

        Returns
        -------
        list of ndarray
            States, each ``d_k × S``.
        """
        with self._threads(), self.torch.no_grad():
            return [self._numpy(s) for s in self.problem.trajectory(self._tensor(w), self._x, self.ops)]

    def sweep(self, w: np.ndarray) -> Sweep:
        """States and costates at w by :func:`costate_pass`, which also gives J and ∇J there.

        The step products are taken in (x, w), not in x alone: that adds about a quarter to the
        sweep and makes the next :meth:`evaluate` at the same w free (measured on breast cancer,
        E-MSA: one J + ∇J less per iteration, 10.6 → 9.9 J + ∇J per iteration).

        Parameters
        ----------
        w : ndarray
            Decision vector.

        Returns
        -------
        Sweep
            x_0..x_N, p_0..p_N and q_0..q_{N−1} (``d_k × S`` arrays); ``handle`` keeps the tensors.
        """
        problem, ops = self.problem, self.ops
        with self._threads():
            wt = self._tensor(w)
            j, loss, grad, states, costates, qs = costate_pass(
                problem, wt, self._x, self._y, ops, self.normaliser, self.regulariser, True
            )
            predictions = problem.readout(states[-1], problem.layout.readout(wt, ops), ops)
        evaluation = Evaluation(
            float(j), float(loss), self._numpy(grad).copy(), self._numpy(predictions).copy(), self.n_samples
        )
        self._swept = (np.array(w, dtype=np.float64), evaluation)
        handle = {"states": states, "costates": costates, "q": qs}
        return Sweep(
            np.array(w, dtype=np.float64),
            [self._numpy(s) for s in states],
            [self._numpy(p) for p in costates],
            [self._numpy(q) for q in qs],
            handle,
        )

    def augmented_hamiltonian(
        self, sweep: Sweep, thetas: list[np.ndarray], rho: float, hessian: bool = False
    ) -> StageValues:
        """a_k(Θ_k), ∂a_k/∂Θ_k (and ∂²a_k/∂Θ_k²) for every step (see :class:`~._base.StageValues`).

        Parameters
        ----------
        sweep : Sweep
            From :meth:`sweep` of any engine (its arrays are used).
        thetas : list of ndarray
            Θ_k per step (θ at the step's integrator nodes, stacked).
        rho : float
            Penalty ρ ≥ 0 (ρ = 0: the plain Hamiltonian of MSA).
        hessian : bool
            Also return the Hessians (p_k × p_k per step).

        Returns
        -------
        StageValues
            Values ``(N,)``, gradients and (optionally) Hessians per step.
        """
        torch, problem, ops, n = self.torch, self.problem, self.ops, self.normaliser
        grad, rho = torch.autograd.grad, float(rho)
        handle = sweep.handle if isinstance(sweep.handle, dict) else {}
        if "torch_data" not in handle:
            t = self._tensor
            handle["torch_data"] = [
                (t(sweep.states[k]), n * t(sweep.costates[k + 1]), t(sweep.states[k + 1]), n * t(sweep.q[k]))
                for k in range(problem.n_steps)
            ]
        values, gradients, hessians = np.zeros(problem.n_steps), [], []
        with self._threads():
            for k, (x, p_hat, x_next, q_hat) in enumerate(handle["torch_data"]):
                theta = self._tensor(thetas[k]).reshape(-1).detach().requires_grad_(True)
                nodes = self._split(theta)
                if rho == 0.0:
                    a = (p_hat * problem.step(x, nodes, ops, k)).sum()
                else:
                    leaf = x.detach().requires_grad_(True)
                    f = problem.step(leaf, nodes, ops, k)
                    (jtp,) = grad(f, leaf, p_hat, create_graph=True)
                    gap_x, gap_p = x_next - f, q_hat - jtp
                    a = (p_hat * f).sum() - 0.5 * rho * ((gap_x * gap_x).sum() + (gap_p * gap_p).sum())
                (g,) = grad(a, theta, create_graph=hessian)
                values[k] = float(a.detach())
                gradients.append(self._numpy(g))
                if hessian:
                    eye = torch.eye(theta.shape[0], dtype=theta.dtype, device=self.device)
                    (h,) = grad(g, theta, eye, is_grads_batched=True)
                    hessians.append(self._numpy(h))
        return StageValues(values, gradients, hessians if hessian else None)
