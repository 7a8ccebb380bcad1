r"""CasADi Functions of a :class:`TrainingProblem`, built from the one model definition.

Each piece of the model is traced ONCE on a single sample (SX symbols, ``S = 1``) into a small
CasADi Function, ``map``-ped over the S columns of the batch, and folded over the N steps in an MX
graph. This keeps the graph size O(N) instead of O(N·S) (never one giant expanded SX graph).

Per-sample Functions (all column vectors):

- ``lift(x_in, w_lift) -> x_0``
- ``step(x_k, Θ_k) -> x_{k+1}`` with Θ_k the θ vectors at the integrator nodes stacked,
- ``terminal(x_N, y, w_readout) -> ℓ(λ2(x_N), y)``,
- ``running(x_k, y, w_readout) -> κ ℓ(λ2(x_k), y) + η ‖x_k − x̄‖²``.

The step is traced from the problem's :class:`~control_dl.problems.dynamics.Dynamics`: once when
every stage shares one map (``dynamics.shared_step``: a flow), else once per stage (a feed-forward
model, whose layers' shapes differ); :meth:`CasadiModel.step_at` gives stage k's Function.

:func:`casadi_model` caches one model per problem (and parallelization); the symbolic builders below
(:func:`objective_loss_gradient`, :func:`objective_function`, :func:`gauss_newton_hvp`,
:func:`stage_functions`) are what the CasADi engine compiles and what the sparse transcriptions
(multiple shooting, collocation, fatrop) compose.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import casadi as ca
import numpy as np

from ..backends import casadi_ops as ops
from ..problems.costs import loss_per_sample
from ..problems.layout import block_size

if TYPE_CHECKING:
    from ..problems.training import TrainingProblem


class CasadiModel:
    """Compiled CasADi view of a problem.

    Parameters
    ----------
    problem : TrainingProblem
        The problem to trace.
    parallelization : {"serial", "thread", "openmp"}
        How ``map`` evaluates the samples.
    """

    def __init__(self, problem: TrainingProblem, parallelization: str = "serial") -> None:
        self.problem = problem
        self.parallelization = parallelization
        self._functions: dict[int, tuple[ca.Function, ca.Function]] = {}
        lay = problem.layout
        dims = problem.state_dims
        x = ca.SX.sym("x", dims[-1])
        x_in = ca.SX.sym("x_in", lay.n_in)
        y = ca.SX.sym("y", lay.n_out)
        w_readout = ca.SX.sym("w_readout", lay.n_readout)
        w_lift = ca.SX.sym("w_lift", lay.n_params - lay.n_theta - lay.n_readout)
        readout = lay.unpack(w_readout, lay.readout_shapes, ops)
        lift = lay.unpack(w_lift, lay.lift_shapes, ops)
        dynamics = problem.dynamics
        traced = range(1) if dynamics.shared_step else range(problem.n_steps)
        self.steps = [self._trace_step(k, "step" if dynamics.shared_step else f"step{k}") for k in traced]
        self.lift = ca.Function(
            "lift", [x_in, w_lift], [problem.lift_states(x_in, lift, ops)], ["x_in", "w_lift"], ["x0"]
        )
        self.terminal = ca.Function(
            "terminal", [x, y, w_readout], [problem.terminal_loss(x, y, readout, ops)], ["x", "y", "w_readout"], ["l"]
        )
        yhat = ca.SX.sym("yhat", lay.n_out)
        self.readout = ca.Function(
            "readout", [x, w_readout], [problem.readout(x, readout, ops)], ["x", "w_readout"], ["yhat"]
        )
        self.loss = ca.Function(
            "loss", [yhat, y], [ops.sum(loss_per_sample(problem.cost.loss, yhat, y, ops))], ["yhat", "y"], ["l"]
        )
        self.running = ca.Function(
            "running",
            [x, y, w_readout],
            [ca.SX(problem.running_cost(x, y, readout, ops))],
            ["x", "y", "w_readout"],
            ["r"],
        )

    def _trace_step(self, k: int, name: str) -> ca.Function:
        """Stage k's per-sample ``(x_k, Θ_k) -> x_{k+1}``, Θ_k the node values of θ stacked."""
        dynamics = self.problem.dynamics
        size = block_size(dynamics.stage_shapes(k))
        x = ca.SX.sym("x", dynamics.state_dims[k])
        thetas = ca.SX.sym("Theta", size * dynamics.n_nodes)
        nodes = [thetas[i * size : (i + 1) * size] for i in range(dynamics.n_nodes)]
        return ca.Function(name, [x, thetas], [dynamics.step(k, x, nodes, ops)], ["x", "Theta"], ["x_next"])

    def mapped(self, f: ca.Function, n: int, reduce_in: list[int], reduce_out: list[int]) -> ca.Function:
        """``f`` mapped over ``n`` samples with this model's parallelization.

        Parameters
        ----------
        f : casadi.Function
            A per-sample Function.
        n : int
            Number of samples (columns).
        reduce_in : list of int
            Inputs shared by all samples (not repeated).
        reduce_out : list of int
            Outputs summed over the samples.

        Returns
        -------
        casadi.Function
            The mapped Function.
        """
        return f.map(f"{f.name()}_map{n}", self.parallelization, n, reduce_in, reduce_out)

    def step_at(self, k: int) -> ca.Function:
        """The per-sample step Function of step (layer) k: ``(x_k, Θ_k) -> x_{k+1}``.

        Parameters
        ----------
        k : int
            Step index.

        Returns
        -------
        casadi.Function
            The one traced step when the stages share it (a flow), else stage k's own.
        """
        return self.steps[0 if self.problem.dynamics.shared_step else k]

    def stage_vector(self, w: ca.MX, k: int) -> ca.MX:
        """Θ_k: θ at the integrator nodes of step k, stacked (MX).

        Parameters
        ----------
        w : casadi.MX
            Decision vector.
        k : int
            Step index.

        Returns
        -------
        casadi.MX
            Θ_k, a column of (nodes per step) · p entries.
        """
        return ca.vertcat(*self.problem.stage_thetas(w, k, ops))

    def trajectory_expr(self, w: ca.MX, x: ca.MX) -> list[ca.MX]:
        """[X_0, …, X_N] as MX for a symbolic batch x (``n_in × S``).

        Parameters
        ----------
        w : casadi.MX
            Decision vector.
        x : casadi.MX or casadi.DM
            Inputs ``n_in × S``.

        Returns
        -------
        list of casadi.MX
            States, each ``d_k × S``.
        """
        p, lay = self.problem, self.problem.layout
        n = x.shape[1]
        states = [self.mapped(self.lift, n, [1], [])(x, w[lay.n_theta + lay.n_readout :])]
        mapped: dict[str, ca.Function] = {}
        for k in range(p.n_steps):
            f = self.step_at(k)
            if f.name() not in mapped:
                mapped[f.name()] = self.mapped(f, n, [1], [])
            states.append(mapped[f.name()](states[-1], self.stage_vector(w, k)))
        return states

    def objective_parts(
        self, w: ca.MX, states: list[ca.MX], y: ca.MX, normaliser: float | None = None, regulariser: bool = True
    ) -> tuple[ca.MX, ca.MX, ca.MX]:
        """Ŷ = λ2(X_N), the mean terminal loss and the rest of J (regulariser, running terms).

        Every transcription composes J from these parts, whatever holds the states (a simulation
        for single shooting, decision variables for multiple shooting and collocation).

        Parameters
        ----------
        w : casadi.MX
            Decision vector.
        states : list of casadi.MX
            X_0..X_N, each ``d × S``.
        y : casadi.MX or casadi.DM
            Encoded targets ``n_out × S``.
        normaliser : float, optional
            n in the (1/n) Σ_i of the loss and running terms (default S).
        regulariser : bool
            Include R(θ) in ``rest``.

        Returns
        -------
        tuple of casadi.MX
            ``(predictions, loss, rest)``: predictions ``n_out × S``, loss and rest 1 × 1; J = loss + rest.
        """
        p, lay = self.problem, self.problem.layout
        s = y.shape[1]
        n = float(s if normaliser is None else normaliser)
        w_readout = w[lay.n_theta : lay.n_theta + lay.n_readout]
        predictions = self.mapped(self.readout, s, [1], [])(states[-1], w_readout)
        loss = self.mapped(self.loss, s, [], [0])(predictions, y) / n
        rest = p.regulariser(w, ops) if regulariser else ca.MX(0)
        if p.cost.has_running_cost:
            run = self.mapped(self.running, s, [2], [0])
            for state in states[1:]:
                rest = rest + p.step_size * run(state, y, w_readout) / n
        return predictions, loss, rest

    def objective_expr(self, w: ca.MX, x: ca.MX, y: ca.MX) -> tuple[ca.MX, ca.MX]:
        """(J, loss) as MX expressions of w and the batch (x, y), by simulation (single shooting).

        Parameters
        ----------
        w : casadi.MX
            Decision vector.
        x, y : casadi.MX
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.

        Returns
        -------
        tuple of casadi.MX
            ``(J, loss)``, each 1 × 1.
        """
        _, loss, rest = self.objective_parts(w, self.trajectory_expr(w, x), y)
        return loss + rest, loss

    def functions(self, n_samples: int) -> tuple[ca.Function, ca.Function]:
        """(J, loss) and (J, ∇J) as Functions of (w, x, y) for batches of ``n_samples`` columns.

        Parameters
        ----------
        n_samples : int
            Batch size S.

        Returns
        -------
        tuple of casadi.Function
            ``objective(w, x, y) -> (J, loss)`` and ``gradient(w, x, y) -> (J, g)``.
        """
        if n_samples in self._functions:
            return self._functions[n_samples]
        lay = self.problem.layout
        w = ca.MX.sym("w", lay.n_params)
        x = ca.MX.sym("x", lay.n_in, n_samples)
        y = ca.MX.sym("y", lay.n_out, n_samples)
        j, loss = self.objective_expr(w, x, y)
        objective = ca.Function("objective", [w, x, y], [j, loss], ["w", "x", "y"], ["J", "loss"])
        gradient = ca.Function("gradient", [w, x, y], [j, ca.gradient(j, w)], ["w", "x", "y"], ["J", "g"])
        self._functions[n_samples] = (objective, gradient)
        return objective, gradient

    def objective(self, w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Evaluate (J, loss) numerically.

        Parameters
        ----------
        w : ndarray
            Decision vector.
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.

        Returns
        -------
        tuple of float
            Objective and loss.
        """
        j, loss = self.functions(x.shape[1])[0](w, x, y)
        return float(j), float(loss)

    def objective_gradient(self, w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Evaluate J and ∇_w J numerically.

        Parameters
        ----------
        w : ndarray
            Decision vector, ``(n_params,)``.
        x, y : ndarray
            Inputs ``n_in × S`` and encoded targets ``n_out × S``.

        Returns
        -------
        tuple
            (J, ∇_w J as a flat ndarray of shape ``(n_params,)``), by CasADi's reverse mode.
        """
        j, g = self.functions(x.shape[1])[1](w, x, y)
        return float(j), np.asarray(g, dtype=float).ravel()


_MODELS: weakref.WeakKeyDictionary[TrainingProblem, dict[str, CasadiModel]] = weakref.WeakKeyDictionary()


def casadi_model(problem: TrainingProblem, parallelization: str = "serial") -> CasadiModel:
    """The problem's :class:`CasadiModel`, traced once per problem and parallelization (cached).

    The cache holds the problem weakly: a model lives as long as its problem.

    Parameters
    ----------
    problem : TrainingProblem
        The problem.
    parallelization : {"serial", "thread", "openmp"}
        How the model's ``map``s evaluate the samples.

    Returns
    -------
    CasadiModel
        The cached model.
    """
    models = _MODELS.setdefault(problem, {})
    if parallelization not in models:
        models[parallelization] = CasadiModel(problem, parallelization)
    return models[parallelization]


def _single_shooting(
    model: CasadiModel, n_samples: int, normaliser: float | None, regulariser: bool
) -> tuple[ca.MX, ca.MX, ca.MX, ca.MX, ca.MX, ca.MX]:
    """Symbols w, x, y and the MX parts (Ŷ, loss, rest) of J by simulation, for S = ``n_samples``."""
    lay = model.problem.layout
    w = ca.MX.sym("w", lay.n_params)
    x = ca.MX.sym("x", lay.n_in, n_samples)
    y = ca.MX.sym("y", lay.n_out, n_samples)
    predictions, loss, rest = model.objective_parts(w, model.trajectory_expr(w, x), y, normaliser, regulariser)
    return w, x, y, predictions, loss, rest


def objective_loss_gradient(
    model: CasadiModel, n_samples: int, normaliser: float | None = None, regulariser: bool = True
) -> ca.Function:
    """``(w, x, y) -> (J, loss, ∇_w J, Ŷ)`` for batches of ``n_samples`` columns (not compiled).

    Ŷ = λ2(x_N) are the predictions (``n_out × S``), so accuracies cost nothing extra. ∇_w J is
    CasADi's reverse mode through the mapped per-sample steps.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    n_samples : int
        Batch size S.
    normaliser : float, optional
        n in J's (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ).

    Returns
    -------
    casadi.Function
        The Function, named ``objective_loss_gradient``.
    """
    w, x, y, predictions, loss, rest = _single_shooting(model, n_samples, normaliser, regulariser)
    j = loss + rest
    return ca.Function(
        "objective_loss_gradient",
        [w, x, y],
        [j, loss, ca.gradient(j, w), predictions],
        ["w", "x", "y"],
        ["J", "loss", "g", "yhat"],
    )


def objective_function(
    model: CasadiModel, n_samples: int, normaliser: float | None = None, regulariser: bool = True, outputs: str = "J"
) -> ca.Function:
    """``(w, x, y) -> J`` (or ``-> (J, loss, Ŷ)``) for batches of ``n_samples`` columns (not compiled).

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    n_samples : int
        Batch size S.
    normaliser : float, optional
        n in J's (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ).
    outputs : {"J", "J_loss_yhat"}
        J alone (what IPOPT differentiates), or also the loss and the predictions.

    Returns
    -------
    casadi.Function
        The Function, named ``objective_j`` (``objective_loss`` with all outputs).
    """
    w, x, y, predictions, loss, rest = _single_shooting(model, n_samples, normaliser, regulariser)
    if outputs == "J":
        return ca.Function("objective_j", [w, x, y], [loss + rest], ["w", "x", "y"], ["J"])
    return ca.Function(
        "objective_loss", [w, x, y], [loss + rest, loss, predictions], ["w", "x", "y"], ["J", "loss", "yhat"]
    )


def gauss_newton_hvp(
    model: CasadiModel, n_samples: int, normaliser: float | None = None, regulariser: bool = True
) -> ca.Function:
    r"""``(w, v, x, y) -> G(w) v``, the generalised Gauss-Newton Hessian times v, matrix-free.

    G = J_Ŷᵀ (∇²_Ŷ ℓ / n) J_Ŷ + ∇²(rest) (Schraudolph 2002), with Ŷ = λ2(x_N(w)) the predictions: a
    forward directional derivative J_Ŷ v (``jtimes``), the per-sample loss Hessian in the outputs
    (2/n for MSE, σ(1−σ)/n for logistic), then a reverse product J_Ŷᵀ u; the regulariser and running
    terms ("rest") enter with their exact Hessian-vector product. No Jacobian is ever formed.

    Parameters
    ----------
    model : CasadiModel
        The problem's CasADi view.
    n_samples : int
        Batch size S.
    normaliser : float, optional
        n in J's (1/n) Σ_i (default S).
    regulariser : bool
        Include R(θ).

    Returns
    -------
    casadi.Function
        The Function, named ``gauss_newton_hvp``.
    """
    lay = model.problem.layout
    n = float(n_samples if normaliser is None else normaliser)
    w, x, y, predictions, _, rest = _single_shooting(model, n_samples, normaliser, regulariser)
    v = ca.MX.sym("v", lay.n_params)
    yhat_s, y_s, d_s = (ca.SX.sym(name, lay.n_out) for name in ("yhat", "y", "d"))
    hessian = ca.hessian(model.loss(yhat_s, y_s), yhat_s)[0]
    weigh = ca.Function("loss_hessian_times", [yhat_s, y_s, d_s], [ca.mtimes(hessian, d_s)])
    u = model.mapped(weigh, n_samples, [], [])(predictions, y, ca.jtimes(predictions, w, v)) / n
    hv = ca.jtimes(predictions, w, u, True) + ca.jtimes(ca.gradient(rest, w), w, v)
    return ca.Function("gauss_newton_hvp", [w, v, x, y], [hv], ["w", "v", "x", "y"], ["Gv"])


def stage_functions(step: ca.Function) -> tuple[ca.Function, ca.Function, ca.Function]:
    r"""Per-sample pieces of one step x⁺ = F(x, Θ) (any step Function; the state sizes may differ).

    The sample's term of the augmented Hamiltonian of E-MSA (Li, Chen, Tai & E 2018) is
    a = p⁺·F(x, Θ) − ρ/2 (‖x⁺ − F(x, Θ)‖² + ‖q − J_{F,x}(x, Θ)ᵀ p⁺‖²).

    Parameters
    ----------
    step : casadi.Function
        ``(x, Θ) -> x⁺`` for one sample.

    Returns
    -------
    tuple of casadi.Function
        ``vjp(x, Θ, p_next) -> J_{F,x}ᵀ p_next``; ``h_vg(x, p_next, x_next, q, Θ, rho) -> (a, ∇_Θ a)``
        and ``h_vgh`` (also ∇²_Θ a).
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
        ca.Function("vjp", [x, theta, pn], [vjp], ["x", "Theta", "p_next"], ["q"]),
        ca.Function("h_vg", ins, [a, grad], names, ["H", "g"]),
        ca.Function("h_vgh", ins, [a, grad, hess], names, ["H", "g", "Hess"]),
    )


def sum_over_samples(per_sample: ca.Function, n_samples: int) -> ca.Function:
    """Map a per-sample ``h_vg``/``h_vgh`` over S columns, summing every output (Θ and ρ shared)."""
    return per_sample.map("samples", "serial", n_samples, [4, 5], list(range(per_sample.n_out())))
