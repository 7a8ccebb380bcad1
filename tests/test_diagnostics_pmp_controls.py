"""The PMP residual for every control and regulariser: checked against finite differences of J."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl

D = cdl.diagnostics

CASES = {
    "time_invariant": {"control": "time_invariant"},
    "piecewise_linear": {"control": "piecewise_linear", "n_nodes": 3},
    "spectral": {"control": "spectral", "n_modes": 3},
    "pc-h1": {"h1": 0.1},
    "spectral-rk4-all-terms": {
        "control": "spectral",
        "n_modes": 2,
        "integrator": "rk4",
        "h1": 0.1,
        "l1": 1e-2,
        "turnpike": 0.5,
        "tracking": 0.3,
    },
}


def _fd_block_norms(problem: cdl.TrainingProblem, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """‖∂J/∂B_j‖ per θ block by central differences of J (numpy backend)."""
    grad = np.zeros(problem.layout.n_theta)
    for i in range(grad.size):
        e = np.zeros_like(w)
        e[i] = eps
        grad[i] = (problem.objective(w + e) - problem.objective(w - e)) / (2 * eps)
    offsets = problem.dynamics.offsets
    return np.array([np.linalg.norm(grad[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)])


@pytest.mark.parametrize("overrides", list(CASES.values()), ids=list(CASES))
def test_block_residual_is_the_coefficient_gradient_of_j(overrides):
    # ∂𝓗/∂B_j = −∂J/∂B_j for every control: the chain rule through θ(t) and the exact regulariser
    problem = cdl.load_problem("sin", n_samples=10, dim=2, n_steps=4, horizon=2.0, **overrides)
    w = problem.initial_guess(1)
    report = D.pmp_residual(problem, w)
    expected = _fd_block_norms(problem, w)
    np.testing.assert_allclose(report.block_grad_norm, expected, rtol=1e-6)
    assert report.residual == pytest.approx(expected.max(), rel=1e-6)


def test_piecewise_constant_residual_is_still_h_times_the_stage_gradient():
    # no β: block k is step k and R = h Σ_k L(θ_k), so the residual is max_k h ‖∂H_k/∂θ‖
    problem = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=5, l1=1e-3, turnpike=0.5)
    report = D.pmp_residual(problem, problem.initial_guess(3))
    np.testing.assert_allclose(report.block_grad_norm, problem.step_size * report.grad_h_norm, rtol=1e-9)


class _Linear:
    """f(x, u) = A x + B u: a linear-quadratic problem with a finite minimiser (the user's s4/s12)."""

    A = np.array([[0.0, 1.0], [-1.0, 0.5]])
    B = np.array([[0.0], [1.0]])

    def param_shapes(self, dim):
        return {"u": (1,)}

    def __call__(self, x, params, ops):
        return ops.matmul(self.A, x) + ops.matmul(self.B, params["u"])


@pytest.mark.parametrize(
    ("control", "h1"),
    [
        (cdl.TimeInvariant(n_steps=10), 0.0),
        (cdl.Spectral("legendre", 3, n_steps=10), 0.0),
        (cdl.PiecewiseConstant(n_steps=10), 0.1),
    ],
    ids=["time_invariant", "spectral", "pc-h1"],
)
def test_residual_vanishes_at_a_converged_optimum_of_any_control(control, h1):
    # the user's report: 0.65 (time-invariant), 0.047 (spectral), 0.28 (h1) at |∇J|∞ ≈ 1e-9
    x0 = np.array([[1.0, 0.5]])
    data = cdl.Dataset.from_arrays(x0, np.array([0.0]), X_test=x0, y_test=np.array([0.0]), task="regression")
    cost = cdl.Cost(loss="mse", l2=0.1, h1=h1, tracking=1.0)
    problem = cdl.TrainingProblem(data=data, field=_Linear(), dim=2, control=control, horizon=2.0, cost=cost)
    result = cdl.solve(problem, cdl.Direct(hessian="exact", max_iter=200), progress=False)
    assert result.status == "converged", result.message
    grad = np.abs(problem.gradient(result.w)[: problem.layout.n_theta]).max()
    assert grad < 1e-7
    start = D.pmp_residual(problem, problem.initial_guess()).residual
    residual = D.pmp_residual(problem, result).residual
    assert residual < 1e-6 * start
    assert residual <= grad * np.sqrt(problem.layout.n_theta) * (1 + 1e-6)
