r"""The inner maximisation of MSA / E-MSA: max_θ H̃(θ) for fixed states and costates.

The decision vector is c = the θ block of w. A flow (ResNet) step k uses Θ_k = (B_k ⊗ I_p) c (θ at
the integrator nodes, B the control's basis weights there); a feed-forward layer k uses its own
slice θ_k of c. With the engine's per-step terms a_k of the augmented Hamiltonian
(:meth:`~control_dl.engines.Engine.augmented_hamiltonian`, summed over the n samples with the
paper's per-sample costates p̂ = n p) we minimise

    φ(c) = R̂(c) − (1/n) Σ_k a_k(Θ_k(c))      (= −H̃),

all steps at once. Given (x, p) the steps' problems are independent when every block of c feeds
one step (:class:`~control_dl.PiecewiseConstant` flows, feed-forward layers): φ = Σ_b φ_b(c_b), so
one solve over c gives every layer's maximiser. The regulariser is split per block by fixing the
other blocks at their current values c⁰ (Jacobi): R̂(c) = Σ_b R(c⁰ + e_b ⊗ (c_b − c⁰_b)) + const,
which equals R for L2 and L1 (separable) and drops the H1 coupling between steps: with R quadratic
plus block-separable, R̂(c) = R(c) − ½ δᵀ H_off δ, δ = c − c⁰, H_off the off-diagonal blocks of ∇²R.
Other controls (TimeInvariant, Spectral, PiecewiseLinear) form a single block: the Hamiltonian
summed over the steps, R unchanged.

Inner solvers: batched damped Newton on the blocks' Hessians (:func:`damped_newton`), the
quasi-Newton-coupled Newton step (:func:`quasi_newton_step`), one L-BFGS-B over all blocks (cost
linear in the size of θ_k: for wide layers) and IPOPT (bounds and Lipschitz constraints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from scipy import optimize, sparse

from ..backends import casadi_ops
from ..engines import Engine, Sweep, casadi_model
from ..engines._casadi_model import stage_functions, sum_over_samples
from ..engines._jit import compile_function
from ..problems.controls import PiecewiseConstant
from ..problems.lipschitz import constraint_limit

#: Largest block (entries of θ_k) for which ``inner="auto"`` takes batched Newton (dense m × m
#: Hessians: memory and time grow with m²); larger blocks take L-BFGS-B.
NEWTON_MAX_BLOCK = 200


def outside_box(bound: float) -> float:
    """The |θ| above which an entry counts as outside the box |θ| ≤ bound: bound plus 1e-9 (relative for
    bound > 1). The line search's θ⁰ + α(θ_new − θ⁰) leaves entries at the bound a few ulps outside;
    those are not infeasible starts."""
    return bound + 1e-9 * max(bound, 1.0)


@dataclass
class Values:
    """φ per block, its gradient and (optionally) the blocks' Hessians at one c."""

    c: np.ndarray
    values: np.ndarray
    grad: np.ndarray
    hess: list[np.ndarray] | None = None


def _absolute_inverse(hessians: list[np.ndarray]) -> tuple[Callable[[np.ndarray], np.ndarray], list[np.ndarray]]:
    """v -> |H_b|⁻¹ v_b per block b (eigenvalues by absolute value, floored at 1e-10 of the largest),
    and each block's largest |eigenvalue| (for damping)."""
    eigs = [np.linalg.eigh(h) for h in hessians]
    scales = [np.maximum(np.abs(val), 1e-10 * np.abs(val).max() + 1e-14) for val, _ in eigs]
    sizes = np.cumsum([0, *(h.shape[0] for h in hessians)])

    def apply(v: np.ndarray, mu: np.ndarray | None = None) -> np.ndarray:
        out = np.empty_like(v)
        for b, ((_, vec), scale) in enumerate(zip(eigs, scales, strict=True)):
            part = v[sizes[b] : sizes[b + 1]]
            out[sizes[b] : sizes[b + 1]] = vec @ ((vec.T @ part) / (scale + (0.0 if mu is None else mu[b])))
        return out

    return apply, [np.abs(val).max() if val.size else 0.0 for val, _ in eigs]


