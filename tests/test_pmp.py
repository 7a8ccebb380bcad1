"""Costates, ∂H/∂θ and the Hamiltonian: checked against ∇J and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from _diagnostic_solves import square_1d

import control_dl as cdl

D = cdl.diagnostics


@pytest.mark.parametrize(
    "overrides",
    [{}, {"turnpike": 0.5, "tracking": 0.3, "l1": 1e-3}, {"integrator": "rk4", "turnpike": 0.5}],
)
def test_grad_h_is_the_per_step_gradient_of_j(overrides):
    # PiecewiseConstant: ∂J/∂θ_k = −h ∂H_k/∂θ exactly (L2, L1 and running costs included)
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=6, **overrides)
    w = problem.initial_guess(1)
    report = D.pmp_residual(problem, w)
    grad = problem.gradient(w)[: problem.layout.n_theta].reshape(problem.n_steps, -1)
    np.testing.assert_allclose(report.grad_h_norm, np.linalg.norm(grad, axis=1) / problem.step_size, rtol=1e-9)


def test_costate_is_minus_s_times_dj_dx0():
    # p_0 = −S ∂J/∂x_0; x_0 = x_in for d = n_in, so perturb the training inputs
    problem = cdl.load_problem("sin", n_samples=8, dim=1, n_steps=4, turnpike=0.3)
    w = problem.initial_guess(2)
    p0 = D.pmp_residual(problem, w).costates[0]
    eps, i = 1e-6, 3
    values = []
    for sign in (-1, 1):
        x = problem.data.x_train.copy()
        x[0, i] += sign * eps
        j, _ = problem.objective_terms(w, x, problem.targets, cdl.backends.numpy_ops)
        values.append(float(j))
    assert p0[0, i] == pytest.approx(-problem.data.x_train.shape[1] * (values[1] - values[0]) / (2 * eps), rel=1e-6)


def test_pmp_residual_vanishes_at_a_converged_solve():
    problem, result = square_1d(2, True)  # IPOPT converged; the invertibility constraint is inactive
    assert result.status == "converged"
    assert D.invertibility(problem, result).certificate < 0.5
    start = D.pmp_residual(problem, problem.initial_guess()).residual
    assert D.pmp_residual(problem, result).residual < 1e-6 * start


def test_hamiltonian_drift_of_autonomous_problem_is_first_order():
    # TimeInvariant θ: H is conserved by the continuous state-costate flow; Euler's H_k drifts O(h)
    base = cdl.TrainingProblem(
        data=cdl.datasets.ring(30, seed=1), dim=3, control=cdl.TimeInvariant(n_steps=10), horizon=1.0
    )
    w = base.initial_guess(4, scale=2.0)
    drifts = []
    for n in (10, 20, 40):
        problem = cdl.TrainingProblem(data=base.data, dim=3, control=cdl.TimeInvariant(n_steps=n), horizon=1.0)
        drifts.append(D.pmp_residual(problem, w).drift)
    ratios = np.array(drifts[:-1]) / np.array(drifts[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.2)


@pytest.mark.parametrize(
    "problem",
    [
        cdl.load_problem("circle", model="mlp", widths=[2, 4, 3, 1], n_samples=30, l1=1e-3),
        cdl.TrainingProblem(
            data=cdl.datasets.sin(12, seed=1),
            model=cdl.FeedForward(widths=[1, 1, 1, 1], residual=True, step=0.5),
            cost=cdl.Cost(l2=1e-2),
        ),
    ],
    ids=["mlp", "residual-mlp"],
)
def test_feedforward_grad_h_is_the_per_layer_gradient_of_j(problem):
    # layers of different sizes: ∂J/∂θ_k = −h ∂H_k/∂θ_k per layer, h the FeedForward step
    w = problem.initial_guess(1)
    report = D.pmp_residual(problem, w)
    grad, offsets = problem.gradient(w), problem.layout.offsets
    per_layer = [np.linalg.norm(grad[offsets[k] : offsets[k + 1]]) for k in range(problem.n_steps)]
    np.testing.assert_allclose(report.grad_h_norm, np.array(per_layer) / problem.step_size, rtol=1e-9)
    assert report.costates.shape == problem.forward(w).shape


def test_feedforward_costates_are_minus_s_dj_dx_and_padded():
    # p_0 = −S ∂J/∂x_0 (x_0 = x_in); rows beyond each layer's width stay zero
    problem = cdl.load_problem("circle", model="mlp", widths=[2, 4, 3, 1], n_samples=10)
    w = problem.initial_guess(2)
    costates = D.pmp_residual(problem, w).costates
    for k, width in enumerate(problem.state_dims):
        assert np.all(costates[k, width:] == 0) and np.any(costates[k, :width] != 0)
    eps, i, s = 1e-6, 4, problem.data.x_train.shape[1]
    for row in range(2):
        values = []
        for sign in (-1, 1):
            x = problem.data.x_train.copy()
            x[row, i] += sign * eps
            values.append(float(problem.objective_terms(w, x, problem.targets, cdl.backends.numpy_ops)[0]))
        assert costates[0, row, i] == pytest.approx(-s * (values[1] - values[0]) / (2 * eps), rel=1e-6)


def test_a_report_prints_its_scalars_not_its_costates():
    problem = cdl.load_problem("ring", n_samples=50, dim=3, n_steps=4)
    report = D.pmp_residual(problem, problem.initial_guess(0))
    assert repr(report).startswith(f"PMPReport(residual={report.residual:.3g}") and len(repr(report)) < 200
