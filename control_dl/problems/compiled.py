r"""CasADi Functions of a :class:`TrainingProblem`, built from the one model definition.

Each piece of the model is traced ONCE on a single sample (SX symbols, ``S = 1``) into a small
CasADi Function, ``map``-ped over the S columns of the batch, and folded over the N steps in an MX
graph. This keeps the graph size O(N) instead of O(N·S) (never one giant expanded SX graph).

Per-sample Functions (all column vectors):

- ``lift(x_in, w_lift) -> x_0``
- ``step(x_k, Θ_k) -> x_{k+1}`` with Θ_k the θ vectors at the integrator nodes stacked,
- ``terminal(x_N, y, w_readout) -> ℓ(λ2(x_N), y)``,
- ``running(x_k, y, w_readout) -> κ ℓ(λ2(x_k), y) + η ‖x_k − x̄‖²``.

A feed-forward model has one step Function per layer (``layer_steps[k](x_k, θ_k)``, the shapes
differ per layer) and ``step`` is None; :meth:`CasadiModel.step_at` gives either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import casadi as ca
import numpy as np

from ..backends import casadi_ops as ops
from .costs import loss_per_sample

if TYPE_CHECKING:
    from .training import TrainingProblem


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
        self.step: ca.Function | None = None
        self.layer_steps: list[ca.Function] | None = None
        if problem.model is None:
            n_nodes = len(problem.scheme.nodes)
            thetas = ca.SX.sym("Theta", lay.p * n_nodes)
            stage = [thetas[i * lay.p : (i + 1) * lay.p] for i in range(n_nodes)]
            self.step = ca.Function("step", [x, thetas], [problem.step(x, stage, ops)], ["x", "Theta"], ["x_next"])
        else:
            self.layer_steps = []
            for k, size in enumerate(lay.sizes):
                x_k, theta_k = ca.SX.sym("x", dims[k]), ca.SX.sym("Theta", size)
                x_next = problem.step(x_k, [theta_k], ops, k)
                self.layer_steps.append(ca.Function(f"layer{k}", [x_k, theta_k], [x_next], ["x", "Theta"], ["x_next"]))
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
            ``step`` for a flow, ``layer_steps[k]`` for a feed-forward model.
        """
        return self.step if self.layer_steps is None else self.layer_steps[k]

    def stage_vector(self, w: ca.MX, k: int) -> ca.MX:
        """Θ_k: θ at the integrator nodes of step k, stacked (MX)."""
        return ca.vertcat(*self.problem.stage_thetas(w, k, ops))

    def trajectory_expr(self, w: ca.MX, x: ca.MX) -> list[ca.MX]:
        """[X_0, …, X_N] as MX for a symbolic batch x (``n_in × S``)."""
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

    def objective_parts(self, w: ca.MX, states: list[ca.MX], y: ca.MX) -> tuple[ca.MX, ca.MX, ca.MX]:
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

        Returns
        -------
        tuple of casadi.MX
            ``(predictions, loss, rest)`` with J = loss + rest.
        """
        p, lay = self.problem, self.problem.layout
        n = y.shape[1]
        w_readout = w[lay.n_theta : lay.n_theta + lay.n_readout]
        predictions = self.mapped(self.readout, n, [1], [])(states[-1], w_readout)
        loss = self.mapped(self.loss, n, [], [0])(predictions, y) / n
        rest = p.regulariser(w, ops)
        if p.cost.has_running_cost:
            run = self.mapped(self.running, n, [2], [0])
            for state in states[1:]:
                rest = rest + p.step_size * run(state, y, w_readout) / n
        return predictions, loss, rest

    def objective_expr(self, w: ca.MX, x: ca.MX, y: ca.MX) -> tuple[ca.MX, ca.MX]:
        """(J, loss) as MX expressions of w and the batch (x, y), by simulation (single shooting)."""
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
            Decision vector.
        x, y : ndarray
            Batch.

        Returns
        -------
        tuple
            (J, gradient as a flat ndarray).
        """
        j, g = self.functions(x.shape[1])[1](w, x, y)
        return float(j), np.asarray(g, dtype=float).ravel()
