"""User data: sample-major arrays, CSV / npz / npy files, TOML specs, the command line and sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import control_dl as cdl
from control_dl import SpecError
from control_dl.cli import main
from control_dl.experiments import run_sweep
from control_dl.problems.datasets import stratified_split

RNG = np.random.default_rng(7)
#: 48 samples, 2 features on very different scales, labels by a circle: "inside" / "outside"
X = RNG.normal(size=(48, 2)) * [1.0, 10.0] + [0.0, 5.0]
NAMES = np.where(X[:, 0] ** 2 + ((X[:, 1] - 5.0) / 10.0) ** 2 < 1.0, "inside", "outside")


def write_csv(path: Path, rows: list[str], header: str = "a,b,label") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "circle.csv", [f"{float(a)!r},{float(b)!r},{c}" for (a, b), c in zip(X, NAMES, strict=True)]
    )


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    np.savez(tmp_path / "circle.npz", X=X[:36], y=NAMES[:36] == "inside", X_test=X[36:], y_test=NAMES[36:] == "inside")
    return tmp_path / "circle.npz"


def problem_toml(folder: Path, data_file: str, **data: object) -> Path:
    """A problem TOML next to the data, naming it by a path relative to the TOML file."""
    lines = ['name = "user"', "[data]", 'dataset = "file"', f'path = "{data_file}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in data.items()]
    lines += ["[model]", "dim = 3", "[control]", "n_steps = 4", "[cost]", 'loss = "logistic"', "l2 = 1e-3"]
    path = folder / "spec" / "user.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------ arrays
def test_from_arrays_is_sample_major_stratified_and_seeded():
    data = cdl.Dataset.from_arrays(X, NAMES, test_size=0.25, seed=3)
    assert data.task == "binary" and data.class_names == ("inside", "outside")
    assert data.x_train.shape == (2, 36) and data.x_test.shape == (2, 12)
    columns = {tuple(c) for c in np.hstack([data.x_train, data.x_test]).T}
    assert columns == {tuple(r) for r in X}  # every sample once, in one of the splits
    labels = np.searchsorted(["inside", "outside"], NAMES)
    share = np.bincount(labels) * 12 / 48
    assert np.all(np.abs(np.bincount(data.y_test) - share) < 1)
    again = cdl.Dataset.from_arrays(X, NAMES, test_size=0.25, seed=3)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    other = cdl.Dataset.from_arrays(X, NAMES, test_size=0.25, seed=4)
    assert not np.array_equal(other.x_test, data.x_test)


def test_stratified_counts_equal_scikit_learns():
    sklearn = pytest.importorskip("sklearn.model_selection")
    labels = np.repeat([0, 1, 2, 3], [50, 31, 13, 6])
    train, test = stratified_split(labels, labels.size, 0.3, seed=0)
    _, y_test = sklearn.train_test_split(labels, test_size=0.3, stratify=labels, random_state=0)
    np.testing.assert_array_equal(np.bincount(labels[test]), np.bincount(y_test))
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == labels.size


def test_standardisation_is_fitted_on_the_training_split_only():
    data = cdl.Dataset.from_arrays(X, NAMES, standardize=True, seed=1)
    raw_train = data.inverse_transform(data.x_train)
    np.testing.assert_allclose(data.mean, raw_train.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(data.scale, raw_train.std(axis=1), rtol=1e-12)
    np.testing.assert_allclose(data.x_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(data.x_train.std(axis=1), 1, rtol=1e-12)
    assert np.all(np.abs(data.x_test.mean(axis=1)) > 1e-6)  # the test split was not used in the fit
    train, test = stratified_split(np.searchsorted(["inside", "outside"], NAMES), 48, 0.25, seed=1)
    np.testing.assert_allclose(data.mean, X[train].mean(axis=0), rtol=1e-12)  # not X[test], not all of X
    np.testing.assert_allclose(data.x_test, ((X[test] - data.mean) / data.scale).T, rtol=1e-12)


def test_a_constant_feature_gets_scale_one_also_when_rounding_gives_it_a_variance():
    """Before: a column of 0.1 (1e6 + 0.1) on every row got s = 1.8e-16 (4.7e-10) from rounding,
    and a new input of 0.1000001 became 5.5e8 at prediction time (a fresh user's CSV)."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=120), np.full(120, 0.1), np.full(120, 1e6 + 0.1), np.full(120, 7.0)])
    assert x[:, 1].std() > 0 and x[:, 2].std() > 0  # what rounding leaves: the case this test is about
    data = cdl.Dataset.from_arrays(x, x[:, 0] > 0, standardize=True, seed=0)
    np.testing.assert_array_equal(data.scale[1:], 1.0)
    np.testing.assert_allclose(data.scale[0], data.inverse_transform(data.x_train)[0].std(), rtol=1e-12)
    new = np.array([[0.3], [0.1000001], [1e6 + 0.2], [7.0]])
    np.testing.assert_allclose(data.transform(new)[1:, 0], [1e-7, 0.1, 0.0], atol=1e-9)


def test_a_nan_label_or_target_is_named_as_given_with_its_sample():
    """Before: y_train= or y_test= (whichever split it fell in), and no sample."""
    for y in (np.where(np.arange(48) == 5, np.nan, X[:, 0] ** 2), np.where(np.arange(48) == 5, np.nan, 1.0)):
        with pytest.raises(
            cdl.SpecError, match=r"y='NaN/inf': labels and targets must be finite \(first bad value in sample 5\)"
        ):
            cdl.Dataset.from_arrays(X, y)


def test_task_inference():
    assert cdl.Dataset.from_arrays(X, NAMES == "inside").task == "binary"  # booleans
    three = cdl.Dataset.from_arrays(X, np.arange(48) % 3 + 5)  # integers 5, 6, 7
    assert three.task == "multiclass" and three.class_names == ("5", "6", "7") and three.y_train.max() == 2
    assert cdl.Dataset.from_arrays(X, np.arange(48) % 3).class_names is None  # already 0..K-1
    regression = cdl.Dataset.from_arrays(X, X[:, 0] ** 2)
    assert regression.task == "regression" and regression.y_train.shape == (1, 36)
    assert cdl.Dataset.from_arrays(X, X[:, :1] * [1.0, 2.0]).n_out == 2
    with pytest.raises(cdl.SpecError, match="task"):
        cdl.Dataset.from_arrays(X, NAMES, task="regression")
    with pytest.raises(cdl.SpecError, match="task"):
        cdl.Dataset.from_arrays(X, np.arange(48) % 3, task="binary")


def test_float_labels_that_look_like_classes_are_regression_with_a_warning(caplog, tmp_path):
    """A user's float32 0/1 labels (from torch) became a regression problem without a word, from arrays
    and from an .npz; the dtype still decides, and a warning names task=."""
    labels = (np.arange(48) % 2).astype(np.float32)
    with caplog.at_level("WARNING", logger="control_dl.problems.datasets"):
        data = cdl.Dataset.from_arrays(X, labels)
    assert data.task == "regression" and "task='binary'" in caplog.text and "2 distinct values: 0, 1" in caplog.text
    caplog.clear()
    np.savez(tmp_path / "d.npz", X=X, y=labels)
    with caplog.at_level("WARNING", logger="control_dl.problems.datasets"):
        assert cdl.Dataset.from_file(tmp_path / "d.npz").task == "regression"
    assert "task='binary'" in caplog.text
    assert cdl.Dataset.from_arrays(X, labels, task="binary").task == "binary"
    caplog.clear()
    with caplog.at_level("WARNING", logger="control_dl.problems.datasets"):
        cdl.Dataset.from_arrays(X, X[:, 0] ** 2)  # real regression targets: no warning
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"X": X.T}, "transposed"),  # features × samples given where samples × features are expected
        ({"y": NAMES[:10]}, "y"),
        ({"X_test": X[:4]}, "y_test"),  # half a test set
        ({"X_test": X[:4, :1], "y_test": NAMES[:4]}, "X_test"),  # other feature count
        ({"test_size": 1.5}, "test_size"),
        ({"X": np.where(X > 9, np.nan, X)}, "X"),
        ({"y": np.zeros(48)}, "two classes"),
    ],
)
def test_bad_arrays_are_spec_errors(kwargs, field):
    args = {"X": X, "y": NAMES, **kwargs}
    if "y" in kwargs and kwargs["y"].dtype.kind == "f":
        args["task"] = "binary"
    with pytest.raises(cdl.SpecError, match=field):
        cdl.Dataset.from_arrays(**args)


