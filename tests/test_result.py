"""Result save -> load is exact, and the accessors agree with the problem."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl


@pytest.fixture
def result(small_ring):
    return cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=8, record_every=3), seed=2, progress=False)


def test_round_trip_is_bit_exact(result, tmp_path):
    path = result.save(tmp_path / "run")
    assert path.suffix == ".npz"
    loaded = cdl.Result.load(path)
    np.testing.assert_array_equal(loaded.w, result.w)
    assert loaded.history == result.history
    for field in (
        "status",
        "message",
        "objective",
        "loss",
        "accuracy",
        "test_accuracy",
        "seed",
        "solver_spec",
        "versions",
    ):
        assert getattr(loaded, field) == getattr(result, field)
    assert [(i, t) for i, t, _ in loaded.snapshots] == [(i, t) for i, t, _ in result.snapshots]
    for (_, _, a), (_, _, b) in zip(loaded.snapshots, result.snapshots, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.states, result.states)  # the problem was rebuilt from its spec


def test_snapshots_every_k_iterations(result):
    iters = [i for i, _, _ in result.snapshots]
    assert iters[:3] == [0, 3, 6] and iters[-1] == result.iterations


def test_accessors(result, small_ring):
    assert result.states.shape == (6, 3, 40)
    np.testing.assert_array_equal(result.times, np.linspace(0, 1, 6))
    np.testing.assert_allclose(result.theta([0.0])[0], result.w[:12])
    np.testing.assert_allclose(
        result.predict(small_ring.data.x_test), small_ring.predict(result.w, small_ring.data.x_test)
    )
    assert "max_iter" in result.summary() or "converged" in result.summary()
    assert result.versions["casadi"] and result.seed == 2


def test_save_leaves_no_temporary_files(result, tmp_path):
    result.save(tmp_path / "a.npz")
    result.save(tmp_path / "a.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_bad_status_rejected():
    with pytest.raises(ValueError, match="status"):
        cdl.Result(status="ok", message="", w=np.zeros(1), objective=0.0, loss=0.0)
