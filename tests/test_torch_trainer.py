"""TorchTrainer: the same model trained by torch optimizers, and the costate (adjoint) gradient."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import control_dl as cdl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("overrides", [{}, {"loss": "logistic", "turnpike": 0.2, "integrator": "rk4"}])
def test_first_sgd_step_uses_the_casadi_gradient(overrides: dict) -> None:
    # plain SGD: w1 = w0 - lr * g, so (w0 - w1) / lr is the gradient the trainer used
    small_ring = cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, **overrides)
    w0 = small_ring.initial_guess(3)
    for adjoint in (False, True):
        trainer = cdl.TorchTrainer(optimizer="sgd", lr=0.5, epochs=1, adjoint=adjoint)
        result = cdl.solve(small_ring, trainer, w0=w0, progress=False)
        used = (w0 - result.w) / 0.5
        np.testing.assert_allclose(used, small_ring.gradient(w0, backend="casadi"), rtol=1e-9, atol=1e-12)
        assert result.history[0]["grad_norm"] == pytest.approx(np.linalg.norm(used), rel=1e-9)
        assert result.history[0]["objective"] == pytest.approx(small_ring.objective(w0), rel=1e-12)


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
@pytest.mark.parametrize(
    "overrides",
    [
        {"loss": "mse"},
        {"loss": "logistic", "turnpike": 0.3, "h1": 1e-2, "control": "piecewise_linear"},
        {"control": "spectral", "tracking": 0.1, "lift": "affine"},
    ],
)
def test_adjoint_gradient_equals_backprop(integrator: str, overrides: dict) -> None:
    problem = cdl.load_problem("ring", n_samples=30, dim=3, n_steps=4, integrator=integrator, **overrides)
    w = problem.initial_guess(1)
    j_back, g_back = cdl.TorchTrainer().objective_and_gradient(problem, w)
    j_adj, g_adj = cdl.TorchTrainer(adjoint=True).objective_and_gradient(problem, w)
    assert j_adj == pytest.approx(j_back, rel=1e-12)
    assert j_back == pytest.approx(problem.objective(w), rel=1e-12)
    np.testing.assert_allclose(g_adj, g_back, rtol=0, atol=1e-6 * max(1.0, np.abs(g_back).max()))
    np.testing.assert_allclose(g_adj, g_back, rtol=1e-9, atol=1e-13)


def test_adjoint_gradient_equals_backprop_for_an_mlp() -> None:
    problem = cdl.load_problem("circle", n_samples=30, model="mlp", widths=[2, 4, 3, 1])
    w = problem.initial_guess(2)
    _, g_back = cdl.TorchTrainer().objective_and_gradient(problem, w)
    _, g_adj = cdl.TorchTrainer(adjoint=True).objective_and_gradient(problem, w)
    np.testing.assert_allclose(g_back, problem.gradient(w, "casadi"), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(g_adj, g_back, rtol=1e-9, atol=1e-13)


def test_adam_classifies_the_ring_in_3d() -> None:
    problem = cdl.load_problem("ring", n_samples=100, dim=3, n_steps=10)
    result = cdl.solve(problem, cdl.TorchTrainer(optimizer="adam", lr=0.05, epochs=200), progress=False)
    assert result.status == "max_iter"
    assert result.accuracy >= 0.99
    assert result.history[-1]["objective"] < 0.5 * result.history[0]["objective"]
    assert {"iter", "time", "objective", "loss", "accuracy", "grad_norm"} <= set(result.history[-1])


def test_lbfgs_decreases_and_minibatch_adam_is_reproducible(small_ring: cdl.TrainingProblem) -> None:
    lbfgs = cdl.solve(small_ring, cdl.load_solver("torch-lbfgs", epochs=30), progress=False)
    objectives = [h["objective"] for h in lbfgs.history]
    assert np.all(np.diff(objectives) <= 1e-12)  # strong Wolfe: monotone
    assert objectives[-1] < 0.5 * objectives[0]
    trainer = cdl.TorchTrainer(optimizer="adam", lr=0.02, epochs=5, batch_size=16, seed=4)
    first, second = (cdl.solve(small_ring, trainer, progress=False) for _ in range(2))
    np.testing.assert_array_equal(first.w, second.w)
    other = cdl.solve(
        small_ring, cdl.TorchTrainer(optimizer="adam", lr=0.02, epochs=5, batch_size=16, seed=5), progress=False
    )
    assert not np.array_equal(first.w, other.w)


@pytest.mark.parametrize(
    "solver",
    [
        cdl.TorchTrainer(optimizer="sgd", lr=0.05, epochs=3, batch_size=16),
        cdl.MSA(rho=1.0, inner="newton", batch_size=16, max_iter=3, jit=False),
    ],
    ids=["sgd", "msa"],
)
def test_solves_seed_draws_the_mini_batches_unless_the_solver_sets_its_own(small_ring, solver) -> None:
    """A user's report: solve(seed=0) and solve(seed=5) from one w0 gave identical w, and Result.seed said 0 and 5."""
    w0 = small_ring.initial_guess(0)
    runs = {seed: cdl.solve(small_ring, solver, w0=w0, seed=seed, progress=False) for seed in (0, 5)}
    assert not np.array_equal(runs[0].w, runs[5].w)
    assert [runs[s].solver_spec["seed"] for s in (0, 5)] == [0, 5] and [runs[s].seed for s in (0, 5)] == [0, 5]
    again = cdl.solve(small_ring, solver, w0=w0, seed=5, progress=False)
    np.testing.assert_array_equal(again.w, runs[5].w)
    own = dataclasses.replace(solver, seed=3)  # the solver's own seed wins
    fixed = [cdl.solve(small_ring, own, w0=w0, seed=s, progress=False).w for s in (0, 5)]
    np.testing.assert_array_equal(*fixed)


