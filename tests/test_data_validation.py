"""Bad data → a SpecError that names the field (never a numpy error or a silent cast)."""

from __future__ import annotations

import numpy as np
import pytest

import control_dl as cdl

X = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 0.0]])
LABELS = np.array([0, 1, 0, 1])


def dataset(task: str = "binary", **changes: object) -> cdl.Dataset:
    y = np.zeros((1, 4)) if task == "regression" else LABELS
    args = {"x_train": X, "y_train": y, "x_test": X, "y_test": y, "task": task, **changes}
    return cdl.Dataset(**args)


def test_valid_data_is_accepted() -> None:
    data = dataset(x_train=X.tolist(), y_train=[0, 1, 0, 1])
    assert data.n_in == 2 and data.x_train.dtype == np.float64 and data.y_train.dtype.kind == "i"
    assert dataset("regression", y_train=np.arange(4.0)).y_train.shape == (1, 4)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"x_train": np.where(X > 2, np.nan, X)}, "x_train"),
        ({"x_test": np.where(X > 2, np.inf, X)}, "x_test"),
        ({"x_train": X[0]}, "x_train"),  # 1-D
        ({"x_train": X[:, :, None]}, "x_train"),  # 3-D
        ({"x_train": np.zeros((2, 0)), "y_train": np.zeros(0, int)}, "x_train"),  # no samples
        ({"x_train": np.zeros((0, 4)), "x_test": np.zeros((0, 4))}, "x_train"),  # no features
        ({"x_test": np.zeros((3, 4))}, "x_test"),  # rows differ from x_train
        ({"x_train": [["a", "b", "c", "d"]] * 2}, "x_train"),  # strings
        ({"x_train": [[1.0, 2.0], [3.0]]}, "x_train"),  # ragged
        ({"x_train": X + 1j}, "x_train"),  # complex
        ({"y_train": LABELS[:3]}, "y_train"),  # wrong length
        ({"y_train": LABELS[None, :]}, "y_train"),  # labels as a matrix
        ({"y_train": np.array(["a", "b", "a", "b"])}, "y_train"),  # labels of the wrong kind
        ({"y_train": np.array([0.0, 0.5, 1.0, 1.0])}, "y_train"),  # non-integer labels
        ({"y_train": np.array([0, -1, 0, 1])}, "y_train"),  # negative labels
        ({"y_train": np.array([0, 2, 0, 1])}, "y_train"),  # not binary
        ({"y_test": np.array([0, np.nan, 0, 1])}, "y_test"),
        ({"task": "ranking"}, "task"),
    ],
)
def test_bad_classification_data_is_refused(changes: dict, field: str) -> None:
    with pytest.raises(cdl.SpecError, match=field):
        dataset(**changes)


def test_huge_class_labels_are_refused() -> None:
    with pytest.raises(cdl.SpecError, match="y_train"):
        dataset("multiclass", y_train=np.array([0, 1, 0, 10**9]))


@pytest.mark.parametrize(
    "y", [np.zeros((1, 3)), np.array(["a"] * 4), np.full(4, np.nan), np.full((1, 4), -np.inf), np.zeros((1, 4, 1))]
)
def test_bad_regression_targets_are_refused(y: np.ndarray) -> None:
    with pytest.raises(cdl.SpecError, match="y_train"):
        dataset("regression", y_train=y)


def test_regression_data_with_a_classification_loss_is_refused() -> None:
    with pytest.raises(cdl.SpecError, match="loss"):
        cdl.TrainingProblem(data=dataset("regression"), cost=cdl.Cost(loss="logistic"))
