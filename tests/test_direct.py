"""The IPOPT single-shooting solver: it trains, respects constraints and reports failure as status."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl


def test_ring_in_3d_is_separated():
    problem = cdl.load_problem("ring", dim=3)
    result = cdl.solve(problem, cdl.load_solver("ipopt-lbfgs", max_iter=150), progress=False)
    assert result.accuracy >= 0.99
    assert result.status in ("converged", "max_iter")
    assert result.objective == pytest.approx(problem.objective(result.w))
    assert result.history[0]["objective"] == pytest.approx(problem.objective(problem.initial_guess(0)))
    assert {"iter", "time", "objective", "loss", "accuracy"} <= set(result.history[-1])


def test_exact_hessian_converges_on_a_tiny_regression(small_sin):
    result = cdl.solve(small_sin, cdl.Direct(hessian="exact", max_iter=500), progress=False)
    assert result.status == "converged"
    # first-order optimality checked independently of IPOPT, with the torch gradient
    assert np.linalg.norm(small_sin.gradient(result.w, "torch")) < 1e-6


def test_max_iter_is_reported_not_hidden(small_ring):
    result = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=2), progress=False)
    assert result.status == "max_iter"
    assert "Maximum_Iterations_Exceeded" in result.message


def test_user_ipopt_option_is_the_one_used(small_ring):
    solver = cdl.Direct(hessian="lbfgs", max_iter=50, ipopt_options={"max_iter": 3})
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.iterations == 3 and result.status == "max_iter"


def test_bad_ipopt_option_is_a_failed_status(small_ring):
    result = cdl.solve(small_ring, cdl.Direct(ipopt_options={"no_such_option": 1}), progress=False)
    assert result.status == "failed"
    np.testing.assert_array_equal(result.w, small_ring.initial_guess(0))


def test_theta_bounds_hold(small_ring):
    problem = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, theta_max=0.1)
    result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=150), progress=False)
    theta = result.w[: problem.layout.n_theta]
    assert np.max(np.abs(theta)) <= 0.1 + 1e-8
    assert np.max(np.abs(theta)) > 0.099  # the bound is active: the unconstrained fit wants more


def test_lipschitz_constraint_certifies_each_step():
    problem = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, lipschitz=0.5, l2=0.0)
    result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=600), progress=False)
    assert result.accuracy > 0.9
    h = problem.step_size
    for theta in problem.unflatten(result.w)["theta"]:
        assert h * np.linalg.norm(theta["A"], 2) <= 0.5 + 1e-7


def test_warm_start_from_a_result(small_ring):
    first = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=20), progress=False)
    second = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=5), w0=first, progress=False)
    assert second.history[0]["objective"] == pytest.approx(first.objective)


def test_solve_rejects_wrong_types(small_ring):
    with pytest.raises(TypeError, match="solver"):
        cdl.solve(small_ring, "ipopt-lbfgs")
    with pytest.raises(ValueError, match="n_params"):
        cdl.solve(small_ring, cdl.Direct(), w0=np.zeros(2))
