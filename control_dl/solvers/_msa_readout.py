r"""The readout update of MSA / E-MSA: J as a function of the readout z = (P, c) for fixed states.

With θ fixed (and the fixed zero-padding lift) the states x_0..x_N do not depend on z, and

    J(z) = (1/S) Σ_i [ ℓ(λ2(x_{N,i}; z), y_i) + h Σ_{k=1}^{N} r(x_{k,i}; z) ] + R(θ)

is convex in z: λ2 is affine in (P, c) and the losses ℓ (MSE, logistic, cross-entropy) are convex in
the prediction. ``readout="exact"`` minimises it to optimality after every Hamiltonian step, so
that every iterate of MSA is a variable-projection iterate J̄(θ) = min_z J(θ, z) (Golub & Pereyra
1973); by the envelope theorem ∇_θ J̄ = ∇_θ J there, which the costates give. Small readouts
(≤ :data:`NEWTON_MAX` entries) take damped Newton (one step for MSE: linear least squares);
larger ones L-BFGS-B to a tight gradient tolerance. ``readout="lbfgsb"`` takes a fixed number
of L-BFGS-B iterations (the inexact update of earlier versions, kept for comparison).

The states come from any engine (:meth:`~control_dl.engines.Engine.states`); J(z) is a small
CasADi Function of (z, states, y) built from the problem's traced terminal and running costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import casadi as ca
import numpy as np
from scipy import optimize

from ..engines import casadi_model
from ..engines._jit import compile_function

#: Largest readout solved by Newton with a dense Hessian; larger readouts use L-BFGS-B.
NEWTON_MAX = 200


class ReadoutObjective:
    """J − R(θ) as a function of the readout z for fixed states, with its gradient (and Hessian).

    Parameters
    ----------
    problem : TrainingProblem
        A problem with a readout (a flow; a feed-forward model has none).
    n_samples : int
        Batch size S.
    jit : bool
        Compile the Functions to C (disk cache).
    """

    def __init__(self, problem: Any, n_samples: int, jit: bool) -> None:
        model, lay = casadi_model(problem), problem.layout
        self.problem, self.n_samples = problem, n_samples
        self.running = problem.cost.has_running_cost
        z = ca.MX.sym("z", lay.n_readout)
        n_states = problem.n_steps if self.running else 1  # x_1..x_N, or x_N alone
        states = ca.MX.sym("X", problem.dim, n_samples * n_states)
        y = ca.MX.sym("y", lay.n_out, n_samples)
        w = ca.vertcat(ca.MX.zeros(lay.n_theta), z, ca.MX.zeros(lay.n_params - lay.n_theta - lay.n_readout))
        columns = [states[:, i * n_samples : (i + 1) * n_samples] for i in range(n_states)]
        # x_0 never enters J; without running costs only x_N does
        columns = [columns[0], *columns] if self.running else [columns[0]] * (problem.n_steps + 1)
        _, loss, rest = model.objective_parts(w, columns, y, regulariser=False)
        j = loss + rest
        grad = ca.gradient(j, z)
        outputs = [j, grad]
        if lay.n_readout <= NEWTON_MAX:
            outputs.append(ca.densify(ca.jacobian(grad, z)))
        f = ca.Function("readout_objective", [z, states, y], outputs)
        if not self.running and lay.n_readout <= NEWTON_MAX:
            # per-sample SX derivatives summed over the samples: a mapped reverse-over-reverse
            # Hessian of the whole batch costs ~30x more (measured on breast cancer, 31 entries)
            zs, xs, ys = ca.SX.sym("z", lay.n_readout), ca.SX.sym("x", problem.dim), ca.SX.sym("y", lay.n_out)
            loss = model.terminal(xs, ys, zs)
            hess, grad_s = ca.hessian(loss, zs)
            per_sample = ca.Function("readout_sample", [zs, xs, ys], [loss, grad_s, hess])
            total = per_sample.map("readout_samples", "serial", n_samples, [0], [0, 1, 2])(z, states, y)
            f = ca.Function("readout_objective", [z, states, y], [v / n_samples for v in total])
        value = ca.Function("readout_value", [z, states, y], [j])
        self.function = compile_function(f)[0] if jit else f
        self.value = compile_function(value)[0] if jit else value

    def bind(
        self, states: list[np.ndarray], y: np.ndarray
    ) -> tuple[Callable[[np.ndarray], tuple[np.ndarray, ...]], Callable[[np.ndarray], float]]:
        """z -> (J − R, ∇J, [∇²J]) as numpy arrays, and z -> J − R, for the given states x_0..x_N and targets."""
        # converted to CasADi matrices once: converting the d × S states on every call costs 10x the evaluation
        data = ca.DM(np.hstack(states[1:]) if self.running else states[-1])
        y = ca.DM(y)

        def fun(z: np.ndarray) -> tuple[np.ndarray, ...]:
            return tuple(np.asarray(v, dtype=float) for v in self.function(z, data, y))

        def value(z: np.ndarray) -> float:
            return float(self.value(z, data, y))

        return fun, value

    def minimise(
        self, z: np.ndarray, states: list[np.ndarray], y: np.ndarray, readout: str, iters: int
    ) -> tuple[np.ndarray, float]:
        """Update z for fixed states: exactly (``readout="exact"``) or by ``iters`` L-BFGS-B iterations.

        Parameters
        ----------
        z : ndarray
            Current readout.
        states : list of ndarray
            x_0..x_N (``d × S`` each).
        y : ndarray
            Encoded targets ``n_out × S``.
        readout : {"exact", "lbfgsb"}
            The update.
        iters : int
            L-BFGS-B iterations of the inexact update.

        Returns
        -------
        tuple
            The new z and J − R(θ) there (NaN if not finite).
        """
        fun, value = self.bind(states, y)
        if not math.isfinite(value(z)):
            return z, math.nan
        if readout == "exact" and self.problem.layout.n_readout <= NEWTON_MAX:
            return newton(fun, value, z)
        options = {"maxiter": iters} if readout == "lbfgsb" else {"maxiter": 100, "gtol": 1e-10, "ftol": 1e-15}

        def value_gradient(v: np.ndarray) -> tuple[float, np.ndarray]:
            out = fun(v)
            return out[0].item(), out[1].ravel()

        res = optimize.minimize(value_gradient, z, jac=True, method="L-BFGS-B", options=options)
        return np.asarray(res.x, dtype=float), float(res.fun)


def newton(
    fun: Callable[[np.ndarray], tuple[np.ndarray, ...]],
    value: Callable[[np.ndarray], float],
    z: np.ndarray,
    max_iter: int = 10,
) -> tuple[np.ndarray, float]:
    """Minimise a convex J(z) by damped Newton.

    z ← z + α s with H s = −g solved in the least-squares sense (H is singular when the final
    states do not span R^d), α ← α/10 until J decreases by at least ¼ α |g·s| (Armijo; on a nearly
    singular H the first step is far too long, and halving cost 10–30 trials of it on breast cancer); stops when
    the Newton decrement −g·s is below 1e-15 (1 + |J|) or after ``max_iter`` steps. For MSE J is
    quadratic in z and the first step is the linear least-squares solution. For a logistic or
    cross-entropy loss on separable final states J has no minimiser (it decreases as the readout
    grows): ``max_iter`` bounds that chase.

    Parameters
    ----------
    fun : callable
        z -> (J, ∇J, ∇²J).
    value : callable
        z -> J (the line search's trials).
    z : ndarray
        Start.
    max_iter : int
        Newton iterations.

    Returns
    -------
    tuple
        The minimiser and J there.
    """
    j, g, h = fun(z)
    j, g = j.item(), g.ravel()
    for _ in range(max_iter):
        if not (np.all(np.isfinite(h)) and np.all(np.isfinite(g))):
            break
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN decrement ends the loop just below
            step = -np.linalg.lstsq(h, g, rcond=None)[0]
            decrement = -float(g @ step)
        if not decrement > 1e-15 * (1.0 + abs(j)):  # also catches a non-descent step from round-off
            break
        alpha = 1.0
        while alpha > 1e-10 and not value(z + alpha * step) <= j - 0.25 * alpha * decrement:
            alpha *= 0.1
        if alpha <= 1e-10:
            break
        z = z + alpha * step
        j, g, h = fun(z)
        j, g = j.item(), g.ravel()
    return z, j
