r"""Two time scales: θ(t, τ) over layer time t and training time τ.

A solve run with ``record_every=K`` keeps snapshots w(τ_i) every K iterations
(``result.snapshots``). :func:`training_dynamics` evaluates on that grid

    ‖θ(t_k + h/2, τ_i)‖            at the midpoint of every step (layer) k and snapshot i,
    D(τ_i) = (h Σ_k ‖θ(t_k + h/2, τ_i) − θ(t_k + h/2, τ_final)‖²)^{1/2}

the layer-time profile of the weights as training proceeds and the distance of each snapshot to
the final θ(·) (a discrete L²(0, T) norm), plus the objective and loss of every snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import spec_error
from ..problems.training import TrainingProblem
from ._common import weights_of


@dataclass(frozen=True)
class TrainingDynamics:
    """θ over layer time × training time (see :func:`training_dynamics`).

    Attributes
    ----------
    t : ndarray
        Layer times t_k + h/2, shape ``(N,)``.
    iterations : ndarray
        Iteration τ_i of every snapshot, shape ``(n,)``.
    wall_times : ndarray
        Seconds since the start of the solve at every snapshot.
    theta_norm : ndarray
        ‖θ(t_k + h/2, τ_i)‖, shape ``(n, N)``.
    distance : ndarray
        D(τ_i): L² distance of each snapshot's θ(·) to the final one, shape ``(n,)``.
    objective, loss : ndarray
        J and the training loss at every snapshot.
    """

    t: np.ndarray
    iterations: np.ndarray
    wall_times: np.ndarray
    theta_norm: np.ndarray
    distance: np.ndarray
    objective: np.ndarray
    loss: np.ndarray


def training_dynamics(problem: TrainingProblem, result: Any) -> TrainingDynamics:
    """‖θ(t, τ)‖ on the (layer time, snapshot) grid and each snapshot's distance to the final θ.

    Parameters
    ----------
    problem : TrainingProblem
        The problem that was solved.
    result : Result
        A result with snapshots (solve with ``record_every=K > 0``).

    Returns
    -------
    TrainingDynamics
        The grid values.

    Raises
    ------
    SpecError
        ``problem`` is not a TrainingProblem, or ``result`` (its w) does not fit it or is not finite;
        or the result has no snapshots (solve with ``record_every=K > 0``).
    """
    final_w = weights_of(problem, result)
    snapshots = getattr(result, "snapshots", None)
    if not snapshots:
        what = (
            "a decision vector" if snapshots is None else f"a Result of {getattr(result, 'solver', '') or 'a solver'}"
        )
        raise spec_error("result", what, "has no snapshots: solve with a solver option record_every=K > 0")
    h = problem.step_size
    t = problem.times[:-1] + 0.5 * h
    final = problem.theta(final_w, t)
    thetas = np.stack([problem.theta(w, t) for _, _, w in snapshots])
    values = [problem.objective_and_loss(w) for _, _, w in snapshots]
    return TrainingDynamics(
        t=t,
        iterations=np.array([i for i, _, _ in snapshots], dtype=int),
        wall_times=np.array([s for _, s, _ in snapshots], dtype=float),
        theta_norm=np.linalg.norm(thetas, axis=2),
        distance=np.sqrt(h * np.sum((thetas - final) ** 2, axis=(1, 2))),
        objective=np.array([j for j, _ in values]),
        loss=np.array([loss for _, loss in values]),
    )
