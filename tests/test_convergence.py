"""The ResNet converges to the neural ODE with the integrator's order."""

from __future__ import annotations

import pytest

import control_dl as cdl

D = cdl.diagnostics


@pytest.mark.parametrize(
    "control", [cdl.TimeInvariant(n_steps=4), cdl.PiecewiseLinear(n_nodes=3, n_steps=4), cdl.Spectral(n_modes=3)]
)
def test_euler_order_one(control):
    problem = cdl.TrainingProblem(data=cdl.datasets.ring(20, seed=0), dim=3, control=control, horizon=1.0)
    report = D.euler_convergence(problem, problem.initial_guess(1, scale=2.0), n_steps=[8, 16, 32, 64])
    assert report.order == pytest.approx(1.0, abs=0.1)
    assert all(report.errors[1:] < report.errors[:-1])


def test_rk4_order_four():
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(20, seed=0), dim=3, control=cdl.TimeInvariant(), horizon=1.0, integrator="rk4"
    )
    report = D.euler_convergence(problem, problem.initial_guess(1, scale=2.0), n_steps=[4, 8, 16])
    assert report.order == pytest.approx(4.0, abs=0.3)


def test_piecewise_constant_is_rejected(small_ring):
    with pytest.raises(ValueError, match="PiecewiseConstant"):
        D.euler_convergence(small_ring, small_ring.initial_guess())
