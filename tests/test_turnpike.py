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


MU, T, N = 0.7, 4.0, 20
V = np.array([0.3, -0.4, 1.2])


def _decaying_drift(**overrides):
    """f = W x + b with W = 0 and b(t_k) = v e^{−μ t_k}: everything has a closed form.

    Euler: x_i(t_k) = x_i(0) + s_k v with s_k = h Σ_{j<k} e^{−μ t_j} = h (1 − q^k)/(1 − q), q = e^{−μh}.
    """
    problem = cdl.load_problem(
        "ring", n_samples=30, dim=3, n_steps=N, horizon=T, field="outside", activation="identity", **overrides
    )
    w = problem.initial_guess(0)
    theta = np.zeros((problem.layout.p, N))
    theta[9:, :] = V[:, None] * np.exp(-MU * problem.times[:-1])[None, :]
    w[: problem.layout.n_theta] = theta.ravel(order="F")
    blocks = problem.unflatten(w)["theta"]
    assert np.all(blocks[3]["W"] == 0) and np.allclose(blocks[3]["b"], V * np.exp(-MU * 3 * T / N))
    return problem, w


def test_turnpike_recovers_an_exact_exponential_decay():
    problem, w = _decaying_drift()
    report = D.turnpike(problem, w)
    h, q = T / N, np.exp(-MU * T / N)
    k = np.arange(N + 1)
    np.testing.assert_allclose(report.t, k * h, atol=1e-15)
    # ‖θ(t_k)‖ = ‖v‖ e^{−μ t_k} on every layer; θ(T) is the last layer's
    expected_theta = np.linalg.norm(V) * np.exp(-MU * h * np.minimum(k, N - 1))
    np.testing.assert_allclose(report.theta_norm, expected_theta, rtol=1e-13)
    assert report.rate == pytest.approx(MU, rel=1e-10) and report.fit_r2 == pytest.approx(1.0, abs=1e-12)
    assert report.half_ratio == pytest.approx(
        np.mean(expected_theta[k * h >= T / 2]) / np.mean(expected_theta[k * h < T / 2]), rel=1e-12
    )
    # every sample moves by the same s_k v, so x_i(t_k) − x_i(T) = −(s_N − s_k) v for all i
    s = h * (1 - q**k) / (1 - q)
    assert report.target == "final"
    np.testing.assert_allclose(report.state_gap, (s[-1] - s) * np.linalg.norm(V), rtol=1e-12, atol=1e-15)
    # the running error at t_k is the MSE of the readout of x(0) + s_k v; at T the training loss
    x0 = np.vstack([problem.data.x_train, np.zeros((1, problem.data.x_train.shape[1]))])
    readout = problem.unflatten(w)["readout"]
    for j in (0, N // 2, N):
        yhat = readout["P"] @ (x0 + s[j] * V[:, None]) + readout["c"][:, None]
        assert report.error_t[j] == pytest.approx(np.mean(np.sum((yhat - problem.targets) ** 2, axis=0)), rel=1e-12)
    assert report.error_t[-1] == pytest.approx(problem.objective_and_loss(w)[1], rel=1e-12)


def test_tracking_target_is_the_turnpike_state():
    problem, w = _decaying_drift(tracking=1.0, tracking_target=0.5)
    report = D.turnpike(problem, w)
    assert report.target == "tracking"
    h, q = T / N, np.exp(-MU * T / N)
    s = h * (1 - q ** np.arange(N + 1)) / (1 - q)
    x0 = np.vstack([problem.data.x_train, np.zeros((1, problem.data.x_train.shape[1]))])
    gap0 = np.mean(np.linalg.norm(x0 - 0.5, axis=0))
    gap_t = np.mean(np.linalg.norm(x0 + s[-1] * V[:, None] - 0.5, axis=0))
    assert report.state_gap[0] == pytest.approx(gap0, rel=1e-12)
    assert report.state_gap[-1] == pytest.approx(gap_t, rel=1e-12)


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
        assert json.loads(json.dumps(sweep.to_dict()))["collapse_pairs"] == [[1.0, 2.0]]  # what each entry compares
        assert len(sweep.table().splitlines()) == 3
    with pytest.raises(ValueError, match="horizons"):
        D.turnpike_sweep(spec_problem, solver, [])
    with pytest.raises(cdl.SpecError, match=r"horizons=1\.0: is given twice"):  # was solved twice, collapse 0.000
        D.turnpike_sweep(spec_problem, solver, [1.0, 2.0, 1.0])


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
