"""Training time τ: snapshots every record_every iterations, their save/load, θ(t, τ) and its heat map."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import control_dl as cdl


@pytest.fixture(scope="module")
def resnet_run() -> tuple[cdl.TrainingProblem, cdl.Result]:
    problem = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5)
    return problem, cdl.solve(problem, cdl.Direct(max_iter=25, hessian="lbfgs", record_every=4), progress=False)


@pytest.fixture(scope="module")
def mlp_run() -> tuple[cdl.TrainingProblem, cdl.Result]:
    problem = cdl.load_problem("circle", model="mlp", widths=[2, 6, 4, 1], n_samples=40)
    return problem, cdl.solve(problem, cdl.Direct(max_iter=20, record_every=3), progress=False)


def test_snapshots_every_k_iterations_and_the_final_one(resnet_run) -> None:
    problem, result = resnet_run
    iters = [i for i, _, _ in result.snapshots]
    assert iters[:-1] == list(range(0, iters[-2] + 1, 4)) and iters[-1] == result.iterations
    np.testing.assert_array_equal(result.snapshots[0][2], problem.initial_guess(seed=0))
    np.testing.assert_array_equal(result.snapshots[-1][2], result.w)
    times = [t for _, t, _ in result.snapshots]
    assert times == sorted(times)


def test_snapshots_round_trip_through_save_and_load(mlp_run, tmp_path) -> None:
    problem, result = mlp_run
    loaded = cdl.Result.load(result.save(tmp_path / "run"))
    assert len(loaded.snapshots) == len(result.snapshots) > 2
    for (i, t, w), (i2, t2, w2) in zip(result.snapshots, loaded.snapshots, strict=True):
        assert (i, t) == (i2, t2)
        np.testing.assert_array_equal(w, w2)
    assert loaded.problem.model == problem.model  # the feed-forward problem is rebuilt from its spec
    dyn, dyn2 = (cdl.diagnostics.training_dynamics(r.problem, r) for r in (result, loaded))
    np.testing.assert_array_equal(dyn.theta_norm, dyn2.theta_norm)


def test_training_dynamics_of_a_resnet(resnet_run) -> None:
    problem, result = resnet_run
    dyn = cdl.diagnostics.training_dynamics(problem, result)
    n = len(result.snapshots)
    assert dyn.theta_norm.shape == (n, problem.n_steps) and dyn.t.shape == (problem.n_steps,)
    # piecewise-constant θ: ‖θ(t_k + h/2)‖ = ‖θ_k‖ read off the unflattened coefficients
    for (_, _, w), row in zip(result.snapshots, dyn.theta_norm, strict=True):
        blocks = problem.unflatten(w)["theta"]
        np.testing.assert_allclose(row, [np.sqrt(sum(np.sum(v**2) for v in b.values())) for b in blocks])
    assert dyn.distance[-1] == 0.0 and dyn.distance[0] > 0.0
    h = problem.step_size
    first = problem.theta(result.snapshots[0][2], dyn.t) - problem.theta(result.w, dyn.t)
    assert dyn.distance[0] == pytest.approx(np.sqrt(h * np.sum(first**2)))
    assert dyn.loss[-1] == pytest.approx(result.loss) and dyn.loss[-1] < dyn.loss[0]


def test_training_dynamics_of_an_mlp_uses_the_layers(mlp_run) -> None:
    problem, result = mlp_run
    dyn = cdl.diagnostics.training_dynamics(problem, result)
    w = result.snapshots[1][2]
    norms = [np.linalg.norm(problem.layout.coefficient(w, k)) for k in range(problem.n_steps)]
    np.testing.assert_allclose(dyn.theta_norm[1], norms)


def test_training_dynamics_needs_snapshots(small_ring) -> None:
    result = cdl.solve(small_ring, cdl.Direct(max_iter=2), progress=False)
    assert result.snapshots == []
    with pytest.raises(ValueError, match="record_every"):
        cdl.diagnostics.training_dynamics(small_ring, result)


def test_record_every_is_validated() -> None:
    with pytest.raises(cdl.SpecError, match="record_every"):
        cdl.Direct(record_every=-1)


@pytest.mark.parametrize("run", ["resnet_run", "mlp_run"])
def test_heatmap_renders_with_labels_and_a_colour_bar(run, request) -> None:
    problem, result = request.getfixturevalue(run)
    ax = cdl.plotting.training_heatmap(problem, result)
    assert ax.get_xlabel() == "training iteration τ" and ax.get_ylabel() == "layer time t"
    mesh = ax.collections[0]
    assert mesh.get_array().size == len(result.snapshots) * problem.n_steps
    labels = [a.get_ylabel() for a in ax.figure.axes]
    assert "‖θ(t, τ)‖" in labels and "loss" in labels  # colour bar and the loss panel
    assert len(ax.figure.axes) == 3
    plt.close(ax.figure)
    ax = cdl.plotting.training_heatmap(problem, result, log=True)
    assert ax.collections[0].norm.__class__.__name__ == "LogNorm"
    plt.close(ax.figure)
