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

from .._errors import as_list, check_choice, check_positive_int, is_integer, spec_error
from ..problems.controls import PiecewiseConstant
from ..problems.datasets import LAYOUTS, as_features
from ..problems.training import TrainingProblem
from ._common import require_flow, weights_of


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
        Model inputs, a matrix laid out as ``layout`` says (standardised like
        ``problem.data.x_train``; default: the training inputs).
    layout : {"features", "samples"}
        X is ``n_in × S`` ("features") or ``S × n_in`` ("samples").

    Returns
    -------
    ConvergenceReport
        Errors and the observed order.

    Raises
    ------
    SpecError
        ``problem`` is not a flow, ``w`` does not fit it, ``n_steps`` is not a list of at least
        two depths >= 1, ``refine`` < 1, or ``X`` does not have the layout given.
    """
    w = weights_of(problem, w)
    require_flow(problem, "euler_convergence")
    if isinstance(problem.control, PiecewiseConstant):
        raise spec_error(
            "control",
            "PiecewiseConstant",
            "euler_convergence needs θ(t) independent of the grid; PiecewiseConstant ties θ_k to the "
            "steps (use TimeInvariant, PiecewiseLinear or Spectral)",
        )
    why = "must be a list of at least two different depths N >= 1, e.g. (4, 8, 16)"
    listed = as_list("n_steps", n_steps, why[8:])
    if not all(is_integer(n) and n >= 1 for n in listed) or len(set(listed)) < 2:
        raise spec_error("n_steps", listed, why)
    depths = np.array(sorted({int(n) for n in listed}))
    check_positive_int("refine", refine)
    check_choice("layout", layout, LAYOUTS)
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
