r"""Convergence in depth: the ResNet as a discretisation of the neural ODE.

For a control whose θ(t) does not depend on the grid (:class:`~control_dl.TimeInvariant`,
:class:`~control_dl.PiecewiseLinear`, :class:`~control_dl.Spectral`), the same w defines networks of
every depth N. The final states x_N^{(N)} converge to the flow's x(T) as N grows,

    max_i ‖x_{N,i}^{(N)} − x_i(T)‖ ≈ C h^q,   h = T / N,

with q the integrator's order (1 for Euler, the ResNet). The reference x(T) is RK4 on a grid
``refine`` times finer than the finest N.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..problems.controls import PiecewiseConstant
from ..problems.datasets import as_features
from ..problems.training import TrainingProblem
from ._common import weights_of


@dataclass(frozen=True)
class ConvergenceReport:
    """Errors of the depth-N networks against the fine-step flow.

    Attributes
    ----------
    n_steps : ndarray
        Depths N.
    step_sizes : ndarray
        h = T / N.
    errors : ndarray
        max_i ‖x_{N,i} − x_i(T)‖ per depth.
    order : float
        Slope of log error against log h (least squares).
    reference_steps : int
        RK4 steps of the reference flow.
    """

    n_steps: np.ndarray
    step_sizes: np.ndarray
    errors: np.ndarray
    order: float
    reference_steps: int


def _final_states(problem: TrainingProblem, w: np.ndarray, n_steps: int, integrator: str, X: np.ndarray) -> np.ndarray:
    control = dataclasses.replace(problem.control, n_steps=n_steps)
    variant = dataclasses.replace(problem, control=control, integrator=integrator, spec=None)
    return variant.forward(w, X)[-1]


def euler_convergence(
    problem: TrainingProblem,
    w: Any,
    n_steps: Any = (4, 8, 16, 32, 64),
    refine: int = 4,
    X: np.ndarray | None = None,
    layout: str = "features",
) -> ConvergenceReport:
    """Error of the problem's integrator at depths N against the fine RK4 flow, and the fitted order.

    Parameters
    ----------
    problem : TrainingProblem
        A problem whose control does not depend on the grid (not PiecewiseConstant).
    w : Result or array_like
        Decision vector (or a solve).
    n_steps : sequence of int
        Depths to compare (at least two).
    refine : int
        The reference uses ``refine × max(n_steps)`` RK4 steps.
    X : ndarray, optional
        Model inputs (standardised like ``problem.data.x_train``; default: the training inputs).
    layout : {"features", "samples"}
        X is ``n_in × S`` ("features") or ``S × n_in`` ("samples").

    Returns
    -------
    ConvergenceReport
        Errors and the observed order.
    """
    if isinstance(problem.control, PiecewiseConstant):
        raise ValueError(
            "euler_convergence needs θ(t) independent of the grid; PiecewiseConstant ties θ_k to the "
            "steps (use TimeInvariant, PiecewiseLinear or Spectral)"
        )
    depths = np.array(sorted({int(n) for n in n_steps}))
    if depths.size < 2 or depths[0] < 1:
        raise ValueError(f"n_steps={list(n_steps)} needs at least two depths >= 1")
    w = weights_of(problem, w)
    x = problem.data.x_train if X is None else as_features(X, problem.data.n_in, layout)
    reference_steps = int(refine * depths[-1])
    reference = _final_states(problem, w, reference_steps, "rk4", x)
    errors = np.array(
        [
            np.max(np.linalg.norm(_final_states(problem, w, n, problem.integrator, x) - reference, axis=0))
            for n in depths
        ]
    )
    sizes = problem.horizon / depths
    order = float(np.polyfit(np.log(sizes), np.log(errors), 1)[0])
    return ConvergenceReport(depths, sizes, errors, order, reference_steps)