def test_dataset_errors_say_the_inputs_look_transposed():
    with pytest.raises(cdl.SpecError, match="y_train.*look transposed"):
        cdl.Dataset(X, NAMES == "inside", X.T, NAMES == "inside", task="binary")


def test_a_length_mismatch_is_not_called_a_transposition(tmp_path):
    """Transposition is suggested only when the labels fit the other axis of the inputs."""
    Z = RNG.normal(size=(40, 3))
    plain = r"y=\(39,\): must have one entry per sample \(row\) of X, 40 of them$"
    with pytest.raises(SpecError, match=plain):
        cdl.Dataset.from_arrays(Z, np.arange(39) % 2)
    np.savez(tmp_path / "short.npz", X=Z[:20], y=np.arange(19) % 2)
    with pytest.raises(
        SpecError, match=r"short\.npz: y=\(19,\): must have one entry per sample \(row\) of X, 20 of them$"
    ):
        cdl.Dataset.from_file(tmp_path / "short.npz")
    with pytest.raises(SpecError, match=r"y_test=\(9,\): .* of X_test, 10 of them$"):
        cdl.Dataset.from_arrays(Z, np.arange(40) % 2, X_test=Z[:10], y_test=np.arange(9) % 2)
    with pytest.raises(SpecError, match="X looks transposed: 40 columns = the number of labels"):
        cdl.Dataset.from_arrays(Z.T, np.arange(40) % 2)
    with pytest.raises(SpecError, match=r"y_train=\(39,\): labels must be a vector of 40 integers \(or booleans\)$"):
        cdl.Dataset(Z.T, np.arange(39) % 2, Z.T, np.arange(40) % 2, task="binary")
    with pytest.raises(SpecError, match=r"y_train=\(40, 2\): .*the targets look transposed .*: pass y\.T$"):
        cdl.Dataset(Z.T, Z[:, :2], Z.T, Z[:, :2].T, task="regression")
    with pytest.raises(SpecError, match=r"y_train=\(2, 40\): .*the inputs look transposed"):
        cdl.Dataset(Z, Z[:, :2].T, Z.T, Z[:, :2].T, task="regression")


