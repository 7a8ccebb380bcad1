r"""Pontryagin training: the method of successive approximations (MSA) and extended MSA (E-MSA).

Li, Chen, Tai & E (2018), "Maximum principle based algorithms for deep learning". One iteration:

1. forward:  x_0 = λ1(x), x_{k+1} = F(x_k, Θ_k)  (F one Euler or RK4 step, the model's ``step``);
2. backward: p_N = −∇_x Φ / S (− running terms), p_k = ∇_x H_k(x_k, p_{k+1}, θ_k) with
   H_k = p_{k+1}·F(x_k, Θ_k) − (h/S) L(x_k) − R_k(θ), so that p_k = −∂J/∂x_k;
3. maximise the augmented Hamiltonian of every step (all steps in one vectorised solve)

       H̃_k(θ) = (1/S) Σ_i [ p̂_{k+1,i}·F(x_{k,i}, θ) − ρ/2 ‖x_{k+1,i} − F(x_{k,i}, θ)‖²
                            − ρ/2 ‖p̂_{k,i} − ∇_x Ĥ_k(x_{k,i}, p̂_{k+1,i}, θ)‖² ] − R_k(θ),

   with the paper's per-sample costates p̂ = S p (ρ then means the same for every batch size);
   ρ = 0 is plain MSA. For TimeInvariant / Spectral / PiecewiseLinear controls, θ is shared by the
   steps and the Hamiltonian is summed over them (one inner problem over the coefficients);
4. the readout (P, c) and a trainable lift are not controls of any step: they take an L-BFGS-B
   step on J (``inner_iters`` iterations) with θ fixed at its new value.

A feed-forward model (``model=FeedForward(...)``) runs the same iteration with its layer maps
x_{k+1} = F_k(x_k, θ_k) as the steps: the state size changes with k, so costates p_k ∈ R^{w_k} and
every layer's H̃_k is maximised over its own θ_k (:mod:`._msa_layers`); λ2 is the identity, so
there is no readout step.

Step control (beyond the paper; the successive quadratic Hamiltonian idea of Hofmann & Borzì,
with ρ acting as a proximal trust region): the update θ⁰ + α(θ_new − θ⁰) is tried for α = 1, ½, ¼
(each with its readout step) and the first α that does not increase J is taken; if none does, the
update is rejected. ρ grows, ρ ← min(max(ρ·rho_factor, rho_min), rho_max), after a rejection, after α < 1, and
when the accepted decrease of J is below 0.1 × the increase of H̃ found by the inner solve; it
shrinks, ρ ← max(ρ / rho_factor, min(ρ₀, rho_min)), when that ratio exceeds 0.5.
``adapt_rho=False`` gives the raw method of the paper (α = 1, ρ fixed, every update accepted).

The PMP residual of w is max_j ‖∂H/∂C_j‖ over the coefficient vectors (= max_k ‖∂H_k/∂θ_k‖ for a
ResNet), which equals max_j ‖∇_{C_j} J‖ since ∂H/∂θ = −∇_θ J at the current iterate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

from .._errors import spec_error
from ..engines import casadi_model
from ..problems.training import TrainingProblem
from ..result import Result
from ._hamiltonian import PontryaginFunctions
from ._msa_inner import InnerProblem, MSAFunctions
from ._msa_layers import LayerInnerProblem, LayerMSAFunctions, LayerPontryaginFunctions
from .base import Recorder, check_choice, check_positive_float, check_positive_int, make_result
from .checkpoint import check_checkpoint


@dataclass(frozen=True)
class MSA:
    """Method of successive approximations (ρ = 0) and extended MSA (ρ > 0).

    Parameters
    ----------
    rho : float
        Initial penalty ρ ≥ 0 of the augmented Hamiltonian H̃ (0: plain MSA).
    inner : {"lbfgsb", "newton", "ipopt"}
        Inner maximisation of H̃ over all steps at once: scipy L-BFGS-B, batched damped Newton
        (per-step Hessians, the fastest for ResNets; layer by layer for a feed-forward model), or
        IPOPT with exact Hessian (also enforces the problem's bound and Lipschitz constraints).
    inner_iters : int
        Iterations of the inner solver (and of the readout step).
    max_iter : int
        Outer iterations.
    batch_size : int or None
        Samples per iteration (None: full batch); batches are drawn without replacement.
    tol : float
        Converged when the PMP residual and ‖∇_{P,c,lift} J‖ are both ≤ tol.
    seed : int
        Seed of the batch sampler.
    adapt_rho : bool
        Step control: reject updates that increase J and adapt ρ.
    rho_factor : float
        Factor (> 1) by which ρ grows after a rejection and shrinks after an acceptance.
    rho_min : float
        Smallest ρ after a rejection (the step control's start when ρ = 0).
    rho_max : float
        Largest ρ the step control may reach (a cap: beyond it the penalties only amplify round-off).
    jit : bool
        JIT-compile the Hamiltonian Functions to native code (needs a C compiler).
    record_every : int
        Snapshot w every this many iterations (0: never).
    checkpoint : str, optional
        File to which w is saved every ``checkpoint_every`` iterations (resume with ``--resume``).
    checkpoint_every : int
        Checkpoint period K (0: never).
    """

    rho: float = 0.0
    inner: str = "lbfgsb"
    inner_iters: int = 10
    max_iter: int = 500
    batch_size: int | None = None
    tol: float = 1e-6
    seed: int = 0
    adapt_rho: bool = True
    rho_factor: float = 3.0
    rho_min: float = 1e-2
    rho_max: float = 1e8
    jit: bool = True
    record_every: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 0

    kind = "msa"

    def __post_init__(self) -> None:
        check_positive_float("rho", self.rho, allow_zero=True)
        check_choice("inner", self.inner, ("lbfgsb", "newton", "ipopt"))
        check_positive_int("inner_iters", self.inner_iters)
        check_positive_int("max_iter", self.max_iter, 0)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_positive_float("tol", self.tol)
        check_positive_int("seed", self.seed, 0)
        check_positive_float("rho_min", self.rho_min)
        check_positive_float("rho_factor", self.rho_factor)
        check_positive_float("rho_max", self.rho_max)
        check_checkpoint(self.checkpoint, self.checkpoint_every)
        if self.rho_max < self.rho_min:
            raise spec_error("rho_max", self.rho_max, f"must be >= rho_min={self.rho_min}")
        if self.rho_factor <= 1:
            raise spec_error("rho_factor", self.rho_factor, "must be > 1")
        for name in ("rho_factor", "rho_min", "rho_max"):  # the step control's options need the step control
            if not self.adapt_rho and getattr(self, name) != type(self).__dataclass_fields__[name].default:
                raise spec_error(name, getattr(self, name), "is an option of the step control: needs adapt_rho=true")
        for field in ("adapt_rho", "jit"):
            if not isinstance(getattr(self, field), bool):
                raise spec_error(field, getattr(self, field), "must be true or false")
        check_positive_int("record_every", self.record_every, 0)

    @property
    def name(self) -> str:
        """``msa-<inner>`` for ρ = 0, ``emsa-<inner>`` otherwise; ``-raw`` without step control."""
        return f"{'emsa' if self.rho > 0 else 'msa'}-{self.inner}{'' if self.adapt_rho else '-raw'}"

    def run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        """Train by successive approximations from w0.

        Parameters
        ----------
        problem : TrainingProblem
            The problem.
        w0 : ndarray
            Initial decision vector.
        progress : bool
            Show a progress bar.

        Returns
        -------
        Result
            ``converged`` (PMP residual ≤ tol), ``max_iter`` or ``diverged``; history entries carry
            ``pmp_residual``, ``readout_grad_norm``, ``rho``, ``accepted`` and ``step`` (the line-search α
            of the update that led to the iterate).
        """
        if problem.constraints.lipschitz is not None and self.inner != "ipopt":
            raise spec_error("inner", self.inner, "the Lipschitz constraint needs inner='ipopt'")
        # the inner problems are many tiny dense matrices: BLAS threads only cost (restored on exit)
        with threadpool_limits(limits=1, user_api="blas"):
            return self._run(problem, w0, progress)

    def _run(self, problem: TrainingProblem, w0: np.ndarray, progress: bool) -> Result:
        n_total = problem.data.x_train.shape[1]
        n_batch = n_total if self.batch_size is None else min(self.batch_size, n_total)
        shared, make_inner = _compiled(problem, n_batch, self.jit)
        sampler = _BatchSampler(n_total, n_batch, self.seed)
        recorder = Recorder(
            problem,
            self.max_iter,
            progress,
            self.record_every,
            desc=self.name,
            checkpoint=self.checkpoint,
            checkpoint_every=self.checkpoint_every,
        )
        n_theta = problem.layout.n_theta
        w, rho, accepted, step = w0.copy(), float(self.rho), True, 1.0
        status, message, it = "max_iter", f"reached max_iter={self.max_iter}", 0
        while True:
            if accepted or sampler.n_batch < sampler.n_total:  # after a rejection w and the batch are unchanged
                x_in, y = sampler.batch(problem)
                sweep = shared.pf.states_costates(w, x_in, y)
                j_batch, grad = casadi_model(problem).objective_gradient(w, x_in, y)
                objective, loss = casadi_model(problem).objective(w, problem.data.x_train, problem.targets)
            inner = make_inner(shared, *sweep, w[:n_theta], rho)
            start = inner.evaluate(w[:n_theta], hessian=self.inner == "newton")
            residual = float(inner.block_norms(start.grad).max())
            readout_norm = float(np.linalg.norm(grad[n_theta:]))
            recorder.log(
                it,
                w,
                objective,
                loss,
                pmp_residual=residual,
                readout_grad_norm=readout_norm,
                rho=rho,
                accepted=accepted,
                step=step,
            )
            if not (math.isfinite(objective) and math.isfinite(residual)):
                status, message = "diverged", f"non-finite objective or residual at iteration {it}"
                break
            if max(residual, readout_norm) <= self.tol:
                status, message = "converged", f"PMP residual {residual:.2e} <= tol={self.tol:g}"
                break
            if it >= self.max_iter:
                break
            it += 1
            c_new, value = self._maximise(inner, start, problem)
            candidate, j_new, step = self._line_search(problem, shared, w, c_new, x_in, y, j_batch)
            accepted = not self.adapt_rho or (math.isfinite(j_new) and j_new <= j_batch)
            if accepted:
                w = candidate
            if self.adapt_rho:
                ratio = (j_batch - j_new) / max(start.values.sum() - value, 1e-300) if step == 1.0 else 0.0
                rho = self._next_rho(rho, accepted, ratio)
        return make_result(problem, self, w, status, message, recorder, it)

    def _line_search(
        self,
        problem: TrainingProblem,
        shared: Any,
        w: np.ndarray,
        c_new: np.ndarray,
        x_in: np.ndarray,
        y: np.ndarray,
        j_old: float,
    ) -> tuple[np.ndarray, float, float]:
        """θ = θ⁰ + α (θ_new − θ⁰) for α = 1, ½, ¼ (only α = 1 without step control), each with the
        readout step; the first α that does not increase J wins. Returns (w, J(w), α)."""
        n_theta = problem.layout.n_theta
        for alpha in (1.0, 0.5, 0.25) if self.adapt_rho else (1.0,):
            candidate = w.copy()
            candidate[:n_theta] = w[:n_theta] + alpha * (c_new - w[:n_theta])
            candidate, j_new = _readout_step(problem, shared, candidate, x_in, y, self.inner_iters)
            if math.isfinite(j_new) and j_new <= j_old:
                break
        return candidate, j_new, alpha

    def _next_rho(self, rho: float, accepted: bool, ratio: float) -> float:
        """Trust-region style update from ratio = actual decrease of J / decrease of −H̃."""
        if not accepted or ratio < 0.1:
            return min(max(rho * self.rho_factor, self.rho_min), self.rho_max)
        if ratio > 0.5:
            return max(rho / self.rho_factor, min(self.rho, self.rho_min))
        return rho

    def _maximise(self, inner: InnerProblem, start: Any, problem: TrainingProblem) -> tuple[np.ndarray, float]:
        bound = problem.constraints.theta_max
        if self.inner == "newton":
            return inner.newton(start, self.inner_iters, bound)
        if self.inner == "lbfgsb":
            return inner.lbfgsb(self.inner_iters, bound)
        return inner.ipopt(self.inner_iters)


def _compiled(problem: TrainingProblem, n_batch: int, jit: bool) -> tuple[Any, type]:
    """The compiled Functions of one solve and the class of its inner problems: all steps batched for
    a flow (ResNet), one layer at a time for a feed-forward model (the layers' sizes differ)."""
    if problem.model is None:
        return MSAFunctions(problem, PontryaginFunctions(problem, n_batch), jit), InnerProblem
    return LayerMSAFunctions(problem, LayerPontryaginFunctions(problem, n_batch), jit), LayerInnerProblem


def _readout_step(
    problem: TrainingProblem, shared: Any, w: np.ndarray, x_in: np.ndarray, y: np.ndarray, iters: int
) -> tuple[np.ndarray, float]:
    """L-BFGS-B on J over the readout (P, c) and a trainable lift, θ fixed; returns (w, J(w)).

    With the fixed zero-padding lift the states do not depend on the readout: one forward pass,
    then L-BFGS-B on the cost of those states as a function of (P, c) only. A trainable lift moves
    the states, so J and its gradient come from the full model.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    shared : MSAFunctions or LayerMSAFunctions
        Compiled Functions of this solve.
    w : ndarray
        Decision vector with the new θ.
    x_in, y : ndarray
        Batch.
    iters : int
        L-BFGS-B iterations.

    Returns
    -------
    tuple
        w with the readout (and lift) block updated, and J on the batch there (NaN if not finite).
    """
    n_theta = problem.layout.n_theta
    if not np.all(np.isfinite(w)):
        return w, math.nan
    if problem.layout.n_params == n_theta:  # feed-forward: λ2 is the identity, nothing to update
        j = casadi_model(problem).objective(w, x_in, y)[0]
        return w, j if math.isfinite(j) else math.nan
    if problem.layout.affine_lift:

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            j, g = casadi_model(problem).objective_gradient(np.concatenate([w[:n_theta], z]), x_in, y)
            return j, g[n_theta:]

        offset = 0.0
    else:
        states = np.asarray(shared.pf.forward(w, x_in))

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            j, g = shared.pf.readout_objective(z, states, y)
            return float(j), np.asarray(g, dtype=float).ravel()

        offset = float(shared.reg_vg(w[:n_theta])[0])
    if not math.isfinite(fun(w[n_theta:])[0]):
        return w, math.nan
    res = optimize.minimize(fun, w[n_theta:], jac=True, method="L-BFGS-B", options={"maxiter": iters})
    return np.concatenate([w[:n_theta], res.x]), float(res.fun) + offset


class _BatchSampler:
    """Mini-batches without replacement from a local generator (the whole set when full)."""

    def __init__(self, n_total: int, n_batch: int, seed: int) -> None:
        self.n_total, self.n_batch = n_total, n_batch
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(n_total)
        self.pos = n_total

    def batch(self, problem: TrainingProblem) -> tuple[np.ndarray, np.ndarray]:
        if self.n_batch == self.n_total:
            return problem.data.x_train, problem.targets
        if self.pos + self.n_batch > self.n_total:
            self.order, self.pos = self.rng.permutation(self.n_total), 0
        idx = self.order[self.pos : self.pos + self.n_batch]
        self.pos += self.n_batch
        return problem.data.x_train[:, idx], problem.targets[:, idx]
