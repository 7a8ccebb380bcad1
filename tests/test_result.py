"""Result save -> load is exact, and the accessors agree with the problem."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import control_dl as cdl
from control_dl import SpecError


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


def test_summary_gives_the_reason_of_a_failed_run_only(result):
    """A failed run's one line says why (a user saw only 'failed' on the CLI after losing every
    Dask worker; the reason was in summary.json alone)."""
    assert result.message and result.message not in result.summary()  # converged / max_iter: no reason
    failed = dataclasses.replace(result, status="failed", message="shard 0 could not be rebuilt")
    assert failed.summary().endswith(" | shard 0 could not be rebuilt")


def test_save_leaves_no_temporary_files(result, tmp_path):
    result.save(tmp_path / "a.npz")
    result.save(tmp_path / "a.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_files_get_the_mode_of_any_new_file(result, tmp_path, umask):
    """Writes go to a temporary sibling, then a rename; with mkstemp's 0o600 every result was
    unreadable to others on a shared folder whatever the umask (a user's report)."""
    previous = os.umask(umask)
    try:
        result.save(tmp_path / "r.npz")
    finally:
        os.umask(previous)
    assert (tmp_path / "r.npz").stat().st_mode & 0o777 == 0o666 & ~umask


def test_bad_status_rejected():
    with pytest.raises(SpecError, match=r"status=.ok.: must be one of"):
        cdl.Result(status="ok", message="", w=np.zeros(1), objective=0.0, loss=0.0)


# ------------------------------------------------------------------ results keep their data
RNG = np.random.default_rng(5)
X = RNG.normal(size=(40, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]
LABELS = np.array(["cat", "dog", "emu", "dog"] * 10)


def short_solve(problem: cdl.TrainingProblem) -> cdl.Result:
    return cdl.solve(problem, cdl.Direct(hessian="lbfgs", nlp="lbfgsb", max_iter=5), progress=False)


def assert_same_problem(a: cdl.TrainingProblem, b: cdl.TrainingProblem) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test", "mean", "scale"):
        np.testing.assert_array_equal(getattr(a.data, name), getattr(b.data, name))
    assert (a.data.task, a.data.class_names, a.n_params) == (b.data.task, b.data.class_names, b.n_params)


def test_save_then_load_with_the_same_path(result, tmp_path):
    result.save(tmp_path / "r")
    np.testing.assert_array_equal(cdl.Result.load(tmp_path / "r").w, result.w)


def test_array_built_problem_is_stored_and_rebuilt_bit_exactly(tmp_path):
    data = cdl.Dataset.from_arrays(X, LABELS, standardize=True)
    problem = cdl.TrainingProblem(
        data=data, dim=4, control=cdl.PiecewiseLinear(n_nodes=3, n_steps=4), cost=cdl.Cost(loss="cross_entropy")
    )
    result = short_solve(problem)
    loaded = cdl.Result.load(result.save(tmp_path / "arrays"))
    assert_same_problem(loaded.problem, problem)
    assert loaded.problem.control == problem.control and loaded.problem.dim == 4
    np.testing.assert_array_equal(loaded.predict(X, layout="samples"), result.predict(X, layout="samples"))
    assert loaded.objective == problem.objective(loaded.w)
    without = cdl.Result.load(result.save(tmp_path / "lean", data=False))
    assert without.problem is None and without.data_source["stored"] is False
    assert (tmp_path / "lean.npz").stat().st_size < (tmp_path / "arrays.npz").stat().st_size


def test_file_backed_problem_is_rebuilt_and_a_changed_file_is_named(tmp_path):
    path = tmp_path / "zoo.csv"
    path.write_text(
        "a,b,c,animal\n" + "".join(f"{r[0]!r},{r[1]!r},{r[2]!r},{n}\n" for r, n in zip(X.tolist(), LABELS, strict=True))
    )
    problem = cdl.TrainingProblem(
        data=cdl.Dataset.from_file(path, target="animal", standardize=True), cost=cdl.Cost(loss="cross_entropy")
    )
    saved = short_solve(problem).save(tmp_path / "run")
    loaded = cdl.Result.load(saved)
    assert_same_problem(loaded.problem, problem)
    assert loaded.data_source["sha256"] == problem.data.source["sha256"]
    path.write_text(path.read_text().replace("cat", "cow", 1))
    with pytest.raises(cdl.SpecError, match=r"zoo\.csv changed since the result was saved"):
        cdl.Result.load(saved)
    assert cdl.Result.load(saved, rebuild=False).problem is None
    path.unlink()
    with pytest.raises(cdl.SpecError, match=r"zoo\.csv is missing"):
        cdl.Result.load(saved)


def test_generator_problem_records_its_arguments(result, tmp_path, small_ring):
    loaded = cdl.Result.load(result.save(tmp_path / "ring"))
    assert loaded.data_source == {"dataset": "ring", "n_samples": 40, "noise": 0.0, "seed": 0}
    assert_same_problem(loaded.problem, small_ring)


# ------------------------------------------------------------------------- predict layouts
def test_predict_takes_both_layouts_and_raw_inputs(tmp_path):
    data = cdl.Dataset.from_arrays(X, LABELS, standardize=True)
    problem = cdl.TrainingProblem(data=data, cost=cdl.Cost(loss="cross_entropy"))
    result = short_solve(problem)
    by_features = result.predict(X.T)
    np.testing.assert_array_equal(result.predict(X, layout="samples"), by_features.T)
    np.testing.assert_allclose(
        by_features, problem.predict(result.w, (X - data.mean).T / data.scale[:, None]), rtol=1e-13
    )


@pytest.mark.parametrize(
    ("inputs", "layout", "message"),
    [
        (X, "features", r"layout='features' expects \(n_in, S\) = \(3, S\); it fits layout='samples'"),
        (X.T, "samples", r"layout='samples' expects \(S, n_in\) = \(S, 3\); it fits layout='features'"),
        (X[:, :2], "samples", r"expects \(S, n_in\) = \(S, 3\)$"),
        (X[0], "samples", "must be a matrix"),  # one sample or 3 samples of one feature?
        (X, "rows", "layout"),
    ],
)
def test_predict_shape_errors_name_the_expected_layout(inputs, layout, message):
    problem = cdl.TrainingProblem(data=cdl.Dataset.from_arrays(X, LABELS), cost=cdl.Cost(loss="cross_entropy"))
    result = cdl.Result(
        status="max_iter", message="", w=problem.initial_guess(), objective=0.0, loss=0.0, problem=problem
    )
    with pytest.raises(cdl.SpecError, match=message):
        result.predict(inputs, layout=layout)


def test_diagnostics_taking_inputs_accept_both_layouts(result, small_ring):
    x = small_ring.data.x_test
    by_features = cdl.diagnostics.layer_ranks(small_ring, result, x)
    by_samples = cdl.diagnostics.layer_ranks(small_ring, result, x.T, layout="samples")
    for a, b in zip(by_features.jacobian_singular_values, by_samples.jacobian_singular_values, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(cdl.SpecError, match="it fits layout='samples'"):
        cdl.diagnostics.layer_ranks(small_ring, result, x.T)


def test_predict_rejects_nan(small_ring):
    r = cdl.solve(small_ring, cdl.load_solver("lbfgsb", max_iter=2), progress=False)
    with pytest.raises(SpecError, match="NaN"):
        r.predict(np.array([[np.nan, 0.0]]), layout="samples")


def test_load_errors(tmp_path):
    with pytest.raises(SpecError, match=r"path=.*nothere'.*no such file, nor .*nothere\.npz"):
        cdl.Result.load(tmp_path / "nothere")
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(SpecError, match="not a control_dl result"):
        cdl.Result.load(tmp_path / "x.npz")


def test_a_result_without_its_problem_says_how_to_attach_it(tmp_path):
    data = cdl.Dataset.from_arrays(X, LABELS)
    problem = cdl.TrainingProblem(
        data=data, dim=3, control=cdl.PiecewiseConstant(n_steps=2), cost=cdl.Cost(loss="cross_entropy")
    )
    result = short_solve(problem)
    lean = cdl.Result.load(result.save(tmp_path / "lean", data=False))
    calls = {
        "predict": lambda r: r.predict(X, layout="samples"),
        "states": lambda r: r.states,
        "to_casadi": lambda r: r.to_casadi(),
        "to_onnx": lambda r: r.to_onnx(tmp_path / "net.onnx"),
        "export": lambda r: r.export("casadi", tmp_path / "net.casadi"),
    }
    for call in calls.values():
        with pytest.raises(SpecError, match=r"problem=None: .*saved with data=False.*Result\.load\(path, problem="):
            call(lean)
    np.testing.assert_array_equal(  # the remedy the message names works
        cdl.Result.load(tmp_path / "lean", problem=problem).predict(X, layout="samples"),
        result.predict(X, layout="samples"),
    )
    unbuilt = cdl.Result.load(result.save(tmp_path / "full"), rebuild=False)
    with pytest.raises(SpecError, match="rebuild=False"):
        unbuilt.predict(X, layout="samples")
    assert not (tmp_path / "net.onnx").exists() and not (tmp_path / "net.casadi").exists()


def test_numpy_scalars_in_options_and_seed_are_saved_as_python_numbers(tmp_path):
    # numpy integers and floats pass the option checks, so they must also survive the JSON of a saved result
    problem = cdl.load_problem("ring", n_samples=40, n_steps=3)
    solver = cdl.solvers.Direct(nlp="lbfgsb", max_iter=np.int64(3), tol=np.float32(1e-6))
    result = cdl.solve(problem, solver, seed=np.int64(2), progress=False)
    assert result.iterations <= 3 and type(result.seed) is int
    loaded = cdl.Result.load(result.save(tmp_path / "run"))
    assert loaded.seed == 2 and type(loaded.seed) is int
    assert loaded.solver_spec["max_iter"] == 3 and type(loaded.solver_spec["max_iter"]) is int
    assert loaded.solver_spec["tol"] == float(np.float32(1e-6))
    np.testing.assert_array_equal(loaded.w, result.w)