def test_status_converged_and_diverged(small_ring: cdl.TrainingProblem) -> None:
    # tol 5e-3, reached at epoch 50: at 1e-3 the torch L-BFGS iterates (lr = 1, no line search)
    # oscillate around it, and whether one of them lands below it depended on the last bit of f
    converged = cdl.solve(
        small_ring, cdl.TorchTrainer(optimizer="lbfgs", lr=1.0, epochs=2000, tol=5e-3), progress=False
    )
    assert converged.status == "converged" and converged.iterations < 2000
    assert converged.history[-1]["grad_norm"] <= 5e-3 or "objective change" in converged.message
    diverged = cdl.solve(small_ring, cdl.TorchTrainer(optimizer="sgd", lr=1e6, epochs=50), progress=False)
    assert diverged.status == "diverged"
    assert np.all(np.isfinite(diverged.w))


def test_threads_are_restored(small_ring: cdl.TrainingProblem) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        cdl.solve(small_ring, cdl.TorchTrainer(epochs=2, threads=1), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "rmsprop"},
        {"lr": 0.0},
        {"epochs": -1},
        {"batch_size": 0},
        {"optimizer": "lbfgs", "batch_size": 10},
        {"threads": 0},
        {"adjoint": "yes"},
    ],
)
def test_bad_options_name_the_field(options: dict) -> None:
    field = next(iter(options)) if len(options) == 1 else "batch_size"
    with pytest.raises(cdl.SpecError, match=field):
        cdl.TorchTrainer(**options)


def test_learning_rate_defaults_per_optimizer() -> None:
    assert cdl.TorchTrainer(optimizer="lbfgs").lr == 1.0
    assert cdl.TorchTrainer(optimizer="adam").lr == 1e-2
    assert cdl.TorchTrainer(optimizer="sgd", lr=0.3).lr == 0.3


def test_presets_load() -> None:
    for name, optimizer in (("adam", "adam"), ("sgd", "sgd"), ("torch-lbfgs", "lbfgs")):
        solver = cdl.load_solver(name, epochs=3)
        assert isinstance(solver, cdl.TorchTrainer)
        assert solver.optimizer == optimizer and solver.epochs == 3


def test_import_does_not_need_torch() -> None:
    import subprocess
    import sys

    code = "import sys, control_dl as cdl; cdl.TorchTrainer(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
