"""MSA / E-MSA with theta_max: every inner solver reaches the box |θ| ≤ M from an infeasible start."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl
from control_dl.solvers._msa_inner import Values, damped_newton

BOUND = 0.3

#: inner options of every inner solver MSA offers with bounds (Newton with one and five iterations,
#: the quasi-Newton-coupled Newton step, L-BFGS-B, IPOPT)
INNER = {
    "newton": {"inner": "newton"},
    "newton5": {"inner": "newton", "inner_iters": 5},
    "quasi-newton": {"inner": "newton", "memory": 5},
    "lbfgsb": {"inner": "lbfgsb"},
    "ipopt": {"inner": "ipopt"},
}

#: J per iteration from the projected initial guess, run by the code before the fix (commit 48db20d):
#: a feasible start must give the same iterates
FEASIBLE_HISTORY = {
    "newton": [0.66761795402, *[0.110455657418] * 8],
    "newton5": [
        0.66761795402,
        0.105590895876,
        0.0744117570157,
        0.0489706649895,
        0.0461685054593,
        0.0455804127051,
        0.0439169846916,
        0.0434270164089,
        0.043173706802,
    ],
    "quasi-newton": [
        0.66761795402,
        0.110455657418,
        0.0540693055831,
        0.0540693055831,
        0.0459191495856,
        0.0408238178808,
        0.038246539333,
        0.038246539333,
        0.0374673710397,
    ],
    "lbfgsb": [
        0.66761795402,
        0.110420009013,
        0.10881264923,
        0.10348286802,
        0.0823837862413,
        0.0351283260273,
        0.0341517203654,
        0.033772078606,
        0.0334574699735,
    ],
    "ipopt": [
        0.66761795402,
        0.0863850830767,
        0.0502947263222,
        0.0459336259804,
        0.0448026687433,
        *[0.0446408811063] * 4,
    ],
}


@pytest.fixture(scope="module")
def bounded_ring() -> cdl.TrainingProblem:
    """The reported case: the library's own initial_guess(0) has max|θ| = 1.34 > theta_max = 0.3."""
    return cdl.load_problem("ring", n_samples=40, dim=3, n_steps=4, theta_max=BOUND)


def _solve(problem: cdl.TrainingProblem, options: dict, w0: np.ndarray) -> cdl.Result:
    return cdl.solve(problem, cdl.MSA(rho=1.0, max_iter=8, jit=False, **options), w0=w0, progress=False)


@pytest.mark.parametrize("name", list(INNER))
def test_every_inner_solver_reaches_the_box_from_an_infeasible_start(bounded_ring, name: str) -> None:
    problem, n_theta = bounded_ring, bounded_ring.layout.n_theta
    w0 = problem.initial_guess(0)
    assert np.abs(w0[:n_theta]).max() > 1.0  # the case reported: an infeasible start
    result = _solve(problem, INNER[name], w0)
    assert result.status != "failed", result.message
    assert np.isfinite(result.objective)
    assert np.abs(result.w[:n_theta]).max() <= BOUND + 1e-9
    assert "projection onto the box" in result.message
    # the run starts from the projection of w0 (the first logged iterate) and descends from there
    projected = w0.copy()
    projected[:n_theta] = np.clip(w0[:n_theta], -BOUND, BOUND)
    assert result.history[0]["objective"] == pytest.approx(problem.objective(projected), rel=1e-12)
    assert result.objective < result.history[0]["objective"]
    from_projection = _solve(problem, INNER[name], projected)
    assert np.array_equal(from_projection.w, result.w)
    assert "projection" not in from_projection.message


@pytest.mark.parametrize("name", list(INNER))
def test_a_feasible_start_gives_the_iterates_of_before(bounded_ring, name: str) -> None:
    problem, n_theta = bounded_ring, bounded_ring.layout.n_theta
    w0 = problem.initial_guess(0)
    w0[:n_theta] = np.clip(w0[:n_theta], -BOUND, BOUND)
    result = _solve(problem, INNER[name], w0)
    objective = [h["objective"] for h in result.history]
    assert objective == pytest.approx(FEASIBLE_HISTORY[name], rel=1e-9)


def test_damped_newton_moves_a_block_outside_the_box_into_it() -> None:
    """φ_b(c) = Σ (c − 2)² per block: the block started at (1.5, 1) (outside |c| ≤ 1) has φ_b = 1.25
    there and φ_b = 2 at its projected Newton step (1, 1); it must still take that step (feasibility
    first), while the block inside the box keeps the descent test (4.5 -> 2)."""

    def evaluate(c: np.ndarray, hessian: bool) -> Values:
        hess = [2.0 * np.eye(2), 2.0 * np.eye(2)] if hessian else None
        values = np.array([np.sum((c[:2] - 2.0) ** 2), np.sum((c[2:] - 2.0) ** 2)])
        return Values(c, values, 2.0 * (c - 2.0), hess)

    start = evaluate(np.array([1.5, 1.0, 0.5, 0.5]), True)
    c, value = damped_newton(evaluate, start, 1, [2, 2], 1.0)
    assert np.array_equal(c, np.ones(4))
    assert value == pytest.approx(4.0)
    # without bounds the same start takes the unconstrained Newton step
    c, _ = damped_newton(evaluate, start, 1, [2, 2], None)
    assert np.allclose(c, 2.0)
