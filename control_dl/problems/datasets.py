"""Datasets: the :class:`Dataset` container, user data (arrays, files) and the catalog's data.

Inputs are stored as ``n_in × S`` matrices (one column per sample, the convention of the whole
package). The synthetic generators draw the training set and a separate test set from the same
distribution, with independent random streams derived from ``seed``. User data come in sample-major
(``S × n_in``, as numpy, scikit-learn and torch users hold them) through :meth:`Dataset.from_arrays`
and :meth:`Dataset.from_file`; scikit-learn's bundled sets (iris, wine, breast cancer, digits) through
:func:`bundled` (optional extra ``datasets``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import SpecError, check_bool, check_positive_int, is_integer, is_number, spec_error
from .._files import as_path
from .datafiles import all_whole_numbers

logger = logging.getLogger(__name__)

#: inferred regression targets with at most this many distinct values, all whole numbers, look like
#: class labels stored as floats (torch's float 0/1 labels): a warning names task=
FEW_CLASSES = 20

__all__ = [
    "BUNDLED",
    "LAYOUTS",
    "DATASETS",
    "TASKS",
    "Dataset",
    "as_features",
    "bundled",
    "circle",
    "encode_labels",
    "ring",
    "sin",
    "spheres",
    "spiral",
    "square_1d",
    "stratified_split",
    "xor",
]

TASKS = ("binary", "multiclass", "regression")
#: class labels must be below this (one-hot targets have a row per class)
MAX_CLASSES = 10_000


def _real_array(field: str, value: object) -> np.ndarray:
    """``value`` as a float64 array, or a SpecError naming the field (strings, ragged lists, complex).

    A torch tensor is read as its values, also on a GPU or with ``requires_grad`` (numpy refuses
    those; these are data, not a graph to differentiate).
    """
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
        if np.iscomplexobj(array):
            raise spec_error(field, "complex values", "data must be real numbers")
        return np.asarray(array, dtype=float)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise spec_error(field, type(value).__name__, f"must be an array of real numbers ({exc})") from None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training and test data, inputs one column per sample.

    Build it from sample-major arrays with :meth:`from_arrays`, from a file with :meth:`from_file`,
    or take one of the generators of this module.

    Parameters
    ----------
    x_train, x_test : ndarray
        Model inputs, ``n_in × S`` and ``n_in × S_test`` (already standardised when ``mean`` is set).
    y_train, y_test : ndarray
        Integer labels ``(S,)`` for classification (booleans are read as 0/1), targets ``n_out × S``
        for regression.
    task : {"binary", "multiclass", "regression"}
        What the labels are.
    name : str
        Short name (used in figures and tables).
    class_names : tuple of str, optional
        Name of class k at position k (labels that were strings or non-consecutive integers).
    mean, scale : ndarray, optional
        Standardisation fitted on the training split: model input = (raw − mean) / scale per feature,
        shape ``(n_in,)``. :meth:`transform` applies it to raw inputs.
    source : dict, optional
        How to rebuild the data: the ``[data]`` section of a problem spec (plus ``sha256`` of a
        data file). None for data given as arrays (a saved Result then stores the arrays).

    Raises
    ------
    SpecError
        An unknown ``task``, inputs that are not a non-empty finite ``n_in × S`` matrix, targets that
        do not fit them, ``x_test`` with another n_in, a bad standardisation, or ``class_names`` that
        do not name the classes.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    name: str = "data"
    class_names: tuple[str, ...] | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    source: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise spec_error("task", self.task, f"must be one of {list(TASKS)}")
        if not isinstance(self.name, str):
            raise spec_error("name", self.name, "must be a string (the data set's name in titles and saved results)")
        for split in ("train", "test"):
            x = _real_array(f"x_{split}", getattr(self, f"x_{split}"))
            try:
                y = np.asarray(getattr(self, f"y_{split}"))
            except ValueError as exc:
                raise spec_error(f"y_{split}", "ragged", f"must be an array ({exc})") from None
            if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
                raise spec_error(f"x_{split}", x.shape, "must be a non-empty n_in × S matrix")
            if not np.all(np.isfinite(x)):
                raise spec_error(f"x_{split}", "NaN/inf", "data must be finite")
            y = self._check_targets(split, y, x)
            object.__setattr__(self, f"x_{split}", x)
            object.__setattr__(self, f"y_{split}", y)
        if self.x_train.shape[0] != self.x_test.shape[0]:
            raise spec_error("x_test", self.x_test.shape, f"must have {self.n_in} rows like x_train")
        self._check_standardisation()
        if self.class_names is not None:
            names = tuple(str(c) for c in self.class_names)
            if self.task == "regression" or len(names) < self.n_classes:
                raise spec_error("class_names", self.class_names, f"must name the {self.n_classes} classes")
            object.__setattr__(self, "class_names", names)

    @staticmethod
    def _transposed_hint(x: np.ndarray, n_labels: int) -> str:
        """Inputs passed sample-major (S × n_in) are the common mistake: say so."""
        if x.shape[0] == n_labels != x.shape[1]:
            return (
                f"; the inputs look transposed ({x.shape[0]} rows = the number of labels): Dataset takes "
                "n_in × S, one column per sample (pass x.T, or use Dataset.from_arrays(X, y) for sample-major X)"
            )
        return ""

    def _check_targets(self, split: str, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        field, n = f"y_{split}", x.shape[1]
        if self.task == "regression":
            y = _real_array(field, y)
            y = y[None, :] if y.ndim == 1 else y
            if y.ndim != 2 or y.shape[1] != n:
                hint = self._transposed_hint(x, y.shape[1]) if y.ndim == 2 else ""
                if y.ndim == 2 and y.shape[0] == n:  # S × n_out targets: y.T fits the inputs as they are
                    hint = f"; the targets look transposed ({n} rows = the number of samples): pass y.T" + (
                        ", or x.T" if hint else ""
                    )
                raise spec_error(field, y.shape, f"regression targets must be n_out × {n}{hint}")
            if not np.all(np.isfinite(y)):
                raise spec_error(field, "NaN/inf", "targets must be finite")
            return y
        if y.dtype == bool:
            y = y.astype(int)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
            hint = self._transposed_hint(x, y.shape[0]) if y.ndim == 1 else ""
            raise spec_error(field, y.shape, f"labels must be a vector of {n} integers (or booleans){hint}")
        if np.any(y != np.round(y)) or np.any(y < 0) or np.any(y >= MAX_CLASSES):
            raise spec_error(field, "labels", f"class labels must be integers in [0, {MAX_CLASSES})")
        y = y.astype(int)
        if self.task == "binary" and np.any(y > 1):
            raise spec_error(field, sorted(set(y.tolist())), "binary labels must be 0 or 1")
        return y

    def _check_standardisation(self) -> None:
        if (self.mean is None) != (self.scale is None):
            raise spec_error("scale" if self.scale is None else "mean", None, "mean and scale are given together")
        if self.mean is None:
            return
        for name in ("mean", "scale"):
            value = _real_array(name, getattr(self, name))
            if value.shape != (self.n_in,) or not np.all(np.isfinite(value)):
                raise spec_error(name, value.shape, f"must be {self.n_in} finite numbers (one per input)")
            object.__setattr__(self, name, value)
        if np.any(self.scale <= 0):
            raise spec_error("scale", self.scale.tolist(), "must be > 0")

    def __repr__(self) -> str:
        """Name, task and shapes (not the arrays: a problem prints in one line)."""
        classes = f", classes={len(self.class_names)}" if self.class_names is not None else ""
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, n_in={self.x_train.shape[0]}, "
            f"train={self.x_train.shape[1]}, test={self.x_test.shape[1]}{classes})"
        )

    @property
    def n_in(self) -> int:
        """Input dimension."""
        return self.x_train.shape[0]

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        if self.task == "regression":
            return 0
        return max(2, int(max(self.y_train.max(), self.y_test.max())) + 1)

    @property
    def n_out(self) -> int:
        """Dimension of regression targets (0 for classification)."""
        return self.y_train.shape[0] if self.task == "regression" else 0

    def transform(self, X: Any) -> np.ndarray:
        """Raw inputs → model inputs: (X − mean) / scale per feature (the identity when not standardised).

        Parameters
        ----------
        X : array_like
            Raw inputs, ``n_in × S``.

        Returns
        -------
        ndarray
            Model inputs, ``n_in × S`` float64 (a new array).

        Raises
        ------
        SpecError
            ``X`` is not a real ``n_in × S`` matrix.
        """
        X = np.array(as_features(X, self.n_in), dtype=float)
        if self.mean is None:
            return X
        return (X - self.mean[:, None]) / self.scale[:, None]

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Model inputs → raw inputs: X · scale + mean per feature (e.g. ``x_test`` in the file's units).

        Parameters
        ----------
        X : array_like
            Model inputs, ``n_in × S``.

        Returns
        -------
        ndarray
            Raw inputs, ``n_in × S`` float64.

        Raises
        ------
        SpecError
            ``X`` is not a real ``n_in × S`` matrix.
        """
        X = np.array(as_features(X, self.n_in), dtype=float)
        if self.mean is None:
            return X
        return X * self.scale[:, None] + self.mean[:, None]

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        X_test: Any = None,
        y_test: Any = None,
        test_size: float = 0.25,
        seed: int = 0,
        task: str | None = None,
        standardize: bool = False,
        name: str = "data",
        source: dict[str, Any] | None = None,
    ) -> Dataset:
        """Data from sample-major arrays, as numpy / scikit-learn / torch users hold them.

        Labels are encoded as in :func:`encode_labels` (strings and non-consecutive integers → 0..K−1
        in sorted order, names kept in ``class_names``). Without a test set, a seeded split holds out
        ``ceil(test_size · S)`` samples, stratified by class (:func:`stratified_split`).

        Parameters
        ----------
        X : array_like
            Inputs, ``S × n_in`` (a vector is S samples of one feature).
        y : array_like
            Labels ``(S,)`` (integers, booleans or strings) or regression targets ``(S,)`` / ``(S, n_out)``.
        X_test, y_test : array_like, optional
            A test set in the same layout (both or neither).
        test_size : float
            Fraction of the samples held out when no test set is given, in (0, 1).
        seed : int
            Seed of the split.
        task : {"binary", "multiclass", "regression"}, optional
            Inferred when absent: integer, boolean or string labels → binary (2 classes) or multiclass,
            floats → regression.
        standardize : bool
            Fit mean and standard deviation per feature on the training split only, store them in
            ``mean`` / ``scale`` (a constant feature gets scale 1) and standardise both splits.
        name : str
            Short name.
        source : dict, optional
            Provenance recorded in :attr:`source` (set by :meth:`from_file`).

        Returns
        -------
        Dataset
            The data, inputs ``n_in × S``.

        Raises
        ------
        SpecError
            On arrays of the wrong shape or kind, a half-given test set, or a bad ``test_size``.
        """
        check_bool("standardize", standardize)
        x = _sample_major("X", X)
        labels = _labels("y", y, x)
        if (X_test is None) != (y_test is None):
            raise spec_error("X_test" if X_test is None else "y_test", None, "give X_test and y_test together")
        if X_test is not None:
            x_test = _sample_major("X_test", X_test)
            labels_test = _labels("y_test", y_test, x_test)
            if x_test.shape[1] != x.shape[1]:
                raise spec_error("X_test", x_test.shape, f"must have {x.shape[1]} columns (features) like X")
        task, encoded, class_names = encode_labels(labels if X_test is None else [labels, labels_test], task)
        if X_test is None:
            train, test = stratified_split(encoded if task != "regression" else None, x.shape[0], test_size, seed)
            x, x_test, y_train, y_test_enc = x[train], x[test], encoded[train], encoded[test]
        else:
            y_train, y_test_enc = encoded
        mean = scale = None
        if standardize:
            mean, scale = _standardisation(x)
            x, x_test = (x - mean) / scale, (x_test - mean) / scale
        if task == "regression":
            y_train, y_test_enc = (np.reshape(v, (v.shape[0], -1)).T for v in (y_train, y_test_enc))
        return cls(
            x.T,
            y_train,
            x_test.T,
            y_test_enc,
            task=task,
            name=name,
            class_names=class_names,
            mean=mean,
            scale=scale,
            source=source,
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        target: str | int | None = None,
        task: str | None = None,
        standardize: bool = False,
        test_size: float = 0.25,
        seed: int = 0,
    ) -> Dataset:
        """Data from a ``.csv``, ``.npz`` or ``.npy`` file (see :mod:`control_dl.problems.datafiles`).

        ``.csv``: a header row, one sample per row; ``target`` names the label column, every other
        column is a numeric feature. ``.npz``: arrays ``X`` (``S × n_in``), ``y`` and optionally
        ``X_test``, ``y_test``. ``.npy``: one ``S × (n_in + 1)`` array, ``target`` the index of the
        label column (default the last). The rest is :meth:`from_arrays`.

        Parameters
        ----------
        path : str or Path
            The file.
        target : str or int, optional
            Label column: a header name (csv, required), a column index (npy); not used by npz.
        task, standardize, test_size, seed
            As in :meth:`from_arrays`.

        Returns
        -------
        Dataset
            The data; :attr:`source` records the absolute path, the options and the file's SHA-256.

        Raises
        ------
        SpecError
            Naming the file, the line and the column of the first bad cell, or the missing key.
        """
        from .datafiles import file_sha256, read_data_file

        check_bool("standardize", standardize)
        path = Path(os.path.abspath(as_path(path).expanduser()))
        arrays = read_data_file(path, target)
        source = {
            "dataset": "file",
            "path": str(path),
            "target": target,
            "task": task,
            "standardize": standardize,
            "test_size": test_size,
            "seed": seed,
            "sha256": file_sha256(path),
        }
        try:
            return cls.from_arrays(
                *arrays,
                test_size=test_size,
                seed=seed,
                task=task,
                standardize=standardize,
                name=path.stem,
                source={k: v for k, v in source.items() if v is not None},
            )
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None