def damped_newton(
    evaluate: Callable[[np.ndarray, bool], Values], start: Values, iters: int, sizes: list[int], bounds: float | None
) -> tuple[np.ndarray, float]:
    """Batched damped Newton (Levenberg-Marquardt per block) on independent blocks at once.

    Each block's Hessian is made positive definite by taking absolute eigenvalues, plus a
    damping μ_b that grows ×10 when the block's φ_b does not decrease and shrinks ÷3 when it does.
    With ``bounds`` every trial is projected onto the box |θ| ≤ M; a block that is outside the box
    takes its (finite) projected trial even where φ_b rises (feasibility first: comparing φ_b with
    its infeasible value would reject the projection of a block whose unconstrained optimum lies
    outside the box at every iteration). From a feasible start every block stays inside the box and
    this rule never applies.

    Parameters
    ----------
    evaluate : callable
        (c, hessian) -> Values, with the blocks' Hessians when ``hessian`` (the last trial needs none).
    start : Values
        Values (with Hessians) at c⁰.
    iters : int
        Newton iterations.
    sizes : list of int
        Block sizes (c is their concatenation).
    bounds : float or None
        |θ| ≤ M (steps are projected; blocks outside the box are moved into it, see above).

    Returns
    -------
    tuple
        The new c and φ there (up to the constant of ``evaluate``); within the box when ``bounds``
        is given and ``iters`` ≥ 1, unless φ is not finite at a projected trial.
    """
    cur = start
    mu = np.zeros(len(sizes))
    block_of = np.repeat(np.arange(len(sizes)), sizes)
    for i in range(iters):
        solve, largest = _absolute_inverse(cur.hess)
        trial_c = cur.c - solve(cur.grad, mu)
        if bounds is not None:
            trial_c = np.clip(trial_c, -bounds, bounds)
        last = i == iters - 1
        trial = evaluate(trial_c, not last)
        ok = np.isfinite(trial.values) & (trial.values < cur.values)
        if bounds is not None:  # feasibility first: a block outside the box takes its projected trial
            outside = np.bincount(block_of, weights=np.abs(cur.c) > outside_box(bounds), minlength=len(sizes)) > 0
            ok |= np.isfinite(trial.values) & outside
        mu = np.where(ok, mu / 3.0, np.maximum(10.0 * mu, 1e-3 * np.array(largest)))
        keep = ok[block_of]
        cur = Values(
            np.where(keep, trial.c, cur.c),
            np.where(ok, trial.values, cur.values),
            np.where(keep, trial.grad, cur.grad),
            cur.hess if last else [t if k else h for t, h, k in zip(trial.hess, cur.hess, ok, strict=True)],
        )
    return cur.c, float(cur.values.sum())


