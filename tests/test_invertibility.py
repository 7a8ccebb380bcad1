"""Invertibility certificate, backward inversion and the topology of decision regions (real solves)."""

from __future__ import annotations

import numpy as np
import pytest
from _diagnostic_solves import isotonic_floor, ring, square_1d

import control_dl as cdl
from control_dl.problems.costs import predict_labels

D = cdl.diagnostics


def test_certificate_uses_exact_spectral_norms(small_ring):
    w = small_ring.initial_guess(2)
    report = D.invertibility(small_ring, w)
    blocks = small_ring.unflatten(w)["theta"]
    expected = [small_ring.step_size * np.linalg.norm(b["A"], 2) for b in blocks]  # tanh: Lip σ = 1
    np.testing.assert_allclose(report.step_constants, expected, rtol=1e-12)
    assert report.certificate == pytest.approx(max(expected))


def test_constrained_solve_is_invertible_and_inverts_to_1e8():
    problem, result = square_1d(2, True)
    report = D.invertibility(problem, result)
    assert report.certificate < 1
    # the solver's constraint is h·Lip(σ)·‖A‖_F ≤ 0.9, a sufficient form of the spectral one
    assert report.certificate <= 0.9 + 1e-6
    x = problem.data.x_test
    inverse = D.invert(problem, result, problem.forward(result.w, x)[-1])
    assert inverse.converged
    assert np.max(np.abs(inverse.inputs - x)) < 1e-8


def test_unconstrained_large_steps_fold_and_do_not_invert():
    problem, result = square_1d(1, False, n_steps=4, horizon=4.0)
    assert D.invertibility(problem, result).certificate > 1
    x = problem.data.x_train
    inverse = D.invert(problem, result, problem.forward(result.w, x)[-1], max_iter=200)
    assert not inverse.converged or np.max(np.abs(inverse.inputs - x)) > 1e-3


def test_invertible_1d_flow_stays_at_the_monotone_floor():
    # Φ = λ2 ∘ flow ∘ λ1 is monotone when d = 1 and every step is invertible, so its MSE on y = x²
    # cannot go below the isotonic-regression floor of the actual training points.
    problem, result = square_1d(1, True)
    floor = isotonic_floor(problem.data.x_train[0], problem.targets[0])
    assert 0.04 < floor < 0.07  # ≈ 0.0585 for uniform points in expectation; this sample gives 0.0477
    assert D.invertibility(problem, result).certificate < 1
    assert floor - 1e-12 <= result.loss <= 1.02 * floor


def test_invertible_2d_fits_the_square_and_1d_folding_beats_the_floor():
    _, augmented = square_1d(2, True)
    assert augmented.loss < 1e-5
    problem, folded = square_1d(1, False, n_steps=4, horizon=4.0)
    floor = isotonic_floor(problem.data.x_train[0], problem.targets[0])
    assert folded.loss < 0.01 * floor


def _dense_accuracy(problem, result) -> float:
    fresh = cdl.datasets.ring(4000, seed=123)
    labels = predict_labels(fresh.task, problem.cost.loss, problem.predict(result.w, fresh.x_train))
    return float(np.mean(labels == fresh.y_train))


def test_ring_in_2d_cannot_enclose_the_inner_disk():
    problem, result = ring(2)
    assert D.invertibility(problem, result).invertible
    topology = D.decision_region_topology(problem, result)
    assert topology.inner_class == 1
    assert topology.reaches_edge  # pre-image of a half-plane under a homeomorphism is unbounded
    assert _dense_accuracy(problem, result) < 1.0


def test_ring_in_3d_encloses_the_inner_disk():
    problem, result = ring(3)
    assert D.invertibility(problem, result).invertible
    topology = D.decision_region_topology(problem, result)
    assert topology.inner_class == 1
    assert not topology.reaches_edge
    assert _dense_accuracy(problem, result) > 0.98


def test_topology_needs_two_inputs(small_sin):
    with pytest.raises(ValueError, match="n_in=2"):
        D.decision_region_topology(small_sin, small_sin.initial_guess())