LAYOUTS = ("features", "samples")


def as_features(X: Any, n_in: int, layout: str = "features", field: str = "X", rows: str = "n_in") -> np.ndarray:
    """Inputs as the ``n_in × S`` float64 matrix the model takes, from either layout.

    Parameters
    ----------
    X : array_like
        Inputs: ``n_in × S`` for ``layout="features"`` (the package's convention, one column per
        sample), ``S × n_in`` for ``layout="samples"`` (numpy / scikit-learn / torch's).
    n_in : int
        Input dimension of the problem.
    layout : {"features", "samples"}
        How X is laid out.
    field : str
        Name used in errors.
    rows : str
        Name of the row count in errors: ``"n_in"`` for inputs, ``"d"`` for states.

    Returns
    -------
    ndarray
        ``n_in × S`` (a copy or a transposed view).

    Raises
    ------
    SpecError
        On an unknown layout, a non-matrix (a vector is ambiguous: one sample or n samples of one
        feature?), a shape that does not fit ``layout`` (the message says which layout was
        expected and whether the other one fits), no samples, or NaN/inf.
    """
    if layout not in LAYOUTS:
        raise spec_error("layout", layout, f"must be one of {list(LAYOUTS)}")
    x = _real_array(field, X)
    expected = f"({rows}, S) = ({n_in}, S)" if layout == "features" else f"(S, {rows}) = (S, {n_in})"
    if x.ndim != 2:
        raise spec_error(
            field,
            x.shape,
            f"must be a matrix; layout={layout!r} expects {expected} (one sample: X[:, None] for "
            "'features', X[None, :] for 'samples')",
        )
    x = x if layout == "features" else x.T
    if x.shape[0] != n_in:
        other = "samples" if layout == "features" else "features"
        hint = f"; it fits layout={other!r}, pass that" if x.shape[1] == n_in else ""
        raise spec_error(field, np.shape(X), f"layout={layout!r} expects {expected}{hint}")
    if x.shape[1] == 0:
        raise spec_error(field, np.shape(X), "holds no samples; give at least one")
    if not np.all(np.isfinite(x)):
        sample = int(np.argwhere(~np.isfinite(x))[0, 1])
        raise spec_error(field, "NaN/inf", f"inputs must be finite (first bad value in sample {sample})")
    return x


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean μ_j and scale s_j of a sample-major ``S × n_in`` array, s_j = 1 for a constant feature.

    A feature is constant when its variance is within the rounding error of computing it,
    var_j ≤ S ε var_j + (S |μ_j| ε)² (ε the float64 machine epsilon; scikit-learn's
    ``StandardScaler`` uses the same bound): a column of 0.1 on every row has a variance of
    about 10⁻³³ from rounding alone, and dividing by its square root would turn any other value
    of that feature at prediction time into an input of 10⁸ or more.

    Parameters
    ----------
    x : ndarray
        Training inputs, ``S × n_in``.

    Returns
    -------
    tuple of ndarray
        ``(μ, s)``, each ``(n_in,)``.
    """
    mean, var = x.mean(axis=0), x.var(axis=0)
    eps, n = np.finfo(np.float64).eps, x.shape[0]
    constant = var <= n * eps * var + (n * np.abs(mean) * eps) ** 2
    return mean, np.where(constant, 1.0, np.sqrt(var))


def _sample_major(field: str, value: Any) -> np.ndarray:
    """``S × n_in`` float64 inputs (a vector is one feature), finite, non-empty."""
    x = _real_array(field, value)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise spec_error(field, x.shape, "must be a non-empty S × n_in matrix (one row per sample)")
    if not np.all(np.isfinite(x)):
        row = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise spec_error(field, "NaN/inf", f"data must be finite (first bad value in sample {row})")
    return x


def _labels(field: str, value: Any, x: np.ndarray) -> np.ndarray:
    """Labels or targets with one entry (row) per sample of the sample-major inputs ``x`` (S × n_in)."""
    try:
        y = np.asarray(value)
    except ValueError as exc:
        raise spec_error(field, "ragged", f"must be an array ({exc})") from None
    if y.dtype == object:  # e.g. a pandas column's .values: strings (or numbers) boxed as objects
        y = _unbox(field, y)
    n = x.shape[0]
    if y.ndim == 0 or y.shape[0] != n or y.ndim > 2:
        x_field = "X" if field == "y" else "X_test"
        hint = ""
        if y.ndim >= 1 and y.shape[0] == x.shape[1] != n:  # the labels fit the columns: X is n_in × S
            hint = f"; {x_field} looks transposed: {x.shape[1]} columns = the number of labels (S × n_in expected)"
        raise spec_error(field, y.shape, f"must have one entry per sample (row) of {x_field}, {n} of them{hint}")
    if np.issubdtype(y.dtype, np.number) and not np.all(np.isfinite(y)):  # here, before the split renames it
        sample = int(np.argwhere(~np.isfinite(y.reshape(n, -1)))[0, 0])
        raise spec_error(field, "NaN/inf", f"labels and targets must be finite (first bad value in sample {sample})")
    return y


def _unbox(field: str, y: np.ndarray) -> np.ndarray:
    """An object array of all-strings, all-booleans or all-numbers as the matching numpy dtype."""
    items = y.ravel().tolist()
    for kinds, dtype in (((str,), str), ((bool, np.bool_), bool), ((int, float, np.integer, np.floating), None)):
        if all(isinstance(v, kinds) for v in items):
            if dtype is None and any(isinstance(v, (bool, np.bool_)) for v in items):
                break
            return np.asarray(items, dtype=dtype).reshape(y.shape)
    raise spec_error(field, "objects", "must hold numbers, booleans or strings (not mixed Python objects)")


def encode_labels(
    y: np.ndarray | list[np.ndarray], task: str | None = None
) -> tuple[str, np.ndarray | list[np.ndarray], tuple[str, ...] | None]:
    """Infer the task and encode labels as 0..K−1 (the splits of a list share one encoding).

    Integer and boolean labels 0..K−1 stay as they are; strings and other integers are encoded by
    their position in the sorted list of distinct values, whose text becomes ``class_names``. Floats
    are regression targets unless ``task`` says otherwise (then they must be whole numbers).

    Parameters
    ----------
    y : ndarray or list of ndarray
        Labels ``(S,)`` or targets ``(S,)`` / ``(S, n_out)``; a list encodes several splits together.
    task : {"binary", "multiclass", "regression"}, optional
        The task; inferred when None (2 classes → binary, more → multiclass).

    Returns
    -------
    tuple
        ``(task, encoded, class_names)``: encoded like ``y`` (a list for a list), ``class_names`` a
        tuple of str or None.

    Raises
    ------
    SpecError
        On a task that does not fit the labels, or fewer than two classes.
    """
    parts = y if isinstance(y, list) else [y]
    if task is not None and task not in TASKS:
        raise spec_error("task", task, f"must be one of {list(TASKS)}")
    kinds = {part.dtype.kind for part in parts}
    text = bool(kinds & {"U", "S"})
    if text and kinds - {"U", "S"}:
        parts = [part.astype(str) for part in parts]
    if task is None:
        task = "regression" if kinds <= {"f"} else "classification"
        if task == "regression" and all(part.ndim == 1 for part in parts):
            _warn_if_classes(np.concatenate(parts))
    if task == "regression":
        if text:
            raise spec_error("task", task, "needs numeric targets; these labels are strings")
        encoded = [_real_array("y", part) for part in parts]
        return "regression", encoded if isinstance(y, list) else encoded[0], None
    if not text and any(part.ndim != 1 for part in parts):
        raise spec_error("y", parts[0].shape, "class labels must be a vector (one per sample)")
    if kinds <= {"f"} and any(np.any(part != np.round(part)) for part in parts):
        raise spec_error("task", task, "class labels must be whole numbers; these are fractional (regression?)")
    values = [part.astype(int) if part.dtype.kind in "bf" else part for part in parts]
    classes = np.unique(np.concatenate(values))
    if classes.size < 2:
        raise spec_error("y", classes.tolist(), "classification needs at least two classes")
    names = None
    if text or classes[0] != 0 or classes[-1] != classes.size - 1:
        names = tuple(str(c) for c in classes)
        values = [np.searchsorted(classes, part) for part in values]
    inferred = "binary" if classes.size == 2 else "multiclass"
    if task == "classification":
        task = inferred
    elif task == "binary" and inferred != "binary":
        raise spec_error("task", task, f"binary needs two classes; the labels have {classes.size}")
    return task, values if isinstance(y, list) else values[0], names


def _warn_if_classes(values: np.ndarray) -> None:
    """Warn when float targets taken for regression look like class labels (few whole numbers)."""
    if not all_whole_numbers(values):
        return
    distinct = np.unique(values)
    if distinct.size <= min(FEW_CLASSES, values.size // 2):
        shown = ", ".join(f"{v:g}" for v in distinct[:5]) + (", …" if distinct.size > 5 else "")
        logger.warning(
            "y: float labels, all whole numbers (%d distinct values: %s), are taken as regression targets, as "
            "floats are; pass task='binary' or task='multiclass' if they are classes",
            distinct.size,
            shown,
        )


def stratified_split(
    labels: np.ndarray | None, n: int, test_size: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded train/test split holding out ``ceil(test_size · n)`` samples.

    With labels, each class k of n_k samples gives ⌊n_test n_k / n⌋ test samples and the remaining
    ones go to the classes with the largest remainders (Hamilton's apportionment), so the class
    proportions match to one sample. scikit-learn's ``train_test_split(stratify=y)`` apportions the
    training set instead and gives the test set the rest: mostly the same counts, but where
    remainders tie they can differ by one sample per class. One numpy implementation (not scikit-learn's) keeps a split identical whether or not
    scikit-learn is installed, so a saved result rebuilds its data bit for bit anywhere.

    Parameters
    ----------
    labels : ndarray or None
        Class of each sample ``(n,)``, or None for a plain shuffled split (regression).
    n : int
        Number of samples.
    test_size : float
        Fraction held out, in (0, 1).
    seed : int
        Seed of the local generator.

    Returns
    -------
    tuple of ndarray
        ``(train, test)`` sorted index vectors.

    Raises
    ------
    SpecError
        If ``test_size`` leaves no training or no test sample.
    """
    if not is_number(test_size) or not 0 < test_size < 1:
        raise spec_error("test_size", test_size, "must be a number in (0, 1)")
    if not is_integer(seed) or seed < 0:
        raise spec_error("seed", seed, "must be an integer >= 0")
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise spec_error("test_size", test_size, f"leaves no training or no test sample of {n}")
    rng = np.random.default_rng(seed)
    if labels is None:
        test = rng.permutation(n)[:n_test]
    else:
        classes, counts = np.unique(labels, return_counts=True)
        share = n_test * counts / n
        take = np.floor(share).astype(int)
        order = np.argsort(-(share - take), kind="stable")
        take[order[: n_test - take.sum()]] += 1
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
        )
    mask = np.zeros(n, bool)
    mask[test] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    train, test = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(train), np.random.default_rng(test)