def quasi_newton_step(
    start: Values, pairs: list[tuple[np.ndarray, np.ndarray]], bounds: float | None
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
    start : Values
        Values with the blocks' Hessians at c⁰.
    pairs : list of tuple of ndarray
        Secant pairs (s, y), oldest first, each with sᵀy > 0.
    bounds : float or None
        |θ| ≤ M (the step is projected).

    Returns
    -------
    tuple
        The new c and the value φ(c⁰) − ½ |gᵀd| that a quadratic model with the L-BFGS matrix predicts.
    """
    h0_inv = _absolute_inverse(start.hess)[0]
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


class StageMap:
    """How the θ block c of w feeds the steps, and the regulariser split per block (one per solve).

    Parameters
    ----------
    problem : TrainingProblem
        The problem (a flow with any control, or a feed-forward model).
    jit : bool
        Compile the blocks' regulariser Hessians to C (Newton-sized blocks only).

    Attributes
    ----------
    sizes : list of int
        Block sizes: one block per step for piecewise-constant flows and feed-forward layers, else one.
    """

    def __init__(self, problem: Any, jit: bool) -> None:
        self.problem = problem
        lay = problem.layout
        self.n_steps = problem.n_steps
        self.layers = problem.stage_weights is None  # θ_k is block k itself (sizes may differ)
        if self.layers:
            self.offsets = list(lay.offsets)
        else:
            self.p, self.n_coeffs = lay.p, lay.n_coeffs
            self.weights = problem.stage_weights  # (N, nodes, n_coeffs)
            self.n_nodes = self.weights.shape[1]
            per_step = isinstance(problem.control, PiecewiseConstant)
            self.offsets = list(range(0, lay.n_theta + 1, lay.p)) if per_step else [0, lay.n_theta]
        self.sizes = list(np.diff(self.offsets))
        theta = ca.SX.sym("theta", lay.n_theta)
        w = ca.vertcat(theta, ca.SX.zeros(lay.n_params - lay.n_theta))
        r = ca.SX(problem.regulariser(w, casadi_ops))
        grad = ca.gradient(r, theta)
        # R and ∇R are cheap and their C code grows with θ (minutes of compiling at 40 000
        # parameters): CasADi's virtual machine evaluates them; only small block Hessians are compiled
        self.reg_vg = ca.Function("reg_vg", [theta], [r, grad])
        self._reg_map = self.reg_vg.map("reg_map", "serial", len(self.sizes), [], [])
        self._reg_blocks: ca.Function | None = None  # the blocks' Hessians of R, built when Newton needs them
        self._theta, self._grad, self._jit = theta, grad, jit
        # H_off: the off-diagonal blocks of ∇²R (the H1 coupling; constant for R quadratic + separable)
        hess0 = ca.Function("reg_hess", [theta], [ca.jacobian(grad, theta)])(np.zeros(lay.n_theta))
        rows, cols = (np.asarray(v, dtype=int) for v in hess0.sparsity().get_triplet())
        block_of = np.repeat(np.arange(len(self.sizes)), self.sizes)
        off = block_of[rows] != block_of[cols]
        values = np.asarray(hess0.nonzeros(), dtype=float)[off]
        self.h_off = sparse.csr_matrix((values, (rows[off], cols[off])), shape=(lay.n_theta, lay.n_theta))
        self._ipopt: dict[tuple[int, int], Any] = {}

    def block(self, c: np.ndarray, b: int) -> np.ndarray:
        """Block b of c."""
        return c[self.offsets[b] : self.offsets[b + 1]]

    def thetas(self, c: np.ndarray) -> list[np.ndarray]:
        """Θ_k for every step (θ at the step's integrator nodes, stacked; θ_k for a layer)."""
        if self.layers:
            return [self.block(c, k) for k in range(self.n_steps)]
        theta = np.einsum("kmj,jp->kmp", self.weights, c.reshape(self.n_coeffs, self.p))
        return list(theta.reshape(self.n_steps, -1))

    def to_coefficients(self, grads: list[np.ndarray]) -> np.ndarray:
        """Chain rule Θ_k -> c for per-step gradients."""
        if self.layers:
            return np.concatenate(grads)
        g = np.stack(grads).reshape(self.n_steps, self.n_nodes, self.p)
        return np.einsum("kmj,kmp->jp", self.weights, g).ravel()

    def hessian_blocks(self, hessians: list[np.ndarray]) -> list[np.ndarray]:
        """Chain rule for the per-step Hessians -> the blocks' Hessians."""
        if self.layers:
            return hessians
        n, m, p = self.n_steps, self.n_nodes, self.p
        h = np.stack(hessians).reshape(n, m, p, m, p)
        if len(self.sizes) == n:  # piecewise constant: block k is step k, its nodes share θ_k
            return list(h.sum(axis=(1, 3)))
        full = np.einsum("kmj,kmanb,knl->jalb", self.weights, h, self.weights)
        size = self.n_coeffs * p
        return [full.reshape(size, size)]

    def reg_hess_blocks(self, c: np.ndarray) -> list[np.ndarray]:
        """Diagonal blocks of ∇²R(c) (dense; the Function is built on first use)."""
        if self._reg_blocks is None:
            theta, grad = self._theta, self._grad
            blocks = [
                ca.densify(ca.jacobian(grad[a:b], theta[a:b]))
                for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)
            ]
            f = ca.Function("reg_blocks", [theta], blocks)
            self._reg_blocks = compile_function(f)[0] if self._jit and max(self.sizes) <= NEWTON_MAX_BLOCK else f
        return [np.asarray(h) for h in self._reg_blocks.call([c])]

    def reg_block_values(self, c: np.ndarray, c0: np.ndarray) -> np.ndarray:
        """R(c⁰ + e_b ⊗ (c_b − c⁰_b)) for every block b (the Jacobi split of R)."""
        cols = np.tile(c0[:, None], (1, len(self.sizes)))
        for b, (a, e) in enumerate(zip(self.offsets[:-1], self.offsets[1:], strict=True)):
            cols[a:e, b] = c[a:e]
        return np.asarray(self._reg_map(cols)[0]).ravel()

    def ipopt_solver(self, engine: Engine, iters: int) -> tuple[Any, dict[str, np.ndarray]]:
        """An IPOPT nlpsol for φ with parameters (per step x_k, p̂_{k+1}, x_{k+1}, q̂_k; c⁰; ρ), and its
        bounds (cached per batch size and ``iters``); the stage terms are the CasADi model's."""
        problem, lay, s = self.problem, self.problem.layout, engine.n_samples
        key = (s, iters)
        if key in self._ipopt:
            return self._ipopt[key]
        model, dims = casadi_model(problem), problem.state_dims
        c, c0, rho = ca.MX.sym("c", lay.n_theta), ca.MX.sym("c0", lay.n_theta), ca.MX.sym("rho")
        w = ca.vertcat(c, ca.MX.zeros(lay.n_params - lay.n_theta))
        thetas = [ca.vertcat(*problem.stage_thetas(w, k, casadi_ops)) for k in range(self.n_steps)]
        data, a = [], 0
        for k in range(self.n_steps):
            rows = (("x", dims[k]), ("p_next", dims[k + 1]), ("x_next", dims[k + 1]), ("q", dims[k]))
            step_data = [ca.MX.sym(f"{name}{k}", dim, s) for name, dim in rows]
            data += step_data
            a += sum_over_samples(stage_functions(model.step_at(k))[1], s)(*step_data, thetas[k], rho)[0]
        delta = c - c0
        h_off = self.h_off.tocoo()
        h_off_dm = ca.DM(
            ca.Sparsity.triplet(lay.n_theta, lay.n_theta, h_off.row.tolist(), h_off.col.tolist()), h_off.data
        )
        f = problem.regulariser(w, casadi_ops) - 0.5 * ca.bilin(h_off_dm, delta, delta)
        f = f - a / engine.normaliser
        g = ca.vertcat(*problem.step_lipschitz_sq(w, casadi_ops)) if problem.constraints.lipschitz else ca.MX(0, 1)
        nlp = {"x": c, "p": ca.vertcat(*(ca.vec(v) for v in data), c0, rho), "f": f, "g": g}
        opts = {"ipopt": {"max_iter": iters, "print_level": 0, "sb": "yes"}, "print_time": False}
        lim = np.inf if problem.constraints.theta_max is None else problem.constraints.theta_max
        bounds = {
            "lbx": np.full(lay.n_theta, -lim),
            "ubx": np.full(lay.n_theta, lim),
            "lbg": np.full(g.shape[0], -np.inf),
            "ubg": np.full(g.shape[0], constraint_limit(problem) ** 2 if g.shape[0] else 0.0),
        }
        self._ipopt[key] = (ca.nlpsol("msa_inner", "ipopt", nlp, opts), bounds)
        return self._ipopt[key]


class InnerProblem:
    """min_c φ(c) = −H̃ for the states and costates of one sweep (see the module docstring).

    Parameters
    ----------
    stages : StageMap
        θ -> Θ_k and the regulariser split of this solve.
    engine : Engine
        The engine of the batch; its :meth:`~control_dl.engines.Engine.augmented_hamiltonian` gives a_k.
    sweep : Sweep
        States and costates from ``engine.sweep(w)``.
    rho : float
        Penalty ρ ≥ 0.
    """

    def __init__(self, stages: StageMap, engine: Engine, sweep: Sweep, rho: float) -> None:
        self.stages, self.engine, self.sweep = stages, engine, sweep
        self.c0 = np.asarray(sweep.w[: stages.problem.layout.n_theta], dtype=float)
        self.rho = float(rho)
        self.scale = 1.0 / engine.normaliser

    def evaluate(self, c: np.ndarray, hessian: bool = False, blocks: bool = True) -> Values:
        """φ per block (or their sum), ∇φ and (with ``hessian``) the blocks' Hessians at c.

        Parameters
        ----------
        c : ndarray
            θ block.
        hessian : bool
            Also return the blocks' Hessians.
        blocks : bool
            Values per block (the Jacobi split of R: one regulariser evaluation per block, what
            Newton's per-block damping needs); False: one value, their sum φ(c) = −(1/n) Σ_k a_k
            + R(c) − ½ δᵀ H_off δ (one regulariser evaluation, what L-BFGS-B needs).

        Returns
        -------
        Values
            Values per block (one value when ``blocks`` is False; summing to φ(c) up to a constant),
            gradient, Hessians.
        """
        st = self.stages
        out = self.engine.augmented_hamiltonian(self.sweep, st.thetas(c), self.rho, hessian)
        a = -self.scale * out.values
        delta = c - self.c0
        r_value, r_grad = st.reg_vg(c)
        grad = -self.scale * st.to_coefficients(out.gradients) + np.asarray(r_grad).ravel() - st.h_off @ delta
        hess = None
        if hessian:
            data = st.hessian_blocks(out.hessians)
            hess = [-self.scale * h + r for h, r in zip(data, st.reg_hess_blocks(c), strict=True)]
        if len(st.sizes) == 1 or not blocks:
            values = np.array([a.sum() + float(r_value) - 0.5 * delta @ (st.h_off @ delta)])
        else:  # one block per step
            values = a + st.reg_block_values(c, self.c0)
        return Values(c, values, grad, hess)

    def at_reference(self, gradient: np.ndarray) -> Values:
        r"""φ(c⁰) and ∇φ(c⁰) from the sweep and ∇_θ J, without evaluating H̃.

        At the sweep's own θ both penalties of H̃ vanish (x_{k+1} = F(x_k, Θ_k) and q̂_k = J_{F,x}ᵀ p̂_{k+1}),
        so a_k(Θ_k) = Σ_i p̂_{k+1,i}·x_{k+1,i} and φ(c⁰) = −Σ_k Σ_i p_{k+1,i}·x_{k+1,i} + R(c⁰); and
        ∇φ(c⁰) = ∇_θ J (the E-MSA identity ∂H̃/∂θ = −∇_θ J). One inner evaluation per outer iteration
        saved, for the inner solvers that need no Hessian at c⁰. An engine whose sweep keeps its arrays
        elsewhere (empty lists) is evaluated instead.

        Parameters
        ----------
        gradient : ndarray
            ∇_θ J at the sweep's w on the same batch (the θ block of the engine's gradient).

        Returns
        -------
        Values
            One value (the sum over the blocks), the gradient, no Hessians.
        """
        sw = self.sweep
        if len(sw.states) != self.stages.n_steps + 1 or len(sw.costates) != self.stages.n_steps + 1:
            return self.evaluate(self.c0, blocks=False)
        a = sum(float(np.sum(p * x)) for p, x in zip(sw.costates[1:], sw.states[1:], strict=True))
        value = -a + float(self.stages.reg_vg(self.c0)[0])
        return Values(self.c0, np.array([value]), np.asarray(gradient, dtype=float).copy())

    def block_norms(self, grad: np.ndarray) -> np.ndarray:
        """‖∂φ/∂c_b‖ per block (per coefficient C_j of a flow, per layer of a feed-forward model)."""
        if self.stages.layers:
            return np.array([np.linalg.norm(self.stages.block(grad, k)) for k in range(self.stages.n_steps)])
        return np.linalg.norm(grad.reshape(-1, self.stages.p), axis=1)

    def newton(self, start: Values, iters: int, bounds: float | None) -> tuple[np.ndarray, float]:
        """Batched damped Newton on all blocks at once (see :func:`damped_newton`).

        Parameters
        ----------
        start : Values
            Values (with Hessians) at c⁰.
        iters : int
            Newton iterations.
        bounds : float or None
            |θ| ≤ M (steps are projected).

        Returns
        -------
        tuple
            The new θ block and φ there (up to the constant of ``evaluate``).
        """
        return damped_newton(self.evaluate, start, iters, self.stages.sizes, bounds)

    def lbfgsb(self, iters: int, bounds: float | None, start: Values | None = None) -> tuple[np.ndarray, float]:
        """One scipy L-BFGS-B over all blocks (the sum of the blocks' φ_b): no Hessians, so the cost
        per iteration is linear in the size of θ_k (the inner solver for wide layers).

        Parameters
        ----------
        iters : int
            L-BFGS-B iterations.
        bounds : float or None
            |θ| ≤ M.
        start : Values, optional
            φ and ∇φ at c⁰ when already evaluated (L-BFGS-B's first evaluation is then free).

        Returns
        -------
        tuple
            The new θ block and φ there.
        """

        def fun(c: np.ndarray) -> tuple[float, np.ndarray]:
            ev = start if start is not None and np.array_equal(c, start.c) else self.evaluate(c, blocks=False)
            return float(ev.values.sum()), ev.grad

        box = None if bounds is None else [(-bounds, bounds)] * self.c0.size
        # scipy's default stops (projected gradient ≤ 1e-5, entry-wise) end wide layers' solves at
        # once late in training, where ∇φ is 1e-4 spread over thousands of entries: only iters stops
        options = {"maxiter": iters, "gtol": 1e-15, "ftol": 1e-15}
        res = optimize.minimize(fun, self.c0, jac=True, method="L-BFGS-B", bounds=box, options=options)
        return np.asarray(res.x, dtype=float), float(res.fun)

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
        solver, bounds = self.stages.ipopt_solver(self.engine, iters)
        n, sw = self.engine.normaliser, self.sweep
        data = [
            v
            for k in range(self.stages.n_steps)
            for v in (sw.states[k], n * sw.costates[k + 1], sw.states[k + 1], n * sw.q[k])
        ]
        params = np.concatenate([*(a.ravel(order="F") for a in data), self.c0, [self.rho]])
        sol = solver(x0=self.c0, p=params, **bounds)
        c = np.asarray(sol["x"], dtype=float).ravel()
        return c, float(self.evaluate(c, blocks=False).values.sum())  # the convention of at_reference
