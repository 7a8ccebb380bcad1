r"""The inner maximisation of MSA / E-MSA: max_θ H̃(θ) for fixed states and costates.

The decision vector is c = the θ block of w (coefficients C_0, …, C_{n-1}); each integrator step
uses Θ_k = (B_k ⊗ I_p) c, with B the control's basis weights at the step's nodes. We minimise

    φ(c) = R̂(c) − (1/S) Σ_k Σ_i a(x_{k,i}, p̂_{k+1,i}, x_{k+1,i}, q̂_{k,i}, Θ_k)      (= −H̃),

all layers at once. For :class:`PiecewiseConstant` the layers' problems are independent given
(x, p): φ = Σ_k φ_k(θ_k), so one solve over c gives every layer's maximiser. The regulariser is
split per step by fixing each step's neighbours at their current values c⁰ (Jacobi):
R̂(c) = Σ_k R(c⁰ + e_k ⊗ (θ_k − θ⁰_k)) + const, which equals R for L2 and L1 (separable) and
drops the H1 coupling between steps: with R quadratic plus block-separable,
R̂(c) = R(c) − ½ δᵀ H_off δ, δ = c − c⁰, H_off the off-diagonal blocks of ∇²R. Other controls
(TimeInvariant, Spectral, PiecewiseLinear) form a single block: the Hamiltonian summed over the
steps, R unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from scipy import optimize, sparse

from ..backends import casadi_ops
from ..problems.controls import PiecewiseConstant
from ..problems.lipschitz import constraint_limit


def _stack(a: np.ndarray) -> np.ndarray:
    """``(N, d, S)`` -> ``d × (N·S)``, step-major columns (the layout of the mapped Functions)."""
    return np.concatenate(list(a), axis=1)


@dataclass
class Evaluation:
    """φ per block, its gradient and (optionally) per-block Hessians at one c (an array of equal blocks,
    or a list of per-layer Hessians of a feed-forward model)."""

    c: np.ndarray
    values: np.ndarray
    grad: np.ndarray
    hess: np.ndarray | list[np.ndarray] | None = None


def damped_newton(
    evaluate: Callable[[np.ndarray], Evaluation], start: Evaluation, iters: int, bounds: float | None
) -> tuple[np.ndarray, float]:
    """Batched damped Newton (Levenberg-Marquardt per block) on independent blocks at once.

    Each block's Hessian is made positive definite by taking absolute eigenvalues, plus a
    damping μ_b that grows ×10 when the block's φ_b does not decrease and shrinks ÷3 when it does.

    Parameters
    ----------
    evaluate : callable
        c -> Evaluation with Hessians ``(n_blocks, m, m)`` (blocks of equal size m).
    start : Evaluation
        Evaluation (with Hessians) at c⁰.
    iters : int
        Newton iterations.
    bounds : float or None
        |θ| ≤ M (steps are projected).

    Returns
    -------
    tuple
        The new c and φ there (up to the constant of ``evaluate``).
    """
    n_blocks = start.hess.shape[0]
    cur = start
    m = cur.hess.shape[1]
    mu = np.zeros(n_blocks)
    for _ in range(iters):
        eigval, eigvec = np.linalg.eigh(cur.hess)
        scale = np.maximum(np.abs(eigval), 1e-10 * np.abs(eigval).max(axis=1, keepdims=True) + 1e-14)
        g = cur.grad.reshape(n_blocks, m)
        coords = np.einsum("bji,bj->bi", eigvec, g) / (scale + mu[:, None])
        step = -np.einsum("bij,bj->bi", eigvec, coords).ravel()
        trial_c = cur.c + step
        if bounds is not None:
            trial_c = np.clip(trial_c, -bounds, bounds)
        trial = evaluate(trial_c)
        ok = np.isfinite(trial.values) & (trial.values < cur.values)
        mu = np.where(ok, mu / 3.0, np.maximum(10.0 * mu, 1e-3 * np.abs(eigval).max(axis=1)))
        keep = np.repeat(ok, m)
        cur = Evaluation(
            np.where(keep, trial.c, cur.c),
            np.where(ok, trial.values, cur.values),
            np.where(keep, trial.grad, cur.grad),
            np.where(ok[:, None, None], trial.hess, cur.hess),
        )
    return cur.c, float(cur.values.sum())


def _absolute_inverse(hessians: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """v -> |H_b|⁻¹ v_b per block b (eigenvalues by absolute value, floored at 1e-10 of the largest)."""
    eigval, eigvec = np.linalg.eigh(hessians)
    scale = np.maximum(np.abs(eigval), 1e-10 * np.abs(eigval).max(axis=1, keepdims=True) + 1e-14)
    m = hessians.shape[1]

    def apply(v: np.ndarray) -> np.ndarray:
        coords = np.einsum("bji,bj->bi", eigvec, v.reshape(-1, m)) / scale
        return np.einsum("bij,bj->bi", eigvec, coords).ravel()

    return apply


def quasi_newton_step(
    start: Evaluation, pairs: list[tuple[np.ndarray, np.ndarray]], bounds: float | None
) -> tuple[np.ndarray, float]:
    r"""One Newton step on every block's φ_b = −H̃_b, coupled across the blocks by L-BFGS memory.

    The E-MSA step with one Newton iteration is d = −M⁻¹ g, M = blockdiag(|∇²φ_b|) (the layers'
    augmented-Hamiltonian Hessians, eigenvalues by absolute value) and g = ∇φ(c⁰) = ∇_θ J (the
    costate gradient). It ignores how a change of θ_k moves the states, costates and Hamiltonians of
    the other layers. The two-loop recursion of L-BFGS (Nocedal & Wright 2006, Algorithm 7.4) with
    M as the initial matrix adds that coupling from secant pairs (s, y) of earlier accepted steps,
    s = θ⁺ − θ, y = ∇_θ J(θ⁺) − ∇_θ J(θ). Without pairs this is the E-MSA Newton step.

    Parameters
    ----------
    start : Evaluation
        Evaluation with Hessians at c⁰: an array ``(n_blocks, m, m)`` or a list of per-layer
        ``(1, m_k, m_k)`` arrays.
    pairs : list of tuple of ndarray
        Secant pairs (s, y), oldest first, each with sᵀy > 0.
    bounds : float or None
        |θ| ≤ M (the step is projected).

    Returns
    -------
    tuple
        The new c and the value φ(c⁰) − ½ |gᵀd| that a quadratic model with the L-BFGS matrix predicts.
    """
    if isinstance(start.hess, list):
        inverses = [_absolute_inverse(h) for h in start.hess]
        sizes = np.cumsum([0, *(h.shape[1] for h in start.hess)])

        def h0_inv(v: np.ndarray) -> np.ndarray:
            return np.concatenate([inv(v[a:b]) for inv, a, b in zip(inverses, sizes[:-1], sizes[1:], strict=True)])

    else:
        h0_inv = _absolute_inverse(start.hess)
    g = start.grad
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        alphas.append((s @ q) / (y @ s))
        q -= alphas[-1] * y
    r = h0_inv(q)
    for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
        r += s * (alpha - (y @ r) / (y @ s))
    if not g @ r > 0:  # round-off made the memory's direction uphill: fall back to the E-MSA step
        r = h0_inv(g)
    c = start.c - r
    if bounds is not None:
        c = np.clip(c, -bounds, bounds)
    return c, float(start.values.sum()) - 0.5 * abs(float(g @ r))


class InnerSolvers(ABC):
    """Solvers of min_c φ(c) that need only ``evaluate(c)`` and the start ``c0``."""

    c0: np.ndarray

    @abstractmethod
    def evaluate(self, c: np.ndarray, hessian: bool = False) -> Evaluation:
        """φ per block and ∇φ at c (implemented by the inner problems)."""

    def lbfgsb(self, iters: int, bounds: float | None) -> tuple[np.ndarray, float]:
        """One scipy L-BFGS-B over all blocks (the sum of the blocks' φ_b).

        Parameters
        ----------
        iters : int
            L-BFGS-B iterations.
        bounds : float or None
            |θ| ≤ M.

        Returns
        -------
        tuple
            The new θ block and φ there.
        """

        def fun(c: np.ndarray) -> tuple[float, np.ndarray]:
            ev = self.evaluate(c)
            return float(ev.values.sum()), ev.grad

        box = None if bounds is None else [(-bounds, bounds)] * self.c0.size
        res = optimize.minimize(fun, self.c0, jac=True, method="L-BFGS-B", bounds=box, options={"maxiter": iters})
        return np.asarray(res.x, dtype=float), float(res.fun)


class InnerProblem(InnerSolvers):
    """min_c φ(c) = −H̃ for fixed states X, costates P and q (see the module docstring).

    Parameters
    ----------
    shared : MSAFunctions
        Compiled Functions of the problem (``_hamiltonian`` plus the regulariser).
    states, costates, qs : ndarray
        X, P ``(N + 1, d, S)`` and Q ``(N, d, S)`` from the sweep.
    c0 : ndarray
        Current θ block c⁰.
    rho : float
        Penalty ρ ≥ 0.
    """

    def __init__(
        self, shared: Any, states: np.ndarray, costates: np.ndarray, qs: np.ndarray, c0: np.ndarray, rho: float
    ):
        self.shared = shared
        s = states.shape[2]
        self.scale = 1.0 / s
        self.args = [_stack(states[:-1]), _stack(s * costates[1:]), _stack(states[1:]), _stack(s * qs)]
        self.c0 = c0
        self.rho = float(rho)
        self.n_blocks = shared.n_blocks

    # --------------------------------------------------------------------------- evaluation
    def evaluate(self, c: np.ndarray, hessian: bool = False) -> Evaluation:
        """φ per block, ∇φ and (with ``hessian``) the per-block Hessians at c.

        Parameters
        ----------
        c : ndarray
            θ block.
        hessian : bool
            Also return Hessians, shape ``(n_blocks, m, m)``.

        Returns
        -------
        Evaluation
            Values per block (summing to φ(c) up to a constant), gradient, Hessians.
        """
        sh = self.shared
        theta = sh.stage_thetas(c)
        fn = sh.pf_vgh if hessian else sh.pf_vg
        out = fn(*self.args, theta, self.rho)
        a = -self.scale * np.asarray(out[0]).ravel()
        grad = -self.scale * sh.to_coefficients(np.asarray(out[1]))
        delta = c - self.c0
        r_value, r_grad = sh.reg_vg(c)
        grad = grad + np.asarray(r_grad).ravel() - sh.h_off @ delta
        hess = None
        if hessian:
            hess = -self.scale * sh.hessian_blocks(np.asarray(out[2])) + sh.reg_hess_blocks(c)
        if self.n_blocks == 1:
            values = np.array([a.sum() + float(r_value) - 0.5 * delta @ (sh.h_off @ delta)])
        else:
            values = a + sh.reg_block_values(c, self.c0)
        return Evaluation(c, values, grad, hess)

    def block_norms(self, grad: np.ndarray) -> np.ndarray:
        """‖∂φ/∂C_j‖ per coefficient C_j (per layer for a ResNet)."""
        return np.linalg.norm(grad.reshape(-1, self.shared.p), axis=1)

    # ------------------------------------------------------------------------------ solvers
    def newton(self, start: Evaluation, iters: int, bounds: float | None) -> tuple[np.ndarray, float]:
        """Batched damped Newton on all blocks at once (see :func:`damped_newton`).

        Parameters
        ----------
        start : Evaluation
            Evaluation (with Hessians) at c⁰.
        iters : int
            Newton iterations.
        bounds : float or None
            |θ| ≤ M (steps are projected).

        Returns
        -------
        tuple
            The new θ block and φ there (up to the constant of ``evaluate``).
        """
        return damped_newton(lambda c: self.evaluate(c, hessian=True), start, iters, bounds)

    def ipopt(self, iters: int) -> tuple[np.ndarray, float]:
        """IPOPT (exact Hessian) over all blocks, with the problem's bounds and Lipschitz constraints.

        Parameters
        ----------
        iters : int
            IPOPT iterations.

        Returns
        -------
        tuple
            The new θ block (the last iterate if IPOPT stops early) and φ there.
        """
        solver, bounds = self.shared.ipopt_solver(iters)
        params = np.concatenate([*(a.ravel(order="F") for a in self.args), self.c0, [self.rho]])
        sol = solver(x0=self.c0, p=params, **bounds)
        c = np.asarray(sol["x"], dtype=float).ravel()
        return c, float(self.evaluate(c).values.sum())


class MSAFunctions:
    """Compiled Functions shared by every inner problem of one solve (batch size fixed).

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    pf : PontryaginFunctions
        Sweep and stage Functions for this batch size.
    jit : bool
        JIT-compile the stage Functions (falls back to the interpreted ones if compiling fails).
    """

    def __init__(self, problem: Any, pf: Any, jit: bool) -> None:
        from ..engines._jit import compile_if
        from ._hamiltonian import regulariser_functions

        self.problem, self.pf = problem, pf
        lay = problem.layout
        self.p, self.n_coeffs, self.n_steps = lay.p, lay.n_coeffs, problem.n_steps
        self.weights = problem.stage_weights  # (N, nodes, n_coeffs)
        self.n_nodes = self.weights.shape[1]
        self.per_step = isinstance(problem.control, PiecewiseConstant)
        self.n_blocks = self.n_steps if self.per_step else 1
        self.pf_vg = compile_if(pf.stage_vg, jit)
        self.pf_vgh = compile_if(pf.stage_vgh, jit)
        self.forward = compile_if(pf.forward, jit)
        self.readout = compile_if(pf.readout_objective, jit)
        reg_vg, reg_blocks, reg_hess = regulariser_functions(problem, self.n_blocks)
        self.reg_vg, self._reg_blocks = reg_vg, reg_blocks
        self._reg_map = reg_vg.map("reg_map", "serial", self.n_blocks, [], [])
        hess0 = np.asarray(ca.densify(reg_hess(np.zeros(lay.n_theta))))
        self.h_off_dense = hess0 - self._block_diagonal_dense(hess0)
        self.h_off = sparse.csr_matrix(self.h_off_dense)
        self._ipopt: dict[int, Any] = {}

    def stage_thetas(self, c: np.ndarray) -> np.ndarray:
        """Θ_k for every step as the ``(nodes·p) × N`` matrix the stage Functions take."""
        coeffs = c.reshape(self.n_coeffs, self.p)
        theta = np.einsum("kmj,jp->kmp", self.weights, coeffs)
        return theta.reshape(self.n_steps, -1).T

    def to_coefficients(self, g_theta: np.ndarray) -> np.ndarray:
        """Chain rule Θ_k -> c for a gradient ``(nodes·p) × N``."""
        g = g_theta.T.reshape(self.n_steps, self.n_nodes, self.p)
        return np.einsum("kmj,kmp->jp", self.weights, g).ravel()

    def hessian_blocks(self, h_theta: np.ndarray) -> np.ndarray:
        """Chain rule for the stacked stage Hessians ``(nodes·p) × (nodes·p·N)`` -> per-block Hessians."""
        m = self.n_nodes * self.p
        h = h_theta.reshape(m, self.n_steps, m).transpose(1, 0, 2)
        h = h.reshape(self.n_steps, self.n_nodes, self.p, self.n_nodes, self.p)
        if self.per_step:
            return h.sum(axis=(1, 3))
        full = np.einsum("kmj,kmanb,knl->jalb", self.weights, h, self.weights)
        size = self.n_coeffs * self.p
        return full.reshape(1, size, size)

    def _block_diagonal_dense(self, h: np.ndarray) -> np.ndarray:
        mask = np.kron(np.eye(self.n_blocks), np.ones((h.shape[0] // self.n_blocks,) * 2))
        return h * mask

    def reg_hess_blocks(self, c: np.ndarray) -> np.ndarray:
        """Diagonal blocks of ∇²R(c), shape ``(n_blocks, m, m)``."""
        h = np.asarray(self._reg_blocks(c))
        m = h.shape[0]
        return h.reshape(m, self.n_blocks, m).transpose(1, 0, 2)

    def reg_block_values(self, c: np.ndarray, c0: np.ndarray) -> np.ndarray:
        """R(c⁰ + e_k ⊗ (θ_k − θ⁰_k)) for every step k (the Jacobi split of R)."""
        cols = np.tile(c0[:, None], (1, self.n_blocks))
        m = self.p
        for b in range(self.n_blocks):
            cols[b * m : (b + 1) * m, b] = c[b * m : (b + 1) * m]
        return np.asarray(self._reg_map(cols)[0]).ravel()

    def ipopt_solver(self, iters: int) -> tuple[Any, dict[str, np.ndarray]]:
        """An IPOPT nlpsol for φ with parameters (X, P̂, X⁺, Q̂, c⁰, ρ), and its bounds (cached per ``iters``)."""
        if iters in self._ipopt:
            return self._ipopt[iters]
        problem, lay = self.problem, self.problem.layout
        d, cols = problem.dim, self.n_steps * self.pf.n_samples
        c = ca.MX.sym("c", lay.n_theta)
        data = [ca.MX.sym(name, d, cols) for name in ("x", "p_next", "x_next", "q")]
        c0 = ca.MX.sym("c0", lay.n_theta)
        rho = ca.MX.sym("rho")
        basis = np.kron(self.weights.reshape(self.n_steps * self.n_nodes, self.n_coeffs), np.eye(self.p))
        theta = ca.reshape(ca.mtimes(ca.sparsify(ca.DM(basis)), c), self.n_nodes * self.p, self.n_steps)
        a = ca.sum2(self.pf.stage_vg(*data, theta, rho)[0]) / self.pf.n_samples
        w = ca.vertcat(c, ca.MX.zeros(lay.n_params - lay.n_theta))
        delta = c - c0
        f = problem.regulariser(w, casadi_ops) - 0.5 * ca.bilin(ca.sparsify(ca.DM(self.h_off_dense)), delta, delta) - a
        g = ca.vertcat(*problem.step_lipschitz_sq(w, casadi_ops)) if problem.constraints.lipschitz else ca.MX(0, 1)
        nlp = {"x": c, "p": ca.vertcat(*(ca.vec(v) for v in data), c0, rho), "f": f, "g": g}
        opts = {"ipopt": {"max_iter": iters, "print_level": 0, "sb": "yes"}, "print_time": False}
        solver = ca.nlpsol("msa_inner", "ipopt", nlp, opts)
        bound = problem.constraints.theta_max
        lim = np.inf if bound is None else bound
        bounds = {
            "lbx": np.full(lay.n_theta, -lim),
            "ubx": np.full(lay.n_theta, lim),
            "lbg": np.full(g.shape[0], -np.inf),
            "ubg": np.full(g.shape[0], constraint_limit(problem) ** 2 if g.shape[0] else 0.0),
        }
        self._ipopt[iters] = (solver, bounds)
        return self._ipopt[iters]
