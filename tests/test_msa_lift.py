"""MSA / E-MSA with a trainable lift: the readout is still solved exactly, and the history's gradient
norms are what their names say (``readout_grad_norm`` = ‖∇_{P,c} J‖, ``lift_grad_norm`` = ‖∇_{L,l} J‖)."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl


def _indices(problem: cdl.TrainingProblem, part: str) -> np.ndarray:
    """Positions in w of the readout ("readout") or the lift ("lift")."""
    names = problem.unflatten(np.arange(problem.n_params, dtype=float))
    return np.concatenate([np.ravel(v) for v in names[part].values()]).astype(int)


@pytest.fixture(scope="module")
def lifted_ring() -> cdl.TrainingProblem:
    """The reported case (ring, d = 3, N = 4, affine lift x_0 = Lx + l)."""
    return cdl.load_problem("ring", n_samples=40, n_steps=4, dim=3, lift="affine")


def test_exact_readout_stays_exact_with_a_trainable_lift(lifted_ring) -> None:
    problem = lifted_ring
    result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=12, jit=False), progress=False)
    readout, lift = _indices(problem, "readout"), _indices(problem, "lift")
    grad = problem.gradient(result.w)  # independent of the solver's bookkeeping
    # every iterate after the start has the readout solved for its states (variable projection)
    assert max(h["readout_grad_norm"] for h in result.history[1:]) <= 1e-10
    assert np.linalg.norm(grad[readout]) <= 1e-10
    # the lift is updated by L-BFGS-B only, and its gradient is reported under its own name
    assert result.history[-1]["lift_grad_norm"] == pytest.approx(np.linalg.norm(grad[lift]), rel=1e-6)
    assert result.history[-1]["lift_grad_norm"] > 1e-6
    assert np.abs(result.w[lift] - problem.initial_guess(0)[lift]).max() > 1e-3  # the lift is trained
    assert "trainable lift" in result.message and "exact readout after it" in result.message
    objective = np.array([h["objective"] for h in result.history])
    assert np.all(np.diff(objective) <= 0) and objective[-1] < objective[0]


def test_inexact_readout_with_a_trainable_lift_reports_each_gradient_apart(lifted_ring) -> None:
    problem = lifted_ring
    solver = cdl.load_solver("emsa", max_iter=5, jit=False, readout="lbfgsb")
    result = cdl.solve(problem, solver, progress=False)
    grad = problem.gradient(result.w)
    last = result.history[-1]
    assert last["readout_grad_norm"] == pytest.approx(np.linalg.norm(grad[_indices(problem, "readout")]), rel=1e-6)
    assert last["lift_grad_norm"] == pytest.approx(np.linalg.norm(grad[_indices(problem, "lift")]), rel=1e-6)
    assert "no exact readout" in result.message


def test_a_fixed_lift_has_no_lift_entries() -> None:
    problem = cdl.load_problem("ring", n_samples=40, n_steps=4, dim=3)
    result = cdl.solve(problem, cdl.load_solver("emsa", max_iter=3, jit=False), progress=False)
    assert "lift_grad_norm" not in result.history[-1]
    assert "lift" not in result.message
    n_theta = problem.layout.n_theta
    assert result.history[-1]["readout_grad_norm"] == pytest.approx(
        np.linalg.norm(problem.gradient(result.w)[n_theta:]), abs=1e-12
    )
