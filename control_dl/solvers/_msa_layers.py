r"""MSA / E-MSA for feed-forward models: the discrete maximum principle with one state size per layer.

For x_{k+1} = F_k(x_k, θ_k) (``casadi_model(problem).step_at(k)``, x_k ∈ R^{w_k}, θ_k ∈ R^{p_k}) and

    J = (1/S) Σ_i Φ(x_{L,i}) + R(θ),   R(θ) = Σ_k R_k(θ_k)   (α h ‖θ_k‖² + γ h Σ(√(θ_k² + ε²) − ε)):

- costates p_L = −(1/S) ∇Φ(x_L) ∈ R^{w_L},  p_k = ∇_x H_k = J_{F_k}(x_k, θ_k)ᵀ p_{k+1} ∈ R^{w_k},
  with H_k(x, p, θ) = p·F_k(x, θ) − R_k(θ), so that p_k = −∂J/∂x_k (a feed-forward model has no
  running cost, so q_k = p_k);
- every layer's augmented Hamiltonian (:func:`._hamiltonian.stage_functions`, per-sample costates
  p̂ = S p)

      H̃_k(θ) = (1/S) Σ_i [ p̂_{k+1,i}·F_k(x_{k,i}, θ) − ρ/2 ‖x_{k+1,i} − F_k(x_{k,i}, θ)‖²
                            − ρ/2 ‖p̂_{k,i} − J_{F_k}(x_{k,i}, θ)ᵀ p̂_{k+1,i}‖² ] − R_k(θ)

  is maximised over θ_k alone: given (x, p) the layers' problems are independent (R is separable),
  and their sizes differ, so each layer has its own compiled Functions and the inner solvers loop
  over the layers (the ResNet path of :mod:`._msa_inner` batches equal-sized steps instead).
  At the current θ, ∂H̃_k/∂θ_k = −∂J/∂θ_k.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np

from ..backends import casadi_ops
from ..engines import casadi_model
from ._hamiltonian import stage_functions, sum_over_samples
from ._msa_inner import Evaluation, InnerSolvers, damped_newton

if TYPE_CHECKING:
    from ..problems.training import TrainingProblem


class LayerPontryaginFunctions:
    """Forward/backward sweep and per-layer Hamiltonian derivatives for batches of ``n_samples`` columns.

    Parameters
    ----------
    problem : TrainingProblem
        A problem with a feed-forward ``model``; its layer Functions ``casadi.step_at(k)`` are used.
    n_samples : int
        Batch size S.
    """

    def __init__(self, problem: TrainingProblem, n_samples: int) -> None:
        self.problem, self.n_samples = problem, n_samples
        model = casadi_model(problem)
        pieces = [stage_functions(model.step_at(k)) for k in range(problem.n_steps)]
        self._vjps = [vjp for vjp, _, _ in pieces]
        self.stage_vg = [sum_over_samples(h_vg, n_samples) for _, h_vg, _ in pieces]
        self.stage_vgh = [sum_over_samples(h_vgh, n_samples) for _, _, h_vgh in pieces]
        self.sweep = self._build_sweep()

    def _build_sweep(self) -> ca.Function:
        """(w, x_in, y) -> (X_0, …, X_L, P_0, …, P_L), X_k and P_k of size ``w_k × S``."""
        problem, model, lay = self.problem, casadi_model(self.problem), self.problem.layout
        s = self.n_samples
        w = ca.MX.sym("w", problem.n_params)
        x_in = ca.MX.sym("x_in", lay.n_in, s)
        y = ca.MX.sym("y", lay.n_out, s)
        w_readout = w[lay.n_theta : lay.n_theta + lay.n_readout]
        states = model.trajectory_expr(w, x_in)
        x = ca.SX.sym("x", problem.state_dims[-1])
        yy, wr = ca.SX.sym("y", lay.n_out), ca.SX.sym("w_readout", lay.n_readout)
        terminal_grad = ca.Function("terminal_grad", [x, yy, wr], [ca.gradient(model.terminal(x, yy, wr), x)])
        p = -terminal_grad.map("terminal_grad_map", "serial", s, [2], [])(states[-1], y, w_readout) / s
        costates = [p]
        for k in range(problem.n_steps - 1, -1, -1):
            p = self._vjps[k].map(f"vjp_map{k}", "serial", s, [1], [])(states[k], model.stage_vector(w, k), p)
            costates.append(p)
        return ca.Function("layer_sweep", [w, x_in, y], [*states, *costates[::-1]])

    def states_costates(self, w: np.ndarray, x_in: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], ...]:
        """Forward states, backward costates and q_k (= p_k) per layer.

        Parameters
        ----------
        w : ndarray
            Decision vector.
        x_in, y : ndarray
            Batch inputs ``n_in × S`` and encoded targets ``n_out × S``.

        Returns
        -------
        tuple of list of ndarray
            X_0..X_L and P_0..P_L (``w_k × S`` each), and Q_0..Q_{L−1} = P_0..P_{L−1}.
        """
        out = [np.asarray(v) for v in self.sweep(w, x_in, y)]
        n = self.problem.n_steps + 1
        states, costates = out[:n], out[n:]
        return states, costates, costates[:-1]


class LayerMSAFunctions:
    """Compiled Functions shared by every layer inner problem of one solve (batch size fixed).

    Parameters
    ----------
    problem : TrainingProblem
        A problem with a feed-forward model.
    pf : LayerPontryaginFunctions
        Sweep and per-layer stage Functions for this batch size.
    jit : bool
        JIT-compile the stage Functions (falls back to the interpreted ones if compiling fails).
    """

    def __init__(self, problem: TrainingProblem, pf: LayerPontryaginFunctions, jit: bool) -> None:
        from ..engines._jit import compile_if

        self.problem, self.pf = problem, pf
        self.offsets = problem.layout.offsets
        self.pf_vg = [compile_if(f, jit) for f in pf.stage_vg]
        self.pf_vgh = [compile_if(f, jit) for f in pf.stage_vgh]
        self.reg = [self._layer_regulariser(k) for k in range(problem.n_steps)]
        self._ipopt: dict[int, Any] = {}

    def _layer_regulariser(self, k: int) -> ca.Function:
        """R_k(θ_k) = R(w with θ_k in place and zeros elsewhere), its gradient and Hessian."""
        lay = self.problem.layout
        theta = ca.SX.sym("theta", lay.sizes[k])
        w = ca.vertcat(ca.SX.zeros(self.offsets[k]), theta, ca.SX.zeros(lay.n_params - self.offsets[k + 1]))
        r = ca.SX(self.problem.regulariser(w, casadi_ops))
        grad = ca.gradient(r, theta)
        return ca.Function(f"reg{k}", [theta], [r, grad, ca.densify(ca.jacobian(grad, theta))])

    def ipopt_solver(self, iters: int) -> tuple[Any, dict[str, np.ndarray]]:
        """An IPOPT nlpsol for φ = Σ_k φ_k with parameters (per layer X_k, P̂_{k+1}, X_{k+1}, Q̂_k; ρ), and
        its bounds (cached per ``iters``)."""
        if iters in self._ipopt:
            return self._ipopt[iters]
        problem, dims, s = self.problem, self.problem.state_dims, self.pf.n_samples
        c = ca.MX.sym("c", problem.layout.n_theta)
        rho = ca.MX.sym("rho")
        data, a = [], 0
        for k in range(problem.n_steps):
            rows = (("x", dims[k]), ("p_next", dims[k + 1]), ("x_next", dims[k + 1]), ("q", dims[k]))
            layer = [ca.MX.sym(f"{name}{k}", dim, s) for name, dim in rows]
            data += layer
            a += self.pf.stage_vg[k](*layer, c[self.offsets[k] : self.offsets[k + 1]], rho)[0]
        f = problem.regulariser(c, casadi_ops) - a / s
        nlp = {"x": c, "p": ca.vertcat(*(ca.vec(v) for v in data), rho), "f": f}
        opts = {"ipopt": {"max_iter": iters, "print_level": 0, "sb": "yes"}, "print_time": False}
        lim = np.inf if problem.constraints.theta_max is None else problem.constraints.theta_max
        n = problem.layout.n_theta
        self._ipopt[iters] = (
            ca.nlpsol("msa_layers", "ipopt", nlp, opts),
            {"lbx": np.full(n, -lim), "ubx": np.full(n, lim)},
        )
        return self._ipopt[iters]


class LayerInnerProblem(InnerSolvers):
    """min_θ φ(θ) = Σ_k φ_k(θ_k), φ_k = −H̃_k, for fixed per-layer states and costates.

    Parameters
    ----------
    shared : LayerMSAFunctions
        Compiled Functions of the problem.
    states, costates, qs : list of ndarray
        X_0..X_L, P_0..P_L and Q_0..Q_{L−1} (``w_k × S``) from the sweep.
    c0 : ndarray
        Current θ (all layers).
    rho : float
        Penalty ρ ≥ 0.
    """

    def __init__(
        self, shared: LayerMSAFunctions, states: list, costates: list, qs: list, c0: np.ndarray, rho: float
    ) -> None:
        self.shared = shared
        s = states[0].shape[1]
        self.scale = 1.0 / s
        self.args = [[states[k], s * costates[k + 1], states[k + 1], s * qs[k]] for k in range(len(states) - 1)]
        self.c0 = c0
        self.rho = float(rho)
        self.offsets = shared.offsets

    def layer(self, c: np.ndarray, k: int) -> np.ndarray:
        """θ_k, the slice of c that belongs to layer k."""
        return c[self.offsets[k] : self.offsets[k + 1]]

    def evaluate_layer(self, k: int, theta: np.ndarray, hessian: bool = False) -> Evaluation:
        """φ_k(θ_k) = R_k(θ_k) − H̃_k data term, its gradient and (with ``hessian``) its Hessian.

        Parameters
        ----------
        k : int
            Layer.
        theta : ndarray
            θ_k.
        hessian : bool
            Also return the Hessian, shape ``(1, p_k, p_k)``.

        Returns
        -------
        Evaluation
            One block: value ``(1,)``, gradient ``(p_k,)``, Hessian.
        """
        sh = self.shared
        out = (sh.pf_vgh if hessian else sh.pf_vg)[k](*self.args[k], theta, self.rho)
        r, r_grad, r_hess = sh.reg[k](theta)
        value = float(r) - self.scale * float(out[0])
        grad = np.asarray(r_grad).ravel() - self.scale * np.asarray(out[1]).ravel()
        hess = (np.asarray(r_hess) - self.scale * np.asarray(out[2]))[None] if hessian else None
        return Evaluation(theta, np.array([value]), grad, hess)

    def evaluate(self, c: np.ndarray, hessian: bool = False) -> Evaluation:
        """φ_k per layer and ∇φ at c (with ``hessian``, ``hess`` holds the per-layer Hessians as a list).

        Parameters
        ----------
        c : ndarray
            θ (all layers).
        hessian : bool
            Also return the per-layer Hessians.

        Returns
        -------
        Evaluation
            Values per layer (summing to φ(c)), gradient, Hessians.
        """
        parts = [self.evaluate_layer(k, self.layer(c, k), hessian) for k in range(len(self.args))]
        hess = [part.hess for part in parts] if hessian else None
        return Evaluation(
            c, np.concatenate([part.values for part in parts]), np.concatenate([part.grad for part in parts]), hess
        )

    def block_norms(self, grad: np.ndarray) -> np.ndarray:
        """‖∂φ/∂θ_k‖ per layer."""
        return np.array([np.linalg.norm(self.layer(grad, k)) for k in range(len(self.args))])

    def newton(self, start: Evaluation, iters: int, bounds: float | None) -> tuple[np.ndarray, float]:
        """Damped Newton (:func:`._msa_inner.damped_newton`) on every layer in turn.

        Parameters
        ----------
        start : Evaluation
            Evaluation (with per-layer Hessians) at c⁰.
        iters : int
            Newton iterations per layer.
        bounds : float or None
            |θ| ≤ M (steps are projected).

        Returns
        -------
        tuple
            The new θ and φ there.
        """
        thetas, total = [], 0.0
        for k in range(len(self.args)):
            first = Evaluation(
                self.layer(start.c, k), start.values[k : k + 1], self.layer(start.grad, k), start.hess[k]
            )
            theta, value = damped_newton(lambda t, k=k: self.evaluate_layer(k, t, hessian=True), first, iters, bounds)
            thetas.append(theta)
            total += value
        return np.concatenate(thetas), total

    def ipopt(self, iters: int) -> tuple[np.ndarray, float]:
        """IPOPT (exact Hessian) over all layers, with the problem's bounds.

        Parameters
        ----------
        iters : int
            IPOPT iterations.

        Returns
        -------
        tuple
            The new θ (the last iterate if IPOPT stops early) and φ there.
        """
        solver, bounds = self.shared.ipopt_solver(iters)
        params = np.concatenate([*(a.ravel(order="F") for layer in self.args for a in layer), [self.rho]])
        sol = solver(x0=self.c0, p=params, **bounds)
        c = np.asarray(sol["x"], dtype=float).ravel()
        return c, float(self.evaluate(c).values.sum())
