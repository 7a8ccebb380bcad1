"""Euler and RK4 converge to the exact flow of a linear ODE with their declared orders."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

import control_dl as cdl


def _linear_problem(n_steps: int, integrator: str) -> cdl.TrainingProblem:
    # f(x) = A x + b with identity activation and a time-invariant θ: x' = A x + b
    return cdl.TrainingProblem(
        data=cdl.datasets.sin(6, seed=2),
        field=cdl.Inside("identity"),
        dim=2,
        control=cdl.TimeInvariant(n_steps=n_steps),
        horizon=1.0,
        integrator=integrator,
    )


def _exact_final_state(problem: cdl.TrainingProblem, w: np.ndarray) -> np.ndarray:
    theta = problem.unflatten(w)["theta"][0]
    a, b = theta["A"], theta["b"]
    d = a.shape[0]
    augmented = np.zeros((d + 1, d + 1))
    augmented[:d, :d], augmented[:d, d] = a, b
    flow = expm(augmented * problem.horizon)
    x0 = problem.forward(w)[0]
    return flow[:d, :d] @ x0 + flow[:d, d : d + 1]


@pytest.mark.parametrize("integrator, order", [("euler", 1), ("rk4", 4)])
def test_observed_order_equals_declared_order(integrator, order):
    steps = [4, 8, 16, 32]
    errors = []
    for n in steps:
        problem = _linear_problem(n, integrator)
        w = problem.initial_guess(seed=0, scale=2.0)
        errors.append(np.max(np.abs(problem.forward(w)[-1] - _exact_final_state(problem, w))))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert problem.scheme.order == order
    assert slope == pytest.approx(order, abs=0.15)


def test_unknown_integrator_is_a_spec_error():
    with pytest.raises(cdl.SpecError, match="integrator='midpoint'"):
        cdl.TrainingProblem(data=cdl.datasets.sin(6), integrator="midpoint")