@pytest.mark.parametrize(
    ("field", "norm"),
    [
        (cdl.Outside(activation="sigmoid"), lambda b: 0.25 * np.linalg.norm(b["W"], 2)),
        (cdl.Bottleneck(width=2), lambda b: np.linalg.norm(b["W"], 2) * np.linalg.norm(b["A"], 2)),
    ],
)
def test_certificate_of_other_fields_is_below_the_solvers_frobenius_bound(field, norm):
    problem = cdl.TrainingProblem(data=cdl.datasets.ring(10), dim=3, field=field, control=cdl.PiecewiseConstant(3))
    w = problem.initial_guess(5)
    report = D.invertibility(problem, w)
    expected = [problem.step_size * norm(b) for b in problem.unflatten(w)["theta"]]
    np.testing.assert_allclose(report.step_constants, expected, rtol=1e-12)
    frobenius = np.sqrt(problem.step_lipschitz_sq(w, cdl.backends.numpy_ops))
    assert np.all(report.step_constants <= frobenius + 1e-15)


CONTROLS = [
    {"control": "piecewise_constant"},
    {"control": "piecewise_linear", "n_nodes": 3},
    {"control": "time_invariant"},
    {"control": "spectral", "n_modes": 3},
]


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c["control"])
def test_constrained_solve_certifies_for_every_integrator_and_control(integrator, control):
    # few large steps (h = 1): the RK4 increment bound q(h L) exceeds h L, which the constraint
    # used to ignore (certificate 1.25 for lipschitz = 0.9 with rk4 before the fix)
    problem = cdl.load_problem(
        "square_1d", dim=2, n_steps=4, horizon=4.0, lipschitz=0.9, integrator=integrator, **control
    )
    result = cdl.solve(problem, cdl.load_solver("ipopt-exact", max_iter=100), progress=False)
    frobenius = D.invertibility(problem, result, norm="frobenius").certificate
    assert D.invertibility(problem, result).certificate <= frobenius <= 0.9 + 1e-6


def test_rk4_increment_bound_is_exact_for_a_linear_field():
    # f = a·x (identity activation, A = a I, b = 0): the RK4 increment is the matrix polynomial
    # q(h a) I, so its Lipschitz constant is q(h a): the bound is tight
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(10),
        dim=2,
        field=cdl.Inside(activation="identity"),
        control=cdl.PiecewiseConstant(2),
        horizon=2.0,
        integrator="rk4",
    )
    a = 0.7
    w = np.zeros(problem.n_params)
    w[: problem.layout.n_theta] = np.tile(np.r_[a * np.eye(2).ravel(order="F"), 0.0, 0.0], 2)
    (theta,) = {tuple(t) for t in problem.stage_thetas(w, 0, cdl.backends.numpy_ops)}
    assert theta[:4] == (a, 0.0, 0.0, a)
    increment = problem.step(np.eye(2), problem.stage_thetas(w, 0, cdl.backends.numpy_ops), cdl.backends.numpy_ops)
    exact = np.linalg.norm(increment - np.eye(2), 2)
    hl = problem.step_size * a
    np.testing.assert_allclose(D.invertibility(problem, w).step_constants, exact, rtol=1e-12)
    assert exact == pytest.approx(hl * (1 + hl / 2 + hl**2 / 6 + hl**3 / 24), rel=1e-12)


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_certificate_bounds_the_observed_lipschitz_constant_of_each_step(integrator):
    problem = cdl.TrainingProblem(
        data=cdl.datasets.ring(10),
        dim=3,
        control=cdl.PiecewiseLinear(n_nodes=3, n_steps=3),
        horizon=1.5,
        integrator=integrator,
    )
    w = problem.initial_guess(3, scale=1.5)
    constants = D.invertibility(problem, w).step_constants
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=(3, 2000)), 1e-6 * rng.normal(size=(3, 2000))
    for k in range(problem.n_steps):
        thetas = problem.stage_thetas(w, k, cdl.backends.numpy_ops)
        moved, base = (problem.step(z, thetas, cdl.backends.numpy_ops) - z for z in (x + v, x))
        ratio = np.linalg.norm(moved - base, axis=0) / np.linalg.norm(v, axis=0)
        assert ratio.max() <= constants[k] * (1 + 1e-6)
        assert ratio.max() > 0.2 * constants[k]  # and is not vacuous


def test_node_limit_inverts_the_rk4_increment_bound():
    from control_dl.problems import lipschitz

    for c in (0.05, 0.5, 0.9):
        r = lipschitz.node_limit("rk4", c)
        assert 0 < r < c
        assert lipschitz.increment_bound("rk4", r) == pytest.approx(c, rel=1e-12)
        assert lipschitz.node_limit("euler", c) == c