def _check(n_samples: int, noise: float, seed: int) -> None:
    if not is_integer(n_samples) or n_samples < 2:
        raise spec_error("n_samples", n_samples, "must be an integer >= 2")
    if not is_number(noise) or not np.isfinite(noise) or noise < 0:
        raise spec_error("noise", noise, "must be a finite number >= 0")
    if not is_integer(seed) or seed < 0:
        raise spec_error("seed", seed, "must be an integer >= 0")


def _make(name, task, sampler, n_samples, noise, seed, n_test, **extra) -> Dataset:
    _check(n_samples, noise, seed)
    if n_test is not None:
        check_positive_int("n_test", n_test, minimum=2)  # named as given (it was reported as n_samples)
        n_test = int(n_test)
    n_samples, noise, seed = int(n_samples), float(noise), int(seed)  # numpy scalars in, Python numbers kept
    source = {"dataset": name, "n_samples": n_samples, "noise": noise, "seed": seed, "n_test": n_test, **extra}
    n_test = max(2, n_samples // 4) if n_test is None else n_test
    rng_train, rng_test = _streams(seed)
    (xtr, ytr), (xte, yte) = sampler(n_samples, rng_train), sampler(n_test, rng_test)
    if noise > 0:
        xtr = xtr + noise * rng_train.standard_normal(xtr.shape)
        xte = xte + noise * rng_test.standard_normal(xte.shape)
    source = {k: v for k, v in source.items() if v is not None}
    return Dataset(xtr, ytr, xte, yte, task=task, name=name, source=source)


def _ball(n: int, dim: int, r_min: float, r_max: float, rng: np.random.Generator) -> np.ndarray:
    """n points uniform (in volume) in the shell r_min ≤ ‖x‖ ≤ r_max of R^dim, as dim × n."""
    direction = rng.standard_normal((dim, n))
    direction /= np.linalg.norm(direction, axis=0, keepdims=True)
    u = rng.uniform(size=n)
    r = (r_min**dim + u * (r_max**dim - r_min**dim)) ** (1.0 / dim)
    return direction * r


def _shells(n: int, dim: int, rng: np.random.Generator, inner: float, gap: tuple[float, float]):
    n_in = n // 2
    x = np.hstack([_ball(n_in, dim, 0.0, inner, rng), _ball(n - n_in, dim, *gap, rng)])
    y = np.r_[np.ones(n_in, int), np.zeros(n - n_in, int)]
    return x, y


def ring(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Inner disk (‖x‖ ≤ 0.5, label 1) against an annulus (0.7 ≤ ‖x‖ ≤ 1, label 0) in R².

    Parameters
    ----------
    n_samples : int
        Training points (half per class).
    noise : float
        Standard deviation of Gaussian noise added to the inputs.
    seed : int
        Random seed.
    n_test : int, optional
        Test points (default ``n_samples // 4``).

    Returns
    -------
    Dataset
        Binary classification data.

    Raises
    ------
    SpecError
        ``n_samples`` or ``n_test`` is not an integer >= 2, ``noise`` not a finite number >= 0, or
        ``seed`` not an integer >= 0.
    """
    return _make("ring", "binary", lambda n, r: _shells(n, 2, r, 0.5, (0.7, 1.0)), n_samples, noise, seed, n_test)


def spheres(
    n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None, n_in: int = 2
) -> Dataset:
    """Dupont's concentric spheres in R^n: ‖x‖ ≤ 0.5 (label 1) against 1 ≤ ‖x‖ ≤ 1.5 (label 0).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.
    n_in : int
        Input dimension (≥ 1).

    Returns
    -------
    Dataset
        Binary classification data.

    Raises
    ------
    SpecError
        ``n_in`` is not an integer >= 1, ``n_samples`` or ``n_test`` not an integer >= 2, ``noise``
        not a finite number >= 0, or ``seed`` not an integer >= 0.
    """
    if not is_integer(n_in) or n_in < 1:
        raise spec_error("n_in", n_in, "must be an integer >= 1")
    return _make(
        "spheres",
        "binary",
        lambda n, r: _shells(n, n_in, r, 0.5, (1.0, 1.5)),
        n_samples,
        noise,
        seed,
        n_test,
        n_in=int(n_in),
    )


def _spiral(n: int, rng: np.random.Generator):
    n0 = n // 2
    t = np.sqrt(rng.uniform(0.05, 1.0, size=n)) * 3.0 * np.pi
    arm = np.r_[np.zeros(n0, int), np.ones(n - n0, int)]
    angle = t + np.pi * arm
    r = t / (3.0 * np.pi)
    return np.vstack([r * np.cos(angle), r * np.sin(angle)]), arm


def spiral(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Two interleaved Archimedean arms r = t/(3π), t ≤ 3π, the second turned by π (labels 0/1).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.

    Returns
    -------
    Dataset
        Binary classification data.

    Raises
    ------
    SpecError
        ``n_samples`` or ``n_test`` is not an integer >= 2, ``noise`` not a finite number >= 0, or
        ``seed`` not an integer >= 0.
    """
    return _make("spiral", "binary", _spiral, n_samples, noise, seed, n_test)


def _square(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=(2, n))


def circle(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Uniform points in [−1, 1]², label 1 inside the circle ‖x‖ < 0.75 (no gap, unlike ``ring``).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.

    Returns
    -------
    Dataset
        Binary classification data.

    Raises
    ------
    SpecError
        ``n_samples`` or ``n_test`` is not an integer >= 2, ``noise`` not a finite number >= 0, or
        ``seed`` not an integer >= 0.
    """

    def sample(n, rng):
        x = _square(n, rng)
        return x, (np.linalg.norm(x, axis=0) < 0.75).astype(int)

    return _make("circle", "binary", sample, n_samples, noise, seed, n_test)


def xor(n_samples: int = 400, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """Uniform points in [−1, 1]², label 1 where x₁ x₂ > 0 (the XOR quadrants).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`.

    Returns
    -------
    Dataset
        Binary classification data.

    Raises
    ------
    SpecError
        ``n_samples`` or ``n_test`` is not an integer >= 2, ``noise`` not a finite number >= 0, or
        ``seed`` not an integer >= 0.
    """

    def sample(n, rng):
        x = _square(n, rng)
        return x, (x[0] * x[1] > 0).astype(int)

    return _make("xor", "binary", sample, n_samples, noise, seed, n_test)


def _regression(f, low: float, high: float):
    def sample(n, rng):
        x = rng.uniform(low, high, size=(1, n))
        return x, f(x)

    return sample


def square_1d(n_samples: int = 100, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """y = x² for x uniform on [−1, 1] (Kuntz's example of a map with a critical point).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`; ``noise`` perturbs the inputs.

    Returns
    -------
    Dataset
        Regression data, ``n_out = 1``.

    Raises
    ------
    SpecError
        ``n_samples`` or ``n_test`` is not an integer >= 2, ``noise`` not a finite number >= 0, or
        ``seed`` not an integer >= 0.
    """
    return _make("square_1d", "regression", _regression(np.square, -1.0, 1.0), n_samples, noise, seed, n_test)


def sin(n_samples: int = 100, noise: float = 0.0, seed: int = 0, n_test: int | None = None) -> Dataset:
    """y = sin x for x uniform on [−π, π] (the toy problem of Li et al.'s MSA paper).

    Parameters
    ----------
    n_samples, noise, seed, n_test
        As in :func:`ring`; ``noise`` perturbs the inputs.

    Returns
    -------
    Dataset
        Regression data, ``n_out = 1``.

    Raises
    ------
    SpecError
        ``n_samples`` or ``n_test`` is not an integer >= 2, ``noise`` not a finite number >= 0, or
        ``seed`` not an integer >= 0.
    """
    return _make("sin", "regression", _regression(np.sin, -np.pi, np.pi), n_samples, noise, seed, n_test)


#: scikit-learn's bundled data sets (no download): name -> loader in ``sklearn.datasets``
BUNDLED = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}


def bundled(name: str, seed: int = 0, test_size: float = 0.25, standardize: bool = True) -> Dataset:
    """One of scikit-learn's bundled classification sets, split and (by default) standardised.

    iris (150 × 4, 3 classes), wine (178 × 13, 3 classes), breast_cancer (569 × 30, 2 classes) and
    digits (1797 × 64 pixel intensities 0..16, 10 classes), read from the files scikit-learn ships
    (never downloaded), split by :func:`stratified_split` and standardised on the training split.

    Parameters
    ----------
    name : {"iris", "wine", "breast_cancer", "digits"}
        Which set.
    seed : int
        Seed of the split.
    test_size : float
        Fraction held out for testing.
    standardize : bool
        Standardise the inputs (fitted on the training split).

    Returns
    -------
    Dataset
        The data, ``class_names`` from scikit-learn's ``target_names``.

    Raises
    ------
    SpecError
        On an unknown name, or when scikit-learn (the optional extra ``datasets``) is missing.
    """
    if not isinstance(name, str) or name not in BUNDLED:
        raise spec_error("dataset", name, f"must be one of {sorted(BUNDLED)}")
    check_bool("standardize", standardize)
    try:
        from sklearn import datasets as sk_datasets
    except ImportError:
        raise spec_error(
            "dataset", name, "needs scikit-learn, the optional extra 'datasets': pip install 'control_dl[datasets]'"
        ) from None
    bunch = getattr(sk_datasets, BUNDLED[name])()
    source = {"dataset": name, "seed": seed, "test_size": test_size, "standardize": standardize}
    data = Dataset.from_arrays(
        bunch.data, bunch.target, test_size=test_size, seed=seed, standardize=standardize, name=name, source=source
    )
    return replace(data, class_names=tuple(str(n) for n in bunch.target_names))


DATASETS = {
    "ring": ring,
    "spiral": spiral,
    "circle": circle,
    "xor": xor,
    "square_1d": square_1d,
    "spheres": spheres,
    "sin": sin,
}
