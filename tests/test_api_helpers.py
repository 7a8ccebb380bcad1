"""Helpers of the public modules (problems.fields, problems.costs, problems.layout, experiments.sweep)
that no test called by name, checked against reference formulas and their own contracts."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import control_dl as cdl
from control_dl.backends import get_ops
from control_dl.experiments.sweep import canonical_json, flat_params, run_id
from control_dl.problems.costs import decision_threshold, encode_targets, predict_labels
from control_dl.problems.fields import ACTIVATIONS, activate, check_activation
from control_dl.problems.layout import as_matrix_shape, block_offsets, block_size, unpack_blocks

REFERENCE = {
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "relu": lambda z: np.maximum(z, 0.0),
    "identity": lambda z: z,
}


@pytest.mark.parametrize("backend", ["numpy", "casadi", "torch"])
def test_activate_is_the_named_function_on_every_backend(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    ops = get_ops(backend)
    z = np.array([[-30.0, -1.5, -0.1], [0.0, 0.7, 25.0]])
    assert set(ACTIVATIONS) == set(REFERENCE)
    for name in ACTIVATIONS:
        got = np.asarray(activate(name, ops.asarray(z), ops), dtype=float)
        # sigmoid's tanh form (numpy, CasADi) is accurate to 1.2e-16 absolute, not relative, in its tail
        np.testing.assert_allclose(got, REFERENCE[name](z), rtol=1e-12, atol=2e-16, err_msg=name)
    tail = np.asarray(activate("sigmoid", ops.asarray(np.array([[-30.0, -40.0]])), ops), dtype=float)
    assert np.all(np.abs(tail - REFERENCE["sigmoid"](np.array([[-30.0, -40.0]]))) < 1.2e-16)
    assert check_activation("tanh") == "tanh"
    with pytest.raises(cdl.SpecError, match="activation"):
        check_activation("gelu")


@pytest.mark.parametrize(
    ("task", "loss", "y", "n_classes", "rows"),
    [
        ("binary", "logistic", np.array([0, 1, 1, 0]), 2, 1),
        ("binary", "mse", np.array([0, 1, 1, 0]), 2, 1),
        ("multiclass", "cross_entropy", np.array([2, 0, 1, 2, 1]), 3, 3),
        ("multiclass", "mse", np.array([2, 0, 1, 2, 1]), 3, 3),
    ],
)
def test_encoded_targets_are_read_back_as_their_labels(task, loss, y, n_classes, rows):
    targets = encode_targets(task, loss, y, n_classes)
    assert targets.shape == (rows, y.size) and targets.dtype == np.float64
    if rows > 1:  # one-hot columns
        np.testing.assert_array_equal(targets.sum(axis=0), 1.0)
    np.testing.assert_array_equal(predict_labels(task, loss, targets), y)


def test_decision_threshold_is_where_predict_labels_switches_class():
    for loss in ("logistic", "mse"):
        threshold = decision_threshold(loss)
        yhat = np.array([[threshold - 1e-9, threshold + 1e-9]])
        np.testing.assert_array_equal(predict_labels("binary", loss, yhat), [0, 1])
    assert decision_threshold("logistic") == 0.0  # a logit: σ(0) = 1/2
    assert decision_threshold(lambda yhat, y, ops: (yhat - y) ** 2) == 0.5


def test_regression_targets_need_mse():
    y = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(encode_targets("regression", "mse", y, 0), y)
    with pytest.raises(cdl.SpecError, match="loss"):
        encode_targets("regression", "logistic", y, 0)


def test_layout_helpers_read_w_column_major():
    shapes = {"A": (2, 3), "b": (2,)}
    assert block_size(shapes) == 8
    assert block_offsets([shapes, shapes, {"W": (4, 4)}]) == (0, 8, 16, 32)
    assert as_matrix_shape((5,)) == (5, 1) and as_matrix_shape((2, 3)) == (2, 3)
    vec = np.arange(8.0)
    blocks = unpack_blocks(vec, shapes, get_ops("numpy"))
    np.testing.assert_array_equal(blocks["A"], np.arange(6.0).reshape((2, 3), order="F"))
    np.testing.assert_array_equal(blocks["b"], [[6.0], [7.0]])


def test_run_ids_hash_the_canonical_json_and_flat_params_name_every_key():
    params = {
        "problem": {"name": "ring", "data": {"seed": 7, "n_samples": 40}, "model": {"dim": 3}},
        "solver": {"solver": "lbfgsb", "max_iter": 3},
        "seed": 1,
    }
    reordered = {
        "seed": 1,
        "solver": {"max_iter": 3, "solver": "lbfgsb"},
        "problem": dict(reversed(params["problem"].items())),
    }
    assert canonical_json(params) == canonical_json(reordered)
    assert " " not in canonical_json(params)
    assert run_id(params) == run_id(reordered) == hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]
    assert run_id({**params, "seed": 2}) != run_id(params)
    with pytest.raises(cdl.SpecError, match="JSON"):
        canonical_json({"when": object()})
    flat = flat_params(params)
    assert (flat["seed"], flat["problem.seed"]) == (1, 7)  # the run seed wins over the data seed
    assert flat["problem"] == "ring" and flat["solver"] == "lbfgsb"
    assert flat["dim"] == flat["problem.dim"] == 3 and flat["n_samples"] == 40
    assert flat["max_iter"] == flat["solver.max_iter"] == 3
