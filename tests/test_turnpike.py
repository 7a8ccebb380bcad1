"""Turnpike profiles, the horizon sweep and its CLI; the turnpike claim on ring (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import control_dl as cdl
from control_dl.cli import main
from control_dl.diagnostics.turnpike import exponential_fit

D = cdl.diagnostics


def test_exponential_fit_recovers_the_rate():
    t = np.linspace(0.0, 5.0, 30)
    mu, r2 = exponential_fit(t, 3.0 * np.exp(-0.7 * t))
    assert mu == pytest.approx(0.7, rel=1e-10)
    assert r2 == pytest.approx(1.0)


def test_turnpike_profiles_match_the_model(small_ring):
    w = small_ring.initial_guess(1)
    report = D.turnpike(small_ring, w)
    np.testing.assert_allclose(report.t, small_ring.times)
    np.testing.assert_allclose(report.theta_norm, np.linalg.norm(small_ring.theta(w, small_ring.times), axis=1))
    states = small_ring.forward(w)
    assert report.target == "final" and report.state_gap[-1] == 0.0
    gap0 = np.mean(np.linalg.norm(states[0] - states[-1], axis=0))
    assert report.state_gap[0] == pytest.approx(gap0)
    assert report.error_t[-1] == pytest.approx(small_ring.objective_and_loss(w)[1])


def test_tracking_target_is_the_turnpike_state():
    problem = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=4, tracking=1.0)
    w = problem.initial_guess(0)
    report = D.turnpike(problem, w)
    assert report.target == "tracking"
    expected = np.linalg.norm(problem.forward(w) - problem.cost.tracking_target, axis=1).mean(axis=1)
    np.testing.assert_allclose(report.state_gap, expected)


def test_sweep_rebuilds_the_horizon_from_spec_and_python():
    solver = cdl.Direct(hessian="lbfgs", max_iter=5)
    spec_problem = cdl.load_problem("ring", n_samples=20, dim=3, n_steps=4)
    python_problem = cdl.TrainingProblem(data=cdl.datasets.ring(20), dim=3, control=cdl.PiecewiseConstant(4))
    for problem in (spec_problem, python_problem):
        sweep = D.turnpike_sweep(problem, solver, [2.0, 1.0])
        assert sweep.horizons == (1.0, 2.0)
        assert [r.t[-1] for r in sweep.reports] == [1.0, 2.0]
        assert [len(r.t) for r in sweep.reports] == [5, 9]  # h = 1/4 kept
        fixed_n = D.turnpike_sweep(problem, solver, [2.0], keep_step=False)
        assert len(fixed_n.reports[0].t) == 5
        assert sweep.collapse.shape == (1,)
        json.dumps(sweep.to_dict())
        assert len(sweep.table().splitlines()) == 3
    with pytest.raises(ValueError, match="horizons"):
        D.turnpike_sweep(spec_problem, solver, [])


def test_turnpike_cli_writes_json_and_png(tmp_path, capsys):
    argv = ["turnpike", "ring", "--horizons", "1,2", "--set", "n_samples=20", "--set", "n_steps=4"]
    code = main(argv + ["--option", "max_iter=5", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    assert "half_ratio" in capsys.readouterr().out
    summary = json.loads((tmp_path / "turnpike.json").read_text())
    assert summary["horizons"] == [1.0, 2.0]
    assert (tmp_path / "turnpike.png").stat().st_size > 1000
    assert main(["turnpike", "ring", "--horizons", "1,x", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_turnpike_claim_on_ring():
    # Esteve et al.: with the running training loss (κ = 1) θ(t) collapses after a short transient;
    # without it (κ = 0) nothing pushes θ to 0 early and the profile stays spread over [0, T].
    # Also run by examples/turnpike_claim.py (≈ 30 s on 2 busy cores).
    reports = {}
    for kappa in (1.0, 0.0):
        problem = cdl.load_problem("ring", dim=3, horizon=10.0, n_steps=50, l2=1e-2, turnpike=kappa, n_samples=50)
        result = cdl.solve(problem, cdl.Direct(hessian="lbfgs", max_iter=300), progress=False)
        assert result.accuracy == 1.0
        reports[kappa] = D.turnpike(problem, result)
    assert reports[1.0].half_ratio <= 0.2
    assert reports[1.0].rate > 0
    assert reports[0.0].half_ratio > 0.5
