"""Checkpoints of long solves: written through the Recorder, atomically, and resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import control_dl as cdl
from control_dl.cli import main
from control_dl.solvers.checkpoint import checkpoint_iteration, load_checkpoint

#: every solver kind, configured for 12 iterations with snapshots and checkpoints every 5
SOLVERS = {
    "direct": lambda **ck: cdl.Direct(hessian="lbfgs", max_iter=12, record_every=5, **ck),
    "msa": lambda **ck: cdl.MSA(rho=1.0, inner="newton", max_iter=12, record_every=5, jit=False, **ck),
    "torch": lambda **ck: cdl.TorchTrainer(optimizer="adam", epochs=12, record_every=5, **ck),
}


@pytest.mark.parametrize("kind", sorted(SOLVERS))
def test_solvers_checkpoint_the_iterate_every_k_iterations(
    kind: str, small_ring: cdl.TrainingProblem, tmp_path: Path
) -> None:
    path = tmp_path / "ck.npz"
    solver = SOLVERS[kind](checkpoint=str(path), checkpoint_every=5)
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.iterations == 12
    assert checkpoint_iteration(path) == 10
    snapshot = dict((i, w) for i, _, w in result.snapshots)[10]
    np.testing.assert_array_equal(load_checkpoint(path, small_ring), snapshot)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left behind


def test_resuming_starts_from_the_checkpoint(small_ring: cdl.TrainingProblem, tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    first = cdl.solve(
        small_ring, cdl.Direct(hessian="lbfgs", max_iter=10, checkpoint=str(path), checkpoint_every=10), progress=False
    )
    resumed = cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=5), w0=load_checkpoint(path, small_ring))
    assert resumed.history[0]["objective"] == pytest.approx(first.objective, rel=1e-12)
    assert resumed.objective <= first.objective


def test_a_checkpoint_of_another_problem_is_refused(small_ring: cdl.TrainingProblem, tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    cdl.solve(small_ring, cdl.Direct(hessian="lbfgs", max_iter=2, checkpoint=str(path), checkpoint_every=1))
    with pytest.raises(cdl.SpecError, match="different problem"):
        load_checkpoint(path, cdl.load_problem("ring", n_samples=40, dim=3, n_steps=6))
    with pytest.raises(cdl.SpecError, match=r"checkpoint=.*missing\.npz'.*no such file"):
        load_checkpoint(tmp_path / "missing.npz", small_ring)


@pytest.mark.parametrize(
    "options",
    [
        {"checkpoint_every": 5},
        {"checkpoint_every": -1, "checkpoint": "x.npz"},
        {"checkpoint": 3, "checkpoint_every": 1},
        {"checkpoint": "", "checkpoint_every": 1},
    ],
)
def test_bad_checkpoint_options(options: dict) -> None:
    with pytest.raises(cdl.SpecError, match="checkpoint"):
        cdl.Direct(**options)


@pytest.mark.parametrize("kind", sorted(SOLVERS))
def test_a_checkpoint_file_without_an_interval_is_refused(kind: str, tmp_path: Path) -> None:
    """It wrote nothing (checkpoint_every defaults to 0), while the other way round was refused."""
    with pytest.raises(cdl.SpecError, match=r"checkpoint='.*ck\.npz': needs checkpoint_every = K >= 1"):
        SOLVERS[kind](checkpoint=str(tmp_path / "ck.npz"))
    with pytest.raises(cdl.SpecError, match="checkpoint_every=3: needs checkpoint = "):
        SOLVERS[kind](checkpoint_every=3)


@pytest.mark.parametrize("kind", sorted(SOLVERS))
def test_a_checkpoint_path_may_be_a_path(kind: str, small_ring: cdl.TrainingProblem, tmp_path: Path) -> None:
    solver = SOLVERS[kind](checkpoint=tmp_path / "ck.npz", checkpoint_every=5)
    assert solver.checkpoint == str(tmp_path / "ck.npz")  # stored as text: the options are saved as JSON
    result = cdl.solve(small_ring, solver, progress=False)
    assert checkpoint_iteration(tmp_path / "ck.npz") == 10
    assert cdl.Result.load(result.save(tmp_path / "r")).solver_spec["checkpoint"] == str(tmp_path / "ck.npz")


def test_a_failed_solve_labels_its_returned_w_with_its_iteration(
    small_ring: cdl.TrainingProblem, tmp_path: Path
) -> None:
    """lr = 5 blows Adam up: the run fails after 30 epochs and returns the start, iteration 0."""
    path = tmp_path / "ck.npz"
    solver = cdl.TorchTrainer(epochs=30, lr=5.0, record_every=1, checkpoint=str(path), checkpoint_every=100)
    result = cdl.solve(small_ring, solver, progress=False)
    assert result.status == "failed" and result.iterations == 30
    reached = [i for i, _, w in result.snapshots if np.array_equal(w, result.w)]
    assert reached and reached[0] < 30
    np.testing.assert_array_equal(load_checkpoint(path, small_ring), result.w)
    assert checkpoint_iteration(path) == reached[0]  # what --resume prints, not the 30 epochs run


def test_an_older_checkpoint_is_read_for_a_spec_problem_only(small_ring: cdl.TrainingProblem, tmp_path: Path) -> None:
    """Before fingerprints a checkpoint held a hash of the spec (of n_params alone without a spec)."""
    from control_dl.solvers.checkpoint import _spec_hash

    w = small_ring.initial_guess(0)
    np.savez(tmp_path / "old.npz", w=w, iteration=4, fingerprint=np.array(_spec_hash(small_ring)))
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "old.npz", small_ring), w)
    with pytest.raises(cdl.SpecError, match="different problem"):
        load_checkpoint(
            tmp_path / "old.npz", cdl.load_problem("ring", n_samples=40, dim=3, n_steps=5, activation="relu")
        )
    built = cdl.TrainingProblem(data=small_ring.data, dim=3, control=cdl.PiecewiseConstant(5), cost=small_ring.cost)
    np.savez(tmp_path / "built.npz", w=w, iteration=4, fingerprint=np.array(_spec_hash(built)))
    with pytest.raises(cdl.SpecError, match="older control_dl that did not record the problem"):
        load_checkpoint(tmp_path / "built.npz", built)


def test_cli_solve_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["solve", "ring", "--set", "n_samples=40", "--set", "n_steps=4", "--option", 'hessian="lbfgs"']
    args += ["--out", str(tmp_path), "--no-progress", "--option", "max_iter=8"]
    assert main([*args, "--checkpoint-every", "4"]) == 0
    assert checkpoint_iteration(tmp_path / "checkpoint.npz") == 8
    assert main([*args, "--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert main([*args, "--set", "n_steps=5", "--resume"]) == 2  # another problem: refused
