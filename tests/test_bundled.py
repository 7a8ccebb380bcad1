"""scikit-learn's bundled data sets as catalog problems (optional extra ``datasets``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import control_dl as cdl

SIZES = {"iris": (150, 4, 3), "wine": (178, 13, 3), "breast_cancer": (569, 30, 2), "digits": (1797, 64, 10)}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_catalog_problem_matches_scikit_learns_data(name):
    sk_datasets = pytest.importorskip("sklearn.datasets")
    problem = cdl.load_problem(name)
    data = problem.data
    n, n_in, n_classes = SIZES[name]
    assert name in cdl.list_problems() and problem.spec["solver"] in cdl.list_solvers()
    assert (data.x_train.shape[1] + data.x_test.shape[1], data.n_in, data.n_classes) == (n, n_in, n_classes)
    bunch = getattr(sk_datasets, f"load_{name}")()
    assert data.class_names == tuple(str(c) for c in bunch.target_names)
    raw = np.hstack([data.inverse_transform(data.x_train), data.inverse_transform(data.x_test)])
    np.testing.assert_allclose(np.sort(raw, axis=1), np.sort(bunch.data.T, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.x_train.mean(axis=1), 0.0, atol=1e-12)  # standardised on the training split
    assert np.isfinite(problem.objective(problem.initial_guess()))


def test_catalog_options_reach_the_split():
    pytest.importorskip("sklearn")
    a, b = cdl.load_problem("iris", seed=1, test_size=0.4), cdl.load_problem("iris", seed=2, test_size=0.4)
    assert a.data.x_test.shape == (4, 60) and not np.array_equal(a.data.x_test, b.data.x_test)
    assert cdl.load_problem("iris", standardize=False).data.mean is None
    with pytest.raises(cdl.SpecError, match="n_samples"):
        cdl.load_problem("iris", n_samples=20)


def test_missing_extra_is_a_spec_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(cdl.SpecError, match=r"control_dl\[datasets\]"):
        cdl.load_problem("digits")


@pytest.mark.slow
def test_digits_reaches_95_percent_with_its_default_solver():
    pytest.importorskip("sklearn")
    problem = cdl.load_problem("digits")
    result = cdl.solve(problem, cdl.load_solver(problem.spec["solver"]), progress=False)
    assert result.status == "converged" and result.test_accuracy >= 0.95


def test_a_saved_result_rebuilds_its_catalog_data(tmp_path):
    pytest.importorskip("sklearn")
    problem = cdl.load_problem("iris", seed=3)
    result = cdl.solve(problem, cdl.load_solver("lbfgsb", max_iter=5), progress=False)
    loaded = cdl.Result.load(result.save(tmp_path / "iris"))
    assert loaded.data_source == {"dataset": "iris", "seed": 3, "test_size": 0.25, "standardize": True}
    for name in ("x_train", "y_train", "x_test", "y_test", "mean", "scale"):
        np.testing.assert_array_equal(getattr(loaded.problem.data, name), getattr(problem.data, name))
