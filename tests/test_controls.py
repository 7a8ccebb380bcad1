"""Controls: regularisers are the exact integrals of θ(t)² and θ'(t)²."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

import control_dl as cdl
from control_dl.problems import step_index

T = 2.0


@pytest.mark.parametrize(
    "control",
    [
        cdl.PiecewiseLinear(n_nodes=4, n_steps=6),
        cdl.TimeInvariant(n_steps=3),
        cdl.Spectral("legendre", 4, n_steps=5),
        cdl.Spectral("fourier", 5, n_steps=5),
    ],
    ids=lambda c: type(c).__name__ + getattr(c, "basis", ""),
)
def test_l2_factor_is_the_integral(control):
    rng = np.random.default_rng(0)
    coeffs = rng.normal(size=(3, control.n_coeffs))

    def theta_sq(t):
        return float(np.sum((coeffs @ control.basis_at(np.array([t]), T)[0]) ** 2))

    exact = sum(
        quad(theta_sq, a, b, limit=200)[0]
        for a, b in zip(np.linspace(0, T, 7)[:-1], np.linspace(0, T, 7)[1:], strict=True)
    )
    r0 = control.l2_factor(T)
    assert np.sum((coeffs @ r0.T) ** 2) == pytest.approx(exact, rel=1e-9)


def test_h1_factor_matches_derivative_integral_for_spectral():
    control = cdl.Spectral("legendre", 4, n_steps=5)
    coeffs = np.random.default_rng(1).normal(size=(2, 4))
    h = 1e-6

    def dtheta_sq(t):
        d = (control.basis_at(np.array([t + h]), T)[0] - control.basis_at(np.array([t - h]), T)[0]) / (2 * h)
        return float(np.sum((coeffs @ d) ** 2))

    exact = quad(dtheta_sq, h, T - h, limit=200)[0]
    assert np.sum((coeffs @ control.h1_factor(T).T) ** 2) == pytest.approx(exact, rel=1e-5)


def test_piecewise_constant_regularisers_are_the_resnet_sums():
    control = cdl.PiecewiseConstant(n_steps=4)
    coeffs = np.random.default_rng(2).normal(size=(3, 4))
    h = T / 4
    assert np.sum((coeffs @ control.l2_factor(T).T) ** 2) == pytest.approx(h * np.sum(coeffs**2))
    assert np.sum((coeffs @ control.h1_factor(T).T) ** 2) == pytest.approx(np.sum(np.diff(coeffs, axis=1) ** 2) / h)


def test_piecewise_constant_basis_picks_the_step():
    control = cdl.PiecewiseConstant(n_steps=4)
    np.testing.assert_array_equal(control.stage_basis(2, 1.0, T), np.eye(4)[2])
    np.testing.assert_array_equal(control.basis_at(np.array([0.0, 0.99, T]), T).argmax(axis=1), [0, 1, 3])


def _layer_vectors(problem, w):
    """θ_k as flat vectors, read from the layout (independent of any time lookup)."""
    lay = problem.layout
    return [np.asarray(lay.coefficient(w, k)) for k in range(problem.n_steps)]


@pytest.mark.parametrize(
    ("horizon", "n_steps", "bad_before"), [(8.0, 50, [29]), (3.0, 20, [9, 18]), (1.0, 7, [5]), (0.25, 50, [29])]
)
def test_theta_at_grid_times_is_that_layer(horizon, n_steps, bad_before):
    # Issue 16: floor(t_k N / T) gave k - 1 at these k (e.g. 29 * (8/50) * 50/8 = 28.999...).
    assert [k for k in bad_before if np.floor(np.linspace(0, horizon, n_steps + 1)[k] * n_steps / horizon) != k]
    problem = cdl.load_problem("ring", n_samples=4, dim=3, n_steps=n_steps, horizon=horizon)
    w = problem.initial_guess(0)
    theta = problem.theta(w, problem.times)
    expected = _layer_vectors(problem, w)
    for k in range(n_steps):
        np.testing.assert_array_equal(theta[k], expected[k], err_msg=f"t_{k}")
    np.testing.assert_array_equal(theta[-1], expected[-1])  # T belongs to the last step


def test_feedforward_theta_at_layer_times():
    problem = cdl.load_problem("circle", model="mlp", widths=[2, 4, 4, 4, 4, 4, 4, 1], n_samples=4)
    w = problem.initial_guess(0)
    theta = problem.theta(w, problem.times[:-1])
    for k, theta_k in enumerate(_layer_vectors(problem, w)):
        np.testing.assert_array_equal(theta[k, : theta_k.size], theta_k)


def test_step_index_agrees_with_the_integrator_grid():
    # property: for many (T, N), every grid time t_k = linspace(0, T, N + 1)[k] is in step k, every
    # midpoint too, and a time a millionth of a step before t_k is still in step k - 1.
    horizons = [0.1, 0.25, 0.3, 1 / 3, 0.7, 1.0, 2.2, 3.0, 7.0, 8.0, 10.0, 37.5, 100.0, 1e3]
    for horizon in horizons:
        for n_steps in range(1, 201):
            grid = np.linspace(0.0, horizon, n_steps + 1)
            k = np.arange(n_steps)
            h = horizon / n_steps
            np.testing.assert_array_equal(step_index(grid[:-1], horizon, n_steps), k)
            assert step_index(horizon, horizon, n_steps) == n_steps - 1
            np.testing.assert_array_equal(step_index(grid[:-1] + 0.5 * h, horizon, n_steps), k)
            np.testing.assert_array_equal(step_index(grid[1:-1] - 1e-6 * h, horizon, n_steps), k[:-1])
    assert step_index(-1.0, 1.0, 4) == 0 and step_index(2.0, 1.0, 4) == 3
