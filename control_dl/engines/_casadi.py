r"""The CasADi engine: per-sample SX step Functions mapped over the S columns, JIT-compiled to C.

Every quantity is a CasADi Function of (w, x, y) built from the problem's
:class:`~control_dl.engines._casadi_model.CasadiModel` (the one model traced on one sample), compiled
once per batch size through the disk cache of :mod:`._jit`:

- ``evaluate``: (J, loss, ∇_w J, Ŷ) in one call (reverse mode through the mapped steps);
- ``gauss_newton_product``: G(w) v by ``jtimes`` (:func:`gauss_newton_hvp`);
- ``sweep``: the states x_0..x_N by simulation, then the costates by per-step vector-Jacobian
  products, p_N = −(1/n) ∇_x[ℓ(λ2(x_N), y) + h r(x_N)], q_k = J_{F,x}(x_k, Θ_k)ᵀ p_{k+1},
  p_k = q_k − (h/n) ∇r(x_k) for k ≥ 1, p_0 = q_0 (the discrete adjoint; see :mod:`._base`);
  ONE implementation for flows and feed-forward stacks through ``model.step_at(k)``;
- ``augmented_hamiltonian``: a_k(Θ) and its derivatives per step (:func:`stage_functions`), the
  per-sample terms summed over the samples and mapped over the steps that share one step Function
  (all N steps of a flow, each layer of a feed-forward model on its own).

Fast for small state widths (scalar C code, no BLAS): measured 0.44× torch's J + ∇J at d = 3 on ring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from .._errors import check_bool, check_choice, python_scalars
from ._base import Engine, EngineSpec, Evaluation, StageValues, Sweep
from ._casadi_model import (
    CasadiModel,
    casadi_model,
    gauss_newton_hvp,
    objective_function,
    objective_loss_gradient,
    stage_functions,
    sum_over_samples,
)
from ._jit import compile_function


@dataclass(frozen=True)
class Casadi(EngineSpec):
    """Options of the CasADi engine.

    Parameters
    ----------
    jit : bool
        Compile J/∇J, the Gauss-Newton product and the stage Hamiltonians to C (cached on disk).
        Generated C code evaluates serially; without a C compiler the Functions run uncompiled.
    parallelization : {"serial", "thread"}
        How CasADi's ``map`` evaluates the samples in uncompiled Functions: with ``jit=True`` the
        states and the costate sweep (MSA, E-MSA, the PMP diagnostics; J, ∇J, G·v and the stage
        Hamiltonians are compiled, serial C), with ``jit=False`` everything. So ``jit=True,
        parallelization="thread"`` acts on the sweep and is accepted, but a solver that evaluates
        only J, ∇J and G·v (``Direct`` with ``nlp="lbfgsb"`` or ``"trust-ncg"``) never runs a
        threaded map then. Measured on a 2-core machine, "thread" was about 100x slower than
        "serial" (ring, S = 200 to 20 000). ``info["parallelization"]`` says what it applied to.

    Raises
    ------
    SpecError
        A bad option value.
    """

    jit: bool = True
    parallelization: str = "serial"

    name = "casadi"

    def __post_init__(self) -> None:
        python_scalars(self)
        check_bool("jit", self.jit)
        check_choice("parallelization", self.parallelization, ("serial", "thread"))

    def bind(
        self, problem: Any, x: np.ndarray, y: np.ndarray, normaliser: float | None = None, regulariser: bool = True
    ) -> CasadiEngine:
        """A :class:`CasadiEngine` for ``problem`` on the batch (x, y).

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
        CasadiEngine
            The bound engine.
        """
        return CasadiEngine(problem, x, y, normaliser, regulariser, self)


class CasadiEngine(Engine):
    """The CasADi engine bound to one problem and batch (see the module docstring).

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
    spec : Casadi
        Options.

    Attributes
    ----------
    info : dict
        ``name``, ``jit`` and ``compile`` (what compiling J/∇J cost: "compiled in … s", "cache hit"
        or "not compiled") and ``setup_s``.
    """

    name = "casadi"

    def __init__(
        self,
        problem: Any,
        x: np.ndarray,
        y: np.ndarray,
        normaliser: float | None = None,
        regulariser: bool = True,
        spec: Casadi | None = None,
    ) -> None:
        super().__init__(problem, x, y, normaliser, regulariser)
        self.spec = spec or Casadi()
        start = time.perf_counter()
        # generated C code is serial: compiled Functions come from the serial model
        self.model: CasadiModel = casadi_model(problem, "serial" if self.spec.jit else self.spec.parallelization)
        self.sweep_model: CasadiModel = casadi_model(problem, self.spec.parallelization)
        self._x, self._y = ca.DM(self.x), ca.DM(self.y)
        self._functions: dict[str, ca.Function] = {}
        self._stage: dict[tuple[str, bool], ca.Function] = {}
        self._evaluate = self._function("evaluate")
        self.info.update(
            jit=self.spec.jit, parallelization=self._parallelization(), setup_s=time.perf_counter() - start
        )

    # ------------------------------------------------------------------------------ internals
    def _parallelization(self) -> str:
        """``info["parallelization"]``: the option, and what it applies to (compiled code is serial)."""
        par = self.spec.parallelization
        if par == "serial" or not self.spec.jit:
            return par
        return f"{par} (states and sweep; J, gradient, G.v and stage Hamiltonians are compiled, serial)"

    def _args(self) -> tuple[int, float, bool]:
        return self.n_samples, self.normaliser, self.regulariser

    def _function(self, kind: str) -> ca.Function:
        """The (compiled) Function of one kind, built on first use."""
        if kind in self._functions:
            return self._functions[kind]
        if kind == "evaluate":
            f = objective_loss_gradient(self.model, *self._args())
        elif kind == "objective":
            f = objective_function(self.model, *self._args(), outputs="J_loss_yhat")
        elif kind == "gauss_newton":
            f = gauss_newton_hvp(self.model, *self._args())
        elif kind == "sweep":
            f = self._build_sweep()
        else:  # "states"
            w = ca.MX.sym("w", self.problem.n_params)
            f = ca.Function("states", [w], self.sweep_model.trajectory_expr(w, self._x))
        if self.spec.jit and kind in ("evaluate", "objective", "gauss_newton"):
            f, compiled = compile_function(f)
            if kind == "evaluate":
                self.info["compile"] = (
                    ("cache hit" if compiled["cache_hit"] else f"compiled in {compiled['compile_time']:.2f} s")
                    if compiled["compiled"]
                    else "not compiled"
                )
        elif kind == "evaluate":
            self.info["compile"] = "not compiled"
        self._functions[kind] = f
        return f

    def _build_sweep(self) -> ca.Function:
        """``(w, x, y) -> (X_0..X_N, P_0..P_N, Q_0..Q_{N−1})``: the one costate pass (module docstring)."""
        problem, model, lay = self.problem, self.sweep_model, self.problem.layout
        s, n, h = self.n_samples, self.normaliser, problem.step_size
        w = ca.MX.sym("w", problem.n_params)
        x = ca.MX.sym("x", lay.n_in, s)
        y = ca.MX.sym("y", lay.n_out, s)
        w_readout = w[lay.n_theta : lay.n_theta + lay.n_readout]
        states = model.trajectory_expr(w, x)
        dims = problem.state_dims
        x_sym, y_sym = ca.SX.sym("x", dims[-1]), ca.SX.sym("y", lay.n_out)
        wr_sym = ca.SX.sym("w_readout", lay.n_readout)
        running = problem.cost.has_running_cost
        final = model.terminal(x_sym, y_sym, wr_sym) + (h * model.running(x_sym, y_sym, wr_sym) if running else 0)
        final_grad = ca.Function("final_grad", [x_sym, y_sym, wr_sym], [ca.gradient(final, x_sym)])
        p = -model.mapped(final_grad, s, [2], [])(states[-1], y, w_readout) / n
        run_grad = None
        if running:
            grad = ca.Function(
                "running_grad", [x_sym, y_sym, wr_sym], [ca.gradient(model.running(x_sym, y_sym, wr_sym), x_sym)]
            )
            run_grad = model.mapped(grad, s, [2], [])
        vjps: dict[str, ca.Function] = {}
        costates, qs = [p], []
        for k in range(problem.n_steps - 1, -1, -1):
            step = model.step_at(k)
            if step.name() not in vjps:
                vjps[step.name()] = model.mapped(stage_functions(step)[0], s, [1], [])
            q = vjps[step.name()](states[k], model.stage_vector(w, k), p)
            p = q - (h / n) * run_grad(states[k], y, w_readout) if (run_grad is not None and k > 0) else q
            qs.append(q)
            costates.append(p)
        return ca.Function("sweep", [w, x, y], [*states, *costates[::-1], *qs[::-1]])

    def _stage_function(self, step: ca.Function, m: int, hessian: bool) -> ca.Function:
        """Σ over samples of the per-sample ``h_vg``/``h_vgh``, mapped over m steps (ρ shared)."""
        key = (f"{step.name()}_{m}", hessian)
        if key not in self._stage:
            per_sample = stage_functions(step)[2 if hessian else 1]
            f = sum_over_samples(per_sample, self.n_samples).map("steps", "serial", m, [5], [])
            self._stage[key] = compile_function(f)[0] if self.spec.jit else f
        return self._stage[key]

    def _groups(self) -> list[tuple[ca.Function, list[int]]]:
        """Steps grouped by their step Function (all N for a flow; one per layer for a feed-forward stack)."""
        groups: dict[str, tuple[ca.Function, list[int]]] = {}
        for k in range(self.problem.n_steps):
            step = self.model.step_at(k)
            groups.setdefault(step.name(), (step, []))[1].append(k)
        return list(groups.values())

    # ------------------------------------------------------------------------------ interface
    def evaluate(self, w: np.ndarray, gradient: bool = True) -> Evaluation:
        """J, the loss, ∇J (when ``gradient``) and the predictions at w.

        Parameters
        ----------
        w : ndarray
            Decision vector, shape ``(n_params,)``.
        gradient : bool
            Also compute ∇_w J (one reverse sweep).

        Returns
        -------
        Evaluation
            Values on this engine's batch.
        """
        if gradient:
            j, loss, g, yhat = self._evaluate(w, self._x, self._y)
            grad = np.asarray(g, dtype=np.float64).ravel()
        else:
            j, loss, yhat = self._function("objective")(w, self._x, self._y)
            grad = None
        return Evaluation(float(j), float(loss), grad, np.asarray(yhat, dtype=np.float64), self.n_samples)

    def gauss_newton_product(self, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """G(w) v (:func:`~._casadi_model.gauss_newton_hvp`, compiled with ``jit``).

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
        return np.asarray(self._function("gauss_newton")(w, v, self._x, self._y), dtype=np.float64).ravel()

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
        return [np.asarray(s, dtype=np.float64) for s in self._function("states")(w)]

    def sweep(self, w: np.ndarray) -> Sweep:
        """States and costates at w (the one CasADi costate pass, see the module docstring).

        Parameters
        ----------
        w : ndarray
            Decision vector.

        Returns
        -------
        Sweep
            x_0..x_N, p_0..p_N and q_0..q_{N−1}, each ``d_k × S``.
        """
        out = [np.asarray(v, dtype=np.float64) for v in self._function("sweep")(w, self._x, self._y)]
        n = self.problem.n_steps
        w = np.array(w, dtype=np.float64)
        return Sweep(w, out[: n + 1], out[n + 1 : 2 * n + 2], out[2 * n + 2 :], handle={})

    def augmented_hamiltonian(
        self, sweep: Sweep, thetas: list[np.ndarray], rho: float, hessian: bool = False
    ) -> StageValues:
        """a_k(Θ_k), ∂a_k/∂Θ_k (and ∂²a_k/∂Θ_k²) for every step (see :class:`~._base.StageValues`).

        Parameters
        ----------
        sweep : Sweep
            From :meth:`sweep` (its stacked data are cached in ``sweep.handle``).
        thetas : list of ndarray
            Θ_k per step (θ at the step's integrator nodes, stacked).
        rho : float
            Penalty ρ ≥ 0 (ρ = 0: the plain Hamiltonian of MSA).
        hessian : bool
            Also return the Hessians.

        Returns
        -------
        StageValues
            Values ``(N,)``, gradients and (optionally) Hessians per step.
        """
        n_steps = self.problem.n_steps
        values = np.zeros(n_steps)
        gradients: list[np.ndarray] = [np.zeros(0)] * n_steps
        hessians: list[np.ndarray] = [np.zeros((0, 0))] * n_steps
        for step, ks in self._groups():
            data = sweep.handle.get(step.name()) if isinstance(sweep.handle, dict) else None
            if data is None:
                n, x, p, q = self.normaliser, sweep.states, sweep.costates, sweep.q
                data = [
                    np.hstack([x[k] for k in ks]),
                    n * np.hstack([p[k + 1] for k in ks]),
                    np.hstack([x[k + 1] for k in ks]),
                    n * np.hstack([q[k] for k in ks]),
                ]
                if isinstance(sweep.handle, dict):
                    sweep.handle[step.name()] = data
            theta = np.stack([np.asarray(thetas[k], dtype=np.float64).ravel() for k in ks], axis=1)
            out = self._stage_function(step, len(ks), hessian)(*data, theta, float(rho))
            size = theta.shape[0]
            vals, grads = np.asarray(out[0]).ravel(), np.asarray(out[1])
            hess = np.asarray(out[2]).reshape(size, len(ks), size) if hessian else None
            for i, k in enumerate(ks):
                values[k] = vals[i]
                gradients[k] = grads[:, i].copy()
                if hess is not None:
                    hessians[k] = hess[:, i, :].copy()
        return StageValues(values, gradients, hessians if hessian else None)
