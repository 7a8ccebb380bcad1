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
4. the readout (P, c) is not the control of any step: with θ at its new value and the states
   x_N fixed, J is a convex function of (P, c) (an affine map into a convex loss), minimised exactly
   by damped Newton (``readout="exact"``, the default; one step for MSE: linear least squares).
   So every iterate is a variable-projection iterate (Golub & Pereyra 1973): J̄(θ) = min_{P,c} J,
   and ∇_θ J̄ = ∇_θ J there (the envelope theorem), which the costates still give. ``readout="lbfgsb"``
   takes ``inner_iters`` L-BFGS-B iterations on (P, c) instead (the inexact update measured below);
   a trainable lift always takes that L-BFGS-B step, jointly with the readout.

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

Why the exact readout (measured on the sin toy, ``load_problem("sin")``, 1 thread, see
``docs/benchmarks/msa.md``): with the inexact L-BFGS-B readout step, ‖∇_{P,c} J‖ stays at 1e-3–1e-2,
every θ update is computed against a readout that lags behind, the line search shortens the steps
and ρ climbs to 10–100; E-MSA then creeps (J = 5e-3 after 400 iterations, 27 s, where Adam reaches
9.5e-4 in 10 000 steps). With the readout solved exactly the same Hamiltonian steps reach 9.5e-4 in
~0.5 s and J ≈ 2e-5 later.

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
from ._msa_inner import InnerProblem, MSAFunctions, quasi_newton_step
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
        Iterations of the inner solver (and of the L-BFGS-B readout step).
    readout : {"exact", "lbfgsb"}
        Readout update after each θ update: "exact" minimises J over (P, c) for the fixed states by
        damped Newton (variable projection; J is convex in (P, c)), "lbfgsb" takes ``inner_iters``
        L-BFGS-B iterations. A trainable lift always takes the L-BFGS-B step.
    memory : int
        Quasi-Newton coupling of the layers (0: off, the paper's simultaneous maximisations): the
        one-Newton-step maximisation of every layer's H̃ is corrected by the last ``memory`` secant
        pairs of the costate gradients ∇_θ J = −∂H/∂θ (:func:`._msa_inner.quasi_newton_step`).
        Needs ``inner="newton"``, ``inner_iters=1`` and full batches.
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
    readout: str = "exact"
    memory: int = 0
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
        check_choice("readout", self.readout, ("exact", "lbfgsb"))
        check_positive_int("memory", self.memory, 0)
        if self.memory and (self.inner != "newton" or self.inner_iters != 1 or self.batch_size is not None):
            raise spec_error(
                "memory",
                self.memory,
                "the quasi-Newton coupling takes one Newton step per iteration on full batches: "
                f"needs inner='newton', inner_iters=1, batch_size=None (got {self.inner!r}, "
                f"{self.inner_iters}, {self.batch_size})",
            )
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
        """``msa-<inner>`` for ρ = 0, ``emsa-<inner>`` otherwise; ``-qn<memory>`` with quasi-Newton
        coupling, ``-lbfgsb-readout`` with the inexact readout, ``-raw`` without step control."""
        base = f"{'emsa' if self.rho > 0 else 'msa'}-{self.inner}"
        qn = f"-qn{self.memory}" if self.memory else ""
        readout = "-lbfgsb-readout" if self.readout == "lbfgsb" else ""
        return f"{base}{qn}{readout}{'' if self.adapt_rho else '-raw'}"

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
        pairs: list[tuple[np.ndarray, np.ndarray]] = []  # secant pairs of the quasi-Newton coupling
        last: tuple[np.ndarray, np.ndarray] | None = None  # (s, ∇_θ J) of the last accepted step
        status, message, it = "max_iter", f"reached max_iter={self.max_iter}", 0
        while True:
            if accepted or sampler.n_batch < sampler.n_total:  # after a rejection w and the batch are unchanged
                x_in, y = sampler.batch(problem)
                sweep = shared.pf.states_costates(w, x_in, y)
                j_batch, grad = casadi_model(problem).objective_gradient(w, x_in, y)
                objective, loss = casadi_model(problem).objective(w, problem.data.x_train, problem.targets)
            inner = make_inner(shared, *sweep, w[:n_theta], rho)
            start = inner.evaluate(w[:n_theta], hessian=self.inner == "newton")
            if self.memory and accepted and last is not None:
                s_k, y_k = last[0], start.grad - last[1]
                if s_k @ y_k > 1e-10 * np.linalg.norm(s_k) * np.linalg.norm(y_k):  # curvature condition
                    pairs = [*pairs, (s_k, y_k)][-self.memory :]
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
            c_new, value = self._maximise(inner, start, problem, pairs)
            candidate, j_new, step = self._line_search(problem, shared, w, c_new, x_in, y, j_batch)
            accepted = not self.adapt_rho or (math.isfinite(j_new) and j_new <= j_batch)
            if accepted:
                last = (candidate[:n_theta] - w[:n_theta], start.grad)
                w = candidate
            else:  # the memory's model failed: restart it from the E-MSA step
                pairs, last = [], None
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
            candidate, j_new = _readout_step(problem, shared, candidate, x_in, y, self.inner_iters, self.readout)
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

    def _maximise(
        self, inner: InnerProblem, start: Any, problem: TrainingProblem, pairs: list[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, float]:
        bound = problem.constraints.theta_max
        if self.memory:
            return quasi_newton_step(start, pairs, bound)
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
    problem: TrainingProblem, shared: Any, w: np.ndarray, x_in: np.ndarray, y: np.ndarray, iters: int, readout: str
) -> tuple[np.ndarray, float]:
    """Update the readout (P, c) and a trainable lift with θ fixed; returns (w, J(w)).

    With the fixed zero-padding lift the states do not depend on the readout: one forward pass,
    then the cost of those states is minimised as a function of (P, c) only, exactly by
    :func:`_readout_newton` or by ``iters`` L-BFGS-B iterations. A trainable lift moves the states,
    so J and its gradient come from the full model and L-BFGS-B runs over (P, c, lift).

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
    readout : {"exact", "lbfgsb"}
        How (P, c) are updated for a fixed lift.

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
        states = np.asarray(shared.forward(w, x_in))
        offset = float(shared.reg_vg(w[:n_theta])[0])
        if readout == "exact":
            z, j = _readout_newton(lambda z: shared.readout(z, states, y), w[n_theta:])
            return np.concatenate([w[:n_theta], z]), j + offset if math.isfinite(j) else math.nan

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            j, g, _ = shared.readout(z, states, y)
            return float(j), np.asarray(g, dtype=float).ravel()

    if not math.isfinite(fun(w[n_theta:])[0]):
        return w, math.nan
    res = optimize.minimize(fun, w[n_theta:], jac=True, method="L-BFGS-B", options={"maxiter": iters})
    return np.concatenate([w[:n_theta], res.x]), float(res.fun) + offset


def _readout_newton(fun: Any, z: np.ndarray, max_iter: int = 20) -> tuple[np.ndarray, float]:
    """Minimise a convex J(z) (the cost of fixed states as a function of the readout z = (P, c)).

    Damped Newton: z ← z + α s with H s = −g solved in the least-squares sense (H is singular when
    the final states do not span R^d), halving α until J decreases by at least ¼ α |g·s|
    (Armijo); stops when the Newton decrement −g·s is below 1e-15 (1 + |J|). For MSE J is
    quadratic in z and the first step is the linear least-squares solution.

    Parameters
    ----------
    fun : callable
        z -> (J, ∇J, ∇²J) as CasADi DMs.
    z : ndarray
        Start (the current readout).
    max_iter : int
        Newton iterations.

    Returns
    -------
    tuple
        The minimiser and J there (NaN if J is not finite at the start).
    """
    j, g, h = (np.asarray(v, dtype=float) for v in fun(z))
    j, g = j.item(), g.ravel()
    if not math.isfinite(j):
        return z, math.nan
    for _ in range(max_iter):
        step = -np.linalg.lstsq(h, g, rcond=None)[0]
        decrement = -float(g @ step)
        if not decrement > 1e-15 * (1.0 + abs(j)):  # also catches a non-descent step from round-off
            break
        alpha = 1.0
        while alpha > 1e-10:
            trial = [np.asarray(v, dtype=float) for v in fun(z + alpha * step)]
            if trial[0].item() <= j - 0.25 * alpha * decrement:
                break
            alpha *= 0.5
        else:
            break
        z = z + alpha * step
        j, g, h = trial[0].item(), trial[1].ravel(), trial[2]
    return z, j


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
