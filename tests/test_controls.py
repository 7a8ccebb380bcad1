"""Controls: regularisers are the exact integrals of θ(t)² and θ'(t)²."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

import control_dl as cdl

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