def test_boolean_labels_are_zero_and_one():
    data = cdl.Dataset(X.T, NAMES == "inside", X.T, NAMES == "inside", task="binary")
    np.testing.assert_array_equal(data.y_train, (NAMES == "inside").astype(int))


# ------------------------------------------------------------------------------------- files
def test_a_csv_header_that_reads_as_a_number_names_the_target(tmp_path):
    """Before: --set target=2024 (an int after parsing) was refused for the header "2024"."""
    path = tmp_path / "years.csv"
    path.write_text("a,b,2024\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12)))
    for target in (2024, "2024"):
        data = cdl.Dataset.from_file(path, target=target)
        assert data.n_in == 2 and data.task == "binary"
    with pytest.raises(cdl.SpecError, match=r"target='2025': no such column; the header has \['a', 'b', '2024'\]"):
        cdl.Dataset.from_file(path, target=2025)


def test_csv_whole_number_labels_are_classes_as_in_an_npy(tmp_path):
    """Before: labels written as 0.0 / 1.0 (pandas writes integer columns with NaN that way) made a
    regression target in a CSV and classes in an .npy."""
    rows = [(i, i % 3, (i % 2) * 1.0) for i in range(12)]
    (tmp_path / "a.csv").write_text("a,b,label\n" + "".join(f"{a},{b},{c:.1f}\n" for a, b, c in rows))
    np.save(tmp_path / "a.npy", np.array(rows, dtype=float))
    for name, target in (("a.csv", "label"), ("a.npy", -1)):
        assert cdl.Dataset.from_file(tmp_path / name, target=target).task == "binary", name
    (tmp_path / "b.csv").write_text("a,b,label\n" + "".join(f"{a},{b},{c + 0.5}\n" for a, b, c in rows))
    assert cdl.Dataset.from_file(tmp_path / "b.csv", target="label").task == "regression"


def test_csv_string_labels_round_trip_to_their_names(csv_file):
    data = cdl.Dataset.from_file(csv_file, target="label")
    assert data.class_names == ("inside", "outside") and data.name == "circle"
    columns = np.hstack([data.x_train, data.x_test]).T
    labels = np.concatenate([data.y_train, data.y_test])
    by_row = {tuple(r): n for r, n in zip(X, NAMES, strict=True)}
    assert [data.class_names[k] for k in labels] == [by_row[tuple(c)] for c in columns]
    assert data.source["sha256"] == cdl.problems.datafiles.file_sha256(csv_file)


def test_npz_and_npy_files(npz_file, tmp_path):
    data = cdl.Dataset.from_file(npz_file)
    np.testing.assert_array_equal(data.x_test, X[36:].T)  # the file's own test split is kept
    np.save(tmp_path / "table.npy", np.c_[X, NAMES == "inside"])
    npy = cdl.Dataset.from_file(tmp_path / "table.npy", seed=0)
    arrays = cdl.Dataset.from_arrays(X, (NAMES == "inside").astype(int), seed=0)
    np.testing.assert_array_equal(npy.x_test, arrays.x_test)
    np.testing.assert_array_equal(npy.y_train, arrays.y_train)


@pytest.mark.parametrize(
    ("rows", "header", "where"),
    [
        (["1,2,a", "3,4"], "a,b,label", "line 3: 2 fields, the header has 3"),  # ragged
        (["1,2,a", "3,4,b,5"], "a,b,label", "line 3: 4 fields"),  # ragged, too long
        (["1,2,a", "3,,b"], "a,b,label", "line 3, column 'b': empty cell"),
        (["1,2,a", "3,nan,b"], "a,b,label", "line 3, column 'b': 'nan' is not a finite number"),
        (["1,2,a", "x7,1,b"], "a,b,label", "line 3, column 'a': 'x7' is not a finite number"),
        (["1,2,a", "3,4,"], "a,b,label", "line 3, column 'label': empty label cell"),
        (["1,2,a"], "a,b,klass", "target='label': no such column"),
        ([], "", "empty file"),
        ([], "a,b,label", "no data rows"),
    ],
)
def test_bad_csv_is_one_spec_error_naming_file_line_and_column(tmp_path, rows, header, where):
    path = write_csv(tmp_path / "bad.csv", rows, header) if header else tmp_path / "bad.csv"
    if not header:
        path.write_text("")
    with pytest.raises(cdl.SpecError) as error:
        cdl.Dataset.from_file(path, target="label")
    assert str(path) in str(error.value) and where in str(error.value)


def test_bad_npz_and_missing_files(tmp_path):
    np.savez(tmp_path / "a.npz", X=X, labels=NAMES)
    with pytest.raises(cdl.SpecError, match=r"a\.npz.*missing \['y'\]"):
        cdl.Dataset.from_file(tmp_path / "a.npz")
    with pytest.raises(cdl.SpecError, match="no such data file"):
        cdl.Dataset.from_file(tmp_path / "none.csv", target="label")
    with pytest.raises(cdl.SpecError, match="unknown data file type"):
        cdl.Dataset.from_file(write_csv(tmp_path / "a.tsv", []), target="label")


# ----------------------------------------------------------------------------- TOML, CLI, sweep
def test_toml_path_is_relative_to_the_toml_file(csv_file, monkeypatch, tmp_path):
    spec = problem_toml(csv_file.parent, "../circle.csv", target="label", standardize=True)
    monkeypatch.chdir(tmp_path / "spec")  # elsewhere than the data
    problem = cdl.load_problem(spec)
    direct = cdl.Dataset.from_file(csv_file, target="label", standardize=True)
    np.testing.assert_array_equal(problem.data.x_train, direct.x_train)
    assert problem.spec["data"]["path"] == str(csv_file)
    assert problem.data.class_names == ("inside", "outside")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"target": "label", "n_samples": 3}, "n_samples"),
        ({}, "target"),
        ({"target": "label", "standardize": 1}, "standardize"),
    ],
)
def test_bad_file_specs(csv_file, data, field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.load_problem(problem_toml(csv_file.parent, "../circle.csv", **data))


def data_spec(kind: str, request: pytest.FixtureRequest) -> tuple[Path, dict]:
    """The TOML of the test's CSV (string labels, standardised) or npz (booleans, its own test split)."""
    if kind == "csv":
        path = request.getfixturevalue("csv_file")
        return problem_toml(path.parent, "../circle.csv", target="label", standardize=True), {
            "names": ("inside", "outside")
        }
    path = request.getfixturevalue("npz_file")
    return problem_toml(path.parent, "../circle.npz"), {"names": None, "x_test": X[36:].T}


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_cli_solve_on_a_data_file(kind, request, tmp_path, capsys):
    spec, expected = data_spec(kind, request)
    out = tmp_path / "run"
    spec.write_text('solver = "lbfgsb"\n' + spec.read_text())  # the problem's default solver
    args = ["solve", str(spec), "--option", "max_iter=30", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert "lbfgsb" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] in ("converged", "max_iter") and summary["accuracy"] > 0.8
    loaded = cdl.Result.load(out / "result.npz")
    assert loaded.problem.data.class_names == expected["names"]
    np.testing.assert_array_equal(loaded.problem.data.x_train, cdl.load_problem(spec).data.x_train)


def test_cli_turnpike_takes_the_problems_solver_as_solve_does(request, tmp_path, capsys):
    """Before: turnpike ran ipopt-lbfgs whatever the problem TOML's solver said (even a bad one)."""
    spec, _ = data_spec("csv", request)
    spec.write_text('solver = "nosuch"\n' + spec.read_text())
    out = tmp_path / "tp"
    assert main(["turnpike", str(spec), "--horizons", "1", "--out", str(out), "--no-progress"]) == 2
    assert "nosuch" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_two_point_sweep_over_a_data_file(kind, request, tmp_path):
    spec, expected = data_spec(kind, request)
    sweep = {
        "problem": {"path": str(spec)},
        "solver": {"preset": "lbfgsb", "max_iter": 15},
        "grid": {"n_steps": [2, 4]},
    }
    rows = run_sweep(sweep, tmp_path / "sweep", workers=1, progress=False)
    assert len(rows) == 2 and all(row["status"] in ("converged", "max_iter") for row in rows)
    assert sorted(row["params"]["problem"]["control"]["n_steps"] for row in rows) == [2, 4]
    for row in rows:
        data = cdl.Result.load(row["result_path"]).problem.data
        np.testing.assert_array_equal(data.x_test, expected.get("x_test", cdl.load_problem(spec).data.x_test))


def test_cli_compare_on_an_npz(npz_file, tmp_path, capsys):
    spec = problem_toml(npz_file.parent, "../circle.npz")
    out = tmp_path / "compare"
    assert main(["compare", str(spec), "--solvers", "lbfgsb", "--out", str(out), "--no-progress"]) == 0
    table = json.loads((out / "compare.json").read_text())
    assert table["problem_spec"]["data"]["path"] == str(npz_file)
    assert "lbfgsb" in capsys.readouterr().out


def test_csv_with_numeric_targets_is_regression(tmp_path):
    rows = [f"{a!r},{b!r},{a * a - b!r}" for a, b in X.tolist()]
    data = cdl.Dataset.from_file(write_csv(tmp_path / "reg.csv", rows, "a,b,y"), target="y", seed=2)
    assert data.task == "regression" and data.n_out == 1 and data.class_names is None
    columns = np.hstack([data.x_train, data.x_test])
    targets = np.hstack([data.y_train, data.y_test])[0]
    np.testing.assert_allclose(targets, columns[0] ** 2 - columns[1], rtol=1e-15)


def test_object_string_labels_are_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = np.array(["a", "b"] * 25, dtype=object)
    d = cdl.Dataset.from_arrays(X, y)
    assert d.class_names == ("a", "b")


def test_float_labels_error_says_regression():
    X = np.random.default_rng(0).normal(size=(40, 2))
    d = cdl.Dataset.from_arrays(X, np.array([0.0, 1.0] * 20))
    with pytest.raises(SpecError, match="task='binary'"):
        cdl.TrainingProblem(data=d, cost=cdl.Cost(loss="logistic"))
