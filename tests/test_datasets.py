"""Datasets are deterministic, split into train/test, and validated."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl

GENERATORS = ["ring", "spiral", "circle", "xor", "square_1d", "spheres", "sin"]


@pytest.mark.parametrize("name", GENERATORS)
def test_deterministic_and_split(name):
    make = getattr(cdl.datasets, name)
    a, b, c = make(40, seed=3), make(40, seed=3), make(40, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.shape[1] == 40 and a.x_test.shape[1] == 10
    assert not np.array_equal(a.x_train[:, :10], a.x_test)


def test_ring_geometry_and_balance():
    data = cdl.datasets.ring(200)
    r = np.linalg.norm(data.x_train, axis=0)
    inner = data.y_train == 1
    assert inner.sum() == 100
    assert r[inner].max() <= 0.5 and r[~inner].min() >= 0.7 and r.max() <= 1.0


def test_spheres_in_three_dimensions():
    data = cdl.datasets.spheres(100, n_in=3)
    r = np.linalg.norm(data.x_train, axis=0)
    assert data.n_in == 3
    assert np.all(r[data.y_train == 1] <= 0.5) and np.all((r[data.y_train == 0] >= 1) & (r[data.y_train == 0] <= 1.5))


def test_regression_targets():
    data = cdl.datasets.sin(50)
    np.testing.assert_allclose(data.y_train[0], np.sin(data.x_train[0]))
    assert data.task == "regression" and data.n_out == 1
    sq = cdl.datasets.square_1d(30)
    np.testing.assert_allclose(sq.y_train[0], sq.x_train[0] ** 2)


def test_noise_perturbs_inputs_only():
    clean, noisy = cdl.datasets.xor(50), cdl.datasets.xor(50, noise=0.1)
    np.testing.assert_array_equal(clean.y_train, noisy.y_train)
    assert 0 < np.abs(clean.x_train - noisy.x_train).max() < 1


@pytest.mark.parametrize(
    "x, y, task, field",
    [
        (np.full((2, 3), np.nan), np.array([0, 1, 0]), "binary", "x_train"),
        (np.zeros((2, 0)), np.zeros(0), "binary", "x_train"),
        (np.zeros((2, 3)), np.array([0, 1]), "binary", "y_train"),
        (np.zeros((2, 3)), np.array([0, 2, 1]), "binary", "y_train"),
        (np.zeros((2, 3)), np.array([0.5, 1, 0]), "binary", "y_train"),
        (np.zeros((2, 3)), np.array([[np.inf, 1, 0]]), "regression", "y_train"),
        (np.zeros((2, 3)), np.array([0, 1, 0]), "ranking", "task"),
    ],
)
def test_bad_data_is_a_spec_error(x, y, task, field):
    with pytest.raises(cdl.SpecError, match=field):
        cdl.Dataset(x, y, np.zeros((2, 2)), np.array([0, 1]) if task != "regression" else np.zeros((1, 2)), task=task)


def test_a_dataset_prints_its_shapes_not_its_arrays():
    problem = cdl.load_problem("ring", n_samples=500)
    text = repr(problem.data)
    assert text == "Dataset(name='ring', task='binary', n_in=2, train=500, test=125)"
    assert len(repr(problem)) < 2000  # was every sample's coordinates


def test_a_problem_prints_what_defines_it():
    """A user's report: an MLP problem printed field=Inside(...) and control=PiecewiseConstant(n_steps=20),
    the unused defaults its model replaces, while problem.n_steps was 3."""
    mlp = cdl.load_problem("circle", model="mlp", widths=[2, 8, 8, 1])
    text = repr(mlp)
    assert "model=FeedForward(widths=(2, 8, 8, 1)" in text and mlp.n_steps == 3
    assert "field=" not in text and "control=" not in text and "spec=" not in text
    flow = repr(cdl.load_problem("ring", n_samples=50, n_steps=7))
    assert "control=PiecewiseConstant(n_steps=7)" in flow and "model=" not in flow and "spec=" not in flow
